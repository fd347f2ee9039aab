//! What an emulator serves: its projects (API keys and secrets, Vonage applications and their public keys),
//! where it listens, where it sends callbacks, which storage endpoints stand in for the cloud, which media it
//! records — built in code ([`EmulatorConfig`], or [`crate::Emulator::builder`]) or read from a TOML file
//! ([`EmulatorConfig::from_toml_file`]).
//!
//! A config file (every key optional but at least one project or application):
//!
//! ```toml
//! listen = "127.0.0.1:4010"
//! callback_url = "http://127.0.0.1:8080/archive-status"   # default for every project
//! azure_endpoint = "http://127.0.0.1:10000/devstoreaccount1" # Azurite stands in for Azure
//! s3_endpoint = "http://127.0.0.1:9000"                    # for S3 targets that name no endpoint
//! media = "clip.ts"                                        # instead of the bundled clip
//! data_dir = "emulator-data"                               # fallback copies of archives
//! download_url_ttl_secs = 600
//! fallback_retention_secs = 259200
//! max_media_bytes = 67108864
//! callback_signature_secret_file = "callback-secret.txt"
//!
//! [callback_retry]
//! attempts = 6
//! initial_ms = 200
//! max_ms = 10000
//! timeout_ms = 10000
//!
//! [[project]]
//! api_key = "123456"
//! api_secret_file = "secret.txt"      # or api_secret_env = "NAME"; api_secret = "..." also works
//! callback_url = "http://127.0.0.1:8081/cb"
//!
//! [[application]]
//! application_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
//! public_key_file = "application-public.pem"
//! ```
//!
//! Relative paths are relative to the file's directory. Secret files are read up to their first newline.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rsa::PublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The default address: loopback, a free port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
/// How long a download URL of an archive kept in the emulator's cloud works: 10 minutes, as the service's do.
pub const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(600);
/// How long an archive kept in the emulator's cloud stays `available`: 72 hours, as the service keeps them.
pub const DEFAULT_FALLBACK_RETENTION: Duration = Duration::from_secs(72 * 3600);
/// The largest archive the emulator makes by repeating its clip to the recorded time (about 34 minutes of the
/// bundled clip). Longer recordings are cut to this size.
pub const DEFAULT_MAX_MEDIA_BYTES: usize = 64 << 20;

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is not a config.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is missing, contradictory or unusable.
    #[error("{0}")]
    Invalid(String),
}

/// How requests for one project are authenticated.
#[derive(Clone)]
pub enum ProjectAuth {
    /// An OpenTok project: HS256 tokens in `X-OPENTOK-AUTH`, signed with this API secret.
    Secret(SecretString),
    /// A Vonage application: RS256 tokens in `Authorization: Bearer`, verified with this public key.
    ApplicationKey(Box<PublicKey>),
}

impl fmt::Debug for ProjectAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([REDACTED])"),
            Self::ApplicationKey(_) => f.write_str("ApplicationKey(..)"),
        }
    }
}

/// One project the emulator serves: `/v2/project/{id}/...` with `{id}` the API key (or the application id).
///
/// ```
/// use opentok_emulator::ProjectConfig;
/// let project = ProjectConfig::project("123456", "0123456789abcdef".into())
///     .with_callback_url("http://127.0.0.1:8080/cb");
/// assert_eq!(project.id, "123456");
/// assert!(!format!("{project:?}").contains("0123456789abcdef"));
/// ```
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// The API key or application id.
    pub id: String,
    /// How its requests are authenticated.
    pub auth: ProjectAuth,
    /// Where its archive status callbacks go (else [`EmulatorConfig::callback_url`]).
    pub callback_url: Option<String>,
}

impl ProjectConfig {
    /// An OpenTok project with its API key and secret.
    pub fn project(api_key: impl Into<String>, api_secret: SecretString) -> Self {
        Self {
            id: api_key.into(),
            auth: ProjectAuth::Secret(api_secret),
            callback_url: None,
        }
    }

    /// A Vonage application with its id and the public half of its key.
    pub fn application(application_id: impl Into<String>, public_key: PublicKey) -> Self {
        Self {
            id: application_id.into(),
            auth: ProjectAuth::ApplicationKey(Box::new(public_key)),
            callback_url: None,
        }
    }

    /// Sends this project's callbacks to `url`.
    pub fn with_callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// `"project"` or `"application"`.
    pub fn kind(&self) -> &'static str {
        match self.auth {
            ProjectAuth::Secret(_) => "project",
            ProjectAuth::ApplicationKey(_) => "application",
        }
    }
}

/// How callbacks are retried when the receiver fails (no answer, or not 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackRetry {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Time allowed for one try.
    pub timeout: Duration,
}

impl Default for CallbackRetry {
    fn default() -> Self {
        Self {
            attempts: 6,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

impl CallbackRetry {
    /// The wait before try `n + 2` (after `n + 1` failures).
    pub fn delay(&self, failures_before: u32) -> Duration {
        self.initial
            .saturating_mul(2u32.saturating_pow(failures_before.min(20)))
            .min(self.max)
    }

    /// The waits between tries, in order: `attempts - 1` of them (the schedule `backon` retries on).
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + 'static {
        let retry = *self;
        (0..retry.attempts.max(1) - 1).map(move |n| retry.delay(n))
    }
}

/// Everything an emulator is started with.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free one ([`crate::RunningEmulator::addr`] tells which).
    pub listen: SocketAddr,
    /// The base URL of download links (`url` of `available` archives); `http://{listen address}` if `None`.
    pub public_url: Option<String>,
    /// The projects and applications served.
    pub projects: Vec<ProjectConfig>,
    /// Where callbacks go for projects that do not name their own URL; none are sent without one.
    pub callback_url: Option<String>,
    /// If set, callbacks carry `Authorization: Bearer <JWT>`, HS256 with this secret (see [`crate::callbacks`]).
    pub callback_signature_secret: Option<SecretString>,
    /// How callbacks are retried.
    pub callback_retry: CallbackRetry,
    /// The Azure account URL uploads to Azure targets go to (Azurite: `http://127.0.0.1:PORT/devstoreaccount1`);
    /// the service's Azure config has no endpoint, so without this uploads go to Azure itself.
    pub azure_endpoint: Option<String>,
    /// The endpoint uploads to S3 targets without an `endpoint` of their own go to (instead of Amazon S3).
    pub s3_endpoint: Option<String>,
    /// The MPEG-TS clip archives are made of; the bundled 4-second H.264/AAC clip if `None`.
    pub media: Option<Vec<u8>>,
    /// Where archives kept in the emulator's cloud (no target, or a failed upload with fallback) are written;
    /// a temporary directory, removed on exit, if `None`.
    pub data_dir: Option<PathBuf>,
    /// How long download URLs work.
    pub download_url_ttl: Duration,
    /// How long archives in the emulator's cloud stay `available` before they become `expired`.
    pub fallback_retention: Duration,
    /// The largest archive made by repeating the clip to the recorded time.
    pub max_media_bytes: usize,
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("projects", &self.projects)
            .field("callback_url", &self.callback_url)
            .field(
                "callback_signature_secret",
                &self
                    .callback_signature_secret
                    .as_ref()
                    .map(|_| "[REDACTED]"),
            )
            .field("callback_retry", &self.callback_retry)
            .field("azure_endpoint", &self.azure_endpoint)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("media", &self.media.as_ref().map(Vec::len))
            .field("data_dir", &self.data_dir)
            .field("download_url_ttl", &self.download_url_ttl)
            .field("fallback_retention", &self.fallback_retention)
            .field("max_media_bytes", &self.max_media_bytes)
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            projects: Vec::new(),
            callback_url: None,
            callback_signature_secret: None,
            callback_retry: CallbackRetry::default(),
            azure_endpoint: None,
            s3_endpoint: None,
            media: None,
            data_dir: None,
            download_url_ttl: DEFAULT_DOWNLOAD_URL_TTL,
            fallback_retention: DEFAULT_FALLBACK_RETENTION,
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    callback_url: Option<String>,
    callback_signature_secret_file: Option<PathBuf>,
    callback_retry: Option<FileRetry>,
    azure_endpoint: Option<String>,
    s3_endpoint: Option<String>,
    media: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    download_url_ttl_secs: Option<u64>,
    fallback_retention_secs: Option<u64>,
    max_media_bytes: Option<usize>,
    #[serde(default)]
    project: Vec<FileProject>,
    #[serde(default)]
    application: Vec<FileApplication>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRetry {
    attempts: Option<u32>,
    initial_ms: Option<u64>,
    max_ms: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProject {
    api_key: String,
    api_secret_file: Option<PathBuf>,
    api_secret_env: Option<String>,
    api_secret: Option<String>,
    callback_url: Option<String>,
}

impl fmt::Debug for FileProject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileProject")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApplication {
    application_id: String,
    public_key_file: PathBuf,
    callback_url: Option<String>,
}

/// Reads a secret from a file: its text up to the first newline (so `echo secret > file` works).
pub fn read_secret_file(path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.split(['\n', '\r']).next().unwrap_or_default();
    if first.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "{} is empty: it should hold the secret on its first line",
            path.display()
        )));
    }
    Ok(SecretString::from(first.to_owned()))
}

/// Reads an RSA public key from PEM: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), a certificate, or the
/// application's private key itself (`private.key` as Vonage hands it out), of which the public half is kept.
pub fn parse_public_key(pem: &[u8]) -> Result<PublicKey, ConfigError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| ConfigError::Invalid("the public key is not PEM text".into()))?;
    if text.contains("BEGIN PUBLIC KEY") {
        return PublicKey::from_public_key_pem(text.trim())
            .map_err(|e| ConfigError::Invalid(format!("unreadable public key: {e}")));
    }
    if text.contains("BEGIN RSA PUBLIC KEY") {
        return PublicKey::from_pkcs1_pem(text.trim())
            .map_err(|e| ConfigError::Invalid(format!("unreadable RSA public key: {e}")));
    }
    if text.contains("BEGIN CERTIFICATE") {
        return archive_core::cert::Certificate::parse(pem)
            .and_then(|c| c.rsa_public_key())
            .map_err(|e| ConfigError::Invalid(format!("unreadable certificate: {e}")));
    }
    archive_core::keys::load_private_key(pem, None)
        .map(|key| key.to_public_key())
        .map_err(|_| {
            ConfigError::Invalid(
                "not an RSA public key, certificate or unencrypted private key in PEM".into(),
            )
        })
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl EmulatorConfig {
    /// Reads a TOML config file (see the module docs).
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml_str(&text, base).map_err(|e| match e {
            ConfigError::Toml { message, .. } => ConfigError::Toml {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Reads config TOML, with relative paths taken from `base`.
    ///
    /// ```
    /// use opentok_emulator::EmulatorConfig;
    /// let config = EmulatorConfig::from_toml_str(
    ///     "listen = \"127.0.0.1:4010\"\n[[project]]\napi_key = \"123\"\napi_secret = \"s3cr3t\"\n",
    ///     std::path::Path::new("."),
    /// ).unwrap();
    /// assert_eq!(config.listen.port(), 4010);
    /// assert_eq!(config.projects[0].id, "123");
    /// ```
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: PathBuf::from("<config>"),
            message: e.message().to_owned(),
        })?;
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut config = EmulatorConfig::default();
        if let Some(listen) = file.listen {
            config.listen = listen.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "listen = {listen:?} is not an address like 127.0.0.1:4010"
                ))
            })?;
        }
        config.public_url = file.public_url;
        config.callback_url = file.callback_url;
        if let Some(path) = file.callback_signature_secret_file {
            config.callback_signature_secret = Some(read_secret_file(&resolve(&path))?);
        }
        if let Some(retry) = file.callback_retry {
            let default = CallbackRetry::default();
            config.callback_retry = CallbackRetry {
                attempts: retry.attempts.unwrap_or(default.attempts).max(1),
                initial: retry
                    .initial_ms
                    .map(Duration::from_millis)
                    .unwrap_or(default.initial),
                max: retry
                    .max_ms
                    .map(Duration::from_millis)
                    .unwrap_or(default.max),
                timeout: retry
                    .timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(default.timeout),
            };
        }
        config.azure_endpoint = file.azure_endpoint;
        config.s3_endpoint = file.s3_endpoint;
        if let Some(media) = file.media {
            config.media = Some(read(&resolve(&media))?);
        }
        config.data_dir = file.data_dir.map(|d| resolve(&d));
        if let Some(secs) = file.download_url_ttl_secs {
            config.download_url_ttl = Duration::from_secs(secs);
        }
        if let Some(secs) = file.fallback_retention_secs {
            config.fallback_retention = Duration::from_secs(secs);
        }
        if let Some(bytes) = file.max_media_bytes {
            config.max_media_bytes = bytes;
        }
        for project in file.project {
            let secret = match (
                project.api_secret_file,
                project.api_secret_env,
                project.api_secret,
            ) {
                (Some(path), None, None) => read_secret_file(&resolve(&path))?,
                (None, Some(var), None) => match std::env::var(&var) {
                    Ok(value) if !value.is_empty() => SecretString::from(value),
                    _ => {
                        return Err(ConfigError::Invalid(format!(
                            "project {}: the environment variable {var} is not set",
                            project.api_key
                        )));
                    }
                },
                (None, None, Some(secret)) => SecretString::from(secret),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "project {}: give exactly one of api_secret_file, api_secret_env, api_secret",
                        project.api_key
                    )));
                }
            };
            let mut p = ProjectConfig::project(project.api_key, secret);
            p.callback_url = project.callback_url;
            config.projects.push(p);
        }
        for app in file.application {
            let key = parse_public_key(&read(&resolve(&app.public_key_file))?)?;
            let mut p = ProjectConfig::application(app.application_id, key);
            p.callback_url = app.callback_url;
            config.projects.push(p);
        }
        Ok(config)
    }

    /// Checks what can be checked before starting: at least one project, ids unique and usable in a path,
    /// secrets not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.projects.is_empty() {
            return Err(ConfigError::Invalid(
                "no project: give --api-key (with its secret), or [[project]] in the config file"
                    .into(),
            ));
        }
        let mut seen = HashSet::new();
        for project in &self.projects {
            let id = project.id.as_str();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(ConfigError::Invalid(format!(
                    "{id:?} cannot be an API key or application id (letters, digits, '-', '_', '.')"
                )));
            }
            if !seen.insert(id) {
                return Err(ConfigError::Invalid(format!("{id} is configured twice")));
            }
            if let ProjectAuth::Secret(secret) = &project.auth
                && secret.expose_secret().is_empty()
            {
                return Err(ConfigError::Invalid(format!(
                    "project {id}: the API secret is empty"
                )));
            }
        }
        if self.callback_retry.attempts == 0 {
            return Err(ConfigError::Invalid(
                "callback retry attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_projects_take_exactly_one_secret_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "from-file\nignored\n").unwrap();
        let config = EmulatorConfig::from_toml_str(
            "[[project]]\napi_key = \"1\"\napi_secret_file = \"secret.txt\"\ncallback_url = \"http://x/cb\"\n",
            dir.path(),
        )
        .unwrap();
        let ProjectAuth::Secret(secret) = &config.projects[0].auth else {
            panic!("a project")
        };
        assert_eq!(secret.expose_secret(), "from-file");
        assert_eq!(
            config.projects[0].callback_url.as_deref(),
            Some("http://x/cb")
        );
        let both = EmulatorConfig::from_toml_str(
            "[[project]]\napi_key = \"1\"\napi_secret_file = \"secret.txt\"\napi_secret = \"x\"\n",
            dir.path(),
        );
        assert!(matches!(both, Err(ConfigError::Invalid(m)) if m.contains("exactly one")));
        let unknown = EmulatorConfig::from_toml_str("lisen = \"x\"\n", dir.path());
        assert!(matches!(unknown, Err(ConfigError::Toml { .. })));
    }

    #[test]
    fn validation_refuses_what_cannot_be_served() {
        let mut config = EmulatorConfig::default();
        assert!(config.validate().is_err(), "no project");
        config
            .projects
            .push(ProjectConfig::project("12 3", "s".into()));
        assert!(config.validate().is_err(), "a space in the id");
        config.projects[0].id = "123".into();
        config.validate().unwrap();
        config
            .projects
            .push(ProjectConfig::project("123", "t".into()));
        assert!(config.validate().is_err(), "twice");
        config.projects.pop();
        config
            .projects
            .push(ProjectConfig::project("456", "".into()));
        assert!(config.validate().is_err(), "empty secret");
    }

    #[test]
    fn public_keys_read_in_every_form() {
        let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let public = key.to_public_key();
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let spki = public.to_public_key_pem(LineEnding::LF).unwrap();
        let pkcs1 = public.to_pkcs1_pem(LineEnding::LF).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        for pem in [spki.as_bytes(), pkcs1.as_bytes(), private.as_bytes()] {
            assert_eq!(parse_public_key(pem).unwrap(), public);
        }
        assert!(parse_public_key(b"nothing").is_err());
    }

    #[test]
    fn retry_delays_double_up_to_the_max() {
        let retry = CallbackRetry {
            attempts: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(350),
            timeout: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (0..4).map(|n| retry.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        // The waits the deliveries retry on: one fewer than the tries, the same schedule.
        let waits: Vec<u128> = retry.delays().map(|d| d.as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
        let once = CallbackRetry {
            attempts: 1,
            ..retry
        };
        assert_eq!(once.delays().count(), 0, "one try: no retry");
    }
}
