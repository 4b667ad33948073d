//! Command-line parsing and the subcommands, each a few calls into the library.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use hark::backbone::{Backbone, EMBEDDING_DIM, Embedding};
use hark::capture::{CaptureOptions, Microphone, Notice};
use hark::dataset::{Cache, Split};
use hark::events::Actions;
use hark::head::Head;
use hark::learn::{Feedback, LearnDir, Learner};
use hark::listen::{Listener, Source, WavSource, process_cpu_seconds};
use hark::train::{self, Replay, TrainOptions, previous_path};
use hark::{Error, Result, embedder, npy, wav};

/// hark: an offline wake-word engine that learns your trigger word on the device.
///
/// Audio flows samples → log-mel frames → embeddings of a frozen speech network (Google's
/// speech_embedding, built in) → a small head trained for your word → detections.
#[derive(Debug, Parser)]
#[command(name = "hark", version, about, long_about)]
struct Cli {
    /// Use this embedding_model.onnx instead of the built-in copy (must take [N,76,32,1]
    /// log-mel windows and return 96 values per window).
    #[arg(long, global = true, value_name = "PATH")]
    backbone: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// Options of the live input.
#[derive(Debug, clap::Args)]
struct CaptureArgs {
    /// Input device: its name or id as `hark devices` prints it, or a unique part of the
    /// name (default: the system's default input).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Stop after this many seconds of audio.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Capture at this rate instead of the automatic choice (16 kHz when offered).
    #[arg(long, value_name = "HZ", help_heading = "Device format")]
    capture_rate: Option<u32>,
    /// Capture this many channels instead of the automatic choice (mono when offered).
    #[arg(long, value_name = "N", help_heading = "Device format")]
    capture_channels: Option<u16>,
    /// Capture in this sample format (i16, i32, f32, u8, …) instead of the automatic choice.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format, help_heading = "Device format")]
    capture_format: Option<cpal::SampleFormat>,
}

fn parse_format(s: &str) -> std::result::Result<cpal::SampleFormat, String> {
    hark::capture::parse_format(s).ok_or_else(|| {
        format!(
            "unknown sample format `{s}` (i8, i16, i24, i32, i64, u8, u16, u24, u32, u64, f32, f64)"
        )
    })
}

impl CaptureArgs {
    /// Opens the chosen input; Ctrl-C/SIGTERM end its stream, notices go to stderr.
    fn open(&self) -> Result<Microphone> {
        let opts = CaptureOptions {
            device: self.device.clone(),
            rate: self.capture_rate,
            channels: self.capture_channels,
            format: self.capture_format,
            duration: self.duration,
        };
        let stop = hark::capture::stop_on_signals()?;
        Microphone::open(opts, stop, Box::new(|n: &Notice| eprintln!("hark: {n}")))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Dump the backbone embeddings of a WAV file (one 96-d vector per 80 ms).
    ///
    /// Any WAV works: 8/16/24/32-bit PCM or 32-bit float, any channel count (averaged to
    /// mono), any sample rate (resampled to 16 kHz). Embedding k covers the 775 ms of audio
    /// ending at `time`, the seconds consumed when a stream would have produced it.
    Embed {
        /// The recording to embed.
        #[arg(long, value_name = "FILE")]
        wav: PathBuf,
        /// Where to write the embeddings: `.npy` (float32, [n, 96]) or `.csv` (header
        /// `time,e0,…,e95`). Without it, CSV goes to standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Train a head for your wake word from recorded clips.
    ///
    /// Positive folders hold WAV clips of one utterance each with silence around it (0.5–10 s);
    /// negative folders hold any audio without the word (short clips or hours-long
    /// recordings; other words are the best negatives). A negative file that is also a
    /// positive clip is left out, and a negative folder whose clips sound like the positives
    /// is named in a warning. Embeddings are cached, so retraining
    /// on the same audio skips the backbone. With 8 or more usable clips the head also carries
    /// templates of the word from them: a detection far from them is dropped, one only just
    /// near enough must score higher to fire.
    Train {
        /// Name of the trigger word, stored in the head and printed on detection.
        #[arg(long)]
        word: String,
        /// Folder (searched recursively) or file of positive clips; repeat for several.
        #[arg(long = "positive", value_name = "DIR", required = true)]
        positives: Vec<PathBuf>,
        /// Folder (searched recursively) or file of negative audio; repeat for several.
        #[arg(long = "negative", value_name = "DIR", required = true)]
        negatives: Vec<PathBuf>,
        /// Where to write the head (written atomically).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// False alarms per hour the threshold is calibrated for, on held-out negatives
        /// (scored as `listen` scores them: after the template check, when the head has one).
        #[arg(long, default_value_t = 0.5, value_name = "RATE")]
        target_fa_per_hour: f64,
        /// Seed: the same data and seed give the same head, bit for bit.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Use only one half of every folder (by file-name hash): `train` or `test`.
        #[arg(long, value_enum, default_value_t = SplitArg::All)]
        split: SplitArg,
        /// Hidden units of the head.
        #[arg(long, default_value_t = 32)]
        hidden: usize,
        /// Augmented copies of each positive clip (background mixed in, gain, shift).
        #[arg(long, default_value_t = 6)]
        copies: usize,
        /// Folder or file of background noise (fans, traffic, music, a room's hum; from
        /// `hark record --background`, say) mixed into the augmented copies at 0–35 dB SNR;
        /// repeat for several. Default: the negatives. Noise like the place the device
        /// listens in makes the head hold up there.
        #[arg(long = "background", value_name = "DIR")]
        background: Vec<PathBuf>,
        #[command(flatten)]
        cache: CacheArgs,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Improve a head from new clips: missed wake words and false alarms.
    ///
    /// Fine-tunes the head from its current weights on the new clips while replaying its
    /// cached training data (listed in FILE.replay, written by `train`), so it keeps what it
    /// knew; then recalibrates the threshold, lowering it at most as far as keeps every old
    /// positive clip it caught (the few held-out negatives, once false alarms are trained out,
    /// would often loosen it further). The previous version is kept as FILE.prev; `--rollback`
    /// brings it back.
    Update {
        /// The head to update (rewritten atomically).
        #[arg(long, value_name = "FILE")]
        head: PathBuf,
        /// Folder or file of clips the head missed (one utterance each).
        #[arg(long = "positive", value_name = "DIR")]
        positives: Vec<PathBuf>,
        /// Folder or file of audio the head wrongly fired on.
        #[arg(long = "negative", value_name = "DIR")]
        negatives: Vec<PathBuf>,
        /// Swap the head with its previous version instead.
        #[arg(long, conflicts_with_all = ["positives", "negatives"])]
        rollback: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Set a head's detection threshold, for instance one read off `hark eval`'s table.
    ///
    /// `train` calibrates the threshold on its held-out negatives, which may be too short to
    /// show rare false alarms: if the head fires too often where it listens, run `hark eval`
    /// with audio from there, pick the threshold whose false alarms per hour you accept and set
    /// it here. The head is rewritten atomically; `hark update` keeps it unless its
    /// recalibration asks for a higher one.
    SetThreshold {
        /// The head to change.
        #[arg(long, value_name = "FILE")]
        head: PathBuf,
        /// The new threshold: a score strictly between 0 and 1 (higher fires less often).
        #[arg(value_name = "SCORE")]
        threshold: f32,
    },
    /// Show what a head file holds: word, threshold, training, template check.
    ///
    /// The file is checked as `listen` checks it (magic, version, sizes, checksum). Also says
    /// whether it fits the backbone in use (the built-in one, or `--backbone`), and whether
    /// `hark update` (it needs FILE.replay) and `--rollback` (FILE.prev) can run on it.
    Info {
        /// Heads to describe (default: the built-in `computer` head); repeat for several.
        #[arg(long = "head", value_name = "FILE")]
        heads: Vec<PathBuf>,
        /// One JSON object per line and head instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a head's score for every 80 ms of a WAV file: `time<TAB>score`.
    ///
    /// `time` is the seconds of audio consumed when the score was produced; the first score
    /// needs about 2 s (the head looks at the last 16 embeddings). These are the network's
    /// scores: with a head that carries templates of its word, `listen` also checks a score at
    /// the threshold against them, which drops it or lowers it, before it counts as a
    /// detection.
    Score {
        /// The head to run (default: the built-in `computer` head).
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// The recording.
        #[arg(long, value_name = "FILE")]
        wav: PathBuf,
    },
    /// Listen for wake words: live from the microphone, or in a WAV file.
    ///
    /// Prints one line per detection (`--json` for JSON lines): a score at the head's
    /// threshold, outside its 1 s refractory period — when the head carries templates of the
    /// word (`hark train` makes them), the score after checking the audio against them. Live,
    /// it runs until Ctrl-C or SIGTERM and prints a summary; device faults (unplugged, errors,
    /// silence from a dead stream) are logged and the device is reopened with backoff, never
    /// ending the run.
    Listen {
        /// Heads to run on one backbone pass (default: the built-in `computer` head).
        #[arg(long = "head", value_name = "FILE")]
        heads: Vec<PathBuf>,
        /// Listen to this recording instead of the microphone.
        #[arg(long, value_name = "FILE")]
        wav: Option<PathBuf>,
        /// JSON lines: {"word":…,"time":…,"score":…}.
        #[arg(long)]
        json: bool,
        /// Run this shell command on every detection, without waiting for it; it gets
        /// HARK_WORD, HARK_SCORE and HARK_TIME in its environment.
        #[arg(long, value_name = "CMD")]
        exec: Option<String>,
        /// Keep the audio around each detection (2 s before, 0.5 s after) as a WAV file here.
        #[arg(long, value_name = "DIR")]
        save_detections: Option<PathBuf>,
        /// Print throughput, ring fill and dropped audio every 10 s (live), and at the end.
        #[arg(long)]
        stats: bool,
        /// Learn from your feedback while listening (live; for the first --head, which needs
        /// the .replay manifest `hark train` wrote beside it). Type f and Enter after a false
        /// alarm, m and Enter right after a missed wake word, or run `hark feedback` from
        /// another shell: hark updates the head in the background, writes it (keeping the
        /// previous version as .prev) and listens on with it. Audio and state are kept in
        /// HEAD.learn/.
        #[arg(long, requires = "heads", conflicts_with = "wav")]
        learn: bool,
        /// Embedding cache holding the head's training data, for --learn (default: $HARK_CACHE,
        /// else $XDG_CACHE_HOME/hark, else ~/.cache/hark).
        #[arg(long, value_name = "DIR", requires = "learn")]
        cache: Option<PathBuf>,
        /// Run the backbone window by window (76 frames every 80 ms, as openWakeWord does)
        /// instead of streaming it: the same detections at about seven times the backbone's
        /// cost. For benchmarks.
        #[arg(long)]
        windowed_backbone: bool,
        #[command(flatten)]
        capture: CaptureArgs,
    },
    /// Tell a running `hark listen --learn` about a mistake.
    ///
    /// `false-alarm`: its last detection was not the wake word. `missed`: you just said the wake
    /// word and it was not detected; the last 4 s of audio are kept as an example (so mark it
    /// within a couple of seconds). The listener updates its head in the background.
    Feedback {
        /// What happened.
        #[arg(value_enum)]
        kind: FeedbackArg,
        /// The head file the listener runs (its first --head).
        #[arg(long, value_name = "FILE")]
        head: PathBuf,
    },
    /// List the audio input devices and the formats they offer.
    Devices,
    /// Record enrolment clips of your wake word (or background audio) from the microphone.
    ///
    /// Guided: for each take, wait for the prompt, say the word once; a level meter shows the
    /// input. Each take is checked (word found, not cut off, not too quiet, long or clipped),
    /// trimmed to the word with 0.5 s around it and saved as DIR/WORD-NNNN.wav (never
    /// overwriting). In a terminal you can redo the last take. With `--background`, records
    /// household audio as negatives in one-minute files instead.
    Record {
        /// The wake word (names the files).
        #[arg(long, required_unless_present = "background")]
        word: Option<String>,
        /// Folder for the recordings (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Takes to record. Ten is enough for a first head; more takes (in different rooms,
        /// moods and distances) make it miss less: the README's "How many recordings".
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Seconds of audio captured per take.
        #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
        seconds: f64,
        /// Record background audio (negatives) instead of the word.
        #[arg(long, conflicts_with = "word")]
        background: bool,
        /// Minutes of background audio to record.
        #[arg(long, default_value_t = 10.0, requires = "background")]
        minutes: f64,
        #[command(flatten)]
        capture: CaptureArgs,
    },
    /// Measure a head: miss rate and false alarms per hour on held-out audio.
    ///
    /// Positive clips are put in long streams (0.5 s of silence before each, 1.5 s after), once
    /// clean and once mixed with background audio, each clip's word 10 dB above the background
    /// under it (the noise follows each clip's level); a detection within [clip
    /// start, clip end + 0.5 s] is a hit. False alarms per hour are counted on the negative
    /// audio. Prints the result at the head's threshold and across thresholds.
    Eval {
        /// The head to measure (default: the built-in `computer` head).
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        /// Folder or file of positive clips; repeat for several.
        #[arg(long = "positive", value_name = "DIR", required = true)]
        positives: Vec<PathBuf>,
        /// Folder or file of negative audio; repeat for several.
        #[arg(long = "negative", value_name = "DIR", required = true)]
        negatives: Vec<PathBuf>,
        /// Draw the DET curve (miss rate against false alarms per hour) to this SVG file.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Folder or file of background audio mixed into the 10 dB streams (default: the
        /// negatives); repeat for several.
        #[arg(long = "background", value_name = "DIR")]
        background: Vec<PathBuf>,
        /// Use only one half of every folder (by file-name hash); `test` pairs with
        /// `train --split train`.
        #[arg(long, value_enum, default_value_t = SplitArg::All)]
        split: SplitArg,
        /// List the N negative files the head came closest to firing on, with where, the
        /// score and their false alarms at the threshold: what to listen to and to add as
        /// negatives (`hark update --negative`). 0 lists none.
        #[arg(long, value_name = "N", default_value_t = 5)]
        highest: usize,
        /// Measure the head's network alone, without checking its candidates against the
        /// templates of the word it carries (what the check adds, or costs).
        #[arg(long)]
        no_template_check: bool,
        #[command(flatten)]
        cache: CacheArgs,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FeedbackArg {
    /// The last detection was not the wake word.
    FalseAlarm,
    /// The wake word was just said and not detected.
    Missed,
}

impl From<FeedbackArg> for Feedback {
    fn from(f: FeedbackArg) -> Feedback {
        match f {
            FeedbackArg::FalseAlarm => Feedback::FalseAlarm,
            FeedbackArg::Missed => Feedback::Missed,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    All,
    Train,
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::All => Split::All,
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        }
    }
}

#[derive(Debug, clap::Args)]
struct CacheArgs {
    /// Embedding cache folder (default: $HARK_CACHE, else $XDG_CACHE_HOME/hark, else ~/.cache/hark).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
}

impl CacheArgs {
    fn cache(&self) -> Cache {
        if self.no_cache {
            Cache::new(None)
        } else {
            Cache::new(self.cache.clone().or_else(Cache::default_dir))
        }
    }
}

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

fn dispatch(cli: Cli) -> Result<()> {
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
            opts.progress = !quiet;
            train_cmd(&backbone, &opts, &out)
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
                        mic.delivered() as f64 / 16_000.0,
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

fn load_backbone(path: Option<&Path>) -> Result<Backbone> {
    let backbone = match path {
        Some(p) => Backbone::from_file(p)?,
        None => Backbone::builtin()?,
    };
    if !backbone.is_reference() {
        eprintln!(
            "hark: note: {} is not the reference speech_embedding model (sha256 {}); heads trained on the built-in backbone will not load with it",
            backbone.origin().display(),
            backbone.sha256()
        );
    }
    Ok(backbone)
}

/// The head compiled into the binary: `computer`, trained on the Picovoice wake-word-benchmark
/// clips (see models/README.md).
static BUILTIN_HEAD: &[u8] = include_bytes!("../models/computer.head");

/// The built-in head, and the name messages give it.
fn builtin_head() -> Result<(Head, &'static Path)> {
    let origin = Path::new("<built-in computer.head>");
    Ok((Head::from_bytes(BUILTIN_HEAD, origin)?, origin))
}

fn load_head(path: Option<&Path>, backbone: &Backbone) -> Result<Head> {
    match path {
        Some(p) => Head::load(p, Some(backbone.sha256())),
        None => {
            let (head, origin) = builtin_head()?;
            head.check_backbone(backbone.sha256(), origin)?;
            Ok(head)
        }
    }
}

fn set_threshold_cmd(path: &Path, threshold: f32) -> Result<()> {
    if !(threshold > 0.0 && threshold < 1.0) {
        return Err(Error::Invalid(format!(
            "threshold {threshold} is not a score strictly between 0 and 1"
        )));
    }
    let mut head = Head::load(path, None)?;
    let old = head.info.threshold;
    head.info.threshold = threshold;
    head.save(path)?;
    eprintln!(
        "{}: \"{}\" threshold {old:.5} → {threshold:.5}",
        path.display(),
        head.info.word
    );
    Ok(())
}

fn info_cmd(paths: &[PathBuf], backbone_sha256: &str, json: bool) -> Result<()> {
    // None: the built-in head.
    let heads: Vec<Option<&Path>> = if paths.is_empty() {
        vec![None]
    } else {
        paths.iter().map(|p| Some(p.as_path())).collect()
    };
    let mut out = std::io::stdout().lock();
    for path in heads {
        let (head, origin) = match path {
            Some(p) => (Head::load(p, None)?, p),
            None => builtin_head()?,
        };
        let name = origin.display().to_string();
        let fits = head.info.backbone_sha256 == backbone_sha256;
        // Neither file exists for the built-in head (None).
        let beside = |suffix: &str| path.map(|p| hark::atomic::beside(p, suffix).exists());
        let (replay, previous) = (beside(".replay"), beside(".prev"));
        let text = if json {
            serde_json::json!({
                "path": name,
                "info": head.info,
                "templates": head.templates.as_ref().map(|t| serde_json::json!({
                    "count": t.words.len(),
                    "added_by_updates": t.added,
                    "cut": t.cut,
                })),
                "fits_backbone": fits,
                "replay": replay,
                "previous": previous,
            })
            .to_string()
        } else {
            describe(&head, &name, fits, replay, previous)
        };
        // A closed pipe (`hark info | head`) ends the output quietly.
        if writeln!(out, "{text}").is_err() {
            break;
        }
    }
    Ok(())
}

/// `hark info`'s text for one head.
fn describe(
    head: &Head,
    name: &str,
    fits: bool,
    replay: Option<bool>,
    previous: Option<bool>,
) -> String {
    let i = &head.info;
    let t = &i.training;
    let templates = match &head.templates {
        Some(t) => templates_summary(t),
        None => "none (no template check)".into(),
    };
    let fits = if fits {
        "fits the backbone in use"
    } else {
        "NOT the backbone in use: retrain the head for it"
    };
    fn yes_no(b: Option<bool>, yes: &'static str, no: &'static str) -> &'static str {
        match b {
            Some(true) => yes,
            Some(false) => no,
            None => "not for the built-in head (train your own with hark train)",
        }
    }
    format!(
        "{name}\n  word         {}\n  threshold    {:.4} (refractory {:.1} s)\n  network      \
         {} embeddings × 96 → {} hidden → 1 (format {})\n  backbone     sha256 {} ({fits})\n  \
         created      {}\n  trained on   {} positive clips, {} negative files ({:.2} h), seed \
         {}, {} epochs\n  validation   miss {:.1} % at {:.2} false alarms/hour on {:.2} h held \
         out (target {}/hour)\n  updates      {}\n  templates    {templates}\n  update       \
         {}\n  rollback     {}",
        i.word,
        i.threshold,
        i.refractory_seconds,
        i.window,
        i.hidden,
        i.format,
        i.backbone_sha256,
        utc(i.created_unix),
        t.positive_clips,
        t.negative_files,
        t.negative_seconds / 3600.0,
        t.seed,
        t.epochs,
        t.validation_miss_rate * 100.0,
        t.validation_fa_per_hour,
        t.validation_negative_hours,
        t.target_fa_per_hour,
        t.updates,
        yes_no(
            replay,
            "possible (its .replay manifest is beside it)",
            "not possible: no .replay manifest beside it (hark train writes one)"
        ),
        yes_no(
            previous,
            "possible (its .prev version is beside it)",
            "nothing to roll back to"
        ),
    )
}

/// A head's templates as `info` and `eval` describe them.
fn templates_summary(t: &hark::verify::Templates) -> String {
    format!(
        "{} templates ({} added by updates), cut {:.1}",
        t.words.len(),
        t.added,
        t.cut
    )
}

/// `secs` since the Unix epoch as a UTC date and time, `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date: March-based years of 146 097-day eras (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn train_cmd(backbone: &Backbone, opts: &TrainOptions, out: &Path) -> Result<()> {
    // Fail before the work if the head cannot be written there.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(Error::Output {
            path: out.to_path_buf(),
            problem: format!("folder {} does not exist", dir.display()),
        });
    }
    let report = train::train(backbone, opts)?;
    for w in &report.warnings {
        eprintln!("hark: warning: {w}");
    }
    for (p, why) in report.skipped.iter().take(10) {
        eprintln!("hark: skipped {}: {why}", p.display());
    }
    if report.skipped.len() > 10 {
        eprintln!(
            "hark: … and {} more clips skipped",
            report.skipped.len() - 10
        );
    }
    report.head.save(out)?;
    report.replay.save(&Replay::path_for(out))?;
    let t = &report.head.info.training;
    eprintln!(
        "trained \"{}\" on {} positive clips ({} skipped) and {:.1} min of negatives in {:.1} s \
         (embeddings {:.1} s, {}/{} from cache; {} epochs)",
        report.head.info.word,
        t.positive_clips,
        report.skipped.len(),
        t.negative_seconds / 60.0,
        report.seconds,
        report.embed_seconds,
        report.cached_jobs,
        report.jobs,
        t.epochs
    );
    eprintln!(
        "validation: miss rate {:.1}% at {:.2} false alarms/hour ({:.2} h of held-out negatives); threshold {:.4}",
        t.validation_miss_rate * 100.0,
        t.validation_fa_per_hour,
        t.validation_negative_hours,
        report.head.info.threshold
    );
    match &report.head.templates {
        Some(v) => eprintln!(
            "template check: {} templates of the word from the training clips; a detection \
             farther than {:.1} from them is dropped ({:.0}% of the held-out clips and noisy \
             copies the head detects are nearer), one farther than {:.1} scores lower",
            v.words.len(),
            v.cut,
            hark::train::CUT_QUANTILE * 100.0,
            v.cut * hark::verify::EASE
        ),
        None => eprintln!(
            "template check: off (it needs 8 usable training clips and 8 validation clips the \
             head detects)"
        ),
    }
    if t.validation_negative_hours <= 0.0 {
        // Too little negative audio to hold any out (a few short files), so nothing checked
        // the threshold.
        eprintln!(
            "note: no negative audio was held out for validation (hark holds out a fifth of the \
             negative files, or of a long recording's 30-s blocks, and there were too few of \
             either), so the threshold was not \
             checked on audio the head did not train on; check it with `hark eval` on audio from \
             where the head will listen and set it with `hark set-threshold`, or train with more \
             negative audio"
        );
    } else if t.validation_negative_hours * t.target_fa_per_hour < 1.0 {
        // One alarm in the held-out audio is already above the target: the threshold was
        // extrapolated, and it has come out too low on other audio (README: Accuracy).
        // Measured in the README's "One recording": thresholds extrapolated from 0.18 h gave
        // 0.50–2.98 alarms an hour on held-out audio of the same kinds, 0.45 h about the target.
        let low = if t.validation_negative_hours < 0.3 {
            " (from this little it tends to come out low: heads calibrated on 0.18 h of one \
             recording fired 0.5–3 times an hour on audio like it)"
        } else {
            ""
        };
        eprintln!(
            "note: in {:.2} h of held-out negatives one false alarm is already {:.1}/hour, so the \
             threshold for {}/hour is extrapolated{low}; check it on audio from where the head \
             will listen (`hark eval`) and raise it with `hark set-threshold` if it fires too \
             often, or train with more negative audio",
            t.validation_negative_hours,
            1.0 / t.validation_negative_hours,
            t.target_fa_per_hour
        );
    }
    eprintln!("head written to {}", out.display());
    Ok(())
}

fn update_cmd(backbone: &Backbone, path: &Path, opts: &TrainOptions) -> Result<()> {
    let (head, replay) = train::load_for_update(backbone, path)?;
    let report = train::update(backbone, &head, &replay, opts)?;
    for (p, why) in &report.skipped {
        eprintln!("hark: skipped {}: {why}", p.display());
    }
    if report.missing > 0 {
        eprintln!(
            "hark: warning: {} cached training embeddings were missing and not replayed",
            report.missing
        );
    }
    report.commit(path, &head)?;
    let t = &report.head.info.training;
    eprintln!(
        "updated \"{}\" with {} new positive and {} new negative clip(s) in {:.2} s (update {}); {}; validation miss {:.1}% at {:.2} FA/h",
        report.head.info.word,
        report.new_positives,
        report.new_negatives,
        report.seconds,
        t.updates,
        report.threshold_change(head.info.threshold),
        t.validation_miss_rate * 100.0,
        t.validation_fa_per_hour
    );
    if let (Some(old), Some(new)) = (&head.templates, &report.head.templates) {
        eprintln!(
            "template check: {} templates ({} from the new clips, which ease a detection the \
             training templates keep but never bring back one beyond the cut), cut {:.1} kept",
            new.words.len(),
            new.words.len() - old.words.len(),
            new.cut
        );
    }
    eprintln!("previous version kept as {}", previous_path(path).display());
    Ok(())
}

fn rollback_cmd(path: &Path) -> Result<()> {
    let prev = previous_path(path);
    if !prev.exists() {
        return Err(Error::Data(format!(
            "{}: no previous version to roll back to",
            prev.display()
        )));
    }
    // Both versions must load before anything is touched.
    let old = Head::load(&prev, None)?;
    let current = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let replay_path = Replay::path_for(path);
    let replays = (
        std::fs::read(previous_path(&replay_path)),
        std::fs::read(&replay_path),
    );
    hark::atomic::write_bytes(path, &old.to_bytes())?;
    hark::atomic::write_bytes(&prev, &current)?;
    if let (Ok(old_replay), Ok(cur_replay)) = replays {
        hark::atomic::write_bytes(&replay_path, &old_replay)?;
        hark::atomic::write_bytes(&previous_path(&replay_path), &cur_replay)?;
    }
    eprintln!(
        "{}: rolled back to the previous version (update {}); the replaced one is now {}",
        path.display(),
        old.info.training.updates,
        prev.display()
    );
    Ok(())
}

fn score_cmd(backbone: &Backbone, head: Head, wav_path: &Path) -> Result<()> {
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
struct Output {
    json: bool,
    stats: bool,
    windowed_backbone: bool,
}

/// What a listening run did.
struct Summary {
    detections: u64,
}

fn feedback_cmd(kind: Feedback, head: &Path) -> Result<()> {
    let mark = hark::learn::send(head, kind)?;
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
fn feedback_keys(head: &Path) {
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
                if let Err(e) = hark::learn::send(&head, kind) {
                    eprintln!("hark: learning: {e}");
                }
            }
        });
}

fn listen_cmd(
    backbone: &Backbone,
    heads: Vec<Head>,
    source: &mut dyn Source,
    mut actions: Actions,
    mut learner: Option<Learner>,
    output: Output,
) -> Result<Summary> {
    let mut listener = if output.windowed_backbone {
        Listener::windowed(backbone, heads)?
    } else {
        Listener::new(backbone, heads)?
    };
    hark::memory::release_startup();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut detections = 0u64;
    let mut audio = 0u64;
    let started = Instant::now();
    let cpu0 = process_cpu_seconds();
    let mut last_stats = Instant::now();
    let mut chunk = Vec::with_capacity(8192);
    let periodic_stats = output.stats && source.health().is_some();
    let report = |audio: u64, source: &dyn Source| {
        let secs = audio as f64 / 16_000.0;
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
            chunk.clear();
            if source.read(&mut chunk)? == 0 {
                return Ok(());
            }
            audio += chunk.len() as u64;
            actions.audio(&chunk)?;
            if let Some(l) = learner.as_mut() {
                l.audio(&chunk)?;
            }
            listener.push(&chunk, |_, events| {
                for d in events {
                    detections += 1;
                    let line = if output.json {
                        serde_json::to_string(d).expect("a detection serialises")
                    } else {
                        format!("{:8.2} s  {}  (score {:.3})", d.time, d.word, d.score)
                    };
                    writeln!(out, "{line}").map_err(|e| Error::io("<stdout>", e))?;
                    out.flush().map_err(|e| Error::io("<stdout>", e))?;
                    actions.detection(d)?;
                    if let Some(l) = learner.as_mut() {
                        l.detection(d)?;
                    }
                }
                Ok(())
            })?;
            for note in actions.take_notes() {
                eprintln!("hark: {note}");
            }
            if let Some(l) = learner.as_mut() {
                if let Some(head) = l.poll()? {
                    listener.replace_head(0, head);
                }
                for note in l.take_notes() {
                    eprintln!("hark: {note}");
                }
            }
            if periodic_stats && last_stats.elapsed().as_secs() >= 10 {
                last_stats = Instant::now();
                report(audio, source);
            }
        }
    })();
    actions.finish()?;
    if let Some(l) = learner.as_mut() {
        l.finish();
        for note in l.take_notes() {
            eprintln!("hark: {note}");
        }
    }
    finish_stdout(result)?;
    if output.stats {
        report(audio, source);
    }
    Ok(Summary { detections })
}

/// Reads `seconds` of audio from the microphone, drawing a level meter on stderr. The flag is
/// true if the capture was stopped (Ctrl-C) first; the audio is then what arrived.
fn capture_seconds(
    mic: &mut Microphone,
    seconds: f64,
    show_meter: bool,
) -> Result<(Vec<f32>, bool)> {
    let want = (seconds * 16_000.0) as usize;
    let mut audio = Vec::with_capacity(want + 8192);
    let mut last_meter = 0;
    while audio.len() < want {
        if mic.read(&mut audio)? == 0 {
            if show_meter {
                eprintln!();
            }
            return Ok((audio, true));
        }
        if show_meter && audio.len() - last_meter >= 1600 {
            let from = audio.len().saturating_sub(1600);
            eprint!(
                "\r  {}  {:4.1} s ",
                hark::record::meter(&audio[from..]),
                audio.len() as f64 / 16_000.0
            );
            last_meter = audio.len();
        }
    }
    if show_meter {
        eprintln!();
    }
    audio.truncate(want);
    Ok((audio, false))
}

fn record_cmd(
    mic: &mut Microphone,
    word: &str,
    dir: &Path,
    count: usize,
    seconds: f64,
) -> Result<()> {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal();
    let meter = std::io::stderr().is_terminal();
    let mut saved: Vec<PathBuf> = Vec::new();
    let mut attempts = 0;
    while saved.len() < count {
        attempts += 1;
        if !interactive && attempts > 3 * count {
            return Err(Error::Data(format!(
                "only {} of {count} takes were usable after {} attempts",
                saved.len(),
                attempts - 1
            )));
        }
        if interactive {
            // Audio from while the user read the prompt is not part of the take.
            mic.discard_pending();
        }
        eprintln!("take {}/{count}: say \"{word}\" once, now", saved.len() + 1);
        let (audio, stopped) = capture_seconds(mic, seconds, meter)?;
        if stopped {
            break;
        }
        match hark::record::assess_take(&audio) {
            Err(why) => {
                eprintln!("  not saved: {why}; again");
                continue;
            }
            Ok(take) => {
                let path = hark::record::next_path(dir, word);
                wav::write_wav(&path, &take.samples, 16_000)?;
                eprintln!(
                    "  saved {} (word {:.2} s, peak {:.0} dBFS)",
                    path.display(),
                    take.word_seconds,
                    take.peak_db
                );
                for w in &take.warnings {
                    eprintln!("  note: {w}");
                }
                saved.push(path);
            }
        }
        if interactive {
            eprint!("  [Enter] next · [r] redo this take · [q] stop: ");
            let mut answer = String::new();
            std::io::stdin()
                .read_line(&mut answer)
                .map_err(|e| Error::io("<stdin>", e))?;
            match answer.trim() {
                "r" | "R" => {
                    if let Some(last) = saved.pop() {
                        std::fs::remove_file(&last).map_err(|e| Error::io(&last, e))?;
                        eprintln!("  removed {}", last.display());
                    }
                }
                "q" | "Q" => break,
                _ => {}
            }
        }
    }
    eprintln!(
        "{} take(s) of \"{word}\" in {}; train with: hark train --word {word} --positive {} --negative <background folder> --background <background folder> --out {word}.head",
        saved.len(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

fn record_background_cmd(mic: &mut Microphone, dir: &Path, minutes: f64) -> Result<()> {
    use std::io::IsTerminal;
    let meter = std::io::stderr().is_terminal();
    let mut left = minutes * 60.0;
    let mut files = 0;
    eprintln!(
        "recording {minutes} min of background audio into {} (one file per minute; Ctrl-C stops and keeps what was recorded)",
        dir.display()
    );
    while left > 0.0 {
        let part = left.min(60.0);
        let (audio, stopped) = capture_seconds(mic, part, meter)?;
        if audio.len() >= 16_000 {
            let path = hark::record::next_path(dir, "background");
            wav::write_wav(&path, &audio, 16_000)?;
            files += 1;
            eprintln!(
                "  saved {} ({:.0} s)",
                path.display(),
                audio.len() as f64 / 16_000.0
            );
        }
        left -= part;
        if stopped {
            break;
        }
    }
    eprintln!(
        "{files} background file(s) in {}; use the folder in hark train as --negative (nothing \
         here should wake the device) and as --background (the noise the word is heard in)",
        dir.display()
    );
    Ok(())
}

fn devices_cmd() -> Result<()> {
    let list = hark::capture::devices()?;
    if list.is_empty() {
        eprintln!("no audio input devices found");
        return Ok(());
    }
    let mut text = String::new();
    for d in list {
        let mark = if d.is_default { "*" } else { " " };
        let _ = writeln!(text, "{mark} {}  [{}]", d.name, d.id);
        if d.formats.is_empty() {
            text.push_str("      (its formats could not be read: busy or not a capture device)\n");
        }
        for f in d.formats {
            let _ = writeln!(text, "      {f}");
        }
    }
    print_stdout(&text)
}

/// A closed pipe (`hark … | head`) is the reader's choice, not an error.
fn finish_stdout(result: Result<()>) -> Result<()> {
    match result {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn eval_cmd(
    backbone: &Backbone,
    head: &Head,
    data: &hark::eval::EvalData,
    cache: &Cache,
    quiet: bool,
    plot: Option<&Path>,
    highest: usize,
) -> Result<()> {
    if let Some(p) = plot
        && !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        return Err(Error::Output {
            path: p.to_path_buf(),
            problem: "the DET plot is drawn as SVG: name the file *.svg".into(),
        });
    }
    let started = Instant::now();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
    };
    let r = hark::eval::evaluate(backbone, head, data, cache, &|stage, done, total| {
        bar.set_message(stage.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    for w in &r.skipped {
        eprintln!("hark: warning: skipped negative {w}");
    }
    // Written at once, after the plot: a closed pipe (`hark eval … | head`) then costs nothing.
    if let Some(p) = plot {
        hark::eval::plot_det(&r, &head.info.word, p)?;
        eprintln!("DET curve drawn to {}", p.display());
    }
    let check = match &head.templates {
        Some(t) => format!("template check: {}", templates_summary(t)),
        None => "no template check".to_string(),
    };
    let mut text = format!(
        "{}: {} clips (clean + 10 dB), {:.2} h of negatives, {:.0} s; {check}\n",
        head.info.word,
        r.clips,
        r.negative_hours,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        text,
        "at threshold {:.4}: miss {:.1}% (clean {:.1}%, 10 dB {:.1}%), {:.2} false alarms/hour",
        r.threshold,
        r.miss_rate * 100.0,
        r.miss_rate_clean * 100.0,
        r.miss_rate_noisy * 100.0,
        r.fa_per_hour
    );
    if let Some((median, p90)) = r.latency {
        let _ = writeln!(
            text,
            "detection latency after the end of the word: median {:.0} ms, 90th percentile {:.0} ms",
            median * 1000.0,
            p90 * 1000.0
        );
    }
    for p in r.highest_negatives.iter().take(highest) {
        let alarms = match p.alarms {
            0 => String::new(),
            1 => ", 1 false alarm at the threshold".into(),
            n => format!(", {n} false alarms at the threshold"),
        };
        let _ = writeln!(
            text,
            "highest-scoring negative: {} at {:.1} s: {:.4}{alarms}",
            p.path.display(),
            p.seconds,
            p.score
        );
    }
    text.push_str("threshold\tmiss\tfa_per_hour\n");
    let mut last = None;
    for (t, m, f) in &r.curve {
        if last != Some((*m, *f)) {
            let _ = writeln!(text, "{t:.5}\t{m:.4}\t{f:.3}");
            last = Some((*m, *f));
        }
    }
    print_stdout(&text)
}

/// Writes `text` to standard output; a closed pipe is the reader's choice, not an error.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    finish_stdout(
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("<stdout>", e)),
    )
}

fn embed(backbone: Option<&Path>, wav_path: &Path, out: Option<&Path>) -> Result<()> {
    let format = match out {
        None => Format::Csv,
        Some(p) => Format::of(p)?,
    };
    let backbone = load_backbone(backbone)?;
    let started = Instant::now();
    let samples = wav::read_wav(wav_path)?;
    let embeddings = embedder::embed_samples(&backbone, &samples)?;
    let audio_secs = samples.len() as f64 / 16_000.0;
    let took = started.elapsed().as_secs_f64();
    match (out, format) {
        (Some(p), Format::Npy) => {
            let flat: Vec<f32> = embeddings.iter().flatten().copied().collect();
            npy::write(p, &flat, embeddings.len(), EMBEDDING_DIM)?;
        }
        (Some(p), Format::Csv) => {
            let mut text = Vec::new();
            write_csv(&mut text, &embeddings).map_err(|e| Error::io(p, e))?;
            hark::atomic::write_bytes(p, &text)?;
        }
        (None, _) => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            match write_csv(&mut lock, &embeddings).and_then(|()| lock.flush()) {
                // A closed pipe (`hark embed … | head`) is the reader's choice, not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r.map_err(|e| Error::io("<stdout>", e))?,
            }
        }
    }
    eprintln!(
        "{}: {:.2} s of audio → {} embeddings in {:.3} s ({:.0}× real time){}",
        wav_path.display(),
        audio_secs,
        embeddings.len(),
        took,
        audio_secs / took.max(1e-9),
        out.map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    if embeddings.is_empty() {
        eprintln!("hark: note: the first embedding needs 0.82 s of audio; this file is shorter");
    }
    Ok(())
}

enum Format {
    Npy,
    Csv,
}

impl Format {
    fn of(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("npy") => Ok(Format::Npy),
            Some("csv") => Ok(Format::Csv),
            _ => Err(Error::Output {
                path: path.to_path_buf(),
                problem: "unknown output format: name the file *.npy or *.csv".into(),
            }),
        }
    }
}

fn write_csv(w: &mut impl Write, embeddings: &[Embedding]) -> std::io::Result<()> {
    write!(w, "time")?;
    for i in 0..EMBEDDING_DIM {
        write!(w, ",e{i}")?;
    }
    writeln!(w)?;
    for (k, e) in embeddings.iter().enumerate() {
        write!(w, "{:.2}", embedder::time_of_embedding(k as u64))?;
        for v in e {
            write!(w, ",{v}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_dates_match_python_datetime() {
        // Values from `datetime.datetime.fromtimestamp(s, datetime.UTC)`.
        for (secs, want) in [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (1_700_000_000, "2023-11-14 22:13:20 UTC"),
            (1_796_083_200, "2026-12-01 00:00:00 UTC"),
            (4_102_444_799, "2099-12-31 23:59:59 UTC"),
        ] {
            assert_eq!(utc(secs), want);
        }
    }
}
