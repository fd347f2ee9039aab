//! `archivectl pull`: the command line of the pull pipeline (the `archive-pull` crate).
//!
//! This module chooses what to pull and with which password (`--password`, else the ledger, else the REST
//! API, which also re-checks what callbacks alone said: `recheck`), and where from (the storage target, or a
//! fresh presigned URL for an archive kept in the service's cloud); `archive_pull::pull_archive` downloads,
//! decrypts, verifies and writes it resumably, and `archive_pull::settle` records it in the ledger and only
//! then makes the deletions asked for (`--delete-object`, `--delete-remote`). Progress bars, messages and
//! exit codes (from the pipeline's typed errors, in `exit.rs`) stay here.

use std::path::PathBuf;

use anyhow::Context as _;
use archive_pull::{PullError, PullOptions, Source, lock};
use futures_util::StreamExt;
use opentok_rest::model::ArchiveStatus;
use storage_fetch::Store;

use crate::context::Context;
use crate::exit::Failure;
use crate::secrets;
use crate::target::TargetArgs;
pub use archive_pull::Pulled;
pub(crate) use output::CliObserver;

mod log;
mod out_url;
mod output;
mod recheck;
use archive_pull::{already_pulled, ask_service};
mod signals;
mod watch;
mod work;

/// Arguments of `archivectl pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archives to pull.
    #[arg(value_name = "ARCHIVE_ID", conflicts_with = "all", value_parser = crate::context::archive_id_arg)]
    ids: Vec<String>,
    /// Pull every uploaded or available archive not pulled yet.
    #[arg(long)]
    pub(crate) all: bool,
    /// With --all: keep running, pulling new archives as callbacks (or `archivectl sync`) record them,
    /// until SIGTERM or Ctrl-C.
    #[arg(long, requires = "all")]
    watch: bool,
    /// Tuning: how long a worker's lease on an archive lasts, in milliseconds (renewed every third of it).
    #[arg(long, value_name = "MS", default_value_t = 60_000, hide = true)]
    lease_ms: u64,
    /// Test hook: after its first claim, a worker writes `claimed-{pid}` here and waits for `go`.
    #[arg(long, value_name = "DIR", hide = true)]
    test_gate: Option<PathBuf>,
    /// Pull again an archive the ledger says is already pulled and verified in --out-dir.
    #[arg(long)]
    force: bool,
    /// Where to write `{archiveId}.ts` (or `.mp4`/`.zip` for unencrypted archives).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
    /// Write `{archiveId}.ts` to object storage instead, `s3://BUCKET/PREFIX/` or `az://CONTAINER/PREFIX/`,
    /// as a multipart upload completed only once the whole output is verified (credentials: `[output]` in
    /// archivectl.toml, or AWS_*/AZURE_STORAGE_* variables). Not resumable: an interrupted pull starts over.
    #[arg(long, value_name = "URL", conflicts_with = "out_dir")]
    out_url: Option<String>,
    /// `--out-url`, resolved (credentials and all) by `run`.
    #[arg(skip)]
    out: Option<out_url::OutUrl>,
    /// Remove the PKCS#7 padding (by default the output is what `openssl enc -d -nopad` gives).
    #[arg(long)]
    trim: bool,
    /// After the output is verified and the ledger has recorded it, delete the archive's record at the
    /// service (REST API): the service no longer lists it nor gives its password. The encrypted object in
    /// your storage target stays (see --delete-object), and so does the decrypted output.
    #[arg(long)]
    delete_remote: bool,
    /// After the output is verified and the ledger has recorded it, delete the encrypted object
    /// `{apiKey}/{archiveId}/archive.ts` from your storage target. The service's record of the archive
    /// stays (see --delete-remote), and so does the decrypted output.
    #[arg(long)]
    delete_object: bool,
    /// Size of each ranged GET, in MiB (parts are reused; the run holds at most 48 MiB of them, or
    /// --concurrency + 1 parts if more, however many archives are pulled at once).
    #[arg(long, value_name = "MIB", default_value_t = 4)]
    part_size_mib: u64,
    /// Ranged GETs in flight per archive [default: 4, or fewer each when several archives are pulled at
    /// once: the run's 48 MiB of parts shared between them]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// The ranged GETs in flight per archive this run uses (`--concurrency`, else chosen by `pull_ids`).
    #[arg(skip)]
    per_archive: std::sync::atomic::AtomicUsize,
    /// Tuning: make progress durable (for resuming) every this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32, hide = true)]
    checkpoint_mib: u64,
    /// Archives pulled at once with --all (or several ARCHIVE_IDs).
    #[arg(long, value_name = "N", default_value_t = 6)]
    parallel: usize,
    /// The archive's password (base64), for one archive, instead of asking the service.
    #[arg(long, value_name = "BASE64", conflicts_with_all = ["password_file", "all"])]
    password: Option<String>,
    /// File with the password or a saved callback body, for one archive, instead of asking the service.
    #[arg(long, value_name = "PATH", conflicts_with = "all")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    key: secrets::KeyArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    ledger: crate::ledger_path::LedgerArgs,
    /// One pool of part buffers for the whole run (set by `run`): allocated once, whatever the number of
    /// archives.
    #[arg(skip)]
    buffers: Option<storage_fetch::PartBuffers>,
}

/// `pull`'s flags for the pipeline.
fn pull_options(args: &Args) -> PullOptions {
    PullOptions {
        out_dir: args.out_dir.clone(),
        trim: args.trim,
        part_size: args.part_size_mib << 20,
        concurrency: args
            .per_archive
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1),
        checkpoint: args.checkpoint_mib.max(1) << 20,
        buffers: args.buffers.clone(),
    }
}

/// The bytes of parts (fetching, fetched or being decrypted) a run holds at most, over all the archives it
/// pulls at once: about what aws-cli keeps in flight (10 GETs of 8 MiB would be 80 MiB), within the 64 MiB of
/// peak RSS `pull --all` promises.
const IN_FLIGHT_BUDGET: u64 = 48 << 20;

/// Ranged GETs in flight for one archive pulled alone, when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 4;

/// Ranged GETs in flight per archive when `at_once` archives are pulled at once and `--concurrency` is not
/// given: the run's budget of `budget` parts shared between them (each also holds the part being written),
/// at most [`DEFAULT_CONCURRENCY`], at least 1. Many small archives then go with one part in flight each
/// (measured fastest on the `bench pull-many` workload, issue 12), one archive alone with 4.
fn per_archive_concurrency(budget: usize, at_once: usize) -> usize {
    (budget / at_once.max(1))
        .saturating_sub(1)
        .clamp(1, DEFAULT_CONCURRENCY)
}

/// Sets the ranged GETs in flight per archive for a run pulling `at_once` archives at once: `--concurrency`,
/// else their share of the run's budget (several archives at once: fewer GETs each).
fn set_per_archive(args: &Args, at_once: usize) {
    let per_archive = args
        .concurrency
        .unwrap_or_else(|| per_archive_concurrency(budget_parts(args.part_size_mib, 0), at_once));
    args.per_archive
        .store(per_archive, std::sync::atomic::Ordering::Relaxed);
}

/// How many parts of `part_size_mib` the run's budget holds: [`IN_FLIGHT_BUDGET`], but never fewer than one
/// archive's `--concurrency` parts in flight and the one being written.
fn budget_parts(part_size_mib: u64, concurrency: usize) -> usize {
    let fits = usize::try_from(IN_FLIGHT_BUDGET / (part_size_mib.max(1) << 20)).unwrap_or(1);
    fits.max(concurrency.saturating_add(1))
}

/// Runs `archivectl pull`.
pub fn run(mut args: Args, ctx: &Context) -> anyhow::Result<()> {
    if args.ids.is_empty() && !args.all {
        return Err(Failure::usage(
            "give the ARCHIVE_IDs to pull, or --all for every archive the ledger has pending",
        ));
    }
    if (args.password.is_some() || args.password_file.is_some()) && args.ids.len() != 1 {
        return Err(Failure::invalid(
            "--password and --password-file go with exactly one ARCHIVE_ID",
        ));
    }
    if args.part_size_mib == 0 || args.concurrency == Some(0) {
        return Err(Failure::invalid(
            "--part-size-mib and --concurrency must be at least 1",
        ));
    }
    if args.lease_ms < 30 {
        return Err(Failure::invalid("--lease-ms must be at least 30"));
    }
    let out_url = match &args.out_url {
        Some(url) => Some(out_url::resolve(
            url,
            ctx,
            usize::try_from(args.part_size_mib << 20).unwrap_or(usize::MAX),
            args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        )?),
        None => None,
    };
    if out_url.is_none() && args.out_dir.exists() && !args.out_dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "--out-dir {} exists and is not a directory",
                args.out_dir.display()
            ),
        )
        .into());
    }
    if args.delete_remote
        && let Err(e) = ctx.client()
    {
        // Said before anything is pulled, not after.
        return Err(e.context("--delete-remote deletes through the REST API"));
    }
    // One budget of parts for the whole run, whatever `--parallel`: the archives pulled at once share it
    // (see `budget_parts`), so memory does not grow with the number of archives in flight.
    args.buffers = Some(storage_fetch::PartBuffers::with_budget(
        budget_parts(
            args.part_size_mib,
            args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        ),
        args.part_size_mib << 20,
    ));
    let store = Store::with_options(args.target.resolve(ctx)?, ctx.store_options())
        .context("storage target")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    args.out = out_url;
    rt.block_on(pull_all(&args, ctx, &store))
}

async fn pull_all(args: &Args, ctx: &Context, store: &Store) -> anyhow::Result<()> {
    let client = ctx.client().ok();
    let ledger = std::sync::Mutex::new(args.ledger.open(ctx)?);
    if args.out.is_some() {
        return pull_ids(args, ctx, store, client, &ledger).await;
    }
    // Created only now that the ledger is open (`run` refused anything else than a directory there), and
    // removed again if it stays empty because nothing could be pulled.
    let created_out_dir = !args.out_dir.exists();
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create --out-dir {}", args.out_dir.display()))?;
    let result = pull_ids(args, ctx, store, client, &ledger).await;
    if created_out_dir && result.is_err() {
        let _ = std::fs::remove_dir(&args.out_dir);
    }
    result
}

async fn pull_ids(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
) -> anyhow::Result<()> {
    let workers = work::Workers::new(args);
    if args.watch {
        set_per_archive(args, args.parallel);
        return watch::run(args, ctx, store, client, ledger, &workers).await;
    }
    let ids: Vec<String> = if args.all {
        let pending = lock(ledger).pending().context("cannot read the ledger")?;
        let mut ids: Vec<String> = pending.into_iter().map(|r| r.id).collect();
        // A `failed` or `deleted` that only a callback said is checked with the REST API (a forged one must
        // not keep a real archive from being pulled).
        if let Some(c) = &client {
            ids.extend(
                archive_pull::terminal_from_callbacks(c, ledger, &CliObserver(&ctx.out)).await?,
            );
        }
        if ids.is_empty() {
            ctx.out.note("the ledger knows no uploaded archive that is not pulled yet (`archivectl sync` fills it from the REST API)");
        }
        ids
    } else {
        args.ids.clone()
    };
    set_per_archive(args, args.parallel.min(ids.len()));
    let run_id = log::run_id();
    log::started(&run_id, ids.len());
    if ids.is_empty() {
        ctx.out.note("nothing to pull");
        log::finished(&run_id, 0, 0);
        return ctx.out.emit(&Vec::<Pulled>::new(), || {});
    }
    let mut results = Vec::new();
    let mut failures = Vec::new();
    // Once a pull is interrupted (SIGINT, SIGTERM, SIGHUP), the archives still queued are not started.
    let cancel = signals::current();
    let (cancel, workers) = (&cancel, &workers);
    let mut stream = futures_util::stream::iter(ids.into_iter().map(|id| {
        let client = client.clone();
        async move {
            if let Some(reason) = cancel.reason() {
                return (id, Err(PullError::NotStarted { reason }.into()));
            }
            let r = if args.all {
                work::pull_leased(args, ctx, store, client.as_ref(), ledger, &id, workers).await
            } else {
                pull_one(args, ctx, store, client.as_ref(), ledger, &id, None).await
            };
            (id, r)
        }
    }))
    .buffer_unordered(args.parallel.max(1));
    while let Some((id, result)) = stream.next().await {
        log::archive_done(&run_id, &id, &result, args.all);
        match result {
            Ok(None) => {}
            Ok(Some(p)) => {
                print_pulled(ctx, &p);
                results.push(p);
            }
            Err(e) => failures.push((id, e)),
        }
    }
    log::finished(&run_id, results.len(), failures.len());
    ctx.out.emit(&results, || {})?;
    match failures.len() {
        0 => Ok(()),
        1 if results.is_empty() => {
            let (id, e) = failures.remove(0);
            Err(e.context(format!("cannot pull archive {id}")))
        }
        _ => {
            for (id, e) in &failures {
                eprintln!("error: cannot pull archive {id}: {e:#}");
            }
            let code = failures
                .iter()
                .map(|(_, e)| crate::exit::code_for(e))
                .max()
                .unwrap_or(1);
            Err(Failure {
                code,
                message: format!(
                    "{} of {} archives failed",
                    failures.len(),
                    failures.len() + results.len()
                ),
            }
            .into())
        }
    }
}

/// The line for a pulled archive (text mode).
fn print_pulled(ctx: &Context, p: &Pulled) {
    if !ctx.out.is_json() {
        let continuity = p.report.as_ref().map_or(0, |r| r.continuity_errors);
        crate::progress::suspend(|| {
            println!(
                "pulled {} -> {} ({} bytes, sha256 {}, duration {}{}){}{}",
                p.id,
                p.path.display(),
                p.bytes,
                p.sha256,
                p.measured_duration
                    .map_or("unknown".into(), |d| format!("{d:.3} s")),
                match continuity {
                    0 => String::new(),
                    n => format!(", {n} MPEG-TS continuity errors"),
                },
                if p.object_deleted {
                    ", object deleted from the target"
                } else {
                    ""
                },
                if p.remote_deleted {
                    ", service record deleted"
                } else {
                    ""
                }
            )
        });
    }
}

/// Pulls one archive: the password from `--password`, else the ledger, else the REST API; the result is
/// recorded in the ledger. Under a `lease` (`--all`), the pull stops if the lease is lost, and the ledger
/// records it (and the deletions are made) only once the lease is confirmed held.
async fn pull_one(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
    lease: Option<&archive_pull::Leased<'_>>,
) -> anyhow::Result<Option<Pulled>> {
    let out = args.out.as_ref();
    let given = if args.password.is_some() || args.password_file.is_some() {
        Some(secrets::read_password(
            args.password.as_deref(),
            args.password_file.as_deref(),
        )?)
    } else {
        None
    };
    let record = lock(ledger).archive(id).context("cannot read the ledger")?;
    if !args.force
        && let Some(path) = match out {
            Some(out) => out_url::already_uploaded(record.as_ref(), out, id).await,
            None => record
                .as_ref()
                .and_then(|r| already_pulled(r, &args.out_dir)),
        }
    {
        if !ctx.out.is_quiet() {
            eprintln!(
                "archive {id} is already pulled and verified at {}: nothing to do (--force pulls it again)",
                path.display()
            );
        }
        return Ok(None);
    }
    // `--password`, else the ledger, else the REST API (asked only when the ledger cannot say), and the
    // readiness rules: archive-pull's, so that every caller gets the same order.
    let inputs = archive_pull::PasswordInputs::new(given.as_deref(), record.as_ref());
    let choice = archive_pull::choose_password(client, ledger, id, inputs).await?;
    let (archive, status) = (choice.service_archive(), choice.status().cloned());
    let password = choice.password().map(str::to_owned);
    if record.is_none() && archive.is_none() {
        // Pulled with a given password and no REST API: make the ledger know the archive.
        let minimal = serde_json::json!({
            "id": id, "status": "uploaded", "password": password.clone().unwrap_or_default(),
        });
        archive_pull::record_known(&mut lock(ledger), minimal, "archivectl pull --password")
            .context("cannot record the archive in the ledger")?;
    }
    // The object key's prefix is the configured project, or what the REST API says; never a project that
    // only a callback named (issue 11: a forged `partnerId` must not choose which object is read or deleted).
    let project_from_service = archive
        .as_ref()
        .and_then(|a| a.project().map(|p| p.to_string()));
    // With Vonage application credentials the objects are filed under the application id.
    let api_key = match ctx.project_id() {
        Ok(k) => k,
        Err(e) => project_from_service.ok_or(e)?,
    };
    let opts = pull_options(args);
    let in_service_cloud = given.is_none()
        && status
            .as_ref()
            .is_some_and(|s| matches!(s, ArchiveStatus::Available));
    let url = if in_service_cloud {
        // Kept by the service after a failed upload (fallback): not in the bucket, but behind a presigned
        // URL that expires, so a fresh one is asked for.
        Some(match archive.and_then(|a| a.url.clone()) {
            Some(url) => url,
            None => {
                let client = client.ok_or_else(|| {
                    Failure::usage(format!(
                        "archive {id} is kept in the service's cloud: its download URL comes from the REST API, \
                         which needs the API key and secret"
                    ))
                })?;
                let archive = client
                    .get_archive(id)
                    .await
                    .with_context(|| format!("cannot get archive {id} from the service"))?;
                archive.url.ok_or_else(|| Failure {
                    code: crate::exit::SERVICE,
                    message: format!("the service gives no download URL for archive {id}"),
                })?
            }
        })
    } else {
        None
    };
    let source = match &url {
        Some(url) => Source::PresignedUrl(url),
        None => Source::Object {
            store,
            api_key: &api_key,
        },
    };
    // Keys are loaded only if the archive is encrypted.
    let keys = args.key.key_ring(&ctx.config);
    let observer = CliObserver(&ctx.out);
    let cancel = lease.map_or_else(signals::current, |l| l.cancel_token().clone());
    let attempt = |password: Option<String>| {
        let (keys, opts, observer, cancel) = (&keys, &opts, &observer, &cancel);
        async move {
            match out {
                Some(out) => {
                    archive_pull::pull_archive_to_bucket(
                        source,
                        id,
                        password.as_deref(),
                        keys,
                        opts,
                        &out.output(),
                        observer,
                        cancel,
                    )
                    .await
                }
                None => {
                    archive_pull::pull_archive(
                        source,
                        id,
                        password.as_deref(),
                        keys,
                        opts,
                        observer,
                        cancel,
                    )
                    .await
                }
            }
            .map_err(anyhow::Error::new)
        }
    };
    let mut fetched = attempt(password.clone()).await;
    // The ledger's password does not fit (a forged or stale callback): the REST API's, if it is another.
    if let (Err(e), Some(c), None) = (&fetched, client, &given)
        && recheck::password_failed(e)
    {
        let from_service = match archive {
            Some(a) => a.encrypted_password().map(str::to_owned),
            None => ask_service(c, ledger, id)
                .await?
                .encrypted_password()
                .map(str::to_owned),
        };
        if let Some(other) = choice.retry_password(from_service.as_deref()) {
            eprintln!(
                "note: the ledger's password for archive {id} does not fit ({e:#}); trying the one the REST API gives"
            );
            fetched = attempt(Some(other)).await;
        }
    }
    let pulled = match fetched {
        Ok(p) => p,
        Err(e) => {
            if let Some(pull_error) = e.downcast_ref::<PullError>() {
                archive_pull::record_failure(ledger, id, pull_error, &format!("{e:#}"), &observer);
            }
            return Err(e);
        }
    };
    let origin = if in_service_cloud {
        archive_pull::Origin::ServiceCloud
    } else {
        archive_pull::Origin::Target
    };
    let deletions = archive_pull::Deletions {
        object: args.delete_object,
        remote: args.delete_remote,
    };
    if let Some(lease) = lease {
        lease.fence()?;
    }
    archive_pull::settle(ledger, store, client, pulled, origin, deletions, &observer)
        .await
        .map(Some)
        .map_err(anyhow::Error::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_of_parts_shared_by_the_archives_pulled_at_once() {
        // 48 MiB of 4 MiB parts; never less than one archive's --concurrency and the part being written.
        assert_eq!(budget_parts(4, 0), 12);
        assert_eq!(budget_parts(8, 0), 6);
        assert_eq!(budget_parts(4, 20), 21);
        assert_eq!(budget_parts(1024, 0), 1);
        // One archive alone: 4 GETs in flight; six at once: one each (12 parts: 6 in flight, 6 written).
        assert_eq!(per_archive_concurrency(12, 1), 4);
        assert_eq!(per_archive_concurrency(12, 2), 4);
        assert_eq!(per_archive_concurrency(12, 3), 3);
        assert_eq!(per_archive_concurrency(12, 4), 2);
        assert_eq!(per_archive_concurrency(12, 6), 1);
        assert_eq!(per_archive_concurrency(12, 50), 1);
        assert_eq!(per_archive_concurrency(12, 0), 4);
    }
}
