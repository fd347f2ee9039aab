//! `archivectl ledger list|show|export` as a black box, on a ledger filled through archive-db.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use archive_db::{IncomingEvent, Ledger, PullRecord};
use common::{archivectl, assert_fails};
use serde_json::{Value, json};

fn fill(path: &Path) {
    let mut l = Ledger::open(path).unwrap();
    let mut post = |v: Value| {
        l.record_event(
            &IncomingEvent::from_callback(&serde_json::to_vec(&v).unwrap(), "10.1.2.3:4444")
                .unwrap(),
        )
        .unwrap();
    };
    post(
        json!({"id": "a0000000-0000-4000-8000-00000000000a", "event": "archive", "status": "uploaded", "sessionId": "S1", "partnerId": 1,
        "createdAt": 1700000000000i64, "size": 1234, "password": "cGFzc0E="}),
    );
    post(
        json!({"id": "a0000000-0000-4000-8000-00000000000a", "event": "archive", "status": "stopped", "sessionId": "S1", "size": 0, "password": ""}),
    );
    post(
        json!({"id": "a0000000-0000-4000-8000-00000000000b", "event": "archive", "status": "started", "sessionId": "S2", "partnerId": 1,
        "createdAt": 1700000100000i64}),
    );
    post(
        json!({"id": "a0000000-0000-4000-8000-00000000000c", "event": "archive", "status": "available", "sessionId": "S2", "partnerId": 1,
        "createdAt": 1700000200000i64, "size": 99, "password": "cGFzc0M=", "name": "weekly, \"final\""}),
    );
    post(
        json!({"id": "a0000000-0000-4000-8000-00000000000c", "event": "archive", "status": "available", "sessionId": "S2", "password": "b3RoZXI="}),
    );
    l.record_pull(
        "a0000000-0000-4000-8000-00000000000c",
        &PullRecord {
            local_path: "/srv/out/a0000000-0000-4000-8000-00000000000c.ts".into(),
            sha256: "ab".repeat(32),
            measured_duration: Some(61.25),
            verified_at: time::macros::datetime!(2024-06-01 10:00 UTC),
        },
    )
    .unwrap();
}

fn ledger_cmd(path: &Path, args: &[&str]) -> std::process::Output {
    archivectl()
        .env("ARCHIVECTL_LEDGER", path)
        .arg("ledger")
        .args(args)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn list_filters_and_prints_every_documented_field_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    fill(&path);

    let all = json_of(&ledger_cmd(&path, &["list", "--json"]));
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "a0000000-0000-4000-8000-00000000000c",
            "a0000000-0000-4000-8000-00000000000b",
            "a0000000-0000-4000-8000-00000000000a"
        ],
        "newest first"
    );
    let a = &all[2];
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
        assert!(a.get(key).is_some(), "{key} missing in {a}");
    }
    assert_eq!(a["status"], "uploaded", "the late stopped was not applied");
    assert_eq!(a["size"], 1234);
    assert_eq!(a["password"], "cGFzc0E=");
    assert_eq!(a["created_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(a["local_path"], Value::Null);
    let c = &all[0];
    assert_eq!(
        c["local_path"],
        "/srv/out/a0000000-0000-4000-8000-00000000000c.ts"
    );
    assert_eq!(c["measured_duration"], 61.25);
    assert_eq!(c["password_conflict"], true);

    let s2 = json_of(&ledger_cmd(
        &path,
        &["list", "--session-id", "S2", "--json"],
    ));
    assert_eq!(s2.as_array().unwrap().len(), 2);
    let uploaded = json_of(&ledger_cmd(
        &path,
        &["list", "--status", "uploaded", "--json"],
    ));
    assert_eq!(uploaded.as_array().unwrap().len(), 1);
    let pending = json_of(&ledger_cmd(&path, &["list", "--pending", "--json"]));
    assert_eq!(pending[0]["id"], "a0000000-0000-4000-8000-00000000000a");
    assert_eq!(pending.as_array().unwrap().len(), 1);

    let text = ledger_cmd(&path, &["list"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().next().unwrap().starts_with("ID"), "{text}");
    assert!(
        text.contains("CONFLICT")
            && text.contains("/srv/out/a0000000-0000-4000-8000-00000000000c.ts"),
        "{text}"
    );

    assert_fails(
        &ledger_cmd(&path, &["list", "--status", "done"]),
        2,
        "unknown status",
    );
}

#[test]
fn show_prints_the_history_and_refuses_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    fill(&path);
    let a = json_of(&ledger_cmd(
        &path,
        &["show", "a0000000-0000-4000-8000-00000000000a", "--json"],
    ));
    assert_eq!(a["id"], "a0000000-0000-4000-8000-00000000000a");
    let history: Vec<(&str, bool)> = a["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap(),
                h["applied"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(history, [("uploaded", true), ("stopped", false)]);
    assert_eq!(a["raw"]["password"], "cGFzc0E=");

    let text = String::from_utf8(
        ledger_cmd(&path, &["show", "a0000000-0000-4000-8000-00000000000c"]).stdout,
    )
    .unwrap();
    assert!(text.contains("CONFLICT: also received b3RoZXI="), "{text}");
    assert!(text.contains("61.250 s"), "{text}");

    assert_fails(
        &ledger_cmd(&path, &["show", "0000dead-0000-4000-8000-000000000001"]),
        3,
        "0000dead-0000-4000-8000-000000000001 is not in the ledger",
    );
}

#[test]
fn export_writes_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    fill(&path);
    let out = ledger_cmd(&path, &["export", "--format", "json"]);
    let all = json_of(&out);
    assert_eq!(all.as_array().unwrap().len(), 3);

    let csv_path = dir.path().join("out/../export.csv");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let out = ledger_cmd(
        &path,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            csv_path.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("export.csv")).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("id,status,session_id,project_id,name,created_at,"));
    assert!(
        lines[1]
            .starts_with(r#"a0000000-0000-4000-8000-00000000000c,available,S2,1,"weekly, ""final""",2023-11-14T22:16:40.000Z,"#),
        "{}",
        lines[1]
    );

    // Never over the ledger itself (by any spelling of its path) or SQLite's files beside it.
    let spelled = dir.path().join("out/../ledger.sqlite3");
    for target in [
        spelled.to_str().unwrap().to_string(),
        format!("{}-wal", path.display()),
    ] {
        let out = ledger_cmd(&path, &["export", "--format", "csv", "--out", &target]);
        assert_fails(&out, 2, "is the ledger's own file");
    }
    let still = json_of(&ledger_cmd(&path, &["export", "--format", "json"]));
    assert_eq!(still.as_array().unwrap().len(), 3, "the ledger is intact");
    // A missing directory: named, with no temporary file name in the message.
    let out = ledger_cmd(
        &path,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            "/nonexistent-dir/x.csv",
        ],
    );
    assert_fails(&out, 5, "cannot create /nonexistent-dir/x.csv");

    let usage = ledger_cmd(&path, &["export", "--format", "xml"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("possible values: json, csv"));
}

#[test]
fn the_ledger_is_found_by_flag_env_or_xdg_default_and_only_created_by_writers() {
    let dir = tempfile::tempdir().unwrap();
    // Default: $XDG_DATA_HOME/archivectl/ledger.sqlite3. Reading commands never create it: it reads as empty.
    let default = dir.path().join("archivectl/ledger.sqlite3");
    let out = archivectl()
        .env_remove("ARCHIVECTL_LEDGER")
        .env("XDG_DATA_HOME", dir.path())
        .args(["ledger", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains(&format!("no ledger at {} yet", default.display())),
        "{note}"
    );
    assert!(!dir.path().join("archivectl").exists(), "nothing created");
    let out = archivectl()
        .env_remove("ARCHIVECTL_LEDGER")
        .env("XDG_DATA_HOME", dir.path())
        .args(["ledger", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_of(&out), json!([]));
    // HOME when XDG_DATA_HOME is not set.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = archivectl()
        .env_remove("ARCHIVECTL_LEDGER")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", &home)
        .args(["ledger", "show", "0000dead-0000-4000-8000-000000000002"])
        .output()
        .unwrap();
    assert_fails(
        &out,
        3,
        "0000dead-0000-4000-8000-000000000002 is not in the ledger",
    );
    let expected = home.join(".local/share/archivectl/ledger.sqlite3");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&expected.display().to_string()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!home.join(".local").exists());
    // The flag wins over the environment; a command that writes (sync) creates the file and its directory,
    // owner-only.
    let flagged = dir.path().join("deep/er/flag.sqlite3");
    fill(&dir.path().join("env.sqlite3"));
    let (api, _fake) = common::fake_service::serve(vec![(200, r#"{"count":0,"items":[]}"#)]);
    let out = archivectl()
        .env("ARCHIVECTL_LEDGER", dir.path().join("env.sqlite3"))
        .env("OPENTOK_API_SECRET", "secret")
        .args(["--api-key", "1", "--api-url", &format!("http://{api}")])
        .args(["sync", "--ledger"])
        .arg(&flagged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(flagged.is_file());
    let out = archivectl()
        .env("ARCHIVECTL_LEDGER", dir.path().join("env.sqlite3"))
        .args(["ledger", "list", "--json", "--ledger"])
        .arg(&flagged)
        .output()
        .unwrap();
    assert_eq!(json_of(&out), json!([]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(flagged.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // A ledger written by a newer archivectl is refused with exit 8 and left alone.
    let future = dir.path().join("future.sqlite3");
    {
        let mut l = Ledger::open(&future).unwrap();
        drop(
            l.record_event(
                &IncomingEvent::from_callback(
                    br#"{"id":"a0000000-0000-4000-8000-0000000000ff","status":"started"}"#,
                    "t",
                )
                .unwrap(),
            ),
        );
    }
    rusqlite::Connection::open(&future)
        .unwrap()
        .pragma_update(None, "user_version", 42)
        .unwrap();
    assert_fails(&ledger_cmd(&future, &["list"]), 8, "upgrade archivectl");
}

#[test]
fn output_closed_early_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    {
        let mut l = Ledger::open(&path).unwrap();
        let events: Vec<IncomingEvent> = (0..3000)
            .map(|i| {
                let body = json!({"id": format!("a0000000-0000-4000-8000-{i:012}"), "status": "uploaded", "sessionId": "S", "partnerId": 1,
                    "createdAt": 1700000000000i64 + i, "size": 1, "password": "cGFzcw=="});
                IncomingEvent::from_callback(&serde_json::to_vec(&body).unwrap(), "t").unwrap()
            })
            .collect();
        for e in &events {
            l.record_event(e).unwrap();
        }
    }
    // `archivectl ledger list | head -1`: far more output than a pipe holds, the reader gone after a line.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} ledger list --ledger {} | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_archivectl"),
            path.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
