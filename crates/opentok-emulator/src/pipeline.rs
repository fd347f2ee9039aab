//! What happens after an archive is stopped, in the background: the file is made (the clip repeated to the
//! recorded time; encrypted with the archive's AES-256-CBC key and IV, PKCS#7-padded, if it is encrypted;
//! zipped for individual archives), then uploaded to the project's target at `{apiKey}/{archiveId}/archive.ts`
//! (`archive.mp4`, `archive.zip`) through storage-fetch.
//!
//! | target | upload | status | file |
//! |---|---|---|---|
//! | none | — | `available` | kept in the emulator's cloud, `url` signed and expiring |
//! | set | succeeds | `uploaded` | in the bucket or container |
//! | set, fallback `none` | fails | `failed` | none |
//! | set, fallback `opentok`/`vonage` | fails | `available` | kept in the emulator's cloud |
//!
//! Each outcome is a status callback. The archive's key and IV are dropped (zeroized) as soon as the file is
//! encrypted: afterwards only the wrapped `password` remains, as with the service.

use std::sync::Arc;
use std::time::Duration;

use archive_core::PasswordBlob;
use base64::Engine as _;
use opentok_rest::model::{ArchiveStatus, Fallback};
use sha2::{Digest, Sha256};
use storage_fetch::{MultipartOptions, Store, StoreOptions, Target};

use crate::state::{Shared, now_ms};
use crate::storage::StoredTarget;

/// Files larger than this go up as multipart uploads.
const MULTIPART_FROM: usize = 16 << 20;

/// Starts processing a stopped archive.
pub(crate) fn spawn(shared: Arc<Shared>, id: String, recorded: Duration) {
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = process(shared, id, recorded) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
}

/// The archive's file: the media for `recorded`, zipped or encrypted as the archive is.
fn make_file(
    shared: &Shared,
    recorded: Duration,
    blob: Option<PasswordBlob>,
    file_name: &str,
) -> Vec<u8> {
    let plain = shared.media.build(recorded);
    if file_name == "archive.zip" {
        return crate::zip::stored_zip(&[("stream-1.ts".to_owned(), &plain)]);
    }
    match blob {
        Some(blob) => archive_core::cbc::encrypt_padded(blob.key(), blob.iv(), &plain),
        None => plain,
    }
}

/// Where the emulator uploads for `target`: its own endpoint, else the emulator's stand-ins.
pub(crate) fn upload_target(shared: &Shared, target: &StoredTarget) -> Result<Target, String> {
    let mut target = Target::try_from(&target.target).map_err(|e| e.to_string())?;
    match &mut target {
        Target::S3(s3) => {
            if s3.endpoint.is_none() {
                s3.endpoint = shared.config.s3_endpoint.clone();
            }
        }
        Target::Azure(azure) => {
            if let Some(endpoint) = &shared.config.azure_endpoint {
                azure.endpoint = Some(endpoint.clone());
            }
        }
    }
    Ok(target)
}

async fn upload(store: &Store, key: &str, bytes: Vec<u8>) -> Result<(), String> {
    let result = if bytes.len() > MULTIPART_FROM {
        store
            .put_multipart(key, bytes.as_slice(), MultipartOptions::default())
            .await
    } else {
        store.put(key, bytes).await
    };
    result.map(|_| ()).map_err(|e| e.to_string())
}

enum Outcome {
    Uploaded,
    Failed,
    Cloud,
}

async fn process(shared: Arc<Shared>, id: String, recorded: Duration) {
    let taken = {
        let mut inner = shared.lock();
        let delay = inner.hooks.upload_delay_ms;
        let fail = inner.hooks.fail_uploads > 0;
        if fail {
            inner.hooks.fail_uploads -= 1;
        }
        let wrong_sha256sum = inner.hooks.wrong_sha256sum > 0;
        if wrong_sha256sum {
            inner.hooks.wrong_sha256sum -= 1;
        }
        let target = inner
            .archives
            .get(&id)
            .and_then(|r| inner.storage.get(&r.project).cloned());
        inner.archives.get_mut(&id).map(|record| {
            (
                (delay, wrong_sha256sum),
                fail,
                record.project.clone(),
                record.file_name,
                record.blob.take(),
                target,
            )
        })
    };
    let Some(((delay, wrong_sha256sum), fail, project, file_name, blob, target)) = taken else {
        return;
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let maker = shared.clone();
    let made =
        tokio::task::spawn_blocking(move || make_file(&maker, recorded, blob, file_name)).await;
    let Ok(bytes) = made else {
        finish(
            &shared,
            &id,
            Outcome::Failed,
            None,
            Some("could not make the archive file".into()),
            None,
            0,
            String::new(),
        )
        .await;
        return;
    };
    let size = bytes.len() as u64;
    let mut digest = Sha256::digest(&bytes);
    if wrong_sha256sum {
        // The `wrongSha256sum` hook: a digest that is not this file's.
        digest[0] ^= 0xff;
    }
    let sha256 = base64::engine::general_purpose::STANDARD.encode(digest);
    let key = format!("{project}/{id}/{file_name}");
    let (outcome, described, error) = match target {
        None => (Outcome::Cloud, None, None),
        Some(target) => {
            let result = match upload_target(&shared, &target) {
                Err(e) => Err((None, e)),
                Ok(t) => {
                    let described = format!(
                        "{} {} {} {}",
                        t.service_name(),
                        t.display_endpoint(),
                        t.container_kind(),
                        t.container_name()
                    );
                    if fail {
                        Err((
                            Some(described),
                            "the upload failed (failUploads hook)".to_owned(),
                        ))
                    } else {
                        let options = StoreOptions {
                            connect_timeout: Duration::from_secs(5),
                            request_timeout: Duration::from_secs(300),
                            retries: 2,
                            ..StoreOptions::default()
                        };
                        match Store::with_options(t, options) {
                            Err(e) => Err((Some(described), e.to_string())),
                            Ok(store) => match upload(&store, &key, bytes.clone()).await {
                                Ok(()) => Ok(described),
                                Err(e) => Err((Some(described), e)),
                            },
                        }
                    }
                }
            };
            match result {
                Ok(described) => (Outcome::Uploaded, Some(described), None),
                Err((described, error)) => {
                    tracing::warn!(archive = %id, %error, "upload failed");
                    match target.fallback() {
                        Fallback::None => (Outcome::Failed, described, Some(error)),
                        Fallback::Opentok | Fallback::Vonage => {
                            (Outcome::Cloud, described, Some(error))
                        }
                    }
                }
            }
        }
    };
    let cloud_file = match outcome {
        Outcome::Cloud => {
            let path = shared.cloud_dir.join(&project).join(&id).join(file_name);
            let written = async {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::write(&path, &bytes).await
            }
            .await;
            match written {
                Ok(()) => Some(path),
                Err(e) => {
                    finish(
                        &shared,
                        &id,
                        Outcome::Failed,
                        described,
                        Some(format!("could not keep the file: {e}")),
                        None,
                        size,
                        sha256,
                    )
                    .await;
                    return;
                }
            }
        }
        _ => None,
    };
    finish(
        &shared, &id, outcome, described, error, cloud_file, size, sha256,
    )
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    shared: &Arc<Shared>,
    id: &str,
    outcome: Outcome,
    described: Option<String>,
    error: Option<String>,
    cloud_file: Option<std::path::PathBuf>,
    size: u64,
    sha256: String,
) {
    let mut inner = shared.lock();
    let retention = shared.config.fallback_retention;
    let Some(record) = inner.archives.get_mut(id) else {
        return;
    };
    let now = now_ms();
    record.object_key = Some(format!("{}/{}/{}", record.project, id, record.file_name));
    record.upload_target = described;
    record.upload_error = error;
    record.archive.updated_at = Some(now);
    record.archive.sha256sum = Some(sha256);
    if size > 0 {
        record.archive.size = size;
    }
    // Deleted while processing: the file is not kept.
    if record.archive.status == ArchiveStatus::Deleted {
        if let Some(file) = cloud_file {
            let _ = std::fs::remove_file(file);
        }
        drop(inner);
        shared.bump();
        return;
    }
    record.archive.status = match outcome {
        Outcome::Uploaded => ArchiveStatus::Uploaded,
        Outcome::Failed => {
            record.archive.reason = Some("system failure".into());
            ArchiveStatus::Failed
        }
        Outcome::Cloud => {
            record.cloud_file = cloud_file;
            record.available_until_ms = Some(now.saturating_add(retention.as_millis() as i64));
            ArchiveStatus::Available
        }
    };
    tracing::info!(archive = %id, status = %record.archive.status, "archive processed");
    shared.notify(&mut inner, id);
    drop(inner);
    shared.bump();
}
