//! Progress bars for the long phases, on stderr so stdout stays one clean report. Hidden with
//! `--json` and whenever stderr is not a terminal (CI logs, tests, pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    shown: bool,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        Progress { shown: !json && std::io::stderr().is_terminal() }
    }

    /// A bar of `steps` for one phase; clear it with `finish_and_clear` when the phase ends.
    pub fn phase(&self, label: impl Into<String>, steps: u64) -> ProgressBar {
        if !self.shown {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template("{msg:32} [{wide_bar}] {pos}/{len}")
            .expect("a valid template")
            .progress_chars("=> ");
        ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(label.into())
    }
}
