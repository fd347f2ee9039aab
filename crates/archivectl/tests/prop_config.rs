//! Property test (issue 11) of `archivectl.toml` through the binary: any file given to `--config` (random text,
//! and mutations of a complete valid file) is either used or refused with a documented exit code and an error
//! line; archivectl never panics on it. Each case is a process, so the case count is small (`PROPTEST_CASES`
//! overrides it). The ledger is always a temporary file named by `ARCHIVECTL_LEDGER`, and every path in the
//! generated files is relative (inside the case's temporary directory), so a case cannot touch anything else.

use std::process::{Command, Stdio};

use proptest::prelude::*;

/// The exit codes `docs/user-guide.md` documents (0 success, 2 usage, 3 invalid input, 4 wrong secret, 5 I/O,
/// 6 service, 7 storage, 8 ledger).
const DOCUMENTED_EXITS: &[i32] = &[0, 2, 3, 4, 5, 6, 7, 8];

/// A complete configuration file with every section (secrets only as paths, as the file allows).
const VALID: &str = r#"[project]
api_key = "46000000"
api_url = "http://127.0.0.1:9"
api_secret_file = "secrets/api-secret"

[target]
type = "s3"
bucket = "archives"
endpoint = "http://127.0.0.1:9"
access_key_id = "AKIAEXAMPLE"
secret_access_key_file = "secrets/s3-secret"

[keys]
private_key = ["keys/a.pem", "keys/b.pem"]
passphrase_file = "secrets/passphrase"

[ledger]
path = "ledger/ledger.sqlite3"
"#;

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

/// Replaces `len` characters of `text` at `at` by `insert`.
fn mutate(text: &str, at: prop::sample::Index, len: usize, insert: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = at.index(chars.len());
    let end = (start + len).min(chars.len());
    let mut out: String = chars[..start].iter().collect();
    out.push_str(insert);
    out.extend(&chars[end..]);
    out
}

/// Runs `archivectl --config FILE [--json] ledger list` on `contents` and checks the answer.
fn run_with_config(contents: &[u8], json: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("archivectl.toml");
    std::fs::write(&file, contents).expect("writes the configuration");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_archivectl"));
    cmd.current_dir(dir.path())
        .stdin(Stdio::null())
        .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
        .env_remove("ARCHIVECTL_CONFIG")
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path());
    cmd.arg("--config").arg(&file);
    if json {
        cmd.arg("--json");
    }
    let out = cmd
        .args(["ledger", "list"])
        .output()
        .expect("archivectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    prop_assert!(
        !stderr.contains("panicked"),
        "panic on {:?}: {}",
        String::from_utf8_lossy(contents),
        stderr
    );
    let code = out.status.code();
    prop_assert!(
        code.is_some_and(|c| DOCUMENTED_EXITS.contains(&c)),
        "exit {:?} on {:?}: {}",
        code,
        String::from_utf8_lossy(contents),
        stderr
    );
    if code != Some(0) {
        prop_assert!(!stderr.trim().is_empty(), "a failure says why");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(48))]

    /// Mutations of a valid file, random TOML-like text and random bytes: used or refused, never a panic.
    #[test]
    fn any_config_file_is_used_or_refused(at in any::<prop::sample::Index>(), len in 0usize..12,
                                          insert in "[\\[\\]a-z_ =\"'.,0-9{}\n#/-]{0,16}",
                                          random in "[\\[\\]a-z_ =\"'.,0-9{}\n#]{0,120}",
                                          bytes in prop::collection::vec(any::<u8>(), 0..64),
                                          json in any::<bool>()) {
        let mutated = mutate(VALID, at, len, &insert);
        // Never an absolute path: a case stays inside its own directory.
        let mutated = mutated.replace("\"/", "\"./").replace("'/", "'./");
        run_with_config(mutated.as_bytes(), json)?;
        run_with_config(random.replace("\"/", "\"./").replace("'/", "'./").as_bytes(), json)?;
        if !bytes.windows(2).any(|w| w == b"\"/" || w == b"'/") {
            run_with_config(&bytes, json)?;
        }
    }
}

/// The valid file itself is used: `ledger list` succeeds with it.
#[test]
fn the_complete_valid_file_is_accepted() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("archivectl.toml");
    std::fs::write(&file, VALID).expect("writes the configuration");
    let out = Command::new(env!("CARGO_BIN_EXE_archivectl"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .env("ARCHIVECTL_LEDGER", dir.path().join("ledger.sqlite3"))
        .arg("--config")
        .arg(&file)
        .args(["ledger", "list"])
        .output()
        .expect("archivectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
