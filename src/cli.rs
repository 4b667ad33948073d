//! Command-line parsing and the subcommands, each a few calls into the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use hark::backbone::{Backbone, EMBEDDING_DIM, Embedding};
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
}

/// Parses the command line, runs the command, and turns errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
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
