//! `archivectl callbacks serve`: receive the service's archive status callbacks into the ledger.
//!
//! The HTTP side is the `archive-receiver` library; this module reads the options and secrets, opens the
//! ledger, starts the group-commit writer, binds and serves until SIGINT or SIGTERM, and lets the writer finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use archive_db::GroupWriter;
use archive_receiver::ReceiverConfig;
use secrecy::ExposeSecret;

use crate::context::{Context, read_secret_file};
use crate::exit::Failure;
use crate::ledger_path::LedgerArgs;

/// `archivectl callbacks ...`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Receive archive status callbacks over HTTP and record each in the ledger before answering 200.
    Serve(ServeArgs),
}

/// `callbacks serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8080 (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// The URL path the service posts to (set the project's callback URL to http(s)://HOST/PATH).
    #[arg(long, value_name = "PATH", default_value = "/callbacks/archive")]
    path: String,
    /// File whose first line is a shared secret the callback URL must carry, as `?token=...` or in the
    /// `X-Archivectl-Token` header. Never an argument value.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// File whose first line is the signature secret of signed callbacks: every callback must then carry
    /// `Authorization: Bearer <JWT>` (HS256 with that secret, `payload_hash` = SHA-256 of the body).
    #[arg(long, value_name = "PATH")]
    signature_secret_file: Option<PathBuf>,
    /// Accept unauthenticated callbacks on an address other than loopback: anyone who can reach it can then
    /// record events (forged passwords, statuses) in the ledger. Without it, such an address needs
    /// --token-file or --signature-secret-file.
    #[arg(long)]
    insecure_no_auth: bool,
    /// How old (by its `iat`) a signed callback's token may be, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    signature_max_age: u64,
    /// A client that has not sent its request headers within this many seconds is dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// A client that has not sent its whole body within this many seconds is dropped.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Callbacks waiting for the ledger at once; beyond that the answer is 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    max_queued: u64,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// Runs `archivectl callbacks ...`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<()> {
    let Command::Serve(args) = cmd;
    if !args.path.starts_with('/')
        || ["/healthz", "/readyz", "/metrics"].contains(&args.path.as_str())
    {
        return Err(Failure::invalid(format!(
            "--path {:?} must start with / and not be /healthz, /readyz or /metrics",
            args.path
        )));
    }
    let token = args
        .token_file
        .as_deref()
        .map(|p| read_secret_file(p, "token"))
        .transpose()?;
    let signature_secret = args
        .signature_secret_file
        .as_deref()
        .map(|p| read_secret_file(p, "signature secret"))
        .transpose()?;
    if token.is_none() && signature_secret.is_none() {
        if !args.listen.ip().is_loopback() && !args.insecure_no_auth {
            return Err(Failure::usage(format!(
                "--listen {}: refusing to accept unauthenticated callbacks on an address other than loopback; give \
                 --signature-secret-file (signed callbacks) or --token-file, or --insecure-no-auth to accept anyone",
                args.listen
            )));
        }
        tracing::warn!(
            "no authentication (--token-file or --signature-secret-file): anyone who can reach {} can record \
             callbacks",
            args.listen
        );
    }
    let ledger = args.ledger.open(ctx)?;
    let ledger_file = ledger.path().display().to_string();
    let metrics = archive_receiver::Metrics::new();
    // The gauge reads the ledger at each scrape (its own connection), so a rotation shows on the next one.
    match (archive_db::Ledger::open(ledger.path()), ctx.project_id()) {
        (Ok(reader), Ok(project)) => {
            let reader = std::sync::Mutex::new(reader);
            metrics.set_certificate_expiry_source(move || {
                certificate_expiry(&*reader.lock().ok()?, &project)
            });
        }
        (Err(e), Ok(_)) => tracing::warn!(
            error = %e,
            "cannot open a second connection to the ledger: no certificate_expiry_days gauge"
        ),
        (_, Err(_)) => {}
    }
    let writer = GroupWriter::start(ledger);
    let config = ReceiverConfig {
        path: args.path,
        token: token.map(|t| zeroize::Zeroizing::new(t.expose_secret().as_bytes().to_vec())),
        signature_secret: signature_secret
            .map(|s| zeroize::Zeroizing::new(s.expose_secret().as_bytes().to_vec())),
        signature_max_age: args.signature_max_age,
        // The configured project, if any: callbacks naming another one are refused.
        project: ctx.project_id().ok(),
        limits: archive_receiver::Limits {
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            max_queued: usize::try_from(args.max_queued).unwrap_or(usize::MAX),
            ..archive_receiver::Limits::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the bound address")?;
        tracing::info!(
            ledger = %ledger_file,
            "listening on http://{addr}{} (health: http://{addr}/healthz, /readyz, /metrics)",
            config.path
        );
        // On stdout too, for scripts (port 0 picks a free port): one line, or one JSON object with --json.
        let url = format!("http://{addr}{}", config.path);
        if ctx.out.is_json() {
            println!("{}", serde_json::json!({"listening": url}));
        } else {
            println!("listening on {url}");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let limits = config.limits;
        let (app, _) = archive_receiver::router_with(config, writer.submitter(), metrics);
        archive_receiver::serve_router(listener, limits, app, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // Every acknowledged callback was committed before its answer; this writes anything still queued.
    let stats = writer.shutdown();
    drop(runtime);
    served?;
    let stats = stats?;
    tracing::info!(
        events = stats.events,
        commits = stats.commits,
        "stopped; every acknowledged callback is in the ledger"
    );
    ctx.out.emit(
        &serde_json::json!({"events": stats.events, "commits": stats.commits}),
        || {},
    )
}

/// The end of validity of the certificate the service encrypts this project's archives with now, as the
/// ledger recorded it (`storage set`, `cert rotate`), for the receiver's `certificate_expiry_days` gauge.
fn certificate_expiry(ledger: &archive_db::Ledger, project: &str) -> Option<std::time::SystemTime> {
    let active = ledger
        .active_certificate(project, time::OffsetDateTime::now_utc())
        .ok()??;
    let not_after = time::OffsetDateTime::parse(
        &active.not_after,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some(not_after.into())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
