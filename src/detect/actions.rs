//! What happens on a detection besides printing it: run a command, keep the audio around it.
//!
//! [`Actions`] is a sink of the live session ([`crate::detect::session`]): it sees the
//! stream's history after every chunk and every detection. Commands are started and never waited for, so a slow command
//! never delays detection; finished ones are reaped as audio flows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::audio::history::AudioHistory;
use crate::detect::detector::Detection;
use crate::detect::session::DetectionSink;
use crate::{Error, Result};

/// Seconds of audio kept before a detection when it is saved.
pub const SAVE_BEFORE: f64 = 2.0;
/// Seconds of audio kept after a detection when it is saved.
pub const SAVE_AFTER: f64 = 0.5;

/// Detection side effects: `--exec` and `--save-detections`.
#[derive(Debug, Default)]
pub struct Actions {
    exec: Option<String>,
    save_dir: Option<PathBuf>,
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
        Ok(Actions {
            exec,
            save_dir,
            ..Default::default()
        })
    }

    /// Files written so far.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    fn reap(&mut self) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
    }

    fn flush(&mut self, all: bool, history: &AudioHistory) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(dir) = self.save_dir.clone() else {
            return Ok(());
        };
        let mut i = 0;
        while i < self.pending.len() {
            if !all && self.pending[i].1 > history.seconds() {
                i += 1;
                continue;
            }
            let (d, _) = self.pending.remove(i);
            let path = dir.join(format!("{}-{:010.2}s.wav", file_safe(&d.word), d.time));
            write_around(&path, &d, history)?;
            self.saved.push(path);
        }
        Ok(())
    }
}

/// Writes the audio around `d` — [`SAVE_BEFORE`] before it to [`SAVE_AFTER`] after, as far as
/// `history` still holds it — to `path` as a 16 kHz WAV file.
pub(crate) fn write_around(path: &Path, d: &Detection, history: &AudioHistory) -> Result<()> {
    let samples = history.between(d.time - SAVE_BEFORE, d.time + SAVE_AFTER);
    crate::audio::wav::write_wav(path, &samples, crate::timeline::SAMPLE_RATE)
}

/// `--exec` and `--save-detections` as a sink of the live session: commands start at the
/// detection, saves are written once the history holds [`SAVE_AFTER`] past it.
impl DetectionSink for Actions {
    fn history_seconds(&self) -> f64 {
        if self.save_dir.is_some() {
            SAVE_BEFORE + SAVE_AFTER + 0.5
        } else {
            0.0
        }
    }

    fn audio(&mut self, history: &AudioHistory) -> Result<()> {
        self.flush(false, history)?;
        self.reap();
        Ok(())
    }

    /// Acts on one detection.
    fn detection(&mut self, d: &Detection, _: &AudioHistory) -> Result<()> {
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

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Writes the saves still waiting (with the audio there is) and waits for running commands.
    fn finish(&mut self, history: &AudioHistory) -> Result<()> {
        self.flush(true, history)?;
        for mut c in self.children.drain(..) {
            let _ = c.wait();
        }
        Ok(())
    }
}

/// `word` with everything but letters and digits replaced by `_`, for file names.
pub(crate) fn file_safe(word: &str) -> String {
    word.chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect()
}
