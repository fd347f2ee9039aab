//! `cargo xtask bench pull [--size-mib N] [--runs N]`: pulling from a local S3 server (s3s-fs), side by side.
//!
//! One synthetic MPEG-TS archive (1 GiB by default) is encrypted by `openssl enc` and uploaded twice to s3s-fs:
//! as `archive.ts` (encrypted) and, the very same bytes, as `archive.mp4` of another archive id (which `pull`
//! treats as unencrypted and only downloads). Then, interleaved run by run:
//!
//! * `archivectl pull` of the encrypted archive: download, decrypt, check, hash, write;
//! * `archivectl pull` of the "unencrypted" copy: the same downloader, the same writes and hash, no decryption —
//!   the plain download this benchmark's target is measured against;
//! * `curl` of the same object (one stream), a standard downloader, for reference;
//! * `curl` then the documented `openssl enc -d`: what users do today.
//!
//! Outputs go to /dev/shm so the local disk is not what is measured.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::bench::{self, Sample};
use crate::bench_env::{self, S3, Scratch};
use crate::servers;
use crate::tools;

const API_KEY: &str = "46009999";
const ENCRYPTED_ID: &str = "be4c0000-0000-4000-8000-000000000001";
const PLAIN_ID: &str = "be4c0000-0000-4000-8000-000000000002";

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let size_mib = bench::flag(args, "--size-mib", 1024)?;
    let runs = bench::flag(args, "--runs", 3)?.max(1) as usize;
    tools::ensure_test_tools()?;
    if !tools::have("curl") {
        bail!("curl is needed for the reference download");
    }
    let bin = bench_env::release_binaries(&["archivectl"])?;
    let servers = servers::start()?;
    let s3 = S3::of(&servers)?;
    let dir = Scratch::new(Path::new("/dev/shm"), "pull")?;
    let report = run_in(dir.path(), &bin.join("archivectl"), &s3, size_mib, runs);
    drop(dir);
    drop(servers);
    bench_env::publish("pull", report)
}

fn run_in(
    dir: &Path,
    archivectl: &Path,
    s3: &S3,
    size_mib: u64,
    runs: usize,
) -> anyhow::Result<String> {
    eprintln!("xtask: preparing a {size_mib} MiB archive");
    let (key_hex, iv_hex) = bench::prepare_archive(dir, size_mib)?;

    let user = format!("{}:{}", s3.access, s3.secret);
    let archive = dir.join("archive.ts").to_string_lossy().into_owned();
    let encrypted_key = format!("{API_KEY}/{ENCRYPTED_ID}/archive.ts");
    let plain_key = format!("{API_KEY}/{PLAIN_ID}/archive.mp4");
    for key in [&encrypted_key, &plain_key] {
        // Uploaded through the server (not copied into its directory), so it records the ETag once.
        let mut args = s3.curl_args(&user);
        let url = s3.url(key);
        args.extend(["-o", "/dev/null", "-T", archive.as_str(), url.as_str()]);
        let status = Command::new("curl")
            .args(&args)
            .status()
            .context("curl upload")?;
        if !status.success() {
            bail!("uploading {key} to s3s-fs failed");
        }
    }
    fs::write(dir.join("s3secret"), &s3.secret)?;

    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (out_enc, out_plain, out_curl) = (p("out-enc"), p("out-plain"), p("out-curl"));
    for d in [&out_enc, &out_plain, &out_curl] {
        fs::create_dir_all(d)?;
    }
    let bin = archivectl.to_string_lossy().into_owned();
    let (secret_file, key_file, pw_file) = (p("s3secret"), p("key.pem"), p("password.b64"));
    let target = s3.target_args(&secret_file);
    let pull = |id: &str, out: &str, extra: &[&str]| -> anyhow::Result<Sample> {
        let mut args = vec![
            "--api-key",
            API_KEY,
            "pull",
            id,
            "--out-dir",
            out,
            "--key",
            key_file.as_str(),
        ];
        args.extend_from_slice(&target);
        args.extend_from_slice(extra);
        bench::measure(&bin, &args)
    };
    let curl_out = p("out-curl/archive.ts");
    let documented_out = p("out-curl/decrypted.ts");
    let curl_url = s3.url(&encrypted_key);
    let curl = || -> anyhow::Result<Sample> {
        let mut args = s3.curl_args(&user);
        args.extend(["-o", curl_out.as_str(), curl_url.as_str()]);
        bench::measure("curl", &args)
    };
    let openssl_decrypt = || -> anyhow::Result<Sample> {
        bench::measure(
            "openssl",
            &[
                "enc",
                "-d",
                "-aes-256-cbc",
                "-nopad",
                "-in",
                curl_out.as_str(),
                "-out",
                documented_out.as_str(),
                "-K",
                key_hex.as_str(),
                "-iv",
                iv_hex.as_str(),
            ],
        )
    };

    let names = [
        "`archivectl pull` (download + decrypt + check + SHA-256)",
        "`archivectl pull` of the same bytes unencrypted (download + SHA-256)",
        "`curl` (one stream, no decryption)",
        "`curl` then `openssl enc -d` (today's way)",
    ];
    let mut samples: Vec<Vec<(f64, u64)>> = vec![Vec::new(); 4];
    for run in 0..=runs {
        for d in [&out_enc, &out_plain, &out_curl] {
            let _ = fs::remove_dir_all(d);
            fs::create_dir_all(d)?;
        }
        let enc = pull(
            ENCRYPTED_ID,
            &out_enc,
            &["--password-file", pw_file.as_str()],
        )?;
        let plain = pull(PLAIN_ID, &out_plain, &[])?;
        let c = curl()?;
        let o = openssl_decrypt()?;
        if run == 0 {
            let ours = fs::read(Path::new(&out_enc).join(format!("{ENCRYPTED_ID}.ts")))?;
            if ours != fs::read(&documented_out)? {
                bail!("archivectl pull's output differs from the documented openssl decryption");
            }
            continue;
        }
        samples[0].push((enc.seconds, enc.max_rss_kib));
        samples[1].push((plain.seconds, plain.max_rss_kib));
        samples[2].push((c.seconds, c.max_rss_kib));
        samples[3].push((c.seconds + o.seconds, c.max_rss_kib.max(o.max_rss_kib)));
    }
    let med: Vec<f64> = samples
        .iter()
        .map(|v| bench::median(v.iter().map(|s| s.0).collect()))
        .collect();
    let rss: Vec<u64> = samples
        .iter()
        .map(|v| v.iter().map(|s| s.1).max().unwrap_or(0))
        .collect();
    let mib = size_mib as f64;
    let mut r = format!(
        "## pull ({size_mib} MiB archive from s3s-fs on 127.0.0.1, median of {runs} runs, interleaved)\n\n\
         Measured {} on {}.\n\n\
         | command | median wall time | throughput | vs plain pull | peak RSS |\n|---|---|---|---|---|\n",
        bench::today(),
        bench::machine_description()
    );
    for i in 0..4 {
        r.push_str(&format!(
            "| {} | {:.2} s | {:.0} MiB/s | {:+.1}% | {:.1} MiB |\n",
            names[i],
            med[i],
            mib / med[i],
            100.0 * (med[i] / med[1] - 1.0),
            rss[i] as f64 / 1024.0
        ));
    }
    let overhead = 100.0 * (med[0] / med[1] - 1.0);
    r.push_str(&format!(
        "\nDecryption adds {overhead:.1}% to the plain pull (target: under 10%: {}); peak RSS {:.1} MiB (target: \
         under 64 MiB: {}). `archivectl pull` takes {:.0}% of the time of download-then-openssl.\n",
        if overhead < 10.0 { "met" } else { "NOT met" },
        rss[0] as f64 / 1024.0,
        if rss[0] < 64 * 1024 { "met" } else { "NOT met" },
        100.0 * med[0] / med[3],
    ));
    Ok(r)
}
