//! Issue 11, "Exposing": a presigned download URL never appears whole (its signature) in stdout, stderr, the
//! ledger or its exports; plain `http://` to a host that is not loopback needs `--allow-http`.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake_service::serve;
use common::*;

const API_KEY: &str = "46000011";
const ID: &str = "5f0c7a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f";
const SIGNATURE: &str = "SECRETSIG";

/// An archive kept in the service's cloud, its URL presigned and pointing at `download` (where nothing listens,
/// so the download fails with an error that names the URL).
fn archive(download: u16) -> String {
    format!(
        r#"{{"id":"{ID}","status":"available","sessionId":"S11","partnerId":{API_KEY},"createdAt":1764550000000,
            "duration":4,"size":2048,"password":"","outputMode":"composed",
            "url":"http://127.0.0.1:{download}/{API_KEY}/{ID}/archive.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIGNATURE}"}}"#
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_presigned_url_is_never_shown_nor_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let download = free_port();
    let one = archive(download);
    let list = format!(r#"{{"count":1,"items":[{one}]}}"#);
    let (addr, _fake) = serve(vec![
        (200, &one),
        (200, &one),
        (200, &list),
        (200, &list),
        (200, &one),
        (200, &one),
    ]);
    let run = |args: &[&str]| {
        archivectl()
            .env("OPENTOK_API_SECRET", "exposing-secret")
            .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
            .current_dir(dir.path())
            .args(["--api-key", API_KEY, "--api-url", &format!("http://{addr}")])
            .args(args)
            .output()
            .unwrap()
    };
    let mut seen = Vec::new();
    let mut check = |what: &str, out: std::process::Output, ok: bool| {
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), ok, "{what}: {text}");
        assert!(
            !text.contains(SIGNATURE),
            "{what} shows the signature: {text}"
        );
        seen.push(text);
    };
    check("archives get", run(&["archives", "get", ID]), true);
    check(
        "archives get --json",
        run(&["archives", "get", ID, "--json"]),
        true,
    );
    check(
        "archives list --json",
        run(&["archives", "list", "--json"]),
        true,
    );
    check("sync", run(&["sync", "--json"]), true);
    let out_dir = dir.path().join("out");
    let s3_secret = dir.path().join("s3secret");
    std::fs::write(&s3_secret, "unused-secret").unwrap();
    let storage_port = free_port().to_string();
    let endpoint = format!("http://127.0.0.1:{storage_port}");
    let pull = [
        "pull",
        ID,
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--bucket",
        "b",
        "--endpoint",
        &endpoint,
        "--access-key-id",
        "AK",
        "--secret-access-key-file",
        s3_secret.to_str().unwrap(),
    ];
    check("pull", run(&pull), false);
    check("ledger show", run(&["ledger", "show", ID, "--json"]), true);
    // Only when asked for, the URL is printed whole (to fetch the file with curl).
    let asked = run(&["archives", "get", ID, "--json", "--show-url"]);
    assert!(String::from_utf8_lossy(&asked.stdout).contains(SIGNATURE));
    check("ledger list", run(&["ledger", "list", "--json"]), true);
    check(
        "ledger export json",
        run(&["ledger", "export", "--format", "json"]),
        true,
    );
    check(
        "ledger export csv",
        run(&["ledger", "export", "--format", "csv"]),
        true,
    );
    // What is shown is the URL without its query.
    let shown = format!("http://127.0.0.1:{download}/{API_KEY}/{ID}/archive.mp4");
    assert!(seen[0].contains(&shown), "{}", seen[0]);
    assert!(
        seen[4].contains(&shown),
        "the pull names what it could not download: {}",
        seen[4]
    );
    assert!(seen[7].contains(&shown), "{}", seen[7]);
    // Nor anywhere in the ledger's files (the database, its WAL).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(SIGNATURE.len())
                    .any(|w| w == SIGNATURE.as_bytes()),
                "{} holds the signature",
                path.display()
            );
        }
    }
}

#[test]
fn plain_http_to_another_host_needs_allow_http() {
    let dir = tempfile::tempdir().unwrap();
    let out = archivectl()
        .env("OPENTOK_API_SECRET", "exposing-secret")
        .current_dir(dir.path())
        // TEST-NET-1: never reached, the URL is refused before any request.
        .args(["--api-key", API_KEY, "--api-url", "http://192.0.2.1:9"])
        .args(["archives", "get", ID])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plain http:// is only used for a loopback host"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn allow_http_lets_plain_http_reach_a_host_that_is_not_loopback() {
    // 0.0.0.0 is not a loopback address, yet on Linux a connection to it reaches this machine: the fake
    // service on 127.0.0.1 answers once plain HTTP is allowed.
    let one = archive(free_port());
    let (addr, fake) = serve(vec![(200, &one)]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://0.0.0.0:{}", addr.port());
    let get = |extra: &[&str]| {
        archivectl()
            .env("OPENTOK_API_SECRET", "exposing-secret")
            .current_dir(dir.path())
            .args(["--api-key", API_KEY, "--api-url", &url])
            .args(extra)
            .args(["archives", "get", ID, "--json"])
            .output()
            .unwrap()
    };
    let refused = get(&[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("allow plain HTTP explicitly (--allow-http, or [project] allow_http = true)"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(fake.requests.lock().unwrap().is_empty(), "nothing was sent");
    let allowed = get(&["--allow-http"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(fake.requests.lock().unwrap().len(), 1);
    // The same from the configuration file.
    std::fs::write(
        dir.path().join("archivectl.toml"),
        "[project]\nallow_http = true\n",
    )
    .unwrap();
    let (addr, _fake) = serve(vec![(200, &one)]);
    let out = archivectl()
        .env("OPENTOK_API_SECRET", "exposing-secret")
        .current_dir(dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://0.0.0.0:{}", addr.port()),
        ])
        .args(["archives", "get", ID, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
