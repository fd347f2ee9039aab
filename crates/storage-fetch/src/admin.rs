//! Creating the bucket or container, for the emulator, local test servers and `archivectl demo`.
//!
//! object_store works inside one existing bucket and has no call for creating one, so this is a single signed
//! request made with object_store's own HTTP client and signers (SigV4 for S3, SharedKey for Azure).

use http::Method;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
use object_store::client::{HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector};
use secrecy::ExposeSecret;

use crate::error::{Error, Symptom, chain_text, classify};
use crate::store::Store;
use crate::target::{DEFAULT_S3_REGION, Target};

impl Store {
    /// Creates the target's bucket or container. Returns `true` if it was created, `false` if it existed
    /// already (and is ours). Meant for test servers and the emulator; real targets are made by their owners.
    ///
    /// ```no_run
    /// # async fn demo(store: storage_fetch::Store) -> Result<(), storage_fetch::Error> {
    /// let created = store.create_container().await?;
    /// println!("{}", if created { "created" } else { "already there" });
    /// # Ok(()) }
    /// ```
    pub async fn create_container(&self) -> Result<bool, Error> {
        let ctx = self.ctx("create", "");
        let mut request = self.create_request()?;
        let invalid = |e: object_store::Error| Error::InvalidTarget(chain_text(&e));
        match self.target() {
            Target::S3(s3) => {
                let credential = AwsCredential {
                    key_id: s3.access_key_id.clone(),
                    secret_key: s3.secret_access_key.expose_secret().to_string(),
                    token: None,
                };
                AwsAuthorizer::new(&credential, "s3", s3.region())
                    .try_authorize(&mut request, None)
                    .map_err(invalid)?;
            }
            Target::Azure(az) => {
                let key = AzureAccessKey::try_new(az.account_key.expose_secret()).map_err(|e| {
                    Error::InvalidTarget(format!("the Azure account key is unusable: {e}"))
                })?;
                let credential = AzureCredential::AccessKey(key);
                AzureAuthorizer::new(&credential, &az.account_name)
                    .try_authorize(&mut request)
                    .map_err(invalid)?;
            }
        }
        let client = ReqwestConnector::default()
            .connect(&self.inner.client_options)
            .map_err(|e| Error::InvalidTarget(chain_text(&e)))?;
        let response = match client.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                let err = object_store::Error::Generic {
                    store: "create",
                    source: Box::new(e),
                };
                return Err(classify(Symptom::of(&err), &ctx, Box::new(err)));
            }
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(true);
        }
        let body = response
            .into_body()
            .bytes()
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let body = body.unwrap_or_default();
        // BucketAlreadyExists (without "OwnedByYou") is someone else's bucket: an error.
        if status == 409
            && (body.contains("BucketAlreadyOwnedByYou") || body.contains("ContainerAlreadyExists"))
        {
            return Ok(false);
        }
        let message = format!("HTTP {status}: {body}");
        Err(classify(
            Symptom::http(status, &body),
            &ctx,
            Box::new(crate::error::Message(message)),
        ))
    }

    fn create_request(&self) -> Result<HttpRequest, Error> {
        let url = match self.target() {
            Target::S3(s3) => {
                let base = match s3.endpoint_url()? {
                    Some(url) => url.as_str().trim_end_matches('/').to_string(),
                    None => format!("https://s3.{}.amazonaws.com", s3.region()),
                };
                format!("{base}/{}", s3.bucket)
            }
            Target::Azure(az) => {
                format!(
                    "{}/{}?restype=container",
                    az.account_url()?.as_str().trim_end_matches('/'),
                    az.container
                )
            }
        };
        let body = match self.target() {
            Target::S3(s3) if s3.endpoint.is_none() && s3.region() != DEFAULT_S3_REGION => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                s3.region()
            ),
            _ => String::new(),
        };
        let body = if body.is_empty() {
            HttpRequestBody::empty()
        } else {
            HttpRequestBody::from(body)
        };
        http::Request::builder()
            .method(Method::PUT)
            .uri(&url)
            .body(body)
            .map_err(|e| Error::InvalidTarget(format!("cannot build the request to {url}: {e}")))
    }
}
