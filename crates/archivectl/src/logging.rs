//! How much archivectl says on stderr, and in which form: the global `-q/--quiet`, `-v/--verbose` (repeatable)
//! and `--log-format human|json`, and the `tracing` subscriber they set up.
//!
//! * Log lines (the `tracing` events of archivectl's own crates) go to stderr. The long-running commands
//!   (`callbacks serve`, `pull --all`) log at `info` by default (each callback, each archive: a request or run
//!   id, the archive id and the outcome on every line), errors only with `-q`; the others log nothing unless
//!   `-v` (their stderr is their own messages: one line on failure). `-v` shows `debug`, `-vv` `trace`.
//!   Other crates (HTTP, storage) log warnings and errors at most, whatever `-v` says: their details could
//!   carry URLs with presigned queries.
//! * `--log-format human` is text for people (colours on a terminal); `json` one JSON object per line, with
//!   `timestamp`, `level`, `message` and the event's fields at the top level. Default: human when stderr is a
//!   terminal, JSON lines otherwise (a service manager, a container, a pipe to a log collector).
//! * `-q` also silences the notes, warnings and progress bars commands print for people on stderr; what a
//!   command prints on stdout (its results) and its errors stay.

use std::io::IsTerminal as _;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::context::GLOBAL_HEADING;

/// The form of the log lines on stderr: `Human` (text for people) or `Json` (one JSON object per line).
// (No doc comments on the variants: clap would then print every `--help` in its long form.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[allow(missing_docs)]
    Human,
    #[allow(missing_docs)]
    Json,
}

/// `-q`, `-v` and `--log-format`, accepted anywhere on the command line.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// Print only errors on stderr: no notes, warnings, progress bars or log lines (results on stdout stay).
    #[arg(short, long, global = true, help_heading = GLOBAL_HEADING, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more on stderr: -v adds debug log lines, -vv trace (repeatable).
    #[arg(short, long, global = true, help_heading = GLOBAL_HEADING, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr as text (human) or JSON lines (json). Default: human on a terminal, json otherwise.
    #[arg(long, global = true, help_heading = GLOBAL_HEADING, value_name = "FORMAT", env = "ARCHIVECTL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// The crates whose events `-v` makes visible: archivectl's own.
const OUR_CRATES: &[&str] = &[
    "archivectl",
    "archive_core",
    "archive_db",
    "archive_pull",
    "archive_receiver",
    "opentok_rest",
    "storage_fetch",
    "opentok_emulator",
];

impl LogArgs {
    /// The most detailed level shown for archivectl's own events; `long_running` commands log `info` by
    /// default (`error` with `-q`), the others nothing unless `-v`.
    pub fn level(&self, long_running: bool) -> LevelFilter {
        match (self.quiet, self.verbose) {
            (true, _) if long_running => LevelFilter::ERROR,
            (true, _) => LevelFilter::OFF,
            (false, 0) if long_running => LevelFilter::INFO,
            // A one-shot command's stderr is its own messages (one line on failure): log lines only with -v.
            (false, 0) => LevelFilter::OFF,
            (false, 1) => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }

    /// The format asked for, or the default for where stderr goes.
    pub fn format(&self) -> LogFormat {
        self.log_format
            .unwrap_or(if std::io::stderr().is_terminal() {
                LogFormat::Human
            } else {
                LogFormat::Json
            })
    }

    /// Installs the subscriber (once per process; a second call changes nothing).
    pub fn init(&self, long_running: bool) {
        let ours = self.level(long_running);
        let others = ours.min(LevelFilter::WARN);
        let filter = OUR_CRATES
            .iter()
            .fold(Targets::new().with_default(others), |t, name| {
                t.with_target(*name, ours)
            });
        let registry = tracing_subscriber::registry().with(filter);
        let _ = match self.format() {
            LogFormat::Human => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(|| AboveTheBars)
                        .with_ansi(std::io::stderr().is_terminal())
                        .with_target(false),
                )
                .try_init(),
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_target(false)
                        .with_writer(|| AboveTheBars),
                )
                .try_init(),
        };
    }
}

/// stderr for log lines, written while the progress bars are out of the way: a line written over a bar
/// would leave the bar behind on the screen.
struct AboveTheBars;

impl std::io::Write for AboveTheBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_keeps_errors_and_each_v_adds_a_level() {
        let args = |quiet, verbose| LogArgs {
            quiet,
            verbose,
            log_format: None,
        };
        assert_eq!(args(false, 0).level(true), LevelFilter::INFO);
        assert_eq!(args(false, 0).level(false), LevelFilter::OFF);
        assert_eq!(args(true, 0).level(false), LevelFilter::OFF);
        assert_eq!(args(false, 1).level(false), LevelFilter::DEBUG);
        assert_eq!(args(false, 3).level(true), LevelFilter::TRACE);
        assert_eq!(args(true, 0).level(true), LevelFilter::ERROR);
    }
}
