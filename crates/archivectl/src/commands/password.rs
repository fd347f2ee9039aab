//! `archivectl password decrypt`: what the documented `base64 -d | rsautl -oaep | xxd` steps show.

use std::path::PathBuf;

use anyhow::Context;

use crate::output::Output;
use crate::secrets;

/// `archivectl password ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Unwrap a password with your private key and print its version, algorithm, mode, key and IV (hex).
    Decrypt(DecryptArgs),
}

/// Arguments of `archivectl password decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    /// Your RSA private key.
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// File whose first line is the private key's passphrase.
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
    /// The archive's password (base64).
    #[arg(long, value_name = "BASE64", group = "pw", required = true)]
    password: Option<String>,
    /// File holding the password, or a saved callback/REST JSON body; `-` for stdin.
    #[arg(long, value_name = "PATH", group = "pw", required = true)]
    password_file: Option<PathBuf>,
}

/// Runs `archivectl password ...`.
pub fn run(cmd: Command, out: &Output) -> anyhow::Result<()> {
    let Command::Decrypt(args) = cmd;
    let password = secrets::read_password(args.password.as_deref(), args.password_file.as_deref())?;
    let key = secrets::load_private_key(&args.key, args.passphrase_file.as_deref())?;
    let blob = archive_core::oaep::unwrap_password(&key, &password)
        .context("cannot unwrap the archive password")?;
    let key_hex = zeroize::Zeroizing::new(hex::encode(blob.key()));
    let iv_hex = hex::encode(blob.iv());
    let json = serde_json::json!({
        "version": blob.version(),
        "algorithm": blob.algorithm(),
        "algorithm_name": "AES-256",
        "mode": blob.mode(),
        "mode_name": "CBC",
        "key": key_hex.as_str(),
        "iv": iv_hex,
    });
    out.emit(&json, || {
        println!("version:   {}", blob.version());
        println!("algorithm: {} (AES-256)", blob.algorithm());
        println!("mode:      {} (CBC)", blob.mode());
        println!("key:       {}", key_hex.as_str());
        println!("iv:        {iv_hex}");
    })
}
