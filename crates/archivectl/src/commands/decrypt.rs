//! `archivectl decrypt`: the documented three openssl/xxd steps in one, checked and atomic.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use archive_core::archive::{self, DecryptOptions};

use crate::context::Context;
use crate::secrets;

/// Inputs at least this large show a progress bar on a terminal (smaller ones are done in a blink).
const PROGRESS_FROM: u64 = 8 << 20;

/// Arguments of `archivectl decrypt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: secrets::KeyArgs,
    #[command(flatten)]
    password: secrets::PasswordArgs,
    /// The encrypted archive (archive.ts).
    #[arg(long = "in", value_name = "PATH")]
    input: PathBuf,
    /// Where to write the decrypted MPEG-TS (written atomically; replaced if it exists).
    #[arg(long = "out", value_name = "PATH")]
    output: PathBuf,
    /// Remove the PKCS#7 padding (and any partial packet after the last whole one); by default the output is
    /// byte-identical to `openssl enc -d -aes-256-cbc -nopad`.
    #[arg(long)]
    trim: bool,
    /// Tuning: size of each I/O buffer in KiB (and of each core's chunk of a regular file).
    #[arg(long, value_name = "KIB", hide = true)]
    buffer_kib: Option<usize>,
    /// Tuning: buffers in flight between the reader, the decryptor and the writer.
    #[arg(long, value_name = "N", hide = true)]
    buffers: Option<usize>,
    /// Tuning: threads used for AES per buffer.
    #[arg(long, value_name = "N", hide = true)]
    threads: Option<std::num::NonZeroUsize>,
}

/// Runs `archivectl decrypt`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let password = args.password.read()?;
    let blob = args.key.unwrap_password(&ctx.config, &password)?;
    // Ctrl-C, SIGTERM or SIGHUP stop the decryption at its next chunk, so that the temporary file beside
    // --out is removed instead of being left behind by a killed process. A decryption that cannot see the
    // flag (blocked reading a pipe that sends nothing) is ended after a grace period, as the signal would,
    // its temporary file removed first: no partial plaintext is ever left behind.
    let cancel = Arc::new(AtomicBool::new(false));
    let temp_file = archive::TempFileSlot::default();
    let flag = cancel.clone();
    let temp = temp_file.clone();
    ctrlc::set_handler(move || {
        flag.store(true, Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_secs(2));
        let left = temp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(path) = left {
            let _ = std::fs::remove_file(path);
        }
        eprintln!("error: interrupted");
        std::process::exit(i32::from(crate::exit::INTERRUPTED));
    })
    .context("cannot install the Ctrl-C handler")?;
    let mut opts = DecryptOptions {
        trim: args.trim,
        cancel: Some(cancel),
        temp_file: Some(temp_file),
        ..Default::default()
    };
    if let Some(kib) = args.buffer_kib {
        opts.buffer_size = kib.max(4) * 1024;
        opts.chunk_size = opts.buffer_size;
    }
    if let Some(buffers) = args.buffers {
        opts.buffers = buffers;
    }
    if let Some(threads) = args.threads {
        opts.threads = threads;
    }
    // A bar on a terminal, for inputs large enough to wait for (see `crate::progress`).
    let size = std::fs::metadata(&args.input)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bar = match size {
        Some(n) if n < PROGRESS_FROM => None,
        _ => crate::progress::bar(&ctx.out, "decrypting", size),
    };
    opts.progress = bar.is_some().then(|| counter.clone());
    let shown = crate::progress::Polled::follow(bar, counter);
    let decrypted = archive::decrypt_file(&args.input, &args.output, &blob, &opts);
    shown.finish();
    let summary = decrypted.with_context(|| format!("cannot decrypt {}", args.input.display()))?;
    let json = serde_json::json!({
        "input": args.input,
        "output": args.output,
        "trim": args.trim,
        "summary": summary,
    });
    ctx.out.emit(&json, || {
        println!(
            "decrypted {} -> {} ({} bytes{})",
            args.input.display(),
            args.output.display(),
            summary.written_bytes,
            if args.trim {
                format!(", {} padding bytes trimmed", summary.trimmed_bytes)
            } else {
                String::new()
            }
        );
        println!("{}", super::describe_report(&summary.report));
    })
}
