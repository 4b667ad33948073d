//! Stages 1 and 2 joined: 16 kHz samples → embeddings, for whole recordings and for streams.
//!
//! [`Embedder::push`] accepts chunks of any size, from one sample to hours; [`embed_samples`]
//! takes a whole recording. Both use the same frames and the same windows, so they return the
//! same embeddings for the same audio (tested to 1e-5 in `tests/streaming.rs`).

use crate::Result;
use crate::backbone::{Backbone, Embedding, FIRST_WINDOW_END};
use crate::frontend::{self, FrameStream, GROUP_HOP, GROUP_SPAN, MelFrame, MelSpec, SAMPLE_RATE};

/// Samples consumed when embedding `k` of a stream is produced: its last frame is complete.
pub fn samples_at_embedding(k: u64) -> u64 {
    let last_group = k + (FIRST_WINDOW_END / frontend::GROUP_FRAMES) as u64 - 1;
    last_group * GROUP_HOP as u64 + GROUP_SPAN as u64
}

/// Seconds of audio consumed when embedding `k` of a stream is produced.
pub fn time_of_embedding(k: u64) -> f64 {
    samples_at_embedding(k) as f64 / f64::from(SAMPLE_RATE)
}

/// Embeddings of a whole 16 kHz recording (full scale ±1.0).
pub fn embed_samples(backbone: &mut Backbone, samples: &[f32]) -> Result<Vec<Embedding>> {
    let frames = frontend::frames(&mut MelSpec::new(), samples);
    backbone.embed(&frames)
}

/// Streaming samples → embeddings, owning the front end's and the backbone window's state.
#[derive(Debug)]
pub struct Embedder {
    backbone: Backbone,
    stream: FrameStream,
    /// The newest frames, at most [`FIRST_WINDOW_END`] of them.
    recent: Vec<MelFrame>,
    fresh: Vec<MelFrame>,
    produced: u64,
}

impl Embedder {
    /// A stream at its start, running `backbone`.
    pub fn new(backbone: Backbone) -> Self {
        Embedder {
            backbone,
            stream: FrameStream::new(),
            recent: Vec::with_capacity(FIRST_WINDOW_END + frontend::GROUP_FRAMES),
            fresh: Vec::with_capacity(frontend::GROUP_FRAMES * 4),
            produced: 0,
        }
    }

    /// The backbone this stream runs.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// Embeddings produced since the start of the stream.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// Feeds 16 kHz samples; appends each embedding they complete to `out` and returns how many.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Embedding>) -> Result<usize> {
        let before = out.len();
        self.fresh.clear();
        self.stream.push(samples, &mut self.fresh);
        for group in self.fresh.chunks_exact(frontend::GROUP_FRAMES) {
            self.recent.extend_from_slice(group);
            if self.recent.len() > FIRST_WINDOW_END {
                self.recent.drain(..self.recent.len() - FIRST_WINDOW_END);
            }
            if self.recent.len() == FIRST_WINDOW_END {
                out.push(self.backbone.embed_latest(&self.recent)?);
                self.produced += 1;
            }
        }
        Ok(out.len() - before)
    }

    /// Starts a new stream: forgets buffered audio and frames (the backbone plan is kept).
    pub fn reset(&mut self) {
        self.stream.reset();
        self.recent.clear();
        self.produced = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_embedding_needs_ten_groups() {
        assert_eq!(samples_at_embedding(0), 9 * 1280 + 1632);
        assert_eq!(samples_at_embedding(1) - samples_at_embedding(0), 1280);
    }
}
