//! # hark — an offline wake-word engine that learns your trigger word on the device
//!
//! The data path is one line, one module per stage, each owning its state:
//!
//! ```text
//! audio (any rate) ─resample─▶ 16 kHz samples ─frontend─▶ log-mel frames ─backbone─▶ embeddings
//! ```
//!
//! * [`wav`] reads WAV files of any PCM width, channel count and rate; [`resample`] brings any
//!   rate to 16 kHz with a band-limited resampler.
//! * [`frontend`] is a native (rustfft) twin of `melspectrogram.onnx`: 32 log-mel bands every
//!   10 ms, grouped by 80 ms, plus MFCC.
//! * [`backbone`] runs Google's frozen speech_embedding CNN through tract: one 96-d embedding
//!   every 80 ms from 775 ms of context.
//! * [`embedder`] joins the two for whole recordings and for streams of any chunk size, with
//!   identical results.
//!
//! ```no_run
//! # fn main() -> hark::Result<()> {
//! let samples = hark::wav::read_wav(std::path::Path::new("clip.wav"))?;
//! let backbone = hark::backbone::Backbone::builtin()?;
//! let embeddings = hark::embedder::embed_samples(&backbone, &samples)?;
//! println!("{} embeddings", embeddings.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod atomic;
pub mod backbone;
pub mod capture;
mod convnet;
pub mod dataset;
pub mod detect;
pub mod embedder;
mod error;
pub mod eval;
pub mod events;
pub mod frontend;
pub mod head;
pub mod learn;
pub mod listen;
pub mod memory;
pub mod npy;
pub mod record;
pub mod resample;
pub mod train;
pub mod vad;
pub mod verify;
pub mod wav;

pub use error::{Error, Result};
