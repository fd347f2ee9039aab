//! The Vonage Video (OpenTok) archiving REST API: the service's JSON model, JWT auth and a typed client.
//!
//! No official SDK can set the archive upload target or its encryption certificate, and several do not
//! expose an archive's `password`. This crate covers exactly the archiving side of the API, typed:
//!
//! * [`model`]: the service's JSON: [`model::Archive`] and [`model::ArchiveStatus`], the storage target
//!   with its encryption certificate ([`model::StorageTarget`]), the archive status callback
//!   ([`model::ArchiveEvent`]), start options, error bodies. Sync, and usable without the HTTP client:
//!   `opentok-rest = { workspace = true, default-features = false }` gives the model and auth only.
//! * [`archive_id`]: the service's archive id form, checked wherever an id enters.
//! * [`redact`]: what may be shown of a URL (presigned download URLs lose their query), one rule for all.
//! * [`auth`]: a fresh JWT per request, HS256 in `X-OPENTOK-AUTH` for OpenTok projects and RS256 in
//!   `Authorization: Bearer` for Vonage applications, and the matching verification.
//! * `client` (default feature `client`): `Client`, async on tokio and reqwest (rustls, ring), with
//!   typed errors, timeouts, and retries only where repeating is safe.
//!
//! Secrets (the API secret, the application's private key, storage keys, tokens) are held in types whose
//! `Debug` does not show them and are only ever written into a request.
//!
//! ```
//! use opentok_rest::model::{ArchiveEncryption, Fallback, S3Config, StorageTarget};
//!
//! let target = StorageTarget::s3(
//!     S3Config {
//!         bucket: "archives".into(),
//!         access_key: "AKIDEXAMPLE".into(),
//!         secret_key: "wJalrXUtnFEMI/K7MDENG".into(),
//!         endpoint: None,
//!         sse: None,
//!     },
//!     Fallback::None,
//!     ArchiveEncryption::Disabled,
//! );
//! let body = serde_json::to_value(&target).unwrap();
//! assert_eq!(body["config"]["secretKey"], "wJalrXUtnFEMI/K7MDENG");
//! assert!(!format!("{target:?}").contains("wJalrXUtnFEMI"));
//! ```
#![warn(missing_docs)]

pub mod archive_id;
pub mod auth;
#[cfg(feature = "client")]
pub mod client;
pub mod model;
pub mod redact;

#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder, Error, RetryPolicy, ServiceError};
