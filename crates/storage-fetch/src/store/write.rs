//! Writing: one-request puts ([`Store::put`]), multipart uploads that appear only when complete
//! ([`Store::put_multipart`], [`Store::put_multipart_stream`], with object_store's part retries driven by
//! `PartRetry`) and deletes ([`Store::delete`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::{ObjectStoreExt, PutMultipartOptions, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Backoff, MultipartOptions, PutInfo, Store};
use crate::error::Error;

impl Store {
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
