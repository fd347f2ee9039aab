//! `archivectl inspect`: is this MPEG-TS, what is in it, how long is it really.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use archive_core::mpegts::{self, TsInspector};

use crate::exit::Failure;
use crate::output::Output;

/// Arguments of `archivectl inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A decrypted archive (MPEG-TS).
    #[arg(value_name = "ARCHIVE.ts")]
    path: PathBuf,
}

/// Runs `archivectl inspect`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(&args.path)
        .with_context(|| format!("cannot open {}", args.path.display()))?;
    let mut inspector = TsInspector::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut first = true;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", args.path.display()))?;
        if n == 0 {
            break;
        }
        if first {
            mpegts::looks_like_ts(&buf[..n]).map_err(|e| {
                Failure::invalid(format!(
                    "{} is not MPEG-TS ({e}); is it still encrypted?",
                    args.path.display()
                ))
            })?;
            first = false;
        }
        inspector.feed(&buf[..n]);
    }
    if first {
        return Err(Failure::invalid(format!(
            "{} is empty",
            args.path.display()
        )));
    }
    let report = inspector.finish();
    out.emit(&report, || {
        println!("{}: MPEG-TS", args.path.display());
        println!("{}", super::describe_report(&report));
        if report.trailing_bytes > 0 {
            println!(
                "{} trailing bytes after the last whole packet (PKCS#7 padding kept by -nopad?)",
                report.trailing_bytes
            );
        }
    })
}
