//! What `pull` and `sync` record and read beside the upsert rules (the unit tests of `pulls.rs` and
//! `digest.rs`, here on both back ends): pull attempts and deletions in order, the object's SHA-256 check,
//! the listing window `sync` compares with the service, and the CSV export.

use archive_db::{DbError, Deleted, EventSource, IncomingEvent, Ledger, PullCounts, PullRecord};
use time::OffsetDateTime;

use crate::support::TestDb;

const ID: &str = "5b1c0a77-2f7e-4d0a-9a55-6f4c1b2d3e4f";

fn with_archive(db: &TestDb, id: &str, extra: serde_json::Value) -> Ledger {
    let mut l = db.open();
    let mut v = serde_json::json!({"id": id, "status": "uploaded"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    let archive: opentok_rest::model::Archive = serde_json::from_value(v).unwrap();
    l.record_event(&IncomingEvent::from_archive(
        &archive,
        EventSource::Sync,
        "t",
    ))
    .unwrap();
    l
}

pub fn attempts_and_deletions_are_kept_separately_and_in_order(db: &TestDb) {
    let mut l = with_archive(db, ID, serde_json::json!({}));
    let now = OffsetDateTime::now_utc();
    l.record_failed_pull(ID, "not MPEG-TS", now).unwrap();
    let pull = PullRecord {
        local_path: "/out/a.ts".into(),
        sha256: "ab".repeat(32),
        measured_duration: Some(1.5),
        verified_at: now,
    };
    let counts = PullCounts {
        bytes: 1000,
        continuity_errors: 2,
        sync_losses: 0,
    };
    l.record_verified_pull(ID, &pull, counts).unwrap();
    l.record_deletion(ID, Deleted::Object, "1/a/archive.ts", now)
        .unwrap();
    assert!(l.archive(ID).unwrap().unwrap().remote_deleted_at.is_none());
    l.record_deletion(ID, Deleted::ServiceRecord, "http://svc", now)
        .unwrap();
    let attempts = l.pull_attempts(ID).unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[0].outcome.as_str(), attempts[0].reason.as_deref()),
        ("failed", Some("not MPEG-TS"))
    );
    assert_eq!(attempts[1].counts, Some(counts));
    let what: Vec<_> = l
        .deletions(ID)
        .unwrap()
        .into_iter()
        .map(|d| d.what)
        .collect();
    assert_eq!(what, ["object", "service_record"]);
    let row = l.archive(ID).unwrap().unwrap();
    assert!(row.verified_at.is_some() && row.remote_deleted_at.is_some());
    assert_eq!(
        (row.measured_duration, row.sha256.as_deref()),
        (Some(1.5), Some("ab".repeat(32).as_str()))
    );
    assert!(l.pending().unwrap().is_empty(), "pulled: no longer pending");
    // An archive the ledger does not know: an error, nothing recorded.
    let other = "5b1c0a77-2f7e-4d0a-9a55-000000000000";
    assert!(matches!(
        l.record_verified_pull(other, &pull, counts),
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        l.record_failed_pull(other, "x", now),
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        l.record_deletion(other, Deleted::Object, "k", now),
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        l.record_pull(other, &pull),
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        l.record_remote_delete(other, now),
        Err(DbError::NotFound(_))
    ));
    assert!(l.pull_attempts(other).unwrap().is_empty());
}

pub fn the_object_check_is_kept_beside_the_services_sha256sum(db: &TestDb) {
    let mut l = with_archive(
        db,
        ID,
        serde_json::json!({"password": "ZTQy", "sha256sum": "q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U="}),
    );
    let before = l.archive(ID).unwrap().unwrap();
    assert_eq!(
        before.service_sha256.as_deref(),
        Some("q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U=")
    );
    assert_eq!(
        (before.object_sha256, before.service_sha256_matched),
        (None, None)
    );
    let hex = "ab".repeat(32);
    l.record_object_sha256(ID, Some(&hex), Some(false)).unwrap();
    let after = l.archive(ID).unwrap().unwrap();
    assert_eq!(after.object_sha256.as_deref(), Some(hex.as_str()));
    assert_eq!(after.service_sha256_matched, Some(false));
    l.record_object_sha256(ID, Some(&hex), Some(true)).unwrap();
    assert_eq!(
        l.archive(ID).unwrap().unwrap().service_sha256_matched,
        Some(true)
    );
    let mut json = Vec::new();
    l.export_json(&mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json[0]["service_sha256_matched"], true);
    assert!(matches!(
        l.record_object_sha256("2d1a1f2c-0000-4000-8000-000000000000", None, None),
        Err(DbError::NotFound(_))
    ));
}

pub fn the_listing_window_names_what_the_service_must_list(db: &TestDb) {
    let mut l = db.open();
    let t = 1_700_000_000_000_i64;
    for (i, (created, session, status, project)) in [
        (t, "S1", "uploaded", 111),
        (t + 1000, "S2", "uploaded", 111),
        (t + 2000, "S1", "deleted", 111),
        (t + 3000, "S1", "available", 222),
        (0, "S1", "started", 111),
        (t + 5_000_000_000, "S1", "started", 111),
    ]
    .into_iter()
    .enumerate()
    {
        let body = serde_json::json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "event": "archive",
            "status": status, "sessionId": session, "createdAt": created, "partnerId": project});
        l.record_event(&IncomingEvent::from_callback(body.to_string().as_bytes(), "t").unwrap())
            .unwrap();
    }
    let id = |i: usize| format!("00000000-0000-4000-8000-{i:012}");
    assert_eq!(
        l.in_listing_window("111", None, None, t + 10_000).unwrap(),
        [id(0), id(1)]
    );
    assert_eq!(
        l.in_listing_window("111", Some("S1"), None, t + 10_000)
            .unwrap(),
        [id(0)]
    );
    assert_eq!(
        l.in_listing_window("111", None, Some(t + 1), t + 10_000)
            .unwrap(),
        [id(1)]
    );
    assert_eq!(
        l.in_listing_window("111", None, Some(t), i64::MAX).unwrap(),
        [id(0), id(1), id(5)],
        "a window with milliseconds beyond 32 bits"
    );
    assert!(
        l.in_listing_window("333", None, None, i64::MAX)
            .unwrap()
            .is_empty()
    );
}

pub fn the_csv_export_is_the_same_on_both(db: &TestDb) {
    let mut l = db.open();
    let bodies = [
        r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","status":"uploaded","name":"Q3, \"final\"","password":"ZTQy","createdAt":1700000000000,"partnerId":7}"#,
        r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c690","status":"started","name":"=cmd|' /C calc'!A0","createdAt":1700000000000}"#,
        r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c691","status":"stopped","name":"ümlaut\nnewline","size":12}"#,
    ];
    for body in bodies {
        l.record_event(&IncomingEvent::from_callback(body.as_bytes(), "test").unwrap())
            .unwrap();
    }
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("id,status,session_id,"));
    // Newest first, then by id (byte order on both back ends).
    assert!(
        lines[1]
            .starts_with("b40ef09b-3811-4726-b508-e41a0f96c68f,uploaded,,7,\"Q3, \"\"final\"\"\",")
    );
    assert!(
        lines[2].starts_with("b40ef09b-3811-4726-b508-e41a0f96c690,started,,,'=cmd|' /C calc'!A0,")
    );
    assert!(csv.contains("\"ümlaut\nnewline\""));
}

/// PostgreSQL's text cannot hold a NUL character, which JSON can carry (`\u0000`): such a callback is
/// recorded all the same on both back ends, its raw body exactly as received (JSON keeps the NUL escaped);
/// in the parsed columns PostgreSQL stores U+FFFD in its place.
pub fn a_nul_character_in_a_field_does_not_refuse_the_callback(db: &TestDb) {
    let mut l = db.open();
    let body = format!(
        r#"{{"id":"{ID}","event":"archive","status":"uploaded","name":"a\u0000b","sessionId":"S\u0000","password":"ZTQy"}}"#
    );
    l.record_event(&IncomingEvent::from_callback(body.as_bytes(), "t").unwrap())
        .unwrap();
    let r = l.archive(ID).unwrap().unwrap();
    let nul = match db.backend() {
        archive_db::Backend::Sqlite => '\0',
        archive_db::Backend::Postgres => '\u{fffd}',
    };
    assert_eq!(r.name.as_deref(), Some(format!("a{nul}b").as_str()));
    assert_eq!(r.session_id, format!("S{nul}"));
    assert_eq!(l.by_session(&format!("S{nul}")).unwrap().len(), 1);
    assert_eq!(
        l.events(Some(ID)).unwrap()[0].body,
        body,
        "the raw body exactly"
    );
    // A different password holding a NUL is a conflict; the same callback once more is a duplicate that
    // changes nothing (compared as stored, not as received).
    let again = l
        .record_event(
            &IncomingEvent::from_callback(body.replace("ZTQy", "ZT\\u0000y").as_bytes(), "t")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        again.archive.unwrap().password,
        archive_db::PasswordOutcome::Conflict
    );
    let nul_password = body.replace("ZTQy", "ZT\\u0000y");
    let twice = l
        .record_event(&IncomingEvent::from_callback(nul_password.as_bytes(), "t").unwrap())
        .unwrap()
        .archive
        .unwrap();
    assert!(!twice.changed, "a duplicate changes nothing");
    assert_eq!(
        l.archive(ID).unwrap().unwrap().conflicting_passwords.len(),
        1
    );
}

crate::on_both!(
    attempts_and_deletions_are_kept_separately_and_in_order,
    the_object_check_is_kept_beside_the_services_sha256sum,
    the_listing_window_names_what_the_service_must_list,
    the_csv_export_is_the_same_on_both,
    a_nul_character_in_a_field_does_not_refuse_the_callback,
);
