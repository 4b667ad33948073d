//! What happens on a detection besides printing it: run a command, keep the audio around it.
//!
//! [`Actions`] sees every chunk of 16 kHz audio the pipeline consumed (it keeps the last few
//! seconds) and every detection. Commands are started and never waited for, so a slow command
//! never delays detection; finished ones are reaped as audio flows.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::detect::Detection;
use crate::{Error, Result};

/// Seconds of audio kept before a detection when it is saved.
pub const SAVE_BEFORE: f64 = 2.0;
/// Seconds of audio kept after a detection when it is saved.
pub const SAVE_AFTER: f64 = 0.5;
const RATE: f64 = 16_000.0;

/// The last few seconds of a 16 kHz stream, addressed by stream time.
#[derive(Debug, Default)]
pub struct AudioHistory {
    samples: VecDeque<f32>,
    keep: usize,
    consumed: u64,
}

impl AudioHistory {
    /// Keeps the last `seconds` of audio.
    pub fn new(seconds: f64) -> Self {
        let keep = (seconds * RATE) as usize;
        AudioHistory {
            samples: VecDeque::with_capacity(keep),
            keep,
            consumed: 0,
        }
    }

    /// Appends the next chunk of the stream.
    pub fn push(&mut self, chunk: &[f32]) {
        self.consumed += chunk.len() as u64;
        if self.keep > 0 {
            self.samples.extend(chunk);
            let excess = self.samples.len().saturating_sub(self.keep);
            self.samples.drain(..excess);
        }
    }

    /// Samples it keeps at most.
    pub fn keeps(&self) -> usize {
        self.keep
    }

    /// Continues from stream time `seconds` (what another history had seen), empty.
    pub fn skip_to(&mut self, seconds: f64) {
        self.samples.clear();
        self.consumed = (seconds * RATE).round() as u64;
    }

    /// Seconds of stream seen so far.
    pub fn seconds(&self) -> f64 {
        self.consumed as f64 / RATE
    }

    /// The audio between stream times `from` and `to` (seconds), as far as it is still kept.
    pub fn between(&self, from: f64, to: f64) -> Vec<f32> {
        let first = self.consumed - self.samples.len() as u64;
        let start = ((from * RATE).round().max(0.0) as u64).clamp(first, self.consumed);
        let end = ((to * RATE).round().max(0.0) as u64).clamp(start, self.consumed);
        self.samples
            .range((start - first) as usize..(end - first) as usize)
            .copied()
            .collect()
    }

    /// The last `seconds` of audio (less at the start of the stream).
    pub fn last(&self, seconds: f64) -> Vec<f32> {
        let now = self.seconds();
        self.between(now - seconds, now)
    }
}

/// Detection side effects: `--exec` and `--save-detections`.
#[derive(Debug, Default)]
pub struct Actions {
    exec: Option<String>,
    save_dir: Option<PathBuf>,
    history: AudioHistory,
    pending: Vec<(Detection, f64)>,
    children: Vec<Child>,
    saved: Vec<PathBuf>,
    notes: Vec<String>,
}

impl Actions {
    /// Runs `exec` through `sh -c` on every detection (with `HARK_WORD`, `HARK_SCORE` and
    /// `HARK_TIME` in its environment) and saves each detection's audio as a WAV file in
    /// `save_dir` (created if missing), when given.
    pub fn new(exec: Option<String>, save_dir: Option<PathBuf>) -> Result<Self> {
        if let Some(d) = &save_dir {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let keep = if save_dir.is_some() {
            SAVE_BEFORE + SAVE_AFTER + 0.5
        } else {
            0.0
        };
        Ok(Actions {
            exec,
            save_dir,
            history: AudioHistory::new(keep),
            ..Default::default()
        })
    }

    /// Records a chunk of audio the pipeline is about to consume; writes the saves it completes.
    pub fn audio(&mut self, chunk: &[f32]) -> Result<()> {
        self.history.push(chunk);
        self.flush(false)?;
        self.reap();
        Ok(())
    }

    /// Acts on one detection.
    pub fn detection(&mut self, d: &Detection) -> Result<()> {
        if let Some(cmd) = &self.exec {
            let spawned = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("HARK_WORD", &d.word)
                .env("HARK_SCORE", format!("{:.4}", d.score))
                .env("HARK_TIME", format!("{:.2}", d.time))
                .stdin(Stdio::null())
                .spawn();
            match spawned {
                Ok(child) => self.children.push(child),
                Err(e) => self
                    .notes
                    .push(format!("--exec: could not start `sh -c {cmd}`: {e}")),
            }
        }
        if self.save_dir.is_some() {
            self.pending.push((d.clone(), d.time + SAVE_AFTER));
        }
        Ok(())
    }

    /// Messages for the user since the last call (failed commands).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Files written so far.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    /// Writes the saves still waiting (with the audio there is) and waits for running commands.
    pub fn finish(&mut self) -> Result<()> {
        self.flush(true)?;
        for mut c in self.children.drain(..) {
            let _ = c.wait();
        }
        Ok(())
    }

    fn reap(&mut self) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
    }

    fn flush(&mut self, all: bool) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(dir) = self.save_dir.clone() else {
            return Ok(());
        };
        let mut i = 0;
        while i < self.pending.len() {
            if !all && self.pending[i].1 > self.history.seconds() {
                i += 1;
                continue;
            }
            let (d, _) = self.pending.remove(i);
            let path = self.save(&dir, &d)?;
            self.saved.push(path);
        }
        Ok(())
    }

    fn save(&self, dir: &Path, d: &Detection) -> Result<PathBuf> {
        let samples = self
            .history
            .between(d.time - SAVE_BEFORE, d.time + SAVE_AFTER);
        let path = dir.join(format!("{}-{:010.2}s.wav", file_safe(&d.word), d.time));
        crate::wav::write_wav(&path, &samples, 16_000)?;
        Ok(path)
    }
}

/// `word` with everything but letters and digits replaced by `_`, for file names.
pub(crate) fn file_safe(word: &str) -> String {
    word.chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect()
}
