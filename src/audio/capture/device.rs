//! Input devices through cpal: listing them, finding one by name, choosing a format and
//! starting a stream whose callback feeds the ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpal::SampleFormat;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::audio::capture::ring::Feed;
use crate::{Error, Result};

/// How long opening a stream may take (backends that honour it).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

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

pub(super) fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_string())
        .or_else(|_| d.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "<unnamed>".into())
}

pub(super) fn device_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device(format!("{what}: {e}"))
}

/// Finds the device `wanted` names (id, `host:id`, name, or a unique part of the name).
pub(super) fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
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
pub(super) fn choose_config(
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
                !r.contains_rate(crate::timeline::SAMPLE_RATE),
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
        None if best.contains_rate(crate::timeline::SAMPLE_RATE) => crate::timeline::SAMPLE_RATE,
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
pub(super) fn start_stream(
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

/// Parses a sample-format name as `hark devices` prints it (`i16`, `f32`, `u8`, …).
pub fn parse_format(s: &str) -> Option<SampleFormat> {
    use SampleFormat::*;
    [I8, I16, I24, I32, I64, U8, U16, U24, U32, U64, F32, F64]
        .into_iter()
        .find(|f| f.to_string().eq_ignore_ascii_case(s))
}
