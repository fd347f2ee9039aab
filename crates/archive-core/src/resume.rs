//! Decrypting an archive that arrives in pieces (a download), into an output that survives interruption.
//!
//! [`ResumableOutput`] receives ciphertext in order, decrypts it, checks the first packets are MPEG-TS, writes
//! the plaintext to `.{name}.partial` beside the destination, hashes it (SHA-256) and inspects it (MPEG-TS) as it
//! goes. Every `checkpoint_bytes` it fsyncs the partial file and records, in `.{name}.partial.json`, how many bytes
//! are durable and the last ciphertext block before them. Interrupted — killed, a lost network, Ctrl-C — and
//! opened again for the same object (same size and ETag), it truncates the partial file to the recorded length,
//! re-reads it to rebuild the hash and the inspection, and asks for the ciphertext from that offset on: the
//! recorded block is the CBC IV there ([`crate::cbc::StreamDecryptor::resume`]).
//!
//! [`ResumableOutput::finish`] applies `trim` (see [`crate::archive`]), fsyncs and renames the partial file over
//! the destination, and removes the state file. The state holds no secret: offsets, the object's size and ETag,
//! and one block of *ciphertext*.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::archive::{ArchiveError, TRIM_HOLD, trimmed_len};
use crate::atomic::AtomicFile;
use crate::cbc::{BLOCK, CbcError, StreamDecryptor};
use crate::mpegts::{self, TsInspector, TsReport};
use crate::password::PasswordBlob;

/// What is recorded beside the partial file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ResumeState {
    /// Format version of this file.
    version: u32,
    /// The object's size when the download began.
    object_size: u64,
    /// The object's ETag when the download began.
    e_tag: Option<String>,
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

impl ResumableOutput {
    /// Opens the output for an object of `object_size` bytes with `e_tag`, resuming a compatible earlier run.
    ///
    /// A partial file from a different object (another size or ETag), or with no valid state, is discarded and
    /// the decryption starts over.
    pub fn open(
        destination: &Path,
        object_size: u64,
        e_tag: Option<&str>,
        blob: &PasswordBlob,
        checkpoint_bytes: u64,
    ) -> Result<Self, ArchiveError> {
        if object_size == 0 {
            return Err(ArchiveError::Empty);
        }
        if object_size % BLOCK as u64 != 0 {
            return Err(CbcError::NotBlockAligned(object_size).into());
        }
        let partial_path = hidden_beside(destination, ".partial").map_err(ArchiveError::Write)?;
        let state_path =
            hidden_beside(destination, ".partial.json").map_err(ArchiveError::Write)?;
        let previous: Option<ResumeState> = std::fs::read(&state_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|s: &ResumeState| {
                s.version == 1
                    && s.object_size == object_size
                    && s.e_tag.as_deref() == e_tag
                    && s.durable % BLOCK as u64 == 0
                    && s.durable <= object_size
                    && (s.durable == 0 || s.previous_block.as_ref().is_some_and(|b| b.len() == 32))
            });
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial_path)
            .map_err(|e| {
                ArchiveError::Write(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", partial_path.display()),
                ))
            })?;
        let on_disk = file.metadata().map_err(ArchiveError::Write)?.len();
        let usable = previous.filter(|s| s.durable <= on_disk);
        let state = usable.unwrap_or(ResumeState {
            version: 1,
            object_size,
            e_tag: e_tag.map(str::to_owned),
            durable: 0,
            previous_block: None,
        });
        let decryptor = match &state.previous_block {
            Some(hex_block) if state.durable > 0 => {
                let mut block = [0u8; BLOCK];
                hex::decode_to_slice(hex_block, &mut block)
                    .map_err(|_| ArchiveError::Write(io::Error::other("corrupt resume state")))?;
                StreamDecryptor::resume(blob.key(), &block)
            }
            _ => StreamDecryptor::new(blob.key(), blob.iv()),
        };
        let mut out = Self {
            destination: destination.to_path_buf(),
            partial_path,
            state_path,
            file,
            decryptor,
            written: 0,
            since_checkpoint: 0,
            checkpoint_bytes: checkpoint_bytes.max(BLOCK as u64),
            resumed_from: state.durable,
            state,
            hasher: Sha256::new(),
            inspector: TsInspector::new(),
            held: Vec::new(),
        };
        out.replay_durable_prefix()?;
        Ok(out)
    }

    /// Truncates the partial file to its durable length and feeds that prefix to the hash and the inspector.
    fn replay_durable_prefix(&mut self) -> Result<(), ArchiveError> {
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
                mpegts::looks_like_ts(&buf[..n]).map_err(ArchiveError::NotMpegTs)?;
                first = false;
            }
            self.absorb(&buf[..n]);
            left -= n as u64;
        }
        self.written = durable;
        self.file
            .seek(SeekFrom::Start(durable))
            .map_err(ArchiveError::Write)?;
        Ok(())
    }

    /// Hashes and inspects plaintext, holding back the last [`TRIM_HOLD`] bytes.
    fn absorb(&mut self, plain: &[u8]) {
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
        self.decryptor.decrypt(ciphertext)?;
        if self.written == 0 {
            mpegts::looks_like_ts(ciphertext).map_err(ArchiveError::NotMpegTs)?;
        }
        self.file
            .write_all(ciphertext)
            .map_err(ArchiveError::Write)?;
        self.absorb(ciphertext);
        self.written += ciphertext.len() as u64;
        self.since_checkpoint += ciphertext.len() as u64;
        self.state.previous_block = Some(hex::encode(last));
        if self.since_checkpoint >= self.checkpoint_bytes {
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
        let before = self.written - self.held.len() as u64;
        let keep = if trim {
            trimmed_len(before, &self.held)?
        } else {
            self.held.len()
        };
        self.hasher.update(&self.held[..keep]);
        self.inspector.feed(&self.held[..keep]);
        let final_len = before + keep as u64;
        self.file.set_len(final_len).map_err(ArchiveError::Write)?;
        self.file.sync_all().map_err(ArchiveError::Write)?;
        std::fs::rename(&self.partial_path, &self.destination).map_err(ArchiveError::Write)?;
        if let Some(dir) = self
            .destination
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let _ = std::fs::remove_file(&self.state_path);
        Ok(ResumableSummary {
            path: self.destination.clone(),
            bytes: final_len,
            trimmed_bytes: self.written - final_len,
            sha256: hex::encode(self.hasher.finalize_reset()),
            resumed_from: self.resumed_from,
            report: std::mem::take(&mut self.inspector).finish(),
        })
    }

    /// Gives up: removes the partial file and its state (used when the data is wrong, not merely interrupted).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.partial_path);
        let _ = std::fs::remove_file(&self.state_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbc;

    fn ts(packets: usize) -> Vec<u8> {
        (0..packets)
            .flat_map(|i| {
                let mut p = vec![(i % 251) as u8; 188];
                p[0] = 0x47;
                p[1] = 0x01;
                p[2] = 0x00;
                p[3] = 0x10 | (i % 16) as u8;
                p
            })
            .collect()
    }

    #[test]
    fn interrupted_runs_resume_and_end_identical_to_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let blob = PasswordBlob::new([3; 32], [4; 16]);
        let plain = ts(20_000);
        let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
        let dest = dir.path().join("a.ts");
        let part = 64 * 1024;

        // First run: three parts, then "killed" (dropped without finish) after a checkpoint and one more part.
        let mut out = ResumableOutput::open(
            &dest,
            ct.len() as u64,
            Some("\"e1\""),
            &blob,
            2 * part as u64,
        )
        .unwrap();
        for chunk in ct[..4 * part].chunks(part) {
            out.write_ciphertext(&mut chunk.to_vec()).unwrap();
        }
        drop(out);
        assert!(!dest.exists());

        // Second run resumes at the last checkpoint (4 parts with a checkpoint every 2).
        let mut out = ResumableOutput::open(
            &dest,
            ct.len() as u64,
            Some("\"e1\""),
            &blob,
            2 * part as u64,
        )
        .unwrap();
        let at = out.resume_offset() as usize;
        assert_eq!(at, 4 * part);
        for chunk in ct[at..].chunks(part) {
            out.write_ciphertext(&mut chunk.to_vec()).unwrap();
        }
        let summary = out.finish(true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), plain);
        assert_eq!(summary.resumed_from, 4 * part as u64);
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(&plain)));
        assert_eq!(summary.report.packets, 20_000);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no partial or state file left"
        );
    }

    #[test]
    fn another_object_or_a_wrong_key_starts_over_or_fails() {
        let dir = tempfile::tempdir().unwrap();
        let blob = PasswordBlob::new([3; 32], [4; 16]);
        let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts(2000));
        let dest = dir.path().join("b.ts");
        let mut out =
            ResumableOutput::open(&dest, ct.len() as u64, Some("\"v1\""), &blob, 16).unwrap();
        out.write_ciphertext(&mut ct[..4096].to_vec()).unwrap();
        drop(out);
        let out = ResumableOutput::open(&dest, ct.len() as u64, Some("\"v2\""), &blob, 16).unwrap();
        assert_eq!(out.resume_offset(), 0, "a replaced object is not resumed");
        drop(out);
        let wrong = PasswordBlob::new([9; 32], [4; 16]);
        let mut out =
            ResumableOutput::open(&dest, ct.len() as u64, Some("\"v3\""), &wrong, 16).unwrap();
        assert!(matches!(
            out.write_ciphertext(&mut ct[..4096].to_vec()),
            Err(ArchiveError::NotMpegTs(_))
        ));
        out.discard();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(matches!(
            ResumableOutput::open(&dest, 100, None, &blob, 16),
            Err(ArchiveError::NotBlockAligned(_))
        ));
    }
}
