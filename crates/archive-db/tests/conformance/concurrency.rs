//! Several writers at once on one ledger — threads with connections of their own, two ledgers recording the
//! very same callback at the same moment, pulls recorded while the same rows are upserted — lose nothing,
//! double nothing and never surface "busy" (SQLite) or a deadlock (PostgreSQL).

use std::path::PathBuf;
use std::sync::Barrier;

use archive_db::{IncomingEvent, Ledger, PullRecord};
use opentok_rest::model::ArchiveStatus;
use time::OffsetDateTime;

use crate::support::TestDb;

/// A valid archive id (a UUID) named after `name`.
pub fn uid(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("00000000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
}

pub fn event(name: &str, status: &str, extra: &str) -> IncomingEvent {
    let id = uid(name);
    let body =
        format!(r#"{{"id":"{id}","event":"archive","status":"{status}","sessionId":"S"{extra}}}"#);
    IncomingEvent::from_callback(body.as_bytes(), "test").unwrap()
}

/// Writes `n` distinct archives (each `started` then `uploaded` with a password) as writer `tag`, plus its
/// own status report of the shared archive, one transaction per event.
fn write_as(ledger: &mut Ledger, tag: &str, n: usize) {
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

fn check(ledger: &Ledger, tags: &[String], n: usize) {
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
    assert!(!shared.password_conflict);
    let per_writer = 2 * n + n.div_ceil(10);
    assert_eq!(
        ledger.counts().unwrap(),
        (
            (tags.len() * n + 1) as u64,
            (tags.len() * per_writer) as u64
        )
    );
}

pub fn threads_with_their_own_connections_lose_nothing(db: &TestDb) {
    drop(db.open());
    let n = 40;
    let tags: Vec<String> = (0..6).map(|t| format!("t{t}")).collect();
    let barrier = Barrier::new(tags.len() + 1);
    std::thread::scope(|s| {
        let writers: Vec<_> = tags
            .iter()
            .map(|tag| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut ledger = db.open();
                    barrier.wait();
                    write_as(&mut ledger, tag, n);
                })
            })
            .collect();
        // Meanwhile another connection records pulls of some of the archives as they appear.
        barrier.wait();
        let mut pulls = db.open();
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
    });
    let ledger = db.open();
    check(&ledger, &tags, n);
    // No lost update: the pulls recorded while the same rows were being upserted are all there.
    for i in 0..20 {
        let r = ledger.archive(&uid(&format!("t0-{i}"))).unwrap().unwrap();
        assert_eq!(
            r.local_path.as_deref(),
            Some(format!("/out/t0-{i}.ts").as_str())
        );
    }
}

/// Two receivers given the same callback at once (the service retries on a slow answer): one archive row,
/// every event kept, nothing flagged. And two different reports of one archive at once (`stopped` and
/// `uploaded` with its password) end as `uploaded` with the password, whichever commits first.
pub fn two_ledgers_recording_the_same_callback_at_once_make_one_archive(db: &TestDb) {
    let rounds = 30;
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        for side in 0..2 {
            let barrier = &barrier;
            s.spawn(move || {
                let mut ledger = db.open();
                for i in 0..rounds {
                    let name = format!("same-{i}");
                    barrier.wait();
                    let outcome = ledger
                        .record_event(&event(
                            &name,
                            "uploaded",
                            r#","password":"cGFzcw==","size":9"#,
                        ))
                        .unwrap();
                    assert!(outcome.archive.is_some());
                    // A different report of another archive, from each side.
                    let status = if side == 0 { "stopped" } else { "uploaded" };
                    let pw = if side == 0 {
                        ""
                    } else {
                        r#","password":"c2Vjb25k""#
                    };
                    barrier.wait();
                    ledger
                        .record_event(&event(&format!("mixed-{i}"), status, pw))
                        .unwrap();
                }
            });
        }
    });
    let ledger = db.open();
    assert_eq!(
        ledger.counts().unwrap(),
        (2 * rounds as u64, 4 * rounds as u64)
    );
    for i in 0..rounds {
        let id = uid(&format!("same-{i}"));
        let r = ledger.archive(&id).unwrap().unwrap();
        assert_eq!(
            (r.status, r.size, r.password.as_deref()),
            (ArchiveStatus::Uploaded, 9, Some("cGFzcw=="))
        );
        assert!(!r.password_conflict);
        let history = ledger.status_history(&id).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].times_seen, 2, "both reports counted");
        assert_eq!(ledger.events(Some(&id)).unwrap().len(), 2, "no event lost");
        let mixed = ledger
            .archive(&uid(&format!("mixed-{i}")))
            .unwrap()
            .unwrap();
        assert_eq!(
            (mixed.status, mixed.password.as_deref()),
            (ArchiveStatus::Uploaded, Some("c2Vjb25k")),
            "the status moved forward only, whichever came first"
        );
        assert_eq!(ledger.status_history(&mixed.id).unwrap().len(), 2);
    }
}

crate::on_both!(
    threads_with_their_own_connections_lose_nothing,
    two_ledgers_recording_the_same_callback_at_once_make_one_archive,
);
