//! The real-time side of capture: the audio callback's [`Feed`] converts and copies into a
//! fixed-capacity lock-free ring (`heapless` SPSC); the processing side's [`Intake`] drains it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cpal::{FromSample, Sample};
use heapless::spsc::{Consumer, Producer, Queue};

/// Slots in the capture ring: 2.7 s of mono audio at 48 kHz, 8.2 s at 16 kHz.
pub const RING_SLOTS: usize = 1 << 17;

/// When the ring holds more than this, the processing side drops the oldest audio …
const HIGH_WATER: usize = RING_SLOTS * 3 / 4;
/// … down to this much, so it catches up with the present at once.
const LOW_WATER: usize = RING_SLOTS / 4;

type Ring = Queue<f32, RING_SLOTS>;

/// Counters shared by the callback and the processing side (atomics only).
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Mono samples the device delivered.
    captured: AtomicU64,
    /// Samples the callback could not store because the ring was full.
    dropped_full: AtomicU64,
    /// The largest number of mono samples one callback delivered.
    pub(super) largest_period: AtomicU64,
}

/// The real-time side of the ring, moved into the audio callback.
///
/// When the stream (and with it the callback) is dropped, the producer goes back to its
/// [`Intake`], so a reopened stream feeds the same ring.
pub struct Feed {
    producer: Option<Producer<'static, f32>>,
    home: Arc<Mutex<Option<Producer<'static, f32>>>>,
    channels: usize,
    pub(super) counters: Arc<Counters>,
}

impl Feed {
    /// Converts interleaved device samples of any cpal sample type to mono `f32` (the mean of
    /// the channels) and stores them in the ring. Allocation-free and lock-free: this is what
    /// runs in the audio callback. Samples that do not fit are dropped and counted.
    pub fn push<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let Some(producer) = self.producer.as_mut() else {
            return;
        };
        let scale = 1.0 / self.channels as f32;
        let mut stored = 0u64;
        let mut dropped = 0u64;
        for frame in data.chunks_exact(self.channels) {
            let sum: f32 = frame.iter().map(|&s| f32::from_sample(s)).sum();
            if producer.enqueue(sum * scale).is_ok() {
                stored += 1;
            } else {
                dropped += 1;
            }
        }
        self.counters
            .captured
            .fetch_add(stored + dropped, Ordering::Relaxed);
        self.counters
            .largest_period
            .fetch_max(stored + dropped, Ordering::Relaxed);
        if dropped > 0 {
            self.counters
                .dropped_full
                .fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("pending", &self.pending())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // Runs when the stream is torn down, outside the callback: locking is fine here.
        if let Some(p) = self.producer.take() {
            *self.home.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
    }
}

/// The processing side of the ring.
pub struct Intake {
    consumer: Consumer<'static, f32>,
    home: Arc<Mutex<Option<Producer<'static, f32>>>>,
    pub(super) counters: Arc<Counters>,
    dropped_oldest: u64,
}

impl Intake {
    /// A new ring of [`RING_SLOTS`] samples. The ring lives as long as the process (one per
    /// microphone, not one per stream: reopened streams reuse it).
    pub fn new() -> Self {
        let ring: &'static mut Ring = Box::leak(Box::new(Ring::new()));
        let (producer, consumer) = ring.split();
        Intake {
            consumer,
            home: Arc::new(Mutex::new(Some(producer))),
            counters: Arc::default(),
            dropped_oldest: 0,
        }
    }

    /// The callback side for a stream of `channels` interleaved channels; `None` while a
    /// previous [`Feed`] is still alive (a ring has one producer).
    pub fn feed(&self, channels: usize) -> Option<Feed> {
        let producer = self.home.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(Feed {
            producer: Some(producer),
            home: self.home.clone(),
            channels: channels.max(1),
            counters: self.counters.clone(),
        })
    }

    /// Moves up to `max` samples, oldest first, into `out`; returns how many. If the ring is
    /// more than three quarters full, processing has fallen behind: the oldest audio is dropped
    /// (and counted) down to a quarter first.
    pub fn drain(&mut self, max: usize, out: &mut Vec<f32>) -> usize {
        let len = self.consumer.len();
        if len > HIGH_WATER {
            for _ in 0..len - LOW_WATER {
                self.consumer.dequeue();
            }
            self.dropped_oldest += (len - LOW_WATER) as u64;
        }
        let mut n = 0;
        while n < max {
            match self.consumer.dequeue() {
                Some(x) => out.push(x),
                None => break,
            }
            n += 1;
        }
        n
    }

    /// Samples waiting in the ring.
    pub fn pending(&self) -> usize {
        self.consumer.len()
    }

    /// Mono samples the device has delivered so far (stored or not).
    pub fn captured(&self) -> u64 {
        self.counters.captured.load(Ordering::Relaxed)
    }

    /// Samples lost so far: dropped by the callback on a full ring plus the oldest audio
    /// dropped to catch up.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped_full.load(Ordering::Relaxed) + self.dropped_oldest
    }
}

impl Default for Intake {
    fn default() -> Self {
        Self::new()
    }
}
