//! Which bucket or container to read archives from: flags, else `[target]` in archivectl.toml.

use std::path::PathBuf;

use storage_fetch::{AzureTarget, S3Target, Target};

use crate::context::{self, Context};
use crate::exit::Failure;

/// The storage target's flags (each defaults to the same key under `[target]`).
///
/// The S3 flags are [`S3BucketFlag`] and [`S3CredentialFlags`], the Azure flags [`AzureFlags`]; here their
/// help is the shorter one that says which store each belongs to.
#[derive(Debug, Default, clap::Args)]
#[command(
    mut_arg("bucket", |a| a.help("S3 bucket")),
    mut_arg("access_key_id", |a| a.help("S3 access key id")),
    mut_arg("secret_access_key_file", |a| a.help("File whose first line is the S3 secret access key")),
    mut_arg("account_name", |a| a.help("Azure storage account")),
    mut_arg("account_key_file", |a| a.help("File whose first line is the Azure account key")),
    mut_arg("container", |a| a.help("Azure container")),
)]
pub struct TargetArgs {
    /// `s3` or `azure` (default: `[target] type`, else s3 if a bucket is given, azure if a container is).
    #[arg(long = "target-type", value_name = "TYPE")]
    kind: Option<String>,
    #[command(flatten)]
    bucket: S3BucketFlag,
    /// Endpoint URL: an S3-compatible store, or an Azure blob endpoint (e.g. Azurite).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// S3 region (default us-east-1).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    #[command(flatten)]
    s3: S3CredentialFlags,
    #[command(flatten)]
    azure: AzureFlags,
}

/// The S3 bucket's flag, one definition for `storage set s3` and the targets archives are read from (`pull`,
/// `storage check`). A flag of its own, apart from [`S3CredentialFlags`], so that each command keeps its
/// order of flags in `--help`.
#[derive(Debug, Default, clap::Args)]
pub struct S3BucketFlag {
    /// The bucket (default: `[target] bucket`).
    #[arg(long, value_name = "BUCKET")]
    bucket: Option<String>,
}

impl S3BucketFlag {
    /// The bucket from the flag, else `[target] bucket` (`None`: neither).
    pub(crate) fn or_config(&self, t: &crate::config::TargetConfig) -> Option<String> {
        self.bucket.clone().or_else(|| t.bucket.clone())
    }
}

/// The S3 credentials' flags, one definition for `storage set s3` and the targets archives are read from.
/// Each defaults to the same key under `[target]`.
#[derive(Debug, Default, clap::Args)]
pub struct S3CredentialFlags {
    /// The access key id (default: `[target] access_key_id`).
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// File whose first line is the secret access key (default: `[target] secret_access_key_file`).
    #[arg(long, value_name = "PATH")]
    secret_access_key_file: Option<PathBuf>,
}

impl S3CredentialFlags {
    /// The access key id and the secret access key (read from its file), each from its flag, else its key
    /// under `[target]`; a usage error names the first one missing.
    pub(crate) fn resolve(
        &self,
        t: &crate::config::TargetConfig,
    ) -> anyhow::Result<(String, secrecy::SecretString)> {
        let access = need(
            self.access_key_id
                .clone()
                .or_else(|| t.access_key_id.clone()),
            "--access-key-id",
            "access_key_id",
        )?;
        let secret_file = need(
            self.secret_access_key_file
                .clone()
                .or_else(|| t.secret_access_key_file.clone()),
            "--secret-access-key-file",
            "secret_access_key_file",
        )?;
        let secret = context::read_secret_file(&secret_file, "secret access key")?;
        Ok((access, secret))
    }
}

/// The Azure container's flags, one definition for `storage set azure` and the targets archives are read
/// from (`pull`, `storage check`). Each defaults to the same key under `[target]`.
#[derive(Debug, Default, clap::Args)]
pub struct AzureFlags {
    /// The storage account (default: `[target] account_name`).
    #[arg(long, value_name = "NAME")]
    account_name: Option<String>,
    /// File whose first line is the account key (default: `[target] account_key_file`).
    #[arg(long, value_name = "PATH")]
    account_key_file: Option<PathBuf>,
    /// The container (default: `[target] container`).
    #[arg(long, value_name = "NAME")]
    container: Option<String>,
}

/// An Azure container's account, key and name, from the flags, else `[target]`.
pub(crate) struct AzureContainer {
    /// The storage account.
    pub account_name: String,
    /// The account key (read from its file).
    pub account_key: secrecy::SecretString,
    /// The container.
    pub container: String,
}

impl AzureFlags {
    /// The account, its key (read from the key file) and the container, each from its flag, else its key
    /// under `[target]`; a usage error names the first one missing.
    pub(crate) fn resolve(
        &self,
        t: &crate::config::TargetConfig,
    ) -> anyhow::Result<AzureContainer> {
        let account_name = need(
            self.account_name.clone().or_else(|| t.account_name.clone()),
            "--account-name",
            "account_name",
        )?;
        let key_file = need(
            self.account_key_file
                .clone()
                .or_else(|| t.account_key_file.clone()),
            "--account-key-file",
            "account_key_file",
        )?;
        let account_key = context::read_secret_file(&key_file, "account key")?;
        let container = need(
            self.container.clone().or_else(|| t.container.clone()),
            "--container",
            "container",
        )?;
        Ok(AzureContainer {
            account_name,
            account_key,
            container,
        })
    }
}

/// `v`, else a usage error naming the flag and its `[target]` key.
pub(crate) fn need<T>(v: Option<T>, flag: &str, key: &str) -> anyhow::Result<T> {
    v.ok_or_else(|| {
        Failure::usage(format!(
            "{flag} is required (or `{key}` under [target] in archivectl.toml)"
        ))
    })
}

impl TargetArgs {
    /// Resolves the target from the flags and the configuration.
    pub fn resolve(&self, ctx: &Context) -> anyhow::Result<Target> {
        let t = &ctx.config.target;
        let bucket = self.bucket.or_config(t);
        let container = self.azure.container.clone().or_else(|| t.container.clone());
        let kind = self.kind.clone().or_else(|| t.kind.clone()).or_else(|| {
            if bucket.is_some() {
                Some("s3".into())
            } else if container.is_some() {
                Some("azure".into())
            } else {
                None
            }
        });
        let endpoint = self.endpoint.clone().or_else(|| t.endpoint.clone());
        match kind.as_deref() {
            Some("s3") => {
                let (access, secret) = self.s3.resolve(t)?;
                let mut target = S3Target::new(need(bucket, "--bucket", "bucket")?, access, secret);
                if let Some(e) = endpoint {
                    target = target.with_endpoint(e);
                }
                if let Some(r) = self.region.clone() {
                    target = target.with_region(r);
                }
                Ok(Target::S3(target))
            }
            Some("azure") => {
                let azure = self.azure.resolve(t)?;
                let mut target =
                    AzureTarget::new(azure.account_name, azure.account_key, azure.container);
                if let Some(e) = endpoint {
                    target = target.with_endpoint(e);
                }
                if let Some(d) = t.domain.clone() {
                    target = target.with_domain(d);
                }
                Ok(Target::Azure(target))
            }
            Some(other) => Err(Failure::usage(format!(
                "--target-type {other:?}: expected s3 or azure"
            ))),
            None => Err(Failure::usage(
                "no storage target: give --bucket (S3) or --container (Azure), or a [target] section in archivectl.toml",
            )),
        }
    }
}
