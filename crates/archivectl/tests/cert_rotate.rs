//! `archivectl cert rotate` against opentok-emulator and the S3 test server (s3s-fs, started by
//! `cargo xtask ci`): after a rotation an archive made before it and one made after it both pull with the keys
//! archivectl.toml lists; `--dry-run` and a failure at each step change nothing (the service keeps the old
//! certificate, archivectl.toml is byte for byte the same, no new file is left); a failure at step 6 or 7,
//! once the service has the new certificate, is undone (the service gets the old certificate back,
//! archivectl.toml is byte for byte the same) and only the new key pair stays, for archives made meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use opentok_rest::Client;
use opentok_rest::auth::Credentials;
use opentok_rest::model::{ArchiveStatus, StartArchiveRequest};
use secrecy::ExposeSecret as _;
use storage_fetch::test_env::TestServers;

const API_KEY: &str = "46000152";
const SECRET: &str = "rotate-secret-0123456789abcdef0123456789a";

/// A config with comments and layout that the rotation must keep.
const CONFIG: &str = r#"# Our production archives.
[project]
api_key = "{API_KEY}"   # the project
api_url = "{API_URL}"
api_secret_file = "api-secret"

[target]
type = "s3"
bucket = "{BUCKET}"
endpoint = "{ENDPOINT}"
access_key_id = "{ACCESS}"
secret_access_key_file = "s3-secret"

[keys]
# Newest first; keep the old ones for older archives.
private_key = "keys/key.pem"   # made with keygen

[ledger]
path = "ledger.sqlite3"
"#;

/// The `[project]` of [`CONFIG`] for a Vonage application: its id and RSA private key (RS256 bearer tokens at
/// the emulator's Vonage routes) instead of an API key and secret.
const APPLICATION_PROJECT: &str = r#"[project]
application_id = "{APP_ID}"   # the Vonage application
api_url = "{API_URL}"
private_key = "app.key"
"#;

struct Setup {
    client: Client,
    emulator: opentok_emulator::RunningEmulator,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    /// The API key, or the application id.
    project: String,
}

/// A fresh application id per run (UUID form), so parallel runs never share objects in the bucket.
fn application_id() -> String {
    let mut bytes = [0u8; 16];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut bytes);
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Setup {
    /// A project with an API key and secret.
    fn new() -> Self {
        Self::build(false)
    }

    /// A Vonage application (id and private key).
    fn application() -> Self {
        Self::build(true)
    }

    fn build(application: bool) -> Self {
        let servers = TestServers::require().expect("the test servers (cargo xtask ci)");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        let (project, credentials) = if application {
            sh(
                &dir.path().join("conf"),
                "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out app.key 2>/dev/null
                 chmod 600 app.key",
            );
            let pem = std::fs::read_to_string(dir.path().join("conf/app.key")).unwrap();
            let key =
                <rsa::PrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
            let id = application_id();
            (id.clone(), Credentials::application(id, key))
        } else {
            (
                API_KEY.to_string(),
                Credentials::project(API_KEY, SECRET.into()),
            )
        };
        let emulator = runtime.block_on(async {
            let builder = opentok_emulator::Emulator::builder();
            let builder = match &credentials {
                Credentials::Application(app) => {
                    builder.application(app.application_id(), app.public_key())
                }
                _ => builder.project(API_KEY, SECRET.into()),
            };
            builder.start().await.unwrap()
        });
        let api_url = emulator.base_url().trim_end_matches('/').to_string();
        let client = Client::builder(credentials)
            .base_url(&api_url)
            .build()
            .unwrap();
        let s3 = &servers.s3;
        let mut config = CONFIG.to_string();
        if application {
            let start = config.find("[project]").unwrap();
            let end = config.find("\n[target]").unwrap() + 1;
            config.replace_range(start..end, &format!("{APPLICATION_PROJECT}\n"));
        }
        let config = config
            .replace("{API_KEY}", API_KEY)
            .replace("{APP_ID}", &project)
            .replace("{API_URL}", &api_url)
            .replace("{BUCKET}", &s3.bucket)
            .replace("{ENDPOINT}", s3.endpoint.as_deref().unwrap())
            .replace("{ACCESS}", &s3.access_key_id);
        std::fs::create_dir(dir.path().join("conf/keys")).unwrap();
        std::fs::create_dir(dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("conf/archivectl.toml"), config).unwrap();
        std::fs::write(dir.path().join("conf/api-secret"), format!("{SECRET}\n")).unwrap();
        std::fs::write(
            dir.path().join("conf/s3-secret"),
            format!("{}\n", s3.secret_access_key.expose_secret()),
        )
        .unwrap();
        // Secrets readable by their owner only, as doctor wants them.
        sh(&dir.path().join("conf"), "chmod 600 api-secret s3-secret");
        let setup = Self {
            client,
            emulator,
            runtime,
            dir,
            project,
        };
        let out = setup.run(&[
            "keygen",
            "--key",
            "conf/keys/key.pem",
            "--cert",
            "conf/keys/cert.pem",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = setup.run(&[
            "storage",
            "set",
            "s3",
            "--certificate",
            "conf/keys/cert.pem",
        ]);
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

    fn run(&self, args: &[&str]) -> std::process::Output {
        archivectl()
            .current_dir(self.dir.path())
            .env_remove("ARCHIVECTL_LEDGER")
            .env_remove("OPENTOK_API_SECRET")
            .env_remove("ARCHIVECTL_PROFILE")
            .env("ARCHIVECTL_CONFIG", self.path("conf/archivectl.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// The project's upload target as the emulator has it (its certificate's SHA-256 included).
    fn service_storage(&self) -> serde_json::Value {
        self.emulator
            .snapshot()
            .projects
            .into_iter()
            .find(|p| p.id == self.project)
            .and_then(|p| p.storage)
            .unwrap()
    }

    /// Records an archive (uploaded to the bucket, encrypted for the certificate in force); its id.
    fn record_archive(&self) -> String {
        self.runtime.block_on(async {
            let a = self
                .client
                .start_archive(&StartArchiveRequest::new("rotate-session"))
                .await
                .unwrap();
            self.client.stop_archive(&a.id).await.unwrap();
            let done = self
                .emulator
                .wait_for_status(
                    &a.id,
                    &[ArchiveStatus::Uploaded, ArchiveStatus::Failed],
                    Duration::from_secs(120),
                )
                .await
                .unwrap();
            assert_eq!(done.status, ArchiveStatus::Uploaded, "{done:?}");
            a.id
        })
    }

    /// Everything in the directory tree (paths), and archivectl.toml's bytes.
    fn state(&self) -> (Vec<String>, Vec<u8>) {
        let mut files = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path.clone());
                }
                let name = path.strip_prefix(self.dir.path()).unwrap();
                // The ledger's own WAL files come and go.
                if !name.to_string_lossy().contains("ledger.sqlite3") {
                    files.push(name.display().to_string());
                }
            }
        }
        files.sort();
        (
            files,
            std::fs::read(self.path("conf/archivectl.toml")).unwrap(),
        )
    }

    /// Asserts `args` fails with `code` and `needle`, and that nothing changed anywhere.
    fn fails_changing_nothing(&self, args: &[&str], code: i32, needle: &str) {
        let before = (self.state(), self.service_storage());
        let out = self.run(args);
        assert_fails(&out, code, needle);
        assert_eq!(
            (self.state(), self.service_storage()),
            before,
            "{args:?} changed something"
        );
    }
}

const ROTATE: [&str; 6] = [
    "cert",
    "rotate",
    "--key",
    "new/key.pem",
    "--cert",
    "new/cert.pem",
];

#[test]
fn after_a_rotation_old_and_new_archives_both_pull_with_the_listed_keys() {
    let s = Setup::new();
    let old_archive = s.record_archive();
    let old_storage = s.service_storage();

    let out = s.run(&[&ROTATE[..], &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(
        s.service_storage(),
        old_storage,
        "the service has the new certificate"
    );
    let new_sha = report["certificate_sha256"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase();
    let service_sha = s.service_storage()["certificateSha256"]
        .as_str()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase();
    assert_eq!(service_sha, new_sha);
    // The new key in front, the old one kept, every comment and the layout as they were.
    // The new key is outside archivectl.toml's directory: named by its absolute path.
    let config = std::fs::read_to_string(s.path("conf/archivectl.toml")).unwrap();
    let new_key = std::fs::canonicalize(s.path("new/key.pem")).unwrap();
    assert!(
        config.contains(&format!(
            r#"private_key = ["{}", "keys/key.pem"]   # made with keygen"#,
            new_key.display()
        )),
        "{config}"
    );
    assert!(
        config.starts_with("# Our production archives.\n"),
        "{config}"
    );
    assert!(
        config.contains("# Newest first; keep the old ones for older archives.\n"),
        "{config}"
    );
    assert!(
        config.contains(r#"api_key = "46000152"   # the project"#),
        "{config}"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(s.path("new/key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);

    // An archive made after the rotation is for the new key; both pull with the keys the file lists.
    let new_archive = s.record_archive();
    std::fs::create_dir(s.path("out")).unwrap();
    for id in [&old_archive, &new_archive] {
        let out = s.run(&["pull", id, "--out-dir", "out"]);
        assert!(
            out.status.success(),
            "pull {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ts = std::fs::read(s.path(&format!("out/{id}.ts"))).unwrap();
        assert_eq!(ts[0], 0x47, "MPEG-TS");
    }
    // The new archive really needs the new key: the old one alone cannot decrypt it.
    std::fs::create_dir(s.path("out2")).unwrap();
    let out = s.run(&[
        "pull",
        &new_archive,
        "--out-dir",
        "out2",
        "--key",
        "conf/keys/key.pem",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ledger has the new certificate in use: doctor finds its key.
    let out = s.run(&["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cert = &json["checks"][3];
    assert_eq!(cert["name"], "certificate");
    assert!(
        cert["message"].as_str().unwrap().contains("new/key.pem"),
        "{cert}"
    );
}

#[test]
fn dry_run_and_each_failure_change_nothing() {
    let s = Setup::new();

    // --dry-run shows the seven steps.
    let before = (s.state(), s.service_storage());
    let out = s.run(&[&ROTATE[..], &["--dry-run"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for step in [
        "1. generate",
        "2. write the key",
        "5. set the archive storage",
        "7. record",
    ] {
        assert!(text.contains(step), "{text}");
    }
    assert!(text.contains("new/key.pem"), "{text}");
    assert_eq!(
        (s.state(), s.service_storage()),
        before,
        "dry run changed something"
    );

    // The new files exist already: refused, and they are not touched.
    std::fs::write(s.path("new/cert.pem"), "mine").unwrap();
    s.fails_changing_nothing(&ROTATE, 3, "refusing to overwrite");
    assert_eq!(std::fs::read(s.path("new/cert.pem")).unwrap(), b"mine");
    std::fs::remove_file(s.path("new/cert.pem")).unwrap();

    // The service refuses (the wrong API secret): stops at step 5.
    std::fs::write(s.path("conf/api-secret"), "wrong-secret\n").unwrap();
    s.fails_changing_nothing(&ROTATE, 6, "stopped at step 5");
    std::fs::write(s.path("conf/api-secret"), format!("{SECRET}\n")).unwrap();

    // The ledger cannot be opened: stops at step 4, before the service is asked.
    let ledger = s.path("conf/ledger.sqlite3");
    let saved = s.path("conf/ledger.saved");
    std::fs::rename(&ledger, &saved).unwrap();
    std::fs::write(&ledger, vec![b'x'; 4096]).unwrap();
    let out_before = s.service_storage();
    let out = s.run(&ROTATE);
    assert_fails(&out, 8, "stopped at step 4");
    assert_eq!(s.service_storage(), out_before);
    assert!(!s.path("new/key.pem").exists() && !s.path("new/cert.pem").exists());
    assert_eq!(
        std::fs::read(&ledger).unwrap(),
        vec![b'x'; 4096],
        "left as it was"
    );
    std::fs::remove_file(&ledger).unwrap();
    std::fs::rename(&saved, &ledger).unwrap();

    // archivectl.toml's directory takes no new file: stops at step 3, the service keeps the old certificate.
    let _lock = ReadOnlyDir::new(&s.path("conf"));
    s.fails_changing_nothing(&ROTATE, 5, "stopped at step 3");
}

/// The value of the metric line `name VALUE` in `GET /metrics` of the receiver at `addr`.
fn scrape(addr: &str, name: &str) -> Option<i64> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn a_running_receiver_shows_the_rotated_certificates_expiry_on_the_next_scrape() {
    use std::io::BufRead as _;
    let s = Setup::new();
    let mut receiver = archivectl()
        .current_dir(s.dir.path())
        .env_remove("ARCHIVECTL_LEDGER")
        .env_remove("ARCHIVECTL_PROFILE")
        .env("ARCHIVECTL_CONFIG", s.path("conf/archivectl.toml"))
        .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "-q"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stdout = std::io::BufReader::new(receiver.stdout.take().unwrap());
    let receiver = Kill(receiver);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // keygen's certificate: 365 days, so 364 whole days left.
    assert_eq!(scrape(&addr, "certificate_expiry_days"), Some(364));
    assert_eq!(
        scrape(&addr, "archivectl_certificate_expiry_days"),
        Some(364)
    );

    let out = s.run(&[&ROTATE[..], &["--days", "45"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same receiver, not restarted: the new certificate's 44 whole days.
    assert_eq!(scrape(&addr, "certificate_expiry_days"), Some(44));
    assert_eq!(
        scrape(&addr, "archivectl_certificate_expiry_days"),
        Some(44)
    );
    drop(receiver);
}

/// `doctor --json`'s checks by name: (status, message).
fn doctor_checks(
    s: &Setup,
) -> (
    Option<i32>,
    std::collections::BTreeMap<String, (String, String)>,
) {
    let out = s.run(&["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let checks = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                (
                    c["status"].as_str().unwrap().to_owned(),
                    c["message"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    (out.status.code(), checks)
}

#[test]
fn doctor_and_rotation_work_with_a_vonage_applications_credentials() {
    // archivectl.toml names an application id and its private key: every call is an RS256 bearer token at the
    // emulator's Vonage routes, objects are under `{applicationId}/`.
    let s = Setup::application();
    let (code, checks) = doctor_checks(&s);
    for name in [
        "config",
        "files",
        "keys",
        "certificate",
        "storage",
        "service",
        "ledger",
    ] {
        assert_eq!(checks[name].0, "ok", "{name}: {checks:?}");
    }
    assert_eq!(code, Some(0), "{checks:?}");
    assert!(checks["service"].1.contains(&s.project), "{checks:?}");
    assert!(
        checks["files"].1.contains("files exist"),
        "the application key is one of them: {checks:?}"
    );

    // The application key readable by others: the files check says so.
    sh(s.dir.path(), "chmod 644 conf/app.key");
    let (code, checks) = doctor_checks(&s);
    assert_eq!(checks["files"].0, "error", "{checks:?}");
    assert!(
        checks["files"].1.contains("application private key"),
        "{checks:?}"
    );
    assert_eq!(code, Some(3));
    sh(s.dir.path(), "chmod 600 conf/app.key");

    // Another application's key: the service refuses our tokens, doctor says so, and a rotation stops at
    // step 5 with nothing changed.
    let saved = std::fs::read(s.path("conf/app.key")).unwrap();
    sh(
        &s.path("conf"),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key 2>/dev/null
         chmod 600 other.key && mv other.key app.key",
    );
    let (code, checks) = doctor_checks(&s);
    assert_eq!(checks["service"].0, "error", "{checks:?}");
    assert_eq!(code, Some(6), "{checks:?}");
    s.fails_changing_nothing(&ROTATE, 6, "stopped at step 5");
    std::fs::write(s.path("conf/app.key"), &saved).unwrap();

    // The rotation itself, then an archive made before it and one after both pull.
    let old_archive = s.record_archive();
    let out = s.run(&[&ROTATE[..], &["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let normalized =
        |v: &serde_json::Value| v.as_str().unwrap().replace(':', "").to_ascii_lowercase();
    assert_eq!(
        normalized(&s.service_storage()["certificateSha256"]),
        normalized(&report["certificate_sha256"])
    );
    let new_archive = s.record_archive();
    std::fs::create_dir(s.path("out")).unwrap();
    for id in [&old_archive, &new_archive] {
        let out = s.run(&["pull", id, "--out-dir", "out"]);
        assert!(
            out.status.success(),
            "pull {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(s.path(&format!("out/{id}.ts"))).unwrap()[0],
            0x47
        );
    }
    // doctor finds the new certificate's key, first in the list.
    let (code, checks) = doctor_checks(&s);
    assert_eq!(code, Some(0), "{checks:?}");
    assert_eq!(checks["certificate"].0, "ok", "{checks:?}");
    assert!(
        checks["certificate"].1.contains("new/key.pem"),
        "{checks:?}"
    );
}

/// The fingerprints (lowercase hex, `None` for encryption off) the ledger records as activated for the
/// project, oldest first.
fn activations(s: &Setup) -> Vec<Option<String>> {
    let conn = rusqlite::Connection::open(s.path("conf/ledger.sqlite3")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT fingerprint FROM certificate_activations WHERE project_id = ?1
             ORDER BY active_from_ms, id",
        )
        .unwrap();
    stmt.query_map([&s.project], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Removes the rotation's kept key and certificate, asserting both are there.
fn remove_kept_pair(s: &Setup) {
    for name in ["new/key.pem", "new/cert.pem"] {
        std::fs::remove_file(s.path(name)).unwrap_or_else(|e| panic!("{name} kept: {e}"));
    }
}

#[test]
fn failures_at_steps_6_and_7_are_undone_and_say_where_they_stopped() {
    let s = Setup::new();
    let (files, config) = s.state();
    let old_service = s.service_storage();
    let old_fingerprint = old_service["certificateSha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_kept_pair = {
        let mut f = files.clone();
        f.extend(["new/cert.pem".to_string(), "new/key.pem".to_string()]);
        f.sort();
        f
    };
    assert_eq!(activations(&s).len(), 1, "storage set recorded one");

    // Step 6: archivectl.toml cannot be replaced (an immutable file; its directory still takes the
    // temporary file of step 3). The service had the new certificate for a moment and gets the old one back.
    if sh(s.dir.path(), "id -u") == b"0\n" {
        let lock = ImmutableFile::new(&s.path("conf/archivectl.toml"));
        let out = s.run(&ROTATE);
        drop(lock);
        assert_fails(&out, 5, "stopped at step 6");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for said in [
            "is as it was",
            "the service is back on the old certificate",
            "new/key.pem",
        ] {
            assert!(stderr.contains(said), "{said}: {stderr}");
        }
        assert_eq!(
            s.service_storage(),
            old_service,
            "the old certificate is back"
        );
        assert_eq!(
            s.state(),
            (with_kept_pair.clone(), config.clone()),
            "archivectl.toml byte for byte, no temporary file; only the new pair is kept"
        );
        // The ledger knows the new certificate was in use in between, and the old one is in use again.
        let recorded = activations(&s);
        assert_eq!(recorded.len(), 3, "{recorded:?}");
        assert_eq!(recorded[0], recorded[2], "{recorded:?}");
        assert_ne!(recorded[1], recorded[0], "{recorded:?}");
        let out = s.run(&["doctor", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let cert = &json["checks"][3];
        assert_eq!(cert["status"], "ok", "{cert}");
        assert!(
            cert["message"].as_str().unwrap().contains("keys/key.pem"),
            "{cert}"
        );
        remove_kept_pair(&s);
    } else {
        // Only root can make a file that cannot be renamed over while its directory stays writable.
        eprintln!(
            "not root: the step-6 failure is not exercised (chattr +i needs CAP_LINUX_IMMUTABLE)"
        );
    }

    // Step 7: the ledger takes no new certificate. archivectl.toml, already replaced, is put back, and the
    // service gets the old certificate back.
    let before = activations(&s);
    let conn = rusqlite::Connection::open(s.path("conf/ledger.sqlite3")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER no_certificates BEFORE INSERT ON certificates
             BEGIN SELECT RAISE(ABORT, 'this ledger takes no new certificate'); END;
         CREATE TRIGGER no_activations BEFORE INSERT ON certificate_activations
             BEGIN SELECT RAISE(ABORT, 'this ledger takes no new certificate'); END;",
    )
    .unwrap();
    drop(conn);
    let out = s.run(&ROTATE);
    assert_fails(&out, 8, "stopped at step 7");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "this ledger takes no new certificate",
        "archivectl.toml is back as it was",
        "the service is back on the old certificate",
        &old_fingerprint[..8],
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    assert_eq!(
        s.service_storage(),
        old_service,
        "the old certificate is back"
    );
    let config_bytes = config.clone();
    assert_eq!(
        s.state(),
        (with_kept_pair, config),
        "archivectl.toml byte for byte, no temporary file; only the new pair is kept"
    );
    assert_eq!(activations(&s), before, "nothing was recorded");
    remove_kept_pair(&s);

    // Without a certificate recorded as in use before (storage set without this ledger), there is nothing to
    // set the service back to: archivectl.toml is still put back, and the error says the service was not.
    let conn = rusqlite::Connection::open(s.path("conf/ledger.sqlite3")).unwrap();
    conn.execute_batch("DELETE FROM certificate_activations")
        .unwrap();
    drop(conn);
    let out = s.run(&ROTATE);
    assert_fails(&out, 8, "stopped at step 7");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for said in [
        "archivectl.toml is back as it was",
        "recorded no certificate in use before, so the service could not be set back",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    assert_eq!(s.state().1, config_bytes, "archivectl.toml byte for byte");
    assert_ne!(
        s.service_storage(),
        old_service,
        "the service kept the new one"
    );
}

/// A file that cannot be renamed over or changed until dropped (`chattr +i`, as root).
struct ImmutableFile(PathBuf);

impl ImmutableFile {
    fn new(path: &Path) -> Self {
        sh(
            path.parent().unwrap(),
            &format!("chattr +i {}", path.display()),
        );
        Self(path.to_path_buf())
    }
}

impl Drop for ImmutableFile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// A directory no new file can be made in until dropped (immutable as root, which ignores permissions).
struct ReadOnlyDir(PathBuf);

impl ReadOnlyDir {
    fn new(dir: &Path) -> Self {
        let root = sh(dir, "id -u") == b"0\n";
        if root {
            sh(dir, &format!("chattr +i {}", dir.display()));
        } else {
            sh(dir, &format!("chmod a-w {}", dir.display()));
        }
        Self(dir.to_path_buf())
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
        let _ = std::process::Command::new("chmod")
            .arg("u+w")
            .arg(&self.0)
            .status();
    }
}
