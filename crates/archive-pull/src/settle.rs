//! What follows a verified pull, in this order and no other: the ledger records the verified pull durably
//! (one transaction, `synchronous=FULL`) → only then the encrypted object is deleted from the storage target
//! (if asked) and the ledger records that → only then the service's record is deleted through the REST API
//! (if asked) and the ledger records that. A step that fails stops the ones after it: a ledger that cannot be
//! written means nothing is deleted. A pull that failed a check is recorded as failed, with why
//! ([`record_failure`]), and nothing is deleted.

use std::path::PathBuf;
use std::sync::Mutex;

use archive_db::{Deleted, Ledger, PullCounts};
use opentok_rest::model::Archive;
use storage_fetch::Store;

use crate::{Observer, PullError, Pulled};

/// The deletions asked for once an output is verified and recorded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deletions {
    /// Delete the encrypted object `{apiKey}/{archiveId}/archive.*` from the storage target.
    pub object: bool,
    /// Delete the archive's record at the service (REST API).
    pub remote: bool,
}

/// Where the verified output came from, for the object deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The object `{apiKey}/{id}/archive.*` in the storage target.
    Target,
    /// The service's own cloud (status `available`): there is no object of ours to delete.
    ServiceCloud,
}

/// Why the ledger could not take what is known of an archive.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The fields do not make an archive of the service's model.
    #[error("cannot describe the archive for the ledger")]
    Describe(#[source] serde_json::Error),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] archive_db::DbError),
}

/// Why a verified pull could not be recorded, or a deletion made or recorded. The steps before it are done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The ledger could not record the verified pull: nothing was deleted.
    #[error("pulled and verified {}, but cannot record it in the ledger{}", path.display(),
        if *deletions_asked { "; nothing was deleted" } else { "" })]
    RecordPull {
        /// The verified output.
        path: PathBuf,
        /// Whether a deletion was asked for (and so not made).
        deletions_asked: bool,
        /// Why.
        #[source]
        source: archive_db::DbError,
    },
    /// The object could not be deleted from the storage target.
    #[error("pulled and verified {}, but cannot delete the object {key} from the storage target", path.display())]
    DeleteObject {
        /// The verified output.
        path: PathBuf,
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: storage_fetch::Error,
    },
    /// The service's record is to be deleted, and no REST client was given.
    #[error("--delete-remote needs the API key and secret")]
    NoClient,
    /// The service's record could not be deleted.
    #[error("pulled and verified {}, but cannot delete archive {id} at the service", path.display())]
    DeleteRemote {
        /// The verified output.
        path: PathBuf,
        /// The archive.
        id: String,
        /// Why.
        #[source]
        source: opentok_rest::Error,
    },
    /// A deletion was made but the ledger could not record it.
    #[error("{done}, but cannot record it in the ledger")]
    RecordDeletion {
        /// What was deleted.
        done: &'static str,
        /// Why.
        #[source]
        source: RecordError,
    },
}

/// Records in the ledger what is known of an archive (`fields` of the service's archive object), as the
/// service would report it; `origin` says who knows it.
pub fn record_known(
    ledger: &mut Ledger,
    fields: serde_json::Value,
    origin: &str,
) -> Result<(), RecordError> {
    let archive: Archive = serde_json::from_value(fields).map_err(RecordError::Describe)?;
    ledger.record_event(&archive_db::IncomingEvent::from_archive(
        &archive,
        archive_db::EventSource::Sync,
        origin,
    ))?;
    Ok(())
}

/// Locks the ledger (a poisoned lock still holds a consistent SQLite connection).
pub fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records the verified pull, then makes the deletions asked for, each recorded as it is done (see the
/// module's order). `store` is the target the object came from; `client` deletes at the service.
pub async fn settle(
    ledger: &Mutex<Ledger>,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    mut pulled: Pulled,
    origin: Origin,
    deletions: Deletions,
    observer: &dyn Observer,
) -> Result<Pulled, SettleError> {
    let id = pulled.id.clone();
    let record = archive_db::PullRecord {
        // Absolute, so the ledger says where the file is from any directory.
        // A bucket output's path is its URL (`s3://…`), recorded as it is.
        local_path: if pulled.path.to_string_lossy().contains("://") {
            pulled.path.clone()
        } else {
            std::fs::canonicalize(&pulled.path).unwrap_or_else(|_| pulled.path.clone())
        },
        sha256: pulled.sha256.clone(),
        measured_duration: pulled.measured_duration,
        verified_at: time::OffsetDateTime::now_utc(),
    };
    let counts = PullCounts {
        bytes: pulled.bytes,
        continuity_errors: pulled.report.as_ref().map_or(0, |r| r.continuity_errors),
        sync_losses: pulled.report.as_ref().map_or(0, |r| r.sync_losses),
    };
    lock(ledger)
        .record_verified_pull(&id, &record, counts)
        .map_err(|source| SettleError::RecordPull {
            path: pulled.path.clone(),
            deletions_asked: deletions.object || deletions.remote,
            source,
        })?;
    crate::sha256sum::check_and_record(ledger, &mut pulled, observer);
    if deletions.object {
        match origin {
            Origin::Target => {
                store.delete(&pulled.object_key).await.map_err(|source| {
                    SettleError::DeleteObject {
                        path: pulled.path.clone(),
                        key: pulled.object_key.clone(),
                        source,
                    }
                })?;
                pulled.object_deleted = true;
                lock(ledger)
                    .record_deletion(
                        &id,
                        Deleted::Object,
                        &pulled.object_key,
                        time::OffsetDateTime::now_utc(),
                    )
                    .map_err(|e| SettleError::RecordDeletion {
                        done: "deleted the object",
                        source: e.into(),
                    })?;
            }
            Origin::ServiceCloud => observer.note(&format!(
                "archive {id} is kept in the service's cloud, not in your storage target: \
                 --delete-object has no object to delete"
            )),
        }
    }
    if deletions.remote {
        let client = client.ok_or(SettleError::NoClient)?;
        client
            .delete_archive(&id)
            .await
            .map_err(|source| SettleError::DeleteRemote {
                path: pulled.path.clone(),
                id: id.clone(),
                source,
            })?;
        pulled.remote_deleted = true;
        let recorded = |source: RecordError| SettleError::RecordDeletion {
            done: "deleted at the service",
            source,
        };
        let mut ledger = lock(ledger);
        ledger
            .record_deletion(
                &id,
                Deleted::ServiceRecord,
                client.base_url().as_str(),
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| recorded(e.into()))?;
        // The service now reports it deleted (and no longer lists it, so a sync cannot tell the ledger).
        let deleted = serde_json::json!({"id": id, "status": "deleted"});
        record_known(&mut ledger, deleted, "archivectl pull --delete-remote").map_err(recorded)?;
    }
    Ok(pulled)
}

/// Records in the ledger a pull that failed one of its checks (the key, MPEG-TS throughout, the length, the
/// padding), with why (`reason`, the error on one line). Other failures (interrupted, the network, the disk)
/// leave the ledger as it was.
pub fn record_failure(
    ledger: &Mutex<Ledger>,
    id: &str,
    error: &PullError,
    reason: &str,
    observer: &dyn Observer,
) {
    if !error.is_failed_check() {
        return;
    }
    if let Err(e) = lock(ledger).record_failed_pull(id, reason, time::OffsetDateTime::now_utc()) {
        observer.warning(&format!(
            "cannot record the failed pull of {id} in the ledger: {e}"
        ));
    }
}
