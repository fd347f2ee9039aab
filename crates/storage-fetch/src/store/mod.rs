//! [`Store`]: one connection to a [`Target`], with every operation archivectl and the emulator need.
//!
//! Read top-down: this file holds the connection itself and what every operation shares (object keys,
//! error explanation, the retry loop); `options` how it talks to the target; `objects` what operations
//! name and return; `connect` builds the S3 or Azure client; `read` and `write` are the operations.

use std::fmt;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore};

use crate::error::{Ctx, Error, Symptom, classify};
use crate::target::Target;

mod connect;
mod objects;
mod options;
mod read;
mod write;

pub use objects::{ArchiveKind, Located, ObjectInfo, PutInfo, archive_key};
pub use options::{Backoff, MultipartOptions, StoreOptions};
pub(crate) use write::part_retry_policy;

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

impl Store {
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
        let options = &self.inner.options;
        let delays = options.backoff.delays(options.retries);
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
}

#[cfg(test)]
mod tests;
