//! The archivectl ledger: every archive the service told us about, its wrapped password exactly as received,
//! its status history, and what we did with it — in one SQLite file (WAL), shared safely by the callback
//! receiver, `archivectl sync` and `archivectl pull` running at the same time.
//!
//! * [`Ledger`] — one connection: open (creating and migrating, [`schema`]), record events, record what a
//!   pull or a remote delete did, certificates and when each was active, and every query ([`query`]).
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
//!   atomic statement, renewed by its owner only, taken over once expired.
//!
//! The ledger never holds an AES key or IV, a private key or a passphrase: only the RSA-wrapped password the
//! service sends, which is useless without the private key. It is sync code with no async runtime.
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
