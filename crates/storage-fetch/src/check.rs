//! [`Store::check`]: try on a target what the service (and `archivectl pull`) will do with it, step by step.

use std::fmt;
use std::time::{Duration, Instant};

use rand::RngExt as _;

use crate::error::Error;
use crate::store::Store;

/// The prefix probe objects are written under.
pub const CHECK_PREFIX: &str = "archivectl-check";

/// One step of a [`CheckReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStep {
    /// Write a small object: what the service does with each archive.
    Write,
    /// List the probe's prefix and find the object: the service's IAM policy example grants `s3:ListBucket`.
    List,
    /// Read the object back and compare: what `archivectl pull` does.
    Read,
    /// Delete the object (and see it gone): cleanup of the probe.
    Delete,
}

impl CheckStep {
    /// The step's name.
    pub fn name(self) -> &'static str {
        match self {
            CheckStep::Write => "write",
            CheckStep::List => "list",
            CheckStep::Read => "read",
            CheckStep::Delete => "delete",
        }
    }

    /// Who needs this step to work.
    pub fn needed_by(self) -> &'static str {
        match self {
            CheckStep::Write => "the service uploads archives",
            CheckStep::List => "the service lists the bucket",
            CheckStep::Read => "archivectl pull downloads archives",
            CheckStep::Delete => "only this check, to clean up its probe",
        }
    }
}

/// How a step went.
#[derive(Debug)]
pub enum CheckOutcome {
    /// It worked; what was seen.
    Ok(String),
    /// It failed with this error.
    Failed(Error),
    /// It was not tried, and why.
    Skipped(String),
}

impl CheckOutcome {
    /// Whether the step worked.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckOutcome::Ok(_))
    }
}

/// One line of the report.
#[derive(Debug)]
pub struct CheckResult {
    /// The step.
    pub step: CheckStep,
    /// How it went.
    pub outcome: CheckOutcome,
    /// How long it took.
    pub elapsed: Duration,
}

/// What [`Store::check`] found, step by step. `Display` prints one line per step.
#[derive(Debug)]
pub struct CheckReport {
    /// `S3 bucket B at ENDPOINT`.
    pub target: String,
    /// The probe object's key.
    pub probe_key: String,
    /// The steps, in the order run: write, list, read, delete.
    pub results: Vec<CheckResult>,
}

impl CheckReport {
    /// Whether every step worked.
    pub fn is_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome.is_ok())
    }

    /// Whether the service will be able to upload (write and list worked).
    pub fn service_can_upload(&self) -> bool {
        self.outcome(CheckStep::Write)
            .is_some_and(CheckOutcome::is_ok)
            && self
                .outcome(CheckStep::List)
                .is_some_and(CheckOutcome::is_ok)
    }

    /// Whether `archivectl pull` will be able to download (read worked).
    pub fn pull_can_download(&self) -> bool {
        self.outcome(CheckStep::Read)
            .is_some_and(CheckOutcome::is_ok)
    }

    /// The outcome of `step`.
    pub fn outcome(&self, step: CheckStep) -> Option<&CheckOutcome> {
        self.results
            .iter()
            .find(|r| r.step == step)
            .map(|r| &r.outcome)
    }

    /// The first failure, if any.
    pub fn first_error(&self) -> Option<&Error> {
        self.results.iter().find_map(|r| match &r.outcome {
            CheckOutcome::Failed(e) => Some(e),
            _ => None,
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "check of {} (probe {})", self.target, self.probe_key)?;
        for r in &self.results {
            let (status, text) = match &r.outcome {
                CheckOutcome::Ok(s) => ("ok", s.clone()),
                CheckOutcome::Failed(e) => ("FAILED", e.to_string()),
                CheckOutcome::Skipped(s) => ("skipped", s.clone()),
            };
            writeln!(
                f,
                "  {:<6} {:<7} {} ({} ms; needed by: {})",
                r.step.name(),
                status,
                text,
                r.elapsed.as_millis(),
                r.step.needed_by()
            )?;
        }
        Ok(())
    }
}

impl Store {
    /// Validates the target by doing what the service will do with it: writes a small probe object under
    /// `archivectl-check/{random}/`, lists it, reads it back, deletes it. Every step is reported, with the
    /// error that stopped it; a failed write skips read and delete, but list still runs (it tells whether
    /// the credentials work at all). Never returns `Err`: the report says what failed.
    ///
    /// ```no_run
    /// # async fn demo(store: storage_fetch::Store) {
    /// let report = store.check().await;
    /// print!("{report}");
    /// if !report.service_can_upload() {
    ///     eprintln!("the service could not upload here: {:?}", report.first_error());
    /// }
    /// # }
    /// ```
    pub async fn check(&self) -> CheckReport {
        let token: u64 = rand::rng().random();
        let probe_key = format!("{CHECK_PREFIX}/{token:016x}/probe.txt");
        let body = format!("archivectl storage check {token:016x}\n").into_bytes();
        let target = format!(
            "{} {} {} at {}",
            self.target().service_name(),
            self.target().container_kind(),
            self.target().container_name(),
            self.target().display_endpoint()
        );
        let mut results = Vec::new();
        let mut timed = |step: CheckStep, started: Instant, outcome: CheckOutcome| {
            results.push(CheckResult {
                step,
                outcome,
                elapsed: started.elapsed(),
            });
        };

        let started = Instant::now();
        let write = self.put(&probe_key, body.clone()).await;
        let written = write.is_ok();
        timed(
            CheckStep::Write,
            started,
            match write {
                Ok(info) => CheckOutcome::Ok(format!("wrote {} bytes", info.size)),
                Err(e) => CheckOutcome::Failed(e),
            },
        );

        let started = Instant::now();
        let prefix = probe_key
            .rsplit_once('/')
            .map(|(p, _)| p)
            .unwrap_or(CHECK_PREFIX);
        let outcome = match self.list(prefix).await {
            Ok(found) if found.iter().any(|o| o.key == probe_key) => {
                CheckOutcome::Ok(format!("listed {prefix}/ and found the probe"))
            }
            Ok(_) if !written => {
                CheckOutcome::Ok(format!("listed {prefix}/ (empty, as the write failed)"))
            }
            Ok(found) => CheckOutcome::Failed(Error::InvalidRequest(format!(
                "listed {prefix}/ but the probe just written is not there ({} objects)",
                found.len()
            ))),
            Err(e) => CheckOutcome::Failed(e),
        };
        timed(CheckStep::List, started, outcome);

        let started = Instant::now();
        let outcome = if !written {
            CheckOutcome::Skipped("nothing was written".into())
        } else {
            match self.get_range(&probe_key, 0..body.len() as u64, None).await {
                Ok(read) if read.as_ref() == body.as_slice() => {
                    CheckOutcome::Ok(format!("read {} bytes back, identical", read.len()))
                }
                Ok(read) => CheckOutcome::Failed(Error::InvalidRequest(format!(
                    "read {} bytes back that differ from the {} written",
                    read.len(),
                    body.len()
                ))),
                Err(e) => CheckOutcome::Failed(e),
            }
        };
        timed(CheckStep::Read, started, outcome);

        let started = Instant::now();
        let outcome = if !written {
            CheckOutcome::Skipped("nothing was written".into())
        } else {
            match self.delete(&probe_key).await {
                Ok(()) => match self.head(&probe_key).await {
                    Err(Error::NotFound { .. }) => CheckOutcome::Ok("deleted; it is gone".into()),
                    Ok(_) => CheckOutcome::Failed(Error::InvalidRequest(
                        "the delete succeeded but the probe is still there".into(),
                    )),
                    // Deleted, but cannot look (no read permission): the delete itself worked.
                    Err(_) => CheckOutcome::Ok("deleted".into()),
                },
                Err(e) => CheckOutcome::Failed(e),
            }
        };
        timed(CheckStep::Delete, started, outcome);

        CheckReport {
            target,
            probe_key,
            results,
        }
    }
}
