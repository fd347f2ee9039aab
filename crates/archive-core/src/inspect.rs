//! A decrypted archive read from anywhere (a file, a pipe), in one pass: its start checked to be MPEG-TS,
//! every byte inspected (streams, duration) and hashed (SHA-256). What `archivectl inspect` reports and what
//! the demo checks its own pull against.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::mpegts::{self, TsError, TsInspector, TsReport};

/// What [`inspect_plaintext`] found.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The MPEG-TS inspection of every byte.
    pub report: TsReport,
    /// SHA-256 of every byte, lowercase hex.
    pub sha256: String,
}

/// Why a decrypted archive could not be inspected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The reader failed.
    #[error("{0}")]
    Read(#[source] io::Error),
    /// Its start is not MPEG-TS (no sync byte 0x47 every 188 bytes): still encrypted, or not an archive.
    #[error("not MPEG-TS ({0})")]
    NotMpegTs(#[source] TsError),
    /// It has no bytes.
    #[error("empty")]
    Empty,
}

/// Reads `reader` to its end in 1 MiB reads: the first read must look like MPEG-TS
/// ([`mpegts::looks_like_ts`]), then every byte is inspected ([`TsInspector`]) and hashed.
///
/// ```
/// use archive_core::inspect::{inspect_plaintext, InspectError};
///
/// let packet = |cc: u8| { let mut p = vec![0u8; 188]; p[0] = 0x47; p[3] = 0x10 | cc; p };
/// let ts: Vec<u8> = (0..8).flat_map(packet).collect();
/// let found = inspect_plaintext(&ts[..]).unwrap();
/// assert_eq!(found.sha256.len(), 64);
/// assert!(matches!(inspect_plaintext(&b"not a transport stream"[..]), Err(InspectError::NotMpegTs(_))));
/// assert!(matches!(inspect_plaintext(&b""[..]), Err(InspectError::Empty)));
/// ```
pub fn inspect_plaintext(mut reader: impl Read) -> Result<Inspected, InspectError> {
    let mut inspector = TsInspector::new();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut first = true;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InspectError::Read(e)),
        };
        if first {
            mpegts::looks_like_ts(&buf[..n]).map_err(InspectError::NotMpegTs)?;
            first = false;
        }
        inspector.feed(&buf[..n]);
        hasher.update(&buf[..n]);
    }
    if first {
        return Err(InspectError::Empty);
    }
    Ok(Inspected {
        report: inspector.finish(),
        sha256: hex::encode(hasher.finalize()),
    })
}
