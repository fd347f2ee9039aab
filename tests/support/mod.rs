//! Support for the workspace's end-to-end tests: shell steps with clear failures, fixture paths.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's `tests/data` directory.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Runs a bash script in `dir` (with `set -euo pipefail`), returning stdout; panics with stderr on failure.
pub fn sh(dir: &Path, script: &str) -> Vec<u8> {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "script failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A workspace binary (`archivectl`, `opentok-emulator`) built by cargo next to the running test executable;
/// panics with how to build it when it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p archivectl -p opentok-emulator`; \
         `cargo test --workspace` and `cargo xtask ci` do)",
        bin.display()
    );
    bin
}
