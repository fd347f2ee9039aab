//! What `pull` shows while it runs: a progress bar per archive on a terminal (nothing otherwise, nor with
//! `--json`), and the pipeline's notes and warnings on stderr. The pipeline itself (archive-pull) prints
//! nothing.

use std::io::IsTerminal;
use std::time::Duration;

use crate::output::Output;

/// The pipeline's observer for the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CliObserver<'a>(pub(crate) &'a Output);

impl archive_pull::Observer for CliObserver<'_> {
    fn progress(&self, id: &str, size: u64) -> Box<dyn archive_pull::Progress> {
        Box::new(Bar::new(self.0, id, size))
    }

    fn note(&self, message: &str) {
        if !self.0.is_quiet() {
            eprintln!("note: {message}");
        }
    }

    fn warning(&self, message: &str) {
        if !self.0.is_quiet() {
            eprintln!("warning: {message}");
        }
    }
}

/// A progress bar on a terminal; nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(out: &Output, id: &str, size: u64) -> Self {
        if out.is_json() || out.is_quiet() || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(id.chars().take(8).collect::<String>());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(Some(bar))
    }
}

impl archive_pull::Progress for Bar {
    fn set_position(&self, at: u64) {
        if let Some(b) = &self.0 {
            b.set_position(at);
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
