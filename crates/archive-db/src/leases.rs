//! Leases: how several `pull` workers (processes on one machine, or machines sharing a ledger) split the
//! archives between them, so that each archive is pulled to completion once and deleted once.
//!
//! A worker *claims* an archive before pulling it ([`Ledger::claim_lease`]): one atomic statement inserts the
//! lease, or takes over one that has expired (a crashed worker's) or that is already the caller's, and
//! returns the row only if the caller now holds it. While pulling, the worker *renews* it
//! ([`Ledger::renew_lease`]), which only its owner can do; at the end (success or failure) it *releases* it
//! ([`Ledger::release_lease`]). A worker that cannot renew has lost the lease and must stop without
//! recording or deleting anything.
//!
//! Times are integer milliseconds since the Unix epoch, passed in by the caller (never the database's own
//! clock), and every statement is portable SQL (`ON CONFLICT ... DO UPDATE ... WHERE`, `RETURNING`), so the
//! same text runs on PostgreSQL. On SQLite each statement runs in a `BEGIN IMMEDIATE` transaction. A worker
//! that wants "any archive to do" asks [`Ledger::claim_next`], which on PostgreSQL picks it with
//! `SELECT ... FOR UPDATE SKIP LOCKED`.
//!
//! ```
//! use std::time::Duration;
//! use archive_db::{Claim, IncomingEvent, Ledger};
//! use time::OffsetDateTime;
//!
//! let mut ledger = Ledger::open_in_memory().unwrap();
//! let body = br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"uploaded","password":"ZTQy"}"#;
//! ledger.record_event(&IncomingEvent::from_callback(body, "cb").unwrap()).unwrap();
//! let id = "b40ef09b-3811-4726-b508-e41a0f96c68f";
//! let now = OffsetDateTime::now_utc();
//! let minute = Duration::from_secs(60);
//! assert!(matches!(ledger.claim_lease(id, "worker-a", now, minute).unwrap(), Claim::Acquired(_)));
//! assert!(matches!(ledger.claim_lease(id, "worker-b", now, minute).unwrap(), Claim::HeldBy(_)));
//! // Two minutes later, worker-a's lease has expired: worker-b takes it over.
//! let later = now + Duration::from_secs(120);
//! assert!(matches!(ledger.claim_lease(id, "worker-b", later, minute).unwrap(), Claim::Acquired(_)));
//! assert!(ledger.renew_lease(id, "worker-a", later, minute).unwrap().is_none());
//! assert!(ledger.release_lease(id, "worker-b").unwrap());
//! ```

use std::time::Duration;

use time::OffsetDateTime;

use crate::DbError;
use crate::db::{Dialect, Row, SqlError, params};
use crate::ledger::Ledger;

/// A lease on an archive, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    /// The archive.
    pub archive_id: String,
    /// The worker that holds it.
    pub owner: String,
    /// When it was claimed (milliseconds since the Unix epoch).
    pub acquired_at_ms: i64,
    /// When it expires unless renewed (milliseconds since the Unix epoch).
    pub expires_at_ms: i64,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease (new, taken over from an expired one, or already its own).
    Acquired(Lease),
    /// Another worker holds it and it has not expired.
    HeldBy(Lease),
}

/// Milliseconds since the Unix epoch.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn plus(at: OffsetDateTime, duration: Duration) -> i64 {
    millis(at).saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

fn lease_row(r: &Row) -> Result<Lease, SqlError> {
    Ok(Lease {
        archive_id: r.get(0)?,
        owner: r.get(1)?,
        acquired_at_ms: r.get(2)?,
        expires_at_ms: r.get(3)?,
    })
}

/// Whether the database refused the row for its foreign key (the archive is not in the ledger).
fn is_foreign_key(e: &SqlError) -> bool {
    match e {
        SqlError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
        }
        SqlError::Postgres(e) => {
            e.code() == Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
        }
        _ => false,
    }
}

const LEASE_COLUMNS: &str = "archive_id, owner, acquired_at, expires_at";

impl Ledger {
    /// Claims archive `id` for worker `owner` at `now`, for `duration`: the lease is taken if nobody holds
    /// it, if its holder's lease expired (at or before `now`), or if `owner` already holds it (then it is
    /// extended). One atomic statement: of several workers claiming at once, exactly one gets it (on
    /// PostgreSQL the statement waits for a concurrent claim's row lock and then sees its outcome).
    pub fn claim_lease(
        &mut self,
        id: &str,
        owner: &str,
        now: OffsetDateTime,
        duration: Duration,
    ) -> Result<Claim, DbError> {
        let (now_ms, until) = (millis(now), plus(now, duration));
        let got = self.conn.write(|tx| {
            let got = tx.query_opt(
                "INSERT INTO leases (archive_id, owner, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (archive_id) DO UPDATE
                     SET owner = excluded.owner, acquired_at = excluded.acquired_at,
                         expires_at = excluded.expires_at
                     WHERE leases.expires_at <= ?3 OR leases.owner = ?2
                 RETURNING archive_id, owner, acquired_at, expires_at",
                &params![id, owner, now_ms, until],
            )?;
            Ok(match got {
                Some(row) => Claim::Acquired(lease_row(&row)?),
                None => {
                    let held = tx.query_one(
                        &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE archive_id = ?1"),
                        &params![id],
                    )?;
                    Claim::HeldBy(lease_row(&held)?)
                }
            })
        });
        match got {
            Err(e) if is_foreign_key(&e) => Err(DbError::NotFound(id.to_owned())),
            other => other.map_err(DbError::sql("claim a lease")),
        }
    }

    /// Claims, for worker `owner` at `now` and for `duration`, the oldest of the archives [`Ledger::pending`]
    /// would list that nobody holds, whose lease has expired, or that `owner` holds already — `None` when
    /// there is none.
    /// On PostgreSQL the candidate is chosen with `SELECT ... FOR UPDATE SKIP LOCKED`, so workers claiming at
    /// once each skip the archives another is claiming instead of queueing behind it; on SQLite the write lock
    /// serialises them. Either way the claim itself is [`Ledger::claim_lease`]'s statement, in the same
    /// transaction: two workers never hold one archive.
    pub fn claim_next(
        &mut self,
        owner: &str,
        now: OffsetDateTime,
        duration: Duration,
    ) -> Result<Option<Lease>, DbError> {
        let (now_ms, until) = (millis(now), plus(now, duration));
        let lock = match self.conn.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE OF a SKIP LOCKED",
        };
        let pick = format!(
            "SELECT a.id FROM archives a LEFT JOIN leases l ON l.archive_id = a.id
             WHERE {} AND (l.archive_id IS NULL OR l.expires_at <= ?1 OR l.owner = ?2)
             ORDER BY a.created_at, a.id LIMIT 1 {lock}",
            crate::query::PENDING.as_str()
        );
        self.conn
            .write(|tx| {
                let Some(row) = tx.query_opt(&pick, &params![now_ms, owner])? else {
                    return Ok(None);
                };
                let id: String = row.get(0)?;
                tx.query_opt(
                    "INSERT INTO leases (archive_id, owner, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (archive_id) DO UPDATE
                         SET owner = excluded.owner, acquired_at = excluded.acquired_at,
                             expires_at = excluded.expires_at
                         WHERE leases.expires_at <= ?3 OR leases.owner = ?2
                     RETURNING archive_id, owner, acquired_at, expires_at",
                    &params![&id, owner, now_ms, until],
                )?
                .map(|r| lease_row(&r))
                .transpose()
            })
            .map_err(DbError::sql("claim the next archive"))
    }

    /// Renews `owner`'s lease on archive `id` until `now + duration`. `None`: `owner` does not hold it any
    /// more (it was taken over after expiring, or released) — the worker has lost it and must stop.
    pub fn renew_lease(
        &mut self,
        id: &str,
        owner: &str,
        now: OffsetDateTime,
        duration: Duration,
    ) -> Result<Option<Lease>, DbError> {
        let until = plus(now, duration);
        self.conn
            .write(|tx| {
                tx.query_opt(
                    "UPDATE leases SET expires_at = ?3 WHERE archive_id = ?1 AND owner = ?2
                     RETURNING archive_id, owner, acquired_at, expires_at",
                    &params![id, owner, until],
                )?
                .map(|r| lease_row(&r))
                .transpose()
            })
            .map_err(DbError::sql("renew a lease"))
    }

    /// Releases `owner`'s lease on archive `id`; `false` if it did not hold it (any more).
    pub fn release_lease(&mut self, id: &str, owner: &str) -> Result<bool, DbError> {
        self.conn
            .write(|tx| {
                let n = tx.execute(
                    "DELETE FROM leases WHERE archive_id = ?1 AND owner = ?2",
                    &params![id, owner],
                )?;
                Ok::<_, SqlError>(n == 1)
            })
            .map_err(DbError::sql("release a lease"))
    }

    /// The lease on archive `id`, expired or not, if there is one.
    pub fn lease(&self, id: &str) -> Result<Option<Lease>, DbError> {
        self.conn
            .query_opt(
                &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE archive_id = ?1"),
                &params![id],
            )
            .and_then(|r| r.map(|r| lease_row(&r)).transpose())
            .map_err(DbError::sql("read a lease"))
    }

    /// Every lease (expired ones included), by archive id.
    pub fn leases(&self) -> Result<Vec<Lease>, DbError> {
        self.conn
            .query(
                &format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY archive_id"),
                &[],
            )
            .and_then(|rows| rows.iter().map(lease_row).collect())
            .map_err(DbError::sql("read the leases"))
    }
}

// The lease rules are tested on both back ends in tests/conformance/leases.rs.
