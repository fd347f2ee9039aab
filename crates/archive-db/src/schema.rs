//! The schema, its versioned migrations, and how every connection is set up.
//!
//! The version is SQLite's `PRAGMA user_version`: 0 for a new file, `N` once migrations `1..=N` have run.
//! Opening runs the missing migrations in one `BEGIN IMMEDIATE` transaction (so two processes opening an old
//! file at once migrate it once), and refuses a file newer than this build ([`DbError::SchemaTooNew`]).
//! Migrations are only ever appended; a released one is never edited.
//!
//! Every connection runs with `journal_mode=WAL` (readers never block the writer), `synchronous=FULL` (a
//! commit returns only once the WAL is fsynced: a callback is acknowledged after its row survives a power
//! loss, not just a crash of the process — the group-commit writer makes that one fsync per batch),
//! `foreign_keys=ON`, and a `busy_timeout` so that a second process waits for the write lock instead of
//! failing.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::DbError;

/// How long a connection waits for another process's write lock before SQLite reports it busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Version 1: projects, archives (the service's fields and the raw JSON) and every raw event.
const V1: &str = r#"
CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    first_seen_at TEXT NOT NULL
) STRICT;

CREATE TABLE archives (
    id                 TEXT PRIMARY KEY,
    project_id         TEXT REFERENCES projects(id),
    session_id         TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,
    status_rank        INTEGER NOT NULL,
    name               TEXT,
    reason             TEXT,
    created_at         INTEGER NOT NULL DEFAULT 0,
    service_updated_at INTEGER,
    duration           INTEGER NOT NULL DEFAULT 0,
    size               INTEGER NOT NULL DEFAULT 0,
    output_mode        TEXT,
    resolution         TEXT,
    url                TEXT,
    password           TEXT,
    service_sha256     TEXT,
    raw_json           TEXT NOT NULL,
    first_seen_at      TEXT NOT NULL,
    changed_at         TEXT NOT NULL
) STRICT;
CREATE INDEX archives_session ON archives(session_id);
CREATE INDEX archives_status ON archives(status);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    source      TEXT NOT NULL,
    origin      TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    archive_id  TEXT,
    body        TEXT NOT NULL
) STRICT;
CREATE INDEX events_archive ON events(archive_id);
"#;

/// Version 2: the status history, password conflicts, certificates and when each was active, and our own
/// facts about each archive (pulled to, SHA-256, measured duration, verified, deleted remotely).
const V2: &str = r#"
ALTER TABLE archives ADD COLUMN password_conflict INTEGER NOT NULL DEFAULT 0;
ALTER TABLE archives ADD COLUMN local_path TEXT;
ALTER TABLE archives ADD COLUMN local_sha256 TEXT;
ALTER TABLE archives ADD COLUMN measured_duration REAL;
ALTER TABLE archives ADD COLUMN verified_at TEXT;
ALTER TABLE archives ADD COLUMN remote_deleted_at TEXT;

CREATE TABLE status_history (
    id                 INTEGER PRIMARY KEY,
    archive_id         TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    service_updated_at INTEGER NOT NULL DEFAULT 0,
    applied            INTEGER NOT NULL,
    source             TEXT NOT NULL,
    first_received_at  TEXT NOT NULL,
    last_received_at   TEXT NOT NULL,
    times_seen         INTEGER NOT NULL DEFAULT 1,
    UNIQUE (archive_id, status, service_updated_at)
) STRICT;
-- Archives recorded before the history existed: their status as it was.
INSERT INTO status_history
    (archive_id, status, service_updated_at, applied, source, first_received_at, last_received_at)
    SELECT id, status, COALESCE(service_updated_at, 0), 1, 'migration', first_seen_at, changed_at FROM archives;

CREATE TABLE password_conflicts (
    archive_id    TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    password      TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    event_id      INTEGER REFERENCES events(id),
    PRIMARY KEY (archive_id, password)
) STRICT;

CREATE TABLE certificates (
    fingerprint TEXT PRIMARY KEY,
    project_id  TEXT REFERENCES projects(id),
    subject     TEXT NOT NULL DEFAULT '',
    not_after   TEXT NOT NULL,
    pem         TEXT NOT NULL,
    added_at    TEXT NOT NULL
) STRICT;

CREATE TABLE certificate_activations (
    id             INTEGER PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id),
    fingerprint    TEXT REFERENCES certificates(fingerprint),
    active_from_ms INTEGER NOT NULL,
    active_from    TEXT NOT NULL
) STRICT;
CREATE INDEX certificate_activations_project ON certificate_activations(project_id, active_from_ms);
"#;

/// Every migration, in order: entry `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Sets up a fresh connection: busy timeout, WAL, synchronous=FULL, foreign keys.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Changing the journal mode needs a moment of exclusive access; another process may be opening too.
    crate::retry_busy(|| {
        conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        })
    })?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// The file's schema version.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the schema up to [`SCHEMA_VERSION`], or refuses a newer file.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let check = |found: u32| {
        if found > SCHEMA_VERSION {
            Err(DbError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            })
        } else {
            Ok(())
        }
    };
    let version = user_version(conn).map_err(DbError::sql("read the schema version"))?;
    check(version)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    crate::retry_busy(|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let version = user_version(&tx)?;
        if version > SCHEMA_VERSION {
            return Ok(Err(version));
        }
        for migration in &MIGRATIONS[version as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(Ok(()))
    })
    .map_err(DbError::sql("migrate the schema"))?
    .or_else(check)
}
