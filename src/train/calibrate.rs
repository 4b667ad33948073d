//! Setting the threshold on held-out audio: counted false alarms per hour, the tail of the
//! count extrapolated, and the scores the template check leaves.

use crate::model::head::Weights;
use crate::timeline::HEAD_WINDOW;
use crate::train::clips::Clip;
use crate::train::forward::{Example, logits};
use crate::train::options::REFRACTORY_SECONDS;

/// A threshold set on the validation data, and what it gives there.
pub(crate) struct Calibration {
    /// The threshold: what the data gave, raised to the floor asked for.
    pub(crate) threshold: f32,
    /// What the data alone gave.
    pub(crate) unfloored: f32,
    /// Validation miss rate at `threshold`.
    pub(crate) miss: f64,
    /// Validation false alarms per hour at `threshold`.
    pub(crate) fa_per_hour: f64,
    /// Hours of validation negatives.
    pub(crate) hours: f64,
}

/// The head's threshold: [`calibrate_with`] with the tail extrapolated, and at least `floor`.
pub(crate) fn calibrate(
    weights: &Weights,
    clips: &[Clip],
    target: f64,
    floor: f32,
    cut: Option<f32>,
) -> Calibration {
    calibrate_with(weights, clips, target, true, floor, cut)
}

/// False alarms counted on the validation negatives between which the tail is fitted.
pub(crate) const TAIL_EVENTS: (f64, f64) = (30.0, 3.0);

/// The threshold where the false alarms' tail, extrapolated, meets `target` per hour.
///
/// Validation negatives are a fraction of an hour, so counting alone cannot place a threshold
/// at 0.5 false alarms per hour (one alarm in 0.45 h is already 2.2 per hour): the first
/// threshold with no alarm left is where counting stops, and held-out audio then fires several
/// times an hour. The count of alarms falls about exponentially with the threshold's logit in
/// the tail, so it is fitted between 30 and 3 alarms and followed down to `target × hours`
/// alarms. `fa_rate` gives alarms per hour at a threshold (probability).
pub(crate) fn tail_threshold(fa_rate: &dyn Fn(f32) -> f64, hours: f64, target: f64) -> Option<f32> {
    if hours <= 0.0 || target <= 0.0 {
        return None;
    }
    let count = |logit: f32| fa_rate(crate::model::logit::sigmoid(logit)) * hours;
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
    Some(crate::model::logit::sigmoid(logit as f32))
}

/// Picks the lowest threshold (≥ 0.5) whose false alarms per hour on the validation negatives
/// meet `target` and, with `tail`, raises it to [`tail_threshold`] where that is higher, and to
/// `floor`. With `cut` (the head's template cut), scores are taken after the template check
/// where the clips' [`Clip::distances`] hold one; the others stand as the network gives them.
pub(crate) fn calibrate_with(
    weights: &Weights,
    clips: &[Clip],
    target: f64,
    tail: bool,
    floor: f32,
    cut: Option<f32>,
) -> Calibration {
    let refractory = crate::timeline::refractory_hops(REFRACTORY_SECONDS);
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
    let fa_rate = |t: f32| crate::metrics::false_alarms_per_hour(&neg_scores, hours, t, refractory);
    let miss = |t: f32| crate::metrics::miss_rate(&pos_best, t);
    // Thresholds from 0.5 up, evenly in logit space to 0.99999.
    let mut chosen = 0.99999f32;
    for i in 0..=600 {
        let t = crate::model::logit::sigmoid(i as f32 * 11.5 / 600.0);
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
/// distance in [`Clip::distances`] gets [`crate::model::templates::checked_score`]'s instead.
pub(crate) fn checked_scores(
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
        .map(crate::model::logit::sigmoid)
        .collect();
    if let Some(cut) = cut {
        for &(k, d) in &clips[ci].distances {
            if let Some(v) = (k as usize).checked_sub(first).and_then(|i| s.get_mut(i)) {
                *v = crate::model::templates::checked_score(*v, d, cut);
            }
        }
    }
    s
}

/// `score`, window `k`'s of clip `c`, after the check if [`Clip::distances`] holds its distance.
pub(crate) fn checked_at(c: &Clip, k: usize, score: f32, cut: f32) -> f32 {
    c.distance_at(k).map_or(score, |d| {
        crate::model::templates::checked_score(score, d, cut)
    })
}

/// The lowest threshold, not above `old`, at which the `new` weights catch as many of the old
/// positive clips (every clean and augmented copy, over its hit windows; an update's new clips
/// left out) as the `old` weights did at `old`.
pub(crate) fn threshold_keeping_hits(
    old_weights: &Weights,
    new: &Weights,
    clips: &[Clip],
    old: f32,
) -> f32 {
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
pub(crate) fn positive_bests(
    weights: &Weights,
    clips: &[Clip],
    which: impl Fn(&Clip) -> bool,
) -> Vec<f32> {
    best_hit_windows(weights, clips, which)
        .into_iter()
        .map(|(_, _, score)| score)
        .collect()
}

/// For each clip with hit windows that `which` picks, in order: its index, the embedding index
/// of its best-scoring hit window (the first of equals) and that score (0 when it has none).
pub(crate) fn best_hit_windows(
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
            (ci, lo + at, crate::model::logit::sigmoid(best))
        })
        .collect()
}
