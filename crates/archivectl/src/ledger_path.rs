//! Where the ledger file is, and opening it.
//!
//! `--ledger PATH`, else `ARCHIVECTL_LEDGER` (both through [`LedgerArgs`]), else `[ledger] path` in
//! archivectl.toml, else
//! `$XDG_DATA_HOME/archivectl/ledger.sqlite3`, i.e. `~/.local/share/archivectl/ledger.sqlite3`. Opening creates
//! the directory (owner-only) and the file (mode 0600) if they are missing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use archive_db::Ledger;

/// The `--ledger` option of the commands that use the ledger.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LedgerArgs {
    /// The ledger file (default: $XDG_DATA_HOME/archivectl/ledger.sqlite3, i.e.
    /// ~/.local/share/archivectl/ledger.sqlite3).
    #[arg(long, value_name = "PATH", env = "ARCHIVECTL_LEDGER", help_heading = crate::context::GLOBAL_HEADING)]
    pub ledger: Option<PathBuf>,
}

impl LedgerArgs {
    /// Opens the ledger: these options, else `[ledger] path` in archivectl.toml, else the default (see [`open`]).
    pub fn open(&self, ctx: &crate::context::Context) -> anyhow::Result<Ledger> {
        open(&self.path(ctx))
    }

    /// Opens the ledger for a command that only reads it: a ledger that does not exist yet is not created
    /// (nor its directory, so a mistyped path leaves nothing behind); it reads as empty, with a note.
    pub fn open_for_reading(&self, ctx: &crate::context::Context) -> anyhow::Result<Ledger> {
        let path = self.path(ctx);
        if path.exists() {
            return open(&path);
        }
        ctx.out.note(format!(
            "no ledger at {} yet: nothing has been recorded there",
            path.display()
        ));
        Ok(Ledger::open_in_memory()?)
    }

    /// The ledger file these options and the configuration name.
    pub fn path(&self, ctx: &crate::context::Context) -> PathBuf {
        ledger_path(
            self.ledger
                .clone()
                .or_else(|| ctx.config.ledger.path.clone()),
        )
    }
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
