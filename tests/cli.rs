//! The `hark` binary as a user runs it.

mod common;

use std::process::Command;

use common::{fixture, max_abs_diff, npy_rows};

fn hark<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(args)
        .output()
        .unwrap()
}

/// `hark eval` of the built-in head on the fixture's clips and negatives (no cache, quiet),
/// then `extra`.
fn fixture_eval(extra: &[&str]) -> Vec<String> {
    let (pos, neg) = (fixture("train/computer"), fixture("train/other"));
    let mut args = vec![
        "eval".to_string(),
        "--positive".into(),
        pos.to_str().unwrap().into(),
        "--negative".into(),
        neg.to_str().unwrap().into(),
        "--no-cache".into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
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

fn demo() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("audio/computer-demo.wav")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn listen_finds_each_computer_in_the_demo_and_nothing_else() {
    // audio/make_demo.py lays out: computer 1.00–4.07 s, computer 5.07–8.14 s,
    // jarvis 9.14–10.78 s, computer 11.78–14.85 s, jarvis 15.85–18.92 s.
    let o = hark(&["listen", "--wav", &demo(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let times: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["word"], "computer");
            assert!(v["score"].as_f64().unwrap() >= 0.5);
            v["time"].as_f64().unwrap()
        })
        .collect();
    let windows = [(1.0, 4.57), (5.07, 8.64), (11.78, 15.35)];
    assert_eq!(times.len(), 3, "{times:?}");
    for ((lo, hi), t) in windows.iter().zip(&times) {
        assert!(
            *lo <= *t && *t <= *hi,
            "detection at {t} outside [{lo}, {hi}]"
        );
    }
}

#[test]
fn score_prints_one_line_per_hop_from_the_first_full_window() {
    let o = hark(&["score", "--wav", &demo()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<(f64, f64)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (t, s) = l.split_once('\t').unwrap();
            (t.parse().unwrap(), s.parse().unwrap())
        })
        .collect();
    // 19.92 s: embeddings at 0.82 s + 0.08 k, scores from the 16th (2.02 s) on.
    assert!((lines[0].0 - 2.02).abs() < 1e-9, "{:?}", lines[0]);
    // Embedding k is out once 1280·(k+9) + 1632 samples are in: 239 of them in 318 720
    // samples, 224 scores.
    let samples = hark::audio::wav::read_wav(std::path::Path::new(&demo()))
        .unwrap()
        .len();
    assert_eq!(samples, 318_720);
    assert_eq!(lines.len(), (samples - 1632) / 1280 - 9 + 1 - 15);
    assert!(
        lines
            .windows(2)
            .all(|w| (w[1].0 - w[0].0 - 0.08).abs() < 1e-6)
    );
    assert!(lines.iter().all(|(_, s)| (0.0..=1.0).contains(s)));
    assert!(lines.iter().any(|(_, s)| *s > 0.9) && lines.iter().any(|(_, s)| *s < 0.01));
}

#[test]
fn listen_refuses_a_corrupt_head_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("broken.head");
    let mut bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/computer.head"),
    )
    .unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&head, &bytes).unwrap();
    let o = hark(&["listen", "--head", head.to_str().unwrap(), "--wav", &demo()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.head") && err.contains("truncated"),
        "{err}"
    );
}

/// Runs `hark train --word computer ARGS --out DIR/mine.head --no-cache -q` over an existing
/// head file; asserts that it fails with stderr holding every one of `expected` and leaves
/// the old head as it was.
fn train_fails_keeping_the_old_head(dir: &std::path::Path, args: &[&str], expected: &[&str]) {
    let out = dir.join("mine.head");
    std::fs::write(&out, b"previous head").unwrap();
    let mut all = vec!["train", "--word", "computer"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.to_str().unwrap(), "--no-cache", "-q"]);
    let o = hark(&all);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(expected.iter().all(|e| err.contains(e)), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous head");
}

#[test]
fn train_keeps_the_old_head_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("nothing");
    std::fs::create_dir(&empty).unwrap();
    train_fails_keeping_the_old_head(
        dir.path(),
        &[
            "--positive",
            empty.to_str().unwrap(),
            "--negative",
            fixture("train/other").to_str().unwrap(),
        ],
        &["no WAV files", "nothing"],
    );
}

#[test]
fn train_refuses_background_folders_without_usable_audio() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = dir.path().join("too-short");
    std::fs::create_dir(&quiet).unwrap();
    // Half a second of audio: too short to mix into a clip.
    hark::audio::wav::write_wav(&quiet.join("blip.wav"), &vec![0.01f32; 8_000], 16_000).unwrap();
    train_fails_keeping_the_old_head(
        dir.path(),
        &[
            "--positive",
            fixture("train/computer").to_str().unwrap(),
            "--negative",
            fixture("train/other").to_str().unwrap(),
            "--background",
            quiet.to_str().unwrap(),
        ],
        &["no usable background audio", "too-short"],
    );
}

/// A quick `hark train` of "computer" on the fixture clips against `negatives` (one
/// augmented copy per clip, 8 hidden units), writing `head` and caching in `cache`.
fn train_small(
    negatives: &std::path::Path,
    head: &std::path::Path,
    cache: &std::path::Path,
) -> std::process::Output {
    hark(&[
        "train",
        "--word",
        "computer",
        "--positive",
        fixture("train/computer").to_str().unwrap(),
        "--negative",
        negatives.to_str().unwrap(),
        "--out",
        head.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--copies",
        "1",
        "--hidden",
        "8",
        "-q",
    ])
}

/// With one negative file, none is held out for validation: the summary says the threshold
/// went unchecked (not that one alarm in no audio is "already" some rate).
#[test]
fn train_says_when_no_negatives_were_held_out() {
    let dir = tempfile::tempdir().unwrap();
    let negatives = dir.path().join("neg");
    std::fs::create_dir(&negatives).unwrap();
    let one = std::fs::read_dir(fixture("train/other"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .min()
        .unwrap();
    std::fs::copy(&one, negatives.join(one.file_name().unwrap())).unwrap();
    let head = dir.path().join("c.head");
    let o = train_small(&negatives, &head, &dir.path().join("cache"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("(0.00 h of held-out negatives)"), "{err}");
    assert!(
        err.contains("no negative audio was held out") && !err.contains("extrapolated"),
        "{err}"
    );
}

/// `hark info` reads the head's header back as it was written, and says what can be done with
/// the file: update it (a .replay beside it), roll it back (a .prev).
#[test]
fn info_tells_what_a_head_holds_and_what_can_be_done_with_it() {
    let text = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout.clone()).unwrap()
    };
    let builtin = hark::model::head::Head::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/computer.head"),
        None,
    )
    .unwrap();
    let out = text(&hark(&["info"]));
    let t = builtin.templates.as_ref().unwrap();
    for want in [
        "<built-in computer.head>".to_string(),
        "word         computer".into(),
        format!("threshold    {:.4}", builtin.info.threshold),
        "(fits the backbone in use)".into(),
        format!(
            "templates    {} templates (0 added by updates)",
            t.words.len()
        ),
        "update       not for the built-in head".into(),
    ] {
        assert!(out.contains(&want), "{want:?} not in\n{out}");
    }

    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("c.head");
    let cache = dir.path().join("cache");
    let o = train_small(&fixture("train/other"), &head, &cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h = head.to_str().unwrap();
    let out = text(&hark(&["info", "--head", h]));
    for want in [
        "updates      0",
        "templates    none",
        "update       possible",
        "rollback     nothing to roll back to",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let speech = fixture("speech.wav");
    let (s, c) = (speech.to_str().unwrap(), cache.to_str().unwrap());
    let o = hark(&["update", "--head", h, "--negative", s, "--cache", c]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&text(&hark(&["info", "--json", "--head", h]))).unwrap();
    let loaded = hark::model::head::Head::load(&head, None).unwrap();
    assert_eq!(
        json["info"]["threshold"].as_f64().unwrap() as f32,
        loaded.info.threshold
    );
    assert_eq!(json["info"]["training"]["updates"], 1);
    assert_eq!(json["replay"], true);
    assert_eq!(json["previous"], true);
    assert_eq!(json["fits_backbone"], true);

    // A damaged file: refused by name, as listen refuses it.
    let bytes = std::fs::read(&head).unwrap();
    let short = dir.path().join("short.head");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let o = hark(&["info", "--head", short.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("short.head") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn update_then_rollback_restores_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("c.head");
    let cache = dir.path().join("cache");
    let (h, c) = (head.to_str().unwrap(), cache.to_str().unwrap());
    let negatives = fixture("train/other");
    let o = train_small(&negatives, &head, &cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A few seconds of held-out negatives cannot show 0.5 false alarms per hour: say so.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("threshold for 0.5/hour is extrapolated") && err.contains("set-threshold"),
        "{err}"
    );
    let trained = std::fs::read(&head).unwrap();
    assert!(std::path::Path::new(&format!("{h}.replay")).exists());

    let speech = fixture("speech.wav");
    let o = hark(&[
        "update",
        "--head",
        h,
        "--negative",
        speech.to_str().unwrap(),
        "--cache",
        c,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 new negative") && err.contains("update 1"),
        "{err}"
    );
    let updated = std::fs::read(&head).unwrap();
    assert_ne!(updated, trained);
    assert_eq!(std::fs::read(format!("{h}.prev")).unwrap(), trained);

    let o = hark(&["update", "--head", h, "--rollback"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&head).unwrap(), trained);
    assert_eq!(std::fs::read(format!("{h}.prev")).unwrap(), updated);

    // Nothing to learn from: a clear error, the head untouched.
    let o = hark(&["update", "--head", h, "--cache", c]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs new clips"));
    assert_eq!(std::fs::read(&head).unwrap(), trained);
}

#[test]
fn eval_prints_the_curve_and_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("det.svg");
    let o = hark(&fixture_eval(&["--plot", svg.to_str().unwrap()]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("computer: 4 clips"), "{out}");
    assert!(out.contains("threshold\tmiss\tfa_per_hour"), "{out}");
    // Every one of the 4 negative files by default (up to 5), highest first.
    let peaks = |out: &str| -> Vec<f32> {
        out.lines()
            .filter(|l| l.starts_with("highest-scoring negative: "))
            .map(|l| {
                let score = l.rsplit(": ").next().unwrap();
                score.split(',').next().unwrap().parse().unwrap()
            })
            .collect()
    };
    let listed = peaks(&out);
    assert_eq!(listed.len(), 4, "{out}");
    assert!(listed.windows(2).all(|w| w[0] >= w[1]), "{out}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("<polyline"),
        "{drawn}"
    );
    assert!(drawn.contains("false alarms per hour"));

    let o = hark(&fixture_eval(&["--highest", "1"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(peaks(&String::from_utf8_lossy(&o.stdout)), listed[..1]);

    let png = dir.path().join("det.png");
    let o = hark(&fixture_eval(&["--plot", png.to_str().unwrap()]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("*.svg"));
}

/// `--learn` and `hark feedback` refuse what cannot work, naming the file and the reason,
/// before any audio is opened.
#[test]
fn learning_refuses_heads_it_cannot_update() {
    let dir = tempfile::tempdir().unwrap();
    // Without --head there is nothing to update (the built-in head has no training data here).
    let o = hark(&["listen", "--learn"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--head"));
    // A head without the replay manifest `hark train` writes beside it.
    let head = dir.path().join("computer.head");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/computer.head"),
        &head,
    )
    .unwrap();
    let o = hark(&["listen", "--learn", "--head", head.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("computer.head.replay: not found") && err.contains("retrain"),
        "{err}"
    );
    assert!(!dir.path().join("computer.head.learn").exists());
    // Feedback for a head that is not there.
    let o = hark(&["feedback", "missed", "--head", "/nonexistent/x.head"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.head: no such head file"));
    // Feedback with no listener running: sent, with a warning that nobody will read it.
    let o = hark(&["feedback", "false-alarm", "--head", head.to_str().unwrap()]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no `hark listen --learn"), "{err}");
    let marks = std::fs::read_dir(dir.path().join("computer.head.learn/inbox")).unwrap();
    assert_eq!(marks.count(), 1);
}

/// A stricter threshold set on a copy of the bundled head drops the demo's weakest
/// "computer" (its peak score after the template check is under 0.9999) and keeps the two
/// others; a bad value is refused without touching the file.
#[test]
fn set_threshold_changes_what_listen_reports() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("computer.head");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/computer.head"),
        &head,
    )
    .unwrap();
    let head = head.to_str().unwrap();
    let detections = || {
        let o = hark(&["listen", "--head", head, "--wav", &demo(), "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                    .as_f64()
                    .unwrap()
            })
            .collect::<Vec<f64>>()
    };
    assert_eq!(detections().len(), 3);

    let o = hark(&["set-threshold", "--head", head, "0.9999"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("→ 0.9999"));
    let scores = detections();
    assert_eq!(scores.len(), 2, "{scores:?}");
    assert!(scores.iter().all(|&s| s >= 0.9999 - 1e-7), "{scores:?}");

    let before = std::fs::read(head).unwrap();
    for bad in ["1.5", "0", "nan"] {
        let o = hark(&["set-threshold", "--head", head, bad]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("between 0 and 1"), "{bad}: {err}");
    }
    assert_eq!(std::fs::read(head).unwrap(), before);
}

/// Output piped into a reader that has gone (`hark score … | head -1`) ends the program
/// quietly, as it does any Unix tool, instead of a panic and a backtrace.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let wav = concat!(env!("CARGO_MANIFEST_DIR"), "/audio/demo.wav");
    let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
    for args in [
        owned(&["score", "--wav", wav]),
        owned(&["listen", "--wav", wav, "--json"]),
        fixture_eval(&[]),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the first line: loading the models takes far longer than this.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
