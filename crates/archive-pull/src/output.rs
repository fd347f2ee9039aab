//! The two local outputs a pull writes (file I/O; the rest of the crate only moves bytes), each a [`Sink`] of
//! the one loop: an encrypted archive's resumable, decrypting [`ResumableOutput`] (archive-core), which this
//! module starts and concludes ([`ResumableSink`]), and an unencrypted archive's [`PlainOutput`] (atomic,
//! hashed, not resumable; [`PlainSink`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use archive_core::archive::ArchiveError;
use archive_core::resume::{ResumableOutput, ResumableSummary};
use bytes::BytesMut;
use sha2::{Digest, Sha256};

use crate::sink::{Ended, Sink};
use crate::{BoxError, Observer, PullError, StopReason};

/// An unencrypted archive being written as it arrives: atomically, with its SHA-256.
pub(crate) struct PlainOutput {
    file: archive_core::atomic::AtomicFile,
    path: PathBuf,
    hasher: Sha256,
    bytes: u64,
}

impl PlainOutput {
    pub(crate) fn create(path: &Path) -> Result<Self, PullError> {
        let file =
            archive_core::atomic::AtomicFile::create(path).map_err(|e| write_error(path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    pub(crate) fn write(&mut self, chunk: &[u8]) -> Result<(), PullError> {
        cpu_bound(|| {
            self.hasher.update(chunk);
            self.file.write_all(chunk)
        })
        .map_err(|e| write_error(&self.path, e))?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<ResumableSummary, PullError> {
        let path = self.path;
        self.file.commit().map_err(|e| write_error(&path, e))?;
        Ok(ResumableSummary {
            path,
            bytes: self.bytes,
            trimmed_bytes: 0,
            sha256: hex::encode(self.hasher.finalize()),
            resumed_from: 0,
            report: archive_core::mpegts::TsInspector::new().finish(),
        })
    }
}

fn write_error(path: &Path, e: std::io::Error) -> PullError {
    PullError::Write {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Tells `observer` that an earlier partial output was discarded, and why, or where a resumed pull starts.
pub(crate) fn say_where_it_starts(
    output: &ResumableOutput,
    out_path: &Path,
    observer: &dyn Observer,
) {
    if let Some(why) = output.restarted() {
        observer.note(&format!(
            "discarding the partial output of {}: {why}; starting from zero",
            out_path.display()
        ));
    } else if output.resume_offset() > 0 {
        observer.note(&format!(
            "resumed {} at {} MiB",
            out_path.display(),
            output.resume_offset() >> 20
        ));
    }
}

/// How a decrypting download loop ended, short of its end.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    /// The decryption refused the data (wrong key, or an I/O error writing).
    pub decrypt_error: Option<ArchiveError>,
    /// The download failed.
    pub failure: Option<BoxError>,
    /// The pull was cancelled.
    pub interrupted: Option<StopReason>,
}

/// Completes a resumable decryption after its download loop: the output is finished if all of the object is
/// in; otherwise it is checkpointed for the next run (or, for a wrong key or a full disk, discarded) and the
/// error says why.
pub(crate) fn conclude(
    mut output: ResumableOutput,
    stop: Stop,
    size: u64,
    out_path: &Path,
    what: &str,
    trim: bool,
) -> Result<ResumableSummary, PullError> {
    if let Some(e) = stop.decrypt_error {
        if matches!(e, ArchiveError::NotMpegTs(_) | ArchiveError::Unverified(_)) {
            // Wrong key or password: nothing of it is kept.
            output.discard();
        } else if matches!(&e, ArchiveError::Write(io) if io.kind() == std::io::ErrorKind::StorageFull)
        {
            // A full disk: a partial file would only keep it full.
            output.discard();
            return Err(PullError::DiskFull {
                what: what.to_string(),
                path: out_path.to_path_buf(),
                source: e,
            });
        } else {
            let _ = output.checkpoint();
        }
        return Err(PullError::Decrypt {
            what: what.to_string(),
            source: e,
        });
    }
    if stop.interrupted.is_some() || stop.failure.is_some() || output.resume_offset() != size {
        // Make what we have durable for the next run.
        let at = output.resume_offset();
        let _ = cpu_bound(|| output.checkpoint());
        if let Some(reason) = stop.interrupted {
            return Err(PullError::Interrupted {
                reason,
                path: out_path.to_path_buf(),
            });
        }
        let source = stop.failure.unwrap_or_else(|| {
            Box::new(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the download stopped at {at} of {size} bytes"),
            ))
        });
        return Err(PullError::Download {
            path: out_path.to_path_buf(),
            source,
        });
    }
    cpu_bound(|| output.finish(trim)).map_err(|e| PullError::Decrypt {
        what: what.to_string(),
        source: e,
    })
}

/// The local output of an encrypted archive, as a [`Sink`]: each piece is hashed (the object's bytes, when
/// the hasher could be rebuilt for a resumed run), decrypted, checked, hashed (the plaintext) and written
/// into the resumable output, which checkpoints as it goes; [`conclude`] ends it.
pub(crate) struct ResumableSink<'a> {
    /// The output being written.
    pub output: ResumableOutput,
    /// The object's bytes so far (`None`: a resumed pull whose earlier part could not be read back).
    pub hasher: Option<Sha256>,
    /// Where the output goes (for messages).
    pub path: &'a Path,
    /// What it is read from (for messages).
    pub what: &'a str,
    /// The object's size.
    pub size: u64,
    /// Remove the PKCS#7 padding.
    pub trim: bool,
}

impl Sink for ResumableSink<'_> {
    type Error = ArchiveError;
    /// The output, that it was decrypted, and the object's SHA-256 (hex).
    type Done = (ResumableSummary, bool, Option<String>);

    fn decrypts(&self) -> bool {
        true
    }

    fn keeps_partial(&self) -> bool {
        true
    }

    async fn write(&mut self, piece: &mut BytesMut) -> Result<(), ArchiveError> {
        cpu_bound(|| {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&piece[..]);
            }
            self.output.write_ciphertext(piece)
        })
    }

    async fn finish(self, ended: Ended<ArchiveError>) -> Result<Self::Done, PullError> {
        let mut stop = Stop::default();
        match ended {
            Ended::Drained => {}
            Ended::Cancelled(reason) => stop.interrupted = Some(reason),
            Ended::DownloadFailed(e) => stop.failure = Some(into_cause(e)),
            Ended::WriteFailed(e) => stop.decrypt_error = Some(e),
        }
        let summary = conclude(
            self.output,
            stop,
            self.size,
            self.path,
            self.what,
            self.trim,
        )?;
        Ok((
            summary,
            true,
            self.hasher.map(|h| hex::encode(h.finalize())),
        ))
    }
}

/// The download's error as the cause of a failed download (the storage or URL error itself, so its type
/// stays visible to the caller).
fn into_cause(e: PullError) -> BoxError {
    match e {
        PullError::Storage(e) => Box::new(e),
        PullError::Presigned(e) => Box::new(e),
        other => Box::new(other),
    }
}

/// The local output of an unencrypted archive, as a [`Sink`]: downloaded as it is, atomically, with its
/// SHA-256 (which is the object's too); not resumable: cancelled or failed, the temporary file goes.
pub(crate) struct PlainSink<'a> {
    /// The output being written.
    pub output: PlainOutput,
    /// Where it goes (for messages).
    pub path: &'a Path,
}

impl Sink for PlainSink<'_> {
    type Error = PullError;
    /// The output, that it was not decrypted, and the object's SHA-256 (hex), the output's.
    type Done = (ResumableSummary, bool, Option<String>);

    fn decrypts(&self) -> bool {
        false
    }

    async fn write(&mut self, piece: &mut BytesMut) -> Result<(), PullError> {
        self.output.write(piece)
    }

    async fn finish(self, ended: Ended<PullError>) -> Result<Self::Done, PullError> {
        match ended {
            Ended::Drained => {}
            Ended::Cancelled(reason) => {
                return Err(PullError::InterruptedDiscarded {
                    reason,
                    path: self.path.to_path_buf(),
                });
            }
            Ended::DownloadFailed(e) | Ended::WriteFailed(e) => return Err(e),
        }
        let summary = self.output.finish()?;
        let object_sha256 = Some(summary.sha256.clone());
        Ok((summary, false, object_sha256))
    }
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
