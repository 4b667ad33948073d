//! A training run from scratch: clips and negatives checked, the validation split, the
//! augmentation pool, the embedding jobs, then fitting, calibration and the template check.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::audio::vad::locate_word;
use crate::audio::wav::{WavFile, read_wav};
use crate::backbone::Backbone;
use crate::data::cache::cache_key;
use crate::data::folders::{hash_file, name_fraction, wav_files};
use crate::data::jobs::{Job, embed_jobs};
use crate::data::prep::{
    POST_PAD, PRE_PAD, held_out_blocks, kept_blocks, negative_blocks, negative_job, pad_samples,
};
use crate::model::head::{FORMAT_VERSION, Head, HeadInfo, TrainingSummary};
use crate::progress::Progress;
use crate::timeline::HEAD_WINDOW;
use crate::train::augment::{Copy, Pool, PoolFile};
use crate::train::calibrate::calibrate;
use crate::train::clips::{Clip, Positive, label};
use crate::train::fit::fit;
use crate::train::options::{REFRACTORY_SECONDS, TrainOptions, creation_time, list};
use crate::train::replay::Replay;
use crate::train::rng::Rng;
use crate::train::templates::{cut_of, measure_distances, templates_of, word_in_negatives};
use crate::{Error, Result};

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

/// What an embedding job of [`train`] embeds.
#[derive(Clone, Copy)]
pub(crate) enum Made {
    /// Positive clip `.0` (a clean or augmented copy) placed `.1` samples into the audio
    /// embedded, in the validation split if `.2`.
    Positive(usize, usize, bool),
    /// Negative file `.0`.
    Negative(usize),
}

/// Trains a head from scratch.
pub fn train(
    backbone: &Backbone,
    opts: &TrainOptions,
    progress: &dyn Progress,
) -> Result<TrainReport> {
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
    let checks = pos_files.len() + neg_files.len();
    progress.begin("checking clips", checks);
    let mut checked = 0;
    let mut positives = Vec::new();
    let mut skipped = Vec::new();
    for path in &pos_files {
        checked += 1;
        progress.at(checked, checks);
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
        checked += 1;
        progress.at(checked, checks);
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
    progress.end();
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
        if !found
            .iter()
            .any(|c| c.samples >= crate::timeline::samples_of(1.0))
        {
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
    let pool = Pool::choose(&candidates, folders);

    // Embedding jobs: every positive clip clean and augmented, every negative file padded.
    let pre = crate::timeline::samples_of(PRE_PAD);
    let post = crate::timeline::samples_of(POST_PAD);
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
            let copy = Copy::draw(&mut rng, p, post, &pool);
            jobs.push(copy.job(backbone, p, &pool));
            meta.push(Made::Positive(pi, copy.pre - copy.trim, p.validation));
        }
    }
    for (i, path) in neg_files.iter().enumerate() {
        jobs.push(negative_job(backbone, path, &neg_info[i].0, neg_info[i].1));
        meta.push(Made::Negative(i));
    }

    let hits_before = opts.cache.hits();
    let t_embed = Instant::now();
    progress.begin("embedding audio", jobs.len());
    let embedded_jobs = std::sync::atomic::AtomicUsize::new(0);
    let embedded = embed_jobs(backbone, &opts.cache, &jobs, &|| {
        let n = embedded_jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress.at(n, jobs.len());
    })?;
    progress.end();
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
    let weights = fit(&mut clips, opts, &mut summary, None, progress, "training")?;
    let target = opts.target_fa_per_hour;
    let mut calibration = calibrate(&weights, &clips, target, 0.5, None);
    // Templates, their cut, and the threshold set again on the scores the check leaves, as
    // `listen` will act on them.
    let mut templates = None;
    if word_templates.words.len() >= 8 {
        let words = word_templates.words;
        progress.begin("template check", 0);
        let tick = |n: usize, total: usize| progress.at(n, total);
        measure_distances(&words, &weights, &mut clips, &sources, &jobs, &tick)?;
        progress.end();
        if let Some(cut) = cut_of(&weights, &clips, calibration.threshold) {
            calibration = calibrate(&weights, &clips, target, 0.5, Some(cut));
            templates = Some(crate::model::templates::Templates {
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
