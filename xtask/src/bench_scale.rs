//! `cargo xtask bench scale [--callbacks N] [--archives N] [--size-mib N]`: archivectl beyond one machine
//! (issue 14), on 127.0.0.1, with the test PostgreSQL xtask starts (`postgres.rs`) and s3s-fs.
//!
//! * **Callbacks**: `callback-load` (the emulator's load generator, release build; 64 in flight, the service's
//!   retries, round-robin) sends N distinct archive callbacks (5000 by default) to one `archivectl callbacks
//!   serve` on SQLite (the ledger on the workspace's disk), to one on PostgreSQL, and to two on one PostgreSQL
//!   database. Reported: acknowledged per second, p50 and p99 of the acknowledgement, the receivers' peak RSS
//!   (`VmHWM`). After a SIGTERM the ledger must hold every acknowledged archive, else the bench fails.
//! * **Pull workers**: the emulator records N archives (40 by default, of `--size-mib` MiB, 8 by default) into
//!   s3s-fs; `archivectl sync` records them in a SQLite ledger, which `archivectl ledger migrate` copies into a
//!   fresh PostgreSQL database (not timed); then one `pull --all` process, or two at once, pull them all from
//!   the PostgreSQL ledger. Reported: wall time from the start to the last worker's exit, each worker's share,
//!   the peak RSS of the largest worker. Every archive must be pulled exactly once, else the bench fails.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::bench;
use crate::bench_env::{self, S3, Scratch};
use crate::bench_pull_many::{self as many, API_KEY};
use crate::postgres::{AdminUrl, URL_VAR};
use crate::tools::{self, workspace_root};

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let callbacks = bench::flag(args, "--callbacks", 5000)?.max(1);
    let archives = bench::flag(args, "--archives", 40)?.max(2) as usize;
    let size_mib = bench::flag(args, "--size-mib", 8)?.max(1);
    tools::ensure_test_tools()?;
    if !tools::have("curl") {
        bail!("curl is needed to set the emulator's hooks");
    }
    let bin = bench_env::release_binaries(&["archivectl", "opentok-emulator"])?;
    let servers = crate::servers::start_all()?;
    let s3 = S3::of(&servers)?;
    let url = servers
        .env()
        .iter()
        .find(|(k, _)| *k == URL_VAR)
        .map(|(_, v)| v.clone())
        .context("the PostgreSQL URL")?;
    let admin = AdminUrl::parse(&url)?;
    let disk = Scratch::new(&workspace_root().join("target"), "scale")?;
    let shm = Scratch::in_memory("scale")?;
    let report = (|| -> anyhow::Result<String> {
        let mut r = String::new();
        writeln!(
            r,
            "## scale (callbacks on SQLite and PostgreSQL, pull workers sharing a PostgreSQL ledger, 127.0.0.1)\n"
        )?;
        writeln!(
            r,
            "Measured {} on {}; PostgreSQL {} started by xtask (default settings, fsync on, its data in {}).\n",
            bench::today(),
            bench::machine_description(),
            admin.psql("SHOW server_version")?,
            std::env::temp_dir().display()
        )?;
        r.push_str(&callbacks_section(&bin, disk.path(), &admin, callbacks)?);
        r.push_str(&pull_section(
            &bin,
            shm.path(),
            &s3,
            &admin,
            archives,
            size_mib,
        )?);
        Ok(r)
    })();
    drop(shm);
    drop(disk);
    drop(servers);
    bench_env::publish("scale", report)
}

/// A fresh database of the test server, named after `tag`; its URL (without the password).
fn fresh_database(admin: &AdminUrl, tag: &str) -> anyhow::Result<String> {
    let name = format!("bench_{tag}_{}", std::process::id());
    admin.psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    admin.psql(&format!("CREATE DATABASE {name}"))?;
    Ok(admin.database_url(&name))
}

/// A receiver process; killed if still running when dropped.
struct Receiver {
    child: Child,
    url: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start(bin: &Path, ledger: &str, admin: &AdminUrl) -> anyhow::Result<Self> {
        let mut child = Command::new(bin.join("archivectl"))
            .args([
                "callbacks",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--ledger",
                ledger,
            ])
            .env("PGPASSWORD", &admin.password)
            .env("ARCHIVECTL_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start archivectl callbacks serve")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
        });
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("the receiver did not start: {first:?}"))?
            .to_string();
        Ok(Self { child, url })
    }

    /// Its peak RSS so far, in KiB (`VmHWM`).
    fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot stop the receiver");
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("the receiver failed: {exit}");
        }
        Ok(())
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What `callback-load --json` reports.
#[derive(Debug, Default, Clone, PartialEq)]
struct LoadFigures {
    acked: u64,
    gave_up: u64,
    acked_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_load(json: &str) -> anyhow::Result<LoadFigures> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .with_context(|| format!("callback-load said {json:?}"))?;
    let n = |k: &str| v[k].as_f64().with_context(|| format!("no {k} in {json}"));
    Ok(LoadFigures {
        acked: n("acked")? as u64,
        gave_up: n("gave_up")? as u64,
        acked_per_s: n("acked_per_s")?,
        p50_ms: n("p50_ms")?,
        p99_ms: n("p99_ms")?,
    })
}

fn callback_load(bin: &Path, urls: &[String], count: u64) -> anyhow::Result<LoadFigures> {
    let mut cmd = Command::new(bin.join("callback-load"));
    for u in urls {
        cmd.args(["--url", u]);
    }
    let out = cmd
        .args([
            "--count",
            &count.to_string(),
            "--concurrency",
            "64",
            "--json",
        ])
        .output()
        .context("cannot run callback-load")?;
    if !out.status.success() {
        bail!(
            "callback-load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_load(&String::from_utf8_lossy(&out.stdout))
}

/// The number of archives in a ledger (SQLite path or PostgreSQL URL without password).
fn archives_in(ledger: &str, admin: &AdminUrl) -> anyhow::Result<u64> {
    let mut location = archive_db::LedgerLocation::parse(ledger)?;
    if let archive_db::LedgerLocation::Postgres(c) = location {
        location = archive_db::LedgerLocation::Postgres(
            c.with_password(SecretString::from(admin.password.clone())),
        );
    }
    Ok(archive_db::Ledger::open_location(&location)?.counts()?.0)
}

fn callbacks_section(
    bin: &Path,
    disk: &Path,
    admin: &AdminUrl,
    count: u64,
) -> anyhow::Result<String> {
    let sqlite = disk.join("ledger.sqlite3").display().to_string();
    let setups: [(&str, String, usize); 3] = [
        ("one receiver, SQLite (workspace disk)", sqlite, 1),
        ("one receiver, PostgreSQL", fresh_database(admin, "one")?, 1),
        (
            "two receivers, one PostgreSQL",
            fresh_database(admin, "two")?,
            2,
        ),
    ];
    let mut r = String::new();
    writeln!(
        r,
        "### callbacks ({count} distinct archive callbacks, 64 in flight, `callback-load`, round-robin)\n"
    )?;
    r.push_str("| receivers | acknowledged/s | p50 | p99 | peak RSS per receiver | lost |\n|---|---|---|---|---|---|\n");
    for (name, ledger, n) in setups {
        let receivers: Vec<Receiver> = (0..n)
            .map(|_| Receiver::start(bin, &ledger, admin))
            .collect::<anyhow::Result<_>>()?;
        let urls: Vec<String> = receivers.iter().map(|r| r.url.clone()).collect();
        // Warm-up (connections, the tables' first pages), not reported.
        callback_load(bin, &urls, (count / 10).max(100))?;
        let warm = archives_in(&ledger, admin)?;
        let f = callback_load(bin, &urls, count)?;
        let rss = receivers
            .iter()
            .map(Receiver::peak_rss_kib)
            .max()
            .unwrap_or(0);
        for rcv in receivers {
            rcv.stop()?;
        }
        let recorded = archives_in(&ledger, admin)? - warm;
        let lost = f.acked.saturating_sub(recorded);
        eprintln!(
            "xtask: {name}: {:.0}/s, p99 {:.1} ms, {} acknowledged, {recorded} recorded",
            f.acked_per_s, f.p99_ms, f.acked
        );
        writeln!(
            r,
            "| {name} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB | {lost} |",
            f.acked_per_s,
            f.p50_ms,
            f.p99_ms,
            rss as f64 / 1024.0
        )?;
        if lost > 0 || f.gave_up > 0 {
            eprintln!("{r}");
            bail!(
                "{name}: {lost} acknowledged callbacks missing, {} given up",
                f.gave_up
            );
        }
    }
    r.push_str(NOTE);
    r.push('\n');
    Ok(r)
}

/// What the callback figures mean, under their table.
const NOTE: &str = "\nThe load generator, the receivers and PostgreSQL share the machine's 2 cores, so a second receiver adds less than on two machines. On PostgreSQL each group commit is several round trips (the archives' advisory locks, the reads and the upserts) through one connection, against one local fsync for SQLite: the price of sharing the ledger between machines; none of the setups lost an acknowledged callback.\n";

/// archivectl with the emulator's API and credentials, and the PostgreSQL password in the environment.
fn ctl(bin: &Path, dir: &Path, api: &str, admin: &AdminUrl) -> Command {
    let mut cmd = Command::new(bin.join("archivectl"));
    cmd.args(["--api-url", api, "--api-key", API_KEY])
        .arg("--api-secret-file")
        .arg(dir.join("api-secret"))
        .env("PGPASSWORD", &admin.password);
    cmd
}

fn ok(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn pull_section(
    bin: &Path,
    dir: &Path,
    s3: &S3,
    admin: &AdminUrl,
    archives: usize,
    size_mib: u64,
) -> anyhow::Result<String> {
    fs::write(dir.join("api-secret"), many::API_SECRET)?;
    fs::write(dir.join("s3secret"), &s3.secret)?;
    let clip_len = many::make_clip(&dir.join("clip.ts"))?;
    let seconds = many::recorded_seconds(size_mib, clip_len);
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (cert, key, secret) = (p("cert.pem"), p("key.pem"), p("s3secret"));
    ok(
        {
            let mut c = Command::new(bin.join("archivectl"));
            c.args(["keygen", "--cert", &cert, "--key", &key]);
            c
        },
        "archivectl keygen",
    )?;
    let emulator = many::start_emulator(bin, dir, s3)?;
    let workload = many::Workload {
        archives,
        size_mib,
        runs: 1,
    };
    let made = many::record_archives(bin, dir, &emulator, s3, &workload, seconds)?;
    let api = emulator.url().to_string();
    let mut r = String::new();
    writeln!(
        r,
        "### pull workers ({} archives of {size_mib} MiB from s3s-fs, one PostgreSQL ledger, outputs in /dev/shm)\n",
        made.len()
    )?;
    r.push_str("| workers | wall time | archives per worker | peak RSS (largest worker) |\n|---|---|---|---|\n");
    for workers in [1usize, 2] {
        let sqlite = p(&format!("sync-{workers}.sqlite3"));
        let out = p(&format!("out-{workers}"));
        fs::create_dir_all(&out)?;
        // The ledger, as a team moving to PostgreSQL makes it: sync into SQLite, migrate (not timed).
        let mut sync = ctl(bin, dir, &api, admin);
        sync.args(["sync", "--ledger", &sqlite]);
        ok(sync, "archivectl sync")?;
        let pg = fresh_database(admin, &format!("pull{workers}"))?;
        let mut migrate = ctl(bin, dir, &api, admin);
        migrate.args(["ledger", "migrate", "--to", &pg, "--ledger", &sqlite]);
        ok(migrate, "archivectl ledger migrate")?;

        // All workers at once, each under GNU time (its peak RSS) with its --json report in a file.
        let started = Instant::now();
        let mut children = Vec::new();
        for w in 0..workers {
            let report = PathBuf::from(p(&format!("pulled-{workers}-{w}.json")));
            let rss = PathBuf::from(p(&format!("rss-{workers}-{w}")));
            let pull = ctl(bin, dir, &api, admin);
            let mut timed = Command::new("/usr/bin/time");
            timed
                .args(["-f", "%M", "-o"])
                .arg(&rss)
                .arg(pull.get_program())
                .args(pull.get_args())
                .args([
                    "--json",
                    "pull",
                    "--all",
                    "--out-dir",
                    &out,
                    "--ledger",
                    &pg,
                ])
                .args(["--key", &key])
                .args(s3.target_args(&secret))
                .env("PGPASSWORD", &admin.password)
                .stdout(fs::File::create(&report)?)
                .stderr(fs::File::create(p(&format!("pull-{workers}-{w}.log")))?);
            children.push((
                timed.spawn().context("cannot start a pull worker")?,
                report,
                rss,
                w,
            ));
        }
        let mut results = Vec::new();
        for (mut child, report, rss, w) in children {
            let status = child.wait()?;
            if !status.success() {
                bail!(
                    "pull worker {w} of {workers} failed ({status}): {}",
                    fs::read_to_string(p(&format!("pull-{workers}-{w}.log"))).unwrap_or_default()
                );
            }
            let pulled: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report)?)
                .context("pull --json output")?;
            let rss_kib: u64 = fs::read_to_string(&rss)?
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .context("GNU time's output")?;
            results.push((rss_kib, pulled.as_array().map_or(0, Vec::len)));
        }
        let wall = started.elapsed().as_secs_f64();
        let shares: Vec<usize> = results.iter().map(|(_, n)| *n).collect();
        let rss = results.iter().map(|(r, _)| *r).max().unwrap_or(0);
        let outputs = fs::read_dir(&out)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
            .count();
        if shares.iter().sum::<usize>() != made.len() || outputs != made.len() {
            bail!(
                "{workers} workers: pulled {shares:?} ({} in all), {outputs} outputs, for {} archives",
                shares.iter().sum::<usize>(),
                made.len()
            );
        }
        eprintln!("xtask: {workers} pull workers: {wall:.2} s, shares {shares:?}");
        writeln!(
            r,
            "| {workers} | {wall:.2} s | {} | {:.1} MiB |",
            shares
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            rss as f64 / 1024.0
        )?;
        fs::remove_dir_all(&out)?;
    }
    drop(emulator);
    r.push_str(
        "\nEvery archive was pulled exactly once (the workers' reports add up to the archives, one output each).\n",
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_load_json_is_read() {
        let f = parse_load(
            r#"{"sent":10,"acked":9,"gave_up":1,"tries":12,"elapsed_ms":5,"acked_per_s":1800.5,"p50_ms":1.25,"p99_ms":9.5}"#,
        )
        .expect("parses");
        assert_eq!(
            f,
            LoadFigures {
                acked: 9,
                gave_up: 1,
                acked_per_s: 1800.5,
                p50_ms: 1.25,
                p99_ms: 9.5
            }
        );
        assert!(parse_load("sent=1").is_err());
    }

    #[test]
    fn peak_rss_is_read_from_proc() {
        assert!(peak_rss_kib(std::process::id()) > 0);
        assert_eq!(peak_rss_kib(u32::MAX), 0);
    }
}
