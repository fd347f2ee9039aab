//! What `pull` does once an output is verified, in this order and no other: the ledger records the verified
//! pull durably (one transaction, `synchronous=FULL`) → only then `--delete-object` removes the encrypted object
//! from the storage target and the ledger records that → only then `--delete-remote` deletes the service's
//! record through the REST API and the ledger records that. A step that fails stops the ones after it: a
//! ledger that cannot be written means nothing is deleted. A pull that failed a check is recorded as failed,
//! with why, and nothing is deleted.

use anyhow::Context as _;
use archive_core::archive::ArchiveError;
use archive_db::{Deleted, PullCounts};
use storage_fetch::Store;

use super::{Args, Pulled, lock, record_what_we_know};
use crate::exit::Failure;

/// Where the verified output came from, for `--delete-object`.
pub(crate) enum Origin {
    /// The object `{apiKey}/{id}/archive.*` in the storage target.
    Target,
    /// The service's own cloud (status `available`): there is no object of ours to delete.
    ServiceCloud,
}

/// Records the verified pull, then makes the deletions asked for, each recorded as it is done.
pub(crate) async fn settle(
    args: &Args,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    mut pulled: Pulled,
    origin: Origin,
) -> anyhow::Result<Pulled> {
    let id = pulled.id.clone();
    let record = archive_db::PullRecord {
        // Absolute, so the ledger says where the file is from any directory.
        local_path: std::fs::canonicalize(&pulled.path).unwrap_or_else(|_| pulled.path.clone()),
        sha256: pulled.sha256.clone(),
        measured_duration: pulled.measured_duration,
        verified_at: time::OffsetDateTime::now_utc(),
    };
    let counts = PullCounts {
        bytes: pulled.bytes,
        continuity_errors: pulled.report.as_ref().map_or(0, |r| r.continuity_errors),
        sync_losses: pulled.report.as_ref().map_or(0, |r| r.sync_losses),
    };
    let nothing_deleted = if args.delete_object || args.delete_remote {
        "; nothing was deleted"
    } else {
        ""
    };
    lock(ledger)
        .record_verified_pull(&id, &record, counts)
        .with_context(|| {
            format!(
                "pulled and verified {}, but cannot record it in the ledger{nothing_deleted}",
                pulled.path.display()
            )
        })?;
    if args.delete_object {
        match origin {
            Origin::Target => {
                store.delete(&pulled.object_key).await.with_context(|| {
                    format!(
                        "pulled and verified {}, but cannot delete the object {} from the storage target",
                        pulled.path.display(),
                        pulled.object_key
                    )
                })?;
                pulled.object_deleted = true;
                lock(ledger)
                    .record_deletion(
                        &id,
                        Deleted::Object,
                        &pulled.object_key,
                        time::OffsetDateTime::now_utc(),
                    )
                    .context("deleted the object, but cannot record it in the ledger")?;
            }
            Origin::ServiceCloud => eprintln!(
                "note: archive {id} is kept in the service's cloud, not in your storage target: \
                 --delete-object has no object to delete"
            ),
        }
    }
    if args.delete_remote {
        let client =
            client.ok_or_else(|| Failure::usage("--delete-remote needs the API key and secret"))?;
        client.delete_archive(&id).await.with_context(|| {
            format!(
                "pulled and verified {}, but cannot delete archive {id} at the service",
                pulled.path.display()
            )
        })?;
        pulled.remote_deleted = true;
        let mut ledger = lock(ledger);
        ledger
            .record_deletion(
                &id,
                Deleted::ServiceRecord,
                client.base_url().as_str(),
                time::OffsetDateTime::now_utc(),
            )
            .context("deleted at the service, but cannot record it in the ledger")?;
        // The service now reports it deleted (and no longer lists it, so `sync` cannot tell the ledger).
        let deleted = serde_json::json!({"id": id, "status": "deleted"});
        record_what_we_know(&mut ledger, deleted, "archivectl pull --delete-remote")
            .context("deleted at the service, but cannot record it in the ledger")?;
    }
    Ok(pulled)
}

/// Records in the ledger a pull that failed one of its checks (the key, MPEG-TS throughout, the length, the
/// padding), with why. Other failures (interrupted, the network, the disk) leave the ledger as it was.
pub(crate) fn record_failure(
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
    error: &anyhow::Error,
) {
    let failed_check = error.chain().any(|c| {
        matches!(
            c.downcast_ref::<ArchiveError>(),
            Some(ArchiveError::NotMpegTs(_) | ArchiveError::Unverified(_))
        )
    });
    if !failed_check {
        return;
    }
    let reason = format!("{error:#}");
    if let Err(e) = lock(ledger).record_failed_pull(id, &reason, time::OffsetDateTime::now_utc()) {
        eprintln!("warning: cannot record the failed pull of {id} in the ledger: {e}");
    }
}
