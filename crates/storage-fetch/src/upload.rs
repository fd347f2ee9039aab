//! [`Upload`]: an object written piece by piece as a multipart upload (S3 multipart upload, Azure blocks) that
//! the caller completes only once it is satisfied with everything it wrote — or aborts, so that nothing
//! appears and no part lingers.
//!
//! `pull --out-url` writes decrypted archives this way: the plaintext goes up as it is decrypted (memory stays
//! about `part_size × (concurrency + 1)`), and the upload is completed after the whole output is verified.
//! Until [`Upload::complete`] no object is visible under the key (S3 and Azure make a multipart upload
//! visible only when it is completed). [`Upload::abort`] aborts the upload (S3 deletes its parts; Azure has
//! no call for that: its uncommitted blocks expire by themselves, after a week, and are never visible). An
//! `Upload` dropped without either is aborted on the runtime it was started on.

use bytes::Bytes;
use object_store::{PutMultipartOptions, WriteMultipart};

use crate::error::Error;
use crate::store::{MultipartOptions, PutInfo, Store, part_retry_policy};

/// A multipart upload in progress: see the module docs. Made by [`Store::start_upload`].
#[derive(Debug)]
pub struct Upload {
    store: Store,
    key: String,
    writer: Option<WriteMultipart>,
    concurrency: usize,
    size: u64,
}

impl Store {
    /// Starts a multipart upload to `key` (replacing any object there once completed), in parts of
    /// `opts.part_size` (S3 wants at least 5 MiB for all parts but the last), `opts.concurrency` at once.
    ///
    /// Errors: as [`Store::put`] ([`Error::ContainerNotFound`], [`Error::Credentials`], ...).
    pub async fn start_upload(&self, key: &str, opts: MultipartOptions) -> Result<Upload, Error> {
        let path = Self::path(key)?;
        let upload_opts = PutMultipartOptions::default().with_retry_policy(part_retry_policy(self));
        let upload = match self
            .inner
            .store
            .put_multipart_opts(&path, upload_opts)
            .await
        {
            Ok(u) => u,
            Err(e) => return Err(self.explain(e, &self.ctx("write", key), None).await),
        };
        Ok(Upload {
            store: self.clone(),
            key: key.to_string(),
            writer: Some(WriteMultipart::new_with_chunk_size(
                upload,
                opts.part_size.max(1),
            )),
            concurrency: opts.concurrency.max(1),
            size: 0,
        })
    }
}

impl Upload {
    /// The key being written.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `data` (copied into the part being filled). Waits first while `concurrency` parts are
    /// uploading, so memory stays bounded. A failed part is an error here or at [`complete`](Self::complete);
    /// the caller then [`abort`](Self::abort)s.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::InvalidRequest(format!(
                "the upload to {} is already over",
                self.key
            )));
        };
        if let Err(e) = writer.wait_for_capacity(self.concurrency).await {
            return Err(self
                .store
                .explain(e, &self.store.ctx("write", &self.key), None)
                .await);
        }
        writer.put(Bytes::copy_from_slice(data));
        self.size += data.len() as u64;
        Ok(())
    }

    /// Sends the last part, waits for every part and completes the upload: only now does the object appear.
    /// On failure the upload is aborted (nothing appears).
    pub async fn complete(mut self) -> Result<PutInfo, Error> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::InvalidRequest(format!(
                "the upload to {} is already over",
                self.key
            )));
        };
        match writer.finish().await {
            Ok(result) => Ok(PutInfo {
                key: self.key.clone(),
                size: self.size,
                e_tag: result.e_tag,
            }),
            Err(e) => Err(self
                .store
                .explain(e, &self.store.ctx("write", &self.key), None)
                .await),
        }
    }

    /// Aborts the upload: the parts already sent are deleted (S3) and no object appears.
    pub async fn abort(mut self) -> Result<(), Error> {
        match self.writer.take() {
            Some(writer) => match writer.abort().await {
                Ok(()) => Ok(()),
                Err(e) => Err(self
                    .store
                    .explain(e, &self.store.ctx("abort the upload of", &self.key), None)
                    .await),
            },
            None => Ok(()),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Neither completed nor aborted (a panic, a future dropped): abort in the background, best effort.
        if let (Some(writer), Ok(handle)) =
            (self.writer.take(), tokio::runtime::Handle::try_current())
        {
            handle.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}
