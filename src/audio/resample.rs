//! Stage 0 of the data path: audio at any rate → 16 kHz, band-limited (rubato's FFT resampler).
//!
//! One streaming type serves files and live sources alike: [`Resampler::push`] takes chunks of
//! any size and [`Resampler::finish`] flushes the tail, so a whole file is simply "push everything,
//! then finish" and comes out sample for sample the same as the same audio arriving in pieces.
//! The resampler's start-up delay is trimmed, so output sample `n` lines up with input time
//! `n / 16 kHz`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use crate::features::mel::SAMPLE_RATE;
use crate::{Error, Result};

/// Lowest input rate hark accepts, Hz.
pub const MIN_RATE: u32 = 1_000;
/// Highest input rate hark accepts, Hz.
pub const MAX_RATE: u32 = 768_000;
/// Input frames per resampler call.
const CHUNK: usize = 1024;

/// Converts a mono stream at `rate` Hz to 16 kHz.
pub struct Resampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    trim: usize,
    consumed: u64,
    produced: u64,
    rate: u32,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("rate", &self.rate)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `rate` Hz to 16 kHz (a plain pass-through when `rate` is 16 kHz).
    pub fn new(rate: u32) -> Result<Self> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(Error::Invalid(format!(
                "sample rate {rate} Hz is not supported (hark accepts {MIN_RATE}–{MAX_RATE} Hz)"
            )));
        }
        let inner = if rate == SAMPLE_RATE {
            None
        } else {
            let fft = Fft::<f32>::new(
                rate as usize,
                SAMPLE_RATE as usize,
                CHUNK,
                1,
                FixedSync::Input,
            )
            .map_err(|e| Error::Invalid(format!("cannot resample {rate} Hz to 16 kHz: {e}")))?;
            Some(fft)
        };
        let (trim, scratch_len) = inner
            .as_ref()
            .map_or((0, 0), |r| (r.output_delay(), r.output_frames_max()));
        Ok(Resampler {
            inner,
            pending: Vec::with_capacity(CHUNK),
            scratch: vec![0.0; scratch_len],
            trim,
            consumed: 0,
            produced: 0,
            rate,
        })
    }

    /// The input rate, Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Feeds input samples; appends whatever 16 kHz output is ready to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.consumed += samples.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(samples);
            self.produced += samples.len() as u64;
            return Ok(());
        };
        let mut rest = samples;
        while !rest.is_empty() {
            let need = inner.input_frames_next();
            let take = (need - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == need {
                Self::run(
                    inner,
                    &self.pending,
                    None,
                    &mut self.scratch,
                    &mut self.trim,
                    &mut self.produced,
                    out,
                )?;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Flushes the tail: after this, `out` has received `⌈n · 16000 / rate⌉` samples in total for
    /// the `n` samples pushed. The resampler is then ready for a new stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let expected = (self.consumed * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.rate));
        if let Some(inner) = self.inner.as_mut() {
            let mut partial = Some(self.pending.len());
            let start = out.len() as u64;
            while self.produced < expected {
                let need = inner.input_frames_next();
                self.pending.resize(need, 0.0);
                Self::run(
                    inner,
                    &self.pending,
                    partial,
                    &mut self.scratch,
                    &mut self.trim,
                    &mut self.produced,
                    out,
                )?;
                self.pending.iter_mut().for_each(|s| *s = 0.0);
                partial = Some(0);
            }
            // The zero padding may overshoot; drop what lies past the end of the input.
            let excess = (self.produced - expected).min(out.len() as u64 - start);
            out.truncate(out.len() - excess as usize);
            inner.reset();
            self.trim = inner.output_delay();
        }
        self.pending.clear();
        self.consumed = 0;
        self.produced = 0;
        Ok(())
    }

    fn run(
        inner: &mut Fft<f32>,
        input: &[f32],
        partial: Option<usize>,
        scratch: &mut [f32],
        trim: &mut usize,
        produced: &mut u64,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("resampler: {e}"));
        let frames_out = scratch.len();
        let adapter_in = InterleavedSlice::new(input, 1, input.len()).map_err(|e| fail(&e))?;
        let mut adapter_out =
            InterleavedSlice::new_mut(scratch, 1, frames_out).map_err(|e| fail(&e))?;
        let indexing = partial.map(|p| Indexing::new().partial_len(p));
        let (_, written) = inner
            .process_into_buffer(&adapter_in, &mut adapter_out, indexing.as_ref())
            .map_err(|e| fail(&e))?;
        let skip = (*trim).min(written);
        *trim -= skip;
        out.extend_from_slice(&scratch[skip..written]);
        *produced += (written - skip) as u64;
        Ok(())
    }
}

/// Resamples a whole mono recording from `rate` Hz to 16 kHz.
pub fn to_16k(samples: &[f32], rate: u32) -> Result<Vec<f32>> {
    let mut r = Resampler::new(rate)?;
    let mut out = Vec::with_capacity(samples.len() * SAMPLE_RATE as usize / rate as usize + CHUNK);
    r.push(samples, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, secs: f64) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| {
                (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn sine_keeps_frequency_amplitude_and_timing() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let out = to_16k(&sine(rate, 440.0, 1.0), rate).unwrap();
            assert_eq!(out.len(), 16_000, "rate {rate}");
            // Away from the edges the output is the ideal 16 kHz sine, up to a delay of less
            // than one output sample (rubato trims its delay to whole samples).
            let (mut best, mut best_delay) = (f32::MAX, 0.0);
            for step in -100..=100 {
                let d = f64::from(step) / 100.0;
                let err = (2000..14000)
                    .map(|i| {
                        let t = (i as f64 - d) / 16_000.0;
                        (out[i] - (0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as f32)
                            .abs()
                    })
                    .fold(0.0, f32::max);
                if err < best {
                    (best, best_delay) = (err, d);
                }
            }
            assert!(
                best < 2e-3,
                "rate {rate}: max error {best} at delay {best_delay}"
            );
        }
    }

    #[test]
    fn chunked_equals_whole() {
        let x = sine(44_100, 1000.0, 0.7);
        let whole = to_16k(&x, 44_100).unwrap();
        let mut r = Resampler::new(44_100).unwrap();
        let mut out = Vec::new();
        for c in x.chunks(37) {
            r.push(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        assert_eq!(whole, out);
    }

    #[test]
    fn absurd_rates_are_refused() {
        assert!(Resampler::new(0).is_err());
        assert!(Resampler::new(4_000_000_000).is_err());
    }
}
