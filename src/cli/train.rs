//! `train`, `update` and `update --rollback`.

use std::path::Path;

use crate::cli::progress::Bars;
use hark::backbone::Backbone;
use hark::data::cache::Cache;
use hark::model::store::previous_path;
use hark::train::{self, Replay, TrainOptions};
use hark::{Error, Result};

pub(crate) fn train_cmd(
    backbone: &Backbone,
    opts: &TrainOptions,
    out: &Path,
    progress: &dyn hark::Progress,
) -> Result<()> {
    // Fail before the work if the head cannot be written there.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(Error::Output {
            path: out.to_path_buf(),
            problem: format!("folder {} does not exist", dir.display()),
        });
    }
    let report = train::train(backbone, opts, progress)?;
    cache_warning(&opts.cache);
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
            v.cut * hark::model::templates::EASE
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

pub(crate) fn update_cmd(backbone: &Backbone, path: &Path, opts: &TrainOptions) -> Result<()> {
    let (head, replay) = train::load_for_update(backbone, path)?;
    let report = train::update(backbone, &head, &replay, opts, &Bars::new(false))?;
    cache_warning(&opts.cache);
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

pub(crate) fn rollback_cmd(path: &Path) -> Result<()> {
    let old = hark::model::store::rollback(path)?;
    eprintln!(
        "{}: rolled back to the previous version (update {}); the replaced one is now {}",
        path.display(),
        old.info.training.updates,
        previous_path(path).display()
    );
    Ok(())
}

/// Says once that embeddings could not be cached, if so.
pub(crate) fn cache_warning(cache: &Cache) {
    if let Some(e) = cache.write_problem() {
        eprintln!("hark: warning: cannot cache embeddings: {e}");
    }
}
