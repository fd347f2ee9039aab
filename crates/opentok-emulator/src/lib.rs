//! A local stand-in for the Vonage Video (OpenTok) archiving service, so that encrypted archiving can be run
//! and tested offline: the LocalStack of encrypted archiving.
//!
//! It serves the service's archiving REST API on plain HTTP, with the service's authentication and error
//! answers, and does what the service does with an archive:
//!
//! * **Auth** ([`mod@auth`]): `X-OPENTOK-AUTH` HS256 project tokens (`iss` = the API key, `ist` = `project` in
//!   the payload or the header, `exp` at most 5 minutes after `iat`), 403 with the service's body otherwise;
//!   optionally RS256 `Authorization: Bearer` tokens of Vonage applications.
//! * **Upload target** ([`mod@storage`]): `PUT /v2/project/{apiKey}/archive/storage`, checked as the service
//!   documents it (S3 or Azure, fallback, an RSA certificate of at most 2048 bits, `null` to stop encrypting).
//! * **Archives**: start, stop, get, list (newest first, `count` is the total, by session), delete — under
//!   `/v2/project/{apiKey}` and the older `/v2/partner/{apiKey}`.
//! * **Recording** ([`media`], [`mod@pipeline`]): on stop, the bundled real H.264/AAC clip (or your own) repeated to
//!   the recorded time is encrypted with a fresh AES-256-CBC key and IV (PKCS#7), the key wrapped for the
//!   certificate with RSA-OAEP (SHA-1) into `password`, and uploaded to `{apiKey}/{archiveId}/archive.ts`
//!   (`archive.mp4` unencrypted) in the real S3 or Azure target (a local s3s-fs or Azurite) through
//!   storage-fetch. Status goes `started`, `stopped`, then `uploaded` — or `failed`/`available` by the
//!   target's fallback when the upload fails, the file then served at an expiring signed `url`. Encrypted
//!   archives report duration 0, the service's known issue.
//! * **Callbacks** ([`callbacks`]): each status change POSTed to the callback URL with `"event": "archive"`
//!   and the password, retried with backoff, optionally signed.
//! * **Callback load** ([`load`], the `callback-load` program): many service-like callbacks, with the
//!   service's retries, against one or more receivers, reporting the acknowledged ids and latencies.
//! * **Test hooks** (not part of the service), under `/_emulator/`: `GET state` (everything, secrets left
//!   out), `GET|POST|DELETE hooks` ([`Hooks`]: fail uploads, delay them, drop, duplicate or reorder
//!   callbacks, pretend a recording length, report a wrong `sha256sum`), `PUT projects/{id}/callback` (`{"url": ...}`), `GET health`.
//!   They take no credentials: listen on loopback.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use opentok_emulator::Emulator;
//!
//! let emulator = Emulator::builder()
//!     .project("123456", "0123456789abcdef0123456789abcdef".into())
//!     .callback_url("http://127.0.0.1:8080/archive-status")
//!     .azure_endpoint("http://127.0.0.1:10000/devstoreaccount1")
//!     .start()
//!     .await?;
//! // Listening on loopback, on a free port (nothing is sent to Azure until an archive is uploaded).
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//! // ... point opentok_rest::Client (or an official SDK) at emulator.base_url() ...
//! emulator.stop().await;
//! # Ok(()) }
//! ```
//!
//! Archives' streams (manual stream mode) and layouts can be changed while they record (`composition`).
//! What it does not do: sessions, broadcasts, SIP — anything but archives. Any non-empty
//! session id is accepted. Unencrypted archives are the MPEG-TS clip stored under the name `archive.mp4`
//! (the emulator has no MP4 muxer); individual-stream archives are a ZIP holding one stream's clip.

#![warn(missing_docs)]

mod api;
pub mod auth;
pub mod callbacks;
mod composition;
mod config;
mod download;
mod error;
pub mod load;
pub mod media;
pub mod pipeline;
mod state;
pub mod storage;
pub mod tls;
mod zip;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentok_rest::model::{Archive, ArchiveStatus};
use rand::Rng as _;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use config::{
    CallbackRetry, ConfigError, DEFAULT_DOWNLOAD_URL_TTL, DEFAULT_FALLBACK_RETENTION,
    DEFAULT_LISTEN, DEFAULT_MAX_MEDIA_BYTES, EmulatorConfig, ProjectAuth, ProjectConfig,
    parse_public_key, read_secret_file,
};
pub use state::{ArchiveSnapshot, CallbackRecord, Hooks, ProjectSnapshot, StateSnapshot};

/// Why an emulator did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be served.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The media is not usable MPEG-TS.
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be made.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The callback HTTP client could not be built.
    #[error("cannot build the callback client: {0}")]
    Http(String),
}

/// An archive as the service writes it in JSON: the model's fields, with `name` and `url` written as `null`
/// when there are none, as the service's bodies do.
pub(crate) fn archive_json(archive: &Archive) -> Value {
    let mut value = serde_json::to_value(archive).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for key in ["name", "url"] {
            map.entry(key).or_insert(Value::Null);
        }
    }
    value
}

/// The emulator. Start one with [`Emulator::builder`].
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with no project, listening on `127.0.0.1` on a free port.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            config: EmulatorConfig::default(),
            tls: None,
        }
    }
}

/// Configures an emulator; [`EmulatorBuilder::start`] starts it. Every setting is also a field of
/// [`EmulatorConfig`] (which a TOML file can fill: [`EmulatorConfig::from_toml_file`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), opentok_emulator::StartError> {
/// use std::time::Duration;
/// use opentok_emulator::{CallbackRetry, Emulator};
///
/// let emulator = Emulator::builder()
///     .listen("127.0.0.1:4010".parse().unwrap())
///     .project("123456", "secret".into())
///     .s3_endpoint("http://127.0.0.1:9000")
///     .callback_retry(CallbackRetry { attempts: 3, initial: Duration::from_millis(50), ..Default::default() })
///     .download_url_ttl(Duration::from_secs(60))
///     .start()
///     .await?;
/// assert_eq!(emulator.addr.port(), 4010);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    tls: Option<tls::TlsConfig>,
}

impl EmulatorBuilder {
    /// Serves HTTPS with this certificate and key instead of plain HTTP ([`RunningEmulator::base_url`] is
    /// then `https://...`, and so are download links unless a public URL is set).
    pub fn tls(mut self, tls: tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Starts from a whole configuration (e.g. read from a TOML file).
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Serves an OpenTok project.
    pub fn project(mut self, api_key: impl Into<String>, api_secret: SecretString) -> Self {
        self.config
            .projects
            .push(ProjectConfig::project(api_key, api_secret));
        self
    }

    /// Serves a project or application as configured.
    pub fn project_config(mut self, project: ProjectConfig) -> Self {
        self.config.projects.push(project);
        self
    }

    /// Serves a Vonage application: `Authorization: Bearer` RS256 tokens checked with `public_key`.
    pub fn application(
        mut self,
        application_id: impl Into<String>,
        public_key: rsa::PublicKey,
    ) -> Self {
        self.config
            .projects
            .push(ProjectConfig::application(application_id, public_key));
        self
    }

    /// Listens on `addr` (port 0: a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// The base of download URLs, if clients reach the emulator by another address than it listens on.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.config.public_url = Some(url.into());
        self
    }

    /// Sends callbacks of projects without their own URL to `url`.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.config.callback_url = Some(url.into());
        self
    }

    /// Signs callbacks with a JWT keyed with `secret` (see [`callbacks`]).
    pub fn callback_signature_secret(mut self, secret: SecretString) -> Self {
        self.config.callback_signature_secret = Some(secret);
        self
    }

    /// How callbacks are retried.
    pub fn callback_retry(mut self, retry: CallbackRetry) -> Self {
        self.config.callback_retry = retry;
        self
    }

    /// Sends Azure uploads to this account URL (Azurite: `http://127.0.0.1:PORT/devstoreaccount1`).
    pub fn azure_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.azure_endpoint = Some(url.into());
        self
    }

    /// Sends uploads of S3 targets that name no endpoint to this one instead of Amazon S3.
    pub fn s3_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.s3_endpoint = Some(url.into());
        self
    }

    /// Makes archives of this MPEG-TS clip instead of the bundled one.
    pub fn media(mut self, ts: Vec<u8>) -> Self {
        self.config.media = Some(ts);
        self
    }

    /// Keeps archives stored in the emulator's cloud under `dir` (instead of a temporary directory).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// How long download URLs work.
    pub fn download_url_ttl(mut self, ttl: Duration) -> Self {
        self.config.download_url_ttl = ttl;
        self
    }

    /// How long archives kept in the emulator's cloud stay `available`.
    pub fn fallback_retention(mut self, retention: Duration) -> Self {
        self.config.fallback_retention = retention;
        self
    }

    /// The largest archive made by repeating the clip.
    pub fn max_media_bytes(mut self, bytes: usize) -> Self {
        self.config.max_media_bytes = bytes;
        self
    }

    /// Binds, starts serving in the background (on the current tokio runtime) and returns at once.
    pub async fn start(self) -> Result<RunningEmulator, StartError> {
        let config = self.config;
        let tls = self.tls;
        let scheme = if tls.is_some() { "https" } else { "http" };
        config.validate()?;
        let media = match &config.media {
            Some(ts) => media::Media::from_ts(ts.clone())?,
            None => media::Media::bundled(),
        }
        .with_max_bytes(config.max_media_bytes);
        let (temp_dir, cloud_dir) = match &config.data_dir {
            Some(dir) => {
                let cloud = dir.join("cloud");
                std::fs::create_dir_all(&cloud).map_err(|source| StartError::DataDir {
                    path: dir.clone(),
                    source,
                })?;
                (None, cloud)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("opentok-emulator-")
                    .tempdir()
                    .map_err(|source| StartError::DataDir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let cloud = temp.path().to_path_buf();
                (Some(temp), cloud)
            }
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err: another thread installed one meanwhile, which serves as well.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| StartError::Http(e.to_string()))?;
        let mut download_key = [0u8; 32];
        rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut download_key);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (callback_tx, callback_rx) = mpsc::unbounded_channel();
        let (version, _) = watch::channel(0u64);
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let projects: HashMap<String, ProjectConfig> = config
            .projects
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        let shared = Arc::new(state::Shared {
            config,
            projects,
            media,
            public_url,
            cloud_dir,
            _temp_dir: temp_dir,
            download_key,
            http,
            inner: Mutex::new(state::Inner::default()),
            callback_tx,
            shutdown: stop_rx.clone(),
            version,
        });
        callbacks::start_dispatcher(shared.clone(), callback_rx);
        let app = api::router(shared.clone());
        let mut stop_signal = stop_rx;
        let stopped = async move {
            let _ = stop_signal.wait_for(|stop| *stop).await;
        };
        let server = match tls {
            None => tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "the emulator's server stopped");
                }
            }),
            Some(tls) => tokio::spawn(async move {
                let listener = tls::TlsListener { tcp: listener, tls };
                let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "the emulator's server stopped");
                }
            }),
        };
        tracing::info!(%addr, projects = ?shared.projects.keys().collect::<Vec<_>>(), "opentok-emulator listening");
        Ok(RunningEmulator {
            addr,
            scheme,
            shutdown: Shutdown {
                tx: stop_tx,
                server: Some(server),
            },
            shared,
        })
    }
}

/// Stops a running emulator: [`Shutdown::trigger`] asks, dropping it asks too.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Shutdown {
    /// Asks the server, the uploads and the callback queues to stop.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Asks, then waits (up to 5 seconds, then aborts) for the server to close.
    pub async fn stop(mut self) {
        self.trigger();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.trigger();
    }
}

/// A running emulator.
pub struct RunningEmulator {
    /// Where it listens.
    pub addr: SocketAddr,
    scheme: &'static str,
    /// Stops it.
    pub shutdown: Shutdown,
    shared: Arc<state::Shared>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why [`RunningEmulator::wait_for_status`] returned without the status.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No such archive.
    #[error("no archive {0}")]
    NoSuchArchive(String),
    /// The time ran out; the archive as it last was.
    #[error("archive {} is still {} after {:?}", .archive.id, .archive.status, .waited)]
    Timeout {
        /// The archive as it last was.
        archive: Box<Archive>,
        /// How long was waited.
        waited: Duration,
    },
}

impl RunningEmulator {
    /// The base URL of the API, for clients and SDKs: `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Everything the emulator holds, as `GET /_emulator/state` answers.
    pub fn snapshot(&self) -> StateSnapshot {
        self.shared.snapshot()
    }

    /// The hooks in force.
    pub fn hooks(&self) -> Hooks {
        self.shared.lock().hooks.clone()
    }

    /// Replaces the hooks.
    pub fn set_hooks(&self, hooks: Hooks) {
        self.shared.lock().hooks = hooks;
    }

    /// Sends `project`'s callbacks to `url` from now on (`None`: no callbacks). Returns `false` for an unknown
    /// project.
    pub fn set_callback_url(&self, project: &str, url: Option<String>) -> bool {
        if self.shared.project(project).is_none() {
            return false;
        }
        self.shared
            .lock()
            .callback_urls
            .insert(project.to_owned(), url);
        true
    }

    /// The archive as the API shows it now (deleted ones included).
    pub fn archive(&self, archive_id: &str) -> Option<Archive> {
        let mut inner = self.shared.lock();
        self.shared.expire_old(&mut inner);
        inner.archives.get(archive_id).map(|r| self.shared.view(r))
    }

    /// Waits until the archive has one of `statuses` (e.g. `uploaded`, `available` or `failed` after a stop).
    pub async fn wait_for_status(
        &self,
        archive_id: &str,
        statuses: &[ArchiveStatus],
        timeout: Duration,
    ) -> Result<Archive, WaitError> {
        let mut changes = self.shared.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Some(archive) = self.archive(archive_id) else {
                return Err(WaitError::NoSuchArchive(archive_id.to_owned()));
            };
            if statuses.contains(&archive.status) {
                return Ok(archive);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Err(WaitError::Timeout {
                    archive: Box::new(archive),
                    waited: timeout,
                });
            }
        }
    }

    /// Stops the emulator and waits for its server to close.
    pub async fn stop(self) {
        self.shutdown.stop().await;
    }
}
