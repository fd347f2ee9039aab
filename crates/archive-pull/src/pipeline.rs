//! One archive's pull: a source (an object in a storage target, or a presigned URL) feeds one
//! decrypt-verify-write loop with one cancellation point, into a resumable output; an unencrypted archive
//! goes through the same loop into a plain, atomic output.

use std::path::{Path, PathBuf};

use archive_core::PasswordBlob;
use archive_core::resume::{ResumableOutput, ResumableSummary, ResumeBinding};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use sha2::Sha256;
use storage_fetch::{ArchiveKind, Download, DownloadOptions, PresignedDownload, Store};

use crate::output::{PlainOutput, PlainSink, ResumableSink, say_where_it_starts};
use crate::sink::pump;
use crate::{CancelToken, KeyRing, Observer, Progress, PullError};

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
    let Found {
        what,
        size,
        e_tag,
        extension,
        blob,
        reader,
    } = find(source, id, password, keys, observer, cancel).await?;
    let out_path = opts.out_dir.join(format!("{id}.{extension}"));
    let progress = observer.progress(id, size);
    let download_opts = DownloadOptions {
        part_size: opts.part_size,
        concurrency: opts.concurrency,
        buffers: opts.buffers.clone(),
        ..Default::default()
    };
    let result = match (blob, reader) {
        (Some(blob), reader) => {
            let binding = ResumeBinding {
                archive_id: id,
                object_size: size,
                e_tag: e_tag.as_deref(),
            };
            let (output, hasher) = open_resumable(&out_path, &binding, blob, opts, observer)?;
            let offset = output.resume_offset();
            progress.set_position(offset);
            let sink = ResumableSink {
                output,
                hasher,
                path: &out_path,
                what: &what,
                size,
                trim: opts.trim,
            };
            match reader {
                Reader::Object(store, object) => {
                    let mut download_opts = download_opts.starting_at(offset);
                    if let Some(tag) = &e_tag {
                        download_opts = download_opts.expecting_etag(tag.as_str());
                    }
                    let chunks = Chunks::object(store.download_object(&object, download_opts)?);
                    pump(chunks, sink, opts.part_size, &*progress, cancel).await
                }
                Reader::Url(mut download) => match download.resume_at(offset).await {
                    Ok(()) => {
                        let chunks = Chunks::Url(download);
                        pump(chunks, sink, opts.part_size, &*progress, cancel).await
                    }
                    Err(e) => Err(e.into()),
                },
            }
        }
        (None, Reader::Object(store, object)) => {
            let chunks = Chunks::object(store.download_object(&object, download_opts)?);
            plain(chunks, &out_path, opts, &*progress, cancel).await
        }
        (None, Reader::Url(download)) => {
            plain(Chunks::Url(download), &out_path, opts, &*progress, cancel).await
        }
    };
    progress.finish();
    Ok(Pulled::new(id, what, result?))
}

/// An archive found at its source, before any of its bytes are read.
pub(crate) struct Found<'a> {
    /// The object's key, or the URL without its query: what messages and the ledger show.
    pub what: String,
    /// The object's size.
    pub size: u64,
    /// The object's ETag, when the source gives one.
    pub e_tag: Option<String>,
    /// The output's extension: `ts`, `mp4` or `zip`.
    pub extension: &'static str,
    /// The password, unwrapped: an encrypted archive only.
    pub blob: Option<PasswordBlob>,
    /// Where its bytes are read from.
    pub reader: Reader<'a>,
}

/// Where a found archive's bytes are read from.
pub(crate) enum Reader<'a> {
    /// Ranged GETs of the object [`Found::what`] in this target, as located (its size and ETag already
    /// read: no second HEAD).
    Object(&'a Store, storage_fetch::ObjectInfo),
    /// The body of the presigned URL, already asked for.
    Url(PresignedDownload),
}

/// Finds archive `id` at `source` (its object in the target, or the presigned URL's answer) and unwraps its
/// password with `keys` when it is encrypted: an encrypted object without a password is
/// [`PullError::PasswordUnknown`]; a presigned URL's archive is taken as encrypted when a password is given.
/// A pull cancelled before it starts is [`PullError::NotStarted`], before anything is asked for.
pub(crate) async fn find<'a>(
    source: Source<'a>,
    id: &str,
    password: Option<&str>,
    keys: &KeyRing,
    observer: &dyn Observer,
    cancel: &CancelToken,
) -> Result<Found<'a>, PullError> {
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
            let blob = if located.kind.is_encrypted() {
                let password =
                    password.ok_or_else(|| PullError::PasswordUnknown { id: id.into() })?;
                Some(unwrap(password)?)
            } else {
                None
            };
            Ok(Found {
                reader: Reader::Object(store, object.clone()),
                what: object.key,
                size: object.size,
                e_tag: object.e_tag,
                extension,
                blob,
            })
        }
        Source::PresignedUrl(url) => {
            let download = PresignedDownload::open(url).await?;
            let (size, shown) = (download.size(), download.shown().to_string());
            let extension = match (password.is_some(), shown.ends_with(".zip")) {
                (_, true) => "zip",
                (true, false) => "ts",
                (false, false) => "mp4",
            };
            let blob = password.map(unwrap).transpose()?;
            Ok(Found {
                what: shown,
                size,
                e_tag: None,
                extension,
                blob,
                reader: Reader::Url(download),
            })
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

/// An unencrypted archive, through the one loop into a plain, atomic output.
async fn plain(
    chunks: Chunks,
    out_path: &Path,
    opts: &PullOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(ResumableSummary, bool, Option<String>), PullError> {
    let sink = PlainSink {
        output: PlainOutput::create(out_path)?,
        path: out_path,
    };
    pump(chunks, sink, opts.part_size, progress, cancel).await
}
