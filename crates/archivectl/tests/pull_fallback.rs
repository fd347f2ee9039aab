//! `archivectl pull` of an archive the service keeps in its own cloud (status `available`): downloaded from its
//! presigned URL, interrupted mid-way (the server stalls, SIGINT), then resumed with a `Range` request from the
//! checkpoint, and identical to the documented openssl decryption. The server here is a small HTTP server that
//! honours ranges and can hold a response open, so the interruption is not a matter of timing.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use common::fake_service::serve;
use common::*;
use futures_util::StreamExt as _;

const API_KEY: &str = "46000004";
const SECRET: &str = "pull-fallback-secret-0123456789abcdef0123";
const SIGNATURE: &str = "X-Amz-Signature=0b5e55ed5ec12e7";

struct Cloud {
    data: Bytes,
    /// Serve this many bytes of the first request, then hold it open.
    stall_after: usize,
    requests: Mutex<Vec<Option<String>>>,
}

async fn archive(State(cloud): State<Arc<Cloud>>, headers: HeaderMap) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let first = {
        let mut requests = cloud.requests.lock().unwrap();
        requests.push(range.clone());
        requests.len() == 1
    };
    let total = cloud.data.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .map(|s| s.parse::<usize>().unwrap());
    let from = start.unwrap_or(0);
    let body = cloud.data.slice(from..);
    let mut response = Response::builder()
        .header(header::CONTENT_LENGTH, total - from)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(start) = start {
        response = response.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", total - 1),
        );
    }
    let body = if first {
        let head = body.slice(..cloud.stall_after);
        Body::from_stream(
            futures_util::stream::iter([Ok::<_, std::io::Error>(head)])
                .chain(futures_util::stream::pending()),
        )
    } else {
        Body::from(body)
    };
    response.body(body).unwrap()
}

fn start_cloud(cloud: Arc<Cloud>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/1/archive.ts", axum::routing::get(archive))
                .with_state(cloud);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn a_fallback_download_interrupted_mid_way_resumes_with_a_range_request() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "for i in $(seq 100); do cat clip.ts; done > big.ts
         openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out archive.ts",
    );
    fx.documented_decrypt("archive.ts", "documented.ts");
    let password = std::fs::read_to_string(fx.path("password.b64")).unwrap();
    let data = Bytes::from(std::fs::read(fx.path("archive.ts")).unwrap());
    assert!(data.len() > 8 << 20);
    let cloud = Arc::new(Cloud {
        data,
        stall_after: 4 << 20,
        requests: Mutex::new(Vec::new()),
    });
    let addr = start_cloud(cloud.clone());
    let id = "fa11bac0-0000-4000-8000-000000000001";
    let body = format!(
        r#"{{"id":"{id}","status":"available","sessionId":"S","partnerId":{API_KEY},"createdAt":1700000000000,
            "duration":0,"size":1,"password":"{}","url":"http://{addr}/1/archive.ts?{SIGNATURE}"}}"#,
        password.trim()
    );
    let pull = |api: SocketAddr, ledger: &str| {
        let mut cmd = archivectl();
        cmd.env("OPENTOK_API_SECRET", SECRET)
            .env("ARCHIVECTL_LEDGER", fx.path(ledger))
            .current_dir(fx.dir.path())
            .args(["--api-key", API_KEY, "--api-url", &format!("http://{api}")])
            .args(["pull", "--key", "key.pem", "--out-dir", "out", id])
            .args(["--part-size-mib", "1", "--checkpoint-mib", "1"])
            // Never read for an archive in the service's cloud, but a target must be configured.
            .args(["--bucket", "unused", "--access-key-id", "AK"])
            .args(["--secret-access-key-file", &fx.path("unused-secret")]);
        cmd
    };
    std::fs::write(fx.path("unused-secret"), "unused").unwrap();
    let state = fx.dir.path().join(format!("out/.{id}.ts.partial.json"));
    let durable = || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["durable"].as_u64())
            .unwrap_or(0)
    };

    // First run: the server sends 4 MiB and then nothing; once 2 MiB are durable, SIGINT.
    let (api, _f) = serve(vec![(200, &body)]);
    let mut child = pull(api, "ledger-1.sqlite3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while durable() < 2 << 20 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the pull ended early: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    assert_fails(&out, 130, "run the same command again to resume");
    let at = durable();
    let misaligned = at % 16;
    assert!(at >= 2 << 20 && misaligned == 0, "{at}");

    // Second run: a Range request from the checkpoint, and the documented decryption.
    let (api, _f) = serve(vec![(200, &body)]);
    let out = pull(api, "ledger-2.sqlite3")
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["resumed_from"].as_u64().unwrap(), at, "{json}");
    assert!(
        cloud
            .requests
            .lock()
            .unwrap()
            .contains(&Some(format!("bytes={at}-"))),
        "{:?}",
        cloud.requests.lock().unwrap()
    );
    assert_eq!(
        std::fs::read(fx.path(&format!("out/{id}.ts"))).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(SIGNATURE));
    }
}
