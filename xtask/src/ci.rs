//! `cargo xtask ci`: what CI runs, and the rules that make "ci passed" mean something.
//!
//! * It refuses to start while a skip switch is set ([`SKIP_SWITCHES`]): a run that skipped the server, media or
//!   SDK tests, or the demo, must never look like a green one.
//! * fmt, clippy (`-D warnings`, also on archivectl without its `demo` feature), the tidy rules (`cargo test -p xtask`), `cargo doc` with `-D warnings`, the
//!   build of `opentok-rest --no-default-features` with its tests, `cargo deny check`, then every test of
//!   the workspace with the storage servers running, archivectl's tests again in the production build
//!   (`--no-default-features`), and the README's first command (`archivectl demo`).
//! * At the end it prints how many tests ran (passed, ignored) in each test target, parsed from cargo test's
//!   own output ([`TestCounts`]), so a target that silently ran nothing shows up as a zero.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::{deny, sdks, servers, tools};

/// The environment switches that make tests skip instead of fail. `ci` runs only when none is set.
pub const SKIP_SWITCHES: [&str; 4] = [
    "ARCHIVECTL_SKIP_SERVER_TESTS",
    "ARCHIVECTL_SKIP_MEDIA_TESTS",
    "ARCHIVECTL_SKIP_SDK_TESTS",
    "ARCHIVECTL_SKIP_DEMO",
];

/// Fails, naming every switch that is set (whatever its value, even empty), when any of [`SKIP_SWITCHES`] is.
pub fn refuse_skips(var: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<()> {
    let set: Vec<&str> = SKIP_SWITCHES
        .iter()
        .copied()
        .filter(|name| var(name).is_some())
        .collect();
    if !set.is_empty() {
        bail!(
            "refusing to run with {} set: CI runs every test; unset {}",
            set.join(", "),
            if set.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}

/// `cargo xtask ci`.
pub fn run() -> anyhow::Result<()> {
    refuse_skips(|name| std::env::var_os(name))?;
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
    // xtask is not a default member: its own tests (the tidy rules among them) are run by name.
    tools::run_in(&root, "cargo", &["test", "--locked", "-p", "xtask"])
        .context("xtask's tests (the tidy rules) failed")?;
    run_with_env(
        &root,
        "cargo",
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
    .context("cargo doc has warnings")?;
    // The model-only build that storage-fetch and archive-db use: it must build, and its tests must pass.
    tools::run_in(
        &root,
        "cargo",
        &[
            "test",
            "--locked",
            "-p",
            "opentok-rest",
            "--no-default-features",
        ],
    )
    .context("opentok-rest without its client (--no-default-features)")?;
    // The production build (issue 10): archivectl without its `demo` feature, so no emulator and no embedded S3
    // server (one RustCrypto generation: tidy's rule); it must pass clippy and its tests too.
    tools::run_in(
        &root,
        "cargo",
        &[
            "clippy",
            "--locked",
            "-p",
            "archivectl",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
    .context("archivectl without the demo feature (--no-default-features): clippy")?;
    deny::check(&root)?;

    // The integration tests need the storage servers; they are stopped when `servers` drops, test failure or not.
    let mut servers =
        servers::start_all().context("cannot start the S3, Azure and PostgreSQL test servers")?;
    let test_args = ["test", "--workspace", "--locked", "--no-fail-fast"];
    // Built first, so the executables can be named by package and target in the counts.
    let targets = test_executables(&root, &test_args)?;
    let mut cmd = servers.command("cargo");
    cmd.args(test_args).current_dir(&root);
    let (ok, output) = run_teed(cmd, true)?;
    servers.check_alive()?;
    // The production build's tests (issue 10): archivectl without `demo`, against the same servers.
    let production_args = [
        "test",
        "--locked",
        "-p",
        "archivectl",
        "--no-default-features",
        "--no-fail-fast",
    ];
    let mut cmd = servers.command("cargo");
    cmd.args(production_args).current_dir(&root);
    let (production_ok, _) = run_teed(cmd, true)?;
    servers.check_alive()?;
    drop(servers);
    let counts = TestCounts::parse(&output, &targets);
    println!("{}", counts.table());
    if !ok {
        bail!("`cargo {}` failed", test_args.join(" "));
    }
    if !production_ok {
        bail!(
            "`cargo {}` (the production build's tests) failed",
            production_args.join(" ")
        );
    }
    counts.ensure_all_ran()?;

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
    println!("xtask ci: all checks passed");
    Ok(())
}

fn run_with_env(
    dir: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    eprintln!("xtask: $ {} {program} {}", shown.join(" "), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds the test executables (`cargo test ... --no-run`) and maps each one's path to `package/target`.
fn test_executables(root: &Path, test_args: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
    eprintln!("xtask: $ cargo {} --no-run", test_args.join(" "));
    let out = Command::new("cargo")
        .args(test_args)
        .args(["--no-run", "--message-format=json"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("the tests do not build");
    }
    Ok(parse_artifacts(&String::from_utf8_lossy(&out.stdout)))
}

/// From cargo's `--message-format=json` lines: test executable path → `package/target` (`package/lib` for the
/// unit tests of a library, `package/bin:NAME` for a binary's).
fn parse_artifacts(json_lines: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in json_lines.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let target = &msg["target"];
        let name = target["name"].as_str().unwrap_or("?");
        let kinds: Vec<&str> = target["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        // The package's name: the manifest's directory (crates/NAME, xtask, tests), as in the workspace.
        let package = msg["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).parent())
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("?");
        let what = if kinds.iter().any(|k| k.ends_with("lib")) {
            "lib".to_string()
        } else if kinds.contains(&"bin") {
            format!("bin:{name}")
        } else {
            name.to_string()
        };
        map.insert(exe.to_string(), format!("{package}/{what}"));
    }
    map
}

/// Runs `cmd` with stdout and stderr merged (in order) into one pipe and returns whether it succeeded and
/// everything it printed; `echo` also prints each line as it comes.
pub(crate) fn run_teed(cmd: Command, echo: bool) -> anyhow::Result<(bool, String)> {
    // One pipe for both streams keeps cargo's "Running …" lines (stderr) in order with the harness's
    // results (stdout); a shell does the 2>&1.
    let program = cmd.get_program().to_owned();
    let args: Vec<OsString> = cmd.get_args().map(ToOwned::to_owned).collect();
    eprintln!(
        "xtask: $ {} {} (with the S3 and Azure test servers)",
        program.to_string_lossy(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", "exec \"$@\" 2>&1", "sh"]);
    let mut shell = tools::wrapped(sh, &cmd);
    shell.stdout(Stdio::piped());
    let mut child = shell.spawn().context("cannot run sh")?;
    let stdout = child.stdout.take().context("no pipe from the tests")?;
    let mut all = String::new();
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the tests' output")?;
        if echo {
            let _ = writeln!(out, "{line}");
        }
        all.push_str(&line);
        all.push('\n');
    }
    drop(out);
    let status = child.wait().context("waiting for the tests")?;
    Ok((status.success(), all))
}

/// What one test target ran, from its `test result:` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Count {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests marked `#[ignore]` (helpers run explicitly by other tests, or not run at all).
    pub ignored: u64,
}

/// Test counts per target, in the order cargo ran them.
#[derive(Debug, Default)]
pub struct TestCounts {
    /// `(package/target, count)`.
    pub targets: Vec<(String, Count)>,
}

impl TestCounts {
    /// Parses cargo test's merged output: a `Running PATH (EXE)` or `Doc-tests CRATE` line names the target,
    /// and the last `test result:` line before the next target gives its counts (a test that runs its own
    /// executable as a subprocess may echo the child's result lines first). `executables` maps EXE to
    /// `package/target`.
    pub fn parse(output: &str, executables: &BTreeMap<String, String>) -> Self {
        let mut counts = TestCounts::default();
        let mut current: Option<(String, Option<Count>)> = None;
        let flush = |current: &mut Option<(String, Option<Count>)>, counts: &mut TestCounts| {
            if let Some((name, Some(count))) = current.take() {
                counts.targets.push((name, count));
            }
        };
        for line in output.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("Running ") {
                flush(&mut current, &mut counts);
                // `Running tests/pull.rs (target/debug/deps/pull-0123abcd)`
                let exe = rest
                    .rsplit_once('(')
                    .map(|(_, e)| e.trim_end_matches(')'))
                    .unwrap_or(rest);
                let name = executables
                    .iter()
                    .find(|(path, _)| path.ends_with(exe) || exe.ends_with(path.as_str()))
                    .map(|(_, name)| name.clone())
                    .unwrap_or_else(|| rest.to_string());
                current = Some((name, None));
            } else if let Some(krate) = line.strip_prefix("Doc-tests ") {
                flush(&mut current, &mut counts);
                current = Some((format!("{}/doc-tests", krate.replace('_', "-")), None));
            } else if let Some(result) = line.strip_prefix("test result: ") {
                let count = parse_result(result);
                match current.as_mut() {
                    Some((_, last)) => *last = Some(count),
                    None => counts.targets.push(("?".to_string(), count)),
                }
            }
        }
        flush(&mut current, &mut counts);
        counts
    }

    /// The counts as a table, one target a line, with totals.
    pub fn table(&self) -> String {
        let width = self
            .targets
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut s = format!(
            "\ntests run per target\n{:width$}  {:>6}  {:>6}  {:>7}\n",
            "target", "passed", "failed", "ignored"
        );
        let mut total = Count::default();
        for (name, c) in &self.targets {
            s.push_str(&format!(
                "{name:width$}  {:>6}  {:>6}  {:>7}\n",
                c.passed, c.failed, c.ignored
            ));
            total.passed += c.passed;
            total.failed += c.failed;
            total.ignored += c.ignored;
        }
        s.push_str(&format!(
            "{:width$}  {:>6}  {:>6}  {:>7}\n",
            "total", total.passed, total.failed, total.ignored
        ));
        s
    }

    /// Fails when nothing was counted (the output was not understood, so the counts would lie).
    pub fn ensure_all_ran(&self) -> anyhow::Result<()> {
        if self.targets.is_empty() {
            bail!("no `test result:` line in cargo test's output: cannot tell what ran");
        }
        Ok(())
    }
}

/// `ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.52s`
fn parse_result(result: &str) -> Count {
    let mut count = Count::default();
    for part in result.split(';') {
        let words: Vec<&str> = part
            .split(|c: char| c.is_whitespace() || c == '.')
            .filter(|w| !w.is_empty())
            .collect();
        // `ok. 12 passed` → [ok, 12, passed]; `0 failed` → [0, failed]
        let [.., n, what] = words.as_slice() else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        match *what {
            "passed" => count.passed = n,
            "failed" => count.failed = n,
            "ignored" => count.ignored = n,
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_refuses_every_skip_switch_whatever_its_value() {
        assert!(refuse_skips(|_| None).is_ok());
        for name in SKIP_SWITCHES {
            for value in ["1", "0", ""] {
                let err = refuse_skips(|n| (n == name).then(|| value.into())).unwrap_err();
                let msg = err.to_string();
                assert!(msg.contains(name), "{msg}");
                assert!(msg.starts_with("refusing to run"), "{msg}");
            }
        }
        let err = refuse_skips(|n| {
            (n == "ARCHIVECTL_SKIP_DEMO" || n == "ARCHIVECTL_SKIP_SDK_TESTS").then(|| "1".into())
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ARCHIVECTL_SKIP_SDK_TESTS, ARCHIVECTL_SKIP_DEMO"),
            "{err}"
        );
        // Other variables do not count.
        assert!(refuse_skips(|n| (n == "ARCHIVECTL_TEST_S3_ENDPOINT").then(|| "x".into())).is_ok());
    }

    #[test]
    fn test_result_lines_are_parsed() {
        assert_eq!(
            parse_result(
                "ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.52s"
            ),
            Count {
                passed: 12,
                failed: 0,
                ignored: 1
            }
        );
        assert_eq!(
            parse_result(
                "FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 10.00s"
            ),
            Count {
                passed: 3,
                failed: 2,
                ignored: 0
            }
        );
    }

    #[test]
    fn counts_are_attributed_to_the_target_that_ran_them() {
        let mut exes = BTreeMap::new();
        exes.insert(
            "/w/target/debug/deps/pull-0123abcd".to_string(),
            "archivectl/pull".to_string(),
        );
        exes.insert(
            "/w/target/debug/deps/archive_core-99".to_string(),
            "archive-core/lib".to_string(),
        );
        let output = "\
   Compiling archivectl v0.1.0
    Finished `test` profile [unoptimized + debuginfo] target(s) in 1.00s
     Running unittests src/lib.rs (target/debug/deps/archive_core-99)

running 2 tests
test a ... ok
test b ... ignored

test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s

     Running tests/pull.rs (target/debug/deps/pull-0123abcd)

running 30 tests
running 1 test
test child_helper ... ok
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.10s
test result: FAILED. 29 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.10s

   Doc-tests archive_core

running 3 tests
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.30s
";
        let counts = TestCounts::parse(output, &exes);
        assert_eq!(
            counts.targets,
            vec![
                (
                    "archive-core/lib".to_string(),
                    Count {
                        passed: 1,
                        failed: 0,
                        ignored: 1
                    }
                ),
                (
                    "archivectl/pull".to_string(),
                    Count {
                        passed: 29,
                        failed: 1,
                        ignored: 0
                    }
                ),
                (
                    "archive-core/doc-tests".to_string(),
                    Count {
                        passed: 3,
                        failed: 0,
                        ignored: 0
                    }
                ),
            ]
        );
        let table = counts.table();
        assert!(table.contains("archivectl/pull"), "{table}");
        assert!(
            table.lines().last().is_some_and(
                |l| l.split_whitespace().collect::<Vec<_>>() == ["total", "33", "1", "1"]
            ),
            "{table}"
        );
        assert!(counts.ensure_all_ran().is_ok());
        assert!(
            TestCounts::parse("error: could not compile", &exes)
                .ensure_all_ran()
                .is_err()
        );
    }

    #[test]
    fn artifacts_name_their_package_and_target() {
        let lines = r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/archivectl/Cargo.toml","target":{"kind":["test"],"name":"pull"},"executable":"/w/target/debug/deps/pull-01"}
{"reason":"compiler-artifact","manifest_path":"/w/crates/archive-core/Cargo.toml","target":{"kind":["lib"],"name":"archive_core"},"executable":"/w/target/debug/deps/archive_core-02"}
{"reason":"compiler-artifact","manifest_path":"/w/crates/archivectl/Cargo.toml","target":{"kind":["bin"],"name":"archivectl"},"executable":"/w/target/debug/deps/archivectl-03"}
{"reason":"compiler-artifact","manifest_path":"/w/crates/rsa/Cargo.toml","target":{"kind":["lib"],"name":"rsa"},"executable":null}
{"reason":"build-finished","success":true}"#;
        let map = parse_artifacts(lines);
        assert_eq!(map.len(), 3);
        assert_eq!(map["/w/target/debug/deps/pull-01"], "archivectl/pull");
        assert_eq!(
            map["/w/target/debug/deps/archive_core-02"],
            "archive-core/lib"
        );
        assert_eq!(
            map["/w/target/debug/deps/archivectl-03"],
            "archivectl/bin:archivectl"
        );
    }
}
