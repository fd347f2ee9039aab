//! `archivectl demo` touches nothing it did not create, and leaves nothing behind however it ends.
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::demo::{assert_signal_cleans_up, tree};
use common::*;

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

#[test]
fn next_steps_are_commands_that_work_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let out = archivectl()
        .env("TMPDIR", tmp.path())
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let removed = tmp.path().display().to_string();
    // A command naming a file of the removed directory would not work: only "with --keep DIR" ones.
    for line in all.lines().filter(|l| l.contains("archivectl ledger show")) {
        assert!(
            !line.contains(&format!("--ledger {removed}")) && line.contains("--keep DIR"),
            "{line}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for next in [
        "archivectl keygen",
        "archivectl storage check",
        "archivectl storage set s3",
        "archivectl callbacks serve",
        "docs/user-guide.md",
    ] {
        assert!(stdout.contains(next), "{next} in {stdout}");
    }
    assert_eq!(tree(tmp.path()), Vec::<String>::new());
}
