//! What can go wrong with the ledger. Messages name files (or the database's URL without its password),
//! archive ids and the database's reason; never a password.

use std::path::PathBuf;

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The ledger file could not be created or opened.
    #[error("cannot open the ledger {path}: {source}")]
    Open {
        /// The ledger file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// The ledger file (or its directory) could not be created.
    #[error("cannot create the ledger {path}: {source}")]
    Create {
        /// The ledger file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer archivectl: its schema is unknown here, so nothing is touched.
    #[error(
        "the ledger has schema version {found}, newer than the {known} this archivectl knows: upgrade archivectl"
    )]
    SchemaTooNew {
        /// The file's `user_version`.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// The file is an SQLite database of another program (or one we cannot tell is a ledger): it is refused
    /// and left exactly as it was, so that a wrong `--ledger` path never gets the ledger's tables added.
    #[error(
        "{path} is not an archivectl ledger ({reason}); it was left unchanged: give the path of a ledger, or of a \
         new file"
    )]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// What it is instead, e.g. "its tables are foo".
        reason: String,
    },
    /// A statement failed.
    #[error("ledger: cannot {action}: {source}")]
    Sqlite {
        /// What was being done, e.g. "record an event".
        action: &'static str,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// Something that holds a private key was offered as a certificate: the ledger never stores one.
    #[error("refusing to store a private key in the ledger (give the certificate only)")]
    PrivateKey,
    /// The archive is not in the ledger.
    #[error("archive {0} is not in the ledger")]
    NotFound(String),
    /// A value read back from the file is not what the schema allows (the file was edited by hand?).
    #[error("the ledger holds an invalid value: {0}")]
    Corrupt(String),
    /// Export could not write its output.
    #[error("cannot write the export: {0}")]
    Export(#[source] std::io::Error),
    /// The group-commit writer failed to commit a batch; none of its events were recorded.
    #[error("the ledger could not commit: {0}")]
    Commit(String),
    /// An archive id that is not of the service's form: no row is created for it.
    #[error("{0}")]
    InvalidArchiveId(#[from] opentok_rest::archive_id::InvalidArchiveId),
    /// The group-commit writer has stopped (its thread ended), so the event was not recorded.
    #[error("the ledger writer has stopped; the event was not recorded")]
    WriterStopped,
    /// A PostgreSQL statement failed (the server's message and SQLSTATE).
    #[error("ledger: cannot {action}: {}", crate::db::postgres::describe(source))]
    Postgres {
        /// What was being done, e.g. "record an event".
        action: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The ledger's database cannot be reached (PostgreSQL is down, restarting, or the network is away), or the
    /// connection broke: nothing was done. Worth retrying later: the next call connects again.
    #[error("the ledger database is unavailable: cannot {action}: {reason}")]
    Unavailable {
        /// What was being done.
        action: &'static str,
        /// Why, as the client says (never a password).
        reason: String,
    },
    /// The PostgreSQL server refused the ledger's login (a wrong password, no such database or role, no
    /// right to connect): a configuration to fix, not a database that is away.
    #[error("the PostgreSQL server refused the ledger's connection: {0}")]
    Refused(String),
    /// A ledger location (a PostgreSQL URL) that cannot be used as given.
    #[error("invalid ledger location: {0}")]
    InvalidLocation(String),
    /// The PostgreSQL database holds tables of something else: it was left unchanged.
    #[error(
        "the PostgreSQL database {location} is not an archivectl ledger ({reason}); it was left unchanged: give \
         an empty database, or one of a ledger"
    )]
    NotALedgerDatabase {
        /// The database's URL (without a password).
        location: String,
        /// What it holds instead.
        reason: String,
    },
}

impl DbError {
    /// Whether the database could not be reached or the connection broke ([`DbError::Unavailable`]): a
    /// server answers such a request with 503, and a later retry may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether running the transaction again may succeed (SQLite busy, a PostgreSQL deadlock or
    /// serialization failure).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Postgres { source, .. } => crate::db::postgres::is_retryable(source),
            Self::Sqlite { source, .. } => is_busy(source),
            _ => false,
        }
    }

    /// The SQL layer's error this came from (for a retryable or unavailable one, see
    /// [`DbError::is_retryable`] and [`DbError::is_unavailable`]).
    pub(crate) fn into_retryable(self) -> crate::db::SqlError {
        match self {
            Self::Postgres { source, .. } => crate::db::SqlError::Postgres(source),
            Self::Sqlite { source, .. } => crate::db::SqlError::Sqlite(source),
            Self::Unavailable { reason, .. } => crate::db::SqlError::Unavailable(reason),
            other => crate::db::SqlError::Unavailable(other.to_string()),
        }
    }

    /// Whether SQLite said the database was busy or locked (another process held the write lock too long).
    pub fn is_busy(&self) -> bool {
        match self {
            Self::Open { source, .. } | Self::Sqlite { source, .. } => is_busy(source),
            _ => false,
        }
    }
}

/// Whether a rusqlite error is SQLITE_BUSY or SQLITE_LOCKED.
pub(crate) fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Why a callback body cannot be recorded. The server answers these with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not UTF-8 text.
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    /// Not JSON.
    #[error("the body is not JSON: {0}")]
    InvalidJson(String),
    /// JSON, but not an object (every callback of the service is one).
    #[error("the body is JSON but not an object")]
    NotAnObject,
    /// An archive status callback that lacks what every archive has (an `id`, a `status`).
    #[error("not a valid archive status callback: {0}")]
    InvalidArchive(String),
    /// An archive status callback without an `id`.
    #[error("an archive status callback without an \"id\" (the archive's id is required)")]
    MissingId,
    /// An archive status callback whose `id` is not of the service's form.
    #[error("not a valid archive status callback: {0}")]
    InvalidArchiveId(String),
}
