//! The native front end against the reference: `melspectrogram.onnx` run through tract on the
//! same input, and onnxruntime / scipy / librosa values stored as fixtures.

mod common;

use common::{Lcg, fixture, max_abs_diff, npy_rows, speech};
use hark::features::mel::{self as frontend, MelFrame, MelSpec, Mfcc, N_MELS};
use tract_onnx::prelude::*;

/// The mel model as the reference implementation: one call on the whole input, dB output.
fn onnx_mel(samples_int16_scale: &[f32]) -> Vec<Vec<f32>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/melspectrogram.onnx");
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact([1, samples_int16_scale.len()]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[1, samples_int16_scale.len()], samples_int16_scale).unwrap();
    let out = model.run(tvec![input.into()]).unwrap();
    out[0]
        .try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .chunks_exact(N_MELS)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Test signals at int16 scale, as openWakeWord feeds the model.
fn signals(n: usize) -> Vec<(&'static str, Vec<f32>)> {
    let mut rng = Lcg(n as u64);
    let chirp = (0..n)
        .map(|i| {
            let t = i as f64 / 16000.0;
            // 50 Hz → 7.5 kHz over one second, repeating.
            let t1 = t % 1.0;
            (20000.0 * (2.0 * std::f64::consts::PI * (50.0 * t1 + 3725.0 * t1 * t1)).sin()) as f32
        })
        .collect();
    let white = (0..n)
        .map(|_| (rng.next_f64() * 65535.0 - 32768.0).round() as f32)
        .collect();
    let quiet = (0..n)
        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * 1e-4 * 32768.0) as f32)
        .collect();
    let silence = vec![0.0; n];
    let clipped = (0..n)
        .map(|i| {
            if i < n / 2 {
                (3.0 * 32767.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16000.0).sin())
                    .clamp(-32768.0, 32767.0) as f32
            } else {
                0.0
            }
        })
        .collect();
    vec![
        ("chirp", chirp),
        ("white noise", white),
        ("noise at 1e-4", quiet),
        ("digital silence", silence),
        ("clipped tone then silence", clipped),
    ]
}

#[test]
fn matches_melspectrogram_onnx_within_1e3_db() {
    let mut mel = MelSpec::new();
    for n in [1280, 1760, 16000, 20480] {
        for (name, x) in signals(n) {
            let want = onnx_mel(&x);
            let full_scale: Vec<f32> = x.iter().map(|v| v / 32768.0).collect();
            let got = mel.onnx_call(&full_scale, false);
            assert_eq!(got.len(), frontend::frame_count(n));
            assert_eq!(got.len(), want.len(), "{name}, {n} samples: frame count");
            let err = max_abs_diff(&got, &want);
            assert!(err <= 1e-3, "{name}, {n} samples: max error {err} dB");
        }
    }
}

#[test]
fn grouped_frames_match_onnxruntime_on_real_speech() {
    let want = npy_rows("mel_db_ref.npy");
    let got: Vec<Vec<f32>> = frontend::frames(&mut MelSpec::new(), &speech())
        .iter()
        .map(|f| f.iter().map(|v| (v - 2.0) * 10.0).collect())
        .collect();
    // Compared in dB: the stored reference is the model's dB output before x/10+2.
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-3, "max error {err} dB over {} frames", got.len());
}

#[test]
fn mfcc_matches_scipy_dct() {
    let db = npy_rows("mel_db_ref.npy");
    let want = npy_rows("mfcc_ref.npy");
    let mfcc = Mfcc::new(13).unwrap();
    let got: Vec<Vec<f32>> = db
        .iter()
        .map(|row| {
            let x: [f64; N_MELS] = std::array::from_fn(|j| f64::from(row[j]));
            let mut out = vec![0.0; 13];
            mfcc.of_db(&x, &mut out);
            out
        })
        .collect();
    let err = max_abs_diff(&got, &want);
    assert!(
        err <= 1e-4,
        "MFCC of the reference log-mel: max error {err}"
    );

    // End to end: hark's own frames → MFCC, within what 1e-3 dB per band allows.
    let frames: Vec<MelFrame> = frontend::frames(&mut MelSpec::new(), &speech());
    let got: Vec<Vec<f32>> = frames
        .iter()
        .map(|f| {
            let mut out = vec![0.0; 13];
            mfcc.of_frame(f, &mut out);
            out
        })
        .collect();
    let err = max_abs_diff(&got, &want);
    assert!(err <= 6e-3, "MFCC from hark's frames: max error {err}");
}

#[test]
fn mfcc_refuses_impossible_sizes() {
    assert!(Mfcc::new(0).is_err());
    assert!(Mfcc::new(33).is_err());
    assert_eq!(Mfcc::new(32).unwrap().len(), 32);
}

#[test]
fn speech_fixture_is_what_the_script_describes() {
    // Guards the other tests against a silently replaced fixture.
    let info = hark::audio::wav::WavFile::open(&fixture("speech.wav"))
        .unwrap()
        .info();
    assert_eq!(
        (info.sample_rate, info.channels, info.bits, info.frames),
        (16000, 1, 16, 253_856)
    );
}
