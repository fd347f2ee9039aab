//! `archivectl demo` touches nothing it did not create, and leaves nothing behind however it ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// Everything under `dir`, recursively (relative paths, sorted).
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn keep_refuses_a_directory_that_is_not_empty_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("mine");
    std::fs::create_dir(&keep).unwrap();
    std::fs::write(keep.join("key.pem"), b"my real private key").unwrap();
    std::fs::write(keep.join("ledger.sqlite3"), b"my real ledger").unwrap();
    let before = tree(dir.path());
    let out = run(&["demo", "--keep", keep.to_str().unwrap()]);
    assert_fails(&out, 3, "is not empty");
    assert_eq!(tree(dir.path()), before);
    assert_eq!(
        std::fs::read(keep.join("key.pem")).unwrap(),
        b"my real private key"
    );
    assert_eq!(
        std::fs::read(keep.join("ledger.sqlite3")).unwrap(),
        b"my real ledger"
    );

    // A file is not a directory to keep things in.
    let file = dir.path().join("afile");
    std::fs::write(&file, b"data").unwrap();
    let out = run(&["demo", "--keep", file.to_str().unwrap()]);
    assert_fails(&out, 3, "not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}

#[test]
fn keep_takes_a_new_or_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = archivectl()
        .env("TMPDIR", tmp.path())
        .args(["demo", "--keep", empty.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kept in ["key.pem", "cert.pem", "ledger.sqlite3", "callback.json"] {
        assert!(empty.join(kept).is_file(), "{kept} kept");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("archivectl ledger show"), "{stdout}");
    assert!(stdout.contains("archivectl keygen"), "{stdout}");
    // The run's secrets went with it.
    assert_eq!(tree(tmp.path()), Vec::<String>::new());
}

#[test]
fn closed_output_leaves_no_private_key_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' demo 2>&1 | head -1",
            env!("CARGO_BIN_EXE_archivectl")
        ))
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("[ 1] keygen: "), "{stdout}");
    // The first line names the key, in the demo's temporary directory under our TMPDIR.
    assert!(
        stdout.contains(&tmp.path().display().to_string()),
        "{stdout}"
    );
    assert_eq!(tree(tmp.path()), Vec::<String>::new());
}

/// Starts the demo with its temporary directory under `tmp`, waits for its first step (the key written),
/// sends `signal`, and returns the exit code, or `None` if the demo finished before the signal came.
fn demo_stopped_by(signal: &str, tmp: &Path) -> Option<i32> {
    let mut child = archivectl()
        .env("TMPDIR", tmp)
        .arg("demo")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("[ 1] keygen: "), "{line}");
    let key = line
        .split_whitespace()
        .find(|w| w.ends_with("key.pem"))
        .unwrap()
        .to_string();
    assert!(key.starts_with(&tmp.display().to_string()), "{line}");
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Keep reading, so a demo still running is never blocked on a full pipe.
    let rest: Vec<String> = stderr.lines().map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(
        tree(tmp),
        Vec::<String>::new(),
        "{key} and its directory must be gone; stderr: {rest:?}"
    );
    if status.success() && rest.iter().any(|l| l.starts_with("[12] inspect")) {
        return None;
    }
    let last = rest.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("signal"),
        "{rest:?}"
    );
    status.code()
}

/// The demo takes well under a second: a run that ends before the signal arrives is run again (and still
/// had to leave nothing behind), until one is stopped.
fn assert_signal_cleans_up(signal: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        if let Some(got) = demo_stopped_by(signal, tmp.path()) {
            assert_eq!(got, code, "exit code after {signal}");
            return;
        }
    }
    panic!("the demo always finished before {signal} arrived");
}

#[test]
fn sigterm_leaves_no_private_key_behind() {
    assert_signal_cleans_up("-TERM", 143);
}

#[test]
fn ctrl_c_leaves_no_private_key_behind() {
    assert_signal_cleans_up("-INT", 130);
}

#[test]
fn sighup_leaves_no_private_key_behind() {
    assert_signal_cleans_up("-HUP", 143);
}
