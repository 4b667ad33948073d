//! Between scores and events: a candidate detection checked against the user's own recordings.
//!
//! The head hears the word through the backbone, whose log-mel front end stops at 3800 Hz and
//! whose features were learnt from other people's speech; its loudest false alarms are sounds
//! those features cannot tell from the word. This stage looks at the same audio another way:
//! wide-band cepstra (40 mel bands, 60–7600 Hz, so the fricatives count) of the last
//! [`QUERY_SECONDS`], matched by dynamic time warping against templates of the word cut from the
//! training clips. A candidate (a score at or above the threshold) is judged by the mean cost of
//! its [`NEAREST`] closest templates, its distance, against the head's cut, which training sets
//! from held-out clips of the word: beyond the cut it is dropped; beyond [`EASE`] of the cut its
//! score is lowered, more the farther it is ([`checked_score`]), so a candidate that is only just
//! near enough must score higher to fire.

use crate::features::cepstra::{CEPSTRA, Cepstra, Cepstrum};
use crate::model::logit::sigmoid;

/// Seconds of audio before a candidate that are matched against the templates.
pub const QUERY_SECONDS: f64 = 1.9;
/// Samples of audio before a candidate that are matched against the templates.
pub const QUERY_SAMPLES: usize = crate::timeline::samples_of(QUERY_SECONDS);
/// Templates whose costs are averaged into a candidate's distance.
pub const NEAREST: usize = 3;
/// The lowest score `eval` checks, so its curve holds for every threshold from here up
/// (training never sets a threshold below it; a lower one set by hand is checked from there).
pub const MIN_SCORE: f32 = 0.5;
/// Distances up to this fraction of the cut leave a candidate's score as it is…
pub const EASE: f32 = 0.6;
/// …and beyond it, each further cut's worth of distance takes this much off the score's logit
/// (so a candidate at the cut loses 0.4 × 8 = 3.2: 0.999 becomes 0.96).
pub const PENALTY: f32 = 8.0;
/// What a head carries for this check: templates of its word and the cut on a candidate's
/// [`distance`] to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Templates {
    /// Largest distance at which a candidate stands.
    pub cut: f32,
    /// Cepstra of the word, one template per clip: those cut at training, then those updates
    /// added.
    pub words: Vec<Vec<Cepstrum>>,
    /// How many of `words`, at the end, updates added. They only count for a candidate that
    /// the templates cut at training already keep (within the cut): the cut was set on those
    /// templates' spread, and a few alike clips from one microphone, as an update adds, could
    /// otherwise be all of a candidate's nearest and let through whatever sounds like them.
    pub added: usize,
}

impl Templates {
    /// Distance of the audio ending a candidate (`samples`: at most the last [`QUERY_SAMPLES`]
    /// are read) to the templates, as the check judges it: to those cut at training and, if
    /// that is within the cut but beyond [`EASE`] of it, to all of them.
    pub fn distance_of(&self, cepstra: &mut Cepstra, samples: &[f32]) -> f32 {
        self.judged(&cepstra.of_last(samples, QUERY_SAMPLES), None)
    }

    /// [`Templates::distance_of`] for templates `words`, all cut at training, not yet given a
    /// cut.
    pub fn distance_to(words: &[Vec<Cepstrum>], cepstra: &mut Cepstra, samples: &[f32]) -> f32 {
        distance(words, &cepstra.of_last(samples, QUERY_SAMPLES))
    }

    /// [`Templates::distance_to`] leaving out `words[skip]`: how near the clip that template
    /// was cut from lies to the others, as near as a recording of the word that gave no
    /// template would lie to them all.
    pub fn distance_to_others(
        words: &[Vec<Cepstrum>],
        skip: usize,
        cepstra: &mut Cepstra,
        samples: &[f32],
    ) -> f32 {
        let query = cepstra.of_last(samples, QUERY_SAMPLES);
        let mut nearest = Nearest::new(&query);
        nearest.add(&words[..skip.min(words.len())], None);
        nearest.add(words.get(skip + 1..).unwrap_or_default(), None)
    }

    /// The score of a candidate scoring `score` whose audio ends `samples` (at most the last
    /// [`QUERY_SAMPLES`] are read), after the check: [`checked_score`] of its distance.
    pub fn check(&self, cepstra: &mut Cepstra, score: f32, samples: &[f32]) -> f32 {
        // Stops at the first NEAREST templates within EASE of the cut: the score then stands
        // as it is, and a true wake word rarely needs more than a few.
        let d = self.judged(
            &cepstra.of_last(samples, QUERY_SAMPLES),
            Some(EASE * self.cut),
        );
        checked_score(score, d, self.cut)
    }

    /// [`Templates::distance_of`] of a query; with `enough`, as [`Nearest::add`].
    fn judged(&self, query: &[Cepstrum], enough: Option<f32>) -> f32 {
        let (trained, added) = self
            .words
            .split_at(self.words.len() - self.added.min(self.words.len()));
        let mut nearest = Nearest::new(query);
        let d = nearest.add(trained, enough);
        if added.is_empty() || d <= EASE * self.cut || d > self.cut {
            return d;
        }
        nearest.add(added, enough)
    }

    /// A score after the check: `score` itself below `from`, else [`Templates::check`]'s.
    /// `samples` is the audio up to the score's time (the last [`QUERY_SAMPLES`] are read).
    pub fn gate(&self, cepstra: &mut Cepstra, score: f32, samples: &[f32], from: f32) -> f32 {
        if score < from {
            score
        } else {
            self.check(cepstra, score, samples)
        }
    }

    /// [`Templates::gate`] over a whole recording: `scores` are
    /// the head's scores (its `score_all`) for the embeddings of `samples`; those from `from` up are
    /// checked. Detections at any threshold from `from` up are then where these scores reach
    /// it, as `listen` makes them.
    pub fn gate_all(&self, scores: &mut [f32], samples: &[f32], from: f32) {
        let mut cepstra = Cepstra::new();
        for (i, s) in scores.iter_mut().enumerate() {
            let k = crate::timeline::embedding_of_score(i) as u64;
            let end = (crate::timeline::samples_at_embedding(k) as usize).min(samples.len());
            *s = self.gate(&mut cepstra, *s, &samples[..end], from);
        }
    }
}

/// The score of a candidate scoring `score` at distance `distance` from templates whose cut is
/// `cut`: 0 beyond the cut (or at an undefined distance); `score` up to [`EASE`] of the cut;
/// between, `score` with [`PENALTY`] × (`distance` / `cut` − [`EASE`]) taken off its logit.
pub fn checked_score(score: f32, distance: f32, cut: f32) -> f32 {
    if distance.is_nan() || distance > cut {
        return 0.0;
    }
    let over = distance / cut - EASE;
    if over <= 0.0 {
        return score;
    }
    // Scores round to 1.0 in f32 from a logit of about 17 up; that is where the logit is held.
    let p = score.clamp(1e-7, 1.0 - 6e-8);
    let logit = (p / (1.0 - p)).ln();
    sigmoid(logit - PENALTY * over)
}

/// Cost of the best match of all of `template` inside `query` (subsequence dynamic time
/// warping: the match may start and end anywhere in the query; each template frame takes the
/// next query frame, the same one again, or skips one), per template frame. Euclidean distance
/// between frames. Infinite for an empty template or query.
pub fn match_cost(template: &[Cepstrum], query: &[Cepstrum]) -> f32 {
    Columns::new(query)
        .cost_below(template, f32::INFINITY)
        .unwrap_or(f32::INFINITY)
}

/// A query laid out for matching: each coefficient's values over the frames side by side, so
/// a template frame's costs against every query frame are a few vectorised passes.
struct Columns {
    frames: usize,
    /// `CEPSTRA` rows of `frames` values.
    values: Vec<f32>,
    cost: Vec<f32>,
    prev: Vec<f32>,
    row: Vec<f32>,
}

impl Columns {
    fn new(query: &[Cepstrum]) -> Self {
        let n = query.len();
        let mut values = vec![0.0; CEPSTRA * n];
        for (j, f) in query.iter().enumerate() {
            for (d, &v) in f.iter().enumerate() {
                values[d * n + j] = v;
            }
        }
        Columns {
            frames: n,
            values,
            cost: vec![0.0; n],
            prev: vec![0.0; n],
            row: vec![0.0; n],
        }
    }

    /// Euclidean distances of template frame `t` to every query frame, into `self.cost`.
    fn costs(&mut self, t: &Cepstrum) {
        let n = self.frames;
        self.cost.fill(0.0);
        for (d, &td) in t.iter().enumerate() {
            for (c, &x) in self.cost.iter_mut().zip(&self.values[d * n..(d + 1) * n]) {
                let e = td - x;
                *c += e * e;
            }
        }
        for c in &mut self.cost {
            *c = c.sqrt();
        }
    }

    /// [`match_cost`] of `template` if it is below `bound`; `None` as soon as no match can be
    /// (every partial cost already reaches it: frame costs are never negative).
    fn cost_below(&mut self, template: &[Cepstrum], bound: f32) -> Option<f32> {
        let n = self.frames;
        if template.is_empty() || n == 0 {
            return None;
        }
        let limit = bound * template.len() as f32;
        self.costs(&template[0]);
        self.prev.copy_from_slice(&self.cost);
        for t in &template[1..] {
            self.costs(t);
            let (prev, row, cost) = (&self.prev, &mut self.row, &self.cost);
            // Each template frame takes the next query frame, the same one, or one further.
            row[0] = cost[0] + prev[0];
            if n > 1 {
                row[1] = cost[1] + prev[1].min(prev[0]);
            }
            for j in 2..n {
                row[j] = cost[j] + prev[j].min(prev[j - 1]).min(prev[j - 2]);
            }
            if row.iter().fold(f32::INFINITY, |a, &b| a.min(b)) >= limit {
                return None;
            }
            std::mem::swap(&mut self.prev, &mut self.row);
        }
        let total = self.prev.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        (total < limit).then(|| total / template.len() as f32)
    }
}

/// A candidate's distance to the word: the mean [`match_cost`] of its [`NEAREST`] closest
/// templates (of all of them when there are fewer). Infinite without templates.
pub fn distance(templates: &[Vec<Cepstrum>], query: &[Cepstrum]) -> f32 {
    Nearest::new(query).add(templates, None)
}

/// A query's lowest match costs so far, as templates are added.
struct Nearest {
    columns: Columns,
    /// The [`NEAREST`] lowest costs so far, ascending.
    lowest: Vec<f32>,
}

impl Nearest {
    fn new(query: &[Cepstrum]) -> Self {
        Nearest {
            columns: Columns::new(query),
            lowest: Vec::with_capacity(NEAREST + 1),
        }
    }

    /// Matches `templates` too, and returns the query's [`distance`] to all templates so far.
    /// With `enough`, it stops as soon as [`NEAREST`] templates have been found whose mean
    /// cost is at most that, and returns that mean (the distance is then no larger).
    fn add(&mut self, templates: &[Vec<Cepstrum>], enough: Option<f32>) -> f32 {
        let lowest = &mut self.lowest;
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        for t in templates {
            // A template is matched only as far as it could still beat the last of them.
            let bound = if lowest.len() == NEAREST {
                lowest[NEAREST - 1]
            } else {
                f32::INFINITY
            };
            if let Some(c) = self.columns.cost_below(t, bound) {
                let at = lowest.partition_point(|&x| x <= c);
                lowest.insert(at, c);
                lowest.truncate(NEAREST);
                if lowest.len() == NEAREST && enough.is_some_and(|e| mean(lowest) <= e) {
                    return mean(lowest);
                }
            }
        }
        if lowest.is_empty() {
            return f32::INFINITY;
        }
        mean(lowest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random cepstra.
    fn frames(n: usize, seed: u32) -> Vec<Cepstrum> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                std::array::from_fn(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 2001) as f32 / 100.0 - 10.0
                })
            })
            .collect()
    }

    #[test]
    fn a_template_inside_the_query_matches_at_no_cost() {
        let t = frames(12, 1);
        let mut q = frames(7, 2);
        q.extend(&t);
        q.extend(frames(5, 3));
        assert_eq!(match_cost(&t, &q), 0.0);
        // Stretched to twice its length (each frame twice) it still matches exactly...
        let slow: Vec<Cepstrum> = t.iter().flat_map(|f| [*f, *f]).collect();
        assert_eq!(match_cost(&t, &slow), 0.0);
        // ...but three times slower is beyond the steps allowed (at most one frame skipped).
        let slower: Vec<Cepstrum> = t.iter().flat_map(|f| [*f, *f, *f]).collect();
        assert!(match_cost(&t, &slower) > 0.0);
        assert_eq!(match_cost(&t, &[]), f32::INFINITY);
    }

    #[test]
    fn pruning_finds_the_same_nearest_templates_as_matching_them_all() {
        let query = frames(190, 7);
        let templates: Vec<Vec<Cepstrum>> = (0..40)
            .map(|i| frames(20 + (i * 7) % 60, 100 + i as u32))
            .collect();
        let mut all: Vec<f32> = templates.iter().map(|t| match_cost(t, &query)).collect();
        all.sort_by(f32::total_cmp);
        let want = all[..NEAREST].iter().sum::<f32>() / NEAREST as f32;
        assert_eq!(distance(&templates, &query), want);
        assert_eq!(
            distance(&templates[..2], &query),
            (all_of(&templates[..2], &query)) / 2.0
        );
        assert_eq!(distance(&[], &query), f32::INFINITY);
    }

    #[test]
    fn templates_an_update_added_only_count_within_the_cut() {
        let query = frames(190, 7);
        let mut words: Vec<Vec<Cepstrum>> = (0..40)
            .map(|i| frames(20 + (i * 7) % 60, 100 + i as u32))
            .collect();
        // The five nearest templates become the added ones, at the end.
        words.sort_by(|a, b| match_cost(a, &query).total_cmp(&match_cost(b, &query)));
        words.rotate_left(5);
        let costs: Vec<f32> = words.iter().map(|t| match_cost(t, &query)).collect();
        let mean = |c: &[f32]| c.iter().sum::<f32>() / c.len() as f32;
        let trained = mean(&costs[..NEAREST]);
        let all = mean(&costs[35..][..NEAREST]);
        assert!(all < trained);
        let with_cut = |cut: f32| Templates {
            cut,
            words: words.clone(),
            added: 5,
        };
        // Beyond the cut by the training templates: the added ones do not bring it back.
        let t = with_cut(trained * 0.99);
        assert_eq!(t.judged(&query, None), trained);
        // Within EASE of the cut already: nothing to ease.
        let t = with_cut(trained / EASE * 1.01);
        assert_eq!(t.judged(&query, None), trained);
        // Between: the nearest of all of them, added ones included.
        let t = with_cut(trained * 1.2);
        assert_eq!(t.judged(&query, None), all);
        // With none marked added they all count, as in `distance`.
        let t = Templates { added: 0, ..t };
        assert_eq!(t.judged(&query, None), all);
        assert_eq!(distance(&words, &query), all);
        // Stopping early never reports less than the distance.
        let t = with_cut(trained * 1.2);
        for e in [0.0, all, trained, f32::INFINITY] {
            assert!(t.judged(&query, Some(e)) >= all);
        }
    }

    #[test]
    fn a_clip_is_measured_against_the_templates_of_the_others() {
        // Six "recordings": tones gliding from different pitches.
        let clip = |i: usize| -> Vec<f32> {
            (0..8_000)
                .map(|n| {
                    let t = n as f32 / 16_000.0;
                    let f = 300.0 + 150.0 * i as f32 + 400.0 * t;
                    0.3 * (std::f32::consts::TAU * f * t).sin()
                })
                .collect()
        };
        let mut cepstra = Cepstra::new();
        let words: Vec<Vec<Cepstrum>> = (0..6).map(|i| cepstra.of(&clip(i))).collect();
        let samples = clip(2);
        let query = cepstra.of_last(&samples, QUERY_SAMPLES);
        // Against all of them it meets itself at no cost; without itself, the other five.
        assert_eq!(
            Templates::distance_to(&words, &mut cepstra, &samples),
            distance(&words, &query)
        );
        let mut others = words.clone();
        others.remove(2);
        let d = Templates::distance_to_others(&words, 2, &mut cepstra, &samples);
        assert_eq!(d, distance(&others, &query));
        assert!(d > distance(&words, &query));
        // The first and the last can be left out too; past the end, none is.
        for skip in [0, 5] {
            let mut others = words.clone();
            others.remove(skip);
            assert_eq!(
                Templates::distance_to_others(&words, skip, &mut cepstra, &samples),
                distance(&others, &query)
            );
        }
        assert_eq!(
            Templates::distance_to_others(&words, 6, &mut cepstra, &samples),
            distance(&words, &query)
        );
    }

    fn all_of(templates: &[Vec<Cepstrum>], query: &[Cepstrum]) -> f32 {
        templates.iter().map(|t| match_cost(t, query)).sum()
    }

    #[test]
    fn the_gate_only_touches_candidates_that_are_far_from_the_word() {
        // A chirp-like word in noise: the template is the clip's own word.
        let word: Vec<f32> = (0..8_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                0.3 * (2.0 * std::f32::consts::PI * (300.0 + 2_000.0 * t) * t).sin()
            })
            .collect();
        let mut cepstra = Cepstra::new();
        let template = cepstra.template(&word, 800..7_200).unwrap();
        let templates = Templates {
            cut: 5.0,
            words: vec![template],
            added: 0,
        };
        let mut heard = vec![0.0; 16_000];
        heard.extend(&word);
        heard.extend(vec![0.0; 1_600]);
        let other: Vec<f32> = (0..heard.len())
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 5_000.0 * i as f32 / 16_000.0).sin())
            .collect();
        assert!(templates.distance_of(&mut cepstra, &heard) < 1.0);
        assert!(templates.distance_of(&mut cepstra, &other) > 10.0);
        assert_eq!(templates.gate(&mut cepstra, 0.9, &heard, MIN_SCORE), 0.9);
        assert_eq!(templates.gate(&mut cepstra, 0.9, &other, MIN_SCORE), 0.0);
        // Below `from` nothing is checked.
        assert_eq!(templates.gate(&mut cepstra, 0.4, &other, MIN_SCORE), 0.4);
        assert_eq!(templates.gate(&mut cepstra, 0.4, &other, 0.3), 0.0);
    }

    #[test]
    fn the_checked_score_falls_with_the_distance_beyond_the_ease() {
        let cut = 30.0;
        // Near enough: untouched, at any score.
        for s in [0.3, 0.9, 0.999, 1.0] {
            assert_eq!(checked_score(s, 0.0, cut), s);
            assert_eq!(checked_score(s, EASE * cut, cut), s);
        }
        // Beyond the cut, or at an undefined distance: dropped.
        assert_eq!(checked_score(0.999, cut * 1.001, cut), 0.0);
        assert_eq!(checked_score(0.999, f32::INFINITY, cut), 0.0);
        assert_eq!(checked_score(0.999, f32::NAN, cut), 0.0);
        // At the cut the logit loses PENALTY × (1 − EASE), computed here in f64.
        let z = (0.999f64 / 0.001).ln() - f64::from(PENALTY) * (1.0 - f64::from(EASE));
        let want = 1.0 / (1.0 + (-z).exp());
        assert!((f64::from(checked_score(0.999, cut, cut)) - want).abs() < 1e-5);
        // Farther is lower, all the way up to the cut, and a score of 1.0 is lowered too.
        let mut last = 1.0;
        for i in 0..=20 {
            let d = cut * (EASE + (1.0 - EASE) * i as f32 / 20.0);
            let c = checked_score(1.0, d, cut);
            assert!(c <= last, "{c} after {last} at distance {d}");
            last = c;
        }
        assert!(last < 1.0);
    }
}
