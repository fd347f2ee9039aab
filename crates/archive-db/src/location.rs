//! Where a ledger lives: a SQLite file (the embedded default) or a PostgreSQL database, and how to reach the
//! latter ([`PostgresConfig`]: host, port, user, database, `sslmode`, application name; the password is given
//! apart, never in the URL).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::DbError;

/// Where a ledger lives: a SQLite file (the embedded default) or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum LedgerLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresConfig),
}

impl LedgerLocation {
    /// `postgres://` or `postgresql://` → [`LedgerLocation::Postgres`] (see [`PostgresConfig::from_url`]; a
    /// password inside the URL is refused); anything else → a SQLite path.
    ///
    /// ```
    /// use archive_db::LedgerLocation;
    ///
    /// assert!(matches!(LedgerLocation::parse("/var/lib/archivectl/ledger.sqlite3").unwrap(), LedgerLocation::Sqlite(_)));
    /// let pg = LedgerLocation::parse("postgres://archivectl@db.internal/archives?sslmode=verify-full").unwrap();
    /// assert!(matches!(pg, LedgerLocation::Postgres(_)));
    /// let err = LedgerLocation::parse("postgres://archivectl:hunter2@db.internal/archives").unwrap_err();
    /// assert!(err.to_string().contains("password") && !err.to_string().contains("hunter2"));
    /// ```
    pub fn parse(s: &str) -> Result<Self, DbError> {
        if is_postgres_url(s) {
            PostgresConfig::from_url(s).map(Self::Postgres)
        } else {
            Ok(Self::Sqlite(PathBuf::from(s)))
        }
    }

    /// For messages and logs: the file's path, or the database's URL without any password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(config) => config.redacted(),
        }
    }
}

/// Whether `s` is a PostgreSQL URL (`postgres://` or `postgresql://`, any case).
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// How TLS to the server is used, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, else plain (libpq's default); the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is not checked (as libpq without a root certificate).
    Require,
    /// TLS, with the server's certificate chain checked against the trust store (the name is not checked).
    VerifyCa,
    /// TLS, with the chain and the host name checked: the mode to use across a network.
    VerifyFull,
}

impl SslMode {
    /// The name libpq gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Result<Self, DbError> {
        Ok(match s {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(DbError::InvalidLocation(
                    "sslmode=allow is not supported: use prefer, require, verify-ca or verify-full"
                        .into(),
                ));
            }
            other => {
                return Err(DbError::InvalidLocation(format!(
                    "unknown sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// How to reach a PostgreSQL ledger. The password is never part of the URL: it is given with
/// [`PostgresConfig::with_password`] (the CLI reads it from a file, `PGPASSWORD` or `.pgpass`), kept in a
/// [`SecretString`], and never shown by [`PostgresConfig::redacted`] or `Debug`.
#[derive(Clone)]
pub struct PostgresConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) dbname: String,
    pub(crate) sslmode: SslMode,
    pub(crate) sslrootcert: Option<PathBuf>,
    pub(crate) application_name: String,
    pub(crate) options: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) password: Option<Arc<SecretString>>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted())
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

fn decode(s: &str) -> Result<String, DbError> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| DbError::InvalidLocation("cannot decode the URL".into()))
}

impl PostgresConfig {
    /// Reads a `postgres://user@host:port/dbname?sslmode=...&application_name=...` URL. The port defaults to
    /// 5432, the user to the `PGUSER` or login name, the database to the user's name, `sslmode` to `prefer`.
    /// Also understood: `sslrootcert` (a PEM file of CA certificates to trust instead of the system's store),
    /// `connect_timeout` (seconds) and `options` (server settings for the session, as libpq's: e.g.
    /// `options=-c%20search_path%3Darchivectl` keeps the ledger's tables in a schema of their own). A host that is a directory (`%2Fvar%2Frun%2Fpostgresql`, or
    /// `?host=/var/run/postgresql`) is a Unix socket's. A password in the URL is refused.
    ///
    /// ```
    /// use archive_db::PostgresConfig;
    ///
    /// let c = PostgresConfig::from_url("postgresql://archivectl@db.internal:6543/archives?sslmode=require").unwrap();
    /// assert_eq!(c.redacted(), "postgres://archivectl@db.internal:6543/archives?sslmode=require&application_name=archivectl");
    /// ```
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if !is_postgres_url(url) {
            return Err(DbError::InvalidLocation(
                "a PostgreSQL ledger's URL starts with postgres:// or postgresql://".into(),
            ));
        }
        let parsed = url::Url::parse(url).map_err(|e| {
            DbError::InvalidLocation(format!("the PostgreSQL URL cannot be read: {e}"))
        })?;
        if parsed.password().is_some() {
            return Err(DbError::InvalidLocation(
                "the PostgreSQL URL holds a password: remove it from the URL and give it with [ledger] \
                 password_file, PGPASSWORD or ~/.pgpass (a password in a URL ends up in process lists, shell \
                 history and logs)"
                    .into(),
            ));
        }
        let mut host = match parsed.host_str() {
            Some(h) if !h.is_empty() => decode(h)?,
            _ => "localhost".to_owned(),
        };
        if host.starts_with('[') && host.ends_with(']') {
            host = host[1..host.len() - 1].to_owned();
        }
        let port = parsed.port().unwrap_or(5432);
        let mut user = decode(parsed.username())?;
        if user.is_empty() {
            user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .or_else(|_| std::env::var("LOGNAME"))
                .map_err(|_| {
                    DbError::InvalidLocation(
                        "the PostgreSQL URL names no user (postgres://USER@host/db) and none is known".into(),
                    )
                })?;
        }
        let path = parsed.path().trim_start_matches('/');
        let mut dbname = if path.is_empty() {
            user.clone()
        } else {
            decode(path)?
        };
        let mut config = Self {
            host,
            port,
            user,
            dbname: String::new(),
            sslmode: SslMode::default(),
            sslrootcert: None,
            application_name: "archivectl".into(),
            options: None,
            connect_timeout: Duration::from_secs(10),
            password: None,
        };
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "sslmode" => config.sslmode = SslMode::parse(&value)?,
                "sslrootcert" => config.sslrootcert = Some(PathBuf::from(&*value)),
                "application_name" => config.application_name = value.into_owned(),
                "options" => config.options = Some(value.into_owned()),
                "host" => config.host = value.into_owned(),
                "port" => {
                    config.port = value.parse().map_err(|_| {
                        DbError::InvalidLocation(format!(
                            "the PostgreSQL URL's port {value:?} is not a port"
                        ))
                    })?;
                }
                "dbname" => dbname = value.into_owned(),
                "user" => config.user = value.into_owned(),
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        DbError::InvalidLocation(format!(
                            "connect_timeout {value:?} is not a number of seconds"
                        ))
                    })?;
                    config.connect_timeout = Duration::from_secs(secs.max(1));
                }
                "password" => {
                    return Err(DbError::InvalidLocation(
                        "the PostgreSQL URL holds a password parameter: give it with [ledger] password_file, \
                         PGPASSWORD or ~/.pgpass instead"
                            .into(),
                    ));
                }
                other => {
                    return Err(DbError::InvalidLocation(format!(
                        "the PostgreSQL URL has a parameter archivectl does not know: {other:?} (known: sslmode, \
                         sslrootcert, application_name, options, connect_timeout, host, port, dbname, user)"
                    )));
                }
            }
        }
        if dbname.is_empty() {
            dbname = config.user.clone();
        }
        config.dbname = dbname;
        Ok(config)
    }

    /// The same, with the password to log in with.
    pub fn with_password(mut self, password: SecretString) -> Self {
        self.password = Some(Arc::new(password));
        self
    }

    /// The same, with another `sslmode`.
    pub fn with_sslmode(mut self, sslmode: SslMode) -> Self {
        self.sslmode = sslmode;
        self
    }

    /// Whether a password was given.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The host (or the Unix socket's directory).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The `sslmode`.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The URL for messages and logs: never a password.
    pub fn redacted(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            enc(&self.host)
        };
        let port = if self.port == 5432 {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        let mut s = format!(
            "postgres://{}@{host}{port}/{}?sslmode={}&application_name={}",
            enc(&self.user),
            enc(&self.dbname),
            self.sslmode.as_str(),
            enc(&self.application_name)
        );
        if let Some(options) = &self.options {
            s.push_str("&options=");
            s.push_str(&enc(options));
        }
        if let Some(root) = &self.sslrootcert {
            s.push_str("&sslrootcert=");
            s.push_str(&enc(&root.to_string_lossy()));
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_refused() {
        let c = PostgresConfig::from_url("postgres://u@h/d").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.user(), c.dbname(), c.sslmode()),
            ("h", 5432, "u", "d", SslMode::Prefer)
        );
        let c =
            PostgresConfig::from_url("postgresql://u@127.0.0.1:55432?sslmode=verify-full").unwrap();
        assert_eq!(
            (c.port(), c.dbname(), c.sslmode()),
            (55432, "u", SslMode::VerifyFull)
        );
        let c = PostgresConfig::from_url("postgres://u@%2Fvar%2Frun%2Fpostgresql/d").unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");
        for bad in [
            "postgres://u:secret@h/d",
            "postgres://u@h/d?password=secret",
            "postgres://u@h/d?sslmode=sometimes",
            "postgres://u@h/d?unknown=1",
        ] {
            let err = PostgresConfig::from_url(bad).unwrap_err();
            assert!(matches!(err, DbError::InvalidLocation(_)), "{bad}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let with = PostgresConfig::from_url("postgres://u@h/d")
            .unwrap()
            .with_password(SecretString::from("hunter2"));
        assert!(!with.redacted().contains("hunter2"));
        assert!(!format!("{with:?}").contains("hunter2"));
        assert!(matches!(
            LedgerLocation::parse("ledger.sqlite3").unwrap(),
            LedgerLocation::Sqlite(_)
        ));
        assert!(matches!(
            LedgerLocation::parse("POSTGRES://u@h/d").unwrap(),
            LedgerLocation::Postgres(_)
        ));
    }
}
