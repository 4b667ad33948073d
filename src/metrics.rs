//! One rule for counting: where a score sequence fires, false alarms per hour, miss rates.
//! Training's calibration and `hark eval` both count with these, so the threshold training
//! picks and the figures `eval` reports mean the same thing.

/// Indices where a score sequence fires at `threshold` with a refractory period of
/// `refractory_hops` scores: a score at or above the threshold fires unless one fired less than
/// `refractory_hops` scores before.
pub fn fire_indices(scores: &[f32], threshold: f32, refractory_hops: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut next = 0;
    for (i, &s) in scores.iter().enumerate() {
        if i >= next && s >= threshold {
            out.push(i);
            next = i + refractory_hops;
        }
    }
    out
}

/// False alarms per hour at `threshold` over score sequences of `hours` of negative audio in
/// all (0 when there is no audio and nothing fired).
pub fn false_alarms_per_hour(
    scores: &[Vec<f32>],
    hours: f64,
    threshold: f32,
    refractory_hops: usize,
) -> f64 {
    let n: usize = scores
        .iter()
        .map(|s| fire_indices(s, threshold, refractory_hops).len())
        .sum();
    per_hour(n, hours)
}

/// `n` events in `hours` as a rate per hour: 0 for none, infinite for some in no audio.
pub fn per_hour(n: usize, hours: f64) -> f64 {
    if n == 0 {
        0.0
    } else if hours > 0.0 {
        n as f64 / hours
    } else {
        f64::INFINITY
    }
}

/// Share of the `bests` (each positive's best score where it counts) below `threshold`: the
/// miss rate at that threshold (0 when there are none).
pub fn miss_rate(bests: &[f32], threshold: f32) -> f64 {
    bests.iter().filter(|&&b| b < threshold).count() as f64 / bests.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refractory_period_holds_back_the_next_alarm() {
        let s = [0.1, 0.9, 0.95, 0.2, 0.9, 0.1, 0.99];
        assert_eq!(fire_indices(&s, 0.5, 1), vec![1, 2, 4, 6]);
        assert_eq!(fire_indices(&s, 0.5, 3), vec![1, 4]);
        assert_eq!(fire_indices(&s, 0.96, 3), vec![6]);
        assert!(fire_indices(&s, 1.0, 1).is_empty());
    }

    #[test]
    fn rates_count_alarms_per_hour_and_misses_per_positive() {
        let s = vec![vec![0.9, 0.1, 0.9], vec![0.1, 0.95]];
        assert_eq!(false_alarms_per_hour(&s, 0.5, 0.5, 1), 6.0);
        assert_eq!(false_alarms_per_hour(&s, 0.5, 0.92, 1), 2.0);
        assert_eq!(false_alarms_per_hour(&s, 0.0, 0.99, 1), 0.0);
        assert!(false_alarms_per_hour(&s, 0.0, 0.5, 1).is_infinite());
        assert_eq!(miss_rate(&[0.2, 0.8, 0.9, 0.95], 0.85), 0.5);
        assert_eq!(miss_rate(&[], 0.5), 0.0);
    }
}
