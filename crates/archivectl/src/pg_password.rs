//! The PostgreSQL ledger's password (issue 14), never from the command line: `[ledger] password_file`, else
//! `PGPASSWORD`, else the password file libpq reads (`PGPASSFILE`, else `~/.pgpass`), in libpq's format and
//! under its rule (ignored, with a warning, when group or others may read it).
//!
//! `.pgpass` lines are `hostname:port:database:username:password`; each of the first four fields may be `*`
//! (anything); `\:` and `\\` stand for `:` and `\`; the first matching line wins; blank lines and lines starting
//! with `#` are skipped.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use secrecy::SecretString;

/// Whom the password is for: what a `.pgpass` line is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The host as written in the URL.
    pub host: &'a str,
    /// The port (5432 when the URL has none).
    pub port: u16,
    /// The database.
    pub dbname: &'a str,
    /// The user.
    pub user: &'a str,
}

/// Where the password came from (said in messages, never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `[ledger] password_file`.
    File(PathBuf),
    /// The `PGPASSWORD` environment variable.
    Env,
    /// A `.pgpass` file.
    PgPass(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "[ledger] password_file {}", p.display()),
            Source::Env => f.write_str("PGPASSWORD"),
            Source::PgPass(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The password for `target`, with its source, or `None` when no source has one (the server may not ask).
/// `password_file`: `[ledger] password_file` (its first line; an unreadable or empty file is an error, as it
/// was asked for). `env`: reads a variable (`PGPASSWORD`, `PGPASSFILE`, `HOME`). `warn`: told when a `.pgpass`
/// is skipped for its permissions.
pub fn resolve(
    target: &Target<'_>,
    password_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    warn: impl FnOnce(String),
) -> anyhow::Result<Option<(SecretString, Source)>> {
    if let Some(path) = password_file {
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read [ledger] password_file {}", path.display())
            })?);
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            bail!(
                "[ledger] password_file {} is empty: put the password on its first line",
                path.display()
            );
        }
        return Ok(Some((
            SecretString::from(line.to_string()),
            Source::File(path.to_path_buf()),
        )));
    }
    if let Some(p) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        // (The process environment keeps its own copy; this one becomes the secret.)
        return Ok(Some((SecretString::from(p), Source::Env)));
    }
    let file = env("PGPASSFILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".pgpass"))
        });
    let Some(file) = file else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(&file) else {
        return Ok(None);
    };
    if !meta.is_file() {
        warn(format!(
            "password file {} is not a plain file: ignored",
            file.display()
        ));
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            warn(format!(
                "password file {} has group or world access; permissions should be u=rw (0600) or less: ignored",
                file.display()
            ));
            return Ok(None);
        }
    }
    // Every line of it is someone's password: wiped when dropped.
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?,
    );
    Ok(lookup(&text, target).map(|p| (p, Source::PgPass(file))))
}

/// The password of the first `.pgpass` line of `text` matching `target`.
pub fn lookup(text: &str, target: &Target<'_>) -> Option<SecretString> {
    let port = target.port.to_string();
    let wanted = [target.host, port.as_str(), target.dbname, target.user];
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(split_line)
        .find(|(fields, _)| {
            fields
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|(_, password)| SecretString::from(password))
}

/// The four fields and the password of one line (`\:` and `\\` unescaped); `None` when it has fewer fields.
fn split_line(line: &str) -> Option<([String; 4], String)> {
    let mut fields: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut()?.push(next);
                }
            }
            // The password is the rest of the line (libpq: unescaped colons end no field after the fourth).
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    if fields.len() < 5 {
        return None;
    }
    let password = fields.pop()?;
    let four: [String; 4] = fields.try_into().ok()?;
    Some((four, password))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    const T: Target<'static> = Target {
        host: "db.internal",
        port: 5432,
        dbname: "archives",
        user: "archivectl",
    };

    fn found(text: &str, t: &Target<'_>) -> Option<String> {
        lookup(text, t).map(|p| p.expose_secret().to_string())
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\nother:5432:archives:archivectl:no\n\
                    db.internal:5432:archives:archivectl:first\n*:*:*:*:second\n";
        assert_eq!(found(text, &T).as_deref(), Some("first"));
        let elsewhere = Target {
            host: "db2",
            ..T.clone()
        };
        assert_eq!(found(text, &elsewhere).as_deref(), Some("second"));
        assert_eq!(found("db.internal:5433:*:*:x\n", &T), None, "port differs");
        assert_eq!(
            found("db.internal:5432:*:other:x\n", &T),
            None,
            "user differs"
        );
        assert_eq!(found("too:few:fields\n", &T), None);
    }

    #[test]
    fn backslashes_escape_colons_and_backslashes() {
        let text = "db.internal:5432:archives:archivectl:pa\\:ss\\\\word\n";
        assert_eq!(found(text, &T).as_deref(), Some("pa:ss\\word"));
        let odd_host = Target {
            host: "a:b",
            ..T.clone()
        };
        assert_eq!(found("a\\:b:*:*:*:p\n", &odd_host).as_deref(), Some("p"));
        // After the fourth field, a bare colon belongs to the password.
        assert_eq!(found("*:*:*:*:a:b\r\n", &T).as_deref(), Some("a:b"));
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn password_file_then_pgpassword_then_pgpass() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nignored\n").expect("write");
        let pgpass = dir.path().join(".pgpass");
        std::fs::write(&pgpass, "*:*:*:*:from-pgpass\n").expect("write");
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let home = dir.path().to_str().expect("utf-8");
        let all = [("PGPASSWORD", "from-env"), ("HOME", home)];
        let get = |pf: Option<&Path>, vars: &[(&str, &str)]| {
            resolve(&T, pf, env(vars), |w| panic!("no warning expected: {w}"))
                .expect("resolves")
                .map(|(p, s)| (p.expose_secret().to_string(), s))
        };
        assert_eq!(
            get(Some(&file), &all),
            Some(("from-file".into(), Source::File(file.clone())))
        );
        assert_eq!(get(None, &all), Some(("from-env".into(), Source::Env)));
        assert_eq!(
            get(None, &[("HOME", home)]),
            Some(("from-pgpass".into(), Source::PgPass(pgpass.clone())))
        );
        let other = dir.path().join("elsewhere");
        std::fs::write(&other, "*:*:*:*:from-pgpassfile\n").expect("write");
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        let other_s = other.to_str().expect("utf-8");
        assert_eq!(
            get(None, &[("HOME", home), ("PGPASSFILE", other_s)]),
            Some(("from-pgpassfile".into(), Source::PgPass(other.clone())))
        );
        assert_eq!(get(None, &[]), None, "no source: no password");
    }

    #[test]
    fn a_pgpass_others_can_read_is_ignored_with_a_warning() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let pgpass = dir.path().join(".pgpass");
        std::fs::write(&pgpass, "*:*:*:*:secret\n").expect("write");
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let home = dir.path().to_str().expect("utf-8");
        let mut warned = None;
        let got = resolve(&T, None, env(&[("HOME", home)]), |w| warned = Some(w)).expect("ok");
        assert!(got.is_none(), "not used");
        let w = warned.expect("a warning");
        assert!(
            w.contains("group or world access") && w.contains("0600"),
            "{w}"
        );
    }

    #[test]
    fn an_empty_or_missing_password_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let e = resolve(&T, Some(&empty), env(&[]), |_| {}).expect_err("empty");
        assert!(format!("{e:#}").contains("is empty"), "{e:#}");
        let missing = dir.path().join("missing");
        let e = resolve(&T, Some(&missing), env(&[]), |_| {}).expect_err("missing");
        assert!(format!("{e:#}").contains("password_file"), "{e:#}");
    }
}
