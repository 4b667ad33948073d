//! Stage 0 of the data path: audio in. WAV files of any PCM width, channel count and rate
//! ([`wav`]), resampled to 16 kHz ([`resample`]); sources of chunks, files or a microphone
//! ([`source`], [`capture`]); the last seconds of a stream ([`history`]); finding the word in
//! a clip ([`vad`]) and judging an enrolment take ([`takes`]).

pub mod capture;
pub mod history;
pub mod resample;
pub mod source;
pub mod takes;
pub mod vad;
pub mod wav;
