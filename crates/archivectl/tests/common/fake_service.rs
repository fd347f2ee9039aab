//! A stand-in for the service's REST API: records each request and answers with queued replies.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub uri: String,
    pub auth: Option<String>,
    pub body: String,
}

#[derive(Default)]
pub struct Fake {
    pub requests: Mutex<Vec<Recorded>>,
    pub replies: Mutex<VecDeque<(u16, String)>>,
}

/// Starts the fake service on its own runtime thread; each request is answered with the next queued reply.
pub fn serve(replies: Vec<(u16, &str)>) -> (SocketAddr, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    fake.replies
        .lock()
        .unwrap()
        .extend(replies.into_iter().map(|(s, b)| (s, b.to_string())));
    let state = fake.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = Router::new().fallback(handler).with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), fake)
}

async fn handler(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    fake.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        uri: uri.to_string(),
        auth: headers
            .get("x-opentok-auth")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, body) = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((500, "{}".into()));
    (StatusCode::from_u16(status).unwrap(), body)
}

/// archivectl with project `api_key`'s `secret` against the fake service at `addr`, outside any configuration
/// file (run in the temporary directory, `ARCHIVECTL_CONFIG` unset).
pub fn cli_against(addr: SocketAddr, api_key: &str, secret: &str, args: &[&str]) -> Output {
    super::archivectl()
        .env("OPENTOK_API_SECRET", secret)
        .env_remove("ARCHIVECTL_CONFIG")
        .current_dir(std::env::temp_dir())
        .args(["--api-key", api_key, "--api-url", &format!("http://{addr}")])
        .args(args)
        .output()
        .unwrap()
}
