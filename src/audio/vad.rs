//! Where the word is in a clip: an energy detector over 10 ms frames, and clip sanity checks.
//!
//! Enrolment clips hold one utterance with silence around it. The utterance is the loudest
//! stretch of frames whose energy rises well above the clip's own noise floor, gaps shorter
//! than 300 ms bridged (so "com-pu-ter" stays one word).

/// Samples per analysis frame (10 ms).
const FRAME: usize = 160;
/// Gaps up to this many frames join two active stretches.
const MAX_GAP: usize = 30;

/// A stretch of samples `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

/// Why a clip cannot be used as a positive.
#[derive(Debug, Clone, PartialEq)]
pub enum ClipProblem {
    /// Nothing above −75 dBFS (or digital silence).
    Silent,
    /// Sound throughout, never more than this many dB under its loudest: continuous noise, or
    /// a clip cut right around the word, with no quiet stretch to find the word against.
    NoPause(f32),
    /// Most of the clip sits at full scale.
    Clipped,
    /// Outside 0.5–10 s.
    Length(String),
}

impl std::fmt::Display for ClipProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipProblem::Silent => write!(f, "silent: nothing louder than -75 dBFS"),
            ClipProblem::NoPause(range) => write!(
                f,
                "no pause around the word: the level stays within {range:.0} dB of its peak \
                 throughout (continuous noise, or the clip is cut right at the word); enrolment \
                 clips need a moment of quiet before and after it"
            ),
            ClipProblem::Clipped => write!(f, "clipped throughout: most samples at full scale"),
            ClipProblem::Length(s) => write!(f, "{s}"),
        }
    }
}

/// Energy (dB) of each 10 ms frame, DC removed.
fn frame_db(samples: &[f32]) -> Vec<f32> {
    let mean = samples.iter().map(|&x| f64::from(x)).sum::<f64>() / samples.len().max(1) as f64;
    samples
        .chunks(FRAME)
        .map(|c| {
            let e = c
                .iter()
                .map(|&x| (f64::from(x) - mean).powi(2))
                .sum::<f64>()
                / c.len() as f64;
            (10.0 * (e + 1e-12).log10()) as f32
        })
        .collect()
}

/// Lengths of a usable clip in samples at 16 kHz (0.5–10 s).
pub const CLIP_SAMPLES: std::ops::RangeInclusive<usize> = 8_000..=160_000;

/// Finds the utterance in a 16 kHz clip, or says why there is none.
pub fn locate_word(samples: &[f32]) -> Result<Span, ClipProblem> {
    let secs = crate::timeline::seconds_of(samples.len() as u64);
    if !CLIP_SAMPLES.contains(&samples.len()) {
        return Err(ClipProblem::Length(format!(
            "{secs:.2} s long; enrolment clips must be 0.5–10 s"
        )));
    }
    let full = samples.iter().filter(|x| x.abs() >= 0.99).count();
    if full * 2 > samples.len() {
        return Err(ClipProblem::Clipped);
    }
    let db = frame_db(samples);
    let mut sorted = db.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let peak = sorted[sorted.len() - 1];
    if peak < -75.0 {
        return Err(ClipProblem::Silent);
    }
    if peak - floor < 12.0 {
        return Err(ClipProblem::NoPause(peak - floor));
    }
    let threshold = floor + 0.3 * (peak - floor);
    // Active stretches with short gaps bridged; keep the one holding the most energy above
    // the threshold.
    let mut best: Option<(usize, usize, f32)> = None;
    let mut cur: Option<(usize, usize, f32)> = None;
    for (i, &d) in db.iter().enumerate() {
        if d < threshold {
            continue;
        }
        cur = match cur {
            Some((s, e, w)) if i - e <= MAX_GAP => Some((s, i, w + d - threshold)),
            prev => {
                if let Some(p) = prev
                    && best.is_none_or(|b| p.2 > b.2)
                {
                    best = Some(p);
                }
                Some((i, i, d - threshold))
            }
        };
    }
    if let Some(p) = cur
        && best.is_none_or(|b| p.2 > b.2)
    {
        best = Some(p);
    }
    let (s, e, _) = best.ok_or(ClipProblem::Silent)?;
    Ok(Span {
        start: s * FRAME,
        end: ((e + 1) * FRAME).min(samples.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|i| amp * (i as f32 * 0.2).sin()).collect()
    }

    #[test]
    fn finds_a_burst_in_noise_and_bridges_short_gaps() {
        let mut x: Vec<f32> = (0..32_000)
            .map(|i| 0.001 * (((i * 7919) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        for (i, v) in tone(4000, 0.3).into_iter().enumerate() {
            x[10_000 + i] += v;
        }
        // A 100 ms gap, then more of the word.
        for (i, v) in tone(3000, 0.2).into_iter().enumerate() {
            x[15_600 + i] += v;
        }
        let span = locate_word(&x).unwrap();
        assert!((span.start as i64 - 10_000).abs() <= 160, "{span:?}");
        assert!((span.end as i64 - 18_600).abs() <= 160, "{span:?}");
    }

    #[test]
    fn refuses_silence_clipping_and_bad_lengths() {
        assert_eq!(locate_word(&vec![0.0; 16_000]), Err(ClipProblem::Silent));
        assert_eq!(locate_word(&vec![1.0; 16_000]), Err(ClipProblem::Clipped));
        assert!(matches!(
            locate_word(&vec![0.0; 4000]),
            Err(ClipProblem::Length(_))
        ));
        // A DC offset alone is not an utterance.
        assert_eq!(locate_word(&vec![0.3; 16_000]), Err(ClipProblem::Silent));
    }

    #[test]
    fn loud_sound_without_a_pause_is_told_apart_from_silence() {
        // Steady loud noise, as in a clip cut right around the word or a recording of a fan.
        let x: Vec<f32> = (0..16_000u64)
            .map(|i| 0.3 * ((i.wrapping_mul(2_654_435_761) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        let Err(ClipProblem::NoPause(range)) = locate_word(&x) else {
            panic!("{:?}", locate_word(&x));
        };
        assert!(range < 12.0, "{range}");
        assert!(ClipProblem::NoPause(range).to_string().contains("no pause"));
    }
}
