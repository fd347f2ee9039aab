//! Decrypting a whole archive: read, decrypt across cores, check it is MPEG-TS, write, all overlapped.
//!
//! [`decrypt_stream`] is the pipeline; [`decrypt_file`] runs it into an [`AtomicFile`], so the output appears
//! whole or not at all. The contract:
//!
//! * by default the output is byte-identical to the documented `openssl enc -d -aes-256-cbc -nopad`
//!   (the PKCS#7 padding the service adds stays);
//! * with [`DecryptOptions::trim`], a valid PKCS#7 tail is removed, and then any bytes after the last whole
//!   188-byte packet;
//! * before a single byte is written, the first decrypted packets must carry MPEG-TS sync bytes: anything else
//!   means the key or the password is wrong for this archive, and is an error;
//! * a ciphertext that is empty or not a multiple of 16 bytes is an error.
//!
//! A regular file is decrypted by positions ([`decrypt_file`]): each core reads a chunk and the ciphertext block
//! before it (its IV), decrypts it and writes it at the same offset, so the bytes never move between cores; the
//! inspection still sees the plaintext in order. Anything else ([`decrypt_stream`]: pipes, sockets, any `Read`)
//! goes through a pipeline of three threads: one reads, one decrypts, one writes. Either way memory is bounded
//! (a few chunks of `buffer_size`, 256 KiB by default), whatever the archive's size; see docs/benchmarks.md.

use std::fs::File;
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::mpsc;

use crate::atomic::AtomicFile;
use crate::cbc::{self, BLOCK, CbcError, StreamDecryptor};
use crate::mpegts::{self, TsError, TsInspector, TsReport};
use crate::password::PasswordBlob;

/// Bytes held back from the writer with `trim`, so the tail can be cut across buffer boundaries.
pub const TRIM_HOLD: usize = 512;

/// How to decrypt.
#[derive(Debug, Clone)]
pub struct DecryptOptions {
    /// Remove a valid PKCS#7 tail, then any partial packet after the last whole 188-byte one.
    pub trim: bool,
    /// Threads for AES per buffer (the reader and writer have their own).
    pub threads: NonZeroUsize,
    /// Size of each I/O buffer of the streaming pipeline (pipes); rounded up to a multiple of 16.
    pub buffer_size: usize,
    /// Bytes each core reads, decrypts and writes at a time from a regular file; rounded down to a multiple
    /// of 16. Small enough to stay in a core's cache from read to write: 256 KiB measured fastest here.
    pub chunk_size: usize,
    /// Buffers in flight between reader, decryptor and writer.
    pub buffers: usize,
    /// Set from elsewhere (a signal handler, say) to stop: the decryption then fails with
    /// [`ArchiveError::Interrupted`] at its next chunk, and [`decrypt_file`] leaves nothing behind.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Where [`decrypt_file`] records the path of its temporary file while it exists, so that a signal
    /// handler that must end the process at once (a decryption blocked reading a pipe cannot see `cancel`)
    /// can remove it first.
    pub temp_file: Option<TempFileSlot>,
    /// Counts the bytes of ciphertext read and decrypted so far, for a caller that shows progress (a bar on
    /// a terminal polls it).
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// See [`DecryptOptions::temp_file`].
pub type TempFileSlot = std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>;

impl DecryptOptions {
    fn count(&self, n: usize) {
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn check_cancel(&self) -> Result<(), ArchiveError> {
        match &self.cancel {
            Some(flag) if flag.load(std::sync::atomic::Ordering::Relaxed) => {
                Err(ArchiveError::Interrupted)
            }
            _ => Ok(()),
        }
    }
}

impl Default for DecryptOptions {
    fn default() -> Self {
        Self {
            trim: false,
            threads: cbc::available_threads(),
            buffer_size: 4 << 20,
            chunk_size: 256 << 10,
            buffers: 4,
            cancel: None,
            temp_file: None,
            progress: None,
        }
    }
}

/// What a decryption did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecryptSummary {
    /// Bytes of ciphertext read.
    pub ciphertext_bytes: u64,
    /// Bytes of plaintext written.
    pub written_bytes: u64,
    /// Bytes removed by `trim`.
    pub trimmed_bytes: u64,
    /// The MPEG-TS inspection of what was written.
    pub report: TsReport,
}

/// Why an archive could not be decrypted. Whatever the error, nothing is left at the destination.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the encrypted archive failed.
    #[error("cannot read the encrypted archive: {0}")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("cannot write the decrypted archive: {0}")]
    Write(#[source] io::Error),
    /// The archive is empty.
    #[error("the encrypted archive is empty")]
    Empty,
    /// Not a whole number of AES blocks.
    #[error(transparent)]
    NotBlockAligned(#[from] CbcError),
    /// The decrypted start is not MPEG-TS: wrong key or password.
    #[error(
        "the decrypted data is not MPEG-TS ({0}): the password is not this archive's, or the private key is wrong"
    )]
    NotMpegTs(#[source] TsError),
    /// The output path is the input.
    #[error("the output {0} is the input file; choose another --out")]
    OutputIsInput(String),
    /// `trim` was asked for, but the plaintext does not end as the service's files do (whole 188-byte packets,
    /// then 1 to 16 bytes of PKCS#7 padding): the archive is truncated or damaged.
    #[error(
        "cannot trim: {0}; the archive is truncated or damaged (without --trim the output is what `openssl enc -d -nopad` gives)"
    )]
    Untrimmable(String),
    /// Stopped through [`DecryptOptions::cancel`].
    #[error("interrupted")]
    Interrupted,
    /// The decrypted archive failed its verification (see [`crate::resume::ResumableOutput::finish`]): it is
    /// not whole MPEG-TS, not the object's length, or its PKCS#7 tail is invalid.
    #[error("the decrypted archive failed verification: {0}")]
    Unverified(String),
}

enum ToWriter {
    /// Write `buf[..len]` then give the buffer back.
    Buffer(Vec<u8>, usize),
    /// Write these bytes (the trim carry, or the trimmed tail).
    Bytes(Vec<u8>),
}

/// Decrypts `reader` into `writer`; see the module docs for the contract.
///
/// ```
/// use archive_core::{archive, cbc, PasswordBlob};
/// let blob = PasswordBlob::new([1; 32], [2; 16]);
/// let ts: Vec<u8> = (0..100).flat_map(|i| { let mut p = vec![0u8; 188]; p[0] = 0x47; p[3] = 0x10 | (i % 16) as u8; p }).collect();
/// let ct = cbc::encrypt_padded(blob.key(), blob.iv(), &ts);
/// let mut out = Vec::new();
/// let opts = archive::DecryptOptions { trim: true, ..Default::default() };
/// let summary = archive::decrypt_stream(&ct[..], &mut out, &blob, &opts).unwrap();
/// assert_eq!(out, ts);
/// assert_eq!(summary.trimmed_bytes, 16 - (ts.len() % 16) as u64);
///
/// let wrong = PasswordBlob::new([9; 32], [2; 16]);
/// assert!(archive::decrypt_stream(&ct[..], &mut Vec::new(), &wrong, &opts).is_err());
/// ```
pub fn decrypt_stream<R, W>(
    reader: R,
    writer: W,
    blob: &PasswordBlob,
    opts: &DecryptOptions,
) -> Result<DecryptSummary, ArchiveError>
where
    R: Read + Send,
    W: Write + Send,
{
    let decryptor = StreamDecryptor::new(blob.key(), blob.iv()).with_threads(opts.threads);
    decrypt_stream_with(reader, writer, decryptor, opts)
}

/// Like [`decrypt_stream`], with a decryptor that may start mid-stream ([`StreamDecryptor::resume`]).
///
/// When resuming, the first buffer is not the archive's start: the MPEG-TS check then applies to whatever
/// packet alignment the caller resumed at, which must be a multiple of 188 bytes from the start of the archive
/// for the check to pass (callers resume at multiples of `lcm(16, 188) = 752` bytes).
pub fn decrypt_stream_with<R, W>(
    mut reader: R,
    mut writer: W,
    mut decryptor: StreamDecryptor,
    opts: &DecryptOptions,
) -> Result<DecryptSummary, ArchiveError>
where
    R: Read + Send,
    W: Write + Send,
{
    let buffer_size = opts.buffer_size.max(TRIM_HOLD * 2).div_ceil(BLOCK) * BLOCK;
    let buffers = opts.buffers.max(2);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..buffers {
        let _ = free_tx.send(vec![0u8; buffer_size]);
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize, bool)>(buffers);
    let (write_tx, write_rx) = mpsc::sync_channel::<ToWriter>(buffers + 1);

    std::thread::scope(|s| {
        // Reader: fills buffers completely (so every buffer but the last is block-aligned) and marks the last.
        let reader_thread = s.spawn(move || -> Result<u64, ArchiveError> {
            let mut total = 0u64;
            let mut pending: Option<(Vec<u8>, usize)> = None;
            loop {
                let Ok(mut buf) = free_rx.recv() else {
                    return Ok(total);
                };
                let n = fill(&mut reader, &mut buf).map_err(ArchiveError::Read)?;
                total += n as u64;
                opts.count(n);
                if n == 0 {
                    if let Some((p, len)) = pending.take() {
                        let _ = full_tx.send((p, len, true));
                    }
                    return Ok(total);
                }
                if let Some((p, len)) = pending.replace((buf, n))
                    && full_tx.send((p, len, false)).is_err()
                {
                    return Ok(total);
                }
            }
        });

        // Writer: writes in order and recycles buffers.
        let writer_thread = s.spawn(move || -> Result<u64, ArchiveError> {
            let mut written = 0u64;
            for msg in write_rx {
                match msg {
                    ToWriter::Buffer(buf, len) => {
                        writer.write_all(&buf[..len]).map_err(ArchiveError::Write)?;
                        written += len as u64;
                        let _ = free_tx.send(buf);
                    }
                    ToWriter::Bytes(bytes) => {
                        writer.write_all(&bytes).map_err(ArchiveError::Write)?;
                        written += bytes.len() as u64;
                    }
                }
            }
            writer.flush().map_err(ArchiveError::Write)?;
            Ok(written)
        });

        let result = decrypt_loop(&full_rx, &write_tx, &mut decryptor, opts);
        drop(write_tx);
        drop(full_rx);
        let read = reader_thread
            .join()
            .unwrap_or_else(|_| Err(ArchiveError::Read(io::Error::other("reader panicked"))));
        let written = writer_thread
            .join()
            .unwrap_or_else(|_| Err(ArchiveError::Write(io::Error::other("writer panicked"))));
        // Report the root cause: a read error explains a short stream, a write error a stalled pipeline.
        let read = read?;
        let (report, trimmed) = result?;
        let written = written?;
        Ok(DecryptSummary {
            ciphertext_bytes: read,
            written_bytes: written,
            trimmed_bytes: trimmed,
            report,
        })
    })
}

/// The decrypting stage: checks alignment, decrypts, checks the first packets, inspects, trims, forwards.
fn decrypt_loop(
    full_rx: &mpsc::Receiver<(Vec<u8>, usize, bool)>,
    write_tx: &mpsc::SyncSender<ToWriter>,
    decryptor: &mut StreamDecryptor,
    opts: &DecryptOptions,
) -> Result<(TsReport, u64), ArchiveError> {
    let trim = opts.trim;
    let mut inspector = TsInspector::new();
    let mut first = true;
    let mut total = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    let mut trimmed = 0u64;
    // The reader may stop early on an error; then the channel closes without a `last` buffer.
    while let Ok((mut buf, len, last)) = full_rx.recv() {
        opts.check_cancel()?;
        total += len as u64;
        if len % BLOCK != 0 {
            return Err(CbcError::NotBlockAligned(total).into());
        }
        decryptor.decrypt(&mut buf[..len])?;
        if first {
            mpegts::looks_like_ts(&buf[..len]).map_err(ArchiveError::NotMpegTs)?;
            first = false;
        }
        if !trim {
            inspector.feed(&buf[..len]);
            if write_tx.send(ToWriter::Buffer(buf, len)).is_err() {
                break;
            }
        } else if !last {
            let keep = len - TRIM_HOLD.min(len);
            let new_carry = buf[keep..len].to_vec();
            let old = std::mem::replace(&mut carry, new_carry);
            inspector.feed(&old);
            inspector.feed(&buf[..keep]);
            if (!old.is_empty() && write_tx.send(ToWriter::Bytes(old)).is_err())
                || write_tx.send(ToWriter::Buffer(buf, keep)).is_err()
            {
                break;
            }
        } else {
            let mut tail = std::mem::take(&mut carry);
            tail.extend_from_slice(&buf[..len]);
            let before = total - tail.len() as u64;
            let keep = trimmed_len(before, &tail)?;
            trimmed = (tail.len() - keep) as u64;
            tail.truncate(keep);
            inspector.feed(&tail);
            let _ = write_tx.send(ToWriter::Bytes(tail));
        }
        if last {
            break;
        }
    }
    if total == 0 {
        return Err(ArchiveError::Empty);
    }
    Ok((inspector.finish(), trimmed))
}

/// How much of `tail` (which starts `before` bytes into the plaintext) to keep with `trim`.
/// The tail should be the last [`TRIM_HOLD`] bytes (or all of a shorter plaintext).
///
/// * A plaintext of whole packets has no padding (the service pads 1 to 16 bytes, never a multiple of 188):
///   keep it all, even if its last bytes happen to look like PKCS#7.
/// * Otherwise the tail must be a valid PKCS#7 pad after whole packets: anything else means the archive was
///   cut short or damaged, and is [`ArchiveError::Untrimmable`] rather than a silently shortened file.
pub fn trimmed_len(before: u64, tail: &[u8]) -> Result<usize, ArchiveError> {
    let packet = mpegts::PACKET as u64;
    let total = before + tail.len() as u64;
    if total.is_multiple_of(packet) {
        return Ok(tail.len());
    }
    let unpadded = cbc::pkcs7_unpadded_len(tail).ok_or_else(|| {
        ArchiveError::Untrimmable(format!(
            "the plaintext ({total} bytes) is neither whole 188-byte packets nor ends with valid PKCS#7 padding"
        ))
    })?;
    let end = before + unpadded as u64;
    if !end.is_multiple_of(packet) {
        return Err(ArchiveError::Untrimmable(format!(
            "without its {} bytes of PKCS#7 padding the plaintext ends {} bytes into a 188-byte packet",
            tail.len() - unpadded,
            end % packet
        )));
    }
    Ok(unpadded)
}

/// Reads until `buf` is full or the reader is at its end; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decrypts the file at `input` into `output`, atomically: on any error nothing is left at or beside `output`.
pub fn decrypt_file(
    input: &Path,
    output: &Path,
    blob: &PasswordBlob,
    opts: &DecryptOptions,
) -> Result<DecryptSummary, ArchiveError> {
    let file = File::open(input).map_err(|e| ArchiveError::Read(with_path(e, input)))?;
    let meta = file
        .metadata()
        .map_err(|e| ArchiveError::Read(with_path(e, input)))?;
    if meta.is_dir() {
        return Err(ArchiveError::Read(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a directory", input.display()),
        )));
    }
    if meta.is_file() {
        if meta.len() == 0 {
            return Err(ArchiveError::Empty);
        }
        if meta.len() % BLOCK as u64 != 0 {
            return Err(CbcError::NotBlockAligned(meta.len()).into());
        }
    }
    if same_file(input, output) {
        return Err(ArchiveError::OutputIsInput(output.display().to_string()));
    }
    let mut out =
        AtomicFile::create(output).map_err(|e| ArchiveError::Write(with_path(e, output)))?;
    let record = |path: Option<&Path>| {
        if let Some(slot) = &opts.temp_file {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = path.map(Path::to_path_buf);
        }
    };
    record(Some(out.temp_path()));
    let summary = if meta.is_file() {
        decrypt_positional(&file, meta.len(), out.file_mut(), blob, opts)
    } else {
        // A pipe or a device: no positions, so the streaming pipeline.
        decrypt_stream(file, &mut out, blob, opts)
    };
    let committed = summary.and_then(|summary| {
        out.commit()
            .map_err(|e| ArchiveError::Write(with_path(e, output)))?;
        Ok(summary)
    });
    record(None);
    committed
}

/// The in-order part of a positional decryption: inspection, with the tail held back for `trim`.
#[derive(Debug)]
struct InOrder {
    next: u64,
    inspector: TsInspector,
    held: Vec<u8>,
    error: Option<ArchiveError>,
}

impl InOrder {
    fn absorb(&mut self, plain: &[u8]) {
        self.held.extend_from_slice(plain);
        if self.held.len() > 2 * TRIM_HOLD {
            let release = self.held.len() - TRIM_HOLD;
            self.inspector.feed(&self.held[..release]);
            self.held.drain(..release);
        }
    }
}

/// Decrypts a regular file into another by positions: each thread reads a chunk *and the ciphertext block
/// before it* (its IV), decrypts it and writes it at the same offset, so a chunk's bytes stay in one core's
/// cache from read to write (moving every byte between cores, as a reader → decryptor → writer pipeline
/// does, measured slower than openssl on two cores). The inspection still sees the plaintext in order: the
/// thread that finished chunk *k* feeds it while it is hot, once chunk *k − 1* has been fed.
///
/// Chunk 0 is done first, alone: if it is not MPEG-TS nothing else is read or written.
fn decrypt_positional(
    input: &File,
    len: u64,
    output: &File,
    blob: &PasswordBlob,
    opts: &DecryptOptions,
) -> Result<DecryptSummary, ArchiveError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Condvar, Mutex};

    let chunk = (opts.chunk_size.max(4096) / BLOCK * BLOCK) as u64;
    let chunks = len.div_ceil(chunk);
    let order = Mutex::new(InOrder {
        next: 0,
        inspector: TsInspector::new(),
        held: Vec::new(),
        error: None,
    });
    let turn = Condvar::new();
    let failed = AtomicBool::new(false);
    let next_chunk = AtomicU64::new(1);
    let one = NonZeroUsize::MIN;

    let process = |k: u64, buf: &mut Vec<u8>| -> Result<(), ArchiveError> {
        opts.check_cancel()?;
        let off = k * chunk;
        let n = chunk.min(len - off) as usize;
        buf.resize(BLOCK + n, 0);
        let mut iv = *blob.iv();
        if k == 0 {
            read_exact_at(input, &mut buf[BLOCK..], off)?;
        } else {
            read_exact_at(input, &mut buf[..], off - BLOCK as u64)?;
            iv.copy_from_slice(&buf[..BLOCK]);
        }
        let plain = &mut buf[BLOCK..];
        cbc::decrypt_in_place_with(blob.key(), &iv, plain, one)?;
        if k == 0 {
            mpegts::looks_like_ts(plain).map_err(ArchiveError::NotMpegTs)?;
        }
        write_all_at(output, plain, off)?;
        opts.count(n);
        let mut g = order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while g.next != k && !failed.load(Ordering::Acquire) {
            g = turn
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if g.next == k {
            g.absorb(plain);
            g.next += 1;
        }
        drop(g);
        turn.notify_all();
        Ok(())
    };

    let mut buf = Vec::with_capacity(chunk as usize + BLOCK);
    process(0, &mut buf)?;
    let workers = opts
        .threads
        .get()
        .min(chunks.saturating_sub(1) as usize)
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut buf = Vec::with_capacity(chunk as usize + BLOCK);
                loop {
                    if failed.load(Ordering::Acquire) {
                        return;
                    }
                    let k = next_chunk.fetch_add(1, Ordering::AcqRel);
                    if k >= chunks {
                        return;
                    }
                    if let Err(e) = process(k, &mut buf) {
                        let mut g = order
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        g.error.get_or_insert(e);
                        failed.store(true, Ordering::Release);
                        drop(g);
                        turn.notify_all();
                        return;
                    }
                }
            });
        }
    });
    let mut state = order
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = state.error.take() {
        return Err(e);
    }
    let before = len - state.held.len() as u64;
    let keep = if opts.trim {
        trimmed_len(before, &state.held)?
    } else {
        state.held.len()
    };
    state.inspector.feed(&state.held[..keep]);
    let written = before + keep as u64;
    if written != len {
        output.set_len(written).map_err(ArchiveError::Write)?;
    }
    Ok(DecryptSummary {
        ciphertext_bytes: len,
        written_bytes: written,
        trimmed_bytes: len - written,
        report: state.inspector.finish(),
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), ArchiveError> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset).map_err(ArchiveError::Read)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> Result<(), ArchiveError> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset).map_err(ArchiveError::Write)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> Result<(), ArchiveError> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(ArchiveError::Read(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) => return Err(ArchiveError::Read(e)),
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> Result<(), ArchiveError> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, buf, offset) {
            Ok(0) => return Err(ArchiveError::Write(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) => return Err(ArchiveError::Write(e)),
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
