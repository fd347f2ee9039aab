//! archivectl as a Vonage application customer (issue 13): `--application-id`/`--private-key` against the
//! emulator over HTTPS, its throwaway CA trusted through `SSL_CERT_FILE` (the system's usual variable, which
//! reqwest's rustls-platform-verifier reads on Linux through rustls-native-certs); without it the certificate
//! is refused.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const APP_ID: &str = "3c5f9f5e-7d8e-4a43-b9b4-6c0a1d2e3f41";

#[tokio::test(flavor = "multi_thread")]
async fn application_credentials_over_https_with_the_ca_from_ssl_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        r#"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=archivectl test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
  -extfile ext.cnf 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out app.key 2>/dev/null
"#,
    );
    let pem = std::fs::read_to_string(dir.path().join("app.key")).unwrap();
    let key = <rsa::PrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
    let tls = opentok_emulator::tls::TlsConfig::from_pem_files(
        &dir.path().join("server.pem"),
        &dir.path().join("server.key"),
    )
    .unwrap();
    let emulator = opentok_emulator::Emulator::builder()
        .application(APP_ID, key.to_public_key())
        .tls(tls)
        .start()
        .await
        .unwrap();
    let base = emulator.base_url();
    assert!(base.starts_with("https://"));
    let key_path = dir.path().join("app.key");
    let run = move |args: &[&str], trust: bool| {
        let mut cmd = archivectl();
        cmd.env_remove("ARCHIVECTL_CONFIG")
            .env_remove("OPENTOK_API_SECRET")
            .current_dir(std::env::temp_dir())
            .args(["--application-id", APP_ID, "--private-key"])
            .arg(&key_path)
            .args(["--api-url", &base])
            .args(args);
        if trust {
            cmd.env(
                "SSL_CERT_FILE",
                std::path::Path::new(&key_path).with_file_name("ca.pem"),
            );
        } else {
            cmd.env_remove("SSL_CERT_FILE");
        }
        cmd.output().unwrap()
    };
    let out = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            run(
                &[
                    "archives",
                    "start",
                    "--session-id",
                    "https",
                    "--stream-mode",
                    "manual",
                    "--json",
                ],
                true,
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(started["applicationId"], APP_ID);
    let id = started["id"].as_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking({
        let run = run.clone();
        let id = id.clone();
        move || {
            run(
                &["archives", "streams", "add", &id, "s1", "--no-video"],
                true,
            )
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        emulator.archive(&id).unwrap().streams[0].has_video,
        Some(false)
    );
    // Without the CA the emulator's certificate is refused, and nothing is listed.
    let out = tokio::task::spawn_blocking(move || run(&["archives", "list"], false))
        .await
        .unwrap();
    assert!(!out.status.success());
    emulator.stop().await;
}
