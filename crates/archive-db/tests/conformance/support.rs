//! The back ends the suite runs on: a fresh SQLite file in a temporary directory, or a fresh PostgreSQL
//! database made with `CREATE DATABASE` on the server of `ARCHIVECTL_TEST_POSTGRES_URL` (a superuser's URL
//! with its password; test code may read it, the product never takes one in a URL) and dropped afterwards.
//! Without that variable a PostgreSQL test fails, saying so — unless `ARCHIVECTL_SKIP_SERVER_TESTS=1`.

use std::sync::atomic::{AtomicU64, Ordering};

use archive_db::secrecy::SecretString;
use archive_db::{Backend, Ledger, LedgerLocation, PostgresConfig};

/// The variable naming the test server.
pub const POSTGRES_URL_VAR: &str = "ARCHIVECTL_TEST_POSTGRES_URL";

/// One test's ledger location, removed when dropped.
pub struct TestDb {
    location: LedgerLocation,
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database { admin: String, name: String },
}

/// The server's superuser URL split into a password-less config and the password.
pub fn server() -> Option<(PostgresConfig, SecretString, String)> {
    let url = match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var("ARCHIVECTL_SKIP_SERVER_TESTS").as_deref() == Ok("1") {
                eprintln!("skipped: no {POSTGRES_URL_VAR} (ARCHIVECTL_SKIP_SERVER_TESTS=1)");
                return None;
            }
            panic!(
                "this test needs PostgreSQL: set {POSTGRES_URL_VAR}=postgres://USER:PASSWORD@127.0.0.1:PORT/postgres \
                 (a superuser; `cargo xtask` starts one), or ARCHIVECTL_SKIP_SERVER_TESTS=1 to skip"
            );
        }
    };
    let mut parsed = url::Url::parse(&url).expect("the test server's URL");
    let password = parsed.password().unwrap_or_default().to_owned();
    parsed.set_password(None).expect("a URL with a host");
    let config = PostgresConfig::from_url(parsed.as_str())
        .expect("the test server's URL")
        .with_password(SecretString::from(password.clone()));
    Some((config, SecretString::from(password), url))
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A database of our own on the test server, with its config (password included).
pub fn fresh_database() -> Option<(PostgresConfig, String, String)> {
    let (_, _, admin) = server()?;
    let name = format!(
        "archivectl_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    off_runtime(|| {
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test server");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
    });
    let mut parsed = url::Url::parse(&admin).expect("URL");
    let password = parsed.password().unwrap_or_default().to_owned();
    parsed.set_password(None).expect("host");
    parsed.set_path(&name);
    let config = PostgresConfig::from_url(&format!(
        "{}?sslmode=disable",
        parsed.as_str().trim_end_matches('?')
    ))
    .expect("config")
    .with_password(SecretString::from(password));
    Some((config, admin, name))
}

/// Drops a test database (closing whatever connections are still on it).
pub fn drop_database(admin: &str, name: &str) {
    off_runtime(|| {
        if let Ok(mut client) = postgres::Client::connect(admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    });
}

/// Runs `f` on a thread of its own: the test's own sync PostgreSQL client must not run inside the tokio
/// runtime of a `#[tokio::test]` (it would panic, which is what the ledger's own client is built to avoid).
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("the helper thread"))
}

impl TestDb {
    /// A new SQLite file.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = LedgerLocation::Sqlite(dir.path().join("ledger.sqlite3"));
        Self {
            location,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new PostgreSQL database (`None`: skipped, see the module).
    pub fn postgres() -> Option<Self> {
        let (config, admin, name) = fresh_database()?;
        Some(Self {
            location: LedgerLocation::Postgres(config),
            backend: Backend::Postgres,
            cleanup: Cleanup::Database { admin, name },
        })
    }

    /// A new, empty ledger location of the same back end.
    #[allow(dead_code)]
    pub fn another(&self) -> Self {
        match self.backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().expect("the server is still there"),
        }
    }

    /// Opens a new connection to the ledger (creating and migrating it the first time).
    pub fn open(&self) -> Ledger {
        Ledger::open_location(&self.location).expect("open the test ledger")
    }

    /// Where the ledger is.
    #[allow(dead_code)]
    pub fn location(&self) -> &LedgerLocation {
        &self.location
    }

    /// Which back end.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection of the test's own to the PostgreSQL database (to look at it beside the ledger).
    pub fn pg_client(&self) -> Option<postgres::Client> {
        match &self.cleanup {
            Cleanup::Database { admin, name } => {
                let mut url = url::Url::parse(admin).expect("URL");
                url.set_path(name);
                Some(postgres::Client::connect(url.as_str(), postgres::NoTls).expect("connect"))
            }
            Cleanup::Dir(_) => None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Database { admin, name } = &self.cleanup {
            drop_database(admin, name);
        }
    }
}

/// Runs each named check (a `fn(&TestDb)` of the parent module) on both back ends: `sqlite::NAME` and
/// `postgres::NAME` tests.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::support::TestDb::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::support::TestDb::postgres() {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}
