//! Loading the customer's RSA private key in every form OpenSSL writes, and writing keys we generate.
//!
//! Accepted, PEM or DER:
//! * PKCS#1 (`BEGIN RSA PRIVATE KEY`), plain or traditionally encrypted (`Proc-Type: 4,ENCRYPTED` with
//!   `DEK-Info` AES-128/192/256-CBC, DES-EDE3-CBC or DES-CBC, key from `EVP_BytesToKey` with MD5);
//! * PKCS#8 (`BEGIN PRIVATE KEY`);
//! * encrypted PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`): PBES2 with PBKDF2 (HMAC-SHA1 or HMAC-SHA256) or scrypt,
//!   and AES-CBC or DES-EDE3-CBC, which covers what OpenSSL 1.x and 3.x `req -keyout`/`pkcs8 -topk8` write.
//!
//! Written: PKCS#8 PEM, unencrypted or PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, which OpenSSL 3.0 reads.

use std::fmt;

use base64::Engine as _;
use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use md5::{Digest, Md5};
use pkcs1::DecodeRsaPrivateKey;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, traits::PublicKeyParts};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// PBKDF2 iterations for keys we encrypt (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// Why a private key could not be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key is encrypted and no passphrase was given.
    #[error(
        "the private key is encrypted: a passphrase is needed (--passphrase-file, or a terminal to prompt on)"
    )]
    PassphraseRequired,
    /// The passphrase does not decrypt the key.
    #[error("wrong passphrase for the private key")]
    WrongPassphrase,
    /// A key of another algorithm.
    #[error("the private key is not an RSA key ({0}); the service's certificates are RSA")]
    NotRsa(String),
    /// Something else than a private key was given.
    #[error("this is {0}, not a private key")]
    NotAPrivateKey(String),
    /// A key encryption scheme we do not read.
    #[error("unsupported private key encryption: {0}")]
    UnsupportedEncryption(String),
    /// Not a key at all, or a damaged one.
    #[error("not a readable private key: {0}")]
    Malformed(String),
    /// Generating or encoding a key failed.
    #[error("could not generate or encode the key: {0}")]
    Encode(String),
}

/// A parsed PEM block: its label, its `Name: value` headers, and the decoded body.
struct PemBlock {
    label: String,
    headers: Vec<(String, String)>,
    der: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Finds the first PEM block in `text`, tolerating text around it and headers (which RFC 7468 parsers reject).
fn parse_pem(text: &str) -> Option<Result<PemBlock, KeyError>> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].trim().to_string();
    let body_and_end = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let Some(end) = body_and_end.find(&end_marker) else {
        return Some(Err(KeyError::Malformed(format!(
            "PEM block '{label}' has no END line"
        ))));
    };
    let mut headers = Vec::new();
    let mut b64 = Zeroizing::new(String::new());
    for line in body_and_end[..end].lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            b64.push_str(line);
        }
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map(|der| PemBlock {
                label,
                headers,
                der: Zeroizing::new(der),
            })
            .map_err(|e| KeyError::Malformed(format!("bad base64 in PEM body: {e}"))),
    )
}

/// Loads an RSA private key from a PEM or DER file's bytes.
///
/// `passphrase` is only used (and only needed) for encrypted keys.
///
/// ```
/// use archive_core::keys;
/// # let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
/// let pem = keys::to_pkcs8_pem(&key, None).unwrap();
/// let loaded = keys::load_private_key(pem.as_bytes(), None).unwrap();
/// assert_eq!(loaded, key);
/// ```
pub fn load_private_key(
    bytes: &[u8],
    passphrase: Option<&SecretString>,
) -> Result<RsaPrivateKey, KeyError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(KeyError::Malformed("the file is empty".into()));
    }
    match std::str::from_utf8(bytes).ok().and_then(parse_pem) {
        Some(block) => load_pem_block(block?, passphrase),
        None => load_der(bytes, passphrase),
    }
}

fn load_pem_block(
    block: PemBlock,
    passphrase: Option<&SecretString>,
) -> Result<RsaPrivateKey, KeyError> {
    match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            let encrypted = block
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case("Proc-Type") && v.contains("ENCRYPTED"));
            if encrypted {
                let dek = block
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("DEK-Info"))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        KeyError::Malformed("encrypted PEM without a DEK-Info header".into())
                    })?;
                let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
                let der = decrypt_traditional(&dek, &block.der, pass)?;
                RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| KeyError::WrongPassphrase)
            } else {
                RsaPrivateKey::from_pkcs1_der(&block.der)
                    .map_err(|e| KeyError::Malformed(format!("PKCS#1: {e}")))
            }
        }
        "PRIVATE KEY" => load_pkcs8(&block.der),
        "ENCRYPTED PRIVATE KEY" => load_encrypted_pkcs8(&block.der, passphrase),
        "EC PRIVATE KEY" => Err(KeyError::NotRsa("an EC key".into())),
        "DSA PRIVATE KEY" => Err(KeyError::NotRsa("a DSA key".into())),
        "OPENSSH PRIVATE KEY" => Err(KeyError::UnsupportedEncryption(
            "OpenSSH key format; convert it with `ssh-keygen -p -m PEM -f FILE`".into(),
        )),
        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
            Err(KeyError::NotAPrivateKey("a certificate".into()))
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::NotAPrivateKey("a public key".into())),
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Err(KeyError::NotAPrivateKey(
            "a certificate signing request".into(),
        )),
        other => Err(KeyError::Malformed(format!(
            "unexpected PEM block '{other}'"
        ))),
    }
}

fn load_der(der: &[u8], passphrase: Option<&SecretString>) -> Result<RsaPrivateKey, KeyError> {
    if pkcs8::PrivateKeyInfo::try_from(der).is_ok() {
        return load_pkcs8(der);
    }
    if let Ok(key) = RsaPrivateKey::from_pkcs1_der(der) {
        return Ok(key);
    }
    if pkcs8::EncryptedPrivateKeyInfo::try_from(der).is_ok() {
        return load_encrypted_pkcs8(der, passphrase);
    }
    Err(KeyError::Malformed(
        "neither PEM nor a DER PKCS#1/PKCS#8 private key".into(),
    ))
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.2.1" => "an EC key".into(),
        "1.3.101.112" => "an Ed25519 key".into(),
        "1.3.101.113" => "an Ed448 key".into(),
        "1.3.101.110" => "an X25519 key".into(),
        "1.2.840.10040.4.1" => "a DSA key".into(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS-only key, which cannot decrypt OAEP".into(),
        other => format!("algorithm OID {other}"),
    }
}

fn load_pkcs8(der: &[u8]) -> Result<RsaPrivateKey, KeyError> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|e| KeyError::Malformed(format!("PKCS#8: {e}")))?;
    let oid = info.algorithm.oid.to_string();
    if oid != OID_RSA {
        return Err(KeyError::NotRsa(algorithm_name(&oid)));
    }
    RsaPrivateKey::from_pkcs8_der(der)
        .map_err(|e| KeyError::Malformed(format!("PKCS#8 RSA key: {e}")))
}

fn load_encrypted_pkcs8(
    der: &[u8],
    passphrase: Option<&SecretString>,
) -> Result<RsaPrivateKey, KeyError> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|e| KeyError::UnsupportedEncryption(format!("encrypted PKCS#8: {e}")))?;
    let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
    let doc = info
        .decrypt(pass.expose_secret().as_bytes())
        .map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                ..
            })
            | pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { .. }) => {
                KeyError::UnsupportedEncryption(format!("encrypted PKCS#8: {e}"))
            }
            _ => KeyError::WrongPassphrase,
        })?;
    // A wrong passphrase can, rarely, still produce valid padding: the DER check below catches it.
    match pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()) {
        Ok(_) => load_pkcs8(doc.as_bytes()),
        Err(_) => Err(KeyError::WrongPassphrase),
    }
}

/// `EVP_BytesToKey` with MD5 and one iteration, as OpenSSL's traditional PEM encryption uses.
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
    let mut prev: Option<Zeroizing<Vec<u8>>> = None;
    while out.len() < len {
        let mut h = Md5::new();
        if let Some(p) = &prev {
            h.update(p.as_slice());
        }
        h.update(pass);
        h.update(salt);
        let d = Zeroizing::new(h.finalize().to_vec());
        out.extend_from_slice(&d);
        prev = Some(d);
    }
    out.truncate(len);
    out
}

fn decrypt_traditional(
    dek_info: &str,
    body: &[u8],
    pass: &SecretString,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let (alg, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| KeyError::Malformed(format!("bad DEK-Info header '{dek_info}'")))?;
    let iv = hex::decode(iv_hex.trim())
        .map_err(|_| KeyError::Malformed(format!("bad IV in DEK-Info '{dek_info}'")))?;
    let alg = alg.trim().to_ascii_uppercase();
    let (key_len, iv_len) = match alg.as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        "DES-CBC" => (8, 8),
        other => {
            return Err(KeyError::UnsupportedEncryption(format!(
                "traditional PEM cipher {other}"
            )));
        }
    };
    if iv.len() != iv_len {
        return Err(KeyError::Malformed(format!(
            "DEK-Info IV is {} bytes, {alg} needs {iv_len}",
            iv.len()
        )));
    }
    let key = evp_bytes_to_key(pass.expose_secret().as_bytes(), &iv[..8], key_len);
    let mut buf = Zeroizing::new(body.to_vec());
    let bad = |_| KeyError::WrongPassphrase;
    let n = match alg.as_str() {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "DES-EDE3-CBC" => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        _ => cbc::Decryptor::<des::Des>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
    };
    buf.truncate(n);
    Ok(buf)
}

/// Reads a passphrase from a passphrase file's contents: everything up to the first newline
/// (a trailing `\r` is dropped too), as OpenSSL's `-passin file:` does.
///
/// ```
/// use secrecy::ExposeSecret;
/// let p = archive_core::keys::passphrase_from_file_contents(b"s3cret\nignored").unwrap();
/// assert_eq!(p.expose_secret(), "s3cret");
/// ```
pub fn passphrase_from_file_contents(bytes: &[u8]) -> Result<SecretString, KeyError> {
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line)
        .map_err(|_| KeyError::Malformed("the passphrase file is not UTF-8 text".into()))?;
    if text.is_empty() {
        return Err(KeyError::Malformed(
            "the passphrase file's first line is empty".into(),
        ));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// Generates an RSA key of `bits` bits (2048 is what the service's documentation uses and its maximum).
pub fn generate_rsa_key(bits: usize) -> Result<RsaPrivateKey, KeyError> {
    if !(1024..=8192).contains(&bits) || bits % 8 != 0 {
        return Err(KeyError::Encode(format!(
            "{bits} is not a usable RSA key size (1024 to 8192, a multiple of 8)"
        )));
    }
    RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(|e| KeyError::Encode(e.to_string()))
}

/// Encodes a key as PKCS#8 PEM; with a passphrase, as PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC.
pub fn to_pkcs8_pem(
    key: &RsaPrivateKey,
    passphrase: Option<&SecretString>,
) -> Result<Zeroizing<String>, KeyError> {
    let enc = |e: pkcs8::Error| KeyError::Encode(e.to_string());
    match passphrase {
        None => key.to_pkcs8_pem(LineEnding::LF).map_err(enc),
        Some(pass) => {
            let doc = key.to_pkcs8_der().map_err(enc)?;
            let info = pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()).map_err(enc)?;
            let mut salt = [0u8; 16];
            let mut iv = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut iv);
            let params =
                pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
                    .map_err(|e| KeyError::Encode(e.to_string()))?;
            let encrypted = info
                .encrypt_with_params(params, pass.expose_secret().as_bytes())
                .map_err(enc)?;
            encrypted
                .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
                .map_err(|e| KeyError::Encode(e.to_string()))
        }
    }
}

/// The key's size in bits.
pub fn key_bits(key: &RsaPrivateKey) -> usize {
    key.n().bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap()
    }

    #[test]
    fn pkcs8_round_trip_plain_and_encrypted() {
        let key = key();
        let pass = SecretString::from("correct horse".to_string());
        let pem = to_pkcs8_pem(&key, Some(&pass)).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_eq!(load_private_key(pem.as_bytes(), Some(&pass)).unwrap(), key);
        assert!(matches!(
            load_private_key(pem.as_bytes(), None),
            Err(KeyError::PassphraseRequired)
        ));
        let wrong = SecretString::from("wrong".to_string());
        assert!(matches!(
            load_private_key(pem.as_bytes(), Some(&wrong)),
            Err(KeyError::WrongPassphrase)
        ));
    }

    #[test]
    fn evp_bytes_to_key_matches_known_vector() {
        // openssl enc -aes-256-cbc -P -md md5 -pass pass:password -S 0001020304050607
        let k = evp_bytes_to_key(b"password", &[0, 1, 2, 3, 4, 5, 6, 7], 32);
        assert_eq!(k.len(), 32);
        let first = Md5::new()
            .chain_update(b"password")
            .chain_update([0, 1, 2, 3, 4, 5, 6, 7])
            .finalize();
        assert_eq!(&k[..16], first.as_slice());
    }

    #[test]
    fn garbage_and_wrong_kinds_are_named() {
        assert!(matches!(
            load_private_key(b"", None),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            load_private_key(b"hello world", None),
            Err(KeyError::Malformed(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            load_private_key(cert.as_bytes(), None),
            Err(KeyError::NotAPrivateKey(_))
        ));
        let trunc = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
        assert!(matches!(
            load_private_key(trunc.as_bytes(), None),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn passphrase_file_ends_at_first_newline() {
        let p = passphrase_from_file_contents(b"pw\r\nmore").unwrap();
        assert_eq!(p.expose_secret(), "pw");
        assert!(passphrase_from_file_contents(b"\nx").is_err());
    }
}
