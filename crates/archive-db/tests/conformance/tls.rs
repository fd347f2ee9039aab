//! PostgreSQL only: TLS to the database as `sslmode` says, end to end. The test server speaks plain TCP, so
//! the test puts a TLS-terminating proxy in front of it (PostgreSQL's `SSLRequest` answered `S`, then rustls
//! with `tls/server.pem`, a certificate for `localhost` only, issued by the test CA `tls/ca.pem`); the proxy
//! refuses any connection that does not start TLS, so a connection that works went through TLS.

use std::path::PathBuf;

use archive_db::secrecy::{ExposeSecret, SecretString};
use archive_db::{DbError, Ledger, LedgerLocation, PostgresConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::concurrency::event;
use crate::support::{self, TestDb};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance/tls")
        .join(name)
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Starts the TLS-terminating proxy to `upstream` on a thread of its own; its port.
fn tls_proxy(upstream: String) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(fixture("server-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    if socket.read_exact(&mut first).await.is_err() || first != SSL_REQUEST {
                        return; // Not TLS: refused.
                    }
                    if socket.write_all(b"S").await.is_err() {
                        return;
                    }
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
    });
    port
}

/// The test database through the proxy, at `host`, with `params` (sslmode and friends).
fn via(db: &TestDb, host: &str, port: u16, params: &str) -> LedgerLocation {
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let (_, password, _) = support::server().unwrap();
    let url = format!(
        "postgres://{}@{host}:{port}/{}?connect_timeout=5&{params}",
        direct.user(),
        direct.dbname()
    );
    LedgerLocation::Postgres(
        PostgresConfig::from_url(&url)
            .unwrap()
            .with_password(SecretString::from(password.expose_secret().to_owned())),
    )
}

fn works(location: &LedgerLocation) {
    let mut ledger =
        Ledger::open_location(location).unwrap_or_else(|e| panic!("{}: {e}", location.redacted()));
    ledger
        .record_event(&event(&location.redacted(), "started", ""))
        .unwrap();
}

fn fails(location: &LedgerLocation, expect: &str) -> DbError {
    let err = Ledger::open_location(location).expect_err(&location.redacted());
    assert!(
        err.to_string()
            .to_lowercase()
            .contains(&expect.to_lowercase()),
        "{}: {err}",
        location.redacted()
    );
    err
}

#[test]
fn sslmodes_are_honoured_over_a_real_tls_handshake() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let port = tls_proxy(format!("{}:{}", direct.host(), direct.port()));
    let ca = fixture("ca.pem");
    let root = format!("sslrootcert={}", ca.display());

    // verify-full: the chain against the given CA and the name: `localhost` is the certificate's name.
    works(&via(
        &db,
        "localhost",
        port,
        &format!("sslmode=verify-full&{root}"),
    ));
    // ...but 127.0.0.1 is not in it: refused; verify-ca checks the chain only, so it is accepted.
    fails(
        &via(
            &db,
            "127.0.0.1",
            port,
            &format!("sslmode=verify-full&{root}"),
        ),
        "tls",
    );
    works(&via(
        &db,
        "127.0.0.1",
        port,
        &format!("sslmode=verify-ca&{root}"),
    ));
    // The system's trust store does not know the test CA: verify-full and verify-ca refuse it.
    fails(&via(&db, "localhost", port, "sslmode=verify-full"), "tls");
    fails(&via(&db, "localhost", port, "sslmode=verify-ca"), "tls");
    // require and prefer encrypt without checking the certificate (as libpq without a root certificate).
    works(&via(&db, "127.0.0.1", port, "sslmode=require"));
    works(&via(&db, "127.0.0.1", port, "sslmode=prefer"));
    // disable speaks plain TCP, which this proxy refuses: proof that the others went through TLS.
    let err = Ledger::open_location(&via(&db, "127.0.0.1", port, "sslmode=disable")).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // A root certificate file that is missing is a clear error.
    fails(
        &via(
            &db,
            "localhost",
            port,
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        "sslrootcert",
    );
    assert_eq!(
        db.open().counts().unwrap().1,
        4,
        "the four connections that worked recorded their event"
    );
}
