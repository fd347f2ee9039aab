//! Property test (issue 11): `sync --since AGE` with any number and unit is an answer (a usage error for what
//! cannot be a time, or on to the next step), never an overflow caught as an internal error (exit 1). Each case
//! is a process, so the case count is small (`PROPTEST_CASES` overrides it). No service is configured, so a
//! `--since` that parses stops at the missing API secret instead of reaching the network.

use std::process::{Command, Stdio};

use proptest::prelude::*;

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Runs `archivectl sync --since SINCE` with nothing configured; returns the exit code and stderr.
fn sync_since(since: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_archivectl"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("ARCHIVECTL_CONFIG")
        .env_remove("OPENTOK_API_SECRET")
        .env_remove("OPENTOK_API_KEY")
        .env_remove("OPENTOK_API_URL")
        .args(["sync", "--since", since])
        .output()
        .expect("archivectl runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_answered(since: &str) -> Result<(), TestCaseError> {
    let (code, stderr) = sync_since(since);
    prop_assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "--since {since}: {stderr}"
    );
    prop_assert!(
        code.is_some_and(|c| c >= 2),
        "--since {since}: exit {code:?}: {stderr}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    /// Any count of any unit, up to numbers far past what an `i64` of seconds can hold.
    #[test]
    fn any_age_is_answered(number in "[0-9]{1,25}", unit in prop::sample::select(vec!["s", "m", "h", "d", "w", "y", ""])) {
        assert_answered(&format!("{number}{unit}"))?;
    }
}

/// The ages from the issue, and the largest that parse: a usage error naming `--since`, exit 2.
#[test]
fn ages_too_long_ago_are_usage_errors() {
    for since in [
        "99999999999999w",
        "9223372036854775807s",
        "9223372036854775807w",
        "106751991167300d",
    ] {
        let (code, stderr) = sync_since(since);
        assert_eq!(code, Some(2), "--since {since}: {stderr}");
        assert!(stderr.contains("--since"), "--since {since}: {stderr}");
    }
}
