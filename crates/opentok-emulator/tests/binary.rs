//! The `opentok-emulator` binary as a user runs it: plain-text logs when they go to a file, and a
//! `recordedSeconds` hook it cannot honour refused with the limit instead of a shorter archive.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// One HTTP/1.1 request on loopback; returns the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn logs_to_a_file_are_plain_and_recorded_seconds_above_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "emulator-secret\n").unwrap();
    let log_path = dir.path().join("emulator.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "46000000",
            "--api-secret-file",
        ])
        .arg(dir.path().join("secret.txt"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("opentok-emulator listening on http://")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();

    let (status, body) = http(
        &addr,
        "POST",
        "/_emulator/hooks",
        r#"{"recordedSeconds":10800}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("recordedSeconds 10800 is above"), "{body}");
    let (status, body) = http(&addr, "GET", "/_emulator/hooks", "");
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""recordedSeconds":null"#),
        "unchanged: {body}"
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/_emulator/hooks",
        r#"{"recordedSeconds":60}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""recordedSeconds":60"#), "{body}");

    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("hooks changed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI codes in a log file: {log:?}"
    );
}
