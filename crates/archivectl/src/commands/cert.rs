//! `archivectl cert inspect` and `archivectl cert rotate` (in [`rotate`]).

mod keys_toml;
pub mod rotate;

use std::path::PathBuf;

use anyhow::Context;
use archive_core::cert::Certificate;

use crate::exit::Failure;
use crate::output::Output;
use crate::secrets;

/// `archivectl cert ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show a certificate's key size, validity, fingerprint, JSON encodings, and whether the service takes it.
    Inspect(InspectArgs),
    /// Make a new key pair and certificate, set it on the service, and list the new key first in
    /// archivectl.toml (the old keys stay, for older archives).
    Rotate(rotate::RotateArgs),
}

/// Arguments of `archivectl cert inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The certificate: PEM, DER, base64 of PEM, or `\n`-escaped PEM.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Check that this private key belongs to the certificate.
    #[arg(long, value_name = "PATH")]
    key: Option<PathBuf>,
    /// Passphrase file for --key.
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

/// Runs `archivectl cert ...`.
pub fn run(cmd: Command, out: Output, global: crate::context::GlobalArgs) -> anyhow::Result<()> {
    match cmd {
        Command::Inspect(args) => inspect(args, &out),
        Command::Rotate(args) => {
            crate::context::Context::new(out, global).and_then(|ctx| rotate::run(args, &ctx))
        }
    }
}

fn inspect(args: InspectArgs, out: &Output) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.path)
        .with_context(|| format!("cannot read certificate {}", args.path.display()))?;
    let cert = Certificate::parse(&bytes)
        .with_context(|| format!("certificate {}", args.path.display()))?;
    let key = args
        .key
        .as_deref()
        .map(|k| secrets::load_private_key(k, args.passphrase_file.as_deref()))
        .transpose()?;
    let info = cert.info(key.as_ref());
    let weak = info.key_bits.and_then(super::keygen::weak_key_warning);
    let days = super::doctor::days_left(cert.not_after());
    let expiry = expiry_warning(days);
    let mut json = serde_json::to_value(&info)?;
    json["expiry_days"] = serde_json::json!(days);
    json["warnings"] = serde_json::json!(weak.iter().chain(expiry.iter()).collect::<Vec<_>>());

    out.emit(&json, || {
        println!("subject:      {}", info.subject);
        println!("issuer:       {}", info.issuer);
        println!("serial:       {}", info.serial);
        println!("not before:   {}", info.not_before);
        println!(
            "not after:    {}{}",
            info.not_after,
            if info.expired { " (EXPIRED)" } else { "" }
        );
        println!(
            "expires in:   {days} days{}",
            expiry
                .as_ref()
                .map(|w| format!(" (WARNING: {w})"))
                .unwrap_or_default()
        );
        match info.key_bits {
            Some(bits) => println!(
                "key:          {} {bits} bits{}",
                info.key_algorithm,
                weak.as_ref()
                    .map(|w| format!(" (WEAK: {w})"))
                    .unwrap_or_default()
            ),
            None => println!("key:          {} (not RSA)", info.key_algorithm),
        }
        println!("sha256:       {}", info.sha256_fingerprint);
        match &info.service_rejection {
            None => println!("service:      accepted (RSA, at most 2048 bits)"),
            Some(why) => println!("service:      REJECTED: {why}"),
        }
        if let Some(m) = info.matches_key {
            println!(
                "matches key:  {}",
                if m {
                    "yes"
                } else {
                    "NO: this key cannot decrypt archives made for it"
                }
            );
        }
        println!("json base64:  {}", info.json_base64);
        println!("json escaped: {}", info.json_escaped);
    })?;
    if info.matches_key == Some(false) {
        let key = args
            .key
            .as_deref()
            .unwrap_or_else(|| std::path::Path::new("--key"));
        return Err(Failure {
            code: crate::exit::WRONG_SECRET,
            message: format!(
                "the private key {} does not belong to certificate {}: it cannot decrypt the archives made \
                 for it; give the key this certificate was made from",
                key.display(),
                args.path.display()
            ),
        }
        .into());
    }
    Ok(())
}

/// A warning when a certificate expires in under [`super::doctor::EXPIRY_WARNING_DAYS`] days (or has).
pub fn expiry_warning(days: i64) -> Option<String> {
    if days < 0 {
        Some(format!(
            "the certificate expired {} days ago: make a new one with `archivectl cert rotate`",
            -days
        ))
    } else if days < super::doctor::EXPIRY_WARNING_DAYS {
        Some(format!(
            "the certificate expires in {days} days: rotate it with `archivectl cert rotate`"
        ))
    } else {
        None
    }
}
