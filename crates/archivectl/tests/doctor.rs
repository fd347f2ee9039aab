//! `archivectl doctor` against a real setup: opentok-emulator as the service, the S3 test server (s3s-fs,
//! started by `cargo xtask ci`) as the target, `archivectl callbacks serve` as the receiver. All checks pass on
//! the healthy setup; then each is broken on its own and must be the only error, with its exit code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use common::*;
use secrecy::ExposeSecret as _;
use storage_fetch::test_env::TestServers;

const API_KEY: &str = "46000151";
const SECRET: &str = "doctor-secret-0123456789abcdef0123456789";

/// The names of the checks, in the order doctor runs them.
const CHECKS: [&str; 8] = [
    "config",
    "files",
    "keys",
    "certificate",
    "storage",
    "service",
    "ledger",
    "receiver",
];

/// A receiver process, killed when dropped.
struct Receiver {
    child: Child,
    url: String,
}

impl Receiver {
    fn start(dir: &Path) -> Self {
        let mut child = archivectl()
            .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "--ledger"])
            .arg(dir.join("receiver.sqlite3"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut url = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.split_whitespace().next().unwrap().to_string());
                break;
            }
        }
        let url = url.expect("the receiver printed its address");
        // The address alone: the receiver prints http://ADDR/callbacks/archive.
        let url = url
            .split("/callbacks")
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        Self { child, url }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
    api_url: String,
    servers: TestServers,
    receiver: Receiver,
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    set_mode(path, 0o600);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Setup {
    /// The emulator, the receiver, a key pair made by keygen and set on the service with `storage set`.
    fn new(cert_days: u32) -> Self {
        let servers = TestServers::require().expect("the test servers (cargo xtask ci)");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (emulator, api_url) = emulator::start(&runtime, API_KEY, SECRET);
        // The emulator runs as long as the runtime: leak the handle into it.
        runtime.spawn(async move {
            let _keep = emulator;
            std::future::pending::<()>().await;
        });
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::start(dir.path());
        let setup = Self {
            dir,
            _runtime: runtime,
            api_url,
            servers,
            receiver,
        };
        private(&setup.path("api-secret"), &format!("{SECRET}\n"));
        private(
            &setup.path("s3-secret"),
            &format!("{}\n", setup.servers.s3.secret_access_key.expose_secret()),
        );
        setup.keygen("key.pem", "cert.pem", cert_days);
        setup.write_config("\"key.pem\"", "");
        let out = setup.run(&["storage", "set", "s3", "--certificate", "cert.pem"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keygen(&self, key: &str, cert: &str, days: u32) {
        let out = self.run(&[
            "keygen",
            "--key",
            key,
            "--cert",
            cert,
            "--days",
            &days.to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// archivectl.toml with `keys` as `[keys] private_key` and `extra` lines under `[keys]`.
    fn write_config(&self, keys: &str, extra: &str) {
        let s3 = &self.servers.s3;
        std::fs::write(
            self.path("archivectl.toml"),
            format!(
                r#"[project]
api_key = "{API_KEY}"
api_url = "{api_url}"
api_secret_file = "api-secret"

[target]
type = "s3"
bucket = "{bucket}"
endpoint = "{endpoint}"
access_key_id = "{access}"
secret_access_key_file = "s3-secret"

[keys]
private_key = {keys}
{extra}

[ledger]
path = "ledger.sqlite3"

[receiver]
url = "{receiver}"
"#,
                api_url = self.api_url,
                bucket = s3.bucket,
                endpoint = s3.endpoint.as_deref().unwrap(),
                access = s3.access_key_id,
                receiver = self.receiver.url,
            ),
        )
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        archivectl()
            .current_dir(self.dir.path())
            .env_remove("ARCHIVECTL_LEDGER")
            .env_remove("OPENTOK_API_SECRET")
            .env("ARCHIVECTL_CONFIG", self.path("archivectl.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `doctor --json`: the exit code and each check's status and message, by name (in order).
    fn doctor(&self) -> (i32, BTreeMap<String, (String, String)>) {
        let out = self.run(&["doctor", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let checks = json["checks"].as_array().unwrap();
        let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, CHECKS, "{json}");
        let map = checks
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    (
                        c["status"].as_str().unwrap().to_string(),
                        c["message"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect();
        (out.status.code().unwrap(), map)
    }

    /// Asserts that `name` is the only check in error, with `needle` in its message, and the exit code.
    fn only_error(&self, name: &str, code: i32, needle: &str) {
        let (exit, checks) = self.doctor();
        for (check, (status, message)) in &checks {
            if check == name {
                assert_eq!(status, "error", "{check}: {message}");
                assert!(
                    message.contains(needle),
                    "{check}: {message:?} lacks {needle:?}"
                );
            } else {
                assert_ne!(
                    status, "error",
                    "only {name} may fail, not {check}: {message}"
                );
            }
        }
        assert_eq!(exit, code, "{checks:?}");
    }
}

#[test]
fn every_check_passes_on_a_healthy_setup_and_each_fails_on_its_own() {
    let s = Setup::new(365);
    let (code, checks) = s.doctor();
    for (name, (status, message)) in &checks {
        assert_eq!(status, "ok", "{name}: {message}");
    }
    assert_eq!(code, 0);
    assert!(
        checks["certificate"].1.contains("364 days left")
            || checks["certificate"].1.contains("365 days left"),
        "{:?}",
        checks["certificate"]
    );
    assert!(
        checks["service"].1.contains("accepts our credentials"),
        "{:?}",
        checks["service"]
    );
    // The human form: one line per check, in order.
    let out = s.run(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CHECKS.len(), "{text}");
    for (line, name) in lines.iter().zip(CHECKS) {
        assert!(line.starts_with("ok") && line.contains(name), "{line}");
    }

    // config: a syntax error; nothing else can be checked.
    let good = std::fs::read_to_string(s.path("archivectl.toml")).unwrap();
    std::fs::write(s.path("archivectl.toml"), format!("{good}\n[keys\n")).unwrap();
    let out = s.run(&["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checks"][0]["name"], "config");
    assert_eq!(json["checks"][0]["status"], "error");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("doctor: 1 of 1 checks failed (config)"));
    std::fs::write(s.path("archivectl.toml"), &good).unwrap();

    // files: a secret readable by others.
    set_mode(&s.path("s3-secret"), 0o644);
    s.only_error("files", 3, "chmod 600");
    set_mode(&s.path("s3-secret"), 0o600);

    // keys: a second, encrypted key without its passphrase (the first still matches the certificate).
    private(&s.path("pass"), "correct horse\n");
    let out = s.run(&[
        "keygen",
        "--key",
        "locked.pem",
        "--cert",
        "locked-cert.pem",
        "--passphrase-file",
        "pass",
    ]);
    assert!(out.status.success());
    s.write_config("[\"key.pem\", \"locked.pem\"]", "");
    s.only_error("keys", 4, "no passphrase is available");
    // With its passphrase, both load.
    s.write_config(
        "[\"key.pem\", \"locked.pem\"]",
        "passphrase_file = \"pass\"",
    );
    let (code, checks) = s.doctor();
    assert_eq!(code, 0, "{checks:?}");
    assert!(
        checks["keys"].1.contains("2 private keys load"),
        "{checks:?}"
    );

    // certificate: the configured key is not the certificate's.
    s.write_config("[\"locked.pem\"]", "passphrase_file = \"pass\"");
    s.only_error("certificate", 4, "matches none of the 1 keys");
    s.write_config("\"key.pem\"", "");

    // storage: the wrong secret access key.
    private(&s.path("s3-secret"), "not-the-secret\n");
    s.only_error("storage", 7, "rejected the credentials");
    private(
        &s.path("s3-secret"),
        &format!("{}\n", s.servers.s3.secret_access_key.expose_secret()),
    );

    // service: the wrong API secret.
    private(&s.path("api-secret"), "not-the-api-secret\n");
    s.only_error("service", 6, "");
    private(&s.path("api-secret"), &format!("{SECRET}\n"));

    // ledger: a file that is not a ledger (the certificate cannot be read then: a warning, not a second error).
    std::fs::rename(s.path("ledger.sqlite3"), s.path("ledger.saved")).unwrap();
    std::fs::write(s.path("ledger.sqlite3"), vec![b'x'; 4096]).unwrap();
    s.only_error("ledger", 8, "ledger.sqlite3");
    std::fs::remove_file(s.path("ledger.sqlite3")).unwrap();
    std::fs::rename(s.path("ledger.saved"), s.path("ledger.sqlite3")).unwrap();

    // receiver: nothing listens at its URL any more.
    let url = s.receiver.url.clone();
    let mut s = s;
    let _ = s.receiver.child.kill();
    let _ = s.receiver.child.wait();
    s.only_error("receiver", 9, &format!("cannot reach {url}/healthz"));
}

#[test]
fn a_certificate_that_expires_soon_is_a_warning() {
    let s = Setup::new(10);
    let (code, checks) = s.doctor();
    let (status, message) = &checks["certificate"];
    assert_eq!(status, "warning", "{message}");
    assert!(
        message.contains("expires in 9 days") || message.contains("expires in 10 days"),
        "{message}"
    );
    assert!(message.contains("cert rotate"), "{message}");
    assert_eq!(code, 0, "a warning is not an error: {checks:?}");
}

#[test]
fn without_any_setting_doctor_warns_and_does_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = archivectl()
        .current_dir(dir.path())
        .env_remove("ARCHIVECTL_CONFIG")
        .env_remove("OPENTOK_API_KEY")
        .env_remove("OPENTOK_API_SECRET")
        .env("XDG_CONFIG_HOME", dir.path())
        .env("ARCHIVECTL_LEDGER", dir.path().join("none.sqlite3"))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.contains(&"error"), "{json}");
    assert_eq!(json["checks"][0]["status"], "warning", "{json}");
    assert!(
        !dir.path().join("none.sqlite3").exists(),
        "doctor creates no ledger"
    );
}
