//! The template check at training: templates cut from the clips, the warning for a negative
//! folder that holds the word, the cut, and the distances calibration needs.

use std::path::{Path, PathBuf};

use crate::Result;
use crate::audio::vad::{Span, locate_word};
use crate::audio::wav::read_wav;
use crate::data::folders::name_fraction;
use crate::data::jobs::Job;
use crate::model::head::Weights;
use crate::timeline::HEAD_WINDOW;
use crate::train::calibrate::{best_hit_windows, checked_scores};
use crate::train::clips::{Clip, Positive};

/// Templates of the word cut from the training clips, and how near a recording of the word lies
/// to them.
pub(crate) struct WordTemplates {
    /// Up to 240 templates (see [`crate::model::templates`]), from clips outside the validation split:
    /// the head's.
    pub(crate) words: Vec<Vec<crate::features::cepstra::Cepstrum>>,
    /// Up to [`CHECK_TEMPLATES`] templates from all the clips (training clips first) that
    /// [`word_in_negatives`] matches clips against.
    pub(crate) check: Vec<Vec<crate::features::cepstra::Cepstrum>>,
    /// The median distance of the clips that gave `check` to the others of `check`: how near
    /// a recording of the word lies to templates not cut from it. `None` with fewer than 4.
    pub(crate) typical: Option<f32>,
}

/// Templates [`word_in_negatives`] matches clips against: enough to find a recording's nearest
/// few, at a fifth of the cost of all 240.
pub(crate) const CHECK_TEMPLATES: usize = 48;

/// [`WordTemplates`] of the positive clips, in file-name-hash order.
pub(crate) fn templates_of(positives: &[Positive]) -> Result<WordTemplates> {
    const MOST: usize = 240;
    let mut cepstra = crate::features::cepstra::Cepstra::new();
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
            crate::model::templates::Templates::distance_to_others(&check, i, cepstra, &audio[i])
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
/// [`crate::model::templates::QUERY_SAMPLES`] up to 0.1 s after the word.
pub(crate) fn until_after_word(mut clip: Vec<f32>, span: Span) -> Vec<f32> {
    clip.truncate(span.end + 1_600);
    clip.drain(
        ..clip
            .len()
            .saturating_sub(crate::model::templates::QUERY_SAMPLES),
    );
    clip
}

/// `f(cepstra, i)` for every `i` below `n`, on every core (each with its own planned
/// [`crate::features::cepstra::Cepstra`]), in order.
pub(crate) fn on_cores<T: Send>(
    n: usize,
    f: impl Fn(&mut crate::features::cepstra::Cepstra, usize) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let f = &f;
    let parts: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut cepstra = crate::features::cepstra::Cepstra::new();
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
pub(crate) const CHECK_CLIPS: usize = 16;

/// Warnings for negative folders that seem to hold recordings of the word itself, which would
/// teach the head to ignore it. In each folder (the folder a file is in), up to
/// [`CHECK_CLIPS`] clips of 0.5–10 s, in file-name-hash order, are matched against the
/// templates; a folder is named when at least a quarter of those (and two or more) lie as near
/// as a typical recording of the word ([`WordTemplates::typical`]): about half of a folder of
/// the word's recordings do, and `benches/accuracy.sh`'s trainings name no folder for any of
/// its three words (other keywords, not-wake-words, telephone prompts, spoken words).
/// `files` are the negative files with their lengths in samples at 16 kHz.
pub(crate) fn word_in_negatives<'a>(
    t: &WordTemplates,
    word: &str,
    files: impl Iterator<Item = (&'a PathBuf, usize)>,
) -> Vec<String> {
    let Some(typical) = t.typical else {
        return Vec::new();
    };
    let mut folders: std::collections::BTreeMap<&Path, Vec<&PathBuf>> = Default::default();
    for (path, samples) in files {
        if crate::audio::vad::CLIP_SAMPLES.contains(&samples) {
            let folder = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            folders.entry(folder).or_default().push(path);
        }
    }
    // (clips checked, clips as near as the word) of a folder's clips, in name-hash order.
    let check = |cepstra: &mut crate::features::cepstra::Cepstra, paths: &[&PathBuf]| {
        let (mut checked, mut near) = (0, 0);
        for path in paths.iter().take(CHECK_CLIPS) {
            let Ok(clip) = read_wav(path) else { continue };
            let Ok(span) = locate_word(&clip) else {
                continue;
            };
            let audio = until_after_word(clip, span);
            checked += 1;
            if crate::model::templates::Templates::distance_to(&t.check, cepstra, &audio) <= typical
            {
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
pub(crate) fn cut_of(weights: &Weights, clips: &[Clip], threshold: f32) -> Option<f32> {
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
pub(crate) type Measured = (usize, Vec<(u32, f32)>);

/// Fills each validation clip's [`Clip::distances`] with the distance to `words` (the
/// templates) at the windows a calibration looks at, measured on the audio before each as
/// `listen` measures it: for a positive clip (each clean and augmented copy), its best-scoring
/// hit window (the first of equals); for a negative clip, every window (each may be a false
/// alarm); in both, only windows `weights` score at least [`crate::model::templates::MIN_SCORE`]. Clip
/// `i`'s audio is made by `jobs[sources[i]]` (its embeddings start at [`Clip::range`]'s start
/// there); each job's audio is made once. On every core; `tick(done, total)`
/// counts the jobs.
pub(crate) fn measure_distances(
    words: &[Vec<crate::features::cepstra::Cepstrum>],
    weights: &Weights,
    clips: &mut [Clip],
    sources: &[usize],
    jobs: &[Job],
    tick: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    let wanted = |score: f32| score >= crate::model::templates::MIN_SCORE;
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
                    let at = crate::timeline::samples_at_embedding(offset + u64::from(k));
                    let audio = &samples[..(at as usize).min(samples.len())];
                    (
                        k,
                        crate::model::templates::Templates::distance_to(words, cepstra, audio),
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
