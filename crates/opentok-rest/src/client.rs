//! The async client for the storage and archive endpoints (feature `client`).
//!
//! Every request gets a fresh token ([`crate::auth`]). Calls that are safe to repeat (`GET`, the storage
//! `PUT`, `DELETE`) are retried (driven by `backon`, waiting as [`RetryPolicy`] says: exponential backoff
//! with jitter, or the service's `Retry-After`), and only when the service could not be reached, timed out,
//! or answered 429 or 5xx; starting and stopping an archive are never repeated, since a
//! repeat could start a second recording. Errors are typed ([`Error`]) and carry the service's own message.
//!
//! What the client trusts: it follows no redirect (a 3xx is [`Error::Redirect`], naming where it pointed),
//! so the token header never travels to another origin; it speaks plain `http://` only to a loopback host
//! (`127.0.0.0/8`, `::1`, `localhost`) unless [`ClientBuilder::allow_http`] says otherwise; every request
//! has a connect timeout ([`DEFAULT_CONNECT_TIMEOUT`]) and a total timeout ([`DEFAULT_TIMEOUT`]). Errors
//! never carry a URL's query (see [`crate::redact`]).
//! No secret (API secret, private key, storage keys, tokens) is ever put in `Debug` output, a log line, or
//! an error message.
//!
//! ```no_run
//! use futures_util::TryStreamExt as _;
//! use opentok_rest::{auth::Credentials, Client, model::StartArchiveRequest};
//!
//! # async fn run() -> Result<(), opentok_rest::Error> {
//! let credentials = Credentials::project("47203", std::env::var("OPENTOK_API_SECRET").unwrap_or_default().into());
//! let client = Client::new(credentials, "https://api.opentok.com")?;
//! let archive = client.start_archive(&StartArchiveRequest::new("2_MX40NzIwMzJ-fg")).await?;
//! client.stop_archive(&archive.id).await?;
//! let everything: Vec<_> = client.list_all_archives(None).try_collect().await?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt as _, stream};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::auth::{Credentials, DEFAULT_TOKEN_LIFETIME, checked_lifetime};
mod error;

pub use error::{Error, ServiceError};
use error::{service_error, unreachable_reason};

use crate::model::{
    Archive, ArchiveEncryption, ArchiveLayout, ArchiveList, StartArchiveRequest,
    StorageDestination, StorageTarget, StreamChange,
};

/// The most archives one list call may ask for (the service's limit).
pub const MAX_LIST_COUNT: u32 = 1000;
/// Default limit on a whole request, from connecting to the last byte of the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on establishing the connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

const USER_AGENT: &str = concat!("archivectl-opentok-rest/", env!("CARGO_PKG_VERSION"));
/// When and how often calls that are safe to repeat are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 turns retrying off).
    pub max_retries: u32,
    /// The wait before the first retry; it doubles for each further one (with jitter).
    pub initial_backoff: Duration,
    /// The longest wait, including one the service asks for with `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, waiting about 0.25 s, 0.5 s and 1 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0-based): `initial * 2^retry` capped at `max_backoff`, drawn
    /// uniformly from its upper half so that clients do not retry in lockstep; or what the service asked
    /// for, capped the same way.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_backoff);
        }
        let full = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if jitter_nanos == 0 {
            0
        } else {
            rand::RngExt::random_range(&mut rand::rng(), 0..=jitter_nanos)
        })
    }
}

/// Settings for a [`Client`]: base URL, timeouts, retries, token lifetime.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    credentials: Credentials,
    base_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    token_lifetime: Duration,
    allow_http: bool,
}

impl ClientBuilder {
    /// Accepts a plain `http://` base URL for any host (default: only for loopback hosts, since tokens and
    /// storage secrets would otherwise cross the network unencrypted).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// The service's URL (default: the one the credentials are for, see
    /// [`Credentials::default_base_url`]); a path prefix is kept, so an emulator can be mounted anywhere.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Limit on a whole request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit on connecting (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Retrying of calls that are safe to repeat (default [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Lifetime of each request's token (default 180 s; at most 300 s).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Checks the settings and makes the client.
    pub fn build(self) -> Result<Client, Error> {
        checked_lifetime(self.token_lifetime)?;
        let base_url = parse_base_url(
            self.base_url
                .as_deref()
                .unwrap_or(self.credentials.default_base_url()),
            self.allow_http,
        )?;
        // reqwest is built with rustls but no bundled crypto provider; ring is the workspace's. Installing
        // fails harmlessly when a provider is already installed (by storage-fetch, or an earlier client).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            // A redirect would carry the token header to wherever the service (or someone between) points:
            // none is followed, and a 3xx is an error (`Error::Redirect`).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::Connection(format!(
                    "could not set up the HTTP client: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(Client {
            http,
            credentials: self.credentials,
            base_url,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            retry: self.retry,
            token_lifetime: self.token_lifetime,
        })
    }
}

fn parse_base_url(text: &str, allow_http: bool) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidBaseUrl {
        url: crate::redact::redact_url(text),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Do not repeat the URL: it holds a credential.
        return Err(Error::InvalidBaseUrl {
            url: format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
            reason: "credentials in the URL are not supported (and would end up in logs)".into(),
        });
    }
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("expected an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    if url.scheme() == "http" && !allow_http && !is_loopback(&url) {
        return Err(invalid(
            "plain http:// is only used for a loopback host (the token would cross the network \
             unencrypted): use https://, or allow plain HTTP explicitly",
        ));
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: `127.0.0.0/8`, `::1`, `localhost` or a `*.localhost` name.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// An authenticated client for one project's (or application's) archive and storage endpoints.
///
/// Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    credentials: Credentials,
    base_url: Url,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    token_lifetime: Duration,
}

/// Whether a call may be sent again after a failure whose effect is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    attempts: u32,
}

/// Why one attempt did not give the caller its answer.
enum Failed {
    /// 429 or 5xx: worth another attempt of a call that is safe to repeat; else the answer to report.
    Status {
        answer: Answer,
        retry_after: Option<Duration>,
    },
    /// No (complete) answer: retried when the connection itself failed.
    Transport(reqwest::Error),
    /// Not worth repeating (a redirect, a token that could not be made).
    Final(Error),
}

impl Client {
    /// A client for `credentials` at `base_url` (such as [`crate::auth::OPENTOK_API_URL`], or an emulator's
    /// `http://127.0.0.1:PORT`), with the default timeouts and retries.
    pub fn new(credentials: Credentials, base_url: &str) -> Result<Self, Error> {
        Self::builder(credentials).base_url(base_url).build()
    }

    /// Settings for a client, starting from the defaults.
    pub fn builder(credentials: Credentials) -> ClientBuilder {
        ClientBuilder {
            credentials,
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            allow_http: false,
        }
    }

    /// The service's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The credentials requests are made with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Sets where the service uploads archives and whether (and for which certificate) it encrypts them:
    /// `PUT /v2/project/{id}/archive/storage`.
    ///
    /// A certificate is checked before anything is sent: it must be readable, RSA, and at most 2048 bits
    /// ([`Error::Certificate`] otherwise). A target whose `certificate` is `None` is sent without the field.
    pub async fn set_archive_storage(&self, target: &StorageTarget) -> Result<(), Error> {
        if let Some(encryption @ ArchiveEncryption::Certificate(_)) = &target.certificate {
            encryption.check_service_acceptance()?;
        }
        // The body holds the storage secret: written once into a buffer sized for it (no reallocation
        // leaves a copy), sent from that one buffer on every attempt, wiped when the call ends.
        let mut body = Vec::with_capacity(4096);
        serde_json::to_writer(&mut body, target)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let url = self.url(&["archive", "storage"]);
        let mut secrets = self.known_secrets();
        secrets.push(match &target.destination {
            StorageDestination::S3(s3) => s3.secret_key.expose_secret(),
            StorageDestination::Azure(azure) => azure.account_key.expose_secret(),
        });
        let answer = self
            .send(Method::PUT, url, Some(body), Repeat::Safe)
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(Error::from_status(service_error(
            answer.status,
            &answer.body,
            &secrets,
        )))
    }

    /// Turns encryption off for `target`: the same storage request with `"certificate": null`, as the
    /// service documents.
    pub async fn disable_encryption(&self, target: &StorageTarget) -> Result<(), Error> {
        self.set_archive_storage(&target.without_encryption()).await
    }

    /// Starts recording a session: `POST /v2/project/{id}/archive`. Never retried.
    pub async fn start_archive(&self, request: &StartArchiveRequest) -> Result<Archive, Error> {
        if request.session_id.trim().is_empty() {
            return Err(Error::InvalidArgument(
                "a session id is needed to start an archive".into(),
            ));
        }
        request
            .check()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let body =
            serde_json::to_vec(request).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let answer = self
            .send(
                Method::POST,
                self.url(&["archive"]),
                Some(body),
                Repeat::Never,
            )
            .await?;
        self.parse_answer(answer)
    }

    /// Stops recording: `POST /v2/project/{id}/archive/{archiveId}/stop`. Never retried.
    pub async fn stop_archive(&self, archive_id: &str) -> Result<Archive, Error> {
        check_archive_id(archive_id)?;
        let url = self.url(&["archive", archive_id, "stop"]);
        let answer = self
            .send(Method::POST, url, Some(b"{}".to_vec()), Repeat::Never)
            .await?;
        self.parse_answer(answer)
    }

    /// One archive: `GET /v2/project/{id}/archive/{archiveId}`.
    pub async fn get_archive(&self, archive_id: &str) -> Result<Archive, Error> {
        check_archive_id(archive_id)?;
        let answer = self
            .send(
                Method::GET,
                self.url(&["archive", archive_id]),
                None,
                Repeat::Safe,
            )
            .await?;
        self.parse_answer(answer)
    }

    /// Adds a stream to (or removes one from) an archive in manual stream mode:
    /// `PATCH /v2/project/{id}/archive/{archiveId}/streams`, answered 204. Never retried.
    pub async fn change_archive_streams(
        &self,
        archive_id: &str,
        change: &StreamChange,
    ) -> Result<(), Error> {
        check_archive_id(archive_id)?;
        let body = serde_json::to_vec(change).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let url = self.url(&["archive", archive_id, "streams"]);
        let answer = self
            .send(Method::PATCH, url, Some(body), Repeat::Never)
            .await?;
        self.expect_success(answer)
    }

    /// Changes the layout of a composed archive while it records:
    /// `PUT /v2/project/{id}/archive/{archiveId}/layout`. Checked first ([`ArchiveLayout::check`]).
    pub async fn set_archive_layout(
        &self,
        archive_id: &str,
        layout: &ArchiveLayout,
    ) -> Result<(), Error> {
        check_archive_id(archive_id)?;
        layout
            .check()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let body = serde_json::to_vec(layout).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let url = self.url(&["archive", archive_id, "layout"]);
        let answer = self
            .send(Method::PUT, url, Some(body), Repeat::Safe)
            .await?;
        self.expect_success(answer)
    }

    /// `Ok` for a 2xx answer (whatever its body), the service's error otherwise.
    fn expect_success(&self, answer: Answer) -> Result<(), Error> {
        if answer.status.is_success() {
            return Ok(());
        }
        Err(Error::from_status(service_error(
            answer.status,
            &answer.body,
            &self.known_secrets(),
        )))
    }

    /// Deletes an archive (its record and, in the service's cloud, its file):
    /// `DELETE /v2/project/{id}/archive/{archiveId}`, answered 204.
    ///
    /// If an attempt got no answer and the retry then finds no such archive, the earlier attempt is taken to
    /// have deleted it and the call succeeds.
    pub async fn delete_archive(&self, archive_id: &str) -> Result<(), Error> {
        check_archive_id(archive_id)?;
        let answer = self
            .send(
                Method::DELETE,
                self.url(&["archive", archive_id]),
                None,
                Repeat::Safe,
            )
            .await?;
        if answer.status.is_success()
            || (answer.status == StatusCode::NOT_FOUND && answer.attempts > 1)
        {
            return Ok(());
        }
        Err(Error::from_status(service_error(
            answer.status,
            &answer.body,
            &self.known_secrets(),
        )))
    }

    /// One page of archives, newest first: `GET /v2/project/{id}/archive?offset=&count=[&sessionId=]`.
    /// `count` must be 1 to 1000. The answer's `count` is the total number that match.
    pub async fn list_archives(
        &self,
        offset: u64,
        count: u32,
        session_id: Option<&str>,
    ) -> Result<ArchiveList, Error> {
        if !(1..=MAX_LIST_COUNT).contains(&count) {
            return Err(Error::InvalidArgument(format!(
                "count must be 1 to {MAX_LIST_COUNT}, not {count}"
            )));
        }
        let mut url = self.url(&["archive"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("offset", &offset.to_string());
            query.append_pair("count", &count.to_string());
            if let Some(session_id) = session_id {
                query.append_pair("sessionId", session_id);
            }
        }
        let answer = self.send(Method::GET, url, None, Repeat::Safe).await?;
        self.parse_answer(answer)
    }

    /// Every archive (of one session, if given), page after page of 1000, until as many as the service
    /// counts have been read (or it returns an empty page). An archive that moves to a later page while
    /// paging (because newer ones were created) is yielded once. The stream ends after the first error.
    pub fn list_all_archives<'a>(
        &'a self,
        session_id: Option<&'a str>,
    ) -> impl Stream<Item = Result<Archive, Error>> + Send + 'a {
        struct Paging {
            offset: u64,
            seen: HashSet<String>,
            done: bool,
        }
        let start = Paging {
            offset: 0,
            seen: HashSet::new(),
            done: false,
        };
        stream::try_unfold(start, move |mut paging| async move {
            if paging.done {
                return Ok::<_, Error>(None);
            }
            let page = self
                .list_archives(paging.offset, MAX_LIST_COUNT, session_id)
                .await?;
            let read = page.items.len() as u64;
            paging.offset += read;
            paging.done = read == 0 || paging.offset >= page.count;
            let fresh: Vec<Archive> = page
                .items
                .into_iter()
                .filter(|a| paging.seen.insert(a.id.clone()))
                .collect();
            Ok(Some((fresh, paging)))
        })
        .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
        .try_flatten()
    }

    /// [`Client::list_all_archives`], collected.
    pub async fn collect_all_archives(
        &self,
        session_id: Option<&str>,
    ) -> Result<Vec<Archive>, Error> {
        self.list_all_archives(session_id).try_collect().await
    }

    fn url(&self, tail: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        // `parse_base_url` made sure the URL can be a base, so segments can be pushed; each is
        // percent-encoded, so an id cannot leave its place in the path.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["v2", "project", self.credentials.path_id()])
                .extend(tail);
        }
        url
    }

    fn known_secrets(&self) -> Vec<&str> {
        match &self.credentials {
            Credentials::Project(p) => vec![p.api_secret_for_redaction()],
            Credentials::Application(_) => Vec::new(),
        }
    }

    fn parse_answer<T: DeserializeOwned>(&self, answer: Answer) -> Result<T, Error> {
        if !answer.status.is_success() {
            return Err(Error::from_status(service_error(
                answer.status,
                &answer.body,
                &self.known_secrets(),
            )));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            Error::InvalidResponse(format!(
                "HTTP {} with a body that is not the expected JSON: {e}",
                answer.status.as_u16()
            ))
        })
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        repeat: Repeat,
    ) -> Result<Answer, Error> {
        use backon::Retryable as _;
        let body = WipedBody(body.map(bytes::Bytes::from));
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let retries = match repeat {
            Repeat::Safe => self.retry.max_retries,
            Repeat::Never => 0,
        };
        let policy = self.retry;
        let delays = (0..retries).map(move |retry| policy.delay(retry, None));
        let outcome = (|| self.attempt(&method, &url, &body, &attempts))
            .retry(delays)
            .when(|failure| match failure {
                Failed::Status { .. } => true,
                Failed::Transport(e) => is_transport_failure(e),
                Failed::Final(_) => false,
            })
            // What the service asks for with Retry-After replaces the computed wait (capped the same way).
            .adjust(|failure, wait| match failure {
                Failed::Status {
                    retry_after: Some(asked),
                    ..
                } => wait.map(|_| policy.delay(0, Some(*asked))),
                _ => wait,
            })
            .notify(|failure, wait| {
                let attempt = attempts.load(std::sync::atomic::Ordering::Relaxed);
                match failure {
                    Failed::Status { answer, .. } => {
                        tracing::warn!(%method, path = url.path(), status = answer.status.as_u16(), attempt, ?wait, "retrying")
                    }
                    Failed::Transport(e) => {
                        let error = self.transport_error(e);
                        tracing::warn!(%method, path = url.path(), attempt, error = %error, ?wait, "retrying")
                    }
                    Failed::Final(_) => {}
                }
            })
            .await;
        match outcome {
            Ok(answer) => Ok(answer),
            // 429 or 5xx after the last retry: the caller reports the service's answer.
            Err(Failed::Status { answer, .. }) => Ok(answer),
            Err(Failed::Transport(e)) => Err(self.transport_error(&e)),
            Err(Failed::Final(e)) => Err(e),
        }
    }

    /// One attempt: a fresh token, the request, the whole answer.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: &WipedBody,
        attempts: &std::sync::atomic::AtomicU32,
    ) -> Result<Answer, Failed> {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let auth = self
            .credentials
            .auth_header(self.token_lifetime)
            .map_err(|e| Failed::Final(e.into()))?;
        let mut auth_value = HeaderValue::from_str(auth.value()).map_err(|_| {
            Failed::Final(Error::InvalidArgument("token is not a header value".into()))
        })?;
        auth_value.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/json")
            .header(auth.name(), auth_value);
        if let Some(body) = &body.0 {
            // A clone shares the buffer: no copy of the body per attempt.
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await.map_err(Failed::Transport)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Failed::Final(Error::Redirect {
                status: status.as_u16(),
                location: redirect_origin(url, &response),
            }));
        }
        let retry_after = retry_after(&response);
        let bytes = response.bytes().await.map_err(Failed::Transport)?;
        let answer = Answer {
            status,
            body: bytes.to_vec(),
            attempts: attempt,
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failed::Status {
                answer,
                retry_after,
            });
        }
        tracing::debug!(%method, path = url.path(), status = status.as_u16(), attempt, "answered");
        Ok(answer)
    }

    fn transport_error(&self, error: &reqwest::Error) -> Error {
        let chain = error_chain(error);
        if error.is_connect() {
            return Error::Unreachable {
                url: crate::redact::redact_url(self.base_url.as_str()),
                port: self.base_url.port_or_known_default().unwrap_or(0),
                reason: unreachable_reason(&chain, error.is_timeout(), self.connect_timeout),
            };
        }
        if error.is_timeout() {
            return Error::Timeout(self.timeout);
        }
        let host = self.base_url.host_str().unwrap_or("the service");
        Error::Connection(format!("{host}: {chain}"))
    }
}

/// The origin (scheme, host, port) of a redirect's `Location`, resolved against the request's URL; never
/// its path or query, which may hold a signature.
fn redirect_origin(request_url: &Url, response: &reqwest::Response) -> String {
    let Some(location) = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return "nowhere (no Location header)".into();
    };
    match request_url.join(location) {
        Ok(target) => target.origin().ascii_serialization(),
        Err(_) => "an unreadable Location".into(),
    }
}

/// A request body sent from one shared buffer however many attempts there are, and wiped when the call
/// ends (once the HTTP client has let go of its references; it is not copied per attempt).
struct WipedBody(Option<bytes::Bytes>);

impl Drop for WipedBody {
    fn drop(&mut self) {
        if let Some(body) = self.0.take() {
            wipe(body);
        }
    }
}

/// Zeroes `body` if nothing else holds it; whether it did.
fn wipe(body: bytes::Bytes) -> bool {
    match body.try_into_mut() {
        Ok(mut only) => {
            zeroize::Zeroize::zeroize(&mut only[..]);
            true
        }
        Err(_) => false,
    }
}

/// Failures of the connection itself (as opposed to a bad request or an undecodable answer).
fn is_transport_failure(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// The error and its causes, without the URL that reqwest's text carries (and any URL a cause names
/// redacted).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let top = error.to_string();
    text.push_str(top.split(" for url (").next().unwrap_or(&top));
    while let Some(cause) = current {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        current = cause.source();
    }
    crate::redact::redact_urls_in_text(&text).into_owned()
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn check_archive_id(archive_id: &str) -> Result<(), Error> {
    if archive_id.trim().is_empty() {
        return Err(Error::InvalidArgument("an archive id is needed".into()));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
