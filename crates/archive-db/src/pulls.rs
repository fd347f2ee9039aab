//! What `pull` itself records beyond the archive's row: each attempt's outcome (verified, or failed and why,
//! with the MPEG-TS inspection's counts) and each deletion it made, one row per thing deleted (the object in
//! the storage target, the service's record), so the ledger says exactly what is gone and what stays.

use time::OffsetDateTime;

use crate::db::{SqlError, params};
use crate::ledger::{Ledger, PullRecord};
use crate::{DbError, stamp};

/// The MPEG-TS inspection's counts of a pulled output, as the ledger keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PullCounts {
    /// Bytes of the output.
    pub bytes: u64,
    /// Continuity-counter errors (recorded and shown; they do not fail the verification).
    pub continuity_errors: u64,
    /// Times the MPEG-TS lost sync (any fails the verification).
    pub sync_losses: u64,
}

/// One pull attempt, as [`Ledger::pull_attempts`] reads it back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PullAttempt {
    /// When it ended (RFC 3339, UTC).
    pub at: String,
    /// `verified` or `failed`.
    pub outcome: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The output (verified pulls).
    pub local_path: Option<String>,
    /// The inspection's counts (verified pulls).
    pub counts: Option<PullCounts>,
}

/// What a deletion removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The encrypted object in the project's storage target (`pull --delete-object`).
    Object,
    /// The archive's record at the service, through its REST API (`pull --delete-remote`).
    ServiceRecord,
}

impl Deleted {
    /// The name stored in the ledger: `object` or `service_record`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::ServiceRecord => "service_record",
        }
    }
}

/// One deletion, as [`Ledger::deletions`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Deletion {
    /// `object` or `service_record`.
    pub what: String,
    /// What exactly: the object's key, or the service's base URL.
    pub target: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

impl Ledger {
    /// Records, in one durable transaction, that the archive was pulled to `pull.local_path` and verified
    /// (as [`Ledger::record_pull`] does) and the attempt with its inspection counts. Only once this returns may
    /// anything be deleted.
    pub fn record_verified_pull(
        &mut self,
        id: &str,
        pull: &PullRecord,
        counts: PullCounts,
    ) -> Result<(), DbError> {
        let path = pull.local_path.to_string_lossy().into_owned();
        let verified = stamp(pull.verified_at);
        let n = self
            .conn
            .write(|tx| {
                let n = tx.execute(
                    "UPDATE archives SET local_path = ?2, local_sha256 = ?3, measured_duration = ?4, verified_at = ?5
                     WHERE id = ?1",
                    &params![id, &path, &pull.sha256, pull.measured_duration, &verified],
                )?;
                if n == 1 {
                    tx.execute(
                        "INSERT INTO pull_attempts (archive_id, at, outcome, local_path, bytes, continuity_errors,
                                                    sync_losses)
                         VALUES (?1, ?2, 'verified', ?3, ?4, ?5, ?6)",
                        &params![
                            id,
                            &verified,
                            &path,
                            counts.bytes as i64,
                            counts.continuity_errors as i64,
                            counts.sync_losses as i64
                        ],
                    )?;
                }
                Ok::<_, SqlError>(n)
            })
            .map_err(DbError::sql("record the pull"))?;
        if n == 0 {
            return Err(DbError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Records a pull that failed a check (wrong key, not MPEG-TS throughout, another length, bad padding), and
    /// why; the archive stays pending.
    pub fn record_failed_pull(
        &mut self,
        id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<(), DbError> {
        let at = stamp(at);
        self.conn
            .write(|tx| {
                tx.execute(
                    "INSERT INTO pull_attempts (archive_id, at, outcome, reason)
                     SELECT id, ?2, 'failed', ?3 FROM archives WHERE id = ?1",
                    &params![id, &at, reason],
                )
            })
            .map_err(DbError::sql("record the failed pull"))
            .and_then(|n| match n {
                0 => Err(DbError::NotFound(id.to_owned())),
                _ => Ok(()),
            })
    }

    /// Every pull attempt of the archive, oldest first.
    pub fn pull_attempts(&self, id: &str) -> Result<Vec<PullAttempt>, DbError> {
        self.conn
            .query(
                "SELECT at, outcome, reason, local_path, bytes, continuity_errors, sync_losses
                 FROM pull_attempts WHERE archive_id = ?1 ORDER BY id",
                &params![id],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        let bytes: Option<i64> = r.get(4)?;
                        let counts = match bytes {
                            Some(bytes) => Some(PullCounts {
                                bytes: bytes as u64,
                                continuity_errors: r.get::<i64>(5)? as u64,
                                sync_losses: r.get::<i64>(6)? as u64,
                            }),
                            None => None,
                        };
                        Ok(PullAttempt {
                            at: r.get(0)?,
                            outcome: r.get(1)?,
                            reason: r.get(2)?,
                            local_path: r.get(3)?,
                            counts,
                        })
                    })
                    .collect()
            })
            .map_err(DbError::sql("read the pull attempts"))
    }

    /// Records that `what` of the archive (`target`: the object key, or the service) was deleted at `at`.
    /// A service record deletion also sets the archive's `remote_deleted_at`, in the same transaction.
    pub fn record_deletion(
        &mut self,
        id: &str,
        what: Deleted,
        target: &str,
        at: OffsetDateTime,
    ) -> Result<(), DbError> {
        let at = stamp(at);
        let n = self
            .conn
            .write(|tx| {
                let n = tx.execute(
                    "INSERT INTO deletions (archive_id, what, target, at)
                     SELECT id, ?2, ?3, ?4 FROM archives WHERE id = ?1",
                    &params![id, what.as_str(), target, &at],
                )?;
                if what == Deleted::ServiceRecord {
                    tx.execute(
                        "UPDATE archives SET remote_deleted_at = ?2 WHERE id = ?1",
                        &params![id, &at],
                    )?;
                }
                Ok::<_, SqlError>(n)
            })
            .map_err(DbError::sql("record the deletion"))?;
        if n == 0 {
            return Err(DbError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Every deletion recorded for the archive, oldest first.
    pub fn deletions(&self, id: &str) -> Result<Vec<Deletion>, DbError> {
        self.conn
            .query(
                "SELECT what, target, at FROM deletions WHERE archive_id = ?1 ORDER BY id",
                &params![id],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(Deletion {
                            what: r.get(0)?,
                            target: r.get(1)?,
                            at: r.get(2)?,
                        })
                    })
                    .collect()
            })
            .map_err(DbError::sql("read the deletions"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventSource, IncomingEvent};

    fn ledger_with(id: &str) -> Ledger {
        let mut l = Ledger::open_in_memory().unwrap();
        let archive: opentok_rest::model::Archive =
            serde_json::from_value(serde_json::json!({"id": id, "status": "uploaded"})).unwrap();
        l.record_event(&IncomingEvent::from_archive(
            &archive,
            EventSource::Sync,
            "t",
        ))
        .unwrap();
        l
    }

    #[test]
    fn attempts_and_deletions_are_kept_separately_and_in_order() {
        let id = "5b1c0a77-2f7e-4d0a-9a55-6f4c1b2d3e4f";
        let mut l = ledger_with(id);
        let now = OffsetDateTime::now_utc();
        l.record_failed_pull(id, "not MPEG-TS", now).unwrap();
        let pull = PullRecord {
            local_path: "/out/a.ts".into(),
            sha256: "ab".repeat(32),
            measured_duration: Some(1.5),
            verified_at: now,
        };
        let counts = PullCounts {
            bytes: 1000,
            continuity_errors: 2,
            sync_losses: 0,
        };
        l.record_verified_pull(id, &pull, counts).unwrap();
        l.record_deletion(id, Deleted::Object, "1/a/archive.ts", now)
            .unwrap();
        assert!(l.archive(id).unwrap().unwrap().remote_deleted_at.is_none());
        l.record_deletion(id, Deleted::ServiceRecord, "http://svc", now)
            .unwrap();
        let attempts = l.pull_attempts(id).unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(
            (attempts[0].outcome.as_str(), attempts[0].reason.as_deref()),
            ("failed", Some("not MPEG-TS"))
        );
        assert_eq!(attempts[1].counts, Some(counts));
        let deletions = l.deletions(id).unwrap();
        let what: Vec<_> = deletions.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(what, ["object", "service_record"]);
        let row = l.archive(id).unwrap().unwrap();
        assert!(row.verified_at.is_some() && row.remote_deleted_at.is_some());
        // An archive the ledger does not know: an error, nothing recorded.
        let other = "5b1c0a77-2f7e-4d0a-9a55-000000000000";
        assert!(matches!(
            l.record_verified_pull(other, &pull, counts),
            Err(DbError::NotFound(_))
        ));
        assert!(matches!(
            l.record_deletion(other, Deleted::Object, "k", now),
            Err(DbError::NotFound(_))
        ));
        assert!(l.pull_attempts(other).unwrap().is_empty());
    }
}
