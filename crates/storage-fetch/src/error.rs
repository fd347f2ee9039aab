//! Errors, each naming what the user has to fix, and how `object_store`'s errors are sorted into them.
//!
//! `object_store` reports HTTP failures by status only (403 → `PermissionDenied`, 404 → `NotFound`, ...), with
//! the service's error body in the message. A wrong secret, a missing bucket and a missing object must be told
//! apart, so [`classify`] reads the error codes S3 and Azure put in that body (`SignatureDoesNotMatch`,
//! `NoSuchBucket`, `ContainerNotFound`, ...) and the transport error kinds (connection refused, DNS).
//! A HEAD response has no body: the store repeats a failed HEAD as a one-byte GET to learn the code.
//!
//! Structure first, text only where nothing else exists: the status comes from `object_store`'s variants
//! (`NotFound`, `PermissionDenied`, `Unauthenticated`, `Precondition`, ...) and the transport failure from
//! its `HttpError::kind()`. `object_store` 0.14 keeps the error that holds the status and body of other
//! answers (`RetryError`) crate-private, so for those the status (`status code: NNN`), the S3/Azure error
//! codes and the transport details (connection refused, DNS, TLS) are read from the text; each pattern is
//! pinned by a test below.

use std::error::Error as StdError;
use std::fmt;

use object_store::client::{HttpError, HttpErrorKind};

/// Anything that went wrong talking to a storage target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target's settings are unusable (empty names, a bad endpoint URL, a key that is not base64).
    #[error("invalid storage target: {0}")]
    InvalidTarget(String),

    /// The caller asked for something impossible (an offset past the end, an invalid key, zero part size).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The store rejected the credentials themselves (`SignatureDoesNotMatch`, `InvalidAccessKeyId`,
    /// `AuthenticationFailed`, or a bare 401/403 that a diagnostic GET confirmed).
    #[error(
        "{service} rejected the credentials for {kind} {container} at {endpoint} ({code}): check the {hint}{detail}",
        hint = credentials_hint(service),
        detail = detail_suffix(detail)
    )]
    Credentials {
        /// `"S3"` or `"Azure"`.
        service: &'static str,
        /// `"bucket"` or `"container"`.
        kind: &'static str,
        /// The bucket or container.
        container: String,
        /// The endpoint.
        endpoint: String,
        /// The store's error code, or the HTTP status.
        code: &'static str,
        /// More from the store's message, if any.
        detail: String,
    },

    /// The credentials were accepted but are not allowed to do this (`AccessDenied`,
    /// `AuthorizationPermissionMismatch`).
    #[error(
        "{service} denied {operation} on {location} ({code}): the credentials were accepted but lack this permission{detail}",
        detail = detail_suffix(detail)
    )]
    AccessDenied {
        /// `"S3"` or `"Azure"`.
        service: &'static str,
        /// What was attempted (`"read"`, `"write"`, `"list"`, `"delete"`).
        operation: &'static str,
        /// `bucket B key K`.
        location: String,
        /// The store's error code, or the HTTP status.
        code: &'static str,
        /// More from the store's message, if any.
        detail: String,
    },

    /// The bucket or container does not exist (`NoSuchBucket`, `ContainerNotFound`).
    #[error("{kind} {container} does not exist at {endpoint}")]
    ContainerNotFound {
        /// `"bucket"` or `"container"`.
        kind: &'static str,
        /// The bucket or container.
        container: String,
        /// The endpoint.
        endpoint: String,
    },

    /// The endpoint could not be reached at all: connection refused, DNS failure, connect timeout.
    #[error("cannot reach the {service} endpoint {endpoint}: {reason}")]
    Unreachable {
        /// `"S3"` or `"Azure"`.
        service: &'static str,
        /// The endpoint.
        endpoint: String,
        /// What the network said.
        reason: String,
    },

    /// The object (or, from [`Store::locate`](crate::Store::locate), none of an archive's objects) exists.
    #[error("{}", not_found_message(archive_id.as_deref(), kind, container, key, also_tried))]
    NotFound {
        /// The archive looked for, when the lookup was [`Store::locate`](crate::Store::locate).
        archive_id: Option<String>,
        /// `"bucket"` or `"container"`.
        kind: &'static str,
        /// The bucket or container.
        container: String,
        /// The (first) key looked at.
        key: String,
        /// The other keys looked at, in order.
        also_tried: Vec<String>,
    },

    /// The object was replaced or deleted during a download, or since a download that is being resumed began:
    /// the bytes already received belong to another version.
    #[error("object {key} changed during the download ({detail}); the download must start over")]
    ObjectChanged {
        /// The key.
        key: String,
        /// What differed.
        detail: String,
    },

    /// Reading the data to upload failed.
    #[error("cannot read the data to upload to {key}: {source}")]
    Source {
        /// The key being written.
        key: String,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },

    /// Any other failure of the store.
    #[error("{service} {operation} of {location} failed: {source}")]
    Storage {
        /// `"S3"` or `"Azure"`.
        service: &'static str,
        /// What was attempted.
        operation: &'static str,
        /// `bucket B key K`.
        location: String,
        /// The HTTP status, if the store answered.
        status: Option<u16>,
        /// Whether trying again may help (5xx, 429, timeouts, a dropped connection, a short body).
        transient: bool,
        /// The underlying error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl Error {
    /// Whether trying the same request again may succeed: the network failed or the server was busy.
    /// Wrong credentials, missing buckets or objects and changed objects are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Storage { transient, .. } => *transient,
            _ => false,
        }
    }

    /// A short, stable name of the variant, for logs and reports (`"credentials"`, `"not-found"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidTarget(_) => "invalid-target",
            Error::InvalidRequest(_) => "invalid-request",
            Error::Credentials { .. } => "credentials",
            Error::AccessDenied { .. } => "access-denied",
            Error::ContainerNotFound { .. } => "container-not-found",
            Error::Unreachable { .. } => "unreachable",
            Error::NotFound { .. } => "not-found",
            Error::ObjectChanged { .. } => "object-changed",
            Error::Source { .. } => "source",
            Error::Storage { .. } => "storage",
        }
    }
}

fn credentials_hint(service: &str) -> &'static str {
    if service == "Azure" {
        "account name and account key"
    } else {
        "access key id and secret access key (and the region)"
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" — {detail}")
    }
}

fn not_found_message(
    archive_id: Option<&str>,
    kind: &str,
    container: &str,
    key: &str,
    also_tried: &[String],
) -> String {
    let what = match archive_id {
        Some(id) => format!("archive {id}"),
        None => "object".to_string(),
    };
    let mut msg = format!("{what} not found in {kind} {container} at {key}");
    if !also_tried.is_empty() {
        msg.push_str(&format!(" (also tried {})", also_tried.join(", ")));
    }
    msg
}

/// What the failed request was, for the messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub service: &'static str,
    pub kind: &'static str,
    pub container: &'a str,
    pub endpoint: &'a str,
    pub operation: &'static str,
    pub key: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn location(&self) -> String {
        if self.key.is_empty() {
            format!("{} {}", self.kind, self.container)
        } else {
            format!("{} {} key {}", self.kind, self.container, self.key)
        }
    }

    pub(crate) fn not_found(&self) -> Error {
        Error::NotFound {
            archive_id: None,
            kind: self.kind,
            container: self.container.to_string(),
            key: self.key.to_string(),
            also_tried: Vec::new(),
        }
    }

    pub(crate) fn container_not_found(&self) -> Error {
        Error::ContainerNotFound {
            kind: self.kind,
            container: self.container.to_string(),
            endpoint: self.endpoint.to_string(),
        }
    }
}

/// Error codes of S3 and Azure that mean "these credentials are wrong".
const CREDENTIAL_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthenticationFailed",
    "InvalidSecurity",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
    "InvalidAuthenticationInfo",
    "NoAuthenticationInformation",
    // S3 for an access key id it does not know (s3s-fs; AWS says InvalidAccessKeyId).
    "NotSignedUp",
];
/// Codes that mean "valid credentials, not allowed".
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AuthorizationPermissionMismatch",
    "AuthorizationFailure",
    "AuthorizationResourceTypeMismatch",
    "AllAccessDisabled",
];
const CONTAINER_CODES: &[&str] = &["NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"];
const OBJECT_CODES: &[&str] = &["NoSuchKey", "BlobNotFound"];

/// What a failed request looked like, from whichever client made it.
#[derive(Debug)]
pub(crate) struct Symptom {
    /// The HTTP status, if there was a response.
    pub status: Option<u16>,
    /// The transport failure, if there was no response.
    pub transport: Option<HttpErrorKind>,
    /// The whole error chain as text (contains the store's error body).
    pub text: String,
    /// `object_store` said "not found" / "precondition failed".
    pub not_found: bool,
    pub precondition: bool,
}

impl Symptom {
    pub(crate) fn of(err: &object_store::Error) -> Self {
        let text = chain_text(err);
        let mut transport = None;
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(h) = e.downcast_ref::<HttpError>() {
                transport = Some(h.kind());
                break;
            }
            source = e.source();
        }
        let status = match err {
            object_store::Error::NotFound { .. } => Some(404),
            object_store::Error::PermissionDenied { .. } => Some(403),
            object_store::Error::Unauthenticated { .. } => Some(401),
            object_store::Error::Precondition { .. } => Some(412),
            object_store::Error::AlreadyExists { .. } => Some(409),
            object_store::Error::NotModified { .. } => Some(304),
            _ => status_in_text(&text),
        };
        // A transport error and a status both in the text (a body that failed to read): the status wins.
        let transport = if status.is_some() && transport == Some(HttpErrorKind::Decode) {
            None
        } else {
            transport
        };
        Self {
            status,
            transport,
            not_found: matches!(err, object_store::Error::NotFound { .. }),
            precondition: matches!(err, object_store::Error::Precondition { .. }),
            text,
        }
    }

    pub(crate) fn http(status: u16, body: &str) -> Self {
        Self {
            status: Some(status),
            transport: None,
            text: format!("HTTP {status}: {body}"),
            not_found: status == 404,
            precondition: status == 412,
        }
    }

    /// The first known error code in the text.
    fn code_among(&self, codes: &[&'static str]) -> Option<&'static str> {
        codes.iter().copied().find(|c| self.text.contains(c))
    }

    /// Whether only a diagnostic request (with a body) can tell what this is: a bodyless 401/403/404/400.
    pub(crate) fn needs_diagnosis(&self) -> bool {
        matches!(self.status, Some(400 | 401 | 403 | 404))
            && self.code_among(CREDENTIAL_CODES).is_none()
            && self.code_among(DENIED_CODES).is_none()
            && self.code_among(CONTAINER_CODES).is_none()
            && self.code_among(OBJECT_CODES).is_none()
    }
}

/// The full chain of an error, `a: b: c`, without repeating a message its source already says.
pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// `object_store` words a status as "... status code: 503 Service Unavailable ...".
fn status_in_text(text: &str) -> Option<u16> {
    let idx = text.find("status code: ")? + "status code: ".len();
    text.get(idx..idx + 3)?.parse().ok()
}

/// A short reason for a transport failure: "connection refused", "DNS lookup of HOST failed", ...
fn transport_reason(text: &str, kind: HttpErrorKind) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "connection refused (nothing listens there: wrong host or port, or the server is down)"
            .into()
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no such host")
        || lower.contains("nodename nor servname")
    {
        "DNS lookup failed (no such host: check the endpoint's host name)".into()
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!("TLS failed: {}", last_part(text))
    } else if kind == HttpErrorKind::Timeout {
        "timed out".into()
    } else {
        last_part(text).to_string()
    }
}

fn last_part(text: &str) -> &str {
    text.rsplit(": ").next().unwrap_or(text)
}

/// A compact excerpt of an S3/Azure error body: its `<Message>`, if any.
fn message_in(text: &str) -> String {
    let start = text.find("<Message>").map(|i| i + "<Message>".len());
    let end = text.find("</Message>");
    match (start, end) {
        (Some(s), Some(e)) if e > s => text[s..e].split_whitespace().collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

/// Sorts a failure into the variant that says what to fix.
pub(crate) fn classify(
    symptom: Symptom,
    ctx: &Ctx<'_>,
    source: Box<dyn StdError + Send + Sync>,
) -> Error {
    if let Some(kind) = symptom.transport
        && symptom.status.is_none()
        && matches!(
            kind,
            HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Timeout
        )
        && (kind != HttpErrorKind::Timeout || symptom.text.to_ascii_lowercase().contains("connect"))
    {
        return Error::Unreachable {
            service: ctx.service,
            endpoint: ctx.endpoint.to_string(),
            reason: transport_reason(&symptom.text, kind),
        };
    }
    // Azurite answers a bad SharedKey signature with AuthorizationFailure "Server failed to authenticate the
    // request" (Azure itself says AuthenticationFailed); AuthorizationFailure otherwise means "not allowed".
    let credential_code = symptom.code_among(CREDENTIAL_CODES).or_else(|| {
        (symptom.text.contains("AuthorizationFailure")
            && symptom.text.contains("failed to authenticate"))
        .then_some("AuthorizationFailure")
    });
    if let Some(code) = credential_code {
        let mut detail = message_in(&symptom.text);
        if code == "AuthorizationHeaderMalformed" && detail.is_empty() {
            detail = "often a wrong region".into();
        }
        return Error::Credentials {
            service: ctx.service,
            kind: ctx.kind,
            container: ctx.container.to_string(),
            endpoint: ctx.endpoint.to_string(),
            code,
            detail,
        };
    }
    if symptom.code_among(CONTAINER_CODES).is_some() {
        return ctx.container_not_found();
    }
    if let Some(code) = symptom.code_among(DENIED_CODES) {
        return Error::AccessDenied {
            service: ctx.service,
            operation: ctx.operation,
            location: ctx.location(),
            code,
            detail: message_in(&symptom.text),
        };
    }
    if symptom.code_among(OBJECT_CODES).is_some() || symptom.not_found {
        return ctx.not_found();
    }
    match symptom.status {
        Some(401) => Error::Credentials {
            service: ctx.service,
            kind: ctx.kind,
            container: ctx.container.to_string(),
            endpoint: ctx.endpoint.to_string(),
            code: "HTTP 401",
            detail: String::new(),
        },
        Some(403) => Error::AccessDenied {
            service: ctx.service,
            operation: ctx.operation,
            location: ctx.location(),
            code: "HTTP 403",
            detail: "the server gave no reason: the credentials are wrong or lack this permission"
                .into(),
        },
        status => {
            let transient = match status {
                Some(s) => s >= 500 || s == 429 || s == 408,
                None => matches!(
                    symptom.transport,
                    Some(
                        HttpErrorKind::Connect
                            | HttpErrorKind::Request
                            | HttpErrorKind::Timeout
                            | HttpErrorKind::Interrupted
                    )
                ),
            } || symptom.text.contains("InternalError")
                || symptom.text.contains("SlowDown")
                || symptom.text.contains("ServerBusy");
            Error::Storage {
                service: ctx.service,
                operation: ctx.operation,
                location: ctx.location(),
                status,
                transient,
                source: without_url_queries(source),
            }
        }
    }
}

/// `source` as it is, unless its text names a URL with a query (a SAS token or a presigned signature, which
/// `object_store` and reqwest repeat in their messages): then the same chain as one message, URLs redacted.
fn without_url_queries(source: Box<dyn StdError + Send + Sync>) -> Box<dyn StdError + Send + Sync> {
    match opentok_rest::redact::redact_urls_in_text(&chain_text(&*source)) {
        std::borrow::Cow::Borrowed(_) => source,
        std::borrow::Cow::Owned(text) => Box::new(Message(text)),
    }
}

/// A plain message as an error source.
#[derive(Debug)]
pub(crate) struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            service: "S3",
            kind: "bucket",
            container: "archives",
            endpoint: "http://127.0.0.1:9",
            operation: "read",
            key: "1/a/archive.ts",
        }
    }

    fn class(status: u16, body: &str) -> Error {
        classify(
            Symptom::http(status, body),
            &ctx(),
            Box::new(Message(body.into())),
        )
    }

    #[test]
    fn s3_and_azure_codes_are_sorted() {
        let e = class(
            403,
            "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>",
        );
        assert_eq!(e.kind(), "credentials");
        let msg = e.to_string();
        assert!(
            msg.contains("SignatureDoesNotMatch") && msg.contains("secret access key"),
            "{msg}"
        );
        assert!(
            msg.contains("The request signature we calculated does not match"),
            "{msg}"
        );
        assert_eq!(
            class(403, "<Code>InvalidAccessKeyId</Code>").kind(),
            "credentials"
        );
        assert_eq!(
            class(403, "<Code>AuthenticationFailed</Code>").kind(),
            "credentials"
        );
        assert_eq!(
            class(403, "<Code>AccessDenied</Code>").kind(),
            "access-denied"
        );
        assert_eq!(
            class(404, "<Code>NoSuchBucket</Code>").kind(),
            "container-not-found"
        );
        assert_eq!(
            class(404, "<Code>ContainerNotFound</Code>").kind(),
            "container-not-found"
        );
        assert_eq!(class(404, "<Code>NoSuchKey</Code>").kind(), "not-found");
        assert_eq!(class(404, "<Code>BlobNotFound</Code>").kind(), "not-found");
        assert_eq!(class(404, "").kind(), "not-found");
        assert_eq!(class(401, "").kind(), "credentials");
        assert_eq!(class(403, "").kind(), "access-denied");
        let e = class(503, "<Code>SlowDown</Code>");
        assert!(e.is_transient() && e.kind() == "storage");
        assert!(class(500, "").is_transient());
        assert!(!class(400, "<Code>InvalidArgument</Code>").is_transient());
        assert!(!class(403, "<Code>SignatureDoesNotMatch</Code>").is_transient());
    }

    #[test]
    fn server_specific_credential_codes() {
        assert_eq!(class(403, "<Code>NotSignedUp</Code>").kind(), "credentials");
        let azurite = "<Code>AuthorizationFailure</Code><Message>Server failed to authenticate the request.</Message>";
        assert_eq!(class(403, azurite).kind(), "credentials");
        let firewall =
            "<Code>AuthorizationFailure</Code><Message>This request is not authorized.</Message>";
        assert_eq!(class(403, firewall).kind(), "access-denied");
    }

    #[test]
    fn bodyless_statuses_need_diagnosis() {
        assert!(Symptom::http(404, "").needs_diagnosis());
        assert!(Symptom::http(403, "").needs_diagnosis());
        assert!(!Symptom::http(403, "<Code>AccessDenied</Code>").needs_diagnosis());
        assert!(!Symptom::http(500, "").needs_diagnosis());
    }

    #[test]
    fn not_found_names_the_bucket_and_every_key() {
        let e = Error::NotFound {
            archive_id: Some("abc".into()),
            kind: "bucket",
            container: "B".into(),
            key: "1/abc/archive.ts".into(),
            also_tried: vec!["1/abc/archive.mp4".into(), "1/abc/archive.zip".into()],
        };
        assert_eq!(
            e.to_string(),
            "archive abc not found in bucket B at 1/abc/archive.ts (also tried 1/abc/archive.mp4, 1/abc/archive.zip)"
        );
        assert_eq!(
            ctx().not_found().to_string(),
            "object not found in bucket archives at 1/a/archive.ts"
        );
    }

    #[test]
    fn url_queries_never_reach_the_message() {
        let body = "Generic error: Error performing GET \
                    https://acct.blob.core.windows.net/c/1/a/archive.ts?sv=2022&sig=SECRETSIG in 3ms: \
                    HTTP status server error (500 Internal Server Error) for url \
                    (https://acct.blob.core.windows.net/c/1/a/archive.ts?sv=2022&sig=SECRETSIG)";
        let e = class(500, body);
        let mut chain = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            chain.push_str(&s.to_string());
            source = s.source();
        }
        assert!(!chain.contains("SECRETSIG"), "{chain}");
        assert!(
            chain.contains("https://acct.blob.core.windows.net/c/1/a/archive.ts"),
            "{chain}"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn status_and_transport_reasons_are_read_from_text() {
        assert_eq!(
            status_in_text("Server returned non-2xx status code: 503 Service Unavailable: x"),
            Some(503)
        );
        assert_eq!(status_in_text("nothing"), None);
        assert!(
            transport_reason(
                "error sending request: tcp connect error: Connection refused (os error 111)",
                HttpErrorKind::Connect
            )
            .starts_with("connection refused")
        );
        assert!(
            transport_reason(
                "client error (Connect): dns error: failed to lookup address information",
                HttpErrorKind::Connect
            )
            .starts_with("DNS lookup failed")
        );
        assert_eq!(
            message_in("<Error><Message>a\n  b</Message></Error>"),
            "a b"
        );
        for dns in [
            "dns error: Name or service not known",
            "No such host is known",
            "nodename nor servname provided",
        ] {
            assert!(
                transport_reason(dns, HttpErrorKind::Connect).starts_with("DNS lookup failed"),
                "{dns}"
            );
        }
        assert!(
            transport_reason(
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                HttpErrorKind::Connect
            )
            .starts_with("TLS failed")
        );
        assert_eq!(
            transport_reason("operation timed out", HttpErrorKind::Timeout),
            "timed out"
        );
    }
}
