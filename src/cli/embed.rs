//! `embed`: a WAV file's embeddings as `.npy` or CSV.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::cli::heads::load_backbone;
use hark::audio::wav;
use hark::backbone::{EMBEDDING_DIM, Embedding};
use hark::{Error, Result, npy};

pub(crate) fn embed(backbone: Option<&Path>, wav_path: &Path, out: Option<&Path>) -> Result<()> {
    let format = match out {
        None => Format::Csv,
        Some(p) => Format::of(p)?,
    };
    let backbone = load_backbone(backbone)?;
    let started = Instant::now();
    let samples = wav::read_wav(wav_path)?;
    let embeddings = hark::backbone::embedder::embed_samples(&backbone, &samples)?;
    let audio_secs = hark::timeline::seconds_of(samples.len() as u64);
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

pub(crate) enum Format {
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

pub(crate) fn write_csv(w: &mut impl Write, embeddings: &[Embedding]) -> std::io::Result<()> {
    write!(w, "time")?;
    for i in 0..EMBEDDING_DIM {
        write!(w, ",e{i}")?;
    }
    writeln!(w)?;
    for (k, e) in embeddings.iter().enumerate() {
        write!(
            w,
            "{:.2}",
            hark::backbone::embedder::time_of_embedding(k as u64)
        )?;
        for v in e {
            write!(w, ",{v}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}
