//! The capture path without a device: sample-format conversion, downmix, rate conversion and
//! overrun accounting of the ring the audio callback writes into.

use cpal::{FromSample, I24, Sample, U24};
use hark::audio::capture::{Intake, RING_SLOTS};
use hark::audio::resample::Resampler;

fn sine(n: usize, rate: f64, freq: f64, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin())
        .collect()
}

fn drain_all(intake: &mut Intake) -> Vec<f32> {
    let mut out = Vec::new();
    while intake.drain(4096, &mut out) > 0 {}
    out
}

/// Pushes a 440 Hz sine in format T (as a device would deliver it) through the callback side
/// and checks every sample comes out as the sine within the format's quantisation step.
fn round_trip<T>(step: f64)
where
    T: Sample + FromSample<f32>,
    f32: FromSample<T>,
{
    let mut intake = Intake::new();
    let reference = sine(4800, 48_000.0, 440.0, 0.8);
    let device: Vec<T> = reference
        .iter()
        .map(|&x| T::from_sample(x as f32))
        .collect();
    let mut feed = intake.feed(1).unwrap();
    for period in device.chunks(480) {
        feed.push(period);
    }
    let out = drain_all(&mut intake);
    assert_eq!(out.len(), reference.len());
    let err = out
        .iter()
        .zip(&reference)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err <= step,
        "{}: max error {err} > {step}",
        std::any::type_name::<T>()
    );
}

#[test]
fn every_sample_format_converts_a_sine() {
    round_trip::<i8>(1.0 / 128.0);
    round_trip::<u8>(1.0 / 128.0);
    round_trip::<i16>(1.0 / 32768.0);
    round_trip::<u16>(1.0 / 32768.0);
    round_trip::<I24>(1.0 / 8_388_608.0 + 1e-7);
    round_trip::<U24>(1.0 / 8_388_608.0 + 1e-7);
    round_trip::<i32>(1e-7);
    round_trip::<u32>(1e-7);
    round_trip::<i64>(1e-7);
    round_trip::<u64>(1e-7);
    round_trip::<f32>(1e-7);
    round_trip::<f64>(1e-7);
}

#[test]
fn integer_formats_map_to_known_values() {
    let mut intake = Intake::new();
    {
        let mut feed = intake.feed(1).unwrap();
        feed.push(&[16_384i16, -32_768, 0]);
        feed.push(&[192u8, 0, 128]);
        feed.push(&[49_152u16]);
        feed.push(&[1i32 << 30]);
        feed.push(&[-0.25f64]);
    }
    assert_eq!(
        drain_all(&mut intake),
        vec![0.5, -1.0, 0.0, 0.5, -1.0, 0.0, 0.5, 0.5, -0.25]
    );
}

#[test]
fn channels_are_averaged_for_one_to_eight_channels() {
    for channels in 1..=8usize {
        let mut intake = Intake::new();
        let frames = 1000;
        // Channel c carries the frame index scaled by (c + 1); the mean is known exactly.
        let data: Vec<i16> = (0..frames)
            .flat_map(|i| (0..channels).map(move |c| (i as i16) * (c as i16 + 1)))
            .collect();
        intake.feed(channels).unwrap().push(&data);
        let out = drain_all(&mut intake);
        assert_eq!(out.len(), frames, "{channels} channels");
        let mean_factor = (channels + 1) as f32 / 2.0;
        for (i, &x) in out.iter().enumerate() {
            let want = i as f32 * mean_factor / 32768.0;
            assert!(
                (x - want).abs() < 1e-6,
                "{channels} ch, frame {i}: {x} vs {want}"
            );
        }
    }
}

/// Device rates from 16 to 48 kHz, stereo i16 as most USB microphones deliver: the mono
/// 16 kHz output is the same 440 Hz sine (checked against the analytic sine after the
/// resampler's delay, found by cross-correlation).
#[test]
fn every_rate_comes_out_as_16k_mono() {
    for rate in [16_000u32, 22_050, 32_000, 44_100, 48_000] {
        let mut intake = Intake::new();
        let n = rate as usize; // one second
        let tone = sine(n, rate as f64, 440.0, 0.5);
        let stereo: Vec<i16> = tone
            .iter()
            .flat_map(|&x| [i16::from_sample(x as f32), i16::from_sample(x as f32)])
            .collect();
        {
            let mut feed = intake.feed(2).unwrap();
            for period in stereo.chunks(2 * (rate as usize / 100)) {
                feed.push(period);
            }
        }
        let mut resampler = Resampler::new(rate).unwrap();
        let mut out = Vec::new();
        resampler.push(&drain_all(&mut intake), &mut out).unwrap();
        resampler.finish(&mut out).unwrap();
        assert!(
            (out.len() as i64 - 16_000).abs() <= 2,
            "{rate} Hz: {} samples out",
            out.len()
        );
        // Compare the middle half with the ideal 16 kHz sine at the best sub-sample lag: the
        // output is the sine, delayed by less than half a sample.
        let (lag, best) = (-100..=100)
            .map(|l| {
                let lag = l as f64 / 100.0;
                let err = (4000..12000)
                    .map(|i| {
                        let t = (i as f64 - lag) / 16_000.0;
                        (out[i] as f64 - 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()).abs()
                    })
                    .fold(0.0, f64::max);
                (lag, err)
            })
            .fold((0.0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
        assert!(lag.abs() <= 0.5, "{rate} Hz: delayed by {lag} samples");
        assert!(best < 0.002, "{rate} Hz: max error {best} at lag {lag}");
    }
}

#[test]
fn a_full_ring_drops_new_samples_and_counts_them() {
    let mut intake = Intake::new();
    let capacity = RING_SLOTS - 1;
    let extra = 5000;
    let data: Vec<f32> = (0..capacity + extra).map(|i| i as f32).collect();
    intake.feed(1).unwrap().push(&data);
    assert_eq!(intake.captured(), (capacity + extra) as u64);
    assert_eq!(intake.pending(), capacity);
    // Processing stalled long enough to fill the ring: the catch-up drops the oldest audio
    // down to a quarter of the ring, so what comes out next is the most recent audio.
    let mut out = Vec::new();
    intake.drain(10, &mut out);
    let kept = RING_SLOTS / 4;
    assert_eq!(intake.dropped(), (extra + capacity - kept) as u64);
    assert_eq!(out[0], (capacity - kept) as f32);
    assert_eq!(intake.pending(), kept - 10);
}

#[test]
fn a_ring_has_one_producer_at_a_time() {
    let intake = Intake::new();
    let feed = intake.feed(1).unwrap();
    assert!(intake.feed(1).is_none());
    drop(feed);
    assert!(
        intake.feed(2).is_some(),
        "the producer comes back when the stream is dropped"
    );
}
