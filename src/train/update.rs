//! Updating a head with clips it missed and audio it wrongly fired on, replaying its training
//! data so it keeps what it knew.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::audio::vad::locate_word;
use crate::audio::wav::{WavFile, read_wav};
use crate::backbone::{Backbone, Embedding};
use crate::data::cache::cache_key;
use crate::data::folders::{Split, hash_file, wav_files};
use crate::data::jobs::{Job, embed_jobs};
use crate::data::prep::{POST_PAD, PRE_PAD, negative_job, pad_with_own_sound};
use crate::model::head::Head;
use crate::progress::Progress;
use crate::train::calibrate::{calibrate, threshold_keeping_hits};
use crate::train::clips::{Clip, Positive, label};
use crate::train::fit::fit;
use crate::train::options::{TrainOptions, creation_time, list};
use crate::train::replay::{Replay, ReplayEntry};
use crate::train::rng::Rng;
use crate::{Error, Result};

/// What an update produced.
#[derive(Debug, Clone)]
pub struct UpdateReport {
    /// The updated head.
    pub head: Head,
    /// The training data now behind it.
    pub replay: Replay,
    /// The threshold the validation data alone gave; the head's is never lower than it, nor
    /// lower than the old one beyond what keeps the old positives caught.
    pub calibrated: f32,
    /// New positive clips used.
    pub new_positives: usize,
    /// New negative files used.
    pub new_negatives: usize,
    /// Clips skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Replayed entries missing from the cache.
    pub missing: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Fine-tunes `head` on new clips — missed wake words (`opts.positives`) and false alarms
/// (`opts.negatives`) — starting from its weights and replaying its cached training data so
/// old knowledge is kept; then recalibrates the threshold, lowering it at most as far as keeps
/// every old positive the old threshold caught (`threshold_keeping_hits`).
pub fn update(
    backbone: &Backbone,
    head: &Head,
    replay: &Replay,
    opts: &TrainOptions,
    progress: &dyn Progress,
) -> Result<UpdateReport> {
    let started = Instant::now();
    if opts.positives.is_empty() && opts.negatives.is_empty() {
        return Err(Error::Data(
            "an update needs new clips: --positive (missed wake words) and/or --negative (false alarms)"
                .into(),
        ));
    }
    if replay.backbone_sha256 != backbone.sha256() {
        return Err(Error::Data(
            "the replay manifest was made with another backbone; retrain with hark train".into(),
        ));
    }
    // The old data, from the cache: every positive, the validation split, and the negatives
    // that were hardest for the head; the easy negatives teach nothing new.
    let mut clips = Vec::with_capacity(replay.entries.len() + 64);
    let mut missing = 0;
    let mut loaded = Vec::new();
    // Blocks of one recording share a cache entry: read it once.
    let mut recordings: std::collections::HashMap<[u8; 32], Option<Vec<Embedding>>> =
        std::collections::HashMap::new();
    for (ei, e) in replay.entries.iter().enumerate() {
        if !(e.positive.is_some() || e.validation || e.hard) {
            continue;
        }
        loaded.push(ei);
        let mut key = [0u8; 32];
        let ok = e.key.len() == 64
            && (0..32).all(|i| {
                u8::from_str_radix(&e.key[2 * i..2 * i + 2], 16)
                    .map(|b| key[i] = b)
                    .is_ok()
            });
        let embeddings = match e.range {
            _ if !ok => None,
            None => opts.cache.get(&key),
            Some([a, b]) => recordings
                .entry(key)
                .or_insert_with(|| opts.cache.get(&key))
                .as_ref()
                .and_then(|all| all.get(a..b))
                .map(<[Embedding]>::to_vec),
        };
        match embeddings {
            Some(embeddings) => clips.push(Clip {
                key,
                range: e.range,
                fresh: false,
                embeddings,
                positive: e.positive.map(|[a, b]| a..b),
                hit: e.hit.map(|[a, b]| a..b),
                late: e.late,
                validation: e.validation,
                seconds: e.seconds,
                distances: e.distances.clone(),
            }),
            None => missing += 1,
        }
    }
    if missing * 2 > loaded.len() {
        return Err(Error::Data(format!(
            "{missing} of {} cached training embeddings are gone from the cache; retrain with hark train",
            loaded.len()
        )));
    }

    // The new clips: positives clean and in two gain/shift copies (padded with their own
    // sound), negatives as they are.
    let post = crate::timeline::samples_of(POST_PAD);
    let mut skipped = Vec::new();
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    let mut rng = Rng::new(opts.seed ^ 0x0DA7E);
    let pos_files = wav_files(&opts.positives, Split::All)?;
    let mut new_positives = 0;
    // Each new positive also becomes a template (when the head has them): a wake word the
    // check turned away is then near one.
    let mut cepstra = crate::features::cepstra::Cepstra::new();
    let mut new_templates = Vec::new();
    for path in &pos_files {
        let p = match read_wav(path).and_then(|x| {
            locate_word(&x)
                .map(|span| (span, x))
                .map_err(|e| Error::audio(path, e.to_string()))
        }) {
            Ok((span, x)) => {
                if head.templates.is_some() {
                    new_templates.extend(cepstra.template(&x, span.start..span.end));
                }
                Positive {
                    path: path.clone(),
                    hash: hash_file(path)?,
                    span,
                    len: x.len(),
                    validation: false,
                }
            }
            Err(e) => {
                skipped.push((path.clone(), e.to_string()));
                continue;
            }
        };
        new_positives += 1;
        for copy in 0..3 {
            let (shift, gain_db) = if copy == 0 {
                (0.0, 0.0f32)
            } else {
                (rng.range(-0.3, 0.3), rng.range(-9.0, 6.0) as f32)
            };
            let pre_c = crate::timeline::samples_of(PRE_PAD + 0.3 + shift);
            // Padded with the clip's own sound (`pad_with_own_sound`), not zeros.
            let mut recipe = b"update-positive\0own-sound\0".to_vec();
            recipe.extend_from_slice(&p.hash);
            recipe.extend_from_slice(&(pre_c as u64).to_le_bytes());
            recipe.extend_from_slice(&gain_db.to_le_bytes());
            let (path, span) = (p.path.clone(), p.span);
            jobs.push(Job {
                key: cache_key(backbone, &recipe),
                make: Box::new(move || {
                    let g = 10f32.powf(gain_db / 20.0);
                    let x: Vec<f32> = read_wav(&path)?
                        .iter()
                        .map(|v| (v * g).clamp(-1.0, 1.0))
                        .collect();
                    Ok(pad_with_own_sound(&x, span.start..span.end, pre_c, post))
                }),
                samples: pre_c + p.len + post,
            });
            let (pos, hit, late) = label(&p, pre_c);
            labels.push((Some(pos), Some(hit), Some(late), 0.0));
        }
    }
    let neg_files = wav_files(&opts.negatives, Split::All)?;
    let mut new_negatives = 0;
    for path in &neg_files {
        let info = match WavFile::open(path) {
            Ok(w) => w.info(),
            Err(e) => {
                skipped.push((path.clone(), e.to_string()));
                continue;
            }
        };
        new_negatives += 1;
        jobs.push(negative_job(
            backbone,
            path,
            &hash_file(path)?,
            info.samples_at_16k(),
        ));
        labels.push((None, None, None, info.seconds()));
    }
    if jobs.is_empty() {
        return Err(Error::Data(format!(
            "no usable new clip in {}",
            list(&[opts.positives.clone(), opts.negatives.clone()].concat())
        )));
    }
    let embedded = embed_jobs(backbone, &opts.cache, &jobs, &|| {})?;
    for ((embeddings, (positive, hit, late, seconds)), job) in
        embedded.into_iter().zip(labels).zip(&jobs)
    {
        clips.push(Clip {
            key: job.key,
            range: None,
            fresh: true,
            embeddings,
            positive,
            hit,
            late,
            validation: false,
            seconds,
            distances: Vec::new(),
        });
    }

    let mut summary = head.info.training.clone();
    summary.positive_clips += new_positives;
    summary.negative_files += new_negatives;
    summary.negative_seconds += clips
        .iter()
        .filter(|c| c.fresh)
        .map(|c| c.seconds)
        .sum::<f64>();
    summary.updates += 1;
    let weights = fit(
        &mut clips,
        opts,
        &mut summary,
        Some(&head.weights),
        progress,
        "updating",
    )?;
    let target = head.info.training.target_fa_per_hour;
    // Not as low as the validation negatives alone would put it: they are a fraction of an
    // hour, and an update that trained false alarms out scores them lower, so they alone would
    // often loosen the threshold (a ~1 h head: 0.92 → 0.50, where held-out audio then fired
    // twice as often). Lowered only as far as keeps the old positives it caught, which the
    // update scores a little lower too; `hark set-threshold` lowers it further.
    let floor = threshold_keeping_hits(&head.weights, &weights, &clips, head.info.threshold);
    let cut = head.templates.as_ref().map(|t| t.cut);
    let calibration = calibrate(&weights, &clips, target, floor, cut);
    summary.validation_miss_rate = calibration.miss;
    summary.validation_fa_per_hour = calibration.fa_per_hour;
    summary.validation_negative_hours = calibration.hours;
    let mut info = head.info.clone();
    info.threshold = calibration.threshold;
    info.created_unix = creation_time();
    info.training = summary;
    let templates = head.templates.clone().map(|mut t| {
        t.added += new_templates.len();
        t.words.extend(new_templates);
        t
    });
    let head = Head {
        info,
        weights,
        templates,
    };
    // Every old entry stays listed (the easy negatives too, for the next retraining); the new
    // clips join them, the new negatives as hard ones.
    let mut replay = replay.clone();
    let fresh_entries = clips
        .iter()
        .filter(|c| c.fresh)
        .map(|c| ReplayEntry::of(c, true));
    replay.entries.extend(fresh_entries);
    Ok(UpdateReport {
        replay,
        head,
        calibrated: calibration.unfloored,
        new_positives,
        new_negatives,
        skipped,
        missing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Loads the head at `path` and the replay manifest beside it, ready for [`update`].
pub fn load_for_update(backbone: &Backbone, path: &Path) -> Result<(Head, Replay)> {
    let head = Head::load(path, Some(backbone.sha256()))?;
    let replay_path = Replay::path_for(path);
    if !replay_path.exists() {
        return Err(Error::Data(format!(
            "{}: not found; updates replay the training data that `hark train` lists there, so retrain this head with hark train",
            replay_path.display()
        )));
    }
    Ok((head, Replay::load(&replay_path)?))
}

impl UpdateReport {
    /// Writes the updated head and manifest over `path` and its `.replay`, keeping the ones they
    /// replace (`old`) as `.prev`. Every write is atomic and the previous version is written
    /// first, so a crash at any point leaves a loadable head and a way back.
    pub fn commit(&self, path: &Path, old: &Head) -> Result<()> {
        crate::model::store::commit(path, &self.head, &self.replay.to_bytes(), old)
    }

    /// How the threshold moved from `old`, for the closing line: "threshold A → B", and when
    /// the validation data alone would have put it lower, what they gave.
    pub fn threshold_change(&self, old: f32) -> String {
        let new = self.head.info.threshold;
        if self.calibrated >= new {
            format!("threshold {old:.4} → {new:.4}")
        } else if new >= old {
            format!(
                "threshold {old:.4} kept (the validation negatives alone gave {:.4}; an update lowers it only to keep the old positives it caught, `hark set-threshold` can)",
                self.calibrated
            )
        } else {
            format!(
                "threshold {old:.4} → {new:.4}, as far as keeps the old positives it caught (the validation negatives alone gave {:.4}; `hark set-threshold` can lower it further)",
                self.calibrated
            )
        }
    }
}
