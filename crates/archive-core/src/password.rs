//! The 51-byte blob the service wraps under the customer's certificate.
//!
//! Layout (from the service's documentation): `version (1) || algorithm (1) || mode (1) || key (32) || iv (16)`,
//! where version 1, algorithm 1 (AES-256) and mode 1 (CBC) are the only values the service emits.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Length of an AES block, and so of a CBC IV.
pub const IV_LEN: usize = 16;
/// Length of the whole blob: three header bytes, the key and the IV.
pub const BLOB_LEN: usize = 3 + KEY_LEN + IV_LEN;

/// The only blob version the service documents.
pub const VERSION_1: u8 = 1;
/// Algorithm byte for AES-256.
pub const ALGORITHM_AES_256: u8 = 1;
/// Mode byte for CBC.
pub const MODE_CBC: u8 = 1;

/// Why a decrypted password is not a blob we can use. Each variant names the byte (or length) that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The blob is not 51 bytes long.
    #[error(
        "password blob is {0} bytes long, expected {BLOB_LEN} (3 header bytes, 32-byte key, 16-byte IV)"
    )]
    Length(usize),
    /// Byte 0 is not 1.
    #[error("password blob byte 0 (version) is {0}, expected 1")]
    Version(u8),
    /// Byte 1 is not 1.
    #[error("password blob byte 1 (algorithm) is {0}, expected 1 (AES-256)")]
    Algorithm(u8),
    /// Byte 2 is not 1.
    #[error("password blob byte 2 (mode) is {0}, expected 1 (CBC)")]
    Mode(u8),
}

/// An archive's AES-256 key and CBC IV, as carried in the service's password blob.
///
/// Both are wiped from memory on drop and never shown by `Debug`.
///
/// ```
/// use archive_core::PasswordBlob;
///
/// let blob = PasswordBlob::new([1u8; 32], [2u8; 16]);
/// let bytes = blob.to_bytes();
/// assert_eq!(&bytes[..3], &[1, 1, 1]);
/// assert_eq!(PasswordBlob::parse(&bytes).unwrap(), blob);
/// assert!(!format!("{blob:?}").contains("01010101"));
/// ```
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PasswordBlob {
    key: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

impl PasswordBlob {
    /// A blob for this key and IV.
    pub fn new(key: [u8; KEY_LEN], iv: [u8; IV_LEN]) -> Self {
        Self { key, iv }
    }

    /// A fresh random key and IV, as the service draws for each archive.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut blob = Self::new([0; KEY_LEN], [0; IV_LEN]);
        rng.fill_bytes(&mut blob.key);
        rng.fill_bytes(&mut blob.iv);
        blob
    }

    /// Parses the 51 decrypted bytes, checking the length and each header byte.
    pub fn parse(bytes: &[u8]) -> Result<Self, PasswordError> {
        if bytes.len() != BLOB_LEN {
            return Err(PasswordError::Length(bytes.len()));
        }
        if bytes[0] != VERSION_1 {
            return Err(PasswordError::Version(bytes[0]));
        }
        if bytes[1] != ALGORITHM_AES_256 {
            return Err(PasswordError::Algorithm(bytes[1]));
        }
        if bytes[2] != MODE_CBC {
            return Err(PasswordError::Mode(bytes[2]));
        }
        let mut blob = Self::new([0; KEY_LEN], [0; IV_LEN]);
        blob.key.copy_from_slice(&bytes[3..3 + KEY_LEN]);
        blob.iv.copy_from_slice(&bytes[3 + KEY_LEN..]);
        Ok(blob)
    }

    /// The 51 bytes, in a buffer that is wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(BLOB_LEN));
        out.extend_from_slice(&[VERSION_1, ALGORITHM_AES_256, MODE_CBC]);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.iv);
        out
    }

    /// The AES-256 key.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The CBC initialization vector.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The version byte (always 1 for a parsed blob).
    pub fn version(&self) -> u8 {
        VERSION_1
    }

    /// The algorithm byte (always 1, AES-256).
    pub fn algorithm(&self) -> u8 {
        ALGORITHM_AES_256
    }

    /// The mode byte (always 1, CBC).
    pub fn mode(&self) -> u8 {
        MODE_CBC
    }
}

impl fmt::Debug for PasswordBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordBlob")
            .field("version", &VERSION_1)
            .field("algorithm", &"AES-256")
            .field("mode", &"CBC")
            .field("key", &"[redacted]")
            .field("iv", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Vec<u8> {
        let mut v = vec![1, 1, 1];
        v.extend(0..48u8);
        v
    }

    #[test]
    fn parses_key_and_iv_at_documented_offsets() {
        let blob = PasswordBlob::parse(&valid()).unwrap();
        assert_eq!(blob.key()[0], 0);
        assert_eq!(blob.key()[31], 31);
        assert_eq!(blob.iv()[0], 32);
        assert_eq!(blob.iv()[15], 47);
        assert_eq!(&blob.to_bytes()[..], &valid()[..]);
    }

    #[test]
    fn each_wrong_byte_is_named() {
        let mut v = valid();
        v[0] = 2;
        assert_eq!(PasswordBlob::parse(&v), Err(PasswordError::Version(2)));
        let mut v = valid();
        v[1] = 0;
        assert_eq!(PasswordBlob::parse(&v), Err(PasswordError::Algorithm(0)));
        let mut v = valid();
        v[2] = 3;
        assert_eq!(PasswordBlob::parse(&v), Err(PasswordError::Mode(3)));
        assert_eq!(
            PasswordBlob::parse(&v[..50]),
            Err(PasswordError::Length(50))
        );
        assert!(PasswordError::Mode(3).to_string().contains("byte 2"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let blob = PasswordBlob::new([0xAB; 32], [0xCD; 16]);
        let shown = format!("{blob:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
        assert!(shown.contains("redacted"));
    }
}
