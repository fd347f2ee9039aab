//! `pull --all` as one of several workers sharing the ledger: each archive is claimed with a lease before it
//! is pulled (an archive another worker holds is skipped), the lease is renewed while pulling and checked
//! before the ledger records the pull and anything is deleted, and released at the end (see
//! `archive_pull::lease`). On SQLite this shares the work between processes on one machine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use archive_pull::{Claimed, LeaseError, LeaseOptions, Pulled, WorkerId, lock};
use storage_fetch::Store;

use super::{Args, pull_one};
use crate::context::Context;

/// This process as a pull worker: its id, its lease options, and the test hook.
pub(super) struct Workers {
    worker: WorkerId,
    lease: LeaseOptions,
    /// The hidden `--test-gate` directory, and whether its gate was passed.
    gate: Option<(PathBuf, AtomicBool)>,
}

impl Workers {
    pub(super) fn new(args: &Args) -> Self {
        Self {
            worker: WorkerId::new(),
            lease: LeaseOptions::with_duration(Duration::from_millis(args.lease_ms)),
            gate: args.test_gate.clone().map(|d| (d, AtomicBool::new(false))),
        }
    }

    /// The test hook: after this worker's first claim, `claimed-{pid}` (holding the archive id) appears in
    /// the gate directory, and the worker waits for `go` there (or a signal).
    async fn gate(&self, id: &str) -> anyhow::Result<()> {
        let Some((dir, passed)) = &self.gate else {
            return Ok(());
        };
        if passed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let name = format!("claimed-{}", std::process::id());
        std::fs::write(dir.join(format!(".{name}")), id)
            .and_then(|()| std::fs::rename(dir.join(format!(".{name}")), dir.join(&name)))
            .with_context(|| format!("test gate {}", dir.display()))?;
        let cancel = super::signals::current();
        while !dir.join("go").exists() && cancel.reason().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// What became of one archive offered to this worker.
pub(super) enum Offer {
    /// Pulled (`Some`) or found already pulled (`None`).
    Done(Option<Box<Pulled>>),
    /// Another worker holds its lease: not pulled by this one.
    Busy,
}

/// Pulls archive `id` of `--all` under a lease: `None` if another worker holds it or has pulled it since
/// the list was read.
pub(super) async fn pull_leased(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
    workers: &Workers,
) -> anyhow::Result<Option<Pulled>> {
    match offer(args, ctx, store, client, ledger, id, workers).await? {
        Offer::Done(pulled) => Ok(pulled.map(|p| *p)),
        Offer::Busy => Ok(None),
    }
}

/// [`pull_leased`], telling a busy archive from a done one.
pub(super) async fn offer(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
    workers: &Workers,
) -> anyhow::Result<Offer> {
    let leased = match archive_pull::claim(ledger, &workers.worker, id, workers.lease)? {
        Claimed::Held(leased) => leased,
        Claimed::Busy(lease) => {
            let until = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(lease.expires_at_ms) * 1_000_000,
            )
            .map(archive_db::stamp)
            .unwrap_or_default();
            ctx.out.note(format!(
                "archive {id} is being pulled by worker {} (lease until {until}): skipped",
                lease.owner
            ));
            return Ok(Offer::Busy);
        }
    };
    // Another worker may have pulled it between reading the list and this claim.
    let done_elsewhere = lock(ledger)
        .archive(id)
        .context("cannot read the ledger")?
        .is_some_and(|r| r.local_path.is_some() || r.remote_deleted_at.is_some());
    let result = if done_elsewhere {
        ctx.out.note(format!(
            "archive {id} was pulled by another worker meanwhile: skipped"
        ));
        Ok(None)
    } else {
        match workers.gate(id).await {
            Ok(()) => {
                let parent = super::signals::current();
                leased
                    .run(
                        &parent,
                        pull_one(args, ctx, store, client, ledger, id, Some(&leased)),
                    )
                    .await
            }
            Err(e) => Err(e),
        }
    };
    let result = match result {
        // The pull stopped because the lease was lost: say that, not "interrupted".
        Err(e) if leased.lost() && e.downcast_ref::<LeaseError>().is_none() => {
            Err(anyhow::Error::new(LeaseError::Lost { id: id.to_owned() })
                .context(format!("{e:#}")))
        }
        other => other,
    };
    if let Err(e) = leased.release() {
        eprintln!("warning: {e:#}");
    }
    result.map(|p| Offer::Done(p.map(Box::new)))
}
