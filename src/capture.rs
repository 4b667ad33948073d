//! Live capture: a cpal input stream → a fixed-capacity lock-free ring → 16 kHz mono samples.
//!
//! The audio callback ([`Feed::push`]) only converts the device's samples to mono `f32` and
//! copies them into a `heapless` single-producer/single-consumer ring: no allocation, no lock,
//! no I/O. The processing side ([`Microphone`], a [`Source`]) drains the ring, resamples to
//! 16 kHz and hands the samples to the pipeline. If processing falls behind, the ring's oldest
//! audio is dropped and counted; the callback never waits. Device errors, a device that
//! disappears or a stream that stops delivering are logged, and the device is reopened with
//! backoff until it is back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat};
use heapless::spsc::{Consumer, Producer, Queue};

use crate::listen::Source;
use crate::resample::Resampler;
use crate::{Error, Result};

/// Slots in the capture ring: 2.7 s of mono audio at 48 kHz, 8.2 s at 16 kHz.
pub const RING_SLOTS: usize = 1 << 17;

/// When the ring holds more than this, the processing side drops the oldest audio …
const HIGH_WATER: usize = RING_SLOTS * 3 / 4;
/// … down to this much, so it catches up with the present at once.
const LOW_WATER: usize = RING_SLOTS / 4;

type Ring = Queue<f32, RING_SLOTS>;

/// Counters shared by the callback and the processing side (atomics only).
#[derive(Debug, Default)]
struct Counters {
    /// Mono samples the device delivered.
    captured: AtomicU64,
    /// Samples the callback could not store because the ring was full.
    dropped_full: AtomicU64,
    /// The largest number of mono samples one callback delivered.
    largest_period: AtomicU64,
}

/// The real-time side of the ring, moved into the audio callback.
///
/// When the stream (and with it the callback) is dropped, the producer goes back to its
/// [`Intake`], so a reopened stream feeds the same ring.
pub struct Feed {
    producer: Option<Producer<'static, f32>>,
    home: Arc<Mutex<Option<Producer<'static, f32>>>>,
    channels: usize,
    counters: Arc<Counters>,
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
    counters: Arc<Counters>,
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

/// How to open the input device. Every field is optional: by default the system's default
/// input in the format it prefers, with 16 kHz and mono chosen when the device offers them.
#[derive(Debug, Clone, Default)]
pub struct CaptureOptions {
    /// Device to open: its name or id as `hark devices` prints it (a unique part of the name
    /// is enough); `None` for the system default.
    pub device: Option<String>,
    /// Capture at this rate (Hz) instead of the automatic choice.
    pub rate: Option<u32>,
    /// Capture this many channels instead of the automatic choice.
    pub channels: Option<u16>,
    /// Capture in this sample format (`i16`, `f32`, …) instead of the automatic choice.
    pub format: Option<SampleFormat>,
    /// Stop after this many seconds of audio (16 kHz samples handed out); `None` to run until
    /// stopped.
    pub duration: Option<f64>,
}

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

/// A description of one input device, for `hark devices`.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Name as the system describes it.
    pub name: String,
    /// Stable id (`host:device`), accepted by `--device`.
    pub id: String,
    /// Whether it is the system's default input.
    pub is_default: bool,
    /// Supported input formats, one line per sample format (`i16: 1–2 channel(s), 8000–48000 Hz`).
    pub formats: Vec<String>,
}

/// Lists the input devices of the default audio host.
pub fn devices() -> Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let list = host
        .input_devices()
        .map_err(|e| device_error("listing input devices", e))?;
    Ok(list
        .map(|d| {
            let id = d.id().ok();
            // One line per sample format: the channel and rate ranges it covers.
            let mut by_format: Vec<(SampleFormat, u16, u16, u32, u32)> = Vec::new();
            for c in d.supported_input_configs().into_iter().flatten() {
                let f = c.sample_format();
                match by_format.iter_mut().find(|e| e.0 == f) {
                    Some(e) => {
                        e.1 = e.1.min(c.channels());
                        e.2 = e.2.max(c.channels());
                        e.3 = e.3.min(c.min_sample_rate());
                        e.4 = e.4.max(c.max_sample_rate());
                    }
                    None => by_format.push((
                        f,
                        c.channels(),
                        c.channels(),
                        c.min_sample_rate(),
                        c.max_sample_rate(),
                    )),
                }
            }
            let formats: Vec<String> = by_format
                .into_iter()
                .map(|(f, c0, c1, r0, r1)| {
                    let ch = if c0 == c1 {
                        format!("{c0}")
                    } else {
                        format!("{c0}–{c1}")
                    };
                    let hz = if r0 == r1 {
                        format!("{r0}")
                    } else {
                        format!("{r0}–{r1}")
                    };
                    format!("{f}: {ch} channel(s), {hz} Hz")
                })
                .collect();
            DeviceInfo {
                name: device_name(&d),
                is_default: id.is_some() && id == default_id,
                id: id.map(|i| i.to_string()).unwrap_or_default(),
                formats,
            }
        })
        .collect())
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .or_else(|_| d.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "<unnamed>".into())
}

fn device_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device(format!("{what}: {e}"))
}

/// Finds the device `wanted` names (id, `host:id`, name, or a unique part of the name).
fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
    let Some(wanted) = wanted else {
        return host
            .default_input_device()
            .ok_or_else(|| Error::Device("no default input device (see `hark devices`)".into()));
    };
    let list: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| device_error("listing input devices", e))?
        .collect();
    let w = wanted.to_lowercase();
    let exact = |d: &&cpal::Device| {
        let id = d.id().ok();
        id.as_ref()
            .is_some_and(|i| i.to_string().to_lowercase() == w || i.id().to_lowercase() == w)
            || device_name(d).to_lowercase() == w
    };
    if let Some(d) = list.iter().find(exact) {
        return Ok(d.clone());
    }
    let partial: Vec<&cpal::Device> = list
        .iter()
        .filter(|d| device_name(d).to_lowercase().contains(&w))
        .collect();
    match partial.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Device(format!(
            "no input device matches \"{wanted}\"; available: {}",
            list.iter()
                .map(|d| format!("\"{}\"", device_name(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        many => Err(Error::Device(format!(
            "\"{wanted}\" matches several input devices ({}); give the full name or id",
            many.iter()
                .map(|d| format!("\"{}\"", device_name(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Sample formats hark converts (every integer and float format cpal has, except DSD).
fn convertible(f: SampleFormat) -> bool {
    use SampleFormat::*;
    matches!(
        f,
        I8 | I16 | I24 | I32 | I64 | U8 | U16 | U24 | U32 | U64 | F32 | F64
    )
}

/// Picks the stream configuration: the user's choices where given; otherwise mono and 16 kHz
/// when offered (nothing to resample or mix), else the device's default.
fn choose_config(
    device: &cpal::Device,
    opts: &CaptureOptions,
) -> Result<cpal::SupportedStreamConfig> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = device
        .supported_input_configs()
        .map_err(|e| device_error("reading the device's formats", e))?
        .filter(|r| convertible(r.sample_format()))
        .filter(|r| opts.format.is_none_or(|f| r.sample_format() == f))
        .filter(|r| opts.channels.is_none_or(|c| r.channels() == c))
        .filter(|r| opts.rate.is_none_or(|rate| r.contains_rate(rate)))
        .collect();
    if ranges.is_empty() {
        return Err(Error::Device(format!(
            "\"{}\" offers no input format matching{}{}{} (see `hark devices`)",
            device_name(device),
            opts.format
                .map(|f| format!(" format {f}"))
                .unwrap_or_default(),
            opts.channels
                .map(|c| format!(" {c} channel(s)"))
                .unwrap_or_default(),
            opts.rate.map(|r| format!(" {r} Hz")).unwrap_or_default(),
        )));
    }
    let default = device.default_input_config().ok();
    // Preference: fewer channels, then a range holding 16 kHz, then the default's format,
    // then f32/i16 (no conversion surprises).
    let best = ranges
        .iter()
        .min_by_key(|r| {
            (
                r.channels(),
                !r.contains_rate(16_000),
                default
                    .as_ref()
                    .is_none_or(|d| d.sample_format() != r.sample_format()),
                !matches!(r.sample_format(), SampleFormat::F32 | SampleFormat::I16),
            )
        })
        .copied()
        .expect("ranges is not empty");
    let rate = match opts.rate {
        Some(r) => r,
        None if best.contains_rate(16_000) => 16_000,
        None => default
            .as_ref()
            .map(|d| d.sample_rate())
            .filter(|&r| best.contains_rate(r))
            .unwrap_or_else(|| {
                best.max_sample_rate()
                    .min(48_000)
                    .max(best.min_sample_rate())
            }),
    };
    Ok(best.with_sample_rate(rate))
}

/// Builds and starts the input stream feeding `feed`.
fn start_stream(
    device: &cpal::Device,
    config: &cpal::SupportedStreamConfig,
    mut feed: Feed,
    fault: Arc<AtomicBool>,
) -> Result<cpal::Stream> {
    // A fixed period of about 20 ms where the device allows it: short enough for low
    // latency, long enough that the capture thread wakes only 50 times a second.
    let mut stream_config = config.config();
    let period = config.sample_rate() / 50;
    if let cpal::SupportedBufferSize::Range { min, max } = config.buffer_size()
        && (*min..=*max).contains(&period)
    {
        stream_config.buffer_size = cpal::BufferSize::Fixed(period);
    }
    let on_error = move |_e: cpal::Error| fault.store(true, Ordering::Relaxed);
    macro_rules! build {
        ($t:ty) => {
            device.build_input_stream::<$t, _, _>(
                stream_config,
                move |data: &[$t], _: &cpal::InputCallbackInfo| feed.push(data),
                on_error,
                Some(OPEN_TIMEOUT),
            )
        };
    }
    use SampleFormat as F;
    let stream = match config.sample_format() {
        F::I8 => build!(i8),
        F::I16 => build!(i16),
        F::I24 => build!(cpal::I24),
        F::I32 => build!(i32),
        F::I64 => build!(i64),
        F::U8 => build!(u8),
        F::U16 => build!(u16),
        F::U24 => build!(cpal::U24),
        F::U32 => build!(u32),
        F::U64 => build!(u64),
        F::F32 => build!(f32),
        F::F64 => build!(f64),
        other => {
            return Err(Error::Device(format!(
                "sample format {other} is not supported"
            )));
        }
    }
    .map_err(|e| device_error("opening the input stream", e))?;
    stream
        .play()
        .map_err(|e| device_error("starting the input stream", e))?;
    Ok(stream)
}

/// How long opening a stream may take (backends that honour it).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
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
        self.opts.duration.map(|s| (s * 16_000.0).round() as u64)
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

/// A flag set by SIGINT or SIGTERM (installed once per process).
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    if let Some(f) = FLAG.get() {
        return Ok(f.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::Relaxed))
        .map_err(|e| Error::Device(format!("installing the Ctrl-C handler: {e}")))?;
    Ok(FLAG.get_or_init(|| flag).clone())
}

/// Parses a sample-format name as `hark devices` prints it (`i16`, `f32`, `u8`, …).
pub fn parse_format(s: &str) -> Option<SampleFormat> {
    use SampleFormat::*;
    [I8, I16, I24, I32, I64, U8, U16, U24, U32, U64, F32, F64]
        .into_iter()
        .find(|f| f.to_string().eq_ignore_ascii_case(s))
}
