//! The pull pipeline of archivectl as a library: an archive's object in a storage target (or, for an archive
//! the service keeps in its own cloud, its presigned URL) is downloaded and decrypted as it arrives, verified
//! (MPEG-TS throughout, the object's length, a valid PKCS#7 tail), measured and hashed, then renamed into
//! place; then the ledger records it, and only then are the deletions asked for made.
//!
//! * [`pull_archive`]: a [`Source`] feeds **one** decrypt-verify-write loop with **one** cancellation point
//!   ([`CancelToken`]) into a resumable output (archive-core's `ResumableOutput`, bound to the archive, the
//!   object and the key); killed or cut off, the same call resumes from the last checkpoint.
//! * [`pull_archive_to_bucket`]: the same, into a bucket or container ([`BucketOutput`]) as a multipart
//!   upload completed only once the whole output is verified (not resumable: aborted on any failure).
//! * [`KeyRing`]: the private keys a password may be wrapped for (certificate rotation), tried in turn.
//! * [`settle()`]: verify → ledger → object delete → remote delete, in that order; [`record_failure`].
//! * [`choose_password`] / [`PasswordInputs`]: which password a pull uses (`--password`, else the ledger,
//!   else the REST API, which settles conflicts) and whether the archive is ready to pull.
//! * [`ask_service`], [`terminal_from_callbacks`], [`ready`], [`already_pulled`]: the REST API, not a
//!   callback, decides a password that does not fit and a terminal status only a callback reported.
//! * [`claim`] / [`Leased`]: pull workers that share the work — a lease on each archive in the ledger,
//!   renewed while pulling, checked ([`Leased::fence`]) before anything is recorded or deleted.
//! * [`Observer`] / [`Progress`]: what a caller is told (this crate draws no progress bar and prints nothing).
//! * [`PullError`], [`KeyRingError`], [`SettleError`]: typed, so a caller chooses its exit code from them.
//!
//! Sans-IO and I/O: the loop moves bytes and does no I/O of its own; the outputs ([`PullOptions::out_dir`])
//! are file I/O, the sources are network I/O (through storage-fetch), the ledger is SQLite (archive-db).
//!
//! ```
//! use archive_core::{PasswordBlob, oaep};
//! use archive_pull::{CancelToken, KeyRing, StopReason};
//!
//! let mut rng = rand::rng();
//! let key = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
//! let blob = PasswordBlob::generate(&mut rng);
//! let password = oaep::wrap_password(&key.to_public_key(), &blob, &mut rng).unwrap();
//!
//! let ring = KeyRing::new().with_key("archive-key.pem", move || Ok(key.clone()));
//! assert_eq!(ring.unwrap_password(&password, &()).unwrap(), blob);
//!
//! let cancel = CancelToken::new();
//! cancel.cancel(StopReason::Terminate);
//! assert_eq!(cancel.reason(), Some(StopReason::Terminate));
//! ```
#![warn(missing_docs)]

mod bucket;
mod cancel;
mod error;
mod keyring;
mod lease;
mod object_hash;
mod observer;
mod output;
mod password;
mod pipeline;
mod recheck;
mod settle;
mod sha256sum;
mod sink;

pub use bucket::{BucketOutput, pull_archive_to_bucket};
pub use cancel::{CancelToken, StopReason};
pub use error::PullError;
pub use keyring::{KeyRing, KeyRingError};
pub use lease::{Claimed, LeaseError, LeaseOptions, Leased, WorkerId, claim};
pub use observer::{Observer, Progress};
pub use password::{LedgerFacts, PasswordChoice, PasswordInputs, PasswordSource, choose_password};
pub use pipeline::{PullOptions, Pulled, Source, pull_archive};
pub use recheck::{
    RecheckError, already_pulled, ask_service, not_ready, ready, terminal_from_callbacks,
};
pub use settle::{
    Deletions, Origin, RecordError, SettleError, lock, record_failure, record_known, settle,
};
pub use sha256sum::{Sha256sumCheck, check_sha256sum, decode_sha256sum};

/// The private key type the [`KeyRing`] holds (RustCrypto's `rsa`, as archive-core uses).
pub use rsa::PrivateKey as RsaPrivateKey;

/// An error of the caller's own (loading a key, say), kept with its type for the caller to look at.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
