//! The client side of the receiver's health check: what a load balancer (or `archivectl doctor`) asks of a
//! running receiver, `GET {url}/healthz`, with a timeout.

use std::time::Duration;

/// Why a receiver could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The HTTP client could not be set up (no TLS provider, say).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// Nothing answered: the address, the port, the TLS handshake or the timeout.
    #[error("{0}")]
    Unreachable(String),
}

/// Asks `GET {base_url}/healthz` and returns the URL asked and the HTTP status the receiver answered
/// (200 from a live `archivectl callbacks serve`).
///
/// ```no_run
/// # async fn f() -> Result<(), archive_receiver::ProbeError> {
/// let (url, status) = archive_receiver::probe_health("http://127.0.0.1:8080", std::time::Duration::from_secs(5)).await?;
/// assert_eq!(status, 200, "{url}");
/// # Ok(()) }
/// ```
pub async fn probe_health(base_url: &str, timeout: Duration) -> Result<(String, u16), ProbeError> {
    let health = format!("{}/healthz", base_url.trim_end_matches('/'));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ProbeError::Client(one_line(&e)))?;
    match client.get(&health).send().await {
        Ok(answer) => Ok((health, answer.status().as_u16())),
        Err(e) => Err(ProbeError::Unreachable(one_line(&e))),
    }
}

/// An error and its causes on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
