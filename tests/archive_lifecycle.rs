//! The whole journey of an encrypted archive, across processes, as a team runs it in production: the
//! `opentok-emulator` binary stands in for the service, the S3 test server (s3s-fs, started by
//! `cargo xtask ci`) is the customer's bucket, and every step is the `archivectl` binary driven by one
//! `archivectl.toml`:
//!
//! keygen → storage check → storage set (certificate) → callbacks serve → archives start/stop → the
//! callbacks land in the ledger → pull --all --delete-remote → ledger show/export, sync.
//!
//! The pulled file is compared byte for byte with what the documented openssl commands make of the object
//! in the bucket and the password from the callback, and ffprobe must read it.
//!
//! The binaries are the ones `cargo test --workspace` builds next to this test (`target/debug/`); run
//! `cargo build -p archivectl -p opentok-emulator` first when running this package's tests alone.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::{sh, workspace_bin};
use secrecy::ExposeSecret;
use serde_json::Value;
use storage_fetch::Store;
use storage_fetch::test_env::TestServers;

const API_KEY: &str = "46001234";
const SESSION: &str = "2_MX40NjAwMTIzNH5-e2e-session";

/// A long-running process of the test, killed when dropped; its stderr is kept for failure messages.
struct Daemon {
    name: &'static str,
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    /// Starts `command` and waits for a line (on stdout or stderr) containing `marker`; returns the rest
    /// of that line after the marker.
    fn start(name: &'static str, mut command: Command, marker: &'static str) -> (Self, String) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split(marker).nth(1) {
                        let _ = tx.send(rest.to_string());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        drop(tx);
        let rest = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{name} did not start:\n{}", log.lock().unwrap()));
        (Self { name, child, log }, rest)
    }

    fn log(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.log.lock().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Project {
    dir: tempfile::TempDir,
    archivectl: PathBuf,
}

impl Project {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `archivectl` in the project directory with its `archivectl.toml`; nothing from the user's
    /// environment (no other ledger, config or secret).
    fn archivectl(&self) -> Command {
        let mut cmd = Command::new(&self.archivectl);
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("OPENTOK_API_SECRET")
            .env_remove("OPENTOK_API_KEY")
            .env_remove("OPENTOK_API_URL")
            .env_remove("ARCHIVECTL_LEDGER")
            .env("ARCHIVECTL_CONFIG", self.path("archivectl.toml"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.archivectl().args(args).output().unwrap()
    }

    /// Runs `archivectl ARGS --json`, which must succeed, and parses what it prints.
    fn json(&self, args: &[&str], daemons: &[&Daemon]) -> Value {
        let out = self.archivectl().args(args).arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "archivectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            daemons.iter().map(|d| d.log()).collect::<String>()
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "archivectl {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// The project's `archivectl.toml`: everything from the configuration, secrets from files.
fn write_config(project: &Project, servers: &TestServers, api_url: &str) {
    let s3 = &servers.s3;
    std::fs::write(
        project.path("archivectl.toml"),
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
private_key = "key.pem"

[ledger]
path = "data/ledger.sqlite3"
"#,
            bucket = s3.bucket,
            endpoint = s3.endpoint.as_deref().unwrap(),
            access = s3.access_key_id,
        ),
    )
    .unwrap();
}

/// A project directory with the receiver and the emulator running, its key pair made and the S3 target
/// set with the certificate (and `fallback`).
struct Running {
    project: Project,
    receiver: Daemon,
    emulator: Daemon,
    emulator_url: String,
}

impl Running {
    fn start(servers: &TestServers, fallback: &str) -> Self {
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
            archivectl: workspace_bin("archivectl"),
        };
        std::fs::write(
            project.path("api-secret"),
            "e2e-secret-0123456789abcdef0123456789ab\n",
        )
        .unwrap();
        std::fs::write(
            project.path("s3-secret"),
            format!("{}\n", servers.s3.secret_access_key.expose_secret()),
        )
        .unwrap();

        // The receiver needs only the ledger; the service's address is known once the emulator runs.
        write_config(&project, servers, "http://127.0.0.1:9");

        // The service, as its own process, calling back our receiver.
        let (receiver, receiver_url) = Daemon::start(
            "archivectl callbacks serve",
            {
                let mut cmd = project.archivectl();
                cmd.args(["callbacks", "serve", "--listen", "127.0.0.1:0"]);
                cmd
            },
            "listening on http://",
        );
        let receiver_addr = receiver_url.split('/').next().unwrap().to_string();
        let mut emulator_cmd = Command::new(workspace_bin("opentok-emulator"));
        emulator_cmd
            .current_dir(project.dir.path())
            .env_remove("OPENTOK_API_SECRET")
            .args(["--listen", "127.0.0.1:0", "--api-key", API_KEY])
            .args(["--api-secret-file", "api-secret"])
            .arg("--callback-url")
            .arg(format!("http://{receiver_addr}/callbacks/archive"));
        let (emulator, emulator_url) =
            Daemon::start("opentok-emulator", emulator_cmd, "listening on ");
        let emulator_url = emulator_url.trim().to_string();
        write_config(&project, servers, &emulator_url);
        let running = Self {
            project,
            receiver,
            emulator,
            emulator_url,
        };

        // The customer's key pair; the target checked, then given to the service with the certificate.
        let out = running
            .project
            .run(&["keygen", "--cert", "cert.pem", "--key", "key.pem"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let check = running.json(&["storage", "check"]);
        assert_eq!(check["ok"], true, "{check}");
        let set = running.json(&[
            "storage",
            "set",
            "s3",
            "--certificate",
            "cert.pem",
            "--fallback",
            fallback,
        ]);
        assert_eq!(set["encrypted"], true, "{set}");
        running
    }

    fn json(&self, args: &[&str]) -> Value {
        self.project.json(args, &[&self.receiver, &self.emulator])
    }

    /// Starts and stops an archive; waits until the ledger has it in `status`; returns its id and what
    /// `ledger show` says.
    fn record_archive(&self, status: &str) -> (String, Value) {
        let started = self.json(&[
            "archives",
            "start",
            "--session-id",
            SESSION,
            "--name",
            "e2e",
        ]);
        let id = started["id"].as_str().unwrap().to_string();
        assert_eq!(started["status"], "started");
        std::thread::sleep(Duration::from_millis(1500));
        let stopped = self.json(&["archives", "stop", &id]);
        assert_eq!(stopped["status"], "stopped");
        // The receiver commits the callbacks.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .project
                .archivectl()
                .args(["ledger", "show", &id, "--json"])
                .output()
                .unwrap();
            if out.status.success() {
                let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
                if shown["status"] == status {
                    return (id, shown);
                }
            }
            assert!(
                Instant::now() < deadline,
                "archive {id} never reached `{status}` in the ledger\n{}{}",
                self.receiver.log(),
                self.emulator.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The documented openssl decryption of `encrypted` (a file in the project) with `password` into
    /// `documented.ts`; leaves the password blob in `blob.bin`.
    fn documented_decrypt(&self, encrypted: &str, password: &str) {
        std::fs::write(self.project.path("password.b64"), password).unwrap();
        sh(
            self.project.dir.path(),
            &format!(
                "openssl base64 -d -A -in password.b64 -out password.bin
                 openssl pkeyutl -decrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in password.bin -out blob.bin
                 key=$(xxd -p -s 3 -l 32 -c 32 blob.bin); iv=$(xxd -p -s 35 -l 16 -c 16 blob.bin)
                 openssl enc -d -aes-256-cbc -nopad -K \"$key\" -iv \"$iv\" -in {encrypted} -out documented.ts"
            ),
        );
    }
}

#[test]
fn an_encrypted_archive_from_keygen_to_remote_delete() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let running = Running::start(&servers, "none");
    let project = &running.project;
    let (receiver, emulator) = (&running.receiver, &running.emulator);
    let daemons = [receiver, emulator];
    let s3 = &servers.s3;

    // A composed archive, started and stopped through the REST API; the ledger knows it as uploaded, with
    // its password.
    let (id, shown) = running.record_archive("uploaded");
    let password = shown["password"].as_str().unwrap().to_string();
    assert!(!password.is_empty(), "{shown}");
    let pending = project.json(&["ledger", "list", "--pending"], &daemons);
    assert!(
        pending.to_string().contains(&id),
        "the archive is pending work: {pending}"
    );

    // What the documented commands make of the object in the bucket and the password from the callback.
    let object_key = format!("{API_KEY}/{id}/archive.ts");
    let encrypted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = Store::new(s3.clone().into()).unwrap();
            let size = store.head(&object_key).await?.size;
            store.get_range(&object_key, 0..size, None).await
        })
        .unwrap_or_else(|e| panic!("the emulator uploaded nothing at {object_key}: {e}"));
    std::fs::write(project.path("archive.ts"), &encrypted).unwrap();
    running.documented_decrypt("archive.ts", &password);

    // pull --all: what the ledger knows is pending, decrypted while downloading, verified, recorded, and
    // deleted through the REST API after the verification.
    let out = project.run(&["pull", "--all", "--out-dir", "pulled", "--delete-remote"]);
    assert!(
        out.status.success(),
        "pull --all failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        emulator.log()
    );
    let pulled = project.path(&format!("pulled/{id}.ts"));
    assert!(
        std::fs::read(&pulled).unwrap() == std::fs::read(project.path("documented.ts")).unwrap(),
        "the pulled archive differs from the documented openssl decryption"
    );
    let probe = sh(
        project.dir.path(),
        &format!(
            "ffprobe -v error -show_entries stream=codec_type -of csv=p=0 pulled/{id}.ts | sort -u | tr '\\n' ' '"
        ),
    );
    assert_eq!(String::from_utf8_lossy(&probe).trim(), "audio video");

    let shown = project.json(&["ledger", "show", &id], &daemons);
    let sha256 = sh(
        project.dir.path(),
        &format!("sha256sum pulled/{id}.ts | cut -d' ' -f1"),
    );
    assert_eq!(
        shown["sha256"],
        String::from_utf8_lossy(&sha256).trim(),
        "{shown}"
    );
    assert!(
        shown["measured_duration"].as_f64().unwrap() > 1.0,
        "{shown}"
    );
    let local_path = shown["local_path"].as_str().unwrap();
    assert!(
        Path::new(local_path).is_absolute() && local_path.ends_with(&format!("pulled/{id}.ts")),
        "{shown}"
    );
    assert!(shown["remote_deleted_at"].is_string(), "{shown}");
    assert_eq!(shown["status"], "deleted", "{shown}");
    assert_eq!(
        shown["password"],
        password.as_str(),
        "the wrapped password is kept"
    );

    // The service no longer lists it; nothing is pending; a sync changes nothing that matters.
    let listed = project.json(&["archives", "list", "--session-id", SESSION], &daemons);
    assert!(
        !listed.to_string().contains(&id),
        "deleted remotely: {listed}"
    );
    let pending = project.json(&["ledger", "list", "--pending"], &daemons);
    assert!(!pending.to_string().contains(&id), "{pending}");
    project.json(&["sync"], &daemons);
    let again = project.json(&["ledger", "show", &id], &daemons);
    assert_eq!(again["password"], password.as_str());
    assert_eq!(again["sha256"], shown["sha256"]);

    // Never a plaintext key in the ledger: the AES key of this archive appears nowhere in its export.
    let blob = std::fs::read(project.path("blob.bin")).unwrap();
    let aes_key_hex: String = blob[3..35].iter().map(|b| format!("{b:02x}")).collect();
    let export = project.run(&["ledger", "export", "--format", "json"]);
    assert!(export.status.success());
    let export = String::from_utf8_lossy(&export.stdout).to_lowercase();
    assert!(export.contains(&id));
    assert!(!export.contains(&aes_key_hex));
    for file in ["ledger.sqlite3", "ledger.sqlite3-wal"] {
        let bytes = std::fs::read(project.path("data").join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(32).any(|w| w == &blob[3..35]),
            "raw AES key in the ledger's {file}"
        );
    }
}

#[test]
fn an_archive_kept_by_the_fallback_is_pulled_from_the_services_cloud() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let running = Running::start(&servers, "vonage");
    let project = &running.project;
    // The next upload to the bucket fails: the service keeps the archive and offers it by URL.
    sh(
        project.dir.path(),
        &format!(
            "curl -sS --fail -X POST -H 'content-type: application/json' -d '{{\"failUploads\":1}}' {}/_emulator/hooks",
            running.emulator_url
        ),
    );
    let (id, shown) = running.record_archive("available");
    let password = shown["password"].as_str().unwrap().to_string();
    assert!(!password.is_empty(), "{shown}");

    // What the documented commands make of the file behind the archive's URL.
    // The URL is presigned: shown whole only when asked for (issue 11).
    let got = running.json(&["archives", "get", &id, "--show-url"]);
    let url = got["url"].as_str().expect("an available archive has a url");
    sh(
        project.dir.path(),
        &format!("curl -sS --fail -o from-url.ts '{url}'"),
    );
    running.documented_decrypt("from-url.ts", &password);

    // pull --all finds it pending and pulls it from there, not from the bucket.
    let out = project.run(&["pull", "--all", "--out-dir", "pulled", "--json"]);
    assert!(
        out.status.success(),
        "pull --all failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        running.emulator.log()
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = printed[0]["object_key"].as_str().unwrap();
    assert!(!key.contains('?'), "no URL signature is shown: {key}");
    assert!(
        std::fs::read(project.path(&format!("pulled/{id}.ts"))).unwrap()
            == std::fs::read(project.path("documented.ts")).unwrap(),
        "the pulled archive differs from the documented openssl decryption"
    );
    let shown = running.json(&["ledger", "show", &id]);
    assert!(shown["sha256"].is_string(), "{shown}");
    assert!(
        shown["measured_duration"].as_f64().unwrap() > 1.0,
        "{shown}"
    );
    let pending = running.json(&["ledger", "list", "--pending"]);
    assert!(!pending.to_string().contains(&id), "{pending}");
}
