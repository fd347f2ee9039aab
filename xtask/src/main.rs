//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! * `cargo xtask ci` — what CI runs (`.ci/run`, see `ci.rs`): refuses to run with a skip switch set, installs
//!   the tools the tests need if they are missing, then fmt, clippy, xtask's own tests (the tidy rules,
//!   `tidy.rs`), `cargo doc -D warnings`, opentok-rest without its client, `cargo deny check` (`deny.rs`) and
//!   every test of the workspace with the S3 and Azure test servers running (see `servers.rs`; tests that
//!   need them fail without them, never skip), then prints the tests run per target.
//! * `cargo xtask deny` — `cargo deny check` alone, against the offline RustSec snapshot (`deny.rs`).
//! * `cargo xtask install-sdks` — the official OpenTok Python and Node SDKs (pinned, in `.xtask/`) that the
//!   emulator's tests drive; `ci` installs them too.
//! * `cargo xtask servers` — starts the S3 (s3s-fs), Azure (Azurite) and PostgreSQL (`postgres.rs`) test
//!   servers that `ci` runs the tests against, prints the `ARCHIVECTL_TEST_*` exports for a shell, and stops them on Ctrl-C.
//! * `cargo xtask bench decrypt` — archivectl vs the documented openssl command vs `cp` on a 512 MiB
//!   archive in /dev/shm, side by side, median of 9 runs and peak RSS; writes docs/benchmarks.md.
//! * `cargo xtask bench pull` — archivectl pull vs a plain download of the same object vs download then
//!   openssl, from the local S3 server (1 GiB by default), median of runs and peak RSS; writes docs/benchmarks.md.
//! * `cargo xtask bench pull-many` — `archivectl pull --all` over 32 archives of ~37 MiB made by the emulator,
//!   vs aws-cli `s3 cp --recursive` + the documented openssl commands, vs aws-cli alone; writes docs/benchmarks.md.
//! * `cargo xtask bench callbacks` — the callback receiver under wrk (64 connections, loopback) next to one
//!   SQLite commit per request; writes docs/benchmarks.md.
//! * `cargo xtask bench scale` — callbacks acknowledged/s and p99 for one and two receivers on PostgreSQL
//!   beside one on SQLite, and 40 archives pulled by one vs two `pull --all` processes on one PostgreSQL
//!   ledger, with peak RSS; writes docs/benchmarks.md.

mod bench;
mod bench_callbacks;
mod bench_env;
mod bench_pull;
mod bench_pull_many;
mod bench_scale;
mod ci;
mod deny;
mod postgres;
#[cfg(test)]
mod promises;
mod sdks;
mod servers;
mod stress;
#[cfg(test)]
mod tidy;
mod tools;

use std::process::ExitCode;

use anyhow::bail;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("deny") => deny::check(&tools::workspace_root()),
        Some("install-tools") => tools::ensure_test_tools(),
        Some("install-sdks") => sdks::ensure(),
        Some("servers") => servers::serve(),
        Some("stress") => stress::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci               fmt, clippy, all tests (what CI runs)\n  \
                 bench decrypt    decrypt benchmark; writes docs/benchmarks.md [--size-mib N] [--runs N]\n  \
                 bench pull       pull benchmark from local S3; writes docs/benchmarks.md [--size-mib N] [--runs N]\n  \
                 bench pull-many  pull --all of 32 archives vs aws-cli (+ openssl) [--archives N] [--size-mib N] [--runs N]\n  \
                 bench callbacks  callback receiver under wrk; writes docs/benchmarks.md [--seconds N] [--connections N]\n  \
                 bench scale      receivers and pull workers on PostgreSQL vs SQLite [--callbacks N] [--archives N] [--size-mib N]\n  \
                 deny             cargo deny check against the offline RustSec snapshot (deny.toml)\n  \
                 install-tools    install ffmpeg, openssl, xxd, time if missing\n  \
                 install-sdks     install the OpenTok and Vonage Python and Node SDKs the emulator tests drive\n  \
                 servers          start the S3, Azure and PostgreSQL test servers, print their env, wait for Ctrl-C\n  \
                 stress           the whole suite N times with every core loaded [--runs N] [--hogs N]"
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

/// Fails with a message unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> anyhow::Result<()> {
    if !cond {
        bail!("{}", msg());
    }
    Ok(())
}
