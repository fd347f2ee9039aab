//! `archivectl inspect`: is this MPEG-TS, what is in it, how long is it really.

use std::path::PathBuf;

use anyhow::Context;
use archive_core::inspect::{InspectError, inspect_plaintext};

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
    let report = match inspect_plaintext(&mut file) {
        Ok(found) => found.report,
        Err(InspectError::Read(e)) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot read {}", args.path.display()))
            );
        }
        Err(InspectError::NotMpegTs(_)) => {
            return Err(Failure::invalid(format!(
                "{} is not MPEG-TS (no sync byte 0x47 every 188 bytes at its start): give a decrypted \
                 archive (an archive.ts as downloaded is still encrypted: `archivectl decrypt` or `pull` it)",
                args.path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::invalid(format!("{} is {e}", args.path.display())));
        }
    };
    out.emit(&report, || {
        println!("{}: MPEG-TS", args.path.display());
        println!("{}", super::describe_report(&report));
        match report.trailing_bytes {
            0 => {}
            n @ 1..=16 => println!(
                "{n} trailing bytes after the last whole packet (the PKCS#7 padding the documented \
                 `openssl enc -d -nopad` keeps; `decrypt --trim` removes it)"
            ),
            n => println!(
                "{n} trailing bytes after the last whole packet: more than PKCS#7 padding (at most 16), \
                 so the file was cut short or has bytes appended"
            ),
        }
    })
}
