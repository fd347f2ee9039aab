//! The group-commit writer on both back ends: many submitters batched into few transactions while another
//! connection writes too, a stopped writer saying so, an event that fails failing alone, and the readiness
//! probe changing nothing.

use std::sync::{Arc, Barrier};

use archive_db::{Backend, GroupWriter, WriterOptions};

use crate::concurrency::{event, uid};
use crate::support::TestDb;

/// Something that holds off the writer's commits until dropped: SQLite's write lock taken by another
/// connection, or on PostgreSQL an exclusive lock on the events table.
enum Blocker {
    Sqlite(rusqlite::Connection),
    Postgres(::postgres::Client),
}

fn block_writes(db: &TestDb) -> Blocker {
    match db.backend() {
        Backend::Sqlite => {
            let archive_db::LedgerLocation::Sqlite(path) = db.location() else {
                unreachable!()
            };
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            Blocker::Sqlite(conn)
        }
        Backend::Postgres => {
            let mut client = db.pg_client().unwrap();
            client
                .batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
                .unwrap();
            Blocker::Postgres(client)
        }
    }
}

impl Blocker {
    fn release(self) {
        match self {
            Self::Sqlite(conn) => conn.execute_batch("ROLLBACK").unwrap(),
            Self::Postgres(mut client) => client.batch_execute("ROLLBACK").unwrap(),
        }
    }
}

pub fn the_group_writer_batches_many_submitters_into_few_commits(db: &TestDb) {
    let writer = Arc::new(GroupWriter::with_options(
        db.open(),
        WriterOptions { max_batch: 64 },
    ));
    // No timing: another connection holds off the writer until every submitter has queued its burst, so
    // the events are waiting together when the writer gets through, however slow the machine.
    let blocker = block_writes(db);
    let submitters = 16;
    let submitted = Arc::new(Barrier::new(submitters + 1));
    let threads: Vec<_> = (0..submitters)
        .map(|t| {
            let submitter = writer.submitter();
            let submitted = submitted.clone();
            std::thread::spawn(move || {
                let pending: Vec<_> = (0..50)
                    .map(|i| {
                        submitter.submit(event(
                            &format!("w{t}-{i}"),
                            "uploaded",
                            r#","password":"cGFzcw==""#,
                        ))
                    })
                    .collect();
                submitted.wait();
                for p in pending {
                    let outcome = p.wait().unwrap();
                    assert!(outcome.archive.unwrap().inserted);
                }
            })
        })
        .collect();
    submitted.wait();
    blocker.release();
    // A second connection writing at the same time must not fail.
    let mut other = db.open();
    for i in 0..50 {
        other
            .record_event(&event(&format!("o-{i}"), "stopped", ""))
            .unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let writer = Arc::into_inner(writer).unwrap();
    let stats = writer.shutdown().unwrap();
    assert_eq!(stats.events, 800);
    assert!(
        stats.commits < stats.events / 4,
        "events were batched: {stats:?}"
    );
    assert!(stats.largest_batch <= 64, "{stats:?}");
    assert_eq!(db.open().counts().unwrap(), (850, 850));
}

pub fn a_stopped_writer_reports_it_instead_of_pretending(db: &TestDb) {
    let writer = GroupWriter::start(db.open());
    let submitter = writer.submitter();
    let first = submitter.submit(event("x", "started", ""));
    // Shutting down with a submitter still around: what was queued is written, then the thread stops.
    writer.shutdown().unwrap();
    assert!(first.wait().unwrap().archive.unwrap().inserted);
    let late = submitter.submit(event("y", "started", ""));
    assert!(matches!(
        late.wait(),
        Err(archive_db::DbError::WriterStopped)
    ));
    let ledger = db.open();
    assert!(ledger.contains(&uid("x")).unwrap() && !ledger.contains(&uid("y")).unwrap());
}

/// Makes the database refuse events about the archive named `name` (a trigger), as a full disk or a
/// constraint would.
fn refuse(db: &TestDb, name: &str) {
    let id = uid(name);
    match db.backend() {
        Backend::Sqlite => {
            let archive_db::LedgerLocation::Sqlite(path) = db.location() else {
                unreachable!()
            };
            rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(&format!(
                    "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.archive_id = '{id}'
                     BEGIN SELECT RAISE(ABORT, 'refused by test'); END;"
                ))
                .unwrap();
        }
        Backend::Postgres => {
            db.pg_client()
                .unwrap()
                .batch_execute(&format!(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN RAISE EXCEPTION 'refused by test'; END $$;
                     CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW
                     WHEN (NEW.archive_id = '{id}') EXECUTE FUNCTION refuse();"
                ))
                .unwrap();
        }
    }
}

pub fn an_event_that_fails_fails_alone_and_the_rest_of_the_batch_commits(db: &TestDb) {
    let mut l = db.open();
    refuse(db, "bad");
    let (a, bad, b) = (
        event("a", "started", ""),
        event("bad", "started", ""),
        event("b", "started", ""),
    );
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
    // Through the writer: only the failing submission fails.
    let writer = GroupWriter::start(l);
    let ok = writer.submit(event("c", "started", ""));
    let refused = writer.submit(event("bad", "uploaded", ""));
    assert!(ok.wait().is_ok());
    assert!(
        refused
            .wait()
            .unwrap_err()
            .to_string()
            .contains("refused by test")
    );
    writer.shutdown().unwrap();
    assert_eq!(db.open().counts().unwrap(), (3, 3));
}

pub fn a_readiness_probe_changes_nothing_and_fails_when_writes_are_refused(db: &TestDb) {
    let mut ledger = db.open();
    ledger.probe_write().unwrap();
    assert_eq!(ledger.counts().unwrap(), (0, 0));
    ledger.record_event(&event("p", "started", "")).unwrap();
    ledger.probe_write().unwrap();
    assert_eq!(ledger.counts().unwrap(), (1, 1));
    // Every event refused: the probe says so.
    match db.backend() {
        Backend::Sqlite => {
            let archive_db::LedgerLocation::Sqlite(path) = db.location() else {
                unreachable!()
            };
            rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(
                    "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
                )
                .unwrap();
        }
        Backend::Postgres => {
            db.pg_client()
                .unwrap()
                .batch_execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN RAISE EXCEPTION 'disk says no'; END $$;
                     CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse();",
                )
                .unwrap();
        }
    }
    let err = ledger.probe_write().unwrap_err();
    assert!(err.to_string().contains("disk says no"), "{err}");
    assert!(!err.is_unavailable());
}

crate::on_both!(
    the_group_writer_batches_many_submitters_into_few_commits,
    a_stopped_writer_reports_it_instead_of_pretending,
    an_event_that_fails_fails_alone_and_the_rest_of_the_batch_commits,
    a_readiness_probe_changes_nothing_and_fails_when_writes_are_refused,
);
