//! Training a head on the device: clips → embeddings (cached) → a small network fitted with
//! Adam → a threshold calibrated on held-out negative audio.
//!
//! * Positives: each clip's word is located ([`crate::vad`]); the windows whose newest
//!   embedding ends between 40 ms before and 300 ms after the word's end are positive, so the
//!   head fires when the word has just ended. Each clip is used clean and in augmented copies:
//!   real background (the `--background` recordings, else the negatives) mixed in at
//!   0–35 dB SNR, gain −12…+6 dB, the word shifted by up to ±0.5 s.
//! * Negatives: every window of the negative audio. Every other epoch all of them are scored
//!   and the 512 highest-scoring become the hard negatives that fill a quarter of each batch.
//! * A validation split (15 % of positive clips, 20 % of negative files, by file-name hash; in a
//!   negative folder where no file falls in it, such as one long recording, 20 % of the
//!   recordings' 30-s blocks) picks the epoch (early stopping on the class-balanced loss) and
//!   calibrates the threshold so false alarms per hour on it meet the target: counted where the
//!   validation audio can tell, and beyond that by extrapolating the tail of the alarm count
//!   (`tail_threshold`).
//!
//! Everything is seeded: the same data and seed give the same head, bit for bit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::backbone::{Backbone, EMBEDDING_DIM, Embedding};
use crate::dataset::{
    Cache, Job, Split, cache_key, embed_jobs, hash_file, name_fraction, wav_files,
};
use crate::detect::fire_indices;
use crate::head::{
    FORMAT_VERSION, HEAD_INPUTS, HEAD_WINDOW, Head, HeadInfo, TrainingSummary, Weights,
};
use crate::vad::{Span, locate_word};
use crate::wav::{WavFile, read_wav};
use crate::{Error, Result};

/// Zero padding before each clip (s): the head's 2 s of context starts in silence, as in a
/// stream with pauses between utterances.
pub(crate) const PRE_PAD: f64 = 1.0;
/// Zero padding after each clip (s).
const POST_PAD: f64 = 0.5;
/// Samples from the start of embedding `k`'s audio to the end of its last frame.
const EMBEDDING_END: u64 = 75 * 160 + 512;
/// Refractory period stored in new heads (s).
pub const REFRACTORY_SECONDS: f32 = 1.0;

/// Everything `hark train` needs to know.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The trigger word's name.
    pub word: String,
    /// Folders (or files) of positive clips.
    pub positives: Vec<PathBuf>,
    /// Folders (or files) of negative audio.
    pub negatives: Vec<PathBuf>,
    /// Folders (or files) of background noise mixed into the augmented positives; empty: the
    /// negatives.
    pub background: Vec<PathBuf>,
    /// Which half of the folders to use.
    pub split: Split,
    /// False alarms per hour the threshold is calibrated for.
    pub target_fa_per_hour: f64,
    /// Seed for initialisation, augmentation and batches.
    pub seed: u64,
    /// Hidden units.
    pub hidden: usize,
    /// Most epochs to run (early stopping usually ends sooner).
    pub max_epochs: usize,
    /// Augmented copies per positive clip (besides the clean one).
    pub copies: usize,
    /// Adam steps per epoch.
    pub steps_per_epoch: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Where embeddings are cached.
    pub cache: Cache,
    /// Show progress bars.
    pub progress: bool,
}

impl TrainOptions {
    /// Defaults for `word` from the given folders.
    pub fn new(word: &str, positives: Vec<PathBuf>, negatives: Vec<PathBuf>) -> Self {
        TrainOptions {
            word: word.to_string(),
            positives,
            negatives,
            background: Vec::new(),
            split: Split::All,
            target_fa_per_hour: 0.5,
            seed: 1,
            hidden: 32,
            max_epochs: 40,
            copies: 6,
            steps_per_epoch: 100,
            learning_rate: 1e-3,
            cache: Cache::new(Cache::default_dir()),
            progress: true,
        }
    }
}

/// What training produced, for the closing summary.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The trained head.
    pub head: Head,
    /// What it was trained on, for later updates.
    pub replay: Replay,
    /// Positive clips skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Warnings worth showing (suspicious negatives…).
    pub warnings: Vec<String>,
    /// Wall-clock seconds for the whole run.
    pub seconds: f64,
    /// Seconds spent computing embeddings (cache misses).
    pub embed_seconds: f64,
    /// Embedding jobs served from the cache.
    pub cached_jobs: usize,
    /// Embedding jobs in all.
    pub jobs: usize,
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// A positive clip, located.
struct Positive {
    path: PathBuf,
    hash: [u8; 32],
    span: Span,
    len: usize,
    validation: bool,
}

/// One embedded piece of audio and how its windows are labelled.
struct Clip {
    /// Cache key of the embeddings (for the replay manifest).
    key: [u8; 32],
    /// The part `[start, end)` of the cached embeddings this clip holds (a block of a long
    /// negative recording); `None` for all of them.
    range: Option<[usize; 2]>,
    /// New data of an update: oversampled so it is learnt.
    fresh: bool,
    embeddings: Vec<Embedding>,
    /// For positive clips: embedding indices whose window is positive.
    positive: Option<std::ops::Range<usize>>,
    /// For positive clips: embedding indices where a detection counts as a hit.
    hit: Option<std::ops::Range<usize>>,
    /// For positive clips: windows from this index on end well after the word and are
    /// negatives, so the head fires once, as the word ends, not for as long as it is in view.
    late: Option<usize>,
    validation: bool,
    seconds: f64,
    /// Validation clips of a head with templates: the distance to them (see
    /// [`crate::verify`]) at each window the network scored at least
    /// [`crate::verify::MIN_SCORE`] when the head was trained (for a positive clip, only at its
    /// best hit window), as (embedding index, distance) in ascending order, so thresholds are
    /// calibrated on the scores `listen` acts on. Empty otherwise.
    distances: Vec<(u32, f32)>,
}

impl Clip {
    /// The distance [`Clip::distances`] holds for window `k`, if any.
    fn distance_at(&self, k: usize) -> Option<f32> {
        let i = self
            .distances
            .binary_search_by_key(&k, |&(w, _)| w as usize);
        i.ok().map(|i| self.distances[i].1)
    }
}

/// Index of the first embedding whose audio ends at or after `sample`.
fn first_embedding_ending_after(sample: u64) -> usize {
    // Embedding k covers samples 1280k .. 1280k + EMBEDDING_END.
    sample.saturating_sub(EMBEDDING_END).div_ceil(1280) as usize
}

/// Positive windows, the hit window, and the first "late" (negative) window of a positive clip
/// placed after `pre` samples.
fn label(p: &Positive, pre: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>, usize) {
    let end = (pre + p.span.end) as u64;
    let first = first_embedding_ending_after(end.saturating_sub(640));
    let last = first_embedding_ending_after(end + 4800);
    let hit_first = first_embedding_ending_after((pre + p.span.start) as u64);
    let hit_last = first_embedding_ending_after((pre + p.len) as u64 + 8000);
    let late = first_embedding_ending_after(end + LATE_AFTER);
    (
        first.max(HEAD_WINDOW - 1)..last.max(HEAD_WINDOW - 1),
        hit_first..hit_last,
        late.max(HEAD_WINDOW - 1),
    )
}

/// Samples at the start of a copy of `p` placed after `pre` samples that no labelled window
/// reads: whole 1280-sample hops before the first embedding of the first window used (a
/// positive, a late negative or, for validation clips, a hit window). Embedding k covers
/// samples from 1280k on, so dropping them leaves every later embedding bit for bit as it was
/// and spares the backbone the copy's padding and the clip's own lead.
fn unused_lead(p: &Positive, pre: usize) -> usize {
    let (positive, hit, late) = label(p, pre);
    let mut first = positive.start.min(late);
    if p.validation {
        first = first.min(hit.start);
    }
    first.saturating_sub(HEAD_WINDOW - 1) * 1280
}

/// Range of the signal-to-noise ratio (dB) at which background is mixed into the augmented
/// copies, drawn uniformly. Reaching up to 35 dB, a third of the copies are nearly clean: with
/// 0–20 dB every copy was audibly noisy and the clean clip was 1 in 7 of what the head saw,
/// and held-out clean clips missed more than noisy ones (`benches/accuracy.sh`, 3 seeds: mean
/// miss at ≤ 0.25 FA/h computer 4.3 → 1.9 %, athena 24.0 → 20.4 %; jarvis 5.6 → 6.4 %).
const SNR_DB: (f64, f64) = (0.0, 35.0);

/// Hard negatives kept at each mining: the highest-scoring training windows. What decides the
/// strict operating point is the loudest handful of false alarms, so the hard quarter of each
/// batch is spent on those rather than on the top 4096 (with [`SNR_DB`], 3 seeds: mean miss at
/// ≤ 0.25 FA/h jarvis 6.4 → 4.3 %, athena 20.4 → 15.7 %, computer 1.9 → 2.5 %; 256 was worse).
const HARD_NEGATIVES: usize = 512;

/// Windows ending this many samples (0.8 s) after the word are negatives.
const LATE_AFTER: u64 = 12_800;

/// The embedding job of a negative file, padded as every clip is (so training, updates and
/// evaluation share its cache entry). `hash` is [`hash_file`] of it, `samples` its length at
/// 16 kHz.
pub(crate) fn negative_job(
    backbone: &Backbone,
    path: &Path,
    hash: &[u8; 32],
    samples: usize,
) -> Job {
    let pre = (PRE_PAD * 16_000.0) as usize;
    let post = (POST_PAD * 16_000.0) as usize;
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
fn without_blocks(x: Vec<f32>, held_out: &[bool]) -> Vec<f32> {
    if !held_out.iter().any(|&v| v) {
        return x;
    }
    kept_blocks(held_out, x.len())
        .flat_map(|r| x[r].iter().copied())
        .collect()
}

/// Sample ranges of the blocks not marked in `held_out`, in a file of `samples` samples.
fn kept_blocks(held_out: &[bool], samples: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = held_out.len();
    (0..n)
        .filter(|&b| !held_out[b])
        .map(move |b| block_samples(b, n, samples))
}

fn pad_samples(samples: &[f32], pre: usize, post: usize) -> Vec<f32> {
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
fn pad_with_own_sound(
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
const BLOCK_SAMPLES: usize = 30 * 16_000;

/// Which blocks of a negative recording of `samples` samples (at 16 kHz) are held out for
/// validation, each by a hash of the file name and its index. The blocks split the file evenly,
/// `samples / BLOCK_SAMPLES` of them rounded; a file up to 45 s long is one block, kept for
/// training.
fn held_out_blocks(path: &Path, samples: usize) -> Vec<bool> {
    let n = (samples + BLOCK_SAMPLES / 2) / BLOCK_SAMPLES;
    if n <= 1 {
        return vec![false];
    }
    (0..n)
        .map(|b| name_fraction(path, &format!("validation block {b}")) < 0.2)
        .collect()
}

/// Sample range `[start, end)` of block `b` of `n` in a file of `samples` samples.
fn block_samples(b: usize, n: usize, samples: usize) -> std::ops::Range<usize> {
    b * samples / n..(b + 1) * samples / n
}

/// A negative file's embeddings (of the file padded by [`PRE_PAD`] and [`POST_PAD`]) cut at
/// its blocks' boundaries: for each block, the embeddings its windows read (a window belongs
/// to the block its newest sample is in; the first `HEAD_WINDOW - 1` embeddings of a range are
/// context from the block before), whether it is held out, and its seconds of audio.
fn negative_blocks(
    embeddings: usize,
    samples: usize,
    held_out: &[bool],
) -> Vec<(std::ops::Range<usize>, bool, f64)> {
    let n = held_out.len();
    let seconds = |b: usize| block_samples(b, n, samples).len() as f64 / 16_000.0;
    if n <= 1 || embeddings < HEAD_WINDOW {
        let total = samples as f64 / 16_000.0;
        return vec![(0..embeddings, held_out.iter().any(|&v| v), total)];
    }
    let pre = (PRE_PAD * 16_000.0) as u64;
    let block_of = |k: usize| -> usize {
        let end = (1280 * k as u64 + EMBEDDING_END).saturating_sub(pre);
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

/// What an embedding job of [`train`] embeds.
#[derive(Clone, Copy)]
enum Made {
    /// Positive clip `.0` (a clean or augmented copy) placed `.1` samples into the audio
    /// embedded, in the validation split if `.2`.
    Positive(usize, usize, bool),
    /// Negative file `.0`.
    Negative(usize),
}

/// A recording the augmentation background can be drawn from.
struct PoolFile {
    path: PathBuf,
    /// Content hash, recorded in each copy's recipe (its cache key).
    hash: [u8; 32],
    /// Length at 16 kHz, without the held-out blocks.
    samples: usize,
    /// Its blocks held out for validation (empty when none): left out of the pool.
    held_out: Vec<bool>,
    /// Which of the given folders it is in.
    folder: Option<usize>,
}

/// Trains a head from scratch.
pub fn train(backbone: &Backbone, opts: &TrainOptions) -> Result<TrainReport> {
    let started = Instant::now();
    let mut warnings = Vec::new();
    if opts.positives.is_empty() || opts.negatives.is_empty() {
        return Err(Error::Data(
            "training needs at least one --positive and one --negative folder".into(),
        ));
    }
    let pos_files = wav_files(&opts.positives, opts.split)?;
    if pos_files.is_empty() {
        return Err(Error::Data(format!(
            "no WAV files in the positive folder(s) {}",
            list(&opts.positives)
        )));
    }
    let mut neg_files = wav_files(&opts.negatives, opts.split)?;
    if neg_files.is_empty() {
        return Err(Error::Data(format!(
            "no WAV files in the negative folder(s) {}",
            list(&opts.negatives)
        )));
    }
    let word = opts.word.to_lowercase();
    for d in &opts.negatives {
        if !word.is_empty() && d.to_string_lossy().to_lowercase().contains(&word) {
            warnings.push(format!(
                "negative folder {} is named like the trigger word \"{}\"; negatives must not contain it",
                d.display(),
                opts.word
            ));
        }
    }

    // Locate the word in every positive clip; skip the unusable ones with their reason.
    let bar = progress(
        opts.progress,
        pos_files.len() + neg_files.len(),
        "checking clips",
    );
    let mut positives = Vec::new();
    let mut skipped = Vec::new();
    for path in &pos_files {
        bar.inc(1);
        let samples = match read_wav(path) {
            Ok(s) => s,
            Err(e) => {
                skipped.push((path.clone(), e.to_string()));
                continue;
            }
        };
        match locate_word(&samples) {
            Ok(span) => positives.push(Positive {
                path: path.clone(),
                hash: hash_file(path)?,
                span,
                len: samples.len(),
                validation: name_fraction(path, "validation") < 0.15,
            }),
            Err(problem) => skipped.push((path.clone(), problem.to_string())),
        }
    }
    if positives.is_empty() {
        let why = skipped
            .iter()
            .take(3)
            .map(|(p, w)| format!("\n  {}: {w}", p.display()))
            .collect::<String>();
        return Err(Error::Data(format!(
            "no usable positive clip in {} ({} skipped){why}",
            list(&opts.positives),
            skipped.len()
        )));
    }
    if positives.iter().all(|p| p.validation) || positives.iter().all(|p| !p.validation) {
        // Tiny sets: keep every other clip for validation.
        for (i, p) in positives.iter_mut().enumerate() {
            p.validation = i % 5 == 4;
        }
    }
    let pos_hashes: std::collections::HashSet<[u8; 32]> =
        positives.iter().map(|p| p.hash).collect();
    let mut neg_info = Vec::with_capacity(neg_files.len());
    let mut overlap = 0;
    let mut kept_files = Vec::with_capacity(neg_files.len());
    for path in neg_files.drain(..) {
        bar.inc(1);
        let hash = hash_file(&path)?;
        if pos_hashes.contains(&hash) {
            overlap += 1;
            continue;
        }
        let info = match WavFile::open(&path) {
            Ok(w) => w.info(),
            Err(e) => {
                warnings.push(format!("skipped negative {e}"));
                continue;
            }
        };
        neg_info.push((hash, info.samples_at_16k()));
        kept_files.push(path);
    }
    bar.finish_and_clear();
    let neg_files = kept_files;
    if overlap > 0 {
        warnings.push(format!(
            "{overlap} negative file(s) are also positive clips; they were left out of the negatives"
        ));
    }
    if neg_files.is_empty() {
        return Err(Error::Data("no negative audio left to train on".into()));
    }
    let word_templates = templates_of(&positives)?;
    let lengths = neg_info.iter().map(|&(_, samples)| samples);
    warnings.extend(word_in_negatives(
        &word_templates,
        &opts.word,
        neg_files.iter().zip(lengths),
    ));
    // Held out for validation: 20 % of the negative files by name; in a folder where that
    // leaves none, 20 % of the longer recordings' blocks. One flag per block (files held out by
    // name, or kept whole, are one block).
    let folder_of = |dirs: &[PathBuf], p: &Path| dirs.iter().position(|d| p.starts_with(d));
    let by_name: Vec<bool> = neg_files
        .iter()
        .map(|p| name_fraction(p, "validation") < 0.2)
        .collect();
    let mut folder_held_out = vec![false; opts.negatives.len()];
    for (p, &v) in neg_files.iter().zip(&by_name) {
        if let Some(f) = folder_of(&opts.negatives, p) {
            folder_held_out[f] |= v;
        }
    }
    let neg_blocks: Vec<Vec<bool>> = {
        let mut v: Vec<Vec<bool>> = neg_files
            .iter()
            .zip(&neg_info)
            .zip(&by_name)
            .map(
                |((p, &(_, samples)), &named)| match folder_of(&opts.negatives, p) {
                    Some(f) if !folder_held_out[f] => held_out_blocks(p, samples),
                    _ => vec![named],
                },
            )
            .collect();
        let all: Vec<bool> = v.iter().flatten().copied().collect();
        if all.iter().all(|&b| b) || all.iter().all(|&b| !b) {
            // Few files and blocks: every fifth block.
            for (i, b) in v.iter_mut().flatten().enumerate() {
                *b = i % 5 == 4;
            }
        }
        v
    };
    // A pool file's audio without its held-out blocks: the samples left, and the flags.
    let pool_part = |held_out: &[bool], samples: usize| -> (usize, Vec<bool>) {
        if !held_out.iter().any(|&v| v) {
            return (samples, Vec::new());
        }
        let kept = kept_blocks(held_out, samples).map(|r| r.len()).sum();
        (kept, held_out.to_vec())
    };

    // Background for augmentation: 10 minutes in all, taken evenly from every background
    // folder (`--background`; else every negative folder: noise, music, speech…), each in
    // file-name-hash order, never from the held-out negatives (files, or blocks of them).
    let candidates: Vec<PoolFile> = if opts.background.is_empty() {
        neg_files
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (samples, held_out) = pool_part(&neg_blocks[i], neg_info[i].1);
                PoolFile {
                    path: p.clone(),
                    hash: neg_info[i].0,
                    samples,
                    held_out,
                    folder: folder_of(&opts.negatives, p),
                }
            })
            .collect()
    } else {
        let held_out: std::collections::HashMap<&PathBuf, &Vec<bool>> =
            neg_files.iter().zip(&neg_blocks).collect();
        let mut found = Vec::new();
        for path in wav_files(&opts.background, opts.split)? {
            match WavFile::open(&path) {
                Ok(w) => {
                    let all = w.info().samples_at_16k();
                    let (samples, held_out) =
                        pool_part(held_out.get(&path).map_or(&[][..], |v| v), all);
                    found.push(PoolFile {
                        hash: hash_file(&path)?,
                        samples,
                        held_out,
                        folder: folder_of(&opts.background, &path),
                        path,
                    });
                }
                Err(e) => warnings.push(format!("skipped background {e}")),
            }
        }
        if !found.iter().any(|c| c.samples >= 16_000) {
            return Err(Error::Data(format!(
                "no usable background audio (WAV files of 1 s or more) in {}",
                list(&opts.background)
            )));
        }
        found
    };
    let folders = if opts.background.is_empty() {
        opts.negatives.len()
    } else {
        opts.background.len()
    };
    let per_folder = 16_000 * 600 / folders.max(1);
    let mut pool_list = Vec::new();
    for folder in 0..folders {
        let mut order: Vec<&PoolFile> = candidates
            .iter()
            .filter(|c| c.folder == Some(folder) && c.samples >= 16_000)
            .collect();
        order.sort_by(|a, b| {
            name_fraction(&a.path, "pool").total_cmp(&name_fraction(&b.path, "pool"))
        });
        let mut taken = 0;
        for c in order {
            if taken >= per_folder {
                break;
            }
            pool_list.push(c);
            taken += c.samples;
        }
    }
    let pool_paths: Arc<Vec<(PathBuf, Vec<bool>)>> = Arc::new(
        pool_list
            .iter()
            .map(|c| (c.path.clone(), c.held_out.clone()))
            .collect(),
    );
    let pool: Arc<OnceLock<Result<Vec<Vec<f32>>, String>>> = Arc::new(OnceLock::new());

    // Embedding jobs: every positive clip clean and augmented, every negative file padded.
    let pre = (PRE_PAD * 16_000.0) as usize;
    let post = (POST_PAD * 16_000.0) as usize;
    let mut jobs = Vec::new();
    let mut meta = Vec::new(); // what each job is
    let mut rng = Rng::new(opts.seed);
    for (pi, p) in positives.iter().enumerate() {
        for copy in 0..=opts.copies {
            let path = p.path.clone();
            if copy == 0 {
                let mut recipe = b"clean\0".to_vec();
                recipe.extend_from_slice(&p.hash);
                recipe.extend_from_slice(&(pre as u64).to_le_bytes());
                recipe.extend_from_slice(&(post as u64).to_le_bytes());
                jobs.push(Job {
                    key: cache_key(backbone, &recipe),
                    make: Box::new(move || Ok(pad_samples(&read_wav(&path)?, pre, post))),
                    samples: pre + p.len + post,
                });
                meta.push(Made::Positive(pi, pre, p.validation));
                continue;
            }
            let shift = rng.range(-0.5, 0.5);
            let pre_c = ((PRE_PAD + 0.5 + shift) * 16_000.0) as usize;
            let gain_db = rng.range(-12.0, 6.0) as f32;
            let snr_db = rng.range(SNR_DB.0, SNR_DB.1) as f32;
            let noise = if pool_list.is_empty() {
                None
            } else {
                let which = rng.below(pool_list.len());
                let need = pre_c + p.len + post;
                let avail = pool_list[which].samples;
                let offset = if avail > need {
                    rng.below(avail - need)
                } else {
                    0
                };
                Some((which, offset))
            };
            let trim = unused_lead(p, pre_c);
            let mut recipe = b"augmented\0".to_vec();
            recipe.extend_from_slice(&p.hash);
            for v in [pre_c as u64, post as u64, trim as u64] {
                recipe.extend_from_slice(&v.to_le_bytes());
            }
            recipe.extend_from_slice(&gain_db.to_le_bytes());
            recipe.extend_from_slice(&snr_db.to_le_bytes());
            if let Some((which, offset)) = noise {
                recipe.extend_from_slice(&pool_list[which].hash);
                recipe.extend_from_slice(&(offset as u64).to_le_bytes());
                // The offset is into the audio left after these blocks were taken out.
                if !pool_list[which].held_out.is_empty() {
                    recipe.extend_from_slice(b"held out\0");
                    recipe.extend(pool_list[which].held_out.iter().map(|&v| u8::from(v)));
                }
            }
            let (pool, pool_paths, span) = (pool.clone(), pool_paths.clone(), p.span);
            jobs.push(Job {
                key: cache_key(backbone, &recipe),
                make: Box::new(move || {
                    let clip = read_wav(&path)?;
                    let mut x = pad_samples(&clip, pre_c, post);
                    let g = 10f32.powf(gain_db / 20.0);
                    for v in &mut x {
                        *v = (*v * g).clamp(-1.0, 1.0);
                    }
                    if let Some((which, offset)) = noise {
                        let pool = pool
                            .get_or_init(|| {
                                pool_paths
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
                            pre_c + span.start..pre_c + span.end,
                            snr_db,
                        );
                    }
                    // After mixing, so the noise's level (set over the whole copy) and so
                    // every kept sample are as they would be untrimmed.
                    x.drain(..trim);
                    Ok(x)
                }),
                samples: pre_c + p.len + post - trim,
            });
            meta.push(Made::Positive(pi, pre_c - trim, p.validation));
        }
    }
    for (i, path) in neg_files.iter().enumerate() {
        jobs.push(negative_job(backbone, path, &neg_info[i].0, neg_info[i].1));
        meta.push(Made::Negative(i));
    }

    let hits_before = opts.cache.hits();
    let t_embed = Instant::now();
    let bar = progress(opts.progress, jobs.len(), "embedding audio");
    let embedded = embed_jobs(backbone, &opts.cache, &jobs, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let embed_seconds = t_embed.elapsed().as_secs_f64();
    let cached_jobs = opts.cache.hits() - hits_before;
    let keys: Vec<[u8; 32]> = jobs.iter().map(|j| j.key).collect();

    let mut clips: Vec<Clip> = Vec::with_capacity(embedded.len());
    // For each clip: the job that made its audio.
    let mut sources: Vec<usize> = Vec::with_capacity(embedded.len());
    for (j, ((embeddings, &made), key)) in embedded.into_iter().zip(&meta).zip(&keys).enumerate() {
        let i = match made {
            Made::Positive(pi, pre_c, validation) => {
                let (p, h, l) = label(&positives[pi], pre_c);
                clips.push(Clip {
                    key: *key,
                    range: None,
                    fresh: false,
                    embeddings,
                    positive: Some(p),
                    hit: Some(h),
                    late: Some(l),
                    validation,
                    seconds: 0.0,
                    distances: Vec::new(),
                });
                sources.push(j);
                continue;
            }
            Made::Negative(i) => i,
        };
        // A negative file, in its blocks.
        let negative = |embeddings, range, validation, seconds| Clip {
            key: *key,
            range,
            fresh: false,
            embeddings,
            positive: None,
            hit: None,
            late: None,
            validation,
            seconds,
            distances: Vec::new(),
        };
        match negative_blocks(embeddings.len(), neg_info[i].1, &neg_blocks[i])[..] {
            [(_, validation, seconds)] => {
                clips.push(negative(embeddings, None, validation, seconds));
                sources.push(j);
            }
            ref blocks => {
                for (range, validation, seconds) in blocks.iter().cloned() {
                    let part = Some([range.start, range.end]);
                    sources.push(j);
                    clips.push(negative(
                        embeddings[range].to_vec(),
                        part,
                        validation,
                        seconds,
                    ));
                }
            }
        }
    }

    let negative_seconds: f64 = clips.iter().map(|c| c.seconds).sum();
    let mut summary = TrainingSummary {
        positive_clips: positives.len(),
        negative_files: neg_files.len(),
        negative_seconds,
        seed: opts.seed,
        target_fa_per_hour: opts.target_fa_per_hour,
        ..Default::default()
    };
    let weights = fit(&mut clips, opts, &mut summary, None, "training")?;
    let target = opts.target_fa_per_hour;
    let mut calibration = calibrate(&weights, &clips, target, 0.5, None);
    // Templates, their cut, and the threshold set again on the scores the check leaves, as
    // `listen` will act on them.
    let mut templates = None;
    if word_templates.words.len() >= 8 {
        let words = word_templates.words;
        let bar = progress(opts.progress, 0, "template check");
        let tick = |n: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(n as u64);
        };
        measure_distances(&words, &weights, &mut clips, &sources, &jobs, &tick)?;
        bar.finish_and_clear();
        if let Some(cut) = cut_of(&weights, &clips, calibration.threshold) {
            calibration = calibrate(&weights, &clips, target, 0.5, Some(cut));
            templates = Some(crate::verify::Templates {
                cut,
                words,
                added: 0,
            });
        }
    }
    let threshold = calibration.threshold;
    summary.validation_miss_rate = calibration.miss;
    summary.validation_fa_per_hour = calibration.fa_per_hour;
    summary.validation_negative_hours = calibration.hours;
    let head = Head {
        info: HeadInfo {
            format: FORMAT_VERSION,
            word: opts.word.clone(),
            threshold,
            refractory_seconds: REFRACTORY_SECONDS,
            window: HEAD_WINDOW,
            hidden: opts.hidden,
            backbone_sha256: backbone.sha256().to_string(),
            created_unix: creation_time(),
            training: summary,
        },
        weights,
        templates,
    };
    Ok(TrainReport {
        replay: Replay::of(&head, &clips),
        head,
        skipped,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
        embed_seconds,
        cached_jobs,
        jobs: meta.len(),
    })
}

/// Templates of the word cut from the training clips, and how near a recording of the word lies
/// to them.
struct WordTemplates {
    /// Up to 240 templates (see [`crate::verify`]), from clips outside the validation split:
    /// the head's.
    words: Vec<Vec<crate::verify::Cepstrum>>,
    /// Up to [`CHECK_TEMPLATES`] templates from all the clips (training clips first) that
    /// [`word_in_negatives`] matches clips against.
    check: Vec<Vec<crate::verify::Cepstrum>>,
    /// The median distance of the clips that gave `check` to the others of `check`: how near
    /// a recording of the word lies to templates not cut from it. `None` with fewer than 4.
    typical: Option<f32>,
}

/// Templates [`word_in_negatives`] matches clips against: enough to find a recording's nearest
/// few, at a fifth of the cost of all 240.
const CHECK_TEMPLATES: usize = 48;

/// [`WordTemplates`] of the positive clips, in file-name-hash order.
fn templates_of(positives: &[Positive]) -> Result<WordTemplates> {
    const MOST: usize = 240;
    let mut cepstra = crate::verify::Cepstra::new();
    let mut order: Vec<&Positive> = positives.iter().collect();
    order.sort_by(|a, b| {
        a.validation
            .cmp(&b.validation)
            .then(name_fraction(&a.path, "template").total_cmp(&name_fraction(&b.path, "template")))
    });
    let (mut words, mut check) = (Vec::new(), Vec::new());
    // The audio of the clips that gave `check`, up to just after the word.
    let mut audio = Vec::new();
    for p in order {
        let for_head = !p.validation && words.len() < MOST;
        if !for_head && check.len() >= CHECK_TEMPLATES {
            break;
        }
        let clip = read_wav(&p.path)?;
        let Some(t) = cepstra.template(&clip, p.span.start..p.span.end) else {
            continue;
        };
        if check.len() < CHECK_TEMPLATES {
            check.push(t.clone());
            audio.push(until_after_word(clip, p.span));
        }
        if for_head {
            words.push(t);
        }
    }
    let mut typical = None;
    if check.len() >= 4 {
        let mut d = on_cores(audio.len(), |cepstra, i| {
            crate::verify::Templates::distance_to_others(&check, i, cepstra, &audio[i])
        });
        d.sort_by(f32::total_cmp);
        typical = Some(d[d.len() / 2]);
    }
    Ok(WordTemplates {
        words,
        check,
        typical,
    })
}

/// The audio the template check would match for a detection of a clip's word: the last
/// [`crate::verify::QUERY_SAMPLES`] up to 0.1 s after the word.
fn until_after_word(mut clip: Vec<f32>, span: Span) -> Vec<f32> {
    clip.truncate(span.end + 1_600);
    clip.drain(..clip.len().saturating_sub(crate::verify::QUERY_SAMPLES));
    clip
}

/// `f(cepstra, i)` for every `i` below `n`, on every core (each with its own planned
/// [`crate::verify::Cepstra`]), in order.
fn on_cores<T: Send>(
    n: usize,
    f: impl Fn(&mut crate::verify::Cepstra, usize) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let f = &f;
    let parts: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut cepstra = crate::verify::Cepstra::new();
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, f(&mut cepstra, i)))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a template-matching thread panicked"))
            .collect()
    });
    let mut all: Vec<(usize, T)> = parts.into_iter().flatten().collect();
    all.sort_unstable_by_key(|&(i, _)| i);
    all.into_iter().map(|(_, x)| x).collect()
}

/// Clips checked per negative folder by [`word_in_negatives`].
const CHECK_CLIPS: usize = 16;

/// Warnings for negative folders that seem to hold recordings of the word itself, which would
/// teach the head to ignore it. In each folder (the folder a file is in), up to
/// [`CHECK_CLIPS`] clips of 0.5–10 s, in file-name-hash order, are matched against the
/// templates; a folder is named when at least a quarter of those (and two or more) lie as near
/// as a typical recording of the word ([`WordTemplates::typical`]): about half of a folder of
/// the word's recordings do, and `benches/accuracy.sh`'s trainings name no folder for any of
/// its three words (other keywords, not-wake-words, telephone prompts, spoken words).
/// `files` are the negative files with their lengths in samples at 16 kHz.
fn word_in_negatives<'a>(
    t: &WordTemplates,
    word: &str,
    files: impl Iterator<Item = (&'a PathBuf, usize)>,
) -> Vec<String> {
    let Some(typical) = t.typical else {
        return Vec::new();
    };
    let mut folders: std::collections::BTreeMap<&Path, Vec<&PathBuf>> = Default::default();
    for (path, samples) in files {
        if crate::vad::CLIP_SAMPLES.contains(&samples) {
            let folder = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            folders.entry(folder).or_default().push(path);
        }
    }
    // (clips checked, clips as near as the word) of a folder's clips, in name-hash order.
    let check = |cepstra: &mut crate::verify::Cepstra, paths: &[&PathBuf]| {
        let (mut checked, mut near) = (0, 0);
        for path in paths.iter().take(CHECK_CLIPS) {
            let Ok(clip) = read_wav(path) else { continue };
            let Ok(span) = locate_word(&clip) else {
                continue;
            };
            let audio = until_after_word(clip, span);
            checked += 1;
            if crate::verify::Templates::distance_to(&t.check, cepstra, &audio) <= typical {
                near += 1;
            }
        }
        (checked, near)
    };
    let mut folders: Vec<(&Path, Vec<&PathBuf>)> = folders.into_iter().collect();
    for (_, paths) in &mut folders {
        paths.sort_by(|a, b| {
            name_fraction(a, "word check").total_cmp(&name_fraction(b, "word check"))
        });
    }
    let counts = on_cores(folders.len(), |cepstra, i| check(cepstra, &folders[i].1));
    let mut warnings = Vec::new();
    for (i, (checked, near)) in counts.into_iter().enumerate() {
        if near >= 2 && near * 4 >= checked {
            warnings.push(format!(
                "{near} of the {checked} clips checked in negative folder {} sound like \"{word}\" \
                 (as near to its templates as your recordings of it); negatives must not hold the \
                 trigger word, or the head learns to ignore it",
                folders[i].0.display()
            ));
        }
    }
    warnings
}

/// Share of the validation copies the head detects that the template check keeps: the cut is
/// this quantile of their distances (`benches/accuracy.sh`, 8 seeds: see the README).
pub const CUT_QUANTILE: f64 = 0.98;

/// The cut on the distance to the templates: the [`CUT_QUANTILE`] of the distances of the
/// validation copies (clean and augmented) the head detects at `threshold`, each measured
/// where its hit windows score highest, where the listener would check it
/// ([`measure_distances`] has measured them). `None` with fewer than 8 such copies.
fn cut_of(weights: &Weights, clips: &[Clip], threshold: f32) -> Option<f32> {
    let mut d: Vec<f32> = best_hit_windows(weights, clips, |c| c.validation)
        .into_iter()
        .filter(|&(_, _, score)| score >= threshold)
        .filter_map(|(ci, k, _)| clips[ci].distance_at(k))
        .collect();
    if d.len() < 8 {
        return None;
    }
    d.sort_by(f32::total_cmp);
    Some(d[((d.len() - 1) as f64 * CUT_QUANTILE).round() as usize])
}

/// One clip's measured distances: (clip index, (window, distance) in ascending order).
type Measured = (usize, Vec<(u32, f32)>);

/// Fills each validation clip's [`Clip::distances`] with the distance to `words` (the
/// templates) at the windows a calibration looks at, measured on the audio before each as
/// `listen` measures it: for a positive clip (each clean and augmented copy), its best-scoring
/// hit window (the first of equals); for a negative clip, every window (each may be a false
/// alarm); in both, only windows `weights` score at least [`crate::verify::MIN_SCORE`]. Clip
/// `i`'s audio is made by `jobs[sources[i]]` (its embeddings start at [`Clip::range`]'s start
/// there); each job's audio is made once. On every core; `tick(done, total)`
/// counts the jobs.
fn measure_distances(
    words: &[Vec<crate::verify::Cepstrum>],
    weights: &Weights,
    clips: &mut [Clip],
    sources: &[usize],
    jobs: &[Job],
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    let wanted = |score: f32| score >= crate::verify::MIN_SCORE;
    // (clip, windows) to measure, grouped by the job that made the audio.
    let mut by_job: std::collections::BTreeMap<usize, Vec<(usize, Vec<u32>)>> = Default::default();
    for (ci, k, score) in best_hit_windows(weights, clips, |c| c.validation) {
        if wanted(score) {
            by_job
                .entry(sources[ci])
                .or_default()
                .push((ci, vec![k as u32]));
        }
    }
    for (ci, c) in clips.iter().enumerate() {
        let n = c.embeddings.len();
        if !c.validation || c.hit.is_some() || n < HEAD_WINDOW {
            continue;
        }
        let windows: Vec<u32> = checked_scores(weights, clips, ci, HEAD_WINDOW - 1..n, None)
            .into_iter()
            .enumerate()
            .filter(|&(_, score)| wanted(score))
            .map(|(i, _)| (HEAD_WINDOW - 1 + i) as u32)
            .collect();
        if !windows.is_empty() {
            by_job.entry(sources[ci]).or_default().push((ci, windows));
        }
    }
    let work: Vec<_> = by_job.into_iter().collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Where each clip's embeddings start in its job's: a block's range, or all of them.
    let offsets: Vec<u64> = clips
        .iter()
        .map(|c| c.range.map_or(0, |[start, _]| start as u64))
        .collect();
    let measured = on_cores(work.len(), |cepstra, w| -> Result<Vec<Measured>> {
        let (job, parts) = &work[w];
        let samples = (jobs[*job].make)()?;
        let out = parts
            .iter()
            .map(|(ci, windows)| {
                let offset = offsets[*ci];
                let d = windows.iter().map(|&k| {
                    let at = crate::embedder::samples_at_embedding(offset + u64::from(k));
                    let audio = &samples[..(at as usize).min(samples.len())];
                    (
                        k,
                        crate::verify::Templates::distance_to(words, cepstra, audio),
                    )
                });
                (*ci, d.collect())
            })
            .collect();
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tick(n, work.len());
        Ok(out)
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    for (ci, d) in measured.into_iter().flatten() {
        clips[ci].distances = d;
    }
    Ok(())
}

/// Now, or `$SOURCE_DATE_EPOCH` when set (reproducible heads, as for reproducible builds).
pub fn creation_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mixes `noise[offset..]` into `x` so the word's power over `word` is `snr_db` above the noise's.
fn mix(x: &mut [f32], noise: &[f32], offset: usize, word: std::ops::Range<usize>, snr_db: f32) {
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

fn progress(show: bool, len: usize, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A training example: clip index and the index of the window's newest embedding.
type Example = (u32, u32);

fn window(clips: &[Clip], (c, k): Example) -> &[f32] {
    let k = k as usize;
    clips[c as usize].embeddings[k + 1 - HEAD_WINDOW..=k].as_flattened()
}

/// Fits the network. `start` continues from existing weights (updates) and keeps their
/// normalisation; otherwise training starts from a seeded initialisation with the statistics
/// of the training data. Standardises `clips` in place.
fn fit(
    clips: &mut [Clip],
    opts: &TrainOptions,
    summary: &mut TrainingSummary,
    start: Option<&Weights>,
    bar_label: &str,
) -> Result<Weights> {
    let mut rng = Rng::new(opts.seed.wrapping_add(0x5EED));
    let mut weights = match start {
        Some(w) => w.clone(),
        None => {
            let mut w = Weights::zeros(opts.hidden);
            let (mean, inv_std) = statistics(clips);
            w.mean = mean;
            w.inv_std = inv_std;
            let s1 = (2.0 / HEAD_INPUTS as f64).sqrt();
            w.w1.iter_mut()
                .for_each(|v| *v = (rng.normal() * s1) as f32);
            let s2 = (1.0 / opts.hidden as f64).sqrt();
            w.w2.iter_mut()
                .for_each(|v| *v = (rng.normal() * s2) as f32);
            w
        }
    };
    for c in clips.iter_mut() {
        for e in &mut c.embeddings {
            *e = weights.normalize(e);
        }
    }

    let examples = |pos: bool, validation: bool| -> Vec<Example> {
        let mut v = Vec::new();
        for (ci, c) in clips.iter().enumerate() {
            if c.validation != validation {
                continue;
            }
            if !pos && let Some(late) = c.late {
                v.extend((late..c.embeddings.len()).map(|k| (ci as u32, k as u32)));
            }
            if c.positive.is_some() != pos {
                continue;
            }
            let n = c.embeddings.len();
            let range = match &c.positive {
                Some(r) => r.start..r.end.min(n),
                None => HEAD_WINDOW - 1..n,
            };
            v.extend(range.map(|k| (ci as u32, k as u32)));
        }
        v
    };
    let train_pos = examples(true, false);
    let train_neg = examples(false, false);
    let fresh = |v: &[Example]| -> Vec<Example> {
        v.iter()
            .copied()
            .filter(|&(c, _)| clips[c as usize].fresh)
            .collect()
    };
    let (fresh_pos, fresh_neg) = (fresh(&train_pos), fresh(&train_neg));
    let val_pos = examples(true, true);
    let val_neg = examples(false, true);
    if train_pos.is_empty() || train_neg.is_empty() {
        return Err(Error::Data(format!(
            "not enough data: {} positive and {} negative training windows",
            train_pos.len(),
            train_neg.len()
        )));
    }

    const BATCH: usize = 256;
    const PATIENCE: usize = 10;
    let hidden = weights.hidden();
    let mut adam = Adam::new(&weights);
    let mut scratch = Scratch::new(BATCH, hidden);
    let mut hard: Vec<Example> = Vec::new();
    let mut best = (f64::INFINITY, weights.clone(), 0);
    let bar = progress(opts.progress, opts.max_epochs, bar_label);
    let mut epochs = 0;
    for epoch in 0..opts.max_epochs {
        epochs = epoch + 1;
        if (epoch >= 1 && epoch % 2 == 1) || (epoch == 0 && start.is_some()) {
            hard = mine_hard(&weights, clips, &train_neg, HARD_NEGATIVES);
        }
        for _ in 0..opts.steps_per_epoch {
            // Half positives, a quarter hard negatives, a quarter random negatives; in an
            // update, a quarter of each half comes from the new clips.
            let mut batch: Vec<(Example, f32)> = Vec::with_capacity(BATCH);
            for j in 0..BATCH / 2 {
                let ex = if !fresh_pos.is_empty() && j % 4 == 0 {
                    fresh_pos[rng.below(fresh_pos.len())]
                } else {
                    train_pos[rng.below(train_pos.len())]
                };
                batch.push((ex, 1.0));
            }
            for j in 0..BATCH / 2 {
                let ex = if !fresh_neg.is_empty() && j % 4 == 1 {
                    fresh_neg[rng.below(fresh_neg.len())]
                } else if !hard.is_empty() && j % 2 == 0 {
                    hard[rng.below(hard.len())]
                } else {
                    train_neg[rng.below(train_neg.len())]
                };
                batch.push((ex, 0.0));
            }
            scratch.step(&mut weights, &mut adam, clips, &batch, opts.learning_rate);
        }
        // Early stopping on what matters: the validation miss rate at the threshold that
        // meets the false-alarm target, the balanced loss breaking ties.
        let loss = if opts.max_epochs == 1 {
            0.0
        } else if val_pos.is_empty() || val_neg.is_empty() {
            balanced_loss(&weights, clips, &train_pos, &train_neg)
        } else {
            // Counting only: epochs are compared where they are measured; the tail fit is for
            // the final threshold.
            let miss =
                calibrate_with(&weights, clips, opts.target_fa_per_hour, false, 0.5, None).miss;
            miss + 0.01 * balanced_loss(&weights, clips, &val_pos, &val_neg)
        };
        bar.set_message(format!("{bar_label} (validation {loss:.4})"));
        bar.inc(1);
        if loss < best.0 {
            best = (loss, weights.clone(), epoch + 1);
        } else if epoch + 1 - best.2 >= PATIENCE {
            break;
        }
    }
    bar.finish_and_clear();
    summary.epochs = epochs;
    Ok(best.1)
}

/// Per-dimension mean and 1/std over the training clips' embeddings.
fn statistics(clips: &[Clip]) -> (Vec<f32>, Vec<f32>) {
    let mut sum = [0f64; EMBEDDING_DIM];
    let mut sq = [0f64; EMBEDDING_DIM];
    let mut n = 0f64;
    for c in clips.iter().filter(|c| !c.validation) {
        for e in &c.embeddings {
            for i in 0..EMBEDDING_DIM {
                sum[i] += f64::from(e[i]);
                sq[i] += f64::from(e[i]).powi(2);
            }
            n += 1.0;
        }
    }
    let n = n.max(1.0);
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let inv: Vec<f32> = (0..EMBEDDING_DIM)
        .map(|i| {
            let var = (sq[i] / n - (sum[i] / n).powi(2)).max(1e-6);
            (1.0 / var.sqrt()) as f32
        })
        .collect();
    (mean, inv)
}

/// Logits of many windows at once: matrix products of 1024 windows, half of the windows on a
/// second thread when there are many (each logit is the same bits either way).
fn logits(weights: &Weights, clips: &[Clip], examples: &[Example]) -> Vec<f32> {
    if examples.len() < 4096 {
        return logits_of(weights, clips, examples);
    }
    let (first, second) = examples.split_at(examples.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| logits_of(weights, clips, second));
        let mut out = logits_of(weights, clips, first);
        out.extend(other.join().expect("the logits thread does not panic"));
        out
    })
}

/// [`logits`] on the calling thread.
fn logits_of(weights: &Weights, clips: &[Clip], examples: &[Example]) -> Vec<f32> {
    let h = weights.hidden();
    let mut out = Vec::with_capacity(examples.len());
    let mut x = Vec::new();
    let mut a = Vec::new();
    for chunk in examples.chunks(1024) {
        x.clear();
        for &ex in chunk {
            x.extend_from_slice(window(clips, ex));
        }
        a.clear();
        a.resize(chunk.len() * h, 0.0);
        gemm(chunk.len(), HEAD_INPUTS, h, &x, None, &weights.w1, &mut a);
        for row in a.chunks_exact(h) {
            let z: f32 = row
                .iter()
                .zip(&weights.b1)
                .zip(&weights.w2)
                .map(|((v, b), w)| (v + b).max(0.0) * w)
                .sum();
            out.push(z + weights.b2);
        }
    }
    out
}

fn mine_hard(
    weights: &Weights,
    clips: &[Clip],
    negatives: &[Example],
    keep: usize,
) -> Vec<Example> {
    let z = logits(weights, clips, negatives);
    let mut order: Vec<usize> = (0..negatives.len()).collect();
    order.sort_by(|&a, &b| z[b].total_cmp(&z[a]).then(a.cmp(&b)));
    order.truncate(keep);
    order.into_iter().map(|i| negatives[i]).collect()
}

fn balanced_loss(weights: &Weights, clips: &[Clip], pos: &[Example], neg: &[Example]) -> f64 {
    let bce = |z: f32, y: f32| -> f64 {
        // log(1 + e^-z) for y = 1, log(1 + e^z) for y = 0, computed stably.
        let z = f64::from(if y > 0.5 { -z } else { z });
        z.max(0.0) + (-z.abs()).exp().ln_1p()
    };
    let lp: f64 = logits(weights, clips, pos)
        .iter()
        .map(|&z| bce(z, 1.0))
        .sum::<f64>();
    let ln: f64 = logits(weights, clips, neg)
        .iter()
        .map(|&z| bce(z, 0.0))
        .sum::<f64>();
    0.5 * lp / pos.len().max(1) as f64 + 0.5 * ln / neg.len().max(1) as f64
}

/// Row-major `c = a · b`, b being k×n and a either m×k (`a_t` `None`) or, with
/// `a_t = Some(stride)`, the transpose of the first m columns of a k×`stride` matrix.
fn gemm(m: usize, k: usize, n: usize, a: &[f32], a_t: Option<usize>, b: &[f32], c: &mut [f32]) {
    let (rsa, csa, a_len) = match a_t {
        None => (k, 1, m * k),
        Some(stride) => (1, stride, (k.max(1) - 1) * stride + m),
    };
    assert!(a_t.is_none_or(|stride| stride >= m));
    assert!(a.len() >= a_len && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above keep every index matrixmultiply computes from these strides
    // inside the slices, and `c` does not alias `a` or `b` (it is a distinct &mut).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Adam moments for every weight.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn new(w: &Weights) -> Self {
        let n = w.w1.len() + 2 * w.hidden() + 1;
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }
}

const WEIGHT_DECAY: f32 = 1e-2;

/// Adam's decay rates of the first and second moments.
const ADAM_BETA: (f32, f32) = (0.9, 0.999);

/// One Adam step on `p` (with decoupled weight decay when `decay`), given its gradient `g` and
/// moments; `bias` holds the two bias corrections `1 - beta^t`. Over plain slices, so it
/// vectorises.
fn adam_update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    bias: (f32, f32),
    lr: f32,
    decay: bool,
) {
    let (c1, c2) = bias;
    let (b1, b2) = ADAM_BETA;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        let update = (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        if decay {
            *p -= lr * WEIGHT_DECAY * *p;
        }
        *p -= lr * update;
    }
}

/// Buffers for one batch, reused across steps. The two matrix products of a step are each split
/// between two threads by rows of their result, so a step uses both cores of a small board and
/// every value is summed in the same order as by one product: the same bits on any core count.
struct Scratch {
    x: Vec<f32>,
    pre: Vec<f32>,
    d_pre: Vec<f32>,
    grad: Vec<f32>,
}

impl Scratch {
    fn new(batch: usize, hidden: usize) -> Self {
        Scratch {
            x: Vec::with_capacity(batch * HEAD_INPUTS),
            pre: vec![0.0; batch * hidden],
            d_pre: vec![0.0; batch * hidden],
            grad: Vec::new(),
        }
    }

    /// One Adam step on a class-balanced binary cross-entropy.
    fn step(
        &mut self,
        w: &mut Weights,
        adam: &mut Adam,
        clips: &[Clip],
        batch: &[(Example, f32)],
        lr: f32,
    ) {
        let h = w.hidden();
        let b = batch.len();
        self.x.resize(b * HEAD_INPUTS, 0.0);
        self.pre.resize(b * h, 0.0);
        self.d_pre.resize(b * h, 0.0);
        // Forward: each thread gathers and multiplies half of the batch's windows.
        let half = b.div_ceil(2);
        let forward = |examples: &[(Example, f32)], x: &mut [f32], pre: &mut [f32]| {
            for (row, &(ex, _)) in x.chunks_exact_mut(HEAD_INPUTS).zip(examples) {
                row.copy_from_slice(window(clips, ex));
            }
            gemm(examples.len(), HEAD_INPUTS, h, x, None, &w.w1, pre);
        };
        let (x0, x1) = self.x.split_at_mut(half * HEAD_INPUTS);
        let (pre0, pre1) = self.pre.split_at_mut(half * h);
        std::thread::scope(|s| {
            s.spawn(|| forward(&batch[half..], x1, pre1));
            forward(&batch[..half], x0, pre0);
        });

        let n_pos = batch.iter().filter(|e| e.1 > 0.5).count().max(1) as f32;
        let n_neg = batch.iter().filter(|e| e.1 <= 0.5).count().max(1) as f32;
        let n1 = w.w1.len();
        self.grad.clear();
        self.grad.resize(n1 + 2 * h + 1, 0.0);
        let (g_w1, rest) = self.grad.split_at_mut(n1);
        let (g_b1, rest) = rest.split_at_mut(h);
        let (g_w2, g_b2) = rest.split_at_mut(h);
        for (r, &(_, y)) in batch.iter().enumerate() {
            let pre = &mut self.pre[r * h..(r + 1) * h];
            for (p, bias) in pre.iter_mut().zip(&w.b1) {
                *p += bias;
            }
            let z: f32 = pre
                .iter()
                .zip(&w.w2)
                .map(|(p, w)| p.max(0.0) * w)
                .sum::<f32>()
                + w.b2;
            let weight = if y > 0.5 { 0.5 / n_pos } else { 0.5 / n_neg };
            let dz = weight * (crate::head::sigmoid(z) - y);
            g_b2[0] += dz;
            let d_pre = &mut self.d_pre[r * h..(r + 1) * h];
            for j in 0..h {
                let a = pre[j].max(0.0);
                g_w2[j] += dz * a;
                d_pre[j] = if pre[j] > 0.0 { dz * w.w2[j] } else { 0.0 };
                g_b1[j] += d_pre[j];
            }
        }
        // Backward: g_w1 = xᵀ · d_pre, each thread the rows of half of the window's inputs.
        let inputs = HEAD_INPUTS / 2;
        let (g0, g1) = g_w1.split_at_mut(inputs * h);
        let (x, d_pre) = (&self.x[..], &self.d_pre[..]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let m = HEAD_INPUTS - inputs;
                gemm(m, b, h, &x[inputs..], Some(HEAD_INPUTS), d_pre, g1);
            });
            gemm(inputs, b, h, x, Some(HEAD_INPUTS), d_pre, g0);
        });

        adam.t += 1;
        let bias = (
            1.0 - ADAM_BETA.0.powi(adam.t),
            1.0 - ADAM_BETA.1.powi(adam.t),
        );
        let (mut g, mut m, mut v) = (&self.grad[..], &mut adam.m[..], &mut adam.v[..]);
        let groups: [(&mut [f32], bool); 4] = [
            (&mut w.w1, true),
            (&mut w.b1, false),
            (&mut w.w2, true),
            (std::slice::from_mut(&mut w.b2), false),
        ];
        for (p, decay) in groups {
            let n = p.len();
            let (g_p, g_rest) = g.split_at(n);
            let (m_p, m_rest) = std::mem::take(&mut m).split_at_mut(n);
            let (v_p, v_rest) = std::mem::take(&mut v).split_at_mut(n);
            adam_update(p, g_p, m_p, v_p, bias, lr, decay);
            (g, m, v) = (g_rest, m_rest, v_rest);
        }
    }
}

/// A threshold set on the validation data, and what it gives there.
struct Calibration {
    /// The threshold: what the data gave, raised to the floor asked for.
    threshold: f32,
    /// What the data alone gave.
    unfloored: f32,
    /// Validation miss rate at `threshold`.
    miss: f64,
    /// Validation false alarms per hour at `threshold`.
    fa_per_hour: f64,
    /// Hours of validation negatives.
    hours: f64,
}

/// The head's threshold: [`calibrate_with`] with the tail extrapolated, and at least `floor`.
fn calibrate(
    weights: &Weights,
    clips: &[Clip],
    target: f64,
    floor: f32,
    cut: Option<f32>,
) -> Calibration {
    calibrate_with(weights, clips, target, true, floor, cut)
}

/// False alarms counted on the validation negatives between which the tail is fitted.
const TAIL_EVENTS: (f64, f64) = (30.0, 3.0);

/// The threshold where the false alarms' tail, extrapolated, meets `target` per hour.
///
/// Validation negatives are a fraction of an hour, so counting alone cannot place a threshold
/// at 0.5 false alarms per hour (one alarm in 0.45 h is already 2.2 per hour): the first
/// threshold with no alarm left is where counting stops, and held-out audio then fires several
/// times an hour. The count of alarms falls about exponentially with the threshold's logit in
/// the tail, so it is fitted between 30 and 3 alarms and followed down to `target × hours`
/// alarms. `fa_rate` gives alarms per hour at a threshold (probability).
fn tail_threshold(fa_rate: &dyn Fn(f32) -> f64, hours: f64, target: f64) -> Option<f32> {
    if hours <= 0.0 || target <= 0.0 {
        return None;
    }
    let count = |logit: f32| fa_rate(crate::head::sigmoid(logit)) * hours;
    let first_at_most = |n: f64| {
        (0..=920)
            .map(|i| -4.0 + i as f32 * 0.025)
            .map(|l| (l, count(l)))
            .find(|&(_, c)| c <= n)
    };
    let (l1, n1) = first_at_most(TAIL_EVENTS.0)?;
    let (l2, n2) = first_at_most(TAIL_EVENTS.1)?;
    if l2 <= l1 || n2 <= 0.0 || n1 <= n2 {
        return None;
    }
    let scale = f64::from(l2 - l1) / (n1 / n2).ln();
    let logit = f64::from(l2) + scale * (n2 / (target * hours)).ln();
    Some(crate::head::sigmoid(logit as f32))
}

/// Picks the lowest threshold (≥ 0.5) whose false alarms per hour on the validation negatives
/// meet `target` and, with `tail`, raises it to [`tail_threshold`] where that is higher, and to
/// `floor`. With `cut` (the head's template cut), scores are taken after the template check
/// where the clips' [`Clip::distances`] hold one; the others stand as the network gives them.
fn calibrate_with(
    weights: &Weights,
    clips: &[Clip],
    target: f64,
    tail: bool,
    floor: f32,
    cut: Option<f32>,
) -> Calibration {
    let refractory = (f64::from(REFRACTORY_SECONDS) / 0.08).ceil() as usize;
    let mut neg_scores = Vec::new();
    let mut hours = 0.0;
    for (ci, c) in clips.iter().enumerate() {
        let n = c.embeddings.len();
        if !c.validation || n < HEAD_WINDOW || c.hit.is_some() {
            continue;
        }
        neg_scores.push(checked_scores(weights, clips, ci, HEAD_WINDOW - 1..n, cut));
        hours += c.seconds / 3600.0;
    }
    // Each positive copy judged at its best window, after the check where it was measured
    // there (a copy whose best window the check lowers counts as missed, though a later
    // window might pass it: the miss reported errs high).
    let pos_best: Vec<f32> = best_hit_windows(weights, clips, |c| {
        c.validation && c.embeddings.len() >= HEAD_WINDOW
    })
    .into_iter()
    .map(|(ci, k, score)| match cut {
        Some(cut) => checked_at(&clips[ci], k, score, cut),
        None => score,
    })
    .collect();
    let fa_rate = |t: f32| -> f64 {
        let n: usize = neg_scores
            .iter()
            .map(|s| fire_indices(s, t, refractory).len())
            .sum();
        if hours > 0.0 { n as f64 / hours } else { 0.0 }
    };
    let miss = |t: f32| -> f64 {
        pos_best.iter().filter(|&&b| b < t).count() as f64 / pos_best.len().max(1) as f64
    };
    // Thresholds from 0.5 up, evenly in logit space to 0.99999.
    let mut chosen = 0.99999f32;
    for i in 0..=600 {
        let t = crate::head::sigmoid(i as f32 * 11.5 / 600.0);
        if fa_rate(t) <= target {
            chosen = t;
            break;
        }
    }
    if tail && let Some(t) = tail_threshold(&fa_rate, hours, target) {
        chosen = chosen.max(t);
    }
    let threshold = chosen.max(floor);
    Calibration {
        threshold,
        unfloored: chosen,
        miss: miss(threshold),
        fa_per_hour: fa_rate(threshold),
        hours,
    }
}

/// Scores of clip `ci`'s `windows` (newest embedding indices); with `cut`, each window with a
/// distance in [`Clip::distances`] gets [`crate::verify::checked_score`]'s instead.
fn checked_scores(
    weights: &Weights,
    clips: &[Clip],
    ci: usize,
    windows: std::ops::Range<usize>,
    cut: Option<f32>,
) -> Vec<f32> {
    let first = windows.start;
    let ex: Vec<Example> = windows.map(|k| (ci as u32, k as u32)).collect();
    let mut s: Vec<f32> = logits(weights, clips, &ex)
        .into_iter()
        .map(crate::head::sigmoid)
        .collect();
    if let Some(cut) = cut {
        for &(k, d) in &clips[ci].distances {
            if let Some(v) = (k as usize).checked_sub(first).and_then(|i| s.get_mut(i)) {
                *v = crate::verify::checked_score(*v, d, cut);
            }
        }
    }
    s
}

/// `score`, window `k`'s of clip `c`, after the check if [`Clip::distances`] holds its distance.
fn checked_at(c: &Clip, k: usize, score: f32, cut: f32) -> f32 {
    c.distance_at(k)
        .map_or(score, |d| crate::verify::checked_score(score, d, cut))
}

/// What a head was trained on, by embedding-cache key, so `hark update` can replay it without
/// the audio and without the backbone. Stored beside the head as `<head>.replay` (JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Replay {
    /// sha256 of the backbone the cached embeddings come from.
    pub backbone_sha256: String,
    /// One entry per embedded clip or file.
    pub entries: Vec<ReplayEntry>,
}

/// One embedded clip or file of a head's training data.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ReplayEntry {
    /// Embedding-cache key (hex).
    pub key: String,
    /// The part `[start, end)` of the cached embeddings it is (a block of a long negative
    /// recording); absent for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[usize; 2]>,
    /// Positive windows `[start, end)` (positive clips only).
    pub positive: Option<[usize; 2]>,
    /// Windows where a detection is a hit (positive clips only).
    pub hit: Option<[usize; 2]>,
    /// First window that ends well after the word (positive clips only): a negative.
    #[serde(default)]
    pub late: Option<usize>,
    /// In the validation split.
    pub validation: bool,
    /// Seconds of negative audio (0 for positives).
    pub seconds: f64,
    /// A training negative holding one of the windows the head scored highest: updates
    /// replay these (with every positive and the validation set), not all negatives.
    #[serde(default)]
    pub hard: bool,
    /// Validation clips: the distance to the head's templates where the network scored at
    /// least [`crate::verify::MIN_SCORE`] in training, as (embedding index, distance), so
    /// updates calibrate on checked scores too. Absent in manifests written before it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distances: Vec<(u32, f32)>,
}

impl ReplayEntry {
    fn of(c: &Clip, hard: bool) -> Self {
        ReplayEntry {
            key: crate::backbone::hex(&c.key),
            range: c.range,
            positive: c.positive.as_ref().map(|r| [r.start, r.end]),
            hit: c.hit.as_ref().map(|r| [r.start, r.end]),
            late: c.late,
            validation: c.validation,
            seconds: c.seconds,
            hard,
            distances: c.distances.clone(),
        }
    }
}

impl Replay {
    /// The manifest of `clips` (standardised by `weights`), marking the clips that hold the
    /// highest-scoring training negatives as hard.
    fn of(head: &Head, clips: &[Clip]) -> Self {
        let negatives: Vec<Example> = clips
            .iter()
            .enumerate()
            .filter(|(_, c)| c.positive.is_none() && !c.validation)
            .flat_map(|(ci, c)| {
                (HEAD_WINDOW - 1..c.embeddings.len()).map(move |k| (ci as u32, k as u32))
            })
            .collect();
        let mut hard = vec![false; clips.len()];
        for (c, _) in mine_hard(&head.weights, clips, &negatives, 4096) {
            hard[c as usize] = true;
        }
        Replay {
            backbone_sha256: head.info.backbone_sha256.clone(),
            entries: clips
                .iter()
                .zip(hard)
                .map(|(c, hard)| ReplayEntry::of(c, hard || c.fresh))
                .collect(),
        }
    }

    /// Where the replay manifest of `head` lives: `<head>.replay`.
    pub fn path_for(head: &Path) -> PathBuf {
        crate::atomic::beside(head, ".replay")
    }

    /// Writes the manifest atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).expect("a Replay always serialises");
        crate::atomic::write_bytes(path, &json)
    }

    /// Reads a manifest.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Output {
            path: path.to_path_buf(),
            problem: format!("corrupt replay manifest ({e}); retrain with hark train"),
        })
    }
}

/// The lowest threshold, not above `old`, at which the `new` weights catch as many of the old
/// positive clips (every clean and augmented copy, over its hit windows; an update's new clips
/// left out) as the `old` weights did at `old`.
fn threshold_keeping_hits(old_weights: &Weights, new: &Weights, clips: &[Clip], old: f32) -> f32 {
    let old_positive = |c: &Clip| !c.fresh;
    let caught = positive_bests(old_weights, clips, old_positive)
        .into_iter()
        .filter(|&b| b >= old)
        .count();
    let mut bests = positive_bests(new, clips, old_positive);
    bests.sort_by(|a, b| b.total_cmp(a));
    match caught.checked_sub(1).and_then(|i| bests.get(i)) {
        Some(&t) => t.min(old),
        None => old,
    }
}

/// The best score over its hit windows of each positive clip that `which` picks (0 for a
/// clip with none).
fn positive_bests(weights: &Weights, clips: &[Clip], which: impl Fn(&Clip) -> bool) -> Vec<f32> {
    best_hit_windows(weights, clips, which)
        .into_iter()
        .map(|(_, _, score)| score)
        .collect()
}

/// For each clip with hit windows that `which` picks, in order: its index, the embedding index
/// of its best-scoring hit window (the first of equals) and that score (0 when it has none).
fn best_hit_windows(
    weights: &Weights,
    clips: &[Clip],
    which: impl Fn(&Clip) -> bool,
) -> Vec<(usize, usize, f32)> {
    // Every clip's hit windows scored in one batch, then the best of each clip's.
    let mut ex: Vec<Example> = Vec::new();
    let mut ends = Vec::new();
    for (ci, c) in clips.iter().enumerate() {
        if let Some(hit) = c.hit.as_ref().filter(|_| which(c)) {
            let lo = hit.start.max(HEAD_WINDOW - 1);
            let hi = hit.end.min(c.embeddings.len());
            ex.extend((lo..hi).map(|k| (ci as u32, k as u32)));
            ends.push((ci, lo, ex.len()));
        }
    }
    let z = logits(weights, clips, &ex);
    let mut start = 0;
    ends.into_iter()
        .map(|(ci, lo, end)| {
            let (at, best) =
                z[start..end]
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |a, (i, &v)| if v > a.1 { (i, v) } else { a },
                    );
            start = end;
            (ci, lo + at, crate::head::sigmoid(best))
        })
        .collect()
}

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
/// every old positive the old threshold caught ([`threshold_keeping_hits`]).
pub fn update(
    backbone: &Backbone,
    head: &Head,
    replay: &Replay,
    opts: &TrainOptions,
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
    let post = (POST_PAD * 16_000.0) as usize;
    let mut skipped = Vec::new();
    let mut jobs = Vec::new();
    let mut labels = Vec::new();
    let mut rng = Rng::new(opts.seed ^ 0x0DA7E);
    let pos_files = wav_files(&opts.positives, Split::All)?;
    let mut new_positives = 0;
    // Each new positive also becomes a template (when the head has them): a wake word the
    // check turned away is then near one.
    let mut cepstra = crate::verify::Cepstra::new();
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
            let pre_c = ((PRE_PAD + 0.3 + shift) * 16_000.0) as usize;
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

/// `<file>.prev`: where the previous version of a head (or its replay manifest) is kept.
pub fn previous_path(path: &Path) -> PathBuf {
    crate::atomic::beside(path, ".prev")
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
        let replay_path = Replay::path_for(path);
        crate::atomic::write_bytes(&previous_path(path), &old.to_bytes())?;
        crate::atomic::write_bytes(
            &previous_path(&replay_path),
            &std::fs::read(&replay_path).map_err(|e| Error::io(&replay_path, e))?,
        )?;
        self.replay.save(&replay_path)?;
        self.head.save(path)
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

impl TrainOptions {
    /// Settings for `hark update`: a short fine-tuning at a lower learning rate.
    pub fn for_update(positives: Vec<PathBuf>, negatives: Vec<PathBuf>, cache: Cache) -> Self {
        let mut o = TrainOptions::new("", positives, negatives);
        o.cache = cache;
        o.max_epochs = 1;
        o.steps_per_epoch = 60;
        o.learning_rate = 5e-4;
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::sigmoid;

    /// A long negative recording's blocks: every window in exactly one, each block's embeddings
    /// starting with the context its first window reads, the seconds adding up to the file's.
    #[test]
    fn a_recording_is_cut_into_blocks_that_share_no_window() {
        let samples = 16_000 * 200 + 123; // 200 s: 7 blocks of about 28.6 s
        let held_out = held_out_blocks(Path::new("room.wav"), samples);
        assert_eq!(held_out.len(), 7);
        let pre = (PRE_PAD * 16_000.0) as usize;
        let post = (POST_PAD * 16_000.0) as usize;
        let embeddings = (pre + samples + post - EMBEDDING_END as usize) / 1280 + 1;
        let blocks = negative_blocks(embeddings, samples, &held_out);
        assert_eq!(blocks.len(), 7);
        let mut next_window = HEAD_WINDOW - 1;
        for (range, validation, seconds) in &blocks {
            assert_eq!(range.start + HEAD_WINDOW - 1, next_window, "{blocks:?}");
            assert!(range.len() >= HEAD_WINDOW);
            // About 28.6 s of audio; its windows, one per 80 ms, about as many.
            assert!((seconds - 200.0 / 7.0).abs() < 0.01, "{seconds}");
            let windows = (range.len() + 1 - HEAD_WINDOW) as f64 * 0.08;
            assert!(
                (windows - seconds).abs() < 1.3,
                "{windows} s of windows, {seconds} s"
            );
            next_window = range.end;
            let b = blocks.iter().position(|x| x.0 == *range).unwrap();
            assert_eq!(*validation, held_out[b]);
        }
        assert_eq!(next_window, embeddings);
        let total: f64 = blocks.iter().map(|b| b.2).sum();
        assert!((total - samples as f64 / 16_000.0).abs() < 1e-9);
        // A block's windows are those whose newest sample lies in it.
        let newest = |k: usize| (1280 * k + EMBEDDING_END as usize).saturating_sub(pre);
        for (b, (range, _, _)) in blocks.iter().enumerate() {
            let first = range.start + HEAD_WINDOW - 1;
            let last = range.end - 1;
            let span = block_samples(b, 7, samples);
            assert!(b == 0 || newest(first) > span.start, "block {b}");
            assert!(b == 6 || newest(last) <= span.end, "block {b}");
        }
    }

    /// The update's threshold floor: where the new weights catch as many old positives as the
    /// old weights did at the old threshold, and never above the old threshold.
    #[test]
    fn the_floor_keeps_the_positives_the_old_threshold_caught() {
        // One hidden unit passing the newest embedding's first value: the score is
        // sigmoid(v + b2), so each clip's best score is set by its embeddings.
        let mut old = Weights::zeros(1);
        old.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
        old.w2[0] = 1.0;
        let values = [-1.0f32, 0.5, 2.0, 3.0, 4.0];
        let clip = |v: f32, fresh: bool| {
            let mut e = [0f32; EMBEDDING_DIM];
            e[0] = v;
            Clip {
                key: [0; 32],
                range: None,
                fresh,
                embeddings: vec![e; HEAD_WINDOW + 2],
                positive: Some(HEAD_WINDOW - 1..HEAD_WINDOW + 2),
                hit: Some(HEAD_WINDOW - 1..HEAD_WINDOW + 2),
                late: None,
                validation: false,
                seconds: 0.0,
                distances: Vec::new(),
            }
        };
        let mut clips: Vec<Clip> = values.iter().map(|&v| clip(v, false)).collect();
        // A new clip of the update: not an old positive, whatever it scores.
        clips.push(clip(10.0, true));
        let old_t = sigmoid(1.5); // catches 2.0, 3.0 and 4.0
        // Every score one logit lower: the third best, 2.0 - 1, keeps all three.
        let mut lower = old.clone();
        lower.b2 = -1.0;
        let t = threshold_keeping_hits(&old, &lower, &clips, old_t);
        assert!((t - sigmoid(1.0)).abs() < 1e-6, "{t}");
        let t = threshold_keeping_hits(&old, &lower, &clips, sigmoid(2.5));
        assert!((t - sigmoid(2.0)).abs() < 1e-6, "{t}");
        // Scores higher: the old threshold stays.
        let mut higher = old.clone();
        higher.b2 = 1.0;
        assert_eq!(threshold_keeping_hits(&old, &higher, &clips, old_t), old_t);
        // Nothing caught before: nothing to keep, the old threshold stays.
        assert_eq!(threshold_keeping_hits(&old, &lower, &clips, 0.999), 0.999);
    }

    /// With a cut, the threshold is set on the scores the template check leaves: a held-out
    /// false alarm the check drops no longer holds it up, one it lowers holds it up less, one
    /// it passes counts as before; a positive copy the check drops counts as missed.
    #[test]
    fn the_threshold_is_set_on_the_checked_scores() {
        // Score = sigmoid(max(0, the newest embedding's first value) - 1).
        let mut w = Weights::zeros(1);
        w.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
        w.w2[0] = 1.0;
        w.b2 = -1.0;
        let embedding = |v: f32| {
            let mut e = [0f32; EMBEDDING_DIM];
            e[0] = v;
            e
        };
        // An hour of held-out negatives, quiet (score 0.27) but for one window at 0.982.
        let alarm = HEAD_WINDOW + 40;
        let mut embeddings = vec![embedding(0.0); 2000];
        embeddings[alarm] = embedding(5.0);
        let negative = |d: f32| Clip {
            key: [0; 32],
            range: None,
            fresh: false,
            embeddings: embeddings.clone(),
            positive: None,
            hit: None,
            late: None,
            validation: true,
            seconds: 3600.0,
            distances: vec![(alarm as u32, d)],
        };
        // A held-out positive copy scoring 0.9997 at its best window, 12 hops in.
        let mut best = vec![embedding(0.0); HEAD_WINDOW + 20];
        best[HEAD_WINDOW + 11] = embedding(9.0);
        let positive = |d: f32| Clip {
            embeddings: best.clone(),
            positive: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
            hit: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
            seconds: 0.0,
            distances: vec![((HEAD_WINDOW + 11) as u32, d)],
            ..negative(0.0)
        };
        let cut = 10.0;
        let threshold = |clips: &[Clip], cut: Option<f32>| {
            let c = calibrate_with(&w, clips, 0.5, false, 0.5, cut);
            (c.threshold, c.miss, c.fa_per_hour)
        };
        // Without a cut, and with the alarm within the ease: the network's 0.982 sets it.
        for (cut, d) in [(None, 50.0), (Some(cut), 5.0)] {
            let (t, miss, fa) = threshold(&[negative(d), positive(5.0)], cut);
            assert!(t > sigmoid(4.0) && t < sigmoid(4.1), "{cut:?} {d}: {t}");
            assert_eq!((miss, fa), (0.0, 0.0));
        }
        // Beyond the cut: dropped, so the lowest threshold tried stands.
        let (t, _, fa) = threshold(&[negative(10.5), positive(5.0)], Some(cut));
        assert_eq!((t, fa), (0.5, 0.0));
        // At 0.8 of the cut: the alarm's logit 4 lowered by 8 × 0.2 to 2.4.
        let (t, _, _) = threshold(&[negative(8.0), positive(5.0)], Some(cut));
        assert!(t > sigmoid(2.4) && t < sigmoid(2.5), "{t}");
        // A positive copy beyond the cut is missed at every threshold.
        let (_, miss, _) = threshold(&[negative(5.0), positive(11.0)], Some(cut));
        assert_eq!(miss, 1.0);
    }

    /// The distances training calibrates with are measured where they belong: for a block of
    /// a long recording, at each window scoring 0.5 or more, on the file's audio up to that
    /// window's end (the block's first embedding is not the file's); for a positive copy at its
    /// best window only; nowhere in clips outside the validation split.
    #[test]
    fn distances_are_measured_at_the_candidates_in_the_audio_that_made_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train");
        let path = dir.join("computer/computer-en-099d6097-ce0f-403a-b30d-0ced99f1e44e.wav");
        let clip = read_wav(&path).unwrap();
        let mut cepstra = crate::verify::Cepstra::new();
        let span = locate_word(&clip).unwrap();
        let words = vec![cepstra.template(&clip, span.start..span.end).unwrap()];
        // The "file": the clip padded, long enough for 60 embeddings.
        let audio = pad_samples(&clip, 16_000, 16_000 * 3);
        let job = |x: Vec<f32>| Job {
            key: [0; 32],
            samples: x.len(),
            make: Box::new(move || Ok(x.clone())),
        };
        let jobs = vec![job(audio.clone()), job(audio.clone())];
        // Score = sigmoid(max(0, the newest embedding's first value) - 1): 0.27 at 0, 0.98 at 5.
        let mut w = Weights::zeros(1);
        w.w1[(HEAD_WINDOW - 1) * EMBEDDING_DIM] = 1.0;
        w.w2[0] = 1.0;
        w.b2 = -1.0;
        let values = |high: &[(usize, f32)]| {
            let mut e = vec![[0f32; EMBEDDING_DIM]; HEAD_WINDOW + 20];
            for &(k, v) in high {
                e[k][0] = v;
            }
            e
        };
        let (a, b) = (HEAD_WINDOW + 2, HEAD_WINDOW + 9);
        let block = || Clip {
            key: [0; 32],
            range: Some([30, 30 + HEAD_WINDOW + 20]),
            fresh: false,
            embeddings: values(&[(a, 5.0), (b, 3.0)]),
            positive: None,
            hit: None,
            late: None,
            validation: true,
            seconds: 2.0,
            distances: Vec::new(),
        };
        // A positive copy whose hit windows tie at the top: the first of them is measured.
        let copy = Clip {
            range: None,
            embeddings: values(&[(a, 6.0), (b, 6.0), (b + 1, 2.0)]),
            positive: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
            hit: Some(HEAD_WINDOW..HEAD_WINDOW + 20),
            seconds: 0.0,
            ..block()
        };
        let training = Clip {
            validation: false,
            ..block()
        };
        let mut clips = vec![block(), copy, training];
        let sources = [1, 0, 1];
        measure_distances(&words, &w, &mut clips, &sources, &jobs, &|_, _| {}).unwrap();
        let mut at = |first: usize, k: usize| {
            let end = crate::embedder::samples_at_embedding((first + k) as u64) as usize;
            let d = crate::verify::Templates::distance_to(&words, &mut cepstra, &audio[..end]);
            (k as u32, d)
        };
        assert_eq!(clips[0].distances, vec![at(30, a), at(30, b)]);
        assert_ne!(
            clips[0].distances[0].1,
            at(0, a).1,
            "the block's offset matters"
        );
        assert_eq!(clips[1].distances, vec![at(0, a)]);
        assert!(clips[2].distances.is_empty());
    }

    /// Short files are one block, kept for training; longer ones split evenly.
    #[test]
    fn only_recordings_longer_than_45_s_are_cut() {
        assert_eq!(
            held_out_blocks(Path::new("a.wav"), 16_000 * 44),
            vec![false]
        );
        assert_eq!(held_out_blocks(Path::new("a.wav"), 16_000 * 46).len(), 2);
        let hour = held_out_blocks(Path::new("room.wav"), 16_000 * 3600);
        assert_eq!(hour.len(), 120);
        let held = hour.iter().filter(|&&v| v).count();
        assert!((12..=36).contains(&held), "{held} of 120 blocks held out");
        assert_eq!(block_samples(119, 120, 16_000 * 3600).end, 16_000 * 3600);
        let blocks = negative_blocks(10, 16_000, &[false]);
        assert_eq!(blocks, vec![(0..10, false, 1.0)]);
    }

    /// New positives in an update are padded with their own sound: the samples next to each
    /// edge of the clip continue it, mirrored, the word's surroundings only; a clip with
    /// too little sound beside the word is padded with zeros on that side.
    #[test]
    fn padding_with_own_sound_continues_the_clip() {
        // 0.5 s of hum, a "word" from 0.5 to 1.0 s, 0.05 s after it.
        let clip: Vec<f32> = (0..16_800)
            .map(|i| {
                let hum = 0.01 * (i as f32 * 0.05).sin();
                if (8_000..16_000).contains(&i) {
                    0.5
                } else {
                    hum
                }
            })
            .collect();
        let (pre, post) = (20_000, 8_000);
        let v = pad_with_own_sound(&clip, 8_000..16_000, pre, post);
        assert_eq!(v.len(), pre + clip.len() + post);
        assert_eq!(&v[pre..pre + clip.len()], &clip[..]);
        // Mirrored at the clip's start: the sample before it is its first, and so on back.
        assert_eq!(v[pre - 1], clip[0]);
        assert_eq!(v[pre - 2], clip[1]);
        // Only the hum before the word (less a 0.05 s margin) is repeated, never the word.
        let lead = &v[..pre];
        assert!(lead.iter().all(|&x| x.abs() <= 0.01));
        assert!(lead.iter().filter(|&&x| x != 0.0).count() > pre / 2);
        // 0.05 s after the word is under 0.1 s: zeros.
        assert!(v[pre + clip.len()..].iter().all(|&x| x == 0.0));
        // With sound after the word too, the tail continues the clip's end.
        let mut longer = clip.clone();
        longer.extend((0..4_000).map(|i| 0.01 * (i as f32 * 0.07).cos()));
        let w = pad_with_own_sound(&longer, 8_000..16_000, pre, post);
        let end = pre + longer.len();
        assert_eq!(w[end], longer[longer.len() - 1]);
        assert!(w[end..].iter().all(|&x| x.abs() <= 0.01));
        assert!(w[end..].iter().any(|&x| x != 0.0));
    }

    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    /// Alarms falling exponentially with the logit: the fit recovers where they meet the target.
    #[test]
    fn tail_threshold_follows_an_exponential_tail() {
        // 100 alarms per hour at logit 0, ten times fewer every 2 logits: 0.5 per hour at
        // logit 2·log10(200) = 4.602.
        let fa = |t: f32| 100.0 * 10f64.powf(-f64::from(logit(t)) / 2.0);
        let t = tail_threshold(&fa, 0.45, 0.5).unwrap();
        assert!((logit(t) - 4.602).abs() < 0.1, "logit {}", logit(t));
        // Whole alarms on 0.45 h: the same tail, counted, still lands close.
        let counted = |t: f32| (fa(t) * 0.45).floor() / 0.45;
        let t = tail_threshold(&counted, 0.45, 0.5).unwrap();
        assert!((logit(t) - 4.602).abs() < 0.5, "logit {}", logit(t));
        assert!(sigmoid(4.0) < t);
    }

    /// Embeddings of padded audio, as training computes them.
    fn embed(backbone: &Backbone, samples: &[f32]) -> Vec<Embedding> {
        let mut frames = Vec::new();
        crate::frontend::FrameStream::new().push(samples, &mut frames);
        backbone.embed(&frames).unwrap()
    }

    /// Trimming a copy's unused lead leaves every window training reads as it was: the same
    /// embeddings, bit for bit, under the shifted labels. (Trimming one hop more fails it.)
    #[test]
    fn trimming_the_unused_lead_keeps_the_labelled_windows() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train");
        let path = dir.join("computer/computer-en-099d6097-ce0f-403a-b30d-0ced99f1e44e.wav");
        let clip = read_wav(&path).unwrap();
        let backbone = Backbone::builtin().unwrap();
        for validation in [false, true] {
            let p = Positive {
                path: path.clone(),
                hash: [0; 32],
                span: locate_word(&clip).unwrap(),
                len: clip.len(),
                validation,
            };
            let pre = 27_000;
            let trim = unused_lead(&p, pre);
            assert!(trim >= 2 * 1280, "trim {trim}");
            let padded = pad_samples(&clip, pre, 8000);
            let full = embed(&backbone, &padded);
            let trimmed = embed(&backbone, &padded[trim..]);
            let (pos, hit, late) = label(&p, pre);
            let (pos_t, hit_t, late_t) = label(&p, pre - trim);
            let hop = trim / 1280;
            assert_eq!(pos_t.start + hop, pos.start);
            assert_eq!(late_t + hop, late);
            if validation {
                assert_eq!(hit_t.start + hop, hit.start);
            }
            assert_eq!(trimmed.len() + hop, full.len());
            assert!(trimmed[..] == full[hop..], "kept embeddings changed");
        }
    }

    #[test]
    fn tail_threshold_needs_a_tail() {
        // Too few alarms at any threshold to fit anything.
        assert_eq!(tail_threshold(&|_| 0.0, 0.45, 0.5), None);
        assert_eq!(tail_threshold(&|_| 5.0, 0.0, 0.5), None);
    }
}
