//! Exit codes, and turning an error into one line on stderr.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | an unexpected failure (a bug: please report it) |
//! | 2 | usage: unknown command, missing or conflicting flags |
//! | 3 | invalid input: a file that is not a key, certificate, password or archive, or is damaged |
//! | 4 | wrong secret: the passphrase, private key or password does not fit |
//! | 5 | I/O: a file cannot be read or written |
//! | 6 | the service answered with an error |
//! | 7 | the storage target answered with an error |
//! | 8 | the ledger: it cannot be opened (not a ledger, or written by a newer archivectl) or written |

use std::process::ExitCode;

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
/// Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

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

/// Exit code after SIGTERM or SIGHUP (128 + SIGTERM).
pub const TERMINATED: u8 = 143;

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

/// Prints `error: ...` (the context chain on one line) and returns the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let line = err.chain().map(ToString::to_string).collect::<Vec<_>>();
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
