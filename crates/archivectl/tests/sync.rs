//! `archivectl sync`: archives listed by the REST API land in the ledger under its upsert rules.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake_service::serve;
use common::*;

const API_KEY: &str = "46000003";

fn archive(id: &str, status: &str, created_at: i64, password: &str) -> String {
    format!(
        r#"{{"id":"{id}","status":"{status}","sessionId":"S9","partnerId":{API_KEY},"createdAt":{created_at},
            "duration":0,"size":2048,"password":"{password}","url":null}}"#
    )
}

fn run_in(
    dir: &std::path::Path,
    addr: std::net::SocketAddr,
    args: &[&str],
) -> std::process::Output {
    archivectl()
        .env("OPENTOK_API_SECRET", "sync-secret")
        .env("ARCHIVECTL_LEDGER", dir.join("ledger.sqlite3"))
        .current_dir(dir)
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{addr}")])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn sync_recovers_passwords_and_never_loses_one() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = format!(
        r#"{{"count":3,"items":[{},{},{}]}}"#,
        archive(
            "a0000000-0000-4000-8000-000000000003",
            "stopped",
            now_ms - 1_000,
            ""
        ),
        archive(
            "a0000000-0000-4000-8000-000000000002",
            "uploaded",
            now_ms - 2_000,
            "cGFzc3dvcmQtMg=="
        ),
        archive(
            "a0000000-0000-4000-8000-000000000001",
            "uploaded",
            now_ms - 90_000_000,
            "cGFzc3dvcmQtMQ=="
        )
    );
    // Later: a-2 reported with an empty password (must not erase it), a-3 uploaded with its password.
    let second = format!(
        r#"{{"count":2,"items":[{},{}]}}"#,
        archive(
            "a0000000-0000-4000-8000-000000000003",
            "uploaded",
            now_ms - 1_000,
            "cGFzc3dvcmQtMw=="
        ),
        archive(
            "a0000000-0000-4000-8000-000000000002",
            "stopped",
            now_ms - 2_000,
            ""
        )
    );
    let (addr, fake) = serve(vec![(200, &first), (200, &second)]);
    let out = run_in(dir.path(), addr, &["sync", "--since", "1d", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["listed"], 2, "a-1 is older than --since: {report}");
    assert_eq!(report["new"], 2);
    assert_eq!(report["passwords_recorded"], 1);

    let out = run_in(dir.path(), addr, &["sync", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passwords_recorded"], 1, "{report}");

    let show = |id: &str| -> serde_json::Value {
        let out = run_in(dir.path(), addr, &["ledger", "show", id, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let a2 = show("a0000000-0000-4000-8000-000000000002");
    assert_eq!(
        a2["password"], "cGFzc3dvcmQtMg==",
        "an empty password never replaces a known one"
    );
    assert_eq!(
        a2["status"], "uploaded",
        "a late stopped does not move the status back"
    );
    let a3 = show("a0000000-0000-4000-8000-000000000003");
    assert_eq!(a3["password"], "cGFzc3dvcmQtMw==");
    assert_eq!(a3["status"], "uploaded");
    let requests = fake.requests.lock().unwrap();
    assert!(requests.iter().all(|r| {
        r.uri
            .starts_with(&format!("/v2/project/{API_KEY}/archive?"))
    }));
}

#[test]
fn sync_rejects_a_bad_since_and_reports_service_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _fake) = serve(vec![(403, r#"{"code":-1,"message":"Issuer not found"}"#)]);
    assert_fails(
        &run_in(dir.path(), addr, &["sync", "--since", "yesterday"]),
        2,
        "--since",
    );
    assert_fails(&run_in(dir.path(), addr, &["sync"]), 6, "Issuer not found");
}

#[test]
fn sync_marks_archives_the_service_no_longer_lists_as_deleted_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (kept, gone, old) = (
        "c0000000-0000-4000-8000-000000000001",
        "c0000000-0000-4000-8000-000000000002",
        "c0000000-0000-4000-8000-000000000003",
    );
    let first = format!(
        r#"{{"count":3,"items":[{},{},{}]}}"#,
        archive(kept, "uploaded", now_ms - 1_000, "cGFzcw=="),
        archive(gone, "uploaded", now_ms - 2_000, "cGFzcw=="),
        archive(old, "uploaded", now_ms - 3 * 86_400_000, "cGFzcw==")
    );
    // Later the service lists only `kept` (and `old`, outside the window of `--since 1d`, is not listed).
    let second = format!(
        r#"{{"count":1,"items":[{}]}}"#,
        archive(kept, "uploaded", now_ms - 1_000, "cGFzcw==")
    );
    let (addr, _fake) = serve(vec![(200, &first), (200, &second)]);
    let out = run_in(dir.path(), addr, &["sync", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_in(dir.path(), addr, &["sync", "--since", "1d", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["marked_deleted"], 1, "{report}");
    let show = |id: &str| -> serde_json::Value {
        let out = run_in(dir.path(), addr, &["ledger", "show", id, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(show(gone)["status"], "deleted");
    let gone_details = show(gone);
    let history: Vec<&str> = gone_details["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["uploaded", "deleted"], "history kept");
    assert_eq!(show(gone)["password"], "cGFzcw==", "the password stays");
    assert_eq!(show(kept)["status"], "uploaded");
    assert_eq!(show(old)["status"], "uploaded", "outside the listed window");
}

#[test]
fn sync_refuses_an_archive_id_that_is_not_the_services_and_records_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = "d0000000-0000-4000-8000-000000000001";
    let list = format!(
        r#"{{"count":2,"items":[{},{}]}}"#,
        archive("../../evil", "uploaded", 1_700_000_000_000, "cGFzcw=="),
        archive(good, "uploaded", 1_700_000_000_000, "cGFzcw==")
    );
    let (addr, _fake) = serve(vec![(200, &list)]);
    let out = run_in(dir.path(), addr, &["sync"]);
    assert_fails(&out, 3, "not an archive id");
    let out = run_in(dir.path(), addr, &["ledger", "show", good, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ledger = archive_db::Ledger::open(dir.path().join("ledger.sqlite3")).unwrap();
    assert_eq!(ledger.counts().unwrap(), (1, 1), "nothing of the bad one");
}

#[test]
fn sync_since_out_of_range_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _fake) = serve(vec![]);
    for since in ["99999999999999w", "9223372036854775807s"] {
        assert_fails(
            &run_in(dir.path(), addr, &["sync", "--since", since]),
            2,
            "--since",
        );
    }
}
