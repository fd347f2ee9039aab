//! Where the ledger is, and opening it.
//!
//! `--ledger PATH|URL`, else `ARCHIVECTL_LEDGER` (both through [`LedgerArgs`]), else `[ledger] url` or
//! `[ledger] path` in archivectl.toml, else
//! `$XDG_DATA_HOME/archivectl/ledger.sqlite3`, i.e. `~/.local/share/archivectl/ledger.sqlite3`. Opening a SQLite
//! ledger creates the directory (owner-only) and the file (mode 0600) if they are missing.
//!
//! A `postgres://` (or `postgresql://`) URL puts the ledger on PostgreSQL (issue 14). Its password is never
//! part of the URL (one there is refused, so it never sits in argv or shell history): it comes from
//! `[ledger] password_file`, else `PGPASSWORD`, else libpq's password file (see [`crate::pg_password`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use archive_db::{Ledger, LedgerLocation, PostgresConfig};

use crate::config::LedgerConfig;
use crate::pg_password;

/// The `--ledger` option of the commands that use the ledger.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LedgerArgs {
    /// The ledger: a SQLite file, or a postgres:// URL without a password (default:
    /// $XDG_DATA_HOME/archivectl/ledger.sqlite3, i.e. ~/.local/share/archivectl/ledger.sqlite3).
    #[arg(long, value_name = "PATH|URL", env = "ARCHIVECTL_LEDGER", help_heading = crate::context::GLOBAL_HEADING)]
    pub ledger: Option<PathBuf>,
}

impl LedgerArgs {
    /// Opens the ledger: these options, else `[ledger]` in archivectl.toml, else the default (see [`open`]).
    pub fn open(&self, ctx: &crate::context::Context) -> anyhow::Result<Ledger> {
        self.target(ctx)?.open()
    }

    /// Opens the ledger for a command that only reads it: a SQLite ledger that does not exist yet is not
    /// created (nor its directory, so a mistyped path leaves nothing behind); it reads as empty, with a note.
    pub fn open_for_reading(&self, ctx: &crate::context::Context) -> anyhow::Result<Ledger> {
        let target = self.target(ctx)?;
        if target.exists() {
            return target.open();
        }
        ctx.out.note(format!(
            "no ledger at {target} yet: nothing has been recorded there"
        ));
        Ok(Ledger::open_in_memory()?)
    }

    /// The ledger these options and the configuration name, with its password when it is on PostgreSQL.
    pub fn target(&self, ctx: &crate::context::Context) -> anyhow::Result<LedgerTarget> {
        let out = &ctx.out;
        let location = locate(
            self.ledger.as_deref().map(Path::as_os_str),
            &ctx.config.ledger,
            |name| std::env::var(name).ok(),
            |warning| out.note(format!("warning: {warning}")),
        )?;
        Ok(LedgerTarget { location })
    }

    /// The SQLite file these options and the configuration name (for a PostgreSQL ledger: its URL, redacted).
    pub fn path(&self, ctx: &crate::context::Context) -> PathBuf {
        match self.ledger.clone().filter(|p| !p.as_os_str().is_empty()) {
            Some(flag) => flag,
            None => match &ctx.config.ledger.url {
                Some(url) => PathBuf::from(url),
                None => ledger_path(ctx.config.ledger.path.clone()),
            },
        }
    }
}

/// A ledger's location, resolved: a SQLite file or a PostgreSQL database (with its password, if any). Shown
/// (`Display`) as the file's path or the database's URL without a password.
#[derive(Debug, Clone)]
pub struct LedgerTarget {
    location: LedgerLocation,
}

impl LedgerTarget {
    /// Opens it: [`open`] for a SQLite file; for PostgreSQL, connects and brings the schema up to date.
    pub fn open(&self) -> anyhow::Result<Ledger> {
        match &self.location {
            LedgerLocation::Sqlite(path) => open(path),
            LedgerLocation::Postgres(_) => Ledger::open_location(&self.location)
                .with_context(|| format!("cannot open the ledger {self}")),
        }
    }

    /// Whether it exists: the SQLite file is there; a PostgreSQL ledger is taken to exist (opening tells).
    pub fn exists(&self) -> bool {
        match &self.location {
            LedgerLocation::Sqlite(path) => path.exists(),
            LedgerLocation::Postgres(_) => true,
        }
    }

    /// The location, for a command that needs it itself.
    pub fn location(&self) -> &LedgerLocation {
        &self.location
    }
}

impl std::fmt::Display for LedgerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location.redacted())
    }
}

/// Where the ledger is: `flag` (`--ledger` or `ARCHIVECTL_LEDGER`) if given, else `[ledger] url` (which wins
/// over `[ledger] path`), else `[ledger] path` or the default file. A PostgreSQL URL gets its password from [`pg_password::resolve`]
/// (`env` reads the environment; `warn` is told of a password file skipped for its permissions).
pub fn locate(
    flag: Option<&OsStr>,
    config: &LedgerConfig,
    env: impl Fn(&str) -> Option<String>,
    warn: impl FnOnce(String),
) -> anyhow::Result<LedgerLocation> {
    let flag = flag.filter(|f| !f.is_empty());
    if let Some(flag) = flag {
        let text = flag.to_string_lossy();
        if archive_db::is_postgres_url(&text) {
            return postgres(&text, "--ledger (or ARCHIVECTL_LEDGER)", config, env, warn);
        }
        return Ok(LedgerLocation::Sqlite(PathBuf::from(flag)));
    }
    if let Some(url) = &config.url {
        if !archive_db::is_postgres_url(url) {
            anyhow::bail!(
                "[ledger] url must be a postgres:// URL (a SQLite file goes in [ledger] path)"
            );
        }
        return postgres(url, "[ledger] url", config, env, warn);
    }
    Ok(LedgerLocation::Sqlite(ledger_path(config.path.clone())))
}

/// A `postgres://` URL given as `given_in` (e.g. `--to`), with its password from the same sources as the
/// ledger's (see [`locate`]).
pub fn locate_url(
    url: &str,
    given_in: &str,
    config: &LedgerConfig,
    env: impl Fn(&str) -> Option<String>,
    warn: impl FnOnce(String),
) -> anyhow::Result<LedgerLocation> {
    if !archive_db::is_postgres_url(url) {
        anyhow::bail!("{given_in} must be a postgres:// URL");
    }
    postgres(url, given_in, config, env, warn)
}

fn postgres(
    url: &str,
    given_in: &str,
    config: &LedgerConfig,
    env: impl Fn(&str) -> Option<String>,
    warn: impl FnOnce(String),
) -> anyhow::Result<LedgerLocation> {
    // The error names the problem (a password in the URL: where to put it instead), never the password.
    let pg = PostgresConfig::from_url(url)
        .map_err(|e| crate::exit::Failure::usage(format!("{given_in}: {e}")))?;
    let target = pg_password::Target {
        host: pg.host(),
        port: pg.port(),
        dbname: pg.dbname(),
        user: pg.user(),
    };
    let password = pg_password::resolve(&target, config.password_file.as_deref(), env, warn)?;
    Ok(LedgerLocation::Postgres(match password {
        Some((password, _source)) => pg.with_password(password),
        None => pg,
    }))
}

/// The ledger file: `flag` (from `--ledger` or `ARCHIVECTL_LEDGER`) if given, else the default under the XDG
/// data directory (`$XDG_DATA_HOME`, else `$HOME/.local/share`, else the current directory).
pub fn ledger_path(flag: Option<PathBuf>) -> PathBuf {
    if let Some(path) = flag.filter(|p| !p.as_os_str().is_empty()) {
        return path;
    }
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let data = absolute("XDG_DATA_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/share")))
        .unwrap_or_default();
    data.join("archivectl").join("ledger.sqlite3")
}

/// Opens (creating it and its directory if needed) the ledger at `path`.
pub fn open(path: &Path) -> anyhow::Result<Ledger> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("cannot create the ledger's directory {}", dir.display()))?;
    }
    Ok(Ledger::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_url_is_postgres_a_path_is_sqlite_and_a_password_in_the_url_is_refused() {
        let config = LedgerConfig::default();
        let pg = locate(
            Some(OsStr::new("postgres://archivectl@db.internal/archives")),
            &config,
            no_env,
            |_| {},
        )
        .expect("a URL");
        assert!(matches!(pg, LedgerLocation::Postgres(_)), "{pg:?}");
        let file =
            locate(Some(OsStr::new("/srv/l.sqlite3")), &config, no_env, |_| {}).expect("a path");
        assert!(matches!(file, LedgerLocation::Sqlite(ref p) if p == Path::new("/srv/l.sqlite3")));
        let e = locate(
            Some(OsStr::new(
                "postgres://archivectl:hunter2@db.internal/archives",
            )),
            &config,
            no_env,
            |_| {},
        )
        .expect_err("a password in the URL");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--ledger") && msg.contains("password_file"),
            "{msg}"
        );
        assert!(
            !msg.contains("hunter2"),
            "the password is not repeated: {msg}"
        );
    }

    #[test]
    fn the_flag_wins_over_the_config_url_and_the_password_comes_from_the_environment() {
        let config = LedgerConfig {
            url: Some("postgres://archivectl@db.internal/archives".into()),
            ..LedgerConfig::default()
        };
        let env = |name: &str| (name == "PGPASSWORD").then(|| "from-env".to_string());
        let loc = locate(None, &config, env, |_| {}).expect("the config URL");
        let LedgerLocation::Postgres(pg) = loc else {
            panic!("postgres expected")
        };
        assert!(pg.has_password());
        assert!(!format!("{pg:?}").contains("from-env"), "Debug hides it");
        let flag = locate(Some(OsStr::new("/tmp/x.sqlite3")), &config, env, |_| {}).expect("flag");
        assert!(matches!(flag, LedgerLocation::Sqlite(_)));
        let both = LedgerConfig {
            path: Some("/tmp/y.sqlite3".into()),
            ..config
        };
        let url_wins = locate(None, &both, no_env, |_| {}).expect("url and path");
        assert!(
            matches!(url_wins, LedgerLocation::Postgres(_)),
            "the url wins over the path"
        );
    }

    #[test]
    fn the_flag_wins_and_the_default_is_under_the_data_directory() {
        assert_eq!(
            ledger_path(Some(PathBuf::from("/srv/l.sqlite3"))),
            PathBuf::from("/srv/l.sqlite3")
        );
        let default = ledger_path(None);
        assert!(
            default.ends_with("archivectl/ledger.sqlite3"),
            "{}",
            default.display()
        );
    }
}
