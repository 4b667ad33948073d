//! The last few seconds of the 16 kHz stream, addressed by stream time: what the detection
//! sinks (saved detections, learning) read around a detection.

use std::collections::VecDeque;

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
        let keep = (seconds * crate::timeline::RATE) as usize;
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
        self.consumed = (seconds * crate::timeline::RATE).round() as u64;
    }

    /// Seconds of stream seen so far.
    pub fn seconds(&self) -> f64 {
        self.consumed as f64 / crate::timeline::RATE
    }

    /// The audio between stream times `from` and `to` (seconds), as far as it is still kept.
    pub fn between(&self, from: f64, to: f64) -> Vec<f32> {
        let first = self.consumed - self.samples.len() as u64;
        let start =
            ((from * crate::timeline::RATE).round().max(0.0) as u64).clamp(first, self.consumed);
        let end =
            ((to * crate::timeline::RATE).round().max(0.0) as u64).clamp(start, self.consumed);
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
