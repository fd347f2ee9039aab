//! storage-fetch against real servers: s3s-fs (S3, SigV4 checked) and Azurite, as `cargo xtask ci` starts them.
//!
//! Without the `ARCHIVECTL_TEST_*` variables these tests fail, unless `ARCHIVECTL_SKIP_SERVER_TESTS=1`
//! (see `storage_fetch::test_env`). Every test runs the same scenario on both servers, under its own random
//! prefix, so they can run in parallel against the same bucket and container.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use secrecy::SecretString;
use storage_fetch::test_env::TestServers;
use storage_fetch::{
    ArchiveKind, AzureTarget, CheckOutcome, CheckStep, DownloadOptions, Error, MultipartOptions,
    S3Target, Sse, Store, StoreOptions, Target, archive_key,
};

/// Both servers' targets, or `None` when skipping was asked for (the test then passes without running).
fn targets() -> Option<Vec<Target>> {
    let servers = TestServers::require()?;
    Some(vec![servers.s3.into(), servers.azure.into()])
}

fn store(target: &Target) -> Store {
    Store::new(target.clone()).unwrap_or_else(|e| panic!("{target:?}: {e}"))
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// A fresh key prefix for one test run.
fn prefix(test: &str) -> String {
    format!(
        "t-{test}-{:012x}",
        rand::rng().random::<u64>() & 0xffff_ffff_ffff
    )
}

async fn download_all(store: &Store, key: &str, opts: DownloadOptions) -> Result<Vec<u8>, Error> {
    let mut download = store.download(key, opts).await?;
    let mut out = Vec::with_capacity(download.len() as usize);
    while let Some(part) = download.next().await {
        out.extend_from_slice(&part?);
    }
    Ok(out)
}

/// A closed port on loopback: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn with_wrong_secret(target: &Target) -> Target {
    match target.clone() {
        Target::S3(mut s3) => {
            s3.secret_access_key = SecretString::from("not-the-secret-key-at-all");
            s3.into()
        }
        Target::Azure(mut az) => {
            // Valid base64, wrong key.
            az.account_key = SecretString::from(
                "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWs=",
            );
            az.into()
        }
    }
}

fn with_container(target: &Target, name: &str) -> Target {
    match target.clone() {
        Target::S3(mut s3) => {
            s3.bucket = name.to_string();
            s3.into()
        }
        Target::Azure(mut az) => {
            az.container = name.to_string();
            az.into()
        }
    }
}

fn with_endpoint(target: &Target, endpoint: &str) -> Target {
    match target.clone() {
        Target::S3(s3) => s3.with_endpoint(endpoint).into(),
        Target::Azure(az) => az.with_endpoint(endpoint).into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_multipart_puts_read_back_identically() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let store = store(target);
        let p = prefix("put");
        let small = random_bytes(1000, 1);
        let info = store
            .put(&format!("{p}/small.bin"), small.clone())
            .await
            .expect("put");
        assert_eq!(info.size, 1000);
        let head = store.head(&format!("{p}/small.bin")).await.expect("head");
        assert_eq!(head.size, 1000);
        assert!(head.e_tag.is_some(), "{target:?}: no ETag");
        assert_eq!(
            download_all(
                &store,
                &format!("{p}/small.bin"),
                DownloadOptions::default()
            )
            .await
            .unwrap(),
            small
        );

        // Multipart from an AsyncRead: 5 MiB parts (S3's minimum), 3 parts, the last short.
        let big = random_bytes(11 * 1024 * 1024 + 12_345, 2);
        let opts = MultipartOptions {
            part_size: 5 << 20,
            concurrency: 2,
        };
        let info = store
            .put_multipart(&format!("{p}/big.bin"), &big[..], opts.clone())
            .await
            .expect("multipart");
        assert_eq!(info.size, big.len() as u64);
        let got = download_all(
            &store,
            &format!("{p}/big.bin"),
            DownloadOptions {
                part_size: 1 << 20,
                concurrency: 4,
                ..DownloadOptions::default()
            },
        )
        .await
        .expect("download");
        assert!(got == big, "{target:?}: multipart object differs");

        // Multipart from a stream of uneven chunks, re-cut into parts.
        let chunks: Vec<std::io::Result<Bytes>> = big
            .chunks(777_777)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream = futures_util::stream::iter(chunks);
        let info = store
            .put_multipart_stream(&format!("{p}/streamed.bin"), stream, opts)
            .await
            .expect("stream");
        assert_eq!(info.size, big.len() as u64);
        let got = download_all(
            &store,
            &format!("{p}/streamed.bin"),
            DownloadOptions::default(),
        )
        .await
        .unwrap();
        assert!(got == big, "{target:?}: streamed multipart object differs");

        // A reader that fails: a Source error, and no object appears.
        let failing = FailingReader { left: 6 << 20 };
        let err = store
            .put_multipart(
                &format!("{p}/failed.bin"),
                failing,
                MultipartOptions {
                    part_size: 5 << 20,
                    concurrency: 1,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Source { .. }), "{target:?}: {err}");
        assert!(matches!(
            store.head(&format!("{p}/failed.bin")).await,
            Err(Error::NotFound { .. })
        ));

        let listed = store.list(&p).await.expect("list");
        let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("{p}/big.bin"),
                format!("{p}/small.bin"),
                format!("{p}/streamed.bin")
            ]
        );

        for key in keys.iter().map(|k| k.to_string()).collect::<Vec<_>>() {
            store.delete(&key).await.expect("delete");
            assert!(
                matches!(store.head(&key).await, Err(Error::NotFound { .. })),
                "{key} still there"
            );
        }
        store
            .delete(&format!("{p}/small.bin"))
            .await
            .expect("deleting a missing object is fine");
    }
}

/// Yields `left` bytes, then an I/O error.
struct FailingReader {
    left: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.left == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("disk unplugged")));
        }
        let n = self.left.min(buf.remaining()).min(64 * 1024);
        buf.put_slice(&vec![7u8; n]);
        self.left -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locate_prefers_ts_then_mp4_then_zip_and_says_what_it_tried() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let store = store(target);
        let api_key = prefix("locate");
        let (ts_id, mp4_id, zip_id, none_id) = ("arch-ts", "arch-mp4", "arch-zip", "arch-none");
        store
            .put(
                &archive_key(&api_key, ts_id, ArchiveKind::EncryptedTs),
                vec![1u8; 32],
            )
            .await
            .unwrap();
        store
            .put(
                &archive_key(&api_key, ts_id, ArchiveKind::Mp4),
                vec![2u8; 10],
            )
            .await
            .unwrap();
        store
            .put(
                &archive_key(&api_key, mp4_id, ArchiveKind::Mp4),
                vec![3u8; 48],
            )
            .await
            .unwrap();
        store
            .put(
                &archive_key(&api_key, zip_id, ArchiveKind::IndividualZip),
                vec![4u8; 5],
            )
            .await
            .unwrap();

        let found = store.locate(&api_key, ts_id).await.expect("ts");
        assert_eq!(
            (found.kind, found.object.size),
            (ArchiveKind::EncryptedTs, 32)
        );
        assert_eq!(found.object.key, format!("{api_key}/{ts_id}/archive.ts"));
        let found = store.locate(&api_key, mp4_id).await.expect("mp4");
        assert_eq!((found.kind, found.object.size), (ArchiveKind::Mp4, 48));
        let found = store.locate(&api_key, zip_id).await.expect("zip");
        assert_eq!(found.kind, ArchiveKind::IndividualZip);

        let err = store.locate(&api_key, none_id).await.unwrap_err();
        let kind = target.container_kind();
        let name = target.container_name();
        assert_eq!(
            err.to_string(),
            format!(
                "archive {none_id} not found in {kind} {name} at {api_key}/{none_id}/archive.ts \
                 (also tried {api_key}/{none_id}/archive.mp4, {api_key}/{none_id}/archive.zip)"
            )
        );
        for obj in store.list(&api_key).await.unwrap() {
            store.delete(&obj.key).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_ranged_download_is_in_order_and_byte_identical() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let store = store(target);
        let p = prefix("download");
        // Not a multiple of any part size used.
        let data = random_bytes(1_000_003, 3);
        let key = format!("{p}/archive.ts");
        store.put(&key, data.clone()).await.unwrap();
        for (part_size, concurrency) in [
            (65_536, 1),
            (65_536, 4),
            (100_000, 4),
            (16, 4),
            (4 << 20, 4),
            (999_999, 2),
        ] {
            if part_size == 16 {
                // 16-byte parts of the first 4 KiB only: many tiny ranged GETs, in order.
                let mut download = store
                    .download(
                        &key,
                        DownloadOptions {
                            part_size,
                            concurrency,
                            ..DownloadOptions::default()
                        },
                    )
                    .await
                    .unwrap();
                let mut got = Vec::new();
                while got.len() < 4096 {
                    let part = download.next().await.expect("more parts").expect("part");
                    assert_eq!(part.len(), 16);
                    got.extend_from_slice(&part);
                }
                assert_eq!(got, data[..4096]);
                continue;
            }
            let opts = DownloadOptions {
                part_size,
                concurrency,
                ..DownloadOptions::default()
            };
            let mut download = store.download(&key, opts).await.unwrap();
            assert_eq!(download.size(), data.len() as u64);
            let mut got = Vec::new();
            let mut parts = 0;
            while let Some(part) = download.next().await {
                let part = part.unwrap();
                let expected_len = (data.len() - got.len()).min(part_size as usize);
                assert_eq!(part.len(), expected_len, "part {parts} of {part_size}");
                got.extend_from_slice(&part);
                parts += 1;
            }
            assert_eq!(parts, data.len().div_ceil(part_size as usize));
            assert!(
                got == data,
                "{target:?}: part size {part_size}, concurrency {concurrency}: bytes differ"
            );
            assert!(
                download.next().await.is_none(),
                "a finished download stays finished"
            );
        }
        store.delete(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_an_offset_with_the_previous_block() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let store = store(target);
        let p = prefix("resume");
        let data = random_bytes(300_000 + 8, 4);
        let key = format!("{p}/archive.ts");
        store.put(&key, data.clone()).await.unwrap();
        let first = store
            .download(&key, DownloadOptions::default())
            .await
            .unwrap();
        let e_tag = first.e_tag().expect("etag").to_string();
        assert_eq!(
            first.previous_block().await.unwrap(),
            None,
            "nothing before offset 0"
        );
        drop(first);

        let offset = 16 * 7_001;
        let opts = DownloadOptions {
            part_size: 32_768,
            concurrency: 3,
            ..DownloadOptions::default()
        }
        .starting_at(offset)
        .expecting_etag(e_tag.clone());
        let resumed = store.download(&key, opts.clone()).await.unwrap();
        assert_eq!(resumed.start_offset(), offset);
        assert_eq!(resumed.len(), data.len() as u64 - offset);
        let block = resumed.previous_block().await.unwrap().expect("a block");
        assert_eq!(&block[..], &data[offset as usize - 16..offset as usize]);
        let tail = download_all(&store, &key, opts).await.unwrap();
        assert!(
            tail == data[offset as usize..],
            "{target:?}: resumed tail differs"
        );

        // At the very end: nothing left to fetch, and that is not an error.
        let at_end = download_all(
            &store,
            &key,
            DownloadOptions::default().starting_at(data.len() as u64),
        )
        .await;
        assert_eq!(at_end.unwrap(), Vec::<u8>::new());
        // Past the end: refused.
        let past = store
            .download(
                &key,
                DownloadOptions::default().starting_at(data.len() as u64 + 1),
            )
            .await;
        assert!(matches!(past, Err(Error::InvalidRequest(_))), "{past:?}");
        // Offsets below one block have no previous block.
        let short = store
            .download(&key, DownloadOptions::default().starting_at(8))
            .await
            .unwrap();
        assert!(matches!(
            short.previous_block().await,
            Err(Error::InvalidRequest(_))
        ));

        // The object replaced since the first attempt: resuming is refused at once.
        store.put(&key, random_bytes(data.len(), 5)).await.unwrap();
        let err = store
            .download(
                &key,
                DownloadOptions::default()
                    .starting_at(offset)
                    .expecting_etag(e_tag),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ObjectChanged { .. }),
            "{target:?}: {err}"
        );
        store.delete(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_mid_download_is_detected() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let store = store(target);
        let p = prefix("changed");
        let key = format!("{p}/archive.ts");
        let size = 2 * 1024 * 1024;
        store.put(&key, random_bytes(size, 6)).await.unwrap();
        let opts = DownloadOptions {
            part_size: 64 * 1024,
            concurrency: 2,
            ..DownloadOptions::default()
        };
        let mut download = store.download(&key, opts).await.unwrap();
        let first = download.next().await.expect("a part").expect("first part");
        assert_eq!(first.len(), 64 * 1024);
        // The consumer pauses; meanwhile the object is overwritten with other bytes of the same size.
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.put(&key, random_bytes(size, 7)).await.unwrap();
        let mut received = first.len();
        let err = loop {
            match download.next().await {
                Some(Ok(part)) => received += part.len(),
                Some(Err(e)) => break e,
                None => panic!(
                    "{target:?}: the whole download went through although the object changed"
                ),
            }
        };
        assert!(
            matches!(err, Error::ObjectChanged { .. }),
            "{target:?}: {err}"
        );
        assert!(err.to_string().contains(&key), "{err}");
        // At most the parts already in flight (concurrency) arrived after the first.
        assert!(
            received <= 3 * 64 * 1024,
            "{target:?}: {received} bytes after the change"
        );
        assert!(
            download.next().await.is_none(),
            "the stream ends after its error"
        );
        store.delete(&key).await.unwrap();

        // Deleted mid-download: also a change.
        store.put(&key, random_bytes(size, 8)).await.unwrap();
        let mut download = store
            .download(
                &key,
                DownloadOptions {
                    part_size: 64 * 1024,
                    concurrency: 1,
                    ..DownloadOptions::default()
                },
            )
            .await
            .unwrap();
        download.next().await.expect("a part").expect("first part");
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.delete(&key).await.unwrap();
        let mut saw_error = None;
        while let Some(part) = download.next().await {
            if let Err(e) = part {
                saw_error = Some(e);
            }
        }
        let err =
            saw_error.unwrap_or_else(|| panic!("{target:?}: deleted object downloaded whole"));
        assert!(
            matches!(err, Error::ObjectChanged { .. }),
            "{target:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_credentials_error() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let good = store(target);
        let p = prefix("creds");
        let key = format!("{p}/archive.ts");
        good.put(&key, vec![9u8; 100]).await.unwrap();

        let bad = store(&with_wrong_secret(target));
        let err = bad.head(&key).await.unwrap_err();
        assert!(
            matches!(err, Error::Credentials { .. }),
            "{target:?} head: {err}"
        );
        let err = bad.locate(&p, "x").await.unwrap_err();
        assert!(
            matches!(err, Error::Credentials { .. }),
            "{target:?} locate: {err}"
        );
        let err = bad
            .download(&key, DownloadOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Credentials { .. }),
            "{target:?} download: {err}"
        );
        let err = bad.put(&format!("{p}/other"), vec![1u8]).await.unwrap_err();
        assert!(
            matches!(err, Error::Credentials { .. }),
            "{target:?} put: {err}"
        );
        let err = bad.list(&p).await.unwrap_err();
        assert!(
            matches!(err, Error::Credentials { .. }),
            "{target:?} list: {err}"
        );
        let msg = err.to_string();
        let hint = if matches!(target, Target::Azure(_)) {
            "account key"
        } else {
            "secret access key"
        };
        assert!(
            msg.contains("rejected the credentials") && msg.contains(hint),
            "{msg}"
        );
        assert!(
            !format!("{err:?}").contains("not-the-secret-key-at-all"),
            "the secret leaked into the error"
        );

        if let Target::S3(s3) = target {
            let mut unknown = s3.clone();
            unknown.access_key_id = "AKIDUNKNOWN".into();
            let err = store(&unknown.into()).head(&key).await.unwrap_err();
            assert!(
                matches!(err, Error::Credentials { .. }),
                "unknown access key: {err}"
            );
        }
        good.delete(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_container_is_its_own_error() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let name = format!("missing-{:08x}", rand::rng().random::<u32>());
        let store = store(&with_container(target, &name));
        let mut errors = vec![
            ("head", store.head("1/2/archive.ts").await.unwrap_err()),
            ("locate", store.locate("1", "2").await.unwrap_err()),
            ("list", store.list("1").await.unwrap_err()),
            (
                "download",
                store
                    .download("1/2/archive.ts", DownloadOptions::default())
                    .await
                    .unwrap_err(),
            ),
        ];
        // s3s-fs keeps a bucket as a directory and makes it on PutObject (S3 answers NoSuchBucket), so writes
        // into a missing container are checked on Azurite only.
        if matches!(target, Target::Azure(_)) {
            errors.push((
                "put",
                store.put("1/2/archive.ts", vec![0u8; 4]).await.unwrap_err(),
            ));
            let mut report = store.check().await;
            assert!(!report.service_can_upload(), "{report}");
            let write = report.results.remove(0);
            assert_eq!(write.step, CheckStep::Write);
            match write.outcome {
                CheckOutcome::Failed(e) => errors.push(("check", e)),
                other => panic!("check wrote into a missing container: {other:?}"),
            }
        }
        for (what, err) in errors {
            assert!(
                matches!(err, Error::ContainerNotFound { .. }),
                "{target:?} {what}: {err}"
            );
            let kind = target.container_kind();
            assert!(
                err.to_string().starts_with(&format!(
                    "{kind} {name} does not exist at http://127.0.0.1:"
                )),
                "{err}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable_quickly() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let port = closed_port();
        let endpoint = match target {
            Target::S3(_) => format!("http://127.0.0.1:{port}"),
            Target::Azure(_) => format!("http://127.0.0.1:{port}/devstoreaccount1"),
        };
        let store = store(&with_endpoint(target, &endpoint));
        let started = Instant::now();
        let err = store.locate("1", "2").await.unwrap_err();
        assert!(
            matches!(err, Error::Unreachable { .. }),
            "{target:?}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("connection refused"),
            "{msg}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );

        let no_retries = StoreOptions {
            retries: 0,
            ..StoreOptions::default()
        };
        let store = Store::with_options(with_endpoint(target, &endpoint), no_retries).unwrap();
        let err = store.put("1/2/archive.ts", vec![1u8]).await.unwrap_err();
        assert!(
            matches!(err, Error::Unreachable { .. }),
            "{target:?}: {err}"
        );
        let err = store
            .download(
                "1/2/archive.ts",
                DownloadOptions {
                    retries: 0,
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(err, Err(Error::Unreachable { .. })),
            "{target:?}: {err:?}"
        );
        let report = store.check().await;
        assert!(matches!(
            report.outcome(CheckStep::Write),
            Some(CheckOutcome::Failed(Error::Unreachable { .. }))
        ));
    }
    // A host name that cannot resolve (.invalid is reserved): a DNS failure, not a wrong secret.
    let s3 = S3Target::new("b", "k", SecretString::from("s"))
        .with_endpoint("http://no-such-host.invalid:9000");
    let store = Store::with_options(
        s3.into(),
        StoreOptions {
            retries: 0,
            // Not loopback: plain HTTP only when asked for.
            allow_http: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let err = store.head("1/2/archive.ts").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("DNS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_step() {
    let Some(targets) = targets() else { return };
    for target in &targets {
        let report = store(target).check().await;
        assert!(report.is_ok(), "{target:?}:\n{report}");
        assert!(report.service_can_upload() && report.pull_can_download());
        let steps: Vec<CheckStep> = report.results.iter().map(|r| r.step).collect();
        assert_eq!(
            steps,
            [
                CheckStep::Write,
                CheckStep::List,
                CheckStep::Read,
                CheckStep::Delete
            ]
        );
        assert!(report.probe_key.starts_with("archivectl-check/"));
        let text = report.to_string();
        assert_eq!(text.matches(" ok ").count(), 4, "{text}");
        // The probe is gone.
        assert!(matches!(
            store(target).head(&report.probe_key).await,
            Err(Error::NotFound { .. })
        ));

        let report = store(&with_wrong_secret(target)).check().await;
        assert!(!report.is_ok() && !report.service_can_upload() && !report.pull_can_download());
        assert!(matches!(
            report.outcome(CheckStep::Write),
            Some(CheckOutcome::Failed(Error::Credentials { .. }))
        ));
        assert!(matches!(
            report.outcome(CheckStep::List),
            Some(CheckOutcome::Failed(Error::Credentials { .. }))
        ));
        assert!(matches!(
            report.outcome(CheckStep::Read),
            Some(CheckOutcome::Skipped(_))
        ));
        assert!(matches!(
            report.outcome(CheckStep::Delete),
            Some(CheckOutcome::Skipped(_))
        ));
        assert!(report.to_string().contains("FAILED"), "{report}");
        assert!(matches!(
            report.first_error(),
            Some(Error::Credentials { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_is_requested_on_s3_writes_and_containers_can_be_created() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    // s3s-fs accepts anything, so what is asserted is what went over the wire: the writes go through a
    // recording proxy in front of it, and each request's head is read back.
    let proxy = RecordingProxy::start(&servers.s3).await;
    let store = store(&proxy.target(&servers.s3).with_sse(Sse::S3).into());
    let p = prefix("sse");
    let data = random_bytes(6 << 20, 9);
    store
        .put(&format!("{p}/single"), data.clone())
        .await
        .expect("put with SSE");
    let opts = MultipartOptions {
        part_size: 5 << 20,
        concurrency: 2,
    };
    store
        .put_multipart(&format!("{p}/multi"), &data[..], opts)
        .await
        .expect("multipart with SSE");
    let heads = proxy.request_heads();
    fn sse(head: &RequestHead) -> Option<&str> {
        head.header("x-amz-server-side-encryption")
    }
    let single = heads
        .iter()
        .find(|h| h.method == "PUT" && h.target.ends_with(&format!("{p}/single")))
        .unwrap_or_else(|| panic!("no PUT of {p}/single among {heads:#?}"));
    assert_eq!(sse(single), Some("AES256"), "{single:#?}");
    // S3 takes SSE on CreateMultipartUpload (POST ?uploads); the parts and the completion inherit it.
    let create = heads
        .iter()
        .find(|h| h.method == "POST" && h.target.contains(&format!("{p}/multi?uploads")))
        .unwrap_or_else(|| panic!("no CreateMultipartUpload of {p}/multi among {heads:#?}"));
    assert_eq!(sse(create), Some("AES256"), "{create:#?}");
    // The control: the same writes without SSE carry no such header (the proxy sees what is sent).
    let plain = store_of(proxy.target(&servers.s3).into());
    plain
        .put(&format!("{p}/plain"), vec![7u8; 1000])
        .await
        .expect("put without SSE");
    let heads = proxy.request_heads();
    let head = heads
        .iter()
        .find(|h| h.method == "PUT" && h.target.ends_with(&format!("{p}/plain")))
        .unwrap_or_else(|| panic!("no PUT of {p}/plain among {heads:#?}"));
    assert_eq!(sse(head), None, "{head:#?}");
    for key in [format!("{p}/single"), format!("{p}/multi")] {
        assert!(
            download_all(&store, &key, DownloadOptions::default())
                .await
                .unwrap()
                == data
        );
        store.delete(&key).await.unwrap();
    }
    plain.delete(&format!("{p}/plain")).await.unwrap();

    // Azurite: a new container is created once, then reported as existing.
    let name = format!("created-{:08x}", rand::rng().random::<u32>());
    let azure: AzureTarget = AzureTarget {
        container: name,
        ..servers.azure.clone()
    };
    let store = store_of(azure.into());
    assert!(store.create_container().await.expect("create"));
    assert!(!store.create_container().await.expect("create again"));
    store
        .put("a/b", vec![1u8; 3])
        .await
        .expect("put in the new container");
    // The wrong key cannot create one.
    let err = store_of(with_wrong_secret(store.target()))
        .create_container()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Credentials { .. }), "{err}");
}

fn store_of(target: Target) -> Store {
    store(&target)
}

/// One HTTP/1.1 request head as the proxy saw it.
#[derive(Debug, Clone)]
struct RequestHead {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A TCP proxy on loopback in front of the S3 server that keeps every byte clients send (bodies too), so a
/// test can read the requests' heads back. It forwards bytes unchanged, so SigV4 still verifies (the Host
/// header is the proxy's, and the client signs what it sends).
struct RecordingProxy {
    addr: std::net::SocketAddr,
    sent: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    async fn start(s3: &S3Target) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let upstream = s3
            .endpoint
            .as_deref()
            .and_then(|e| e.strip_prefix("http://"))
            .expect("the test S3 server's endpoint is http://host:port")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
        let record = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let index = {
                        let mut all = record.lock().expect("recording lock");
                        all.push(Vec::new());
                        all.len() - 1
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upward = async move {
                        let mut buf = vec![0u8; 64 << 10];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Recorded before it is forwarded: once the answer arrives, the request is here.
                            record.lock().expect("recording lock")[index]
                                .extend_from_slice(&buf[..n]);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let downward = async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                        let _ = client_write.shutdown().await;
                    };
                    tokio::join!(upward, downward);
                });
            }
        });
        Self { addr, sent, task }
    }

    /// `s3` with its endpoint replaced by the proxy's.
    fn target(&self, s3: &S3Target) -> S3Target {
        S3Target {
            endpoint: Some(format!("http://{}", self.addr)),
            ..s3.clone()
        }
    }

    /// Every request head sent so far, connection by connection. A head is found where a request line
    /// (`METHOD /target HTTP/1.1`) starts a line; bodies between heads are skipped by their Content-Length.
    fn request_heads(&self) -> Vec<RequestHead> {
        let sent = self.sent.lock().expect("recording lock").clone();
        let mut heads = Vec::new();
        for stream in sent {
            let mut at = 0;
            while at < stream.len() {
                let Some(end) = find(&stream[at..], b"\r\n\r\n") else {
                    break;
                };
                let text = String::from_utf8_lossy(&stream[at..at + end]).into_owned();
                let mut lines = text.split("\r\n");
                let request_line = lines.next().unwrap_or_default();
                let mut parts = request_line.split(' ');
                let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
                    panic!("not a request line: {request_line:?}");
                };
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                let head = RequestHead {
                    method: method.to_string(),
                    target: target.to_string(),
                    headers,
                };
                assert!(
                    head.header("transfer-encoding").is_none(),
                    "chunked bodies are not parsed here: {head:#?}"
                );
                let body: usize = head
                    .header("content-length")
                    .map(|v| v.parse().expect("Content-Length"))
                    .unwrap_or(0);
                at += end + 4 + body;
                heads.push(head);
            }
        }
        heads
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
