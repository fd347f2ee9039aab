//! `cargo xtask bench callbacks [--seconds N] [--connections N]`: the callback receiver under load, on
//! loopback, next to what SQLite does with one commit per request on the same disk.
//!
//! * `archivectl callbacks serve` (release build) with a fresh ledger on the workspace's disk (not tmpfs:
//!   the fsync is what is measured), loaded by `wrk` (installed with apt if missing) with 64 connections
//!   (default) posting distinct archive callbacks (a Lua script numbers them per thread, each with a
//!   344-character password as RSA-2048 makes). wrk reports requests/s, non-2xx answers and the latency
//!   distribution; acknowledged = answered 200.
//! * Zero lost: after a SIGTERM, the ledger must hold at least one archive per acknowledged callback.
//! * The plain rate: the same upsert through `archive_db::Ledger::record_event`, one transaction and one fsync
//!   per event, from one connection — what a receiver without group commits could acknowledge at best.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench;
use crate::bench_env::{self, Scratch};
use crate::tools::{self, workspace_root};

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds = bench::flag(args, "--seconds", 10)?.max(1);
    let connections = bench::flag(args, "--connections", 64)?.max(1);
    ensure_wrk()?;
    let bin = bench_env::release_binaries(&["archivectl"])?;
    // On the workspace's disk (not tmpfs): the fsync is what is measured.
    let dir = Scratch::new(&workspace_root().join("target"), "callbacks")?;
    let report = measure(dir.path(), &bin.join("archivectl"), seconds, connections);
    drop(dir);
    bench_env::publish("callbacks", report)
}

fn ensure_wrk() -> anyhow::Result<()> {
    if tools::have("wrk") {
        return Ok(());
    }
    eprintln!("xtask: installing wrk");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() || !tools::have("wrk") {
        bail!("cannot install wrk (apt-get install -y wrk)");
    }
    Ok(())
}

/// The receiver process; killed if still running when dropped.
struct Receiver {
    child: Child,
    addr: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_receiver(archivectl: &Path, ledger: &Path) -> anyhow::Result<Receiver> {
    let mut child = Command::new(archivectl)
        .args(["callbacks", "serve", "--listen", "127.0.0.1:0", "--ledger"])
        .arg(ledger)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start archivectl callbacks serve")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
            } else if !line.contains(" INFO ") {
                eprintln!("receiver: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the receiver did not start")?;
    Ok(Receiver { child, addr })
}

const LUA: &str = r#"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  run = args[1] or "run"
  counter = 0
  password = string.rep("QUJD", 86)
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"id":"%08x-%04x-4000-8000-%012x","event":"archive","createdAt":1700000000000,"duration":0,"name":"bench",' ..
    '"partnerId":123456,"reason":"","sessionId":"2_MX4xMjM0NTZ-fmJlbmNo","size":18023312,"status":"uploaded",' ..
    '"password":"%s"}',
    (run == "warm") and 1 or 2, tid, counter, password)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("XTASK requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    non2xx: u64,
    socket_errors: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

fn wrk(
    addr: &str,
    script: &Path,
    seconds: u64,
    connections: u64,
    run: &str,
) -> anyhow::Result<WrkResult> {
    let out = Command::new("wrk")
        // One load-generator thread: on a 2-core machine every core wrk takes is one the receiver loses.
        .args(["-t1", "-c", &connections.to_string(), "-d"])
        .arg(format!("{seconds}s"))
        .args(["--timeout", "10s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}/callbacks/archive"))
        .args(["--", run])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("XTASK "))
        .with_context(|| format!("no summary from wrk: {text}"))?;
    let mut r = WrkResult::default();
    for field in line.split_whitespace().skip(1) {
        let (k, v) = field.split_once('=').context("wrk summary")?;
        let v: u64 = v.parse().context("wrk summary number")?;
        match k {
            "requests" => r.requests = v,
            "non2xx" => r.non2xx = v,
            "socket_errors" => r.socket_errors = v,
            "duration_us" => r.duration_us = v,
            "p50_us" => r.p50_us = v,
            "p99_us" => r.p99_us = v,
            "max_us" => r.max_us = v,
            _ => {}
        }
    }
    Ok(r)
}

fn measure(
    dir: &Path,
    archivectl: &Path,
    seconds: u64,
    connections: u64,
) -> anyhow::Result<String> {
    let script = dir.join("callbacks.lua");
    fs::write(&script, LUA)?;
    let ledger = dir.join("ledger.sqlite3");
    let mut receiver = start_receiver(archivectl, &ledger)?;
    // Warm-up (also creates the tables' pages), then the measured run.
    let warm = wrk(&receiver.addr, &script, 2, connections, "warm")?;
    let r = wrk(&receiver.addr, &script, seconds, connections, "bench")?;
    let status = Command::new("kill")
        .args(["-TERM", &receiver.child.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("cannot stop the receiver");
    }
    let exit = receiver.child.wait()?;
    if !exit.success() {
        bail!("the receiver failed: {exit}");
    }
    let acked = r.requests - r.non2xx;
    let acked_total = acked + warm.requests - warm.non2xx;
    let (archives, events) = archive_db::Ledger::open(&ledger)?.counts()?;
    let lost = acked_total.saturating_sub(archives);
    let rate = acked as f64 / (r.duration_us as f64 / 1e6);

    let plain = plain_rate(&dir.join("plain.sqlite3"), Duration::from_secs(5))?;
    let (p50, p99, max) = (
        r.p50_us as f64 / 1000.0,
        r.p99_us as f64 / 1000.0,
        r.max_us as f64 / 1000.0,
    );
    let mut s = String::new();
    s.push_str(&format!(
        "## callbacks ({connections} connections, {seconds} s, distinct archive callbacks, loopback)\n\n"
    ));
    s.push_str(&format!(
        "Measured {} on {}, ledger on the workspace's disk ({}).\n\n",
        bench::today(),
        bench::machine_description(),
        filesystem_of(dir)
    ));
    s.push_str("| what | acknowledged/s | p50 | p99 | max |\n|---|---|---|---|---|\n");
    s.push_str(&format!(
        "| `archivectl callbacks serve` (group commits, `synchronous=FULL`), wrk | {rate:.0} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms |\n"
    ));
    s.push_str(&format!(
        "| the same upsert, one transaction (one fsync) per event, one connection | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
        plain.rate, plain.p50_ms, plain.p99_ms, plain.max_ms
    ));
    s.push_str(&format!(
        "\n{acked} callbacks acknowledged in the measured run ({} not 200, {} socket errors); after SIGTERM the ledger \
         holds {archives} archives and {events} raw events for {acked_total} acknowledged in all (warm-up included): \
         {lost} lost.\n",
        r.non2xx, r.socket_errors
    ));
    s.push_str(&format!(
        "Targets: at least 5,000 callbacks/s ({}), p99 under 50 ms ({}), none lost ({}).\n",
        if rate >= 5000.0 { "met" } else { "NOT met" },
        if p99 < 50.0 { "met" } else { "NOT met" },
        if lost == 0 { "met" } else { "NOT met" },
    ));
    if lost > 0 || r.non2xx > 0 {
        eprintln!("{s}");
        bail!(
            "{lost} acknowledged callbacks are missing from the ledger, {} answers were not 200",
            r.non2xx
        );
    }
    Ok(s)
}

struct Plain {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// One `record_event` (one transaction, one fsync) per callback, for `time`.
fn plain_rate(path: &PathBuf, time: Duration) -> anyhow::Result<Plain> {
    let mut ledger = archive_db::Ledger::open(path)?;
    let password = "QUJD".repeat(86);
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < time {
        let body = format!(
            r#"{{"id":"plain-{}","event":"archive","createdAt":1700000000000,"duration":0,"name":"bench","partnerId":123456,"reason":"","sessionId":"2_MX4xMjM0NTZ-fmJlbmNo","size":18023312,"status":"uploaded","password":"{password}"}}"#,
            latencies.len()
        );
        let t = Instant::now();
        let event = archive_db::IncomingEvent::from_callback(body.as_bytes(), "bench")?;
        ledger.record_event(&event)?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let n = latencies.len();
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((n as f64 * q) as usize).min(n - 1)];
    Ok(Plain {
        rate: n as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: latencies[n - 1],
    })
}

fn filesystem_of(dir: &Path) -> String {
    Command::new("df")
        .args(["--output=fstype"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "unknown filesystem".into())
}
