//! `archivectl pull`'s promises about what it trusts and what it deletes, against real S3 servers (the shared
//! s3s-fs, or a private one this test can pause): a resume state is bound to the archive's key; an output is
//! verified whole before it counts; the ledger records the verified pull before anything is deleted; a ledger
//! that cannot be written, or a pull that failed a check, deletes nothing; `--delete-object` and
//! `--delete-remote` each remove their own thing and are recorded separately.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_service::{Fake, serve};
use common::storage::*;
use common::*;
use secrecy::SecretString;
use storage_fetch::test_env::TestServers;
use storage_fetch::{S3Target, Store, Target};

const API_KEY: &str = "46000003";
const SECRET: &str = "pull-safety-secret-0123456789abcdef012345";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn exists(target: &Target, key: &str) -> bool {
    runtime().block_on(async {
        match Store::new(target.clone()).unwrap().head(key).await {
            Ok(_) => true,
            Err(storage_fetch::Error::NotFound { .. }) => false,
            Err(e) => panic!("{e}"),
        }
    })
}

/// `copies` of the clip encrypted by openssl with the fixture's key and IV into `archive.ts` (plain: `big.ts`);
/// `damage` runs on big.ts first. Returns the password (base64).
fn encrypted_archive(fx: &Fixture, copies: usize, damage: &str) -> String {
    sh(
        fx.dir.path(),
        &format!(
            "for i in $(seq {copies}); do cat clip.ts; done > big.ts
             {damage}
             openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out archive.ts"
        ),
    );
    std::fs::read_to_string(fx.path("password.b64"))
        .unwrap()
        .trim()
        .to_string()
}

/// Another archive's password: valid for the same RSA key, another AES key and IV.
fn other_password(fx: &Fixture) -> String {
    sh(
        fx.dir.path(),
        "{ printf '\\001\\001\\001'; openssl rand 48; } > other.bin
         openssl pkeyutl -encrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in other.bin | openssl enc -base64 -A > other.b64",
    );
    std::fs::read_to_string(fx.path("other.b64"))
        .unwrap()
        .trim()
        .to_string()
}

/// `archivectl --api-key … --api-url http://api pull --key key.pem --out-dir out ARGS` with `ledger`.
fn pull_cmd(api: std::net::SocketAddr, fx: &Fixture, ledger: &str, args: &[String]) -> Command {
    let mut cmd = archivectl();
    cmd.env("OPENTOK_API_SECRET", SECRET)
        .env("ARCHIVECTL_LEDGER", fx.path(ledger))
        .current_dir(fx.dir.path())
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
        .args(["pull", "--key", "key.pem", "--out-dir", "out"])
        .args(args);
    cmd
}

fn deletes(fake: &Fake) -> usize {
    fake.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A private s3s-fs that the test can pause (SIGSTOP), so a pull is interrupted at a point the test chooses.
struct OwnS3 {
    child: std::process::Child,
    target: S3Target,
}

impl OwnS3 {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("own-bucket")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "AK", "--secret-key", "SK"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs (installed by `cargo xtask ci`)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let target = S3Target::new("own-bucket", "AK", SecretString::from("SK".to_string()))
            .with_endpoint(format!("http://127.0.0.1:{port}"));
        Self { child, target }
    }

    fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig} {pid}");
}

/// Bytes durable according to the resume state of `out/{id}.ts`.
fn durable(fx: &Fixture, id: &str) -> u64 {
    std::fs::read(fx.dir.path().join(format!("out/.{id}.ts.partial.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["durable"].as_u64())
        .unwrap_or(0)
}

/// Waits (no sleeping to decide: polling a file, with a generous bound) until `bytes` are durable.
fn wait_durable(fx: &Fixture, id: &str, child: &mut std::process::Child, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while durable(fx, id) < bytes {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts a pull of `id` from the paused-able server, waits until 2 MiB are durable, pauses the server (so
/// the pull cannot finish whatever the machine's load) and sends `sig`; returns the pull's output.
fn interrupt_pull(
    fx: &Fixture,
    s3: &OwnS3,
    cmd: Command,
    id: &str,
    sig: &str,
) -> std::process::Output {
    interrupt_pull_at(fx, s3, cmd, id, sig, 2 << 20)
}

/// [`interrupt_pull`] once `at` bytes are durable.
fn interrupt_pull_at(
    fx: &Fixture,
    s3: &OwnS3,
    mut cmd: Command,
    id: &str,
    sig: &str,
    at: u64,
) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_durable(fx, id, &mut child, at);
    s3.signal("STOP");
    signal(child.id(), sig);
    let out = child.wait_with_output().unwrap();
    s3.signal("CONT");
    out
}

fn tuning(target: &S3Target, fx: &Fixture) -> Vec<String> {
    let mut args = s3_args(target, fx);
    args.extend(strings(&[
        "--part-size-mib",
        "1",
        "--concurrency",
        "1",
        "--checkpoint-mib",
        "1",
    ]));
    args
}

#[test]
fn a_resume_with_another_archives_password_starts_from_zero_and_deletes_nothing() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let s3 = OwnS3::start(&fx.dir.path().join("s3data"));
    let target = Target::S3(s3.target.clone());
    let password = encrypted_archive(&fx, 300, ""); // ~36 MiB
    fx.documented_decrypt("archive.ts", "documented.ts");
    let other = other_password(&fx);
    let id = "5afe0001-0000-4000-8000-000000000001";
    let key = format!("{API_KEY}/{id}/archive.ts");
    put(&target, &key, &fx.dir.path().join("archive.ts"));
    let args = tuning(&s3.target, &fx);

    // 1. `pull ID` with the archive's own password, interrupted with 2 MiB or more durable.
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let cmd = pull_cmd(
        api,
        &fx,
        "ledger-1.sqlite3",
        &[&args[..], &strings(&[id])].concat(),
    );
    let out = interrupt_pull(&fx, &s3, cmd, id, "INT");
    assert_fails(&out, 130, "run the same command again to resume");
    assert!(durable(&fx, id) >= 2 << 20);

    // 2. The same command, but the ledger (or a forged callback) gives another archive's password, valid for
    //    the same key, with --delete-remote and --delete-object: the partial output is not resumed with it.
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, id, &other)),
        (204, ""),
        (204, ""),
    ]);
    let extra = strings(&[id, "--delete-remote", "--delete-object"]);
    let out = pull_cmd(api, &fx, "ledger-2.sqlite3", &[&args[..], &extra].concat())
        .output()
        .unwrap();
    assert_fails(&out, 4, "not MPEG-TS");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another password or key; starting from zero"),
        "{stderr}"
    );
    assert_eq!(deletes(&fake), 0, "no remote delete after a failed pull");
    assert!(exists(&target, &key), "the object stays");
    assert!(!fx.dir.path().join(format!("out/{id}.ts")).exists());
    let ledger = archive_db::Ledger::open(fx.path("ledger-2.sqlite3")).unwrap();
    let row = ledger.archive(id).unwrap().unwrap();
    assert!(
        row.verified_at.is_none() && row.remote_deleted_at.is_none(),
        "{row:?}"
    );
    let attempts = ledger.pull_attempts(id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "failed");
    assert!(
        attempts[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not MPEG-TS")
    );
    assert!(ledger.deletions(id).unwrap().is_empty());

    // 3. With the right password again: from zero, and the documented openssl decryption.
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger-3.sqlite3",
        &[&args[..], &strings(&[id, "--json"])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["resumed_from"], 0, "{json}");
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    assert_eq!(files(&fx.dir.path().join("out")), vec![format!("{id}.ts")]);
}

#[test]
fn a_pull_that_fails_verification_keeps_nothing_is_recorded_failed_and_deletes_nothing() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    // A packet far from the start that does not begin with the sync byte: the first packets are fine.
    let password = encrypted_archive(
        &fx,
        4,
        "printf '\\000' | dd of=big.ts bs=1 seek=$((188 * 1500)) conv=notrunc status=none",
    );
    let target = Target::S3(servers.s3.clone());
    let id = "5afe0002-0000-4000-8000-000000000001";
    let key = format!("{API_KEY}/{id}/archive.ts");
    put(&target, &key, &fx.dir.path().join("archive.ts"));
    let args = s3_args(&servers.s3, &fx);
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, id, &password)),
        (204, ""),
    ]);
    let extra = strings(&[id, "--delete-remote", "--delete-object"]);
    let out = pull_cmd(api, &fx, "ledger.sqlite3", &[&args[..], &extra].concat())
        .output()
        .unwrap();
    assert_fails(
        &out,
        3,
        "failed verification: the MPEG-TS lost sync 1 times",
    );
    assert_eq!(
        deletes(&fake),
        0,
        "no remote delete after an unverified pull"
    );
    assert!(exists(&target, &key), "the object stays");
    assert!(
        files(&fx.dir.path().join("out")).is_empty(),
        "nothing half-written is kept"
    );
    let ledger = archive_db::Ledger::open(fx.path("ledger.sqlite3")).unwrap();
    let row = ledger.archive(id).unwrap().unwrap();
    assert!(
        row.verified_at.is_none() && row.local_path.is_none(),
        "{row:?}"
    );
    let attempts = ledger.pull_attempts(id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "failed");
    assert!(attempts[0].reason.as_deref().unwrap().contains("lost sync"));
    assert!(ledger.deletions(id).unwrap().is_empty());
    assert_eq!(ledger.pending().unwrap().len(), 1, "still to be pulled");
}

#[test]
fn a_ledger_that_cannot_record_the_pull_means_nothing_is_deleted() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 2, "");
    let target = Target::S3(servers.s3.clone());
    let id = "5afe0003-0000-4000-8000-000000000001";
    let key = format!("{API_KEY}/{id}/archive.ts");
    put(&target, &key, &fx.dir.path().join("archive.ts"));
    // A ledger that refuses to record a verified pull (as a full disk or a broken file would).
    let ledger_path = fx.path("ledger.sqlite3");
    drop(archive_db::Ledger::open(&ledger_path).unwrap());
    rusqlite::Connection::open(&ledger_path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_pulls BEFORE UPDATE OF verified_at ON archives
             BEGIN SELECT RAISE(ABORT, 'the ledger refuses the write'); END;",
        )
        .unwrap();
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, id, &password)),
        (204, ""),
    ]);
    let extra = strings(&[id, "--delete-remote", "--delete-object"]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger.sqlite3",
        &[&s3_args(&servers.s3, &fx)[..], &extra].concat(),
    )
    .output()
    .unwrap();
    assert_fails(
        &out,
        8,
        "cannot record it in the ledger; nothing was deleted",
    );
    assert_eq!(
        deletes(&fake),
        0,
        "no remote delete before the ledger has the pull"
    );
    assert!(exists(&target, &key), "the object stays");
}

#[test]
fn delete_object_and_delete_remote_each_remove_their_own_after_the_ledger_records_the_pull() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 2, "");
    fx.documented_decrypt("archive.ts", "documented.ts");
    let target = Target::S3(servers.s3.clone());
    let args = s3_args(&servers.s3, &fx);
    let ids = [
        "5afe0004-0000-4000-8000-000000000001",
        "5afe0004-0000-4000-8000-000000000002",
        "5afe0004-0000-4000-8000-000000000003",
    ];
    for id in ids {
        put(
            &target,
            &format!("{API_KEY}/{id}/archive.ts"),
            &fx.dir.path().join("archive.ts"),
        );
    }
    let cases: [(&str, &[&str], bool, usize); 3] = [
        (ids[0], &["--delete-object"], false, 0),
        (ids[1], &["--delete-remote"], true, 1),
        (ids[2], &["--delete-object", "--delete-remote"], false, 1),
    ];
    for (id, flags, object_stays, remote_deletes) in cases {
        let key = format!("{API_KEY}/{id}/archive.ts");
        let (api, fake) = serve(vec![
            (200, &uploaded_archive_body(API_KEY, id, &password)),
            (204, ""),
        ]);
        let ledger = format!("ledger-{id}.sqlite3");
        let mut extra = strings(flags);
        extra.push(id.into());
        let out = pull_cmd(api, &fx, &ledger, &[&args[..], &extra].concat())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(exists(&target, &key), object_stays, "{flags:?}");
        assert_eq!(deletes(&fake), remote_deletes, "{flags:?}");
        assert_eq!(
            stdout.contains("object deleted from the target"),
            !object_stays,
            "{stdout}"
        );
        assert_eq!(
            stdout.contains("service record deleted"),
            remote_deletes == 1,
            "{stdout}"
        );
        assert_eq!(
            std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
            std::fs::read(fx.path("documented.ts")).unwrap()
        );
        let ledger = archive_db::Ledger::open(fx.path(&ledger)).unwrap();
        let deletions = ledger.deletions(id).unwrap();
        let what: Vec<&str> = deletions.iter().map(|d| d.what.as_str()).collect();
        let expected: Vec<&str> = flags
            .iter()
            .map(|f| {
                if *f == "--delete-object" {
                    "object"
                } else {
                    "service_record"
                }
            })
            .collect();
        assert_eq!(what, expected, "each deletion recorded, in order");
        if !object_stays {
            assert_eq!(deletions[0].target, key);
        }
        let row = ledger.archive(id).unwrap().unwrap();
        assert!(row.verified_at.is_some());
        assert_eq!(row.remote_deleted_at.is_some(), remote_deletes == 1);
        let attempts = ledger.pull_attempts(id).unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome, "verified");
        assert!(attempts[0].counts.is_some());
    }
    // Each flag's help says what it removes and what stays.
    let help = run(&["pull", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("delete the encrypted object"), "{help}");
    assert!(
        help.contains("delete the archive's record at the"),
        "{help}"
    );
    assert!(help.matches("stays").count() >= 2, "{help}");
}

#[test]
fn sigterm_and_sighup_checkpoint_and_exit_143_and_a_sigkilled_pull_resumes_identical_to_openssl() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let s3 = OwnS3::start(&fx.dir.path().join("s3data"));
    let target = Target::S3(s3.target.clone());
    let password = encrypted_archive(&fx, 300, ""); // ~36 MiB
    fx.documented_decrypt("archive.ts", "documented.ts");
    let id = "5afe0005-0000-4000-8000-000000000001";
    put(
        &target,
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let args = [&tuning(&s3.target, &fx)[..], &strings(&[id])].concat();
    let body = uploaded_archive_body(API_KEY, id, &password);
    let partial = fx.dir.path().join(format!("out/.{id}.ts.partial"));
    let mut at = 0;
    for (run, sig) in ["TERM", "HUP"].into_iter().enumerate() {
        let (api, _f) = serve(vec![(200, &body)]);
        let cmd = pull_cmd(api, &fx, &format!("ledger-{run}.sqlite3"), &args);
        let out = interrupt_pull_at(&fx, &s3, cmd, id, sig, at + (2 << 20));
        assert_fails(
            &out,
            143,
            "interrupted; run the same command again to resume",
        );
        if run > 0 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("at {} MiB", at >> 20)),
                "resumed, said in text mode: {stderr}"
            );
        }
        let now = durable(&fx, id);
        assert!(now >= at + (2 << 20), "checkpointed on SIG{sig}");
        assert!(std::fs::metadata(&partial).unwrap().len() >= now);
        assert!(!fx.dir.path().join(format!("out/{id}.ts")).exists());
        at = now;
    }
    // SIGKILL: no chance to checkpoint; the next run resumes from the last checkpoint it made.
    let (api, _f) = serve(vec![(200, &body)]);
    let cmd = pull_cmd(api, &fx, "ledger-kill.sqlite3", &args);
    let out = interrupt_pull_at(&fx, &s3, cmd, id, "KILL", at + (2 << 20));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9)
    );
    let at = durable(&fx, id);
    let (api, _f) = serve(vec![(200, &body)]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger-last.sqlite3",
        &[&args[..], &strings(&["--json"])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["resumed_from"].as_u64().unwrap(), at, "{json}");
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    assert_eq!(files(&fx.dir.path().join("out")), vec![format!("{id}.ts")]);
}

#[test]
fn pull_outputs_are_0600_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    let password = encrypted_archive(&fx, 2, "");
    let id = "5afe0006-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = Command::new("bash")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_archivectl"))
        .env("OPENTOK_API_SECRET", SECRET)
        .env("ARCHIVECTL_LEDGER", fx.path("ledger.sqlite3"))
        .current_dir(fx.dir.path())
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
        .args(["pull", "--key", "key.pem", "--out-dir", "out", id])
        .args(s3_args(&servers.s3, &fx))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(fx.path(&format!("out/{id}.ts")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Records `body` in the ledger at `path` as a callback would (what a forger who reaches the receiver can do).
fn forged_callback(path: &str, body: &str) {
    let mut ledger = archive_db::Ledger::open(path).unwrap();
    let event =
        archive_db::IncomingEvent::from_callback(body.as_bytes(), "203.0.113.9:4444").unwrap();
    ledger.record_event(&event).unwrap();
}

#[test]
fn a_forged_password_or_status_recorded_first_does_not_keep_the_real_archive_from_being_pulled() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 2, "");
    fx.documented_decrypt("archive.ts", "documented.ts");
    let forged = other_password(&fx);
    let target = Target::S3(servers.s3.clone());
    let args = s3_args(&servers.s3, &fx);
    let ids = [
        "5afe0007-0000-4000-8000-000000000001",
        "5afe0007-0000-4000-8000-000000000002",
        "5afe0007-0000-4000-8000-000000000003",
    ];
    for id in ids {
        put(
            &target,
            &format!("{API_KEY}/{id}/archive.ts"),
            &fx.dir.path().join("archive.ts"),
        );
    }
    let pulled = |id: &str| {
        assert_eq!(
            std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
            std::fs::read(fx.path("documented.ts")).unwrap()
        );
    };

    // 1. Only a forged password in the ledger: it does not fit, the REST API's does.
    let ledger = fx.path("ledger-1.sqlite3");
    forged_callback(&ledger, &uploaded_archive_body(API_KEY, ids[0], &forged));
    let (api, fake) = serve(vec![(
        200,
        &uploaded_archive_body(API_KEY, ids[0], &password),
    )]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger-1.sqlite3",
        &[&args[..], &strings(&[ids[0]])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not fit"), "{stderr}");
    assert_eq!(fake.requests.lock().unwrap().len(), 1);
    pulled(ids[0]);

    // 2. The forged password first, then the real one: a conflict, settled by the REST API before pulling.
    let ledger = fx.path("ledger-2.sqlite3");
    forged_callback(&ledger, &uploaded_archive_body(API_KEY, ids[1], &forged));
    forged_callback(&ledger, &uploaded_archive_body(API_KEY, ids[1], &password));
    let (api, fake) = serve(vec![(
        200,
        &uploaded_archive_body(API_KEY, ids[1], &password),
    )]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger-2.sqlite3",
        &[&args[..], &strings(&[ids[1]])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("does not fit"));
    assert_eq!(fake.requests.lock().unwrap().len(), 1);
    pulled(ids[1]);

    // 3. A forged `failed` recorded first: `pull --all` re-checks it with the REST API and pulls it.
    let ledger = fx.path("ledger-3.sqlite3");
    let failed =
        uploaded_archive_body(API_KEY, ids[2], &forged).replace("\"uploaded\"", "\"failed\"");
    forged_callback(&ledger, &failed);
    let body = uploaded_archive_body(API_KEY, ids[2], &password);
    let (api, _fake) = serve(vec![(200, &body), (200, &body)]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger-3.sqlite3",
        &[&args[..], &strings(&["--all"])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the REST API says uploaded: pulling it"),
        "{stderr}"
    );
    pulled(ids[2]);
    let ledger = archive_db::Ledger::open(&ledger).unwrap();
    let history = ledger.status_history(ids[2]).unwrap();
    assert!(
        history.iter().any(|h| h.status == "failed")
            && history.iter().any(|h| h.status == "uploaded"),
        "the history keeps both: {history:?}"
    );
    assert!(
        ledger
            .archive(ids[2])
            .unwrap()
            .unwrap()
            .verified_at
            .is_some()
    );
}

#[test]
fn pull_messages_bare_pull_stopped_archives_a_second_pull_and_an_out_dir_left_uncreated() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    let args = s3_args(&servers.s3, &fx);

    // Bare `pull`: a usage error that names --all.
    let out = archivectl().args(["pull"]).args(&args).output().unwrap();
    assert_fails(&out, 2, "--all");

    // A stopped archive, still uploading: said so, and --out-dir (new) is not left behind.
    let id = "5afe0008-0000-4000-8000-000000000001";
    let stopped = uploaded_archive_body(API_KEY, id, "").replace("\"uploaded\"", "\"stopped\"");
    let (api, _f) = serve(vec![(200, &stopped)]);
    let mut cmd = pull_cmd(
        api,
        &fx,
        "ledger-stopped.sqlite3",
        &[&args[..], &strings(&[id])].concat(),
    );
    let out = cmd.output().unwrap();
    assert_fails(&out, 3, "retry when it is uploaded");
    assert!(
        !fx.dir.path().join("out").exists(),
        "--out-dir not created for a failed pull"
    );

    // Pulled and verified once; the same pull again does nothing and says so, unless --force.
    let password = encrypted_archive(&fx, 2, "");
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, fake) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let run = [&args[..], &strings(&[id])].concat();
    let out = pull_cmd(api, &fx, "ledger.sqlite3", &run).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output = fx.dir.path().join(format!("out/{id}.ts"));
    std::fs::write(&output, b"changed since").unwrap(); // so a second pull would show
    let out = pull_cmd(api, &fx, "ledger.sqlite3", &run).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already pulled and verified at"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(std::fs::read(&output).unwrap(), b"changed since");
    assert_eq!(
        fake.requests.lock().unwrap().len(),
        1,
        "the service was not asked again"
    );
    let forced = [&run[..], &strings(&["--force"])].concat();
    let out = pull_cmd(api, &fx, "ledger.sqlite3", &forced)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(&output).unwrap(), b"changed since");
}

/// A small tmpfs mounted on a directory for the length of a test.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_while_pulling_is_a_clear_error_leaves_nothing_and_the_ledger_unchanged() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    let _disk = SmallDisk::mount(&fx.dir.path().join("out"), "4m");
    let password = encrypted_archive(&fx, 80, ""); // ~10 MiB, more than the disk holds
    let id = "5afe0009-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    // The ledger (on another disk) already knows the archive and its password: the pull needs no service.
    let ledger_path = fx.path("ledger.sqlite3");
    forged_callback(&ledger_path, &uploaded_archive_body(API_KEY, id, &password));
    let snapshot = |l: &archive_db::Ledger| {
        (
            format!("{:?}", l.archive(id).unwrap()),
            l.events(None).unwrap().len(),
            l.pull_attempts(id).unwrap().len(),
        )
    };
    let before = snapshot(&archive_db::Ledger::open(&ledger_path).unwrap());
    let (api, fake) = serve(vec![]);
    let extra = strings(&[
        id,
        "--delete-remote",
        "--delete-object",
        "--checkpoint-mib",
        "1",
    ]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger.sqlite3",
        &[&s3_args(&servers.s3, &fx)[..], &extra].concat(),
    )
    .output()
    .unwrap();
    assert_fails(&out, 5, "is full; nothing of it was kept");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        files(&fx.dir.path().join("out")).is_empty(),
        "nothing partial left"
    );
    assert_eq!(deletes(&fake), 0);
    let after = snapshot(&archive_db::Ledger::open(&ledger_path).unwrap());
    assert_eq!(before, after, "the ledger is unchanged");
}

#[test]
fn continuity_errors_do_not_fail_a_pull_but_are_recorded_and_shown() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    // Packet 1500's continuity counter changed (its 4th byte): still MPEG-TS, but not continuous.
    let password = encrypted_archive(
        &fx,
        4,
        "b=$(xxd -s $((188 * 1500 + 3)) -l 1 -p big.ts)
         printf \"\\\\x$(printf '%02x' $(( 0x$b ^ 0x05 )))\" | dd of=big.ts bs=1 seek=$((188 * 1500 + 3)) conv=notrunc status=none",
    );
    fx.documented_decrypt("archive.ts", "documented.ts");
    let id = "5afe000a-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let args = s3_args(&servers.s3, &fx);
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = pull_cmd(
        api,
        &fx,
        "ledger.sqlite3",
        &[&args[..], &strings(&[id])].concat(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    let ledger = archive_db::Ledger::open(fx.path("ledger.sqlite3")).unwrap();
    let counts = ledger.pull_attempts(id).unwrap()[0].counts.unwrap();
    assert!(counts.continuity_errors > 0, "{counts:?}");
    assert_eq!(counts.sync_losses, 0);
    assert!(
        stdout.contains(&format!(
            "{} MPEG-TS continuity errors",
            counts.continuity_errors
        )),
        "{stdout}"
    );
}

#[test]
fn a_project_named_only_by_a_callback_never_chooses_the_object_key() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    let password = encrypted_archive(&fx, 1, "");
    let target = Target::S3(servers.s3.clone());
    let id = "5afe0009-0000-4000-8000-000000000001";
    // Another project's object, and a callback (unauthenticated, say) that names that project.
    let theirs = format!("999999/{id}/archive.ts");
    put(&target, &theirs, &fx.dir.path().join("archive.ts"));
    forged_callback(
        &fx.path("ledger.sqlite3"),
        &uploaded_archive_body(API_KEY, id, &password).replace(API_KEY, "999999"),
    );
    let out = archivectl()
        .env_remove("OPENTOK_API_KEY")
        .env("ARCHIVECTL_LEDGER", fx.path("ledger.sqlite3"))
        .current_dir(fx.dir.path())
        .args(["pull", "--key", "key.pem", "--out-dir", "out", id])
        .args(s3_args(&servers.s3, &fx))
        .output()
        .unwrap();
    assert_fails(&out, 2, "no API key");
    assert!(
        !fx.dir.path().join("out").join(format!("{id}.ts")).exists(),
        "nothing pulled from another project's prefix"
    );
    assert!(exists(&target, &theirs), "their object stays");
}

/// Holds the ledger's write lock from another process (Python's sqlite3, `BEGIN EXCLUSIVE`) until dropped.
struct LedgerLock(std::process::Child);

impl LedgerLock {
    fn hold(path: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 sys.stdin.read()\n\
                 c.execute('ROLLBACK')",
                path,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (with its sqlite3 module) holds the ledger's lock");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "the other process holds the lock");
        Self(child)
    }

    fn release(mut self) {
        drop(self.0.stdin.take());
        assert!(self.0.wait().unwrap().success());
    }
}

#[test]
fn a_ledger_locked_by_another_process_is_waited_for_and_nothing_is_deleted_before_it_records() {
    let servers = TestServers::require().expect("the test servers (source /tmp/servers.env)");
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 2, "");
    fx.documented_decrypt("archive.ts", "documented.ts");
    let target = Target::S3(servers.s3.clone());
    let id = "5afe000a-0000-4000-8000-000000000001";
    let key = format!("{API_KEY}/{id}/archive.ts");
    put(&target, &key, &fx.dir.path().join("archive.ts"));
    // The ledger knows the archive and its password (from a callback), so the pull needs no REST read.
    let ledger = fx.path("ledger.sqlite3");
    forged_callback(&ledger, &uploaded_archive_body(API_KEY, id, &password));
    let lock = LedgerLock::hold(&ledger);
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, id, &password)),
        (204, ""),
        (204, ""),
    ]);
    let extra = strings(&[id, "--delete-remote", "--delete-object"]);
    let mut child = pull_cmd(
        api,
        &fx,
        "ledger.sqlite3",
        &[&s3_args(&servers.s3, &fx)[..], &extra].concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The output is verified and in place; the pull now waits for the ledger to record it.
    let output = fx.dir.path().join(format!("out/{id}.ts"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !output.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended while the ledger was locked"
        );
        assert!(
            Instant::now() < deadline,
            "no output while the ledger was locked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // For a while (a wrong order would delete within milliseconds of the rename; a right one never does while
    // the lock is held, so this window can only miss a bug, never fail a correct pull).
    let watch = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch {
        assert!(
            child.try_wait().unwrap().is_none(),
            "still waiting for the ledger"
        );
        assert_eq!(
            deletes(&fake),
            0,
            "nothing deleted before the ledger records"
        );
        assert!(
            exists(&target, &key),
            "the object stays until the ledger records"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lock.release();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(deletes(&fake), 1);
    assert!(!exists(&target, &key));
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    let ledger = archive_db::Ledger::open(&ledger).unwrap();
    assert!(ledger.archive(id).unwrap().unwrap().verified_at.is_some());
    assert_eq!(ledger.deletions(id).unwrap().len(), 2);
}
