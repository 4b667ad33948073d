//! Loading the backbone and heads, and the commands that read or change a head file:
//! `info` and `set-threshold`.

use std::io::Write;
use std::path::{Path, PathBuf};

use hark::backbone::Backbone;
use hark::model::head::Head;
use hark::{Error, Result};

pub(crate) fn load_backbone(path: Option<&Path>) -> Result<Backbone> {
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
pub(crate) static BUILTIN_HEAD: &[u8] = include_bytes!("../../models/computer.head");

/// The built-in head, and the name messages give it.
pub(crate) fn builtin_head() -> Result<(Head, &'static Path)> {
    let origin = Path::new("<built-in computer.head>");
    Ok((Head::from_bytes(BUILTIN_HEAD, origin)?, origin))
}

pub(crate) fn load_head(path: Option<&Path>, backbone: &Backbone) -> Result<Head> {
    match path {
        Some(p) => Head::load(p, Some(backbone.sha256())),
        None => {
            let (head, origin) = builtin_head()?;
            head.check_backbone(backbone.sha256(), origin)?;
            Ok(head)
        }
    }
}

pub(crate) fn set_threshold_cmd(path: &Path, threshold: f32) -> Result<()> {
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

pub(crate) fn info_cmd(paths: &[PathBuf], backbone_sha256: &str, json: bool) -> Result<()> {
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
pub(crate) fn describe(
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
pub(crate) fn templates_summary(t: &hark::model::templates::Templates) -> String {
    format!(
        "{} templates ({} added by updates), cut {:.1}",
        t.words.len(),
        t.added,
        t.cut
    )
}

/// `secs` since the Unix epoch as a UTC date and time, `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(secs: u64) -> String {
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
