//! How training and evaluation prepare audio: clips padded (with silence or their own sound),
//! noise mixed in at an SNR, and long negative recordings cut into 30-s blocks for the
//! validation split.

use std::path::Path;

use crate::audio::wav::read_wav;
use crate::backbone::Backbone;
use crate::data::cache::cache_key;
use crate::data::folders::name_fraction;
use crate::data::jobs::Job;
use crate::timeline::{EMBEDDING_END, HEAD_WINDOW};

/// Zero padding before each clip (s): the head's 2 s of context starts in silence, as in a
/// stream with pauses between utterances.
pub(crate) const PRE_PAD: f64 = 1.0;
/// Zero padding after each clip (s).
pub(crate) const POST_PAD: f64 = 0.5;
/// The embedding job of a negative file, padded as every clip is (so training, updates and
/// evaluation share its cache entry). `hash` is [`hash_file`] of it, `samples` its length at
/// 16 kHz.
pub(crate) fn negative_job(
    backbone: &Backbone,
    path: &Path,
    hash: &[u8; 32],
    samples: usize,
) -> Job {
    let pre = crate::timeline::samples_of(PRE_PAD);
    let post = crate::timeline::samples_of(POST_PAD);
    let mut recipe = b"negative\0".to_vec();
    recipe.extend_from_slice(hash);
    recipe.extend_from_slice(&(pre as u64).to_le_bytes());
    recipe.extend_from_slice(&(post as u64).to_le_bytes());
    let path = path.to_path_buf();
    Job {
        key: cache_key(backbone, &recipe),
        make: Box::new(move || Ok(pad_samples(&read_wav(&path)?, pre, post))),
        samples: pre + samples + post,
    }
}

/// `x` without the blocks marked in `held_out` (none when it is empty).
pub(crate) fn without_blocks(x: Vec<f32>, held_out: &[bool]) -> Vec<f32> {
    if !held_out.iter().any(|&v| v) {
        return x;
    }
    kept_blocks(held_out, x.len())
        .flat_map(|r| x[r].iter().copied())
        .collect()
}

/// Sample ranges of the blocks not marked in `held_out`, in a file of `samples` samples.
pub(crate) fn kept_blocks(
    held_out: &[bool],
    samples: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = held_out.len();
    (0..n)
        .filter(|&b| !held_out[b])
        .map(move |b| block_samples(b, n, samples))
}

pub(crate) fn pad_samples(samples: &[f32], pre: usize, post: usize) -> Vec<f32> {
    let mut v = vec![0.0; pre + samples.len() + post];
    v[pre..pre + samples.len()].copy_from_slice(samples);
    v
}

/// `samples` (a clip whose word is at `word`) with `pre` samples before and `post` after,
/// filled with the clip's own sound from before and after the word, mirrored back and forth
/// from the clip's edges, instead of digital silence. A noisy recording padded with zeros
/// starts with an onset no microphone stream has, and the windows ending at the word reach back
/// to it: an update on five noisy Precise-Community "computer" clips so padded raised a head's
/// threshold from 0.9412 to 0.9986 (its held-out miss at the threshold 1.5 → 8.3 %); padded
/// by this function, 0.9764 (3.2 %). Where the clip holds less than 0.1 s of sound before (or
/// after) the word, that side is padded with zeros.
pub(crate) fn pad_with_own_sound(
    samples: &[f32],
    word: std::ops::Range<usize>,
    pre: usize,
    post: usize,
) -> Vec<f32> {
    // Keep the word's own edges out of the padding.
    const MARGIN: usize = 800;
    const LEAST: usize = 1_600;
    let mirror = |i: usize, len: usize| {
        let m = i % (2 * len);
        if m < len { m } else { 2 * len - 1 - m }
    };
    let mut v = pad_samples(samples, pre, post);
    let lead = &samples[..word.start.saturating_sub(MARGIN).min(samples.len())];
    if lead.len() >= LEAST {
        for i in 0..pre {
            v[pre - 1 - i] = lead[mirror(i, lead.len())];
        }
    }
    let tail = &samples[(word.end + MARGIN).min(samples.len())..];
    if tail.len() >= LEAST {
        let end = pre + samples.len();
        for i in 0..post {
            v[end + i] = tail[tail.len() - 1 - mirror(i, tail.len())];
        }
    }
    v
}

/// Where no file of a negative folder is held out for validation (one long recording, a few
/// files), its recordings are, in blocks of about this many samples (30 s).
pub(crate) const BLOCK_SAMPLES: usize = crate::timeline::samples_of(30.0);

/// Which blocks of a negative recording of `samples` samples (at 16 kHz) are held out for
/// validation, each by a hash of the file name and its index. The blocks split the file evenly,
/// `samples / BLOCK_SAMPLES` of them rounded; a file up to 45 s long is one block, kept for
/// training.
pub(crate) fn held_out_blocks(path: &Path, samples: usize) -> Vec<bool> {
    let n = (samples + BLOCK_SAMPLES / 2) / BLOCK_SAMPLES;
    if n <= 1 {
        return vec![false];
    }
    (0..n)
        .map(|b| name_fraction(path, &format!("validation block {b}")) < 0.2)
        .collect()
}

/// Sample range `[start, end)` of block `b` of `n` in a file of `samples` samples.
pub(crate) fn block_samples(b: usize, n: usize, samples: usize) -> std::ops::Range<usize> {
    b * samples / n..(b + 1) * samples / n
}

/// A negative file's embeddings (of the file padded by [`PRE_PAD`] and [`POST_PAD`]) cut at
/// its blocks' boundaries: for each block, the embeddings its windows read (a window belongs
/// to the block its newest sample is in; the first `HEAD_WINDOW - 1` embeddings of a range are
/// context from the block before), whether it is held out, and its seconds of audio.
pub(crate) fn negative_blocks(
    embeddings: usize,
    samples: usize,
    held_out: &[bool],
) -> Vec<(std::ops::Range<usize>, bool, f64)> {
    let n = held_out.len();
    let seconds = |b: usize| crate::timeline::seconds_of(block_samples(b, n, samples).len() as u64);
    if n <= 1 || embeddings < HEAD_WINDOW {
        let total = crate::timeline::seconds_of(samples as u64);
        return vec![(0..embeddings, held_out.iter().any(|&v| v), total)];
    }
    let pre = crate::timeline::samples_of(PRE_PAD) as u64;
    let block_of = |k: usize| -> usize {
        let end =
            (crate::timeline::GROUP_HOP as u64 * k as u64 + EMBEDDING_END).saturating_sub(pre);
        let b = (end.saturating_sub(1) as u128 * n as u128) / samples.max(1) as u128;
        (b as usize).min(n - 1)
    };
    let mut out: Vec<(std::ops::Range<usize>, bool, f64)> = Vec::with_capacity(n);
    let mut k = HEAD_WINDOW - 1;
    while k < embeddings {
        let b = block_of(k);
        let mut end = k + 1;
        while end < embeddings && block_of(end) == b {
            end += 1;
        }
        out.push((k + 1 - HEAD_WINDOW..end, held_out[b], seconds(b)));
        k = end;
    }
    out
}

/// Mixes `noise[offset..]` into `x` so the word's power over `word` is `snr_db` above the noise's.
pub(crate) fn mix(
    x: &mut [f32],
    noise: &[f32],
    offset: usize,
    word: std::ops::Range<usize>,
    snr_db: f32,
) {
    let seg: Vec<f32> = (0..x.len())
        .map(|i| {
            noise
                .get(offset + i)
                .copied()
                .unwrap_or_else(|| noise[(offset + i) % noise.len()])
        })
        .collect();
    let word = &x[word.start.min(x.len())..word.end.min(x.len())];
    let Some(scale) = noise_scale(word, &seg, f64::from(snr_db)) else {
        return;
    };
    for (v, n) in x.iter_mut().zip(seg) {
        *v = (*v + n * scale).clamp(-1.0, 1.0);
    }
}

/// Mean power (mean square) of `s`; 0 for an empty slice.
pub(crate) fn mean_power(s: &[f32]) -> f64 {
    s.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / s.len().max(1) as f64
}

/// The factor for `noise` that puts `signal`'s mean power `snr_db` above the scaled noise's;
/// `None` when either is silent (nothing to mix, or nothing to measure against).
pub(crate) fn noise_scale(signal: &[f32], noise: &[f32], snr_db: f64) -> Option<f32> {
    let (ps, pn) = (mean_power(signal), mean_power(noise));
    (ps > 0.0 && pn > 0.0).then(|| (ps / pn / 10f64.powf(snr_db / 10.0)).sqrt() as f32)
}
