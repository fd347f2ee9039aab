//! Pulling into object storage (`pull --out-url s3://bucket/prefix/`): the decrypted archive goes to
//! `{prefix}{archiveId}.ts` in a bucket or container as a streaming multipart upload (storage-fetch's
//! [`Upload`]), so a worker needs no local disk.
//!
//! The same source ([`Source`]) feeds the same in-order pieces ([`Chunks`]) through the same loop
//! ([`pump`]) as a local pull; here the loop's [`Sink`] is the upload ([`UploadSink`]): each piece is
//! decrypted in place, its start checked to be MPEG-TS, hashed and inspected as it goes, and sent as part of
//! the upload; memory stays that of the download's parts plus the upload's parts in flight. The last
//! [`TRIM_HOLD`] bytes are held back, so the end can be verified (a valid PKCS#7 tail after whole 188-byte
//! packets) and, with `trim`, cut, before they are sent. Only once the whole output is verified — MPEG-TS
//! throughout, the object's length, the padding — is the upload completed, and only then does the object
//! appear. Any failure or cancellation aborts the upload: nothing appears and no part is left behind.
//!
//! Not resumable across runs (a multipart upload cannot be read back to rebuild the hash and the
//! inspection): an interrupted pull aborts its upload, and the next run starts from zero.

use std::path::PathBuf;

use archive_core::PasswordBlob;
use archive_core::archive::{ArchiveError, TRIM_HOLD};
use archive_core::cbc::{self, StreamDecryptor};
use archive_core::mpegts::{self, TsInspector, TsReport};
use archive_core::resume::{never_lost_sync, padded_packets_len};
use bytes::BytesMut;
use sha2::{Digest, Sha256};
use storage_fetch::{DownloadOptions, MultipartOptions, Store, Upload};

use crate::output::cpu_bound;
use crate::pipeline::{Chunks, Reader, find};
use crate::sink::{Ended, Sink, pump};
use crate::{CancelToken, KeyRing, Observer, PullError, PullOptions, Pulled, Source};

/// Where [`pull_archive_to_bucket`] writes: a bucket or container, and a key prefix.
#[derive(Debug, Clone, Copy)]
pub struct BucketOutput<'a> {
    /// The bucket or container the outputs go to.
    pub store: &'a Store,
    /// Prepended to `{archiveId}.ts` (empty, or ending with `/`).
    pub prefix: &'a str,
    /// How the prefix is shown and recorded in the ledger, e.g. `s3://bucket/prefix/`.
    pub url: &'a str,
    /// The upload's parts: size and how many at once.
    pub upload: &'a MultipartOptions,
}

/// Pulls archive `id` from `source` into `out`: downloads it, decrypting on the fly (the password is
/// unwrapped by `keys`, only for an encrypted archive), and uploads the plaintext as it is verified; the
/// upload is completed (the object appears) only when the whole output is verified, and aborted otherwise.
/// `opts.out_dir` and `opts.checkpoint` do not apply. The [`Pulled`] it returns has the object's URL as its
/// `path`. Neither the ledger nor any deletion is touched: see [`crate::settle`].
#[allow(clippy::too_many_arguments)]
pub async fn pull_archive_to_bucket(
    source: Source<'_>,
    id: &str,
    password: Option<&str>,
    keys: &KeyRing,
    opts: &PullOptions,
    out: &BucketOutput<'_>,
    observer: &dyn Observer,
    cancel: &CancelToken,
) -> Result<Pulled, PullError> {
    let found = find(source, id, password, keys, observer, cancel).await?;
    let (what, size, blob) = (found.what, found.size, found.blob);
    let chunks = match found.reader {
        Reader::Object(store, object) => {
            let mut download_opts = DownloadOptions {
                part_size: opts.part_size,
                concurrency: opts.concurrency,
                ..Default::default()
            };
            if let Some(tag) = &found.e_tag {
                download_opts = download_opts.expecting_etag(tag.as_str());
            }
            Chunks::object(store.download_object(&object, download_opts)?)
        }
        Reader::Url(download) => Chunks::Url(download),
    };
    let key = format!("{}{id}.{}", out.prefix, found.extension);
    let url = format!("{}{id}.{}", out.url, found.extension);
    let encrypted = blob.is_some();
    let verifier = StreamVerifier::new(blob, size).map_err(|source| PullError::Decrypt {
        what: what.clone(),
        source,
    })?;
    let upload = out.store.start_upload(&key, out.upload.clone()).await?;
    let progress = observer.progress(id, size);
    let sink = UploadSink {
        verifier,
        upload,
        url: &url,
        what: &what,
        trim: opts.trim,
    };
    let sent = pump(chunks, sink, opts.part_size, &*progress, cancel).await;
    progress.finish();
    let verified = sent?;
    Ok(Pulled {
        id: id.to_string(),
        path: PathBuf::from(&url),
        object_key: what,
        bytes: verified.bytes,
        sha256: verified.sha256,
        encrypted,
        resumed_from: 0,
        trimmed_bytes: verified.trimmed_bytes,
        measured_duration: verified.report.as_ref().and_then(|r| r.duration_seconds),
        report: verified.report,
        // The object's own bytes are not hashed on this path yet: the service's sha256sum is not checked.
        object_sha256: None,
        service_sha256_matched: None,
        object_deleted: false,
        remote_deleted: false,
    })
}

/// A multipart upload as the one loop's [`Sink`]: each piece is decrypted and verified as it comes and what
/// may be sent is sent. Only a whole, verified output completes the upload; anything else (a cancellation,
/// a failed download, a refused piece, a bad end) aborts it, so that nothing of the output is kept.
struct UploadSink<'a> {
    verifier: StreamVerifier,
    upload: Upload,
    /// The output's URL (for messages).
    url: &'a str,
    /// What it is read from (for messages).
    what: &'a str,
    trim: bool,
}

impl Sink for UploadSink<'_> {
    type Error = PullError;
    type Done = Verified;

    fn decrypts(&self) -> bool {
        self.verifier.decrypting()
    }

    async fn write(&mut self, piece: &mut BytesMut) -> Result<(), PullError> {
        let released =
            cpu_bound(|| self.verifier.push(piece)).map_err(|source| PullError::Decrypt {
                what: self.what.to_string(),
                source,
            })?;
        self.upload.write(&released.front).await?;
        self.upload.write(&piece[..released.now]).await?;
        Ok(())
    }

    async fn finish(self, ended: Ended<PullError>) -> Result<Verified, PullError> {
        let Self {
            verifier,
            mut upload,
            url,
            what,
            trim,
        } = self;
        let finished = match ended {
            Ended::Drained => {
                cpu_bound(|| verifier.finish(trim)).map_err(|source| PullError::Decrypt {
                    what: what.to_string(),
                    source,
                })
            }
            Ended::Cancelled(reason) => Err(PullError::InterruptedDiscarded {
                reason,
                path: PathBuf::from(url),
            }),
            Ended::DownloadFailed(e) | Ended::WriteFailed(e) => Err(e),
        };
        let verified = match finished {
            Ok(v) => v,
            Err(e) => {
                // Nothing may appear: the upload goes, with its parts.
                let _ = upload.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = upload.write(&verified.tail).await {
            let _ = upload.abort().await;
            return Err(e.into());
        }
        // Verified: only now may the object appear.
        upload.complete().await?;
        Ok(verified)
    }
}

/// What may be sent after a piece: `front` (bytes held back before), then the piece's first `now` bytes.
struct Released {
    front: Vec<u8>,
    now: usize,
}

/// The end of a verified output: its last bytes (to send), and what it is.
struct Verified {
    tail: Vec<u8>,
    bytes: u64,
    trimmed_bytes: u64,
    sha256: String,
    report: Option<TsReport>,
}

/// Decrypts (when there is a key) and verifies an output that arrives in order, holding back its last
/// [`TRIM_HOLD`] bytes: the checks of archive-core's `ResumableOutput`, without a file.
struct StreamVerifier {
    decryptor: Option<StreamDecryptor>,
    object_size: u64,
    received: u64,
    hasher: Sha256,
    inspector: TsInspector,
    held: Vec<u8>,
}

impl StreamVerifier {
    fn new(blob: Option<PasswordBlob>, object_size: u64) -> Result<Self, ArchiveError> {
        if blob.is_some() {
            if object_size == 0 {
                return Err(ArchiveError::Empty);
            }
            if !object_size.is_multiple_of(cbc::BLOCK as u64) {
                return Err(cbc::CbcError::NotBlockAligned(object_size).into());
            }
        }
        Ok(Self {
            decryptor: blob.map(|b| StreamDecryptor::new(b.key(), b.iv())),
            object_size,
            received: 0,
            hasher: Sha256::new(),
            inspector: TsInspector::new(),
            held: Vec::new(),
        })
    }

    fn decrypting(&self) -> bool {
        self.decryptor.is_some()
    }

    /// Decrypts `piece` in place and says what of the plaintext may be sent now.
    fn push(&mut self, piece: &mut [u8]) -> Result<Released, ArchiveError> {
        if self.received + piece.len() as u64 > self.object_size {
            return Err(ArchiveError::Read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "more data than the object's size",
            )));
        }
        let Some(decryptor) = self.decryptor.as_mut() else {
            // Unencrypted: sent as it is, hashed.
            self.hasher.update(&*piece);
            self.received += piece.len() as u64;
            return Ok(Released {
                front: Vec::new(),
                now: piece.len(),
            });
        };
        if piece.is_empty() {
            return Ok(Released {
                front: Vec::new(),
                now: 0,
            });
        }
        decryptor.decrypt(piece)?;
        if self.received == 0 {
            mpegts::looks_like_ts(piece).map_err(ArchiveError::NotMpegTs)?;
        }
        self.received += piece.len() as u64;
        if piece.len() >= TRIM_HOLD {
            let front = std::mem::take(&mut self.held);
            let now = piece.len() - TRIM_HOLD;
            self.absorb_sent(&front);
            self.absorb_sent(&piece[..now]);
            self.held.extend_from_slice(&piece[now..]);
            Ok(Released { front, now })
        } else {
            self.held.extend_from_slice(piece);
            let mut front = Vec::new();
            if self.held.len() > 2 * TRIM_HOLD {
                let release = self.held.len() - TRIM_HOLD;
                front = self.held.drain(..release).collect();
                self.absorb_sent(&front);
            }
            Ok(Released { front, now: 0 })
        }
    }

    fn absorb_sent(&mut self, plain: &[u8]) {
        self.hasher.update(plain);
        self.inspector.feed(plain);
    }

    /// Verifies the whole output: all of the object is in, the plaintext ends with a valid PKCS#7 tail after
    /// whole 188-byte packets, and MPEG-TS never lost sync. Gives the bytes still to send (`trim` applied).
    fn finish(mut self, trim: bool) -> Result<Verified, ArchiveError> {
        if self.received != self.object_size {
            return Err(ArchiveError::Read(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the download ended at {} of {} bytes",
                    self.received, self.object_size
                ),
            )));
        }
        if self.decryptor.is_none() {
            return Ok(Verified {
                tail: Vec::new(),
                bytes: self.received,
                trimmed_bytes: 0,
                sha256: hex::encode(self.hasher.finalize()),
                report: None,
            });
        }
        let before = self.received - self.held.len() as u64;
        let unpadded = padded_packets_len(before, &self.held)?;
        let keep = if trim { unpadded } else { self.held.len() };
        let mut tail = std::mem::take(&mut self.held);
        tail.truncate(keep);
        self.absorb_sent(&tail);
        let report = self.inspector.finish();
        never_lost_sync(&report)?;
        let bytes = before + keep as u64;
        Ok(Verified {
            tail,
            bytes,
            trimmed_bytes: self.received - bytes,
            sha256: hex::encode(self.hasher.finalize()),
            report: Some(report),
        })
    }
}

#[cfg(test)]
mod tests;
