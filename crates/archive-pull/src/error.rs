//! The errors of a pull, typed so that the caller chooses what to do (a CLI: the exit code) from what
//! happened; each message names the problem, and the underlying cause stays in the `source` chain.

use std::path::PathBuf;

use archive_core::archive::ArchiveError;
use archive_core::oaep::UnwrapError;
use archive_core::password::PasswordError;

use crate::{BoxError, KeyRingError, StopReason};

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The storage target failed (the object cannot be found, read or deleted).
    #[error(transparent)]
    Storage(#[from] storage_fetch::Error),
    /// The presigned URL of an archive kept in the service's cloud failed.
    #[error(transparent)]
    Presigned(#[from] storage_fetch::PresignedError),
    /// The archive is encrypted and no password was given.
    #[error(
        "archive {id} is encrypted but its password is unknown: give the API key and secret so it can be read from the service"
    )]
    PasswordUnknown {
        /// The archive.
        id: String,
    },
    /// The password could not be unwrapped into the archive's key by any key of the ring.
    #[error(transparent)]
    Unwrap(#[from] KeyRingError),
    /// The output could not be opened or written.
    #[error("cannot write {path}")]
    Write {
        /// The output.
        path: PathBuf,
        /// Why: an [`ArchiveError`] (the resumable output) or a [`std::io::Error`] (the plain one).
        #[source]
        source: BoxError,
    },
    /// The decryption or the verification refused the archive (a wrong key, not MPEG-TS throughout, a bad
    /// length or padding), or writing what it decrypted failed.
    #[error("cannot decrypt {what}")]
    Decrypt {
        /// The object or URL.
        what: String,
        /// Why.
        #[source]
        source: ArchiveError,
    },
    /// The disk is full: nothing of the output was kept.
    #[error(
        "cannot decrypt {what}: the disk of {path} is full; nothing of it was kept: free space and run the same command again"
    )]
    DiskFull {
        /// The object or URL.
        what: String,
        /// The output.
        path: PathBuf,
        /// The write that failed.
        #[source]
        source: ArchiveError,
    },
    /// The download failed before its end; what was decrypted is checkpointed for the next run.
    #[error(
        "download failed; what was decrypted is kept: run the same command again to resume {path}"
    )]
    Download {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// Cancelled ([`crate::CancelToken`]); what was decrypted is checkpointed for the next run.
    #[error("interrupted; run the same command again to resume {path}")]
    Interrupted {
        /// Why.
        reason: StopReason,
        /// The output.
        path: PathBuf,
    },
    /// Cancelled while an unencrypted archive (not resumable) was downloading: nothing of it is kept.
    #[error("interrupted; nothing of {path} is kept")]
    InterruptedDiscarded {
        /// Why.
        reason: StopReason,
        /// The output.
        path: PathBuf,
    },
    /// Cancelled before it started.
    #[error("not started: interrupted")]
    NotStarted {
        /// Why.
        reason: StopReason,
    },
}

impl PullError {
    /// Whether the pull failed because of the archive's password: it does not unwrap with the key, is not a
    /// valid blob, or decrypts the archive to something that is not MPEG-TS. Another password (the REST
    /// API's, when a callback's did not fit) may do better.
    pub fn is_password_failure(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if e.is::<UnwrapError>()
                || e.is::<PasswordError>()
                || matches!(
                    e.downcast_ref::<ArchiveError>(),
                    Some(ArchiveError::NotMpegTs(_))
                )
            {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// Whether the pull failed one of its checks (MPEG-TS throughout, the length, the padding): worth
    /// recording as a failed pull. Other failures (interrupted, the network, the disk) are not.
    pub fn is_failed_check(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = next {
            if matches!(
                e.downcast_ref::<ArchiveError>(),
                Some(ArchiveError::NotMpegTs(_) | ArchiveError::Unverified(_))
            ) {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// Why it was cancelled, if it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self {
            PullError::Interrupted { reason, .. }
            | PullError::InterruptedDiscarded { reason, .. }
            | PullError::NotStarted { reason } => Some(*reason),
            _ => None,
        }
    }
}
