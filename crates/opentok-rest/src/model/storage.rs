//! The storage target the service uploads archives to (`PUT /v2/project/{id}/archive/storage`), with its
//! encryption certificate, and the error bodies the service answers with.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the service does with an archive it could not upload to the project's storage target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Nothing: the archive is lost rather than kept outside the project's storage.
    None,
    /// Keep it in the service's cloud, downloadable for 72 hours (the older name).
    Opentok,
    /// Keep it in the service's cloud, downloadable for 72 hours (the newer name).
    Vonage,
}

/// Amazon S3 server-side encryption of the uploaded files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerSideEncryption {
    /// SSE-S3 (S3-managed keys; the service supports no other kind).
    S3,
    /// No server-side encryption.
    None,
}

/// An S3 or S3-compatible bucket the service uploads archives to.
///
/// The secret key is a [`SecretString`]: `Debug` shows it redacted and it is only ever written into the
/// JSON body of the storage request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// The secret access key.
    #[serde(with = "plain_secret")]
    pub secret_key: SecretString,
    /// The access key id.
    pub access_key: String,
    /// The endpoint base URL of an S3-compatible service, such as `"https://storage.googleapis.com"`;
    /// absent for Amazon S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Server-side encryption; absent leaves the bucket's behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<ServerSideEncryption>,
}

impl PartialEq for S3Config {
    fn eq(&self, other: &Self) -> bool {
        self.bucket == other.bucket
            && self.secret_key.expose_secret() == other.secret_key.expose_secret()
            && self.access_key == other.access_key
            && self.endpoint == other.endpoint
            && self.sse == other.sse
    }
}

/// An Azure Blob Storage container the service uploads archives to.
///
/// The account key is a [`SecretString`]: `Debug` shows it redacted and it is only ever written into the
/// JSON body of the storage request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureConfig {
    /// The storage account's name.
    pub account_name: String,
    /// The storage account's key.
    #[serde(with = "plain_secret")]
    pub account_key: SecretString,
    /// The container's name.
    pub container: String,
    /// The domain of the storage account, for sovereign clouds (absent for the public Azure cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl PartialEq for AzureConfig {
    fn eq(&self, other: &Self) -> bool {
        self.account_name == other.account_name
            && self.account_key.expose_secret() == other.account_key.expose_secret()
            && self.container == other.container
            && self.domain == other.domain
    }
}

/// Where archives are uploaded: `"type"` and `"config"` in the storage request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config")]
pub enum StorageDestination {
    /// `"type": "s3"`.
    #[serde(rename = "s3")]
    S3(S3Config),
    /// `"type": "azure"`.
    #[serde(rename = "azure")]
    Azure(AzureConfig),
}

/// The `certificate` of a storage request: the certificate the service wraps archive keys with, or an
/// explicit `null` that turns encryption off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveEncryption {
    /// Encrypt archives for this certificate: base64 of its PEM (what `openssl enc -base64 -A` makes), or the
    /// PEM with its newlines written `\n`. Both forms are sent as they are.
    Certificate(String),
    /// `"certificate": null`: stop encrypting.
    Disabled,
}

impl ArchiveEncryption {
    /// Encrypt for `certificate`, sent in the first documented form (base64 of the PEM).
    pub fn for_certificate(certificate: &archive_core::cert::Certificate) -> Self {
        Self::Certificate(certificate.to_json_base64())
    }

    /// Reads the certificate (when there is one) and checks that the service will take it: an RSA key of at
    /// most 2048 bits. [`ArchiveEncryption::Disabled`] passes.
    pub fn check_service_acceptance(&self) -> Result<(), archive_core::cert::CertError> {
        match self {
            Self::Disabled => Ok(()),
            Self::Certificate(text) => {
                archive_core::cert::Certificate::parse(text.as_bytes())?.check_service_acceptance()
            }
        }
    }
}

impl Serialize for ArchiveEncryption {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Certificate(text) => serializer.serialize_str(text),
            Self::Disabled => serializer.serialize_none(),
        }
    }
}

/// The body of `PUT /v2/project/{id}/archive/storage`, serialized exactly as the service documents it:
/// `{"type":"s3","config":{...},"fallback":"none","certificate":"LS0t..."}`.
///
/// `fallback` and `certificate` are left out of the JSON when `None`; the service's own default for a
/// missing fallback keeps failed uploads in its cloud, so set it. [`StorageTarget::s3`] and
/// [`StorageTarget::azure`] make both explicit.
///
/// ```
/// use opentok_rest::model::*;
///
/// let target = StorageTarget::s3(
///     S3Config {
///         bucket: "example.com.archive-bucket".into(),
///         secret_key: "BvKwyshsmEATx5mngeloHwgKrYMbP+".into(),
///         access_key: "AWFS7BAO536E6MXA".into(),
///         endpoint: None,
///         sse: None,
///     },
///     Fallback::None,
///     ArchiveEncryption::Disabled,
/// );
/// assert_eq!(
///     serde_json::to_string(&target).unwrap(),
///     r#"{"type":"s3","config":{"bucket":"example.com.archive-bucket","secretKey":"BvKwyshsmEATx5mngeloHwgKrYMbP+","accessKey":"AWFS7BAO536E6MXA"},"fallback":"none","certificate":null}"#
/// );
/// assert!(!format!("{target:?}").contains("BvKwyshsmEATx5mngeloHwgKrYMbP+"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageTarget {
    /// The bucket or container.
    #[serde(flatten)]
    pub destination: StorageDestination,
    /// What happens to archives that cannot be uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Encrypt for a certificate, or explicitly not; `None` leaves `certificate` out of the JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_archive_encryption"
    )]
    pub certificate: Option<ArchiveEncryption>,
}

impl StorageTarget {
    /// An S3 target with an explicit fallback and encryption setting.
    pub fn s3(config: S3Config, fallback: Fallback, encryption: ArchiveEncryption) -> Self {
        Self {
            destination: StorageDestination::S3(config),
            fallback: Some(fallback),
            certificate: Some(encryption),
        }
    }

    /// An Azure target with an explicit fallback and encryption setting.
    pub fn azure(config: AzureConfig, fallback: Fallback, encryption: ArchiveEncryption) -> Self {
        Self {
            destination: StorageDestination::Azure(config),
            fallback: Some(fallback),
            certificate: Some(encryption),
        }
    }

    /// The same target with `"certificate": null`: what the service documents for turning encryption off.
    pub fn without_encryption(&self) -> Self {
        Self {
            certificate: Some(ArchiveEncryption::Disabled),
            ..self.clone()
        }
    }
}

/// The JSON the service answers errors with, such as `{"code":-1,"message":"Issuer not found",...}`.
/// Every field is optional: some errors carry only a `message`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceErrorBody {
    /// The service's error code (`-1`, `15002`, ...), when it sends one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// More detail, when the service gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `#[serde(with = "plain_secret")]`: a [`SecretString`] on the wire as the plain JSON string the service
/// takes (S3's `secretKey`, Azure's `accountKey`); one helper for every secret field of a storage target.
mod plain_secret {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the secret as a plain string.
    pub(super) fn serialize<S: Serializer>(
        secret: &SecretString,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose_secret())
    }

    /// Reads a plain string into a secret.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SecretString, D::Error> {
        Ok(SecretString::from(String::deserialize(deserializer)?))
    }
}

/// A present `null` is [`ArchiveEncryption::Disabled`]; an absent field is `None` (through `default`).
fn deserialize_archive_encryption<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ArchiveEncryption>, D::Error> {
    Ok(Some(match Option::<String>::deserialize(deserializer)? {
        Some(text) => ArchiveEncryption::Certificate(text),
        None => ArchiveEncryption::Disabled,
    }))
}
