//! Parallel ranged downloads delivered in order: [`Store::download`] and [`Download`].
//!
//! The object's size and ETag are read once (HEAD) at the start, or taken from the caller who just read them
//! ([`Store::download_object`]). The range `[start_offset, size)` is cut into
//! parts of `part_size`; up to `concurrency` parts are fetched at once, each in its own task (so the network
//! keeps going while the consumer works), each with `If-Match: <ETag>` and its response's ETag and total size
//! compared with the start's, each retried with exponential backoff on network failures and 5xx. Parts are
//! handed over strictly in order. At most `concurrency` parts are held (fetched or fetching) besides the one
//! the consumer has, so memory is bounded by `part_size × (concurrency + 1)` whatever the object's size. Downloads
//! that share a pool made with [`PartBuffers::with_budget`] hold at most its number of parts *in all*, however
//! many run at once: one budget for a whole run.
//!
//! A consumer that is done with a part can hand its buffer back ([`PartBuffers::give_back`], through
//! [`Download::buffers`]): the next parts are read into it, so a download of any size allocates its part
//! buffers once, instead of a fresh one per part that the allocator may not return to the system.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use object_store::path::Path;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::{Error, Message};
use crate::store::{ObjectInfo, Store};

/// The AES block size: resuming a CBC decryption at offset `o` needs bytes `[o - 16, o)`.
pub const CBC_BLOCK: u64 = 16;

/// How [`Store::download`] fetches.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Bytes per ranged GET. Keep it a multiple of 16 (with a 16-aligned `start_offset`) and every part but the
    /// last is a whole number of AES blocks.
    pub part_size: u64,
    /// Parts fetched at once (at least 1).
    pub concurrency: usize,
    /// Where to start, for resuming; parts then cover `[start_offset, size)`.
    pub start_offset: u64,
    /// The ETag the object had when an earlier, interrupted download began: if it differs now, the object
    /// was replaced and resuming would mix two versions, so [`Error::ObjectChanged`] is returned at once.
    pub expected_etag: Option<String>,
    /// How often one part is tried again after a transient failure (network, 5xx) before the download fails.
    pub retries: u32,
    /// A pool shared with other downloads (one for a whole run of many objects): parts are read into its
    /// buffers, so buffers are allocated once for the run instead of once per object, and memory does not
    /// creep up with the number of objects. `None` (or a pool for another `part_size`): a pool of its own.
    pub buffers: Option<PartBuffers>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            part_size: 8 << 20,
            concurrency: 4,
            start_offset: 0,
            expected_etag: None,
            retries: 5,
            buffers: None,
        }
    }
}

impl DownloadOptions {
    /// Sets where to start (resume).
    pub fn starting_at(mut self, offset: u64) -> Self {
        self.start_offset = offset;
        self
    }

    /// Sets the ETag the object must still have.
    pub fn expecting_etag(mut self, e_tag: impl Into<String>) -> Self {
        self.expected_etag = Some(e_tag.into());
        self
    }
}

/// The part buffers of one [`Download`], for reuse: parts are read into a buffer handed back with
/// [`PartBuffers::give_back`] when there is one, else into a new one.
///
/// ```no_run
/// # async fn demo(store: storage_fetch::Store) -> Result<(), storage_fetch::Error> {
/// use futures_util::StreamExt;
/// use storage_fetch::DownloadOptions;
///
/// let mut download = store.download("123456/abc/archive.ts", DownloadOptions::default()).await?;
/// let buffers = download.buffers();
/// while let Some(part) = download.next().await {
///     let mut part = part?.try_into_mut().expect("parts are not shared");
///     // decrypt `part` in place, write it ...
///     buffers.give_back(part);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PartBuffers {
    free: Arc<Mutex<Vec<BytesMut>>>,
    keep: usize,
    part_size: usize,
    /// With [`PartBuffers::with_budget`]: one permit per part fetching, fetched or being consumed, over every
    /// download sharing the pool.
    budget: Option<Arc<tokio::sync::Semaphore>>,
}

impl PartBuffers {
    /// A pool of buffers for parts of `part_size` bytes that keeps at most `keep` handed-back buffers (give it
    /// to [`DownloadOptions::buffers`] to share it between downloads).
    pub fn new(keep: usize, part_size: u64) -> Self {
        Self {
            free: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            budget: None,
        }
    }

    /// A pool that is also a budget: the downloads sharing it hold at most `parts` parts at once in all
    /// (fetching, fetched and waiting, or the one each consumer is working on), whatever their number and
    /// their own [`DownloadOptions::concurrency`]; memory is then about `parts × part_size` however many
    /// objects are downloaded at once. A part waits for room before its GET is sent. Parts take room in
    /// order within a download, and the room is first come, first served between downloads, so every download
    /// keeps going. The part a consumer was given counts until it asks for the next one (or drops the
    /// download), so hand the buffer back before asking.
    pub fn with_budget(parts: usize, part_size: u64) -> Self {
        let parts = parts.max(1);
        Self {
            budget: Some(Arc::new(tokio::sync::Semaphore::new(parts))),
            ..Self::new(parts, part_size)
        }
    }

    /// Room for one more part, when the pool is a budget (waits for it).
    async fn room(budget: Option<Arc<tokio::sync::Semaphore>>) -> Option<OwnedSemaphorePermit> {
        match budget {
            // Never closed: an error cannot happen, and would only mean no limit.
            Some(budget) => budget.acquire_owned().await.ok(),
            None => None,
        }
    }

    /// A buffer for the next part: a handed-back one if there is one, else a new one.
    fn take(&self) -> BytesMut {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| BytesMut::with_capacity(self.part_size))
    }

    /// Hands a part's buffer back for the next parts (kept only if it can hold a whole part and fewer than
    /// `concurrency + 1` are waiting; dropped otherwise).
    pub fn give_back(&self, mut buffer: BytesMut) {
        if buffer.capacity() < self.part_size {
            return;
        }
        buffer.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.keep {
            free.push(buffer);
        }
    }
}

/// The ranges of parts covering `[start, size)`.
pub(crate) fn part_ranges(start: u64, size: u64, part_size: u64) -> Vec<Range<u64>> {
    let part_size = part_size.max(1);
    let mut out = Vec::new();
    let mut at = start;
    while at < size {
        let end = at.saturating_add(part_size).min(size);
        out.push(at..end);
        at = end;
    }
    out
}

/// An in-progress download: a [`Stream`] of the object's bytes from `start_offset` on, in parts, in order.
///
/// The first `Err` ends the stream. Dropping a `Download` cancels the parts in flight.
///
/// ```no_run
/// # async fn demo(store: storage_fetch::Store) -> Result<(), storage_fetch::Error> {
/// use futures_util::StreamExt;
/// use storage_fetch::DownloadOptions;
///
/// let mut download = store.download("123456/abc/archive.ts", DownloadOptions::default()).await?;
/// println!("{} bytes, ETag {:?}", download.size(), download.e_tag());
/// while let Some(part) = download.next().await {
///     let part = part?;
///     // decrypt / write `part` ...
/// #   let _ = part;
/// }
/// # Ok(()) }
/// ```
pub struct Download {
    store: Store,
    key: String,
    path: Path,
    size: u64,
    e_tag: Option<String>,
    start_offset: u64,
    retries: u32,
    parts: BoxStream<'static, (Result<Bytes, Error>, Option<OwnedSemaphorePermit>)>,
    buffers: PartBuffers,
    /// The budget's room for the part last handed to the consumer (freed when the next one is asked for).
    handed: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("key", &self.key)
            .field("size", &self.size)
            .field("e_tag", &self.e_tag)
            .field("start_offset", &self.start_offset)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Download {
    fn source(&self) -> PartSource {
        PartSource {
            store: self.store.clone(),
            path: self.path.clone(),
            key: self.key.clone(),
            e_tag: self.e_tag.clone(),
            size: self.size,
            retries: self.retries,
        }
    }

    /// The pool the parts are read into: hand a part's buffer back when done with it (see [`PartBuffers`]).
    pub fn buffers(&self) -> PartBuffers {
        self.buffers.clone()
    }

    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The object's whole size, as read at the start.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's ETag as read at the start (every part was checked against it). Keep it to resume later
    /// with [`DownloadOptions::expected_etag`].
    pub fn e_tag(&self) -> Option<&str> {
        self.e_tag.as_deref()
    }

    /// Where the parts start.
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    /// Bytes the parts will deliver in all: `size - start_offset`.
    pub fn len(&self) -> u64 {
        self.size - self.start_offset
    }

    /// Whether there is nothing to deliver.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The 16 bytes just before `start_offset` (checked against the same ETag), which is the IV for a
    /// CBC decryption resumed there; `None` when starting at 0 (the archive's own IV applies).
    ///
    /// Errors with [`Error::InvalidRequest`] if `start_offset` is below 16.
    pub async fn previous_block(&self) -> Result<Option<[u8; CBC_BLOCK as usize]>, Error> {
        if self.start_offset == 0 {
            return Ok(None);
        }
        if self.start_offset < CBC_BLOCK {
            return Err(Error::InvalidRequest(format!(
                "no whole block before offset {} of {}",
                self.start_offset, self.key
            )));
        }
        let range = self.start_offset - CBC_BLOCK..self.start_offset;
        let bytes = self.source().fetch(range, None).await?;
        let block: [u8; CBC_BLOCK as usize] =
            bytes.as_ref().try_into().map_err(|_| Error::Storage {
                service: self.store.target().service_name(),
                operation: "read",
                location: self.key.clone(),
                status: None,
                transient: false,
                source: Box::new(Message(format!(
                    "expected 16 bytes, received {}",
                    bytes.len()
                ))),
            })?;
        Ok(Some(block))
    }
}

impl Stream for Download {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // The consumer asks for the next part: it is done with the last one.
        self.handed = None;
        if self.done {
            return Poll::Ready(None);
        }
        match self.parts.as_mut().poll_next(cx) {
            Poll::Ready(Some((Err(e), _))) => {
                // Fused on error: dropping the inner stream cancels the parts still in flight.
                self.done = true;
                self.parts = stream::empty().boxed();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some((Ok(part), room))) => {
                self.handed = room;
                Poll::Ready(Some(Ok(part)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A spawned task that is aborted when dropped, so that a dropped [`Download`] stops its requests.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// What every part of one download is fetched from; cheap to clone (one per part task).
#[derive(Clone)]
struct PartSource {
    store: Store,
    path: Path,
    key: String,
    e_tag: Option<String>,
    size: u64,
    retries: u32,
}

impl PartSource {
    /// Fetches one part (into a buffer from `buffers`, if given), retrying transient failures with the
    /// store's backoff.
    async fn fetch(self, range: Range<u64>, buffers: Option<PartBuffers>) -> Result<Bytes, Error> {
        use backon::Retryable as _;
        let delays = self.store.options().backoff.delays(self.retries);
        (|| {
            self.store.fetch_range(
                &self.path,
                &self.key,
                range.clone(),
                self.e_tag.as_deref(),
                Some(self.size),
                buffers.as_ref().map(PartBuffers::take),
            )
        })
        .retry(delays)
        .when(Error::is_transient)
        .await
    }
}

impl Store {
    /// Starts downloading `key`: reads its size and ETag, then returns a [`Download`] that yields its bytes
    /// from `opts.start_offset` on, in order, fetched in parallel ranged GETs.
    ///
    /// Errors at once: the errors of [`Store::head`]; [`Error::ObjectChanged`] if `opts.expected_etag` is
    /// set and differs; [`Error::InvalidRequest`] if `start_offset` is past the end or `part_size` is 0.
    /// Errors while streaming: [`Error::ObjectChanged`] if the object is replaced or deleted meanwhile, and
    /// whatever a part still hits after its retries.
    ///
    /// Must be called within a tokio runtime (parts are fetched in spawned tasks).
    pub async fn download(&self, key: &str, opts: DownloadOptions) -> Result<Download, Error> {
        if opts.part_size == 0 {
            return Err(Error::InvalidRequest(
                "part size must be at least 1 byte".into(),
            ));
        }
        Self::path(key)?;
        let info = self.head(key).await?;
        self.download_object(&info, opts)
    }

    /// [`Store::download`] of an object whose size and ETag were just read (by [`Store::head`],
    /// [`Store::locate`] or [`Store::list`]): no HEAD of its own. Every part is still fetched with
    /// `If-Match: <object.e_tag>` and its answer's ETag and total size compared with `object`'s, so an object
    /// replaced since it was read fails the download with [`Error::ObjectChanged`] at its first part.
    ///
    /// Errors as [`Store::download`], but for those of the HEAD.
    pub fn download_object(
        &self,
        object: &ObjectInfo,
        opts: DownloadOptions,
    ) -> Result<Download, Error> {
        if opts.part_size == 0 {
            return Err(Error::InvalidRequest(
                "part size must be at least 1 byte".into(),
            ));
        }
        let key = object.key.as_str();
        let path = Self::path(key)?;
        let info = object.clone();
        if let Some(expected) = &opts.expected_etag {
            match &info.e_tag {
                Some(now) if now != expected => {
                    return Err(Error::ObjectChanged {
                        key: key.to_string(),
                        detail: format!("ETag was {expected} when the download began, now {now}"),
                    });
                }
                None => {
                    return Err(Error::ObjectChanged {
                        key: key.to_string(),
                        detail: format!(
                            "ETag was {expected} when the download began, the store now sends none"
                        ),
                    });
                }
                _ => {}
            }
        }
        if opts.start_offset > info.size {
            return Err(Error::InvalidRequest(format!(
                "start offset {} is past the end of {key} ({} bytes)",
                opts.start_offset, info.size
            )));
        }
        let ranges = part_ranges(opts.start_offset, info.size, opts.part_size);
        let buffers = match opts.buffers {
            Some(shared) if shared.part_size as u64 == opts.part_size => shared,
            _ => PartBuffers::new(opts.concurrency.max(1) + 1, opts.part_size),
        };
        let pool = buffers.clone();
        let source = PartSource {
            store: self.clone(),
            path: path.clone(),
            key: key.to_string(),
            e_tag: info.e_tag.clone(),
            size: info.size,
            retries: opts.retries,
        };
        let budget = buffers.budget.clone();
        let parts = stream::iter(ranges)
            // Room in the budget (if any) part after part, in order, before each GET is sent.
            .then(move |range| PartBuffers::room(budget.clone()).map(|room| (range, room)))
            .map(move |(range, room)| {
                let part = AbortOnDrop(tokio::spawn(
                    source.clone().fetch(range, Some(pool.clone())),
                ));
                part.map(|joined| (joined, room))
            })
            .buffered(opts.concurrency.max(1))
            .map(|(joined, room)| {
                let part = joined.unwrap_or_else(|e| {
                    Err(Error::Storage {
                        service: "download",
                        operation: "read",
                        location: String::new(),
                        status: None,
                        transient: false,
                        source: Box::new(e),
                    })
                });
                (part, room)
            })
            .boxed();
        Ok(Download {
            store: self.clone(),
            key: key.to_string(),
            path,
            size: info.size,
            e_tag: info.e_tag,
            start_offset: opts.start_offset,
            retries: opts.retries,
            parts,
            buffers,
            handed: None,
            done: false,
        })
    }
}

#[cfg(test)]
mod tests;
