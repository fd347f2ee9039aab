//! What archivectl shows and writes for people (issue 11): text from the service never reaches the terminal
//! with its control characters (escape sequences could rewrite the screen or the title), and files archivectl
//! writes for the user are `0600` whatever the umask.
#![allow(clippy::unwrap_used)]

mod common;

use common::fake_service::serve;
use common::*;

const ID: &str = "7e57a11e-0000-4000-8000-000000000001";

/// An archive whose text fields carry an escape sequence, a bell and a carriage return.
fn hostile_archive() -> String {
    format!(
        r#"{{"id":"{ID}","status":"uploaded","name":"\u001b[2J\u001b]0;owned\u0007","reason":"a\rb",
            "sessionId":"S\u001b[31m","partnerId":46000001,"createdAt":1700000000000,"duration":0,"size":1,
            "outputMode":"composed","url":null,"password":""}}"#
    )
}

#[test]
fn archives_get_and_list_escape_control_characters_from_the_service() {
    let body = hostile_archive();
    let list = format!(r#"{{"count":1,"items":[{body}]}}"#);
    let (addr, _fake) = serve(vec![(200, &body), (200, &list)]);
    for args in [&["archives", "get", ID][..], &["archives", "list"]] {
        let out = archivectl()
            .env("OPENTOK_API_SECRET", "secret-0123456789abcdef")
            .env_remove("ARCHIVECTL_CONFIG")
            .current_dir(std::env::temp_dir())
            .args([
                "--api-key",
                "46000001",
                "--api-url",
                &format!("http://{addr}"),
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{args:?}: {text:?}"
        );
        assert!(text.contains("\\u{1b}"), "escaped, not dropped: {text}");
    }
}

#[test]
fn ledger_export_out_is_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite3");
    drop(archive_db::Ledger::open(&ledger).unwrap());
    for (format, name) in [("json", "export.json"), ("csv", "export.csv")] {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_archivectl"))
            .args(["ledger", "export", "--format", format, "--out", name])
            .arg("--ledger")
            .arg(&ledger)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "{format}: {status}");
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}
