//! `listen`, `score` and `feedback`: the live session with its sinks, and what it prints.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::cli::finish_stdout;
use hark::audio::history::AudioHistory;
use hark::audio::source::{Source, WavSource};
use hark::backbone::Backbone;
use hark::detect::actions::Actions;
use hark::detect::detector::Detection;
use hark::detect::learn::{Feedback, LearnDir, Learner};
use hark::detect::listener::Listener;
use hark::detect::session::{DetectionSink, Session};
use hark::memory::process_cpu_seconds;
use hark::model::head::Head;
use hark::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) fn score_cmd(backbone: &Backbone, head: Head, wav_path: &Path) -> Result<()> {
    let mut source = WavSource::open(wav_path)?;
    let mut listener = Listener::new(backbone, vec![head])?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = listener.run(&mut source, |step, _| {
        if let Some(s) = step.score {
            writeln!(out, "{:.2}\t{:.6}", step.time, s).map_err(|e| Error::io("<stdout>", e))?;
        }
        Ok(())
    });
    finish_stdout(result.and_then(|()| out.flush().map_err(|e| Error::io("<stdout>", e))))
}

/// How `listen` prints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) stats: bool,
    pub(crate) windowed_backbone: bool,
}

/// What a listening run did.
pub(crate) struct Summary {
    pub(crate) detections: u64,
}

pub(crate) fn feedback_cmd(kind: Feedback, head: &Path) -> Result<()> {
    let mark = hark::detect::learn::send(head, kind)?;
    eprintln!(
        "sent \"{}\" to the listener ({})",
        kind.name(),
        mark.display()
    );
    if LearnDir::for_head(head).listener_running() == Some(false) {
        eprintln!(
            "hark: warning: no `hark listen --learn --head {}` is running; the next one will ignore this mark",
            head.display()
        );
    }
    Ok(())
}

/// With --learn in a terminal: f⏎ marks a false alarm, m⏎ a miss (read on a thread of its own,
/// sent as `hark feedback` would).
pub(crate) fn feedback_keys(head: &Path) {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        return;
    }
    eprintln!(
        "hark: learning: type f and Enter after a false alarm, m and Enter right after a missed wake word"
    );
    let head = head.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("hark-keys".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                let kind = match line.trim() {
                    "f" | "F" => Feedback::FalseAlarm,
                    "m" | "M" => Feedback::Missed,
                    "" => continue,
                    other => {
                        eprintln!("hark: learning: `{other}`? type f (false alarm) or m (missed)");
                        continue;
                    }
                };
                if let Err(e) = hark::detect::learn::send(&head, kind) {
                    eprintln!("hark: learning: {e}");
                }
            }
        });
}

/// Prints each detection on stdout, as a line or as JSON: the first sink of a listening session.
struct Printer {
    out: std::io::StdoutLock<'static>,
    json: bool,
}

impl DetectionSink for Printer {
    fn detection(&mut self, d: &Detection, _: &AudioHistory) -> Result<()> {
        let line = if self.json {
            serde_json::to_string(d).expect("a detection serialises")
        } else {
            format!("{:8.2} s  {}  (score {:.3})", d.time, d.word, d.score)
        };
        writeln!(self.out, "{line}").map_err(|e| Error::io("<stdout>", e))?;
        self.out.flush().map_err(|e| Error::io("<stdout>", e))
    }
}

/// Runs `source` through a session of `heads` whose sinks are the printer, `actions` and the
/// learner; prints the sinks' notes and, with `--stats`, statistics every 10 s and at the end.
pub(crate) fn listen_cmd(
    backbone: &Backbone,
    heads: Vec<Head>,
    source: &mut dyn Source,
    mut actions: Actions,
    mut learner: Option<Learner>,
    output: Output,
) -> Result<Summary> {
    let listener = if output.windowed_backbone {
        Listener::windowed(backbone, heads)?
    } else {
        Listener::new(backbone, heads)?
    };
    hark::memory::release_startup();
    let mut printer = Printer {
        out: std::io::stdout().lock(),
        json: output.json,
    };
    let mut sinks: Vec<&mut dyn DetectionSink> = vec![&mut printer, &mut actions];
    if let Some(l) = learner.as_mut() {
        sinks.push(l);
    }
    let mut session = Session::new(listener, sinks);
    let started = Instant::now();
    let cpu0 = process_cpu_seconds();
    let mut last_stats = Instant::now();
    let periodic_stats = output.stats && source.health().is_some();
    let report = |audio: u64, source: &dyn Source| {
        let secs = hark::timeline::seconds_of(audio);
        let cpu = cpu0.zip(process_cpu_seconds()).map(|(a, b)| b - a);
        eprintln!(
            "hark: stats: {secs:.1} s of audio in {:.1} s{}{}",
            started.elapsed().as_secs_f64(),
            cpu.filter(|_| secs > 0.0)
                .map(|c| format!(", {:.1} CPU-s per audio hour", c * 3600.0 / secs))
                .unwrap_or_default(),
            source
                .health()
                .map(|h| format!(", {h}"))
                .unwrap_or_default()
        );
    };
    let result: Result<()> = (|| {
        loop {
            let more = session.step(source);
            for note in session.take_notes() {
                eprintln!("hark: {note}");
            }
            if !more? {
                return Ok(());
            }
            if periodic_stats && last_stats.elapsed().as_secs() >= 10 {
                last_stats = Instant::now();
                report(session.samples(), source);
            }
        }
    })();
    let finished = session.finish();
    for note in session.take_notes() {
        eprintln!("hark: {note}");
    }
    finish_stdout(result)?;
    finished?;
    if output.stats {
        report(session.samples(), source);
    }
    Ok(Summary {
        detections: session.detections(),
    })
}

/// A flag set by SIGINT or SIGTERM (installed once per process).
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>> {
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
