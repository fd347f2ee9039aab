//! Connecting: [`Store::new`] and [`Store::with_options`] build object_store's S3 or Azure client for a
//! [`Target`], with our timeouts, object_store's own retries off (every retry is ours) and ring as rustls'
//! crypto provider.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use secrecy::ExposeSecret;

use super::{Inner, Store, StoreOptions};
use crate::error::Error;
use crate::target::{AzureTarget, S3Target, Target};

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
        let client_options = ClientOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_pool_idle_timeout(Duration::from_secs(30));
        let endpoint = target.display_endpoint();
        let (store, client_options) = match &target {
            Target::S3(s3) => s3_store(s3, &options, retry, client_options)?,
            Target::Azure(az) => azure_store(az, &options, retry, client_options)?,
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
}

/// The client for an S3 or S3-compatible bucket, and the client options it was built with.
fn s3_store(
    s3: &S3Target,
    options: &StoreOptions,
    retry: RetryConfig,
    client_options: ClientOptions,
) -> Result<(Arc<dyn ObjectStore>, ClientOptions), Error> {
    let url = s3.endpoint_url()?;
    let allow_http = match &url {
        Some(u) => crate::target::plain_http_allowed(u, options.allow_http)?,
        None => false,
    };
    let client_options = client_options.with_allow_http(allow_http);
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
    let store = builder
        .build()
        .map_err(|e| Error::InvalidTarget(e.to_string()))?;
    Ok((Arc::new(store), client_options))
}

/// The client for an Azure Blob Storage container, and the client options it was built with.
fn azure_store(
    az: &AzureTarget,
    options: &StoreOptions,
    retry: RetryConfig,
    client_options: ClientOptions,
) -> Result<(Arc<dyn ObjectStore>, ClientOptions), Error> {
    let url = az.account_url()?;
    let allow_http = crate::target::plain_http_allowed(&url, options.allow_http)?;
    let client_options = client_options.with_allow_http(allow_http);
    let store = MicrosoftAzureBuilder::new()
        .with_account(&az.account_name)
        .with_access_key(az.account_key.expose_secret())
        .with_container_name(&az.container)
        .with_endpoint(url.as_str().trim_end_matches('/').to_string())
        .with_allow_http(allow_http)
        .with_retry(retry)
        .with_client_options(client_options.clone())
        .build()
        .map_err(|e| Error::InvalidTarget(e.to_string()))?;
    Ok((Arc::new(store), client_options))
}
