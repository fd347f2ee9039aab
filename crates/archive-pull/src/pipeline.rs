//! One archive's pull: a source (an object in a storage target, or a presigned URL) feeds one
//! decrypt-verify-write loop with one cancellation point, into a resumable output; an unencrypted archive
//! goes through the same loop into a plain, atomic output.

use std::path::{Path, PathBuf};

use archive_core::PasswordBlob;
use archive_core::resume::{ResumableOutput, ResumableSummary, ResumeBinding};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use storage_fetch::{ArchiveKind, Download, DownloadOptions, PresignedDownload, Store};

use crate::output::{PlainOutput, Stop, conclude, cpu_bound, say_where_it_starts};
use crate::{BoxError, CancelToken, KeyRing, Observer, Progress, PullError};

/// How an archive is downloaded and written.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Where `{archiveId}.ts` (or `.mp4`/`.zip`) goes.
    pub out_dir: PathBuf,
    /// Remove the PKCS#7 padding (by default the output is what `openssl enc -d -nopad` gives).
    pub trim: bool,
    /// Bytes per ranged GET (a multiple of 16).
    pub part_size: u64,
    /// Ranged GETs in flight.
    pub concurrency: usize,
    /// Make progress durable every this many bytes.
    pub checkpoint: u64,
    /// One pool of part buffers for every archive of a run (see [`storage_fetch::DownloadOptions::buffers`]):
    /// buffers are allocated once, not once per archive, so memory does not creep up with the number of
    /// archives. `None`: each download has its own.
    pub buffers: Option<storage_fetch::PartBuffers>,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("."),
            trim: false,
            part_size: 4 << 20,
            concurrency: 4,
            checkpoint: 32 << 20,
            buffers: None,
        }
    }
}

/// Where an archive is read from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The object `{api_key}/{id}/archive.*` in a storage target (parallel ranged GETs, retried, each part
    /// checked against the object's size and ETag).
    Object {
        /// The target.
        store: &'a Store,
        /// The project (API key) the archive belongs to.
        api_key: &'a str,
    },
    /// A presigned URL the service gives for an archive it keeps in its own cloud (status `available`).
    PresignedUrl(&'a str),
}

/// What one pull did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    /// The archive id.
    pub id: String,
    /// The verified output file.
    pub path: PathBuf,
    /// The object it came from (for a presigned URL, the URL without its query).
    pub object_key: String,
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the output, hex.
    pub sha256: String,
    /// Whether it was decrypted.
    pub encrypted: bool,
    /// Where this run started (0, or a resumed checkpoint).
    pub resumed_from: u64,
    /// Padding removed by `trim`.
    pub trimmed_bytes: u64,
    /// The real duration, measured (encrypted archives: the service reports 0).
    pub measured_duration: Option<f64>,
    /// The MPEG-TS inspection of the output.
    pub report: Option<archive_core::mpegts::TsReport>,
    /// Whether the encrypted object was then deleted from the storage target.
    pub object_deleted: bool,
    /// Whether the archive's record was then deleted at the service, through the REST API.
    pub remote_deleted: bool,
    /// SHA-256 (hex) of the object's bytes as downloaded: the ciphertext as stored (`None`: a resumed pull
    /// whose earlier part could not be read back).
    pub object_sha256: Option<String>,
    /// Whether [`object_sha256`](Self::object_sha256) matched the service's `sha256sum` (`None`: not checked);
    /// set by [`crate::settle()`].
    pub service_sha256_matched: Option<bool>,
}

impl Pulled {
    fn new(
        id: &str,
        object_key: String,
        (summary, encrypted, object_sha256): (ResumableSummary, bool, Option<String>),
    ) -> Self {
        Self {
            id: id.to_string(),
            path: summary.path,
            object_key,
            bytes: summary.bytes,
            sha256: summary.sha256,
            encrypted,
            resumed_from: summary.resumed_from,
            trimmed_bytes: summary.trimmed_bytes,
            measured_duration: summary.report.duration_seconds.filter(|_| encrypted),
            report: encrypted.then_some(summary.report),
            object_deleted: false,
            remote_deleted: false,
            object_sha256,
            service_sha256_matched: None,
        }
    }
}

/// Pulls archive `id` from `source` into `opts.out_dir`: downloads it, decrypting on the fly (the password
/// is unwrapped by `keys`, only for an encrypted archive), checks it is MPEG-TS throughout, measures it,
/// hashes it and renames it into place. Resumes from an earlier run's checkpoint; checkpoints and stops when
/// `cancel` is cancelled. Neither the ledger nor any deletion is touched: see [`crate::settle`].
pub async fn pull_archive(
    source: Source<'_>,
    id: &str,
    password: Option<&str>,
    keys: &KeyRing,
    opts: &PullOptions,
    observer: &dyn Observer,
    cancel: &CancelToken,
) -> Result<Pulled, PullError> {
    if let Some(reason) = cancel.reason() {
        return Err(PullError::NotStarted { reason });
    }
    let unwrap = |password: &str| {
        keys.unwrap_password(password, observer)
            .map_err(PullError::from)
    };
    match source {
        Source::Object { store, api_key } => {
            let located = store.locate(api_key, id).await?;
            let object = located.object;
            let extension = match located.kind {
                ArchiveKind::EncryptedTs => "ts",
                ArchiveKind::Mp4 => "mp4",
                ArchiveKind::IndividualZip => "zip",
            };
            let out_path = opts.out_dir.join(format!("{id}.{extension}"));
            let blob = if located.kind.is_encrypted() {
                let password =
                    password.ok_or_else(|| PullError::PasswordUnknown { id: id.into() })?;
                Some(unwrap(password)?)
            } else {
                None
            };
            let progress = observer.progress(id, object.size);
            let result = match blob {
                Some(blob) => {
                    let binding = ResumeBinding {
                        archive_id: id,
                        object_size: object.size,
                        e_tag: object.e_tag.as_deref(),
                    };
                    let (output, hasher) =
                        open_resumable(&out_path, &binding, blob, opts, observer)?;
                    let offset = output.resume_offset();
                    progress.set_position(offset);
                    let mut download_opts = DownloadOptions {
                        part_size: opts.part_size,
                        concurrency: opts.concurrency,
                        buffers: opts.buffers.clone(),
                        ..Default::default()
                    }
                    .starting_at(offset);
                    if let Some(tag) = &object.e_tag {
                        download_opts = download_opts.expecting_etag(tag.as_str());
                    }
                    let chunks = Chunks::object(store.download_object(&object, download_opts)?);
                    let at = Target {
                        path: &out_path,
                        what: &object.key,
                        size: object.size,
                    };
                    decrypt_loop(chunks, output, at, opts, &*progress, cancel, hasher).await
                }
                None => {
                    let download_opts = DownloadOptions {
                        part_size: opts.part_size,
                        concurrency: opts.concurrency,
                        buffers: opts.buffers.clone(),
                        ..Default::default()
                    };
                    let chunks = Chunks::object(store.download_object(&object, download_opts)?);
                    plain_loop(chunks, &out_path, &*progress, cancel).await
                }
            };
            progress.finish();
            Ok(Pulled::new(id, object.key, result?))
        }
        Source::PresignedUrl(url) => {
            let mut download = PresignedDownload::open(url).await?;
            let (size, shown) = (download.size(), download.shown().to_string());
            let extension = match (password.is_some(), shown.ends_with(".zip")) {
                (_, true) => "zip",
                (true, false) => "ts",
                (false, false) => "mp4",
            };
            let out_path = opts.out_dir.join(format!("{id}.{extension}"));
            let blob = password.map(unwrap).transpose()?;
            let progress = observer.progress(id, size);
            let result = match blob {
                Some(blob) => {
                    let binding = ResumeBinding {
                        archive_id: id,
                        object_size: size,
                        e_tag: None,
                    };
                    let (output, hasher) =
                        open_resumable(&out_path, &binding, blob, opts, observer)?;
                    let offset = output.resume_offset();
                    progress.set_position(offset);
                    match download.resume_at(offset).await {
                        Ok(()) => {
                            let at = Target {
                                path: &out_path,
                                what: &shown,
                                size,
                            };
                            decrypt_loop(
                                Chunks::Url(download),
                                output,
                                at,
                                opts,
                                &*progress,
                                cancel,
                                hasher,
                            )
                            .await
                        }
                        Err(e) => Err(e.into()),
                    }
                }
                None => plain_loop(Chunks::Url(download), &out_path, &*progress, cancel).await,
            };
            progress.finish();
            Ok(Pulled::new(id, shown, result?))
        }
    }
}

/// The output, and a hasher of the object's bytes that has taken those before its resume offset.
fn open_resumable(
    out_path: &Path,
    binding: &ResumeBinding<'_>,
    blob: PasswordBlob,
    opts: &PullOptions,
    observer: &dyn Observer,
) -> Result<(ResumableOutput, Option<Sha256>), PullError> {
    let output = ResumableOutput::open(out_path, binding, &blob, opts.checkpoint).map_err(|e| {
        PullError::Write {
            path: out_path.to_path_buf(),
            source: Box::new(e),
        }
    })?;
    let hasher =
        crate::object_hash::resumed_at(output.partial_path(), output.resume_offset(), &blob);
    drop(blob);
    say_where_it_starts(&output, out_path, observer);
    Ok((output, hasher))
}

/// The output being written, and what it is read from (for messages).
struct Target<'a> {
    path: &'a Path,
    what: &'a str,
    size: u64,
}

/// The pieces of an archive, in order, from either source.
pub(crate) enum Chunks {
    /// Parts of the ranged GETs: each is decrypted as it is (whole blocks but for the object's end), and its
    /// buffer handed back to the download.
    Object(Download, storage_fetch::PartBuffers),
    /// Pieces of one HTTP body, of any length: gathered into whole blocks.
    Url(PresignedDownload),
}

impl Chunks {
    pub(crate) fn object(download: Download) -> Self {
        let buffers = download.buffers();
        Self::Object(download, buffers)
    }

    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, PullError>> {
        match self {
            Chunks::Object(download, _) => {
                download.next().await.map(|r| r.map_err(PullError::from))
            }
            Chunks::Url(download) => download
                .next_chunk()
                .await
                .map(|r| r.map_err(PullError::from)),
        }
    }

    pub(crate) fn give_back(&self, buf: BytesMut) {
        if let Chunks::Object(_, buffers) = self {
            buffers.give_back(buf);
        }
    }

    pub(crate) fn whole_parts(&self) -> bool {
        matches!(self, Chunks::Object(..))
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

/// The one decrypt-verify-write loop: each piece is hashed (the object's bytes, in `hasher`), decrypted,
/// checked, hashed (the plaintext) and written as it arrives, on
/// this task's worker (the runtime is told it blocks), while the download keeps its next parts in flight on
/// another. No queue between the two: memory stays that of the download's parts. The one cancellation point
/// is here.
async fn decrypt_loop(
    mut chunks: Chunks,
    mut output: ResumableOutput,
    at: Target<'_>,
    opts: &PullOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
    mut hasher: Option<Sha256>,
) -> Result<(ResumableSummary, bool, Option<String>), PullError> {
    let part = usize::try_from(opts.part_size).unwrap_or(4 << 20).max(16);
    let mut pending = BytesMut::new();
    let mut stop = Stop::default();
    loop {
        let chunk = tokio::select! {
            // A cancellation is seen before the next piece, so it stops the pull at once.
            biased;
            reason = cancel.cancelled() => {
                stop.interrupted = Some(reason);
                break;
            }
            chunk = chunks.next() => chunk,
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                stop.failure = Some(into_cause(e));
                break;
            }
            None => break,
        };
        let ready = if chunks.whole_parts() {
            match chunk.try_into_mut() {
                Ok(b) => b,
                Err(shared) => BytesMut::from(&shared[..]),
            }
        } else {
            pending.extend_from_slice(&chunk);
            if pending.len() < part {
                continue;
            }
            let aligned = pending.len() / 16 * 16;
            pending.split_to(aligned)
        };
        if let Err(e) = write(&mut output, ready, &chunks, progress, hasher.as_mut()) {
            stop.decrypt_error = Some(e);
            break;
        }
    }
    if stop.decrypt_error.is_none() && stop.interrupted.is_none() && !pending.is_empty() {
        // The object is a whole number of blocks: what is left is its end, or a cut that `conclude` reports.
        let aligned = pending.len() / 16 * 16;
        let tail = pending.split_to(aligned);
        if let Err(e) = write(&mut output, tail, &chunks, progress, hasher.as_mut()) {
            stop.decrypt_error = Some(e);
        }
    }
    drop(chunks);
    let summary = conclude(output, stop, at.size, at.path, at.what, opts.trim)?;
    Ok((summary, true, hasher.map(|h| hex::encode(h.finalize()))))
}

fn write(
    output: &mut ResumableOutput,
    mut buf: BytesMut,
    chunks: &Chunks,
    progress: &dyn Progress,
    hasher: Option<&mut Sha256>,
) -> Result<(), archive_core::archive::ArchiveError> {
    let n = buf.len() as u64;
    let written = cpu_bound(|| {
        if let Some(h) = hasher {
            h.update(&buf);
        }
        output.write_ciphertext(&mut buf)
    });
    chunks.give_back(buf);
    written?;
    progress.advance(n);
    Ok(())
}

/// An unencrypted archive: downloaded as it is, atomically, with its SHA-256 (which is the object's too; not
/// resumable: cancelled, the temporary file goes).
async fn plain_loop(
    mut chunks: Chunks,
    out_path: &Path,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(ResumableSummary, bool, Option<String>), PullError> {
    let mut output = PlainOutput::create(out_path)?;
    loop {
        let chunk = tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(chunk) => chunk?,
                None => break,
            },
            reason = cancel.cancelled() => return Err(PullError::InterruptedDiscarded {
                reason,
                path: out_path.to_path_buf(),
            }),
        };
        output.write(&chunk)?;
        progress.advance(chunk.len() as u64);
        if let Ok(buf) = chunk.try_into_mut() {
            chunks.give_back(buf);
        }
    }
    let summary = output.finish()?;
    let object_sha256 = Some(summary.sha256.clone());
    Ok((summary, false, object_sha256))
}
