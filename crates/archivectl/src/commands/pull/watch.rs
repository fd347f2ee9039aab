//! `pull --all --watch`: a pull worker that keeps running. It polls the ledger for archives to pull (with a
//! backoff from `backon`: quickly again after finding work, up to a few seconds apart when idle), pulls up to
//! `--parallel` of them at a time under leases (`work`), and stops on SIGTERM, SIGHUP or Ctrl-C: the pulls in
//! progress checkpoint and stop (their partial files are kept for the next run), nothing new starts, and it
//! exits with the signal's code (143, 130).
//!
//! An archive whose pull failed, or that another worker holds, is offered again later, each time after a
//! longer wait (from 1 s up to 10 min), so a broken archive does not keep a worker busy.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archive_pull::{Pulled, lock};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use storage_fetch::Store;

use super::work::{Offer, Workers, offer};
use super::{Args, print_pulled, signals};
use crate::context::Context;
use crate::exit::Failure;

/// How often the ledger is polled: from this when work was just found...
const POLL_MIN: Duration = Duration::from_millis(100);
/// ...to this when idle.
const POLL_MAX: Duration = Duration::from_secs(2);

fn poll_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(POLL_MIN)
        .with_max_delay(POLL_MAX)
        .with_factor(2.0)
        .without_max_times()
        .build()
}

fn retry_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(600))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `pull --all --watch` until a signal stops it.
pub(super) async fn run(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    workers: &Workers,
) -> anyhow::Result<()> {
    let cancel = signals::current();
    let parallel = args.parallel.max(1);
    let client = client.as_ref();
    let mut in_flight = FuturesUnordered::new();
    let mut busy: HashSet<String> = HashSet::new();
    // Archives to offer again only after a while, and the waits still ahead of each.
    let mut later: HashMap<String, (Instant, Box<dyn Iterator<Item = Duration> + Send>)> =
        HashMap::new();
    let mut poll = poll_backoff();
    let mut delay = POLL_MIN;
    let (mut results, mut failed): (Vec<Pulled>, usize) = (Vec::new(), 0);
    eprintln!(
        "watching the ledger for archives to pull, {parallel} at a time (SIGTERM or Ctrl-C stops)"
    );
    loop {
        if cancel.reason().is_none() && in_flight.len() < parallel {
            let now = Instant::now();
            let pending = lock(ledger).pending().context("cannot read the ledger")?;
            let mut started = false;
            for record in pending {
                if in_flight.len() >= parallel {
                    break;
                }
                let id = record.id;
                if busy.contains(&id) || later.get(&id).is_some_and(|(at, _)| *at > now) {
                    continue;
                }
                busy.insert(id.clone());
                started = true;
                in_flight.push(async move {
                    let r = offer(args, ctx, store, client, ledger, &id, workers).await;
                    (id, r)
                });
            }
            if started {
                poll = poll_backoff();
                delay = POLL_MIN;
            }
        }
        if cancel.reason().is_some() && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some((id, result)) = in_flight.next(), if !in_flight.is_empty() => {
                busy.remove(&id);
                let again = match result {
                    Ok(Offer::Done(Some(p))) => {
                        print_pulled(ctx, &p);
                        results.push(*p);
                        false
                    }
                    Ok(Offer::Done(None)) => false,
                    Ok(Offer::Busy) => true,
                    Err(e) if cancel.reason().is_some() => {
                        eprintln!("archive {id}: {e:#}");
                        false
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: cannot pull archive {id}: {e:#}");
                        true
                    }
                };
                if again {
                    let entry = later
                        .entry(id)
                        .or_insert_with(|| (Instant::now(), Box::new(retry_backoff())));
                    let wait = entry.1.next().unwrap_or(Duration::from_secs(600));
                    entry.0 = Instant::now() + wait;
                } else {
                    later.remove(&id);
                }
            }
            () = tokio::time::sleep(delay), if cancel.reason().is_none() => {
                delay = poll.next().unwrap_or(POLL_MAX);
            }
            _ = cancel.cancelled(), if cancel.reason().is_none() => {}
        }
    }
    ctx.out.emit(&results, || {})?;
    let reason = cancel
        .reason()
        .unwrap_or(archive_pull::StopReason::Terminate);
    Err(Failure {
        code: crate::exit::stop_code(reason),
        message: format!(
            "stopped watching ({}): {} archives pulled, {failed} failed",
            match reason {
                archive_pull::StopReason::Interrupt => "interrupted",
                archive_pull::StopReason::Terminate => "terminated",
            },
            results.len()
        ),
    }
    .into())
}
