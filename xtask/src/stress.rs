//! `cargo xtask stress [--runs N] [--hogs N]`: the whole test suite, run again and again on a loaded machine.
//!
//! Issue 16 asks that the suite pass ten times in a row while every core is busy, so that a test depending on
//! timing (a sleep deciding what happened, a deadline a slow machine misses) shows up here instead of as a
//! flaky CI. This builds the tests once, starts the storage servers (as `ci` does) and `stress --cpu N`
//! (apt `stress`, installed if missing) on every core, then runs `cargo test --workspace` `--runs` times
//! (default 10), every run to the end, and prints one line per run and the tests that failed, by name.
//! It fails unless every run passed.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{bench, ci, sdks, servers, tools};

/// `cargo xtask stress`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    ci::refuse_skips(|name| std::env::var_os(name))?;
    let runs = bench::flag(args, "--runs", 10)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    let hogs = bench::flag(args, "--hogs", cores)?;
    tools::ensure_test_tools()?;
    if !tools::have("stress") {
        tools::apt_install(&["stress"])?;
    }
    sdks::ensure().context("cannot install the OpenTok and Vonage SDKs")?;
    let root = tools::workspace_root();
    let test_args = ["test", "--workspace", "--locked", "--no-fail-fast"];
    tools::run_in(&root, "cargo", &[&test_args[..], &["--no-run"]].concat())
        .context("the tests do not build")?;

    let mut servers =
        servers::start_all().context("cannot start the S3, Azure and PostgreSQL test servers")?;
    let _load = Load::start(hogs)?;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed_runs = 0;
    for run in 1..=runs {
        let started = Instant::now();
        let mut cmd = servers.command("cargo");
        cmd.args(test_args).current_dir(&root);
        let (ok, output) = ci::run_teed(cmd, false)?;
        servers.check_alive()?;
        let failed = failed_tests(&output);
        let passed: u64 = output.lines().filter_map(passed_count).sum();
        println!(
            "xtask stress: run {run}/{runs}: {} ({passed} passed, {} failed) in {:.0} s, {hogs} CPU hogs",
            if ok { "ok" } else { "FAILED" },
            failed.len(),
            started.elapsed().as_secs_f64()
        );
        if !ok {
            failed_runs += 1;
            let log = root.join(format!("target/stress-run-{run}.log"));
            std::fs::write(&log, &output)
                .with_context(|| format!("cannot write {}", log.display()))?;
            println!("xtask stress:   the run's output is in {}", log.display());
        }
        for name in failed {
            println!("xtask stress:   failed: {name}");
            *failures.entry(name).or_default() += 1;
        }
    }
    if failed_runs > 0 {
        let names: Vec<String> = failures
            .iter()
            .map(|(n, c)| format!("{n} ({c}x)"))
            .collect();
        bail!(
            "{failed_runs} of {runs} runs failed under load; failing tests: {}",
            names.join(", ")
        );
    }
    println!("xtask stress: all {runs} runs passed with {hogs} CPU hogs");
    Ok(())
}

/// `stress --cpu N`, stopped (with its workers) when dropped.
struct Load(Child);

impl Load {
    fn start(hogs: u64) -> anyhow::Result<Self> {
        let child = Command::new("stress")
            .args(["--cpu", &hogs.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start `stress`")?;
        Ok(Self(child))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // stress forks its workers into its process group: end them all.
        let _ = Command::new("kill")
            .args(["--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// The names of the tests the harness reported as failed (`test NAME ... FAILED`).
fn failed_tests(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .map(str::to_string)
        .collect()
}

/// The passed count of a `test result:` line.
fn passed_count(line: &str) -> Option<u64> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, after) = rest.split_once(". ")?;
    after.split(" passed").next()?.trim().parse().ok()
}

#[test]
fn failing_tests_and_passed_counts_are_read_from_the_harness_output() {
    let out = "running 3 tests\ntest a::b ... ok\ntest c::d ... FAILED\ntest e ... ignored\n\
               test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out\n\
               test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.0s\n";
    assert_eq!(failed_tests(out), ["c::d"]);
    let passed: Vec<u64> = out.lines().filter_map(passed_count).collect();
    assert_eq!(passed, [1, 12]);
}
