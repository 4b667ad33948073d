//! The replay manifest (`<head>.replay`): what a head was trained on, by embedding-cache key,
//! so an update can replay it without the audio and without the backbone.

use std::path::{Path, PathBuf};

use crate::model::head::Head;
use crate::timeline::HEAD_WINDOW;
use crate::train::clips::Clip;
use crate::train::fit::mine_hard;
use crate::train::forward::Example;
use crate::{Error, Result};

/// What a head was trained on, by embedding-cache key, so `hark update` can replay it without
/// the audio and without the backbone. Stored beside the head as `<head>.replay` (JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Replay {
    /// sha256 of the backbone the cached embeddings come from.
    pub backbone_sha256: String,
    /// One entry per embedded clip or file.
    pub entries: Vec<ReplayEntry>,
}

/// One embedded clip or file of a head's training data.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ReplayEntry {
    /// Embedding-cache key (hex).
    pub key: String,
    /// The part `[start, end)` of the cached embeddings it is (a block of a long negative
    /// recording); absent for all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[usize; 2]>,
    /// Positive windows `[start, end)` (positive clips only).
    pub positive: Option<[usize; 2]>,
    /// Windows where a detection is a hit (positive clips only).
    pub hit: Option<[usize; 2]>,
    /// First window that ends well after the word (positive clips only): a negative.
    #[serde(default)]
    pub late: Option<usize>,
    /// In the validation split.
    pub validation: bool,
    /// Seconds of negative audio (0 for positives).
    pub seconds: f64,
    /// A training negative holding one of the windows the head scored highest: updates
    /// replay these (with every positive and the validation set), not all negatives.
    #[serde(default)]
    pub hard: bool,
    /// Validation clips: the distance to the head's templates where the network scored at
    /// least [`crate::model::templates::MIN_SCORE`] in training, as (embedding index, distance), so
    /// updates calibrate on checked scores too. Absent in manifests written before it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distances: Vec<(u32, f32)>,
}

impl ReplayEntry {
    pub(crate) fn of(c: &Clip, hard: bool) -> Self {
        ReplayEntry {
            key: crate::backbone::hex(&c.key),
            range: c.range,
            positive: c.positive.as_ref().map(|r| [r.start, r.end]),
            hit: c.hit.as_ref().map(|r| [r.start, r.end]),
            late: c.late,
            validation: c.validation,
            seconds: c.seconds,
            hard,
            distances: c.distances.clone(),
        }
    }
}

impl Replay {
    /// The manifest of `clips` (standardised by `weights`), marking the clips that hold the
    /// highest-scoring training negatives as hard.
    pub(crate) fn of(head: &Head, clips: &[Clip]) -> Self {
        let negatives: Vec<Example> = clips
            .iter()
            .enumerate()
            .filter(|(_, c)| c.positive.is_none() && !c.validation)
            .flat_map(|(ci, c)| {
                (HEAD_WINDOW - 1..c.embeddings.len()).map(move |k| (ci as u32, k as u32))
            })
            .collect();
        let mut hard = vec![false; clips.len()];
        for (c, _) in mine_hard(&head.weights, clips, &negatives, 4096) {
            hard[c as usize] = true;
        }
        Replay {
            backbone_sha256: head.info.backbone_sha256.clone(),
            entries: clips
                .iter()
                .zip(hard)
                .map(|(c, hard)| ReplayEntry::of(c, hard || c.fresh))
                .collect(),
        }
    }

    /// Where the replay manifest of `head` lives: `<head>.replay`.
    pub fn path_for(head: &Path) -> PathBuf {
        crate::model::store::replay_path(head)
    }

    /// Writes the manifest atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::atomic::write_bytes(path, &self.to_bytes())
    }

    /// The manifest as written (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Replay always serialises")
    }

    /// Reads a manifest.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Output {
            path: path.to_path_buf(),
            problem: format!("corrupt replay manifest ({e}); retrain with hark train"),
        })
    }
}
