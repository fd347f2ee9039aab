//! The archivectl callback receiver as a library: an [axum] [`Router`] that receives the service's archive
//! status callbacks, authenticates them, and commits each to the ledger ([`archive_db`]) before answering.
//!
//! Mount [`router`] in your own axum (or tower) service, or let [`serve`] run it on a listener (what
//! `archivectl callbacks serve` does: with a header-read timeout, a cap on connections and a bounded graceful
//! shutdown, [`Limits`]). Either way:
//!
//! * `POST {path}` checks the shared token and the signature when configured (401 otherwise), reads at most
//!   [`MAX_BODY_BYTES`] (413 beyond), classifies the body (400 for anything that is not a JSON object or is a
//!   broken archive callback), hands it to the ledger's group-commit writer ([`archive_db::GroupWriter`]) and
//!   answers 200 only once it is committed. If the ledger cannot commit, or [`Limits::max_queued`] callbacks
//!   are already waiting for it, it answers 503 with `Retry-After`, so the service tries again later. A body
//!   not received within [`Limits::body_timeout`] is dropped.
//! * `GET /healthz` answers 200 while the process serves (liveness); `GET /readyz` answers 200 only when the
//!   ledger can commit now (a probe through the writer, [`archive_db::Submitter::probe`]), 503 otherwise
//!   (readiness, for load balancers); `GET /metrics` gives the [`metrics`] in the Prometheus text format.
//!
//! Nothing here decrypts anything: the password is stored as received.
//!
//! ```
//! use archive_db::{GroupWriter, Ledger};
//! use archive_receiver::{ReceiverConfig, router};
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let writer = GroupWriter::start(Ledger::open_in_memory().unwrap());
//! let app = router(ReceiverConfig::new("/callbacks/archive"), writer.submitter());
//! let callback = r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"uploaded","password":"ZTQy"}"#;
//! let request = Request::post("/callbacks/archive").body(Body::from(callback)).unwrap();
//! let answer = app.oneshot(request).await.unwrap();
//! assert_eq!(answer.status(), StatusCode::OK); // committed to the ledger before this answer
//! assert_eq!(writer.shutdown().unwrap().events, 1);
//! # });
//! ```
#![warn(missing_docs)]

mod auth;
mod health;
pub mod metrics;
mod probe;
mod request_id;
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

use archive_db::{BodyError, EventAuth, IncomingEvent, Submitter, escape_controls};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;

use auth::{TokenQuery, check_signature, check_token};
pub use metrics::Metrics;
use metrics::Reason;
pub use probe::{ProbeError, probe_health};
pub use request_id::REQUEST_ID_HEADER;
pub use serve::{serve, serve_router};

/// The largest body accepted (1 MiB); a callback is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The header that may carry the shared token instead of `?token=`.
pub const TOKEN_HEADER: &str = "x-archivectl-token";

/// How much the receiver takes on at once, and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A client that has not sent its whole request head by then is dropped (and an idle keep-alive
    /// connection closed). Default 30 s.
    pub header_timeout: Duration,
    /// A client that has not sent its whole body by then is dropped. Default 30 s.
    pub body_timeout: Duration,
    /// Connections served at once ([`serve`]); more wait in the listen backlog. Default 1024.
    pub max_connections: usize,
    /// Callbacks waiting for the ledger at once; beyond that the answer is 503 with `Retry-After`, so the
    /// service tries again later and memory stays bounded. Default 10,000.
    pub max_queued: usize,
    /// On shutdown, how long requests in flight may take to finish before [`serve`] returns anyway. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_queued: 10_000,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// What the receiver checks.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The callback path.
    pub path: String,
    /// The shared token, if one is required (wiped from memory on drop).
    pub token: Option<Zeroizing<Vec<u8>>>,
    /// The signature secret of signed callbacks, if they must be signed (wiped from memory on drop).
    pub signature_secret: Option<Zeroizing<Vec<u8>>>,
    /// How old a signature's `iat` may be, in seconds.
    pub signature_max_age: u64,
    /// The project (API key or application id) whose callbacks are expected. When set, an archive callback
    /// naming another project (`projectId`, `partnerId` or `applicationId`) is refused with 403 and nothing
    /// is stored, so a callback never sets the project (and so the object-key prefix) of an archive to one
    /// that is not ours. When unset, the project a callback names is recorded as it is.
    pub project: Option<String>,
    /// Timeouts and caps.
    pub limits: Limits,
}

impl ReceiverConfig {
    /// A receiver on `path` with no authentication configured and the default signature age (300 s).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            token: None,
            signature_secret: None,
            signature_max_age: 300,
            project: None,
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field(
                "signature_secret",
                &self.signature_secret.as_ref().map(|_| "<set>"),
            )
            .field("signature_max_age", &self.signature_max_age)
            .field("project", &self.project)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error("the callback receiver stopped: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    config: Arc<ReceiverConfig>,
    submitter: Submitter,
    queue: QueueGauge,
    metrics: Metrics,
    readiness: Arc<health::Readiness>,
}

/// How many callbacks are waiting for the ledger (received, not yet committed or failed): the bounded queue
/// of [`Limits::max_queued`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QueueGauge {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl QueueGauge {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Callbacks waiting for the ledger now.
    pub fn queued(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// The most that may wait.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The receiver's routes (`POST {config.path}`, `GET /healthz`, `GET /readyz`, `GET /metrics`), committing
/// through `submitter`. `config.path` must not be one of the other three (axum refuses overlapping routes).
///
/// The callback handler reads the peer's address when the service is made with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as [`serve`] does) and records `unknown` otherwise.
pub fn router(config: ReceiverConfig, submitter: Submitter) -> Router {
    router_with_gauge(config, submitter).0
}

/// [`router`], and the gauge of its queue to the ledger (for metrics, and for tests that wait for a callback
/// to be in flight).
pub fn router_with_gauge(config: ReceiverConfig, submitter: Submitter) -> (Router, QueueGauge) {
    router_with(config, submitter, Metrics::new())
}

/// [`router_with_gauge`] counting into `metrics` (served by `GET /metrics`; keep a clone to set what only
/// the caller knows, such as [`Metrics::set_certificate_expiry`]).
pub fn router_with(
    config: ReceiverConfig,
    submitter: Submitter,
    metrics: Metrics,
) -> (Router, QueueGauge) {
    let path = config.path.clone();
    let queue = QueueGauge::new(config.limits.max_queued);
    let body_timeout = config.limits.body_timeout;
    let router = Router::new()
        .route(&path, post(receive))
        .route("/healthz", get(healthz))
        .route(health::READYZ, get(health::readyz))
        .route(health::METRICS, get(health::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .with_state(AppState {
            config: Arc::new(config),
            submitter,
            queue: queue.clone(),
            metrics,
            readiness: Arc::default(),
        });
    (router, queue)
}

/// 503 with `Retry-After`, so that the service tries again later.
fn busy(message: &'static str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn reply(status: StatusCode, message: &'static str) -> Response {
    (status, format!("{message}\n")).into_response()
}

async fn receive(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id::request_id(&headers);
    let peer = peer.map_or_else(
        || "unknown".to_owned(),
        |Extension(ConnectInfo(p))| p.to_string(),
    );
    let mut answer = handle(&state, &request_id, &peer, &query, &headers, &body).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        answer
            .headers_mut()
            .insert(request_id::REQUEST_ID_HEADER, value);
    }
    answer
}

/// One callback: every log line carries the request id, the archive id (`-` until the body is read and
/// authenticated) and the outcome; never the token, the signature or the password.
async fn handle(
    state: &AppState,
    request_id: &str,
    peer: &str,
    query: &TokenQuery,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    tracing::debug!(
        request_id,
        peer,
        archive = "-",
        outcome = "received",
        bytes = body.len(),
        "callback received"
    );
    state.metrics.received();
    if let Err(why) = check_token(&state.config, query, headers) {
        tracing::warn!(
            request_id,
            peer,
            archive = "-",
            outcome = "rejected: unauthorized",
            http = 401,
            "refused a callback: {why}"
        );
        state.metrics.rejected(Reason::Unauthorized);
        return reply(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    if let Err(why) = check_signature(&state.config, headers, body) {
        tracing::warn!(
            request_id,
            peer,
            archive = "-",
            outcome = "rejected: bad signature",
            http = 401,
            "refused a callback: {why}"
        );
        state.metrics.rejected(Reason::BadSignature);
        return reply(StatusCode::UNAUTHORIZED, "missing or invalid signature");
    }
    let auth = if state.config.signature_secret.is_some() {
        EventAuth::Signature
    } else if state.config.token.is_some() {
        EventAuth::Token
    } else {
        EventAuth::None
    };
    let event = match IncomingEvent::from_callback(body, peer.to_owned()) {
        Ok(event) => event.authenticated(auth),
        Err(e) => {
            tracing::warn!(
                request_id,
                peer,
                archive = "-",
                outcome = "rejected: bad request",
                http = 400,
                bytes = body.len(),
                "bad callback: {e}"
            );
            let answer = match e {
                BodyError::MissingId | BodyError::InvalidArchiveId(_) => e.to_string(),
                _ => "not a JSON callback".to_owned(),
            };
            state.metrics.rejected(Reason::BadRequest);
            return (StatusCode::BAD_REQUEST, format!("{answer}\n")).into_response();
        }
    };
    let archive = event.archive_id().unwrap_or("-").to_owned();
    if let (Some(ours), Some(theirs)) = (
        &state.config.project,
        event.archive().and_then(|a| a.project()),
    ) && theirs.to_string() != *ours
    {
        tracing::warn!(
            request_id,
            peer,
            archive,
            outcome = "rejected: another project",
            http = 403,
            "refused a callback for project {}, not ours ({ours})",
            escape_controls(&theirs.to_string())
        );
        state.metrics.rejected(Reason::OtherProject);
        return reply(StatusCode::FORBIDDEN, "a callback for another project");
    }
    let status = event.archive().map(|a| a.status.to_string());
    let Ok(_queued) = state.queue.permits.clone().try_acquire_owned() else {
        tracing::warn!(
            request_id,
            peer,
            archive,
            outcome = "rejected: queue full",
            http = 503,
            "the queue to the ledger is full ({}): answered 503",
            state.queue.capacity
        );
        state.metrics.rejected(Reason::QueueFull);
        return busy("too many callbacks waiting for the ledger; try again");
    };
    let submitted = std::time::Instant::now();
    let committed = state.submitter.submit(event).await;
    let latency = submitted.elapsed();
    match committed {
        Ok(outcome) => {
            state.metrics.acknowledged(latency);
            let what = match &outcome.archive {
                None => "kept raw",
                Some(a) if a.inserted => "new archive",
                Some(a) if !a.status_applied => "history only (status not applied)",
                Some(a) if a.changed => "updated",
                Some(_) => "unchanged",
            };
            tracing::info!(
                request_id,
                peer,
                archive,
                status = %escape_controls(status.as_deref().unwrap_or("-")),
                outcome = what,
                auth = auth.as_str(),
                http = 200,
                "recorded a callback"
            );
            reply(StatusCode::OK, "recorded")
        }
        Err(e) => {
            state.metrics.commit_failed(latency);
            tracing::error!(
                request_id,
                peer,
                archive,
                outcome = "failed: ledger unavailable",
                http = 503,
                "cannot record a callback: {e}"
            );
            busy("the ledger cannot record it now; try again")
        }
    }
}
