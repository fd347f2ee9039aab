//! The official OpenTok server SDKs the emulator's tests drive (`crates/opentok-emulator/tests/sdks.rs`),
//! installed where those tests look for them, pinned: the Python `opentok` package in a venv at
//! `.xtask/python-sdk`, the Node `opentok` package in `.xtask/node-sdk/node_modules`. Both from their
//! registries with their own clients (pip, npm); nothing is installed when they are there already.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::tools;

/// The versions the tests run; keep them equal to those in `crates/opentok-emulator/tests/sdks.rs`.
pub const PYTHON_SDK: &str = "opentok==3.15.0";
pub const NODE_SDK: &str = "opentok@2.23.2";

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn python_ready(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", "import opentok"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Installs whichever SDK is missing.
pub fn ensure() -> anyhow::Result<()> {
    let root = tools::workspace_root().join(".xtask");
    let venv = root.join("python-sdk");
    let python = venv.join("bin").join("python");
    if !python_ready(&python) {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv .xtask/python-sdk",
        )?;
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", PYTHON_SDK]),
            &format!("pip install {PYTHON_SDK}"),
        )?;
    }
    let node = root.join("node-sdk");
    if !node.join("node_modules/opentok/package.json").is_file() {
        std::fs::create_dir_all(&node)
            .with_context(|| format!("cannot create {}", node.display()))?;
        let manifest = node.join("package.json");
        if !manifest.is_file() {
            std::fs::write(
                &manifest,
                r#"{"name":"archivectl-node-sdk","private":true}"#,
            )
            .with_context(|| format!("cannot write {}", manifest.display()))?;
        }
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", NODE_SDK])
                .current_dir(&node),
            &format!("npm install {NODE_SDK} in .xtask/node-sdk"),
        )?;
    }
    Ok(())
}
