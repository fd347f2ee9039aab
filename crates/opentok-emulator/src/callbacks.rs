//! Archive status callbacks: each status change (`started`, `stopped`, then `uploaded`, `available` or
//! `failed`) is POSTed to the project's callback URL as the archive's JSON with `"event": "archive"` (and the
//! `password` of encrypted archives), `Content-Type: application/json`.
//!
//! * **Order**: one queue per project, delivered one at a time, so a receiver sees a project's callbacks in
//!   the order the changes happened (unless the `reorderCallbacks` hook says otherwise).
//! * **Retries**: a try fails when the receiver does not answer within [`CallbackRetry::timeout`] or answers
//!   anything but 2xx; it is tried again after [`CallbackRetry::initial`], doubling up to
//!   [`CallbackRetry::max`], [`CallbackRetry::attempts`] tries in all. Later callbacks wait meanwhile.
//! * **Signing** (optional, [`crate::EmulatorConfig::callback_signature_secret`]): like the platform's signed
//!   webhooks, `Authorization: Bearer <JWT>`, HS256 with the signature secret, claims `iat`, `jti`,
//!   `iss: "Vonage"`, `payload_hash` (hex SHA-256 of the exact body) and `api_key` (or `application_id`).
//!   A receiver verifies the signature and that `payload_hash` matches the body it got.
//! * **Hooks**: `dropCallbacks`, `duplicateCallbacks`, `reorderCallbacks`, `callbackDelayMs` (see
//!   [`crate::Hooks`]). Every try and every hooked callback is in the state listing's `callbacks`.
//!
//! [`CallbackRetry::timeout`]: crate::CallbackRetry::timeout
//! [`CallbackRetry::initial`]: crate::CallbackRetry::initial
//! [`CallbackRetry::max`]: crate::CallbackRetry::max
//! [`CallbackRetry::attempts`]: crate::CallbackRetry::attempts

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::state::{CallbackRecord, Shared};

/// How long callbacks held by the `reorderCallbacks` hook wait for the rest of their group.
pub const REORDER_WINDOW: Duration = Duration::from_secs(2);

/// One callback to send.
#[derive(Debug, Clone)]
pub(crate) struct CallbackJob {
    pub(crate) archive_id: String,
    pub(crate) status: String,
    pub(crate) url: String,
    pub(crate) body: Vec<u8>,
    pub(crate) project: String,
}

enum Action {
    Drop,
    Hold { last: bool },
    Twice,
    Once,
}

/// Hands a callback to the dispatcher.
pub(crate) fn enqueue(shared: &Shared, job: CallbackJob) {
    // Fails only once the dispatcher has stopped (the emulator is shutting down).
    let _ = shared.callback_tx.send(job);
}

/// Runs the dispatcher: it starts one delivery worker per project and routes each callback to its project's.
pub(crate) fn start_dispatcher(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<CallbackJob>) {
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let mut workers: HashMap<String, mpsc::UnboundedSender<CallbackJob>> = HashMap::new();
        loop {
            let job = tokio::select! {
                job = rx.recv() => job,
                _ = shutdown.wait_for(|stop| *stop) => None,
            };
            let Some(job) = job else { break };
            let tx = workers.entry(job.project.clone()).or_insert_with(|| {
                let (tx, worker_rx) = mpsc::unbounded_channel();
                tokio::spawn(worker(shared.clone(), worker_rx));
                tx
            });
            let _ = tx.send(job);
        }
    });
}

fn record(
    shared: &Shared,
    job: &CallbackJob,
    attempt: u32,
    outcome: &str,
    status: Option<u16>,
    error: Option<String>,
) {
    shared.lock().callbacks.push(CallbackRecord {
        archive_id: job.archive_id.clone(),
        status: job.status.clone(),
        url: job.url.clone(),
        attempt,
        outcome: outcome.to_owned(),
        http_status: status,
        error,
    });
    shared.bump();
}

async fn worker(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<CallbackJob>) {
    let mut shutdown = shared.shutdown.clone();
    let mut held: Vec<CallbackJob> = Vec::new();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            next = async {
                if held.is_empty() {
                    Some(rx.recv().await)
                } else {
                    tokio::time::timeout(REORDER_WINDOW, rx.recv()).await.ok()
                }
            } => next,
        };
        let job = match next {
            // The reordering window passed: send what is held, newest first.
            None => {
                for job in held.drain(..).rev() {
                    deliver(&shared, &job).await;
                }
                continue;
            }
            Some(None) => return,
            Some(Some(job)) => job,
        };
        let action = {
            let mut inner = shared.lock();
            let hooks = &mut inner.hooks;
            if hooks.drop_callbacks > 0 {
                hooks.drop_callbacks -= 1;
                Action::Drop
            } else if hooks.reorder_callbacks > 0 {
                hooks.reorder_callbacks -= 1;
                Action::Hold {
                    last: hooks.reorder_callbacks == 0,
                }
            } else if hooks.duplicate_callbacks > 0 {
                hooks.duplicate_callbacks -= 1;
                Action::Twice
            } else {
                Action::Once
            }
        };
        match action {
            Action::Drop => {
                tracing::info!(archive = %job.archive_id, status = %job.status, "callback dropped (hook)");
                record(&shared, &job, 0, "dropped", None, None);
            }
            Action::Hold { last } => {
                record(&shared, &job, 0, "held", None, None);
                held.push(job);
                if last {
                    for job in held.drain(..).rev() {
                        deliver(&shared, &job).await;
                    }
                }
            }
            Action::Twice => {
                deliver(&shared, &job).await;
                deliver(&shared, &job).await;
            }
            Action::Once => deliver(&shared, &job).await,
        }
    }
}

/// The `Authorization` value of a signed callback.
fn signature(shared: &Shared, job: &CallbackJob) -> Option<String> {
    let secret = shared.config.callback_signature_secret.as_ref()?;
    let iat = opentok_rest::auth::unix_now().ok()?;
    let mut claims = serde_json::json!({
        "iat": iat,
        "jti": opentok_rest::auth::new_jti(),
        "iss": "Vonage",
        "payload_hash": hex::encode(Sha256::digest(&job.body)),
    });
    let key = if shared
        .project(&job.project)
        .is_some_and(|p| p.kind() == "application")
    {
        "application_id"
    } else {
        "api_key"
    };
    claims[key] = job.project.clone().into();
    opentok_rest::auth::sign_hs256(&claims, secret.expose_secret().as_bytes())
        .ok()
        .map(|token| format!("Bearer {token}"))
}

/// Why one try of a callback failed: the receiver's status, or the transport error.
struct Failed {
    status: Option<u16>,
    error: Option<String>,
}

/// Delivers one callback: tries it, then retries it with `backon` on the waits of
/// [`CallbackRetry::delays`](crate::CallbackRetry::delays), recording every try in the state listing.
async fn deliver(shared: &Arc<Shared>, job: &CallbackJob) {
    use backon::Retryable as _;
    let retry = shared.config.callback_retry;
    let delay = shared.lock().hooks.callback_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let tries = AtomicU32::new(0);
    let send = || async {
        tries.fetch_add(1, Ordering::Relaxed);
        let mut request = shared
            .http
            .post(&job.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(retry.timeout)
            .body(job.body.clone());
        if let Some(authorization) = signature(shared, job) {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
            Ok(response) => Err(Failed {
                status: Some(response.status().as_u16()),
                error: None,
            }),
            Err(e) => Err(Failed {
                status: None,
                error: Some(e.without_url().to_string()),
            }),
        }
    };
    // Called before each wait, so never after the last try (recorded below as "gave up").
    let failed = |f: &Failed, _wait: Duration| {
        let attempt = tries.load(Ordering::Relaxed);
        tracing::warn!(archive = %job.archive_id, status = %job.status, attempt, http_status = ?f.status,
            error = ?f.error, "callback failed");
        record(shared, job, attempt, "failed", f.status, f.error.clone());
    };
    let outcome = send.retry(retry.delays()).notify(failed).await;
    let attempt = tries.load(Ordering::Relaxed);
    match outcome {
        Ok(status) => {
            tracing::info!(archive = %job.archive_id, status = %job.status, attempt, "callback delivered");
            record(shared, job, attempt, "delivered", Some(status), None);
        }
        Err(f) => {
            tracing::warn!(archive = %job.archive_id, status = %job.status, attempt, http_status = ?f.status,
                error = ?f.error, "callback failed, giving up");
            record(shared, job, attempt, "gave up", f.status, f.error);
        }
    }
}
