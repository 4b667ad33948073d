//! `record` (guided enrolment, background recording) and `devices`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::print_stdout;
use hark::audio::capture::Microphone;
use hark::audio::source::Source;
use hark::audio::wav;
use hark::{Error, Result};

/// Reads `seconds` of audio from the microphone, drawing a level meter on stderr. The flag is
/// true if the capture was stopped (Ctrl-C) first; the audio is then what arrived.
pub(crate) fn capture_seconds(
    mic: &mut Microphone,
    seconds: f64,
    show_meter: bool,
) -> Result<(Vec<f32>, bool)> {
    let want = hark::timeline::samples_of(seconds);
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
                hark::audio::takes::meter(&audio[from..]),
                hark::timeline::seconds_of(audio.len() as u64)
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

pub(crate) fn record_cmd(
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
        match hark::audio::takes::assess_take(&audio) {
            Err(why) => {
                eprintln!("  not saved: {why}; again");
                continue;
            }
            Ok(take) => {
                let path = hark::audio::takes::next_path(dir, word);
                wav::write_wav(&path, &take.samples, hark::timeline::SAMPLE_RATE)?;
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

pub(crate) fn record_background_cmd(mic: &mut Microphone, dir: &Path, minutes: f64) -> Result<()> {
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
        if audio.len() >= hark::timeline::samples_of(1.0) {
            let path = hark::audio::takes::next_path(dir, "background");
            wav::write_wav(&path, &audio, hark::timeline::SAMPLE_RATE)?;
            files += 1;
            eprintln!(
                "  saved {} ({:.0} s)",
                path.display(),
                hark::timeline::seconds_of(audio.len() as u64)
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

pub(crate) fn devices_cmd() -> Result<()> {
    let list = hark::audio::capture::devices()?;
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
