//! [`Store`]: one connection to a [`Target`], with every operation archivectl and the emulator need.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Ctx, Error, Message, Symptom, classify};
use crate::target::Target;

/// The most a ranged read reserves ahead for its answer (it grows past this as bytes arrive).
const MAX_RESERVE: u64 = 64 << 20;

/// How a [`Store`] talks to its target.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included (a download part, an upload part).
    pub request_timeout: Duration,
    /// How often a failed request (network failure, 5xx, 429) is tried again, after the first try, by
    /// [`Store::head`], [`Store::put`], [`Store::delete`] and the others. Downloads have their own count in
    /// [`DownloadOptions::retries`](crate::DownloadOptions::retries).
    pub retries: u32,
    /// The waits between tries.
    pub backoff: Backoff,
    /// Accept a plain `http://` endpoint on any host. Off by default: plain HTTP is used only for a loopback
    /// endpoint (`127.0.0.0/8`, `::1`, `localhost`: a local test server), since requests carry signatures
    /// and data in clear text otherwise.
    pub allow_http: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            retries: 3,
            backoff: Backoff::default(),
            allow_http: false,
        }
    }
}

/// Exponential backoff with jitter: try `n` (from 0) waits `initial × 2ⁿ`, at most `max`, times a random
/// factor in [0.5, 1] so that parallel parts failing together do not retry together.
///
/// ```
/// use std::time::Duration;
/// let b = storage_fetch::Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
/// assert!(b.delay(0) <= Duration::from_millis(100) && b.delay(0) >= Duration::from_millis(50));
/// assert!(b.delay(10) <= Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        let full = self.initial.saturating_mul(factor).min(self.max);
        let jitter: f64 = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0);
        full.mul_f64(jitter)
    }
}

/// Which object of an archive: the service writes exactly one of these under `{apiKey}/{archiveId}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// `archive.ts`: an encrypted archive (AES-256-CBC over MPEG-TS).
    EncryptedTs,
    /// `archive.mp4`: an unencrypted composed archive.
    Mp4,
    /// `archive.zip`: an individual-stream archive (never encrypted).
    IndividualZip,
}

impl ArchiveKind {
    /// In the order [`Store::locate`] tries them.
    pub const ALL: [ArchiveKind; 3] = [
        ArchiveKind::EncryptedTs,
        ArchiveKind::Mp4,
        ArchiveKind::IndividualZip,
    ];

    /// The object's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            ArchiveKind::EncryptedTs => "archive.ts",
            ArchiveKind::Mp4 => "archive.mp4",
            ArchiveKind::IndividualZip => "archive.zip",
        }
    }

    /// Whether the object is encrypted (only `archive.ts` is).
    pub fn is_encrypted(self) -> bool {
        self == ArchiveKind::EncryptedTs
    }
}

/// The key the service writes an archive to: `{apiKey}/{archiveId}/archive.{ts,mp4,zip}`.
///
/// ```
/// use storage_fetch::{ArchiveKind, archive_key};
/// assert_eq!(archive_key("123456", "b40ef09b", ArchiveKind::EncryptedTs), "123456/b40ef09b/archive.ts");
/// ```
pub fn archive_key(api_key: &str, archive_id: &str, kind: ArchiveKind) -> String {
    format!("{api_key}/{archive_id}/{}", kind.file_name())
}

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, as the store sends it (quotes included), if the store sends one.
    pub e_tag: Option<String>,
    /// When it was last written, as RFC 3339.
    pub last_modified: String,
}

impl ObjectInfo {
    fn from_meta(meta: &object_store::ObjectMeta) -> Self {
        Self {
            key: meta.location.to_string(),
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339(),
        }
    }
}

/// An archive's object, as found by [`Store::locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Which of the three objects it is.
    pub kind: ArchiveKind,
    /// Its key, size and ETag.
    pub object: ObjectInfo,
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutInfo {
    /// The key written.
    pub key: String,
    /// Bytes written.
    pub size: u64,
    /// The new object's ETag, if the store returned one.
    pub e_tag: Option<String>,
}

/// How [`Store::put_multipart`] splits and sends an upload.
#[derive(Debug, Clone)]
pub struct MultipartOptions {
    /// Bytes per part. S3 requires at least 5 MiB for every part but the last; Azure blocks may be smaller.
    pub part_size: usize,
    /// Parts uploading at once; memory use is about `part_size × (concurrency + 1)`.
    pub concurrency: usize,
}

impl Default for MultipartOptions {
    fn default() -> Self {
        Self {
            part_size: 8 << 20,
            concurrency: 4,
        }
    }
}

/// A connection to one bucket or container. Cheap to clone; clones share the HTTP connection pool.
///
/// Every method needs a tokio runtime.
///
/// ```no_run
/// # async fn demo() -> Result<(), storage_fetch::Error> {
/// use secrecy::SecretString;
/// use storage_fetch::{S3Target, Store};
///
/// let target = S3Target::new("archives", "AKIA...", SecretString::from("..."))
///     .with_endpoint("http://127.0.0.1:9000");
/// let store = Store::new(target.into())?;
/// let found = store.locate("123456", "b40ef09b-3811-4726-b508-e41a0f96c68f").await?;
/// println!("{} ({} bytes)", found.object.key, found.object.size);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) target: Target,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) client_options: ClientOptions,
    pub(crate) options: StoreOptions,
    pub(crate) endpoint: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("target", &self.inner.target)
            .field("endpoint", &self.inner.endpoint)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// Installs ring as rustls' process-wide crypto provider, unless the application installed one already.
/// object_store's reqwest is built with `rustls-no-provider` (see the workspace manifest), so a provider must
/// be in place before the first client is built.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one in between: that one is used, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl Store {
    /// Connects to `target` with default options. No request is made until an operation is called.
    pub fn new(target: Target) -> Result<Self, Error> {
        Self::with_options(target, StoreOptions::default())
    }

    /// Connects to `target`.
    pub fn with_options(target: Target, options: StoreOptions) -> Result<Self, Error> {
        target.validate()?;
        ensure_crypto_provider();
        // object_store's own retries are off: every retry is ours (`options.retries`, `DownloadOptions::retries`),
        // with our backoff, so that the number of attempts is what the caller configured.
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::from_secs(1),
            ..RetryConfig::default()
        };
        let mut client_options = ClientOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_pool_idle_timeout(Duration::from_secs(30));
        let endpoint = target.display_endpoint();
        let store: Arc<dyn ObjectStore> = match &target {
            Target::S3(s3) => {
                let url = s3.endpoint_url()?;
                let allow_http = match &url {
                    Some(u) => crate::target::plain_http_allowed(u, options.allow_http)?,
                    None => false,
                };
                client_options = client_options.with_allow_http(allow_http);
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(s3.region())
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(s3.secret_access_key.expose_secret())
                    .with_retry(retry)
                    .with_client_options(client_options.clone());
                builder = match url {
                    // S3-compatible stores: path-style, which they all accept (virtual hosts need DNS set up).
                    Some(url) => builder.with_endpoint(url.as_str().trim_end_matches('/')),
                    // Amazon: virtual-hosted style, except for bucket names with dots, whose host names the
                    // *.s3 certificate does not cover (the service's own example bucket has dots).
                    None => builder.with_virtual_hosted_style_request(!s3.bucket.contains('.')),
                };
                if let Some(crate::target::Sse::S3) = s3.sse {
                    // Sent as `x-amz-server-side-encryption: AES256` on PutObject and CreateMultipartUpload
                    // (not on reads, which S3 would refuse for SSE-S3).
                    let key: AmazonS3ConfigKey = "aws_server_side_encryption"
                        .parse()
                        .map_err(|e: object_store::Error| Error::InvalidTarget(e.to_string()))?;
                    builder = builder.with_config(key, "AES256");
                }
                Arc::new(
                    builder
                        .build()
                        .map_err(|e| Error::InvalidTarget(e.to_string()))?,
                )
            }
            Target::Azure(az) => {
                let url = az.account_url()?;
                let allow_http = crate::target::plain_http_allowed(&url, options.allow_http)?;
                client_options = client_options.with_allow_http(allow_http);
                let builder = MicrosoftAzureBuilder::new()
                    .with_account(&az.account_name)
                    .with_access_key(az.account_key.expose_secret())
                    .with_container_name(&az.container)
                    .with_endpoint(url.as_str().trim_end_matches('/').to_string())
                    .with_allow_http(allow_http)
                    .with_retry(retry)
                    .with_client_options(client_options.clone());
                Arc::new(
                    builder
                        .build()
                        .map_err(|e| Error::InvalidTarget(e.to_string()))?,
                )
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                store,
                client_options,
                options,
                endpoint,
            }),
        })
    }

    /// A store over any `object_store` implementation, for unit tests (fault injection, counting).
    #[cfg(test)]
    pub(crate) fn over(target: Target, store: Arc<dyn ObjectStore>, options: StoreOptions) -> Self {
        let endpoint = target.display_endpoint();
        let inner = Inner {
            target,
            store,
            client_options: ClientOptions::new(),
            options,
            endpoint,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The target this store writes to and reads from.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// The options in force.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    pub(crate) fn ctx<'a>(&'a self, operation: &'static str, key: &'a str) -> Ctx<'a> {
        Ctx {
            service: self.inner.target.service_name(),
            kind: self.inner.target.container_kind(),
            container: self.inner.target.container_name(),
            endpoint: &self.inner.endpoint,
            operation,
            key,
        }
    }

    pub(crate) fn path(key: &str) -> Result<Path, Error> {
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return Err(Error::InvalidRequest(format!("invalid object key {key:?}")));
        }
        Path::parse(key)
            .map_err(|e| Error::InvalidRequest(format!("invalid object key {key:?}: {e}")))
    }

    /// Sorts an object_store error, first asking the store for a body when a bare status cannot tell a
    /// missing bucket from a missing object, or bad credentials from a missing permission.
    pub(crate) async fn explain(
        &self,
        err: object_store::Error,
        ctx: &Ctx<'_>,
        path: Option<&Path>,
    ) -> Error {
        let symptom = Symptom::of(&err);
        if symptom.needs_diagnosis() {
            let probe = match path {
                Some(path) => {
                    let opts = GetOptions {
                        range: Some(GetRange::Bounded(0..1)),
                        ..GetOptions::default()
                    };
                    self.inner.store.get_opts(path, opts).await.err()
                }
                None => self.inner.store.list_with_delimiter(None).await.err(),
            };
            if let Some(probe_err) = probe {
                let probe_symptom = Symptom::of(&probe_err);
                if !probe_symptom.needs_diagnosis() && probe_symptom.status.is_some() {
                    return classify(probe_symptom, ctx, Box::new(err));
                }
            }
        }
        classify(symptom, ctx, Box::new(err))
    }

    /// Runs `op` with the store's retries for transient failures.
    async fn retrying<T, F, Fut>(
        &self,
        operation: &'static str,
        key: &str,
        path: Option<&Path>,
        op: F,
    ) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        use backon::Retryable as _;
        let backoff = self.inner.options.backoff;
        let delays = (0..self.inner.options.retries).map(move |retry| backoff.delay(retry));
        (|| async {
            match op().await {
                Ok(v) => Ok(v),
                Err(e) => Err(self.explain(e, &self.ctx(operation, key), path).await),
            }
        })
        .retry(delays)
        .when(Error::is_transient)
        .await
    }

    /// The size and ETag of `key`.
    ///
    /// Errors: [`Error::NotFound`] if there is no such object, [`Error::ContainerNotFound`],
    /// [`Error::Credentials`], [`Error::AccessDenied`], [`Error::Unreachable`], [`Error::Storage`].
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, Error> {
        match self.head_unconfirmed(key).await {
            Err(not_found @ Error::NotFound { .. }) => {
                Err(self.missing_container(key).await.unwrap_or(not_found))
            }
            other => other,
        }
    }

    /// [`Store::head`], but a missing object is not told apart from a missing container.
    async fn head_unconfirmed(&self, key: &str) -> Result<ObjectInfo, Error> {
        let path = Self::path(key)?;
        let meta = self
            .retrying("read", key, Some(&path), || self.inner.store.head(&path))
            .await?;
        Ok(ObjectInfo::from_meta(&meta))
    }

    /// After "object not found": the container's own error if it is the container that is missing. HEAD answers
    /// carry no body, and some servers (s3s-fs) answer NoSuchKey for any key of a missing bucket, so the
    /// container is listed (one small request, on the not-found path only).
    async fn missing_container(&self, key: &str) -> Option<Error> {
        let parent = key
            .rsplit_once('/')
            .map(|(p, _)| p)
            .filter(|p| !p.is_empty());
        let prefix = parent.and_then(|p| Path::parse(p).ok());
        match self.inner.store.list_with_delimiter(prefix.as_ref()).await {
            Ok(_) => None,
            Err(e) => match classify(Symptom::of(&e), &self.ctx("list", key), Box::new(e)) {
                err @ Error::ContainerNotFound { .. } => Some(err),
                _ => None,
            },
        }
    }

    /// Finds an archive's object: `{apiKey}/{archiveId}/archive.ts`, else `archive.mp4`, else `archive.zip`.
    ///
    /// If none exists the error is [`Error::NotFound`], worded
    /// "archive ID not found in bucket B at KEY (also tried KEY2, KEY3)".
    pub async fn locate(&self, api_key: &str, archive_id: &str) -> Result<Located, Error> {
        for (what, value) in [("API key", api_key), ("archive id", archive_id)] {
            if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                return Err(Error::InvalidRequest(format!("invalid {what} {value:?}")));
            }
        }
        let mut tried = Vec::new();
        for kind in ArchiveKind::ALL {
            let key = archive_key(api_key, archive_id, kind);
            match self.head_unconfirmed(&key).await {
                Ok(object) => return Ok(Located { kind, object }),
                Err(Error::NotFound { .. }) => tried.push(key),
                Err(e) => return Err(e),
            }
        }
        let key = tried.remove(0);
        if let Some(err) = self.missing_container(&key).await {
            return Err(err);
        }
        Err(Error::NotFound {
            archive_id: Some(archive_id.to_string()),
            kind: self.inner.target.container_kind(),
            container: self.inner.target.container_name().to_string(),
            key,
            also_tried: tried,
        })
    }

    /// Reads `range` of `key` in one request (with the store's retries). With `if_match`, the object must
    /// still have that ETag, else [`Error::ObjectChanged`].
    ///
    /// For resuming a CBC decryption at offset `o`, `get_range(key, o - 16..o, Some(etag))` is the block
    /// that serves as the IV; [`Download::previous_block`](crate::Download::previous_block) does exactly that.
    pub async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        if_match: Option<&str>,
    ) -> Result<Bytes, Error> {
        use backon::Retryable as _;
        let path = Self::path(key)?;
        let backoff = self.inner.options.backoff;
        let delays = (0..self.inner.options.retries).map(move |retry| backoff.delay(retry));
        (|| self.fetch_range(&path, key, range.clone(), if_match, None, None))
            .retry(delays)
            .when(Error::is_transient)
            .await
    }

    /// One ranged GET, checked: the ETag (when known) and total size (when known) must be what they were,
    /// and exactly the bytes asked for must arrive.
    pub(crate) async fn fetch_range(
        &self,
        path: &Path,
        key: &str,
        range: Range<u64>,
        e_tag: Option<&str>,
        size: Option<u64>,
        buffer: Option<BytesMut>,
    ) -> Result<Bytes, Error> {
        if range.start >= range.end {
            return Err(Error::InvalidRequest(format!(
                "empty byte range {range:?} of {key}"
            )));
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: e_tag.map(str::to_string),
            ..GetOptions::default()
        };
        let changed = |detail: String| Error::ObjectChanged {
            key: key.to_string(),
            detail,
        };
        let result = match self.inner.store.get_opts(path, opts).await {
            Ok(r) => r,
            Err(e) => {
                let symptom = Symptom::of(&e);
                if symptom.precondition && e_tag.is_some() {
                    return Err(changed(format!(
                        "its ETag is no longer {}",
                        e_tag.unwrap_or_default()
                    )));
                }
                let err = self.explain(e, &self.ctx("read", key), Some(path)).await;
                return Err(match err {
                    Error::NotFound { .. } if e_tag.is_some() => changed("it was deleted".into()),
                    not_found @ Error::NotFound { .. } => {
                        self.missing_container(key).await.unwrap_or(not_found)
                    }
                    other => other,
                });
            }
        };
        if let (Some(expected), Some(got)) = (e_tag, result.meta.e_tag.as_deref()) {
            if expected != got {
                return Err(changed(format!("ETag was {expected}, now {got}")));
            }
        }
        if let Some(expected) = size {
            if result.meta.size != expected {
                return Err(changed(format!(
                    "size was {expected}, now {}",
                    result.meta.size
                )));
            }
        }
        let got_range = result.range.clone();
        let body = match buffer {
            // Into the caller's buffer, chunk by chunk: a download reuses its part buffers.
            Some(mut buf) => {
                buf.clear();
                // What the answer says it holds, never more than was asked for nor more than
                // `MAX_RESERVE` ahead (a server's numbers are outside input: the buffer grows as bytes come).
                let announced = (got_range.end.saturating_sub(got_range.start))
                    .min(range.end - range.start)
                    .min(MAX_RESERVE);
                buf.reserve(usize::try_from(announced).unwrap_or(0));
                let mut chunks = result.into_stream();
                let mut failed = None;
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(chunk) => buf.extend_from_slice(&chunk),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    None => Ok(buf.freeze()),
                    Some(e) => Err(e),
                }
            }
            None => result.bytes().await,
        };
        let bytes = match body {
            Ok(b) => b,
            Err(e) => return Err(self.explain(e, &self.ctx("read", key), Some(path)).await),
        };
        let want = range
            .end
            .min(size.unwrap_or(u64::MAX))
            .saturating_sub(range.start);
        if got_range.start != range.start || bytes.len() as u64 != want {
            return Err(Error::Storage {
                service: self.inner.target.service_name(),
                operation: "read",
                location: self.ctx("read", key).location(),
                status: None,
                transient: true,
                source: Box::new(Message(format!(
                    "asked for bytes {}..{}, received {} bytes from {}",
                    range.start,
                    range.start + want,
                    bytes.len(),
                    got_range.start
                ))),
            });
        }
        Ok(bytes)
    }

    /// Writes `bytes` to `key` in one request, replacing any object there (with SSE if the target asks).
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<PutInfo, Error> {
        let path = Self::path(key)?;
        let bytes: Bytes = bytes.into();
        let size = bytes.len() as u64;
        let result = self
            .retrying("write", key, None, || {
                self.inner
                    .store
                    .put(&path, PutPayload::from_bytes(bytes.clone()))
            })
            .await?;
        Ok(PutInfo {
            key: key.to_string(),
            size,
            e_tag: result.e_tag,
        })
    }

    /// Writes everything `reader` yields to `key` as a multipart upload (S3 multipart upload, Azure blocks),
    /// holding at most about `part_size × (concurrency + 1)` bytes. The object appears only when complete;
    /// on any error the upload is aborted and nothing appears.
    pub async fn put_multipart<R>(
        &self,
        key: &str,
        mut reader: R,
        opts: MultipartOptions,
    ) -> Result<PutInfo, Error>
    where
        R: AsyncRead + Unpin + Send,
    {
        let part_size = opts.part_size.max(1);
        let chunks = futures_util::stream::try_unfold(
            (&mut reader, BytesMut::with_capacity(part_size)),
            move |(reader, mut buf)| async move {
                buf.reserve(part_size);
                while buf.len() < part_size {
                    let n = reader.read_buf(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                let chunk = buf.split().freeze();
                Ok(Some((chunk, (reader, buf))))
            },
        );
        self.put_multipart_stream(key, Box::pin(chunks), opts).await
    }

    /// Writes a stream of chunks to `key` as a multipart upload; chunks of any size are re-cut into parts of
    /// `opts.part_size`. See [`Store::put_multipart`].
    pub async fn put_multipart_stream<S>(
        &self,
        key: &str,
        mut chunks: S,
        opts: MultipartOptions,
    ) -> Result<PutInfo, Error>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    {
        let path = Self::path(key)?;
        let ctx = self.ctx("write", key);
        let policy = Arc::new(PartRetry {
            retries: self.inner.options.retries,
            backoff: self.inner.options.backoff,
        });
        let upload_opts = PutMultipartOptions::default().with_retry_policy(policy);
        let upload = match self
            .inner
            .store
            .put_multipart_opts(&path, upload_opts)
            .await
        {
            Ok(u) => u,
            Err(e) => return Err(self.explain(e, &ctx, None).await),
        };
        let mut writer = WriteMultipart::new_with_chunk_size(upload, opts.part_size.max(1));
        let mut size = 0u64;
        loop {
            let chunk = match chunks.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(source)) => {
                    let _ = writer.abort().await;
                    return Err(Error::Source {
                        key: key.to_string(),
                        source,
                    });
                }
            };
            size += chunk.len() as u64;
            if let Err(e) = writer.wait_for_capacity(opts.concurrency.max(1)).await {
                let err = self.explain(e, &ctx, None).await;
                let _ = writer.abort().await;
                return Err(err);
            }
            writer.put(chunk);
        }
        match writer.finish().await {
            Ok(result) => Ok(PutInfo {
                key: key.to_string(),
                size,
                e_tag: result.e_tag,
            }),
            Err(e) => Err(self.explain(e, &ctx, None).await),
        }
    }

    /// Deletes `key`. Deleting an object that does not exist is not an error (as in S3); a missing bucket
    /// or container is.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = Self::path(key)?;
        match self
            .retrying("delete", key, None, || self.inner.store.delete(&path))
            .await
        {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every object under `prefix` (a key prefix ending at a `/` boundary, e.g. `123456/` or `123456`), in
    /// key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        let prefix = prefix.trim_matches('/');
        let path = if prefix.is_empty() {
            None
        } else {
            Some(Self::path(prefix)?)
        };
        let ctx = self.ctx("list", prefix);
        let listed: Result<Vec<_>, _> = self.inner.store.list(path.as_ref()).try_collect().await;
        match listed {
            Ok(metas) => {
                let mut out: Vec<ObjectInfo> = metas.iter().map(ObjectInfo::from_meta).collect();
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            }
            Err(e) => Err(self.explain(e, &ctx, None).await),
        }
    }
}

/// The retry policy of a multipart upload's parts, with `store`'s retries and backoff.
pub(crate) fn part_retry_policy(store: &Store) -> Arc<PartRetry> {
    Arc::new(PartRetry {
        retries: store.inner.options.retries,
        backoff: store.inner.options.backoff,
    })
}

/// Retries of multipart upload parts: object_store calls this after a part failed.
#[derive(Debug)]
pub(crate) struct PartRetry {
    retries: u32,
    backoff: Backoff,
}

#[async_trait::async_trait]
impl object_store::retry::RetryPolicy for PartRetry {
    async fn retry(&self, context: object_store::retry::RetryContext) -> bool {
        use object_store::client::HttpErrorKind;
        use object_store::retry::RetryFailure;
        let transient = match context.failure {
            RetryFailure::Status(s) => {
                s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408
            }
            RetryFailure::Transport(kind) => matches!(
                kind,
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            ),
            _ => false,
        };
        let attempt = u32::try_from(context.attempt).unwrap_or(u32::MAX);
        if !transient || attempt > self.retries {
            return false;
        }
        tokio::time::sleep(self.backoff.delay(attempt.saturating_sub(1))).await;
        true
    }
}

#[cfg(test)]
mod tests;
