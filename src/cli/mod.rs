//! The `hark` command: parses the command line ([`args`]), runs the command (one file per
//! group) and renders what the library returns: lines, tables, progress bars, messages.

mod args;
mod embed;
mod eval;
mod heads;
mod listen;
mod progress;
mod record;
mod train;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::args::{Cli, Command};
use crate::cli::embed::embed;
use crate::cli::eval::eval_cmd;
use crate::cli::heads::{info_cmd, load_backbone, load_head, set_threshold_cmd};
use crate::cli::listen::{Output, feedback_cmd, feedback_keys, listen_cmd, score_cmd};
use crate::cli::progress::Bars;
use crate::cli::record::{devices_cmd, record_background_cmd, record_cmd};
use crate::cli::train::{rollback_cmd, train_cmd, update_cmd};
use clap::Parser;
use hark::audio::source::WavSource;
use hark::data::cache::Cache;
use hark::detect::actions::Actions;
use hark::detect::learn::Learner;
use hark::train::TrainOptions;
use hark::{Error, Result};

/// Parses the command line, runs the command, and turns errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // Start-up needs far more memory than listening; give it back as planning goes.
    hark::memory::enable();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hark: error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed { wav, out } => embed(cli.backbone.as_deref(), &wav, out.as_deref()),
        Command::Train {
            word,
            positives,
            negatives,
            out,
            target_fa_per_hour,
            seed,
            split,
            hidden,
            copies,
            background,
            cache,
            quiet,
        } => {
            let backbone = load_backbone(cli.backbone.as_deref())?;
            let mut opts = TrainOptions::new(&word, positives, negatives);
            opts.background = background;
            opts.target_fa_per_hour = target_fa_per_hour;
            opts.seed = seed;
            opts.split = split.into();
            opts.hidden = hidden;
            opts.copies = copies;
            opts.cache = cache.cache();
            train_cmd(&backbone, &opts, &out, &Bars::new(quiet))
        }
        Command::Update {
            head,
            positives,
            negatives,
            rollback,
            cache,
        } => {
            if rollback {
                return rollback_cmd(&head);
            }
            let backbone = load_backbone(cli.backbone.as_deref())?;
            let opts = TrainOptions::for_update(positives, negatives, cache.cache());
            update_cmd(&backbone, &head, &opts)
        }
        Command::Score { head, wav } => {
            let backbone = load_backbone(cli.backbone.as_deref())?;
            let head = load_head(head.as_deref(), &backbone)?;
            score_cmd(&backbone, head, &wav)
        }
        Command::Devices => devices_cmd(),
        Command::Feedback { kind, head } => feedback_cmd(kind.into(), &head),
        Command::Record {
            word,
            out,
            count,
            seconds,
            background,
            minutes,
            capture,
        } => {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            let mut mic = capture.open()?;
            match word {
                Some(word) if !background => record_cmd(&mut mic, &word, &out, count, seconds),
                _ => record_background_cmd(&mut mic, &out, minutes),
            }
        }
        Command::Listen {
            heads,
            wav,
            json,
            exec,
            save_detections,
            stats,
            learn,
            cache,
            windowed_backbone,
            capture,
        } => {
            let backbone = load_backbone(cli.backbone.as_deref())?;
            let heads_paths = heads;
            let heads = if heads_paths.is_empty() {
                vec![load_head(None, &backbone)?]
            } else {
                heads_paths
                    .iter()
                    .map(|h| load_head(Some(h), &backbone))
                    .collect::<Result<_>>()?
            };
            let actions = Actions::new(exec, save_detections)?;
            let out = Output {
                json,
                stats,
                windowed_backbone,
            };
            match wav {
                Some(wav) => {
                    let mut source = WavSource::open(&wav)?;
                    let summary = listen_cmd(&backbone, heads, &mut source, actions, None, out)?;
                    if !json {
                        eprintln!("{}: {} detection(s)", wav.display(), summary.detections);
                    }
                    Ok(())
                }
                None => {
                    let learner = match learn.then(|| heads_paths.first()).flatten() {
                        Some(path) => {
                            let cache = Cache::new(cache.or_else(Cache::default_dir));
                            let l = Learner::new(&backbone, path, cache)?;
                            feedback_keys(path);
                            Some(l)
                        }
                        None => None,
                    };
                    let mut mic = capture.open()?;
                    // Connecting to the sound server runs its client library's set-up once.
                    hark::memory::release_startup();
                    let started = Instant::now();
                    let summary = listen_cmd(&backbone, heads, &mut mic, actions, learner, out)?;
                    eprintln!(
                        "hark: stopped after {:.1} s of audio ({:.1} s wall): {} detection(s), {} sample(s) dropped, {} device fault(s)",
                        hark::timeline::seconds_of(mic.delivered()),
                        started.elapsed().as_secs_f64(),
                        summary.detections,
                        mic.dropped(),
                        mic.faults()
                    );
                    Ok(())
                }
            }
        }
        Command::SetThreshold { head, threshold } => set_threshold_cmd(&head, threshold),
        Command::Info { heads, json } => {
            let sha = match cli.backbone.as_deref() {
                Some(p) => load_backbone(Some(p))?.sha256().to_string(),
                None => hark::backbone::BUILTIN_SHA256.to_string(),
            };
            info_cmd(&heads, &sha, json)
        }
        Command::Eval {
            head,
            positives,
            negatives,
            plot,
            background,
            split,
            highest,
            no_template_check,
            cache,
            quiet,
        } => {
            let backbone = load_backbone(cli.backbone.as_deref())?;
            let mut head = load_head(head.as_deref(), &backbone)?;
            if no_template_check {
                head.templates = None;
            }
            let data = hark::eval::EvalData {
                positives,
                negatives,
                background,
                split: split.into(),
            };
            eval_cmd(
                &backbone,
                &head,
                &data,
                &cache.cache(),
                quiet,
                plot.as_deref(),
                highest,
            )
        }
    }
}

/// A closed pipe (`hark … | head`) is the reader's choice, not an error.
pub(crate) fn finish_stdout(result: Result<()>) -> Result<()> {
    match result {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Writes `text` to standard output; a closed pipe is the reader's choice, not an error.
pub(crate) fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    finish_stdout(
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("<stdout>", e)),
    )
}
