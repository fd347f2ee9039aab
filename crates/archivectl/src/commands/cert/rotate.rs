//! `archivectl cert rotate`: a new key pair and certificate, set on the service, and the new key listed first
//! in archivectl.toml with the old ones kept (so older archives still decrypt).
//!
//! The steps are ordered so that a failure leaves nothing half-done:
//!
//! 1. generate the key pair (memory only);
//! 2. write the new key (0600) and certificate, refusing existing files;
//! 3. write the edited archivectl.toml to a temporary file beside it (so the directory must be writable);
//! 4. open the ledger and read the certificate the service has now, as the ledger recorded it;
//! 5. set the archive storage with the new certificate on the service;
//! 6. rename the edited archivectl.toml over the old one;
//! 7. record the new certificate in the ledger.
//!
//! A failure at steps 2–5 removes the new files and the temporary file: the service keeps the old
//! certificate and the configuration is unchanged. The new key is on disk before the service can encrypt
//! anything for its certificate.
//!
//! A failure at step 6 or 7 is undone: archivectl.toml is put back byte for byte (step 7), and the service is
//! set back to the certificate read at step 4 (the same target from the configuration). The new key and
//! certificate stay on disk, since an archive started while the service had the new certificate is encrypted
//! for it; after a failure at step 6 the ledger records both changes, so such an archive is known to need the
//! new key. The error says where the rotation stopped and what was undone.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use archive_core::cert::Certificate;
use opentok_rest::model::{ArchiveEncryption, StorageTarget};

use super::keys_toml::{self, NewKey};
use crate::commands::keygen::{self, KeyOptions};
use crate::commands::storage::{self, FallbackArg};
use crate::context::{self, Context};
use crate::exit::Failure;

/// Arguments of `archivectl cert rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Where to write the new certificate (PEM); it must not exist yet.
    #[arg(long, value_name = "PATH")]
    cert: PathBuf,
    /// Where to write the new private key (PKCS#8 PEM, mode 0600); it must not exist yet.
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    #[command(flatten)]
    options: KeyOptions,
    /// What the service does with an archive it cannot upload (as for `storage set`).
    #[arg(long, value_enum, default_value_t = FallbackArg::None)]
    fallback: FallbackArg,
    /// Show each step and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
}

/// New files that are removed when dropped, unless kept.
struct NewFiles(Vec<PathBuf>);

impl NewFiles {
    fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for NewFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `path` (a file to be created) as archivectl.toml in `config_dir` should name it: relative to that
/// directory when it is inside it, else absolute.
fn path_for_config(path: &Path, config_dir: &Path) -> anyhow::Result<String> {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Failure::invalid(format!("{} is not a file path", path.display())))?;
    let absolute = std::fs::canonicalize(&parent)
        .with_context(|| format!("cannot resolve {}", parent.display()))?
        .join(name);
    let relative = absolute.strip_prefix(config_dir).unwrap_or(&absolute);
    relative.to_str().map(str::to_owned).ok_or_else(|| {
        Failure::invalid(format!(
            "{} is not valid UTF-8 and cannot be written in archivectl.toml",
            absolute.display()
        ))
    })
}

/// Runs `archivectl cert rotate`.
pub fn run(args: RotateArgs, ctx: &Context) -> anyhow::Result<()> {
    let config_path = ctx.config.source.clone().ok_or_else(|| {
        Failure::usage(
            "cert rotate lists the new key in archivectl.toml, and none was found: give --config PATH",
        )
    })?;
    // The real file, so that a symbolic link stays one and the temporary file is made beside the target.
    let config_path = std::fs::canonicalize(&config_path)
        .with_context(|| format!("cannot resolve {}", config_path.display()))?;
    let config_dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    keygen::check_options(&args.options)?;
    keygen::check_destinations(&args.key, &args.cert, false)?;
    let (target, summary) = storage::target_from_config(ctx, args.fallback)?;
    let client = ctx.client()?;
    let project = ctx.project_id()?;
    let ledger_path = args.ledger.target(ctx)?;
    let key_entry = path_for_config(&args.key, &config_dir)?;
    let pass_entry = args
        .options
        .passphrase_file
        .as_deref()
        .map(|p| {
            if p.exists() {
                path_for_config(p, &config_dir)
            } else {
                Err(Failure::invalid(format!(
                    "passphrase file {} does not exist",
                    p.display()
                )))
            }
        })
        .transpose()?;
    let original = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let edited = keys_toml::add_key(
        &original,
        ctx.config.profile_name.as_deref(),
        &NewKey {
            key: &key_entry,
            passphrase_file: pass_entry.as_deref(),
        },
    )
    .with_context(|| format!("cannot add the new key to {}", config_path.display()))?;
    let where_keys = match &ctx.config.profile_name {
        Some(p) => format!("[profile.{p}.keys]"),
        None => "[keys]".to_string(),
    };
    let steps = [
        format!(
            "generate a {}-bit RSA key and a certificate valid {} days ({})",
            args.options.bits, args.options.days, args.options.subject
        ),
        format!(
            "write the key {} (mode 0600{}) and the certificate {}",
            args.key.display(),
            if pass_entry.is_some() {
                ", encrypted"
            } else {
                ""
            },
            args.cert.display()
        ),
        format!(
            "write the edited {} to a temporary file beside it: {where_keys} private_key gets {key_entry} \
             in front, the old keys stay",
            config_path.display()
        ),
        format!(
            "open the ledger {} and read the certificate the service has now (to restore it should a later \
             step fail)",
            ledger_path
        ),
        format!(
            "set the archive storage of project {project} at {}: {} (fallback {}), encrypted for the new \
             certificate",
            client.base_url(),
            storage::describe(&summary),
            fallback_name(args.fallback)
        ),
        format!("replace {} with the edited file", config_path.display()),
        format!("record the new certificate in the ledger {}", ledger_path),
    ];
    if args.dry_run {
        let json = serde_json::json!({ "dry_run": true, "steps": steps });
        return ctx.out.emit(&json, || {
            println!("dry run: nothing is changed; cert rotate would:");
            for (i, step) in steps.iter().enumerate() {
                println!("  {}. {step}", i + 1);
            }
        });
    }
    let step = |n: usize| ctx.out.note(format!("[{n}/7] {}", steps[n - 1]));
    let stopped = |n: usize| {
        format!(
            "cert rotate stopped at step {n} ({}); nothing was changed: the service keeps the old \
             certificate, {} is as it was, no new file is left",
            steps[n - 1].split(':').next().unwrap_or_default(),
            config_path.display()
        )
    };

    step(1);
    let pair = keygen::generate(&args.options, &ctx.out).with_context(|| stopped(1))?;

    step(2);
    let mut new_files = NewFiles(Vec::new());
    keygen::write_pair(&args.key, &args.cert, &pair).with_context(|| {
        // The key may be in place and the certificate not: nothing of this run may stay.
        if std::fs::read(&args.key).ok().as_deref() == Some(pair.key_pem.as_bytes()) {
            let _ = std::fs::remove_file(&args.key);
        }
        stopped(2)
    })?;
    new_files.0.extend([args.key.clone(), args.cert.clone()]);

    step(3);
    let staged = stage_config(&config_path, &edited).with_context(|| stopped(3))?;

    step(4);
    let mut ledger = ledger_path.open().map_err(|e| Failure {
        code: crate::exit::LEDGER,
        message: format!("{}: {e:#}", stopped(4)),
    })?;
    let previous = previous_certificate(&ledger, &project).map_err(|e| Failure {
        code: crate::exit::LEDGER,
        message: format!("{}: {e:#}", stopped(4)),
    })?;

    step(5);
    let storage = StorageTarget {
        certificate: Some(ArchiveEncryption::for_certificate(&pair.cert)),
        ..target
    };
    let since = time::OffsetDateTime::now_utc();
    let runtime = context::runtime()?;
    runtime
        .block_on(client.set_archive_storage(&storage))
        .with_context(|| stopped(5))?;

    // From here the service has encrypted for the new certificate, if only for a moment: its key stays
    // whatever happens, and a failure sets the service back to the previous certificate.
    new_files.keep();
    let kept = format!(
        "the new key {} and certificate {} are kept (an archive started meanwhile is encrypted for them)",
        args.key.display(),
        args.cert.display()
    );
    let restore_service = || -> Result<(time::OffsetDateTime, String), String> {
        let Some(old) = &previous else {
            return Err(format!(
                "the ledger {} recorded no certificate in use before, so the service could not be set back \
                 and still encrypts for the new certificate {}: set the one you want with `archivectl storage \
                 set ... --certificate`",
                ledger_path,
                args.cert.display()
            ));
        };
        let back = StorageTarget {
            certificate: Some(ArchiveEncryption::for_certificate(old)),
            ..storage.clone()
        };
        let at = time::OffsetDateTime::now_utc();
        let fingerprint = Certificate::sha256_fingerprint(old);
        runtime
            .block_on(client.set_archive_storage(&back))
            .map(|()| {
                (
                    at,
                    format!("the service is back on the old certificate (sha256 {fingerprint})"),
                )
            })
            .map_err(|e| {
                format!(
                    "the service could NOT be set back to the old certificate (sha256 {fingerprint}): {e}; it \
                     encrypts for the new certificate {}: set the one you want with `archivectl storage set \
                     ... --certificate`",
                    args.cert.display()
                )
            })
    };

    step(6);
    if let Err(e) = staged.persist(&config_path) {
        // The temporary file is removed as it drops; archivectl.toml was not touched.
        let reason = e.error.to_string();
        drop(e.file);
        let service = match restore_service() {
            Ok((back_at, said)) => {
                // The ledger tells which archives need the new key: those started in between.
                let ledger_note = storage::record_activation(
                    &mut ledger,
                    &project,
                    Some(&pair.cert),
                    since,
                )
                .and_then(|()| {
                    storage::record_activation(&mut ledger, &project, previous.as_ref(), back_at)
                })
                .map(|()| {
                    format!(
                        "the ledger {} records the new certificate as in use for the {:.3} s in between",
                        ledger_path,
                        (back_at - since).as_seconds_f64()
                    )
                })
                .unwrap_or_else(|e| {
                    format!(
                        "the ledger {} could not record the new certificate's moment in use: {e:#}",
                        ledger_path
                    )
                });
                format!("{said}; {ledger_note}")
            }
            Err(said) => said,
        };
        return Err(Failure {
            code: crate::exit::IO,
            message: format!(
                "cert rotate stopped at step 6 (replace {}): {reason}; undone: {} is as it was, {service}; {kept}",
                config_path.display(),
                config_path.display(),
            ),
        }
        .into());
    }

    step(7);
    if let Err(e) = storage::record_activation(&mut ledger, &project, Some(&pair.cert), since) {
        let config = match stage_config(&config_path, &original)
            .and_then(|f| f.persist(&config_path).map_err(|e| e.error.into()))
        {
            Ok(_) => format!("{} is back as it was", config_path.display()),
            Err(e) => format!(
                "{} could NOT be put back ({e:#}): remove {key_entry} from {where_keys} private_key yourself",
                config_path.display()
            ),
        };
        let service = match restore_service() {
            Ok((_, said)) => said,
            Err(said) => said,
        };
        return Err(Failure {
            code: crate::exit::LEDGER,
            message: format!(
                "cert rotate stopped at step 7 (record the new certificate in the ledger {}): {e:#}; undone: \
                 {config}, {service}; {kept}",
                ledger_path
            ),
        }
        .into());
    }

    let info = pair.cert.info(Some(&pair.key));
    let keys: Vec<String> =
        crate::config::Config::read_profile(&config_path, ctx.config.profile_name.as_deref())
            .ok()
            .and_then(|c| c.keys.private_key.map(|k| k.to_vec()))
            .unwrap_or_default()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    let json = serde_json::json!({
        "key": args.key,
        "cert": args.cert,
        "key_encrypted": pair.encrypted,
        "certificate": info,
        "certificate_sha256": Certificate::sha256_fingerprint(&pair.cert),
        "target": summary,
        "config": config_path,
        "keys": keys,
        "ledger": ledger_path.to_string(),
        "warnings": pair.weak.iter().collect::<Vec<_>>(),
    });
    ctx.out.emit(&json, || {
        println!(
            "rotated: the service now encrypts archives for certificate sha256 {}",
            info.sha256_fingerprint
        );
        println!(
            "  new key {}, certificate {} (valid until {})",
            args.key.display(),
            args.cert.display(),
            info.not_after
        );
        println!(
            "  {} {where_keys} private_key: {}",
            config_path.display(),
            keys.join(", ")
        );
        println!("  older archives still decrypt with the old keys, which stay listed");
    })
}

/// The certificate the service encrypts the project's archives for now, as the ledger recorded it (`None`
/// when it recorded none, or encryption off).
fn previous_certificate(
    ledger: &archive_db::Ledger,
    project: &str,
) -> anyhow::Result<Option<Certificate>> {
    let Some(record) = ledger.active_certificate(project, time::OffsetDateTime::now_utc())? else {
        return Ok(None);
    };
    let cert = Certificate::parse(record.pem.as_bytes()).with_context(|| {
        format!(
            "the ledger's certificate in use (sha256 {}) does not parse",
            record.fingerprint
        )
    })?;
    Ok(Some(cert))
}

fn fallback_name(f: FallbackArg) -> &'static str {
    match f {
        FallbackArg::None => "none",
        FallbackArg::Opentok => "opentok",
        FallbackArg::Vonage => "vonage",
    }
}

/// Writes `text` to a temporary file beside `path` with `path`'s permissions, flushed to disk.
fn stage_config(path: &Path, text: &str) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".archivectl.toml.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let permissions = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions();
    file.as_file()
        .set_permissions(permissions)
        .with_context(|| format!("cannot set the permissions of {}", file.path().display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", file.path().display()))?;
    Ok(file)
}
