//! [`Ledger`]: one connection to the ledger file, and every write.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use time::OffsetDateTime;

use crate::db::postgres::PgConn;
use crate::db::{Conn, Dialect, SqlError, TxError, params};
use crate::event::IncomingEvent;
use crate::location::LedgerLocation;
use crate::upsert::{self, EventOutcome};
use crate::{DbError, retry_busy, schema, stamp};

/// One connection to the ledger. Open one per thread (a `Ledger` is `Send`, not `Sync`); any number of
/// threads and processes may have the same file open: writes take SQLite's write lock with
/// `BEGIN IMMEDIATE`, wait for it up to [`schema::BUSY_TIMEOUT`], and are retried if SQLite still says busy.
/// On PostgreSQL ([`Ledger::open_location`]) any number of processes on any machines may share the database;
/// the connection is served by a thread of its own, so a `Ledger` may be called from async code.
///
/// ```
/// use archive_db::{IncomingEvent, Ledger};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut ledger = Ledger::open(dir.path().join("ledger.sqlite3")).unwrap();
/// let body = br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"uploaded","sessionId":"S","size":18023312,
///                 "partnerId":123456,"password":"ZTQy"}"#;
/// ledger.record_event(&IncomingEvent::from_callback(body, "127.0.0.1:40000").unwrap()).unwrap();
/// let record = ledger.archive("b40ef09b-3811-4726-b508-e41a0f96c68f").unwrap().unwrap();
/// assert_eq!(record.password.as_deref(), Some("ZTQy"));
/// assert_eq!(record.size, 18023312);
/// ```
#[derive(Debug)]
pub struct Ledger {
    pub(crate) conn: Conn,
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

/// Which database a [`Ledger`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (or memory).
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// Why the fast path of [`Ledger::record_events`] gave up.
enum BatchFail {
    /// The transaction failed.
    Sql(SqlError),
    /// One event failed: redo the batch with a savepoint per event.
    Event,
}

impl From<SqlError> for BatchFail {
    fn from(e: SqlError) -> Self {
        Self::Sql(e)
    }
}

impl TxError for BatchFail {
    fn retryable(&self) -> bool {
        matches!(self, Self::Sql(e) if e.is_retryable())
    }

    fn connection(&self) -> bool {
        matches!(self, Self::Sql(e) if e.is_connection())
    }
}

/// On PostgreSQL, takes the transaction-level advisory lock of every archive the events are about, in one
/// sorted order: an archive's row is read, merged and written by one transaction at a time (two receivers
/// recording callbacks of one archive at once), and two batches never wait for each other's locks in a circle.
fn lock_archives(conn: &Conn, events: &[&IncomingEvent]) -> Result<(), SqlError> {
    if conn.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let mut ids: Vec<&str> = events
        .iter()
        .filter(|e| e.archive().is_some())
        .filter_map(|e| e.archive_id())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    // One statement for the batch. Archive ids are validated UUIDs (no comma); they are locked in their
    // sorted order, the same in every transaction.
    conn.query(
        "SELECT pg_advisory_xact_lock(?1, hashtext(id))
         FROM (SELECT DISTINCT unnest(string_to_array(?2, ',')) AS id) ids ORDER BY id COLLATE \"C\"",
        &params![ARCHIVE_LOCK_CLASS, ids.join(",")],
    )?;
    Ok(())
}

/// The first key of the archives' advisory locks on PostgreSQL (the second is the id's hash).
const ARCHIVE_LOCK_CLASS: i64 = 0x4172_634c;

impl Ledger {
    /// Opens (creating it, mode 0600 on Unix, if missing) the ledger file and brings its schema up to date.
    /// The directory must exist.
    ///
    /// A new or empty (0-byte) file is made a ledger. An existing SQLite database is used only if it is a
    /// ledger: one marked with [`schema::APPLICATION_ID`], or an older ledger without the mark (which gets
    /// it). Any other database is refused with [`DbError::NotALedger`] before anything is written to it, and
    /// a ledger of a newer archivectl with [`DbError::SchemaTooNew`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DbError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let open_err = |source| DbError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        // Look before writing anything (WAL mode included): reading changes nothing in the file.
        conn.busy_timeout(schema::BUSY_TIMEOUT).map_err(open_err)?;
        if let schema::Identity::Foreign(reason) =
            retry_busy(|| schema::identify(&conn)).map_err(open_err)?
        {
            return Err(DbError::NotALedger { path, reason });
        }
        schema::configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            conn: Conn::Sqlite(conn),
            path,
        })
    }

    /// A ledger in memory (for examples and tests): nothing is kept.
    pub fn open_in_memory() -> Result<Self, DbError> {
        let mut conn =
            Connection::open_in_memory().map_err(DbError::sqlite("open a ledger in memory"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(DbError::sqlite("open a ledger in memory"))?;
        let path = PathBuf::from(":memory:");
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            conn: Conn::Sqlite(conn),
            path,
        })
    }

    /// Opens the ledger wherever it lives: [`Ledger::open`] for a SQLite file; for PostgreSQL, connects (TLS
    /// as its `sslmode` says) and brings the database's schema up to date ([`schema::POSTGRES_MIGRATIONS`]),
    /// refusing a database that holds other tables ([`DbError::NotALedgerDatabase`]). A server that cannot be
    /// reached is [`DbError::Unavailable`].
    pub fn open_location(location: &LedgerLocation) -> Result<Self, DbError> {
        match location {
            LedgerLocation::Sqlite(path) => Self::open(path),
            LedgerLocation::Postgres(config) => {
                let conn = PgConn::connect(config)
                    .map_err(DbError::sql("connect to the ledger database"))?;
                let conn = Conn::Postgres(conn);
                let redacted = config.redacted();
                schema::migrate_postgres(&conn, &redacted)?;
                Ok(Self {
                    conn,
                    path: PathBuf::from(redacted),
                })
            }
        }
    }

    /// Which database this ledger is on.
    pub fn backend(&self) -> Backend {
        match self.conn.dialect() {
            Dialect::Sqlite => Backend::Sqlite,
            Dialect::Postgres => Backend::Postgres,
        }
    }

    /// The file this ledger is (for PostgreSQL: the database's URL, without a password).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This connection's `journal_mode`, `synchronous` (2 is FULL) and `foreign_keys`, as SQLite reports them:
    /// what [`schema`] promises every connection runs with. On PostgreSQL: `"postgresql"`, 2 if the
    /// connection's `synchronous_commit` is `on` (a commit returns once flushed to disk; 0 otherwise), and
    /// `true` (foreign keys are always enforced).
    pub fn pragmas(&self) -> Result<(String, i64, bool), DbError> {
        let Some(conn) = self.conn.sqlite() else {
            let on: String = self
                .conn
                .query_one("SHOW synchronous_commit", &[])
                .and_then(|r| r.get(0))
                .map_err(DbError::sql("read the connection's settings"))?;
            let level = if matches!(on.as_str(), "on" | "remote_apply" | "remote_write") {
                2
            } else {
                0
            };
            return Ok(("postgresql".into(), level, true));
        };
        (|| {
            let journal = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let synchronous = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            let foreign_keys = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
            Ok((journal, synchronous, foreign_keys))
        })()
        .map_err(DbError::sqlite("read the connection's pragmas"))
    }

    /// The ledger's schema version (see [`schema`]).
    pub fn schema_version(&self) -> Result<u32, DbError> {
        match self.conn.sqlite() {
            Some(conn) => {
                schema::user_version(conn).map_err(DbError::sqlite("read the schema version"))
            }
            None => schema::postgres_version(&self.conn),
        }
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
        // Fast path: the whole batch in one transaction. Events practically never fail alone; if one does,
        // the batch is rolled back and done again with a savepoint per event.
        let fast = self.conn.write(|c| {
            lock_archives(c, events)?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                match upsert::record(c, event) {
                    Ok(outcome) => results.push(Ok(outcome)),
                    // Not the event's fault: the whole batch is retried, or fails.
                    Err(e) if e.is_retryable() || e.is_unavailable() => {
                        return Err(BatchFail::Sql(e.into_retryable()));
                    }
                    Err(_) => return Err(BatchFail::Event),
                }
            }
            Ok(results)
        });
        match fast {
            Ok(results) => return Ok(results),
            Err(BatchFail::Sql(e)) => return Err(DbError::sql("commit events")(e)),
            Err(BatchFail::Event) => {}
        }
        self.conn
            .write(|c| {
                lock_archives(c, events)?;
                let mut results = Vec::with_capacity(events.len());
                for event in events {
                    results.push(c.savepoint(|c| upsert::record(c, event))?);
                }
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
                &params![id, &path, &pull.sha256, pull.measured_duration, &verified],
            )
        })
    }

    /// Records that the archive was deleted from the service (and its storage) at `at`.
    pub fn record_remote_delete(&mut self, id: &str, at: OffsetDateTime) -> Result<(), DbError> {
        let at = stamp(at);
        self.update_one(id, "record the remote deletion", |conn| {
            conn.execute(
                "UPDATE archives SET remote_deleted_at = ?2 WHERE id = ?1",
                &params![id, &at],
            )
        })
    }

    fn update_one(
        &mut self,
        id: &str,
        action: &'static str,
        f: impl Fn(&Conn) -> Result<u64, SqlError>,
    ) -> Result<(), DbError> {
        let n = self.conn.write(f).map_err(DbError::sql(action))?;
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
        self.conn
            .write(|tx| {
                if let Some(project) = &cert.project_id {
                    tx.execute(
                        "INSERT INTO projects (id, first_seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                        &params![project, &now],
                    )?;
                }
                tx.execute(
                    "INSERT INTO certificates (fingerprint, project_id, subject, not_after, pem, added_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (fingerprint) DO NOTHING",
                    &params![
                        &cert.fingerprint,
                        &cert.project_id,
                        &cert.subject,
                        &cert.not_after,
                        &cert.pem,
                        &now
                    ],
                )?;
                Ok::<_, SqlError>(())
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
        self.conn
            .write(|tx| {
                tx.execute(
                    "INSERT INTO projects (id, first_seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                    &params![project_id, &at],
                )?;
                tx.execute(
                    "INSERT INTO certificate_activations (project_id, fingerprint, active_from_ms, active_from)
                     VALUES (?1, ?2, ?3, ?4)",
                    &params![project_id, fingerprint, ms, &at],
                )?;
                Ok::<_, SqlError>(())
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
        let row = self
            .conn
            .query_opt(
                "SELECT c.fingerprint, c.project_id, c.subject, c.not_after, c.pem
                 FROM certificate_activations ca JOIN certificates c ON c.fingerprint = ca.fingerprint
                 WHERE ca.id = (SELECT id FROM certificate_activations
                                WHERE project_id = ?1 AND active_from_ms <= ?2
                                ORDER BY active_from_ms DESC, id DESC LIMIT 1)",
                &params![project_id, ms],
            )
            .and_then(|row| {
                row.map(|r| {
                    Ok(CertificateRecord {
                        fingerprint: r.get(0)?,
                        project_id: r.get(1)?,
                        subject: r.get(2)?,
                        not_after: r.get(3)?,
                        pem: r.get(4)?,
                    })
                })
                .transpose()
            });
        row.map_err(DbError::sql("read the active certificate"))
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

    /// A valid archive id (a UUID) named after `name`.
    fn uid(name: &str) -> String {
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("00000000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
    }

    fn ev(name: &str) -> IncomingEvent {
        let id = uid(name);
        let body = format!(r#"{{"id":"{id}","event":"archive","status":"started"}}"#);
        IncomingEvent::from_callback(body.as_bytes(), "t").unwrap()
    }

    /// The file's application_id and user_version, read with a connection of its own.
    fn header(path: &Path) -> (i32, u32) {
        let conn = Connection::open(path).unwrap();
        let id = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        (id, schema::user_version(&conn).unwrap())
    }

    /// The names of the files in `dir`, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn another_programs_database_is_refused_and_left_unchanged() {
        let setups = [
            (
                "CREATE TABLE foo (a); INSERT INTO foo VALUES (1), ('x');",
                "its tables are foo",
            ),
            (
                "CREATE TABLE foo (a); INSERT INTO foo VALUES (1); PRAGMA user_version = 1;",
                "its tables are foo",
            ),
            (
                "PRAGMA application_id = 1234; CREATE TABLE archives (a); CREATE TABLE events (b);
                 INSERT INTO archives VALUES (1); PRAGMA user_version = 1;",
                "application_id is 0x000004d2",
            ),
            ("CREATE VIEW v AS SELECT 1;", "no tables"),
        ];
        for (i, (sql, reason)) in setups.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("other{i}.sqlite3"));
            Connection::open(&path).unwrap().execute_batch(sql).unwrap();
            let dump = |path: &Path| {
                let conn = Connection::open(path).unwrap();
                let mut stmt = conn
                    .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
                    .unwrap();
                let schema: Vec<(String, String, Option<String>)> = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let rows: Vec<String> = schema
                    .iter()
                    .filter(|(kind, ..)| kind == "table")
                    .flat_map(|(_, name, _)| {
                        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
                        stmt.query_map([], |r| Ok(format!("{name}: {:?}", r.get_ref(0)?)))
                            .unwrap()
                            .map(Result::unwrap)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (schema, rows)
            };
            let (bytes, listing, content, head) = (
                std::fs::read(&path).unwrap(),
                files(dir.path()),
                dump(&path),
                header(&path),
            );

            let err = Ledger::open(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DbError::NotALedger { .. }), "{msg}");
            assert!(msg.contains("is not an archivectl ledger"), "{msg}");
            assert!(msg.contains(reason), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("left unchanged"), "{msg}");

            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{sql}: not a byte changed"
            );
            assert_eq!(files(dir.path()), listing, "{sql}: no WAL or journal left");
            assert_eq!(dump(&path), content, "{sql}: tables and rows as they were");
            assert_eq!(header(&path), head, "{sql}");
            assert!(!content.0.is_empty() && (i == 3 || !content.1.is_empty()));
        }
    }

    #[test]
    fn a_zero_byte_file_is_made_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.sqlite3");
        std::fs::write(&path, b"").unwrap();
        let mut l = Ledger::open(&path).unwrap();
        l.record_event(&ev("a")).unwrap();
        drop(l);
        assert_eq!(
            header(&path),
            (schema::APPLICATION_ID, schema::SCHEMA_VERSION)
        );
        assert!(Ledger::open(&path).unwrap().contains(&uid("a")).unwrap());
    }

    #[test]
    fn a_fresh_ledger_reopens_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite3");
        let mut l = Ledger::open(&path).unwrap();
        l.record_event(&ev("a")).unwrap();
        drop(l);
        assert_eq!(
            header(&path),
            (schema::APPLICATION_ID, schema::SCHEMA_VERSION)
        );
        for _ in 0..2 {
            let l = Ledger::open(&path).unwrap();
            assert!(l.contains(&uid("a")).unwrap());
            assert_eq!(l.counts().unwrap(), (1, 1));
        }
    }

    #[test]
    fn a_ledger_of_an_older_version_without_the_application_id_opens_and_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        // What an archivectl before the application_id wrote: the migrations and the user_version only.
        {
            let mut l = Ledger::open(&path).unwrap();
            l.record_event(&ev("a")).unwrap();
        }
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "application_id", 0)
            .unwrap();
        assert_eq!(header(&path), (0, schema::SCHEMA_VERSION));

        let mut l = Ledger::open(&path).unwrap();
        assert!(l.contains(&uid("a")).unwrap());
        l.record_event(&ev("b")).unwrap();
        drop(l);
        assert_eq!(
            header(&path),
            (schema::APPLICATION_ID, schema::SCHEMA_VERSION),
            "stamped on open"
        );
        assert_eq!(Ledger::open(&path).unwrap().counts().unwrap(), (2, 2));
    }

    #[test]
    fn an_event_that_fails_fails_alone_and_the_rest_of_the_batch_commits() {
        let mut l = Ledger::open_in_memory().unwrap();
        l.conn
            .sqlite()
            .unwrap()
            .execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.archive_id = '{}'
                 BEGIN SELECT RAISE(ABORT, 'refused by test'); END;",
                uid("bad")
            ))
            .unwrap();
        let (a, bad, b) = (ev("a"), ev("bad"), ev("b"));
        let results = l.record_events(&[&a, &bad, &b]).unwrap();
        assert!(results[0].is_ok() && results[2].is_ok());
        let err = results[1].as_ref().unwrap_err();
        assert!(err.to_string().contains("refused by test"), "{err}");
        assert!(l.contains(&uid("a")).unwrap() && l.contains(&uid("b")).unwrap());
        assert!(!l.contains(&uid("bad")).unwrap());
        assert_eq!(
            l.counts().unwrap(),
            (2, 2),
            "nothing of the failed event remains"
        );
    }
}
