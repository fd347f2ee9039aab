//! Unwrapping and wrapping the archive password: base64 of RSA-OAEP (SHA-1, MGF1-SHA-1) over the blob.
//!
//! This is exactly what the documented `openssl rsautl -decrypt -oaep` (or `pkeyutl -pkeyopt
//! rsa_padding_mode:oaep`) does, and what the service does with the customer's certificate.

use base64::Engine as _;
use rsa::{Oaep, PrivateKey, PublicKey, traits::PublicKeyParts};
use sha1::Sha1;
use zeroize::Zeroizing;

use crate::password::{PasswordBlob, PasswordError};

/// Why a password could not be unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum UnwrapError {
    /// The password is empty (the service sends `""` for unencrypted archives).
    #[error(
        "the password is empty: this archive is not encrypted, or the password was not received"
    )]
    Empty,
    /// The password is not valid base64.
    #[error("the password is not valid base64: {0}")]
    Base64(String),
    /// The decoded password is not one RSA block long for this key.
    #[error(
        "the decoded password is {got} bytes, but an RSA-OAEP block for this {bits}-bit key is {expected} bytes: \
         it was wrapped for another key"
    )]
    BlockLength {
        /// Bytes decoded.
        got: usize,
        /// Bytes expected for the key.
        expected: usize,
        /// The key's size in bits.
        bits: usize,
    },
    /// RSA-OAEP decryption failed.
    #[error(
        "RSA-OAEP decryption of the password failed: it was wrapped for another key, or it is corrupt"
    )]
    Decrypt,
    /// The decrypted bytes are not a valid blob.
    #[error(transparent)]
    Blob(#[from] PasswordError),
}

/// Why a password could not be wrapped.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// RSA-OAEP encryption failed (a key too small for a 51-byte message).
    #[error("RSA-OAEP encryption of the password failed: {0}")]
    Encrypt(String),
}

/// Decodes base64 that may contain whitespace and newlines (as copied from JSON, a terminal or a file).
///
/// Any other character that is not base64 is an error.
pub fn decode_base64_lenient(text: &str) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if compact.is_empty() {
        return Err(UnwrapError::Empty);
    }
    if let Some(bad) = compact
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
    {
        return Err(UnwrapError::Base64(format!("unexpected character {bad:?}")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| UnwrapError::Base64(e.to_string()))
}

/// The RSA-OAEP padding the service uses: SHA-1 digest and MGF1 with SHA-1, no label.
fn oaep() -> Oaep<Sha1> {
    Oaep::new()
}

/// Unwraps a base64 password with the private key, returning the AES key and IV.
///
/// ```
/// use archive_core::{oaep, PasswordBlob};
/// # let mut rng = rand::rng();
/// # let key = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
/// let blob = PasswordBlob::new([3u8; 32], [4u8; 16]);
/// let password = oaep::wrap_password(&key.to_public_key(), &blob, &mut rng).unwrap();
/// assert_eq!(oaep::unwrap_password(&key, &password).unwrap(), blob);
/// ```
pub fn unwrap_password(key: &PrivateKey, password_b64: &str) -> Result<PasswordBlob, UnwrapError> {
    let wrapped = decode_base64_lenient(password_b64)?;
    unwrap_password_bytes(key, &wrapped)
}

/// Unwraps an already base64-decoded password.
///
/// The RSA operation is blinded (a fresh random blinding factor from the operating system's RNG for each
/// call, `rsa`'s `decrypt_blinded`), so its timing does not follow the key's bits.
pub fn unwrap_password_bytes(
    key: &PrivateKey,
    wrapped: &[u8],
) -> Result<PasswordBlob, UnwrapError> {
    unwrap_blinded(key, wrapped, &mut rand::rng())
}

/// [`unwrap_password_bytes`] with the blinding drawn from `rng`.
fn unwrap_blinded<R: rand::CryptoRng + ?Sized>(
    key: &PrivateKey,
    wrapped: &[u8],
    rng: &mut R,
) -> Result<PasswordBlob, UnwrapError> {
    let expected = key.size();
    if wrapped.len() != expected {
        return Err(UnwrapError::BlockLength {
            got: wrapped.len(),
            expected,
            bits: key.n().bit_width() as usize,
        });
    }
    let plain = Zeroizing::new(
        key.decrypt_blinded(rng, oaep(), wrapped)
            .map_err(|_| UnwrapError::Decrypt)?,
    );
    Ok(PasswordBlob::parse(&plain)?)
}

/// Wraps a blob for the holder of the certificate's private key, as the service does, returning base64.
pub fn wrap_password<R: rand::CryptoRng + ?Sized>(
    public_key: &PublicKey,
    blob: &PasswordBlob,
    rng: &mut R,
) -> Result<String, WrapError> {
    let wrapped = public_key
        .encrypt(rng, oaep(), &blob.to_bytes())
        .map_err(|e| WrapError::Encrypt(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(wrapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts what it hands out, to see that unwrapping draws a blinding factor.
    struct Counting(rand::rngs::ThreadRng, usize);

    impl rand::TryRng for Counting {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.1 += 4;
            self.0.try_next_u32()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.1 += 8;
            self.0.try_next_u64()
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
            self.1 += dest.len();
            self.0.try_fill_bytes(dest)
        }
    }

    impl rand::TryCryptoRng for Counting {}

    #[test]
    fn unwrapping_is_blinded() {
        let key = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let blob = PasswordBlob::new([7u8; 32], [8u8; 16]);
        let pw = wrap_password(&key.to_public_key(), &blob, &mut rand::rng()).unwrap();
        let wrapped = decode_base64_lenient(&pw).unwrap();
        let mut rng = Counting(rand::rng(), 0);
        assert_eq!(unwrap_blinded(&key, &wrapped, &mut rng).unwrap(), blob);
        assert!(rng.1 >= 64, "a blinding factor was drawn: {} bytes", rng.1);
    }

    fn key() -> PrivateKey {
        PrivateKey::new(&mut rand::rng(), 1024).unwrap()
    }

    #[test]
    fn round_trip_tolerates_whitespace() {
        let key = key();
        let blob = PasswordBlob::new([5; 32], [6; 16]);
        let pw = wrap_password(&key.to_public_key(), &blob, &mut rand::rng()).unwrap();
        let spaced: String = pw
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                if i % 20 == 19 {
                    vec![c, '\n', ' ']
                } else {
                    vec![c]
                }
            })
            .collect();
        assert_eq!(
            unwrap_password(&key, &format!("  {spaced}\r\n")).unwrap(),
            blob
        );
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let key = key();
        assert!(matches!(
            unwrap_password(&key, " \n"),
            Err(UnwrapError::Empty)
        ));
        assert!(
            matches!(unwrap_password(&key, "abc$def"), Err(UnwrapError::Base64(m)) if m.contains('$'))
        );
        assert!(matches!(
            unwrap_password(&key, "AAAA"),
            Err(UnwrapError::BlockLength { got: 3, .. })
        ));
        let other = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let pw = wrap_password(
            &other.to_public_key(),
            &PasswordBlob::new([0; 32], [0; 16]),
            &mut rand::rng(),
        )
        .unwrap();
        assert!(matches!(
            unwrap_password(&key, &pw),
            Err(UnwrapError::Decrypt)
        ));
    }
}
