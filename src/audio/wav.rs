//! Reading WAV files (hound): any PCM width, 32-bit float, any channel count and rate,
//! delivered as mono `f32` at full scale ±1.0.
//!
//! Everything that can be wrong with a file is reported as an [`Error::Audio`] naming the file
//! and the problem; no byte sequence makes this module panic (see `tests/wav_errors.rs`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader};

use crate::audio::resample::{MAX_RATE, MIN_RATE, Resampler};
use crate::{Error, Result};

/// What a WAV header says about its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavInfo {
    /// Frames per second per channel.
    pub sample_rate: u32,
    /// Interleaved channels; hark averages them to mono.
    pub channels: u16,
    /// Bits per sample.
    pub bits: u16,
    /// True for IEEE float samples, false for integer PCM.
    pub float: bool,
    /// Frames (samples per channel) in the data chunk.
    pub frames: u64,
}

impl WavInfo {
    /// Duration of the audio in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }

    /// Mono samples the audio comes to at hark's 16 kHz, as [`read_wav`] returns them.
    pub fn samples_at_16k(&self) -> usize {
        (self.frames * u64::from(crate::features::mel::SAMPLE_RATE))
            .div_ceil(u64::from(self.sample_rate)) as usize
    }
}

/// A WAV file opened for reading in blocks, so hours of audio never need to sit in memory.
pub struct WavFile {
    reader: Samples,
    path: PathBuf,
    info: WavInfo,
    frames_read: u64,
    interleaved: Vec<f32>,
}

/// Where the samples come from. 16-bit PCM, what nearly every recording is, is read in bulk
/// from the data chunk hound found (hound's per-sample reads took 5 % of a training run);
/// every other encoding through hound's sample iterator.
enum Samples {
    Hound(WavReader<BufReader<File>>),
    /// Positioned at the next sample of the data chunk; the buffer holds its raw bytes.
    Pcm16(BufReader<File>, Vec<u8>),
}

impl std::fmt::Debug for WavFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFile")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl WavFile {
    /// Opens `path` and checks its header: format, channels, rate, and that the file really
    /// holds as many bytes as the header promises.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len == 0 {
            return Err(Error::audio(
                path,
                "empty file (0 bytes), not a WAV recording",
            ));
        }
        let reader = WavReader::new(BufReader::new(file)).map_err(|e| header_error(path, e))?;
        let spec = reader.spec();
        let frames = u64::from(reader.duration());
        let info = WavInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            bits: spec.bits_per_sample,
            float: spec.sample_format == SampleFormat::Float,
            frames,
        };
        match (info.float, info.bits) {
            (false, 8 | 16 | 24 | 32) | (true, 32) => {}
            (float, bits) => {
                let kind = if float { "float" } else { "integer PCM" };
                return Err(Error::audio(
                    path,
                    format!(
                        "unsupported encoding: {bits}-bit {kind} (hark reads 8/16/24/32-bit PCM and 32-bit float)"
                    ),
                ));
            }
        }
        if !(MIN_RATE..=MAX_RATE).contains(&info.sample_rate) {
            return Err(Error::audio(
                path,
                format!(
                    "absurd sample rate in header: {} Hz (hark accepts {MIN_RATE}–{MAX_RATE} Hz)",
                    info.sample_rate
                ),
            ));
        }
        // The header's data size must fit in the file: a cut-off download or a header with an
        // absurd size would otherwise only show up as a read error halfway through.
        let data_bytes = frames * u64::from(info.channels) * u64::from(info.bits / 8);
        if data_bytes > file_len {
            return Err(Error::audio(
                path,
                format!(
                    "truncated: the header promises {data_bytes} bytes of audio ({:.2} s) but the file is only {file_len} bytes long",
                    info.seconds()
                ),
            ));
        }
        if frames == 0 {
            return Err(Error::audio(
                path,
                "holds no audio samples (the data chunk is empty)",
            ));
        }
        let reader = if !info.float && info.bits == 16 {
            // WavReader::new stops at the first byte of the data chunk.
            Samples::Pcm16(reader.into_inner(), Vec::new())
        } else {
            Samples::Hound(reader)
        };
        Ok(WavFile {
            reader,
            path: path.to_path_buf(),
            info,
            frames_read: 0,
            interleaved: Vec::new(),
        })
    }

    /// The header's description of the audio.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `max_frames` frames, averages the channels and appends the mono samples
    /// (at the file's own rate, full scale ±1.0) to `out`. Returns the frames read; 0 at the end.
    pub fn read_mono(&mut self, max_frames: usize, out: &mut Vec<f32>) -> Result<usize> {
        let channels = usize::from(self.info.channels);
        let frames = max_frames.min((self.info.frames - self.frames_read) as usize);
        if frames == 0 {
            return Ok(0);
        }
        self.interleaved.clear();
        let wanted = frames * channels;
        match &mut self.reader {
            Samples::Pcm16(file, bytes) => {
                bytes.resize(wanted * 2, 0);
                match file.read_exact(bytes) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => bytes.clear(),
                    Err(e) => return Err(Error::io(&self.path, e)),
                }
                self.interleaved.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0),
                );
            }
            Samples::Hound(reader) if self.info.float => {
                for s in reader.samples::<f32>().take(wanted) {
                    let v = s.map_err(|e| read_error(&self.path, e))?;
                    if !v.is_finite() {
                        let at = self.frames_read + (self.interleaved.len() / channels) as u64;
                        return Err(Error::audio(
                            &self.path,
                            format!(
                                "sample {at} (at {:.3} s) is {v}: float WAVs must hold finite values",
                                at as f64 / f64::from(self.info.sample_rate)
                            ),
                        ));
                    }
                    self.interleaved.push(v);
                }
            }
            Samples::Hound(reader) => {
                let scale = 1.0 / (1u64 << (self.info.bits - 1)) as f32;
                for s in reader.samples::<i32>().take(wanted) {
                    let v = s.map_err(|e| read_error(&self.path, e))?;
                    self.interleaved.push(v as f32 * scale);
                }
            }
        }
        if self.interleaved.len() < wanted {
            return Err(Error::audio(
                &self.path,
                format!(
                    "truncated: audio ends after {} of {} frames",
                    self.frames_read, self.info.frames
                ),
            ));
        }
        if channels == 1 {
            out.extend_from_slice(&self.interleaved);
        } else {
            let inv = 1.0 / channels as f32;
            out.extend(
                self.interleaved
                    .chunks_exact(channels)
                    .map(|f| f.iter().sum::<f32>() * inv),
            );
        }
        self.frames_read += frames as u64;
        Ok(frames)
    }
}

/// Reads a whole WAV file as 16 kHz mono at full scale ±1.0, resampling if needed.
pub fn read_wav(path: &Path) -> Result<Vec<f32>> {
    let mut wav = WavFile::open(path)?;
    let rate = wav.info().sample_rate;
    let mut resampler = Resampler::new(rate).map_err(|e| Error::audio(path, e.to_string()))?;
    let mut raw = Vec::new();
    let mut out = Vec::with_capacity(
        (wav.info().frames * u64::from(crate::timeline::SAMPLE_RATE) / u64::from(rate)) as usize
            + 2048,
    );
    while wav.read_mono(1 << 16, &mut raw)? > 0 {
        resampler.push(&raw, &mut out)?;
        raw.clear();
    }
    resampler.finish(&mut out)?;
    Ok(out)
}

/// Writes 16-bit mono PCM atomically: the file appears complete or not at all.
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    crate::atomic::write(path, |file| {
        let mut w = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        for &s in samples {
            let v = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
            w.write_sample(v)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        w.finalize()
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

fn header_error(path: &Path, e: hound::Error) -> Error {
    let problem = match e {
        hound::Error::FormatError("no RIFF tag found") | hound::Error::FormatError("no WAVE tag found") => {
            "not a WAV file (no RIFF/WAVE header)".to_string()
        }
        hound::Error::FormatError("file contains zero channels") => "zero channels in the header".to_string(),
        hound::Error::FormatError("bits per sample is not 32") => {
            "unsupported encoding: float samples that are not 32-bit (hark reads 32-bit float)".to_string()
        }
        hound::Error::FormatError(msg) => format!("malformed WAV header: {msg}"),
        hound::Error::Unsupported => {
            "unsupported encoding (compressed WAV such as ADPCM, A-law or µ-law; hark reads PCM and 32-bit float)"
                .to_string()
        }
        hound::Error::IoError(io) if is_short_read(&io) => {
            "truncated: the file ends inside the WAV header or a chunk it announces".to_string()
        }
        other => format!("cannot read WAV header: {other}"),
    };
    Error::audio(path, problem)
}

fn read_error(path: &Path, e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(io) if is_short_read(&io) => {
            Error::audio(path, "truncated: the audio data ends early")
        }
        other => Error::audio(path, format!("cannot read samples: {other}")),
    }
}

/// hound reports running out of bytes either as `UnexpectedEof` or as its own message.
fn is_short_read(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
        || e.to_string().contains("Failed to read enough bytes")
}
