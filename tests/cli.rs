//! The `hark` binary as a user runs it.

mod common;

use std::process::Command;

use common::{fixture, max_abs_diff, npy_rows};

fn hark(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn embed_writes_npy_equal_to_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy");
    let wav = fixture("speech.wav");
    let o = hark(&[
        "embed",
        "--wav",
        wav.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, values) = hark::npy::read(&out).unwrap();
    assert_eq!(shape, vec![189, 96]);
    let rows: Vec<&[f32]> = values.chunks_exact(96).collect();
    let err = max_abs_diff(&rows, &npy_rows("embeddings_ref.npy"));
    assert!(err <= 1e-4, "max error {err}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("189 embeddings"), "{stderr}");
}

#[test]
fn embed_csv_has_times_and_96_columns() {
    let wav = fixture("speech.wav");
    let o = hark(&["embed", "--wav", wav.to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 190);
    assert!(lines[0].starts_with("time,e0,e1,"));
    assert_eq!(lines[1].split(',').count(), 97);
    // Embedding 0 is produced after 13 152 samples (0.82 s), each next one 80 ms later.
    assert!(lines[1].starts_with("0.82,"), "{}", lines[1]);
    assert!(lines[2].starts_with("0.90,"), "{}", lines[2]);
}

#[test]
fn bad_inputs_fail_with_a_message_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"RIFF....not really").unwrap();
    let out = dir.path().join("e.npy");
    let o = hark(&[
        "embed",
        "--wav",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("hark: error: ") && stderr.contains("bad.wav"),
        "{stderr}"
    );
    assert!(!out.exists());

    let wav = fixture("speech.wav");
    let o = hark(&[
        "embed",
        "--wav",
        wav.to_str().unwrap(),
        "--out",
        dir.path().join("e.txt").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("e.txt") && stderr.contains(".npy or *.csv"),
        "{stderr}"
    );

    let o = hark(&[
        "--backbone",
        bad.to_str().unwrap(),
        "embed",
        "--wav",
        wav.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("backbone") && stderr.contains("bad.wav"),
        "{stderr}"
    );
}

#[test]
fn help_and_version() {
    let o = hark(&["--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("embed") && text.contains("--backbone"),
        "{text}"
    );
    let o = hark(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("hark {}", env!("CARGO_PKG_VERSION"))
    );
}
