//! The command line: every flag of every command, defined and documented in one place.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hark::Result;
use hark::audio::capture::{CaptureOptions, Microphone, Notice};
use hark::data::cache::Cache;
use hark::data::folders::Split;
use hark::detect::learn::Feedback;

/// hark: an offline wake-word engine that learns your trigger word on the device.
///
/// Audio flows samples → log-mel frames → embeddings of a frozen speech network (Google's
/// speech_embedding, built in) → a small head trained for your word → detections.
#[derive(Debug, Parser)]
#[command(name = "hark", version, about, long_about)]
pub(crate) struct Cli {
    /// Use this embedding_model.onnx instead of the built-in copy (must take [N,76,32,1]
    /// log-mel windows and return 96 values per window).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) backbone: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options of the live input.
#[derive(Debug, clap::Args)]
pub(crate) struct CaptureArgs {
    /// Input device: its name or id as `hark devices` prints it, or a unique part of the
    /// name (default: the system's default input).
    #[arg(long, value_name = "NAME")]
    pub(crate) device: Option<String>,
    /// Stop after this many seconds of audio.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,
    /// Capture at this rate instead of the automatic choice (16 kHz when offered).
    #[arg(long, value_name = "HZ", help_heading = "Device format")]
    pub(crate) capture_rate: Option<u32>,
    /// Capture this many channels instead of the automatic choice (mono when offered).
    #[arg(long, value_name = "N", help_heading = "Device format")]
    pub(crate) capture_channels: Option<u16>,
    /// Capture in this sample format (i16, i32, f32, u8, …) instead of the automatic choice.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format, help_heading = "Device format")]
    pub(crate) capture_format: Option<cpal::SampleFormat>,
}

pub(crate) fn parse_format(s: &str) -> std::result::Result<cpal::SampleFormat, String> {
    hark::audio::capture::parse_format(s).ok_or_else(|| {
        format!(
            "unknown sample format `{s}` (i8, i16, i24, i32, i64, u8, u16, u24, u32, u64, f32, f64)"
        )
    })
}

impl CaptureArgs {
    /// Opens the chosen input; Ctrl-C/SIGTERM end its stream, notices go to stderr.
    pub(crate) fn open(&self) -> Result<Microphone> {
        let opts = CaptureOptions {
            device: self.device.clone(),
            rate: self.capture_rate,
            channels: self.capture_channels,
            format: self.capture_format,
            duration: self.duration,
        };
        let stop = crate::cli::listen::stop_on_signals()?;
        Microphone::open(opts, stop, Box::new(|n: &Notice| eprintln!("hark: {n}")))
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum FeedbackArg {
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
pub(crate) enum SplitArg {
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
pub(crate) struct CacheArgs {
    /// Embedding cache folder (default: $HARK_CACHE, else $XDG_CACHE_HOME/hark, else ~/.cache/hark).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long, conflicts_with = "cache")]
    pub(crate) no_cache: bool,
}

impl CacheArgs {
    pub(crate) fn cache(&self) -> Cache {
        if self.no_cache {
            Cache::new(None)
        } else {
            Cache::new(self.cache.clone().or_else(Cache::default_dir))
        }
    }
}
