//! Logs (issue 15): `-q`, `-v` and `--log-format` on the long-running commands. The receiver's lines are JSON
//! when stderr is not a terminal (as here) and carry a request id (the one answered in `X-Request-Id`), the
//! archive id and the outcome; `--log-format human` is text; `-v` adds the debug lines; `-q` keeps the errors
//! only. `pull --all` logs a run id and each archive's outcome (against the S3 test server:
//! `source /tmp/servers.env`; without it that test fails, by design).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::fake_service::serve;
use common::storage::*;
use common::*;
use serde_json::Value;
use storage_fetch::Target;
use storage_fetch::test_env::TestServers;

/// `callbacks serve` with its stderr kept line by line.
struct Receiver {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<(Mutex<Vec<String>>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let mut child = archivectl()
            .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "--ledger"])
            .arg(dir.path().join("ledger.sqlite3"))
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let log = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                log.0.lock().unwrap().push(line);
                log.1.notify_all();
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        std::thread::spawn(move || {
            let _ = stdout.read_to_end(&mut Vec::new());
        });
        let addr = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line on stdout: {first:?}"))
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            stderr,
            reader: Some(reader),
            _dir: dir,
        }
    }

    /// SIGTERM; waits for the exit and for stderr to be read to its end; returns every line.
    fn stop(mut self) -> Vec<String> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(self.child.wait().unwrap().success());
        self.reader.take().unwrap().join().unwrap();
        self.stderr.0.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `body` to the callback path; the status code and the answer's headers (lowercase).
fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let code = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (code, answer.to_ascii_lowercase())
}

/// The value of `header` in a lowercased answer.
fn header<'a>(answer: &'a str, header: &str) -> &'a str {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{header}: ")))
        .unwrap_or_else(|| panic!("no {header} in {answer}"))
        .trim()
}

fn callback(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"archive","status":"uploaded","password":"cGFzc3dvcmQtbG9n"}}"#
    )
}

fn uuid(n: u32) -> String {
    format!("{:08x}-0000-4000-8000-{:012}", std::process::id(), n)
}

fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", lines.join("\n")));
            for field in ["timestamp", "level", "message"] {
                assert!(v[field].is_string(), "{field} in {l}");
            }
            v
        })
        .collect()
}

#[test]
fn the_receiver_logs_json_lines_with_request_id_archive_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-logging-5e1f\n").unwrap();
    // No --log-format: stderr is a pipe, so JSON lines.
    let r = Receiver::start(dir, &["--token-file", "token"]);
    let id = uuid(1);
    let (code, _) = post(
        r.addr,
        "/callbacks/archive?token=tok-logging-5e1f",
        &[("X-Request-Id", "lb-7f3a.1")],
        &callback(&id),
    );
    assert_eq!(code, 200);
    let (code, refused) = post(
        r.addr,
        "/callbacks/archive?token=wrong-tok-9",
        &[],
        &callback(&uuid(2)),
    );
    assert_eq!(code, 401);
    let refused_id = header(&refused, "x-request-id").to_string();
    let (code, bad) = post(
        r.addr,
        "/callbacks/archive?token=tok-logging-5e1f",
        &[],
        "{not json",
    );
    assert_eq!(code, 400);
    let bad_id = header(&bad, "x-request-id").to_string();
    assert_ne!(refused_id, bad_id, "one id per request");
    let lines = r.stop();
    let all = lines.join("\n");
    let logged = json_lines(&lines);
    let find = |outcome: &str| {
        logged
            .iter()
            .find(|l| l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome:?} line in\n{all}"))
    };
    let recorded = find("new archive");
    assert_eq!(recorded["request_id"], "lb-7f3a.1", "{recorded}");
    assert_eq!(recorded["archive"], id.as_str());
    assert_eq!(recorded["level"], "INFO");
    let unauthorized = find("rejected: unauthorized");
    assert_eq!(unauthorized["request_id"], refused_id.as_str());
    assert_eq!(unauthorized["archive"], "-");
    assert_eq!(unauthorized["level"], "WARN");
    let rejected = find("rejected: bad request");
    assert_eq!(rejected["request_id"], bad_id.as_str());
    // Every line of a callback has the three fields; no debug line without -v; no secret.
    for l in logged.iter().filter(|l| l.get("request_id").is_some()) {
        assert!(l["archive"].is_string() && l["outcome"].is_string(), "{l}");
    }
    assert!(logged.iter().all(|l| l["level"] != "DEBUG"), "{all}");
    assert!(!all.contains("callback received"), "{all}");
    for secret in ["tok-logging-5e1f", "wrong-tok-9", "cGFzc3dvcmQtbG9n"] {
        assert!(!all.contains(secret), "{secret} in the log:\n{all}");
    }
}

#[test]
fn human_format_is_text_and_verbose_adds_the_debug_lines() {
    let r = Receiver::start(
        tempfile::tempdir().unwrap(),
        &["--log-format", "human", "-v"],
    );
    let (code, answer) = post(r.addr, "/callbacks/archive", &[], &callback(&uuid(3)));
    assert_eq!(code, 200);
    let request_id = header(&answer, "x-request-id").to_string();
    let lines = r.stop();
    let all = lines.join("\n");
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{all}"
    );
    let debug = lines
        .iter()
        .find(|l| l.contains("DEBUG") && l.contains("callback received"))
        .unwrap_or_else(|| panic!("no debug line with -v:\n{all}"));
    assert!(
        debug.contains(&format!("request_id=\"{request_id}\""))
            || debug.contains(&format!("request_id={request_id}")),
        "{debug}"
    );
    let recorded = lines
        .iter()
        .find(|l| l.contains("recorded a callback"))
        .unwrap_or_else(|| panic!("{all}"));
    for part in [uuid(3).as_str(), "new archive", &request_id] {
        assert!(recorded.contains(part), "{part} in {recorded}");
    }
    assert!(!all.contains("cGFzc3dvcmQtbG9n"), "{all}");
    assert!(!all.contains('\u{1b}'), "no colours off a terminal: {all}");
}

#[test]
fn quiet_keeps_only_the_errors_and_excludes_verbose() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite3");
    drop(archive_db::Ledger::open(&ledger).unwrap());
    rusqlite::Connection::open(&ledger)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .unwrap();
    // Unauthenticated on loopback (a warning without -q), a callback refused (a warning), one the ledger
    // cannot take (an error).
    let r = Receiver::start(dir, &["-q"]);
    assert_eq!(post(r.addr, "/callbacks/archive", &[], "{x").0, 400);
    assert_eq!(
        post(r.addr, "/callbacks/archive", &[], &callback(&uuid(4))).0,
        503
    );
    let lines = r.stop();
    let logged = json_lines(&lines);
    assert_eq!(logged.len(), 1, "{lines:?}");
    assert_eq!(logged[0]["level"], "ERROR");
    assert_eq!(logged[0]["outcome"], "failed: ledger unavailable");
    assert_eq!(logged[0]["archive"], uuid(4).as_str());

    let out = run(&["-q", "-v", "ledger", "list"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--quiet"),
        "{out:?}"
    );
}

const API_KEY: &str = "46000015";
const SECRET: &str = "logging-test-secret-0123456789abcdef0123";

#[test]
fn pull_all_logs_a_run_id_and_each_archive_and_quiet_silences_the_notes() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let ids = [uuid(10), uuid(11)];
    put_archives(
        &Target::S3(servers.s3.clone()),
        API_KEY,
        &ids,
        &fx.dir.path().join("archive.ts"),
    );
    let list = uploaded_archive_list(API_KEY, &ids, password.trim());
    let (api, _fake) = serve(vec![(200, &list), (200, &list), (200, &list)]);
    use secrecy::ExposeSecret as _;
    std::fs::write(
        fx.path("s3secret"),
        servers.s3.secret_access_key.expose_secret(),
    )
    .unwrap();
    let run = |args: &[&str]| {
        archivectl()
            .env("OPENTOK_API_SECRET", SECRET)
            .env("ARCHIVECTL_LEDGER", fx.path("ledger.sqlite3"))
            .current_dir(fx.dir.path())
            .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
            .args(args)
            .args([
                "--bucket",
                &servers.s3.bucket,
                "--endpoint",
                servers.s3.endpoint.as_deref().unwrap(),
                "--access-key-id",
                &servers.s3.access_key_id,
                "--secret-access-key-file",
                "s3secret",
            ])
            .output()
            .unwrap()
    };
    let synced = sync_from(
        api,
        API_KEY,
        SECRET,
        &fx.path("ledger.sqlite3"),
        fx.dir.path(),
    );
    assert!(synced.status.success(), "{synced:?}");
    // A one-shot command says nothing on stderr when all goes well; `-v` adds the REST client's debug lines.
    let list_archives = |extra: &[&str]| {
        archivectl()
            .env("OPENTOK_API_SECRET", SECRET)
            .current_dir(fx.dir.path())
            .args([
                "--api-key",
                API_KEY,
                "--api-url",
                &format!("http://{api}"),
                "archives",
                "list",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let plain = list_archives(&[]);
    assert!(plain.status.success(), "{plain:?}");
    assert_eq!(String::from_utf8_lossy(&plain.stderr), "");
    let verbose = list_archives(&["-v"]);
    assert!(verbose.status.success(), "{verbose:?}");
    assert_eq!(verbose.stdout, plain.stdout);
    let detail = String::from_utf8_lossy(&verbose.stderr).into_owned();
    let detail: Vec<String> = detail.lines().map(str::to_owned).collect();
    let detail = json_lines(&detail);
    assert!(
        detail
            .iter()
            .any(|l| l["level"] == "DEBUG" && l["message"] == "answered" && l["status"] == 200),
        "{detail:?}"
    );
    let pull = &["pull", "--all", "--key", "key.pem", "--out-dir", "out"];
    let out = run(pull);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    let logged = json_lines(&lines);
    let run_id = logged
        .iter()
        .find(|l| l["outcome"] == "started")
        .unwrap_or_else(|| panic!("{stderr}"))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(run_id.len(), 16);
    for id in &ids {
        let line = logged
            .iter()
            .find(|l| l["archive"] == id.as_str())
            .unwrap_or_else(|| panic!("no line for {id}: {stderr}"));
        assert_eq!(line["outcome"], "pulled", "{line}");
        assert_eq!(line["run_id"], run_id.as_str());
        assert_eq!(line["sha256"].as_str().unwrap().len(), 64);
    }
    let finished = logged
        .iter()
        .find(|l| l["message"] == "pull finished")
        .unwrap();
    assert_eq!(
        (finished["pulled"].as_u64(), finished["failed"].as_u64()),
        (Some(2), Some(0))
    );
    for l in &logged {
        assert!(
            l["run_id"].is_string() && l["archive"].is_string() && l["outcome"].is_string(),
            "{l}"
        );
    }
    assert!(!stderr.contains(password.trim()), "no password in the log");

    // Again: nothing left. A note says so, and a run is logged; -q says nothing at all, and keeps stdout.
    let out = run(pull);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("the ledger knows no uploaded archive"),
        "{stderr}"
    );
    let mut quiet = pull.to_vec();
    quiet.push("-q");
    let out = run(&quiet);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "-q");
    quiet.push("--json");
    let out = run(&quiet);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[]",
        "results stay on stdout"
    );
}

/// GET `path`; the status code and the whole answer (head lowercased).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    (answer.split(' ').nth(1).unwrap().parse().unwrap(), answer)
}

#[test]
fn callbacks_serve_answers_readyz_and_metrics_with_the_certificates_days_left() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite3");
    {
        // The certificate `storage set` recorded for the project: 90 days and an hour left.
        let mut l = archive_db::Ledger::open(&ledger).unwrap();
        let not_after =
            time::OffsetDateTime::now_utc() + time::Duration::days(90) + time::Duration::hours(1);
        l.record_certificate(&archive_db::CertificateRecord {
            fingerprint: "ab".repeat(32),
            project_id: Some(API_KEY.into()),
            subject: "CN=test".into(),
            not_after: not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
        })
        .unwrap();
        l.activate_certificate(
            API_KEY,
            Some(&"ab".repeat(32)),
            time::OffsetDateTime::now_utc() - time::Duration::minutes(1),
        )
        .unwrap();
    }
    let r = Receiver::start(dir, &["--api-key", API_KEY]);
    assert_eq!(get(r.addr, "/healthz").0, 200);
    assert_eq!(get(r.addr, "/readyz").0, 200);
    assert_eq!(
        post(r.addr, "/callbacks/archive", &[], &callback(&uuid(20))).0,
        200
    );
    let (code, metrics) = get(r.addr, "/metrics");
    assert_eq!(code, 200);
    for line in [
        "archivectl_certificate_expiry_days 90",
        "certificate_expiry_days 90",
        "archivectl_callbacks_received_total 1",
        "archivectl_callbacks_acknowledged_total 1",
        "archivectl_commit_latency_seconds_count 1",
        "archivectl_queue_depth 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // A rotation while the receiver runs (`cert rotate` records the new certificate in the ledger): the next
    // scrape shows the new certificate's days left, without a restart.
    {
        let mut l = archive_db::Ledger::open(&ledger).unwrap();
        let not_after =
            time::OffsetDateTime::now_utc() + time::Duration::days(400) + time::Duration::hours(1);
        l.record_certificate(&archive_db::CertificateRecord {
            fingerprint: "cd".repeat(32),
            project_id: Some(API_KEY.into()),
            subject: "CN=rotated".into(),
            not_after: not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".into(),
        })
        .unwrap();
        l.activate_certificate(
            API_KEY,
            Some(&"cd".repeat(32)),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    }
    let (_, metrics) = get(r.addr, "/metrics");
    for line in [
        "archivectl_certificate_expiry_days 400",
        "certificate_expiry_days 400",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    // The callback path cannot hide them.
    let out = run(&[
        "callbacks",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--path",
        "/metrics",
    ]);
    assert_fails(&out, 2, "/metrics");
}
