//! `archivectl storage set s3|azure`: the upload target and the encryption certificate, in one safe call.
//!
//! One of `--certificate` and `--no-encryption` is required, so nobody turns encryption off by accident.
//! The certificate is checked before anything is sent (RSA, at most 2048 bits). Values missing from the
//! flags come from `[target]` in the configuration file; secrets come only from files.
//!
//! Once the service has accepted the target, the ledger records which certificate (or none) is active for
//! the project from now on, so `pull --all` knows which archives must come with a password.

use std::path::PathBuf;

use anyhow::Context as _;
use archive_core::cert::Certificate;
use opentok_rest::model::{
    ArchiveEncryption, AzureConfig, Fallback, S3Config, ServerSideEncryption, StorageTarget,
};

use crate::context::{self, Context};
use crate::exit::Failure;

/// `archivectl storage ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Set the project's archive upload target and encryption certificate (PUT .../archive/storage).
    #[command(subcommand)]
    Set(SetTarget),
    /// Check a target before giving it to the service: write, list, read and delete a probe object.
    Check(CheckArgs),
}

/// `archivectl storage check`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    target: crate::target::TargetArgs,
}

/// `archivectl storage set ...`
#[derive(Debug, clap::Subcommand)]
pub enum SetTarget {
    /// An Amazon S3 bucket, or an S3-compatible one with --endpoint.
    S3(S3Args),
    /// A Microsoft Azure Blob Storage container.
    Azure(AzureArgs),
}

/// What every target takes: fallback and encryption.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "When an upload fails")]
pub struct CommonArgs {
    /// What the service does with an archive it cannot upload: `none` (lose it), `opentok`/`vonage` (keep it
    /// in the service's cloud for 72 hours).
    #[arg(long, value_enum, default_value_t = FallbackArg::None)]
    fallback: FallbackArg,
    #[command(flatten)]
    encryption: EncryptionArgs,
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
}

/// Exactly one of `--certificate` and `--no-encryption`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
#[command(next_help_heading = "Encryption (one of)")]
pub struct EncryptionArgs {
    /// Encrypt archives for this certificate (PEM, DER, base64 of PEM; RSA, at most 2048 bits).
    #[arg(long, value_name = "PATH")]
    certificate: Option<PathBuf>,
    /// Do not encrypt archives (sends `"certificate": null`).
    #[arg(long)]
    no_encryption: bool,
}

/// `--fallback` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FallbackArg {
    /// Lose archives that cannot be uploaded.
    None,
    /// Keep them in the service's cloud (older name).
    Opentok,
    /// Keep them in the service's cloud (newer name).
    Vonage,
}

/// `--sse` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SseArg {
    /// S3-managed server-side encryption (SSE-S3).
    S3,
    /// No server-side encryption.
    None,
}

/// `archivectl storage set s3`
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "The bucket")]
pub struct S3Args {
    #[command(flatten)]
    bucket: crate::target::S3BucketFlag,
    #[command(flatten)]
    s3: crate::target::S3CredentialFlags,
    /// Endpoint base URL of an S3-compatible store, e.g. `https://storage.googleapis.com` (default: Amazon S3).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Server-side encryption of the uploaded files.
    #[arg(long, value_enum)]
    sse: Option<SseArg>,
    #[command(flatten)]
    common: CommonArgs,
}

/// `archivectl storage set azure`
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "The container")]
pub struct AzureArgs {
    #[command(flatten)]
    azure: crate::target::AzureFlags,
    /// The account's domain, for sovereign clouds.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

fn encryption(common: &EncryptionArgs) -> anyhow::Result<(ArchiveEncryption, Option<Certificate>)> {
    match (&common.certificate, common.no_encryption) {
        (Some(path), _) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read certificate {}", path.display()))?;
            let cert = Certificate::parse(&bytes)
                .with_context(|| format!("certificate {}", path.display()))?;
            cert.check_service_acceptance()
                .with_context(|| format!("certificate {}", path.display()))?;
            Ok((ArchiveEncryption::for_certificate(&cert), Some(cert)))
        }
        (None, true) => Ok((ArchiveEncryption::Disabled, None)),
        (None, false) => Err(Failure::usage("give --certificate PATH or --no-encryption")),
    }
}

fn fallback(arg: FallbackArg) -> Fallback {
    match arg {
        FallbackArg::None => Fallback::None,
        FallbackArg::Opentok => Fallback::Opentok,
        FallbackArg::Vonage => Fallback::Vonage,
    }
}

/// Runs `archivectl storage ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        Command::Set(target) => set(target, ctx),
        Command::Check(args) => check(args, ctx),
    }
}

fn check(args: CheckArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = storage_fetch::Store::with_options(args.target.resolve(ctx)?, ctx.store_options())
        .context("storage target")?;
    let report = context::runtime()?.block_on(store.check());
    let steps: Vec<serde_json::Value> = report
        .results
        .iter()
        .map(|r| {
            let (status, detail) = match &r.outcome {
                storage_fetch::CheckOutcome::Ok(s) => ("ok", s.clone()),
                storage_fetch::CheckOutcome::Failed(e) => ("failed", e.to_string()),
                storage_fetch::CheckOutcome::Skipped(s) => ("skipped", s.clone()),
            };
            serde_json::json!({
                "step": r.step.name(), "status": status, "detail": detail,
                "elapsed_ms": r.elapsed.as_millis() as u64, "needed_by": r.step.needed_by(),
            })
        })
        .collect();
    let json = serde_json::json!({
        "target": report.target, "probe_key": report.probe_key, "ok": report.is_ok(),
        "service_can_upload": report.service_can_upload(), "pull_can_download": report.pull_can_download(),
        "steps": steps,
    });
    ctx.out.emit(&json, || print!("{report}"))?;
    match report.first_error() {
        None => Ok(()),
        Some(e) => Err(crate::exit::Failure {
            code: crate::exit::STORAGE,
            message: format!("the storage target failed the check: {e}"),
        }
        .into()),
    }
}

/// The storage target `[target]` in the configuration describes (what `storage set` sends without flags),
/// without a certificate yet, and its summary for people and JSON.
pub(crate) fn target_from_config(
    ctx: &Context,
    fallback: FallbackArg,
) -> anyhow::Result<(StorageTarget, serde_json::Value)> {
    let t = &ctx.config.target;
    let common = CommonArgs {
        fallback,
        encryption: EncryptionArgs {
            certificate: None,
            no_encryption: false,
        },
        ledger: crate::ledger_path::LedgerArgs::default(),
    };
    let kind = t.kind.as_deref().or(if t.bucket.is_some() {
        Some("s3")
    } else if t.container.is_some() {
        Some("azure")
    } else {
        None
    });
    let target = match kind {
        Some("s3") => SetTarget::S3(S3Args {
            bucket: crate::target::S3BucketFlag::default(),
            s3: crate::target::S3CredentialFlags::default(),
            endpoint: None,
            sse: None,
            common,
        }),
        Some(_) => SetTarget::Azure(AzureArgs {
            azure: crate::target::AzureFlags::default(),
            domain: None,
            common,
        }),
        None => {
            return Err(Failure::usage(
                "no storage target: a [target] section in archivectl.toml is needed",
            ));
        }
    };
    let (storage, _, summary) = resolve(target, ctx)?;
    Ok((storage, summary))
}

/// The target the flags (else `[target]`) describe, before its encryption is set.
fn resolve(
    target: SetTarget,
    ctx: &Context,
) -> anyhow::Result<(StorageTarget, CommonArgs, serde_json::Value)> {
    let t = &ctx.config.target;
    Ok(match target {
        SetTarget::S3(a) => {
            let bucket = crate::target::need(a.bucket.or_config(t), "--bucket", "bucket")?;
            let (access_key, secret_key) = a.s3.resolve(t)?;
            let endpoint = a.endpoint.or_else(|| t.endpoint.clone());
            let sse = a.sse.map(|s| match s {
                SseArg::S3 => ServerSideEncryption::S3,
                SseArg::None => ServerSideEncryption::None,
            });
            let summary = serde_json::json!({
                "type": "s3", "bucket": bucket, "access_key_id": access_key, "endpoint": endpoint,
                "sse": sse.map(|s| match s { ServerSideEncryption::S3 => "s3", ServerSideEncryption::None => "none" }),
            });
            let config = S3Config {
                bucket,
                secret_key,
                access_key,
                endpoint,
                sse,
            };
            (
                StorageTarget::s3(
                    config,
                    fallback(a.common.fallback),
                    ArchiveEncryption::Disabled,
                ),
                a.common,
                summary,
            )
        }
        SetTarget::Azure(a) => {
            let crate::target::AzureContainer {
                account_name,
                account_key,
                container,
            } = a.azure.resolve(t)?;
            let domain = a.domain.or_else(|| t.domain.clone());
            let summary = serde_json::json!({
                "type": "azure", "account_name": account_name, "container": container, "domain": domain,
            });
            let config = AzureConfig {
                account_name,
                account_key,
                container,
                domain,
            };
            (
                StorageTarget::azure(
                    config,
                    fallback(a.common.fallback),
                    ArchiveEncryption::Disabled,
                ),
                a.common,
                summary,
            )
        }
    })
}

fn set(target: SetTarget, ctx: &Context) -> anyhow::Result<()> {
    let (storage, common, summary) = resolve(target, ctx)?;
    let (encryption, cert) = encryption(&common.encryption)?;
    let storage = StorageTarget {
        certificate: Some(encryption),
        ..storage
    };
    let client = ctx.client()?;
    let project = ctx.project_id()?;
    // The ledger must be usable before the service is changed.
    let ledger_path = common.ledger.target(ctx)?;
    let mut ledger = ledger_path.open().map_err(|e| Failure {
        code: crate::exit::LEDGER,
        // The ledger's own error names the file once.
        message: format!("{e:#}; nothing was sent to the service"),
    })?;
    let since = time::OffsetDateTime::now_utc();
    context::runtime()?
        .block_on(client.set_archive_storage(&storage))
        .context("cannot set the archive storage")?;
    record_activation(&mut ledger, &project, cert.as_ref(), since).map_err(|e| Failure {
        code: crate::exit::LEDGER,
        message: format!(
            "the service accepted the archive storage, but the ledger {} could not record it: {e:#}; \
             run the same command again once the ledger is writable",
            ledger_path
        ),
    })?;
    let fallback = fallback(common.fallback);
    let fallback_name = match fallback {
        Fallback::None => "none",
        Fallback::Opentok => "opentok",
        Fallback::Vonage => "vonage",
    };
    let json = serde_json::json!({
        "target": summary,
        "fallback": fallback_name,
        "encrypted": cert.is_some(),
        "certificate_sha256": cert.as_ref().map(Certificate::sha256_fingerprint),
        "ledger": ledger_path.to_string(),
    });
    ctx.out.emit(&json, || {
        println!(
            "archive storage set: {} (fallback {fallback_name})",
            describe(&json["target"])
        );
        match &cert {
            Some(c) => println!(
                "archives will be encrypted for certificate sha256 {}",
                c.sha256_fingerprint()
            ),
            None => println!("archives will NOT be encrypted"),
        }
    })
}

/// Records in the ledger that from `since` on the project's archives are encrypted for `cert` (or, with
/// `None`, not encrypted). The activation is stamped just before the request, so that an archive the service
/// starts while the call is in flight is not taken for unencrypted.
pub(crate) fn record_activation(
    ledger: &mut archive_db::Ledger,
    project: &str,
    cert: Option<&Certificate>,
    since: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let fingerprint = match cert {
        Some(cert) => {
            let info = cert.info(None);
            // The ledger keys certificates by plain lowercase hex.
            let fingerprint = info
                .sha256_fingerprint
                .replace(':', "")
                .to_ascii_lowercase();
            ledger.record_certificate(&archive_db::CertificateRecord {
                fingerprint: fingerprint.clone(),
                project_id: Some(project.to_owned()),
                subject: info.subject,
                not_after: info.not_after,
                pem: cert.to_pem(),
            })?;
            Some(fingerprint)
        }
        None => None,
    };
    ledger.activate_certificate(project, fingerprint.as_deref(), since)?;
    Ok(())
}

/// A target's summary (from [`target_from_config`]) in words.
pub(crate) fn describe(target: &serde_json::Value) -> String {
    match target["type"].as_str() {
        Some("s3") => format!(
            "S3 bucket {}{}",
            target["bucket"].as_str().unwrap_or_default(),
            target["endpoint"]
                .as_str()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        ),
        _ => format!(
            "Azure container {} in account {}",
            target["container"].as_str().unwrap_or_default(),
            target["account_name"].as_str().unwrap_or_default()
        ),
    }
}
