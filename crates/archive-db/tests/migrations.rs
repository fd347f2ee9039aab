//! Opening a fresh file, an old (version 1) file, and a file from the future.
#![allow(clippy::unwrap_used)]

use archive_db::schema::SCHEMA_VERSION;
use archive_db::{DbError, IncomingEvent, Ledger, PasswordOutcome};
use opentok_rest::model::ArchiveStatus;
use rusqlite::Connection;

/// The version 1 schema exactly as it shipped, kept here frozen: a file written by that build.
const V1_AS_SHIPPED: &str = r#"
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
PRAGMA user_version = 1;
"#;

const OLD_BODY: &str = r#"{"id":"0bd00000-0000-4000-8000-000000000001","event":"archive","status":"uploaded","sessionId":"S","partnerId":123456,"size":99,"password":"b2xk"}"#;

fn write_v1_file(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(V1_AS_SHIPPED).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO projects VALUES ('123456', '2024-01-01T00:00:00.000Z');
         INSERT INTO archives (id, project_id, session_id, status, status_rank, created_at, size, password,
                               raw_json, first_seen_at, changed_at)
         VALUES ('0bd00000-0000-4000-8000-000000000001', '123456', 'S', 'uploaded', 3, 1700000000000, 99, 'b2xk', '{body}',
                 '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z');
         INSERT INTO events (received_at, source, origin, kind, archive_id, body)
         VALUES ('2024-01-01T00:00:00.000Z', 'callback', '10.0.0.1:1', 'archive', '0bd00000-0000-4000-8000-000000000001', '{body}');",
        body = OLD_BODY.replace('\'', "''")
    ))
    .unwrap();
}

#[test]
fn a_fresh_file_opens_at_the_current_version_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 2) };
    drop(ledger);
    // Reopening is a no-op.
    assert_eq!(
        Ledger::open(&path).unwrap().schema_version().unwrap(),
        SCHEMA_VERSION
    );
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "WAL is a property of the file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the ledger is private: {mode:o}");
    }
}

#[test]
fn a_version_1_file_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    write_v1_file(&path);

    let mut ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    let old = ledger
        .archive("0bd00000-0000-4000-8000-000000000001")
        .unwrap()
        .unwrap();
    assert_eq!(old.status, ArchiveStatus::Uploaded);
    assert_eq!(old.password.as_deref(), Some("b2xk"));
    assert_eq!(old.size, 99);
    assert!(!old.password_conflict);
    assert_eq!(old.local_path, None);
    // The history starts with the status the old file had.
    let history = ledger
        .status_history("0bd00000-0000-4000-8000-000000000001")
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].status.as_str(), history[0].source.as_str()),
        ("uploaded", "migration")
    );
    assert_eq!(
        ledger
            .events(Some("0bd00000-0000-4000-8000-000000000001"))
            .unwrap()
            .len(),
        1
    );

    // And the rules of the new version apply to old rows.
    let conflict = OLD_BODY.replace("b2xk", "bmV3");
    let out = ledger
        .record_event(&IncomingEvent::from_callback(conflict.as_bytes(), "x").unwrap())
        .unwrap();
    assert_eq!(out.archive.unwrap().password, PasswordOutcome::Conflict);
    let late =
        r#"{"id":"0bd00000-0000-4000-8000-000000000001","event":"archive","status":"stopped"}"#;
    let out = ledger
        .record_event(&IncomingEvent::from_callback(late.as_bytes(), "x").unwrap())
        .unwrap();
    assert!(!out.archive.unwrap().status_applied);
    let now = ledger
        .archive("0bd00000-0000-4000-8000-000000000001")
        .unwrap()
        .unwrap();
    assert_eq!(now.password.as_deref(), Some("b2xk"));
    assert_eq!(now.conflicting_passwords, ["bmV3"]);
}

#[test]
fn several_processes_opening_an_old_file_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    write_v1_file(&path);
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Ledger::open(&path).map(|l| l.schema_version()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
    }
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(
        ledger
            .status_history("0bd00000-0000-4000-8000-000000000001")
            .unwrap()
            .len(),
        1,
        "the data migration ran once"
    );
}

#[test]
fn a_file_from_a_newer_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite3");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = Ledger::open(&path).unwrap_err();
    assert!(
        matches!(err, DbError::SchemaTooNew { found: 99, known } if known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade archivectl"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.sqlite3");
    std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(err.to_string().contains("garbage.sqlite3"), "{err}");
    let missing_dir = dir.path().join("no/such/dir/ledger.sqlite3");
    assert!(matches!(
        Ledger::open(&missing_dir),
        Err(DbError::Create { .. })
    ));
}
