//! The whole data path, samples → frames → embeddings → scores → events, over any source of
//! audio: a WAV file now, a microphone through the same [`Source`] trait.

use std::path::Path;

use crate::backbone::{Backbone, Embedding};
use crate::detect::{Detection, Detector};
use crate::embedder::{Embedder, time_of_embedding};
use crate::frontend::GROUP_HOP;
use crate::head::Head;
use crate::resample::Resampler;
use crate::wav::WavFile;
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

/// One step of the pipeline: an embedding was produced and scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Seconds of audio consumed when it was produced.
    pub time: f64,
    /// Score of the first head (`None` while its first window fills).
    pub score: Option<f32>,
}

/// The streaming pipeline: owns the front end, backbone stream and detector state.
#[derive(Debug)]
pub struct Listener {
    embedder: Embedder,
    detector: Detector,
    fresh: Vec<Embedding>,
    events: Vec<Detection>,
}

impl Listener {
    /// A pipeline running `heads` on one backbone pass.
    pub fn new(backbone: &Backbone, heads: Vec<Head>) -> Result<Self> {
        Ok(Listener {
            embedder: Embedder::new(backbone)?,
            detector: Detector::new(heads),
            fresh: Vec::with_capacity(16),
            events: Vec::with_capacity(4),
        })
    }

    /// The same pipeline with the windowed reference backbone (76 frames per hop, as
    /// openWakeWord runs it): identical results at about seven times the backbone cost. For
    /// benchmarks.
    pub fn windowed(backbone: &Backbone, heads: Vec<Head>) -> Result<Self> {
        Ok(Listener {
            embedder: Embedder::windowed(backbone)?,
            ..Self::new(backbone, heads)?
        })
    }

    /// The heads being run.
    pub fn heads(&self) -> impl Iterator<Item = &Head> {
        self.detector.heads()
    }

    /// Swaps head `index` (in the order given) for `head` between two chunks, keeping the
    /// stream's state (see [`Detector::replace`]).
    pub fn replace_head(&mut self, index: usize, head: Head) {
        self.detector.replace(index, head);
    }

    /// Feeds 16 kHz samples; calls `on_step` for every embedding they complete, with the
    /// detections made at that step.
    pub fn push(
        &mut self,
        samples: &[f32],
        mut on_step: impl FnMut(&Step, &[Detection]) -> Result<()>,
    ) -> Result<()> {
        // One 80-ms group at a time, so the detector's audio never runs far ahead of the
        // embeddings (results do not depend on how the stream is cut).
        for piece in samples.chunks(GROUP_HOP) {
            self.detector.audio(piece);
            self.fresh.clear();
            self.embedder.push(piece, &mut self.fresh)?;
            let first = self.embedder.produced() - self.fresh.len() as u64;
            for (i, e) in self.fresh.iter().enumerate() {
                self.events.clear();
                let score = self.detector.push(e, &mut self.events);
                let step = Step {
                    time: time_of_embedding(first + i as u64),
                    score,
                };
                on_step(&step, &self.events)?;
            }
        }
        Ok(())
    }

    /// Runs a whole source through the pipeline, calling `on_step` as [`Listener::push`] does.
    pub fn run(
        &mut self,
        source: &mut dyn Source,
        mut on_step: impl FnMut(&Step, &[Detection]) -> Result<()>,
    ) -> Result<()> {
        let mut chunk = Vec::with_capacity(8192);
        loop {
            chunk.clear();
            if source.read(&mut chunk)? == 0 {
                return Ok(());
            }
            self.push(&chunk, &mut on_step)?;
        }
    }

    /// Starts a new stream (plans are kept).
    pub fn reset(&mut self) -> Result<()> {
        self.embedder.reset()?;
        self.detector.reset();
        Ok(())
    }
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
/// (Linux; `None` elsewhere). Feeds `listen --stats` and the benchmarks.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux configuration hark targets.
    Some(ticks / 100.0)
}
