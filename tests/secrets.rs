//! The secrets test (issues 11 and 16), across processes: a project is run end to end with known secret values
//! (the API secret, the S3 secret access key, the private key's passphrase, the receiver's callback token, and
//! the AES key and IV of an archive the emulator makes) and none of them may appear, in any usual encoding, in
//! what archivectl prints (stdout, stderr: its only logs, as JSON lines and as text, at `-vv`), in the
//! receiver's log (JSON lines at `-vv`), in `/proc/PID/cmdline` of the running receiver, in the ledger (the
//! database, its `-wal` and `-shm`, read while the receiver runs and after), or in `ledger export` (JSON and
//! CSV).
//!
//! Like `archive_lifecycle.rs`, it drives the `opentok-emulator` and `archivectl` binaries built next to it and
//! the S3 test server (`source /tmp/servers.env` or `cargo xtask ci`; without them it fails, by design).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e::workspace_bin;
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use storage_fetch::test_env::TestServers;

const API_KEY: &str = "46005678";
const SESSION: &str = "2_MX40NjAwNTY3OH5-secrets-session";

/// A long-running process of the test (killed when dropped) whose stdout and stderr are kept.
struct Daemon {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts `command` and waits for a line containing `marker`; returns the rest of that line.
    fn start(name: &'static str, mut command: Command, marker: &'static str) -> (Self, String) {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            readers.push(std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(rest) = text.split(marker).nth(1) {
                        let _ = tx.send(rest.trim().to_string());
                    }
                    log.lock().unwrap().extend_from_slice(&line);
                    line.clear();
                }
            }));
        }
        drop(tx);
        let rest = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{name} did not start:\n{}",
                    String::from_utf8_lossy(&log.lock().unwrap())
                )
            });
        (
            Self {
                name,
                child,
                log,
                readers,
            },
            rest,
        )
    }

    fn log_text(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.name,
            String::from_utf8_lossy(&self.log.lock().unwrap())
        )
    }

    /// SIGTERM, then waits for the process and for its output to be read to the end; returns all it printed.
    fn stop(mut self) -> Vec<u8> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One secret and the forms it could leak in.
struct Secret {
    name: &'static str,
    forms: Vec<(String, Vec<u8>)>,
}

impl Secret {
    /// `bytes` raw, in hex (both cases) and in base64 (standard, URL-safe, with and without padding).
    fn new(name: &'static str, bytes: &[u8]) -> Self {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let b64_nopad = &base64::engine::general_purpose::STANDARD_NO_PAD;
        let url = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forms = vec![
            ("raw".to_string(), bytes.to_vec()),
            ("hex".to_string(), hex::encode(bytes).into_bytes()),
            ("HEX".to_string(), hex::encode_upper(bytes).into_bytes()),
            ("base64".to_string(), b64.encode(bytes).into_bytes()),
            (
                "base64 (no padding)".to_string(),
                b64_nopad.encode(bytes).into_bytes(),
            ),
            ("base64url".to_string(), url.encode(bytes).into_bytes()),
        ];
        Self { name, forms }
    }

    /// The forms of this secret found in `haystack`.
    fn found_in(&self, haystack: &[u8]) -> Vec<&str> {
        self.forms
            .iter()
            .filter(|(_, needle)| {
                haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            })
            .map(|(form, _)| form.as_str())
            .collect()
    }
}

/// A random printable secret with a recognisable prefix (hex, so it is one token in every format).
fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Everything that must hold no secret, by where it came from.
#[derive(Default)]
struct Exposed(Vec<(String, Vec<u8>)>);

impl Exposed {
    fn add(&mut self, place: impl Into<String>, bytes: Vec<u8>) {
        self.0.push((place.into(), bytes));
    }

    fn add_output(&mut self, what: &str, out: &Output) {
        self.add(format!("stdout of {what}"), out.stdout.clone());
        self.add(format!("stderr of {what}"), out.stderr.clone());
    }

    /// The ledger's files as they are now.
    fn add_ledger(&mut self, ledger: &Path, when: &str) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = PathBuf::from(format!("{}{suffix}", ledger.display()));
            if let Ok(bytes) = std::fs::read(&path) {
                self.add(format!("{} ({when})", path.display()), bytes);
            }
        }
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

    /// archivectl in the project directory, with its `archivectl.toml` and nothing from the environment.
    fn archivectl(&self) -> Command {
        let mut cmd = Command::new(&self.archivectl);
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("OPENTOK_API_SECRET")
            .env_remove("OPENTOK_API_KEY")
            .env_remove("OPENTOK_API_URL")
            .env_remove("ARCHIVECTL_LEDGER")
            .env("RUST_LOG", "trace")
            .env("ARCHIVECTL_CONFIG", self.path("archivectl.toml"));
        cmd
    }

    /// Runs archivectl, which must succeed; keeps what it printed.
    fn run(&self, args: &[&str], exposed: &mut Exposed, daemons: &[&Daemon]) -> Output {
        let out = self.archivectl().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "archivectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            daemons.iter().map(|d| d.log_text()).collect::<String>()
        );
        exposed.add_output(&format!("archivectl {}", args.join(" ")), &out);
        out
    }

    /// Runs archivectl with the configuration `config` (in the project directory), which must fail; keeps what
    /// it printed (errors are where secrets like to leak).
    fn run_failing(&self, config: &str, args: &[&str], exposed: &mut Exposed) -> Output {
        let out = self
            .archivectl()
            .env("ARCHIVECTL_CONFIG", self.path(config))
            .args(args)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "archivectl {args:?} with {config} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        exposed.add_output(
            &format!("archivectl {} (failing, {config})", args.join(" ")),
            &out,
        );
        out
    }

    fn json(&self, args: &[&str], exposed: &mut Exposed, daemons: &[&Daemon]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all, exposed, daemons);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "archivectl {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

fn write_config(project: &Project, servers: &TestServers, api_url: &str) {
    write_config_as(project, servers, api_url, "archivectl.toml", "");
}

/// A configuration file `name` whose secret files are `{prefix}api-secret`, `{prefix}s3-secret` and
/// `{prefix}passphrase`.
fn write_config_as(
    project: &Project,
    servers: &TestServers,
    api_url: &str,
    name: &str,
    prefix: &str,
) {
    let s3 = &servers.s3;
    std::fs::write(
        project.path(name),
        format!(
            r#"[project]
api_key = "{API_KEY}"
api_url = "{api_url}"
api_secret_file = "{prefix}api-secret"

[target]
type = "s3"
bucket = "{bucket}"
endpoint = "{endpoint}"
access_key_id = "{access}"
secret_access_key_file = "{prefix}s3-secret"

[keys]
private_key = "key.pem"
passphrase_file = "{prefix}passphrase"

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

#[test]
fn no_secret_in_output_logs_ledger_exports_or_the_receivers_command_line() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let project = Project {
        dir: tempfile::tempdir().unwrap(),
        archivectl: workspace_bin("archivectl"),
    };
    let api_secret = random_secret("apisecret");
    let passphrase = random_secret("passphrase");
    let token = random_secret("token");
    let s3_secret = servers.s3.secret_access_key.expose_secret().to_owned();
    std::fs::write(project.path("api-secret"), format!("{api_secret}\n")).unwrap();
    std::fs::write(project.path("s3-secret"), format!("{s3_secret}\n")).unwrap();
    std::fs::write(project.path("passphrase"), format!("{passphrase}\n")).unwrap();
    std::fs::write(project.path("token"), format!("{token}\n")).unwrap();
    write_config(&project, &servers, "http://127.0.0.1:9");
    let mut exposed = Exposed::default();

    // The receiver, with a token; the service (the emulator) calls it back with the token in the URL, as the
    // service's callback URL must carry it.
    let (receiver, receiver_url) = Daemon::start(
        "archivectl callbacks serve",
        {
            let mut cmd = project.archivectl();
            cmd.args([
                "callbacks",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token-file",
                "token",
                // Its log lines at their most detailed, as JSON lines (issue 15).
                "-vv",
                "--log-format",
                "json",
            ]);
            cmd
        },
        "listening on http://",
    );
    let receiver_cmdline = std::fs::read(format!("/proc/{}/cmdline", receiver.child.id())).unwrap();
    assert!(
        String::from_utf8_lossy(&receiver_cmdline).contains("callbacks"),
        "the receiver's command line is readable"
    );
    exposed.add("/proc/PID/cmdline of the receiver", receiver_cmdline);
    let receiver_addr = receiver_url.split('/').next().unwrap().to_string();
    let mut emulator_cmd = Command::new(workspace_bin("opentok-emulator"));
    emulator_cmd
        .current_dir(project.dir.path())
        .env_remove("OPENTOK_API_SECRET")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
            "--api-secret-file",
            "api-secret",
        ])
        .arg("--callback-url")
        .arg(format!(
            "http://{receiver_addr}/callbacks/archive?token={token}"
        ));
    let (emulator, emulator_url) = Daemon::start("opentok-emulator", emulator_cmd, "listening on ");
    write_config(&project, &servers, &emulator_url);
    let daemons = [&receiver, &emulator];

    // Keys with a passphrase; the target checked and set with the certificate.
    project.run(
        &[
            "keygen",
            "--cert",
            "cert.pem",
            "--key",
            "key.pem",
            "--passphrase-file",
            "passphrase",
        ],
        &mut exposed,
        &daemons,
    );
    project.json(&["storage", "check"], &mut exposed, &daemons);
    let set = project.json(
        &[
            "storage",
            "set",
            "s3",
            "--certificate",
            "cert.pem",
            "--fallback",
            "none",
        ],
        &mut exposed,
        &daemons,
    );
    assert_eq!(set["encrypted"], true, "{set}");

    // An encrypted archive: started, stopped, its callbacks recorded by the receiver.
    let started = project.json(
        &[
            "archives",
            "start",
            "--session-id",
            SESSION,
            "--name",
            "secrets",
        ],
        &mut exposed,
        &daemons,
    );
    let id = started["id"].as_str().unwrap().to_string();
    project.json(&["archives", "stop", &id], &mut exposed, &daemons);
    let deadline = Instant::now() + Duration::from_secs(120);
    let shown = loop {
        let out = project
            .archivectl()
            .args(["ledger", "show", &id, "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
            if shown["status"] == "uploaded" {
                exposed.add_output("archivectl ledger show (waiting)", &out);
                break shown;
            }
        }
        assert!(
            Instant::now() < deadline,
            "archive {id} never reached `uploaded` in the ledger\n{}{}",
            receiver.log_text(),
            emulator.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let password = shown["password"]
        .as_str()
        .expect("the callback carried the password")
        .to_string();

    // The archive's AES key and IV, unwrapped here with the key and its passphrase.
    let key = archive_core::keys::load_private_key(
        &std::fs::read(project.path("key.pem")).unwrap(),
        Some(&SecretString::from(passphrase.clone())),
    )
    .unwrap();
    let blob = archive_core::oaep::unwrap_password(&key, &password).unwrap();

    // Every other command that touches the secrets.
    project.json(
        &["archives", "list", "--session-id", SESSION],
        &mut exposed,
        &daemons,
    );
    project.json(&["archives", "get", &id], &mut exposed, &daemons);
    project.json(&["ledger", "list"], &mut exposed, &daemons);
    project.run(&["ledger", "show", &id], &mut exposed, &daemons);
    project.json(
        &["sync", "-vv", "--log-format", "json"],
        &mut exposed,
        &daemons,
    );
    project.json(
        &["archives", "list", "-vv", "--log-format", "human"],
        &mut exposed,
        &daemons,
    );
    // The object as the bucket holds it, for `decrypt` below (pull deletes it remotely).
    let object_key = format!("{API_KEY}/{id}/archive.ts");
    let encrypted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = storage_fetch::Store::new(servers.s3.clone().into()).unwrap();
            let size = store.head(&object_key).await?.size;
            store.get_range(&object_key, 0..size, None).await
        })
        .unwrap_or_else(|e| panic!("the emulator uploaded nothing at {object_key}: {e}"));
    std::fs::write(project.path("archive.enc"), &encrypted).unwrap();
    // pull --all's log lines at their most detailed, as text for people (issue 15).
    let pulled_log = project.run(
        &[
            "pull",
            "--all",
            "--out-dir",
            "pulled",
            "--delete-remote",
            "-vv",
            "--log-format",
            "human",
        ],
        &mut exposed,
        &daemons,
    );
    let pulled_log = String::from_utf8_lossy(&pulled_log.stderr).into_owned();
    assert!(
        pulled_log.contains("run_id=") && pulled_log.contains(&id),
        "pull --all logged its run: {pulled_log}"
    );
    let pulled = std::fs::read(project.path(&format!("pulled/{id}.ts"))).unwrap();
    archive_core::mpegts::looks_like_ts(&pulled).expect("the archive was decrypted");
    project.json(&["ledger", "show", &id], &mut exposed, &daemons);
    project.run(
        &["ledger", "export", "--format", "json"],
        &mut exposed,
        &daemons,
    );
    project.run(
        &["ledger", "export", "--format", "csv"],
        &mut exposed,
        &daemons,
    );
    for format in ["json", "csv"] {
        let file = format!("export.{format}");
        project.run(
            &["ledger", "export", "--format", format, "--out", &file],
            &mut exposed,
            &daemons,
        );
        let bytes = std::fs::read(project.path(&file)).unwrap();
        assert!(
            String::from_utf8_lossy(&bytes).contains(&id),
            "{file} has the archive"
        );
        exposed.add(file, bytes);
    }

    // The same commands with wrong secrets: the errors name the problem, never the secret.
    let wrong_api_secret = random_secret("wrongapisecret");
    let wrong_s3_secret = random_secret("wrongs3secret");
    let wrong_passphrase = random_secret("wrongpassphrase");
    std::fs::write(
        project.path("wrong-api-secret"),
        format!("{wrong_api_secret}\n"),
    )
    .unwrap();
    std::fs::write(
        project.path("wrong-s3-secret"),
        format!("{wrong_s3_secret}\n"),
    )
    .unwrap();
    std::fs::write(
        project.path("wrong-passphrase"),
        format!("{wrong_passphrase}\n"),
    )
    .unwrap();
    write_config_as(&project, &servers, &emulator_url, "wrong.toml", "wrong-");
    project.run_failing("wrong.toml", &["archives", "list"], &mut exposed);
    project.run_failing("wrong.toml", &["storage", "check"], &mut exposed);
    project.run_failing(
        "wrong.toml",
        &[
            "decrypt",
            "--password",
            &password,
            "--in",
            "archive.enc",
            "--out",
            "wrong.ts",
        ],
        &mut exposed,
    );
    // And with the right ones, `decrypt` of the object as it was in the bucket.
    project.run(
        &[
            "decrypt",
            "--password",
            &password,
            "--in",
            "archive.enc",
            "--out",
            "decrypted.ts",
        ],
        &mut exposed,
        &daemons,
    );

    let ledger = project.path("data/ledger.sqlite3");
    exposed.add_ledger(&ledger, "while the receiver runs");

    // The receiver stops; its whole log, and the ledger as it leaves it.
    drop(emulator);
    let receiver_log = receiver.stop();
    let log_text = String::from_utf8_lossy(&receiver_log);
    assert!(
        log_text.contains(r#""request_id":"#) && log_text.contains(r#""outcome":"received""#),
        "the receiver logged each callback in JSON, debug lines too: {log_text}"
    );
    exposed.add("the receiver's log (stdout and stderr)", receiver_log);
    exposed.add_ledger(&ledger, "after the receiver stopped");
    assert!(
        exposed
            .0
            .iter()
            .any(|(place, _)| place.ends_with("-wal (while the receiver runs)")),
        "a WAL was read"
    );

    let secrets = [
        Secret::new("the API secret", api_secret.as_bytes()),
        Secret::new("the S3 secret access key", s3_secret.as_bytes()),
        Secret::new("the private key's passphrase", passphrase.as_bytes()),
        Secret::new("the callback token", token.as_bytes()),
        Secret::new("the archive's AES key", blob.key()),
        Secret::new("the archive's IV", blob.iv()),
        Secret::new("a wrong API secret", wrong_api_secret.as_bytes()),
        Secret::new("a wrong S3 secret", wrong_s3_secret.as_bytes()),
        Secret::new("a wrong passphrase", wrong_passphrase.as_bytes()),
    ];
    // The search works: each secret is found where it is meant to be.
    let secret_files: Vec<u8> = [
        "api-secret",
        "s3-secret",
        "passphrase",
        "token",
        "wrong-api-secret",
        "wrong-s3-secret",
        "wrong-passphrase",
    ]
    .iter()
    .flat_map(|f| std::fs::read(project.path(f)).unwrap())
    .chain(blob.to_bytes().iter().copied())
    .collect();
    for secret in &secrets {
        assert!(
            !secret.found_in(&secret_files).is_empty(),
            "{} is findable",
            secret.name
        );
    }

    let mut leaks = Vec::new();
    for (place, bytes) in &exposed.0 {
        for secret in &secrets {
            for form in secret.found_in(bytes) {
                leaks.push(format!("{} ({form}) in {place}", secret.name));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets exposed:\n{}", leaks.join("\n"));
    assert!(
        exposed.0.len() > 25,
        "everything was looked at: {} places",
        exposed.0.len()
    );
}
