//! `eval`: the evaluation protocol's report, its DET table and plot.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::cli::heads::templates_summary;
use crate::cli::print_stdout;
use crate::cli::progress::Bars;
use crate::cli::train::cache_warning;
use hark::backbone::Backbone;
use hark::data::cache::Cache;
use hark::model::head::Head;
use hark::{Error, Result};

pub(crate) fn eval_cmd(
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
    let r = hark::eval::evaluate(backbone, head, data, cache, &Bars::new(quiet))?;
    cache_warning(cache);
    for w in &r.skipped {
        eprintln!("hark: warning: skipped negative {w}");
    }
    // Written at once, after the plot: a closed pipe (`hark eval … | head`) then costs nothing.
    if let Some(p) = plot {
        plot_det(&r, &head.info.word, p)?;
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

/// Draws the DET curve of `report` (miss rate against false alarms per hour, the head's
/// threshold marked) as an SVG file, written atomically.
pub(crate) fn plot_det(
    report: &hark::EvalReport,
    word: &str,
    path: &std::path::Path,
) -> Result<()> {
    use plotters::prelude::*;
    let fail = |e: String| Error::Output {
        path: path.to_path_buf(),
        problem: format!("cannot draw the DET curve ({e})"),
    };
    let max_fa = 10.0;
    let points: Vec<(f64, f64)> = report
        .curve
        .iter()
        .rev()
        .filter(|(_, _, fa)| *fa <= max_fa)
        .map(|(_, miss, fa)| (*fa, miss * 100.0))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{word}: {} clips, {:.2} h of negatives",
                    report.clips, report.negative_hours
                ),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..max_fa, 0f64..100f64)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("false alarms per hour")
            .y_desc("miss rate (%)")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?;
        if report.fa_per_hour <= max_fa {
            let at = (report.fa_per_hour, report.miss_rate * 100.0);
            chart
                .draw_series(std::iter::once(Circle::new(at, 5, RED.filled())))
                .map_err(|e| fail(e.to_string()))?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    hark::atomic::write_bytes(path, svg.as_bytes())
}
