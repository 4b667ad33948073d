//! Live capture: a cpal input stream → a fixed-capacity lock-free ring → 16 kHz mono samples.
//!
//! The audio callback ([`Feed::push`]) only converts the device's samples to mono `f32` and
//! copies them into a `heapless` single-producer/single-consumer ring: no allocation, no lock,
//! no I/O. The processing side ([`Microphone`], a [`crate::audio::source::Source`]) drains the ring, resamples to
//! 16 kHz and hands the samples to the pipeline. If processing falls behind, the ring's oldest
//! audio is dropped and counted; the callback never waits. Device errors, a device that
//! disappears or a stream that stops delivering are logged, and the device is reopened with
//! backoff until it is back.

mod device;
mod mic;
mod ring;

pub use device::{CaptureOptions, DeviceInfo, devices, parse_format};
pub use mic::{Microphone, Notice};
pub use ring::{Feed, Intake, RING_SLOTS};
