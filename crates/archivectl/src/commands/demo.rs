//! `archivectl demo`: the whole flow on embedded defaults, saying what happens at each step.
//!
//! Everything runs in this process on 127.0.0.1, with nothing installed but the binary: an S3 server (the
//! s3s-fs library, checking SigV4 signatures as AWS does, objects as files in the demo's directory), the
//! opentok-emulator standing in for the service, and a status-callback receiver. The customer's side is the
//! code the other commands run: the REST client of `storage set` and `archives`, and `pull`'s fetch (ranged
//! GETs decrypted on the fly, checked, measured, hashed).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use archive_core::inspect::{InspectError, inspect_plaintext};
use archive_core::{cert::Certificate, keys, mpegts};
use opentok_emulator::{Emulator, Hooks};
use opentok_rest::model::{
    ArchiveEncryption, ArchiveStatus, Fallback, S3Config, StartArchiveRequest, StorageTarget,
};
use rand::Rng as _;
use secrecy::SecretString;
use storage_fetch::{S3Target, Store, Target};

use crate::context::{Context, GlobalArgs};
use crate::exit::Failure;
use crate::output::Output;

use archive_pull::{KeyRing, PullOptions, Source};

/// The demo project's API key.
const API_KEY: &str = "46000000";
/// The demo bucket in the embedded S3 server.
const BUCKET: &str = "archives";
/// The demo S3 access key id (its secret is drawn at random for each run and never shown).
const ACCESS_KEY_ID: &str = "DEMOACCESSKEY";
/// How long the recording counts as (the emulator repeats its 4-second clip to that length).
const RECORDED_SECONDS: u64 = 30;
/// How long to wait for the service to encrypt and upload the archive.
const UPLOAD_WAIT: Duration = Duration::from_secs(30);

/// Arguments of `archivectl demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's files in this directory, which must be new or empty (it is created if missing),
    /// instead of a temporary one removed at the end.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// The demo's steps, printed as they happen (text) and gathered for `--json`.
struct Steps<'a> {
    out: &'a Output,
    started: Instant,
    steps: Vec<serde_json::Value>,
}

impl Steps<'_> {
    /// Records a step and prints it; output closed early (`demo | head -1`) ends the demo with an error,
    /// so that its directories are removed on the way out.
    fn done(&mut self, title: &str, detail: String) -> anyhow::Result<()> {
        let n = self.steps.len() + 1;
        if !self.out.is_json() {
            writeln!(std::io::stderr(), "[{n:>2}] {title}: {detail}")
                .context("cannot write to stderr")?;
        }
        self.steps.push(serde_json::json!({
            "step": title, "detail": detail,
            "elapsed_ms": self.started.elapsed().as_millis() as u64,
        }));
        Ok(())
    }
}

/// A directory the demo works in: `--keep DIR` (new or empty, kept), or a temporary directory that goes
/// with the demo however it ends (returned or failed here, a panic through [`crate::exit::remove_on_exit`]).
struct WorkDir {
    path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    /// `--keep DIR`: refused unless it is missing or an empty directory, so that nothing the demo did not
    /// create is touched.
    fn kept(dir: &Path) -> anyhow::Result<Self> {
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(Failure::invalid(format!(
                        "--keep {}: the directory is not empty; give a new or empty directory (the demo \
                         never touches files it did not create)",
                        dir.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create --keep {}", dir.display()))?;
            }
            Err(_) if dir.exists() && !dir.is_dir() => {
                return Err(Failure::invalid(format!(
                    "--keep {}: not a directory; give a new or empty directory",
                    dir.display()
                )));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read --keep {}", dir.display()));
            }
        }
        let path = std::fs::canonicalize(dir)
            .with_context(|| format!("cannot use the directory {}", dir.display()))?;
        Ok(Self { path, temp: None })
    }

    /// A new temporary directory under `$TMPDIR` (else /tmp).
    fn temporary(prefix: &str) -> anyhow::Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("cannot create a temporary directory")?;
        crate::exit::remove_on_exit(temp.path());
        Ok(Self {
            path: temp.path().to_path_buf(),
            temp: Some(temp),
        })
    }

    /// Removes a temporary directory now (a kept one stays).
    fn close(mut self) -> anyhow::Result<()> {
        if let Some(temp) = self.temp.take() {
            crate::exit::forget_on_exit(&self.path);
            temp.close()
                .with_context(|| format!("cannot remove {}", self.path.display()))?;
        }
        Ok(())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            crate::exit::forget_on_exit(&self.path);
            drop(temp);
        }
    }
}

/// Runs `archivectl demo`.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let work = match &args.keep {
        Some(d) => WorkDir::kept(d)?,
        None => WorkDir::temporary("archivectl-demo-")?,
    };
    // The demo's throwaway secrets (API secret, S3 secret key) live outside the kept directory, for this
    // run only.
    let secrets = WorkDir::temporary("archivectl-demo-secrets-")?;
    let dir = work.path.clone();
    let mut steps = Steps {
        out,
        started: Instant::now(),
        steps: Vec::new(),
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Ctrl-C, SIGTERM or SIGHUP end the demo (caught from here, before the first step), so that its
    // directories are removed below.
    let mut signals = {
        let _runtime = rt.enter();
        Signals::new()?
    };
    let result = rt.block_on(async {
        tokio::select! {
            result = demo(&dir, &secrets.path, &mut steps) => result,
            code = signals.wait() => Err(Failure {
                code,
                message: "the demo was stopped by a signal; its temporary files are removed".into(),
            }
            .into()),
        }
    });
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            // Stop the servers (and a key generation still running) before their directory goes.
            rt.shutdown_timeout(Duration::from_secs(10));
            return Err(e);
        }
    };
    secrets.close()?;
    let kept = work.temp.is_none();
    work.close()?;
    // A signal while the summary is printed (to a pipe nobody reads) still ends the demo.
    rt.spawn(async move {
        let code = signals.wait().await;
        std::process::exit(i32::from(code));
    });

    let pulled = &result.pulled;
    let duration = pulled
        .measured_duration
        .map_or("unknown".to_string(), |d| format!("{d:.3} s"));
    let json = serde_json::json!({
        "dir": dir, "kept": kept, "archive_id": result.archive_id,
        "steps": steps.steps,
        "callbacks": result.callback_statuses,
        "service": {
            "status": result.service_status, "duration": result.service_duration,
            "size": result.service_size, "object": result.object_path,
        },
        "pulled": pulled,
        "report": result.report,
    });
    out.emit(&json, || {
        println!(
            "demo complete: archive {} went {}; the service reports duration {} s, the decrypted recording \
             measures {duration} ({} bytes, sha256 {})",
            result.archive_id,
            result.callback_statuses.join(" -> "),
            result.service_duration,
            pulled.bytes,
            short(&pulled.sha256),
        );
        if kept {
            println!("files kept in {}; try:", dir.display());
            println!(
                "  archivectl ledger show {} --ledger {}",
                result.archive_id,
                dir.join("ledger.sqlite3").display()
            );
            println!(
                "  archivectl inspect {}",
                pulled.path.display()
            );
        } else {
            println!("the demo's files are removed (run it with --keep DIR to keep them)");
        }
        println!("next, with your real project (see docs/user-guide.md, \"Talking to the service\"):");
        println!("  archivectl keygen --cert cert.pem --key key.pem");
        println!(
            "  archivectl storage check --bucket BUCKET --access-key-id ID --secret-access-key-file PATH"
        );
        println!("  archivectl storage set s3 --bucket BUCKET --access-key-id ID --secret-access-key-file PATH --certificate cert.pem");
        println!("  archivectl callbacks serve --listen 0.0.0.0:8080 --token-file PATH");
    })
}

/// Ctrl-C, SIGTERM and SIGHUP, caught from the moment this is made.
struct Signals {
    #[cfg(unix)]
    streams: [(tokio::signal::unix::Signal, u8); 3],
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let catch = |kind: SignalKind| signal(kind).context("cannot catch signals");
            Ok(Self {
                streams: [
                    (catch(SignalKind::interrupt())?, crate::exit::INTERRUPTED),
                    (catch(SignalKind::terminate())?, crate::exit::TERMINATED),
                    (catch(SignalKind::hangup())?, crate::exit::TERMINATED),
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for one of the signals; returns the exit code for it.
    async fn wait(&mut self) -> u8 {
        #[cfg(unix)]
        {
            let [(int, a), (term, b), (hup, c)] = &mut self.streams;
            tokio::select! {
                _ = int.recv() => *a,
                _ = term.recv() => *b,
                _ = hup.recv() => *c,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            crate::exit::INTERRUPTED
        }
    }
}

/// Step 1, the customer's key pair and certificate as `archivectl keygen` makes them, then the rest.
async fn demo(dir: &Path, secrets: &Path, steps: &mut Steps<'_>) -> anyhow::Result<FlowResult> {
    let (key, cert) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
        let key = keys::generate_rsa_key(2048)?;
        let cert = Certificate::generate_self_signed(&key, "CN=archivectl demo", 365)?;
        let pem = keys::to_pkcs8_pem(&key, None)?;
        Ok((pem, cert))
    })
    .await
    .context("the key generation failed")??;
    let key_path = dir.join("key.pem");
    let cert_path = dir.join("cert.pem");
    super::keygen::write_file(&key_path, key.as_bytes(), 0o600)?;
    drop(key);
    super::keygen::write_file(&cert_path, cert.to_pem().as_bytes(), 0o644)?;
    steps.done(
        "keygen",
        format!(
            "RSA-2048 key {} (0600) and self-signed certificate {} (sha256 {})",
            key_path.display(),
            cert_path.display(),
            short(&cert.sha256_fingerprint())
        ),
    )?;
    flow(dir, secrets, &cert, &key_path, steps).await
}

/// What the flow found, for the summary.
struct FlowResult {
    archive_id: String,
    callback_statuses: Vec<String>,
    service_status: String,
    service_duration: u64,
    service_size: u64,
    object_path: PathBuf,
    pulled: archive_pull::Pulled,
    report: mpegts::TsReport,
}

/// Steps 2 to 11: the servers, the service's REST calls, the callbacks, the pull and the inspection.
async fn flow(
    dir: &Path,
    secrets: &Path,
    cert: &Certificate,
    key_path: &Path,
    steps: &mut Steps<'_>,
) -> anyhow::Result<FlowResult> {
    // 2. The storage target: an S3 server checking SigV4 with a random secret key.
    let s3_secret = random_secret();
    let s3_root = dir.join("s3");
    std::fs::create_dir_all(s3_root.join(BUCKET))
        .with_context(|| format!("cannot create {}", s3_root.display()))?;
    let s3 = Server::s3(&s3_root, ACCESS_KEY_ID, &s3_secret).await?;
    let s3_url = format!("http://{}", s3.addr);
    let s3_target = |secret: String| {
        Store::new(Target::S3(
            S3Target::new(BUCKET, ACCESS_KEY_ID, SecretString::from(secret))
                .with_endpoint(s3_url.clone()),
        ))
        .context("storage target")
    };
    // As on AWS, a request signed with another secret key is refused.
    let forged = s3_target(random_secret())?.check().await;
    let refused = match forged.first_error() {
        Some(storage_fetch::Error::Credentials { code, .. }) => *code,
        Some(other) => anyhow::bail!(
            "the embedded S3 server did not refuse a wrong secret key as S3 does: {other}"
        ),
        None => anyhow::bail!(
            "the embedded S3 server accepted a request signed with a wrong secret key"
        ),
    };
    steps.done(
        "S3 server",
        format!(
            "s3s-fs on {s3_url}, bucket {BUCKET:?} in {}; SigV4 checked: a wrong secret key gets {refused}",
            s3_root.display()
        ),
    )?;

    // 3. The status-callback receiver: `archivectl callbacks serve`'s server, committing to a ledger.
    let ledger_path = dir.join("ledger.sqlite3");
    let ledger = archive_db::Ledger::open(&ledger_path)
        .with_context(|| format!("cannot open the ledger {}", ledger_path.display()))?;
    let writer = archive_db::GroupWriter::start(ledger);
    let listener = bind().await?;
    let receiver_addr = listener
        .local_addr()
        .context("cannot listen on 127.0.0.1")?;
    let (stop_receiver, stopped_receiver) = tokio::sync::oneshot::channel::<()>();
    let receiver_config = archive_receiver::ReceiverConfig::new("/callbacks/archive");
    let receiver = tokio::spawn(archive_receiver::serve(
        listener,
        receiver_config,
        writer.submitter(),
        async {
            let _ = stopped_receiver.await;
        },
    ));
    let callback_url = format!("http://{receiver_addr}/callbacks/archive");
    steps.done(
        "callback receiver",
        format!(
            "`archivectl callbacks serve` on {callback_url}: each callback committed to the ledger {} before \
             it is answered",
            ledger_path.display()
        ),
    )?;

    // 4. The service: the emulator, uploading to the embedded S3 server, calling back the receiver.
    let api_secret = random_secret();
    let emulator = Emulator::builder()
        .project(API_KEY, SecretString::from(api_secret.clone()))
        .s3_endpoint(s3_url.clone())
        .callback_url(callback_url)
        .start()
        .await
        .context("cannot start the emulator")?;
    // The demo cannot wait 30 s of real recording: the emulator counts the recording as that long.
    emulator.set_hooks(Hooks {
        recorded_seconds: Some(RECORDED_SECONDS),
        ..Hooks::default()
    });
    steps.done(
        "service",
        format!(
            "opentok-emulator on {} for project {API_KEY} (a recording counts as {RECORDED_SECONDS} s: its \
             4-second clip repeated)",
            emulator.base_url()
        ),
    )?;

    // The REST client exactly as `archivectl storage set` and `archivectl archives` build it.
    let secret_file = secrets.join("api-secret");
    super::keygen::write_file(&secret_file, api_secret.as_bytes(), 0o600)?;
    let ctx = Context {
        out: *steps.out,
        global: GlobalArgs {
            api_key: Some(API_KEY.into()),
            api_url: Some(emulator.base_url()),
            api_secret_file: Some(secret_file),
            ..GlobalArgs::default()
        },
        config: crate::config::Config::default(),
    };
    let client = ctx.client()?;

    // 5. `storage set s3 --endpoint ... --certificate cert.pem --fallback none`.
    cert.check_service_acceptance()?;
    let target = StorageTarget::s3(
        S3Config {
            bucket: BUCKET.into(),
            access_key: ACCESS_KEY_ID.into(),
            secret_key: SecretString::from(s3_secret.clone()),
            endpoint: Some(s3_url.clone()),
            sse: None,
        },
        Fallback::None,
        ArchiveEncryption::for_certificate(cert),
    );
    let storage_set_at = time::OffsetDateTime::now_utc();
    client
        .set_archive_storage(&target)
        .await
        .context("cannot set the archive storage")?;
    let mut certificates = archive_db::Ledger::open(&ledger_path)
        .with_context(|| format!("cannot open the ledger {}", ledger_path.display()))?;
    super::storage::record_activation(&mut certificates, API_KEY, Some(cert), storage_set_at)
        .context("cannot record the certificate in the ledger")?;
    steps.done(
        "storage set",
        format!(
            "PUT /v2/project/{API_KEY}/archive/storage: S3 bucket {BUCKET} at {s3_url}, encrypted for the \
             certificate, fallback none"
        ),
    )?;

    // 6. `archives start`, 7. `archives stop`.
    let mut request = StartArchiveRequest::new("2_MX40NjAwMDAwMH5-YXJjaGl2ZWN0bC1kZW1v");
    request.name = Some("archivectl demo".into());
    let started = client
        .start_archive(&request)
        .await
        .context("cannot start the archive")?;
    let id = started.id.clone();
    steps.done(
        "archives start",
        format!("archive {id} is {}", started.status.as_str()),
    )?;
    let stopped = client
        .stop_archive(&id)
        .await
        .with_context(|| format!("cannot stop archive {id}"))?;
    steps.done(
        "archives stop",
        format!(
            "archive {id} is {}; the service now encrypts and uploads it",
            stopped.status.as_str()
        ),
    )?;

    // 8. Wait for `uploaded` in the ledger (the receiver committed the callbacks), then GET.
    let mut ledger = archive_db::Ledger::open(&ledger_path)
        .with_context(|| format!("cannot open the ledger {}", ledger_path.display()))?;
    let deadline = tokio::time::Instant::now() + UPLOAD_WAIT;
    let uploaded = loop {
        if let Some(record) = ledger.archive(&id).context("cannot read the ledger")? {
            match record.status {
                ArchiveStatus::Uploaded => break record,
                ArchiveStatus::Failed | ArchiveStatus::Available => anyhow::bail!(
                    "archive {id} was not uploaded to the embedded S3 server: it is {} ({})",
                    record.status.as_str(),
                    record.reason.as_deref().unwrap_or("no reason given")
                ),
                _ => {}
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no `uploaded` callback for archive {id} within {} s",
            UPLOAD_WAIT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let statuses: Vec<String> = ledger
        .status_history(&id)
        .context("cannot read the ledger")?
        .into_iter()
        .map(|change| change.status)
        .collect();
    let callback_password = uploaded
        .password
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the `uploaded` callback carries no password"))?;
    // The `uploaded` callback's body exactly as the receiver got it.
    let uploaded_body = ledger
        .events(Some(&id))
        .context("cannot read the ledger")?
        .into_iter()
        .map(|event| event.body)
        .find(|body| {
            serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v["status"] == "uploaded")
        })
        .ok_or_else(|| anyhow::anyhow!("the ledger has no `uploaded` callback for archive {id}"))?;
    let callback_json = dir.join("callback.json");
    super::keygen::write_file(&callback_json, uploaded_body.as_bytes(), 0o644)?;
    steps.done(
        "callbacks",
        format!(
            "{} committed to the ledger; `uploaded` carries the RSA-wrapped password (body saved as {})",
            statuses.join(", "),
            callback_json.display()
        ),
    )?;
    let archive = client
        .get_archive(&id)
        .await
        .with_context(|| format!("cannot get archive {id} from the service"))?;
    anyhow::ensure!(
        archive.status == ArchiveStatus::Uploaded,
        "the service says archive {id} is {} after its `uploaded` callback",
        archive.status.as_str()
    );
    let password = archive
        .encrypted_password()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the service shows no password for archive {id}"))?;
    anyhow::ensure!(
        password == callback_password,
        "the password from GET differs from the callback's"
    );
    let object_key = format!("{API_KEY}/{id}/archive.ts");
    let object_path = s3_root.join(BUCKET).join(&object_key);
    steps.done(
        "archives get",
        format!(
            "uploaded, {} bytes at {object_key}, duration {} s (the known issue of encrypted archives), the \
             callback's password",
            archive.size, archive.duration
        ),
    )?;

    // 9. `pull`: ranged GETs from the S3 server, decrypted as they arrive, checked, measured, hashed.
    let store = s3_target(s3_secret)?;
    let opts = PullOptions {
        out_dir: dir.to_path_buf(),
        trim: false,
        // Small parts, so this small archive still comes in several parallel ranged GETs.
        part_size: 256 << 10,
        concurrency: 4,
        checkpoint: 32 << 20,
        buffers: None,
    };
    let key_file = key_path.to_path_buf();
    let keys = KeyRing::new().with_key(key_path.display().to_string(), move || {
        crate::secrets::load_private_key(&key_file, None).map_err(Into::into)
    });
    let pulled = archive_pull::pull_archive(
        Source::Object {
            store: &store,
            api_key: API_KEY,
        },
        &id,
        Some(&password),
        &keys,
        &opts,
        &super::pull::CliObserver(steps.out),
        &archive_pull::CancelToken::new(),
    )
    .await
    .with_context(|| format!("cannot pull archive {id}"))?;
    steps.done(
        "pull",
        format!(
            "{}: {} bytes from {} parallel ranged GETs, decrypted on the fly, sha256 {}",
            pulled.path.display(),
            pulled.bytes,
            pulled.bytes.div_ceil(opts.part_size).max(1),
            short(&pulled.sha256)
        ),
    )?;

    ledger
        .record_pull(
            &id,
            &archive_db::PullRecord {
                local_path: pulled.path.clone(),
                sha256: pulled.sha256.clone(),
                measured_duration: pulled.measured_duration,
                verified_at: time::OffsetDateTime::now_utc(),
            },
        )
        .context("cannot record the pull in the ledger")?;
    steps.done(
        "ledger",
        format!(
            "archive {id}: the wrapped password as received, {} statuses, pulled to {}, sha256, measured duration \
             (with --keep DIR, `archivectl ledger show {id} --ledger DIR/ledger.sqlite3` shows it afterwards)",
            statuses.len(),
            pulled.path.display(),
        ),
    )?;

    // 10. `inspect` the file on disk.
    let (report, sha256) = inspect(&pulled.path)?;
    anyhow::ensure!(
        sha256 == pulled.sha256,
        "{} changed after it was pulled",
        pulled.path.display()
    );
    steps.done("inspect", super::describe_report(&report))?;

    emulator.stop().await;
    s3.stop();
    let _ = stop_receiver.send(());
    receiver
        .await
        .context("the callback receiver failed")?
        .context("the callback receiver failed")?;
    writer.shutdown().context("cannot close the ledger")?;
    Ok(FlowResult {
        archive_id: id,
        callback_statuses: statuses,
        service_status: archive.status.as_str().to_string(),
        service_duration: archive.duration,
        service_size: archive.size,
        object_path,
        pulled,
        report,
    })
}

/// Reads a file as `archivectl inspect` does (MPEG-TS check, streams, duration) and hashes it.
fn inspect(path: &Path) -> anyhow::Result<(mpegts::TsReport, String)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    match inspect_plaintext(file) {
        Ok(found) => Ok((found.report, found.sha256)),
        Err(InspectError::Read(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
        }
        Err(InspectError::NotMpegTs(e)) => Err(Failure::invalid(format!(
            "{} is not MPEG-TS ({e})",
            path.display()
        ))),
        Err(e) => Err(anyhow::anyhow!("{} is {e}", path.display())),
    }
}

/// A server of the demo, on 127.0.0.1, serving in the background until stopped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The s3s-fs S3 server over `root`, accepting requests signed (SigV4) with this key pair only.
    async fn s3(root: &Path, access_key: &str, secret_key: &str) -> anyhow::Result<Self> {
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| anyhow::anyhow!("cannot serve S3 from {}: {e:?}", root.display()))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(access_key, secret_key));
        let service = builder.build();
        let listener = bind().await?;
        let addr = listener
            .local_addr()
            .context("cannot listen on 127.0.0.1")?;
        let task = tokio::spawn(async move {
            loop {
                let socket = match listener.accept().await {
                    Ok((socket, _)) => socket,
                    Err(_) => {
                        // Out of descriptors or the like: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    fn stop(self) {
        self.task.abort();
    }
}

async fn bind() -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")
}

/// A random secret for this run (hex of 20 random bytes).
fn random_secret() -> String {
    let mut b = [0u8; 20];
    rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut b);
    hex::encode(b)
}

/// The start of a long hex string, for people.
fn short(hex: &str) -> String {
    if hex.len() > 16 {
        format!("{}...", &hex[..16])
    } else {
        hex.to_string()
    }
}
