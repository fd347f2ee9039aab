//! What `pull` does not take on trust from callbacks (which anyone who can reach the receiver may send): a
//! password that does not fit, and a terminal status (`failed`, `deleted`) that only a callback reported. Both
//! are checked with the REST API, the authority, when it is configured; what it says is recorded in the
//! ledger, with the history kept. Also what `pull` checks before it starts: an archive already pulled, one
//! not uploaded yet.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use opentok_rest::model::{Archive, ArchiveStatus};

use super::ready;
use crate::exit::Failure;
use archive_pull::lock;

/// Whether a pull failed because of the archive's password: it does not unwrap with our key, is not a valid
/// blob, or decrypts the archive to something that is not MPEG-TS.
pub(crate) fn password_failed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<archive_pull::PullError>()
        .is_some_and(archive_pull::PullError::is_password_failure)
}

/// The archives the ledger has as `failed` or `deleted` on a callback's word alone (not pulled by us, not
/// deleted by us) that the REST API says are uploaded or available: to be pulled after all. What the API says
/// of each is recorded.
pub(crate) async fn terminal_from_callbacks(
    client: &opentok_rest::Client,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
) -> anyhow::Result<Vec<String>> {
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
                eprintln!(
                    "note: a callback said archive {id} is {}, but the REST API says {}: pulling it",
                    said.as_str(),
                    archive.status.as_str()
                );
                ids.push(id);
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: cannot re-check archive {id} with the REST API: {e:#}"),
        }
    }
    Ok(ids)
}

/// Asks the REST API for archive `id` and records what it says in the ledger (history kept).
pub(crate) async fn ask_service(
    client: &opentok_rest::Client,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
) -> anyhow::Result<Archive> {
    let archive = client
        .get_archive(id)
        .await
        .with_context(|| format!("cannot get archive {id} from the service"))?;
    let event = archive_db::IncomingEvent::from_archive(
        &archive,
        archive_db::EventSource::Sync,
        client.base_url().to_string(),
    );
    lock(ledger)
        .record_event(&event)
        .context("cannot record the archive in the ledger")?;
    Ok(archive)
}

/// The error for an archive that cannot be pulled (yet).
pub(crate) fn not_ready(id: &str, status: &ArchiveStatus) -> anyhow::Error {
    let what = match status {
        ArchiveStatus::Started | ArchiveStatus::Paused => {
            "still recording: retry when it is stopped and uploaded"
        }
        ArchiveStatus::Stopped => {
            "stopped, and the service is still uploading it: retry when it is uploaded"
        }
        _ => "not uploaded nor available: only uploaded or available archives can be pulled",
    };
    Failure::invalid(format!("archive {id} is {}: {what}", status.as_str()))
}

/// Where archive `record` was pulled to and verified, if that is in `out_dir` and still there.
pub(crate) fn already_pulled(
    record: &archive_db::ArchiveRecord,
    out_dir: &Path,
) -> Option<PathBuf> {
    record.verified_at.as_ref()?;
    let path = PathBuf::from(record.local_path.as_ref()?);
    let dir = std::fs::canonicalize(out_dir).ok()?;
    (path.parent() == Some(dir.as_path()) && path.is_file()).then_some(path)
}
