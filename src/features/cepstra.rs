//! The template check's features: wide-band cepstra (40 mel bands, 60–7600 Hz, c1…c12) of
//! 10-ms frames, planned once ([`Cepstra`]: FFT plan, window, filter bank and DCT) and run
//! with the caller's own state, one `Cepstra` per thread.

use crate::features::mel::{FRAME_HOP, MelSpec, N_FFT, frame_count, mel_bank};

/// Cepstral coefficients per frame (c1…c12; c0, the level, is left out).
pub const CEPSTRA: usize = 12;
const BANDS: usize = 40;
const F_MIN: f64 = 60.0;
const F_MAX: f64 = 7600.0;
/// Dynamic range kept below the loudest band of a call, dB.
const TOP_DB: f32 = 80.0;
/// Template length limits in frames (0.2–1.5 s); words outside are not kept as templates.
const TEMPLATE_FRAMES: (usize, usize) = (20, 150);
/// Audio kept on each side of the located word in a template, samples (50 ms).
const TEMPLATE_MARGIN: usize = 800;

/// One frame of wide-band cepstra.
pub type Cepstrum = [f32; CEPSTRA];

/// Planned wide-band cepstra: FFT plan, window, filter bank and DCT built once.
#[derive(Clone)]
pub struct Cepstra {
    mel: MelSpec,
    dct: Vec<[f32; BANDS]>,
    db: Vec<[f32; BANDS]>,
}

impl std::fmt::Debug for Cepstra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cepstra").field("bands", &BANDS).finish()
    }
}

impl Default for Cepstra {
    fn default() -> Self {
        Self::new()
    }
}

impl Cepstra {
    /// Plans the transform.
    pub fn new() -> Self {
        let m = BANDS as f64;
        let dct = (1..=CEPSTRA)
            .map(|k| {
                std::array::from_fn(|j| {
                    ((2.0 / m).sqrt()
                        * (std::f64::consts::PI * k as f64 * (2.0 * j as f64 + 1.0) / (2.0 * m))
                            .cos()) as f32
                })
            })
            .collect();
        Cepstra {
            mel: MelSpec::with_bands(mel_bank(BANDS, F_MIN, F_MAX)),
            dct,
            db: Vec::new(),
        }
    }

    /// Cepstra of `samples` (16 kHz, full scale ±1.0): one frame per 160 samples, the same
    /// framing as the backbone's front end; log-mel power floored 80 dB below its maximum
    /// over the call, then the orthonormal DCT-II without c0.
    pub fn of(&mut self, samples: &[f32]) -> Vec<Cepstrum> {
        let n = frame_count(samples.len());
        self.db.clear();
        self.db.resize(n, [0.0; BANDS]);
        for (i, frame) in self.db.iter_mut().enumerate() {
            let at = i * FRAME_HOP;
            self.mel.frame_db_into(&samples[at..at + N_FFT], frame);
        }
        let top = self.db.iter().flatten().fold(f32::MIN, |a, &b| a.max(b));
        self.db
            .iter()
            .map(|frame| {
                let floored: [f32; BANDS] = std::array::from_fn(|j| frame[j].max(top - TOP_DB));
                std::array::from_fn(|k| {
                    self.dct[k]
                        .iter()
                        .zip(&floored)
                        .map(|(b, x)| b * x)
                        .sum::<f32>()
                })
            })
            .collect()
    }

    /// Cepstra of the last `n` samples of `samples` (all of them when there are fewer).
    pub fn of_last(&mut self, samples: &[f32], n: usize) -> Vec<Cepstrum> {
        self.of(&samples[samples.len().saturating_sub(n)..])
    }

    /// The template of one clip whose word spans samples `word` (see [`crate::audio::vad`]), with 50 ms
    /// on each side; `None` when the word is shorter than 0.2 s or longer than 1.5 s.
    pub fn template(
        &mut self,
        clip: &[f32],
        word: std::ops::Range<usize>,
    ) -> Option<Vec<Cepstrum>> {
        let start = word.start.saturating_sub(TEMPLATE_MARGIN);
        let end = (word.end + TEMPLATE_MARGIN).min(clip.len());
        let t = self.of(&clip[start..end]);
        (TEMPLATE_FRAMES.0..=TEMPLATE_FRAMES.1)
            .contains(&t.len())
            .then_some(t)
    }
}
