//! The official server SDKs the emulator's tests drive (`crates/opentok-emulator/tests/sdks.rs`), installed
//! where those tests look for them, pinned: the Python `opentok` package and the current Vonage SDK (`vonage`,
//! with `vonage-video`) in one venv at `.xtask/python-sdk`, the Node `opentok` package and `@vonage/video` in
//! `.xtask/node-sdk/node_modules`. All from their registries with their own clients (pip, npm); nothing is
//! installed when it is there already.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::tools;

/// The versions the tests run; keep them equal to those in `crates/opentok-emulator/tests/sdks.rs`.
pub const PYTHON_SDK: &str = "opentok==3.15.0";
pub const NODE_SDK: &str = "opentok@2.23.2";
/// The current Vonage server SDK for Python (its `vonage-video` comes with it), for Vonage applications.
pub const VONAGE_PYTHON_SDK: &str = "vonage==4.9.1";
/// The current Vonage Video SDK for Node, for Vonage applications.
pub const VONAGE_NODE_SDK: &str = "@vonage/video@1.31.1";

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Whether `python` can import `module`.
fn python_has(python: &Path, module: &str) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Whether the venv's `vonage` is the pinned version.
fn vonage_pinned(python: &Path) -> bool {
    let want = VONAGE_PYTHON_SDK.trim_start_matches("vonage==");
    Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('vonage'))",
        ])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want)
}

/// Whether `node_modules/{name}` holds `version` (npm writes `"version": "x.y.z"` in its package.json).
fn node_has(node: &Path, name: &str, version: &str) -> bool {
    std::fs::read_to_string(node.join("node_modules").join(name).join("package.json"))
        .is_ok_and(|manifest| manifest.contains(&format!("\"version\": \"{version}\"")))
}

/// Installs whichever SDK is missing.
pub fn ensure() -> anyhow::Result<()> {
    let root = tools::workspace_root().join(".xtask");
    let venv = root.join("python-sdk");
    let python = venv.join("bin").join("python");
    if !python_has(&python, "opentok") {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv .xtask/python-sdk",
        )?;
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", PYTHON_SDK]),
            &format!("pip install {PYTHON_SDK}"),
        )?;
    }
    if !(python_has(&python, "vonage_video") && vonage_pinned(&python)) {
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", VONAGE_PYTHON_SDK]),
            &format!("pip install {VONAGE_PYTHON_SDK}"),
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
    let (name, version) = VONAGE_NODE_SDK
        .rsplit_once('@')
        .context("VONAGE_NODE_SDK is name@version")?;
    if !node_has(&node, name, version) {
        run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    VONAGE_NODE_SDK,
                ])
                .current_dir(&node),
            &format!("npm install {VONAGE_NODE_SDK} in .xtask/node-sdk"),
        )?;
    }
    Ok(())
}

/// aws-cli, the reference downloader of `cargo xtask bench pull-many`, pinned.
pub const AWSCLI: &str = "awscli==1.46.3";

/// Installs aws-cli (PyPI `awscli`, [`AWSCLI`]) into its own venv `.xtask/awscli` unless it is there, and
/// returns its `aws`.
pub fn ensure_awscli() -> anyhow::Result<std::path::PathBuf> {
    let venv = tools::workspace_root().join(".xtask").join("awscli");
    let python = venv.join("bin").join("python");
    let aws = venv.join("bin").join("aws");
    let want = AWSCLI.trim_start_matches("awscli==");
    let pinned = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('awscli'))",
            ])
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == want)
    };
    if aws.is_file() && pinned(&python) {
        return Ok(aws);
    }
    if !python.is_file() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv .xtask/awscli",
        )?;
    }
    run(
        Command::new(&python).args(["-m", "pip", "install", "--quiet", AWSCLI]),
        &format!("pip install {AWSCLI}"),
    )?;
    if !aws.is_file() {
        bail!("pip installed {AWSCLI} but {} is missing", aws.display());
    }
    Ok(aws)
}
