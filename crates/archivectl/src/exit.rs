//! Exit codes, and turning an error into one line on stderr.
//!
//! The user guide's "Exit codes" table is the reference; a test keeps the two lists of codes the same.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | an unexpected failure (a bug: please report it) |
//! | 2 | usage: an unknown command or flag, a missing, conflicting or invalid flag or setting (command line, environment or archivectl.toml) |
//! | 3 | invalid input: a file that is not a key, certificate, password or archive, or is damaged; a refused operation |
//! | 4 | wrong secret: the passphrase, private key or password does not fit (also `cert inspect --key` with another key) |
//! | 5 | I/O: a file cannot be read or written |
//! | 6 | the service answered with an error (or gave no answer in time) |
//! | 7 | the storage target answered with an error |
//! | 8 | the ledger: it cannot be opened (not a ledger, or written by a newer archivectl) or written |
//! | 9 | the service could not be reached (nothing listens at the URL, DNS, TLS, a proxy) |
//! | 130 | stopped by Ctrl-C (SIGINT) |
//! | 143 | stopped by SIGTERM or SIGHUP |

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use archive_core::{
    archive::ArchiveError, cert::CertError, keys::KeyError, mpegts::TsError, oaep::UnwrapError,
    password::PasswordError,
};

/// Unexpected failure.
pub const INTERNAL: u8 = 1;
/// Usage: unknown command, missing or conflicting flags.
pub const USAGE: u8 = 2;
/// Invalid input.
pub const INVALID_INPUT: u8 = 3;
/// Wrong passphrase, key or password.
pub const WRONG_SECRET: u8 = 4;
/// File I/O.
pub const IO: u8 = 5;
/// The service answered with an error (or could not be reached).
pub const SERVICE: u8 = 6;
/// The storage target answered with an error (or could not be reached).
pub const STORAGE: u8 = 7;
/// The ledger cannot be opened or written.
pub const LEDGER: u8 = 8;
/// The service could not be reached.
pub const UNREACHABLE: u8 = 9;
/// Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM or SIGHUP (128 + SIGTERM, as shells report it).
#[cfg_attr(not(feature = "demo"), allow(dead_code))]
pub const TERMINATED: u8 = 143;

/// Directories to remove however the process ends, even by the panic hook's `exit` (which runs no
/// destructors): `demo`'s temporary directories, which hold a private key.
static REMOVE_ON_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers `dir` to be removed if the process exits without dropping its owner (see [`remove_registered`]).
#[cfg_attr(not(feature = "demo"), allow(dead_code))]
pub fn remove_on_exit(dir: &Path) {
    REMOVE_ON_EXIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(dir.to_path_buf());
}

/// Forgets `dir` (its owner removed it).
#[cfg_attr(not(feature = "demo"), allow(dead_code))]
pub fn forget_on_exit(dir: &Path) {
    REMOVE_ON_EXIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|d| d != dir);
}

/// Removes every directory registered with [`remove_on_exit`]: called just before the process exits
/// without unwinding.
pub fn remove_registered() {
    let dirs = std::mem::take(
        &mut *REMOVE_ON_EXIT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// An error that carries its own exit code, for failures that have no library error type.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The one-line message.
    pub message: String,
}

impl Failure {
    /// A usage error (exit 2, as for clap's own): a flag that is missing and not in archivectl.toml either.
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: USAGE,
            message: message.into(),
        }
        .into()
    }

    /// Invalid input with this message.
    pub fn invalid(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: INVALID_INPUT,
            message: message.into(),
        }
        .into()
    }
}

/// Argument and settings mistakes that code outside this module still raises as [`Failure::invalid`]: the
/// start of each message. They are usage errors (exit 2), like every other flag or setting that is missing,
/// conflicting or invalid.
const USAGE_MESSAGES: &[&str] = &[
    "give --key PATH",
    "--password and --password-file go with exactly one ARCHIVE_ID",
    "--part-size-mib and --concurrency must be at least 1",
    "--delete-remote needs the API key and secret",
    "--path ",
];

/// The service's base URL, once the client is made, for the "could not reach" line.
static SERVICE_URL: OnceLock<String> = OnceLock::new();

/// Remembers the service's base URL, so that a failure to reach it names it.
pub fn set_service_url(url: &str) {
    let _ = SERVICE_URL.set(url.to_string());
}

/// The exit code for a stop the pull pipeline was asked for.
pub fn stop_code(reason: archive_pull::StopReason) -> u8 {
    match reason {
        archive_pull::StopReason::Interrupt => INTERRUPTED,
        archive_pull::StopReason::Terminate => TERMINATED,
    }
}

fn storage_code(e: &storage_fetch::Error) -> u8 {
    match e {
        storage_fetch::Error::InvalidTarget(_) | storage_fetch::Error::InvalidRequest(_) => {
            INVALID_INPUT
        }
        _ => STORAGE,
    }
}

fn db_code(e: &archive_db::DbError) -> u8 {
    match e {
        archive_db::DbError::Create { .. } | archive_db::DbError::Export(_) => IO,
        archive_db::DbError::NotFound(_) | archive_db::DbError::PrivateKey => INVALID_INPUT,
        _ => LEDGER,
    }
}

/// The pull pipeline's errors (`None`: look further down the chain).
fn pull_code(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    use archive_pull::{PullError, RecordError, SettleError};
    use storage_fetch::PresignedError;
    let presigned = |e: &PresignedError| match e {
        // The body broke off: what the transport says (below) decides.
        PresignedError::Read { .. } | PresignedError::Client(_) => None,
        PresignedError::NoLength { .. } => Some(INVALID_INPUT),
        _ => Some(SERVICE),
    };
    if let Some(e) = cause.downcast_ref::<archive_pull::LeaseError>() {
        // A lost lease: the ledger says another worker holds the archive now.
        return Some(match e {
            archive_pull::LeaseError::Ledger { source, .. } => db_code(source),
            _ => LEDGER,
        });
    }
    if let Some(e) = cause.downcast_ref::<PullError>() {
        if let Some(reason) = e.stop_reason() {
            return Some(stop_code(reason));
        }
        return match e {
            PullError::Storage(e) => Some(storage_code(e)),
            PullError::Presigned(e) => presigned(e),
            PullError::PasswordUnknown { .. } => Some(INVALID_INPUT),
            _ => None,
        };
    }
    if let Some(e) = cause.downcast_ref::<PresignedError>() {
        return presigned(e);
    }
    if let Some(SettleError::NoClient) = cause.downcast_ref::<SettleError>() {
        return Some(USAGE);
    }
    if let Some(RecordError::Ledger(_)) = cause.downcast_ref::<RecordError>() {
        return Some(LEDGER);
    }
    match cause.downcast_ref::<archive_pull::RecheckError>() {
        Some(archive_pull::RecheckError::Read(e)) => return Some(db_code(e)),
        Some(archive_pull::RecheckError::NotReady { .. }) => return Some(INVALID_INPUT),
        _ => {}
    }
    None
}

/// The exit code for an error, from the first cause in its chain that we know.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            if f.code == INVALID_INPUT && USAGE_MESSAGES.iter().any(|m| f.message.starts_with(m)) {
                return USAGE;
            }
            return f.code;
        }
        if let Some(code) = pull_code(cause) {
            return code;
        }
        if let Some(e) = cause.downcast_ref::<KeyError>() {
            return match e {
                KeyError::PassphraseRequired | KeyError::WrongPassphrase => WRONG_SECRET,
                _ => INVALID_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<UnwrapError>() {
            return match e {
                UnwrapError::Decrypt | UnwrapError::BlockLength { .. } => WRONG_SECRET,
                _ => INVALID_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<ArchiveError>() {
            return match e {
                ArchiveError::NotMpegTs(_) => WRONG_SECRET,
                ArchiveError::Interrupted => INTERRUPTED,
                ArchiveError::Read(_) | ArchiveError::Write(_) => IO,
                _ => INVALID_INPUT,
            };
        }
        if let Some(e) = cause.downcast_ref::<opentok_rest::Error>() {
            return match e {
                opentok_rest::Error::Certificate(_) | opentok_rest::Error::InvalidArgument(_) => {
                    INVALID_INPUT
                }
                opentok_rest::Error::InvalidBaseUrl { .. } => INVALID_INPUT,
                opentok_rest::Error::Unreachable { .. } => UNREACHABLE,
                opentok_rest::Error::Connection(text) if !is_client_setup(text) => UNREACHABLE,
                _ => SERVICE,
            };
        }
        if let Some(e) = cause.downcast_ref::<storage_fetch::Error>() {
            return storage_code(e);
        }
        if let Some(e) = cause.downcast_ref::<archive_db::DbError>() {
            return db_code(e);
        }
        if cause.downcast_ref::<PasswordError>().is_some()
            || cause.downcast_ref::<CertError>().is_some()
            || cause.downcast_ref::<TsError>().is_some()
        {
            return INVALID_INPUT;
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return IO;
        }
    }
    INTERNAL
}

/// Whether a connection error is about setting up the HTTP client (a local problem), not reaching the service.
fn is_client_setup(text: &str) -> bool {
    text.starts_with("could not set up the HTTP client")
}

/// The line for a service that could not be reached: where, why, and what to check.
fn unreachable_line(text: &str) -> String {
    let url = SERVICE_URL
        .get()
        .map_or_else(|| "the service".to_string(), |u| u.clone());
    let lower = text.to_ascii_lowercase();
    let why = if lower.contains("connection refused") {
        "connection refused: nothing listens there (wrong host or port, or the service is down)"
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "DNS lookup failed: no such host"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "TLS failed: the server's certificate is not trusted or it does not speak HTTPS"
    } else {
        "the connection failed or broke"
    };
    let detail = text.rsplit(": ").next().unwrap_or(text);
    format!(
        "could not reach the service at {url}: {why} ({detail}); check --api-url (or [project] api_url), \
         the network and any proxy"
    )
}

/// Prints `error: ...` (the context chain on one line) and returns the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let line = err
        .chain()
        .map(|cause| match cause.downcast_ref::<opentok_rest::Error>() {
            Some(opentok_rest::Error::Connection(text)) if !is_client_setup(text) => {
                unreachable_line(text)
            }
            _ => cause.to_string(),
        })
        .collect::<Vec<_>>();
    // Drop causes already spelled out by the message above them.
    let mut parts: Vec<String> = Vec::new();
    for part in line {
        if !parts.last().is_some_and(|prev| prev.contains(&part)) {
            parts.push(part);
        }
    }
    eprintln!("error: {}", parts.join(": "));
    ExitCode::from(code_for(err))
}

/// The one line for a command given without its subcommand, from the help clap rendered: which command,
/// and the subcommands it takes.
fn missing_command_line(help: &str) -> String {
    let command = help
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with('[') && !w.starts_with('<'))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "archivectl".into());
    let subcommands: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    format!(
        "error: `{command}` needs a command: {} (see {command} --help)",
        subcommands.join(", ")
    )
}

/// Prints a command-line parsing error as one line (`error: ... (see --help)`) and returns exit 2; help and
/// version requests are printed in full as asked, with exit 0.
pub fn report_clap(err: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let rendered = err.render().to_string();
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        eprintln!("{}", missing_command_line(&rendered));
        return ExitCode::from(USAGE);
    }
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or("error: invalid arguments");
    let mut line = first.trim_end().to_string();
    if !line.starts_with("error: ") {
        line = format!("error: {line}");
    }
    // Whatever clap lists under the first line (the missing arguments), on the same line.
    let listed: Vec<&str> = lines
        .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:"))
        .map(str::trim)
        .collect();
    if !listed.is_empty() {
        line = format!("{line} {}", listed.join(", "));
    }
    let invalid = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let suggested = match err.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    if let Some(suggested) = suggested {
        line = format!("{line}; did you mean {suggested}?");
    } else if invalid.is_some_and(|a| a.starts_with("--private-key")) {
        // The Vonage application's key is an option of the commands that call the service; an archive's
        // private key is --key.
        line = format!("{line}; did you mean --key?");
    }
    eprintln!("{line} (see --help)");
    ExitCode::from(USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's exit-code table lists exactly the codes archivectl has.
    #[test]
    fn the_guides_table_lists_every_code() {
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-guide.md"),
        )
        .unwrap_or_default();
        let table = guide.split("## Exit codes").nth(1).unwrap_or_default();
        let table = table.split("\n## ").next().unwrap_or_default();
        let mut documented: Vec<u8> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        documented.sort_unstable();
        let codes = [
            0,
            INTERNAL,
            USAGE,
            INVALID_INPUT,
            WRONG_SECRET,
            IO,
            SERVICE,
            STORAGE,
            LEDGER,
            UNREACHABLE,
            INTERRUPTED,
            TERMINATED,
        ];
        assert_eq!(documented, codes);
    }

    #[test]
    fn settings_mistakes_raised_elsewhere_are_usage_errors() {
        for message in USAGE_MESSAGES {
            let err = Failure::invalid(format!("{message} (for instance)"));
            assert_eq!(code_for(&err), USAGE, "{message}");
        }
        assert_eq!(code_for(&Failure::invalid("not a key")), INVALID_INPUT);
    }
}
