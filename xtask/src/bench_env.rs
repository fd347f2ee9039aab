//! The set-up every benchmark shares (it was copied into each): the release build of the binaries measured,
//! a scratch directory removed afterwards whatever happens, the S3 test server's coordinates, and the report
//! printed and written into its section of docs/benchmarks.md.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::bench;
use crate::servers::Servers;
use crate::tools::{self, workspace_root};

/// Builds `packages` in release mode (`--locked`) and returns the directory of their binaries.
pub(crate) fn release_binaries(packages: &[&str]) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let mut args = vec!["build", "--release", "--locked"];
    for p in packages {
        args.extend(["-p", p]);
    }
    tools::run_in(&root, "cargo", &args)?;
    Ok(root.join("target/release"))
}

/// A directory for one benchmark run, removed (with everything in it) when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Creates `{base}/archivectl-bench-{tag}-{pid}`.
    pub(crate) fn new(base: &Path, tag: &str) -> anyhow::Result<Self> {
        let dir = base.join(format!("archivectl-bench-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// In /dev/shm when there is one (so the local disk is not what is measured), else the temp directory.
    pub(crate) fn in_memory(tag: &str) -> anyhow::Result<Self> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        Self::new(&base, tag)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Prints a benchmark's report and writes it into the section `name` of docs/benchmarks.md.
pub(crate) fn publish(name: &str, report: anyhow::Result<String>) -> anyhow::Result<()> {
    let report = report?;
    println!("{report}");
    bench::write_doc_section(&workspace_root(), name, &report)
}

/// The S3 test server (s3s-fs) the benchmarks read from.
pub(crate) struct S3 {
    pub(crate) endpoint: String,
    pub(crate) access: String,
    pub(crate) secret: String,
    pub(crate) bucket: String,
}

impl S3 {
    /// The coordinates of the S3 server `servers` started.
    pub(crate) fn of(servers: &Servers) -> anyhow::Result<Self> {
        let get = |name: &str| {
            servers
                .env()
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .with_context(|| format!("the test servers set no {name}"))
        };
        use storage_fetch::test_env as var;
        Ok(Self {
            endpoint: get(var::S3_ENDPOINT)?,
            access: get(var::S3_ACCESS_KEY)?,
            secret: get(var::S3_SECRET_KEY)?,
            bucket: get(var::S3_BUCKET)?,
        })
    }

    /// The path-style URL of `key`.
    pub(crate) fn url(&self, key: &str) -> String {
        format!(
            "{}/{}/{key}",
            self.endpoint.trim_end_matches('/'),
            self.bucket
        )
    }

    /// curl's arguments to sign its requests for this server (`user` is `access:secret`).
    pub(crate) fn curl_args<'a>(&'a self, user: &'a str) -> Vec<&'a str> {
        vec![
            "-sS",
            "--fail",
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            user,
        ]
    }

    /// archivectl's storage-target flags for this bucket, the secret read from `secret_file`.
    pub(crate) fn target_args<'a>(&'a self, secret_file: &'a str) -> [&'a str; 8] {
        [
            "--bucket",
            self.bucket.as_str(),
            "--endpoint",
            self.endpoint.as_str(),
            "--access-key-id",
            self.access.as_str(),
            "--secret-access-key-file",
            secret_file,
        ]
    }
}
