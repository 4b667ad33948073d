//! Progress bars on stderr for the library's long work ([`hark::Progress`]).

use indicatif::{ProgressBar, ProgressStyle};

/// One bar, reused stage after stage; hidden with `--quiet`.
pub(crate) struct Bars {
    bar: ProgressBar,
}

impl Bars {
    /// A bar, drawn unless `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{msg:>16} [{bar:30}] {pos}/{len} {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            )
        };
        Bars { bar }
    }
}

impl hark::Progress for Bars {
    fn begin(&self, what: &str, total: usize) {
        self.bar.reset();
        self.bar.set_message(what.to_string());
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn at(&self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn note(&self, text: &str) {
        self.bar.set_message(text.to_string());
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}
