//! `opentok-emulator`: the local stand-in for the Vonage Video archiving service, as a program.
//!
//! ```text
//! opentok-emulator --listen 127.0.0.1:4010 --api-key 123456 --api-secret-file secret.txt \
//!     [--callback-url URL] [--azure-endpoint URL] [--s3-endpoint URL] [--media FILE.ts] [--data-dir DIR]
//! opentok-emulator --config emulator.toml
//! ```
//!
//! The secret comes preferably from a file (`--api-secret-file`) or the environment (`OPENTOK_API_SECRET`);
//! `--api-secret SECRET` works too but shows the secret to anyone who can list processes. The first line on
//! stdout is `opentok-emulator listening on http://ADDR` (`https://` with `--tls-cert`/`--tls-key`); logs go to stderr. Ctrl-C stops it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use opentok_emulator::{
    Emulator, EmulatorConfig, ProjectConfig, parse_public_key, read_secret_file,
};
use secrecy::SecretString;

/// A local stand-in for the Vonage Video (OpenTok) archiving service: REST API, auth, encrypted uploads to
/// S3 or Azure (Azurite), status callbacks, and /_emulator test hooks.
#[derive(Debug, Parser)]
#[command(name = "opentok-emulator", version)]
struct Args {
    /// A TOML config file with more projects and options (command-line options are added to it or win).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to listen (port 0: a free one, printed on start) [default: 127.0.0.1:0].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The project's API key.
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,
    /// A file holding the project's API secret on its first line (preferred).
    #[arg(long, value_name = "FILE", conflicts_with = "api_secret")]
    api_secret_file: Option<PathBuf>,
    /// The project's API secret (visible in the process list: prefer --api-secret-file or the environment).
    #[arg(
        long,
        value_name = "SECRET",
        env = "OPENTOK_API_SECRET",
        hide_env_values = true
    )]
    api_secret: Option<String>,
    /// A Vonage application id whose RS256 Bearer tokens are accepted (with --application-public-key).
    /// Repeatable: the n-th id goes with the n-th key.
    #[arg(long, value_name = "ID", requires = "application_public_key")]
    application_id: Vec<String>,
    /// The application's public key (PEM; its private key or certificate also do). Repeatable.
    #[arg(long, value_name = "FILE", requires = "application_id")]
    application_public_key: Vec<PathBuf>,
    /// Where archive status callbacks are POSTed.
    #[arg(long, value_name = "URL")]
    callback_url: Option<String>,
    /// A file with the secret callbacks are signed with (Authorization: Bearer JWT, HS256).
    #[arg(long, value_name = "FILE")]
    callback_signature_secret_file: Option<PathBuf>,
    /// The Azure account URL uploads go to (Azurite: http://127.0.0.1:10000/devstoreaccount1).
    #[arg(long, value_name = "URL")]
    azure_endpoint: Option<String>,
    /// The endpoint uploads of S3 targets without one go to (instead of Amazon S3).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// An MPEG-TS clip to make archives of, instead of the bundled 4-second clip.
    #[arg(long, value_name = "FILE.ts")]
    media: Option<PathBuf>,
    /// Where archives kept in the emulator's cloud are written [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The base of download URLs, if clients reach the emulator by another address.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Serve HTTPS with this PEM certificate (chain, leaf first) instead of plain HTTP (with --tls-key).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a throwaway CA and server certificate for 127.0.0.1/localhost made now and written to
    /// DIR (ca.pem: the CA clients must trust; server.pem, server.key).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: Option<PathBuf>,
    /// Log debug events too (of the emulator and the libraries it uses).
    #[arg(long, short)]
    verbose: bool,
}

fn config(args: Args) -> anyhow::Result<EmulatorConfig> {
    let mut config = match &args.config {
        Some(path) => EmulatorConfig::from_toml_file(path)?,
        None => EmulatorConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    match (args.api_key, args.api_secret_file, args.api_secret) {
        (Some(key), Some(file), _) => config
            .projects
            .push(ProjectConfig::project(key, read_secret_file(&file)?)),
        (Some(key), None, Some(secret)) if !secret.is_empty() => config
            .projects
            .push(ProjectConfig::project(key, SecretString::from(secret))),
        (Some(key), _, _) => anyhow::bail!(
            "--api-key {key} needs its secret: --api-secret-file FILE, or OPENTOK_API_SECRET in the environment"
        ),
        (None, Some(_), _) => anyhow::bail!("--api-secret-file needs --api-key"),
        (None, None, _) => {}
    }
    if args.application_id.len() != args.application_public_key.len() {
        anyhow::bail!(
            "{} --application-id but {} --application-public-key: give one key per application, in the same order",
            args.application_id.len(),
            args.application_public_key.len()
        );
    }
    for (id, file) in args
        .application_id
        .into_iter()
        .zip(args.application_public_key)
    {
        let pem = std::fs::read(&file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        config
            .projects
            .push(ProjectConfig::application(id, parse_public_key(&pem)?));
    }
    if args.callback_url.is_some() {
        config.callback_url = args.callback_url;
    }
    if let Some(file) = args.callback_signature_secret_file {
        config.callback_signature_secret = Some(read_secret_file(&file)?);
    }
    if args.azure_endpoint.is_some() {
        config.azure_endpoint = args.azure_endpoint;
    }
    if args.s3_endpoint.is_some() {
        config.s3_endpoint = args.s3_endpoint;
    }
    if let Some(media) = args.media {
        config.media = Some(
            std::fs::read(&media)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", media.display()))?,
        );
    }
    if args.data_dir.is_some() {
        config.data_dir = args.data_dir;
    }
    if args.public_url.is_some() {
        config.public_url = args.public_url;
    }
    Ok(config)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_self_signed) {
        (Some(cert), Some(key), _) => {
            Some(opentok_emulator::tls::TlsConfig::from_pem_files(cert, key)?)
        }
        (_, _, Some(dir)) => {
            let made = opentok_emulator::tls::self_signed(dir)?;
            eprintln!(
                "opentok-emulator: clients must trust the throwaway CA {}",
                made.ca_cert.display()
            );
            Some(opentok_emulator::tls::TlsConfig::from_pem_files(
                &made.server_cert,
                &made.server_key,
            )?)
        }
        _ => None,
    };
    let config = config(args)?;
    let mut builder = Emulator::builder().config(config);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let emulator = builder.start().await?;
    // Where it listens, then the projects and applications it serves. A reader that closed stdout after the
    // first line (a test, `| head -1`) must not stop the server: a failed write is ignored.
    let mut banner = format!("opentok-emulator listening on {}\n", emulator.base_url());
    let snapshot = emulator.snapshot();
    for project in &snapshot.projects {
        banner.push_str(&format!(
            "  {} {}: {}/v2/project/{}\n",
            project.kind,
            project.id,
            emulator.base_url(),
            project.id
        ));
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    tokio::signal::ctrl_c().await?;
    eprintln!("opentok-emulator: stopping");
    emulator.stop().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours on a terminal only: a log written to a file or a pipe stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(level)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("opentok-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opentok-emulator: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
