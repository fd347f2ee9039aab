//! `archivectl cert rotate` against opentok-emulator and the S3 test server (s3s-fs, started by
//! `cargo xtask ci`): after a rotation an archive made before it and one made after it both pull with the keys
//! archivectl.toml lists; `--dry-run` and a failure at each step change nothing (the service keeps the old
//! certificate, archivectl.toml is byte for byte the same, no new file is left).
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

struct Setup {
    client: Client,
    emulator: opentok_emulator::RunningEmulator,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let servers = TestServers::require().expect("the test servers (cargo xtask ci)");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (emulator, api_url) = emulator::start(&runtime, API_KEY, SECRET);
        let client = Client::builder(Credentials::project(API_KEY, SECRET.into()))
            .base_url(&api_url)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s3 = &servers.s3;
        let config = CONFIG
            .replace("{API_KEY}", API_KEY)
            .replace("{API_URL}", &api_url)
            .replace("{BUCKET}", &s3.bucket)
            .replace("{ENDPOINT}", s3.endpoint.as_deref().unwrap())
            .replace("{ACCESS}", &s3.access_key_id);
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::create_dir(dir.path().join("conf/keys")).unwrap();
        std::fs::create_dir(dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("conf/archivectl.toml"), config).unwrap();
        std::fs::write(dir.path().join("conf/api-secret"), format!("{SECRET}\n")).unwrap();
        std::fs::write(
            dir.path().join("conf/s3-secret"),
            format!("{}\n", s3.secret_access_key.expose_secret()),
        )
        .unwrap();
        let setup = Self {
            client,
            emulator,
            runtime,
            dir,
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
            .find(|p| p.id == API_KEY)
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
