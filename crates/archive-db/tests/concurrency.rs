//! Several writers at once — threads with their own connections, separate processes (this test binary run
//! again as a child: the ignored `child_writer_process`, run with `--ignored --exact`), and the group-commit
//! writer — lose nothing and never surface "database is locked".
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};

use archive_db::{GroupWriter, IncomingEvent, Ledger, PullRecord, WriterOptions};
use opentok_rest::model::ArchiveStatus;
use time::OffsetDateTime;

const CHILD_ENV: &str = "ARCHIVE_DB_TEST_CHILD";

/// A valid archive id (a UUID) named after `name`: the ledger takes only ids of the service's form.
fn uid(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("00000000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
}

fn event(name: &str, status: &str, extra: &str) -> IncomingEvent {
    let id = uid(name);
    let body =
        format!(r#"{{"id":"{id}","event":"archive","status":"{status}","sessionId":"S"{extra}}}"#);
    IncomingEvent::from_callback(body.as_bytes(), "test").unwrap()
}

/// Writes `n` distinct archives (each `started` then `uploaded` with a password) as writer `tag`, plus its
/// own status report of the shared archive, one transaction per event.
fn write_as(path: &Path, tag: &str, n: usize) {
    let mut ledger = Ledger::open(path).unwrap();
    for i in 0..n {
        let id = format!("{tag}-{i}");
        ledger.record_event(&event(&id, "started", "")).unwrap();
        ledger
            .record_event(&event(
                &id,
                "uploaded",
                r#","password":"cGFzcw==","size":7"#,
            ))
            .unwrap();
        if i % 10 == 0 {
            let status = ["started", "stopped", "uploaded"][i / 10 % 3];
            let pw = if status == "uploaded" {
                r#","password":"c2hhcmVk""#
            } else {
                ""
            };
            ledger.record_event(&event("shared", status, pw)).unwrap();
        }
    }
}

fn check(path: &Path, tags: &[String], n: usize) {
    let ledger = Ledger::open(path).unwrap();
    for tag in tags {
        for i in 0..n {
            let r = ledger
                .archive(&uid(&format!("{tag}-{i}")))
                .unwrap()
                .unwrap();
            assert_eq!(r.status, ArchiveStatus::Uploaded, "{tag}-{i}");
            assert_eq!(r.password.as_deref(), Some("cGFzcw=="));
        }
    }
    let shared = ledger.archive(&uid("shared")).unwrap().unwrap();
    assert_eq!(shared.status, ArchiveStatus::Uploaded);
    assert_eq!(shared.password.as_deref(), Some("c2hhcmVk"));
    let per_writer = 2 * n + n.div_ceil(10);
    assert_eq!(
        ledger.counts().unwrap(),
        (
            (tags.len() * n + 1) as u64,
            (tags.len() * per_writer) as u64
        )
    );
}

#[test]
fn threads_with_their_own_connections_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    Ledger::open(&path).unwrap();
    let tags: Vec<String> = (0..8).map(|t| format!("t{t}")).collect();
    let barrier = Arc::new(Barrier::new(tags.len() + 1));
    let writers: Vec<_> = tags
        .iter()
        .cloned()
        .map(|tag| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                write_as(&path, &tag, 60);
            })
        })
        .collect();
    // Meanwhile another connection records pulls of the shared archive's siblings as they appear.
    barrier.wait();
    let mut pulls = Ledger::open(&path).unwrap();
    let mut pulled = 0;
    while pulled < 20 {
        let id = format!("t0-{pulled}");
        if pulls.contains(&uid(&id)).unwrap() {
            pulls
                .record_pull(
                    &uid(&id),
                    &PullRecord {
                        local_path: PathBuf::from(format!("/out/{id}.ts")),
                        sha256: "ab".repeat(32),
                        measured_duration: Some(1.5),
                        verified_at: OffsetDateTime::now_utc(),
                    },
                )
                .unwrap();
            pulled += 1;
        } else {
            std::thread::yield_now();
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    check(&path, &tags, 60);
    // No lost update: the pulls recorded while the same rows were being upserted are all there.
    let ledger = Ledger::open(&path).unwrap();
    for i in 0..20 {
        let r = ledger.archive(&uid(&format!("t0-{i}"))).unwrap().unwrap();
        assert_eq!(
            r.local_path.as_deref(),
            Some(format!("/out/t0-{i}.ts").as_str())
        );
    }
}

/// Not a test: the writer process that `separate_processes_lose_nothing` runs (this binary again, with
/// `--ignored --exact child_writer_process`). Ignored so that it is never reported as a passing test; run
/// without its parent it fails.
#[test]
#[ignore = "a helper process, run by separate_processes_lose_nothing"]
fn child_writer_process() {
    let spec = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("run only as a child of separate_processes_lose_nothing ({CHILD_ENV} unset)")
    });
    let (path, tag) = spec.split_once('|').unwrap();
    write_as(Path::new(path), tag, 80);
}

#[test]
fn separate_processes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let tags: Vec<String> = (0..4).map(|t| format!("p{t}")).collect();
    // No one creates the file first: the processes race to create and migrate it too.
    let children: Vec<_> = tags
        .iter()
        .map(|tag| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "child_writer_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|{tag}", path.display()))
                // Its own `test result` line is not this binary's.
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // And this process writes too, through the group writer.
    let writer = GroupWriter::start(Ledger::open(&path).unwrap());
    let done: Vec<_> = (0..200)
        .map(|i| writer.submit(event(&format!("gw-{i}"), "available", "")))
        .collect();
    for d in done {
        d.wait().unwrap();
    }
    writer.shutdown().unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child writer failed");
    }
    check_with_extra(&path, &tags, 80, 200);
}

fn check_with_extra(path: &Path, tags: &[String], n: usize, extra: usize) {
    let ledger = Ledger::open(path).unwrap();
    for i in 0..extra {
        assert!(ledger.contains(&uid(&format!("gw-{i}"))).unwrap());
    }
    let (archives, events) = ledger.counts().unwrap();
    let per_writer = 2 * n + n.div_ceil(10);
    assert_eq!(archives, (tags.len() * n + 1 + extra) as u64);
    assert_eq!(events, (tags.len() * per_writer + extra) as u64);
    drop(ledger);
    // And the per-writer rows are all right.
    let ledger = Ledger::open(path).unwrap();
    for tag in tags {
        for i in 0..n {
            let r = ledger
                .archive(&uid(&format!("{tag}-{i}")))
                .unwrap()
                .unwrap();
            assert_eq!(r.status, ArchiveStatus::Uploaded);
        }
    }
}

#[test]
fn the_group_writer_batches_many_submitters_into_few_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let writer = Arc::new(GroupWriter::with_options(
        Ledger::open(&path).unwrap(),
        WriterOptions { max_batch: 64 },
    ));
    // No timing: another connection holds the write lock until every submitter has queued its burst, so
    // the events are waiting together when the writer gets the lock, however slow the machine.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let submitted = Arc::new(Barrier::new(33));
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let submitter = writer.submitter();
            let submitted = submitted.clone();
            std::thread::spawn(move || {
                // Submit a burst, then wait for all: many are queued while a commit runs.
                let pending: Vec<_> = (0..100)
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
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    // A second connection writing at the same time competes for the lock and must not fail.
    let mut other = Ledger::open(&path).unwrap();
    for i in 0..100 {
        other
            .record_event(&event(&format!("o-{i}"), "stopped", ""))
            .unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let writer = Arc::into_inner(writer).unwrap();
    let stats = writer.shutdown().unwrap();
    assert_eq!(stats.events, 3200);
    assert!(
        stats.commits < stats.events / 4,
        "events were batched: {stats:?}"
    );
    assert!(stats.largest_batch <= 64, "{stats:?}");
    assert_eq!(Ledger::open(&path).unwrap().counts().unwrap(), (3300, 3300));
}

#[test]
fn a_stopped_writer_reports_it_instead_of_pretending() {
    let dir = tempfile::tempdir().unwrap();
    let writer = GroupWriter::start(Ledger::open(dir.path().join("l.sqlite3")).unwrap());
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
    let ledger = Ledger::open(dir.path().join("l.sqlite3")).unwrap();
    assert!(ledger.contains(&uid("x")).unwrap() && !ledger.contains(&uid("y")).unwrap());
}
