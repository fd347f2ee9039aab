//! [`Ledger`]: one connection to the ledger file, and every write.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::event::IncomingEvent;
use crate::upsert::{self, EventOutcome};
use crate::{DbError, retry_busy, schema, stamp};

/// One connection to the ledger. Open one per thread (a `Ledger` is `Send`, not `Sync`); any number of
/// threads and processes may have the same file open: writes take SQLite's write lock with
/// `BEGIN IMMEDIATE`, wait for it up to [`schema::BUSY_TIMEOUT`], and are retried if SQLite still says busy.
///
/// ```
/// use archive_db::{IncomingEvent, Ledger};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut ledger = Ledger::open(dir.path().join("ledger.sqlite3")).unwrap();
/// let body = br#"{"id":"b40ef09b","event":"archive","status":"uploaded","sessionId":"S","size":18023312,
///                 "partnerId":123456,"password":"ZTQy"}"#;
/// ledger.record_event(&IncomingEvent::from_callback(body, "127.0.0.1:40000").unwrap()).unwrap();
/// let record = ledger.archive("b40ef09b").unwrap().unwrap();
/// assert_eq!(record.password.as_deref(), Some("ZTQy"));
/// assert_eq!(record.size, 18023312);
/// ```
#[derive(Debug)]
pub struct Ledger {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// What `archivectl pull` found out about an archive it fetched and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRecord {
    /// Where the decrypted (or plain) file was written.
    pub local_path: PathBuf,
    /// SHA-256 of that file, lowercase hex.
    pub sha256: String,
    /// Its duration in seconds as measured from the MPEG-TS, when it could be measured.
    pub measured_duration: Option<f64>,
    /// When the file was verified.
    pub verified_at: OffsetDateTime,
}

/// A certificate the service was given. Only the certificate: a private key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub fingerprint: String,
    /// The project it was set for, if known.
    pub project_id: Option<String>,
    /// Its subject, for people.
    pub subject: String,
    /// Its `notAfter`, RFC 3339.
    pub not_after: String,
    /// The certificate, PEM.
    pub pem: String,
}

impl Ledger {
    /// Opens (creating it, mode 0600 on Unix, if missing) the ledger file and brings its schema up to date.
    /// The directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let mut conn = Connection::open(&path).map_err(|source| DbError::Open {
            path: path.clone(),
            source,
        })?;
        schema::configure(&conn).map_err(|source| DbError::Open {
            path: path.clone(),
            source,
        })?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn, path })
    }

    /// A ledger in memory (for examples and tests): nothing is kept.
    pub fn open_in_memory() -> Result<Self, DbError> {
        let mut conn =
            Connection::open_in_memory().map_err(DbError::sql("open a ledger in memory"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(DbError::sql("open a ledger in memory"))?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn,
            path: PathBuf::from(":memory:"),
        })
    }

    /// The file this ledger is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's schema version (see [`schema`]).
    pub fn schema_version(&self) -> Result<u32, DbError> {
        schema::user_version(&self.conn).map_err(DbError::sql("read the schema version"))
    }

    /// Records one event in its own transaction (one fsync). Many events at once: [`Ledger::record_events`]
    /// or the [`crate::GroupWriter`].
    pub fn record_event(&mut self, event: &IncomingEvent) -> Result<EventOutcome, DbError> {
        self.record_events(&[event])?
            .pop()
            .unwrap_or_else(|| Err(DbError::Commit("no result for the event".into())))
    }

    /// Records events in one transaction (one fsync for all). An event that fails is rolled back alone (the
    /// batch is then redone with a savepoint per event) and its error returned in its place; the others are
    /// committed. The outer error means nothing was committed.
    pub fn record_events(
        &mut self,
        events: &[&IncomingEvent],
    ) -> Result<Vec<Result<EventOutcome, DbError>>, DbError> {
        retry_busy(|| {
            // Fast path: the whole batch in one transaction. Events practically never fail alone; if one does,
            // the batch is rolled back and done again with a savepoint per event.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                match upsert::record(&tx, event) {
                    Ok(outcome) => results.push(Ok(outcome)),
                    Err(_) => break,
                }
            }
            if results.len() == events.len() {
                tx.commit()?;
                return Ok(results);
            }
            drop(tx);
            let mut tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                let sp = tx.savepoint()?;
                match upsert::record(&sp, event) {
                    Ok(outcome) => {
                        sp.commit()?;
                        results.push(Ok(outcome));
                    }
                    // Dropping the savepoint rolls it back.
                    Err(e) => results.push(Err(e)),
                }
            }
            tx.commit()?;
            Ok(results)
        })
        .map_err(DbError::sql("commit events"))
    }

    /// Records that the archive was pulled to `pull.local_path` and verified.
    pub fn record_pull(&mut self, id: &str, pull: &PullRecord) -> Result<(), DbError> {
        let path = pull.local_path.to_string_lossy().into_owned();
        let verified = stamp(pull.verified_at);
        self.update_one(id, "record the pull", |conn| {
            conn.execute(
                "UPDATE archives SET local_path = ?2, local_sha256 = ?3, measured_duration = ?4, verified_at = ?5
                 WHERE id = ?1",
                params![id, path, pull.sha256, pull.measured_duration, verified],
            )
        })
    }

    /// Records that the archive was deleted from the service (and its storage) at `at`.
    pub fn record_remote_delete(&mut self, id: &str, at: OffsetDateTime) -> Result<(), DbError> {
        let at = stamp(at);
        self.update_one(id, "record the remote deletion", |conn| {
            conn.execute(
                "UPDATE archives SET remote_deleted_at = ?2 WHERE id = ?1",
                params![id, at],
            )
        })
    }

    fn update_one(
        &mut self,
        id: &str,
        action: &'static str,
        f: impl Fn(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<(), DbError> {
        let n = retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = f(&tx)?;
            tx.commit()?;
            Ok(n)
        })
        .map_err(DbError::sql(action))?;
        if n == 0 {
            return Err(DbError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Records a certificate (once per fingerprint). Refuses anything that holds a private key.
    pub fn record_certificate(&mut self, cert: &CertificateRecord) -> Result<(), DbError> {
        if cert.pem.contains("PRIVATE KEY") {
            return Err(DbError::PrivateKey);
        }
        let now = stamp(OffsetDateTime::now_utc());
        retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(project) = &cert.project_id {
                tx.execute(
                    "INSERT INTO projects (id, first_seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                    params![project, now],
                )?;
            }
            tx.execute(
                "INSERT INTO certificates (fingerprint, project_id, subject, not_after, pem, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (fingerprint) DO NOTHING",
                params![
                    cert.fingerprint,
                    cert.project_id,
                    cert.subject,
                    cert.not_after,
                    cert.pem,
                    now
                ],
            )?;
            tx.commit()
        })
        .map_err(DbError::sql("record the certificate"))
    }

    /// Records that from `at` on the project's archives are encrypted with the certificate `fingerprint`
    /// (recorded before with [`Ledger::record_certificate`]), or, with `None`, not encrypted.
    pub fn activate_certificate(
        &mut self,
        project_id: &str,
        fingerprint: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<(), DbError> {
        let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let at = stamp(at);
        retry_busy(|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO projects (id, first_seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![project_id, at],
            )?;
            tx.execute(
                "INSERT INTO certificate_activations (project_id, fingerprint, active_from_ms, active_from)
                 VALUES (?1, ?2, ?3, ?4)",
                params![project_id, fingerprint, ms, at],
            )?;
            tx.commit()
        })
        .map_err(DbError::sql("record the certificate activation"))
    }

    /// The certificate the project's archives were encrypted with at `at` (`None`: none was active, or
    /// encryption was off).
    pub fn active_certificate(
        &self,
        project_id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<CertificateRecord>, DbError> {
        let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        self.conn
            .query_row(
                "SELECT c.fingerprint, c.project_id, c.subject, c.not_after, c.pem
                 FROM certificate_activations ca JOIN certificates c ON c.fingerprint = ca.fingerprint
                 WHERE ca.id = (SELECT id FROM certificate_activations
                                WHERE project_id = ?1 AND active_from_ms <= ?2
                                ORDER BY active_from_ms DESC, id DESC LIMIT 1)",
                params![project_id, ms],
                |r| {
                    Ok(CertificateRecord {
                        fingerprint: r.get(0)?,
                        project_id: r.get(1)?,
                        subject: r.get(2)?,
                        not_after: r.get(3)?,
                        pem: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(DbError::sql("read the active certificate"))
    }
}

/// Creates the file with owner-only permissions if it does not exist, so the WAL and shared-memory files
/// SQLite creates next to it get the same.
fn create_private(path: &Path) -> Result<(), DbError> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(|source| DbError::Create {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev(id: &str) -> IncomingEvent {
        let body = format!(r#"{{"id":"{id}","event":"archive","status":"started"}}"#);
        IncomingEvent::from_callback(body.as_bytes(), "t").unwrap()
    }

    #[test]
    fn an_event_that_fails_fails_alone_and_the_rest_of_the_batch_commits() {
        let mut l = Ledger::open_in_memory().unwrap();
        l.conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.archive_id = 'bad'
                 BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
            )
            .unwrap();
        let (a, bad, b) = (ev("a"), ev("bad"), ev("b"));
        let results = l.record_events(&[&a, &bad, &b]).unwrap();
        assert!(results[0].is_ok() && results[2].is_ok());
        let err = results[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("refused by test"), "{err}");
        assert!(l.contains("a").unwrap() && l.contains("b").unwrap());
        assert!(!l.contains("bad").unwrap());
        assert_eq!(
            l.counts().unwrap(),
            (2, 2),
            "nothing of the failed event remains"
        );
    }
}
