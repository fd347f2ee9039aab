//! The sans-IO core of archivectl: everything needed to turn a Vonage Video (OpenTok) encrypted archive
//! back into the MPEG-TS it was, and to do the service's side of the job for tests and the emulator.
//!
//! The service draws a random AES-256 key and IV per archive, encrypts the MPEG-TS with AES-256-CBC,
//! and wraps `[1, 1, 1] || key || iv` (the [`PasswordBlob`]) with RSA-OAEP (SHA-1) under the customer's
//! certificate. The base64 of that is the archive's "password". This crate:
//!
//! * parses and builds the blob ([`password`]), unwraps and wraps it ([`oaep`]);
//! * loads private keys in every form OpenSSL writes ([`keys`]), generates and inspects certificates ([`cert`]);
//! * decrypts and encrypts AES-256-CBC as a stream, across cores, from any block-aligned offset ([`cbc`]);
//! * checks and measures MPEG-TS ([`mpegts`]), and inspects and hashes a decrypted archive in one pass
//!   ([`inspect`]);
//! * decrypts a whole archive into an output that appears atomically and only if the key was right
//!   ([`archive`], [`atomic`]).
//!
//! It does no network I/O and needs no async runtime.
//!
//! ```
//! use archive_core::{cbc, PasswordBlob};
//!
//! let blob = PasswordBlob::new([7u8; 32], [9u8; 16]);
//! let ciphertext = cbc::encrypt_padded(blob.key(), blob.iv(), b"hello archive");
//! let mut plain = ciphertext.clone();
//! cbc::decrypt_in_place(blob.key(), blob.iv(), &mut plain).unwrap();
//! assert_eq!(&plain[..13], b"hello archive");
//! ```
#![warn(missing_docs)]

pub mod archive;
pub mod atomic;
pub mod cbc;
pub mod cert;
pub mod inspect;
pub mod keys;
pub mod mpegts;
pub mod oaep;
pub mod password;
pub mod resume;

pub use password::{PasswordBlob, PasswordError};
