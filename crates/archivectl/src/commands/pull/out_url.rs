//! `pull --out-url s3://bucket/prefix/` (or `az://container/prefix/`): where decrypted archives go when they
//! go to object storage, and with which credentials — the `[output]` table of archivectl.toml (shaped like
//! `[target]`), else the standard environment variables:
//!
//! * S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//!   `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`), `AWS_ALLOW_HTTP=true` for plain http on a host that is
//!   not loopback;
//! * Azure: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` (or `AZURE_STORAGE_ACCESS_KEY`),
//!   `AZURE_STORAGE_ENDPOINT` (or `AZURE_ENDPOINT`), `AZURE_ALLOW_HTTP=true`.
//!
//! Plain http is otherwise allowed only for a loopback endpoint (or with `--allow-http`), as for the target.

use secrecy::SecretString;
use storage_fetch::{AzureTarget, MultipartOptions, S3Target, Store, Target};

use crate::config::TargetConfig;
use crate::context::{self, Context};
use crate::exit::Failure;

/// A resolved `--out-url`: the store, the key prefix and how the outputs are named.
#[derive(Debug)]
pub(crate) struct OutUrl {
    /// The bucket or container.
    pub store: Store,
    /// The key prefix (empty, or ending with `/`).
    pub prefix: String,
    /// `s3://bucket/prefix/` or `az://container/prefix/`, as the ledger records it.
    pub url: String,
    /// The upload's parts.
    pub upload: MultipartOptions,
}

impl OutUrl {
    /// The archive pull's view of it.
    pub(crate) fn output(&self) -> archive_pull::BucketOutput<'_> {
        archive_pull::BucketOutput {
            store: &self.store,
            prefix: &self.prefix,
            url: &self.url,
            upload: &self.upload,
        }
    }
}

/// `(scheme, bucket, prefix)` of `s3://bucket/prefix/` or `az://container/prefix/`; the prefix gets a
/// trailing `/` if it has none.
pub(crate) fn parse(url: &str) -> Result<(&'static str, String, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("s3://") {
        ("s3", rest)
    } else if let Some(rest) = url
        .strip_prefix("az://")
        .or_else(|| url.strip_prefix("azure://"))
    {
        ("az", rest)
    } else {
        return Err(format!(
            "--out-url {url:?}: expected s3://BUCKET/PREFIX/ or az://CONTAINER/PREFIX/"
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("--out-url {url:?} names no bucket or container"));
    }
    if prefix.starts_with('/') || prefix.contains("//") || prefix.split('/').any(|s| s == "..") {
        return Err(format!(
            "--out-url {url:?}: the prefix has an empty or `..` path segment"
        ));
    }
    if prefix.chars().any(char::is_control) {
        return Err(format!(
            "--out-url {url:?}: the prefix has a control character"
        ));
    }
    let mut prefix = prefix.to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok((scheme, bucket.to_string(), prefix))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_true(name: &str) -> bool {
    env(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn missing(what: &str, key: &str, vars: &str) -> anyhow::Error {
    Failure::usage(format!(
        "--out-url needs {what}: `{key}` under [output] in archivectl.toml, or {vars}"
    ))
}

/// Resolves `--out-url` with the `[output]` table, else the environment (see the module docs).
pub(crate) fn resolve(
    url: &str,
    ctx: &Context,
    part_size: usize,
    concurrency: usize,
) -> anyhow::Result<OutUrl> {
    let (scheme, bucket, prefix) = parse(url).map_err(Failure::usage)?;
    let o: &TargetConfig = &ctx.config.output;
    let mut options = ctx.store_options();
    let target = if scheme == "s3" {
        if o.kind.as_deref().is_some_and(|k| k != "s3") {
            return Err(Failure::usage(format!(
                "--out-url {url}: an s3:// URL, but [output] type is {:?}",
                o.kind.as_deref().unwrap_or_default()
            )));
        }
        let (access, secret) = match &o.access_key_id {
            Some(id) => {
                let file = o.secret_access_key_file.as_deref().ok_or_else(|| {
                    missing(
                        "the secret access key",
                        "secret_access_key_file",
                        "AWS_SECRET_ACCESS_KEY",
                    )
                })?;
                (
                    id.clone(),
                    context::read_secret_file(file, "output secret access key")?,
                )
            }
            None => {
                let id = env("AWS_ACCESS_KEY_ID").ok_or_else(|| {
                    missing("an access key id", "access_key_id", "AWS_ACCESS_KEY_ID")
                })?;
                let secret = env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
                    missing(
                        "the secret access key",
                        "secret_access_key_file",
                        "AWS_SECRET_ACCESS_KEY",
                    )
                })?;
                (id, SecretString::from(secret))
            }
        };
        let mut t = S3Target::new(bucket.clone(), access, secret);
        if let Some(e) = o
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
        {
            t = t.with_endpoint(e);
        }
        if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
            t = t.with_region(r);
        }
        options.allow_http |= env_true("AWS_ALLOW_HTTP");
        Target::S3(t)
    } else {
        if o.kind.as_deref().is_some_and(|k| k != "azure") {
            return Err(Failure::usage(format!(
                "--out-url {url}: an az:// URL, but [output] type is {:?}",
                o.kind.as_deref().unwrap_or_default()
            )));
        }
        let (account, key) = match &o.account_name {
            Some(name) => {
                let file = o.account_key_file.as_deref().ok_or_else(|| {
                    missing(
                        "the account key",
                        "account_key_file",
                        "AZURE_STORAGE_ACCOUNT_KEY",
                    )
                })?;
                (
                    name.clone(),
                    context::read_secret_file(file, "output account key")?,
                )
            }
            None => {
                let name = env("AZURE_STORAGE_ACCOUNT_NAME").ok_or_else(|| {
                    missing(
                        "a storage account",
                        "account_name",
                        "AZURE_STORAGE_ACCOUNT_NAME",
                    )
                })?;
                let key = env("AZURE_STORAGE_ACCOUNT_KEY")
                    .or_else(|| env("AZURE_STORAGE_ACCESS_KEY"))
                    .ok_or_else(|| {
                        missing(
                            "the account key",
                            "account_key_file",
                            "AZURE_STORAGE_ACCOUNT_KEY",
                        )
                    })?;
                (name, SecretString::from(key))
            }
        };
        let mut t = AzureTarget::new(account, key, bucket.clone());
        if let Some(e) = o
            .endpoint
            .clone()
            .or_else(|| env("AZURE_STORAGE_ENDPOINT"))
            .or_else(|| env("AZURE_ENDPOINT"))
        {
            t = t.with_endpoint(e);
        }
        if let Some(d) = o.domain.clone() {
            t = t.with_domain(d);
        }
        options.allow_http |= env_true("AZURE_ALLOW_HTTP");
        Target::Azure(t)
    };
    if let Some(b) = o.bucket.as_ref().or(o.container.as_ref())
        && *b != bucket
    {
        return Err(Failure::usage(format!(
            "--out-url {url} names {bucket:?}, but [output] names {b:?}: the URL says where outputs go; \
             remove the bucket/container from [output]"
        )));
    }
    let store = Store::with_options(target, options)
        .map_err(|e| Failure::usage(format!("--out-url {url}: {e}")))?;
    Ok(OutUrl {
        store,
        url: format!("{scheme}://{bucket}/{prefix}"),
        prefix,
        upload: MultipartOptions {
            // S3 wants 5 MiB at least for every part but the last.
            part_size: part_size.max(5 << 20),
            concurrency: concurrency.max(1),
        },
    })
}

/// Where the ledger says archive `id` was pulled and verified, if that is this `--out-url` and the object is
/// still there.
pub(crate) async fn already_uploaded(
    record: Option<&archive_db::ArchiveRecord>,
    out: &OutUrl,
    id: &str,
) -> Option<std::path::PathBuf> {
    let record = record?;
    record.verified_at.as_ref()?;
    let at = record.local_path.as_deref()?;
    let name = at.strip_prefix(out.url.as_str())?;
    if !["ts", "mp4", "zip"]
        .iter()
        .any(|ext| name == format!("{id}.{ext}"))
    {
        return None;
    }
    out.store
        .head(&format!("{}{name}", out.prefix))
        .await
        .ok()
        .map(|_| std::path::PathBuf::from(at))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_the_two_schemes_and_refuses_the_rest() {
        assert_eq!(parse("s3://b/p/").unwrap(), ("s3", "b".into(), "p/".into()));
        assert_eq!(
            parse("az://c/a/b").unwrap(),
            ("az", "c".into(), "a/b/".into())
        );
        assert_eq!(parse("s3://b").unwrap(), ("s3", "b".into(), String::new()));
        for bad in [
            "gs://b/p/",
            "s3:///p/",
            "s3://b//p/",
            "s3://b/../p/",
            "/tmp/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
