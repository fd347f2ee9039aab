//! `archivectl decrypt`: the documented three openssl/xxd steps in one, checked and atomic.

use std::path::PathBuf;

use anyhow::Context;
use archive_core::archive::{self, DecryptOptions};

use crate::output::Output;
use crate::secrets;

/// Arguments of `archivectl decrypt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your RSA private key (PEM or DER; PKCS#1, PKCS#8, encrypted or not).
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// File whose first line is the private key's passphrase (else you are prompted on a terminal).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
    /// The archive's password (base64), as in the callback or the REST API.
    #[arg(long, value_name = "BASE64", group = "pw", required = true)]
    password: Option<String>,
    /// File holding the password: the base64 alone, or a saved callback/REST JSON body; `-` for stdin.
    #[arg(long, value_name = "PATH", group = "pw", required = true)]
    password_file: Option<PathBuf>,
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
}

/// Runs `archivectl decrypt`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let password = secrets::read_password(args.password.as_deref(), args.password_file.as_deref())?;
    let key = secrets::load_private_key(&args.key, args.passphrase_file.as_deref())?;
    let blob = archive_core::oaep::unwrap_password(&key, &password)
        .context("cannot unwrap the archive password")?;
    let opts = DecryptOptions {
        trim: args.trim,
        ..Default::default()
    };
    let summary = archive::decrypt_file(&args.input, &args.output, &blob, &opts)
        .with_context(|| format!("cannot decrypt {}", args.input.display()))?;
    let json = serde_json::json!({
        "input": args.input,
        "output": args.output,
        "trim": args.trim,
        "summary": summary,
    });
    out.emit(&json, || {
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
