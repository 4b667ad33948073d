//! Guided enrolment: judge a recorded take, trim it around the word, name the file.
//!
//! `hark record` captures one take at a time from the microphone; [`assess_take`] finds the
//! word with the energy VAD and says whether the take is usable (and what to do if not);
//! [`next_path`] picks a file name that never overwrites an earlier recording.

use std::path::{Path, PathBuf};

use crate::audio::vad::{self, ClipProblem};
use crate::timeline::RATE;

/// Silence kept before and after the word in a saved take, seconds.
pub const MARGIN: f64 = 0.5;
/// The word may not start or end closer than this to the take's edges, seconds.
const EDGE: f64 = 0.1;
/// Longest plausible wake word, seconds.
const LONGEST_WORD: f64 = 2.5;

/// A usable take: the trimmed audio and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Take {
    /// The word with [`MARGIN`] seconds around it (less where the take ends).
    pub samples: Vec<f32>,
    /// Length of the word, seconds.
    pub word_seconds: f64,
    /// Peak level, dBFS.
    pub peak_db: f32,
    /// Warnings that do not make the take unusable (quiet, some clipping).
    pub warnings: Vec<String>,
}

/// Peak level of `samples` in dBFS (−inf for digital silence).
pub fn peak_db(samples: &[f32]) -> f32 {
    let peak = samples.iter().fold(0f32, |m, x| m.max(x.abs()));
    20.0 * peak.log10()
}

/// A one-line level meter for `samples` (the last ~100 ms of audio): `[#####.....] -23 dBFS`.
pub fn meter(samples: &[f32]) -> String {
    let db = peak_db(samples).max(-60.0);
    let filled = (((db + 60.0) / 60.0) * 20.0).round() as usize;
    format!(
        "[{}{}] {:>4.0} dBFS",
        "#".repeat(filled),
        ".".repeat(20 - filled.min(20)),
        db
    )
}

/// Judges a take of 16 kHz audio; `Err` says why it cannot be used and what to do.
pub fn assess_take(samples: &[f32]) -> Result<Take, String> {
    let span = vad::locate_word(samples).map_err(|p| match p {
        // In a take, steady sound with no word above it is the background alone.
        ClipProblem::Silent | ClipProblem::NoPause(_) => {
            "nothing stood out from the background: speak up or move closer to the microphone"
                .to_string()
        }
        ClipProblem::Clipped => {
            "the take is clipped throughout: lower the input gain or move back".to_string()
        }
        ClipProblem::Length(s) => s,
    })?;
    let (start, end) = (span.start as f64 / RATE, span.end as f64 / RATE);
    let len = samples.len() as f64 / RATE;
    if start < EDGE || end > len - EDGE {
        return Err(
            "the word runs into the edge of the take: wait for the prompt, then say it once".into(),
        );
    }
    let word_seconds = end - start;
    if word_seconds > LONGEST_WORD {
        return Err(format!(
            "{word_seconds:.1} s of speech: say only the wake word, with silence around it"
        ));
    }
    let a = ((start - MARGIN).max(0.0) * RATE) as usize;
    let b = (((end + MARGIN) * RATE) as usize).min(samples.len());
    let trimmed = samples[a..b].to_vec();
    let peak = peak_db(&trimmed);
    let mut warnings = Vec::new();
    let clipped = trimmed.iter().filter(|x| x.abs() >= 0.99).count();
    if clipped > trimmed.len() / 1000 {
        warnings.push(format!(
            "{clipped} samples at full scale: some clipping (lower the gain if it recurs)"
        ));
    }
    if peak < -35.0 {
        warnings.push(format!(
            "quiet take (peak {peak:.0} dBFS): speak up or move closer"
        ));
    }
    Ok(Take {
        samples: trimmed,
        word_seconds,
        peak_db: peak,
        warnings,
    })
}

/// The first `DIR/PREFIX-NNNN.wav` that does not exist yet.
pub fn next_path(dir: &Path, prefix: &str) -> PathBuf {
    let safe: String = prefix
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (1..)
        .map(|i| dir.join(format!("{safe}-{i:04}.wav")))
        .find(|p| !p.exists())
        .expect("some index is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(word_at: f64, word_len: f64, total: f64, amp: f32) -> Vec<f32> {
        let n = (total * RATE) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / RATE;
                let noise = 0.001 * ((i as f32 * 12.9898).sin() * 43758.547).fract();
                if (word_at..word_at + word_len).contains(&t) {
                    amp * (t as f32 * 2.0 * std::f32::consts::PI * 300.0).sin() + noise
                } else {
                    noise
                }
            })
            .collect()
    }

    #[test]
    fn a_good_take_is_trimmed_around_the_word() {
        let t = assess_take(&take(1.0, 0.6, 3.0, 0.3)).unwrap();
        let secs = t.samples.len() as f64 / RATE;
        assert!((secs - 1.6).abs() < 0.05, "{secs}");
        assert!((t.word_seconds - 0.6).abs() < 0.03);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn bad_takes_say_why() {
        assert!(
            assess_take(&take(1.0, 0.6, 3.0, 0.0))
                .unwrap_err()
                .contains("speak up")
        );
        assert!(
            assess_take(&take(0.0, 0.6, 3.0, 0.3))
                .unwrap_err()
                .contains("edge")
        );
        assert!(
            assess_take(&take(0.3, 2.9, 4.0, 0.3))
                .unwrap_err()
                .contains("only the wake word")
        );
        let quiet = assess_take(&take(1.0, 0.6, 3.0, 0.01)).unwrap();
        assert!(quiet.warnings[0].contains("quiet"), "{:?}", quiet.warnings);
    }

    #[test]
    fn names_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let first = next_path(dir.path(), "hey jarvis");
        assert!(first.ends_with("hey_jarvis-0001.wav"));
        std::fs::write(&first, b"x").unwrap();
        assert!(next_path(dir.path(), "hey jarvis").ends_with("hey_jarvis-0002.wav"));
    }
}
