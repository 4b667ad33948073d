//! The evaluation protocol: held-out clips in long streams, clean and at 10 dB SNR in real
//! background; hits within [clip start, clip end + 0.5 s]; false alarms per hour on negative
//! audio the head never saw.

use std::path::PathBuf;

use crate::audio::wav::read_wav;
use crate::backbone::Backbone;
use crate::data::cache::{Cache, cache_key};
use crate::data::folders::{Split, hash_file, wav_files};
use crate::data::jobs::{Job, embed_jobs};
use crate::data::prep::noise_scale;
use crate::metrics::{false_alarms_per_hour, fire_indices, miss_rate};
use crate::model::head::{Head, score_all};
use crate::progress::Progress;
use crate::timeline::{HEAD_WINDOW, refractory_hops, samples_at_embedding};
use crate::{Error, Result};

/// Silence before each clip in a positive stream (s).
const BEFORE: f64 = 0.5;
/// Silence after each clip (s).
const AFTER: f64 = 1.5;
/// A detection counts up to this long after the clip ends (s).
const LATE: f64 = 0.5;
/// Clips per stream (each stream is one job, so streams run in parallel).
const CLIPS_PER_STREAM: usize = 25;
/// Signal-to-noise ratio of the mixed condition (dB).
const SNR_DB: f64 = 10.0;

/// Results of one evaluation.
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// Positive clips (each appears twice: clean and mixed).
    pub clips: usize,
    /// Hours of negative audio.
    pub negative_hours: f64,
    /// The head's threshold.
    pub threshold: f32,
    /// Miss rate at the threshold, clean and mixed together.
    pub miss_rate: f64,
    /// Miss rate on the clean streams.
    pub miss_rate_clean: f64,
    /// Miss rate on the 10 dB streams.
    pub miss_rate_noisy: f64,
    /// False alarms per hour at the threshold.
    pub fa_per_hour: f64,
    /// Detection latency at the threshold, over the hits: seconds from the end of the word
    /// (found by the VAD) to the detection, as (median, 90th percentile); `None` without hits.
    pub latency: Option<(f64, f64)>,
    /// (threshold, miss rate, false alarms per hour) across thresholds: the DET curve.
    pub curve: Vec<(f32, f64, f64)>,
    /// Negative files that could not be read, with the reason.
    pub skipped: Vec<String>,
    /// Where the head came closest to firing in each negative file, highest first: what to
    /// listen to, and to add as negatives.
    pub highest_negatives: Vec<NegativePeak>,
}

/// The highest score a head gave one negative file.
#[derive(Debug, Clone, PartialEq)]
pub struct NegativePeak {
    /// The file.
    pub path: PathBuf,
    /// Seconds into the file when that score was produced.
    pub seconds: f64,
    /// The score.
    pub score: f32,
    /// False alarms in this file at the head's threshold.
    pub alarms: usize,
}

/// What to evaluate on: folders (searched recursively) or files.
#[derive(Debug, Clone, Default)]
pub struct EvalData {
    /// Clips of the word.
    pub positives: Vec<PathBuf>,
    /// Audio without the word, for false alarms per hour.
    pub negatives: Vec<PathBuf>,
    /// Background mixed into the 10 dB streams; empty means the negatives.
    pub background: Vec<PathBuf>,
    /// Which half of every folder.
    pub split: Split,
}

/// Runs the protocol for `head` on `data`; `tick(stage, done, total)` reports progress (the
/// stages: embedding the audio, then for a head with templates checking its candidates).
pub fn evaluate(
    backbone: &Backbone,
    head: &Head,
    data: &EvalData,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    let EvalData {
        positives,
        negatives,
        background,
        split,
    } = data;
    let split = *split;
    let pos_files = wav_files(positives, split)?;
    let mut skipped = Vec::new();
    // Hours of real audio, from the headers (the padding between files is not counted).
    let mut negative_hours = 0.0;
    let mut neg_samples = Vec::new();
    let neg_files: Vec<PathBuf> = wav_files(negatives, split)?
        .into_iter()
        .filter(|p| match crate::audio::wav::WavFile::open(p) {
            Ok(w) => {
                negative_hours += w.info().seconds() / 3600.0;
                neg_samples.push(w.info().samples_at_16k());
                true
            }
            Err(e) => {
                skipped.push(e.to_string());
                false
            }
        })
        .collect();
    if pos_files.is_empty() || neg_files.is_empty() {
        return Err(Error::Data(format!(
            "evaluation needs positive and negative WAV files: found {} and {}",
            pos_files.len(),
            neg_files.len()
        )));
    }
    let pos_hashes = pos_files
        .iter()
        .map(|p| hash_file(p))
        .collect::<Result<Vec<_>>>()?;
    let neg_hashes = neg_files
        .iter()
        .map(|p| hash_file(p))
        .collect::<Result<Vec<_>>>()?;
    let mut jobs = Vec::new();
    // Negative files, padded as in training so their cache entries are shared.
    for ((path, hash), &samples) in neg_files.iter().zip(&neg_hashes).zip(&neg_samples) {
        jobs.push(crate::data::prep::negative_job(
            backbone, path, hash, samples,
        ));
    }
    let n_neg = jobs.len();
    // Positive streams: clean, then mixed with the negatives' audio (cycled) at 10 dB.
    let groups: Vec<Vec<usize>> = (0..pos_files.len())
        .collect::<Vec<_>>()
        .chunks(CLIPS_PER_STREAM)
        .map(|c| c.to_vec())
        .collect();
    // Background for the 10 dB streams: `background` (same split), else the negatives.
    let (bg_list, bg_hashes) = if background.is_empty() {
        (neg_files.clone(), neg_hashes.clone())
    } else {
        let files: Vec<PathBuf> = wav_files(background, split)?
            .into_iter()
            .filter(|p| crate::audio::wav::WavFile::open(p).is_ok_and(|w| w.info().frames > 0))
            .collect();
        if files.is_empty() {
            return Err(Error::Data(format!(
                "no usable WAV files in the background folder(s) {}",
                background
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let hashes = files
            .iter()
            .map(|p| hash_file(p))
            .collect::<Result<Vec<_>>>()?;
        (files, hashes)
    };
    let bg_files = std::sync::Arc::new(bg_list);
    for noisy in [false, true] {
        for (gi, group) in groups.iter().enumerate() {
            let mut recipe = if noisy {
                b"eval-noisy-v3\0".to_vec()
            } else {
                b"eval-clean\0".to_vec()
            };
            for &i in group {
                recipe.extend_from_slice(&pos_hashes[i]);
            }
            let bg_index = (gi * 7919) % bg_files.len();
            if noisy {
                recipe.extend_from_slice(&bg_hashes[bg_index]);
            }
            let paths: Vec<PathBuf> = group.iter().map(|&i| pos_files[i].clone()).collect();
            let bg_files = bg_files.clone();
            jobs.push(Job {
                key: cache_key(backbone, &recipe),
                // Not known before the clips are read; made after the negative files.
                samples: 0,
                make: Box::new(move || {
                    let (stream, placed) = build_stream(&paths)?;
                    if !noisy {
                        return Ok(stream);
                    }
                    let mut bg = Vec::new();
                    let mut j = bg_index;
                    while bg.len() < stream.len() {
                        bg.extend(read_wav(&bg_files[j % bg_files.len()])?);
                        j += 1;
                        if j - bg_index > bg_files.len() && bg.is_empty() {
                            return Err(Error::Data("negative audio is empty".into()));
                        }
                    }
                    Ok(mix_at_snr(&stream, &placed, &bg))
                }),
            });
        }
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = jobs.len();
    progress.begin("embedding audio", total);
    let embedded = embed_jobs(backbone, cache, &jobs, &|| {
        progress.at(
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            total,
        )
    })?;
    progress.end();

    let refractory = refractory_hops(head.info.refractory_seconds);
    let mut neg_scores: Vec<Vec<f32>> = embedded[..n_neg]
        .iter()
        .map(|e| score_all(head, e))
        .collect();
    let mut pos_scores: Vec<Vec<f32>> = embedded[n_neg..]
        .iter()
        .map(|e| score_all(head, e))
        .collect();
    // A head with templates: every candidate checked, as the listener does.
    if let Some(t) = &head.templates {
        let mut all: Vec<&mut Vec<f32>> =
            neg_scores.iter_mut().chain(pos_scores.iter_mut()).collect();
        let from = crate::model::templates::MIN_SCORE.min(head.info.threshold);
        gate_streams(t, &jobs, &mut all, from, progress)?;
    }
    // Each positive clip's best score inside its hit window, clean and noisy, and how long
    // after the word's end the first score at the threshold came.
    let mut best = [Vec::new(), Vec::new()];
    let mut latencies = Vec::new();
    for (si, scores) in pos_scores.iter().enumerate() {
        let noisy = si >= groups.len();
        let group = &groups[si % groups.len()];
        let paths: Vec<PathBuf> = group.iter().map(|&i| pos_files[i].clone()).collect();
        let spans = clip_spans(&paths)?;
        for (start, end, word_end) in spans {
            let lo = start;
            let hi = end + crate::timeline::samples_of(LATE) as u64;
            let window: Vec<(u64, f32)> = scores
                .iter()
                .enumerate()
                .map(|(i, &s)| (samples_at_embedding((i + HEAD_WINDOW - 1) as u64), s))
                .filter(|&(t, _)| t >= lo && t <= hi)
                .collect();
            let m = window.iter().map(|&(_, s)| s).fold(0.0f32, f32::max);
            best[usize::from(noisy)].push(m);
            if let Some(&(t, _)) = window.iter().find(|&&(_, s)| s >= head.info.threshold) {
                latencies.push((t as f64 - word_end as f64) / crate::timeline::RATE);
            }
        }
    }
    let fa = |t: f32| false_alarms_per_hour(&neg_scores, negative_hours, t, refractory);
    let miss = |t: f32| (miss_rate(&best[0], t) + miss_rate(&best[1], t)) / 2.0;
    // Logits -4 to 14 in steps of 0.08, up to where f32 scores stop resolving (≈ 1 − 1e-6), so
    // a head whose loudest false alarm scores 0.99999 still shows where it falls silent; steps
    // that round to the same f32 threshold are listed once.
    let mut curve: Vec<(f32, f64, f64)> = (0..=225)
        .map(|i| {
            let t = crate::model::logit::sigmoid(-4.0 + i as f32 * 0.08);
            (t, miss(t), fa(t))
        })
        .collect();
    curve.dedup_by(|b, a| a.0 == b.0);
    let t = head.info.threshold;
    let mut highest_negatives: Vec<NegativePeak> = neg_scores
        .iter()
        .zip(&neg_files)
        .filter_map(|(scores, path)| {
            let (i, &score) = scores
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))?;
            let end = samples_at_embedding(crate::timeline::embedding_of_score(i) as u64);
            Some(NegativePeak {
                path: path.clone(),
                seconds: (crate::timeline::seconds_of(end) - crate::data::prep::PRE_PAD).max(0.0),
                score,
                alarms: fire_indices(scores, t, refractory).len(),
            })
        })
        .collect();
    highest_negatives.sort_by(|a, b| b.score.total_cmp(&a.score));
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let latency = (!latencies.is_empty()).then(|| (quantile(0.5), quantile(0.9)));
    Ok(EvalReport {
        latency,
        clips: pos_files.len(),
        negative_hours,
        threshold: t,
        miss_rate: miss(t),
        miss_rate_clean: miss_rate(&best[0], t),
        miss_rate_noisy: miss_rate(&best[1], t),
        fa_per_hour: fa(t),
        curve,
        skipped,
        highest_negatives,
    })
}

/// One positive clip placed in its stream.
struct Placed {
    clip: Vec<f32>,
    /// First sample of the clip in the stream.
    start: usize,
    /// Where the word is in the stream (by [`crate::audio::vad`]; the whole clip when it finds none).
    word: std::ops::Range<usize>,
}

/// The positive stream's layout: each clip with 0.5 s of silence before and 1.5 s after.
/// Returns the clips where they go and the stream's length.
fn place_clips(paths: &[PathBuf]) -> Result<(Vec<Placed>, usize)> {
    let mut at = 0;
    let mut placed = Vec::with_capacity(paths.len());
    for p in paths {
        let clip = read_wav(p)?;
        let start = at + crate::timeline::samples_of(BEFORE);
        let word = match crate::audio::vad::locate_word(&clip) {
            Ok(span) => start + span.start..start + span.end,
            Err(_) => start..start + clip.len(),
        };
        at = start + clip.len() + crate::timeline::samples_of(AFTER);
        placed.push(Placed { clip, start, word });
    }
    Ok((placed, at))
}

/// Where each clip is in its stream: (start, end, end of the word), in 16 kHz samples.
fn clip_spans(paths: &[PathBuf]) -> Result<Vec<(u64, u64, u64)>> {
    let (placed, _) = place_clips(paths)?;
    Ok(placed
        .iter()
        .map(|p| {
            let end = p.start + p.clip.len();
            (p.start as u64, end as u64, p.word.end as u64)
        })
        .collect())
}

/// The positive stream and where each clip and its word are in it.
fn build_stream(paths: &[PathBuf]) -> Result<(Vec<f32>, Vec<Placement>)> {
    let (placed, len) = place_clips(paths)?;
    let mut stream = vec![0.0; len];
    let mut placements = Vec::with_capacity(placed.len());
    for p in placed {
        let clip = p.start..p.start + p.clip.len();
        stream[clip.clone()].copy_from_slice(&p.clip);
        placements.push(Placement { clip, word: p.word });
    }
    Ok((stream, placements))
}

/// Where one clip and its word are in a positive stream (samples).
struct Placement {
    clip: std::ops::Range<usize>,
    word: std::ops::Range<usize>,
}

/// Background level is held from this long before each clip (samples, 0.25 s)…
const HOLD_BEFORE: usize = 4_000;
/// …to this long after it (0.5 s, the end of its hit window); in the gaps between, the level
/// glides from one clip's to the next.
const HOLD_AFTER: usize = 8_000;

/// Mixes `bg` into the stream `x` so that every clip's word is [`SNR_DB`] above the background
/// under it: each clip sets its own noise level (recordings differ by tens of dB, so one level
/// for the whole stream would bury the quiet ones and barely touch the loud ones), held from
/// 0.25 s before the clip to 0.5 s after it and changing linearly in the gaps between clips.
fn mix_at_snr(x: &[f32], clips: &[Placement], bg: &[f32]) -> Vec<f32> {
    // (first sample, last sample, noise scale) of each clip's held stretch.
    let held: Vec<(usize, usize, f32)> = clips
        .iter()
        .map(|c| {
            let from = c.clip.start.saturating_sub(HOLD_BEFORE);
            let to = (c.clip.end + HOLD_AFTER).min(x.len());
            let scale = noise_scale(&x[c.word.clone()], &bg[from..to], SNR_DB).unwrap_or(0.0);
            (from, to, scale)
        })
        .collect();
    let mut gain = vec![held.first().map_or(0.0, |h| h.2); x.len()];
    for (i, &(from, to, scale)) in held.iter().enumerate() {
        gain[from..to].fill(scale);
        let (end, next) = match held.get(i + 1) {
            Some(&(next_from, _, next_scale)) => (next_from, next_scale),
            None => (x.len(), scale),
        };
        let span = end.saturating_sub(to).max(1) as f32;
        for (j, g) in gain[to..end.max(to)].iter_mut().enumerate() {
            let u = j as f32 / span;
            *g = scale + (next - scale) * u;
        }
    }
    x.iter()
        .zip(bg)
        .zip(&gain)
        .map(|((a, b), g)| (a + b * g).clamp(-1.0, 1.0))
        .collect()
}

/// Gates each stream's scores from `from` up with `templates` (see
/// [`crate::model::templates::Templates::gate_all`]);
/// `scores[i]` belongs to `jobs[i]`, whose audio is made again only when it has a candidate.
/// On every core.
fn gate_streams(
    templates: &crate::model::templates::Templates,
    jobs: &[Job],
    scores: &mut [&mut Vec<f32>],
    from: f32,
    progress: &dyn Progress,
) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut work: Vec<(usize, &mut Vec<f32>)> = scores
        .iter_mut()
        .enumerate()
        .filter(|(_, s)| s.iter().any(|&v| v >= from))
        .map(|(i, s)| (i, &mut **s))
        .collect();
    let per = work.len().div_ceil(threads).max(1);
    let total = work.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    progress.begin("checking candidates against the templates", total);
    let result = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks_mut(per)
            .map(|part| {
                scope.spawn(move || -> Result<()> {
                    for (i, s) in part.iter_mut() {
                        let samples = (jobs[*i].make)()?;
                        templates.gate_all(s, &samples, from);
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress.at(n, total);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a gating thread panicked"))
    });
    progress.end();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::prep::mean_power as power;

    /// Two real clips 40 dB apart in level, real speech as the background: each word ends up
    /// 10 dB above the background under it, and the background follows each clip's level.
    #[test]
    fn every_clip_is_mixed_at_its_own_snr() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let clips = wav_files(&[dir.join("train/computer")], Split::All).unwrap();
        let loud = read_wav(&clips[0]).unwrap();
        let quiet: Vec<f32> = read_wav(&clips[1])
            .unwrap()
            .iter()
            .map(|v| v * 0.01)
            .collect();
        let gap = 24_000;
        let mut x = vec![0.0; gap];
        let mut placements = Vec::new();
        for clip in [&loud, &quiet] {
            let start = x.len();
            let span = crate::audio::vad::locate_word(clip).unwrap();
            x.extend_from_slice(clip);
            placements.push(Placement {
                clip: start..x.len(),
                word: start + span.start..start + span.end,
            });
            x.extend(std::iter::repeat_n(0.0, gap));
        }
        let speech = read_wav(&dir.join("speech.wav")).unwrap();
        let bg: Vec<f32> = speech.iter().cycle().take(x.len()).copied().collect();
        let mixed = mix_at_snr(&x, &placements, &bg);
        let noise: Vec<f32> = mixed.iter().zip(&x).map(|(m, c)| m - c).collect();
        let mut noise_db = Vec::new();
        for p in &placements {
            let held = p.clip.start - HOLD_BEFORE..p.clip.end + HOLD_AFTER;
            let snr = 10.0 * (power(&x[p.word.clone()]) / power(&noise[held.clone()])).log10();
            assert!((snr - SNR_DB).abs() < 0.05, "SNR {snr:.2} dB, not {SNR_DB}");
            noise_db.push(10.0 * power(&noise[held]).log10());
        }
        let word_db: Vec<f64> = placements
            .iter()
            .map(|p| 10.0 * power(&x[p.word.clone()]).log10())
            .collect();
        let (dn, dw) = (noise_db[0] - noise_db[1], word_db[0] - word_db[1]);
        assert!(
            dw > 30.0 && (dn - dw).abs() < 0.1,
            "noise moved {dn:.1} dB, words {dw:.1} dB"
        );
    }
}
