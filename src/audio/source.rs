//! Where audio comes from: the [`Source`] trait (16 kHz mono chunks of any size) and
//! [`WavSource`], a WAV file read in blocks and resampled on the fly. Live input
//! (the capture module's `Microphone`) is a `Source` too.

use std::path::Path;

use crate::audio::resample::Resampler;
use crate::audio::wav::WavFile;
use crate::{Error, Result};

/// Where audio comes from: 16 kHz mono samples, full scale ±1.0, in chunks of any size.
pub trait Source {
    /// Appends the next chunk to `out`; returns how many samples were appended, 0 at the end.
    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize>;

    /// Health of a live source for `--stats` (dropped audio, faults); `None` for files.
    fn health(&self) -> Option<String> {
        None
    }
}

/// A WAV file read in blocks and resampled on the fly, so hours-long files need little memory.
#[derive(Debug)]
pub struct WavSource {
    file: WavFile,
    resampler: Resampler,
    raw: Vec<f32>,
    finished: bool,
}

impl WavSource {
    /// Frames read per block at the file's rate (≈ 0.26 s at 16 kHz).
    const BLOCK: usize = 4096;

    /// Opens `path` (any WAV hark reads: PCM or float, any channels and rate).
    pub fn open(path: &Path) -> Result<Self> {
        let file = WavFile::open(path)?;
        let resampler = Resampler::new(file.info().sample_rate)
            .map_err(|e| Error::audio(path, e.to_string()))?;
        Ok(WavSource {
            file,
            resampler,
            raw: Vec::with_capacity(Self::BLOCK * 2),
            finished: false,
        })
    }
}

impl Source for WavSource {
    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        let before = out.len();
        while out.len() == before && !self.finished {
            self.raw.clear();
            if self.file.read_mono(Self::BLOCK, &mut self.raw)? == 0 {
                self.resampler.finish(out)?;
                self.finished = true;
            } else {
                self.resampler.push(&self.raw, out)?;
            }
        }
        Ok(out.len() - before)
    }
}
