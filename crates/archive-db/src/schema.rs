//! The schema, its versioned migrations, and how every connection is set up.
//!
//! The version is SQLite's `PRAGMA user_version`: 0 for a new file, `N` once migrations `1..=N` have run.
//! Opening runs the missing migrations in one `BEGIN IMMEDIATE` transaction (so two processes opening an old
//! file at once migrate it once), and refuses a file newer than this build ([`DbError::SchemaTooNew`]).
//! Migrations are only ever appended; a released one is never edited.
//!
//! A ledger is marked as one by SQLite's `PRAGMA application_id` ([`APPLICATION_ID`]), set in the same
//! transaction as its migrations. Before anything is written, `identify` tells an empty file (initialised),
//! a ledger (ours by its application_id, or an older ledger without one: `user_version > 0` and the
//! `archives` and `events` tables, which gets the application_id on open) from any other SQLite database,
//! which is refused untouched ([`DbError::NotALedger`]).
//!
//! Every connection runs with `journal_mode=WAL` (readers never block the writer), `synchronous=FULL` (a
//! commit returns only once the WAL is fsynced: a callback is acknowledged after its row survives a power
//! loss, not just a crash of the process — the group-commit writer makes that one fsync per batch),
//! `foreign_keys=ON`, and a `busy_timeout` so that a second process waits for the write lock instead of
//! failing.
//!
//! On PostgreSQL the same migrations are kept translated ([`POSTGRES_MIGRATIONS`]), the version is the
//! database's own `schema_version` table, and they run in one transaction under an advisory lock; a database
//! that holds tables but no ledger's `schema_version` is refused untouched ([`DbError::NotALedgerDatabase`]).
//! Every PostgreSQL connection runs with `synchronous_commit = on`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::DbError;
use crate::db::{Conn, params};

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

/// Version 3: what `pull` records beyond the archive's row: each attempt (verified, or failed and why, with the
/// MPEG-TS inspection's counts) and each deletion, one row per thing deleted (the object in the storage target,
/// the service's record).
const V3: &str = r#"
CREATE TABLE pull_attempts (
    id                INTEGER PRIMARY KEY,
    archive_id        TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    at                TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('verified', 'failed')),
    reason            TEXT,
    local_path        TEXT,
    bytes             INTEGER,
    continuity_errors INTEGER,
    sync_losses       INTEGER
) STRICT;
CREATE INDEX pull_attempts_archive ON pull_attempts(archive_id);

CREATE TABLE deletions (
    id         INTEGER PRIMARY KEY,
    archive_id TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    what       TEXT NOT NULL CHECK (what IN ('object', 'service_record')),
    target     TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX deletions_archive ON deletions(archive_id);
"#;

/// The ledger's `PRAGMA application_id`: `"ArcL"` in ASCII, so `file(1)` and `sqlite3 .dbinfo` show whose file it is.
pub const APPLICATION_ID: i32 = i32::from_be_bytes(*b"ArcL");

/// The tables that make an old file without [`APPLICATION_ID`] a ledger (both exist from version 1 on).
const LEDGER_TABLES: [&str; 2] = ["archives", "events"];

/// Version 4: how each event was authenticated (`token`, `signature`, `none`, or `api` for what was read from
/// the REST API); NULL for events recorded before this version.
const V4: &str = r#"
ALTER TABLE events ADD COLUMN auth TEXT;
"#;

/// Version 5: leases, so that several `pull` workers share the work (see [`crate::leases`]): one row per
/// archive being pulled, whose owner (a worker id) and expiry (milliseconds since the Unix epoch, given by the
/// caller) say who may pull and settle it. Portable SQL (no STRICT, BIGINT): the same text runs on PostgreSQL.
const V5: &str = r#"
CREATE TABLE leases (
    archive_id  TEXT PRIMARY KEY REFERENCES archives(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX leases_expires ON leases(expires_at);
"#;

/// Version 6: the service's `sha256sum` check (issue 13): the SHA-256 of the
/// object's bytes as `pull` downloaded them (hex), and whether it matched the `sha256sum` the service reported
/// (1 or 0; NULL when the service reported none, or the pull could not hash the whole object).
const V6: &str = r#"
ALTER TABLE archives ADD COLUMN object_sha256 TEXT;
ALTER TABLE archives ADD COLUMN service_sha256_matched INTEGER;
"#;

/// Every migration, in order: entry `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// PostgreSQL's version 1: [`V1`] translated (BIGINT for SQLite's INTEGER, an identity column for its
/// rowid, no STRICT). Text that is sorted on is `COLLATE "C"`, so PostgreSQL orders it byte by byte as
/// SQLite does, whatever the database's locale.
const PG_V1: &str = r#"
CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    first_seen_at TEXT NOT NULL
);

CREATE TABLE archives (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    project_id         TEXT REFERENCES projects(id),
    session_id         TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,
    status_rank        BIGINT NOT NULL,
    name               TEXT,
    reason             TEXT,
    created_at         BIGINT NOT NULL DEFAULT 0,
    service_updated_at BIGINT,
    duration           BIGINT NOT NULL DEFAULT 0,
    size               BIGINT NOT NULL DEFAULT 0,
    output_mode        TEXT,
    resolution         TEXT,
    url                TEXT,
    password           TEXT,
    service_sha256     TEXT,
    raw_json           TEXT NOT NULL,
    first_seen_at      TEXT COLLATE "C" NOT NULL,
    changed_at         TEXT NOT NULL
);
CREATE INDEX archives_session ON archives(session_id);
CREATE INDEX archives_status ON archives(status);

CREATE TABLE events (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    received_at TEXT NOT NULL,
    source      TEXT NOT NULL,
    origin      TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    archive_id  TEXT,
    body        TEXT NOT NULL
);
CREATE INDEX events_archive ON events(archive_id);
"#;

/// PostgreSQL's version 2: [`V2`] translated.
const PG_V2: &str = r#"
ALTER TABLE archives ADD COLUMN password_conflict BIGINT NOT NULL DEFAULT 0;
ALTER TABLE archives ADD COLUMN local_path TEXT;
ALTER TABLE archives ADD COLUMN local_sha256 TEXT;
ALTER TABLE archives ADD COLUMN measured_duration DOUBLE PRECISION;
ALTER TABLE archives ADD COLUMN verified_at TEXT;
ALTER TABLE archives ADD COLUMN remote_deleted_at TEXT;

CREATE TABLE status_history (
    id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    archive_id         TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    status             TEXT NOT NULL,
    service_updated_at BIGINT NOT NULL DEFAULT 0,
    applied            BIGINT NOT NULL,
    source             TEXT NOT NULL,
    first_received_at  TEXT COLLATE "C" NOT NULL,
    last_received_at   TEXT COLLATE "C" NOT NULL,
    times_seen         BIGINT NOT NULL DEFAULT 1,
    UNIQUE (archive_id, status, service_updated_at)
);
INSERT INTO status_history
    (archive_id, status, service_updated_at, applied, source, first_received_at, last_received_at)
    SELECT id, status, COALESCE(service_updated_at, 0), 1, 'migration', first_seen_at, changed_at FROM archives;

CREATE TABLE password_conflicts (
    archive_id    TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    password      TEXT COLLATE "C" NOT NULL,
    first_seen_at TEXT COLLATE "C" NOT NULL,
    event_id      BIGINT REFERENCES events(id),
    PRIMARY KEY (archive_id, password)
);

CREATE TABLE certificates (
    fingerprint TEXT PRIMARY KEY,
    project_id  TEXT REFERENCES projects(id),
    subject     TEXT NOT NULL DEFAULT '',
    not_after   TEXT NOT NULL,
    pem         TEXT NOT NULL,
    added_at    TEXT NOT NULL
);

CREATE TABLE certificate_activations (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects(id),
    fingerprint    TEXT REFERENCES certificates(fingerprint),
    active_from_ms BIGINT NOT NULL,
    active_from    TEXT NOT NULL
);
CREATE INDEX certificate_activations_project ON certificate_activations(project_id, active_from_ms);
"#;

/// PostgreSQL's version 3: [`V3`] translated.
const PG_V3: &str = r#"
CREATE TABLE pull_attempts (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    archive_id        TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    at                TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('verified', 'failed')),
    reason            TEXT,
    local_path        TEXT,
    bytes             BIGINT,
    continuity_errors BIGINT,
    sync_losses       BIGINT
);
CREATE INDEX pull_attempts_archive ON pull_attempts(archive_id);

CREATE TABLE deletions (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    archive_id TEXT NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    what       TEXT NOT NULL CHECK (what IN ('object', 'service_record')),
    target     TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL
);
CREATE INDEX deletions_archive ON deletions(archive_id);
"#;

/// PostgreSQL's version 4: [`V4`] (the same text).
const PG_V4: &str = V4;

/// PostgreSQL's version 5: [`V5`] with the lease's archive id sorted byte by byte.
const PG_V5: &str = r#"
CREATE TABLE leases (
    archive_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES archives(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX leases_expires ON leases(expires_at);
"#;

/// PostgreSQL's version 6: [`V6`] translated.
const PG_V6: &str = r#"
ALTER TABLE archives ADD COLUMN object_sha256 TEXT;
ALTER TABLE archives ADD COLUMN service_sha256_matched BIGINT;
"#;

/// PostgreSQL's migrations: entry `i` is [`MIGRATIONS`]' entry `i` in PostgreSQL's dialect. Their version is
/// kept in the database's own `schema_version` table (one row: `application = 'archivectl-ledger'` and the
/// version), created with the first migration; the migrations run in one transaction under a transaction-level
/// advisory lock ([`POSTGRES_MIGRATION_LOCK`]), so two processes opening a new database at once migrate it once.
pub const POSTGRES_MIGRATIONS: &[&str] = &[PG_V1, PG_V2, PG_V3, PG_V4, PG_V5, PG_V6];

const _: () = assert!(POSTGRES_MIGRATIONS.len() == MIGRATIONS.len());

/// The key of the advisory lock PostgreSQL migrations run under (`"ArcL"` as in [`APPLICATION_ID`]).
pub const POSTGRES_MIGRATION_LOCK: i64 = APPLICATION_ID as i64;

/// What the `schema_version` table's `application` column holds in a ledger.
pub const POSTGRES_APPLICATION: &str = "archivectl-ledger";

/// Brings a PostgreSQL ledger up to [`SCHEMA_VERSION`], or refuses a database that holds other tables, or is
/// newer than this build. Nothing is written to a refused database.
pub(crate) fn migrate_postgres(conn: &Conn, location: &str) -> Result<(), DbError> {
    let outcome = conn
        .write(|c| {
            c.query("SELECT pg_advisory_xact_lock(?1)", &params![POSTGRES_MIGRATION_LOCK])?;
            let tables: Vec<String> = c
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<_, _>>()?;
            let version = if tables.iter().any(|t| t == "schema_version") {
                let row = c.query_opt("SELECT application, version FROM schema_version", &[])?;
                let row = match row {
                    Some(row) => row,
                    None => return Ok(Err(Refusal::Foreign("its schema_version table is empty".into()))),
                };
                let application: String = row.get(0)?;
                if application != POSTGRES_APPLICATION {
                    return Ok(Err(Refusal::Foreign(format!(
                        "its schema_version is of {application:?}, not {POSTGRES_APPLICATION:?}"
                    ))));
                }
                row.get::<u32>(1)?
            } else if tables.is_empty() {
                c.batch(&format!(
                    "CREATE TABLE schema_version (application TEXT NOT NULL, version BIGINT NOT NULL);
                     INSERT INTO schema_version VALUES ('{POSTGRES_APPLICATION}', 0)"
                ))?;
                0
            } else {
                let mut shown = tables.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                if tables.len() > 5 {
                    shown.push_str(&format!(" and {} more", tables.len() - 5));
                }
                return Ok(Err(Refusal::Foreign(format!(
                    "its tables are {shown}, and it has no schema_version"
                ))));
            };
            if version > SCHEMA_VERSION {
                return Ok(Err(Refusal::TooNew(version)));
            }
            for migration in &POSTGRES_MIGRATIONS[version as usize..] {
                c.batch(migration)?;
            }
            if version < SCHEMA_VERSION {
                c.execute(
                    "UPDATE schema_version SET version = ?1",
                    &params![i64::from(SCHEMA_VERSION)],
                )?;
            }
            Ok(Ok(()))
        })
        .map_err(DbError::sql("migrate the schema"))?;
    outcome.map_err(|refusal| match refusal {
        Refusal::TooNew(found) => DbError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        },
        Refusal::Foreign(reason) => DbError::NotALedgerDatabase {
            location: location.to_owned(),
            reason,
        },
    })
}

/// A PostgreSQL ledger's schema version.
pub(crate) fn postgres_version(conn: &Conn) -> Result<u32, DbError> {
    conn.query_one("SELECT version FROM schema_version", &[])
        .and_then(|r| r.get(0))
        .map_err(DbError::sql("read the schema version"))
}

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

/// What a database file is, told from its header and its schema before anything is written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// No schema objects and `user_version` 0 (a new or 0-byte file): it becomes a ledger.
    Empty,
    /// A ledger: ours by its application_id, or an older ledger of ours that has none yet. Also a file from
    /// a newer version (`user_version` above ours), which [`migrate`] refuses untouched.
    Ledger,
    /// Another program's database; why we think so.
    Foreign(String),
}

/// Tells what the database behind `conn` is, reading only.
pub(crate) fn identify(conn: &Connection) -> rusqlite::Result<Identity> {
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    if application_id == APPLICATION_ID {
        return Ok(Identity::Ledger);
    }
    if application_id != 0 {
        return Ok(Identity::Foreign(format!(
            "its application_id is {application_id:#010x}, another program's (a ledger's is {APPLICATION_ID:#010x})"
        )));
    }
    let version = user_version(conn)?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         ORDER BY name",
    )?;
    let tables = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let objects: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
    if objects == 0 && version == 0 {
        return Ok(Identity::Empty);
    }
    let ours = LEDGER_TABLES.iter().all(|t| tables.iter().any(|n| n == t));
    // An old ledger; or a file newer than this build, which `migrate` refuses as such.
    if (version > 0 && ours) || version > SCHEMA_VERSION {
        return Ok(Identity::Ledger);
    }
    let reason = if tables.is_empty() {
        if objects > 0 {
            "it has schema objects but no tables".to_owned()
        } else {
            format!("it is empty but its user_version is {version}")
        }
    } else if ours {
        "it has tables named like the ledger's but user_version 0".to_owned()
    } else {
        let mut shown = tables
            .iter()
            .take(5)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > 5 {
            shown.push_str(&format!(" and {} more", tables.len() - 5));
        }
        format!("its tables are {shown}")
    };
    Ok(Identity::Foreign(reason))
}

/// Why [`migrate`] left the file alone.
enum Refusal {
    TooNew(u32),
    Foreign(String),
}

/// Brings the schema up to [`SCHEMA_VERSION`] and sets the [`APPLICATION_ID`], or refuses a newer file or one
/// that is not a ledger (`path` names it in the error). Nothing is written to a refused file.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
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
    let version = user_version(conn).map_err(DbError::sqlite("read the schema version"))?;
    check(version)?;
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(DbError::sqlite("read the application id"))?;
    if version == SCHEMA_VERSION && application_id == APPLICATION_ID {
        return Ok(());
    }
    crate::retry_busy(|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock, or (unlikely) made the file
        // something else since the caller looked at it.
        if let Identity::Foreign(reason) = identify(&tx)? {
            return Ok(Err(Refusal::Foreign(reason)));
        }
        let version = user_version(&tx)?;
        if version > SCHEMA_VERSION {
            return Ok(Err(Refusal::TooNew(version)));
        }
        for migration in &MIGRATIONS[version as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        Ok(Ok(()))
    })
    .map_err(DbError::sqlite("migrate the schema"))?
    .or_else(|refusal| match refusal {
        Refusal::TooNew(found) => check(found),
        Refusal::Foreign(reason) => Err(DbError::NotALedger {
            path: path.to_path_buf(),
            reason,
        }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn identity(sql: &str) -> Identity {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        identify(&conn).unwrap()
    }

    #[test]
    fn files_are_told_apart_by_application_id_version_and_tables() {
        assert_eq!(identity(""), Identity::Empty);
        let ours = format!("PRAGMA application_id = {APPLICATION_ID};");
        assert_eq!(identity(&ours), Identity::Ledger);
        let old = format!("{V1} PRAGMA user_version = 1;");
        assert_eq!(identity(&old), Identity::Ledger);
        assert!(matches!(
            identity("CREATE TABLE foo (a)"),
            Identity::Foreign(r) if r == "its tables are foo"
        ));
        assert!(matches!(
            identity("PRAGMA application_id = 7; CREATE TABLE archives (a); CREATE TABLE events (b);"),
            Identity::Foreign(r) if r.contains("0x00000007")
        ));
        // Our tables without a version are not enough; nor is a version without tables.
        assert!(matches!(
            identity("CREATE TABLE archives (a); CREATE TABLE events (b);"),
            Identity::Foreign(r) if r.contains("like the ledger's but user_version 0")
        ));
        assert!(matches!(
            identity("PRAGMA user_version = 1"),
            Identity::Foreign(r) if r.contains("empty but its user_version is 1")
        ));
        assert!(matches!(
            identity("CREATE VIEW v AS SELECT 1"),
            Identity::Foreign(r) if r.contains("no tables")
        ));
        assert!(matches!(
            identity("CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE c (x); CREATE TABLE d (x);
                      CREATE TABLE e (x); CREATE TABLE f (x); CREATE TABLE g (x);"),
            Identity::Foreign(r) if r == "its tables are a, b, c, d, e and 2 more"
        ));
    }

    #[test]
    fn migrating_sets_the_application_id_and_a_fresh_ledger_is_then_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(identify(&conn).unwrap(), Identity::Ledger);
    }
}
