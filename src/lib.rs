//! # hark — an offline wake-word engine that learns your trigger word on the device
//!
//! A speech network pretrained on a large task (Google's speech_embedding CNN) stays frozen and
//! turns audio into one 96-d embedding every 80 ms; a small head is trained for the user's word
//! from their own recordings. The data path is one line, one module per stage, each owning its
//! state:
//!
//! ```text
//! audio (any rate) ─resample─▶ 16 kHz samples ─features─▶ log-mel frames ─backbone─▶ embeddings
//!     ─model (head)─▶ scores ─detect (threshold, refractory, template check)─▶ detections
//! ```
//!
//! * [`audio`]: WAV files, resampling, sources (files, microphones), the stream's history.
//! * [`features`]: the backbone's log-mel front end (a rustfft twin of `melspectrogram.onnx`),
//!   MFCC, and the template check's wide-band cepstra.
//! * [`backbone`]: the frozen CNN as a streaming plan on tract's kernels ("plan once, run many").
//! * [`model`]: heads, their templates and the files that go with them.
//! * [`detect`]: detectors, the listener over any source, the live session and its sinks.
//! * [`data`], [`train`](mod@train), [`eval`]: data on disk, training and updating heads, measuring them.
//! * [`timeline`] converts between samples, frames, embeddings and seconds; [`metrics`] is the
//!   one rule for false alarms and misses.
//!
//! The library computes and returns: it prints nothing, installs no signal handler and reports
//! long work through [`Progress`]. The `hark` command renders.
//!
//! Train a head and listen with it:
//!
//! ```no_run
//! # fn main() -> hark::Result<()> {
//! use std::path::PathBuf;
//! let backbone = hark::Backbone::builtin()?;
//! let opts = hark::TrainOptions::new(
//!     "hey_lamp",
//!     vec![PathBuf::from("my-clips")],
//!     vec![PathBuf::from("household-audio")],
//! );
//! let report = hark::train(&backbone, &opts, &hark::progress::Silent)?;
//! report.head.save(std::path::Path::new("lamp.head"))?;
//!
//! let mut listener = hark::Listener::new(&backbone, vec![report.head])?;
//! let mut source = hark::WavSource::open(std::path::Path::new("kitchen.wav"))?;
//! listener.run(&mut source, |_step, detections| {
//!     for d in detections {
//!         println!("{:.2} s: {} ({:.3})", d.time, d.word, d.score);
//!     }
//!     Ok(())
//! })?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod atomic;
pub mod audio;
pub mod backbone;
pub mod data;
pub mod detect;
mod error;
pub mod eval;
pub mod features;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod npy;
pub mod progress;
pub mod timeline;
pub mod train;

pub use audio::source::{Source, WavSource};
pub use backbone::{Backbone, Embedding};
pub use detect::detector::Detection;
pub use detect::listener::Listener;
pub use detect::session::{DetectionSink, Session};
pub use error::{Error, Result};
pub use eval::{EvalData, EvalReport, evaluate};
pub use model::head::Head;
pub use progress::Progress;
pub use train::{TrainOptions, TrainReport, train, update};
