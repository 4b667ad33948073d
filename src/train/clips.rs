//! Embedded clips and how their windows are labelled: which windows are the word, where a
//! detection counts as a hit, and which are negatives because they end well after the word.

use std::path::PathBuf;

use crate::audio::vad::Span;
use crate::backbone::Embedding;
use crate::timeline::{HEAD_WINDOW, first_embedding_ending_after};

/// A positive clip, located.
pub(crate) struct Positive {
    pub(crate) path: PathBuf,
    pub(crate) hash: [u8; 32],
    pub(crate) span: Span,
    pub(crate) len: usize,
    pub(crate) validation: bool,
}

/// One embedded piece of audio and how its windows are labelled.
pub(crate) struct Clip {
    /// Cache key of the embeddings (for the replay manifest).
    pub(crate) key: [u8; 32],
    /// The part `[start, end)` of the cached embeddings this clip holds (a block of a long
    /// negative recording); `None` for all of them.
    pub(crate) range: Option<[usize; 2]>,
    /// New data of an update: oversampled so it is learnt.
    pub(crate) fresh: bool,
    pub(crate) embeddings: Vec<Embedding>,
    /// For positive clips: embedding indices whose window is positive.
    pub(crate) positive: Option<std::ops::Range<usize>>,
    /// For positive clips: embedding indices where a detection counts as a hit.
    pub(crate) hit: Option<std::ops::Range<usize>>,
    /// For positive clips: windows from this index on end well after the word and are
    /// negatives, so the head fires once, as the word ends, not for as long as it is in view.
    pub(crate) late: Option<usize>,
    pub(crate) validation: bool,
    pub(crate) seconds: f64,
    /// Validation clips of a head with templates: the distance to them (see
    /// [`crate::model::templates`]) at each window the network scored at least
    /// [`crate::model::templates::MIN_SCORE`] when the head was trained (for a positive clip, only at its
    /// best hit window), as (embedding index, distance) in ascending order, so thresholds are
    /// calibrated on the scores `listen` acts on. Empty otherwise.
    pub(crate) distances: Vec<(u32, f32)>,
}

impl Clip {
    /// The distance [`Clip::distances`] holds for window `k`, if any.
    pub(crate) fn distance_at(&self, k: usize) -> Option<f32> {
        let i = self
            .distances
            .binary_search_by_key(&k, |&(w, _)| w as usize);
        i.ok().map(|i| self.distances[i].1)
    }
}

/// Positive windows, the hit window, and the first "late" (negative) window of a positive clip
/// placed after `pre` samples.
pub(crate) fn label(
    p: &Positive,
    pre: usize,
) -> (std::ops::Range<usize>, std::ops::Range<usize>, usize) {
    let end = (pre + p.span.end) as u64;
    let first = first_embedding_ending_after(end.saturating_sub(640));
    let last = first_embedding_ending_after(end + 4800);
    let hit_first = first_embedding_ending_after((pre + p.span.start) as u64);
    let hit_last = first_embedding_ending_after((pre + p.len) as u64 + 8000);
    let late = first_embedding_ending_after(end + LATE_AFTER);
    (
        first.max(HEAD_WINDOW - 1)..last.max(HEAD_WINDOW - 1),
        hit_first..hit_last,
        late.max(HEAD_WINDOW - 1),
    )
}

/// Samples at the start of a copy of `p` placed after `pre` samples that no labelled window
/// reads: whole 1280-sample hops before the first embedding of the first window used (a
/// positive, a late negative or, for validation clips, a hit window). Embedding k covers
/// samples from 1280k on, so dropping them leaves every later embedding bit for bit as it was
/// and spares the backbone the copy's padding and the clip's own lead.
pub(crate) fn unused_lead(p: &Positive, pre: usize) -> usize {
    let (positive, hit, late) = label(p, pre);
    let mut first = positive.start.min(late);
    if p.validation {
        first = first.min(hit.start);
    }
    first.saturating_sub(HEAD_WINDOW - 1) * crate::timeline::GROUP_HOP
}

/// Windows ending this many samples (0.8 s) after the word are negatives.
pub(crate) const LATE_AFTER: u64 = 12_800;
