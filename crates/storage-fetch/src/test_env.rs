//! The local test servers `cargo xtask ci` (and `cargo xtask servers`) start, as the tests of every crate find
//! them: an S3 server (s3s-fs) and Azurite, described by `ARCHIVECTL_TEST_*` environment variables.
//!
//! The rule for tests that need them: with the variables missing they **fail**, with a message saying how to
//! get the servers, unless `ARCHIVECTL_SKIP_SERVER_TESTS=1` asks to skip them explicitly. So `cargo test` by
//! hand can skip them on purpose, and CI (where xtask sets the variables and removes the skip) never skips.
//!
//! ```no_run
//! use storage_fetch::test_env::TestServers;
//!
//! // in a #[test]:
//! fn uploads_reach_s3() {
//!     let Some(servers) = TestServers::require() else { return };
//!     let store = storage_fetch::Store::new(servers.s3.clone().into()).unwrap();
//!     // ...
//! #   drop(store);
//! }
//! ```

use secrecy::SecretString;

use crate::target::{AzureTarget, S3Target};

/// The S3 endpoint URL (`http://127.0.0.1:PORT`).
pub const S3_ENDPOINT: &str = "ARCHIVECTL_TEST_S3_ENDPOINT";
/// The S3 access key id.
pub const S3_ACCESS_KEY: &str = "ARCHIVECTL_TEST_S3_ACCESS_KEY";
/// The S3 secret access key.
pub const S3_SECRET_KEY: &str = "ARCHIVECTL_TEST_S3_SECRET_KEY";
/// The S3 bucket, which exists.
pub const S3_BUCKET: &str = "ARCHIVECTL_TEST_S3_BUCKET";
/// The Azurite account URL (`http://127.0.0.1:PORT/devstoreaccount1`).
pub const AZURE_ENDPOINT: &str = "ARCHIVECTL_TEST_AZURE_ENDPOINT";
/// The Azure account name.
pub const AZURE_ACCOUNT: &str = "ARCHIVECTL_TEST_AZURE_ACCOUNT";
/// The Azure account key.
pub const AZURE_KEY: &str = "ARCHIVECTL_TEST_AZURE_KEY";
/// The Azure container, which exists.
pub const AZURE_CONTAINER: &str = "ARCHIVECTL_TEST_AZURE_CONTAINER";
/// Set to `1` to skip server tests explicitly when the variables are missing.
pub const SKIP: &str = "ARCHIVECTL_SKIP_SERVER_TESTS";

/// Every variable, in the order xtask prints them.
pub const VARS: [&str; 8] = [
    S3_ENDPOINT,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    S3_BUCKET,
    AZURE_ENDPOINT,
    AZURE_ACCOUNT,
    AZURE_KEY,
    AZURE_CONTAINER,
];

/// The two test servers' targets.
#[derive(Debug, Clone)]
pub struct TestServers {
    /// The S3 server's bucket.
    pub s3: S3Target,
    /// Azurite's container.
    pub azure: AzureTarget,
}

/// Why [`TestServers::from_env`] found no servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{missing} not set: this test needs the S3 and Azure test servers. Run the tests with `cargo xtask ci`, or \
     start the servers with `cargo xtask servers` and export what it prints, or set ARCHIVECTL_SKIP_SERVER_TESTS=1 \
     to skip such tests on purpose"
)]
pub struct MissingServers {
    /// The variables that are missing or empty.
    pub missing: String,
}

impl TestServers {
    /// Reads the variables: `Ok(Some(..))` when all are set; `Ok(None)` when some are missing and
    /// `ARCHIVECTL_SKIP_SERVER_TESTS=1` asks to skip; `Err` when some are missing otherwise.
    pub fn from_env() -> Result<Option<Self>, MissingServers> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`TestServers::from_env`], with the variables from `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, MissingServers> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let missing: Vec<&str> = VARS.iter().copied().filter(|v| get(v).is_none()).collect();
        if !missing.is_empty() {
            if get(SKIP).as_deref() == Some("1") {
                return Ok(None);
            }
            return Err(MissingServers {
                missing: missing.join(", "),
            });
        }
        let var = |name: &str| get(name).unwrap_or_default();
        Ok(Some(Self {
            s3: S3Target::new(
                var(S3_BUCKET),
                var(S3_ACCESS_KEY),
                SecretString::from(var(S3_SECRET_KEY)),
            )
            .with_endpoint(var(S3_ENDPOINT)),
            azure: AzureTarget::new(
                var(AZURE_ACCOUNT),
                SecretString::from(var(AZURE_KEY)),
                var(AZURE_CONTAINER),
            )
            .with_endpoint(var(AZURE_ENDPOINT)),
        }))
    }

    /// For tests: the servers, or `None` (with a note on stderr) when skipping was asked for.
    ///
    /// # Panics
    ///
    /// When the variables are missing and skipping was not asked for: that is the test failing, on purpose.
    #[track_caller]
    pub fn require() -> Option<Self> {
        match Self::from_env() {
            Ok(Some(servers)) => Some(servers),
            Ok(None) => {
                eprintln!("skipped: {SKIP}=1 and the test servers' variables are not set");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn full() -> HashMap<&'static str, String> {
        VARS.iter().map(|v| (*v, format!("value-of-{v}"))).collect()
    }

    #[test]
    fn all_variables_give_both_targets() {
        let mut vars = full();
        vars.insert(S3_ENDPOINT, "http://127.0.0.1:1234".into());
        let servers = TestServers::from_lookup(|n| vars.get(n).cloned())
            .unwrap()
            .unwrap();
        assert_eq!(servers.s3.bucket, format!("value-of-{S3_BUCKET}"));
        assert_eq!(
            servers.s3.endpoint.as_deref(),
            Some("http://127.0.0.1:1234")
        );
        assert_eq!(
            servers.azure.container,
            format!("value-of-{AZURE_CONTAINER}")
        );
    }

    #[test]
    fn missing_variables_fail_unless_skipping_is_asked_for() {
        let mut vars = full();
        vars.remove(AZURE_KEY);
        vars.insert(S3_BUCKET, " ".into());
        let err = TestServers::from_lookup(|n| vars.get(n).cloned()).unwrap_err();
        assert_eq!(err.missing, format!("{S3_BUCKET}, {AZURE_KEY}"));
        assert!(err.to_string().contains("cargo xtask servers"));
        vars.insert(SKIP, "0".into());
        assert!(TestServers::from_lookup(|n| vars.get(n).cloned()).is_err());
        vars.insert(SKIP, "1".into());
        assert_eq!(
            TestServers::from_lookup(|n| vars.get(n).cloned()).map(|s| s.is_none()),
            Ok(true)
        );
    }
}
