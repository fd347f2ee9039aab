//! Every connection the ledger opens runs with what `schema` promises: `journal_mode=WAL` (readers never block
//! the writer), `synchronous=FULL` (a commit is on disk when it returns, which the receiver's "200 only when
//! durable" relies on) and `foreign_keys=ON` — read back from SQLite, on new files, reopened files, and
//! connections opened while another holds the write lock.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};

use archive_db::{IncomingEvent, Ledger};

/// SQLite's `PRAGMA synchronous` value for FULL.
const FULL: i64 = 2;

fn assert_durable(ledger: &Ledger, what: &str) {
    assert_eq!(
        ledger.pragmas().unwrap(),
        ("wal".to_string(), FULL, true),
        "{what}: (journal_mode, synchronous, foreign_keys)"
    );
}

#[test]
fn file_ledgers_run_with_wal_synchronous_full_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path).unwrap();
    assert_durable(&ledger, "a new file");
    let event = IncomingEvent::from_callback(
        br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"started","sessionId":"S"}"#,
        "test",
    )
    .unwrap();
    ledger.record_event(&event).unwrap();
    assert_durable(&ledger, "after a write");
    drop(ledger);
    assert_durable(&Ledger::open(&path).unwrap(), "a reopened file");

    // A 0-byte file (made a ledger on open).
    let empty = dir.path().join("empty.sqlite3");
    std::fs::write(&empty, b"").unwrap();
    assert_durable(&Ledger::open(&empty).unwrap(), "a 0-byte file");

    // A connection opened while another one holds the write lock.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let other = Ledger::open(&path).unwrap();
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_durable(&other, "opened during another writer's transaction");
}

#[test]
fn connections_opened_at_once_by_many_threads_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("ledger.sqlite3"));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Racing to create and migrate the same new file.
                let ledger = Ledger::open(path.as_path()).unwrap();
                assert_durable(&ledger, "opened concurrently");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_ledger_in_memory_checks_foreign_keys_too() {
    let ledger = Ledger::open_in_memory().unwrap();
    let (journal, _, foreign_keys) = ledger.pragmas().unwrap();
    assert_eq!((journal.as_str(), foreign_keys), ("memory", true));
}
