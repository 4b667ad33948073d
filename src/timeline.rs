//! The stream clock: how samples, log-mel frames, embeddings, scores and seconds line up.
//!
//! Every stage of the data path counts in its own unit — samples at 16 kHz, 10-ms frames,
//! 80-ms embeddings, scores of 16-embedding windows — and this module is the one place that
//! converts between them.
//!
//! ```text
//! samples  ─/160─▶ frames ─/8─▶ groups (one embedding each, 1280 samples, 80 ms)
//! embedding k: frames 8k+4 … 8k+79 (776 ms); produced once sample 1280k + 13152 is in
//! score i: the window of embeddings i … i+15, belonging to embedding i+15
//! ```

/// Sample rate of the whole data path (Hz).
pub const SAMPLE_RATE: u32 = 16_000;
/// [`SAMPLE_RATE`] as a float, for conversions to seconds.
pub const RATE: f64 = SAMPLE_RATE as f64;
/// FFT size, and so the samples one log-mel frame reads.
pub const FRAME_SAMPLES: usize = 512;
/// Samples between two log-mel frames (10 ms).
pub const FRAME_HOP: usize = 160;
/// Log-mel frames per embedding step (80 ms).
pub const GROUP_FRAMES: usize = 8;
/// Samples between two embeddings (1280, 80 ms).
pub const GROUP_HOP: usize = GROUP_FRAMES * FRAME_HOP;
/// Samples one group of frames reads: its first frame's start to its last frame's end.
pub const GROUP_SPAN: usize = (GROUP_FRAMES - 1) * FRAME_HOP + FRAME_SAMPLES;
/// Seconds between two embeddings.
pub const HOP_SECONDS: f64 = GROUP_HOP as f64 / RATE;
/// Frames in one window of the backbone.
pub const WINDOW_FRAMES: usize = 76;
/// Frames consumed when the first embedding is produced: its window is frames 4..80 (the
/// first groups' frames only prime the front end's normalisation).
pub const FIRST_WINDOW_END: usize = 80;
/// Embeddings in the window a head scores (≈ 2 s).
pub const HEAD_WINDOW: usize = 16;
/// Samples from the start of embedding `k`'s audio (sample `GROUP_HOP · k`) to the end of its
/// last frame.
pub const EMBEDDING_END: u64 = ((WINDOW_FRAMES - 1) * FRAME_HOP + FRAME_SAMPLES) as u64;

/// Samples consumed when embedding `k` of a stream is produced: its last frame is complete.
pub fn samples_at_embedding(k: u64) -> u64 {
    let last_group = k + (FIRST_WINDOW_END / GROUP_FRAMES) as u64 - 1;
    last_group * GROUP_HOP as u64 + GROUP_SPAN as u64
}

/// Seconds of audio consumed when embedding `k` of a stream is produced.
pub fn time_of_embedding(k: u64) -> f64 {
    samples_at_embedding(k) as f64 / RATE
}

/// Index of the embedding whose window ends score `i` of a score sequence (scores start once
/// the first [`HEAD_WINDOW`] embeddings are in).
pub fn embedding_of_score(i: usize) -> usize {
    i + HEAD_WINDOW - 1
}

/// Index of the first embedding whose audio ends at or after `sample` (embedding `k` covers
/// samples `GROUP_HOP · k` to `GROUP_HOP · k + EMBEDDING_END`).
pub fn first_embedding_ending_after(sample: u64) -> usize {
    sample
        .saturating_sub(EMBEDDING_END)
        .div_ceil(GROUP_HOP as u64) as usize
}

/// A refractory period of `seconds` in embedding steps, rounded up.
pub fn refractory_hops(seconds: f32) -> usize {
    (f64::from(seconds) / HOP_SECONDS).ceil() as usize
}

/// `seconds` of audio in samples, truncated.
pub const fn samples_of(seconds: f64) -> usize {
    (seconds * RATE) as usize
}

/// `samples` in seconds.
pub const fn seconds_of(samples: u64) -> f64 {
    samples as f64 / RATE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_agrees_with_itself() {
        assert_eq!(GROUP_HOP, 1280);
        assert_eq!(HOP_SECONDS, 0.08);
        assert_eq!(EMBEDDING_END, 75 * 160 + 512);
        // Embedding 0 is out once 10 groups' frames are in.
        assert_eq!(samples_at_embedding(0), 9 * 1280 + 7 * 160 + 512);
        assert_eq!(samples_at_embedding(5) - samples_at_embedding(4), 1280);
        assert_eq!(refractory_hops(1.0), 13);
        assert_eq!(refractory_hops(0.08), 1);
        assert_eq!(embedding_of_score(0), 15);
        for k in 0..50u64 {
            let end = GROUP_HOP as u64 * k + EMBEDDING_END;
            assert_eq!(first_embedding_ending_after(end) as u64, k);
            assert_eq!(first_embedding_ending_after(end + 1) as u64, k + 1);
        }
    }
}
