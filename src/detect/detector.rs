//! Stage 4 of the data path: scores → events. Each head has its own threshold and
//! refractory period; one backbone pass feeds them all. A head that carries templates has its
//! candidates checked against them ([`crate::model::templates`]) on the audio the detector keeps.

use serde::Serialize;

use crate::audio::history::AudioHistory;
use crate::backbone::Embedding;
use crate::features::cepstra::Cepstra;
use crate::model::head::{Head, Scorer};
use crate::model::templates::QUERY_SECONDS;
use crate::timeline::{
    HEAD_WINDOW, refractory_hops, samples_at_embedding, seconds_of, time_of_embedding,
};

/// One detection of a wake word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// The word detected.
    pub word: String,
    /// Seconds of audio consumed when the detection was made.
    pub time: f64,
    /// The head's score (0–1).
    pub score: f32,
}

/// Runs several heads over one stream of embeddings and turns their scores into detections.
#[derive(Debug)]
pub struct Detector {
    heads: Vec<Armed>,
    embeddings: u64,
    /// The last [`HEAD_WINDOW`] embeddings as they came (a ring), so a head swapped in while
    /// listening starts with a full window.
    recent: Vec<Embedding>,
    /// The audio the templates' checks read (kept only when a head has templates).
    audio: AudioHistory,
    cepstra: Cepstra,
}

/// Audio kept for the checks: the query and what one pushed chunk may run ahead of the
/// embeddings (the listener pushes at most one 80-ms group at a time).
const KEEP_SECONDS: f64 = QUERY_SECONDS + 0.5;

#[derive(Debug)]
struct Armed {
    scorer: Scorer,
    refractory_hops: u64,
    last_fire: Option<u64>,
}

impl Detector {
    /// A detector for `heads`, at the start of a stream.
    pub fn new(heads: Vec<Head>) -> Self {
        let heads = heads
            .into_iter()
            .map(|h| Armed {
                refractory_hops: refractory_hops(h.info.refractory_seconds) as u64,
                scorer: Scorer::new(h),
                last_fire: None,
            })
            .collect();
        let mut d = Detector {
            heads,
            embeddings: 0,
            recent: Vec::with_capacity(HEAD_WINDOW),
            audio: AudioHistory::new(0.0),
            cepstra: Cepstra::new(),
        };
        d.keep_audio();
        d
    }

    /// Keeps audio for the checks if any head has templates.
    fn keep_audio(&mut self) {
        let want = self.heads().any(|h| h.templates.is_some());
        if want != (self.audio.keeps() > 0) {
            // Stream times go on from where the old history was.
            let consumed = self.audio.seconds();
            self.audio = AudioHistory::new(if want { KEEP_SECONDS } else { 0.0 });
            self.audio.skip_to(consumed);
        }
    }

    /// Takes the stream's next samples (16 kHz), before the embeddings they complete are
    /// pushed: the audio the templates' checks read.
    pub fn audio(&mut self, samples: &[f32]) {
        self.audio.push(samples);
    }

    /// Replaces head `index` (in the order given) by `head` without interrupting the stream:
    /// the new head sees the same recent embeddings the old one saw, so it scores from the next
    /// embedding on; the refractory period of the last detection still holds.
    ///
    /// # Panics
    /// If there is no head `index`.
    pub fn replace(&mut self, index: usize, head: Head) {
        let armed = &mut self.heads[index];
        armed.refractory_hops = refractory_hops(head.info.refractory_seconds) as u64;
        armed.scorer = Scorer::new(head);
        let n = self.recent.len();
        self.keep_audio();
        let oldest = (self.embeddings % HEAD_WINDOW as u64) as usize;
        let armed = &mut self.heads[index];
        for i in 0..n {
            let at = if n < HEAD_WINDOW { i } else { (oldest + i) % n };
            armed.scorer.push(&self.recent[at]);
        }
    }

    /// The heads, in the order given.
    pub fn heads(&self) -> impl Iterator<Item = &Head> {
        self.heads.iter().map(|a| a.scorer.head())
    }

    /// Takes the stream's next embedding; appends a detection for each head whose score reaches
    /// its threshold outside its refractory period — for a head with templates, its score after
    /// their check ([`crate::model::templates::Templates::check`], on the audio given to
    /// [`Detector::audio`], which must already hold the samples this embedding was made from).
    /// Returns the first head's score of this step (`None` while the first window fills): the
    /// network's, before any check.
    pub fn push(&mut self, e: &Embedding, out: &mut Vec<Detection>) -> Option<f32> {
        let k = self.embeddings;
        if self.recent.len() < HEAD_WINDOW {
            self.recent.push(*e);
        } else {
            self.recent[(k % HEAD_WINDOW as u64) as usize] = *e;
        }
        self.embeddings += 1;
        let mut first = None;
        for (i, armed) in self.heads.iter_mut().enumerate() {
            let Some(score) = armed.scorer.push(e) else {
                continue;
            };
            let head = armed.scorer.head();
            if i == 0 {
                first = Some(score);
            }
            let ready = armed
                .last_fire
                .is_none_or(|t| k >= t + armed.refractory_hops);
            if score < head.info.threshold || !ready {
                continue;
            }
            // Only a candidate that would fire is checked against the templates: the check
            // never raises a score.
            let score = match &head.templates {
                Some(t) => {
                    let end = seconds_of(samples_at_embedding(k));
                    let audio = self.audio.between(end - QUERY_SECONDS, end);
                    t.check(&mut self.cepstra, score, &audio)
                }
                None => score,
            };
            if score >= head.info.threshold {
                armed.last_fire = Some(k);
                out.push(Detection {
                    word: head.info.word.clone(),
                    time: time_of_embedding(k),
                    score,
                });
            }
        }
        first
    }

    /// Starts a new stream.
    pub fn reset(&mut self) {
        self.embeddings = 0;
        self.recent.clear();
        self.audio.skip_to(0.0);
        for a in &mut self.heads {
            a.scorer.reset();
            a.last_fire = None;
        }
    }
}
