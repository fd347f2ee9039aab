//! archivectl as a Vonage application customer, end to end over HTTPS (issue 13): the emulator serves TLS
//! with the throwaway CA `--tls-self-signed DIR` makes (the library call behind that flag) and one
//! application; archivectl is given `--api-url https://127.0.0.1:PORT`, `--application-id`, `--private-key`,
//! and trusts the CA through `SSL_CERT_FILE` only. `storage set` (the Bearer JWT PUT), `archives
//! start|stop|list|get`, `sync` and `pull` (the object under `{applicationId}/{archiveId}/archive.ts` in the
//! S3 test server, decrypted, byte-identical to the documented openssl commands) all work; the service's
//! `sha256sum` is recorded and checked against the object's bytes: a match is recorded, and a wrong one
//! (the emulator's `wrongSha256sum` hook) is a warning and a recorded mismatch, not an error.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use opentok_rest::model::ArchiveStatus;
use sha2::Digest as _;
use storage_fetch::test_env::TestServers;
use storage_fetch::{Store, Target};

/// A fresh application id per run, so parallel runs never share objects in the bucket.
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

/// Runs archivectl as the application, over HTTPS, trusting the CA at `ca` through `SSL_CERT_FILE` alone.
struct Vonage {
    dir: PathBuf,
    app_id: String,
    base: String,
    ca: PathBuf,
}

impl Vonage {
    /// Runs archivectl (from a test on the multi-threaded runtime: the emulator keeps serving meanwhile).
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_trusting(true, args)
    }

    /// Runs archivectl, with the CA in `SSL_CERT_FILE` or not.
    fn run_trusting(&self, trust: bool, args: &[&str]) -> std::process::Output {
        let mut cmd = archivectl();
        cmd.env_remove("ARCHIVECTL_CONFIG")
            .env_remove("OPENTOK_API_SECRET")
            .env_remove("OPENTOK_API_KEY")
            .env_remove("SSL_CERT_DIR")
            .env("ARCHIVECTL_LEDGER", self.dir.join("ledger.sqlite3"))
            .env("SSL_CERT_FILE", &self.ca)
            .current_dir(&self.dir)
            .args(["--application-id", &self.app_id, "--private-key", "app.key"])
            .args(["--api-url", &self.base])
            .args(args);
        if !trust {
            // The system's own store, which does not hold the throwaway CA.
            cmd.env_remove("SSL_CERT_FILE");
        }
        tokio::task::block_in_place(|| cmd.output().unwrap())
    }

    /// Runs and asserts success; stdout as JSON when `--json` was asked, else as a string.
    fn ok(&self, args: &[&str]) -> (serde_json::Value, String) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "archivectl {args:?} failed: {stderr}");
        let json = if args.contains(&"--json") {
            serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
        } else {
            serde_json::Value::Null
        };
        (json, stderr)
    }
}

/// Starts and stops an archive of `session` through archivectl; waits until the emulator has uploaded it.
async fn record(
    v: &Vonage,
    emulator: &opentok_emulator::RunningEmulator,
    session: &str,
) -> opentok_rest::model::Archive {
    let (started, _) = v.ok(&["archives", "start", "--session-id", session, "--json"]);
    assert_eq!(started["applicationId"], v.app_id.as_str());
    let id = started["id"].as_str().unwrap().to_owned();
    v.ok(&["archives", "stop", &id]);
    let done = emulator
        .wait_for_status(
            &id,
            &[ArchiveStatus::Uploaded, ArchiveStatus::Failed],
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert_eq!(
        done.status,
        ArchiveStatus::Uploaded,
        "{:?}",
        emulator.snapshot()
    );
    done
}

fn ledger_record(v: &Vonage, id: &str) -> serde_json::Value {
    v.ok(&["ledger", "show", id, "--json"]).0
}

#[tokio::test(flavor = "multi_thread")]
async fn application_credentials_over_https_storage_sync_and_pull_with_the_sha256sum_checked() {
    let servers = TestServers::require().expect("the S3 test server");
    let fx = Fixture::new();
    let dir = fx.dir.path().to_path_buf();
    sh(
        &dir,
        "openssl req -new -x509 -days 2 -key key.pem -out cert.pem -subj /CN=vonage-https-pull 2>/dev/null
         openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out app.key 2>/dev/null
         mkdir out",
    );
    let app_id = application_id();
    let app_pem = std::fs::read_to_string(dir.join("app.key")).unwrap();
    let app_key =
        <rsa::PrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&app_pem).unwrap();
    let made = opentok_emulator::tls::self_signed(&dir.join("tls")).unwrap();
    let tls = opentok_emulator::tls::TlsConfig::from_pem_files(&made.server_cert, &made.server_key)
        .unwrap();
    let emulator = opentok_emulator::Emulator::builder()
        .application(app_id.clone(), app_key.to_public_key())
        .tls(tls)
        .start()
        .await
        .unwrap();
    let base = emulator.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let v = Vonage {
        dir: dir.clone(),
        app_id: app_id.clone(),
        base,
        ca: made.ca_cert.clone(),
    };
    let s3 = &servers.s3;
    {
        use secrecy::ExposeSecret as _;
        std::fs::write(dir.join("s3secret"), s3.secret_access_key.expose_secret()).unwrap();
    }
    let endpoint = s3.endpoint.clone().unwrap();
    let target_args = [
        "--bucket",
        s3.bucket.as_str(),
        "--endpoint",
        endpoint.as_str(),
        "--access-key-id",
        s3.access_key_id.as_str(),
        "--secret-access-key-file",
        "s3secret",
    ];

    // storage set: the application's Bearer JWT, over HTTPS; the emulator then encrypts for cert.pem.
    let mut set = vec!["storage", "set", "s3"];
    set.extend(target_args);
    set.extend(["--certificate", "cert.pem"]);
    let out = v.run(&set);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot = emulator.snapshot();
    assert!(
        format!("{snapshot:?}").contains(&s3.bucket),
        "the storage target was not set: {snapshot:?}"
    );

    // An archive recorded, uploaded encrypted under {applicationId}/{id}/archive.ts, with its sha256sum.
    let uploaded = record(&v, &emulator, "vonage-https-pull").await;
    let id = uploaded.id.clone();
    let object_key = format!("{app_id}/{id}/archive.ts");
    let store = Store::new(Target::S3(s3.clone())).unwrap();
    let object = store
        .get_range(&object_key, 0..uploaded.size, None)
        .await
        .unwrap();
    std::fs::write(dir.join("archive.ts"), &object).unwrap();
    // The service's spelling, as recorded payloads show it: base64 of the SHA-256 of the object as stored.
    let sha256sum = uploaded.sha256sum.clone().unwrap();
    let oracle = sh(
        &dir,
        "openssl dgst -sha256 -binary archive.ts | openssl enc -base64 -A",
    );
    assert_eq!(sha256sum, String::from_utf8(oracle).unwrap().trim());

    // archives list and get carry it (application id, sha256sum).
    let (listed, _) = v.ok(&[
        "archives",
        "list",
        "--session-id",
        "vonage-https-pull",
        "--json",
    ]);
    let items = listed["items"].as_array().unwrap_or_else(|| {
        listed
            .as_array()
            .unwrap_or_else(|| panic!("no list in {listed}"))
    });
    assert!(items.iter().any(|a| a["id"] == id.as_str()), "{listed}");
    let (got, _) = v.ok(&["archives", "get", &id, "--json"]);
    // Without the CA in SSL_CERT_FILE the emulator's certificate is refused: a network error, one clear line.
    let refused = v.run_trusting(false, &["archives", "get", &id, "--json"]);
    assert_fails(&refused, 9, "certificate");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("SSL_CERT_FILE"));
    assert_eq!(got["status"], "uploaded");
    assert_eq!(got["applicationId"], app_id.as_str());
    assert_eq!(got["sha256sum"], sha256sum.as_str());

    // sync records it, sha256sum included.
    v.ok(&["sync", "--json"]);
    let recorded = ledger_record(&v, &id);
    assert_eq!(recorded["service_sha256"], sha256sum.as_str(), "{recorded}");
    assert_eq!(recorded["service_sha256_matched"], serde_json::Value::Null);

    // pull: from the bucket, under the application's prefix; the output is the documented decryption.
    let mut pull = vec!["pull", "--key", "key.pem", "--out-dir", "out", "--json"];
    pull.extend(target_args);
    let mut args = pull.clone();
    args.push(&id);
    let (pulled, stderr) = v.ok(&args);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(pulled[0]["id"], id.as_str());
    assert_eq!(pulled[0]["service_sha256_matched"], true, "{pulled}");
    assert_eq!(
        pulled[0]["object_sha256"],
        hex::encode(sha2::Sha256::digest(&object)).as_str()
    );
    std::fs::write(
        dir.join("password.b64"),
        uploaded.encrypted_password().unwrap(),
    )
    .unwrap();
    fx.documented_decrypt("archive.ts", "documented.ts");
    assert_eq!(
        std::fs::read(dir.join(format!("out/{id}.ts"))).unwrap(),
        std::fs::read(dir.join("documented.ts")).unwrap()
    );
    let recorded = ledger_record(&v, &id);
    assert_eq!(recorded["service_sha256_matched"], true, "{recorded}");
    assert_eq!(
        recorded["object_sha256"],
        hex::encode(sha2::Sha256::digest(&object)).as_str()
    );

    // A service whose sha256sum does not match: a warning naming both, a recorded mismatch, exit 0.
    emulator.set_hooks(opentok_emulator::Hooks {
        wrong_sha256sum: 1,
        ..Default::default()
    });
    let odd = record(&v, &emulator, "vonage-https-pull-odd").await;
    v.ok(&["sync", "--json"]);
    let mut args = pull.clone();
    args.push(&odd.id);
    let (pulled, stderr) = v.ok(&args);
    assert_eq!(pulled[0]["service_sha256_matched"], false, "{pulled}");
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains(&odd.id))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(
        warning.contains("sha256sum") && warning.contains(odd.sha256sum.as_deref().unwrap()),
        "{warning}"
    );
    let recorded = ledger_record(&v, &odd.id);
    assert_eq!(recorded["service_sha256_matched"], false, "{recorded}");
    let shown = v.run(&["ledger", "show", &odd.id]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("does NOT match"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );

    for key in [object_key, format!("{app_id}/{}/archive.ts", odd.id)] {
        store.delete(&key).await.unwrap();
    }
    emulator.stop().await;
}
