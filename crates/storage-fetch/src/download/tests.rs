//! Tests of the parallel ranged download: parts in order, bounded in flight, retried, cancelled, buffers reused.

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
    /// HEADs (and GETs without a range).
    heads: AtomicUsize,
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
            self.heads.fetch_add(1, Ordering::SeqCst);
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
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, o: CopyOptions) -> object_store::Result<()> {
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
        heads: AtomicUsize::new(0),
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
async fn downloads_sharing_a_pool_reuse_its_buffers_object_after_object() {
    let data = data(20_000);
    let (store, _backend) = instrumented(0, &data).await;
    let concurrency = 2;
    let pool = PartBuffers::new(concurrency + 1, 1000);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let opts = DownloadOptions {
            part_size: 1000,
            concurrency,
            buffers: Some(pool.clone()),
            ..DownloadOptions::default()
        };
        let mut download = store.download("k/archive.ts", opts).await.unwrap();
        let buffers = download.buffers();
        assert!(
            Arc::ptr_eq(&buffers.free, &pool.free),
            "the download reads into the shared pool"
        );
        let mut got = Vec::new();
        while let Some(part) = download.next().await {
            let part = part.unwrap();
            got.extend_from_slice(&part);
            seen.insert(part.as_ptr() as usize);
            buffers.give_back(part.try_into_mut().expect("a part is not shared"));
        }
        assert!(got == data);
    }
    assert!(
        !pool.free.lock().unwrap().is_empty(),
        "the buffers came back to the shared pool"
    );
    // 5 objects of 20 parts: the buffers of the first serve all the others.
    assert!(
        seen.len() <= concurrency + 1,
        "{} distinct buffers for 5 objects",
        seen.len()
    );
    // A pool for another part size is not used (its buffers could not hold a part).
    let other = PartBuffers::new(3, 500);
    let opts = DownloadOptions {
        part_size: 1000,
        buffers: Some(other.clone()),
        ..DownloadOptions::default()
    };
    let mut download = store.download("k/archive.ts", opts).await.unwrap();
    while let Some(part) = download.next().await {
        download
            .buffers()
            .give_back(part.unwrap().try_into_mut().unwrap());
    }
    assert!(other.free.lock().unwrap().is_empty());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_of_an_object_just_read_makes_no_head_and_still_sees_a_replacement() {
    let data = data(10_000);
    let (store, backend) = instrumented(0, &data).await;
    let opts = DownloadOptions {
        part_size: 1000,
        concurrency: 2,
        ..DownloadOptions::default()
    };
    let object = store.head("k/archive.ts").await.unwrap();
    assert_eq!(backend.heads.load(Ordering::SeqCst), 1);
    let mut download = store.download_object(&object, opts.clone()).unwrap();
    assert_eq!(
        (download.size(), download.e_tag()),
        (10_000, object.e_tag.as_deref())
    );
    let mut got = Vec::new();
    while let Some(part) = download.next().await {
        got.extend_from_slice(&part.unwrap());
    }
    assert!(got == data);
    assert_eq!(
        backend.heads.load(Ordering::SeqCst),
        1,
        "the object's size and ETag were given: no second HEAD"
    );
    assert_eq!(backend.gets.load(Ordering::SeqCst), 10);
    // `download` makes its own HEAD.
    drop(store.download("k/archive.ts", opts.clone()).await.unwrap());
    assert_eq!(backend.heads.load(Ordering::SeqCst), 2);

    // Replaced after it was read: the first part fails, not a mix of two versions.
    backend
        .inner
        .put(
            &Path::from("k/archive.ts"),
            PutPayload::from(vec![7u8; 10_000]),
        )
        .await
        .unwrap();
    let mut download = store.download_object(&object, opts).unwrap();
    match download.next().await {
        Some(Err(Error::ObjectChanged { .. })) => {}
        other => panic!("expected ObjectChanged, got {other:?}"),
    }
    // Not a part of an object that is not there: a part size of 0 is refused at once.
    let zero = DownloadOptions {
        part_size: 0,
        ..DownloadOptions::default()
    };
    assert!(matches!(
        store.download_object(&object, zero),
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_bounds_the_parts_of_every_download_sharing_it() {
    let data = data(60_000);
    let (store, backend) = instrumented(0, &data).await;
    let budget = 3;
    let pool = PartBuffers::with_budget(budget, 1000);
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    // Four downloads at once, each asking for 4 parts in flight: 16 without the budget.
    let downloads = (0..4).map(|_| {
        let (store, pool, seen, data) = (store.clone(), pool.clone(), seen.clone(), data.clone());
        tokio::spawn(async move {
            let opts = DownloadOptions {
                part_size: 1000,
                concurrency: 4,
                buffers: Some(pool),
                ..DownloadOptions::default()
            };
            let mut download = store.download("k/archive.ts", opts).await.unwrap();
            let buffers = download.buffers();
            let mut got = Vec::new();
            while let Some(part) = download.next().await {
                let part = part.unwrap();
                got.extend_from_slice(&part);
                seen.lock().unwrap().insert(part.as_ptr() as usize);
                tokio::task::yield_now().await;
                buffers.give_back(part.try_into_mut().expect("a part is not shared"));
            }
            assert!(
                got == data,
                "every download gets its whole object, in order"
            );
        })
    });
    let all = futures_util::future::join_all(downloads);
    for done in tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("no download waits for ever")
    {
        done.unwrap();
    }
    let most = backend.max_in_flight.load(Ordering::SeqCst);
    assert!(
        (1..=budget).contains(&most),
        "{most} GETs in flight at once, over a budget of {budget} parts"
    );
    let buffers = seen.lock().unwrap().len();
    assert!(
        buffers <= budget,
        "{buffers} buffers allocated for a budget of {budget}"
    );
    // A download dropped midway gives its room back: a later one still completes.
    let opts = DownloadOptions {
        part_size: 1000,
        concurrency: 4,
        buffers: Some(pool.clone()),
        ..DownloadOptions::default()
    };
    let mut first = store.download("k/archive.ts", opts.clone()).await.unwrap();
    let _held = first.next().await.unwrap().unwrap();
    drop(first);
    let mut second = store.download("k/archive.ts", opts).await.unwrap();
    let mut n = 0;
    while let Some(part) = tokio::time::timeout(Duration::from_secs(10), second.next())
        .await
        .expect("the dropped download's room was given back")
    {
        n += part.unwrap().len();
    }
    assert_eq!(n, data.len());
}
