//! Versioned migrations on both back ends: a fresh ledger at the current version, a version-1 ledger
//! migrated with its rows kept (and the data migration run once when several open it at once), a ledger of a
//! newer archivectl refused, and another program's database refused and left unchanged. (SQLite's own file
//! checks — WAL, permissions, application_id — stay in `tests/migrations.rs` and `src/ledger.rs`.)

use archive_db::schema::{MIGRATIONS, POSTGRES_MIGRATIONS, SCHEMA_VERSION};
use archive_db::{Backend, DbError, IncomingEvent, Ledger, LedgerLocation, PasswordOutcome};
use opentok_rest::model::ArchiveStatus;

use crate::support::TestDb;

const OLD: &str = "0bd00000-0000-4000-8000-000000000001";
const OLD_BODY: &str = r#"{"id":"0bd00000-0000-4000-8000-000000000001","event":"archive","status":"uploaded","sessionId":"S","partnerId":123456,"size":99,"password":"b2xk"}"#;

/// Runs `sql` on the database beside the ledger (not through it).
fn run(db: &TestDb, sql: &str) {
    match db.location() {
        LedgerLocation::Sqlite(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        LedgerLocation::Postgres(_) => db.pg_client().unwrap().batch_execute(sql).unwrap(),
    }
}

/// A ledger as version 1 of this back end wrote it, with one archive and its event.
fn write_v1(db: &TestDb) {
    match db.backend() {
        Backend::Sqlite => run(db, &format!("{} PRAGMA user_version = 1;", MIGRATIONS[0])),
        Backend::Postgres => run(
            db,
            &format!(
                "CREATE TABLE schema_version (application TEXT NOT NULL, version BIGINT NOT NULL);
                 INSERT INTO schema_version VALUES ('archivectl-ledger', 1); {}",
                POSTGRES_MIGRATIONS[0]
            ),
        ),
    }
    run(
        db,
        &format!(
            "INSERT INTO projects VALUES ('123456', '2024-01-01T00:00:00.000Z');
             INSERT INTO archives (id, project_id, session_id, status, status_rank, created_at, size, password,
                                   raw_json, first_seen_at, changed_at)
             VALUES ('{OLD}', '123456', 'S', 'uploaded', 3, 1700000000000, 99, 'b2xk', '{body}',
                     '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z');
             INSERT INTO events (received_at, source, origin, kind, archive_id, body)
             VALUES ('2024-01-01T00:00:00.000Z', 'callback', '10.0.0.1:1', 'archive', '{OLD}', '{body}');",
            body = OLD_BODY.replace('\'', "''")
        ),
    );
}

pub fn a_fresh_ledger_opens_at_the_current_version_and_reopens_unchanged(db: &TestDb) {
    let mut ledger = db.open();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    ledger
        .record_event(&IncomingEvent::from_callback(OLD_BODY.as_bytes(), "x").unwrap())
        .unwrap();
    drop(ledger);
    for _ in 0..2 {
        let again = db.open();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(again.counts().unwrap(), (1, 1));
    }
}

pub fn a_version_1_ledger_is_migrated_and_keeps_its_rows(db: &TestDb) {
    write_v1(db);
    let mut ledger = db.open();
    assert_eq!(ledger.schema_version().unwrap(), SCHEMA_VERSION);
    let old = ledger.archive(OLD).unwrap().unwrap();
    assert_eq!(
        (
            old.status,
            old.password.as_deref(),
            old.size,
            old.password_conflict,
            old.local_path
        ),
        (ArchiveStatus::Uploaded, Some("b2xk"), 99, false, None)
    );
    let history = ledger.status_history(OLD).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].status.as_str(), history[0].source.as_str()),
        ("uploaded", "migration")
    );
    assert_eq!(ledger.events(Some(OLD)).unwrap().len(), 1);
    // The rules of the new version apply to old rows; new rows get ids after the old ones.
    let conflict = OLD_BODY.replace("b2xk", "bmV3");
    let out = ledger
        .record_event(&IncomingEvent::from_callback(conflict.as_bytes(), "x").unwrap())
        .unwrap();
    assert!(out.event_id > 1);
    assert_eq!(out.archive.unwrap().password, PasswordOutcome::Conflict);
    let late = format!(r#"{{"id":"{OLD}","event":"archive","status":"stopped"}}"#);
    let out = ledger
        .record_event(&IncomingEvent::from_callback(late.as_bytes(), "x").unwrap())
        .unwrap();
    assert!(!out.archive.unwrap().status_applied);
    let now = ledger.archive(OLD).unwrap().unwrap();
    assert_eq!(now.password.as_deref(), Some("b2xk"));
    assert_eq!(now.conflicting_passwords, ["bmV3"]);
}

pub fn several_opening_an_old_ledger_at_once_migrate_it_once(db: &TestDb) {
    write_v1(db);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| Ledger::open_location(db.location()).map(|l| l.schema_version())))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
        }
    });
    assert_eq!(
        db.open().status_history(OLD).unwrap().len(),
        1,
        "the data migration ran once"
    );
}

pub fn several_opening_a_new_ledger_at_once_create_it_once(db: &TestDb) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| Ledger::open_location(db.location()).map(|l| l.schema_version())))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
        }
    });
    assert_eq!(db.open().counts().unwrap(), (0, 0));
}

pub fn a_ledger_of_a_newer_version_is_refused_and_left_alone(db: &TestDb) {
    drop(db.open());
    match db.backend() {
        Backend::Sqlite => run(db, "PRAGMA user_version = 99;"),
        Backend::Postgres => run(db, "UPDATE schema_version SET version = 99"),
    }
    let err = Ledger::open_location(db.location()).unwrap_err();
    assert!(
        matches!(err, DbError::SchemaTooNew { found: 99, known } if known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade archivectl"), "{err}");
    if let Some(mut client) = db.pg_client() {
        let v: i64 = client
            .query_one("SELECT version FROM schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, 99);
    }
}

pub fn another_programs_database_is_refused_and_left_unchanged(db: &TestDb) {
    run(
        db,
        "CREATE TABLE foo (a TEXT); INSERT INTO foo VALUES ('1'), ('x'); CREATE TABLE bar (b TEXT);",
    );
    let err = Ledger::open_location(db.location()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("is not an archivectl ledger"), "{msg}");
    assert!(msg.contains("left unchanged"), "{msg}");
    assert!(msg.contains("bar, foo") || msg.contains("foo"), "{msg}");
    match db.backend() {
        Backend::Sqlite => assert!(matches!(err, DbError::NotALedger { .. })),
        Backend::Postgres => {
            assert!(matches!(err, DbError::NotALedgerDatabase { .. }), "{msg}");
            let mut client = db.pg_client().unwrap();
            let tables: Vec<String> = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public' ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(tables, ["bar", "foo"], "nothing added");
        }
    }
}

crate::on_both!(
    a_fresh_ledger_opens_at_the_current_version_and_reopens_unchanged,
    a_version_1_ledger_is_migrated_and_keeps_its_rows,
    several_opening_an_old_ledger_at_once_migrate_it_once,
    several_opening_a_new_ledger_at_once_create_it_once,
    a_ledger_of_a_newer_version_is_refused_and_left_alone,
    another_programs_database_is_refused_and_left_unchanged,
);

#[test]
fn a_ledger_can_live_in_a_schema_of_its_own_beside_other_tables() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    run(
        &db,
        "CREATE TABLE someone_elses (a TEXT); CREATE SCHEMA ledger;",
    );
    // In the public schema, beside another program's table: refused.
    assert!(matches!(
        Ledger::open_location(db.location()),
        Err(DbError::NotALedgerDatabase { .. })
    ));
    let (_, password, _) = crate::support::server().unwrap();
    use archive_db::secrecy::ExposeSecret;
    let url = format!(
        "postgres://{}@{}:{}/{}?sslmode=disable&options=-c%20search_path%3Dledger",
        direct.user(),
        direct.host(),
        direct.port(),
        direct.dbname()
    );
    let config = archive_db::PostgresConfig::from_url(&url)
        .unwrap()
        .with_password(archive_db::secrecy::SecretString::from(
            password.expose_secret().to_owned(),
        ));
    assert!(
        config
            .redacted()
            .contains("options=-c+search_path%3Dledger"),
        "{}",
        config.redacted()
    );
    let location = LedgerLocation::Postgres(config);
    let mut ledger = Ledger::open_location(&location).unwrap();
    ledger
        .record_event(&IncomingEvent::from_callback(OLD_BODY.as_bytes(), "x").unwrap())
        .unwrap();
    assert_eq!(
        Ledger::open_location(&location).unwrap().counts().unwrap(),
        (1, 1)
    );
    let mut client = db.pg_client().unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM ledger.archives", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the ledger's tables are in its schema");
}
