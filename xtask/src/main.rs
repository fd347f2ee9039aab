//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! * `cargo xtask ci` — what CI runs (`.ci/run`): installs the tools the tests need if they are missing,
//!   then `cargo fmt --check`, `cargo clippy -D warnings` and every test of the workspace, with the S3 and
//!   Azure test servers running (see `servers.rs`; tests that need them fail without them, never skip).
//! * `cargo xtask install-sdks` — the official OpenTok Python and Node SDKs (pinned, in `.xtask/`) that the
//!   emulator's tests drive; `ci` installs them too.
//! * `cargo xtask servers` — starts the S3 (s3s-fs) and Azure (Azurite) test servers that `ci` runs the tests
//!   against, prints the `ARCHIVECTL_TEST_*` exports for a shell, and stops them on Ctrl-C.
//! * `cargo xtask bench decrypt` — archivectl vs the documented openssl command vs `cp` on a 512 MiB
//!   archive in /dev/shm, side by side, median of 9 runs and peak RSS; writes docs/benchmarks.md.
//! * `cargo xtask bench pull` — archivectl pull vs a plain download of the same object vs download then
//!   openssl, from the local S3 server (1 GiB by default), median of runs and peak RSS; writes docs/benchmarks.md.
//! * `cargo xtask bench callbacks` — the callback receiver under wrk (64 connections, loopback) next to one
//!   SQLite commit per request; writes docs/benchmarks.md.

mod bench;
mod bench_callbacks;
mod bench_pull;
mod sdks;
mod servers;
mod tools;

use std::process::ExitCode;

use anyhow::{Context, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("install-tools") => tools::ensure_test_tools(),
        Some("install-sdks") => sdks::ensure(),
        Some("servers") => servers::serve(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci               fmt, clippy, all tests (what CI runs)\n  \
                 bench decrypt    decrypt benchmark; writes docs/benchmarks.md [--size-mib N] [--runs N]\n  \
                 bench pull       pull benchmark from local S3; writes docs/benchmarks.md [--size-mib N] [--runs N]\n  \
                 bench callbacks  callback receiver under wrk; writes docs/benchmarks.md [--seconds N] [--connections N]\n  \
                 install-tools    install ffmpeg, openssl, xxd, time if missing\n  \
                 install-sdks     install the OpenTok and Vonage Python and Node SDKs the emulator tests drive\n  \
                 servers          start the S3 and Azure test servers, print their env, wait for Ctrl-C"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> anyhow::Result<()> {
    tools::ensure_test_tools()?;
    // The official SDKs the opentok-emulator tests drive (pip, npm), if missing.
    sdks::ensure().context("cannot install the OpenTok and Vonage SDKs")?;
    let root = tools::workspace_root();
    tools::run_in(&root, "cargo", &["fmt", "--all", "--", "--check"])
        .context("cargo fmt: run `cargo fmt --all`")?;
    tools::run_in(
        &root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The integration tests need the storage servers; they are stopped when `servers` drops, test failure or not.
    let mut servers = servers::start().context("cannot start the S3 and Azure test servers")?;
    servers.run_in(
        &root,
        "cargo",
        &["test", "--workspace", "--locked", "--no-fail-fast"],
    )?;
    drop(servers);
    if std::env::var_os("ARCHIVECTL_SKIP_DEMO").is_none() {
        tools::run_in(
            &root,
            "cargo",
            &[
                "run",
                "--quiet",
                "--locked",
                "-p",
                "archivectl",
                "--",
                "demo",
            ],
        )
        .context("the README's first command, `archivectl demo`, failed")?;
    }
    println!("xtask ci: all checks passed");
    Ok(())
}

/// Fails with a message unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> anyhow::Result<()> {
    if !cond {
        bail!("{}", msg());
    }
    Ok(())
}
