//! One module per command: its clap arguments and its `run`.

pub mod archives;
// `demo` mounts the receiver's server too: without it, `serve` is only used by `callbacks serve` itself.
#[cfg_attr(not(feature = "demo"), allow(unused_imports))]
pub mod callbacks;
pub mod cert;
pub mod config;
pub mod decrypt;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod inspect;
pub mod keygen;
pub mod ledger;
pub mod password;
pub mod pull;
pub mod shell;
pub mod storage;
pub mod sync;

use archive_core::mpegts::TsReport;

/// One line describing a TS report, for people.
pub fn describe_report(report: &TsReport) -> String {
    let duration = report
        .duration_seconds
        .map_or("unknown".to_string(), |d| format!("{d:.3} s"));
    let streams: Vec<String> = report.streams.iter().map(ToString::to_string).collect();
    format!(
        "{} packets, duration {duration}, streams: {}, continuity errors: {}",
        report.packets,
        if streams.is_empty() {
            "none found".to_string()
        } else {
            streams.join(", ")
        },
        report.continuity_errors
    )
}
