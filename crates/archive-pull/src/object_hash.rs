//! The SHA-256 of the object's bytes as downloaded (the ciphertext as stored), hashed in the pipeline's one
//! pass, for the service's `sha256sum` check ([`crate::check_sha256sum`]). A resumed pull did not download the
//! part it resumes after: that part's ciphertext is rebuilt from the plaintext on disk (CBC encryption under
//! the archive's key and IV gives back exactly the ciphertext it was decrypted from) and hashed first.

use std::io::Read as _;
use std::path::Path;

use archive_core::PasswordBlob;
use archive_core::cbc::StreamEncryptor;
use sha2::{Digest, Sha256};

/// A hasher of the object's bytes that has already taken the first `offset` bytes (those of a resumed run),
/// rebuilt from the first `offset` bytes of plaintext in `partial`; `None` if they cannot be read (the check is
/// then skipped, the pull goes on).
pub(crate) fn resumed_at(partial: &Path, offset: u64, blob: &PasswordBlob) -> Option<Sha256> {
    let mut hasher = Sha256::new();
    if offset == 0 {
        return Some(hasher);
    }
    let mut file = std::fs::File::open(partial).ok()?.take(offset);
    let mut encryptor = StreamEncryptor::new(blob.key(), blob.iv());
    let mut buf = vec![0u8; 1 << 20];
    let mut left = offset;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).ok()?;
        file.read_exact(&mut buf[..n]).ok()?;
        // The durable prefix is whole blocks (the resume state checks it).
        encryptor.encrypt(&mut buf[..n]).ok()?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Some(hasher)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_resumed_prefix_hashes_as_its_ciphertext() {
        let blob = PasswordBlob::generate(&mut rand::rng());
        let plain: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        let cipher = archive_core::cbc::encrypt_padded(blob.key(), blob.iv(), &plain);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join(".a.ts.partial");
        std::fs::write(&partial, &plain).unwrap();
        for offset in [0u64, 16, 2048, 4096] {
            let got = resumed_at(&partial, offset, &blob).unwrap().finalize();
            assert_eq!(
                got,
                Sha256::digest(&cipher[..offset as usize]),
                "at {offset}"
            );
        }
        // A prefix longer than the file cannot be rebuilt: no hash, rather than a wrong one.
        assert!(resumed_at(&partial, 8192, &blob).is_none());
    }
}
