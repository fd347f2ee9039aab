//! Unit tests of `store`, beside it so that the module stays within the size budget.

use std::time::Duration;

use bytes::BytesMut;
use object_store::{ObjectStoreExt, PutPayload};

use super::*;

#[test]
fn archive_keys_follow_the_service() {
    let keys: Vec<String> = ArchiveKind::ALL
        .iter()
        .map(|k| archive_key("46", "id-1", *k))
        .collect();
    assert_eq!(
        keys,
        [
            "46/id-1/archive.ts",
            "46/id-1/archive.mp4",
            "46/id-1/archive.zip"
        ]
    );
    assert!(ArchiveKind::EncryptedTs.is_encrypted() && !ArchiveKind::Mp4.is_encrypted());
}

#[test]
fn backoff_grows_and_is_capped() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
    };
    for attempt in 0..40 {
        let d = b.delay(attempt);
        let full = Duration::from_millis(100)
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(b.max);
        assert!(
            d <= full && d >= full / 2,
            "attempt {attempt}: {d:?} vs {full:?}"
        );
    }
}

#[test]
fn keys_are_validated() {
    assert!(Store::path("a/b/archive.ts").is_ok());
    for bad in ["", "/a", "a/", "a//b", "a/../b"] {
        assert!(
            matches!(Store::path(bad), Err(Error::InvalidRequest(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn a_huge_range_is_an_error_not_an_allocation() {
    let backend = Arc::new(object_store::memory::InMemory::new());
    let path = Path::from("1/a/archive.ts");
    backend
        .put(&path, PutPayload::from(vec![7u8; 10]))
        .await
        .unwrap();
    let target = crate::S3Target::new("b", "k", secrecy::SecretString::from("s"))
        .with_endpoint("http://127.0.0.1:9");
    let store = Store::over(target.into(), backend, StoreOptions::default());
    // Without a known size, the whole of a range ending at u64::MAX cannot arrive: an error (never
    // a reservation of 2^64 bytes, which aborts the process).
    let got = store
        .fetch_range(
            &path,
            "1/a/archive.ts",
            0..u64::MAX,
            None,
            None,
            Some(BytesMut::new()),
        )
        .await;
    assert!(matches!(got, Err(Error::Storage { .. })), "{got:?}");
    let got = store
        .fetch_range(
            &path,
            "1/a/archive.ts",
            0..u64::MAX,
            None,
            Some(10),
            Some(BytesMut::new()),
        )
        .await
        .unwrap();
    assert_eq!(&got[..], &[7u8; 10]);
}

#[tokio::test]
async fn locate_refuses_bad_ids_without_a_request() {
    // Port 9 on loopback: nothing is contacted anyway, the ids are refused first.
    let target = crate::S3Target::new("b", "k", secrecy::SecretString::from("s"))
        .with_endpoint("http://127.0.0.1:9");
    let store = Store::new(target.into()).unwrap();
    for (api, id) in [
        ("", "x"),
        ("1", ""),
        ("1", "a/b"),
        ("1/2", "x"),
        ("1", ".."),
    ] {
        assert!(
            matches!(store.locate(api, id).await, Err(Error::InvalidRequest(_))),
            "{api:?} {id:?}"
        );
    }
}
