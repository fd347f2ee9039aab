//! `GET /readyz` (the ledger can commit now: a probe through the group-commit writer, answered in turn with
//! the callbacks) and `GET /metrics` (the Prometheus text format, [`crate::metrics`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The readiness path.
pub(crate) const READYZ: &str = "/readyz";
/// The metrics path.
pub(crate) const METRICS: &str = "/metrics";

/// How long `/readyz` waits for the ledger's answer before saying it is not ready.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the last probe said ready, so that a change is logged once and not at every probe.
#[derive(Debug)]
pub(crate) struct Readiness(AtomicBool);

impl Default for Readiness {
    fn default() -> Self {
        Self(AtomicBool::new(true))
    }
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let probed = tokio::time::timeout(PROBE_TIMEOUT, state.submitter.probe()).await;
    let why = match probed {
        Ok(Ok(())) => {
            if !state.readiness.0.swap(true, Ordering::Relaxed) {
                tracing::info!(outcome = "ready", "ready again: the ledger commits");
            }
            return (StatusCode::OK, "ready\n").into_response();
        }
        Ok(Err(e)) => format!("the ledger cannot commit: {e}"),
        Err(_) => format!(
            "the ledger did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ),
    };
    if state.readiness.0.swap(false, Ordering::Relaxed) {
        tracing::warn!(outcome = "not ready", "not ready: {why}");
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("not ready: {why}\n"),
    )
        .into_response()
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.encode(&state.queue),
    )
        .into_response()
}
