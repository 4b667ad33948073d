//! The backbone through tract against onnxruntime reference embeddings, and model loading.

mod common;

use common::{fixture, max_abs_diff, npy_rows, speech};
use hark::backbone::embedder::embed_samples;
use hark::backbone::{BUILTIN_SHA256, Backbone, embedding_count};

#[test]
fn embeddings_match_onnxruntime_within_1e4() {
    let want = npy_rows("embeddings_ref.npy");
    let samples = speech();
    let backbone = Backbone::builtin().unwrap();
    let got = embed_samples(&backbone, &samples).unwrap();
    assert_eq!(got.len(), 189);
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-4, "max error {err} over {} embeddings", got.len());
    // The reference is not degenerate: embeddings differ across the recording.
    assert!(max_abs_diff(&got[..1], &got[100..101]) > 0.1);
}

#[test]
fn model_file_on_disk_is_the_builtin_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/embedding_model.onnx");
    let b = Backbone::from_file(&path).unwrap();
    assert_eq!(b.sha256(), BUILTIN_SHA256);
    assert_eq!(b.origin(), path);
}

#[test]
fn corrupt_model_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    let mut bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/embedding_model.onnx"),
    )
    .unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, &bytes).unwrap();
    let err = Backbone::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("broken.onnx") && err.contains("not a usable speech_embedding ONNX model"),
        "{err}"
    );
}

#[test]
fn mismatched_model_is_refused() {
    // The mel model is valid ONNX, but not a backbone: wrong input and output shapes.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/melspectrogram.onnx");
    let err = Backbone::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("melspectrogram.onnx") && err.contains("not a usable"),
        "{err}"
    );
}

#[test]
fn missing_model_names_the_file() {
    let err = Backbone::from_file(&fixture("no-such-model.onnx"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such-model.onnx"), "{err}");
}

#[test]
fn short_audio_yields_no_embeddings() {
    let backbone = Backbone::builtin().unwrap();
    assert!(
        embed_samples(&backbone, &vec![0.1; 13_151])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        embed_samples(&backbone, &vec![0.1; 13_152]).unwrap().len(),
        1
    );
    assert_eq!(embedding_count(80), 1);
}

#[test]
fn windowed_reference_matches_onnxruntime() {
    let want = npy_rows("embeddings_ref.npy");
    let frames = hark::features::mel::frames(&mut hark::features::mel::MelSpec::new(), &speech());
    let got = Backbone::builtin()
        .unwrap()
        .windowed()
        .unwrap()
        .embed(&frames)
        .unwrap();
    assert_eq!(got.len(), want.len());
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-4, "max error {err}");
}

#[test]
fn stream_reset_starts_over() {
    let frames = hark::features::mel::frames(&mut hark::features::mel::MelSpec::new(), &speech());
    let backbone = Backbone::builtin().unwrap();
    let mut stream = backbone.stream().unwrap();
    let mut first = Vec::new();
    for g in frames.chunks_exact(8).take(40) {
        first.extend(stream.push_group(g).unwrap());
    }
    stream.reset().unwrap();
    assert_eq!(stream.groups(), 0);
    let mut again = Vec::new();
    for g in frames.chunks_exact(8).take(40) {
        again.extend(stream.push_group(g).unwrap());
    }
    assert_eq!(first.len(), 31);
    assert_eq!(max_abs_diff(&first, &again), 0.0);
    assert!(stream.push_group(&frames[..7]).is_err());
}
