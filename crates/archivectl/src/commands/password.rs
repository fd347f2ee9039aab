//! `archivectl password decrypt`: what the documented `base64 -d | rsautl -oaep | xxd` steps show.

use crate::context::Context;
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
    #[command(flatten)]
    key: secrets::KeyArgs,
    #[command(flatten)]
    password: secrets::PasswordArgs,
}

/// Runs `archivectl password ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    let Command::Decrypt(args) = cmd;
    let password = args.password.read()?;
    let blob = args.key.unwrap_password(&ctx.config, &password)?;
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
    ctx.out.emit(&json, || {
        println!("version:   {}", blob.version());
        println!("algorithm: {} (AES-256)", blob.algorithm());
        println!("mode:      {} (CBC)", blob.mode());
        println!("key:       {}", key_hex.as_str());
        println!("iv:        {iv_hex}");
    })
}
