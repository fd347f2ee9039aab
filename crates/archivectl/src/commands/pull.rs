//! `archivectl pull`: fetch archives from the storage target and decrypt them while they download.
//!
//! The encrypted copy never touches the disk: parts arrive by parallel ranged GETs (storage-fetch), in order,
//! and are decrypted on other cores into `.{id}.ts.partial` beside the output, which is checkpointed. Killed,
//! cut off or interrupted, the same command resumes from the last checkpoint (see
//! `archive_core::resume`, which binds the checkpoint to the archive, the object and the key). The result is
//! verified (MPEG-TS throughout, the object's length, a valid PKCS#7 tail), measured (duration) and hashed
//! (SHA-256), and only then renamed to `{out-dir}/{id}.ts`; then the ledger records it, and only then are the
//! deletions asked for made (`settle`: `--delete-object`, `--delete-remote`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use archive_core::PasswordBlob;
use archive_core::resume::{ResumableOutput, ResumableSummary, ResumeBinding};
use futures_util::StreamExt;
use opentok_rest::model::{Archive, ArchiveStatus};
use storage_fetch::{ArchiveKind, DownloadOptions, Store};

use crate::context::Context;
use crate::exit::Failure;
use crate::output::Output;
use crate::secrets;
use crate::target::TargetArgs;
pub(crate) use output::{PlainOutput, Progress};

mod from_url;
mod output;
mod resumable;
pub(crate) use resumable::{Stop, conclude, cpu_bound, say_where_it_starts};
mod recheck;
use recheck::{already_pulled, ask_service, not_ready};
mod settle;
mod signals;

/// Arguments of `archivectl pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The archives to pull.
    #[arg(value_name = "ARCHIVE_ID", conflicts_with = "all")]
    ids: Vec<String>,
    /// Pull every uploaded or available archive not pulled yet.
    #[arg(long)]
    all: bool,
    /// Pull again an archive the ledger says is already pulled and verified in --out-dir.
    #[arg(long)]
    force: bool,
    /// Where to write `{archiveId}.ts` (or `.mp4`/`.zip` for unencrypted archives).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out_dir: PathBuf,
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
    /// Size of each ranged GET, in MiB (memory holds --concurrency + 1 parts, reused for the whole archive).
    #[arg(long, value_name = "MIB", default_value_t = 4)]
    part_size_mib: u64,
    /// Ranged GETs in flight.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Tuning: make progress durable (for resuming) every this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32, hide = true)]
    checkpoint_mib: u64,
    /// Archives pulled at once with --all.
    #[arg(long, value_name = "N", default_value_t = 2)]
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
}

/// What one pull did, for the ledger and `--json`.
#[derive(Debug, serde::Serialize)]
pub struct Pulled {
    /// The archive id.
    pub id: String,
    /// The verified output file.
    pub path: PathBuf,
    /// The object it came from.
    pub object_key: String,
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the output, hex.
    pub sha256: String,
    /// Whether it was decrypted.
    pub encrypted: bool,
    /// Where this run started (0, or a resumed checkpoint).
    pub resumed_from: u64,
    /// Padding removed by `--trim`.
    pub trimmed_bytes: u64,
    /// The real duration, measured (encrypted archives: the service reports 0).
    pub measured_duration: Option<f64>,
    /// The MPEG-TS inspection of the output.
    pub report: Option<archive_core::mpegts::TsReport>,
    /// Whether the encrypted object was then deleted from the storage target (`--delete-object`).
    pub object_deleted: bool,
    /// Whether the archive's record was then deleted at the service, through the REST API (`--delete-remote`).
    pub remote_deleted: bool,
}

/// How `pull` fetches and writes one archive: its flags, resolved.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where `{archiveId}.ts` (or `.mp4`/`.zip`) goes.
    pub out_dir: PathBuf,
    /// Remove the PKCS#7 padding.
    pub trim: bool,
    /// Bytes per ranged GET (a multiple of 16).
    pub part_size: u64,
    /// Ranged GETs in flight.
    pub concurrency: usize,
    /// Make progress durable every this many bytes.
    pub checkpoint: u64,
}

impl FetchOptions {
    fn from_args(args: &Args) -> Self {
        Self {
            out_dir: args.out_dir.clone(),
            trim: args.trim,
            part_size: args.part_size_mib << 20,
            concurrency: args.concurrency,
            checkpoint: args.checkpoint_mib.max(1) << 20,
        }
    }
}

/// Records in the ledger what this run itself knows of an archive (`fields` of the service's archive object),
/// as the service would report it.
fn record_what_we_know(
    ledger: &mut archive_db::Ledger,
    fields: serde_json::Value,
    origin: &str,
) -> anyhow::Result<()> {
    let archive: Archive =
        serde_json::from_value(fields).context("cannot describe the archive for the ledger")?;
    ledger.record_event(&archive_db::IncomingEvent::from_archive(
        &archive,
        archive_db::EventSource::Sync,
        origin,
    ))?;
    Ok(())
}

/// Runs `archivectl pull`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
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
    if args.part_size_mib == 0 || args.concurrency == 0 {
        return Err(Failure::invalid(
            "--part-size-mib and --concurrency must be at least 1",
        ));
    }
    if args.out_dir.exists() && !args.out_dir.is_dir() {
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
    let store = Store::with_options(args.target.resolve(ctx)?, ctx.store_options())
        .context("storage target")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(pull_all(&args, ctx, &store))
}

async fn pull_all(args: &Args, ctx: &Context, store: &Store) -> anyhow::Result<()> {
    let client = ctx.client().ok();
    let ledger = std::sync::Mutex::new(args.ledger.open(ctx)?);
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
    let ids: Vec<String> = if args.all {
        let pending = lock(ledger).pending().context("cannot read the ledger")?;
        let mut ids: Vec<String> = pending.into_iter().map(|r| r.id).collect();
        // A `failed` or `deleted` that only a callback said is checked with the REST API (a forged one must
        // not keep a real archive from being pulled).
        if let Some(c) = &client {
            ids.extend(recheck::terminal_from_callbacks(c, ledger).await?);
        }
        if ids.is_empty() {
            ctx.out.note("the ledger knows no uploaded archive that is not pulled yet (`archivectl sync` fills it from the REST API)");
        }
        ids
    } else {
        args.ids.clone()
    };
    if ids.is_empty() {
        ctx.out.note("nothing to pull");
        return ctx.out.emit(&Vec::<Pulled>::new(), || {});
    }
    let mut results = Vec::new();
    let mut failures = Vec::new();
    // Once a pull is interrupted (SIGINT, SIGTERM, SIGHUP), the archives still queued are not started.
    let stop = signals::Signals::current();
    let stop = &stop;
    let mut stream = futures_util::stream::iter(ids.into_iter().map(|id| {
        let client = client.clone();
        async move {
            if let Some(code) = stop.code() {
                let stopped = Failure {
                    code,
                    message: "not started: interrupted".into(),
                };
                return (id, Err(stopped.into()));
            }
            let r = pull_one(args, ctx, store, client.as_ref(), ledger, &id).await;
            (id, r)
        }
    }))
    .buffer_unordered(args.parallel.max(1));
    while let Some((id, result)) = stream.next().await {
        match result {
            Ok(None) => {}
            Ok(Some(p)) => {
                if !ctx.out.is_json() {
                    let continuity = p.report.as_ref().map_or(0, |r| r.continuity_errors);
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
                    );
                }
                results.push(p);
            }
            Err(e) => failures.push((id, e)),
        }
    }
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

/// Locks the ledger (a poisoned lock still holds a consistent SQLite connection).
fn lock(
    ledger: &std::sync::Mutex<archive_db::Ledger>,
) -> std::sync::MutexGuard<'_, archive_db::Ledger> {
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ready(status: &ArchiveStatus) -> bool {
    matches!(status, ArchiveStatus::Uploaded | ArchiveStatus::Available)
}

/// Pulls one archive: the password from `--password`, else the ledger, else the REST API; the result is
/// recorded in the ledger.
async fn pull_one(
    args: &Args,
    ctx: &Context,
    store: &Store,
    client: Option<&opentok_rest::Client>,
    ledger: &std::sync::Mutex<archive_db::Ledger>,
    id: &str,
) -> anyhow::Result<Option<Pulled>> {
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
        && let Some(path) = record
            .as_ref()
            .and_then(|r| already_pulled(r, &args.out_dir))
    {
        eprintln!(
            "archive {id} is already pulled and verified at {}: nothing to do (--force pulls it again)",
            path.display()
        );
        return Ok(None);
    }
    let known_password = given
        .clone()
        .or_else(|| record.as_ref().and_then(|r| r.password.clone()));
    let known_ready = record.as_ref().is_some_and(|r| ready(&r.status));
    // Two passwords were recorded for it (a forged callback, say): the REST API says which is the archive's.
    let conflict = given.is_none() && record.as_ref().is_some_and(|r| r.password_conflict);
    // Ask the service when the ledger cannot say: no password, or not known to be uploaded yet.
    let archive = match client {
        Some(c) if given.is_none() && (known_password.is_none() || !known_ready || conflict) => {
            Some(ask_service(c, ledger, id).await?)
        }
        _ => None,
    };
    let status = archive
        .as_ref()
        .map(|a| a.status.clone())
        .or_else(|| record.as_ref().map(|r| r.status.clone()));
    if let Some(status) = status.clone().filter(|s| !ready(s))
        && given.is_none()
    {
        return Err(not_ready(id, &status));
    }
    let from_service = archive
        .as_ref()
        .and_then(|a| a.encrypted_password().map(str::to_owned));
    let password = if conflict {
        from_service.clone().or(known_password)
    } else {
        known_password.or_else(|| from_service.clone())
    };
    if record.is_none() && archive.is_none() {
        // Pulled with a given password and no REST API: make the ledger know the archive.
        let minimal = serde_json::json!({
            "id": id, "status": "uploaded", "password": password.clone().unwrap_or_default(),
        });
        record_what_we_know(&mut lock(ledger), minimal, "archivectl pull --password")
            .context("cannot record the archive in the ledger")?;
    }
    let project_from_records = archive
        .as_ref()
        .and_then(|a| a.project().map(|p| p.to_string()))
        .or_else(|| record.as_ref().and_then(|r| r.project_id.clone()));
    let api_key = match ctx.api_key() {
        Ok(k) => k,
        Err(e) => project_from_records.ok_or(e)?,
    };
    let unwrap = |password: &str| args.key.unwrap_password(&ctx.config, password);
    let opts = FetchOptions::from_args(args);
    let in_service_cloud = given.is_none()
        && status
            .as_ref()
            .is_some_and(|s| matches!(s, ArchiveStatus::Available));
    let url = if in_service_cloud {
        // Kept by the service after a failed upload (fallback): not in the bucket, but behind a presigned
        // URL that expires, so a fresh one is asked for.
        Some(match archive.as_ref().and_then(|a| a.url.clone()) {
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
    let attempt = |password: Option<String>| {
        let (url, api_key, opts) = (&url, &api_key, &opts);
        async move {
            match url {
                Some(url) => {
                    from_url::fetch(url, id, password.as_deref(), unwrap, opts, &ctx.out).await
                }
                None => {
                    fetch(
                        store,
                        api_key,
                        id,
                        password.as_deref(),
                        unwrap,
                        opts,
                        &ctx.out,
                    )
                    .await
                }
            }
        }
    };
    let mut fetched = attempt(password.clone()).await;
    // The ledger's password does not fit (a forged or stale callback): the REST API's, if it is another.
    if let (Err(e), Some(c), None) = (&fetched, client, &given)
        && recheck::password_failed(e)
    {
        let from_service = match &archive {
            Some(_) => from_service,
            None => ask_service(c, ledger, id)
                .await?
                .encrypted_password()
                .map(str::to_owned),
        };
        if from_service.is_some() && from_service != password {
            eprintln!(
                "note: the ledger's password for archive {id} does not fit ({e:#}); trying the one the REST API gives"
            );
            fetched = attempt(from_service).await;
        }
    }
    let pulled = match fetched {
        Ok(p) => p,
        Err(e) => {
            settle::record_failure(ledger, id, &e);
            return Err(e);
        }
    };
    let origin = if in_service_cloud {
        settle::Origin::ServiceCloud
    } else {
        settle::Origin::Target
    };
    settle::settle(args, store, client, ledger, pulled, origin)
        .await
        .map(Some)
}

/// What `pull` does once it knows the store, the password and the key: finds archive `id` of project `api_key`
/// in `store`, downloads it by ranged GETs into `opts.out_dir`, decrypting on the fly (the password is turned
/// into the AES key and IV by `unwrap`, called only for an encrypted archive), checks it is MPEG-TS, measures
/// it, hashes it and renames it into place. Resumes from an earlier run's checkpoint.
pub async fn fetch(
    store: &Store,
    api_key: &str,
    id: &str,
    password: Option<&str>,
    unwrap: impl FnOnce(&str) -> anyhow::Result<PasswordBlob>,
    opts: &FetchOptions,
    out: &Output,
) -> anyhow::Result<Pulled> {
    let located = store.locate(api_key, id).await?;
    let object = located.object;
    let encrypted = located.kind.is_encrypted();
    let extension = match located.kind {
        ArchiveKind::EncryptedTs => "ts",
        ArchiveKind::Mp4 => "mp4",
        ArchiveKind::IndividualZip => "zip",
    };
    let out_path = opts.out_dir.join(format!("{id}.{extension}"));
    let blob = if encrypted {
        let password = password.ok_or_else(|| {
            Failure::invalid(format!(
                "archive {id} is encrypted but its password is unknown: give the API key and secret so it can be read from the service"
            ))
        })?;
        Some(unwrap(password)?)
    } else {
        None
    };
    let progress = Progress::new(out, id, object.size);
    let (summary, encrypted) = match blob {
        Some(blob) => {
            let s = pull_encrypted(
                store,
                id,
                &object.key,
                object.size,
                object.e_tag.as_deref(),
                blob,
                &out_path,
                opts,
                &progress,
            )
            .await?;
            (s, true)
        }
        None => (
            pull_plain(
                store,
                &object.key,
                &out_path,
                opts.part_size,
                opts.concurrency,
                &progress,
            )
            .await?,
            false,
        ),
    };
    progress.finish();
    Ok(Pulled::new(id, object.key, summary, encrypted))
}

impl Pulled {
    fn new(id: &str, object_key: String, summary: ResumableSummary, encrypted: bool) -> Self {
        Self {
            id: id.to_string(),
            path: summary.path,
            object_key,
            bytes: summary.bytes,
            sha256: summary.sha256,
            encrypted,
            resumed_from: summary.resumed_from,
            trimmed_bytes: summary.trimmed_bytes,
            measured_duration: summary.report.duration_seconds.filter(|_| encrypted),
            report: encrypted.then_some(summary.report),
            object_deleted: false,
            remote_deleted: false,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn pull_encrypted(
    store: &Store,
    id: &str,
    key: &str,
    size: u64,
    e_tag: Option<&str>,
    blob: PasswordBlob,
    out_path: &Path,
    opts: &FetchOptions,
    progress: &Progress,
) -> anyhow::Result<ResumableSummary> {
    let binding = ResumeBinding {
        archive_id: id,
        object_size: size,
        e_tag,
    };
    let output = ResumableOutput::open(out_path, &binding, &blob, opts.checkpoint)
        .with_context(|| format!("cannot write {}", out_path.display()))?;
    drop(blob);
    say_where_it_starts(&output, out_path);
    let offset = output.resume_offset();
    progress.set_position(offset);
    let mut download_opts = DownloadOptions {
        part_size: opts.part_size,
        concurrency: opts.concurrency,
        ..Default::default()
    }
    .starting_at(offset);
    if let Some(tag) = e_tag {
        download_opts = download_opts.expecting_etag(tag);
    }
    let mut download = store.download(key, download_opts).await?;
    // Each part is decrypted, checked, hashed and written as it arrives, on this task's worker (the runtime
    // is told it blocks), while the download keeps its next parts in flight on the other worker. No queue
    // between the two: memory stays that of the download's parts, as for a plain pull.
    let buffers = download.buffers();
    let mut output = output;
    let mut decrypt_error: Option<archive_core::archive::ArchiveError> = None;
    let mut failure: Option<anyhow::Error> = None;
    let mut interrupted = None;
    // The run's one listener, so a signal that comes while a part is being processed is seen.
    let mut stop = signals::Signals::current();
    loop {
        tokio::select! {
            part = download.next() => match part {
                Some(Ok(part)) => {
                    let n = part.len() as u64;
                    let written = cpu_bound(|| {
                        let mut buf = match part.try_into_mut() {
                            Ok(b) => b,
                            Err(shared) => bytes::BytesMut::from(&shared[..]),
                        };
                        let written = output.write_ciphertext(&mut buf);
                        buffers.give_back(buf);
                        written
                    });
                    if let Err(e) = written {
                        decrypt_error = Some(e);
                        break;
                    }
                    progress.inc(n);
                }
                Some(Err(e)) => {
                    failure = Some(anyhow::Error::new(e));
                    break;
                }
                None => break,
            },
            code = stop.stopped() => {
                interrupted = Some(code);
                break;
            }
        }
    }
    drop(download);
    let stop = Stop {
        decrypt_error,
        failure,
        interrupted,
    };
    conclude(output, stop, size, out_path, key, opts.trim)
}

/// An unencrypted archive: downloaded as it is, atomically, with its SHA-256 (not resumable).
async fn pull_plain(
    store: &Store,
    key: &str,
    out_path: &Path,
    part_size: u64,
    concurrency: usize,
    progress: &Progress,
) -> anyhow::Result<ResumableSummary> {
    let mut download = store
        .download(
            key,
            DownloadOptions {
                part_size,
                concurrency,
                ..Default::default()
            },
        )
        .await?;
    let buffers = download.buffers();
    let mut output = PlainOutput::create(out_path)?;
    let mut stop = signals::Signals::current();
    loop {
        let part = tokio::select! {
            part = download.next() => match part {
                Some(part) => part?,
                None => break,
            },
            // Not resumable: the temporary file goes with `output`.
            code = stop.stopped() => return Err(Failure {
                code,
                message: format!("interrupted; nothing of {} is kept", out_path.display()),
            }
            .into()),
        };
        output.write(&part, progress)?;
        if let Ok(buf) = part.try_into_mut() {
            buffers.give_back(buf);
        }
    }
    output.finish()
}
