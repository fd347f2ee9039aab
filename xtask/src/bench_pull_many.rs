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
//! byte-identical to openssl's), CPU time (user and system) and peak RSS (GNU time), and the CPU time s3s-fs
//! spent meanwhile (`/proc/PID/stat`): the server shares the machine's cores with the client. Each run
//! measures the three pipelines twice: server and client on both cores (the workload as specified), then,
//! with `taskset`, s3s-fs on core 0 and the pipeline on core 1, as if the store were another machine. Outputs
//! go to /dev/shm so the local disk is not what is measured.

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
    // Pinned: s3s-fs on core 0 and the pipeline on core 1 (`taskset`), as if the server were another
    // machine; shared: both on both cores, as the workload is specified. Interleaved run by run.
    let placements: &[Placement] = if pinning_possible() {
        &[Placement::Shared, Placement::Pinned]
    } else {
        eprintln!("xtask: fewer than 2 cores or no taskset: the pinned rows are left out");
        &[Placement::Shared]
    };
    let mut samples: Vec<Vec<Measured>> = (0..3 * placements.len()).map(|_| Vec::new()).collect();
    // Each pipeline with the CPU time s3s-fs spent while it ran.
    let measure = |cmd: Command, placement: Placement| -> anyhow::Result<Measured> {
        let before = bench::process_cpu_seconds(server)?;
        let sample = bench::measure_command(placement.client(cmd))?;
        let server_seconds = bench::process_cpu_seconds(server)? - before;
        Ok(Measured {
            sample,
            server_seconds,
        })
    };
    for run in 0..=w.runs {
        for (pi, &placement) in placements.iter().enumerate() {
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
            let mut both = Command::new("bash");
            both.arg("-c").arg(format!(
                "{} && bash {} {raw_both} {passwords} {out_openssl} {key}",
                shell_line(&aws_cp(&raw_both)),
                p("openssl.sh"),
            ));
            let pinned_server = placement.pin_server(server)?;
            let measured = (|| -> anyhow::Result<[Measured; 3]> {
                Ok([
                    measure(pull, placement)?,
                    measure(both, placement)?,
                    measure(aws_cp(&raw_aws), placement)?,
                ])
            })();
            drop(pinned_server);
            let [ours, both, alone] = measured?;
            if run == 0 {
                check_identical(&archives, &out_ours, &out_openssl)?;
                bytes = downloaded_bytes(Path::new(&raw_aws))?;
                continue;
            }
            eprintln!(
                "xtask: run {run} ({}): archivectl {:.2} s (s3s-fs CPU {:.2} s), aws-cli + openssl {:.2} s \
                 ({:.2} s), aws-cli {:.2} s ({:.2} s)",
                placement.label(),
                ours.sample.seconds,
                ours.server_seconds,
                both.sample.seconds,
                both.server_seconds,
                alone.sample.seconds,
                alone.server_seconds
            );
            for (i, one) in [ours, both, alone].into_iter().enumerate() {
                samples[3 * pi + i].push(one);
            }
        }
        if run == 0 {
            eprintln!(
                "xtask: warm-up done, outputs identical; measuring {} runs",
                w.runs
            );
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
    let names = [
        "`archivectl pull --all` (defaults)",
        "aws-cli `s3 cp --recursive`, then the documented openssl commands per archive",
        "aws-cli `s3 cp --recursive` alone (no decryption)",
    ];
    for (p, placement) in placements.iter().enumerate() {
        for (i, name) in names.iter().enumerate() {
            let row = &table.rows[3 * p + i];
            writeln!(
                r,
                "| {name}{} | {:.2} s | {:.0} MiB/s | {:.2} s + {:.2} s | {:.2} s | {:.1} MiB |",
                placement.suffix(),
                row.wall,
                total_mib / row.wall,
                row.user,
                row.sys,
                row.server,
                row.rss_kib as f64 / 1024.0
            )?;
        }
    }
    for (p, placement) in placements.iter().enumerate() {
        let rows = &table.rows[3 * p..3 * p + 3];
        writeln!(r, "\n{}: {}", placement.heading(), verdict(rows))?;
        writeln!(r, "\n{}", server_share(&rows[0], &rows[1], CORES))?;
    }
    Ok(r)
}

/// Whether the targets are met by `rows` (`pull --all`, aws-cli + openssl, aws-cli alone).
fn verdict(rows: &[Row]) -> String {
    let vs_openssl = ratio(rows[1].wall, rows[0].wall);
    let vs_aws = ratio(rows[0].wall, rows[2].wall);
    let rss = rows[0].rss_kib as f64 / 1024.0;
    format!(
        "`pull --all` is {vs_openssl:.2}x faster than aws-cli + openssl (target: at least 1.4x: {}), takes \
         {vs_aws:.2}x the time of aws-cli's download alone (target: within 1.15x: {}), peak RSS {rss:.1} MiB \
         (target: under 64 MiB: {}). Every output was byte-identical to openssl's.",
        met(vs_openssl >= 1.4),
        met(vs_aws <= 1.15),
        met(rss < 64.0),
    )
}

/// Where the pipelines run: the server and the client on both cores, or each on a core of its own.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// Both on both cores: the workload as specified.
    Shared,
    /// s3s-fs on core 0, the pipeline (and its children) on core 1, as if the server were another machine.
    Pinned,
}

impl Placement {
    fn label(self) -> &'static str {
        match self {
            Placement::Shared => "shared cores",
            Placement::Pinned => "server on core 0, client on core 1",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Placement::Shared => "",
            Placement::Pinned => ", s3s-fs pinned to core 0 and the client to core 1",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Placement::Shared => "**Shared cores** (the workload as specified)",
            Placement::Pinned => {
                "**Server on a core of its own** (`taskset`: s3s-fs on core 0, each pipeline on core 1)"
            }
        }
    }

    /// `cmd` as this placement runs it: unchanged, or under `taskset -c 1` (its environment kept).
    fn client(self, cmd: Command) -> Command {
        match self {
            Placement::Shared => cmd,
            Placement::Pinned => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", "1"]);
                tools::wrapped(taskset, &cmd)
            }
        }
    }

    /// Pins every thread of the server to core 0 for as long as the guard lives (threads it starts later
    /// inherit it); the guard gives it every core back.
    fn pin_server(self, pid: u32) -> anyhow::Result<Option<ServerPin>> {
        if self == Placement::Shared {
            return Ok(None);
        }
        set_affinity(pid, "0")?;
        Ok(Some(ServerPin(pid)))
    }
}

/// The server pinned to core 0 until dropped.
struct ServerPin(u32);

impl Drop for ServerPin {
    fn drop(&mut self) {
        let all = format!("0-{}", bench_cores().saturating_sub(1));
        if let Err(e) = set_affinity(self.0, &all) {
            eprintln!("xtask: could not give s3s-fs its cores back: {e:#}");
        }
    }
}

/// `taskset -a -p -c CPUS PID`: every thread of the process.
fn set_affinity(pid: u32, cpus: &str) -> anyhow::Result<()> {
    tools::run_quiet(Command::new("taskset").args(["-a", "-p", "-c", cpus, &pid.to_string()]))
        .with_context(|| format!("cannot pin s3s-fs ({pid}) to cores {cpus}"))
}

fn bench_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Two cores or more, and taskset (util-linux) to pin with.
fn pinning_possible() -> bool {
    bench_cores() >= 2 && tools::have("taskset")
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// `a / b`: how many times `b` fits in `a` (how much faster something taking `b` is than one taking `a`).
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::INFINITY }
}

/// Where `pull --all`'s time went (`ours`) against the openssl pipeline's, on `cores` cores: the client's CPU,
/// the server's, and the server's share of the core-seconds the run had.
fn server_share(ours: &Row, openssl: &Row, cores: f64) -> String {
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
    format!(
        "Where the time went (medians, {cores} cores): during `pull --all`, {}; during aws-cli + openssl, {}. \
         `pull --all` used {:.2} s of CPU against {:.2} s for aws-cli + openssl, two SHA-256 passes over every \
         byte included (the object's, checked against the service's `sha256sum`, and the output's, recorded in \
         the ledger), which openssl's pipeline does not compute.",
        line(ours),
        line(openssl),
        ours.user + ours.sys,
        openssl.user + openssl.sys,
    )
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
mod tests;
