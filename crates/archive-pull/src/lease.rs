//! Pull workers that share the work: a pull runs under a lease on its archive in the ledger (see
//! `archive_db::leases`), so that several workers (processes on one machine on a SQLite ledger, or machines
//! on a shared one) each pull an archive to completion once and delete it once.
//!
//! * [`WorkerId`]: who holds a lease — the host name, the process id and a random part.
//! * [`claim`]: takes the lease on an archive, or says which worker holds it ([`Claimed::Busy`]).
//! * [`Leased::run`]: runs the pull while renewing the lease in the background (every
//!   [`LeaseOptions::renew_every`]). A renewal that finds the lease taken by another worker, or that cannot
//!   reach the ledger before the lease would run out, means the lease is lost: the pull is cancelled through
//!   [`Leased::cancel_token`] (it checkpoints and stops) and [`Leased::lost`] says so.
//! * [`Leased::fence`]: renews once, right before the ledger records the pull and anything is deleted, so
//!   that the settle step runs only while the lease is held (with a whole lease duration ahead of it).
//! * [`Leased::release`]: at the end, on success or failure.

use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use archive_db::{Claim, Lease, Ledger};
use time::OffsetDateTime;

use crate::{CancelToken, StopReason, lock};

/// Who holds a lease: `{host}-{pid}-{random}`, unique per process run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerId(String);

impl WorkerId {
    /// This process's worker id: the host name, the process id and 32 random bits (hex).
    pub fn new() -> Self {
        let host = host_name();
        Self(format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    /// The id as the ledger records it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for WorkerId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host name (Linux's, else `$HOSTNAME`, else `host`), kept to letters, digits, `.`, `-` and `_`.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    if name.is_empty() {
        "host".to_owned()
    } else {
        name
    }
}

/// How long a lease lasts and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    /// How long a lease lasts unless renewed: a crashed worker's archive is taken over after this.
    pub duration: Duration,
    /// How often a held lease is renewed (well under [`LeaseOptions::duration`]).
    pub renew_every: Duration,
}

impl Default for LeaseOptions {
    /// A 60 s lease renewed every 20 s.
    fn default() -> Self {
        Self::with_duration(Duration::from_secs(60))
    }
}

impl LeaseOptions {
    /// A lease of `duration`, renewed every third of it.
    pub fn with_duration(duration: Duration) -> Self {
        Self {
            duration,
            renew_every: duration / 3,
        }
    }
}

/// Why a leased pull could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The lease was lost (another worker took it over after it expired, or the ledger could not be reached
    /// to renew it in time): the pull stopped; nothing was recorded as pulled and nothing was deleted.
    #[error(
        "lost the lease on archive {id} (another worker may have taken it over): stopped without recording \
         or deleting anything"
    )]
    Lost {
        /// The archive.
        id: String,
    },
    /// The ledger failed while claiming, renewing or releasing.
    #[error("cannot {action} the lease on archive {id}")]
    Ledger {
        /// The archive.
        id: String,
        /// `claim`, `renew` or `release`.
        action: &'static str,
        /// Why.
        #[source]
        source: Box<archive_db::DbError>,
    },
}

/// What [`claim`] got.
#[derive(Debug)]
pub enum Claimed<'a> {
    /// This worker holds the lease.
    Held(Leased<'a>),
    /// Another worker holds it (unexpired).
    Busy(Lease),
}

/// Claims the lease on archive `id` for `worker`.
pub fn claim<'a>(
    ledger: &'a Mutex<Ledger>,
    worker: &'a WorkerId,
    id: &str,
    opts: LeaseOptions,
) -> Result<Claimed<'a>, LeaseError> {
    let claimed = lock(ledger)
        .claim_lease(
            id,
            worker.as_str(),
            OffsetDateTime::now_utc(),
            opts.duration,
        )
        .map_err(|source| LeaseError::Ledger {
            id: id.to_owned(),
            action: "claim",
            source: Box::new(source),
        })?;
    Ok(match claimed {
        Claim::Acquired(_) => Claimed::Held(Leased {
            ledger,
            worker,
            id: id.to_owned(),
            opts,
            lost: AtomicBool::new(false),
            cancel: CancelToken::new(),
        }),
        Claim::HeldBy(lease) => Claimed::Busy(lease),
    })
}

/// A lease this worker holds on one archive.
#[derive(Debug)]
pub struct Leased<'a> {
    ledger: &'a Mutex<Ledger>,
    worker: &'a WorkerId,
    id: String,
    opts: LeaseOptions,
    lost: AtomicBool,
    cancel: CancelToken,
}

impl Leased<'_> {
    /// The archive.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token the pull under this lease must use: cancelled when the lease is lost, and (inside
    /// [`Leased::run`]) when the run's own token is.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Whether the lease was lost.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn renew(&self) -> Result<bool, archive_db::DbError> {
        lock(self.ledger)
            .renew_lease(
                &self.id,
                self.worker.as_str(),
                OffsetDateTime::now_utc(),
                self.opts.duration,
            )
            .map(|renewed| renewed.is_some())
    }

    fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
        self.cancel.cancel(StopReason::Terminate);
    }

    /// Renews the lease now and says whether it is still held: call it right before recording the pull and
    /// deleting anything (the settle step then has a whole lease duration ahead of it).
    pub fn fence(&self) -> Result<(), LeaseError> {
        if self.lost() {
            return Err(LeaseError::Lost {
                id: self.id.clone(),
            });
        }
        match self.renew() {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lose();
                Err(LeaseError::Lost {
                    id: self.id.clone(),
                })
            }
            Err(source) => Err(LeaseError::Ledger {
                id: self.id.clone(),
                action: "renew",
                source: Box::new(source),
            }),
        }
    }

    /// Runs `work` (the pull, using [`Leased::cancel_token`]) while renewing the lease in the background;
    /// `parent` (the run's token: signals) cancels it too.
    pub async fn run<F: Future>(&self, parent: &CancelToken, work: F) -> F::Output {
        let propagate = async {
            let reason = parent.cancelled().await;
            self.cancel.cancel(reason);
            std::future::pending::<Infallible>().await
        };
        let keep = async {
            let mut last_renewed = Instant::now();
            loop {
                tokio::time::sleep(self.opts.renew_every).await;
                match self.renew() {
                    Ok(true) => last_renewed = Instant::now(),
                    Ok(false) => break,
                    // The ledger is away: try again next time, unless the lease could run out before then.
                    Err(_)
                        if last_renewed.elapsed() + self.opts.renew_every < self.opts.duration => {}
                    Err(_) => break,
                }
            }
            self.lose();
            std::future::pending::<Infallible>().await
        };
        tokio::select! {
            out = work => out,
            never = propagate => match never {},
            never = keep => match never {},
        }
    }

    /// Releases the lease (on success or failure); `false` if it was not held any more.
    pub fn release(self) -> Result<bool, LeaseError> {
        lock(self.ledger)
            .release_lease(&self.id, self.worker.as_str())
            .map_err(|source| LeaseError::Ledger {
                id: self.id.clone(),
                action: "release",
                source: Box::new(source),
            })
    }
}

#[cfg(test)]
#[path = "lease/tests.rs"]
mod tests;
