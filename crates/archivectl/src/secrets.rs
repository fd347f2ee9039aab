//! Reading secrets and the inputs that lead to them: private keys (with a passphrase from a file or a
//! terminal prompt), and archive passwords (from an argument, a file, or a saved callback body).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use archive_core::PasswordBlob;
use archive_core::keys::{self, KeyError};
use archive_pull::{KeyRing, RsaPrivateKey};
use secrecy::SecretString;

use crate::config::Config;
use crate::exit::Failure;

/// Where the archive's password comes from: exactly one of `--password` and `--password-file`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct PasswordArgs {
    /// The archive's password (base64), as in the status callback or the REST API.
    #[arg(long, value_name = "BASE64")]
    pub password: Option<String>,
    /// File holding the password: the base64 alone, or a saved callback/REST JSON body; `-` for stdin.
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<std::path::PathBuf>,
}

impl PasswordArgs {
    /// Reads the base64 password.
    pub fn read(&self) -> anyhow::Result<String> {
        read_password(self.password.as_deref(), self.password_file.as_deref())
    }
}

/// The private key and, for an encrypted one, its passphrase file.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Your RSA private key (PEM or DER; PKCS#1 or PKCS#8, encrypted or not). Default: the keys listed under
    /// `[keys] private_key` in archivectl.toml, each tried in turn (certificate rotation).
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
    /// File whose first line is the key's passphrase (else you are prompted on a terminal).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<std::path::PathBuf>,
}

impl KeyArgs {
    /// The keys to try, in order: `--key`, else the configuration's `[keys]`.
    pub fn candidates(
        &self,
        config: &Config,
    ) -> anyhow::Result<Vec<(std::path::PathBuf, Option<std::path::PathBuf>)>> {
        if let Some(key) = &self.key {
            return Ok(vec![(key.clone(), self.passphrase_file.clone())]);
        }
        let keys = config.key_paths()?;
        if keys.is_empty() {
            return Err(Failure::invalid(
                "give --key PATH (or list keys under [keys] private_key in archivectl.toml)",
            ));
        }
        Ok(keys)
    }

    /// The key ring of `--key`, else of the configuration's `[keys]`: each key is loaded (its passphrase
    /// read or prompted for) only when a password is unwrapped. If there is no key to try, the ring's one
    /// entry says so when it is used (an unencrypted archive needs no key).
    pub fn key_ring(&self, config: &Config) -> KeyRing {
        match self.candidates(config) {
            Ok(candidates) => {
                candidates
                    .into_iter()
                    .fold(KeyRing::new(), |ring, (path, passphrase)| {
                        let label = path.display().to_string();
                        ring.with_key(label, move || {
                            load_private_key(&path, passphrase.as_deref()).map_err(Into::into)
                        })
                    })
            }
            Err(e) => {
                let (code, message) = (crate::exit::code_for(&e), format!("{e:#}"));
                KeyRing::new().with_key("", move || {
                    Err(Box::new(Failure {
                        code,
                        message: message.clone(),
                    }))
                })
            }
        }
    }

    /// Unwraps `password` with the first key of the ring it was wrapped for (see [`Self::key_ring`]).
    pub fn unwrap_password(&self, config: &Config, password: &str) -> anyhow::Result<PasswordBlob> {
        let out = crate::output::Output::new(false);
        let observer = crate::commands::pull::CliObserver(&out);
        Ok(self.key_ring(config).unwrap_password(password, &observer)?)
    }
}

/// Reads a passphrase file (its first line).
pub fn read_passphrase_file(path: &Path) -> anyhow::Result<SecretString> {
    let bytes = keys::read_secret_file(path)
        .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
    keys::passphrase_from_file_contents(&bytes)
        .with_context(|| format!("passphrase file {}", path.display()))
}

/// Asks for a passphrase on the terminal, without echo.
pub fn prompt_passphrase(prompt: &str) -> anyhow::Result<SecretString> {
    let pass =
        rpassword::prompt_password(prompt).context("cannot read a passphrase from the terminal")?;
    Ok(SecretString::from(pass))
}

/// Loads the private key at `path`; an encrypted key takes its passphrase from `passphrase_file`, else from a
/// prompt when stdin is a terminal.
pub fn load_private_key(
    path: &Path,
    passphrase_file: Option<&Path>,
) -> anyhow::Result<RsaPrivateKey> {
    let bytes = keys::read_secret_file(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    let context = || format!("private key {}", path.display());
    let passphrase = passphrase_file.map(read_passphrase_file).transpose()?;
    match keys::load_private_key(&bytes, passphrase.as_ref()) {
        Err(KeyError::PassphraseRequired) if std::io::stdin().is_terminal() => {
            let pass = prompt_passphrase(&format!("Passphrase for {}: ", path.display()))?;
            keys::load_private_key(&bytes, Some(&pass)).with_context(context)
        }
        other => other.with_context(context),
    }
}

/// The base64 password from `--password` or `--password-file`. A file may hold the bare base64, or a saved
/// callback or REST body (JSON with a `password` field).
pub fn read_password(inline: Option<&str>, file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(p) = inline {
        return Ok(p.to_string());
    }
    let Some(path) = file else {
        return Err(Failure::invalid(
            "give the archive's password with --password or --password-file",
        ));
    };
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the password from stdin")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?
    };
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            Failure::invalid(format!(
                "password file {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        return match value.get("password") {
            Some(serde_json::Value::String(p)) if !p.is_empty() => Ok(p.clone()),
            Some(serde_json::Value::String(_)) => Err(Failure::invalid(format!(
                "the archive in {} has an empty password: it is not encrypted",
                path.display()
            ))),
            _ => Err(Failure::invalid(format!(
                "{} has no \"password\" field",
                path.display()
            ))),
        };
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_may_be_a_callback_body() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cb.json");
        std::fs::write(&p, r#"{"id":"x","event":"archive","password":"QUJD"}"#).unwrap();
        assert_eq!(read_password(None, Some(&p)).unwrap(), "QUJD");
        std::fs::write(&p, r#"{"id":"x","password":""}"#).unwrap();
        assert!(
            read_password(None, Some(&p))
                .unwrap_err()
                .to_string()
                .contains("not encrypted")
        );
        std::fs::write(&p, "  QUJD\n").unwrap();
        assert_eq!(read_password(None, Some(&p)).unwrap(), "QUJD");
        assert!(read_password(None, None).is_err());
    }
}
