//! `archivectl keygen`: `openssl req -new -x509 -days 365 -newkey rsa:2048` without openssl.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use archive_core::{atomic::AtomicFile, cert::Certificate, keys};

use crate::exit::Failure;
use crate::output::Output;
use crate::secrets;

/// Arguments of `archivectl keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the certificate (PEM) to send to the service.
    #[arg(long, value_name = "PATH")]
    cert: PathBuf,
    /// Where to write the private key (PKCS#8 PEM, mode 0600). Keep it safe: without it archives are noise.
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// RSA key size; the service accepts at most 2048.
    #[arg(long, default_value_t = 2048, value_name = "N")]
    bits: usize,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365, value_name = "N")]
    days: u32,
    /// Certificate subject, an RFC 4514 name.
    #[arg(
        long,
        default_value = "CN=archivectl encrypted archives",
        value_name = "DN"
    )]
    subject: String,
    /// Encrypt the key with the passphrase on this file's first line (PBES2, PBKDF2-SHA256, AES-256-CBC).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
    /// Replace existing files (a replaced key can no longer decrypt archives made for its certificate).
    #[arg(long)]
    force: bool,
}

/// Runs `archivectl keygen`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    if args.bits > archive_core::cert::SERVICE_MAX_KEY_BITS {
        return Err(Failure::invalid(format!(
            "--bits {}: the service accepts certificates of at most 2048 bits",
            args.bits
        )));
    }
    if args.key == args.cert {
        return Err(Failure::invalid("--key and --cert must be different files"));
    }
    for path in [&args.key, &args.cert] {
        if path.is_dir() {
            return Err(Failure::invalid(format!(
                "{} is a directory; give a file path",
                path.display()
            )));
        }
        if path.exists() && !args.force {
            return Err(Failure::invalid(format!(
                "{} exists; refusing to overwrite it (use --force to replace it)",
                path.display()
            )));
        }
    }
    for path in [&args.key, &args.cert] {
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            if dir.exists() {
                return Err(Failure::invalid(format!(
                    "cannot create {}: {} is a file, not a directory",
                    path.display(),
                    dir.display()
                )));
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "cannot create {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            )
            .into());
        }
    }
    let passphrase = args
        .passphrase_file
        .as_deref()
        .map(secrets::read_passphrase_file)
        .transpose()?;
    let weak = weak_key_warning(args.bits);
    if let Some(warning) = &weak {
        out.note(format!("warning: {warning}"));
    }
    out.note(format!("generating a {}-bit RSA key...", args.bits));
    let key = keys::generate_rsa_key(args.bits)?;
    let cert = Certificate::generate_self_signed(&key, &args.subject, args.days)?;
    let key_pem = keys::to_pkcs8_pem(&key, passphrase.as_ref())?;
    // Both files are fully written beside their destinations before either replaces anything, so a failure
    // never leaves a new key without its certificate (or an old key replaced).
    let key_file = stage_file(&args.key, key_pem.as_bytes(), 0o600)?;
    let cert_file = stage_file(&args.cert, cert.to_pem().as_bytes(), 0o644)?;
    key_file
        .commit()
        .with_context(|| format!("cannot write {}", args.key.display()))?;
    cert_file
        .commit()
        .with_context(|| format!("cannot write {}", args.cert.display()))?;
    let info = cert.info(Some(&key));
    let json = serde_json::json!({
        "key": args.key,
        "cert": args.cert,
        "key_encrypted": passphrase.is_some(),
        "certificate": info,
        "warnings": weak.iter().collect::<Vec<_>>(),
    });
    out.emit(&json, || {
        println!(
            "wrote private key {} (mode 0600{})",
            args.key.display(),
            if passphrase.is_some() {
                ", encrypted"
            } else {
                ""
            }
        );
        println!("wrote certificate {}", args.cert.display());
        println!("  subject:     {}", info.subject);
        println!("  valid until: {}", info.not_after);
        println!("  sha256:      {}", info.sha256_fingerprint);
        println!(
            "send it with: archivectl storage set ... --certificate {}",
            args.cert.display()
        );
    })
}

/// The RSA key size recommended (and the most the service accepts).
pub const RECOMMENDED_BITS: usize = 2048;

/// A warning for an RSA key of `bits` bits, if it is weaker than recommended.
pub fn weak_key_warning(bits: usize) -> Option<String> {
    (bits < RECOMMENDED_BITS).then(|| {
        format!(
            "a {bits}-bit RSA key is weak (it can be broken): use {RECOMMENDED_BITS} bits, the default, \
             recommended and the most the service accepts"
        )
    })
}

/// Writes `bytes` to `path` atomically with `mode` (on Unix).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    stage_file(path, bytes, mode)?
        .commit()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `bytes` with `mode` to a temporary file beside `path`, which [`AtomicFile::commit`] then renames
/// into place (and dropping it removes).
fn stage_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<AtomicFile> {
    let mut file =
        AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    set_mode(file.file_mut(), mode)
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
}

#[cfg(unix)]
fn set_mode(file: &mut std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &mut std::fs::File, _mode: u32) -> std::io::Result<()> {
    Ok(())
}
