//! `archivectl pull` of an archive the service kept in its own cloud (fallback after a failed upload, status
//! `available`, downloaded from its presigned URL), cut off by the server mid-download: run again, it asks
//! for the rest with a `Range` request from its checkpoint, and the output is the documented openssl
//! decryption. The service is opentok-emulator; a proxy in front of its download URLs cuts the first one.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use opentok_rest::auth::Credentials;
use opentok_rest::model::{
    ArchiveEncryption, ArchiveStatus, Fallback, S3Config, StartArchiveRequest, StorageTarget,
};
use opentok_rest::{Client, RetryPolicy};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const API_KEY: &str = "46000077";
const SECRET: &str = "url-resume-secret-0123456789abcdef0123456";
/// The first download is cut after this many bytes of its answer (head included).
const CUT_AFTER: u64 = 4 << 20;

/// A TCP proxy to the emulator that, while armed, cuts the next connection after [`CUT_AFTER`] bytes of the
/// answer, and records the head of every request it forwards.
struct CuttingProxy {
    armed: Arc<AtomicBool>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl CuttingProxy {
    /// Serves on `listener` (inside a tokio runtime).
    fn start_on(listener: tokio::net::TcpListener, upstream: SocketAddr) -> Self {
        let armed = Arc::new(AtomicBool::new(false));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (arm, record) = (armed.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (arm, record) = (arm.clone(), record.clone());
                tokio::spawn(async move {
                    let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let mut head = vec![0u8; 8192];
                    let n = client_read.read(&mut head).await.unwrap_or(0);
                    record
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head[..n]).into_owned());
                    let _ = server_write.write_all(&head[..n]).await;
                    let cut = arm.swap(false, Ordering::SeqCst);
                    let upward = tokio::io::copy(&mut client_read, &mut server_write);
                    let downward = async {
                        if cut {
                            let mut limited = (&mut server_read).take(CUT_AFTER);
                            let _ = tokio::io::copy(&mut limited, &mut client_write).await;
                            // Dropped mid-answer: the client sees the connection close early.
                        } else {
                            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        }
                    };
                    tokio::select! {
                        _ = upward => {}
                        _ = downward => {}
                    }
                });
            }
        });
        Self { armed, heads }
    }
}

#[test]
fn a_fallback_download_cut_by_the_server_resumes_with_a_range_request() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl req -new -x509 -days 2 -key key.pem -out cert.pem -subj /CN=url-resume 2>/dev/null",
    );
    std::fs::create_dir(fx.path("out")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cert = archive_core::cert::Certificate::parse(&std::fs::read(fx.path("cert.pem")).unwrap())
        .unwrap();
    // The emulator, its download URLs pointing at the proxy; an archive whose upload fails (a closed port)
    // and is kept in the emulator's cloud, encrypted for our certificate, 400 s long (about 12 MiB).
    let (emulator, proxy, id, password) = rt.block_on(async {
        let placeholder = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = placeholder.local_addr().unwrap();
        drop(placeholder);
        let emulator = opentok_emulator::Emulator::builder()
            .project(API_KEY, SECRET.into())
            .public_url(format!("http://{proxy_addr}"))
            .download_url_ttl(Duration::from_secs(600))
            .start()
            .await
            .unwrap();
        let upstream: SocketAddr = emulator
            .base_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        let proxy = CuttingProxy::start_on(
            tokio::net::TcpListener::bind(proxy_addr).await.unwrap(),
            upstream,
        );
        let client = Client::builder(Credentials::project(API_KEY, SECRET.into()))
            .base_url(emulator.base_url())
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let target = StorageTarget::s3(
            S3Config {
                bucket: "archives".into(),
                access_key: "AKIDEXAMPLE".into(),
                secret_key: "dead-target-secret".into(),
                endpoint: Some("http://127.0.0.1:1".into()),
                sse: None,
            },
            Fallback::Opentok,
            ArchiveEncryption::for_certificate(&cert),
        );
        client.set_archive_storage(&target).await.unwrap();
        emulator.set_hooks(opentok_emulator::Hooks {
            recorded_seconds: Some(400),
            ..Default::default()
        });
        let a = client
            .start_archive(&StartArchiveRequest::new("url-resume"))
            .await
            .unwrap();
        client.stop_archive(&a.id).await.unwrap();
        let available = emulator
            .wait_for_status(
                &a.id,
                &[ArchiveStatus::Available, ArchiveStatus::Failed],
                Duration::from_secs(120),
            )
            .await
            .unwrap();
        assert_eq!(available.status, ArchiveStatus::Available);
        assert!(available.size > 2 * CUT_AFTER, "{}", available.size);
        let password = available.encrypted_password().unwrap().to_string();
        (emulator, proxy, a.id, password)
    });

    std::fs::write(fx.path("s3secret"), "dead-target-secret\n").unwrap();
    let pull = |ledger: &str| {
        archivectl()
            .env("OPENTOK_API_SECRET", SECRET)
            .env("ARCHIVECTL_LEDGER", fx.path(ledger))
            .current_dir(fx.dir.path())
            .args(["--api-key", API_KEY, "--api-url", &emulator.base_url()])
            .args([
                "pull",
                "--key",
                "key.pem",
                "--out-dir",
                "out",
                &id,
                "--json",
            ])
            .args(["--checkpoint-mib", "1"])
            // The project's own target (where the upload failed); the archive is at its URL instead.
            .args(["--bucket", "archives", "--endpoint", "http://127.0.0.1:1"])
            .args([
                "--access-key-id",
                "AKIDEXAMPLE",
                "--secret-access-key-file",
                "s3secret",
            ])
            .output()
            .unwrap()
    };
    // First run: the server cuts the download after 4 MiB. Nothing is published; what was done is kept.
    proxy.armed.store(true, Ordering::SeqCst);
    let out = pull("ledger-1.sqlite3");
    assert!(
        !out.status.success(),
        "the cut download was not noticed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !proxy.armed.load(Ordering::SeqCst),
        "the download never went through the proxy: {:?} {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!fx.dir.path().join(format!("out/{id}.ts")).exists());

    // Second run: resumes with a Range request from its checkpoint.
    let out = pull("ledger-2.sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let resumed_from = json[0]["resumed_from"].as_u64().unwrap();
    assert!(
        resumed_from > 0 && resumed_from < CUT_AFTER,
        "resumed from {resumed_from}: {json}"
    );
    let heads = proxy.heads.lock().unwrap().clone();
    let downloads: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("GET /download/"))
        .collect();
    let last = downloads.last().expect("a download request");
    assert!(
        last.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("range: bytes={resumed_from}-"))),
        "the resumed download asks for the rest: {last}"
    );

    // The documented decryption of the whole object, fetched again from a fresh URL.
    std::fs::write(fx.path("password.b64"), &password).unwrap();
    let url = rt.block_on(async {
        Client::builder(Credentials::project(API_KEY, SECRET.into()))
            .base_url(emulator.base_url())
            .build()
            .unwrap()
            .get_archive(&id)
            .await
            .unwrap()
            .url
            .unwrap()
    });
    sh(fx.dir.path(), &format!("curl -sSf -o whole.enc '{url}'"));
    fx.documented_decrypt("whole.enc", "documented.ts");
    assert!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap()
            == std::fs::read(fx.path("documented.ts")).unwrap(),
        "the resumed output differs from the documented decryption"
    );
    rt.block_on(emulator.stop());
}
