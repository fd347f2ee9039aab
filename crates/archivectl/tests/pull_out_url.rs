//! `archivectl pull --out-url`: decrypted archives into object storage (issue 14), against real servers
//! (s3s-fs and Azurite): the object equals the documented openssl decryption and the ledger says where it
//! went, its size and SHA-256; an output that fails verification leaves no object and no multipart upload
//! behind (a private s3s-fs whose directory shows its pending uploads); `--delete-remote` only after a
//! verified, recorded output; a run after a failed one works.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_service::serve;
use common::storage::*;
use common::*;
use secrecy::ExposeSecret;
use storage_fetch::test_env::TestServers;
use storage_fetch::{S3Target, Store, Target};

const API_KEY: &str = "46000014";
const SECRET: &str = "outurl-test-secret-0123456789abcdef0123456";

/// `copies` of the clip (with `garbage` bytes that are not MPEG-TS after the first half, if any), encrypted
/// by openssl into `archive.ts`.
fn encrypted_archive(fx: &Fixture, copies: usize, garbage: usize) {
    let half = copies / 2;
    sh(
        fx.dir.path(),
        &format!(
            "{{ for i in $(seq {half}); do cat clip.ts; done; head -c {garbage} /dev/zero | tr '\\0' 'x';
                for i in $(seq {}); do cat clip.ts; done; }} > big.ts
             openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out archive.ts",
            copies - half
        ),
    );
}

/// `archivectl pull` with `ledger`, the fake service at `api`, the source `target` and `env` for the output.
fn pull(
    api: std::net::SocketAddr,
    fx: &Fixture,
    ledger: &str,
    target: &[String],
    env: &[(&str, String)],
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = archivectl();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OPENTOK_API_SECRET", SECRET)
        .env("ARCHIVECTL_LEDGER", ledger)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(fx.dir.path())
        .args([
            "--api-key",
            API_KEY,
            "--api-url",
            &format!("http://{api}"),
            "pull",
            "--key",
            "key.pem",
        ])
        .args(target)
        .args(extra)
        .output()
        .unwrap()
}

fn s3_env(t: &S3Target) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", t.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            t.secret_access_key.expose_secret().to_string(),
        ),
        ("AWS_ENDPOINT_URL", t.endpoint.clone().unwrap()),
    ]
}

fn ledger_row(fx: &Fixture, ledger: &str, id: &str) -> serde_json::Value {
    let out = archivectl()
        .env("ARCHIVECTL_LEDGER", ledger)
        .current_dir(fx.dir.path())
        .args(["ledger", "show", id, "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256_hex(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn out_url_s3_and_azure_objects_equal_the_documented_decryption() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    encrypted_archive(&fx, 60, 0);
    fx.documented_decrypt("archive.ts", "documented.ts");
    let documented = std::fs::read(fx.path("documented.ts")).unwrap();
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let password = password.trim();
    let run = fresh_uuid();
    let target = s3_args(&servers.s3, &fx);

    // S3, credentials from the environment, the archive's record deleted at the service afterwards.
    let id = fresh_uuid();
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, &id, password)),
        (204, ""),
    ]);
    let url = format!("s3://{}/outurl-{run}/s3/", servers.s3.bucket);
    let ledger = fx.path("ledger-s3.sqlite3");
    let out = pull(
        api,
        &fx,
        &ledger,
        &target,
        &s3_env(&servers.s3),
        &[&id, "--out-url", &url, "--json", "--delete-remote"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = format!("outurl-{run}/s3/{id}.ts");
    let store = Store::new(Target::S3(servers.s3.clone())).unwrap();
    let size = documented.len() as u64;
    let got = block_on(store.get_range(&key, 0..size, None)).unwrap();
    assert_eq!(&got[..], &documented[..]);
    assert!(
        !Path::new(&fx.path("out")).exists()
            && !Path::new(&fx.path(".")).join(format!("{id}.ts")).exists()
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = sha256_hex(&fx.path("documented.ts"));
    assert_eq!(json[0]["sha256"], sha.as_str());
    assert_eq!(json[0]["path"], format!("{url}{id}.ts").as_str());
    assert_eq!(json[0]["bytes"], size);
    assert_eq!(json[0]["remote_deleted"], true);
    let row = ledger_row(&fx, &ledger, &id);
    assert_eq!(row["local_path"], format!("{url}{id}.ts").as_str(), "{row}");
    assert_eq!(row["sha256"], sha.as_str(), "{row}");
    assert!(row["remote_deleted_at"].is_string(), "{row}");
    let deletes = fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1);

    // Azure, credentials from [output] in archivectl.toml, with --trim.
    let az = &servers.azure;
    std::fs::write(fx.path("azkey"), az.account_key.expose_secret()).unwrap();
    std::fs::write(
        fx.path("archivectl.toml"),
        format!(
            "[output]\ntype = \"azure\"\naccount_name = \"{}\"\naccount_key_file = \"azkey\"\nendpoint = \"{}\"\n",
            az.account_name,
            az.endpoint.clone().unwrap()
        ),
    )
    .unwrap();
    let id = fresh_uuid();
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, _fake) = serve(vec![(200, &uploaded_archive_body(API_KEY, &id, password))]);
    let url = format!("az://{}/outurl-{run}/az", az.container);
    let ledger = fx.path("ledger-az.sqlite3");
    let out = pull(
        api,
        &fx,
        &ledger,
        &target,
        &[],
        &[&id, "--out-url", &url, "--trim"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let az_store = Store::new(Target::Azure(az.clone())).unwrap();
    let key = format!("outurl-{run}/az/{id}.ts");
    let trimmed = std::fs::read(fx.path("big.ts")).unwrap();
    let got = block_on(az_store.get_range(&key, 0..trimmed.len() as u64, None)).unwrap();
    assert_eq!(&got[..], &trimmed[..]);
    assert_eq!(
        block_on(az_store.head(&key)).unwrap().size,
        trimmed.len() as u64
    );
    let row = ledger_row(&fx, &ledger, &id);
    assert_eq!(
        row["local_path"],
        format!("{url}/{id}.ts").as_str(),
        "{row}"
    );
    assert_eq!(
        row["sha256"],
        sha256_hex(&fx.path("big.ts")).as_str(),
        "{row}"
    );
    // Pulled again: the ledger says it is there, and it is.
    let out = pull(api, &fx, &ledger, &target, &[], &[&id, "--out-url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already pulled"));
}

/// A private s3s-fs, so that its directory shows the multipart uploads it holds (s3s-fs does not list them).
struct PrivateS3 {
    child: Child,
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrivateS3 {
    fn start(bucket: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(bucket)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "outurl-ak", "--secret-key", "outurl-secret-key-0123456789"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs (cargo install s3s-fs --version 0.14.1 --features binary --locked) must be on PATH");
        // Wait for it to listen (an event, with a generous bound for a loaded machine).
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The multipart uploads (and their parts) s3s-fs still holds.
    fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }
}

#[test]
fn out_url_failed_verification_leaves_no_object_and_no_upload_and_deletes_nothing() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    // 100 clips (12 MiB: three parts of the upload) with 10 packets of bytes that are not MPEG-TS in the middle.
    encrypted_archive(&fx, 100, 1880);
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let password = password.trim().to_string();
    let id = fresh_uuid();
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let s3 = PrivateS3::start("outputs");
    let env = vec![
        ("AWS_ACCESS_KEY_ID", "outurl-ak".to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "outurl-secret-key-0123456789".to_string(),
        ),
        ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
    ];
    let target = s3_args(&servers.s3, &fx);
    let ledger = fx.path("ledger.sqlite3");
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, &id, &password)),
        (204, ""),
    ]);
    let out = pull(
        api,
        &fx,
        &ledger,
        &target,
        &env,
        &[&id, "--out-url", "s3://outputs/done/", "--delete-remote"],
    );
    assert_fails(&out, 3, "lost sync");
    let output_store = Store::new(Target::S3(
        S3Target::new(
            "outputs",
            "outurl-ak",
            "outurl-secret-key-0123456789".to_string().into(),
        )
        .with_endpoint(s3.endpoint.clone()),
    ))
    .unwrap();
    assert_eq!(block_on(output_store.list("")).unwrap(), vec![]);
    assert_eq!(s3.pending_uploads(), Vec::<String>::new());
    assert!(
        fake.requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.method != "DELETE")
    );
    let row = ledger_row(&fx, &ledger, &id);
    assert!(
        row["verified_at"].is_null() && row["local_path"].is_null(),
        "{row}"
    );

    // The object is fixed: the same command now uploads it.
    encrypted_archive(&fx, 100, 0);
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let (api, fake) = serve(vec![
        (200, &uploaded_archive_body(API_KEY, &id, &password)),
        (204, ""),
    ]);
    let ledger = fx.path("ledger-2.sqlite3");
    let out = pull(
        api,
        &fx,
        &ledger,
        &target,
        &env,
        &[&id, "--out-url", "s3://outputs/done/", "--delete-remote"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fx.documented_decrypt("archive.ts", "documented.ts");
    let documented = std::fs::read(fx.path("documented.ts")).unwrap();
    let got = block_on(output_store.get_range(
        &format!("done/{id}.ts"),
        0..documented.len() as u64,
        None,
    ))
    .unwrap();
    assert_eq!(&got[..], &documented[..]);
    assert_eq!(s3.pending_uploads(), Vec::<String>::new());
    assert_eq!(
        fake.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count(),
        1
    );
}

#[test]
fn out_url_refuses_bad_urls_missing_credentials_and_out_dir() {
    let fx = Fixture::new();
    let (api, _fake) = serve(vec![]);
    let id = fresh_uuid();
    let target = vec!["--bucket".to_string(), "b".into()];
    let out = pull(
        api,
        &fx,
        &fx.path("l.sqlite3"),
        &target,
        &[],
        &[&id, "--out-url", "gs://b/p/"],
    );
    assert_fails(
        &out,
        2,
        "expected s3://BUCKET/PREFIX/ or az://CONTAINER/PREFIX/",
    );
    let out = pull(
        api,
        &fx,
        &fx.path("l.sqlite3"),
        &target,
        &[],
        &[&id, "--out-url", "s3://b/p/"],
    );
    assert_fails(&out, 2, "AWS_ACCESS_KEY_ID");
    let out = pull(
        api,
        &fx,
        &fx.path("l.sqlite3"),
        &target,
        &[],
        &[&id, "--out-url", "s3://b/p/", "--out-dir", "x"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn out_url_sigterm_mid_upload_aborts_it() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let fx = Fixture::new();
    encrypted_archive(&fx, 100, 0);
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let id = fresh_uuid();
    put(
        &Target::S3(servers.s3.clone()),
        &format!("{API_KEY}/{id}/archive.ts"),
        &fx.dir.path().join("archive.ts"),
    );
    let s3 = PrivateS3::start("outputs");
    // The source is held back after 8 MiB: the first 5 MiB part of the upload is sent, the rest waits.
    let gate = common::gate::Gate::new(8 << 20);
    let endpoint = servers.s3.endpoint.clone().unwrap();
    let upstream: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = common::gate::gated_proxy(upstream, gate.clone());
    let mut target = s3_args(&servers.s3, &fx);
    target[3] = format!("http://{proxy}");
    let (api, _fake) = serve(vec![(
        200,
        &uploaded_archive_body(API_KEY, &id, password.trim()),
    )]);
    let child = archivectl()
        .env("OPENTOK_API_SECRET", SECRET)
        .env("ARCHIVECTL_LEDGER", fx.path("ledger.sqlite3"))
        .env("AWS_ACCESS_KEY_ID", "outurl-ak")
        .env("AWS_SECRET_ACCESS_KEY", "outurl-secret-key-0123456789")
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .current_dir(fx.dir.path())
        .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
        .args([
            "pull",
            &id,
            "--key",
            "key.pem",
            "--out-url",
            "s3://outputs/cut/",
        ])
        .args(["--part-size-mib", "1"])
        .args(&target)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first part to be whole at the server (an event), then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let whole = std::fs::read_dir(s3.dir.path()).unwrap().any(|e| {
            let e = e.unwrap();
            e.file_name().to_string_lossy().contains(".part-1")
                && e.metadata().unwrap().len() == 5 << 20
        });
        if whole {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first part never reached s3s-fs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    gate.open();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output_store = Store::new(Target::S3(
        S3Target::new(
            "outputs",
            "outurl-ak",
            "outurl-secret-key-0123456789".to_string().into(),
        )
        .with_endpoint(s3.endpoint.clone()),
    ))
    .unwrap();
    assert_eq!(block_on(output_store.list("")).unwrap(), vec![]);
    assert_eq!(s3.pending_uploads(), Vec::<String>::new());
}
