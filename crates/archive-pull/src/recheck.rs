//! What a pull does not take on trust from callbacks (which anyone who can reach the receiver may send): a
//! password that does not fit, and a terminal status (`failed`, `deleted`) that only a callback reported. Both
//! are checked with the REST API, the authority; what it says is recorded in the ledger, with the history
//! kept. Also what is checked before a pull starts: an archive already pulled, one not uploaded yet.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use archive_db::Ledger;
use opentok_rest::model::{Archive, ArchiveStatus};

use crate::{Observer, lock};

/// Why the REST API's word on an archive could not be had or recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecheckError {
    /// The REST API failed.
    #[error("cannot get archive {id} from the service")]
    Service {
        /// The archive.
        id: String,
        /// Why.
        #[source]
        source: opentok_rest::Error,
    },
    /// The ledger failed.
    #[error("cannot record the archive in the ledger")]
    Record(#[source] archive_db::DbError),
    /// The ledger could not be read.
    #[error(transparent)]
    Read(#[from] archive_db::DbError),
    /// The archive is not uploaded nor available (yet).
    #[error("archive {id} is {}: {}", status.as_str(), not_ready_because(status))]
    NotReady {
        /// The archive.
        id: String,
        /// What the service or the ledger says it is.
        status: ArchiveStatus,
    },
}

fn not_ready_because(status: &ArchiveStatus) -> &'static str {
    match status {
        ArchiveStatus::Started | ArchiveStatus::Paused => {
            "still recording: retry when it is stopped and uploaded"
        }
        ArchiveStatus::Stopped => {
            "stopped, and the service is still uploading it: retry when it is uploaded"
        }
        _ => "not uploaded nor available: only uploaded or available archives can be pulled",
    }
}

/// Whether an archive with this status can be pulled: uploaded (to the target) or available (in the
/// service's cloud).
pub fn ready(status: &ArchiveStatus) -> bool {
    matches!(status, ArchiveStatus::Uploaded | ArchiveStatus::Available)
}

/// The error for an archive that cannot be pulled (yet).
pub fn not_ready(id: &str, status: &ArchiveStatus) -> RecheckError {
    RecheckError::NotReady {
        id: id.to_string(),
        status: status.clone(),
    }
}

/// Where archive `record` was pulled to and verified, if that is in `out_dir` and still there.
pub fn already_pulled(record: &archive_db::ArchiveRecord, out_dir: &Path) -> Option<PathBuf> {
    record.verified_at.as_ref()?;
    let path = PathBuf::from(record.local_path.as_ref()?);
    let dir = std::fs::canonicalize(out_dir).ok()?;
    (path.parent() == Some(dir.as_path()) && path.is_file()).then_some(path)
}

/// Asks the REST API for archive `id` and records what it says in the ledger (history kept).
pub async fn ask_service(
    client: &opentok_rest::Client,
    ledger: &Mutex<Ledger>,
    id: &str,
) -> Result<Archive, RecheckError> {
    let archive = client
        .get_archive(id)
        .await
        .map_err(|source| RecheckError::Service {
            id: id.to_string(),
            source,
        })?;
    let event = archive_db::IncomingEvent::from_archive(
        &archive,
        archive_db::EventSource::Sync,
        client.base_url().to_string(),
    );
    lock(ledger)
        .record_event(&event)
        .map_err(RecheckError::Record)?;
    Ok(archive)
}

/// The archives the ledger has as `failed` or `deleted` on a callback's word alone (not pulled by us, not
/// deleted by us) that the REST API says are uploaded or available: to be pulled after all. What the API says
/// of each is recorded; one it cannot say is a warning to `observer`.
pub async fn terminal_from_callbacks(
    client: &opentok_rest::Client,
    ledger: &Mutex<Ledger>,
    observer: &dyn Observer,
) -> Result<Vec<String>, RecheckError> {
    let mut suspects = Vec::new();
    {
        let ledger = lock(ledger);
        for status in [ArchiveStatus::Failed, ArchiveStatus::Deleted] {
            for record in ledger.by_status(&status)? {
                if record.verified_at.is_some() || record.remote_deleted_at.is_some() {
                    continue;
                }
                let history = ledger.status_history(&record.id)?;
                let mut applied = history
                    .iter()
                    .filter(|h| h.applied && h.status == record.status.as_str())
                    .peekable();
                let only_callbacks =
                    applied.peek().is_some() && applied.all(|h| h.source == "callback");
                if only_callbacks {
                    suspects.push((record.id, record.status));
                }
            }
        }
    }
    let mut ids = Vec::new();
    for (id, said) in suspects {
        match ask_service(client, ledger, &id).await {
            Ok(archive) if ready(&archive.status) => {
                observer.note(&format!(
                    "a callback said archive {id} is {}, but the REST API says {}: pulling it",
                    said.as_str(),
                    archive.status.as_str()
                ));
                ids.push(id);
            }
            Ok(_) => {}
            Err(e) => observer.warning(&format!(
                "cannot re-check archive {id} with the REST API: {}",
                crate::keyring::chain(&e)
            )),
        }
    }
    Ok(ids)
}
