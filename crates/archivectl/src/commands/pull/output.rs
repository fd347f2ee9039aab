//! What `pull` shows while it runs: a progress bar per archive in flight on a terminal (nothing otherwise,
//! nor with `--json`: see `crate::progress`), and the pipeline's notes and warnings on stderr, above the
//! bars. The pipeline itself (archive-pull) prints nothing.

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
            crate::progress::suspend(|| eprintln!("note: {message}"));
        }
    }

    fn warning(&self, message: &str) {
        if !self.0.is_quiet() {
            crate::progress::suspend(|| eprintln!("warning: {message}"));
        }
    }
}

/// A progress bar on a terminal (one line among the archives in flight); nothing otherwise.
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(out: &Output, id: &str, size: u64) -> Self {
        if out.is_quiet() {
            return Self(None);
        }
        Self(crate::progress::bar(
            out,
            &id.chars().take(8).collect::<String>(),
            Some(size),
        ))
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
