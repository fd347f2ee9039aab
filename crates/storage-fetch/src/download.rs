//! Parallel ranged downloads delivered in order: [`Store::download`] and [`Download`].
//!
//! The object's size and ETag are read once (HEAD) at the start. The range `[start_offset, size)` is cut into
//! parts of `part_size`; up to `concurrency` parts are fetched at once, each in its own task (so the network
//! keeps going while the consumer works), each with `If-Match: <ETag>` and its response's ETag and total size
//! compared with the start's, each retried with exponential backoff on network failures and 5xx. Parts are
//! handed over strictly in order. At most `concurrency` parts are held (fetched or fetching) besides the one
//! the consumer has, so memory is bounded by `part_size × (concurrency + 1)` whatever the object's size.
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
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use object_store::path::Path;

use crate::error::{Error, Message};
use crate::store::Store;

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
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            part_size: 8 << 20,
            concurrency: 4,
            start_offset: 0,
            expected_etag: None,
            retries: 5,
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
}

impl PartBuffers {
    fn new(keep: usize, part_size: u64) -> Self {
        Self {
            free: Arc::new(Mutex::new(Vec::with_capacity(keep))),
            keep,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
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
    parts: BoxStream<'static, Result<Bytes, Error>>,
    buffers: PartBuffers,
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
        if self.done {
            return Poll::Ready(None);
        }
        match self.parts.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(e))) => {
                // Fused on error: dropping the inner stream cancels the parts still in flight.
                self.done = true;
                self.parts = stream::empty().boxed();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
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
        let path = Self::path(key)?;
        let info = self.head(key).await?;
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
        let buffers = PartBuffers::new(opts.concurrency.max(1) + 1, opts.part_size);
        let pool = buffers.clone();
        let source = PartSource {
            store: self.clone(),
            path: path.clone(),
            key: key.to_string(),
            e_tag: info.e_tag.clone(),
            size: info.size,
            retries: opts.retries,
        };
        let parts = stream::iter(ranges)
            .map(move |range| {
                AbortOnDrop(tokio::spawn(
                    source.clone().fetch(range, Some(pool.clone())),
                ))
            })
            .buffered(opts.concurrency.max(1))
            .map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(Error::Storage {
                        service: "download",
                        operation: "read",
                        location: String::new(),
                        status: None,
                        transient: false,
                        source: Box::new(e),
                    })
                })
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
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_exactly() {
        assert_eq!(part_ranges(0, 10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(part_ranges(0, 8, 4), vec![0..4, 4..8]);
        assert_eq!(part_ranges(5, 8, 4), vec![5..8]);
        assert!(part_ranges(8, 8, 4).is_empty());
        assert_eq!(part_ranges(0, 3, 0), vec![0..1, 1..2, 2..3]);
        let big = part_ranges(16, 1_000_003, 65_536);
        assert_eq!(big.first().map(|r| r.start), Some(16));
        assert_eq!(big.last().map(|r| r.end), Some(1_000_003));
        assert!(big.windows(2).all(|w| w[0].end == w[1].start));
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures_util::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };

    use crate::error::Message;
    use crate::store::{Backoff, StoreOptions};

    /// An in-memory store whose ranged GETs are slow, counted, and fail transiently on chosen attempts.
    #[derive(Debug)]
    struct Instrumented {
        inner: InMemory,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        gets: AtomicUsize,
        /// The first `fail_first` GETs of each range fail with a 503.
        fail_first: usize,
        tries: std::sync::Mutex<std::collections::HashMap<u64, usize>>,
        /// When set, GETs of every range but the first are held until the test releases them.
        hold: Option<Arc<Hold>>,
    }

    /// GETs held at the server: each one counts itself in `started`, then waits for a permit of `release`;
    /// one dropped while waiting (its request cancelled) counts itself in `cancelled`.
    #[derive(Debug)]
    struct Hold {
        release: tokio::sync::Semaphore,
        started: tokio::sync::watch::Sender<usize>,
        cancelled: tokio::sync::watch::Sender<usize>,
    }

    /// Counts a held GET as cancelled if dropped before its release.
    struct HeldGet {
        hold: Arc<Hold>,
        released: bool,
    }

    impl Drop for HeldGet {
        fn drop(&mut self) {
            if !self.released {
                self.hold.cancelled.send_modify(|n| *n += 1);
            }
        }
    }

    impl std::fmt::Display for Instrumented {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Instrumented")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Instrumented {
        async fn put_opts(
            &self,
            p: &Path,
            payload: PutPayload,
            o: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.inner.put_opts(p, payload, o).await
        }
        async fn put_multipart_opts(
            &self,
            p: &Path,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(p, o).await
        }
        async fn get_opts(&self, p: &Path, o: GetOptions) -> object_store::Result<GetResult> {
            if o.range.is_none() || o.head {
                return self.inner.get_opts(p, o).await;
            }
            self.gets.fetch_add(1, Ordering::SeqCst);
            let start = match &o.range {
                Some(object_store::GetRange::Bounded(r)) => r.start,
                _ => u64::MAX,
            };
            let tries = {
                let mut tries = self
                    .tries
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let t = tries.entry(start).or_insert(0);
                *t += 1;
                *t
            };
            if let Some(hold) = self.hold.as_ref().filter(|_| start > 0) {
                let mut held = HeldGet {
                    hold: hold.clone(),
                    released: false,
                };
                hold.started.send_modify(|n| *n += 1);
                hold.release
                    .acquire()
                    .await
                    .expect("the semaphore is never closed")
                    .forget();
                held.released = true;
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if tries <= self.fail_first {
                return Err(object_store::Error::Generic {
                    store: "test",
                    source: Box::new(Message(
                        "Server returned non-2xx status code: 503 Service Unavailable".into(),
                    )),
                });
            }
            self.inner.get_opts(p, o).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            o: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, o).await
        }
    }

    async fn instrumented(fail_first: usize, data: &[u8]) -> (Store, Arc<Instrumented>) {
        instrumented_with(fail_first, None, data).await
    }

    async fn instrumented_with(
        fail_first: usize,
        hold: Option<Arc<Hold>>,
        data: &[u8],
    ) -> (Store, Arc<Instrumented>) {
        let backend = Arc::new(Instrumented {
            inner: InMemory::new(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            fail_first,
            tries: std::sync::Mutex::default(),
            hold,
        });
        backend
            .inner
            .put(&Path::from("k/archive.ts"), PutPayload::from(data.to_vec()))
            .await
            .unwrap();
        let target = crate::S3Target::new("b", "k", secrecy::SecretString::from("s"))
            .with_endpoint("http://127.0.0.1:9");
        let options = StoreOptions {
            backoff: Backoff {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            ..StoreOptions::default()
        };
        (
            Store::over(target.into(), backend.clone(), options),
            backend,
        )
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn handed_back_buffers_are_reused_for_the_next_parts() {
        let data = data(200_000);
        let (store, _backend) = instrumented(0, &data).await;
        let concurrency = 3;
        let opts = DownloadOptions {
            part_size: 1000,
            concurrency,
            ..DownloadOptions::default()
        };
        let mut download = store.download("k/archive.ts", opts).await.unwrap();
        let buffers = download.buffers();
        let (mut got, mut seen) = (Vec::new(), std::collections::HashSet::new());
        while let Some(part) = download.next().await {
            let part = part.unwrap();
            got.extend_from_slice(&part);
            seen.insert(part.as_ptr() as usize);
            buffers.give_back(part.try_into_mut().expect("a part is not shared"));
        }
        assert!(got == data);
        // 200 parts through at most one buffer per part in flight, plus the consumer's.
        assert!(
            seen.len() <= concurrency + 1,
            "{} distinct buffers for 200 parts",
            seen.len()
        );
        // Buffers too small for a part, or beyond what can be in use at once, are not kept.
        let pool = PartBuffers::new(2, 1000);
        pool.give_back(BytesMut::with_capacity(10));
        for _ in 0..5 {
            pool.give_back(BytesMut::with_capacity(1000));
        }
        assert_eq!(pool.free.lock().unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parts_arrive_in_order_with_at_most_concurrency_in_flight() {
        let data = data(100_003);
        for concurrency in [1, 3, 8] {
            let (store, backend) = instrumented(0, &data).await;
            let opts = DownloadOptions {
                part_size: 1000,
                concurrency,
                ..DownloadOptions::default()
            };
            let mut download = store.download("k/archive.ts", opts).await.unwrap();
            let mut got = Vec::new();
            while let Some(part) = download.next().await {
                got.extend_from_slice(&part.unwrap());
                // A slow consumer: the fetches run ahead, but never more than `concurrency` of them.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(got == data, "concurrency {concurrency}");
            let max = backend.max_in_flight.load(Ordering::SeqCst);
            assert!(
                max <= concurrency,
                "{max} parts in flight with concurrency {concurrency}"
            );
            if concurrency > 1 {
                assert!(
                    max > 1,
                    "concurrency {concurrency} never fetched in parallel"
                );
            }
            assert_eq!(backend.gets.load(Ordering::SeqCst), 101);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transient_failures_are_retried_per_part_and_then_reported() {
        let data = data(50_000);
        // The first two GETs of every part fail: each succeeds at its third try.
        let (store, backend) = instrumented(2, &data).await;
        let opts = DownloadOptions {
            part_size: 4096,
            concurrency: 4,
            retries: 2,
            ..DownloadOptions::default()
        };
        let mut download = store.download("k/archive.ts", opts).await.unwrap();
        let mut got = Vec::new();
        while let Some(part) = download.next().await {
            got.extend_from_slice(&part.unwrap());
        }
        assert!(got == data);
        // 13 parts, three GETs each.
        assert_eq!(backend.gets.load(Ordering::SeqCst), 39);

        // Every GET fails: the first part gives up after its retries, with a transient storage error.
        let (store, backend) = instrumented(usize::MAX, &data).await;
        let opts = DownloadOptions {
            part_size: 4096,
            concurrency: 1,
            retries: 3,
            ..DownloadOptions::default()
        };
        let mut download = store.download("k/archive.ts", opts).await.unwrap();
        let err = download.next().await.unwrap().unwrap_err();
        assert!(err.is_transient() && err.kind() == "storage", "{err}");
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(backend.gets.load(Ordering::SeqCst), 4, "1 try + 3 retries");
        assert!(download.next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_a_download_cancels_its_parts() {
        // No timing: the server holds every part after the first until told, so the parts in flight are
        // known when the download is dropped, and each of them must then be cancelled (its request dropped).
        let data = data(200_000);
        let hold = Arc::new(Hold {
            release: tokio::sync::Semaphore::new(0),
            started: tokio::sync::watch::channel(0).0,
            cancelled: tokio::sync::watch::channel(0).0,
        });
        let (store, backend) = instrumented_with(0, Some(hold.clone()), &data).await;
        let (concurrency, part_size) = (4, 1000);
        let opts = DownloadOptions {
            part_size,
            concurrency,
            ..DownloadOptions::default()
        };
        let mut download = store.download("k/archive.ts", opts).await.unwrap();
        download.next().await.unwrap().unwrap();
        // The parts fetched alongside the first are held at the server.
        let (bound, mut started) = (Duration::from_secs(60), hold.started.subscribe());
        tokio::time::timeout(bound, started.wait_for(|n| *n >= concurrency - 1))
            .await
            .expect("the next parts were never requested")
            .unwrap();
        drop(download);
        let (held, gets) = (*hold.started.borrow(), backend.gets.load(Ordering::SeqCst));
        let mut cancelled = hold.cancelled.subscribe();
        tokio::time::timeout(bound, cancelled.wait_for(|n| *n == held))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {held} requests in flight cancelled {bound:?} after the download was dropped",
                    *hold.cancelled.borrow()
                )
            })
            .unwrap();
        // Released now, nothing is waiting any more, and no part was requested after the drop.
        hold.release.add_permits(1000);
        assert_eq!(*hold.started.borrow(), held);
        assert_eq!(backend.gets.load(Ordering::SeqCst), gets);
    }

    #[test]
    fn options_builders() {
        let o = DownloadOptions::default()
            .starting_at(32)
            .expecting_etag("\"x\"");
        assert_eq!(
            (o.start_offset, o.expected_etag.as_deref()),
            (32, Some("\"x\""))
        );
        assert!(o.concurrency >= 1 && o.part_size % CBC_BLOCK == 0);
    }
}
