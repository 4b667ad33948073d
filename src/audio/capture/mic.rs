//! A live input device as a [`Source`] of 16 kHz mono samples, reopened with backoff on faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::audio::capture::device::{
    CaptureOptions, choose_config, device_name, find_device, start_stream,
};
use crate::audio::capture::ring::{Intake, RING_SLOTS};
use crate::audio::resample::Resampler;
use crate::audio::source::Source;
use crate::{Error, Result};

/// Something the capture side wants the user to know (printed by the CLI on stderr).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A stream was opened (again).
    Opened {
        /// Device name.
        device: String,
        /// Capture rate in Hz.
        rate: u32,
        /// Interleaved channels.
        channels: u16,
        /// Sample format.
        format: String,
    },
    /// The device failed or went away; it will be reopened after `retry_in`.
    Fault {
        /// What went wrong.
        problem: String,
        /// Wait before the next attempt.
        retry_in: Duration,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Opened {
                device,
                rate,
                channels,
                format,
            } => write!(
                f,
                "capturing from \"{device}\": {rate} Hz, {channels} channel(s), {format} → 16 kHz mono"
            ),
            Notice::Fault { problem, retry_in } => write!(
                f,
                "audio device problem: {problem}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            ),
        }
    }
}

/// No audio for this long from a running stream counts as a fault.
const STALL: Duration = Duration::from_secs(5);
/// Backoff between reopening attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));
/// How often [`Microphone::read`] checks the stop flag while waiting to reopen the device.
const RETRY_POLL: Duration = Duration::from_millis(50);
/// How long [`Microphone::read`] sleeps when the ring is empty (an audio period or so).
const POLL: Duration = Duration::from_millis(5);

/// A live input device as a [`Source`] of 16 kHz mono samples.
///
/// `read` blocks until audio arrives; it returns 0 (the end) only when the stop flag is set or
/// the requested duration has been delivered. Faults never end the stream: they are reported
/// through the notice callback and the device is reopened with backoff.
pub struct Microphone {
    opts: CaptureOptions,
    intake: Intake,
    stream: Option<cpal::Stream>,
    fault: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    resampler: Option<Resampler>,
    raw: Vec<f32>,
    last_audio: Instant,
    backoff: Duration,
    retry_at: Option<Instant>,
    delivered: u64,
    faults: u64,
    notice: Box<dyn FnMut(&Notice) + Send>,
}

impl std::fmt::Debug for Microphone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Microphone")
            .field("opts", &self.opts)
            .field("delivered", &self.delivered)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Microphone {
    /// Opens the device. Errors if it cannot be found or opened now (a wrong name should fail
    /// at once); later faults are retried. `stop` ends the stream when set (e.g. by Ctrl-C);
    /// `notice` receives what the user should see.
    pub fn open(
        opts: CaptureOptions,
        stop: Arc<AtomicBool>,
        notice: Box<dyn FnMut(&Notice) + Send>,
    ) -> Result<Self> {
        let mut mic = Microphone {
            opts,
            intake: Intake::new(),
            stream: None,
            fault: Arc::new(AtomicBool::new(false)),
            stop,
            resampler: None,
            raw: Vec::with_capacity(8192),
            last_audio: Instant::now(),
            backoff: BACKOFF.0,
            retry_at: None,
            delivered: 0,
            faults: 0,
            notice,
        };
        mic.connect()?;
        Ok(mic)
    }

    fn connect(&mut self) -> Result<()> {
        // The old stream (and with it the ring's producer) must be gone first.
        self.stream = None;
        let host = cpal::default_host();
        let device = find_device(&host, self.opts.device.as_deref())?;
        let config = choose_config(&device, &self.opts)?;
        let feed = self
            .intake
            .feed(config.channels() as usize)
            .ok_or_else(|| Error::Device("the capture ring is still in use".into()))?;
        self.fault.store(false, Ordering::Relaxed);
        let stream = start_stream(&device, &config, feed, self.fault.clone())?;
        if self
            .resampler
            .as_ref()
            .is_none_or(|r| r.rate() != config.sample_rate())
        {
            self.resampler = Some(Resampler::new(config.sample_rate())?);
        }
        self.stream = Some(stream);
        self.last_audio = Instant::now();
        (self.notice)(&Notice::Opened {
            device: device_name(&device),
            rate: config.sample_rate(),
            channels: config.channels(),
            format: config.sample_format().to_string(),
        });
        Ok(())
    }

    fn fail(&mut self, problem: String) {
        self.stream = None;
        self.faults += 1;
        (self.notice)(&Notice::Fault {
            problem,
            retry_in: self.backoff,
        });
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }

    /// 16 kHz samples handed out so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Samples lost because processing fell behind (at the device rate).
    pub fn dropped(&self) -> u64 {
        self.intake.dropped()
    }

    /// Device faults seen (each followed by a reopening attempt).
    pub fn faults(&self) -> u64 {
        self.faults
    }

    /// Throws away the audio waiting in the ring (e.g. between two guided takes).
    pub fn discard_pending(&mut self) {
        self.raw.clear();
        while self.intake.drain(8192, &mut self.raw) > 0 {
            self.raw.clear();
        }
    }

    fn limit(&self) -> Option<u64> {
        self.opts
            .duration
            .map(|s| (s * crate::timeline::RATE).round() as u64)
    }
}

impl Source for Microphone {
    fn health(&self) -> Option<String> {
        Some(format!(
            "{} sample(s) captured (largest period {}), ring {:.0}% full, {} sample(s) dropped, {} device fault(s)",
            self.intake.captured(),
            self.intake.counters.largest_period.load(Ordering::Relaxed),
            100.0 * self.intake.pending() as f64 / RING_SLOTS as f64,
            self.dropped(),
            self.faults
        ))
    }

    fn read(&mut self, out: &mut Vec<f32>) -> Result<usize> {
        let before = out.len();
        loop {
            let limit = self.limit();
            if self.stop.load(Ordering::Relaxed) || limit.is_some_and(|l| self.delivered >= l) {
                return Ok(0);
            }
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    std::thread::sleep(RETRY_POLL);
                    continue;
                }
                self.retry_at = None;
                match self.connect() {
                    Ok(()) => {}
                    Err(e) => {
                        self.fail(e.to_string());
                        continue;
                    }
                }
            }
            if self.fault.swap(false, Ordering::Relaxed) {
                self.fail("the stream reported an error (device unplugged?)".into());
                continue;
            }
            self.raw.clear();
            if self.intake.drain(16_384, &mut self.raw) == 0 {
                if self.last_audio.elapsed() > STALL {
                    self.fail(format!("no audio for {} s", STALL.as_secs()));
                    continue;
                }
                std::thread::sleep(POLL);
                continue;
            }
            self.last_audio = Instant::now();
            self.backoff = BACKOFF.0;
            let resampler = self.resampler.as_mut().expect("set when connected");
            resampler.push(&self.raw, out)?;
            if let Some(l) = limit {
                let room = (l - self.delivered) as usize;
                out.truncate(before + room.min(out.len() - before));
            }
            let n = out.len() - before;
            if n > 0 {
                self.delivered += n as u64;
                return Ok(n);
            }
        }
    }
}
