//! What a training run or an update is asked to do ([`TrainOptions`]), and the settings every
//! new head gets.

use std::path::PathBuf;

use crate::data::cache::Cache;
use crate::data::folders::Split;

/// Refractory period stored in new heads (s).
pub const REFRACTORY_SECONDS: f32 = 1.0;

/// Everything `hark train` needs to know.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The trigger word's name.
    pub word: String,
    /// Folders (or files) of positive clips.
    pub positives: Vec<PathBuf>,
    /// Folders (or files) of negative audio.
    pub negatives: Vec<PathBuf>,
    /// Folders (or files) of background noise mixed into the augmented positives; empty: the
    /// negatives.
    pub background: Vec<PathBuf>,
    /// Which half of the folders to use.
    pub split: Split,
    /// False alarms per hour the threshold is calibrated for.
    pub target_fa_per_hour: f64,
    /// Seed for initialisation, augmentation and batches.
    pub seed: u64,
    /// Hidden units.
    pub hidden: usize,
    /// Most epochs to run (early stopping usually ends sooner).
    pub max_epochs: usize,
    /// Augmented copies per positive clip (besides the clean one).
    pub copies: usize,
    /// Adam steps per epoch.
    pub steps_per_epoch: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Where embeddings are cached.
    pub cache: Cache,
}

impl TrainOptions {
    /// Defaults for `word` from the given folders.
    pub fn new(word: &str, positives: Vec<PathBuf>, negatives: Vec<PathBuf>) -> Self {
        TrainOptions {
            word: word.to_string(),
            positives,
            negatives,
            background: Vec::new(),
            split: Split::All,
            target_fa_per_hour: 0.5,
            seed: 1,
            hidden: 32,
            max_epochs: 40,
            copies: 6,
            steps_per_epoch: 100,
            learning_rate: 1e-3,
            cache: Cache::new(Cache::default_dir()),
        }
    }
}

/// Now, or `$SOURCE_DATE_EPOCH` when set (reproducible heads, as for reproducible builds).
pub fn creation_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

pub(crate) fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl TrainOptions {
    /// Settings for `hark update`: a short fine-tuning at a lower learning rate.
    pub fn for_update(positives: Vec<PathBuf>, negatives: Vec<PathBuf>, cache: Cache) -> Self {
        let mut o = TrainOptions::new("", positives, negatives);
        o.cache = cache;
        o.max_epochs = 1;
        o.steps_per_epoch = 60;
        o.learning_rate = 5e-4;
        o
    }
}
