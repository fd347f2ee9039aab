//! Decrypting an archive that arrives in pieces (a download), into an output that survives interruption.
//!
//! [`ResumableOutput`] receives ciphertext in order, decrypts it, checks the first packets are MPEG-TS, writes
//! the plaintext to `.{name}.partial` beside the destination, hashes it (SHA-256) and inspects it (MPEG-TS) as it
//! goes. Every `checkpoint_bytes` it fsyncs the partial file and records, in `.{name}.partial.json`, how many bytes
//! are durable and the last ciphertext block before them (but not within the object's last `checkpoint_bytes`:
//! the end, which makes everything durable, is that close; so an archive shorter than two intervals has its file
//! fsynced once). Interrupted — killed, a lost network, Ctrl-C — and
//! opened again, it truncates the partial file to the recorded length, re-reads it to rebuild the hash and the
//! inspection, and asks for the ciphertext from that offset on: the recorded block is the CBC IV there
//! ([`crate::cbc::StreamDecryptor::resume`]).
//!
//! The state is bound to what it was written for ([`ResumeBinding`]): the archive id, the object's size and
//! ETag, and a fingerprint of the key and IV (HMAC-SHA256 keyed by the AES key over a fixed label, the IV and
//! the archive id — never the key itself). It is validated before use (its size, the offsets within the object,
//! a multiple of 16, a whole ciphertext block, a partial file at least that long that still starts with
//! MPEG-TS); any mismatch discards the partial output and starts from zero, and
//! [`ResumableOutput::restarted`] says why. Both files are opened without following symbolic links and the
//! partial file is created (or made) mode 0600.
//!
//! [`ResumableOutput::finish`] verifies the whole output ([`ArchiveError::Unverified`]: no MPEG-TS sync loss
//! anywhere, the length of the object, a valid PKCS#7 tail after whole packets), applies `trim` (see
//! [`crate::archive`]), fsyncs and renames the partial file over the destination, and removes the state file. An
//! output that fails verification is removed, never renamed into place. The state holds no secret: offsets, the
//! object's size and ETag, the fingerprint, and one block of *ciphertext*.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::{ArchiveError, TRIM_HOLD};
use crate::atomic::AtomicFile;
use crate::cbc::{self, BLOCK, CbcError, StreamDecryptor};
use crate::mpegts::{self, PACKET, TsInspector, TsReport};
use crate::password::PasswordBlob;

/// The version of the state file this build writes (version 1 had no binding to the archive or the key).
const STATE_VERSION: u32 = 2;
/// A state file is a few hundred bytes; anything much larger is not one.
const MAX_STATE_BYTES: u64 = 4096;
/// The label of the key fingerprint (so the same key hashed elsewhere never gives the same value).
const FINGERPRINT_LABEL: &[u8] = b"archivectl resume state v2: key fingerprint\0";

/// What a resume state is bound to: the output is resumed only for the same archive, object and key.
#[derive(Debug, Clone, Copy)]
pub struct ResumeBinding<'a> {
    /// The archive id.
    pub archive_id: &'a str,
    /// The object's size (bytes of ciphertext).
    pub object_size: u64,
    /// The object's ETag, when the store gives one.
    pub e_tag: Option<&'a str>,
}

/// What is recorded beside the partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeState {
    /// Format version of this file.
    version: u32,
    /// The archive being pulled.
    archive_id: String,
    /// The object's size when the download began.
    object_size: u64,
    /// The object's ETag when the download began.
    e_tag: Option<String>,
    /// HMAC-SHA256, keyed by the AES key, of a fixed label, the IV and the archive id (hex).
    key_fingerprint: String,
    /// Bytes of plaintext (= ciphertext) durable in the partial file.
    durable: u64,
    /// Hex of the ciphertext block ending at `durable` (the IV to resume with).
    previous_block: Option<String>,
}

/// The result of a finished [`ResumableOutput`].
#[derive(Debug, Clone, Serialize)]
pub struct ResumableSummary {
    /// Where the archive now is.
    pub path: PathBuf,
    /// Bytes in the final file.
    pub bytes: u64,
    /// Bytes removed by `trim`.
    pub trimmed_bytes: u64,
    /// SHA-256 of the final file, hex.
    pub sha256: String,
    /// Bytes that were already on disk from an interrupted run.
    pub resumed_from: u64,
    /// The MPEG-TS inspection (packets, streams, duration) of the final file.
    pub report: TsReport,
}

/// A decryption into `destination` that can be interrupted and resumed. See the module docs.
#[derive(Debug)]
pub struct ResumableOutput {
    destination: PathBuf,
    partial_path: PathBuf,
    state_path: PathBuf,
    file: File,
    decryptor: StreamDecryptor,
    state: ResumeState,
    written: u64,
    since_checkpoint: u64,
    checkpoint_bytes: u64,
    resumed_from: u64,
    restarted: Option<String>,
    hasher: Sha256,
    inspector: TsInspector,
    /// Plaintext not yet hashed or inspected (the last bytes, which `trim` may cut).
    held: Vec<u8>,
}

fn hidden_beside(destination: &Path, suffix: &str) -> io::Result<PathBuf> {
    let name = destination.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", destination.display()),
        )
    })?;
    Ok(destination.with_file_name(format!(".{}{suffix}", name.to_string_lossy())))
}

/// The fingerprint of the key and IV the state is bound to (hex): never the key, and useless without it.
fn key_fingerprint(blob: &PasswordBlob, archive_id: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(blob.key())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(FINGERPRINT_LABEL);
    mac.update(blob.iv());
    mac.update(archive_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Options that open a file without following a symbolic link in its last component.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW).mode(0o600);
    }
    options
}

/// Reads a state file: not through a symbolic link, not larger than a state file can be.
fn read_state(path: &Path) -> Result<Option<ResumeState>, String> {
    let file = match no_follow(OpenOptions::new().read(true)).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("its resume state cannot be read ({e})")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("its resume state cannot be read ({e})"))?;
    if !meta.is_file() || meta.len() > MAX_STATE_BYTES {
        return Err("its resume state is not a state file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("its resume state cannot be read ({e})"))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| "its resume state is damaged or from another version".into())
}

/// Why `state` cannot be resumed with `expected` (the fresh state of this run) and `on_disk` bytes of partial file.
fn mismatch(state: &ResumeState, expected: &ResumeState, on_disk: u64) -> Option<&'static str> {
    if state.version != STATE_VERSION {
        return Some("its resume state is from another version");
    }
    if state.archive_id != expected.archive_id {
        return Some("it was written for another archive");
    }
    if state.object_size != expected.object_size || state.e_tag != expected.e_tag {
        return Some("the object changed (another size or ETag)");
    }
    if state.key_fingerprint != expected.key_fingerprint {
        return Some("it was decrypted with another password or key");
    }
    if state.durable > state.object_size || !state.durable.is_multiple_of(BLOCK as u64) {
        return Some("its resume state has an impossible offset");
    }
    let block_ok = state
        .previous_block
        .as_ref()
        .is_some_and(|b| b.len() == 2 * BLOCK && hex::decode(b).is_ok());
    if state.durable > 0 && !block_ok {
        return Some("its resume state has no valid ciphertext block");
    }
    if state.durable > on_disk {
        return Some("the partial file is shorter than its resume state says");
    }
    None
}

impl ResumableOutput {
    /// Opens the output for the object `binding` describes, resuming an earlier run bound to the same archive,
    /// object and key (see the module docs); anything else is discarded, and [`restarted`](Self::restarted) says
    /// why.
    pub fn open(
        destination: &Path,
        binding: &ResumeBinding<'_>,
        blob: &PasswordBlob,
        checkpoint_bytes: u64,
    ) -> Result<Self, ArchiveError> {
        let object_size = binding.object_size;
        if object_size == 0 {
            return Err(ArchiveError::Empty);
        }
        if !object_size.is_multiple_of(BLOCK as u64) {
            return Err(CbcError::NotBlockAligned(object_size).into());
        }
        let partial_path = hidden_beside(destination, ".partial").map_err(ArchiveError::Write)?;
        let state_path =
            hidden_beside(destination, ".partial.json").map_err(ArchiveError::Write)?;
        let fresh = ResumeState {
            version: STATE_VERSION,
            archive_id: binding.archive_id.to_owned(),
            object_size,
            e_tag: binding.e_tag.map(str::to_owned),
            key_fingerprint: key_fingerprint(blob, binding.archive_id),
            durable: 0,
            previous_block: None,
        };
        let previous = read_state(&state_path);
        let file = no_follow(OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(&partial_path)
            .map_err(|e| {
                let why = if e.raw_os_error() == Some(libc_eloop()) {
                    "a symbolic link is in the way; remove it".to_string()
                } else {
                    e.to_string()
                };
                ArchiveError::Write(io::Error::new(
                    e.kind(),
                    format!("{}: {why}", partial_path.display()),
                ))
            })?;
        let meta = file.metadata().map_err(ArchiveError::Write)?;
        if !meta.is_file() {
            return Err(ArchiveError::Write(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file; remove it",
                    partial_path.display()
                ),
            )));
        }
        restrict(&file)?;
        let on_disk = meta.len();
        let (state, restarted) = match previous {
            Ok(Some(state)) => match mismatch(&state, &fresh, on_disk) {
                None => (state, None),
                Some(why) => (fresh, Some(why.to_string())),
            },
            Ok(None) if on_disk > 0 => (fresh, Some("it has no resume state beside it".into())),
            Ok(None) => (fresh, None),
            Err(why) => (fresh, Some(why)),
        };
        let mut out = Self {
            destination: destination.to_path_buf(),
            partial_path,
            state_path,
            file,
            decryptor: StreamDecryptor::new(blob.key(), blob.iv()),
            written: 0,
            since_checkpoint: 0,
            checkpoint_bytes: checkpoint_bytes.max(BLOCK as u64),
            resumed_from: 0,
            restarted,
            state,
            hasher: Sha256::new(),
            inspector: TsInspector::new(),
            held: Vec::new(),
        };
        if !out.replay_durable_prefix()? {
            out.restarted = Some("the partial file does not start with MPEG-TS".into());
            out.state = ResumeState {
                durable: 0,
                previous_block: None,
                ..out.state.clone()
            };
            out.hasher = Sha256::new();
            out.inspector = TsInspector::new();
            out.held.clear();
            out.replay_durable_prefix()?;
        }
        if let Some(block) = out
            .state
            .previous_block
            .as_ref()
            .filter(|_| out.state.durable > 0)
        {
            let mut iv = [0u8; BLOCK];
            hex::decode_to_slice(block, &mut iv)
                .map_err(|_| ArchiveError::Write(io::Error::other("corrupt resume state")))?;
            out.decryptor = StreamDecryptor::resume(blob.key(), &iv);
        }
        out.resumed_from = out.state.durable;
        Ok(out)
    }

    /// Why a partial output left by an earlier run was discarded rather than resumed (`None`: nothing was
    /// there, or it was resumed).
    pub fn restarted(&self) -> Option<&str> {
        self.restarted.as_deref()
    }

    /// Truncates the partial file to its durable length and feeds that prefix to the hash and the inspector;
    /// `false` if the prefix does not start with MPEG-TS (then nothing is fed).
    fn replay_durable_prefix(&mut self) -> Result<bool, ArchiveError> {
        let durable = self.state.durable;
        self.file.set_len(durable).map_err(ArchiveError::Write)?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(ArchiveError::Read)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = durable;
        let mut first = true;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            self.file
                .read_exact(&mut buf[..n])
                .map_err(ArchiveError::Read)?;
            if first {
                if mpegts::looks_like_ts(&buf[..n]).is_err() {
                    return Ok(false);
                }
                first = false;
            }
            self.absorb(&buf[..n]);
            left -= n as u64;
        }
        self.written = durable;
        self.file
            .seek(SeekFrom::Start(durable))
            .map_err(ArchiveError::Write)?;
        Ok(true)
    }

    /// Hashes and inspects plaintext, holding back the last [`TRIM_HOLD`] bytes. A piece longer than that is
    /// hashed and inspected where it lies (not copied): only its tail is held.
    fn absorb(&mut self, plain: &[u8]) {
        if plain.len() >= TRIM_HOLD {
            let cut = plain.len() - TRIM_HOLD;
            if !self.held.is_empty() {
                self.hasher.update(&self.held);
                self.inspector.feed(&self.held);
                self.held.clear();
            }
            self.hasher.update(&plain[..cut]);
            self.inspector.feed(&plain[..cut]);
            self.held.extend_from_slice(&plain[cut..]);
            return;
        }
        self.held.extend_from_slice(plain);
        if self.held.len() > 2 * TRIM_HOLD {
            let release = self.held.len() - TRIM_HOLD;
            self.hasher.update(&self.held[..release]);
            self.inspector.feed(&self.held[..release]);
            self.held.drain(..release);
        }
    }

    /// Where the ciphertext must continue from (0 for a fresh start).
    pub fn resume_offset(&self) -> u64 {
        self.written
    }

    /// The partial file being written (`.{name}.partial` beside the destination): its first
    /// [`resume_offset`](Self::resume_offset) bytes are the plaintext of a resumed run.
    pub fn partial_path(&self) -> &Path {
        &self.partial_path
    }

    /// Decrypts and writes the next ciphertext (in place in `ciphertext`); its length must be a multiple of 16
    /// except for the object's last piece.
    pub fn write_ciphertext(&mut self, ciphertext: &mut [u8]) -> Result<(), ArchiveError> {
        if self.written + ciphertext.len() as u64 > self.state.object_size {
            return Err(ArchiveError::Read(io::Error::new(
                io::ErrorKind::InvalidData,
                "more data than the object's size",
            )));
        }
        if ciphertext.is_empty() {
            return Ok(());
        }
        let mut last = [0u8; BLOCK];
        if ciphertext.len() >= BLOCK {
            last.copy_from_slice(&ciphertext[ciphertext.len() - BLOCK..]);
        }
        // The whole piece is decrypted at once (split across cores when it is large), then hashed and
        // inspected where it lies, and written with one call.
        self.decryptor.decrypt(ciphertext)?;
        if self.written == 0 {
            mpegts::looks_like_ts(ciphertext).map_err(ArchiveError::NotMpegTs)?;
        }
        self.absorb(ciphertext);
        self.file
            .write_all(ciphertext)
            .map_err(ArchiveError::Write)?;
        self.written += ciphertext.len() as u64;
        self.since_checkpoint += ciphertext.len() as u64;
        self.state.previous_block = Some(hex::encode(last));
        // No checkpoint within the object's last interval: `finish` makes the whole file durable at most one
        // interval later, so a checkpoint there would only add fsyncs (the file's, the state file's and the
        // directory's); an archive shorter than two intervals is made durable once. A hard kill then loses
        // less than two intervals of work, and an interruption seen (a signal) still checkpoints.
        let rest = self.state.object_size - self.written;
        if self.since_checkpoint >= self.checkpoint_bytes && rest >= self.checkpoint_bytes {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable and records it.
    pub fn checkpoint(&mut self) -> Result<(), ArchiveError> {
        self.file.sync_data().map_err(ArchiveError::Write)?;
        self.state.durable = self.written;
        let json = serde_json::to_vec(&self.state)
            .map_err(|e| ArchiveError::Write(io::Error::other(e)))?;
        let mut f = AtomicFile::create(&self.state_path).map_err(ArchiveError::Write)?;
        f.write_all(&json).map_err(ArchiveError::Write)?;
        f.commit().map_err(ArchiveError::Write)?;
        self.since_checkpoint = 0;
        Ok(())
    }

    /// Completes the output: all of the object must have been written.
    ///
    /// The output is verified first ([`ArchiveError::Unverified`]): all of the object is in and on disk, the
    /// plaintext ends with a valid PKCS#7 tail after whole 188-byte packets, and the MPEG-TS inspection of the
    /// whole of it found no sync loss. An output that fails is removed with its state, never renamed into place.
    pub fn finish(mut self, trim: bool) -> Result<ResumableSummary, ArchiveError> {
        if self.written != self.state.object_size {
            return Err(ArchiveError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the download ended at {} of {} bytes",
                    self.written, self.state.object_size
                ),
            )));
        }
        match self.verify_and_finish(trim) {
            Err(e @ ArchiveError::Unverified(_)) => {
                self.discard();
                Err(e)
            }
            other => other,
        }
    }

    fn verify_and_finish(&mut self, trim: bool) -> Result<ResumableSummary, ArchiveError> {
        let before = self.written - self.held.len() as u64;
        let unpadded = padded_packets_len(before, &self.held)?;
        let keep = if trim { unpadded } else { self.held.len() };
        self.hasher.update(&self.held[..keep]);
        self.inspector.feed(&self.held[..keep]);
        let report = std::mem::take(&mut self.inspector).finish();
        never_lost_sync(&report)?;
        let final_len = before + keep as u64;
        self.file.set_len(final_len).map_err(ArchiveError::Write)?;
        self.file.sync_all().map_err(ArchiveError::Write)?;
        let on_disk = self.file.metadata().map_err(ArchiveError::Write)?.len();
        if on_disk != final_len {
            return Err(ArchiveError::Unverified(format!(
                "the output is {on_disk} bytes on disk, not the {final_len} decrypted from the object"
            )));
        }
        std::fs::rename(&self.partial_path, &self.destination).map_err(ArchiveError::Write)?;
        if let Some(dir) = self
            .destination
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let _ = std::fs::remove_file(&self.state_path);
        Ok(ResumableSummary {
            path: self.destination.clone(),
            bytes: final_len,
            trimmed_bytes: self.written - final_len,
            sha256: hex::encode(self.hasher.finalize_reset()),
            resumed_from: self.resumed_from,
            report,
        })
    }

    /// Gives up: removes the partial file and its state (used when the data is wrong, not merely interrupted).
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.partial_path);
        let _ = std::fs::remove_file(&self.state_path);
    }
}

/// A verified output's MPEG-TS never lost sync: any sync loss means the archive is damaged, or part of it was
/// decrypted with another key ([`ArchiveError::Unverified`]). The other check of every verified output, with
/// [`padded_packets_len`].
pub fn never_lost_sync(report: &crate::mpegts::TsReport) -> Result<(), ArchiveError> {
    if report.sync_losses > 0 {
        return Err(ArchiveError::Unverified(format!(
            "the MPEG-TS lost sync {} times ({} bytes are not packets): the archive is damaged, or part of \
             it was decrypted with another key",
            report.sync_losses, report.skipped_bytes
        )));
    }
    Ok(())
}

/// The length of the plaintext without its PKCS#7 padding, which must be valid and end whole 188-byte packets
/// (what the service writes); `tail` is the plaintext's last bytes, starting `before` bytes in. The end check
/// of every verified output: this module's files, and outputs that are not files (archive-pull's uploads).
///
/// ```
/// use archive_core::resume::padded_packets_len;
/// let mut tail = vec![0x47u8; 188];
/// tail.extend_from_slice(&[4, 4, 4, 4]);
/// assert_eq!(padded_packets_len(188 * 10, &tail).unwrap(), 188);
/// assert!(padded_packets_len(0, &tail[..100]).is_err());
/// ```
pub fn padded_packets_len(before: u64, tail: &[u8]) -> Result<usize, ArchiveError> {
    let unpadded = cbc::pkcs7_unpadded_len(tail).ok_or_else(|| {
        ArchiveError::Unverified(
            "the plaintext does not end with valid PKCS#7 padding: the archive is truncated or damaged, or its \
             end was decrypted with another key"
                .into(),
        )
    })?;
    let end = before + unpadded as u64;
    if !end.is_multiple_of(PACKET as u64) {
        return Err(ArchiveError::Unverified(format!(
            "without its {} bytes of PKCS#7 padding the plaintext ends {} bytes into a 188-byte packet: the \
             archive is truncated or damaged",
            tail.len() - unpadded,
            end % PACKET as u64
        )));
    }
    Ok(unpadded)
}

/// Makes the file mode 0600 (an existing partial file from an older build may be more open).
fn restrict(file: &File) -> Result<(), ArchiveError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(ArchiveError::Write)?;
    }
    let _ = file;
    Ok(())
}

/// `ELOOP`: what opening a symbolic link with `O_NOFOLLOW` fails with.
fn libc_eloop() -> i32 {
    #[cfg(unix)]
    {
        libc::ELOOP
    }
    #[cfg(not(unix))]
    {
        -1
    }
}

#[cfg(test)]
mod tests;
