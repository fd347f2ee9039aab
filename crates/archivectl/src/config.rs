//! The configuration file, `archivectl.toml`: every key optional; flags and environment variables override it.
//!
//! ```toml
//! [project]
//! api_key = "46000000"
//! api_url = "https://api.opentok.com"
//! api_secret_file = "/run/secrets/opentok-api-secret"
//! # or, for Vonage application auth:
//! # application_id = "..."
//! # private_key = "/run/secrets/vonage-private.key"
//!
//! [target]
//! type = "s3"                    # or "azure"
//! bucket = "archives"
//! endpoint = "https://s3.example.com"
//! access_key_id = "AKIA..."
//! secret_access_key_file = "/run/secrets/s3-secret"
//! # account_name, account_key_file, container for Azure
//!
//! [output]                       # credentials of `pull --out-url s3://bucket/prefix/`, like [target]
//! access_key_id = "AKIA..."
//! secret_access_key_file = "/run/secrets/s3-output-secret"
//!
//! [keys]
//! private_key = ["/etc/archivectl/key-2026.pem", "/etc/archivectl/key-2025.pem"]  # or one path
//! passphrase_file = "/run/secrets/key-passphrase"
//!
//! [ledger]
//! path = "/var/lib/archivectl/ledger.sqlite3"
//! # or, on PostgreSQL (several machines): the URL without a password, which comes from password_file,
//! # else PGPASSWORD, else ~/.pgpass
//! # url = "postgres://archivectl@db.internal/archives?sslmode=verify-full"
//! # password_file = "/run/secrets/ledger-password"
//!
//! [receiver]
//! url = "https://callbacks.example.com"  # `doctor` checks its /healthz
//!
//! [profile.staging.project]       # --profile staging: these keys replace the top level's (crate::profile)
//! api_key = "47000000"
//! ```
//!
//! Where it is found: `--config PATH` (or `ARCHIVECTL_CONFIG`), which must exist; else `./archivectl.toml`;
//! else `$XDG_CONFIG_HOME/archivectl/archivectl.toml` (`~/.config/...`). None of them is fine: all defaults.
//! Relative paths inside the file are relative to the file's directory. Unknown keys are errors, so a typo
//! does not silently drop a setting. Secrets are never values in the file: only paths to files holding them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::exit::Failure;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[project]`
    #[serde(default)]
    pub project: ProjectConfig,
    /// `[target]`
    #[serde(default)]
    pub target: TargetConfig,
    /// `[keys]`
    #[serde(default)]
    pub keys: KeysConfig,
    /// `[output]`: the credentials of `pull --out-url` (shaped like `[target]`; the URL names the bucket).
    #[serde(default)]
    pub output: TargetConfig,
    /// `[ledger]`
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// `[receiver]`
    #[serde(default)]
    pub receiver: ReceiverConfig,
    /// `[profile.NAME.*]`: the same tables under a profile's name (see [`crate::profile`]); read to check
    /// them, applied by [`Config::load_profile`].
    #[allow(dead_code)]
    #[serde(default)]
    pub profile: std::collections::BTreeMap<String, crate::profile::ProfileConfig>,
    /// Where it was read from, if anywhere.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The profile whose tables are applied, if one was picked.
    #[serde(skip)]
    pub profile_name: Option<String>,
    /// The `section.key` settings the picked profile gave (the others are the top level's).
    #[serde(skip)]
    pub from_profile: std::collections::BTreeSet<String>,
}

/// `[project]`: which project, and how to authenticate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The OpenTok API key (the project id).
    pub api_key: Option<String>,
    /// The service's base URL.
    pub api_url: Option<String>,
    /// File holding the API secret.
    pub api_secret_file: Option<PathBuf>,
    /// Vonage application id (application auth instead of project auth).
    pub application_id: Option<String>,
    /// Vonage application private key file.
    pub private_key: Option<PathBuf>,
    /// Plain `http://` URLs on hosts other than loopback (like `--allow-http`).
    pub allow_http: Option<bool>,
}

/// `[target]`: the storage target archives are uploaded to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `"s3"` or `"azure"`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// S3 bucket.
    pub bucket: Option<String>,
    /// S3-compatible endpoint URL.
    pub endpoint: Option<String>,
    /// S3 access key id.
    pub access_key_id: Option<String>,
    /// File holding the S3 secret access key.
    pub secret_access_key_file: Option<PathBuf>,
    /// Azure storage account.
    pub account_name: Option<String>,
    /// File holding the Azure account key.
    pub account_key_file: Option<PathBuf>,
    /// Azure container.
    pub container: Option<String>,
    /// Azure domain (sovereign clouds).
    pub domain: Option<String>,
}

/// One path or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single path.
    One(PathBuf),
    /// A list of paths.
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    /// The paths, in order.
    pub fn to_vec(&self) -> Vec<PathBuf> {
        match self {
            Self::One(p) => vec![p.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// `[keys]`: the private keys that decrypt archive passwords; several during a certificate rotation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// One key path or a list.
    pub private_key: Option<OneOrMany>,
    /// Passphrase file for all keys, or one per key (same order).
    pub passphrase_file: Option<OneOrMany>,
}

/// `[ledger]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The SQLite file.
    pub path: Option<PathBuf>,
    /// A PostgreSQL ledger's `postgres://` URL (without a password).
    pub url: Option<String>,
    /// A file holding the PostgreSQL password on its first line.
    pub password_file: Option<PathBuf>,
}

/// `[receiver]`: where the callback receiver (`archivectl callbacks serve`) is reached, for `doctor`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Its base URL; `doctor` asks `{url}/healthz`.
    pub url: Option<String>,
}

impl Config {
    /// Finds and reads the configuration (see the module docs for where it looks).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_profile(explicit, None)
    }

    /// [`Config::load`] with the tables of `profile` applied (see [`crate::profile`]).
    pub fn load_profile(explicit: Option<&Path>, profile: Option<&str>) -> anyhow::Result<Self> {
        let path = match explicit {
            Some(p) => {
                if !p.is_file() {
                    let what = if p.is_dir() {
                        "is a directory"
                    } else {
                        "does not exist"
                    };
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("config file {} {what}", p.display()),
                    )
                    .into());
                }
                Some(p.to_path_buf())
            }
            None => Self::default_locations().into_iter().find(|p| p.is_file()),
        };
        match (path, profile) {
            (Some(p), profile) => Self::read_profile(&p, profile),
            (None, Some(name)) => Err(Failure::usage(format!(
                "profile {name:?}: no configuration file found (./archivectl.toml, \
                 ~/.config/archivectl/archivectl.toml; or give --config)"
            ))),
            (None, None) => Ok(Self::default()),
        }
    }

    fn default_locations() -> Vec<PathBuf> {
        let mut v = vec![PathBuf::from("archivectl.toml")];
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(dir) = xdg {
            v.push(dir.join("archivectl").join("archivectl.toml"));
        }
        v
    }

    /// Reads one file.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        Self::read_profile(path, None)
    }

    /// Reads one file, with the tables of `profile` applied.
    pub fn read_profile(path: &Path, profile: Option<&str>) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: Self = toml::from_str(&text).map_err(|e| {
            // One line: where (line:column) and what, with the parser's own lines joined.
            let at = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" line {line}, column {column}:")
                })
                .unwrap_or_else(|| ":".into());
            let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            Failure::invalid(format!("config file {}{at} {what}", path.display()))
        })?;
        if let Some(name) = profile {
            let (table, given) = crate::profile::overlay(&text, path, name)?;
            config = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Failure::invalid(format!(
                        "config file {}, profile {name}: {}",
                        path.display(),
                        e.message()
                    ))
                })?;
            config.profile_name = Some(name.to_owned());
            config.from_profile = given;
        }
        if let Some(kind) = config
            .target
            .kind
            .as_deref()
            .filter(|k| !matches!(*k, "s3" | "azure"))
        {
            return Err(Failure::invalid(format!(
                "config file {}: [target] type = {kind:?}: expected \"s3\" or \"azure\"",
                path.display()
            )));
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.resolve_relative(&base);
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    fn resolve_relative(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut().filter(|p| p.is_relative()) {
                *path = base.join(&*path);
            }
        };
        fix(&mut self.project.api_secret_file);
        fix(&mut self.project.private_key);
        fix(&mut self.target.secret_access_key_file);
        fix(&mut self.target.account_key_file);
        fix(&mut self.output.secret_access_key_file);
        fix(&mut self.output.account_key_file);
        fix(&mut self.ledger.path);
        fix(&mut self.ledger.password_file);
        for list in [&mut self.keys.private_key, &mut self.keys.passphrase_file]
            .into_iter()
            .flatten()
        {
            match list {
                OneOrMany::One(p) if p.is_relative() => *p = base.join(&*p),
                OneOrMany::Many(v) => {
                    for p in v.iter_mut().filter(|p| p.is_relative()) {
                        *p = base.join(&*p);
                    }
                }
                OneOrMany::One(_) => {}
            }
        }
    }

    /// The private keys and their passphrase files, paired.
    pub fn key_paths(&self) -> anyhow::Result<Vec<(PathBuf, Option<PathBuf>)>> {
        let keys = self
            .keys
            .private_key
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default();
        let passes = self
            .keys
            .passphrase_file
            .as_ref()
            .map(OneOrMany::to_vec)
            .unwrap_or_default();
        match passes.len() {
            0 => Ok(keys.into_iter().map(|k| (k, None)).collect()),
            1 => Ok(keys
                .into_iter()
                .map(|k| (k, Some(passes[0].clone())))
                .collect()),
            n if n == keys.len() => {
                Ok(keys.into_iter().zip(passes.into_iter().map(Some)).collect())
            }
            n => Err(Failure::usage(format!(
                "[keys] has {} private_key entries but {n} passphrase_file entries: give one for all, or one each",
                keys.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_section_and_resolves_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archivectl.toml");
        std::fs::write(
            &path,
            r#"
[project]
api_key = "123"
api_secret_file = "secret.txt"
[target]
type = "s3"
bucket = "b"
secret_access_key_file = "/abs/s3"
[keys]
private_key = ["a.pem", "/abs/b.pem"]
passphrase_file = "pass.txt"
[ledger]
path = "ledger.sqlite3"
"#,
        )
        .unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.project.api_key.as_deref(), Some("123"));
        assert_eq!(
            c.project.api_secret_file.unwrap(),
            dir.path().join("secret.txt")
        );
        assert_eq!(
            c.target.secret_access_key_file.unwrap(),
            PathBuf::from("/abs/s3")
        );
        assert_eq!(c.ledger.path.unwrap(), dir.path().join("ledger.sqlite3"));
        let keys = Config::read(&path).unwrap().key_paths().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0, dir.path().join("a.pem"));
        assert_eq!(keys[1].1, Some(dir.path().join("pass.txt")));
    }

    #[test]
    fn typos_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[project]\napi_secret = \"oops\"\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("api_secret"), "{err}");
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
        std::fs::write(
            &path,
            "[keys]\nprivate_key = [\"a\", \"b\"]\npassphrase_file = [\"x\", \"y\", \"z\"]\n",
        )
        .unwrap();
        assert!(Config::load(Some(&path)).unwrap().key_paths().is_err());
        // Syntax errors: one line, with where.
        std::fs::write(&path, "[project]\napi_key = \"1\"\n[target\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("line 3, column 8:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
