//! The ledger a cross-process test runs on: a SQLite file, or a fresh database of the test PostgreSQL
//! (`ARCHIVECTL_TEST_POSTGRES_URL`, a superuser's URL; `cargo xtask ci` starts the server), dropped after.
//!
//! The programs under test get the URL without its password in `ARCHIVECTL_LEDGER` and the password in
//! `PGPASSWORD`, as a deployment would; the test itself reads the ledger through archive-db.
#![allow(dead_code)]

use std::process::Command;

use archive_db::{ArchiveFilter, Ledger, LedgerLocation, PostgresConfig};
use secrecy::SecretString;

/// The variable holding the test server's superuser URL.
pub const POSTGRES_URL: &str = "ARCHIVECTL_TEST_POSTGRES_URL";

/// A ledger for one test.
pub struct TestLedger {
    /// What `--ledger`/`ARCHIVECTL_LEDGER` is given: the file, or the URL without a password.
    pub arg: String,
    password: Option<String>,
    db: Option<PgDb>,
}

/// The test PostgreSQL's superuser URL split up.
struct Admin {
    user: String,
    password: String,
    host_port: String,
}

struct PgDb {
    admin: Admin,
    name: String,
}

fn admin() -> Option<Admin> {
    let url = match std::env::var(POSTGRES_URL) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            if std::env::var_os("ARCHIVECTL_SKIP_SERVER_TESTS").is_some_and(|v| v == "1") {
                eprintln!("skipped: {POSTGRES_URL} is not set (ARCHIVECTL_SKIP_SERVER_TESTS=1)");
                return None;
            }
            panic!(
                "{POSTGRES_URL} is not set: run the tests through `cargo xtask ci`, or start the servers with \
                 `cargo xtask servers` and export what it prints (ARCHIVECTL_SKIP_SERVER_TESTS=1 skips)"
            );
        }
    };
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .expect("a postgres:// URL");
    let (userinfo, rest) = rest.split_once('@').expect("user:password@host");
    let (user, password) = userinfo.split_once(':').expect("user:password");
    let host_port = rest.split('/').next().expect("host:port").to_string();
    Some(Admin {
        user: user.into(),
        password: password.into(),
        host_port,
    })
}

impl Admin {
    fn client(&self) -> postgres::Client {
        let (host, port) = self
            .host_port
            .split_once(':')
            .unwrap_or((&self.host_port, "5432"));
        postgres::Config::new()
            .host(host)
            .port(port.parse().expect("a port"))
            .user(&self.user)
            .password(&self.password)
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("the test PostgreSQL answers")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let mut c = self.admin.client();
        let _ = c.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

impl TestLedger {
    /// A SQLite file.
    pub fn sqlite(path: String) -> Self {
        Self {
            arg: path,
            password: None,
            db: None,
        }
    }

    /// A fresh, empty PostgreSQL database named after `tag` (and this process); `None` only when server
    /// tests are skipped explicitly.
    pub fn postgres(tag: &str) -> Option<Self> {
        let admin = admin()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .subsec_nanos();
        let name = format!("t_{tag}_{}_{nanos}", std::process::id());
        admin
            .client()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        let arg = format!(
            "postgres://{}@{}/{name}?sslmode=disable",
            admin.user, admin.host_port
        );
        Some(Self {
            arg,
            password: Some(admin.password.clone()),
            db: Some(PgDb { admin, name }),
        })
    }

    /// The same database reached at another URL (without a password; e.g. through a proxy). It does not own
    /// the database: the original drops it.
    pub fn with_arg(&self, arg: &str) -> Self {
        Self {
            arg: arg.to_string(),
            password: self.password.clone(),
            db: None,
        }
    }

    /// Whether it is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.password.is_some()
    }

    /// Points `cmd` at this ledger: `ARCHIVECTL_LEDGER`, and `PGPASSWORD` for PostgreSQL.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("ARCHIVECTL_LEDGER", &self.arg)
            .env_remove("PGPASSWORD");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }

    /// The password of the PostgreSQL ledger (tests only).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Opens it through archive-db.
    pub fn open(&self) -> Ledger {
        let location = match &self.password {
            None => LedgerLocation::Sqlite(self.arg.clone().into()),
            Some(p) => LedgerLocation::Postgres(
                PostgresConfig::from_url(&self.arg)
                    .expect("the URL")
                    .with_password(SecretString::from(p.clone())),
            ),
        };
        Ledger::open_location(&location).expect("the ledger opens")
    }

    /// The ids of every archive in it.
    pub fn archive_ids(&self) -> Vec<String> {
        self.open()
            .list(&ArchiveFilter::default())
            .expect("list")
            .into_iter()
            .map(|r| r.id)
            .collect()
    }
}
