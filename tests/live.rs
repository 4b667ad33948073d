//! `hark listen` and `hark record` through a real cpal input stream, without a sound card.
//!
//! Each test starts its own PulseAudio daemon (user mode, private runtime directory) whose
//! default source is `module-pipe-source` reading a FIFO. The test writes audio into the FIFO
//! paced at real time (20 ms every 20 ms), so the device delivers it as a microphone would.
//!
//! Needs `pulseaudio` on the PATH. Without it the tests are skipped with a message, unless
//! `HARK_LIVE_TESTS=1` (set by `.ci/run`, which installs PulseAudio): then a missing daemon
//! fails the test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Pulse {
    daemon: Child,
    dir: tempfile::TempDir,
}

impl Pulse {
    /// A fresh daemon with a 16 kHz mono s16le pipe source as its default source.
    fn start() -> Option<Pulse> {
        let required = std::env::var("HARK_LIVE_TESTS").is_ok_and(|v| v == "1");
        let found = Command::new("pulseaudio")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                !required,
                "HARK_LIVE_TESTS=1 but `pulseaudio` is not installed"
            );
            eprintln!(
                "skipped: `pulseaudio` is not installed (set HARK_LIVE_TESTS=1 to require it)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for sub in ["run", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let fifo = dir.path().join("src.fifo");
        let daemon = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--log-target=stderr",
                "-L",
                "module-native-protocol-unix",
                "-L",
                &format!(
                    "module-pipe-source file={} format=s16le rate=16000 channels=1 source_name=hark_pipe",
                    fifo.display()
                ),
                "-L",
                "module-null-sink",
            ])
            .envs(env_for(dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio starts");
        let pulse = Pulse { daemon, dir };
        let t = Instant::now();
        loop {
            let ok = pulse
                .command("pactl")
                .args(["set-default-source", "hark_pipe"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "pulseaudio did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(pulse)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.envs(env_for(self.dir.path()));
        c
    }

    fn fifo(&self) -> PathBuf {
        self.dir.path().join("src.fifo")
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn env_for(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("XDG_RUNTIME_DIR", dir.join("run")),
        ("HOME", dir.join("home")),
    ]
}

/// Writes 16 kHz mono samples into the FIFO at real-time pace, on a thread.
fn play(fifo: PathBuf, samples: Vec<f32>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let bytes: Vec<u8> = samples
            .iter()
            .flat_map(|&s| ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
            .collect();
        let start = Instant::now();
        for (i, chunk) in bytes.chunks(640).enumerate() {
            f.write_all(chunk).unwrap();
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    })
}

fn demo() -> (PathBuf, Vec<f32>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audio/computer-demo.wav");
    let samples = hark::audio::wav::read_wav(&path).unwrap();
    (path, samples)
}

fn detection_times(json_lines: &str) -> Vec<(String, f64)> {
    json_lines
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["word"].as_str().unwrap().to_string(),
                v["time"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `live` holds the detections of `expected` and nothing else: the same words in the same
/// order, each within 0.5 s. `context` goes into the failure message.
fn assert_same_detections(live: &[(String, f64)], expected: &[(String, f64)], context: &str) {
    assert_eq!(
        live.len(),
        expected.len(),
        "{live:?} vs {expected:?}\n{context}"
    );
    for ((w, t), (we, te)) in live.iter().zip(expected) {
        assert_eq!(w, we, "{live:?} vs {expected:?}\n{context}");
        assert!((t - te).abs() <= 0.5, "{live:?} vs {expected:?}\n{context}");
    }
}

/// Starts `hark ARGS` against the daemon, waits until it captures, plays `samples`, and
/// returns its stdout and stderr once it exits.
fn run_live(pulse: &Pulse, args: &[&str], samples: Vec<f32>) -> (String, String) {
    run_live_with(pulse, args, samples, |_| {})
}

/// [`run_live`], calling `on_line` with each line of stdout as it is printed.
fn run_live_with(
    pulse: &Pulse,
    args: &[&str],
    samples: Vec<f32>,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> (String, String) {
    let mut child = pulse
        .command(env!("CARGO_BIN_EXE_hark"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            on_line(&line);
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            all.push_str(&line.unwrap());
            all.push('\n');
        }
        all
    });
    // The stream is connected once the daemon lists a recording client; the pipe source
    // delivers nothing until the first byte is written, so hark's time 0 is the sound's start.
    let t = Instant::now();
    loop {
        let outputs = pulse
            .command("pactl")
            .args(["list", "short", "source-outputs"])
            .output()
            .unwrap();
        if !outputs.stdout.is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "hark did not open the input stream:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let player = play(pulse.fifo(), samples);
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hark did not stop after --duration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    player.join().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = reader.join().unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    (stdout, stderr)
}

/// The demo through the microphone path gives the detections the file path gives (same word,
/// within 0.5 s), and nothing else — at 16 kHz mono and through a 44.1 kHz stereo i16 device
/// format that hark downmixes and resamples itself.
#[test]
fn listen_on_a_live_stream_reports_each_word_at_its_time() {
    let Some(pulse) = Pulse::start() else { return };
    let (path, samples) = demo();
    let expected = hark_json(&["listen", "--json", "--wav", path.to_str().unwrap()]);
    assert_eq!(expected.len(), 3, "{expected:?}");
    let seconds = samples.len() as f64 / 16_000.0;
    // Stop a little before the end: the FIFO source stops delivering when the writer is done.
    let duration = format!("{:.2}", seconds - 0.3);
    for format in [
        &[][..],
        &[
            "--capture-rate",
            "44100",
            "--capture-channels",
            "2",
            "--capture-format",
            "i16",
        ][..],
    ] {
        let mut args = vec!["listen", "--json", "--stats", "--duration", &duration];
        args.extend_from_slice(format);
        let (stdout, stderr) = run_live(&pulse, &args, samples.clone());
        assert_same_detections(
            &detection_times(&stdout),
            &expected,
            &format!("{format:?}\n{stderr}"),
        );
        assert!(stderr.contains("0 sample(s) dropped"), "{stderr}");
        assert!(stderr.contains("stopped after"), "{stderr}");
    }
}

/// Guided enrolment through the live stream: a silent take is refused with its reason, then
/// each take holding a real "computer" clip is saved as its own WAV that training accepts.
#[test]
fn record_saves_each_good_take_and_refuses_a_silent_one() {
    let Some(pulse) = Pulse::start() else { return };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/computer");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    clips.sort();
    // Three takes of 2.5 s: silence, then two clips' words centred with silence around.
    let take = 40_000;
    let mut stream = vec![0.0f32; take];
    for clip in &clips[..2] {
        let audio = hark::audio::wav::read_wav(clip).unwrap();
        let span = hark::audio::vad::locate_word(&audio).unwrap();
        let word = &audio[span.start..span.end];
        let mut t = vec![0.0f32; take];
        let at = (take - word.len()) / 2;
        t[at..at + word.len()].copy_from_slice(word);
        stream.extend(t);
    }
    stream.extend(vec![0.0f32; 16_000]);
    let out = tempfile::tempdir().unwrap();
    let (_, stderr) = run_live(
        &pulse,
        &[
            "record",
            "--word",
            "computer",
            "--count",
            "2",
            "--seconds",
            "2.5",
            "--out",
            out.path().to_str().unwrap(),
        ],
        stream,
    );
    assert!(stderr.contains("not saved: nothing stood out"), "{stderr}");
    let mut saved: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    saved.sort();
    let names: Vec<String> = saved
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["computer-0001.wav", "computer-0002.wav"],
        "{stderr}"
    );
    for p in &saved {
        let audio = hark::audio::wav::read_wav(p).unwrap();
        let span = hark::audio::vad::locate_word(&audio).unwrap();
        // Trimmed to the word with about 0.5 s on each side.
        assert!(
            (0.35..0.65).contains(&(span.start as f64 / 16_000.0)),
            "{p:?}"
        );
        let after = (audio.len() - span.end) as f64 / 16_000.0;
        assert!((0.35..0.65).contains(&after), "{p:?}: {after}");
    }
}

fn hark_json(args: &[&str]) -> Vec<(String, f64)> {
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    detection_times(&String::from_utf8(out.stdout).unwrap())
}

/// The learning loop while listening: a head trained on the fixture fires on a word that is not
/// its own; `hark feedback false-alarm` from another process marks it; the listener updates
/// the head in the background, writes it, and goes on with it, so the same clip played again
/// in the same stream is judged by the new head: the live detections are the old head's up to
/// the feedback and the new head's after it, and the two heads differ on the replayed clip.
#[test]
fn feedback_updates_the_head_and_the_listener_uses_it_at_once() {
    use hark::backbone::Backbone;
    use hark::data::cache::Cache;
    use hark::train::{Replay, TrainOptions, train};
    let Some(pulse) = Pulse::start() else { return };
    let fixture = |p: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(p)
    };
    let work = tempfile::tempdir().unwrap();
    let head_path = work.path().join("computer.head");
    let cache = work.path().join("cache");
    // Trained without the other words among its negatives, the head fires on one of them.
    let mut o = TrainOptions::new(
        "computer",
        vec![fixture("train/computer")],
        vec![fixture("speech.wav")],
    );
    (o.seed, o.hidden, o.max_epochs, o.copies) = (7, 16, 15, 3);
    o.cache = Cache::new(Some(cache.clone()));
    let report = train(&Backbone::builtin().unwrap(), &o, &hark::progress::Silent).unwrap();
    report.head.save(&head_path).unwrap();
    report.replay.save(&Replay::path_for(&head_path)).unwrap();
    let old_bytes = std::fs::read(&head_path).unwrap();

    // Two plays of a held-out negative clip the head fires on, 10 s apart.
    let head_arg = head_path.to_str().unwrap().to_string();
    let stream_path = work.path().join("stream.wav");
    let mut found = None;
    let mut others: Vec<PathBuf> = std::fs::read_dir(fixture("train/other"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    others.sort();
    for clip in &others {
        let x = hark::audio::wav::read_wav(clip).unwrap();
        let mut stream = vec![0.0f32; 16_000];
        stream.extend(&x);
        stream.extend(vec![0.0f32; 160_000]);
        stream.extend(&x);
        stream.extend(vec![0.0f32; 24_000]);
        hark::audio::wav::write_wav(&stream_path, &stream, 16_000).unwrap();
        let old = hark_json(&[
            "listen",
            "--json",
            "--head",
            &head_arg,
            "--wav",
            stream_path.to_str().unwrap(),
        ]);
        if old.len() == 2 {
            found = Some((stream, old));
            break;
        }
    }
    let (stream, old) = found.expect("the fixture head fires on one of the other clips");
    let first = old[0].1;
    let seconds = stream.len() as f64 / 16_000.0;

    let duration = format!("{:.2}", seconds - 0.3);
    let sender = head_arg.clone();
    let mut sent = false;
    let (stdout, stderr) = run_live_with(
        &pulse,
        &[
            "listen",
            "--json",
            "--learn",
            "--head",
            &head_arg,
            "--cache",
            cache.to_str().unwrap(),
            "--duration",
            &duration,
        ],
        stream,
        move |_| {
            if !sent {
                sent = true;
                let ok = Command::new(env!("CARGO_BIN_EXE_hark"))
                    .args(["feedback", "false-alarm", "--head", &sender])
                    .status()
                    .unwrap();
                assert!(ok.success());
            }
        },
    );
    assert!(
        stderr.contains("is a false alarm; learning from it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("head updated from 1 false alarm(s)"),
        "{stderr}"
    );

    // The head on disk is the update; the old one is kept beside it.
    let new_head = hark::model::head::Head::load(&head_path, None).unwrap();
    assert_eq!(new_head.info.training.updates, 1);
    assert_eq!(
        std::fs::read(format!("{head_arg}.prev")).unwrap(),
        old_bytes
    );
    let learn = work.path().join("computer.head.learn");
    let count = |d: &str| std::fs::read_dir(learn.join(d)).unwrap().count();
    assert_eq!(
        (count("learned"), count("negative"), count("inbox")),
        (1, 0, 0)
    );

    // The new head does not fire on the second play; the old one did.
    let new = hark_json(&[
        "listen",
        "--json",
        "--head",
        &head_arg,
        "--wav",
        stream_path.to_str().unwrap(),
    ]);
    assert!(
        new.iter().all(|(_, t)| (t - old[1].1).abs() > 1.0),
        "{new:?}"
    );
    let mut expected = vec![old[0].clone()];
    expected.extend(new.into_iter().filter(|(_, t)| *t > first + 3.0));
    assert_same_detections(&detection_times(&stdout), &expected, &stderr);
}
