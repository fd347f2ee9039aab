//! Helpers shared by the emulator's integration tests: clients, raw requests, a callback receiver, keys.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentok_emulator::{CallbackRetry, EmulatorBuilder, RunningEmulator};
use opentok_rest::auth::Credentials;
use opentok_rest::{Client, RetryPolicy};
use serde_json::Value;

pub const API_KEY: &str = "4701234";
pub const API_SECRET: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334";

/// A builder with the test project and fast callback retries.
pub fn builder() -> EmulatorBuilder {
    opentok_emulator::Emulator::builder()
        .project(API_KEY, API_SECRET.into())
        .callback_retry(CallbackRetry {
            attempts: 4,
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        })
}

/// opentok-rest's client for the test project, without retries.
pub fn client(emulator: &RunningEmulator) -> Client {
    client_with(emulator, API_KEY, API_SECRET)
}

pub fn client_with(emulator: &RunningEmulator, key: &str, secret: &str) -> Client {
    Client::builder(Credentials::project(key, secret.into()))
        .base_url(emulator.base_url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

pub fn http() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::new()
}

/// An `X-OPENTOK-AUTH` token with these claims, signed with `secret`.
pub fn token(claims: Value, secret: &str) -> String {
    opentok_rest::auth::sign_hs256(&claims, secret.as_bytes()).unwrap()
}

/// A valid token for the test project.
pub fn good_token() -> String {
    let now = opentok_rest::auth::unix_now().unwrap();
    token(
        serde_json::json!({"iss": API_KEY, "ist": "project", "iat": now, "exp": now + 180}),
        API_SECRET,
    )
}

/// A raw request with `X-OPENTOK-AUTH: token` (if any); returns status and JSON body (Null if none).
pub async fn raw(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut request = http().request(method, url);
    if let Some(token) = token {
        request = request.header("X-OPENTOK-AUTH", token);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// A self-signed certificate and its key, the key also written to `dir/key.pem` (PKCS#8, as openssl reads it).
pub fn certificate(
    dir: Option<&Path>,
    bits: usize,
) -> (rsa::PrivateKey, archive_core::cert::Certificate) {
    let key = archive_core::keys::generate_rsa_key(bits).unwrap();
    let cert =
        archive_core::cert::Certificate::generate_self_signed(&key, "CN=emulator test", 2).unwrap();
    if let Some(dir) = dir {
        std::fs::write(
            dir.join("key.pem"),
            archive_core::keys::to_pkcs8_pem(&key, None)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.to_pem()).unwrap();
    }
    (key, cert)
}

/// One callback as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicU32>,
    failed: Arc<AtomicU32>,
}

/// A callback receiver on 127.0.0.1 that records what it gets and can fail the first tries.
pub struct Receiver {
    pub addr: SocketAddr,
    state: ReceiverState,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = ReceiverState::default();
        let app = axum::Router::new()
            .route("/cb", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/cb", self.addr)
    }

    /// Answers 500 to the next `n` callbacks.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn failed(&self) -> u32 {
        self.state.failed.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The statuses received for `archive_id`, in order.
    pub fn statuses(&self, archive_id: &str) -> Vec<String> {
        self.received()
            .iter()
            .filter(|r| r.json["id"] == archive_id)
            .map(|r| r.json["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `n` callbacks for `archive_id` arrived.
    pub async fn wait_for(&self, archive_id: &str, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let statuses = self.statuses(archive_id);
            if statuses.len() >= n || tokio::time::Instant::now() >= deadline {
                return statuses;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        state.failed.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.received.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        json,
    });
    StatusCode::OK
}

/// Runs a bash script in `dir`; panics with its output if it fails.
pub fn bash(dir: &Path, script: &str) -> String {
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "script failed ({}):\n{script}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
