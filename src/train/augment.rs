//! Augmented copies of the positive clips: real background mixed in at a random SNR, gain and
//! shift, each a recipe of its own in the embedding cache.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::audio::wav::read_wav;
use crate::backbone::Backbone;
use crate::data::cache::cache_key;
use crate::data::folders::name_fraction;
use crate::data::jobs::Job;
use crate::data::prep::{PRE_PAD, mix, pad_samples, without_blocks};
use crate::timeline::samples_of;
use crate::train::clips::{Positive, unused_lead};
use crate::train::rng::Rng;
use crate::{Error, Result};

/// Range of the signal-to-noise ratio (dB) at which background is mixed into the augmented
/// copies, drawn uniformly. Reaching up to 35 dB, a third of the copies are nearly clean: with
/// 0–20 dB every copy was audibly noisy and the clean clip was 1 in 7 of what the head saw,
/// and held-out clean clips missed more than noisy ones (`benches/accuracy.sh`, 3 seeds: mean
/// miss at ≤ 0.25 FA/h computer 4.3 → 1.9 %, athena 24.0 → 20.4 %; jarvis 5.6 → 6.4 %).
pub(crate) const SNR_DB: (f64, f64) = (0.0, 35.0);

/// A recording the augmentation background can be drawn from.
#[derive(Debug, Clone)]
pub(crate) struct PoolFile {
    pub(crate) path: PathBuf,
    /// Content hash, recorded in each copy's recipe (its cache key).
    pub(crate) hash: [u8; 32],
    /// Length at 16 kHz, without the held-out blocks.
    pub(crate) samples: usize,
    /// Its blocks held out for validation (empty when none): left out of the pool.
    pub(crate) held_out: Vec<bool>,
    /// Which of the given folders it is in.
    pub(crate) folder: Option<usize>,
}

/// The background the copies are mixed with: up to 10 minutes, taken evenly from each folder,
/// its audio read once, by the first copy made that needs it (none when every copy is cached).
pub(crate) struct Pool {
    files: Vec<PoolFile>,
    audio: Arc<OnceLock<Result<Vec<Vec<f32>>, String>>>,
    paths: Arc<Vec<(PathBuf, Vec<bool>)>>,
}

impl Pool {
    /// Chooses from `candidates` in each of `folders`: files of 1 s or more in file-name-hash
    /// order, until the folder's share of 10 minutes is reached.
    pub(crate) fn choose(candidates: &[PoolFile], folders: usize) -> Pool {
        let per_folder = samples_of(600.0) / folders.max(1);
        let mut files = Vec::new();
        for folder in 0..folders {
            let mut order: Vec<&PoolFile> = candidates
                .iter()
                .filter(|c| c.folder == Some(folder) && c.samples >= samples_of(1.0))
                .collect();
            order.sort_by(|a, b| {
                name_fraction(&a.path, "pool").total_cmp(&name_fraction(&b.path, "pool"))
            });
            let mut taken = 0;
            for c in order {
                if taken >= per_folder {
                    break;
                }
                files.push(c.clone());
                taken += c.samples;
            }
        }
        let paths = Arc::new(
            files
                .iter()
                .map(|c| (c.path.clone(), c.held_out.clone()))
                .collect(),
        );
        Pool {
            files,
            audio: Arc::new(OnceLock::new()),
            paths,
        }
    }
}

/// One augmented copy of a positive clip: where it is placed, how loud, and which background
/// at which SNR — everything its cache key records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Copy {
    /// Samples before the clip (the padding with the shift).
    pub(crate) pre: usize,
    /// Samples after it.
    pub(crate) post: usize,
    /// Samples dropped from the start after mixing ([`unused_lead`]).
    pub(crate) trim: usize,
    gain_db: f32,
    snr_db: f32,
    /// Pool file and the offset into its kept audio.
    noise: Option<(usize, usize)>,
}

impl Copy {
    /// Draws a copy of `p` from `rng`: shift ±0.5 s, gain −12…+6 dB, SNR in [`SNR_DB`], then
    /// the background file and offset (in that order, so the same seed gives the same copies).
    pub(crate) fn draw(rng: &mut Rng, p: &Positive, post: usize, pool: &Pool) -> Copy {
        let shift = rng.range(-0.5, 0.5);
        let pre = samples_of(PRE_PAD + 0.5 + shift);
        let gain_db = rng.range(-12.0, 6.0) as f32;
        let snr_db = rng.range(SNR_DB.0, SNR_DB.1) as f32;
        let noise = if pool.files.is_empty() {
            None
        } else {
            let which = rng.below(pool.files.len());
            let need = pre + p.len + post;
            let avail = pool.files[which].samples;
            let offset = if avail > need {
                rng.below(avail - need)
            } else {
                0
            };
            Some((which, offset))
        };
        Copy {
            pre,
            post,
            trim: unused_lead(p, pre),
            gain_db,
            snr_db,
            noise,
        }
    }

    /// The embedding job of this copy of `p`.
    pub(crate) fn job(&self, backbone: &Backbone, p: &Positive, pool: &Pool) -> Job {
        let c = *self;
        let mut recipe = b"augmented\0".to_vec();
        recipe.extend_from_slice(&p.hash);
        for v in [c.pre as u64, c.post as u64, c.trim as u64] {
            recipe.extend_from_slice(&v.to_le_bytes());
        }
        recipe.extend_from_slice(&c.gain_db.to_le_bytes());
        recipe.extend_from_slice(&c.snr_db.to_le_bytes());
        if let Some((which, offset)) = c.noise {
            let file = &pool.files[which];
            recipe.extend_from_slice(&file.hash);
            recipe.extend_from_slice(&(offset as u64).to_le_bytes());
            // The offset is into the audio left after these blocks were taken out.
            if !file.held_out.is_empty() {
                recipe.extend_from_slice(b"held out\0");
                recipe.extend(file.held_out.iter().map(|&v| u8::from(v)));
            }
        }
        let (audio, paths, span, path) = (
            pool.audio.clone(),
            pool.paths.clone(),
            p.span,
            p.path.clone(),
        );
        Job {
            key: cache_key(backbone, &recipe),
            make: Box::new(move || {
                let clip = read_wav(&path)?;
                let mut x = pad_samples(&clip, c.pre, c.post);
                let g = 10f32.powf(c.gain_db / 20.0);
                for v in &mut x {
                    *v = (*v * g).clamp(-1.0, 1.0);
                }
                if let Some((which, offset)) = c.noise {
                    let pool = audio
                        .get_or_init(|| {
                            paths
                                .iter()
                                .map(|(p, held_out)| {
                                    let x = read_wav(p).map_err(|e| e.to_string())?;
                                    Ok(without_blocks(x, held_out))
                                })
                                .collect()
                        })
                        .as_ref()
                        .map_err(|e| Error::Data(e.clone()))?;
                    mix(
                        &mut x,
                        &pool[which],
                        offset,
                        c.pre + span.start..c.pre + span.end,
                        c.snr_db,
                    );
                }
                // After mixing, so the noise's level (set over the whole copy) and so every
                // kept sample are as they would be untrimmed.
                x.drain(..c.trim);
                Ok(x)
            }),
            samples: c.pre + p.len + c.post - c.trim,
        }
    }
}
