//! The whole data path, samples → frames → embeddings → scores → events, over any source of
//! audio ([`crate::audio::source::Source`]): a WAV file or a microphone.

use crate::Result;
use crate::audio::source::Source;
use crate::backbone::embedder::Embedder;
use crate::backbone::{Backbone, Embedding};
use crate::detect::detector::{Detection, Detector};
use crate::model::head::Head;
use crate::timeline::{GROUP_HOP, time_of_embedding};

/// One step of the pipeline: an embedding was produced and scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Seconds of audio consumed when it was produced.
    pub time: f64,
    /// Score of the first head (`None` while its first window fills).
    pub score: Option<f32>,
}

/// The streaming pipeline: owns the front end, backbone stream and detector state.
#[derive(Debug)]
pub struct Listener {
    embedder: Embedder,
    detector: Detector,
    fresh: Vec<Embedding>,
    events: Vec<Detection>,
}

impl Listener {
    /// A pipeline running `heads` on one backbone pass.
    pub fn new(backbone: &Backbone, heads: Vec<Head>) -> Result<Self> {
        Ok(Listener {
            embedder: Embedder::new(backbone)?,
            detector: Detector::new(heads),
            fresh: Vec::with_capacity(16),
            events: Vec::with_capacity(4),
        })
    }

    /// The same pipeline with the windowed reference backbone (76 frames per hop, as
    /// openWakeWord runs it): identical results at about seven times the backbone cost. For
    /// benchmarks.
    pub fn windowed(backbone: &Backbone, heads: Vec<Head>) -> Result<Self> {
        Ok(Listener {
            embedder: Embedder::windowed(backbone)?,
            ..Self::new(backbone, heads)?
        })
    }

    /// The heads being run.
    pub fn heads(&self) -> impl Iterator<Item = &Head> {
        self.detector.heads()
    }

    /// Swaps head `index` (in the order given) for `head` between two chunks, keeping the
    /// stream's state (see [`Detector::replace`]).
    pub fn replace_head(&mut self, index: usize, head: Head) {
        self.detector.replace(index, head);
    }

    /// Feeds 16 kHz samples; calls `on_step` for every embedding they complete, with the
    /// detections made at that step.
    pub fn push(
        &mut self,
        samples: &[f32],
        mut on_step: impl FnMut(&Step, &[Detection]) -> Result<()>,
    ) -> Result<()> {
        // One 80-ms group at a time, so the detector's audio never runs far ahead of the
        // embeddings (results do not depend on how the stream is cut).
        for piece in samples.chunks(GROUP_HOP) {
            self.detector.audio(piece);
            self.fresh.clear();
            self.embedder.push(piece, &mut self.fresh)?;
            let first = self.embedder.produced() - self.fresh.len() as u64;
            for (i, e) in self.fresh.iter().enumerate() {
                self.events.clear();
                let score = self.detector.push(e, &mut self.events);
                let step = Step {
                    time: time_of_embedding(first + i as u64),
                    score,
                };
                on_step(&step, &self.events)?;
            }
        }
        Ok(())
    }

    /// Runs a whole source through the pipeline, calling `on_step` as [`Listener::push`] does.
    pub fn run(
        &mut self,
        source: &mut dyn Source,
        mut on_step: impl FnMut(&Step, &[Detection]) -> Result<()>,
    ) -> Result<()> {
        let mut chunk = Vec::with_capacity(8192);
        loop {
            chunk.clear();
            if source.read(&mut chunk)? == 0 {
                return Ok(());
            }
            self.push(&chunk, &mut on_step)?;
        }
    }

    /// Starts a new stream (plans are kept).
    pub fn reset(&mut self) -> Result<()> {
        self.embedder.reset()?;
        self.detector.reset();
        Ok(())
    }
}
