//! Reading: an object's size and ETag ([`Store::head`]), finding an archive's object ([`Store::locate`]),
//! listing ([`Store::list`]) and checked ranged GETs ([`Store::get_range`]; the parts of a
//! [`Download`](crate::Download) use the same `fetch_range`).

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStoreExt};

use super::{ArchiveKind, Located, ObjectInfo, Store, archive_key};
use crate::error::{Error, Message, Symptom, classify};

/// The most a ranged read reserves ahead for its answer (it grows past this as bytes arrive).
const MAX_RESERVE: u64 = 64 << 20;

impl Store {
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
        let options = &self.inner.options;
        let delays = options.backoff.delays(options.retries);
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
        if let (Some(expected), Some(got)) = (e_tag, result.meta.e_tag.as_deref())
            && expected != got
        {
            return Err(changed(format!("ETag was {expected}, now {got}")));
        }
        if let Some(expected) = size
            && result.meta.size != expected
        {
            return Err(changed(format!(
                "size was {expected}, now {}",
                result.meta.size
            )));
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
