//! Running `archivectl demo` and stopping it with a signal.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::archivectl;

/// Everything under `dir`, recursively (relative paths, sorted).
pub fn tree(dir: &Path) -> Vec<String> {
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
pub fn assert_signal_cleans_up(signal: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        if let Some(got) = demo_stopped_by(signal, tmp.path()) {
            assert_eq!(got, code, "exit code after {signal}");
            return;
        }
    }
    panic!("the demo always finished before {signal} arrived");
}
