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
    #[command(flatten)]
    options: KeyOptions,
    /// Replace existing files (a replaced key can no longer decrypt archives made for its certificate).
    #[arg(long)]
    force: bool,
}

/// The options of a new key pair, shared by `keygen` and `cert rotate`.
#[derive(Debug, clap::Args)]
pub struct KeyOptions {
    /// RSA key size; the service accepts at most 2048.
    #[arg(long, default_value_t = 2048, value_name = "N")]
    pub bits: usize,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365, value_name = "N")]
    pub days: u32,
    /// Certificate subject, an RFC 4514 name.
    #[arg(
        long,
        default_value = "CN=archivectl encrypted archives",
        value_name = "DN"
    )]
    pub subject: String,
    /// Encrypt the key with the passphrase on this file's first line (PBES2, PBKDF2-SHA256, AES-256-CBC).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

/// A key pair made by [`generate`], not written anywhere yet.
pub struct Generated {
    /// The private key.
    pub key: archive_pull::RsaPrivateKey,
    /// Its self-signed certificate.
    pub cert: Certificate,
    /// The key as PKCS#8 PEM, encrypted if a passphrase was given.
    pub key_pem: zeroize::Zeroizing<String>,
    /// Whether `key_pem` is encrypted.
    pub encrypted: bool,
    /// A warning about the key's size, if it is weak.
    pub weak: Option<String>,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// Refuses `--bits` the service does not take.
pub fn check_options(options: &KeyOptions) -> anyhow::Result<()> {
    if options.bits > archive_core::cert::SERVICE_MAX_KEY_BITS {
        return Err(Failure::invalid(format!(
            "--bits {}: the service accepts certificates of at most 2048 bits",
            options.bits
        )));
    }
    Ok(())
}

/// Refuses destinations that are the same file, directories, existing files (unless `force`), or in a
/// directory that does not exist.
pub fn check_destinations(key: &Path, cert: &Path, force: bool) -> anyhow::Result<()> {
    if key == cert {
        return Err(Failure::invalid("--key and --cert must be different files"));
    }
    for path in [key, cert] {
        if path.is_dir() {
            return Err(Failure::invalid(format!(
                "{} is a directory; give a file path",
                path.display()
            )));
        }
        if path.exists() && !force {
            return Err(Failure::invalid(format!(
                "{} exists; refusing to overwrite it (use --force to replace it)",
                path.display()
            )));
        }
    }
    for path in [key, cert] {
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
    Ok(())
}

/// Makes a key pair and its certificate as `options` say (notes on stderr).
pub fn generate(options: &KeyOptions, out: &Output) -> anyhow::Result<Generated> {
    let passphrase = options
        .passphrase_file
        .as_deref()
        .map(secrets::read_passphrase_file)
        .transpose()?;
    let weak = weak_key_warning(options.bits);
    if let Some(warning) = &weak {
        out.note(format!("warning: {warning}"));
    }
    out.note(format!("generating a {}-bit RSA key...", options.bits));
    let key = keys::generate_rsa_key(options.bits)?;
    let cert = Certificate::generate_self_signed(&key, &options.subject, options.days)?;
    let key_pem = keys::to_pkcs8_pem(&key, passphrase.as_ref())?;
    Ok(Generated {
        key,
        cert,
        key_pem,
        encrypted: passphrase.is_some(),
        weak,
    })
}

/// Writes the key (mode 0600) and the certificate. Both files are fully written beside their destinations
/// before either replaces anything, so a failure never leaves a new key without its certificate (or an old
/// key replaced).
pub fn write_pair(key_path: &Path, cert_path: &Path, pair: &Generated) -> anyhow::Result<()> {
    let key_file = stage_file(key_path, pair.key_pem.as_bytes(), 0o600)?;
    let cert_file = stage_file(cert_path, pair.cert.to_pem().as_bytes(), 0o644)?;
    key_file
        .commit()
        .with_context(|| format!("cannot write {}", key_path.display()))?;
    cert_file
        .commit()
        .with_context(|| format!("cannot write {}", cert_path.display()))
}

/// Runs `archivectl keygen`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    check_options(&args.options)?;
    check_destinations(&args.key, &args.cert, args.force)?;
    let pair = generate(&args.options, out)?;
    write_pair(&args.key, &args.cert, &pair)?;
    let info = pair.cert.info(Some(&pair.key));
    let json = serde_json::json!({
        "key": args.key,
        "cert": args.cert,
        "key_encrypted": pair.encrypted,
        "certificate": info,
        "warnings": pair.weak.iter().collect::<Vec<_>>(),
    });
    out.emit(&json, || {
        println!(
            "wrote private key {} (mode 0600{})",
            args.key.display(),
            if pair.encrypted { ", encrypted" } else { "" }
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
