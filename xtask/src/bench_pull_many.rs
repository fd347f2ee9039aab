//! `cargo xtask bench pull-many [--archives N] [--size-mib N] [--runs N] [--bin-dir DIR]`: `archivectl pull --all` over a day's
//! worth of archives (issue 12), side by side with what users do without it.
//!
//! The workload: the emulator (release build) with a 1-second noisy MPEG-2 clip made by ffmpeg as `--media`,
//! uploading to s3s-fs on 127.0.0.1 (started here) N encrypted archives (32 by default) of about 37 MiB each
//! (the `recordedSeconds` hook sets how many copies of the clip one holds). Then, interleaved run by run:
//!
//! * `archivectl pull --all` with its defaults, on a fresh ledger filled by `archivectl sync` (not timed);
//! * aws-cli (PyPI `awscli`, pinned, in `.xtask/awscli`) `s3 cp --recursive`, then the documented openssl
//!   commands per archive (`openssl enc -base64 -d`, `openssl pkeyutl -decrypt` with OAEP, `xxd` for the key
//!   and IV, `openssl enc -d -aes-256-cbc -nopad -K -iv`), one after the other, as a shell script;
//! * aws-cli `s3 cp --recursive` alone: the download, no decryption.
//!
//! Median wall time of the runs (after a warm-up run, which is also the check that every archivectl output is
//! byte-identical to openssl's), CPU time (user and system) and peak RSS (GNU time). Outputs go to /dev/shm
//! so the local disk is not what is measured.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{self, Sample};
use crate::bench_env::{self, S3, Scratch};
use crate::{sdks, servers, tools};

pub(crate) const API_KEY: &str = "46009998";
pub(crate) const API_SECRET: &str = "bench-pull-many-secret-0123456789abcdef";
/// How long the emulator may take to upload every archive.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let archives = bench::flag(args, "--archives", 32)?.max(1) as usize;
    let size_mib = bench::flag(args, "--size-mib", 37)?.max(1);
    let runs = bench::flag(args, "--runs", 3)?.max(1) as usize;
    tools::ensure_test_tools()?;
    if !tools::have("curl") {
        bail!("curl is needed to set the emulator's hooks");
    }
    let aws = sdks::ensure_awscli()?;
    // `--bin-dir DIR`: the binaries of an earlier build (to compare before and after a change), not built here.
    let bin = match args.iter().position(|a| a == "--bin-dir") {
        Some(i) => args
            .get(i + 1)
            .map(std::path::PathBuf::from)
            .context("--bin-dir takes a directory")?,
        None => bench_env::release_binaries(&["archivectl", "opentok-emulator"])?,
    };
    let servers = servers::start()?;
    let s3 = S3::of(&servers)?;
    let dir = Scratch::in_memory("pull-many")?;
    let workload = Workload {
        archives,
        size_mib,
        runs,
    };
    let server = servers
        .pid("s3s-fs")
        .context("the servers have no s3s-fs")?;
    let report = run_in(dir.path(), &bin, &aws, &s3, server, &workload);
    drop(dir);
    drop(servers);
    bench_env::publish("pull-many", report)
}

pub(crate) struct Workload {
    pub(crate) archives: usize,
    pub(crate) size_mib: u64,
    pub(crate) runs: usize,
}

/// The emulator; killed when dropped.
pub(crate) struct Emulator {
    child: Child,
    url: String,
    /// Its stdout, kept open (closed, the emulator's next line would kill it with SIGPIPE).
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Emulator {
    /// Its base URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_emulator(bin: &Path, dir: &Path, s3: &S3) -> anyhow::Result<Emulator> {
    let log = fs::File::create(dir.join("emulator.log"))?;
    let mut child = Command::new(bin.join("opentok-emulator"))
        .args(["--listen", "127.0.0.1:0", "--api-key", API_KEY])
        .arg("--api-secret-file")
        .arg(dir.join("api-secret"))
        .args(["--s3-endpoint", &s3.endpoint])
        .arg("--media")
        .arg(dir.join("clip.ts"))
        .arg("--data-dir")
        .arg(dir.join("emulator-data"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("cannot start opentok-emulator")?;
    let stdout = child.stdout.take().context("emulator stdout")?;
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    stdout.read_line(&mut line)?;
    let mut emulator = Emulator {
        child,
        url: String::new(),
        _stdout: stdout,
    };
    let Some(url) = line.trim().strip_prefix("opentok-emulator listening on ") else {
        bail!(
            "the emulator did not start ({:?}); its log:\n{}",
            line.trim(),
            fs::read_to_string(dir.join("emulator.log")).unwrap_or_default()
        );
    };
    emulator.url = url.to_string();
    Ok(emulator)
}

/// A 1-second MPEG-2 clip of noise (so it does not compress), in MPEG-TS.
pub(crate) fn make_clip(path: &Path) -> anyhow::Result<u64> {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("nullsrc=s=640x360:r=25,geq=random(1)*255:128:128")
        .args([
            "-t",
            "1",
            "-c:v",
            "mpeg2video",
            "-b:v",
            "8M",
            "-minrate",
            "8M",
        ])
        .args(["-maxrate", "8M", "-bufsize", "4M", "-f", "mpegts"])
        .arg(path)
        .status()
        .context("cannot run ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg could not make the clip");
    }
    Ok(fs::metadata(path)?.len())
}

/// How many copies of a `clip_len`-byte, 1-second clip make an archive of about `size_mib` MiB.
pub(crate) fn recorded_seconds(size_mib: u64, clip_len: u64) -> u64 {
    ((size_mib << 20) as f64 / clip_len.max(1) as f64)
        .round()
        .max(1.0) as u64
}

/// Runs archivectl with the project's credentials, returning its stdout.
fn archivectl(
    bin: &Path,
    dir: &Path,
    emulator: &Emulator,
    args: &[&str],
) -> anyhow::Result<String> {
    let out = Command::new(bin.join("archivectl"))
        .args(["--api-url", &emulator.url, "--api-key", API_KEY])
        .arg("--api-secret-file")
        .arg(dir.join("api-secret"))
        .args(args)
        .output()
        .context("cannot run archivectl")?;
    if !out.status.success() {
        bail!(
            "archivectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Records the archives, waits until the emulator has uploaded them all, and returns (id, password) of each.
pub(crate) fn record_archives(
    bin: &Path,
    dir: &Path,
    emulator: &Emulator,
    s3: &S3,
    w: &Workload,
    seconds: u64,
) -> anyhow::Result<Vec<(String, String)>> {
    let ctl = |args: &[&str]| archivectl(bin, dir, emulator, args);
    let (cert, secret) = (
        dir.join("cert.pem").to_string_lossy().into_owned(),
        dir.join("s3secret").to_string_lossy().into_owned(),
    );
    let mut set = vec!["storage", "set", "s3", "--certificate", cert.as_str()];
    set.extend(s3.target_args(&secret));
    ctl(&set)?;
    let hooks = format!("{{\"recordedSeconds\":{seconds}}}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
        ])
        .args(["-d", &hooks])
        .arg(format!("{}/_emulator/hooks", emulator.url))
        .output()
        .context("curl")?;
    if !out.status.success() {
        bail!(
            "the emulator refused the hooks {hooks}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ids = Vec::new();
    for i in 0..w.archives {
        let session = format!("bench-pull-many-{}-{i}", std::process::id());
        let started: serde_json::Value = serde_json::from_str(&ctl(&[
            "--json",
            "archives",
            "start",
            "--session-id",
            &session,
        ])?)?;
        let id = started["id"]
            .as_str()
            .context("archives start gave no id")?
            .to_string();
        ctl(&["archives", "stop", &id])?;
        ids.push(id);
    }
    eprintln!(
        "xtask: {} archives recorded; waiting for their uploads",
        ids.len()
    );
    let deadline = Instant::now() + UPLOAD_TIMEOUT;
    loop {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&ctl(&["--json", "archives", "list"])?)?;
        let uploaded: Vec<(String, String)> = list
            .iter()
            .filter(|a| a["status"] == "uploaded")
            .filter_map(|a| {
                Some((
                    a["id"].as_str()?.to_string(),
                    a["password"].as_str()?.to_string(),
                ))
            })
            .filter(|(id, _)| ids.contains(id))
            .collect();
        if let Some(failed) = list.iter().find(|a| a["status"] == "failed") {
            bail!("the emulator failed an upload: {failed}");
        }
        if uploaded.len() == ids.len() {
            return Ok(uploaded);
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} archives uploaded in {UPLOAD_TIMEOUT:?}",
                uploaded.len(),
                ids.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The documented openssl commands, archive after archive (`$1`: the raw download, `$2`: the passwords,
/// `$3`: where the outputs go).
const OPENSSL_SCRIPT: &str = r#"set -eu
raw=$1; passwords=$2; out=$3; key=$4
for pw in "$passwords"/*.b64; do
  id=$(basename "$pw" .b64)
  openssl enc -base64 -d -A -in "$pw" -out "$out/$id.enc-password"
  openssl pkeyutl -decrypt -inkey "$key" -pkeyopt rsa_padding_mode:oaep -in "$out/$id.enc-password" -out "$out/$id.blob"
  k=$(xxd -p -s 3 -l 32 -c 64 "$out/$id.blob")
  iv=$(xxd -p -s 35 -l 16 -c 64 "$out/$id.blob")
  openssl enc -d -aes-256-cbc -nopad -in "$raw/$id/archive.ts" -out "$out/$id.ts" -K "$k" -iv "$iv"
  rm "$out/$id.enc-password" "$out/$id.blob"
done
"#;

fn run_in(
    dir: &Path,
    bin: &Path,
    aws: &Path,
    s3: &S3,
    server: u32,
    w: &Workload,
) -> anyhow::Result<String> {
    fs::write(dir.join("api-secret"), API_SECRET)?;
    fs::write(dir.join("s3secret"), &s3.secret)?;
    let clip_len = make_clip(&dir.join("clip.ts"))?;
    let seconds = recorded_seconds(w.size_mib, clip_len);
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (cert, key) = (p("cert.pem"), p("key.pem"));
    let out = Command::new(bin.join("archivectl"))
        .args(["keygen", "--cert", &cert, "--key", &key])
        .output()?;
    if !out.status.success() {
        bail!(
            "archivectl keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let emulator = start_emulator(bin, dir, s3)?;
    let archives = record_archives(bin, dir, &emulator, s3, w, seconds)?;
    let passwords = p("passwords");
    fs::create_dir_all(&passwords)?;
    for (id, password) in &archives {
        fs::write(Path::new(&passwords).join(format!("{id}.b64")), password)?;
    }
    fs::write(dir.join("openssl.sh"), OPENSSL_SCRIPT)?;
    let mut bytes = 0u64;

    let (ledger, out_ours, raw_aws, raw_both, out_openssl) = (
        p("ledger.sqlite3"),
        p("out-archivectl"),
        p("raw-aws"),
        p("raw-aws-openssl"),
        p("out-openssl"),
    );
    let secret = p("s3secret");
    let source = format!("s3://{}/{API_KEY}/", s3.bucket);
    let aws_cp = |to: &str| -> Command {
        let mut cmd = Command::new(aws);
        cmd.args([
            "s3",
            "cp",
            "--recursive",
            "--quiet",
            "--endpoint-url",
            &s3.endpoint,
        ])
        .args([source.as_str(), to])
        .env("AWS_ACCESS_KEY_ID", &s3.access)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        cmd
    };
    let names = [
        "`archivectl pull --all` (defaults)",
        "aws-cli `s3 cp --recursive`, then the documented openssl commands per archive",
        "aws-cli `s3 cp --recursive` alone (no decryption)",
    ];
    let mut samples: [Vec<Measured>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    // Each pipeline with the CPU time s3s-fs spent while it ran (the server shares the 2 cores).
    let measure = |cmd: Command| -> anyhow::Result<Measured> {
        let before = bench::process_cpu_seconds(server)?;
        let sample = bench::measure_command(cmd)?;
        let server_seconds = bench::process_cpu_seconds(server)? - before;
        Ok(Measured {
            sample,
            server_seconds,
        })
    };
    for run in 0..=w.runs {
        for d in [&ledger, &out_ours, &raw_aws, &raw_both, &out_openssl] {
            let _ = fs::remove_dir_all(d);
            let _ = fs::remove_file(d);
        }
        for d in [&out_ours, &raw_aws, &raw_both, &out_openssl] {
            fs::create_dir_all(d)?;
        }
        // A fresh ledger that knows every archive and its password, as `sync` leaves it (not timed).
        archivectl(bin, dir, &emulator, &["sync", "--ledger", &ledger])?;
        let mut pull = Command::new(bin.join("archivectl"));
        pull.args(["--api-url", &emulator.url, "--api-key", API_KEY])
            .arg("--api-secret-file")
            .arg(dir.join("api-secret"))
            .args([
                "pull",
                "--all",
                "--out-dir",
                &out_ours,
                "--ledger",
                &ledger,
                "--key",
                &key,
            ])
            .args(s3.target_args(&secret));
        let ours = measure(pull)?;
        let mut both = Command::new("bash");
        both.arg("-c").arg(format!(
            "{} && bash {} {raw_both} {passwords} {out_openssl} {key}",
            shell_line(&aws_cp(&raw_both)),
            p("openssl.sh"),
        ));
        let both = measure(both)?;
        let alone = measure(aws_cp(&raw_aws))?;
        if run == 0 {
            check_identical(&archives, &out_ours, &out_openssl)?;
            bytes = downloaded_bytes(Path::new(&raw_aws))?;
            eprintln!(
                "xtask: warm-up done, outputs identical; measuring {} runs",
                w.runs
            );
            continue;
        }
        eprintln!(
            "xtask: run {run}: archivectl {:.2} s (s3s-fs CPU {:.2} s), aws-cli + openssl {:.2} s ({:.2} s), \
             aws-cli {:.2} s ({:.2} s)",
            ours.sample.seconds,
            ours.server_seconds,
            both.sample.seconds,
            both.server_seconds,
            alone.sample.seconds,
            alone.server_seconds
        );
        for (all, one) in samples.iter_mut().zip([ours, both, alone]) {
            all.push(one);
        }
    }
    drop(emulator);
    let table = Table::of(&samples);
    let mut r = String::new();
    let total_mib = bytes as f64 / f64::from(1 << 20);
    writeln!(
        r,
        "## pull-many ({} archives of {} MiB, {:.0} MiB in all, from s3s-fs on 127.0.0.1, median of {} runs, interleaved)\n",
        archives.len(),
        w.size_mib,
        total_mib,
        w.runs
    )?;
    writeln!(
        r,
        "Measured {} on {}; the emulator's clip: 1 s of noise, MPEG-2, {clip_len} bytes, {seconds} copies per archive. \
         {} rustc processes were running when the bench started.\n",
        bench::today(),
        bench::machine_description(),
        rustc_count()
    )?;
    r.push_str(
        "| pipeline | median wall time | throughput | CPU user + sys | s3s-fs CPU meanwhile | peak RSS |\n\
         |---|---|---|---|---|---|\n",
    );
    for (i, name) in names.iter().enumerate() {
        let row = &table.rows[i];
        writeln!(
            r,
            "| {name} | {:.2} s | {:.0} MiB/s | {:.2} s + {:.2} s | {:.2} s | {:.1} MiB |",
            row.wall,
            total_mib / row.wall,
            row.user,
            row.sys,
            row.server,
            row.rss_kib as f64 / 1024.0
        )?;
    }
    let vs_openssl = ratio(table.rows[1].wall, table.rows[0].wall);
    let vs_aws = ratio(table.rows[0].wall, table.rows[2].wall);
    let rss = table.rows[0].rss_kib as f64 / 1024.0;
    writeln!(
        r,
        "\n`pull --all` is {vs_openssl:.2}x faster than aws-cli + openssl (target: at least 1.4x: {}), takes \
         {vs_aws:.2}x the time of aws-cli's download alone (target: within 1.15x: {}), peak RSS {rss:.1} MiB \
         (target: under 64 MiB: {}). Every output was byte-identical to openssl's.",
        met(vs_openssl >= 1.4),
        met(vs_aws <= 1.15),
        met(rss < 64.0),
    )?;
    writeln!(r, "\n{}", table.server_share(CORES))?;
    Ok(r)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// `a / b`: how many times `b` fits in `a` (how much faster something taking `b` is than one taking `a`).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// The cores the pipelines and the server share (the machine's two).
const CORES: f64 = 2.0;

/// One run of a pipeline, and the CPU time s3s-fs spent meanwhile.
struct Measured {
    sample: Sample,
    server_seconds: f64,
}

/// The medians of each pipeline's samples, and its largest peak RSS.
struct Table {
    rows: Vec<Row>,
}

struct Row {
    wall: f64,
    user: f64,
    sys: f64,
    /// s3s-fs's CPU time while the pipeline ran.
    server: f64,
    rss_kib: u64,
}

impl Table {
    fn of(samples: &[Vec<Measured>]) -> Self {
        let rows = samples
            .iter()
            .map(|v| Row {
                wall: bench::median(v.iter().map(|m| m.sample.seconds).collect()),
                user: bench::median(v.iter().map(|m| m.sample.user_seconds).collect()),
                sys: bench::median(v.iter().map(|m| m.sample.sys_seconds).collect()),
                server: bench::median(v.iter().map(|m| m.server_seconds).collect()),
                rss_kib: v.iter().map(|m| m.sample.max_rss_kib).max().unwrap_or(0),
            })
            .collect();
        Self { rows }
    }

    /// Where `pull --all`'s time went (row 0) against the openssl pipeline's (row 1), on `cores` cores: the
    /// client's CPU, the server's, and the server's share of the core-seconds the run had.
    fn server_share(&self, cores: f64) -> String {
        let line = |row: &Row| {
            let client = row.user + row.sys;
            let had = row.wall * cores;
            format!(
                "the client {client:.2} s of CPU and s3s-fs {:.2} s, {:.0}% of the {had:.2} core-seconds the run had \
                 (the machine {:.0}% busy)",
                row.server,
                100.0 * row.server / had,
                100.0 * (client + row.server) / had
            )
        };
        let (ours, openssl) = (&self.rows[0], &self.rows[1]);
        format!(
            "Where the time went (medians; the server and the client share the machine's {cores} cores): during \
             `pull --all`, {}; during aws-cli + openssl, {}. `pull --all` used {:.2} s of CPU against {:.2} s for \
             aws-cli + openssl, two SHA-256 passes over every byte included (the object's, checked against the \
             service's `sha256sum`, and the output's, recorded in the ledger), which openssl's pipeline does not \
             compute.",
            line(ours),
            line(openssl),
            ours.user + ours.sys,
            openssl.user + openssl.sys,
        )
    }
}

/// The program and arguments of `cmd` as one shell line, with its environment.
fn shell_line(cmd: &Command) -> String {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let mut line: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), quote(v?))))
        .collect();
    line.push(quote(cmd.get_program()));
    line.extend(cmd.get_args().map(quote));
    line.join(" ")
}

fn check_identical(archives: &[(String, String)], ours: &str, openssl: &str) -> anyhow::Result<()> {
    for (id, _) in archives {
        let a = fs::read(Path::new(ours).join(format!("{id}.ts")))
            .with_context(|| format!("archivectl wrote no {id}.ts"))?;
        let b = fs::read(Path::new(openssl).join(format!("{id}.ts")))
            .with_context(|| format!("openssl wrote no {id}.ts"))?;
        if a != b {
            bail!(
                "archivectl's output for {id} differs from openssl's: not benchmarking a wrong result"
            );
        }
    }
    Ok(())
}

/// The bytes aws-cli downloaded into `dir` (`{id}/archive.ts` each): the workload's size.
fn downloaded_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        total += fs::metadata(entry?.path().join("archive.ts"))?.len();
    }
    Ok(total)
}

fn rustc_count() -> usize {
    Command::new("pgrep")
        .args(["-c", "rustc"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, rss: u64) -> Measured {
        Measured {
            sample: Sample {
                seconds,
                max_rss_kib: rss,
                user_seconds: seconds / 2.0,
                sys_seconds: seconds / 4.0,
            },
            server_seconds: seconds / 5.0,
        }
    }

    #[test]
    fn the_table_takes_medians_of_times_and_the_largest_rss() {
        let table = Table::of(&[vec![sample(7.0, 100), sample(5.0, 300), sample(6.0, 200)]]);
        let row = &table.rows[0];
        assert_eq!(row.wall, 6.0);
        assert_eq!(row.user, 3.0);
        assert_eq!(row.sys, 1.5);
        assert_eq!(row.server, 1.2);
        assert_eq!(row.rss_kib, 300, "the worst peak, not a median");
    }

    #[test]
    fn the_servers_share_is_of_the_core_seconds_the_run_had() {
        let row = |wall: f64, user: f64, sys: f64, server: f64| Row {
            wall,
            user,
            sys,
            server,
            rss_kib: 0,
        };
        let table = Table {
            rows: vec![row(3.0, 2.0, 1.0, 2.4), row(4.0, 2.5, 1.5, 2.0)],
        };
        let text = table.server_share(2.0);
        // pull --all: 3 s on 2 cores is 6 core-seconds; the server's 2.4 s is 40%, 5.4 of 6 is 90% busy.
        assert!(
            text.contains("the client 3.00 s of CPU and s3s-fs 2.40 s, 40% of the 6.00 core-seconds the run had (the machine 90% busy)"),
            "{text}"
        );
        // The openssl pipeline: 2 of 8 core-seconds, 75% busy.
        assert!(
            text.contains(
                "s3s-fs 2.00 s, 25% of the 8.00 core-seconds the run had (the machine 75% busy)"
            ),
            "{text}"
        );
        assert!(text.contains("used 3.00 s of CPU against 4.00 s"), "{text}");
    }

    #[test]
    fn ratios_say_how_many_times_faster() {
        assert_eq!(ratio(7.0, 5.0), 1.4);
        assert_eq!(ratio(5.0, 5.0), 1.0);
        assert!(ratio(1.0, 0.0).is_infinite());
    }

    #[test]
    fn recorded_seconds_make_the_asked_size() {
        // A 1 MiB clip: 37 copies for 37 MiB.
        assert_eq!(recorded_seconds(37, 1 << 20), 37);
        // A 1,000,000-byte clip: 37 MiB is 38.8 copies, rounded to 39.
        assert_eq!(recorded_seconds(37, 1_000_000), 39);
        // Never zero.
        assert_eq!(recorded_seconds(1, 100 << 20), 1);
    }

    #[test]
    fn shell_lines_quote_everything() {
        let mut cmd = Command::new("aws");
        cmd.args(["s3", "it's"]).env("K", "v w");
        assert_eq!(shell_line(&cmd), r"K='v w' 'aws' 's3' 'it'\''s'");
    }
}
