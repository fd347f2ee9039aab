//! PostgreSQL only: a database that is away. Requests fail with [`DbError::Unavailable`] (the receiver
//! answers 503) and never with a password in the message; once the server is back, the next call connects
//! again — the ledger does not stay broken. The "server" here is reached through a TCP proxy the test can
//! cut (every connection reset, new ones refused) and restore, as a restart or a network cut would.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use archive_db::secrecy::SecretString;
use archive_db::{DbError, GroupWriter, Ledger, LedgerLocation, PostgresConfig};

use crate::concurrency::{event, uid};
use crate::support::{self, TestDb};

/// A TCP proxy to the test server that can be cut and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = conns2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { port, up, conns }
    }

    /// The server goes away: every open connection is reset, new ones are closed at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The test database's config, reached through `proxy` instead of directly.
fn through(db: &TestDb, port: u16) -> (LedgerLocation, String) {
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let (_, password, _) = support::server().unwrap();
    let url = format!(
        "postgres://{}@127.0.0.1:{port}/{}?sslmode=disable&connect_timeout=2",
        direct.user(),
        direct.dbname()
    );
    use archive_db::secrecy::ExposeSecret;
    let secret = password.expose_secret().to_owned();
    let config = PostgresConfig::from_url(&url)
        .unwrap()
        .with_password(SecretString::from(secret.clone()));
    (LedgerLocation::Postgres(config), secret)
}

fn assert_unavailable(err: &DbError, password: &str) {
    let msg = err.to_string();
    assert!(err.is_unavailable(), "{msg}");
    assert!(msg.contains("unavailable"), "{msg}");
    assert!(password.is_empty() || !msg.contains(password), "{msg}");
}

#[test]
fn a_server_that_is_away_is_unavailable_and_the_ledger_reconnects_when_it_is_back() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let proxy = Proxy::start(format!("{}:{}", direct.host(), direct.port()));
    let (location, password) = through(&db, proxy.port);
    let mut ledger = Ledger::open_location(&location).unwrap();
    ledger
        .record_event(&event("before", "started", ""))
        .unwrap();

    proxy.cut();
    let err = ledger
        .record_event(&event("during", "started", ""))
        .unwrap_err();
    assert_unavailable(&err, &password);
    assert_unavailable(&ledger.counts().unwrap_err(), &password);
    assert_unavailable(&ledger.probe_write().unwrap_err(), &password);
    // Opening a new ledger while it is away: the same, naming the database but not the password.
    let err = Ledger::open_location(&location).unwrap_err();
    assert_unavailable(&err, &password);
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", proxy.port)),
        "{err}"
    );

    proxy.restore();
    // The next calls connect again.
    ledger.record_event(&event("after", "started", "")).unwrap();
    assert_eq!(ledger.counts().unwrap(), (2, 2));
    ledger.probe_write().unwrap();
    assert!(!ledger.contains(&uid("during")).unwrap());

    // A cut between calls (the server restarted while idle) is not even seen: the next write's BEGIN
    // finds the connection broken and connects again before anything was done.
    proxy.cut();
    proxy.restore();
    ledger
        .record_event(&event("after-restart", "started", ""))
        .unwrap();
    proxy.cut();
    proxy.restore();
    assert_eq!(ledger.counts().unwrap(), (3, 3));
}

#[test]
fn the_group_writer_answers_unavailable_while_the_server_is_away_and_commits_once_it_is_back() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let proxy = Proxy::start(format!("{}:{}", direct.host(), direct.port()));
    let (location, password) = through(&db, proxy.port);
    let writer = GroupWriter::start(Ledger::open_location(&location).unwrap());
    writer
        .submit(event("w-before", "started", ""))
        .wait()
        .unwrap();
    proxy.cut();
    for i in 0..3 {
        let err = writer
            .submit(event(&format!("w-during-{i}"), "started", ""))
            .wait()
            .unwrap_err();
        assert_unavailable(&err, &password);
    }
    let probe = futures_executor_block_on(writer.submitter().probe());
    assert_unavailable(&probe.unwrap_err(), &password);
    proxy.restore();
    // The service retries: now it is recorded.
    writer
        .submit(event("w-during-0", "started", ""))
        .wait()
        .unwrap();
    futures_executor_block_on(writer.submitter().probe()).unwrap();
    writer.shutdown().unwrap();
    let ledger = db.open();
    assert_eq!(ledger.counts().unwrap(), (2, 2));
}

/// Waits until `n` connections to the test database wait for a lock.
fn until_waiting(client: &mut ::postgres::Client, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} waiting, not {n}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_connection_cut_in_the_middle_of_a_transaction_is_retried_on_a_new_one() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let proxy = Proxy::start(format!("{}:{}", direct.host(), direct.port()));
    let (location, _) = through(&db, proxy.port);
    let mut ledger = Ledger::open_location(&location).unwrap();
    ledger.record_event(&event("warm", "started", "")).unwrap();
    // Hold the ledger's transaction in the middle (its insert waits for this lock)...
    let mut blocker = db.pg_client().unwrap();
    blocker
        .batch_execute("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
        .unwrap();
    let writer = std::thread::spawn(move || {
        ledger
            .record_event(&event("mid", "uploaded", r#","password":"ZTQy""#))
            .map(|outcome| (outcome, ledger))
    });
    let mut watcher = db.pg_client().unwrap();
    until_waiting(&mut watcher, 1);
    // ...then the server "restarts" under it: the connection is reset before COMMIT.
    proxy.cut();
    proxy.restore();
    // The ledger runs the transaction again on a new connection, which waits as well (the old one's
    // backend still holds the archive's lock until it notices its client is gone).
    until_waiting(&mut watcher, 2);
    blocker.batch_execute("ROLLBACK").unwrap();
    let (outcome, ledger) = writer.join().unwrap().unwrap();
    assert!(outcome.archive.unwrap().inserted);
    assert_eq!(ledger.counts().unwrap(), (2, 2), "recorded once");
    assert_eq!(
        ledger
            .archive(&uid("mid"))
            .unwrap()
            .unwrap()
            .password
            .as_deref(),
        Some("ZTQy")
    );
}

#[test]
fn a_server_that_does_not_answer_at_all_is_unavailable_at_open() {
    if support::server().is_none() {
        return;
    }
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = PostgresConfig::from_url(&format!(
        "postgres://nobody@127.0.0.1:{port}/nothing?sslmode=disable"
    ))
    .unwrap()
    .with_password(SecretString::from("not-this-one"));
    let err = Ledger::open_location(&LedgerLocation::Postgres(config)).unwrap_err();
    assert_unavailable(&err, "not-this-one");
    assert!(
        err.to_string()
            .contains(&format!("postgres://nobody@127.0.0.1:{port}/nothing")),
        "{err}"
    );
}

#[test]
fn a_wrong_password_is_refused_with_the_servers_reason_and_without_the_password() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let wrong = direct
        .clone()
        .with_password(SecretString::from("wrong-password-123"));
    let err = Ledger::open_location(&LedgerLocation::Postgres(wrong)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DbError::Refused(_)), "{msg}");
    assert!(!err.is_unavailable(), "retrying will not help: {msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(msg.contains(&direct.redacted()), "{msg}");
    assert!(!msg.contains("wrong-password-123"), "{msg}");
    // A database that does not exist: refused too, saying so.
    let url = format!(
        "postgres://{}@{}:{}/no_such_database_here?sslmode=disable",
        direct.user(),
        direct.host(),
        direct.port()
    );
    let (_, password, _) = support::server().unwrap();
    use archive_db::secrecy::ExposeSecret;
    let missing = PostgresConfig::from_url(&url)
        .unwrap()
        .with_password(SecretString::from(password.expose_secret().to_owned()));
    let err = Ledger::open_location(&LedgerLocation::Postgres(missing)).unwrap_err();
    assert!(matches!(err, DbError::Refused(_)), "{err}");
    assert!(err.to_string().contains("no_such_database_here"), "{err}");
}

#[test]
fn require_against_a_server_without_tls_is_refused_and_prefer_falls_back() {
    let Some(db) = TestDb::postgres() else { return };
    let LedgerLocation::Postgres(direct) = db.location() else {
        unreachable!()
    };
    let mut client = db.pg_client().unwrap();
    let ssl: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl == "on" {
        eprintln!("the test server has TLS on: this check is for a server without it");
        return;
    }
    let prefer = direct.clone().with_sslmode(archive_db::SslMode::Prefer);
    Ledger::open_location(&LedgerLocation::Postgres(prefer)).unwrap();
    for mode in [
        archive_db::SslMode::Require,
        archive_db::SslMode::VerifyFull,
    ] {
        let config = direct.clone().with_sslmode(mode);
        let err = Ledger::open_location(&LedgerLocation::Postgres(config)).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(
            err.to_string().to_lowercase().contains("tls"),
            "{mode:?}: {err}"
        );
    }
}

/// Polls a future to completion on this thread (the probe needs no runtime).
fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
