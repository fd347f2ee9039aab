//! Where archives are stored: an S3 (or S3-compatible) bucket or an Azure Blob container.
//!
//! [`Target`] holds what the service itself is given in `PUT /v2/project/{apiKey}/archive/storage`, plus the
//! few settings a local test server needs (an `http://` endpoint, path-style addressing). Secrets are
//! [`SecretString`]s and never appear in `Debug` output.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;

/// The region used for S3 when none is given (the service's own default, `s3.amazonaws.com`, is us-east-1).
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// Azure's public-cloud blob domain, used when an [`AzureTarget`] names neither a domain nor an endpoint.
pub const DEFAULT_AZURE_DOMAIN: &str = "blob.core.windows.net";

/// An archive upload target.
///
/// ```
/// use secrecy::SecretString;
/// use storage_fetch::{S3Target, Target};
///
/// let target = Target::S3(S3Target::new("my-bucket", "AKIAEXAMPLE", SecretString::from("wJalrXUtnFEMI")));
/// assert_eq!(target.container_kind(), "bucket");
/// assert_eq!(target.container_name(), "my-bucket");
/// assert!(!format!("{target:?}").contains("wJalrXUtnFEMI"));
/// ```
#[derive(Debug, Clone)]
pub enum Target {
    /// Amazon S3, or an S3-compatible store (GCS, Cloudian, MinIO, s3s-fs, ...) through `endpoint`.
    S3(S3Target),
    /// An Azure Blob Storage container (or Azurite through `endpoint`).
    Azure(AzureTarget),
}

/// Server-side encryption the service can ask S3 for (`"sse": "s3"` in the service's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sse {
    /// SSE-S3: S3-managed keys (`x-amz-server-side-encryption: AES256`). The only kind the service supports.
    S3,
}

/// An S3 or S3-compatible bucket.
#[derive(Clone)]
pub struct S3Target {
    /// The bucket name.
    pub bucket: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The endpoint of an S3-compatible store, e.g. `https://storage.googleapis.com` or `http://127.0.0.1:9000`.
    /// A bare host name (`s3.cloudianhyperstore.com`, as older service docs show) means `https://`.
    /// With an endpoint, requests are path-style (`{endpoint}/{bucket}/{key}`), which every S3-compatible
    /// store accepts; an `http://` endpoint is used only on loopback (a local test server) or with
    /// [`StoreOptions::allow_http`](crate::StoreOptions::allow_http).
    /// Without one, Amazon S3 itself is used.
    pub endpoint: Option<String>,
    /// The bucket's region; [`DEFAULT_S3_REGION`] when `None`.
    pub region: Option<String>,
    /// Server-side encryption to request when writing.
    pub sse: Option<Sse>,
}

impl S3Target {
    /// An Amazon S3 bucket in the default region, without an endpoint or SSE.
    pub fn new(
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            endpoint: None,
            region: None,
            sse: None,
        }
    }

    /// Sets the endpoint of an S3-compatible store.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Requests server-side encryption on writes.
    pub fn with_sse(mut self, sse: Sse) -> Self {
        self.sse = Some(sse);
        self
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        self.region
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_S3_REGION)
    }

    /// The normalized endpoint URL (scheme added, trailing `/` removed), if one is set.
    pub fn endpoint_url(&self) -> Result<Option<url::Url>, Error> {
        self.endpoint
            .as_deref()
            .map(|e| parse_endpoint(e, "S3 endpoint"))
            .transpose()
    }

    /// The base URL requests go to, for messages.
    pub fn display_endpoint(&self) -> String {
        match self.endpoint_url() {
            Ok(Some(url)) => url.as_str().trim_end_matches('/').to_string(),
            Ok(None) => format!("https://s3.{}.amazonaws.com", self.region()),
            Err(_) => self.endpoint.clone().unwrap_or_default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.bucket.trim().is_empty() {
            return Err(Error::InvalidTarget("the S3 bucket name is empty".into()));
        }
        if self.bucket.contains('/') {
            return Err(Error::InvalidTarget(format!(
                "the S3 bucket name {:?} contains '/'",
                self.bucket
            )));
        }
        if self.access_key_id.trim().is_empty() {
            return Err(Error::InvalidTarget("the S3 access key id is empty".into()));
        }
        if self.secret_access_key.expose_secret().is_empty() {
            return Err(Error::InvalidTarget(
                "the S3 secret access key is empty".into(),
            ));
        }
        self.endpoint_url()?;
        Ok(())
    }
}

impl fmt::Debug for S3Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("sse", &self.sse)
            .finish()
    }
}

/// An Azure Blob Storage container.
#[derive(Clone)]
pub struct AzureTarget {
    /// The storage account name.
    pub account_name: String,
    /// The storage account key (base64, as the portal shows it).
    pub account_key: SecretString,
    /// The container name.
    pub container: String,
    /// The blob domain for another cloud, e.g. `blob.core.chinacloudapi.cn`: requests go to
    /// `https://{account_name}.{domain}`. [`DEFAULT_AZURE_DOMAIN`] when `None`.
    pub domain: Option<String>,
    /// A full account URL, which wins over `domain`: for Azurite, path-style
    /// `http://127.0.0.1:10000/devstoreaccount1`. An `http://` endpoint is allowed.
    pub endpoint: Option<String>,
}

impl AzureTarget {
    /// A container in the Azure public cloud.
    pub fn new(
        account_name: impl Into<String>,
        account_key: SecretString,
        container: impl Into<String>,
    ) -> Self {
        Self {
            account_name: account_name.into(),
            account_key,
            container: container.into(),
            domain: None,
            endpoint: None,
        }
    }

    /// Sets a full account URL (Azurite: `http://127.0.0.1:PORT/devstoreaccount1`).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the blob domain of another Azure cloud.
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The account URL requests go to: the endpoint, or `https://{account}.{domain}`.
    pub fn account_url(&self) -> Result<url::Url, Error> {
        match self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(endpoint) => parse_endpoint(endpoint, "Azure endpoint"),
            None => {
                let domain = self
                    .domain
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty());
                let domain = domain.unwrap_or(DEFAULT_AZURE_DOMAIN);
                let domain = domain
                    .trim_start_matches("https://")
                    .trim_start_matches('.')
                    .trim_end_matches('/');
                parse_endpoint(
                    &format!("https://{}.{domain}", self.account_name),
                    "Azure account URL",
                )
            }
        }
    }

    /// The account URL, for messages.
    pub fn display_endpoint(&self) -> String {
        match self.account_url() {
            Ok(url) => url.as_str().trim_end_matches('/').to_string(),
            Err(_) => self.endpoint.clone().unwrap_or_default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.account_name.trim().is_empty() {
            return Err(Error::InvalidTarget(
                "the Azure account name is empty".into(),
            ));
        }
        if self.container.trim().is_empty() {
            return Err(Error::InvalidTarget(
                "the Azure container name is empty".into(),
            ));
        }
        if self.container.contains('/') {
            return Err(Error::InvalidTarget(format!(
                "the Azure container name {:?} contains '/'",
                self.container
            )));
        }
        let key = self.account_key.expose_secret();
        if key.is_empty() {
            return Err(Error::InvalidTarget(
                "the Azure account key is empty".into(),
            ));
        }
        if object_store::azure::AzureAccessKey::try_new(key).is_err() {
            return Err(Error::InvalidTarget(
                "the Azure account key is not base64 (copy key1 or key2 from the storage account's Access keys)".into(),
            ));
        }
        self.account_url()?;
        Ok(())
    }
}

impl fmt::Debug for AzureTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureTarget")
            .field("account_name", &self.account_name)
            .field("account_key", &"[REDACTED]")
            .field("container", &self.container)
            .field("domain", &self.domain)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Target {
    /// `"bucket"` or `"container"`, for messages.
    pub fn container_kind(&self) -> &'static str {
        match self {
            Target::S3(_) => "bucket",
            Target::Azure(_) => "container",
        }
    }

    /// The bucket or container name.
    pub fn container_name(&self) -> &str {
        match self {
            Target::S3(s3) => &s3.bucket,
            Target::Azure(az) => &az.container,
        }
    }

    /// The endpoint requests go to, for messages.
    pub fn display_endpoint(&self) -> String {
        match self {
            Target::S3(s3) => s3.display_endpoint(),
            Target::Azure(az) => az.display_endpoint(),
        }
    }

    /// `"S3"` or `"Azure"`, for messages.
    pub fn service_name(&self) -> &'static str {
        match self {
            Target::S3(_) => "S3",
            Target::Azure(_) => "Azure",
        }
    }

    /// Checks the fields without any network access.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Target::S3(s3) => s3.validate(),
            Target::Azure(az) => az.validate(),
        }
    }
}

impl From<S3Target> for Target {
    fn from(value: S3Target) -> Self {
        Target::S3(value)
    }
}

impl From<AzureTarget> for Target {
    fn from(value: AzureTarget) -> Self {
        Target::Azure(value)
    }
}

/// The service's JSON form of a target (`PUT .../archive/storage`): the bucket or container it uploads to.
///
/// `"sse": "s3"` becomes [`Sse::S3`], `"none"` none; an S3 `endpoint` is kept (an `http://` one allowed);
/// Azure's `domain` is kept. An Azurite endpoint is not part of the service's JSON: set
/// [`AzureTarget::endpoint`] after converting. The result is validated.
///
/// ```
/// use opentok_rest::model::StorageTarget;
/// use storage_fetch::Target;
///
/// let json = r#"{"type":"s3","config":{"bucket":"b","secretKey":"s","accessKey":"a","sse":"s3"},"fallback":"none"}"#;
/// let service: StorageTarget = serde_json::from_str(json).unwrap();
/// let target = Target::try_from(&service).unwrap();
/// assert_eq!(target.container_name(), "b");
/// ```
impl TryFrom<&opentok_rest::model::StorageTarget> for Target {
    type Error = Error;

    fn try_from(value: &opentok_rest::model::StorageTarget) -> Result<Self, Error> {
        use opentok_rest::model::{ServerSideEncryption, StorageDestination};
        let target = match &value.destination {
            StorageDestination::S3(c) => Target::S3(S3Target {
                bucket: c.bucket.clone(),
                access_key_id: c.access_key.clone(),
                secret_access_key: c.secret_key.clone(),
                endpoint: c.endpoint.clone().filter(|e| !e.trim().is_empty()),
                region: None,
                sse: match c.sse {
                    Some(ServerSideEncryption::S3) => Some(Sse::S3),
                    Some(ServerSideEncryption::None) | None => None,
                },
            }),
            StorageDestination::Azure(c) => Target::Azure(AzureTarget {
                account_name: c.account_name.clone(),
                account_key: c.account_key.clone(),
                container: c.container.clone(),
                domain: c.domain.clone().filter(|d| !d.trim().is_empty()),
                endpoint: None,
            }),
        };
        target.validate()?;
        Ok(target)
    }
}

/// Whether the endpoint `url` is plain HTTP that may be used: only on loopback, or when `allow_http` (from [`StoreOptions::allow_http`](crate::StoreOptions::allow_http)) allows it
/// explicitly; an `http://` endpoint elsewhere is an [`Error::InvalidTarget`] that says how to allow it.
pub(crate) fn plain_http_allowed(url: &url::Url, allow_http: bool) -> Result<bool, Error> {
    if url.scheme() != "http" {
        return Ok(false);
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    };
    if loopback || allow_http {
        return Ok(true);
    }
    Err(Error::InvalidTarget(format!(
        "the endpoint {} is plain http:// on a host that is not this machine (requests would cross the \
         network unencrypted): use https://, or allow plain HTTP explicitly",
        url.as_str().trim_end_matches('/')
    )))
}

/// Parses an endpoint, adding `https://` to a bare host name; only http and https, no query or fragment.
fn parse_endpoint(raw: &str, what: &str) -> Result<url::Url, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::InvalidTarget(format!("the {what} is empty")));
    }
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| Error::InvalidTarget(format!("the {what} {raw:?} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::InvalidTarget(format!(
            "the {what} {raw:?} must be http:// or https://"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidTarget(format!(
            "the {what} {raw:?} has no host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::InvalidTarget(format!(
            "the {what} {raw:?} must not have a query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidTarget(format!(
            "the {what} must not carry credentials"
        )));
    }
    // object_store appends `/{bucket}` itself: keep the path, without a trailing slash.
    let trimmed = url.as_str().trim_end_matches('/').to_string();
    url::Url::parse(&trimmed)
        .map_err(|e| Error::InvalidTarget(format!("the {what} {raw:?} is not a URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> S3Target {
        S3Target::new("bucket", "AKID", SecretString::from("very-secret-key"))
    }

    fn azure() -> AzureTarget {
        AzureTarget::new(
            "acct",
            SecretString::from("c2VjcmV0LWtleS1ieXRlcw=="),
            "archives",
        )
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = format!("{:?}", Target::S3(s3()));
        assert!(
            s.contains("AKID") && s.contains("[REDACTED]") && !s.contains("very-secret-key"),
            "{s}"
        );
        let a = format!("{:?}", Target::Azure(azure()));
        assert!(
            a.contains("acct") && a.contains("[REDACTED]") && !a.contains("c2VjcmV0"),
            "{a}"
        );
    }

    #[test]
    fn endpoints_are_normalized() {
        let t = s3().with_endpoint("s3.cloudianhyperstore.com");
        assert_eq!(
            t.endpoint_url().unwrap().unwrap().as_str(),
            "https://s3.cloudianhyperstore.com/"
        );
        let t = s3().with_endpoint("http://127.0.0.1:9000/");
        assert_eq!(t.display_endpoint(), "http://127.0.0.1:9000");
        assert_eq!(
            s3().display_endpoint(),
            "https://s3.us-east-1.amazonaws.com"
        );
        assert_eq!(s3().with_region("eu-west-1").region(), "eu-west-1");
        assert_eq!(s3().with_region("").region(), DEFAULT_S3_REGION);

        let a = azure().with_endpoint("http://127.0.0.1:10000/devstoreaccount1/");
        assert_eq!(
            a.account_url().unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            azure().account_url().unwrap().as_str(),
            "https://acct.blob.core.windows.net/"
        );
        let cn = azure().with_domain("blob.core.chinacloudapi.cn");
        assert_eq!(
            cn.display_endpoint(),
            "https://acct.blob.core.chinacloudapi.cn"
        );
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_allowed() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        for local in [
            "http://127.0.0.1:9000",
            "http://[::1]:10000/devstoreaccount1",
            "http://localhost:9000",
            "http://minio.localhost",
        ] {
            assert!(plain_http_allowed(&url(local), false).unwrap(), "{local}");
        }
        assert!(!plain_http_allowed(&url("https://s3.example"), false).unwrap());
        for remote in [
            "http://10.0.0.7:9000",
            "http://minio.example",
            "http://localhost.evil.com",
        ] {
            let err = plain_http_allowed(&url(remote), false).unwrap_err();
            assert!(matches!(err, Error::InvalidTarget(_)), "{remote}");
            assert!(
                err.to_string().contains("allow plain HTTP explicitly"),
                "{err}"
            );
            assert!(plain_http_allowed(&url(remote), true).unwrap(), "{remote}");
        }
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        let msg = |t: Target| t.validate().unwrap_err().to_string();
        assert!(
            msg(S3Target::new("", "a", SecretString::from("b")).into())
                .contains("bucket name is empty")
        );
        assert!(
            msg(S3Target::new("b", "", SecretString::from("b")).into()).contains("access key id")
        );
        assert!(
            msg(S3Target::new("b", "a", SecretString::from("")).into())
                .contains("secret access key")
        );
        assert!(msg(s3().with_endpoint("ftp://host").into()).contains("http:// or https://"));
        assert!(msg(s3().with_endpoint("http://u:p@host").into()).contains("credentials"));
        assert!(msg(s3().with_endpoint("http://host/?x=1").into()).contains("query"));
        let bad_key = AzureTarget::new("acct", SecretString::from("not base64 !!"), "c");
        assert!(msg(bad_key.into()).contains("not base64"));
        assert!(
            msg(AzureTarget::new("acct", SecretString::from("aGk="), "").into())
                .contains("container name")
        );
        assert!(Target::from(s3()).validate().is_ok());
        assert!(Target::from(azure()).validate().is_ok());
    }

    #[test]
    fn the_services_json_converts() {
        use opentok_rest::model::StorageTarget;
        let json = r#"{"type":"s3","config":{"bucket":"example.com.archive-bucket","secretKey":"BvKwyshsmEATx5mngeloHwgKrYMbP+","accessKey":"AWFS7BAO536E6MXA","endpoint":"https://s3.cloudianhyperstore.com","sse":"s3"},"fallback":"none","certificate":null}"#;
        let service: StorageTarget = serde_json::from_str(json).unwrap();
        let Target::S3(s3) = Target::try_from(&service).unwrap() else {
            panic!("not S3")
        };
        assert_eq!(s3.bucket, "example.com.archive-bucket");
        assert_eq!(s3.access_key_id, "AWFS7BAO536E6MXA");
        assert_eq!(
            s3.secret_access_key.expose_secret(),
            "BvKwyshsmEATx5mngeloHwgKrYMbP+"
        );
        assert_eq!(
            s3.endpoint.as_deref(),
            Some("https://s3.cloudianhyperstore.com")
        );
        assert_eq!((s3.sse, s3.region()), (Some(Sse::S3), DEFAULT_S3_REGION));

        let json = r#"{"type":"azure","config":{"accountName":"acct","accountKey":"c2VjcmV0","container":"archives","domain":"blob.core.usgovcloudapi.net"}}"#;
        let service: StorageTarget = serde_json::from_str(json).unwrap();
        let Target::Azure(az) = Target::try_from(&service).unwrap() else {
            panic!("not Azure")
        };
        assert_eq!(
            (az.account_name.as_str(), az.container.as_str()),
            ("acct", "archives")
        );
        assert_eq!(
            az.display_endpoint(),
            "https://acct.blob.core.usgovcloudapi.net"
        );

        let json = r#"{"type":"azure","config":{"accountName":"acct","accountKey":"not base64!","container":"c"}}"#;
        let service: StorageTarget = serde_json::from_str(json).unwrap();
        assert!(matches!(
            Target::try_from(&service),
            Err(Error::InvalidTarget(_))
        ));
    }
}
