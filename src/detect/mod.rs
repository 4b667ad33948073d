//! Stages 3 and 4 of the data path: embeddings → scores → detections, and what follows a
//! detection. [`detector`] runs every head and its template check; [`listener`] is the whole
//! line over any audio source; [`session`] is the live loop that hands each detection to its
//! sinks — [`actions`] (`--exec`, `--save-detections`) and [`learn`] (`listen --learn`).

pub mod actions;
pub mod detector;
pub mod learn;
pub mod listener;
pub mod session;
