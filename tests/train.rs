//! Training, head files and the scoring path, on a small real training set
//! (tests/fixtures/train, made by make_train_fixture.py).

mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use hark::audio::history::AudioHistory;
use hark::audio::source::{Source, WavSource};
use hark::backbone::Backbone;
use hark::data::cache::Cache;
use hark::detect::listener::Listener;
use hark::detect::session::DetectionSink;
use hark::model::head::{Head, score_all};
use hark::progress::Silent;
use hark::train::{TrainOptions, TrainReport, train};

fn options(seed: u64) -> TrainOptions {
    let mut o = TrainOptions::new(
        "computer",
        vec![fixture("train/computer")],
        vec![fixture("train/other"), fixture("speech.wav")],
    );
    o.seed = seed;
    o.hidden = 16;
    o.max_epochs = 15;
    o.copies = 3;
    o.cache = Cache::new(None);
    o
}

fn trained(seed: u64) -> Head {
    let mut head = train(&Backbone::builtin().unwrap(), &options(seed), &Silent)
        .unwrap()
        .head;
    head.info.created_unix = 0;
    head
}

/// Best score of a head over a clip heard in a stream: 1 s of silence, the clip, 0.5 s.
fn best_score(backbone: &Backbone, head: &Head, clip: &Path) -> f32 {
    let x = hark::audio::wav::read_wav(clip).unwrap();
    let mut padded = vec![0.0; 16_000];
    padded.extend(&x);
    padded.resize(padded.len() + 8_000, 0.0);
    let e = hark::backbone::embedder::embed_samples(backbone, &padded).unwrap();
    score_all(head, &e).into_iter().fold(0.0, f32::max)
}

/// The head compiled into the binary, read from models/.
fn bundled_head() -> Head {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/computer.head");
    Head::from_bytes(&std::fs::read(&path).unwrap(), &path).unwrap()
}

fn wavs(dir: &str) -> Vec<PathBuf> {
    hark::data::folders::wav_files(&[fixture(dir)], hark::data::folders::Split::All).unwrap()
}

/// The fixture head of `options(7)` with its embeddings cached in `cache`, so that updates can
/// replay them; with the options that made it.
fn trained_with_cache(backbone: &Backbone, cache: PathBuf) -> (TrainOptions, TrainReport) {
    let mut o = options(7);
    o.cache = Cache::new(Some(cache));
    let report = train(backbone, &o, &Silent).unwrap();
    (o, report)
}

/// The fixture's negative clips held out for validation: training never fitted on them.
fn held_out_negatives() -> Vec<PathBuf> {
    wavs("train/other")
        .into_iter()
        .filter(|p| hark::data::folders::name_fraction(p, "validation") < 0.2)
        .collect()
}

#[test]
fn training_separates_positives_from_negatives() {
    let backbone = Backbone::builtin().unwrap();
    let head = trained(7);
    // The clips training fitted on; the rest are its validation split (15 % of positives,
    // 20 % of negatives by file-name hash), too few here to say anything about generalisation.
    let trained_on = |dir: &str, held_out: f64| -> Vec<PathBuf> {
        wavs(dir)
            .into_iter()
            .filter(|p| hark::data::folders::name_fraction(p, "validation") >= held_out)
            .collect()
    };
    let pos: Vec<f32> = trained_on("train/computer", 0.15)
        .iter()
        .map(|p| best_score(&backbone, &head, p))
        .collect();
    let neg: Vec<f32> = trained_on("train/other", 0.2)
        .iter()
        .map(|p| best_score(&backbone, &head, p))
        .collect();
    assert!(pos.len() >= 3 && neg.len() >= 2);
    let worst_pos = pos.iter().copied().fold(1.0, f32::min);
    let best_neg = neg.iter().copied().fold(0.0, f32::max);
    assert!(
        worst_pos > best_neg,
        "positives {pos:?} vs negatives {neg:?}"
    );
    assert!(
        worst_pos > 0.5 && best_neg < 0.5,
        "positives {pos:?} vs negatives {neg:?}"
    );
}

#[test]
fn same_seed_gives_the_same_head_bit_for_bit() {
    let a = trained(3);
    let b = trained(3);
    assert_eq!(a.to_bytes(), b.to_bytes());
    let c = trained(4);
    assert_ne!(a.weights, c.weights, "the seed must matter");
}

#[test]
fn bad_training_input_gets_clear_errors() {
    let backbone = Backbone::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut o = options(1);
    o.positives = vec![empty.clone()];
    let err = train(&backbone, &o, &Silent).unwrap_err().to_string();
    assert!(
        err.contains("no WAV files") && err.contains("empty"),
        "{err}"
    );

    // A folder whose only clip is digital silence.
    let silent = dir.path().join("silent");
    std::fs::create_dir(&silent).unwrap();
    hark::audio::wav::write_wav(&silent.join("quiet.wav"), &vec![0.0; 32_000], 16_000).unwrap();
    o.positives = vec![silent];
    let err = train(&backbone, &o, &Silent).unwrap_err().to_string();
    assert!(
        err.contains("no usable positive clip")
            && err.contains("quiet.wav")
            && err.contains("silent"),
        "{err}"
    );

    // Negatives that hold the positives themselves: warned about and left out.
    let mut o = options(1);
    o.negatives.push(fixture("train/computer"));
    let report = train(&backbone, &o, &Silent).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("also positive clips")),
        "{:?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("named like the trigger word"))
    );

    // Other recordings of the word in a negative folder: not the same files, but as near to
    // the word's templates as the positives are to one another; the folder is named. The
    // fixture's own negatives (not-wake-words, a minute of speech) raise no warning.
    let mut o = options(1);
    let report = train(&backbone, &o, &Silent).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    o.negatives.push(fixture("train/unsorted"));
    let report = train(&backbone, &o, &Silent).unwrap();
    let named: Vec<&String> = report
        .warnings
        .iter()
        .filter(|w| w.contains("sound like \"computer\""))
        .collect();
    assert_eq!(named.len(), 1, "{:?}", report.warnings);
    assert!(
        named[0].contains("unsorted") && named[0].contains("of the 3 clips checked"),
        "{}",
        named[0]
    );
    assert!(!named[0].contains("other"), "{}", named[0]);

    let mut o = options(1);
    o.negatives = vec![dir.path().join("missing")];
    let err = train(&backbone, &o, &Silent).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn broken_head_files_are_refused_with_the_reason() {
    let head = trained(5);
    let good = head.to_bytes();
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, bytes: &[u8], want: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = Head::load(&p, Some(hark::backbone::BUILTIN_SHA256))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    };
    check("truncated.head", &good[..good.len() - 100], "truncated");
    check("tiny.head", &good[..5], "truncated");
    let mut flipped = good.clone();
    let at = flipped.len() - 500;
    flipped[at] ^= 0x10;
    check("flipped.head", &flipped, "checksum mismatch");
    check("other.head", b"RIFF....WAVEfmt ", "not a hark head file");
    let mut future = head.clone();
    future.info.format = 99;
    check("future.head", &future.to_bytes(), "newer hark");
    let mut other = head.clone();
    other.info.backbone_sha256 = "00".repeat(32);
    check("backbone.head", &other.to_bytes(), "another backbone");
    // The good one loads and equals what was saved.
    let p = dir.path().join("good.head");
    head.save(&p).unwrap();
    assert_eq!(
        Head::load(&p, Some(hark::backbone::BUILTIN_SHA256)).unwrap(),
        head
    );
}

#[test]
fn save_killed_mid_write_leaves_a_loadable_head() {
    // Child mode: save two different heads over one path, forever, until killed.
    if let Some(path) = std::env::var_os("HARK_TEST_SAVE_LOOP") {
        let a = trained(11);
        let mut b = a.clone();
        b.info.threshold = 0.25;
        println!("ready");
        loop {
            a.save(Path::new(&path)).unwrap();
            b.save(Path::new(&path)).unwrap();
        }
    }
    let a = trained(11);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.head");
    for round in 0..3 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "save_killed_mid_write_leaves_a_loadable_head",
                "--exact",
                "--nocapture",
            ])
            .env("HARK_TEST_SAVE_LOOP", &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the child is saving, then let it run a little and kill it.
        let mut out = child.stdout.take().unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        while !seen.contains("ready") {
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(n > 0, "child ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::sleep(std::time::Duration::from_millis(150 + 70 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whole, and one of the two versions the child was writing.
        let head = Head::load(&path, None).unwrap();
        assert_eq!(head.weights, a.weights);
        assert!(
            head.info.threshold == a.info.threshold || head.info.threshold == 0.25,
            "{}",
            head.info.threshold
        );
        // No temporary files left behind that a later run would trip over, beyond the one
        // the killed write may have been filling.
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(leftovers <= 2 + round as usize, "{leftovers} files");
    }
}

#[test]
fn streaming_listener_agrees_with_the_batch_path() {
    let backbone = Backbone::builtin().unwrap();
    let head = bundled_head();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/computer-demo.wav");
    let samples = hark::audio::wav::read_wav(&demo).unwrap();
    let batch = score_all(
        &head,
        &hark::backbone::embedder::embed_samples(&backbone, &samples).unwrap(),
    );
    // The bundled head checks its candidates against templates of the word; the scores are the
    // network's either way.
    let templates = head
        .templates
        .as_ref()
        .expect("the bundled head has templates");
    let mut gated = batch.clone();
    templates.gate_all(&mut gated, &samples, hark::model::templates::MIN_SCORE);
    let mut listener = Listener::new(&backbone, vec![head.clone()]).unwrap();
    let mut streamed = Vec::new();
    let mut events = Vec::new();
    let mut source = WavSource::open(&demo).unwrap();
    let mut chunk = Vec::new();
    while {
        chunk.clear();
        source.read(&mut chunk).unwrap() > 0
    } {
        listener
            .push(&chunk, |step, ev| {
                streamed.extend(step.score);
                events.extend_from_slice(ev);
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(streamed, batch, "same arithmetic, same scores");
    // The detections are where the checked batch scores fire, with those scores.
    let refractory = (head.info.refractory_seconds / 0.08).ceil() as usize;
    let fired: Vec<f32> = hark::metrics::fire_indices(&gated, head.info.threshold, refractory)
        .into_iter()
        .map(|i| gated[i])
        .collect();
    assert_eq!(events.iter().map(|d| d.score).collect::<Vec<_>>(), fired);
    assert_eq!(events.len(), 3, "the demo's three \"computer\"s");
}

/// A head swapped in mid-stream (as `listen --learn` does) scores from the next embedding on
/// exactly as if it had run from the start: it inherits the recent embeddings.
#[test]
fn a_head_swapped_in_mid_stream_scores_as_if_it_had_run_all_along() {
    let backbone = Backbone::builtin().unwrap();
    let old = bundled_head();
    let new = trained(2);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/computer-demo.wav");
    let samples = hark::audio::wav::read_wav(&demo).unwrap();
    let embeddings = hark::backbone::embedder::embed_samples(&backbone, &samples).unwrap();
    let (batch_old, batch_new) = (score_all(&old, &embeddings), score_all(&new, &embeddings));
    assert_ne!(batch_old, batch_new);
    // Swap at 0.7 s (before the first window is full) and at 6.1 s.
    for swap_at in [11_200, 97_600] {
        let mut listener = Listener::new(&backbone, vec![old.clone()]).unwrap();
        let mut streamed = Vec::new();
        let mut k = None;
        for (i, chunk) in samples.chunks(1_600).enumerate() {
            if i * 1_600 == swap_at {
                listener.replace_head(0, new.clone());
                k = Some(streamed.len());
            }
            listener
                .push(chunk, |step, _| {
                    streamed.extend(step.score);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(streamed.len(), batch_new.len());
        // Scores up to the swap are the old head's, after it the new head's.
        let k = k.unwrap();
        assert_eq!(streamed[..k], batch_old[..k], "swap at {swap_at}");
        assert_eq!(streamed[k..], batch_new[k..], "swap at {swap_at}");
    }
}

#[test]
fn eval_reports_a_consistent_det_curve() {
    let backbone = Backbone::builtin().unwrap();
    let head = bundled_head();
    let data = hark::eval::EvalData {
        positives: vec![fixture("train/computer")],
        negatives: vec![fixture("train/other"), fixture("speech.wav")],
        ..Default::default()
    };
    let r = hark::eval::evaluate(&backbone, &head, &data, &Cache::new(None), &Silent).unwrap();
    assert_eq!(r.clips, 4);
    // Hours of the negative audio itself, not of the padding between files.
    let seconds: f64 = wavs("train/other")
        .iter()
        .chain([&fixture("speech.wav")])
        .map(|p| hark::audio::wav::WavFile::open(p).unwrap().info().seconds())
        .sum();
    assert!(
        (r.negative_hours * 3600.0 - seconds).abs() < 1e-6,
        "{}",
        r.negative_hours
    );
    assert_eq!(r.threshold, head.info.threshold);
    assert!((r.miss_rate - (r.miss_rate_clean + r.miss_rate_noisy) / 2.0).abs() < 1e-12);
    for w in r.curve.windows(2) {
        assert!(w[0].0 < w[1].0);
        assert!(w[0].1 <= w[1].1, "miss falls as the threshold rises: {w:?}");
        assert!(
            w[0].2 >= w[1].2,
            "false alarms rise with the threshold: {w:?}"
        );
    }
    assert_eq!(r.curve.first().unwrap().1, 0.0);

    // Every negative file's peak, highest first; at a threshold low enough to fire, the
    // files' false alarms add up to the rate reported.
    let mut loose = head.clone();
    loose.info.threshold = 0.01;
    let r = hark::eval::evaluate(&backbone, &loose, &data, &Cache::new(None), &Silent).unwrap();
    assert_eq!(r.highest_negatives.len(), wavs("train/other").len() + 1);
    assert!(
        r.highest_negatives
            .windows(2)
            .all(|w| w[0].score >= w[1].score)
    );
    let alarms: usize = r.highest_negatives.iter().map(|p| p.alarms).sum();
    assert!(alarms > 0);
    assert!((alarms as f64 / r.negative_hours - r.fa_per_hour).abs() < 1e-6);
}

#[test]
fn update_on_false_alarms_lowers_them_and_keeps_the_positives() {
    let backbone = Backbone::builtin().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (o, report) = trained_with_cache(&backbone, cache_dir.path().to_path_buf());
    let head = report.head;
    // The validation negatives were never trained on; the head scores them high.
    let alarms = held_out_negatives();
    assert_eq!(alarms.len(), 2);
    let positives: Vec<PathBuf> = wavs("train/computer")
        .into_iter()
        .filter(|p| hark::data::folders::name_fraction(p, "validation") >= 0.15)
        .collect();
    let before: Vec<f32> = alarms
        .iter()
        .map(|p| best_score(&backbone, &head, p))
        .collect();
    let hits = |h: &Head| {
        positives
            .iter()
            .filter(|p| best_score(&backbone, h, p) >= h.info.threshold)
            .count()
    };

    let up = hark::train::update(
        &backbone,
        &head,
        &report.replay,
        &TrainOptions::for_update(vec![], alarms.clone(), o.cache.clone()),
        &Silent,
    )
    .unwrap();
    assert_eq!(up.new_negatives, 2);
    assert_eq!(up.missing, 0, "the replay comes from the cache");
    assert_eq!(up.head.info.training.updates, 1);
    let after: Vec<f32> = alarms
        .iter()
        .map(|p| best_score(&backbone, &up.head, p))
        .collect();
    for (b, a) in before.iter().zip(&after) {
        assert!(a < b, "false alarm scores {before:?} → {after:?}");
    }
    assert!(hits(&up.head) >= hits(&head), "positives lost");
    assert_eq!(up.replay.entries.len(), report.replay.entries.len() + 2);
}

/// One long recording as the only negative audio: no file can be held out for validation, so
/// a fifth of its 30-s blocks are; the threshold is set on them, and updates replay the blocks
/// from the cache.
#[test]
fn one_long_negative_recording_lends_blocks_to_validation() {
    let backbone = Backbone::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let room = dir.path().join("room");
    std::fs::create_dir(&room).unwrap();
    // 200 s: the fixture's negative recordings over and over, 7 blocks of about 28.6 s.
    let parts: Vec<Vec<f32>> = [wavs("train/other"), vec![fixture("speech.wav")]]
        .concat()
        .iter()
        .map(|p| hark::audio::wav::read_wav(p).unwrap())
        .collect();
    let mut x = Vec::new();
    while x.len() < 200 * 16_000 {
        for p in &parts {
            x.extend_from_slice(p);
        }
    }
    x.truncate(200 * 16_000);
    hark::audio::wav::write_wav(&room.join("living-room.wav"), &x, 16_000).unwrap();
    let mut o = options(7);
    o.negatives = vec![room.clone()];
    o.cache = Cache::new(Some(dir.path().join("cache")));
    let report = train(&backbone, &o, &Silent).unwrap();

    let blocks: Vec<_> = report
        .replay
        .entries
        .iter()
        .filter(|e| e.positive.is_none())
        .collect();
    assert_eq!(blocks.len(), 7, "one entry per block");
    let held_out: f64 = blocks
        .iter()
        .filter(|e| e.validation)
        .map(|e| e.seconds)
        .sum();
    let all: f64 = blocks.iter().map(|e| e.seconds).sum();
    assert!((all - 200.0).abs() < 1e-6, "{all} s");
    assert!(held_out > 20.0 && held_out < 100.0, "{held_out} s held out");
    for w in blocks.windows(2) {
        let (a, b) = (w[0].range.unwrap(), w[1].range.unwrap());
        assert_eq!(b[0] + 15, a[1], "consecutive blocks: {a:?} {b:?}");
        assert_eq!(w[0].key, w[1].key, "one cached recording");
    }
    let t = &report.head.info.training;
    assert!(
        (t.validation_negative_hours * 3600.0 - held_out).abs() < 1e-6,
        "{} h validated",
        t.validation_negative_hours
    );

    // An update loads the blocks it replays (the held-out ones and the hard ones) from the one
    // cached recording.
    let up = hark::train::update(
        &backbone,
        &report.head,
        &report.replay,
        &TrainOptions::for_update(vec![], held_out_negatives(), o.cache.clone()),
        &Silent,
    )
    .unwrap();
    assert_eq!(up.missing, 0);
    assert_eq!(
        up.head.info.training.validation_negative_hours,
        t.validation_negative_hours
    );
}

/// An update trains false alarms out, so the validation negatives score lower and, alone,
/// would often loosen the threshold; the update lowers it only as far as keeps the old
/// positives it caught (trained against the false alarms, the head scores those lower too),
/// and says so.
#[test]
fn an_update_lowers_the_threshold_only_to_keep_the_old_positives() {
    let backbone = Backbone::builtin().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (o, report) = trained_with_cache(&backbone, cache_dir.path().to_path_buf());
    let alarms = held_out_negatives();
    // As after `hark set-threshold 0.9999`: stricter than the validation data asks for.
    let mut strict = report.head.clone();
    strict.info.threshold = 0.9999;
    let up = hark::train::update(
        &backbone,
        &strict,
        &report.replay,
        &TrainOptions::for_update(vec![], alarms, o.cache.clone()),
        &Silent,
    )
    .unwrap();
    let t = up.head.info.threshold;
    assert!(up.calibrated < t, "calibrated {} under {t}", up.calibrated);
    assert!(t <= 0.9999, "{t}");
    // The training clips the strict head caught, the updated head still catches.
    let positives: Vec<PathBuf> = wavs("train/computer")
        .into_iter()
        .filter(|p| hark::data::folders::name_fraction(p, "validation") >= 0.15)
        .collect();
    let caught = |h: &Head| {
        positives
            .iter()
            .filter(|p| best_score(&backbone, h, p) >= h.info.threshold)
            .count()
    };
    assert!(caught(&strict) >= 1, "the strict head catches some");
    assert!(caught(&up.head) >= caught(&strict));
    let line = up.threshold_change(0.9999);
    let expected = if t < 0.9999 {
        "as far as keeps the old positives"
    } else {
        "0.9999 kept"
    };
    assert!(
        line.contains(expected) && line.contains("set-threshold"),
        "{line}"
    );
}

/// The learner as `listen --learn` drives it: a word the head misses is marked with
/// `hark feedback missed` (the same mark file), kept from the listener's recent audio, learned
/// by a background update written over the head file, and handed back; the clip now scores
/// higher, and the clip has moved to `learned/`.
#[test]
fn a_marked_miss_is_learned_in_the_background() {
    use hark::detect::learn::{Feedback, LearnDir, Learner, send};
    let backbone = Backbone::builtin().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (o, report) = trained_with_cache(&backbone, work.path().join("cache"));
    let head_path = work.path().join("computer.head");
    report.head.save(&head_path).unwrap();
    report
        .replay
        .save(&hark::train::Replay::path_for(&head_path))
        .unwrap();
    // The held-out clip the head misses most clearly.
    let (clip, before) = wavs("train/computer")
        .into_iter()
        .map(|p| {
            let s = best_score(&backbone, &report.head, &p);
            (p, s)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(before < report.head.info.threshold, "{clip:?}: {before}");

    let mut learner = Learner::new(&backbone, &head_path, o.cache.clone()).unwrap();
    let mut history = AudioHistory::new(learner.history_seconds());
    let mut audio = vec![0.0f32; 8_000];
    audio.extend(hark::audio::wav::read_wav(&clip).unwrap());
    audio.extend(vec![0.0f32; 4_000]);
    history.push(&audio);
    learner.audio(&history).unwrap();
    send(&head_path, Feedback::Missed).unwrap();
    let started = std::time::Instant::now();
    let new = loop {
        if let Some((index, h)) = learner.next_head(&history).unwrap() {
            assert_eq!(index, 0);
            break h;
        }
        assert!(started.elapsed().as_secs() < 60, "no update");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let notes = learner.take_notes().join("\n");
    assert!(notes.contains("as a missed \"computer\""), "{notes}");
    assert!(
        notes.contains("0 false alarm(s) and 1 missed word(s)"),
        "{notes}"
    );
    assert_eq!(new.info.training.updates, 1);
    let on_disk = Head::load(&head_path, None).unwrap();
    assert_eq!(on_disk.to_bytes(), new.to_bytes());
    let after = best_score(&backbone, &new, &clip);
    assert!(after > before, "{before} → {after}");
    let dir = LearnDir::for_head(&head_path);
    let n = |d: PathBuf| std::fs::read_dir(d).unwrap().count();
    assert_eq!(n(dir.learned()), 1);
    assert_eq!(n(dir.waiting(Feedback::Missed)), 0);
    assert_eq!(n(dir.inbox()), 0);
    assert!(learner.stop(&history).is_none());
}

/// The template check drops the same candidates streaming (the detector's own audio, pushed in
/// chunks of any size) as on the whole recording: at a threshold of 0.5 and the cut at the
/// median distance of the demo's candidates, the detections are where the checked batch scores
/// fire, with those scores (lowered where a candidate is farther than the check's ease), and
/// fewer than without the check.
#[test]
fn the_template_check_drops_the_same_candidates_streaming_and_batch() {
    let backbone = Backbone::builtin().unwrap();
    let mut head = bundled_head();
    head.info.threshold = 0.5;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio/computer-demo.wav");
    let samples = hark::audio::wav::read_wav(&demo).unwrap();
    let scores = score_all(
        &head,
        &hark::backbone::embedder::embed_samples(&backbone, &samples).unwrap(),
    );
    let templates = head
        .templates
        .as_mut()
        .expect("the bundled head has templates");
    let mut cepstra = hark::features::cepstra::Cepstra::new();
    let mut distances: Vec<f32> = scores
        .iter()
        .enumerate()
        .filter(|&(_, &s)| s >= hark::model::templates::MIN_SCORE)
        .map(|(i, _)| {
            let k = hark::timeline::embedding_of_score(i) as u64;
            let end = hark::timeline::samples_at_embedding(k) as usize;
            templates.distance_of(&mut cepstra, &samples[..end.min(samples.len())])
        })
        .collect();
    assert!(distances.len() >= 10, "{} candidates", distances.len());
    distances.sort_by(f32::total_cmp);
    templates.cut = distances[distances.len() / 2];
    let mut gated = scores.clone();
    templates.gate_all(&mut gated, &samples, hark::model::templates::MIN_SCORE);
    let refractory = (head.info.refractory_seconds / 0.08).ceil() as usize;
    let times = |v: &[f32]| -> Vec<(f64, f32)> {
        hark::metrics::fire_indices(v, 0.5, refractory)
            .into_iter()
            .map(|i| {
                let k = hark::timeline::embedding_of_score(i) as u64;
                (hark::timeline::time_of_embedding(k), v[i])
            })
            .collect()
    };
    let (want, unchecked) = (times(&gated), times(&scores));
    let when = |v: &[(f64, f32)]| v.iter().map(|w| w.0).collect::<Vec<_>>();
    assert!(
        !want.is_empty() && when(&want) != when(&unchecked),
        "{want:?} against {unchecked:?}"
    );
    for chunk in [160, 1000, 4096] {
        let mut listener = Listener::new(&backbone, vec![head.clone()]).unwrap();
        let mut got = Vec::new();
        for piece in samples.chunks(chunk) {
            listener
                .push(piece, |_, events| {
                    got.extend(events.iter().map(|d| (d.time, d.score)));
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(got, want, "chunks of {chunk}");
    }
}

/// A head with templates keeps them through an update and gains one per new positive clip,
/// marked as added, so a wake word the check lowered is near a template afterwards; the cut
/// stays, and the new templates do not bring back what the old ones put beyond it.
#[test]
fn an_update_adds_its_new_positives_as_templates() {
    let backbone = Backbone::builtin().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (o, report) = trained_with_cache(&backbone, cache_dir.path().to_path_buf());
    // The fixture is too small for training to make templates (it needs 8 clips); give the
    // head one, cut from the first negative clip.
    assert!(report.head.templates.is_none());
    let mut head = report.head.clone();
    let other = hark::audio::wav::read_wav(&wavs("train/other")[0]).unwrap();
    let mut cepstra = hark::features::cepstra::Cepstra::new();
    let word = hark::audio::vad::locate_word(&other).unwrap();
    let template = cepstra.template(&other, word.start..word.end).unwrap();
    head.templates = Some(hark::model::templates::Templates {
        cut: 30.0,
        words: vec![template.clone()],
        added: 0,
    });
    let new = wavs("train/computer");
    let up = hark::train::update(
        &backbone,
        &head,
        &report.replay,
        &TrainOptions::for_update(new.clone(), vec![], o.cache.clone()),
        &Silent,
    )
    .unwrap();
    let t = up.head.templates.as_ref().unwrap();
    assert_eq!(t.cut, 30.0);
    assert_eq!(t.words[0], template);
    assert_eq!(t.words.len(), 1 + new.len(), "one template per new clip");
    assert_eq!(t.added, new.len(), "the new templates are marked as added");
    // A new clip heard again: its distance to the training template alone…
    let clip = hark::audio::wav::read_wav(&new[0]).unwrap();
    let span = hark::audio::vad::locate_word(&clip).unwrap();
    let mut heard = vec![0.0; 16_000];
    heard.extend(&clip[..span.end]);
    let trained =
        hark::model::templates::Templates::distance_to(&t.words[..1], &mut cepstra, &heard);
    assert!(trained.is_finite() && trained > 0.0, "{trained}");
    // …is eased by its own template when the training template keeps it within the cut…
    let within = hark::model::templates::Templates {
        cut: trained * 1.2,
        ..t.clone()
    };
    let eased = within.distance_of(&mut cepstra, &heard);
    let all = hark::model::templates::Templates::distance_to(&t.words, &mut cepstra, &heard);
    assert_eq!(eased, all);
    assert!(eased < trained * 0.8, "{eased} against {trained}");
    // …but not brought back from beyond it.
    let beyond = hark::model::templates::Templates {
        cut: trained * 0.9,
        ..t.clone()
    };
    assert_eq!(beyond.distance_of(&mut cepstra, &heard), trained);
    assert_eq!(beyond.check(&mut cepstra, 0.99, &heard), 0.0);
    assert!(within.check(&mut cepstra, 0.99, &heard) > 0.98);
}
