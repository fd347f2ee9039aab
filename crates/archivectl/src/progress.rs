//! Progress bars (indicatif) on a terminal only: bytes, rate and ETA, one line per archive in flight
//! (`pull --parallel`), all in one [`indicatif::MultiProgress`] on stderr so that they never overwrite each
//! other; lines printed while bars are shown go through [`suspend`], so they land above the bars. Nothing is
//! drawn when stderr is not a terminal (piped, redirected, a CI log), with `--json` or `-q`, or when `TERM=dumb`:
//! then stderr carries no control sequence at all.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::Output;

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// Whether bars are drawn: a terminal on stderr, not JSON, not `-q`, not a dumb terminal.
pub(crate) fn wanted(out: &Output) -> bool {
    !out.is_json()
        && !out.is_quiet()
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn multi() -> &'static MultiProgress {
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Runs `f` (which prints) with the bars out of the way, if there are any.
pub(crate) fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match MULTI.get() {
        Some(m) => m.suspend(f),
        None => f(),
    }
}

/// A bar for `total` bytes labelled `label`, or `None` when bars are not [`wanted`].
pub(crate) fn bar(out: &Output, label: &str, total: Option<u64>) -> Option<ProgressBar> {
    if !wanted(out) {
        return None;
    }
    // Hidden until it is in the MultiProgress: a bar drawn on its own first would leave its line behind.
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden()),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
            "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
        ),
    };
    let bar = multi().add(bar);
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// A bar that follows a counter another thread advances (archive-core's decryption counts the bytes it
/// has done), until [`Polled::finish`].
pub(crate) struct Polled {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Polled {
    /// Shows `bar` following `counter` (nothing if `bar` is `None`).
    pub(crate) fn follow(
        bar: Option<ProgressBar>,
        counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let Some(bar) = bar else {
            return Self {
                stop: None,
                thread: None,
            };
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            loop {
                bar.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
                // The refresh interval of the bar; a message (or the sender gone) ends it.
                match stopped.recv_timeout(Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            bar.finish_and_clear();
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Removes the bar from the screen.
    pub(crate) fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.end();
    }
}
