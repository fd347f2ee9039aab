//! Loading the customer's RSA private key in every form OpenSSL writes, and writing keys we generate.
//!
//! Accepted, PEM or DER:
//! * PKCS#1 (`BEGIN RSA PRIVATE KEY`), plain or traditionally encrypted (`Proc-Type: 4,ENCRYPTED` with
//!   `DEK-Info` AES-128/192/256-CBC, DES-EDE3-CBC or DES-CBC, key from `EVP_BytesToKey` with MD5);
//! * PKCS#8 (`BEGIN PRIVATE KEY`);
//! * encrypted PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`): PBES2 with PBKDF2 (HMAC-SHA1 or HMAC-SHA256) or scrypt,
//!   and AES-CBC or DES-EDE3-CBC, which covers what OpenSSL 1.x and 3.x `req -keyout`/`pkcs8 -topk8` write.
//!
//! Refused by name ([`KeyError::LegacyPbe`]), before any passphrase is asked for: encrypted PKCS#8 with a
//! legacy PBES1 (PKCS#5 v1.5) or PKCS#12 PBE scheme, what `openssl pkcs8 -topk8 -v1 ...` writes; the error
//! gives the `openssl pkcs8 -topk8 -v2 aes-256-cbc` command that converts the key to PBES2.
//!
//! Written: PKCS#8 PEM, unencrypted or PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC, which OpenSSL 3.0 reads.

use std::fmt;

use base64::Engine as _;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use md5::{Digest, Md5};
use pkcs1::DecodeRsaPrivateKey;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{PrivateKey, traits::PublicKeyParts};
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
    /// Encrypted PKCS#8 with a legacy PBES1 (PKCS#5 v1.5) or PKCS#12 PBE scheme (`openssl pkcs8 -v1`): weak, and
    /// not read here. `convert` is the OpenSSL command that rewrites the key as PBES2.
    #[error(
        "unsupported private key encryption: {scheme} is a legacy {family} scheme (`openssl pkcs8 -v1`), \
         which is not supported (only PBES2 is); convert the key with `{convert}`"
    )]
    LegacyPbe {
        /// The scheme's name, e.g. `pbeWithSHAAnd3-KeyTripleDES-CBC`.
        scheme: String,
        /// `PBES1 (PKCS#5 v1.5)` or `PKCS#12 PBE`.
        family: &'static str,
        /// The conversion command, e.g. `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEW.pem`.
        convert: String,
    },
    /// Not a key at all, or a damaged one.
    #[error("not a readable private key: {0}")]
    Malformed(String),
    /// Generating or encoding a key failed.
    #[error("could not generate or encode the key: {0}")]
    Encode(String),
    /// A passphrase file that holds no usable passphrase.
    #[error("{0}")]
    PassphraseFile(String),
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
/// # let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
/// let pem = keys::to_pkcs8_pem(&key, None).unwrap();
/// let loaded = keys::load_private_key(pem.as_bytes(), None).unwrap();
/// assert_eq!(loaded, key);
/// ```
pub fn load_private_key(
    bytes: &[u8],
    passphrase: Option<&SecretString>,
) -> Result<PrivateKey, KeyError> {
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
) -> Result<PrivateKey, KeyError> {
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
                PrivateKey::from_pkcs1_der(&der).map_err(|_| KeyError::WrongPassphrase)
            } else {
                PrivateKey::from_pkcs1_der(&block.der)
                    .map_err(|e| KeyError::Malformed(format!("PKCS#1: {e}")))
            }
        }
        "PRIVATE KEY" => load_pkcs8(&block.der),
        "ENCRYPTED PRIVATE KEY" => load_encrypted_pkcs8(&block.der, passphrase, KeyForm::Pem),
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

fn load_der(der: &[u8], passphrase: Option<&SecretString>) -> Result<PrivateKey, KeyError> {
    if pkcs8::PrivateKeyInfoRef::try_from(der).is_ok() {
        return load_pkcs8(der);
    }
    if let Ok(key) = PrivateKey::from_pkcs1_der(der) {
        return Ok(key);
    }
    // Not `EncryptedPrivateKeyInfo::try_from`: it fails on the PKCS#12 PBE algorithms, which must be named.
    if encryption_algorithm(der).is_some() {
        return load_encrypted_pkcs8(der, passphrase, KeyForm::Der);
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

fn load_pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| KeyError::Malformed(format!("PKCS#8: {e}")))?;
    let oid = info.algorithm.oid.to_string();
    if oid != OID_RSA {
        return Err(KeyError::NotRsa(algorithm_name(&oid)));
    }
    PrivateKey::from_pkcs8_der(der).map_err(|e| KeyError::Malformed(format!("PKCS#8 RSA key: {e}")))
}

/// How the key file was encoded, for the conversion command of [`KeyError::LegacyPbe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyForm {
    Pem,
    Der,
}

/// The encryption algorithm of a DER `EncryptedPrivateKeyInfo` (`SEQUENCE { AlgorithmIdentifier, OCTET STRING }`),
/// read without interpreting the algorithm's parameters (which the `pkcs8` crate fails on for PKCS#12 PBE).
fn encryption_algorithm(der: &[u8]) -> Option<der::asn1::ObjectIdentifier> {
    use der::Reader as _;
    let mut reader = der::SliceReader::new(der).ok()?;
    let oid = reader
        .sequence(|r| {
            let algorithm: spki::AlgorithmIdentifierRef<'_> = r.decode()?;
            r.decode::<&der::asn1::OctetStringRef>()?;
            Ok::<_, der::Error>(algorithm.oid)
        })
        .ok()?;
    reader.finish().ok()?;
    Some(oid)
}

const PBES1: &str = "PBES1 (PKCS#5 v1.5)";
const PKCS12_PBE: &str = "PKCS#12 PBE";
/// The OID arc of the PKCS#12 PBE algorithms (`pkcs-12PbeIds`).
const PKCS12_PBE_ARC: &str = "1.2.840.113549.1.12.1.";

/// The legacy PBES1 / PKCS#12 PBE schemes (RFC 8018 appendix A.3, RFC 7292 appendix C): OID, name, family, and
/// whether OpenSSL 3 needs its legacy provider to decrypt it (DES, RC2, RC4, MD2, MD5 do).
const LEGACY_SCHEMES: &[(&str, &str, &str, bool)] = &[
    ("1.2.840.113549.1.5.1", "pbeWithMD2AndDES-CBC", PBES1, true),
    ("1.2.840.113549.1.5.3", "pbeWithMD5AndDES-CBC", PBES1, true),
    ("1.2.840.113549.1.5.4", "pbeWithMD2AndRC2-CBC", PBES1, true),
    ("1.2.840.113549.1.5.6", "pbeWithMD5AndRC2-CBC", PBES1, true),
    (
        "1.2.840.113549.1.5.10",
        "pbeWithSHA1AndDES-CBC",
        PBES1,
        true,
    ),
    (
        "1.2.840.113549.1.5.11",
        "pbeWithSHA1AndRC2-CBC",
        PBES1,
        true,
    ),
    (
        "1.2.840.113549.1.12.1.1",
        "pbeWithSHAAnd128BitRC4",
        PKCS12_PBE,
        true,
    ),
    (
        "1.2.840.113549.1.12.1.2",
        "pbeWithSHAAnd40BitRC4",
        PKCS12_PBE,
        true,
    ),
    (
        "1.2.840.113549.1.12.1.3",
        "pbeWithSHAAnd3-KeyTripleDES-CBC",
        PKCS12_PBE,
        false,
    ),
    (
        "1.2.840.113549.1.12.1.4",
        "pbeWithSHAAnd2-KeyTripleDES-CBC",
        PKCS12_PBE,
        false,
    ),
    (
        "1.2.840.113549.1.12.1.5",
        "pbeWithSHAAnd128BitRC2-CBC",
        PKCS12_PBE,
        true,
    ),
    (
        "1.2.840.113549.1.12.1.6",
        "pbeWithSHAAnd40BitRC2-CBC",
        PKCS12_PBE,
        true,
    ),
];

/// [`KeyError::LegacyPbe`] if `oid` is a PBES1 or PKCS#12 PBE algorithm, with the command that converts the key.
fn legacy_pbe_error(oid: &str, form: KeyForm) -> Option<KeyError> {
    let (scheme, family, needs_legacy_provider) =
        match LEGACY_SCHEMES.iter().find(|(known, ..)| *known == oid) {
            Some(&(_, name, family, legacy)) => (name.to_owned(), family, legacy),
            // A PKCS#12 PBE algorithm no one uses: refused by its family all the same.
            None if oid.starts_with(PKCS12_PBE_ARC) => (format!("OID {oid}"), PKCS12_PBE, true),
            None => return None,
        };
    let mut convert = String::from("openssl pkcs8 -topk8 -v2 aes-256-cbc");
    if needs_legacy_provider {
        // OpenSSL 3 decrypts DES, RC2, RC4, MD2 and MD5 schemes only with its legacy provider.
        convert.push_str(" -provider legacy -provider default");
    }
    if form == KeyForm::Der {
        convert.push_str(" -inform DER");
    }
    convert.push_str(" -in KEY -out NEW.pem");
    Some(KeyError::LegacyPbe {
        scheme,
        family,
        convert,
    })
}

fn load_encrypted_pkcs8(
    der: &[u8],
    passphrase: Option<&SecretString>,
    form: KeyForm,
) -> Result<PrivateKey, KeyError> {
    // Before the full parse (which fails on PKCS#12 PBE) and before asking for a passphrase we cannot use.
    if let Some(err) =
        encryption_algorithm(der).and_then(|oid| legacy_pbe_error(&oid.to_string(), form))
    {
        return Err(err);
    }
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|e| KeyError::UnsupportedEncryption(format!("encrypted PKCS#8: {e}")))?;
    let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
    let doc = info
        .decrypt(pass.expose_secret().as_bytes())
        .map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
                ..
            })
            | pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { .. })
            | pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::NoPbes1CryptSupport) => {
                KeyError::UnsupportedEncryption(format!("encrypted PKCS#8: {e}"))
            }
            _ => KeyError::WrongPassphrase,
        })?;
    // A wrong passphrase can, rarely, still produce valid padding: the DER check below catches it.
    match pkcs8::PrivateKeyInfoRef::try_from(doc.as_bytes()) {
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
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "DES-EDE3-CBC" => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        _ => cbc::Decryptor::<des::Des>::new_from_slices(&key, &iv)
            .map_err(|_| KeyError::Malformed("key size".into()))?
            .decrypt_padded::<Pkcs7>(&mut buf)
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
        .map_err(|_| KeyError::PassphraseFile("the passphrase file is not UTF-8 text".into()))?;
    if text.is_empty() {
        return Err(KeyError::PassphraseFile(
            "the passphrase file's first line is empty".into(),
        ));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// The most a key, certificate, passphrase or secret file may hold (1 MiB: far more than any PEM key).
pub const MAX_SECRET_FILE: u64 = 1 << 20;

/// Reads a key or secret file into memory that is wiped when dropped: one buffer of the file's size, so
/// no reallocation leaves a copy behind. A file over [`MAX_SECRET_FILE`] is refused (`InvalidData`) rather
/// than read.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("secret");
/// std::fs::write(&path, "s3cret\n").unwrap();
/// let bytes = archive_core::keys::read_secret_file(&path).unwrap();
/// assert_eq!(&bytes[..], b"s3cret\n");
/// ```
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{size} bytes is too large for a key or secret file (at most {MAX_SECRET_FILE})"
            ),
        ));
    }
    // One more byte than the file has, so reaching its end needs no reallocation.
    let mut bytes = Zeroizing::new(Vec::with_capacity(size as usize + 1));
    let read = file.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes)?;
    if read as u64 > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file grew past the size of a key or secret file while being read",
        ));
    }
    Ok(bytes)
}

/// Generates an RSA key of `bits` bits (2048 is what the service's documentation uses and its maximum).
pub fn generate_rsa_key(bits: usize) -> Result<PrivateKey, KeyError> {
    if !(1024..=8192).contains(&bits) || !bits.is_multiple_of(8) {
        return Err(KeyError::Encode(format!(
            "{bits} is not a usable RSA key size (1024 to 8192, a multiple of 8)"
        )));
    }
    PrivateKey::new(&mut rand::rng(), bits).map_err(|e| KeyError::Encode(e.to_string()))
}

/// Encodes a key as PKCS#8 PEM; with a passphrase, as PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC.
pub fn to_pkcs8_pem(
    key: &PrivateKey,
    passphrase: Option<&SecretString>,
) -> Result<Zeroizing<String>, KeyError> {
    let enc = |e: pkcs8::Error| KeyError::Encode(e.to_string());
    match passphrase {
        None => key.to_pkcs8_pem(LineEnding::LF).map_err(enc),
        Some(pass) => {
            let doc = key.to_pkcs8_der().map_err(enc)?;
            let info = pkcs8::PrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(enc)?;
            let mut salt = [0u8; 16];
            let mut iv = [0u8; 16];
            rand::fill(&mut salt);
            rand::fill(&mut iv);
            let params = pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
                PBKDF2_ITERATIONS,
                &salt,
                iv,
            )
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
pub fn key_bits(key: &PrivateKey) -> usize {
    key.n().bit_width() as usize
}

#[cfg(test)]
mod tests;
