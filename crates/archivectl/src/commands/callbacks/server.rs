//! The callback receiver's HTTP side (axum).
//!
//! `POST {path}`: checks the shared token and the signature when configured (401 otherwise), reads at most
//! [`MAX_BODY_BYTES`] (413 beyond), classifies the body (400 for anything that is not a JSON object or is a
//! broken archive callback), hands it to the group-commit writer and answers 200 only once it is committed.
//! If the ledger cannot commit it answers 503, so the service tries again later. `GET /healthz` answers 200.
//! Nothing here decrypts anything: the password is stored as received.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use archive_db::{IncomingEvent, Submitter};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The largest body accepted (1 MiB); a callback is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The header that may carry the shared token instead of `?token=`.
pub const TOKEN_HEADER: &str = "x-archivectl-token";

/// What the server checks.
#[derive(Clone)]
pub struct ServerConfig {
    /// The callback path.
    pub path: String,
    /// The shared token, if one is required.
    pub token: Option<Vec<u8>>,
    /// The signature secret of signed callbacks, if they must be signed.
    pub signature_secret: Option<Vec<u8>>,
    /// How old a signature's `iat` may be, in seconds.
    pub signature_max_age: u64,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field(
                "signature_secret",
                &self.signature_secret.as_ref().map(|_| "<set>"),
            )
            .field("signature_max_age", &self.signature_max_age)
            .finish()
    }
}

#[derive(Clone)]
struct AppState {
    config: Arc<ServerConfig>,
    submitter: Submitter,
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The claims of a signed callback that are checked.
#[derive(Debug, Deserialize)]
struct SignedClaims {
    iat: Option<u64>,
    payload_hash: Option<String>,
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    submitter: Submitter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let path = config.path.clone();
    let app = Router::new()
        .route(&path, post(receive))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState { config, submitter });
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

/// Compares two secrets without leaking where they differ (both are hashed first, so lengths do not
/// leak either).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Why a callback was refused as unauthenticated (logged; the answer is a plain 401).
fn check_token(
    config: &ServerConfig,
    query: &TokenQuery,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let Some(expected) = &config.token else {
        return Ok(());
    };
    let given = query
        .token
        .as_deref()
        .map(str::as_bytes)
        .or_else(|| headers.get(TOKEN_HEADER).map(|v| v.as_bytes()));
    match given {
        None => Err("no token"),
        Some(given) if same_secret(given, expected) => Ok(()),
        Some(_) => Err("wrong token"),
    }
}

fn check_signature(config: &ServerConfig, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let Some(secret) = &config.signature_secret else {
        return Ok(());
    };
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or("unsigned (no Authorization header)")?
        .to_str()
        .map_err(|_| "Authorization header is not text")?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    let claims: SignedClaims =
        opentok_rest::auth::verify_hs256(token, secret).map_err(|e| format!("signature: {e}"))?;
    let expected = hex::encode(Sha256::digest(body));
    match claims.payload_hash {
        Some(hash) if hash.eq_ignore_ascii_case(&expected) => {}
        Some(_) => return Err("signature: payload_hash does not match the body".into()),
        None => return Err("signature: no payload_hash claim".into()),
    }
    let now = opentok_rest::auth::unix_now().map_err(|e| e.to_string())?;
    let iat = claims.iat.ok_or("signature: no iat claim")?;
    if iat > now.saturating_add(opentok_rest::auth::CLOCK_SKEW_LEEWAY_SECS) {
        return Err(format!(
            "signature: issued in the future (iat {iat}, now {now})"
        ));
    }
    if now.saturating_sub(iat) > config.signature_max_age {
        return Err(format!(
            "signature: too old (iat {iat}, now {now}, at most {} s)",
            config.signature_max_age
        ));
    }
    Ok(())
}

async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = check_token(&state.config, &query, &headers) {
        tracing::warn!(%peer, "refused a callback: {why}");
        return reply(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    if let Err(why) = check_signature(&state.config, &headers, &body) {
        tracing::warn!(%peer, "refused a callback: {why}");
        return reply(StatusCode::UNAUTHORIZED, "missing or invalid signature");
    }
    let event = match IncomingEvent::from_callback(&body, peer.to_string()) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(%peer, bytes = body.len(), "bad callback: {e}");
            return reply(StatusCode::BAD_REQUEST, "not a JSON callback");
        }
    };
    let (archive, status) = event
        .archive()
        .map(|a| (a.id.clone(), a.status.to_string()))
        .unzip();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(token: Option<&str>, secret: Option<&str>) -> ServerConfig {
        ServerConfig {
            path: "/cb".into(),
            token: token.map(|t| t.as_bytes().to_vec()),
            signature_secret: secret.map(|s| s.as_bytes().to_vec()),
            signature_max_age: 300,
        }
    }

    #[test]
    fn tokens_come_from_the_query_or_the_header() {
        let c = config(Some("s3cret"), None);
        let mut headers = HeaderMap::new();
        let q = |t: Option<&str>| TokenQuery {
            token: t.map(str::to_owned),
        };
        assert_eq!(check_token(&c, &q(None), &headers), Err("no token"));
        assert_eq!(
            check_token(&c, &q(Some("nope")), &headers),
            Err("wrong token")
        );
        assert_eq!(check_token(&c, &q(Some("s3cret")), &headers), Ok(()));
        headers.insert(TOKEN_HEADER, "s3cret".parse().unwrap());
        assert_eq!(check_token(&c, &q(None), &headers), Ok(()));
        assert_eq!(
            check_token(&config(None, None), &q(None), &HeaderMap::new()),
            Ok(())
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn signatures_are_checked_against_the_body_and_the_clock() {
        let c = config(None, Some("sig-secret"));
        let body = br#"{"id":"a","status":"started"}"#;
        let now = opentok_rest::auth::unix_now().unwrap();
        let sign = |iat: u64, hash: &str, secret: &[u8]| {
            let claims =
                serde_json::json!({"iat": iat, "jti": "j", "iss": "Vonage", "payload_hash": hash});
            let token = opentok_rest::auth::sign_hs256(&claims, secret).unwrap();
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
            h
        };
        let hash = hex::encode(Sha256::digest(body));
        assert_eq!(
            check_signature(&c, &sign(now, &hash, b"sig-secret"), body),
            Ok(())
        );
        assert!(check_signature(&c, &HeaderMap::new(), body).is_err());
        assert!(check_signature(&c, &sign(now, &hash, b"other"), body).is_err());
        assert!(check_signature(&c, &sign(now, &"0".repeat(64), b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now - 301, &hash, b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now + 3600, &hash, b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now, &hash, b"sig-secret"), b"{}").is_err());
    }
}
