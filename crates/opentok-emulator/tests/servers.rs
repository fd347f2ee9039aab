//! The emulator uploading to real storage servers — s3s-fs (S3, SigV4 checked) and Azurite — and the
//! uploaded object, fetched back from them, decrypted with the service's documented openssl commands
//! (verbatim) into an MPEG-TS that ffprobe reads, with the password from the callback and from GET.
//!
//! These tests need the servers `cargo xtask ci` (or `cargo xtask servers`) starts and announces in
//! `ARCHIVECTL_TEST_*`; without them they fail, unless `ARCHIVECTL_SKIP_SERVER_TESTS=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use opentok_emulator::Hooks;
use opentok_rest::model::{
    ArchiveEncryption, ArchiveStatus, AzureConfig, Fallback, S3Config, StartArchiveRequest,
    StorageTarget,
};
use secrecy::ExposeSecret;
use storage_fetch::test_env::TestServers;
use storage_fetch::{ArchiveKind, Store};

const WAIT: Duration = Duration::from_secs(60);

/// The three commands of the service's "Decrypting an archive", verbatim; only `password-from-tokbox` is
/// replaced by the password.
const DOCUMENTED_COMMANDS: &str = r#"openssl enc -base64 -d -A <<< "password-from-tokbox" \
  -out password.enc

openssl rsautl -decrypt -oaep -inkey key.pem \
  -in password.enc -out password.bin

openssl enc -d -aes-256-cbc -nopad -in your_archive_file.ts \
  -out your_decrypted_file.ts \
  -K $(xxd -s 3 -l 32 -c 32 -p password.bin) \
  -iv $(xxd -s 35 -l 16 -c 16 -p password.bin)
"#;

#[derive(Clone, Copy, Debug)]
enum Kind {
    S3,
    Azure,
}

fn target(servers: &TestServers, kind: Kind, encryption: ArchiveEncryption) -> StorageTarget {
    match kind {
        Kind::S3 => StorageTarget::s3(
            S3Config {
                bucket: servers.s3.bucket.clone(),
                access_key: servers.s3.access_key_id.clone(),
                secret_key: servers.s3.secret_access_key.clone(),
                // The service's S3 config takes an endpoint: the local server's.
                endpoint: servers.s3.endpoint.clone(),
                sse: None,
            },
            Fallback::None,
            encryption,
        ),
        Kind::Azure => StorageTarget::azure(
            AzureConfig {
                account_name: servers.azure.account_name.clone(),
                account_key: servers.azure.account_key.clone(),
                container: servers.azure.container.clone(),
                domain: None,
            },
            Fallback::None,
            encryption,
        ),
    }
}

fn store(servers: &TestServers, kind: Kind) -> Store {
    match kind {
        Kind::S3 => Store::new(servers.s3.clone().into()).unwrap(),
        Kind::Azure => Store::new(servers.azure.clone().into()).unwrap(),
    }
}

/// ffprobe's streams and duration of a file.
fn ffprobe(dir: &Path, file: &str) -> (Vec<String>, f64) {
    let out = bash(
        dir,
        &format!(
            "ffprobe -v error -show_entries stream=codec_name:format=duration -of json {file}"
        ),
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codecs = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect();
    let duration = json["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (codecs, duration)
}

async fn encrypted_archive_round_trip(kind: Kind) {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_key, cert) = certificate(Some(dir.path()), 2048);
    let receiver = Receiver::start().await;
    let mut builder = builder().callback_url(receiver.url());
    if let Kind::Azure = kind {
        // The service's Azure config has no endpoint: Azurite stands in for Azure.
        builder = builder.azure_endpoint(servers.azure.endpoint.clone().unwrap());
    }
    let emulator = builder.start().await.unwrap();
    let client = client(&emulator);
    client
        .set_archive_storage(&target(
            &servers,
            kind,
            ArchiveEncryption::for_certificate(&cert),
        ))
        .await
        .unwrap();
    emulator.set_hooks(Hooks {
        recorded_seconds: Some(10),
        ..Default::default()
    });
    let started = client
        .start_archive(&StartArchiveRequest::new(format!("round-trip-{kind:?}")))
        .await
        .unwrap();
    let stopped = client.stop_archive(&started.id).await.unwrap();
    assert_eq!(
        stopped.duration, 0,
        "the known issue: encrypted archives report 0"
    );
    let done = emulator
        .wait_for_status(
            &started.id,
            &[ArchiveStatus::Uploaded, ArchiveStatus::Failed],
            WAIT,
        )
        .await
        .unwrap();
    let entry = emulator
        .snapshot()
        .archives
        .into_iter()
        .find(|a| a.archive.id == started.id)
        .unwrap();
    assert_eq!(done.status, ArchiveStatus::Uploaded, "{entry:?}");
    assert_eq!(done.url, None);
    assert_eq!(done.duration, 0);

    // The password from the callbacks and from GET.
    let statuses = receiver.wait_for(&started.id, 3, WAIT).await;
    assert_eq!(statuses, ["started", "stopped", "uploaded"]);
    let uploaded_callback = receiver
        .received()
        .into_iter()
        .find(|r| r.json["id"] == started.id.as_str() && r.json["status"] == "uploaded")
        .unwrap();
    let from_callback = uploaded_callback.json["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let from_get = client
        .get_archive(&started.id)
        .await
        .unwrap()
        .password
        .unwrap();
    assert!(!from_callback.is_empty());
    assert_eq!(from_callback, from_get);

    // The object, as anyone with the bucket's credentials reads it.
    let store = store(&servers, kind);
    let located = store.locate(API_KEY, &started.id).await.unwrap();
    assert_eq!(located.kind, ArchiveKind::EncryptedTs);
    assert_eq!(
        located.object.key,
        format!("{API_KEY}/{}/archive.ts", started.id)
    );
    assert_eq!(located.object.size, done.size);
    assert_eq!(located.object.size % 16, 0);
    let bytes = store
        .get_range(&located.object.key, 0..located.object.size, None)
        .await
        .unwrap();
    std::fs::write(dir.path().join("your_archive_file.ts"), &bytes).unwrap();

    let media = opentok_emulator::media::Media::bundled().build(Duration::from_secs(10));
    for (from, password) in [("callback", &from_callback), ("GET", &from_get)] {
        let _ = std::fs::remove_file(dir.path().join("your_decrypted_file.ts"));
        bash(
            dir.path(),
            &DOCUMENTED_COMMANDS.replace("password-from-tokbox", password),
        );
        let decrypted = std::fs::read(dir.path().join("your_decrypted_file.ts")).unwrap();
        assert_eq!(
            decrypted.len(),
            bytes.len(),
            "-nopad keeps the padding ({from})"
        );
        assert_eq!(
            &decrypted[..media.len()],
            &media[..],
            "password from {from}"
        );
        assert_eq!(
            archive_core::cbc::pkcs7_unpadded_len(&decrypted),
            Some(media.len())
        );
        let (codecs, duration) = ffprobe(dir.path(), "your_decrypted_file.ts");
        assert_eq!(codecs, ["h264", "aac"], "password from {from}");
        // 10 s recorded: three copies of the 4.03 s clip, one continuous stream.
        assert!((duration - 12.0).abs() < 0.3, "{duration}");
    }
    // The password never left unwrapped: no key material is in the state.
    let state = format!("{:?}", emulator.snapshot());
    assert!(!state.contains(servers.s3.secret_access_key.expose_secret()));
    assert!(!state.contains(servers.azure.account_key.expose_secret()));

    // Deleting an uploaded archive removes its record, not the customer's file.
    client.delete_archive(&started.id).await.unwrap();
    assert_eq!(
        client
            .list_archives(0, 50, Some(&format!("round-trip-{kind:?}")))
            .await
            .unwrap()
            .count,
        0
    );
    assert!(store.locate(API_KEY, &started.id).await.is_ok());
    emulator.stop().await;
}

#[tokio::test]
async fn encrypted_archive_in_s3_decrypts_with_the_documented_commands() {
    encrypted_archive_round_trip(Kind::S3).await;
}

#[tokio::test]
async fn encrypted_archive_in_azurite_decrypts_with_the_documented_commands() {
    encrypted_archive_round_trip(Kind::Azure).await;
}

#[tokio::test]
async fn unencrypted_archives_are_uploaded_as_archive_mp4() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    for kind in [Kind::S3, Kind::Azure] {
        let emulator = builder()
            .azure_endpoint(servers.azure.endpoint.clone().unwrap())
            .start()
            .await
            .unwrap();
        let client = client(&emulator);
        client
            .set_archive_storage(&target(&servers, kind, ArchiveEncryption::Disabled))
            .await
            .unwrap();
        let a = client
            .start_archive(&StartArchiveRequest::new("plain"))
            .await
            .unwrap();
        assert_eq!(a.encrypted_password(), None);
        client.stop_archive(&a.id).await.unwrap();
        let done = emulator
            .wait_for_status(
                &a.id,
                &[ArchiveStatus::Uploaded, ArchiveStatus::Failed],
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(done.status, ArchiveStatus::Uploaded, "{kind:?}");
        let store = store(&servers, kind);
        let located = store.locate(API_KEY, &a.id).await.unwrap();
        assert_eq!(located.kind, ArchiveKind::Mp4);
        let bytes = store
            .get_range(&located.object.key, 0..located.object.size, None)
            .await
            .unwrap();
        assert_eq!(&bytes[..], opentok_emulator::media::BUNDLED_CLIP);
        emulator.stop().await;
    }
}

#[tokio::test]
async fn wrong_storage_credentials_fail_the_upload_and_fall_back() {
    let Some(servers) = TestServers::require() else {
        return;
    };
    let emulator = builder().start().await.unwrap();
    let client = client(&emulator);
    let (key, cert) = certificate(None, 1024);
    let mut bad = target(
        &servers,
        Kind::S3,
        ArchiveEncryption::for_certificate(&cert),
    );
    bad.fallback = Some(Fallback::Opentok);
    if let opentok_rest::model::StorageDestination::S3(s3) = &mut bad.destination {
        s3.secret_key = "not-the-secret-key".into();
    }
    client.set_archive_storage(&bad).await.unwrap();
    let a = client
        .start_archive(&StartArchiveRequest::new("bad-creds"))
        .await
        .unwrap();
    client.stop_archive(&a.id).await.unwrap();
    let done = emulator
        .wait_for_status(
            &a.id,
            &[ArchiveStatus::Available, ArchiveStatus::Uploaded],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(done.status, ArchiveStatus::Available);
    let entry = emulator
        .snapshot()
        .archives
        .into_iter()
        .find(|e| e.archive.id == a.id)
        .unwrap();
    let error = entry.upload_error.unwrap();
    assert!(!error.contains("not-the-secret-key"), "{error}");
    // The server refused the signature; the kept copy decrypts.
    let bytes = common::http()
        .get(done.url.unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let blob =
        archive_core::oaep::unwrap_password(&key, done.password.as_deref().unwrap()).unwrap();
    let mut plain = bytes.to_vec();
    archive_core::cbc::decrypt_in_place(blob.key(), blob.iv(), &mut plain).unwrap();
    assert!(plain.starts_with(opentok_emulator::media::BUNDLED_CLIP));
    assert!(
        store(&servers, Kind::S3)
            .locate(API_KEY, &a.id)
            .await
            .is_err(),
        "nothing reached the bucket"
    );
    emulator.stop().await;
}
