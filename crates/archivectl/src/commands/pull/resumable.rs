//! The end of a resumable (decrypting) download, shared by bucket and URL pulls: what is said when it starts
//! (resumed, or an earlier partial output discarded and why), and how it concludes (finished and verified;
//! checkpointed for the next run; or discarded for a wrong key, a failed verification or a full disk).

use std::path::Path;

use archive_core::resume::{ResumableOutput, ResumableSummary};

use crate::exit::Failure;

/// Says on stderr (in text and JSON modes alike) that an earlier partial output was discarded, and why, or
/// where a resumed pull starts.
pub(crate) fn say_where_it_starts(output: &ResumableOutput, out_path: &Path) {
    if let Some(why) = output.restarted() {
        eprintln!(
            "note: discarding the partial output of {}: {why}; starting from zero",
            out_path.display()
        );
    } else if output.resume_offset() > 0 {
        eprintln!(
            "note: resumed {} at {} MiB",
            out_path.display(),
            output.resume_offset() >> 20
        );
    }
}

/// How a decrypting download loop ended, short of its end.
pub(crate) struct Stop {
    /// The decryption refused the data (wrong key, or an I/O error writing).
    pub decrypt_error: Option<archive_core::archive::ArchiveError>,
    /// The download failed.
    pub failure: Option<anyhow::Error>,
    /// SIGINT, SIGTERM or SIGHUP: the exit code to stop with.
    pub interrupted: Option<u8>,
}

/// Completes a resumable decryption after its download loop: the output is finished if all of the object is
/// in; otherwise it is checkpointed for the next run (or, for a wrong key, discarded) and the error says why.
pub(crate) fn conclude(
    mut output: ResumableOutput,
    stop: Stop,
    size: u64,
    out_path: &Path,
    what: &str,
    trim: bool,
) -> anyhow::Result<ResumableSummary> {
    if let Some(e) = stop.decrypt_error {
        if matches!(
            e,
            archive_core::archive::ArchiveError::NotMpegTs(_)
                | archive_core::archive::ArchiveError::Unverified(_)
        ) {
            // Wrong key or password: nothing of it is kept.
            output.discard();
        } else if matches!(&e, archive_core::archive::ArchiveError::Write(io)
            if io.kind() == std::io::ErrorKind::StorageFull)
        {
            // A full disk: a partial file would only keep it full.
            output.discard();
            return Err(anyhow::Error::new(e).context(format!(
                "cannot decrypt {what}: the disk of {} is full; nothing of it was kept: free space and run \
                 the same command again",
                out_path.display()
            )));
        } else {
            let _ = output.checkpoint();
        }
        return Err(anyhow::Error::new(e).context(format!("cannot decrypt {what}")));
    }
    if stop.interrupted.is_some() || stop.failure.is_some() || output.resume_offset() != size {
        // Make what we have durable for the next run.
        let at = output.resume_offset();
        let _ = cpu_bound(|| output.checkpoint());
        if let Some(code) = stop.interrupted {
            return Err(Failure {
                code,
                message: format!(
                    "interrupted; run the same command again to resume {}",
                    out_path.display()
                ),
            }
            .into());
        }
        let e = stop.failure.unwrap_or_else(|| {
            anyhow::Error::new(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the download stopped at {at} of {size} bytes"),
            ))
        });
        return Err(e.context(format!(
            "download failed; what was decrypted is kept: run the same command again to resume {}",
            out_path.display()
        )));
    }
    cpu_bound(|| output.finish(trim))
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot decrypt {what}")))
}

/// Runs CPU-bound work (decryption, hashing, file writes) on the current task, telling a multi-threaded
/// runtime that this worker blocks so its other tasks move elsewhere.
pub(crate) fn cpu_bound<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
