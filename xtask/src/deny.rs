//! `cargo deny check` (advisories, licenses, bans, sources) against the offline RustSec snapshot.
//!
//! The machines CI runs on have no internet, so the advisory database is the snapshot in
//! `../shared/advisory-db/` (found as [`snapshot_dir`] says; its `SNAPSHOT` names the upstream commit). cargo-deny reads a database as a git
//! repository at `<db-path>/advisory-db-3157b0e258782691` (the name it derives from the default URL), so the
//! snapshot is copied to `target/advisory-dbs/` (deny.toml's `db-path`) and committed there, and cargo-deny runs
//! `--offline` on metadata made beforehand (`--offline` also keeps it from fetching the database). The policy
//! itself (accepted advisories with their reasons, licenses, sources) is `deny.toml`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::tools;

/// The cargo-deny release CI installs: the newest that builds on the toolchain, and the one the snapshot's
/// README was checked with.
pub const CARGO_DENY_VERSION: &str = "0.20.2";

/// The directory cargo-deny opens for the default advisory URL (`https://github.com/rustsec/advisory-db`).
const DB_DIR_NAME: &str = "advisory-db-3157b0e258782691";

/// The snapshot: `ARCHIVECTL_ADVISORY_DB` when set, else `shared/advisory-db` beside the workspace (CI's clone
/// has `../shared`) or beside one of its parents (a git worktree under `wt/`).
fn snapshot_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("ARCHIVECTL_ADVISORY_DB") {
        return PathBuf::from(dir);
    }
    let beside = |dir: &Path| dir.join("shared").join("advisory-db");
    root.ancestors()
        .skip(1)
        .map(beside)
        .find(|d| d.join("SNAPSHOT").is_file())
        .unwrap_or_else(|| beside(root.parent().unwrap_or(root)))
}

/// Installs cargo-deny when missing, prepares the database and runs every check.
pub fn check(root: &Path) -> anyhow::Result<()> {
    ensure_cargo_deny()?;
    let snapshot = snapshot_dir(root);
    let stamp = std::fs::read_to_string(snapshot.join("SNAPSHOT")).with_context(|| {
        format!(
            "no RustSec snapshot at {} (its SNAPSHOT file is missing); cargo deny needs it offline",
            snapshot.display()
        )
    })?;
    let dbs = root.join("target").join("advisory-dbs");
    let db = dbs.join(DB_DIR_NAME);
    prepare_db(&snapshot, &db, &stamp)?;

    let metadata = root.join("target").join("deny-metadata.json");
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&metadata, &out.stdout)
        .with_context(|| format!("cannot write {}", metadata.display()))?;
    let metadata = metadata.to_string_lossy().into_owned();
    tools::run_in(
        root,
        "cargo",
        &[
            "deny",
            "--offline",
            "--metadata-path",
            &metadata,
            "check",
            "--show-stats",
            "advisories",
            "bans",
            "licenses",
            "sources",
        ],
    )
    .context("cargo deny check failed (policy: deny.toml)")
}

/// Copies the snapshot into a git repository at `db` unless the one there is already that snapshot.
fn prepare_db(snapshot: &Path, db: &Path, stamp: &str) -> anyhow::Result<()> {
    let marker = db.join("SNAPSHOT");
    if db.join(".git").is_dir() && std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp) {
        return Ok(());
    }
    if db.exists() {
        std::fs::remove_dir_all(db).with_context(|| format!("cannot clear {}", db.display()))?;
    }
    std::fs::create_dir_all(db).with_context(|| format!("cannot create {}", db.display()))?;
    eprintln!(
        "xtask: advisory database: {} -> {}",
        snapshot.display(),
        db.display()
    );
    let status = Command::new("cp")
        .arg("-R")
        .arg(format!("{}/.", snapshot.display()))
        .arg(db)
        .status()
        .context("cannot run cp")?;
    if !status.success() {
        bail!("cannot copy {} to {}", snapshot.display(), db.display());
    }
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("git")
            .args(["-c", "user.name=xtask", "-c", "user.email=xtask@localhost"])
            .args(["-c", "commit.gpgsign=false", "-C"])
            .arg(db)
            .args(args)
            .output()
            .context(
                "cannot run git (cargo deny reads the advisory database as a git repository)",
            )?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    git(&["init", "-q", "-b", "main"])?;
    git(&["add", "-A"])?;
    git(&[
        "commit",
        "-q",
        "-m",
        stamp.lines().next().unwrap_or("snapshot"),
    ])?;
    Ok(())
}

fn ensure_cargo_deny() -> anyhow::Result<()> {
    let installed = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .map(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_DENY_VERSION)
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    tools::run_in(
        Path::new("."),
        "cargo",
        &[
            "install",
            "cargo-deny",
            "--version",
            CARGO_DENY_VERSION,
            "--locked",
        ],
    )
    .context("cannot install cargo-deny")
}
