//! Stages 1 and 2 joined: 16 kHz samples → embeddings, for whole recordings and for streams.
//!
//! [`Embedder::push`] accepts chunks of any size, from one sample to hours; [`embed_samples`]
//! takes a whole recording. Both run the same front end and the same streaming backbone, so they
//! return bit-identical embeddings for the same audio (`tests/streaming.rs`).

use crate::Result;
use crate::backbone::{Backbone, BackboneStream, Embedding, FIRST_WINDOW_END};
use crate::features::mel::{
    self as frontend, FrameStream, GROUP_HOP, GROUP_SPAN, MelFrame, MelSpec, SAMPLE_RATE,
};

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
pub fn embed_samples(backbone: &Backbone, samples: &[f32]) -> Result<Vec<Embedding>> {
    let frames = frontend::frames(&mut MelSpec::new(), samples);
    backbone.embed(&frames)
}

/// Streaming samples → embeddings, owning the front end's and the backbone's stream state.
#[derive(Debug)]
pub struct Embedder {
    stream: FrameStream,
    backbone: BackboneStream,
    fresh: Vec<MelFrame>,
    produced: u64,
}

impl Embedder {
    /// A stream at its start, running `backbone`.
    pub fn new(backbone: &Backbone) -> Result<Self> {
        Ok(Embedder {
            stream: FrameStream::new(),
            backbone: backbone.stream()?,
            fresh: Vec::with_capacity(frontend::GROUP_FRAMES * 4),
            produced: 0,
        })
    }

    /// A stream at its start running the windowed reference backbone (see
    /// [`Backbone::windowed_stream`]); for comparisons only.
    pub fn windowed(backbone: &Backbone) -> Result<Self> {
        Ok(Embedder {
            backbone: backbone.windowed_stream()?,
            ..Self::new(backbone)?
        })
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
            if let Some(e) = self.backbone.push_group(group)? {
                out.push(e);
                self.produced += 1;
            }
        }
        Ok(out.len() - before)
    }

    /// Starts a new stream: forgets buffered audio, frames and backbone columns (plans are kept).
    pub fn reset(&mut self) -> Result<()> {
        self.stream.reset();
        self.backbone.reset()?;
        self.produced = 0;
        Ok(())
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
