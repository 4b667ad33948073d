//! Training a head on the device: clips → embeddings (cached) → a small network fitted with
//! Adam → a threshold calibrated on held-out negative audio.
//!
//! * Positives: each clip's word is located ([`crate::audio::vad`]); the windows whose newest
//!   embedding ends between 40 ms before and 300 ms after the word's end are positive, so the
//!   head fires when the word has just ended. Each clip is used clean and in augmented copies:
//!   real background (the `--background` recordings, else the negatives) mixed in at
//!   0–35 dB SNR, gain −12…+6 dB, the word shifted by up to ±0.5 s.
//! * Negatives: every window of the negative audio. Every other epoch all of them are scored
//!   and the 512 highest-scoring become the hard negatives that fill a quarter of each batch.
//! * A validation split (15 % of positive clips, 20 % of negative files, by file-name hash; in a
//!   negative folder where no file falls in it, such as one long recording, 20 % of the
//!   recordings' 30-s blocks) picks the epoch (early stopping on the class-balanced loss) and
//!   calibrates the threshold so false alarms per hour on it meet the target: counted where the
//!   validation audio can tell, and beyond that by extrapolating the tail of the alarm count
//!   (`tail_threshold`).
//!
//! Everything is seeded: the same data and seed give the same head, bit for bit.

pub mod augment;
pub mod calibrate;
pub mod clips;
pub mod fit;
pub mod forward;
pub mod options;
pub mod replay;
pub mod rng;
pub mod run;
pub mod templates;
#[cfg(test)]
mod tests;
pub mod update;

pub use options::{REFRACTORY_SECONDS, TrainOptions};
pub use replay::{Replay, ReplayEntry};
pub use rng::Rng;
pub use run::{TrainReport, train};
pub use templates::CUT_QUANTILE;
pub use update::{UpdateReport, load_for_update, update};
