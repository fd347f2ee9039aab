//! The archivectl callback receiver as a library: an [axum] [`Router`] that receives the service's archive
//! status callbacks, authenticates them, and commits each to the ledger ([`archive_db`]) before answering.
//!
//! Mount [`router`] in your own axum (or tower) service, or let [`serve`] run it on a listener (what
//! `archivectl callbacks serve` does). Either way:
//!
//! * `POST {path}` checks the shared token and the signature when configured (401 otherwise), reads at most
//!   [`MAX_BODY_BYTES`] (413 beyond), classifies the body (400 for anything that is not a JSON object or is a
//!   broken archive callback), hands it to the ledger's group-commit writer ([`archive_db::GroupWriter`]) and
//!   answers 200 only once it is committed. If the ledger cannot commit it answers 503, so the service tries
//!   again later.
//! * `GET /healthz` answers 200.
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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use archive_db::{BodyError, EventAuth, IncomingEvent, Submitter};
use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use auth::{TokenQuery, check_signature, check_token};

/// The largest body accepted (1 MiB); a callback is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The header that may carry the shared token instead of `?token=`.
pub const TOKEN_HEADER: &str = "x-archivectl-token";

/// What the receiver checks.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The callback path.
    pub path: String,
    /// The shared token, if one is required.
    pub token: Option<Vec<u8>>,
    /// The signature secret of signed callbacks, if they must be signed.
    pub signature_secret: Option<Vec<u8>>,
    /// How old a signature's `iat` may be, in seconds.
    pub signature_max_age: u64,
    /// The project (API key or application id) whose callbacks are expected. When set, an archive callback
    /// naming another project (`projectId`, `partnerId` or `applicationId`) is refused with 403 and nothing
    /// is stored, so a callback never sets the project (and so the object-key prefix) of an archive to one
    /// that is not ours. When unset, the project a callback names is recorded as it is.
    pub project: Option<String>,
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
}

/// The receiver's routes (`POST {config.path}`, `GET /healthz`), committing through `submitter`.
///
/// The callback handler reads the peer's address when the service is made with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as [`serve`] does) and records `unknown` otherwise.
pub fn router(config: ReceiverConfig, submitter: Submitter) -> Router {
    let path = config.path.clone();
    Router::new()
        .route(&path, post(receive))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState {
            config: Arc::new(config),
            submitter,
        })
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ReceiverConfig,
    submitter: Submitter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(config, submitter);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
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
    let peer = peer.map_or_else(
        || "unknown".to_owned(),
        |Extension(ConnectInfo(p))| p.to_string(),
    );
    if let Err(why) = check_token(&state.config, &query, &headers) {
        tracing::warn!(%peer, "refused a callback: {why}");
        return reply(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    if let Err(why) = check_signature(&state.config, &headers, &body) {
        tracing::warn!(%peer, "refused a callback: {why}");
        return reply(StatusCode::UNAUTHORIZED, "missing or invalid signature");
    }
    let auth = if state.config.signature_secret.is_some() {
        EventAuth::Signature
    } else if state.config.token.is_some() {
        EventAuth::Token
    } else {
        EventAuth::None
    };
    let event = match IncomingEvent::from_callback(&body, peer.clone()) {
        Ok(event) => event.authenticated(auth),
        Err(e) => {
            tracing::warn!(%peer, bytes = body.len(), "bad callback: {e}");
            let answer = match e {
                BodyError::MissingId | BodyError::InvalidArchiveId(_) => e.to_string(),
                _ => "not a JSON callback".to_owned(),
            };
            return (StatusCode::BAD_REQUEST, format!("{answer}\n")).into_response();
        }
    };
    if let (Some(ours), Some(theirs)) = (
        &state.config.project,
        event.archive().and_then(|a| a.project()),
    ) && theirs.to_string() != *ours
    {
        tracing::warn!(%peer, archive = ?event.archive_id(), "refused a callback for project {theirs}, not ours ({ours})");
        return reply(StatusCode::FORBIDDEN, "a callback for another project");
    }
    let archive = event.archive_id().map(str::to_owned);
    let status = event.archive().map(|a| a.status.to_string());
    match state.submitter.submit(event).await {
        Ok(outcome) => {
            tracing::debug!(%peer, archive = ?archive, status = ?status, event = outcome.event_id, "recorded");
            reply(StatusCode::OK, "recorded")
        }
        Err(e) => {
            tracing::error!(%peer, archive = ?archive, "cannot record a callback: {e}");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ledger cannot record it now; try again",
            )
        }
    }
}
