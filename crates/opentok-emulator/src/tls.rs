//! HTTPS for the emulator: a certificate chain and its key read from PEM files, and a listener that hands
//! axum TLS streams (rustls with the ring provider; no OpenSSL, no aws-lc). Clients that only speak HTTPS,
//! like the Vonage Python SDK, can then be pointed at the emulator, trusting its CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the emulator's TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or holds no PEM certificate.
    #[error("cannot read a PEM certificate from {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file cannot be read or holds no PEM private key.
    #[error("cannot read a PEM private key from {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, say).
    #[error("the TLS certificate and key cannot be used: {0}")]
    Config(String),
}

/// The server side of HTTPS: a certificate chain (leaf first) and its private key, from PEM files.
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

impl TlsConfig {
    /// Reads the chain from `cert` and the key (PKCS#8, PKCS#1 or SEC1) from `key`.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| TlsError::Certificate {
                path: cert.to_owned(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Certificate {
                path: cert.to_owned(),
                reason: "no CERTIFICATE block".into(),
            });
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// A TCP listener whose connections are TLS: what `axum::serve` takes instead of the plain listener.
pub(crate) struct TlsListener {
    pub(crate) tcp: TcpListener,
    pub(crate) tls: TlsConfig,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // As axum's own listener does: the error is usually a full file table; wait a little.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.tls.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::info!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The files [`self_signed`] writes: the CA certificate clients must trust, and the server's pair.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// `DIR/ca.pem`: the throwaway CA's certificate, for `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `NODE_EXTRA_CA_CERTS`.
    pub ca_cert: PathBuf,
    /// `DIR/server.pem`: the server certificate for `127.0.0.1` and `localhost`, signed by the CA.
    pub server_cert: PathBuf,
    /// `DIR/server.key`: its private key (PKCS#8, mode 0600).
    pub server_key: PathBuf,
}

fn build_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(format!("cannot make the throwaway certificates: {e}"))
}

/// Makes a throwaway CA and a server certificate for `127.0.0.1`, `::1` and `localhost` signed by it (RSA
/// 2048, valid for 7 days), writes them into `dir` (created if needed) and returns the paths. The CA's key is
/// never written: nothing else can be signed with it.
pub fn self_signed(dir: &Path) -> Result<SelfSigned, TlsError> {
    use archive_core::cert::Profile;
    use der::asn1::{Ia5String, OctetString};
    use der::{Decode, EncodePem, pem::LineEnding};
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::Validity;

    let write = |name: &str, text: &str| -> Result<PathBuf, TlsError> {
        let path = dir.join(name);
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| TlsError::Config(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| TlsError::Config(format!("cannot create {}: {e}", dir.display())))?;
    let mut rng = rand::rng();
    let spki = |key: &rsa::PrivateKey| -> Result<SubjectPublicKeyInfoOwned, TlsError> {
        let der = key
            .to_public_key()
            .to_public_key_der()
            .map_err(build_error)?;
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(build_error)
    };
    let serial = |n: u8| SerialNumber::new(&[n, rand::random::<u8>() | 1, rand::random()]);
    let validity = Validity::from_now(Duration::from_secs(7 * 86_400)).map_err(build_error)?;

    let ca_key = rsa::PrivateKey::new(&mut rng, 2048).map_err(build_error)?;
    let ca_name = Name::from_str("CN=opentok-emulator throwaway CA").map_err(build_error)?;
    let ca_signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(ca_key.clone());
    let ca = CertificateBuilder::new(
        Profile::Root {
            subject: ca_name.clone(),
        },
        serial(1).map_err(build_error)?,
        validity,
        spki(&ca_key)?,
    )
    .map_err(build_error)?
    .build::<_, rsa::pkcs1v15::Signature>(&ca_signer)
    .map_err(build_error)?;

    let server_key = rsa::PrivateKey::new(&mut rng, 2048).map_err(build_error)?;
    let alt_names = SubjectAltName(vec![
        GeneralName::IpAddress(OctetString::new([127, 0, 0, 1]).map_err(build_error)?),
        GeneralName::IpAddress(
            OctetString::new(std::net::Ipv6Addr::LOCALHOST.octets()).map_err(build_error)?,
        ),
        GeneralName::DnsName(Ia5String::new("localhost").map_err(build_error)?),
    ]);
    let server = CertificateBuilder::new(
        Profile::Leaf {
            issuer: ca_name,
            subject: Name::from_str("CN=127.0.0.1").map_err(build_error)?,
            enable_key_encipherment: true,
            subject_alt_name: Some(alt_names),
        },
        serial(2).map_err(build_error)?,
        validity,
        spki(&server_key)?,
    )
    .map_err(build_error)?
    .build::<_, rsa::pkcs1v15::Signature>(&ca_signer)
    .map_err(build_error)?;

    let key_pem = server_key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(build_error)?;
    Ok(SelfSigned {
        ca_cert: write("ca.pem", &ca.to_pem(LineEnding::LF).map_err(build_error)?)?,
        server_cert: write(
            "server.pem",
            &server.to_pem(LineEnding::LF).map_err(build_error)?,
        )?,
        server_key: write("server.key", &key_pem)?,
    })
}
