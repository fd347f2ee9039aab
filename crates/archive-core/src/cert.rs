//! X.509 certificates: generating the self-signed one the service needs, and inspecting what a user has.
//!
//! The service takes an RSA certificate of at most 2048 bits, sent in JSON either as base64 of the PEM
//! (what `openssl enc -base64 -A` makes) or as the PEM with its newlines written `\n`. [`Certificate::parse`]
//! reads all of these (and DER); [`Certificate::check_service_acceptance`] says whether the service will take it.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use der::{Decode, DecodePem, Encode, EncodePem, Tagged, pem::LineEnding};
use rsa::{PrivateKey, PublicKey, traits::PublicKeyParts};
use sha2::{Digest, Sha256};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::{
    builder::{Builder, CertificateBuilder, profile::BuilderProfile},
    certificate::TbsCertificate,
    ext::{
        Extension, ToExtension,
        pkix::{
            AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectAltName,
            SubjectKeyIdentifier,
        },
    },
    name::Name,
    serial_number::SerialNumber,
    time::Validity,
};

/// The largest RSA key the service accepts in a certificate.
pub const SERVICE_MAX_KEY_BITS: usize = 2048;

const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// The largest RSA key [`Certificate::rsa_public_key`] reads (rsa 0.9's limit, which it keeps).
const MAX_READ_KEY_BITS: usize = 4096;

/// Why a certificate could not be read, made, or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Not a certificate in any form we read.
    #[error("not a readable X.509 certificate: {0}")]
    Malformed(String),
    /// The certificate's key is not RSA.
    #[error(
        "the certificate's key is not RSA ({0}); the service wraps passwords with RSA-OAEP only"
    )]
    NotRsa(String),
    /// The certificate's RSA key is larger than the service takes.
    #[error("the certificate's RSA key is {0} bits; the service accepts at most 2048")]
    KeyTooLarge(usize),
    /// Building the certificate failed.
    #[error("could not build the certificate: {0}")]
    Build(String),
}

/// A parsed X.509 certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    cert: x509_cert::Certificate,
    der: Vec<u8>,
}

/// What `archivectl cert inspect` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateInfo {
    /// Subject distinguished name (RFC 4514).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Whether `not_after` has passed.
    pub expired: bool,
    /// "RSA", or the key algorithm's OID.
    pub key_algorithm: String,
    /// RSA modulus size in bits.
    pub key_bits: Option<usize>,
    /// SHA-256 of the DER, as `AA:BB:...` (what `openssl x509 -fingerprint -sha256` prints).
    pub sha256_fingerprint: String,
    /// Whether the service will accept it (RSA, at most 2048 bits).
    pub service_accepts: bool,
    /// Why not, if it will not.
    pub service_rejection: Option<String>,
    /// Whether it matches the private key given, if one was.
    pub matches_key: Option<bool>,
    /// The value for the JSON `certificate` field: base64 of the PEM.
    pub json_base64: String,
    /// The other accepted value: the PEM with newlines written `\n`.
    pub json_escaped: String,
}

impl Certificate {
    /// Reads a certificate as PEM, base64 of PEM, `\n`-escaped PEM (as in JSON), or DER.
    ///
    /// ```
    /// use archive_core::cert::Certificate;
    /// # let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
    /// let cert = Certificate::generate_self_signed(&key, "CN=example", 365).unwrap();
    /// let b64 = cert.to_json_base64();
    /// assert_eq!(Certificate::parse(b64.as_bytes()).unwrap().sha256_fingerprint(), cert.sha256_fingerprint());
    /// let escaped = cert.to_json_escaped();
    /// assert!(Certificate::parse(escaped.as_bytes()).is_ok());
    /// ```
    pub fn parse(input: &[u8]) -> Result<Self, CertError> {
        if let Ok(text) = std::str::from_utf8(input) {
            let text = text.trim().trim_matches('"');
            if text.contains("-----BEGIN") {
                let pem = text
                    .replace("\\r", "")
                    .replace("\\n", "\n")
                    .replace("\\/", "/");
                return Self::from_pem(&pem);
            }
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            if !compact.is_empty()
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&compact)
            {
                if let Ok(inner) = std::str::from_utf8(&decoded)
                    && inner.contains("-----BEGIN")
                {
                    return Self::from_pem(inner.trim());
                }
                if let Ok(c) = Self::from_der(&decoded) {
                    return Ok(c);
                }
            }
        }
        Self::from_der(input)
            .map_err(|_| CertError::Malformed("neither PEM, base64 of PEM, nor DER".into()))
    }

    fn from_pem(pem: &str) -> Result<Self, CertError> {
        let start = pem.find("-----BEGIN CERTIFICATE-----").ok_or_else(|| {
            CertError::Malformed("PEM without a 'BEGIN CERTIFICATE' block (is this a key?)".into())
        })?;
        let end_marker = "-----END CERTIFICATE-----";
        let end = pem[start..]
            .find(end_marker)
            .ok_or_else(|| CertError::Malformed("PEM certificate without an END line".into()))?;
        let block = &pem[start..start + end + end_marker.len()];
        let cert = x509_cert::Certificate::from_pem(block)
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let der = cert
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        Ok(Self { cert, der })
    }

    fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        Ok(Self {
            cert,
            der: der.to_vec(),
        })
    }

    /// Makes a self-signed certificate for `key`, valid from now for `days` days, as
    /// `openssl req -new -x509 -days N` does. `subject` is an RFC 4514 name such as `CN=archives,O=Example`.
    pub fn generate_self_signed(
        key: &PrivateKey,
        subject: &str,
        days: u32,
    ) -> Result<Self, CertError> {
        if days == 0 {
            return Err(CertError::Build("--days must be at least 1".into()));
        }
        let subject = Name::from_str(subject).map_err(|e| {
            CertError::Build(format!("subject '{subject}' is not an RFC 4514 name: {e}"))
        })?;
        let mut serial = [0u8; 16];
        rand::fill(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x01;
        let serial = SerialNumber::new(&serial).map_err(|e| CertError::Build(e.to_string()))?;
        let validity = Validity::from_now(Duration::from_secs(u64::from(days) * 86_400))
            .map_err(|e| CertError::Build(e.to_string()))?;
        let spki_der = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| CertError::Build(e.to_string()))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())
            .map_err(|e| CertError::Build(e.to_string()))?;
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
        let builder = CertificateBuilder::new(Profile::Root { subject }, serial, validity, spki)
            .map_err(|e| CertError::Build(e.to_string()))?;
        let cert = builder
            .build::<_, rsa::pkcs1v15::Signature>(&signer)
            .map_err(|e| CertError::Build(e.to_string()))?;
        let der = cert.to_der().map_err(|e| CertError::Build(e.to_string()))?;
        Ok(Self { cert, der })
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        // Encoding a certificate we parsed or built cannot fail.
        self.cert.to_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Base64 of the PEM: the JSON `certificate` value the service documents first.
    pub fn to_json_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_pem())
    }

    /// The PEM with newlines written as the two characters `\n`, the other documented form.
    pub fn to_json_escaped(&self) -> String {
        self.to_pem().trim_end().replace('\n', "\\n")
    }

    /// The certificate's RSA public key.
    pub fn rsa_public_key(&self) -> Result<PublicKey, CertError> {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let oid = spki.algorithm.oid.to_string();
        if oid != OID_RSA {
            return Err(CertError::NotRsa(key_algorithm_name(&oid)));
        }
        // Not `PublicKey::from_public_key_der`: since rsa 0.10 it refuses moduli under 1024 bits and takes up to
        // 8192; a certificate is read as before (rsa 0.9's rule: any size up to 4096 bits), so a small key is
        // reported as weak, not as unreadable.
        let malformed =
            || CertError::Malformed(format!("RSA public key: {}", spki::Error::KeyMalformed));
        // rsaEncryption's parameters must be NULL (RFC 3279 2.3.1), as rsa's own decoding requires.
        let null_parameters = spki
            .algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag() == der::Tag::Null && p.value().is_empty());
        if !null_parameters {
            return Err(malformed());
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .and_then(|bytes| pkcs1::RsaPublicKeyRef::from_der(bytes).ok())
            .ok_or_else(malformed)?;
        let uint = |bytes: &[u8]| {
            let bits = u32::try_from(bytes.len()).ok()?.checked_mul(8)?;
            rsa::BoxedUint::from_be_slice(bytes, bits).ok()
        };
        let n = uint(key.modulus.as_bytes()).ok_or_else(malformed)?;
        let e = uint(key.public_exponent.as_bytes()).ok_or_else(malformed)?;
        PublicKey::new_with_size_limits(n, e, 0..=MAX_READ_KEY_BITS).map_err(|_| malformed())
    }

    /// Checks what the service checks: an RSA key of at most 2048 bits.
    pub fn check_service_acceptance(&self) -> Result<(), CertError> {
        let bits = self.rsa_public_key()?.n().bit_width() as usize;
        if bits > SERVICE_MAX_KEY_BITS {
            return Err(CertError::KeyTooLarge(bits));
        }
        Ok(())
    }

    /// Whether `key` is the private half of this certificate's key.
    pub fn matches(&self, key: &PrivateKey) -> bool {
        self.rsa_public_key()
            .is_ok_and(|p| p == key.to_public_key())
    }

    /// SHA-256 of the DER as `AA:BB:...`.
    pub fn sha256_fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.der);
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The end of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// Everything `cert inspect` shows; `key`, if given, is checked against the certificate.
    pub fn info(&self, key: Option<&PrivateKey>) -> CertificateInfo {
        let tbs = self.cert.tbs_certificate();
        let oid = tbs.subject_public_key_info().algorithm.oid.to_string();
        let rejection = self.check_service_acceptance().err().map(|e| e.to_string());
        CertificateInfo {
            subject: tbs.subject().to_string(),
            issuer: tbs.issuer().to_string(),
            serial: hex::encode(tbs.serial_number().as_bytes()),
            not_before: tbs.validity().not_before.to_date_time().to_string(),
            not_after: tbs.validity().not_after.to_date_time().to_string(),
            expired: self.not_after() < SystemTime::now(),
            key_algorithm: if oid == OID_RSA {
                "RSA".into()
            } else {
                key_algorithm_name(&oid)
            },
            key_bits: self
                .rsa_public_key()
                .ok()
                .map(|k| k.n().bit_width() as usize),
            sha256_fingerprint: self.sha256_fingerprint(),
            service_accepts: rejection.is_none(),
            service_rejection: rejection,
            matches_key: key.map(|k| self.matches(k)),
            json_base64: self.to_json_base64(),
            json_escaped: self.to_json_escaped(),
        }
    }
}

/// The X.509 v3 extensions of the certificates we build, for `x509_cert`'s [`CertificateBuilder`].
///
/// These are the extensions `x509-cert` 0.2's own `Profile::Root` and `Profile::Leaf` wrote, in the same order
/// and with the same criticality, so that the certificates stay what they were: 0.3's profiles follow the
/// CA/Browser Forum's baseline requirements instead (another extension set, and rules on the subject's
/// attributes that a name such as `CN=archives` does not meet).
#[derive(Debug, Clone)]
pub enum Profile {
    /// A self-signed CA certificate for `subject`: subject key identifier, basic constraints (a CA, no path
    /// length limit), key usage `keyCertSign` and `cRLSign`.
    Root {
        /// Subject (and issuer) name.
        subject: Name,
    },
    /// An end-entity certificate for `subject`, issued by `issuer`: subject and authority key identifiers,
    /// basic constraints (not a CA), key usage `digitalSignature` and `nonRepudiation` (and
    /// `keyEncipherment` when asked for), then the subject alternative names, if any.
    Leaf {
        /// The issuing CA's name.
        issuer: Name,
        /// Subject name.
        subject: Name,
        /// Whether key usage includes `keyEncipherment` (TLS with RSA key exchange).
        enable_key_encipherment: bool,
        /// The subject alternative names (DNS names, IP addresses), if any.
        subject_alt_name: Option<SubjectAltName>,
    },
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, subject: &Name) -> Name {
        match self {
            Self::Root { .. } => subject.clone(),
            Self::Leaf { issuer, .. } => issuer.clone(),
        }
    }

    fn get_subject(&self) -> Name {
        match self {
            Self::Root { subject } | Self::Leaf { subject, .. } => subject.clone(),
        }
    }

    fn build_extensions(
        &self,
        spk: spki::SubjectPublicKeyInfoRef<'_>,
        issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let mut extensions: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        extensions.push(ski.to_extension(subject, &extensions)?);
        let (ca, usages) = match self {
            Self::Root { .. } => (true, KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            Self::Leaf {
                enable_key_encipherment,
                ..
            } => {
                let aki = AuthorityKeyIdentifier::try_from(issuer_spk)?;
                extensions.push(aki.to_extension(subject, &extensions)?);
                let mut usages = KeyUsages::DigitalSignature | KeyUsages::NonRepudiation;
                if *enable_key_encipherment {
                    usages |= KeyUsages::KeyEncipherment;
                }
                (false, usages)
            }
        };
        let constraints = BasicConstraints {
            ca,
            path_len_constraint: None,
        };
        extensions.push(constraints.to_extension(subject, &extensions)?);
        extensions.push(KeyUsage(usages).to_extension(subject, &extensions)?);
        if let Self::Leaf {
            subject_alt_name: Some(names),
            ..
        } = self
        {
            extensions.push(names.to_extension(subject, &extensions)?);
        }
        Ok(extensions)
    }
}

fn key_algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.2.1" => "EC".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        other => format!("OID {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_round_trips_in_every_json_form() {
        let key = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let cert =
            Certificate::generate_self_signed(&key, "CN=archivectl test,O=Example", 30).unwrap();
        assert!(cert.matches(&key));
        cert.check_service_acceptance().unwrap();
        for form in [
            cert.to_pem(),
            cert.to_json_base64(),
            cert.to_json_escaped(),
            format!("\"{}\"", cert.to_json_escaped()),
        ] {
            let again = Certificate::parse(form.as_bytes()).unwrap();
            assert_eq!(again.der(), cert.der());
        }
        assert_eq!(Certificate::parse(cert.der()).unwrap().der(), cert.der());
        let info = cert.info(Some(&key));
        assert_eq!(info.key_bits, Some(1024));
        assert_eq!(info.matches_key, Some(true));
        assert!(info.subject.contains("CN=archivectl test"));
        assert!(!info.expired);
        assert_eq!(info.sha256_fingerprint.len(), 32 * 3 - 1);
        let other = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        assert_eq!(cert.info(Some(&other)).matches_key, Some(false));
    }

    /// A certificate made by openssl in `dir` for a new RSA key of `bits` bits.
    fn openssl_certificate(dir: &std::path::Path, bits: u32) -> Certificate {
        let ok = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", &format!("rsa:{bits}"), "-nodes"])
            .args([
                "-keyout", "k.pem", "-out", "c.pem", "-days", "2", "-subj", "/CN=size",
            ])
            .current_dir(dir)
            .output()
            .expect("openssl (3.x) must be on PATH: this test makes certificates with it")
            .status
            .success();
        assert!(ok, "openssl req for a {bits}-bit key");
        Certificate::parse(&std::fs::read(dir.join("c.pem")).unwrap()).unwrap()
    }

    #[test]
    fn certificate_keys_are_read_up_to_4096_bits_however_small() {
        // rsa 0.10's own decoding refuses keys under 1024 bits; a weak key is still read (and reported by its
        // size), and one over 4096 bits is still unreadable, as with rsa 0.9.
        let dir = tempfile::tempdir().unwrap();
        let small = openssl_certificate(dir.path(), 512);
        assert_eq!(small.info(None).key_bits, Some(512));
        small.check_service_acceptance().unwrap();
        let big = openssl_certificate(dir.path(), 4104);
        assert!(matches!(
            big.check_service_acceptance(),
            Err(CertError::Malformed(m)) if m.contains("RSA public key")
        ));
    }

    #[test]
    fn an_rsa_key_whose_algorithm_parameters_are_not_null_is_malformed() {
        let key = PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let cert = Certificate::generate_self_signed(&key, "CN=params", 30).unwrap();
        // rsaEncryption's OID, then its NULL parameters: once in the certificate (the key's algorithm; the
        // signature's is sha256WithRSAEncryption).
        let rsa_null = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ];
        let der = cert.der().to_vec();
        let at = der
            .windows(rsa_null.len())
            .position(|w| w == rsa_null)
            .expect("the key's algorithm identifier");
        assert!(cert.rsa_public_key().is_ok());
        // The same length, other parameters: an empty OCTET STRING instead of NULL.
        let mut edited = der.clone();
        edited[at + 11] = 0x04;
        let edited = Certificate::parse(&edited).unwrap();
        assert!(matches!(
            edited.rsa_public_key(),
            Err(CertError::Malformed(m)) if m.contains("RSA public key")
        ));
        assert!(edited.check_service_acceptance().is_err());
        assert!(!edited.matches(&key));
    }

    #[test]
    fn garbage_and_keys_are_not_certificates() {
        assert!(matches!(
            Certificate::parse(b"hello"),
            Err(CertError::Malformed(_))
        ));
        assert!(Certificate::parse(b"").is_err());
        let key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(
            matches!(Certificate::parse(key_pem.as_bytes()), Err(CertError::Malformed(m)) if m.contains("key"))
        );
        assert!(
            Certificate::generate_self_signed(
                &PrivateKey::new(&mut rand::rng(), 1024).unwrap(),
                "not a name",
                1
            )
            .is_err()
        );
    }
}
