//! The archivectl ledger: every archive the service told us about, its wrapped password exactly as received,
//! its status history, and what we did with it — in one SQLite file (WAL; the embedded default), or in a
//! PostgreSQL database when several machines share the work. The callback receivers, `archivectl sync` and
//! the `pull` workers use it at the same time.
//!
//! * [`Ledger`] — one connection: open (creating and migrating, [`schema`]), record events, record what a
//!   pull or a remote delete did, certificates and when each was active, and every query ([`query`]).
//!   [`Ledger::open`] opens a SQLite file; [`Ledger::open_location`] opens a [`LedgerLocation`] — a SQLite
//!   path or a PostgreSQL database ([`PostgresConfig`], read from a `postgres://` URL without its password,
//!   which is given apart as a `secrecy` string).
//! * [`IncomingEvent`] — a callback body (or an archive listed by sync) with where and when it came from.
//!   Archive status callbacks are parsed with `opentok-rest`'s model; any other JSON object is kept raw.
//! * The upsert rules ([`upsert`], [`status`]): the status only moves forward (a late `stopped` after
//!   `uploaded` is history, not applied); a known password is never replaced by an empty or missing one, and a
//!   different one is kept and flagged as a conflict; size and duration are never overwritten by 0;
//!   duplicates change nothing.
//! * [`GroupWriter`] — many submitters, one writer thread, one transaction and one fsync per batch; each
//!   submitter learns through its [`Completion`] (a `Future`, or [`Completion::wait`]) when its event is
//!   durable.
//! * [`leases`]: several `pull` workers share the work — a lease per archive being pulled, claimed in one
//!   atomic statement, renewed by its owner only, taken over once expired ([`Ledger::claim_next`] picks the
//!   next archive with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL).
//!
//! ## Two back ends, one API
//!
//! Every method works the same on both, and one conformance suite (`tests/conformance`) runs every rule,
//! migration, query, writer, lease and concurrency check on a SQLite file and on a fresh PostgreSQL
//! database. Underneath is a small SQL layer of our own (`src/db`): one connection enum, statements written
//! once with `?N` placeholders (sent to PostgreSQL as `$N`), values bound and rows read back owned, explicit
//! transactions; dialect-specific SQL only where the dialects really differ (the schema's DDL, a JSON
//! aggregate, SQLite's pragmas, PostgreSQL's advisory locks). Why not an ORM or sqlx: the SQL is plain and
//! nearly all of it portable, the SQLite side stays the synchronous rusqlite it was, and no async runtime is
//! forced on callers.
//!
//! * **SQLite**: WAL, `synchronous=FULL`, `BEGIN IMMEDIATE` writes retried while busy; the schema version is
//!   `PRAGMA user_version`.
//! * **PostgreSQL** (rust-postgres' sync client): each [`Ledger`] owns one connection served by a thread of
//!   its own — rust-postgres' `Client` runs a runtime of its own and panics if called from a thread that is
//!   driving a tokio runtime, which the receiver and `pull` are — so calling the ledger from async code is
//!   safe. Every connection sets `synchronous_commit = on`; writes are READ COMMITTED transactions, with a
//!   transaction-level advisory lock per archive recorded (taken in sorted order, so batches never
//!   deadlock) so that two receivers merging reports of one archive do so one after the other. The schema
//!   lives in the database's current schema with its own `schema_version` table, migrated once under an
//!   advisory lock. TLS is rustls (ring) with the system trust store, as `sslmode`
//!   (disable/prefer/require/verify-ca/verify-full) says. A server that is away makes calls fail with
//!   [`DbError::Unavailable`] (a receiver answers 503); the next call connects again, and a transaction whose
//!   connection broke before its COMMIT is run once more on a new one. A login the server refuses is
//!   [`DbError::Refused`].
//!
//! The ledger never holds an AES key or IV, a private key or a passphrase: only the RSA-wrapped password the
//! service sends, which is useless without the private key. It is sync code with no async runtime of its own.
//!
//! ```
//! use archive_db::{ArchiveFilter, IncomingEvent, Ledger, PasswordOutcome};
//! use opentok_rest::model::ArchiveStatus;
//!
//! let mut ledger = Ledger::open_in_memory().unwrap();
//! let uploaded = br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"uploaded","size":4096,"password":"ZTQy"}"#;
//! let late_stop = br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"stopped","size":0,"password":""}"#;
//! ledger.record_event(&IncomingEvent::from_callback(uploaded, "cb").unwrap()).unwrap();
//! let outcome = ledger.record_event(&IncomingEvent::from_callback(late_stop, "cb").unwrap()).unwrap();
//! let archive = outcome.archive.unwrap();
//! assert!(!archive.status_applied);
//! assert_eq!(archive.password, PasswordOutcome::KeptOverMissing);
//!
//! let record = ledger.archive("b40ef09b-3811-4726-b508-e41a0f96c68f").unwrap().unwrap();
//! assert_eq!((record.status, record.size, record.password.as_deref()), (ArchiveStatus::Uploaded, 4096, Some("ZTQy")));
//! assert_eq!(ledger.status_history("b40ef09b-3811-4726-b508-e41a0f96c68f").unwrap().len(), 2);
//! assert_eq!(ledger.pending().unwrap().len(), 1);
//! ```
#![warn(missing_docs)]

mod copy;
mod db;
mod digest;
mod error;
mod event;
pub mod leases;
mod ledger;
mod lenient;
mod location;
mod probe;
mod pulls;
pub mod query;
pub mod schema;
pub mod status;
mod text;
pub mod upsert;
mod writer;

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

pub use copy::{COPIED_TABLES, CopiedTable, TableSum};
pub use error::{BodyError, DbError};
pub use event::{EventAuth, EventKind, EventSource, IncomingEvent, UNPARSED_ARCHIVE};
pub use leases::{Claim, Lease};
pub use ledger::{Backend, CertificateRecord, Ledger, PullRecord};
pub use location::{LedgerLocation, PostgresConfig, SslMode, is_postgres_url};
pub use pulls::{Deleted, Deletion, PullAttempt, PullCounts};
pub use query::{ArchiveDetails, ArchiveFilter, ArchiveRecord, RawEvent, StatusChange};
pub use text::{escape_controls, neutralise_formula};
pub use upsert::{ArchiveOutcome, EventOutcome, PasswordOutcome};
pub use writer::{Completion, GroupWriter, Submitter, WriterOptions, WriterStats};

/// Times in the ledger: RFC 3339, UTC, milliseconds — fixed width, so they sort as text.
const STAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `at` as the ledger writes times.
///
/// ```
/// let t = time::macros::datetime!(2013-11-12 01:56:20.5 UTC);
/// assert_eq!(archive_db::stamp(t), "2013-11-12T01:56:20.500Z");
/// ```
pub fn stamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(STAMP)
        .unwrap_or_default()
}

/// A time of the service (milliseconds since the Unix epoch) as the ledger writes times; `None` for 0 (the
/// service's "not set") or a value out of range.
///
/// ```
/// assert_eq!(archive_db::stamp_ms(1384221380000).as_deref(), Some("2013-11-12T01:56:20.000Z"));
/// assert_eq!(archive_db::stamp_ms(0), None);
/// ```
pub fn stamp_ms(ms: i64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(stamp)
}

/// The `secrecy` crate the PostgreSQL password is given in ([`PostgresConfig::with_password`]).
pub use secrecy;

/// Runs `f` again while SQLite says busy or locked (after its own `busy_timeout` wait), backing off.
pub(crate) fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut delay = Duration::from_millis(2);
    for _ in 0..20 {
        match f() {
            Err(e) if error::is_busy(&e) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
    f()
}
