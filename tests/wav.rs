//! WAV input: every supported encoding reads correctly, every bad file gets a clear error
//! naming the file and the problem, and no byte sequence panics.

mod common;

use std::path::{Path, PathBuf};

use hark::audio::wav::{WavFile, read_wav};
use proptest::prelude::*;

fn write_with(
    dir: &Path,
    name: &str,
    spec: hound::WavSpec,
    frames: usize,
    f: impl Fn(usize, usize) -> f64,
) -> PathBuf {
    let path = dir.join(name);
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..frames {
        for c in 0..spec.channels as usize {
            let v = f(i, c);
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(v as f32).unwrap(),
                (_, 8) => w.write_sample((v * 127.0).round() as i8).unwrap(),
                (_, 16) => w.write_sample((v * 32767.0).round() as i16).unwrap(),
                (_, 24) => w.write_sample((v * 8_388_607.0).round() as i32).unwrap(),
                (_, 32) => w
                    .write_sample((v * 2_147_483_647.0).round() as i32)
                    .unwrap(),
                _ => unreachable!(),
            }
        }
    }
    w.finalize().unwrap();
    path
}

fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
    let sample_format = if float {
        hound::SampleFormat::Float
    } else {
        hound::SampleFormat::Int
    };
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format,
    }
}

fn tone(i: usize, rate: u32) -> f64 {
    0.5 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / f64::from(rate)).sin()
}

fn tone_at(i: f64) -> f64 {
    0.5 * (2.0 * std::f64::consts::PI * 300.0 * i / 16000.0).sin()
}

fn err_of(path: &Path) -> String {
    read_wav(path).unwrap_err().to_string()
}

#[test]
fn every_pcm_width_and_float_reads_the_same_tone() {
    let dir = tempfile::tempdir().unwrap();
    for (bits, float, tol) in [
        (8, false, 1e-2),
        (16, false, 1e-4),
        (24, false, 1e-6),
        (32, false, 1e-6),
        (32, true, 1e-7),
    ] {
        let p = write_with(
            dir.path(),
            &format!("t{bits}{float}.wav"),
            spec(1, 16000, bits, float),
            4000,
            |i, _| tone(i, 16000),
        );
        let x = read_wav(&p).unwrap();
        assert_eq!(x.len(), 4000);
        let err = x
            .iter()
            .enumerate()
            .map(|(i, v)| (f64::from(*v) - tone(i, 16000)).abs())
            .fold(0.0, f64::max);
        assert!(err < tol, "{bits}-bit float={float}: error {err}");
    }
}

#[test]
fn channels_are_averaged_to_mono() {
    let dir = tempfile::tempdir().unwrap();
    // Channel c carries tone·(c+1)/k: the mean is tone·(k+1)/2k.
    for k in [2u16, 6] {
        let p = write_with(
            dir.path(),
            &format!("c{k}.wav"),
            spec(k, 16000, 32, true),
            2000,
            |i, c| tone(i, 16000) * (c + 1) as f64 / f64::from(k),
        );
        let x = read_wav(&p).unwrap();
        let gain = f64::from(k + 1) / (2.0 * f64::from(k));
        let err = x
            .iter()
            .enumerate()
            .map(|(i, v)| (f64::from(*v) - gain * tone(i, 16000)).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-6, "{k} channels: error {err}");
    }
}

#[test]
fn other_rates_are_resampled_to_16k() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [8000u32, 11025, 22050, 44100, 48000, 96000] {
        let p = write_with(
            dir.path(),
            &format!("r{rate}.wav"),
            spec(1, rate, 16, false),
            rate as usize,
            |i, _| tone(i, rate),
        );
        let x = read_wav(&p).unwrap();
        assert_eq!(x.len(), 16000, "{rate} Hz");
        // The ideal 16 kHz tone, up to a delay below one sample (the resampler's delay is
        // trimmed to whole samples).
        let err = (-100..=100)
            .map(|step| {
                let d = f64::from(step) / 100.0;
                (2000..14000)
                    .map(|i| (f64::from(x[i]) - tone_at(i as f64 - d)).abs())
                    .fold(0.0, f64::max)
            })
            .fold(f64::MAX, f64::min);
        assert!(err < 3e-3, "{rate} Hz: error {err}");
    }
}

/// The header's length at 16 kHz is the length `read_wav` returns, also for lengths that do
/// not divide evenly (training sizes its noise pool from headers alone).
#[test]
fn header_length_at_16k_matches_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [8000u32, 11025, 16000, 22050, 44100, 48000] {
        for frames in [1usize, 999, rate as usize / 3 + 7] {
            let p = write_with(
                dir.path(),
                &format!("n{rate}-{frames}.wav"),
                spec(1, rate, 16, false),
                frames,
                |i, _| tone(i, rate),
            );
            let info = WavFile::open(&p).unwrap().info();
            assert_eq!(
                info.samples_at_16k(),
                read_wav(&p).unwrap().len(),
                "{rate} Hz, {frames} frames"
            );
        }
    }
}

fn valid_header(data_len: u32, channels: u16, rate: u32, bits: u16, format_tag: u16) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&data_len.wrapping_add(36).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// 16-bit PCM is read in bulk from the data chunk, not through hound's sample iterator: every
/// one of the 65 536 values comes out as value / 32768 exactly, in blocks of any size, with a
/// chunk before the data and one after it (neither is audio), mono and stereo.
#[test]
fn sixteen_bit_samples_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    for channels in [1u16, 2] {
        let frames = values.len() / usize::from(channels);
        let data_len = (values.len() * 2) as u32;
        // RIFF, fmt, a LIST chunk, data, then a trailing chunk of non-audio bytes.
        let list = b"LIST\x04\x00\x00\x00INFO";
        let tail = b"junk\x02\x00\x00\x00\x7f\x7f";
        let mut bytes = valid_header(data_len, channels, 16000, 16, 1);
        let data_at = bytes.len() - 8;
        bytes.splice(data_at..data_at, list.iter().copied());
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        bytes.extend_from_slice(tail);
        let riff = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        let path = file(dir.path(), &format!("all{channels}.wav"), &bytes);

        let mut wav = WavFile::open(&path).unwrap();
        assert_eq!(wav.info().frames, frames as u64);
        let mut got = Vec::new();
        while wav.read_mono(997, &mut got).unwrap() > 0 {}
        let want: Vec<f32> = values
            .chunks_exact(usize::from(channels))
            .map(|f| {
                let sum: f32 = f.iter().map(|&v| f32::from(v) / 32768.0).sum();
                sum / f32::from(channels)
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{channels} channel(s)");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{channels} channel(s), frame {i}");
        }
    }
}

#[test]
fn not_a_wav() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "notes.wav", b"just some text, not audio at all");
    let e = err_of(&p);
    assert!(
        e.contains("notes.wav") && e.contains("not a WAV file"),
        "{e}"
    );
}

#[test]
fn empty_file_and_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(&file(dir.path(), "zero.wav", b""));
    assert!(e.contains("zero.wav") && e.contains("empty file"), "{e}");
    let e = err_of(&file(
        dir.path(),
        "nodata.wav",
        &valid_header(0, 1, 16000, 16, 1),
    ));
    assert!(
        e.contains("nodata.wav") && e.contains("no audio samples"),
        "{e}"
    );
}

#[test]
fn truncated_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = valid_header(32000, 1, 16000, 16, 1);
    bytes.extend(std::iter::repeat_n(0u8, 1000));
    let e = err_of(&file(dir.path(), "cut.wav", &bytes));
    assert!(
        e.contains("cut.wav") && e.contains("truncated") && e.contains("32000 bytes"),
        "{e}"
    );
    // Cut inside the header itself.
    let e = err_of(&file(
        dir.path(),
        "cuthead.wav",
        &valid_header(32000, 1, 16000, 16, 1)[..30],
    ));
    assert!(e.contains("cuthead.wav") && e.contains("truncated"), "{e}");
}

#[test]
fn zero_channels() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = valid_header(4, 1, 16000, 16, 1);
    bytes[22..24].copy_from_slice(&0u16.to_le_bytes());
    bytes.extend([0; 4]);
    let e = err_of(&file(dir.path(), "nochan.wav", &bytes));
    assert!(
        e.contains("nochan.wav") && e.contains("zero channels"),
        "{e}"
    );
}

#[test]
fn unsupported_encodings() {
    let dir = tempfile::tempdir().unwrap();
    // µ-law (format tag 7), 8-bit.
    let mut bytes = valid_header(100, 1, 8000, 8, 7);
    bytes.extend([0x7f; 100]);
    let e = err_of(&file(dir.path(), "ulaw.wav", &bytes));
    assert!(
        e.contains("ulaw.wav") && e.contains("unsupported encoding"),
        "{e}"
    );
    // 64-bit float is valid WAV but not something hark reads.
    let mut bytes = valid_header(80, 1, 16000, 64, 3);
    bytes.extend([0; 80]);
    let e = err_of(&file(dir.path(), "f64.wav", &bytes));
    assert!(
        e.contains("f64.wav") && e.contains("unsupported encoding"),
        "{e}"
    );
}

#[test]
fn non_finite_float_samples() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bad) in [("nan.wav", f32::NAN), ("inf.wav", f32::INFINITY)] {
        let p = write_with(dir.path(), name, spec(1, 16000, 32, true), 3000, |i, _| {
            if i == 2500 { f64::from(bad) } else { 0.1 }
        });
        let e = err_of(&p);
        assert!(
            e.contains(name) && e.contains("sample 2500") && e.contains("finite"),
            "{e}"
        );
    }
}

#[test]
fn absurd_header_sizes() {
    let dir = tempfile::tempdir().unwrap();
    // A data chunk claiming 4 GB in a 1 kB file must not allocate 4 GB or read garbage.
    let mut bytes = valid_header(0xFFFF_FFF0, 1, 16000, 16, 1);
    bytes.extend([0; 1000]);
    let e = err_of(&file(dir.path(), "huge.wav", &bytes));
    assert!(e.contains("huge.wav") && e.contains("truncated"), "{e}");
    // An absurd sample rate.
    let mut bytes = valid_header(100, 1, 4_000_000, 16, 1);
    bytes.extend([0; 100]);
    let e = err_of(&file(dir.path(), "rate.wav", &bytes));
    assert!(e.contains("rate.wav") && e.contains("sample rate"), "{e}");
    // An unknown chunk claiming more bytes than the file holds, before the data chunk.
    let mut bytes = valid_header(100, 1, 16000, 16, 1);
    let data_at = bytes.len() - 8;
    let mut junk = b"JUNK".to_vec();
    junk.extend(0x7FFF_FFFFu32.to_le_bytes());
    bytes.splice(data_at..data_at, junk);
    let e = err_of(&file(dir.path(), "junk.wav", &bytes));
    assert!(e.contains("junk.wav") && e.contains("truncated"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = err_of(Path::new("/nonexistent/dir/clip.wav"));
    assert!(e.contains("/nonexistent/dir/clip.wav"), "{e}");
}

#[test]
fn open_reports_the_header() {
    let info = WavFile::open(&common::fixture("speech.wav"))
        .unwrap()
        .info();
    assert!((info.seconds() - 15.866).abs() < 1e-3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random bytes: an error or audio, never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = read_wav(&file(dir.path(), "r.wav", &bytes));
    }

    /// A valid header with random mutations is the harder case: it gets past the magic.
    #[test]
    fn mutated_headers_never_panic(
        channels in 0u16..10, rate in prop_oneof![Just(16000u32), any::<u32>()],
        bits in prop_oneof![Just(16u16), Just(24), Just(8), any::<u16>()],
        tag in prop_oneof![Just(1u16), Just(3), Just(0xFFFE), any::<u16>()],
        data_len in prop_oneof![Just(64u32), any::<u32>()],
        flips in proptest::collection::vec((0usize..108, any::<u8>()), 0..4),
        tail in 0usize..64,
    ) {
        let mut bytes = valid_header(data_len, channels.max(1), rate, bits, tag);
        bytes[22..24].copy_from_slice(&channels.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0x55u8, tail));
        for (at, v) in flips {
            if at < bytes.len() { bytes[at] = v; }
        }
        let dir = tempfile::tempdir().unwrap();
        let _ = read_wav(&file(dir.path(), "m.wav", &bytes));
    }
}
