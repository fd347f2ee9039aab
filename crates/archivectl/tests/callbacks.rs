//! `archivectl callbacks serve` as a black box: callbacks posted over real TCP, the ledger read back with
//! archive-db (while the receiver runs, and after it is killed).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use archive_db::Ledger;
use common::archivectl;
use opentok_rest::model::ArchiveStatus;
use sha2::{Digest, Sha256};

const DOCUMENTED: &str = r#"{
    "id" : "b40ef09b-3811-4726-b508-e41a0f96c68f",
    "event": "archive",
    "createdAt" : 1384221380000,
    "duration" : 328,
    "name" : "Foo",
    "partnerId" : 123456,
    "reason" : "",
    "sessionId" : "2_MX40NzIwMzJ-flR1ZSBPERUIDIwMTN-MC45NDQ2MzE2NH4",
    "size" : 18023312,
    "status" : "uploaded",
    "password" : "e42c...d23"
}"#;

struct Receiver {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<(Mutex<String>, Condvar)>,
    ledger: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let ledger = dir.path().join("data/ledger.sqlite3");
        let mut child = archivectl()
            .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "--ledger"])
            .arg(&ledger)
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                log.0.lock().unwrap().push_str(&format!("{line}\n"));
                log.1.notify_all();
            }
        });
        // The address comes on stdout, as scripts read it.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            let _ = tx.send(first);
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("receiver did not start: {}", stderr.0.lock().unwrap()));
        let addr = first
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "first line on stdout: {first:?}; {}",
                    stderr.0.lock().unwrap()
                )
            })
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            stderr,
            ledger,
            _dir: dir,
        }
    }

    /// Waits until the log has a line containing `needle` (the receiver's own event, not a timer).
    fn wait_log(&self, needle: &str) {
        let (log, changed) = &*self.stderr;
        let guard = log.lock().unwrap();
        let (guard, timeout) = changed
            .wait_timeout_while(guard, Duration::from_secs(60), |l| !l.contains(needle))
            .unwrap();
        assert!(!timeout.timed_out(), "no {needle:?} in the log: {}", *guard);
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        request(self.addr, "POST", path, headers, body)
    }

    fn log(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; the status code and body of the answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_request(addr, method, path, headers, body).unwrap()
}

fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> std::io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}

/// A valid archive id (a UUID) named after `name`.
fn uid(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("00000000-0000-4000-8000-{:012x}", h & 0xffff_ffff_ffff)
}

fn archive_body(id: &str, status: &str, password: &str) -> String {
    format!(
        r#"{{"id":"{id}","event":"archive","status":"{status}","sessionId":"S","partnerId":123456,"createdAt":1700000000000,"size":1000,"password":"{password}"}}"#
    )
}

#[test]
fn the_documented_callback_is_in_the_ledger_when_200_is_answered() {
    let r = Receiver::start(&[]);
    let (code, _) = r.post("/callbacks/archive", &[], DOCUMENTED.as_bytes());
    assert_eq!(code, 200);
    // Read at once, from another process, with the receiver still running: it was committed before the 200.
    let ledger = Ledger::open(&r.ledger).unwrap();
    let a = ledger
        .archive("b40ef09b-3811-4726-b508-e41a0f96c68f")
        .unwrap()
        .unwrap();
    assert_eq!(a.status, ArchiveStatus::Uploaded);
    assert_eq!(a.password.as_deref(), Some("e42c...d23"));
    assert_eq!(a.size, 18023312);
    let events = ledger.events(None).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body, DOCUMENTED, "the body exactly as received");
    assert_eq!(events[0].source, "callback");
    assert_eq!(events[0].auth.as_deref(), Some("none"));
    assert!(events[0].origin.starts_with("127.0.0.1:"));

    // A late `stopped` is acknowledged (the service must not retry it) but does not move the status back.
    let late = archive_body("b40ef09b-3811-4726-b508-e41a0f96c68f", "stopped", "");
    assert_eq!(r.post("/callbacks/archive", &[], late.as_bytes()).0, 200);
    let a = ledger
        .archive("b40ef09b-3811-4726-b508-e41a0f96c68f")
        .unwrap()
        .unwrap();
    assert_eq!(a.status, ArchiveStatus::Uploaded);
    assert_eq!(a.password.as_deref(), Some("e42c...d23"));
    assert!(!r.log().contains("e42c...d23"), "no password in the log");
}

#[test]
fn other_callbacks_are_kept_raw_and_bad_ones_refused() {
    let r = Receiver::start(&[]);
    let session = br#"{"sessionId":"2_MX4","projectId":"123456","event":"streamCreated","timestamp":1470257688309,"stream":{"id":"63245362"}}"#;
    assert_eq!(r.post("/callbacks/archive", &[], session).0, 200);
    assert_eq!(r.post("/callbacks/archive", &[], b"{not json").0, 400);
    assert_eq!(r.post("/callbacks/archive", &[], b"[1, 2]").0, 400);
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[],
            br#"{"event":"archive","status":"started"}"#
        )
        .0,
        400,
        "an archive callback without id"
    );
    let big = format!(
        r#"{{"id":"big","status":"started","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    assert_eq!(r.post("/callbacks/archive", &[], big.as_bytes()).0, 413);
    assert_eq!(r.post("/elsewhere", &[], DOCUMENTED.as_bytes()).0, 404);
    assert_eq!(request(r.addr, "GET", "/healthz", &[], b"").0, 200);

    let ledger = Ledger::open(&r.ledger).unwrap();
    let events = ledger.events(None).unwrap();
    assert_eq!(events.len(), 1, "only the good one: {events:?}");
    assert_eq!(events[0].kind, "streamCreated");
    assert_eq!(events[0].body.as_bytes(), session);
    assert_eq!(ledger.counts().unwrap(), (0, 1));
    r.wait_log("bad callback");
    r.wait_log("not JSON");
}

#[test]
fn a_shared_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-3f9a81\n").unwrap();
    let r = Receiver::start_in(dir, &["--token-file", "token"]);
    let body = archive_body(&uid("t1"), "started", "");
    assert_eq!(r.post("/callbacks/archive", &[], body.as_bytes()).0, 401);
    assert_eq!(
        r.post("/callbacks/archive?token=wrong", &[], body.as_bytes())
            .0,
        401
    );
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("X-Archivectl-Token", "tok-3f9a8")],
            body.as_bytes()
        )
        .0,
        401
    );
    assert_eq!(
        r.post("/callbacks/archive?token=tok-3f9a81", &[], body.as_bytes())
            .0,
        200
    );
    let body2 = archive_body(&uid("t2"), "started", "");
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("X-Archivectl-Token", "tok-3f9a81")],
            body2.as_bytes()
        )
        .0,
        200
    );
    let ledger = Ledger::open(&r.ledger).unwrap();
    assert_eq!(ledger.counts().unwrap(), (2, 2));
    let auth: Vec<_> = ledger
        .events(None)
        .unwrap()
        .into_iter()
        .map(|e| e.auth)
        .collect();
    assert_eq!(auth, [Some("token".to_string()), Some("token".to_string())]);
    r.wait_log("wrong token");
    r.wait_log("no token");
    let log = r.log();
    assert!(!log.contains("tok-3f9a8"), "no token in the log: {log}");
}

#[test]
fn signed_callbacks_are_verified_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sig"), "sig-secret-77\n").unwrap();
    let r = Receiver::start_in(dir, &["--signature-secret-file", "sig"]);
    let body = archive_body(&uid("s1"), "uploaded", "cGFzcw==");
    let now = opentok_rest::auth::unix_now().unwrap();
    let sign = |payload: &[u8], secret: &[u8]| {
        let claims = serde_json::json!({"iat": now, "jti": "j1", "iss": "Vonage", "api_key": "123456",
            "payload_hash": hex::encode(Sha256::digest(payload))});
        format!(
            "Bearer {}",
            opentok_rest::auth::sign_hs256(&claims, secret).unwrap()
        )
    };
    assert_eq!(r.post("/callbacks/archive", &[], body.as_bytes()).0, 401);
    let wrong_secret = sign(body.as_bytes(), b"other");
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("Authorization", &wrong_secret)],
            body.as_bytes()
        )
        .0,
        401
    );
    let other_body = sign(b"{}", b"sig-secret-77");
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("Authorization", &other_body)],
            body.as_bytes()
        )
        .0,
        401,
        "a signature of another body"
    );
    let good = sign(body.as_bytes(), b"sig-secret-77");
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("Authorization", &good)],
            body.as_bytes()
        )
        .0,
        200
    );
    let ledger = Ledger::open(&r.ledger).unwrap();
    assert_eq!(ledger.counts().unwrap(), (1, 1));
    assert!(!r.log().contains("sig-secret-77"));
}

/// Sends a request's head with `Expect: 100-continue` and half its body, and returns once the receiver has
/// started reading the body (its `100 Continue`): the request is then in flight, known by an event.
fn start_in_flight(addr: SocketAddr, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /callbacks/archive HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sigterm_and_sigint_finish_the_request_in_flight_then_exit_even_with_idle_connections_open() {
    for sig in ["TERM", "INT"] {
        let mut r = Receiver::start(&[]);
        let id = uid(&format!("inflight-{sig}"));
        let body = archive_body(&id, "uploaded", "cGFzcw==");
        // An idle keep-alive connection (one request answered, then nothing) and one that stalls in its headers.
        let mut idle = TcpStream::connect(r.addr).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = [0u8; 17];
        idle.read_exact(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        let mut stalled = TcpStream::connect(r.addr).unwrap();
        write!(stalled, "POST /callbacks/archive HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut s = start_in_flight(r.addr, body.as_bytes());
        let signalled = Instant::now();
        signal(&r.child, sig);
        r.wait_log("shutting down");
        s.write_all(&body.as_bytes()[body.len() / 2..]).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        assert_eq!(parse_answer(&answer).unwrap().0, 200, "{sig}");
        let status = loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(10),
                "SIG{sig}: still running 10 s later with idle connections open: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}: {}", r.log());
        // New connections are refused once it has stopped.
        assert!(TcpStream::connect(r.addr).is_err());
        let ledger = Ledger::open(&r.ledger).unwrap();
        assert!(ledger.contains(&id).unwrap(), "{sig}");
        drop((idle, stalled));
    }
}

#[test]
fn every_acknowledged_callback_survives_sigkill_under_load() {
    let mut r = Receiver::start(&[]);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = r.addr;
    let clients: Vec<_> = (0..32)
        .map(|t| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = uid(&format!("load-{t}-{i}"));
                    i += 1;
                    let body = archive_body(&id, "uploaded", "cGFzcw==");
                    match try_request(addr, "POST", "/callbacks/archive", &[], body.as_bytes()) {
                        Ok((200, _)) => acked.lock().unwrap().push(id),
                        Ok((code, body)) => panic!("answered {code}: {body}"),
                        // The receiver is gone: nothing more can be acknowledged.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    // Let load build up, then kill the receiver without warning.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 300 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    r.child.kill().unwrap(); // SIGKILL
    r.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());
    let ledger = Ledger::open(&r.ledger).unwrap();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !ledger.contains(id).unwrap())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged callbacks lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    for id in acked.iter().take(20) {
        let a = ledger.archive(id).unwrap().unwrap();
        assert_eq!(a.password.as_deref(), Some("cGFzcw=="));
    }
}

#[test]
fn refuses_bad_options_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = archivectl()
        .args([
            "callbacks",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(dir.path().join("missing"))
        .arg("--ledger")
        .arg(dir.path().join("l.sqlite3"))
        .output()
        .unwrap();
    common::assert_fails(&out, 5, "token file");
    let out = archivectl()
        .args([
            "callbacks",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--path",
            "callbacks",
        ])
        .arg("--ledger")
        .arg(dir.path().join("l.sqlite3"))
        .output()
        .unwrap();
    common::assert_fails(&out, 2, "--path");
    // A ledger that is not one.
    let bad = dir.path().join("bad.sqlite3");
    std::fs::write(&bad, vec![7u8; 8192]).unwrap();
    let out = archivectl()
        .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "--ledger"])
        .arg(&bad)
        .output()
        .unwrap();
    common::assert_fails(&out, 8, "bad.sqlite3");
    assert!(Path::new(&bad).exists());
}

#[test]
fn nobody_gets_in_unauthenticated_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("l.sqlite3");
    // Refused before anything is bound or created.
    let out = archivectl()
        .args(["callbacks", "serve", "--listen", "0.0.0.0:0", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    common::assert_fails(&out, 2, "--insecure-no-auth");
    assert!(!ledger.exists(), "nothing created");
    // With the loudly named flag it gets past the check (and stops at the next one: a ledger that is not one,
    // so the test never binds anything but loopback).
    let bad = dir.path().join("bad.sqlite3");
    std::fs::write(&bad, vec![7u8; 8192]).unwrap();
    let out = archivectl()
        .args([
            "callbacks",
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-no-auth",
        ])
        .arg("--ledger")
        .arg(&bad)
        .output()
        .unwrap();
    common::assert_fails(&out, 8, "bad.sqlite3");
    // A token is enough (again stopped by the bad ledger, past the authentication check).
    std::fs::write(dir.path().join("token"), "tok-public-1\n").unwrap();
    let out = archivectl()
        .args(["callbacks", "serve", "--listen", "[::]:0", "--token-file"])
        .arg(dir.path().join("token"))
        .arg("--ledger")
        .arg(&bad)
        .output()
        .unwrap();
    common::assert_fails(&out, 8, "bad.sqlite3");
    // On loopback it starts, with a warning.
    let r = Receiver::start(&[]);
    r.wait_log("no authentication");
}

#[test]
fn a_bad_archive_id_is_a_400_with_nothing_stored() {
    let r = Receiver::start(&[]);
    for bad in [
        "../../etc/passwd",
        "t1",
        "b40ef09b38114726b508e41a0f96c68f",
        "b40ef09b-3811-4726-b508-e41a0f96c68f\n",
    ] {
        let body = serde_json::json!({"id": bad, "event": "archive", "status": "uploaded", "password": "cA=="});
        let (code, answer) = r.post("/callbacks/archive", &[], body.to_string().as_bytes());
        assert_eq!(code, 400, "{bad:?}: {answer}");
        assert!(answer.contains("not an archive id"), "{answer}");
    }
    let (code, answer) = r.post(
        "/callbacks/archive",
        &[],
        br#"{"event":"archive","status":"started","password":"cA=="}"#,
    );
    assert_eq!(code, 400);
    assert!(answer.contains("\"id\""), "says what is missing: {answer}");
    let ledger = Ledger::open(&r.ledger).unwrap();
    assert_eq!(ledger.counts().unwrap(), (0, 0), "no row and no raw event");
}

#[test]
fn odd_callbacks_are_read_leniently_and_unreadable_ones_kept_raw_with_200() {
    let r = Receiver::start(&[]);
    let id = uid("lenient");
    let odd = format!(
        r#"{{"id":"{id}","event":"archive","status":"uploaded","duration":12.5,"size":"123","createdAt":"1700000000000","password":"cGFzcw=="}}"#
    );
    assert_eq!(r.post("/callbacks/archive", &[], odd.as_bytes()).0, 200);
    let ledger = Ledger::open(&r.ledger).unwrap();
    let a = ledger.archive(&id).unwrap().unwrap();
    assert_eq!(
        (a.size, a.duration, a.status),
        (123, 13, ArchiveStatus::Uploaded)
    );
    assert_eq!(a.password.as_deref(), Some("cGFzcw=="));

    let broken_id = uid("broken");
    let broken = format!(
        r#"{{"id":"{broken_id}","event":"archive","status":{{"x":1}},"password":"YnJva2Vu"}}"#
    );
    let (code, _) = r.post("/callbacks/archive", &[], broken.as_bytes());
    assert_eq!(
        code, 200,
        "answered so that the service does not retry forever"
    );
    let events = ledger.events(Some(&broken_id)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, archive_db::UNPARSED_ARCHIVE);
    assert_eq!(events[0].body, broken, "kept raw, its password with it");
    assert!(
        !ledger.contains(&broken_id).unwrap(),
        "no archive row from it"
    );
}

#[test]
fn a_replayed_signed_callback_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sig"), "sig-secret-88\n").unwrap();
    let r = Receiver::start_in(dir, &["--signature-secret-file", "sig"]);
    let id = uid("replayed");
    let body = archive_body(&id, "uploaded", "cGFzcw==");
    let now = opentok_rest::auth::unix_now().unwrap();
    let claims = serde_json::json!({"iat": now, "jti": "same-jti", "iss": "Vonage",
        "payload_hash": hex::encode(Sha256::digest(body.as_bytes()))});
    let auth = format!(
        "Bearer {}",
        opentok_rest::auth::sign_hs256(&claims, b"sig-secret-88").unwrap()
    );
    for _ in 0..3 {
        assert_eq!(
            r.post(
                "/callbacks/archive",
                &[("Authorization", &auth)],
                body.as_bytes()
            )
            .0,
            200
        );
    }
    // The same token on another body (a forged status, say) is refused: the token covers its body only.
    let forged = archive_body(&id, "failed", "Zm9yZ2Vk");
    assert_eq!(
        r.post(
            "/callbacks/archive",
            &[("Authorization", &auth)],
            forged.as_bytes()
        )
        .0,
        401
    );
    let ledger = Ledger::open(&r.ledger).unwrap();
    let a = ledger.archive(&id).unwrap().unwrap();
    assert_eq!(
        (a.status, a.password.as_deref()),
        (ArchiveStatus::Uploaded, Some("cGFzcw=="))
    );
    assert!(!a.password_conflict);
    let history = ledger.status_history(&id).unwrap();
    assert_eq!(
        history.len(),
        1,
        "one status, seen three times: {history:?}"
    );
    assert!(
        ledger
            .events(None)
            .unwrap()
            .iter()
            .all(|e| e.auth.as_deref() == Some("signature"))
    );
}

#[test]
fn a_callback_for_another_project_is_refused_when_ours_is_configured() {
    let r = Receiver::start(&["--api-key", "123456"]);
    let ours = archive_body(&uid("ours"), "uploaded", "cGFzcw==");
    assert_eq!(r.post("/callbacks/archive", &[], ours.as_bytes()).0, 200);
    let theirs = archive_body(&uid("theirs"), "uploaded", "cGFzcw==").replace("123456", "999999");
    assert_eq!(r.post("/callbacks/archive", &[], theirs.as_bytes()).0, 403);
    let ledger = Ledger::open(&r.ledger).unwrap();
    assert_eq!(ledger.counts().unwrap(), (1, 1));
    assert_eq!(
        ledger
            .archive(&uid("ours"))
            .unwrap()
            .unwrap()
            .project_id
            .as_deref(),
        Some("123456")
    );
    // The refusal is logged before the 403 is sent; the log reaches us through a reader thread.
    r.wait_log("not ours");
}

#[test]
fn control_characters_from_a_callback_never_reach_the_terminal() {
    let r = Receiver::start(&[]);
    let id = uid("escapes");
    let body = serde_json::json!({"id": id, "event": "archive", "status": "uploaded\u{1b}[2J",
        "sessionId": "S\r\u{7}", "password": "cA==\u{1b}]0;pwned\u{7}", "name": "=cmd|' /C calc'!A0"});
    assert_eq!(
        r.post("/callbacks/archive", &[], body.to_string().as_bytes())
            .0,
        200
    );
    let body = serde_json::json!({"id": id, "event": "archive", "status": "uploaded",
        "password": "=HYPERLINK(\"http://x\")"});
    assert_eq!(
        r.post("/callbacks/archive", &[], body.to_string().as_bytes())
            .0,
        200
    );
    for args in [vec!["show", id.as_str()], vec!["list"]] {
        let out = archivectl()
            .arg("ledger")
            .args(&args)
            .arg("--ledger")
            .arg(&r.ledger)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: {text:?}"
        );
        if args[0] == "show" {
            assert!(text.contains("\\u{1b}"), "escaped, not dropped: {text}");
        }
    }
    assert!(!r.log().contains('\u{1b}'), "{}", r.log());
    // CSV export: cells starting with = + - @ (the name here) are neutralised.
    let csv = r.ledger.with_file_name("export.csv");
    let out = archivectl()
        .args(["ledger", "export", "--format", "csv", "--out"])
        .arg(&csv)
        .arg("--ledger")
        .arg(&r.ledger)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    for cell in text.lines().flat_map(|l| l.split(',')) {
        let cell = cell.trim_start_matches('"');
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "{cell:?} in {text}"
        );
    }
}

#[test]
fn slow_or_stalled_clients_are_dropped() {
    let r = Receiver::start(&["--header-timeout", "1", "--body-timeout", "1"]);
    // Headers never finished.
    let mut slow_head = TcpStream::connect(r.addr).unwrap();
    slow_head
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(slow_head, "POST /callbacks/archive HTTP/1.1\r\nHost: x\r\n").unwrap();
    // A body that stops half-way.
    let body = archive_body(&uid("stalled"), "uploaded", "cGFzcw==");
    let mut slow_body = TcpStream::connect(r.addr).unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        slow_body,
        "POST /callbacks/archive HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    slow_body.write_all(&body.as_bytes()[..10]).unwrap();
    for (what, s) in [("head", &mut slow_head), ("body", &mut slow_body)] {
        // The receiver closes the connection (possibly after an error answer); a read timeout here (30 s)
        // would mean it kept waiting.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("{what}: the stalled client was not dropped: {e}"));
        let text = String::from_utf8_lossy(&rest);
        assert!(!text.contains(" 200 "), "{what}: {text}");
    }
    // The receiver still serves, and nothing of the stalled body was stored.
    assert_eq!(request(r.addr, "GET", "/healthz", &[], b"").0, 200);
    assert_eq!(Ledger::open(&r.ledger).unwrap().counts().unwrap(), (0, 0));
}

#[test]
fn a_ledger_that_cannot_commit_gets_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/ledger.sqlite3");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(Ledger::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .unwrap();
    let r = Receiver::start_in(dir, &[]);
    let body = archive_body(&uid("refused"), "uploaded", "cGFzcw==");
    let answer = raw_request(r.addr, body.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    r.wait_log("cannot record a callback");
    assert_eq!(Ledger::open(&r.ledger).unwrap().counts().unwrap(), (0, 0));
}

/// The whole answer (head and body) to one POST of `body`.
fn raw_request(addr: SocketAddr, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /callbacks/archive HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn each_recorded_callback_is_logged_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-log-1\n").unwrap();
    let r = Receiver::start_in(dir, &["--token-file", "token"]);
    let id = uid("logged");
    let body = archive_body(&id, "uploaded", "cGFzcw==");
    assert_eq!(
        r.post("/callbacks/archive?token=tok-log-1", &[], body.as_bytes())
            .0,
        200
    );
    r.wait_log("recorded a callback");
    let log = r.log();
    let line = log
        .lines()
        .find(|l| l.contains("recorded a callback"))
        .unwrap();
    for part in [id.as_str(), "uploaded", "new archive", "token"] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert!(!log.contains("cGFzcw=="), "no password in the log");
}
