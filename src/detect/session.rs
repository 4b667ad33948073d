//! The live loop: a [`Listener`] over a [`Source`], one history of the stream's last seconds,
//! and the [`DetectionSink`]s that act on each detection (print it, run a command, save its
//! audio, learn from feedback).
//!
//! The caller drives it one chunk at a time ([`Session::step`]), so a program decides what to
//! do between chunks (statistics, a stop flag) and renders what the sinks report. Every sink
//! reads the same [`AudioHistory`], which keeps as much as the most demanding sink asks for.

use crate::Result;
use crate::audio::history::AudioHistory;
use crate::audio::source::Source;
use crate::detect::detector::Detection;
use crate::detect::listener::Listener;
use crate::model::head::Head;

/// Something that acts on the detections of a live session. Every method but
/// [`DetectionSink::detection`] has a default that does nothing.
pub trait DetectionSink {
    /// Seconds of the stream's past this sink reads from the session's history.
    fn history_seconds(&self) -> f64 {
        0.0
    }

    /// A chunk of audio was consumed: `history` now holds it (called before the chunk's
    /// detections).
    fn audio(&mut self, history: &AudioHistory) -> Result<()> {
        let _ = history;
        Ok(())
    }

    /// A detection was made in the chunk `history` ends with.
    fn detection(&mut self, d: &Detection, history: &AudioHistory) -> Result<()>;

    /// Between two chunks: a head to swap in for the head at an index (in the listener's
    /// order), if this sink has one.
    fn next_head(&mut self, history: &AudioHistory) -> Result<Option<(usize, Head)>> {
        let _ = history;
        Ok(None)
    }

    /// Messages for the user since the last call.
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// The stream has ended: finish what is pending.
    fn finish(&mut self, history: &AudioHistory) -> Result<()> {
        let _ = history;
        Ok(())
    }
}

/// A listening session: the pipeline, the stream's history and the sinks, in the order given
/// (each detection reaches them in that order).
pub struct Session<'a> {
    listener: Listener,
    history: AudioHistory,
    sinks: Vec<&'a mut dyn DetectionSink>,
    chunk: Vec<f32>,
    samples: u64,
    detections: u64,
    notes: Vec<String>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sinks", &self.sinks.len())
            .field("samples", &self.samples)
            .field("detections", &self.detections)
            .finish()
    }
}

impl<'a> Session<'a> {
    /// A session running `listener` with `sinks`.
    pub fn new(listener: Listener, sinks: Vec<&'a mut dyn DetectionSink>) -> Self {
        let keep = sinks
            .iter()
            .map(|s| s.history_seconds())
            .fold(0.0, f64::max);
        Session {
            listener,
            history: AudioHistory::new(keep),
            sinks,
            chunk: Vec::with_capacity(8192),
            samples: 0,
            detections: 0,
            notes: Vec::new(),
        }
    }

    /// Reads the next chunk of `source` and runs it through the pipeline and the sinks.
    /// Returns false at the end of the source.
    pub fn step(&mut self, source: &mut dyn Source) -> Result<bool> {
        self.chunk.clear();
        if source.read(&mut self.chunk)? == 0 {
            return Ok(false);
        }
        self.samples += self.chunk.len() as u64;
        self.history.push(&self.chunk);
        for s in self.sinks.iter_mut() {
            s.audio(&self.history)?;
        }
        let (sinks, history, detections) = (&mut self.sinks, &self.history, &mut self.detections);
        self.listener.push(&self.chunk, |_, events| {
            for d in events {
                *detections += 1;
                for s in sinks.iter_mut() {
                    s.detection(d, history)?;
                }
            }
            Ok(())
        })?;
        for s in self.sinks.iter_mut() {
            self.notes.extend(s.take_notes());
            if let Some((index, head)) = s.next_head(&self.history)? {
                self.listener.replace_head(index, head);
            }
            self.notes.extend(s.take_notes());
        }
        Ok(true)
    }

    /// Ends the session: every sink finishes what is pending, in order (each runs even when one
    /// before it failed; the first error is returned).
    pub fn finish(&mut self) -> Result<()> {
        let mut first = Ok(());
        for s in self.sinks.iter_mut() {
            let r = s.finish(&self.history);
            self.notes.extend(s.take_notes());
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Messages from the sinks since the last call, in order.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Samples (16 kHz) consumed so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Detections so far.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// The pipeline.
    pub fn listener(&self) -> &Listener {
        &self.listener
    }
}
