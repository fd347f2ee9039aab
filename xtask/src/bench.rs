//! Benchmarks, measured side by side in one run, written into docs/benchmarks.md.
//!
//! `cargo xtask bench decrypt [--size-mib N] [--runs N]`: a synthetic MPEG-TS archive of N MiB (default 512)
//! encrypted by `openssl enc` (PKCS#7, as the service does) in /dev/shm, decrypted by
//! * `archivectl decrypt` (release build),
//! * the documented `openssl enc -d -aes-256-cbc -nopad -K .. -iv ..`,
//! * `cp` (the floor: copying the bytes without decrypting),
//!
//! interleaved run by run, median wall time and peak RSS (GNU time's `%M`) of each. archivectl's output is
//! compared byte for byte with openssl's before any figure is reported.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::bench_env::{self, Scratch};
use crate::tools;

/// `cargo xtask bench ...`
pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("decrypt") => decrypt(&args[1..]),
        Some("pull") => crate::bench_pull::run(&args[1..]),
        Some("pull-many") => crate::bench_pull_many::run(&args[1..]),
        Some("callbacks") => crate::bench_callbacks::run(&args[1..]),
        Some("scale") => crate::bench_scale::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench decrypt|pull [--size-mib N] [--runs N]\n       cargo xtask bench pull-many [--archives N] [--size-mib N] [--runs N]\n       cargo xtask bench callbacks [--seconds N] [--connections N]\n       cargo xtask bench scale [--callbacks N] [--archives N] [--size-mib N]"
        ),
    }
}

pub(crate) fn flag(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} takes a whole number")),
    }
}

pub(crate) struct Sample {
    pub(crate) seconds: f64,
    pub(crate) max_rss_kib: u64,
    /// CPU seconds in user mode (the command and the children it waited for).
    pub(crate) user_seconds: f64,
    /// CPU seconds in the kernel.
    pub(crate) sys_seconds: f64,
}

/// Runs a command under GNU time, returning wall seconds (measured here) and peak RSS.
pub(crate) fn measure(program: &str, args: &[&str]) -> anyhow::Result<Sample> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    measure_command(cmd)
}

/// Runs `cmd` (its environment and directory as set) under GNU time: wall seconds (measured here), peak RSS
/// (of the largest process, `%M`) and CPU time (`%U`, `%S`, children included).
pub(crate) fn measure_command(cmd: Command) -> anyhow::Result<Sample> {
    let rss_file = tempfile_path("rss");
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut time = Command::new("/usr/bin/time");
    time.args(["-f", "%M %U %S", "-o"]).arg(&rss_file);
    let mut timed = tools::wrapped(time, &cmd);
    let start = Instant::now();
    let out = timed
        .output()
        .with_context(|| format!("cannot run {program} under /usr/bin/time"))?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{program} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = fs::read_to_string(&rss_file).context("reading GNU time output")?;
    let _ = fs::remove_file(&rss_file);
    let (max_rss_kib, user_seconds, sys_seconds) =
        parse_time_line(&text).context("parsing GNU time output")?;
    Ok(Sample {
        seconds,
        max_rss_kib,
        user_seconds,
        sys_seconds,
    })
}

/// The CPU time (user + system, every thread) a running process has used so far, from `/proc/PID/stat`:
/// read before and after a pipeline, the difference is what a server spent serving it.
pub(crate) fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let ticks =
        parse_stat_ticks(&stat).with_context(|| format!("cannot parse /proc/{pid}/stat"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The command name (field 2)
/// is in parentheses and may hold spaces, so the fields are counted from its closing parenthesis.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK` (100 on Linux unless the kernel says otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t: &f64| *t > 0.0)
        .unwrap_or(100.0)
}

/// GNU time's last line in the format `%M %U %S`.
fn parse_time_line(text: &str) -> Option<(u64, f64, f64)> {
    let mut fields = text.lines().last()?.split_whitespace();
    let rss = fields.next()?.parse().ok()?;
    let user = fields.next()?.parse().ok()?;
    let sys = fields.next()?.parse().ok()?;
    Some((rss, user, sys))
}

fn tempfile_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()))
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Writes `size` bytes of MPEG-TS-shaped data: sync bytes and headers every 188 bytes, pseudo-random payload.
pub(crate) fn write_synthetic_ts(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let packets = size / 188;
    let mut packet = [0u8; 188];
    for i in 0..packets {
        packet[0] = 0x47;
        packet[1] = 0x01;
        packet[2] = 0x00;
        packet[3] = 0x10 | (i % 16) as u8;
        for chunk in packet[4..].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&packet)?;
    }
    f.flush()?;
    Ok(())
}

fn decrypt(args: &[String]) -> anyhow::Result<()> {
    let size_mib = flag(args, "--size-mib", 512)?;
    let runs = flag(args, "--runs", 9)?.max(1) as usize;
    tools::ensure_test_tools()?;
    let bin = bench_env::release_binaries(&["archivectl"])?;
    let dir = Scratch::in_memory("decrypt")?;
    let report = decrypt_in(dir.path(), &bin.join("archivectl"), size_mib, runs);
    drop(dir);
    bench_env::publish("decrypt", report)
}

/// Replaces (or appends) the section `<!-- bench:NAME:start -->` … `<!-- bench:NAME:end -->` of docs/benchmarks.md.
pub(crate) fn write_doc_section(root: &Path, name: &str, report: &str) -> anyhow::Result<()> {
    let (start, end) = (
        format!("<!-- bench:{name}:start -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let doc = root.join("docs/benchmarks.md");
    let text = fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let section = format!("{start}\n{report}\n{end}");
    let text = match (text.find(&start), text.find(&end)) {
        (Some(s), Some(e)) if e > s => format!("{}{section}{}", &text[..s], &text[e + end.len()..]),
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    };
    fs::write(&doc, text)?;
    println!("xtask: wrote {}", doc.display());
    Ok(())
}

fn decrypt_in(dir: &Path, archivectl: &Path, size_mib: u64, runs: usize) -> anyhow::Result<String> {
    eprintln!(
        "xtask: preparing a {size_mib} MiB archive in {}",
        dir.display()
    );
    let (key_hex, iv_hex) = prepare_archive(dir, size_mib)?;

    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (archive, out_ours, out_openssl, out_cp) =
        (p("archive.ts"), p("ours.ts"), p("openssl.ts"), p("cp.ts"));
    let (key, pw) = (p("key.pem"), p("password.b64"));
    let archivectl = archivectl.to_string_lossy().into_owned();
    let ours_args = [
        "decrypt",
        "--key",
        key.as_str(),
        "--password-file",
        pw.as_str(),
        "--in",
        archive.as_str(),
        "--out",
        out_ours.as_str(),
    ];
    let openssl_args = [
        "enc",
        "-d",
        "-aes-256-cbc",
        "-nopad",
        "-in",
        archive.as_str(),
        "-out",
        out_openssl.as_str(),
        "-K",
        key_hex.as_str(),
        "-iv",
        iv_hex.as_str(),
    ];
    let cp_args = [archive.as_str(), out_cp.as_str()];

    let mut samples: [Vec<Sample>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for run in 0..=runs {
        for f in [&out_ours, &out_openssl, &out_cp] {
            let _ = fs::remove_file(f);
        }
        let s = [
            measure(&archivectl, &ours_args)?,
            measure("openssl", &openssl_args)?,
            measure("cp", &cp_args)?,
        ];
        if run == 0 {
            // Warm-up: also the correctness check.
            if fs::read(&out_ours)? != fs::read(&out_openssl)? {
                bail!(
                    "archivectl's output differs from openssl's: not benchmarking a wrong result"
                );
            }
            continue;
        }
        for (all, one) in samples.iter_mut().zip(s) {
            all.push(one);
        }
    }
    let med: Vec<f64> = samples
        .iter()
        .map(|v| median(v.iter().map(|s| s.seconds).collect()))
        .collect();
    let rss: Vec<u64> = samples
        .iter()
        .map(|v| v.iter().map(|s| s.max_rss_kib).max().unwrap_or(0))
        .collect();
    let mib = size_mib as f64;

    // Peak RSS at a second size, to show memory does not grow with the archive.
    let small = 64u64.min(size_mib / 2).max(1);
    let small_archive = p("small.ts");
    {
        let data = fs::read(&archive)?;
        let mut cut = ((small << 20) as usize / 752) * 752;
        cut = cut.min(data.len() - data.len() % 16);
        fs::write(&small_archive, &data[..cut])?;
    }
    let small_out = p("small-out.ts");
    let small_rss = measure(
        &archivectl,
        &[
            "decrypt",
            "--key",
            key.as_str(),
            "--password-file",
            pw.as_str(),
            "--in",
            small_archive.as_str(),
            "--out",
            small_out.as_str(),
        ],
    )?
    .max_rss_kib;

    let machine = machine_description();
    let mut r = String::new();
    r.push_str(&format!(
        "## decrypt ({size_mib} MiB archive in {}, median of {runs} runs, interleaved)\n\n",
        dir.parent().map_or("?".into(), |p| p.display().to_string())
    ));
    r.push_str(&format!("Measured {} on {machine}.\n\n", today()));
    r.push_str("| command | median wall time | throughput | vs openssl | peak RSS |\n|---|---|---|---|---|\n");
    let names = [
        "`archivectl decrypt`",
        "`openssl enc -d -aes-256-cbc -nopad` (documented)",
        "`cp` (no decryption)",
    ];
    for i in 0..3 {
        r.push_str(&format!(
            "| {} | {:.3} s | {:.0} MiB/s | {:.2}x | {:.1} MiB |\n",
            names[i],
            med[i],
            mib / med[i],
            med[1] / med[i],
            rss[i] as f64 / 1024.0
        ));
    }
    r.push_str(&format!(
        "\narchivectl peak RSS: {:.1} MiB at {size_mib} MiB, {:.1} MiB at {small} MiB (independent of size).\n",
        rss[0] as f64 / 1024.0,
        small_rss as f64 / 1024.0
    ));
    r.push_str(&format!(
        "Targets: at least 1.8x openssl ({}), near `cp` ({:.0}% of cp's throughput), RSS under 64 MiB ({}).\n",
        if med[1] / med[0] >= 1.8 { "met" } else { "NOT met" },
        100.0 * med[2] / med[0],
        if rss[0] < 64 * 1024 { "met" } else { "NOT met" },
    ));
    Ok(r)
}

/// In `dir`: an openssl RSA key (`key.pem`), a password blob wrapped for it (`password.b64`), and
/// `archive.ts`, a synthetic MPEG-TS of `size_mib` MiB encrypted by `openssl enc` (PKCS#7, as the service
/// does). Returns the AES key and IV in hex.
pub(crate) fn prepare_archive(dir: &Path, size_mib: u64) -> anyhow::Result<(String, String)> {
    openssl(dir, &["genrsa", "-out", "key.pem", "2048"])?;
    let mut blob = vec![1u8, 1, 1];
    blob.extend(openssl(dir, &["rand", "48"])?);
    fs::write(dir.join("password.bin"), &blob)?;
    let oaep = [
        "pkeyutl",
        "-encrypt",
        "-inkey",
        "key.pem",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
    ];
    openssl(
        dir,
        &[&oaep[..], &["-in", "password.bin", "-out", "password.enc"]].concat(),
    )?;
    fs::write(
        dir.join("password.b64"),
        openssl(dir, &["enc", "-base64", "-A", "-in", "password.enc"])?,
    )?;
    let key_hex: String = blob[3..35].iter().map(|b| format!("{b:02x}")).collect();
    let iv_hex: String = blob[35..51].iter().map(|b| format!("{b:02x}")).collect();
    write_synthetic_ts(&dir.join("plain.ts"), size_mib << 20)?;
    let enc = [
        "enc",
        "-aes-256-cbc",
        "-K",
        &key_hex,
        "-iv",
        &iv_hex,
        "-in",
        "plain.ts",
        "-out",
        "archive.ts",
    ];
    openssl(dir, &enc)?;
    fs::remove_file(dir.join("plain.ts"))?;
    Ok((key_hex, iv_hex))
}

pub(crate) fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let aesni = fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.contains(" aes "))
        .unwrap_or(false);
    format!(
        "{cpu}, {cores} cores{}, {openssl}",
        if aesni { ", AES-NI" } else { "" }
    )
}

pub(crate) fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_cpu_ticks_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis; utime 250, stime 75 (fields 14 and 15).
        let line =
            "4242 (s3s (fs) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(line), Some(325));
        assert_eq!(parse_stat_ticks("4242 (cut short) S 1"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_the_reading_only_grows() {
        let pid = std::process::id();
        let before = process_cpu_seconds(pid).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = process_cpu_seconds(pid).unwrap();
        assert!(after >= before, "{after} < {before}");
        assert!(process_cpu_seconds(u32::MAX).is_err(), "no such process");
    }

    #[test]
    fn median_is_the_middle_sample_whatever_the_order() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(
            median(vec![9.0, 1.0, 5.0, 7.0, 3.0, 8.0, 2.0, 6.0, 4.0]),
            5.0
        );
        // An outlier moves the mean, not the median.
        assert_eq!(median(vec![1.0, 1.1, 100.0]), 1.1);
        assert_eq!(median(vec![4.0]), 4.0);
    }

    #[test]
    fn gnu_time_lines_give_rss_then_cpu_times() {
        assert_eq!(
            parse_time_line("10240 1.50 0.25\n"),
            Some((10240, 1.5, 0.25))
        );
        // A failed command's notice comes first; the figures are on the last line.
        assert_eq!(
            parse_time_line("Command exited with non-zero status 1\n2048 0.00 0.01\n"),
            Some((2048, 0.0, 0.01))
        );
        assert_eq!(parse_time_line("2048\n"), None);
        assert_eq!(parse_time_line(""), None);
    }

    #[test]
    fn the_synthetic_archive_is_whole_ts_packets_with_counters() {
        let dir = std::env::temp_dir().join(format!("xtask-ts-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.ts");
        write_synthetic_ts(&path, 188 * 20 + 100).unwrap();
        let bytes = fs::read(&path).unwrap();
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(bytes.len(), 188 * 20, "whole packets only");
        for (i, p) in bytes.chunks(188).enumerate() {
            assert_eq!(p[0], 0x47);
            assert_eq!(p[3] & 0x0f, (i % 16) as u8, "continuity counter");
        }
    }
}
