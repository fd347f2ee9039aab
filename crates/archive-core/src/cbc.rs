//! AES-256-CBC over buffers and streams, split across cores, from any block-aligned offset.
//!
//! CBC decryption parallelizes: plaintext block *i* is `D(C[i]) ^ C[i-1]`, so any run of ciphertext blocks can be
//! decrypted on its own given the block before it (the IV for the first run). [`decrypt_in_place`] does one buffer,
//! splitting large ones across threads; [`StreamDecryptor`] carries the chaining block from one buffer to the next,
//! so a stream can be decrypted in pieces, and can be *started* at any 16-byte-aligned offset given the previous
//! ciphertext block ([`StreamDecryptor::resume`]) — what resumable and parallel downloads need.
//!
//! The output is exactly what `openssl enc -d -aes-256-cbc -nopad` writes: padding is left in place.
//! [`pkcs7_unpadded_len`] tells where a valid PKCS#7 tail starts, for callers that want it gone.

use std::num::NonZeroUsize;

use aes::Aes256;
use cbc::cipher::{
    BlockModeDecrypt, BlockModeEncrypt, KeyIvInit,
    block_padding::{NoPadding, Pkcs7},
};
use zeroize::Zeroizing;

use crate::password::{IV_LEN, KEY_LEN};

/// The AES block size.
pub const BLOCK: usize = 16;

/// Below this many bytes per thread, a buffer is decrypted on the calling thread: splitting would cost more.
pub const MIN_BYTES_PER_THREAD: usize = 256 * 1024;

/// Why a ciphertext could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CbcError {
    /// The ciphertext is not a whole number of 16-byte blocks.
    #[error(
        "ciphertext length {0} is not a multiple of 16 bytes: the file is truncated or not an AES-256-CBC archive"
    )]
    NotBlockAligned(u64),
}

/// Decrypts `buf` in place on this thread. `buf.len()` must be a multiple of 16.
fn decrypt_serial(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], buf: &mut [u8]) -> Result<(), CbcError> {
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| CbcError::NotBlockAligned(buf.len() as u64))
}

/// Decrypts `buf` in place, with `iv` as the block before it, using up to `threads` threads.
///
/// ```
/// use archive_core::cbc;
/// let (key, iv) = ([1u8; 32], [2u8; 16]);
/// let data = vec![0x47u8; 1 << 20];
/// let mut buf = cbc::encrypt_padded(&key, &iv, &data);
/// cbc::decrypt_in_place_with(&key, &iv, &mut buf, std::num::NonZeroUsize::new(4).unwrap()).unwrap();
/// assert_eq!(&buf[..data.len()], &data[..]);
/// ```
pub fn decrypt_in_place_with(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    buf: &mut [u8],
    threads: NonZeroUsize,
) -> Result<(), CbcError> {
    if !buf.len().is_multiple_of(BLOCK) {
        return Err(CbcError::NotBlockAligned(buf.len() as u64));
    }
    let blocks = buf.len() / BLOCK;
    let threads = threads.get().min(buf.len() / MIN_BYTES_PER_THREAD).max(1);
    if threads == 1 {
        return decrypt_serial(key, iv, buf);
    }
    // Split into `threads` runs of whole blocks; each run's IV is the ciphertext block before it,
    // which must be copied out before any run is decrypted in place.
    let per = blocks.div_ceil(threads) * BLOCK;
    let ivs: Vec<[u8; IV_LEN]> = std::iter::once(*iv)
        .chain((per..buf.len()).step_by(per).map(|at| {
            let mut b = [0u8; IV_LEN];
            b.copy_from_slice(&buf[at - BLOCK..at]);
            b
        }))
        .collect();
    std::thread::scope(|s| {
        let mut runs = buf.chunks_mut(per).zip(ivs.iter());
        let first = runs.next();
        let handles: Vec<_> = runs
            .map(|(run, iv)| s.spawn(move || decrypt_serial(key, iv, run)))
            .collect();
        let mut result = first.map_or(Ok(()), |(run, iv)| decrypt_serial(key, iv, run));
        for h in handles {
            let r = h.join().unwrap_or(Err(CbcError::NotBlockAligned(0)));
            result = result.and(r);
        }
        result
    })
}

/// Decrypts `buf` in place using every available core for large buffers.
pub fn decrypt_in_place(
    key: &[u8; KEY_LEN],
    iv: &[u8; IV_LEN],
    buf: &mut [u8],
) -> Result<(), CbcError> {
    decrypt_in_place_with(key, iv, buf, available_threads())
}

/// The number of threads worth using for decryption on this machine.
pub fn available_threads() -> NonZeroUsize {
    std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// Decrypts a stream buffer by buffer, carrying the CBC chain across calls.
///
/// ```
/// use archive_core::cbc::{self, StreamDecryptor};
/// let (key, iv) = ([9u8; 32], [8u8; 16]);
/// let plain: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
/// let ct = cbc::encrypt_padded(&key, &iv, &plain);
///
/// // Decrypt from the start in two pieces...
/// let mut d = StreamDecryptor::new(&key, &iv);
/// let (mut a, mut b) = (ct[..1024].to_vec(), ct[1024..].to_vec());
/// d.decrypt(&mut a).unwrap();
/// d.decrypt(&mut b).unwrap();
/// assert_eq!(&a[..], &plain[..1024]);
///
/// // ...or resume at offset 2048 knowing only the ciphertext block before it.
/// let prev: [u8; 16] = ct[2032..2048].try_into().unwrap();
/// let mut tail = ct[2048..].to_vec();
/// StreamDecryptor::resume(&key, &prev).decrypt(&mut tail).unwrap();
/// assert_eq!(&tail[..2048], &plain[2048..]);
/// ```
pub struct StreamDecryptor {
    key: Zeroizing<[u8; KEY_LEN]>,
    chain: [u8; IV_LEN],
    threads: NonZeroUsize,
}

impl std::fmt::Debug for StreamDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecryptor")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl StreamDecryptor {
    /// Starts at the beginning of a ciphertext encrypted with `key` and `iv`.
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> Self {
        Self {
            key: Zeroizing::new(*key),
            chain: *iv,
            threads: available_threads(),
        }
    }

    /// Starts at a block-aligned offset, given the ciphertext block just before it.
    pub fn resume(key: &[u8; KEY_LEN], previous_ciphertext_block: &[u8; BLOCK]) -> Self {
        Self::new(key, previous_ciphertext_block)
    }

    /// Uses at most this many threads per buffer.
    pub fn with_threads(mut self, threads: NonZeroUsize) -> Self {
        self.threads = threads;
        self
    }

    /// The ciphertext block the next buffer chains from (the IV at the start).
    pub fn chain_block(&self) -> [u8; BLOCK] {
        self.chain
    }

    /// Decrypts the next piece of the stream in place; its length must be a multiple of 16.
    pub fn decrypt(&mut self, buf: &mut [u8]) -> Result<(), CbcError> {
        if !buf.len().is_multiple_of(BLOCK) {
            return Err(CbcError::NotBlockAligned(buf.len() as u64));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let mut next = [0u8; BLOCK];
        next.copy_from_slice(&buf[buf.len() - BLOCK..]);
        decrypt_in_place_with(&self.key, &self.chain, buf, self.threads)?;
        self.chain = next;
        Ok(())
    }
}

/// Encrypts a stream buffer by buffer (the service's side, for the emulator and tests).
pub struct StreamEncryptor {
    key: Zeroizing<[u8; KEY_LEN]>,
    chain: [u8; IV_LEN],
}

impl std::fmt::Debug for StreamEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncryptor").finish_non_exhaustive()
    }
}

impl StreamEncryptor {
    /// Starts a ciphertext under `key` and `iv`.
    pub fn new(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> Self {
        Self {
            key: Zeroizing::new(*key),
            chain: *iv,
        }
    }

    /// Encrypts whole blocks in place; the length must be a multiple of 16.
    pub fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), CbcError> {
        if !buf.len().is_multiple_of(BLOCK) {
            return Err(CbcError::NotBlockAligned(buf.len() as u64));
        }
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        cbc::Encryptor::<Aes256>::new((&*self.key).into(), (&self.chain).into())
            .encrypt_padded::<NoPadding>(buf, len)
            .map_err(|_| CbcError::NotBlockAligned(len as u64))?;
        self.chain.copy_from_slice(&buf[len - BLOCK..]);
        Ok(())
    }

    /// Encrypts the last, partial piece (shorter than a block is fine, empty too) with PKCS#7 padding.
    pub fn finish_padded(mut self, tail: &[u8]) -> Vec<u8> {
        let whole = tail.len() / BLOCK * BLOCK;
        let mut out = tail[..whole].to_vec();
        // Whole blocks cannot fail.
        let _ = self.encrypt(&mut out);
        let last = cbc::Encryptor::<Aes256>::new((&*self.key).into(), (&self.chain).into())
            .encrypt_padded_vec::<Pkcs7>(&tail[whole..]);
        out.extend_from_slice(&last);
        out
    }
}

/// Encrypts `data` with PKCS#7 padding, as the service's reference code does.
pub fn encrypt_padded(key: &[u8; KEY_LEN], iv: &[u8; IV_LEN], data: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(data)
}

/// If `plain` ends in valid PKCS#7 padding (1 to 16 bytes, each the pad length), the length without it.
///
/// ```
/// use archive_core::cbc::pkcs7_unpadded_len;
/// assert_eq!(pkcs7_unpadded_len(&[7u8, 7, 3, 3, 3]), Some(2));
/// assert_eq!(pkcs7_unpadded_len(&[7u8, 0]), None);
/// ```
pub fn pkcs7_unpadded_len(plain: &[u8]) -> Option<usize> {
    let &n = plain.last()?;
    let n = n as usize;
    if n == 0 || n > BLOCK || n > plain.len() {
        return None;
    }
    plain[plain.len() - n..]
        .iter()
        .all(|&b| b as usize == n)
        .then(|| plain.len() - n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn parallel_equals_serial_for_many_sizes_and_thread_counts() {
        let (key, iv) = ([0x11; 32], [0x22; 16]);
        for len in [0, 15, 16, 17, 4096, MIN_BYTES_PER_THREAD * 3 + 5, 3_000_017] {
            let ct = encrypt_padded(&key, &iv, &sample(len));
            let mut serial = ct.clone();
            decrypt_serial(&key, &iv, &mut serial).unwrap();
            for t in [1, 2, 3, 8] {
                let mut par = ct.clone();
                decrypt_in_place_with(&key, &iv, &mut par, NonZeroUsize::new(t).unwrap()).unwrap();
                assert_eq!(par, serial, "len {len} threads {t}");
            }
            assert_eq!(pkcs7_unpadded_len(&serial), Some(len));
        }
    }

    #[test]
    fn stream_in_odd_pieces_and_resume_anywhere() {
        let (key, iv) = ([3; 32], [4; 16]);
        let plain = sample(1_000_000);
        let ct = encrypt_padded(&key, &iv, &plain);
        let mut d = StreamDecryptor::new(&key, &iv);
        let mut out = Vec::new();
        for piece in ct.chunks(16 * 4099) {
            let mut p = piece.to_vec();
            d.decrypt(&mut p).unwrap();
            out.extend_from_slice(&p);
        }
        assert_eq!(&out[..plain.len()], &plain[..]);
        for at in [16, 4096, 524_288, ct.len() - 16] {
            let prev: [u8; 16] = ct[at - 16..at].try_into().unwrap();
            let mut rest = ct[at..].to_vec();
            StreamDecryptor::resume(&key, &prev)
                .decrypt(&mut rest)
                .unwrap();
            assert_eq!(rest, out[at..]);
        }
    }

    #[test]
    fn stream_encryptor_matches_one_shot() {
        let (key, iv) = ([5; 32], [6; 16]);
        let plain = sample(100_003);
        let mut e = StreamEncryptor::new(&key, &iv);
        let mut head = plain[..65_536].to_vec();
        e.encrypt(&mut head).unwrap();
        head.extend(e.finish_padded(&plain[65_536..]));
        assert_eq!(head, encrypt_padded(&key, &iv, &plain));
    }

    #[test]
    fn misaligned_input_is_an_error() {
        let mut buf = vec![0u8; 33];
        assert_eq!(
            decrypt_in_place(&[0; 32], &[0; 16], &mut buf),
            Err(CbcError::NotBlockAligned(33))
        );
        assert!(
            StreamDecryptor::new(&[0; 32], &[0; 16])
                .decrypt(&mut buf)
                .is_err()
        );
    }
}
