//! Every upsert rule of the ledger, through the public API, with bodies shaped like the service's callbacks
//! (moved here from `tests/upsert_rules.rs`, so that they run on both back ends).

use archive_db::{
    ArchiveFilter, CertificateRecord, DbError, EventSource, IncomingEvent, Ledger, PasswordOutcome,
    PullRecord,
};
use opentok_rest::model::{Archive, ArchiveStatus};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::support::TestDb;

const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

/// A valid archive id (a UUID) whose last group spells `name` in hex (at most 6 bytes).
fn uid(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("00000000-0000-4000-8000-{hex:0>12}")
}

/// The name [`uid`] made `id` from.
fn name_of(id: &str) -> String {
    let hex = &id[24..];
    (0..12)
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .filter(|b| *b != 0)
        .map(char::from)
        .collect()
}

fn body(status: &str, extra: Value) -> Vec<u8> {
    let mut v = json!({
        "id": ID, "event": "archive", "createdAt": 1384221380000i64, "duration": 0, "name": "Foo",
        "partnerId": 123456, "reason": "", "sessionId": "2_MX40NzIwMzJ", "size": 0, "status": status
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::to_vec(&v).unwrap()
}

fn post(ledger: &mut Ledger, status: &str, extra: Value) -> archive_db::ArchiveOutcome {
    let ev = IncomingEvent::from_callback(&body(status, extra), "203.0.113.9:443").unwrap();
    ledger.record_event(&ev).unwrap().archive.unwrap()
}

fn status_of(ledger: &Ledger) -> ArchiveStatus {
    ledger.archive(ID).unwrap().unwrap().status
}

pub fn status_moves_forward_only_and_late_ones_stay_in_the_history(db: &TestDb) {
    let mut l = db.open();
    assert!(post(&mut l, "started", json!({})).inserted);
    assert!(post(&mut l, "stopped", json!({})).status_applied);
    let up = post(
        &mut l,
        "uploaded",
        json!({"size": 18023312, "password": "e42c"}),
    );
    assert!(up.status_applied);
    assert_eq!(up.status, ArchiveStatus::Uploaded);

    // The service retries; a late `stopped` (and an even later `started`) arrive after `uploaded`.
    let late = post(&mut l, "stopped", json!({"updatedAt": 1384221390000i64}));
    assert!(!late.status_applied);
    assert_eq!(late.status, ArchiveStatus::Uploaded);
    assert!(!post(&mut l, "started", json!({})).status_applied);
    assert_eq!(status_of(&l), ArchiveStatus::Uploaded);

    let history = l.status_history(ID).unwrap();
    let seen: Vec<(&str, bool)> = history
        .iter()
        .map(|h| (h.status.as_str(), h.applied))
        .collect();
    assert_eq!(
        seen,
        [
            ("started", true),
            ("stopped", true),
            ("uploaded", true),
            ("stopped", false)
        ],
        "{history:#?}"
    );
    assert_eq!(history[0].times_seen, 2, "started was received twice");
    assert_eq!(
        history[3].service_updated_at.as_deref(),
        Some("2013-11-12T01:56:30.000Z")
    );

    // Later stages still apply.
    assert!(post(&mut l, "expired", json!({})).status_applied);
    assert!(post(&mut l, "deleted", json!({})).status_applied);
    assert!(!post(&mut l, "available", json!({})).status_applied);
    assert_eq!(status_of(&l), ArchiveStatus::Deleted);
}

pub fn started_and_paused_alternate_by_the_service_clock(db: &TestDb) {
    let mut l = db.open();
    post(&mut l, "started", json!({"updatedAt": 1000}));
    assert!(post(&mut l, "paused", json!({"updatedAt": 2000})).status_applied);
    assert!(post(&mut l, "started", json!({"updatedAt": 3000})).status_applied);
    // A paused sent before that resume, arriving late:
    assert!(!post(&mut l, "paused", json!({"updatedAt": 2500})).status_applied);
    assert_eq!(status_of(&l), ArchiveStatus::Started);
    // Without the service's clock, arrival order decides.
    assert!(post(&mut l, "paused", json!({})).status_applied);
    assert_eq!(status_of(&l), ArchiveStatus::Paused);
}

pub fn the_first_outcome_stays_and_unknown_statuses_never_replace_known_ones(db: &TestDb) {
    let mut l = db.open();
    post(&mut l, "uploaded", json!({}));
    assert!(!post(&mut l, "failed", json!({"reason": "upload failed"})).status_applied);
    assert!(!post(&mut l, "transcoding", json!({})).status_applied);
    let r = l.archive(ID).unwrap().unwrap();
    assert_eq!(r.status, ArchiveStatus::Uploaded);
    assert_eq!(
        r.reason.as_deref(),
        Some(""),
        "a late event's fields are not applied"
    );
    let statuses: Vec<String> = l
        .status_history(ID)
        .unwrap()
        .into_iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(statuses, ["uploaded", "failed", "transcoding"]);

    // An archive first seen in a status we do not know is recorded as such, and a known one replaces it.
    let odd = br#"{"id":"00000000-0000-4000-8000-0000006f6464","event":"archive","status":"transcoding"}"#;
    l.record_event(&IncomingEvent::from_callback(odd, "x").unwrap())
        .unwrap();
    assert_eq!(
        l.archive("00000000-0000-4000-8000-0000006f6464")
            .unwrap()
            .unwrap()
            .status,
        ArchiveStatus::Unknown("transcoding".into())
    );
    let known =
        br#"{"id":"00000000-0000-4000-8000-0000006f6464","event":"archive","status":"stopped"}"#;
    l.record_event(&IncomingEvent::from_callback(known, "x").unwrap())
        .unwrap();
    assert_eq!(
        l.archive("00000000-0000-4000-8000-0000006f6464")
            .unwrap()
            .unwrap()
            .status,
        ArchiveStatus::Stopped
    );
}

pub fn a_known_password_is_never_replaced_by_an_empty_or_missing_one(db: &TestDb) {
    let mut l = db.open();
    assert_eq!(
        post(&mut l, "started", json!({"password": ""})).password,
        PasswordOutcome::NoPassword
    );
    assert_eq!(
        post(&mut l, "uploaded", json!({"password": "e42c/d23+=="})).password,
        PasswordOutcome::Recorded
    );
    for extra in [
        json!({"password": ""}),
        json!({"password": null}),
        json!({"password": "   "}),
        json!({}),
    ] {
        // Same status (applied) and a later one: neither may empty the password.
        assert_eq!(
            post(&mut l, "uploaded", extra.clone()).password,
            PasswordOutcome::KeptOverMissing
        );
        post(&mut l, "expired", extra);
        assert_eq!(
            l.archive(ID).unwrap().unwrap().password.as_deref(),
            Some("e42c/d23+==")
        );
    }
    assert_eq!(
        post(&mut l, "expired", json!({"password": "e42c/d23+=="})).password,
        PasswordOutcome::Unchanged
    );
    assert!(!l.archive(ID).unwrap().unwrap().password_conflict);
}

pub fn a_password_from_a_late_event_still_fills_a_missing_one(db: &TestDb) {
    let mut l = db.open();
    post(&mut l, "uploaded", json!({}));
    let late = post(&mut l, "stopped", json!({"password": "bGF0ZQ=="}));
    assert!(!late.status_applied);
    assert_eq!(late.password, PasswordOutcome::Recorded);
    assert_eq!(
        l.archive(ID).unwrap().unwrap().password.as_deref(),
        Some("bGF0ZQ==")
    );
}

pub fn a_different_password_is_kept_and_flagged_as_a_conflict(db: &TestDb) {
    let mut l = db.open();
    post(&mut l, "uploaded", json!({"password": "first"}));
    assert_eq!(
        post(&mut l, "uploaded", json!({"password": "second"})).password,
        PasswordOutcome::Conflict
    );
    post(&mut l, "available", json!({"password": "second"}));
    post(&mut l, "uploaded", json!({"password": "third"}));

    let r = l.archive(ID).unwrap().unwrap();
    assert_eq!(r.password.as_deref(), Some("first"));
    assert!(r.password_conflict);
    assert_eq!(r.conflicting_passwords, ["second", "third"]);

    // Visible in every query and export.
    let listed = l.list(&ArchiveFilter::default()).unwrap();
    assert!(listed[0].password_conflict);
    let mut json_out = Vec::new();
    l.export_json(&mut json_out).unwrap();
    let exported: Value = serde_json::from_slice(&json_out).unwrap();
    assert_eq!(exported[0]["password_conflict"], json!(true));
    assert_eq!(
        exported[0]["conflicting_passwords"],
        json!(["second", "third"])
    );
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("password"), "first");
    assert_eq!(col("password_conflict"), "true");
}

pub fn size_and_duration_are_not_overwritten_by_zero(db: &TestDb) {
    let mut l = db.open();
    post(
        &mut l,
        "stopped",
        json!({"size": 18023312, "duration": 328}),
    );
    post(&mut l, "uploaded", json!({"size": 0, "duration": 0}));
    let r = l.archive(ID).unwrap().unwrap();
    assert_eq!((r.size, r.duration), (18023312, 328));
    assert_eq!(r.status, ArchiveStatus::Uploaded);
    // A real new value from an applied event does replace it.
    post(&mut l, "uploaded", json!({"size": 18023400}));
    assert_eq!(l.archive(ID).unwrap().unwrap().size, 18023400);
    // A late event's non-zero value does not (it is older than what we have)...
    post(&mut l, "stopped", json!({"size": 5}));
    assert_eq!(l.archive(ID).unwrap().unwrap().size, 18023400);
    // ...but fills a zero.
    let fresh = br#"{"id":"00000000-0000-4000-8000-00000000007a","event":"archive","status":"uploaded","size":0}"#;
    let late = br#"{"id":"00000000-0000-4000-8000-00000000007a","event":"archive","status":"stopped","size":77,"duration":3}"#;
    for b in [&fresh[..], &late[..]] {
        l.record_event(&IncomingEvent::from_callback(b, "x").unwrap())
            .unwrap();
    }
    let z = l
        .archive("00000000-0000-4000-8000-00000000007a")
        .unwrap()
        .unwrap();
    assert_eq!(
        (z.size, z.duration, z.status),
        (77, 3, ArchiveStatus::Uploaded)
    );
}

pub fn other_fields_are_not_emptied_either(db: &TestDb) {
    let mut l = db.open();
    post(&mut l, "started", json!({}));
    let bare =
        br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"stopped"}"#;
    l.record_event(&IncomingEvent::from_callback(bare, "x").unwrap())
        .unwrap();
    let r = l.archive(ID).unwrap().unwrap();
    assert_eq!(r.status, ArchiveStatus::Stopped);
    assert_eq!(r.session_id, "2_MX40NzIwMzJ");
    assert_eq!(r.project_id.as_deref(), Some("123456"));
    assert_eq!(r.created_at.as_deref(), Some("2013-11-12T01:56:20.000Z"));
    assert_eq!(r.name.as_deref(), Some("Foo"));
}

pub fn duplicates_are_harmless(db: &TestDb) {
    let mut l = db.open();
    let b = body(
        "uploaded",
        json!({"size": 10, "password": "cGFzcw==", "updatedAt": 5}),
    );
    let first = l
        .record_event(&IncomingEvent::from_callback(&b, "x").unwrap())
        .unwrap();
    assert!(first.archive.as_ref().unwrap().changed);
    let before = l.archive_details(ID).unwrap().unwrap();
    for _ in 0..3 {
        let again = l
            .record_event(&IncomingEvent::from_callback(&b, "x").unwrap())
            .unwrap();
        let a = again.archive.unwrap();
        assert!(!a.changed && !a.inserted);
        assert_eq!(a.password, PasswordOutcome::Unchanged);
    }
    let after = l.archive_details(ID).unwrap().unwrap();
    assert_eq!(after.record, before.record, "the archive row is untouched");
    assert_eq!(after.raw, before.raw);
    assert_eq!(after.status_history.len(), 1);
    assert_eq!(after.status_history[0].times_seen, 4);
    assert_eq!(
        l.events(Some(ID)).unwrap().len(),
        4,
        "every raw event is kept"
    );
    assert_eq!(l.counts().unwrap(), (1, 4));
}

pub fn raw_events_keep_body_source_origin_and_kind(db: &TestDb) {
    let mut l = db.open();
    let other = br#"{"event":"streamCreated","sessionId":"S","stream":{"id":"x"}}"#;
    let out = l
        .record_event(&IncomingEvent::from_callback(other, "198.51.100.4:5555").unwrap())
        .unwrap();
    assert!(out.archive.is_none());
    let archive: Archive = serde_json::from_value(
        json!({"id": "00000000-0000-4000-8000-000000007331", "status": "available",
        "url": "https://example/archive.mp4", "sessionId": "S"}),
    )
    .unwrap();
    l.record_event(&IncomingEvent::from_archive(
        &archive,
        EventSource::Sync,
        "https://api.opentok.com",
    ))
    .unwrap();
    let events = l.events(None).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (
            events[0].kind.as_str(),
            events[0].source.as_str(),
            events[0].origin.as_str()
        ),
        ("streamCreated", "callback", "198.51.100.4:5555")
    );
    assert_eq!(events[0].body.as_bytes(), other);
    assert_eq!(events[0].archive_id, None);
    assert_eq!(
        (
            events[1].kind.as_str(),
            events[1].source.as_str(),
            events[1].archive_id.as_deref()
        ),
        (
            "archive",
            "sync",
            Some("00000000-0000-4000-8000-000000007331")
        )
    );
    assert_eq!(
        l.status_history("00000000-0000-4000-8000-000000007331")
            .unwrap()[0]
            .source,
        "sync"
    );
    assert_eq!(
        l.archive("00000000-0000-4000-8000-000000007331")
            .unwrap()
            .unwrap()
            .url
            .as_deref(),
        Some("https://example/archive.mp4")
    );
}

pub fn queries_by_id_session_status_and_pending_work(db: &TestDb) {
    let mut l = db.open();
    let rec = |l: &mut Ledger, id: &str, status: &str, session: &str, created: i64, pw: &str| {
        let b = json!({"id": uid(id), "event": "archive", "status": status, "sessionId": session,
            "partnerId": 100, "createdAt": created, "password": pw});
        l.record_event(
            &IncomingEvent::from_callback(&serde_json::to_vec(&b).unwrap(), "x").unwrap(),
        )
        .unwrap();
    };
    rec(&mut l, "a", "uploaded", "S1", 1_000, "cGFzcw==");
    rec(&mut l, "b", "uploaded", "S1", 2_000, "");
    rec(&mut l, "c", "started", "S2", 3_000, "");
    rec(&mut l, "d", "available", "S2", 4_000, "cGFzcw==");
    rec(&mut l, "e", "failed", "S2", 5_000, "");

    assert!(
        l.archive("00000000-0000-4000-8000-00006e6f7065")
            .unwrap()
            .is_none()
    );
    let ids = |v: Vec<archive_db::ArchiveRecord>| {
        v.into_iter().map(|r| name_of(&r.id)).collect::<Vec<_>>()
    };
    assert_eq!(ids(l.by_session("S1").unwrap()), ["b", "a"], "newest first");
    assert_eq!(
        ids(l.by_status(&ArchiveStatus::Uploaded).unwrap()),
        ["b", "a"]
    );
    let filter = ArchiveFilter {
        status: Some(ArchiveStatus::Available),
        session_id: Some("S2".into()),
        project_id: Some("100".into()),
    };
    assert_eq!(ids(l.list(&filter).unwrap()), ["d"]);

    // No certificate known: an archive without a password is taken as unencrypted.
    assert_eq!(ids(l.pending().unwrap()), ["d", "b", "a"]);
    // Unless its project is unknown (a callback without partnerId/projectId): the ledger cannot tell.
    l.record_event(
        &IncomingEvent::from_callback(br#"{"id":"00000000-0000-4000-8000-000000000066","status":"uploaded","createdAt":6000}"#, "x")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ids(l.pending().unwrap()), ["d", "b", "a"]);
    assert_eq!(ids(l.awaiting_password().unwrap()), ["f"]);
    l.record_event(
        &IncomingEvent::from_callback(
            br#"{"id":"00000000-0000-4000-8000-000000000066","status":"uploaded","partnerId":100,"createdAt":6000,"password":"cGFzcw=="}"#,
            "x",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(ids(l.pending().unwrap()), ["f", "d", "b", "a"]);
    assert!(l.awaiting_password().unwrap().is_empty());
    l.record_pull(
        "00000000-0000-4000-8000-000000000066",
        &PullRecord {
            local_path: "/srv/archives/f.ts".into(),
            sha256: "00".repeat(32),
            measured_duration: None,
            verified_at: datetime!(2024-05-01 12:00 UTC),
        },
    )
    .unwrap();
    // A certificate was active from before all of them: "b" must be encrypted but has no password yet.
    let cert = CertificateRecord {
        fingerprint: "ab".repeat(32),
        project_id: Some("100".into()),
        subject: "CN=archives".into(),
        not_after: "2030-01-01T00:00:00Z".into(),
        pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
    };
    l.record_certificate(&cert).unwrap();
    l.activate_certificate(
        "100",
        Some(&cert.fingerprint),
        datetime!(1970-01-01 0:00 UTC),
    )
    .unwrap();
    assert_eq!(ids(l.pending().unwrap()), ["d", "a"]);
    assert_eq!(ids(l.awaiting_password().unwrap()), ["b"]);
    // Encryption turned off between "a" and "b": "b" is plain after all.
    l.activate_certificate("100", None, datetime!(1970-01-01 0:00:01.5 UTC))
        .unwrap();
    assert_eq!(ids(l.pending().unwrap()), ["d", "b", "a"]);
    assert!(l.awaiting_password().unwrap().is_empty());
    assert_eq!(
        l.active_certificate("100", datetime!(1970-01-01 0:00:01 UTC))
            .unwrap()
            .map(|c| c.fingerprint),
        Some(cert.fingerprint.clone())
    );
    assert_eq!(
        l.active_certificate("100", datetime!(1970-01-01 0:00:02 UTC))
            .unwrap(),
        None
    );

    // Pulled and deleted archives are no longer pending.
    l.record_pull(
        "00000000-0000-4000-8000-000000000061",
        &PullRecord {
            local_path: "/srv/archives/a.ts".into(),
            sha256: "00".repeat(32),
            measured_duration: Some(328.04),
            verified_at: datetime!(2024-05-01 12:00 UTC),
        },
    )
    .unwrap();
    l.record_remote_delete(
        "00000000-0000-4000-8000-000000000064",
        datetime!(2024-05-02 08:30 UTC),
    )
    .unwrap();
    assert_eq!(ids(l.pending().unwrap()), ["b"]);
    let a = l
        .archive("00000000-0000-4000-8000-000000000061")
        .unwrap()
        .unwrap();
    assert_eq!(a.local_path.as_deref(), Some("/srv/archives/a.ts"));
    assert_eq!(a.measured_duration, Some(328.04));
    assert_eq!(a.verified_at.as_deref(), Some("2024-05-01T12:00:00.000Z"));
    assert_eq!(
        l.archive("00000000-0000-4000-8000-000000000064")
            .unwrap()
            .unwrap()
            .remote_deleted_at
            .as_deref(),
        Some("2024-05-02T08:30:00.000Z")
    );
    // A later callback does not undo our facts.
    rec(&mut l, "a", "expired", "S1", 1_000, "");
    assert_eq!(
        l.archive("00000000-0000-4000-8000-000000000061")
            .unwrap()
            .unwrap()
            .local_path
            .as_deref(),
        Some("/srv/archives/a.ts")
    );

    assert!(matches!(
        l.record_remote_delete("00000000-0000-4000-8000-00006e6f7065", datetime!(2024-05-02 08:30 UTC)),
        Err(DbError::NotFound(id)) if id == "00000000-0000-4000-8000-00006e6f7065"
    ));
}

pub fn private_keys_are_refused(db: &TestDb) {
    let mut l = db.open();
    let err = l
        .record_certificate(&CertificateRecord {
            fingerprint: "00".into(),
            project_id: None,
            subject: String::new(),
            not_after: String::new(),
            pem: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".into(),
        })
        .unwrap_err();
    assert!(matches!(err, DbError::PrivateKey));
}

pub fn export_json_carries_the_documented_fields(db: &TestDb) {
    let mut l = db.open();
    post(
        &mut l,
        "uploaded",
        json!({"size": 18023312, "password": "e42c"}),
    );
    let mut out = Vec::new();
    l.export_json(&mut out).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let obj = v[0].as_object().unwrap();
    for key in [
        "id",
        "status",
        "session_id",
        "created_at",
        "size",
        "password",
        "local_path",
        "sha256",
        "measured_duration",
        "remote_deleted_at",
    ] {
        assert!(obj.contains_key(key), "{key} missing from {obj:?}");
    }
    assert_eq!(obj["status"], json!("uploaded"));
    assert_eq!(obj["size"], json!(18023312));
    assert_eq!(obj["created_at"], json!("2013-11-12T01:56:20.000Z"));
    let details = l.archive_details(ID).unwrap().unwrap();
    assert_eq!(details.raw["password"], json!("e42c"));
}

pub fn no_row_and_no_event_for_an_id_that_is_not_the_services(db: &TestDb) {
    let mut l = db.open();
    for bad in [
        "../../etc/passwd",
        "a1",
        "B40EF09B38114726B508E41A0F96C68F",
        "",
    ] {
        let archive: Archive =
            serde_json::from_value(json!({"id": bad, "status": "uploaded", "password": "cA=="}))
                .unwrap();
        let err = l
            .record_event(&IncomingEvent::from_archive(
                &archive,
                EventSource::Sync,
                "x",
            ))
            .unwrap_err();
        assert!(matches!(err, DbError::InvalidArchiveId(_)), "{bad}: {err}");
        assert!(err.to_string().contains("not an archive id"), "{err}");
    }
    assert_eq!(l.counts().unwrap(), (0, 0), "nothing written");
    // Either case is the service's form.
    let upper: Archive =
        serde_json::from_value(json!({"id": ID.to_uppercase(), "status": "started"})).unwrap();
    l.record_event(&IncomingEvent::from_archive(&upper, EventSource::Sync, "x"))
        .unwrap();
}

pub fn every_event_says_how_it_was_authenticated(db: &TestDb) {
    let mut l = db.open();
    let cb = || IncomingEvent::from_callback(&body("started", json!({})), "p").unwrap();
    l.record_event(&cb()).unwrap();
    l.record_event(&cb().authenticated(archive_db::EventAuth::Token))
        .unwrap();
    l.record_event(&cb().authenticated(archive_db::EventAuth::Signature))
        .unwrap();
    let archive: Archive = serde_json::from_value(json!({"id": ID, "status": "started"})).unwrap();
    l.record_event(&IncomingEvent::from_archive(
        &archive,
        EventSource::Sync,
        "api",
    ))
    .unwrap();
    let auth: Vec<Option<String>> = l
        .events(None)
        .unwrap()
        .into_iter()
        .map(|e| e.auth)
        .collect();
    assert_eq!(
        auth,
        [Some("none"), Some("token"), Some("signature"), Some("api")].map(|a| a.map(String::from))
    );
}

pub fn the_rest_api_corrects_a_terminal_status_from_a_callback_with_the_history_kept(db: &TestDb) {
    for forged in ["failed", "deleted", "expired"] {
        let fresh = db.another();
        let mut l = fresh.open();
        post(&mut l, "stopped", json!({}));
        // A forged (or stale) callback says the archive is gone or failed...
        post(&mut l, forged, json!({}));
        assert_eq!(status_of(&l).as_str(), forged);
        // ...the service, listed by sync, says it is uploaded: the service wins.
        let listed: Archive = serde_json::from_value(json!({"id": ID, "status": "uploaded",
            "password": "cGFzcw==", "size": 4096}))
        .unwrap();
        let out = l
            .record_event(&IncomingEvent::from_archive(
                &listed,
                EventSource::Sync,
                "api",
            ))
            .unwrap()
            .archive
            .unwrap();
        assert!(out.status_applied, "{forged}");
        assert_eq!(status_of(&l), ArchiveStatus::Uploaded);
        assert_eq!(l.pending().unwrap().len(), 1, "pullable again");
        let history: Vec<String> = l
            .status_history(ID)
            .unwrap()
            .into_iter()
            .map(|h| h.status)
            .collect();
        assert_eq!(history, ["stopped", forged, "uploaded"], "history kept");
    }
    // The service's own terminal status is not overridden by a callback, nor by itself.
    let mut l = db.open();
    let failed: Archive = serde_json::from_value(json!({"id": ID, "status": "failed"})).unwrap();
    l.record_event(&IncomingEvent::from_archive(
        &failed,
        EventSource::Sync,
        "api",
    ))
    .unwrap();
    post(&mut l, "uploaded", json!({}));
    assert_eq!(status_of(&l), ArchiveStatus::Failed);
}

pub fn a_callback_that_cannot_be_read_is_kept_raw_with_its_password(db: &TestDb) {
    let mut l = db.open();
    let broken =
        format!(r#"{{"id":"{ID}","event":"archive","status":{{"odd":1}},"password":"cGFzcw=="}}"#);
    let out = l
        .record_event(&IncomingEvent::from_callback(broken.as_bytes(), "p").unwrap())
        .unwrap();
    assert!(out.archive.is_none());
    let events = l.events(Some(ID)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, archive_db::UNPARSED_ARCHIVE);
    assert_eq!(events[0].body, broken, "the password is kept with the body");
    assert_eq!(l.counts().unwrap(), (0, 1), "no archive row from it");
    // Odd types are read leniently.
    let odd = format!(
        r#"{{"id":"{ID}","event":"archive","status":"uploaded","duration":12.5,"size":"123","password":"cGFzcw=="}}"#
    );
    l.record_event(&IncomingEvent::from_callback(odd.as_bytes(), "p").unwrap())
        .unwrap();
    let r = l.archive(ID).unwrap().unwrap();
    assert_eq!(
        (r.size, r.duration, r.password.as_deref()),
        (123, 13, Some("cGFzcw=="))
    );
}

crate::on_both!(
    status_moves_forward_only_and_late_ones_stay_in_the_history,
    started_and_paused_alternate_by_the_service_clock,
    the_first_outcome_stays_and_unknown_statuses_never_replace_known_ones,
    a_known_password_is_never_replaced_by_an_empty_or_missing_one,
    a_password_from_a_late_event_still_fills_a_missing_one,
    a_different_password_is_kept_and_flagged_as_a_conflict,
    size_and_duration_are_not_overwritten_by_zero,
    other_fields_are_not_emptied_either,
    duplicates_are_harmless,
    raw_events_keep_body_source_origin_and_kind,
    queries_by_id_session_status_and_pending_work,
    private_keys_are_refused,
    export_json_carries_the_documented_fields,
    no_row_and_no_event_for_an_id_that_is_not_the_services,
    every_event_says_how_it_was_authenticated,
    the_rest_api_corrects_a_terminal_status_from_a_callback_with_the_history_kept,
    a_callback_that_cannot_be_read_is_kept_raw_with_its_password,
);
