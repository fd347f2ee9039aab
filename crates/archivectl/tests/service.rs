//! `archivectl storage set` and `archivectl archives ...` against a local HTTP server standing in for the
//! service: the exact JSON bodies and auth headers sent, tables and JSON printed, and the service's errors
//! shown with their status and message.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::fake_service::{cli_against, serve};
use common::*;

const API_KEY: &str = "46000001";
const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";

fn cli(addr: SocketAddr, args: &[&str]) -> std::process::Output {
    cli_against(addr, API_KEY, SECRET, args)
}

fn verify(auth: &Option<String>) {
    let token = auth.as_deref().expect("X-OPENTOK-AUTH header");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    opentok_rest::auth::verify_project_token(token, API_KEY, SECRET.as_bytes(), now)
        .expect("a valid project token");
}

fn archive_json(id: &str, status: &str, password: &str) -> String {
    format!(
        r#"{{"id":"{id}","status":"{status}","name":"n","reason":"","sessionId":"S1","partnerId":{API_KEY},
            "createdAt":1700000000000,"duration":0,"size":1234,"hasAudio":true,"hasVideo":true,
            "outputMode":"composed","url":null,"password":"{password}","someNewField":[1,2]}}"#
    )
}

#[test]
fn storage_set_s3_sends_the_documented_body_with_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    sh(
        dir.path(),
        "openssl req -new -x509 -days 2 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=t 2>/dev/null
         openssl enc -base64 -A -in cert.pem > cert.b64
         printf 's3-secret/with+chars\\n' > s3secret",
    );
    let (addr, fake) = serve(vec![(200, "")]);
    let out = cli(
        addr,
        &[
            "storage",
            "set",
            "s3",
            "--bucket",
            "archives",
            "--access-key-id",
            "AKIA1",
            "--secret-access-key-file",
            &p("s3secret"),
            "--endpoint",
            "https://s3.example.com",
            "--sse",
            "s3",
            "--certificate",
            &p("cert.pem"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("s3-secret"), "no secret printed");
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].uri,
        format!("/v2/project/{API_KEY}/archive/storage")
    );
    verify(&reqs[0].auth);
    let body: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    let cert_b64 = std::fs::read_to_string(p("cert.b64")).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "s3",
            "config": {"bucket": "archives", "secretKey": "s3-secret/with+chars", "accessKey": "AKIA1",
                       "endpoint": "https://s3.example.com", "sse": "s3"},
            "fallback": "none",
            "certificate": cert_b64.trim(),
        })
    );
}

#[test]
fn storage_set_azure_without_encryption_sends_null() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("azkey");
    std::fs::write(&key_file, "azure-account-key==\n").unwrap();
    let (addr, fake) = serve(vec![(200, "")]);
    let out = cli(
        addr,
        &[
            "storage",
            "set",
            "azure",
            "--account-name",
            "acct",
            "--account-key-file",
            key_file.to_str().unwrap(),
            "--container",
            "c1",
            "--fallback",
            "vonage",
            "--no-encryption",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["encrypted"], false);
    let body: serde_json::Value =
        serde_json::from_str(&fake.requests.lock().unwrap()[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "azure",
            "config": {"accountName": "acct", "accountKey": "azure-account-key==", "container": "c1"},
            "fallback": "vonage",
            "certificate": null,
        })
    );
}

/// `storage set s3` of bucket `b` with access key `A` and the secret in `secret`, then `extra`.
fn set_s3(addr: SocketAddr, secret: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let secret = secret.to_str().unwrap();
    let mut args = vec![
        "storage",
        "set",
        "s3",
        "--bucket",
        "b",
        "--access-key-id",
        "A",
    ];
    args.extend(["--secret-access-key-file", secret]);
    args.extend(extra);
    cli(addr, &args)
}

#[test]
fn storage_set_records_the_active_certificate_in_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let fingerprint = sh(
        dir.path(),
        "openssl req -new -x509 -days 2 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=ledger 2>/dev/null
         printf 'x\\n' > secret
         openssl x509 -in cert.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d ':\\n' | tr A-F a-f",
    );
    let fingerprint = String::from_utf8(fingerprint).unwrap();
    let ledger = p("ledger.sqlite3");
    let (addr, _fake) = serve(vec![(200, ""), (200, "")]);
    let set = |encryption: &[&str]| {
        let mut extra = vec!["--ledger", &ledger, "--json"];
        extra.extend(encryption);
        let out = set_s3(addr, &dir.path().join("secret"), &extra);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let cert = p("cert.pem");
    let printed = set(&["--certificate", &cert]);
    let colons = printed["certificate_sha256"].as_str().unwrap();
    assert_eq!(colons.replace(':', "").to_ascii_lowercase(), fingerprint);
    assert_eq!(printed["ledger"], ledger.as_str());

    let mut db = archive_db::Ledger::open(&ledger).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let active = db.active_certificate(API_KEY, now).unwrap().unwrap();
    assert_eq!(active.fingerprint, fingerprint);
    assert!(active.pem.contains("BEGIN CERTIFICATE"));
    assert!(!active.pem.contains("PRIVATE"));
    // An archive created after that and uploaded without a password (the callback was lost) is waiting
    // for its password, not pending as if it were unencrypted.
    let created = now.unix_timestamp() * 1000 + 1000;
    let body = format!(
        r#"{{"id":"a0000000-0000-4000-8000-000000000e1c","status":"uploaded","sessionId":"S1","partnerId":{API_KEY},"createdAt":{created},"size":10,"event":"archive"}}"#
    );
    db.record_event(&archive_db::IncomingEvent::from_callback(body.as_bytes(), "test").unwrap())
        .unwrap();
    assert!(db.pending().unwrap().is_empty());
    assert_eq!(
        db.awaiting_password().unwrap()[0].id,
        "a0000000-0000-4000-8000-000000000e1c"
    );

    // --no-encryption: from then on archives are expected unencrypted.
    let printed = set(&["--no-encryption"]);
    assert_eq!(printed["encrypted"], false);
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    assert!(db.active_certificate(API_KEY, later).unwrap().is_none());
}

#[test]
fn storage_set_checks_the_ledger_before_changing_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x\n").unwrap();
    let not_a_ledger = dir.path().join("notes.txt");
    std::fs::write(
        &not_a_ledger,
        "this is not a database, it is a text file of some length\n".repeat(20),
    )
    .unwrap();
    let (addr, fake) = serve(vec![(200, "")]);
    let out = set_s3(
        addr,
        &secret,
        &[
            "--no-encryption",
            "--ledger",
            not_a_ledger.to_str().unwrap(),
        ],
    );
    assert_fails(&out, 8, "nothing was sent to the service");
    assert!(fake.requests.lock().unwrap().is_empty());
    assert!(
        std::fs::read_to_string(&not_a_ledger)
            .unwrap()
            .starts_with("this is not")
    );
}

#[test]
fn storage_set_refuses_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    sh(
        dir.path(),
        "openssl req -new -x509 -days 2 -newkey rsa:3072 -nodes -keyout key.pem -out big.pem -subj /CN=t 2>/dev/null
         printf 'x\\n' > secret",
    );
    let (addr, fake) = serve(vec![]);
    let base = [
        "storage",
        "set",
        "s3",
        "--bucket",
        "b",
        "--access-key-id",
        "A",
        "--secret-access-key-file",
    ];
    // Neither --certificate nor --no-encryption: usage error.
    let mut args = base.to_vec();
    let secret = p("secret");
    args.push(&secret);
    let out = cli(addr, &args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both: usage error.
    let big = p("big.pem");
    let mut both = args.clone();
    both.extend(["--certificate", &big, "--no-encryption"]);
    assert_eq!(cli(addr, &both).status.code(), Some(2));
    // A certificate the service would refuse.
    let mut refused = args.clone();
    refused.extend(["--certificate", &big]);
    assert_fails(&cli(addr, &refused), 3, "at most 2048");
    // No secret.
    let out = archivectl()
        .env_remove("OPENTOK_API_SECRET")
        .current_dir(dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://{addr}"),
            "archives",
            "list",
        ])
        .output()
        .unwrap();
    assert_fails(&out, 2, "no API secret");
    assert!(fake.requests.lock().unwrap().is_empty(), "nothing was sent");
}

#[test]
fn archives_commands_print_tables_and_json_and_service_errors() {
    let page1 = format!(
        r#"{{"count":2,"items":[{},{}]}}"#,
        archive_json(
            "0a1e0000-0000-4000-8000-000000000002",
            "uploaded",
            "cGFzc3dvcmQ="
        ),
        archive_json("0a1e0000-0000-4000-8000-000000000001", "stopped", "")
    );
    let (addr, fake) = serve(vec![
        (200, &page1),
        (200, &page1),
        (
            200,
            &archive_json(
                "0a1e0000-0000-4000-8000-000000000002",
                "uploaded",
                "cGFzc3dvcmQ=",
            ),
        ),
        (
            200,
            &archive_json("0a1e0000-0000-4000-8000-000000000003", "started", ""),
        ),
        (
            409,
            r#"{"code":15001,"message":"Recording already in progress"}"#,
        ),
        (
            403,
            r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#,
        ),
        (204, ""),
    ]);
    let out = cli(addr, &["archives", "list", "--session-id", "S1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["password"], "cGFzc3dvcmQ=");
    let out = cli(addr, &["archives", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("0a1e0000-0000-4000-8000-000000000002")
            && table.contains("uploaded")
            && table.contains("2 archive(s)"),
        "{table}"
    );
    let out = cli(
        addr,
        &[
            "--json",
            "archives",
            "get",
            "0a1e0000-0000-4000-8000-000000000002",
        ],
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["id"], "0a1e0000-0000-4000-8000-000000000002");
    let out = cli(
        addr,
        &[
            "archives",
            "start",
            "--session-id",
            "S1",
            "--name",
            "n",
            "--output-mode",
            "composed",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(addr, &["archives", "start", "--session-id", "S1"]);
    assert_fails(
        &out,
        6,
        "HTTP 409, code 15001: Recording already in progress",
    );
    let out = cli(
        addr,
        &["archives", "stop", "0a1e0000-0000-4000-8000-000000000003"],
    );
    assert_fails(&out, 6, "Issuer not found");
    let out = cli(
        addr,
        &["archives", "delete", "0a1e0000-0000-4000-8000-000000000002"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(
        reqs[0].uri,
        format!("/v2/project/{API_KEY}/archive?offset=0&count=1000&sessionId=S1")
    );
    let start: serde_json::Value = serde_json::from_str(&reqs[3].body).unwrap();
    assert_eq!(
        start,
        serde_json::json!({"sessionId": "S1", "name": "n", "outputMode": "composed"})
    );
    assert_eq!(
        (reqs[5].method.as_str(), reqs[5].uri.as_str()),
        (
            "POST",
            "/v2/project/46000001/archive/0a1e0000-0000-4000-8000-000000000003/stop"
        )
    );
    assert_eq!(reqs[6].method, "DELETE");
    for r in &reqs {
        verify(&r.auth);
    }
}

#[test]
fn config_file_supplies_project_and_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("s3secret"), "sk\n").unwrap();
    let (addr, fake) = serve(vec![(200, "")]);
    std::fs::write(
        dir.path().join("archivectl.toml"),
        format!(
            "[project]\napi_key = \"{API_KEY}\"\napi_url = \"http://{addr}\"\napi_secret_file = \"secret\"\n\
             [target]\ntype = \"s3\"\nbucket = \"cfg-bucket\"\naccess_key_id = \"AK\"\nsecret_access_key_file = \"s3secret\"\n"
        ),
    )
    .unwrap();
    let out = archivectl()
        .env_remove("OPENTOK_API_SECRET")
        .env_remove("OPENTOK_API_KEY")
        .current_dir(dir.path())
        .args(["storage", "set", "s3", "--no-encryption"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value =
        serde_json::from_str(&fake.requests.lock().unwrap()[0].body).unwrap();
    assert_eq!(body["config"]["bucket"], "cfg-bucket");
    assert_eq!(body["config"]["secretKey"], "sk");
    verify(&fake.requests.lock().unwrap()[0].auth);
}

#[test]
fn archives_delete_is_recorded_in_the_ledger_and_no_longer_pending() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite3");
    let id = "5f8c3a9e-0d1b-4c2a-9e7f-3b6d8a1c2e4f";
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let listed = format!(
        r#"{{"count":1,"items":[{{"id":"{id}","status":"uploaded","sessionId":"S1","partnerId":{API_KEY},
            "createdAt":{now_ms},"duration":0,"size":2048,"password":"cGFzc3dvcmQ=","url":null}}]}}"#
    );
    let (addr, fake) = common::fake_service::serve(vec![(200, &listed), (204, "")]);
    let in_ledger = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--ledger", ledger.to_str().unwrap()]);
        cli(addr, &all)
    };
    let out = in_ledger(&["sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pending = in_ledger(&["ledger", "list", "--pending", "--json"]);
    assert!(String::from_utf8_lossy(&pending.stdout).contains(id));

    let out = in_ledger(&["archives", "delete", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.last().unwrap().method, "DELETE");
    assert!(String::from_utf8_lossy(&out.stdout).contains("recorded in the ledger"));

    // No longer waiting for a pull; its history kept.
    let pending = in_ledger(&["ledger", "list", "--pending", "--json"]);
    let pending: serde_json::Value = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 0, "{pending}");
    let shown = in_ledger(&["ledger", "show", id, "--json"]);
    let shown_text = String::from_utf8_lossy(&shown.stdout).into_owned();
    let shown: serde_json::Value = serde_json::from_str(&shown_text).unwrap();
    assert_eq!(shown["status"], "deleted", "{shown_text}");
    assert!(
        shown_text.contains("uploaded"),
        "history kept: {shown_text}"
    );
    assert!(!shown["remote_deleted_at"].is_null(), "{shown_text}");
}
