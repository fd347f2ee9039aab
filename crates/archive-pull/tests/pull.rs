//! `pull_archive` against the S3 test server: cancelled mid-way it keeps a checkpoint and says why; pulled
//! again it resumes there and the output is the plaintext, byte for byte.

use std::sync::atomic::{AtomicBool, Ordering};

use archive_core::{PasswordBlob, cbc, oaep};
use archive_pull::{
    CancelToken, KeyRing, Observer, Progress, PullError, PullOptions, Source, StopReason,
    pull_archive,
};
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use storage_fetch::test_env::TestServers;
use storage_fetch::{Store, Target};

/// Cancels the token once the first piece is written.
struct CancelAfterFirst(CancelToken);

impl Observer for CancelAfterFirst {
    fn progress(&self, _id: &str, _size: u64) -> Box<dyn Progress> {
        Box::new(CancelOnAdvance(self.0.clone(), AtomicBool::new(false)))
    }
}

struct CancelOnAdvance(CancelToken, AtomicBool);

impl Progress for CancelOnAdvance {
    fn advance(&self, _n: u64) {
        if !self.1.swap(true, Ordering::SeqCst) {
            self.0.cancel(StopReason::Terminate);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pull_resumes_to_the_same_bytes() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let store = Store::new(Target::S3(servers.s3.clone())).unwrap();
    let clip = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/clip.ts"
    ))
    .unwrap();
    let plain: Vec<u8> = clip.repeat(8);
    let mut rng = rand::rng();
    let key = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
    let blob = PasswordBlob::generate(&mut rng);
    let password = oaep::wrap_password(&key.to_public_key(), &blob, &mut rng).unwrap();
    let ciphertext = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
    let object_sha256 = hex::encode(Sha256::digest(&ciphertext));
    let api_key = format!("{}", 10_000_000 + rng.next_u32() % 80_000_000);
    let mut id_bytes = [0u8; 16];
    rng.fill_bytes(&mut id_bytes);
    let id = uuid::Uuid::from_bytes(id_bytes).to_string();
    store
        .put(&format!("{api_key}/{id}/archive.ts"), ciphertext)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        out_dir: dir.path().to_path_buf(),
        part_size: 16 << 10,
        concurrency: 2,
        checkpoint: 16 << 10,
        ..PullOptions::default()
    };
    let ring = KeyRing::new().with_key("key.pem", move || Ok(key.clone()));
    let source = Source::Object {
        store: &store,
        api_key: &api_key,
    };

    let cancel = CancelToken::new();
    let e = pull_archive(
        source,
        &id,
        Some(&password),
        &ring,
        &opts,
        &CancelAfterFirst(cancel.clone()),
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e,
            PullError::Interrupted {
                reason: StopReason::Terminate,
                ..
            }
        ),
        "{e}"
    );
    assert!(!dir.path().join(format!("{id}.ts")).exists());

    let pulled = pull_archive(
        source,
        &id,
        Some(&password),
        &ring,
        &opts,
        &(),
        &CancelToken::new(),
    )
    .await
    .unwrap();
    assert!(
        pulled.resumed_from > 0,
        "resumed from {}",
        pulled.resumed_from
    );
    assert!(pulled.resumed_from < plain.len() as u64);
    let out = std::fs::read(dir.path().join(format!("{id}.ts"))).unwrap();
    assert!(out.starts_with(&plain) && out.len() == plain.len() + 16 - plain.len() % 16);
    assert_eq!(pulled.sha256, hex::encode(Sha256::digest(&out)));
    // The object's own SHA-256 (for the service's `sha256sum`), the part before the checkpoint included:
    // rebuilt from the plaintext on disk, since this run did not download it.
    assert_eq!(
        pulled.object_sha256.as_deref(),
        Some(object_sha256.as_str())
    );
    store
        .delete(&format!("{api_key}/{id}/archive.ts"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_cancelled_before_the_pull_starts_nothing() {
    let cancel = CancelToken::new();
    cancel.cancel(StopReason::Interrupt);
    let dir = tempfile::tempdir().unwrap();
    let opts = PullOptions {
        out_dir: dir.path().to_path_buf(),
        ..PullOptions::default()
    };
    let e = pull_archive(
        Source::PresignedUrl("http://127.0.0.1:9/never-asked"),
        "b40ef09b-3811-4726-b508-e41a0f96c68f",
        None,
        &KeyRing::new(),
        &opts,
        &(),
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(e.stop_reason(), Some(StopReason::Interrupt));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
