//! Reading (and, for the emulator and tests, writing) Vonage Video archives in the user's own storage:
//! Amazon S3, S3-compatible stores (GCS, Cloudian, MinIO, s3s-fs) and Azure Blob Storage, on
//! [`object_store`].
//!
//! The service uploads each archive to `{apiKey}/{archiveId}/archive.ts` (encrypted), `archive.mp4`
//! (unencrypted) or `archive.zip` (individual streams). This crate:
//!
//! * describes a target ([`Target`]: [`S3Target`], [`AzureTarget`]) as the service does, secrets redacted
//!   from `Debug`;
//! * finds an archive's object ([`Store::locate`]), with a clear "archive … not found in bucket … at …";
//! * downloads it in parallel ranged GETs handed over in order ([`Store::download`] → [`Download`], a
//!   `Stream` of `Bytes`), with per-part retries and backoff, bounded memory, resumption at an offset
//!   ([`DownloadOptions::start_offset`], [`Download::previous_block`] for the CBC IV), and the object's size
//!   and ETag checked on every part ([`Error::ObjectChanged`]);
//! * reads an archive the service keeps in its own cloud from its presigned URL ([`PresignedDownload`]:
//!   resumed with a checked `Range` request, the URL's signature never shown);
//! * writes objects ([`Store::put`], [`Store::put_multipart`]; [`Store::start_upload`] → [`Upload`], a
//!   multipart upload completed or aborted by the caller, for outputs verified as they are written),
//!   deletes and lists them, and creates a
//!   bucket or container on test servers ([`Store::create_container`]);
//! * checks a target the way the service will use it ([`Store::check`] → [`CheckReport`]);
//! * finds the local test servers `cargo xtask` starts ([`test_env`]);
//! * tells failures apart ([`Error`]): wrong credentials, missing permission, missing bucket/container,
//!   unreachable endpoint, missing object, object changed, anything else.
//!
//! Where the service writes an archive, and a target described as the service's storage settings do:
//!
//! ```
//! use secrecy::SecretString;
//! use storage_fetch::{ArchiveKind, S3Target, Target, archive_key};
//!
//! let id = "b40ef09b-3811-4726-b508-e41a0f96c68f";
//! assert_eq!(archive_key("123456", id, ArchiveKind::EncryptedTs), format!("123456/{id}/archive.ts"));
//! let target: Target = S3Target::new("archives", "AKIAEXAMPLE", SecretString::from("s3cr3t")).into();
//! assert_eq!(target.container_name(), "archives");
//! assert!(!format!("{target:?}").contains("s3cr3t"), "secrets never show in Debug");
//! ```
//!
//! Reading an archive (with a reachable Azurite; `Store` is the same for S3):
//!
//! ```no_run
//! # async fn demo() -> Result<(), storage_fetch::Error> {
//! use futures_util::StreamExt;
//! use secrecy::SecretString;
//! use storage_fetch::{AzureTarget, DownloadOptions, Store};
//!
//! let target = AzureTarget::new("devstoreaccount1", SecretString::from("Eby8vdM0..."), "archives")
//!     .with_endpoint("http://127.0.0.1:10000/devstoreaccount1");
//! let store = Store::new(target.into())?;
//! let found = store.locate("123456", "b40ef09b-3811-4726-b508-e41a0f96c68f").await?;
//! let mut download = store.download(&found.object.key, DownloadOptions::default()).await?;
//! while let Some(part) = download.next().await {
//!     let part = part?; // in order; decrypt and write it
//! #   let _ = part;
//! }
//! # Ok(()) }
//! ```
//!
//! TLS is rustls with ring as the crypto provider (no OpenSSL), installed as rustls' process default by
//! [`Store::new`] unless the application installed one; request signing (SigV4, SharedKey) uses ring too.
#![warn(missing_docs)]

mod admin;
mod check;
mod download;
mod error;
mod presigned;
mod store;
mod target;
pub mod test_env;
mod upload;

pub use check::{CHECK_PREFIX, CheckOutcome, CheckReport, CheckResult, CheckStep};
pub use download::{CBC_BLOCK, Download, DownloadOptions, PartBuffers};
pub use error::Error;
pub use presigned::{PresignedDownload, PresignedError, content_range_start, without_query};
pub use store::{
    ArchiveKind, Backoff, Located, MultipartOptions, ObjectInfo, PutInfo, Store, StoreOptions,
    archive_key,
};
pub use target::{AzureTarget, DEFAULT_AZURE_DOMAIN, DEFAULT_S3_REGION, S3Target, Sse, Target};
pub use upload::Upload;
