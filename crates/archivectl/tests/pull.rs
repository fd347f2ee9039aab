//! `archivectl pull` against real storage servers (s3s-fs and Azurite, started by `cargo xtask ci`): output
//! byte-identical to the documented openssl decryption, resume after the server is killed mid-download, and
//! the errors a user meets (wrong credentials, missing object, wrong key).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_service::serve;
use common::storage::*;
use common::*;
use secrecy::SecretString;
use storage_fetch::test_env::TestServers;
use storage_fetch::{S3Target, Target};

const API_KEY: &str = "46000002";
const SECRET: &str = "pull-test-secret-0123456789abcdef01234567";

/// Makes `archive.ts` from `n` copies of the clip, encrypted by openssl; returns the password (base64).
fn encrypted_archive(fx: &Fixture, copies: usize) -> String {
    sh(
        fx.dir.path(),
        &format!(
            "for i in $(seq {copies}); do cat clip.ts; done > big.ts
             openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out archive.ts"
        ),
    );
    std::fs::read_to_string(fx.path("password.b64"))
        .unwrap()
        .trim()
        .to_string()
}

/// Runs `archivectl pull` with a fresh ledger, so the password comes from the (fake) service each time.
fn pull(
    api: std::net::SocketAddr,
    fx: &Fixture,
    target_args: &[String],
    extra: &[&str],
) -> std::process::Output {
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    archivectl()
        .env("OPENTOK_API_SECRET", SECRET)
        .env("ARCHIVECTL_LEDGER", fx.path(&format!("ledger-{n}.sqlite3")))
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://{api}"),
            "pull",
            "--key",
            "key.pem",
            "--out-dir",
            "out",
        ])
        .args(target_args)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn pulls_from_s3_and_azure_byte_identical_to_the_documented_commands() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 40);
    fx.documented_decrypt("archive.ts", "documented.ts");
    let documented = std::fs::read(fx.path("documented.ts")).unwrap();

    // S3
    let id = "aaaaaaaa-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, _fake) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = pull(
        api,
        &fx,
        &s3_args(&servers.s3, &fx),
        &[id, "--json", "--part-size-mib", "1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        documented
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha =
        String::from_utf8(sh(fx.dir.path(), "sha256sum documented.ts | cut -d' ' -f1")).unwrap();
    assert_eq!(json[0]["sha256"].as_str().unwrap(), sha.trim());
    assert!(
        json[0]["measured_duration"].as_f64().unwrap() > 100.0,
        "{}",
        json[0]["measured_duration"]
    );

    // Azure, with --trim
    use secrecy::ExposeSecret;
    let az = &servers.azure;
    std::fs::write(fx.path("azkey"), az.account_key.expose_secret()).unwrap();
    let id = "aaaaaaaa-0000-4000-8000-000000000002";
    put(
        &Target::Azure(az.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, _fake) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let args: Vec<String> = vec![
        "--container".into(),
        az.container.clone(),
        "--account-name".into(),
        az.account_name.clone(),
        "--account-key-file".into(),
        fx.path("azkey"),
        "--endpoint".into(),
        az.endpoint.clone().unwrap(),
    ];
    let out = pull(api, &fx, &args, &[id, "--trim"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("big.ts")).unwrap()
    );
    assert_eq!(
        files(&fx.dir.path().join("out")).len(),
        2,
        "no partial or state files left"
    );
}

#[test]
fn errors_are_distinct_and_leave_nothing() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 2);
    let id = "bbbbbbbb-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let good = s3_args(&servers.s3, &fx);

    // --out-dir that is a file: refused before anything is fetched, the file untouched.
    std::fs::write(fx.path("a-file"), "keep me").unwrap();
    let (api, _f) = serve(vec![]);
    let out = archivectl()
        .env("OPENTOK_API_SECRET", SECRET)
        .current_dir(fx.dir.path())
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
        .args(["pull", "--key", "key.pem", "--out-dir", "a-file", id])
        .args(&good)
        .output()
        .unwrap();
    assert_fails(&out, 5, "--out-dir a-file exists and is not a directory");
    assert_eq!(
        std::fs::read_to_string(fx.path("a-file")).unwrap(),
        "keep me"
    );

    // Missing object.
    let missing = "bbbbbbbb-0000-4000-8000-00000000ffff";
    let (api, _f) = serve(vec![(
        200,
        &uploaded_archive_body(API_KEY, missing, &password),
    )]);
    let out = pull(api, &fx, &good, &[missing]);
    assert_fails(
        &out,
        7,
        &format!("not found in bucket {}", servers.s3.bucket),
    );

    // Wrong credentials.
    std::fs::write(fx.path("wrong"), "not-the-secret").unwrap();
    let mut wrong = good.clone();
    let last = wrong.len() - 1;
    wrong[last] = fx.path("wrong");
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = pull(api, &fx, &wrong, &[id]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A key the password was not wrapped for.
    sh(
        fx.dir.path(),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null",
    );
    let (api, _f) = serve(vec![(200, &uploaded_archive_body(API_KEY, id, &password))]);
    let out = archivectl()
        .env("OPENTOK_API_SECRET", SECRET)
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://{api}"),
            "pull",
            "--key",
            "other.pem",
            "--out-dir",
            "out",
            id,
        ])
        .args(&good)
        .output()
        .unwrap();
    assert_fails(&out, 4, "wrapped for another key");

    // Another archive's password: decrypts to noise, refused before anything is kept.
    sh(
        fx.dir.path(),
        "{ printf '\\001\\001\\001'; openssl rand 48; } > other.bin
         openssl pkeyutl -encrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in other.bin | openssl enc -base64 -A > other.b64",
    );
    let other = std::fs::read_to_string(fx.path("other.b64")).unwrap();
    let (api, _f) = serve(vec![(
        200,
        &uploaded_archive_body(API_KEY, id, other.trim()),
    )]);
    let out = pull(api, &fx, &good, &[id]);
    assert_fails(&out, 4, "not MPEG-TS");
    assert!(
        files(&fx.dir.path().join("out")).is_empty(),
        "nothing left: {:?}",
        files(&fx.dir.path().join("out"))
    );
}

/// A private s3s-fs this test can kill and restart.
struct OwnS3 {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnS3 {
    fn start(dir: &Path, port: u16) -> Self {
        let bin = ["s3s-fs"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|b| {
                Command::new(b)
                    .arg("--help")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            })
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| Path::new(&h).join(".cargo/bin/s3s-fs"))
                    .filter(|p| p.exists())
            })
            .expect("s3s-fs (installed by `cargo xtask ci`)");
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "AK",
                "--secret-key",
                "SK",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn resumes_after_the_server_is_killed_and_after_ctrl_c() {
    let Some(_servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let data = fx.dir.path().join("s3data");
    std::fs::create_dir_all(data.join("resume-bucket")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s3 = OwnS3::start(&data, port);
    let target = S3Target::new("resume-bucket", "AK", SecretString::from("SK".to_string()))
        .with_endpoint(format!("http://127.0.0.1:{port}"));
    let password = encrypted_archive(&fx, 600); // ~72 MiB
    fx.documented_decrypt("archive.ts", "documented.ts");
    let id = "cccccccc-0000-4000-8000-000000000001";
    put(
        &Target::S3(target.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    std::fs::write(fx.path("s3secret"), "SK").unwrap();
    let args: Vec<String> = [
        "--bucket",
        "resume-bucket",
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--access-key-id",
        "AK",
        "--secret-access-key-file",
        &fx.path("s3secret"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tuning = [
        "--part-size-mib",
        "1",
        "--concurrency",
        "1",
        "--checkpoint-mib",
        "1",
    ];

    // Each run asks the (fake) service for the password with a fresh ledger.
    let (api, _f) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, id, &password));
        3
    ]);
    let spawn_pull = |ledger: &str| {
        archivectl()
            .env("OPENTOK_API_SECRET", SECRET)
            .env("ARCHIVECTL_LEDGER", fx.path(ledger))
            .current_dir(fx.dir.path())
            .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
            .args(["pull", "--key", "key.pem", "--out-dir", "out", id])
            .args(&args)
            .args(tuning)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let state = fx.dir.path().join(format!("out/.{id}.ts.partial.json"));
    let durable = || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["durable"].as_u64())
            .unwrap_or(0)
    };
    let wait_for = |child: &mut std::process::Child, bytes: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while durable() < bytes {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the pull ended before it could be interrupted"
            );
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    // First run: kill the server once a few MiB are durable.
    let mut first = spawn_pull("ledger-first.sqlite3");
    wait_for(&mut first, 3 << 20);
    s3.kill();
    let out = first.wait_with_output().unwrap();
    assert_fails(&out, 7, "run the same command again to resume");
    assert!(!fx.dir.path().join(format!("out/{id}.ts")).exists());
    let after_first = durable();

    // Second run, server back: it resumes, and Ctrl-C (SIGINT) stops it with what it did kept.
    let mut s3 = OwnS3::start(&s3.dir, s3.port);
    let mut second = spawn_pull("ledger-second.sqlite3");
    wait_for(&mut second, after_first + (2 << 20));
    let sigint = Command::new("kill")
        .args(["-INT", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(sigint.success());
    let out = second.wait_with_output().unwrap();
    assert_fails(
        &out,
        130,
        "interrupted; run the same command again to resume",
    );
    assert!(!fx.dir.path().join(format!("out/{id}.ts")).exists());
    let after_second = durable();
    assert!(after_second > after_first);

    // Third run: resumes from there, and the result is the documented decryption.
    let out = pull(api, &fx, &args, &[id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json[0]["resumed_from"].as_u64().unwrap() >= after_second,
        "{json}"
    );
    s3.kill();
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    assert_eq!(files(&fx.dir.path().join("out")), vec![format!("{id}.ts")]);
}

#[test]
fn storage_check_and_a_pull_with_the_password_given() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let good = s3_args(&servers.s3, &fx);
    let out = archivectl()
        .current_dir(fx.dir.path())
        .args(["storage", "check", "--json"])
        .args(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["service_can_upload"], true);
    assert_eq!(report["steps"].as_array().unwrap().len(), 4);
    std::fs::write(fx.path("wrong"), "nope").unwrap();
    let mut wrong = good.clone();
    let last = wrong.len() - 1;
    wrong[last] = fx.path("wrong");
    let out = archivectl()
        .current_dir(fx.dir.path())
        .args(["storage", "check"])
        .args(&wrong)
        .output()
        .unwrap();
    assert_fails(&out, 7, "failed the check");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));

    // No REST API at all: the password comes from a saved callback body.
    encrypted_archive(&fx, 3);
    let id = "dddddddd-0000-4000-8000-000000000001";
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    std::fs::write(
        fx.path("callback.json"),
        uploaded_archive_body(API_KEY, id, password.trim()),
    )
    .unwrap();
    let out = archivectl()
        .env_remove("OPENTOK_API_SECRET")
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "pull",
            id,
            "--key",
            "key.pem",
            "--password-file",
            "callback.json",
            "--out-dir",
            "out",
            "--trim",
        ])
        .args(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("big.ts")).unwrap()
    );
}

#[test]
fn sync_then_pull_all_records_every_pull_in_the_ledger() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("out")).unwrap();
    let password = encrypted_archive(&fx, 4);
    let ids = [
        "eeeeeeee-0000-4000-8000-000000000001",
        "eeeeeeee-0000-4000-8000-000000000002",
    ];
    for id in ids {
        put(
            &Target::S3(servers.s3.clone()),
            &format!("{API_KEY}/{id}/archive.ts"),
            &fx.dir.path().join("archive.ts"),
        );
    }
    let list = format!(
        r#"{{"count":2,"items":[{},{}]}}"#,
        uploaded_archive_body(API_KEY, ids[1], &password),
        uploaded_archive_body(API_KEY, ids[0], &password)
    );
    // sync lists; pull --all needs nothing more from the service but the two deletes.
    let (api, fake) = serve(vec![(200, &list), (204, ""), (204, "")]);
    let ledger = fx.path("ledger.sqlite3");
    let run = |args: &[&str]| {
        archivectl()
            .env("OPENTOK_API_SECRET", SECRET)
            .env("ARCHIVECTL_LEDGER", &ledger)
            .current_dir(fx.dir.path())
            .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pull_args = vec![
        "pull",
        "--all",
        "--key",
        "key.pem",
        "--out-dir",
        "out",
        "--trim",
        "--delete-remote",
        "--json",
    ];
    let target = s3_args(&servers.s3, &fx);
    pull_args.extend(target.iter().map(String::as_str));
    let out = run(&pull_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled.as_array().unwrap().len(), 2);
    for id in ids {
        assert_eq!(
            std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
            std::fs::read(fx.path("big.ts")).unwrap()
        );
        let out = run(&["ledger", "show", id, "--json"]);
        let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            row["local_path"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{id}.ts")),
            "{row}"
        );
        assert_eq!(row["sha256"].as_str().unwrap().len(), 64);
        assert!(row["measured_duration"].as_f64().unwrap() > 10.0, "{row}");
        assert!(row["remote_deleted_at"].is_string(), "{row}");
    }
    let deletes = fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 2);
    // Nothing is pending any more.
    let out = run(&pull_args);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}
