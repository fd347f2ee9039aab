//! The client's errors: what the service answered ([`ServiceError`]), and every way a call fails ([`Error`]),
//! with the reading of a refusal's body and of a failed connection.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;

use crate::auth::AuthError;
use crate::model::ServiceErrorBody;

/// How much of a non-JSON error body is quoted in an error.
pub(super) const MAX_QUOTED_BODY: usize = 200;

/// What the service said when it refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP status.
    pub status: u16,
    /// The service's error code (`-1`, `15002`, ...), when its body had one.
    pub code: Option<i64>,
    /// The service's message (or, for a body that is not the service's JSON, the start of the body).
    pub message: String,
    /// The service's longer description, when it gave one.
    pub description: Option<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = self.code {
            write!(f, ", code {code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(description) = self.description.as_deref().filter(|d| *d != self.message) {
            write!(f, " ({description})")?;
        }
        Ok(())
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument the service would refuse anyway (an empty id, a page size over 1000...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The base URL is not an http(s) URL, or carries a user name or password.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL given (without any credentials it carried).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request's token could not be made.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// The storage target's certificate is not one the service takes (not RSA, over 2048 bits, unreadable);
    /// nothing was sent.
    #[error("the certificate was not sent: {0}")]
    Certificate(#[from] archive_core::cert::CertError),
    /// 400: the service found the request invalid.
    #[error("the service rejected the request as invalid ({0})")]
    BadRequest(ServiceError),
    /// 401 or 403: the service did not accept the credentials (wrong API key or secret, expired token,
    /// clock skew, a project without the feature).
    #[error("the service refused the credentials ({0})")]
    Unauthorized(ServiceError),
    /// 404: no such archive (or project).
    #[error("not found ({0})")]
    NotFound(ServiceError),
    /// 409: the archive is not in a state that allows this (stopping an archive that is not recording,
    /// starting one in a session already being recorded...).
    #[error("conflict ({0})")]
    Conflict(ServiceError),
    /// Any other status the call does not expect (429 and 5xx after the retries, for calls that retry).
    #[error("the service failed ({0})")]
    Service(ServiceError),
    /// No complete answer within the configured timeout.
    #[error("no answer from the service within {0:?}")]
    Timeout(Duration),
    /// No connection to the service could be made (connection refused, DNS, TLS, connect timeout).
    #[error("could not reach the service at {url} (port {port}): {reason}")]
    Unreachable {
        /// The base URL (without query or credentials).
        url: String,
        /// The port that was tried.
        port: u16,
        /// What failed and what to check.
        reason: String,
    },
    /// The connection broke after it was made, or the client could not be set up.
    #[error("the connection to the service failed: {0}")]
    Connection(String),
    /// The service answered with a redirect, which is never followed: the request's token (or a storage
    /// secret in its body) must not go to another place than the one configured.
    #[error(
        "the service answered HTTP {status} with a redirect to {location}, which is not followed \
         (credentials are only sent to the configured URL): check the service URL"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// Where it pointed: scheme, host and port only (its path and query are not repeated).
        location: String,
    },
    /// A success status with a body that is not what the call returns.
    #[error("unexpected answer from the service: {0}")]
    InvalidResponse(String),
}

impl Error {
    /// What the service said, for errors that are its answers.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Self::BadRequest(e)
            | Self::Unauthorized(e)
            | Self::NotFound(e)
            | Self::Conflict(e)
            | Self::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, for errors that are the service's answers.
    pub fn status(&self) -> Option<u16> {
        self.service_error().map(|e| e.status)
    }

    pub(super) fn from_status(error: ServiceError) -> Self {
        match error.status {
            400 => Self::BadRequest(error),
            401 | 403 => Self::Unauthorized(error),
            404 => Self::NotFound(error),
            409 => Self::Conflict(error),
            _ => Self::Service(error),
        }
    }
}

/// What a failed connection means and what to check, from the error chain's words (reqwest and hyper
/// expose no structured kind for these; the patterns are pinned by a unit test).
pub(super) fn unreachable_reason(
    chain: &str,
    timed_out: bool,
    connect_timeout: Duration,
) -> String {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "connection refused: nothing listens there: wrong host or port, or the server is down"
            .into()
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
        || lower.contains("nodename nor servname")
    {
        "DNS lookup failed: no such host: check the host name in the service URL".into()
    } else if timed_out || lower.contains("timed out") {
        format!(
            "no connection within {connect_timeout:?}: a firewall drops the traffic, or the host or port is wrong"
        )
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!(
            "TLS failed ({}): check that the URL is the service's, and the system's CA certificates (a private CA: \
             SSL_CERT_FILE=ca.pem)",
            chain
                .split_once("(Connect): ")
                .map_or(chain, |(_, cause)| cause)
        )
    } else if lower.contains("network is unreachable") || lower.contains("no route to host") {
        "no route to the host: check the network and the host name".into()
    } else {
        format!("{chain}: check the service URL and that the service is up")
    }
}

/// The service's error from a refusal's body, with anything equal to one of `secrets` blanked out.
pub(super) fn service_error(status: StatusCode, body: &[u8], secrets: &[&str]) -> ServiceError {
    let redact = |text: String| {
        secrets
            .iter()
            .filter(|s| s.len() >= 4)
            .fold(text, |text, secret| text.replace(secret, "[REDACTED]"))
    };
    let fallback_message = || {
        let text = String::from_utf8_lossy(body);
        let text: String = text
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_QUOTED_BODY)
            .collect();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text
        }
    };
    match serde_json::from_slice::<ServiceErrorBody>(body) {
        Ok(parsed) => {
            let message = parsed
                .message
                .clone()
                .or_else(|| parsed.description.clone())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
            ServiceError {
                status: status.as_u16(),
                code: parsed.code,
                message: redact(message),
                description: parsed.description.map(redact),
            }
        }
        Err(_) => ServiceError {
            status: status.as_u16(),
            code: None,
            message: redact(fallback_message()),
            description: None,
        },
    }
}
