//! `archivectl`: run Vonage Video (OpenTok) encrypted archiving in production.
//!
//! A thin command line over the workspace's libraries: `archive-core` does the cryptography and the MPEG-TS
//! checks; this crate parses arguments, reads secrets safely (files or a terminal prompt, never argument
//! values), prints tables for people and JSON for scripts, and maps every failure to one line on stderr and a
//! documented exit code (see [`exit`]).

mod commands;
mod config;
mod context;
mod exit;
mod ledger_path;
mod output;
mod secrets;
mod target;

use clap::{Parser, Subcommand};

/// Make Vonage Video encrypted archives usable: keys, certificates, passwords, decryption and inspection.
#[derive(Debug, Parser)]
#[command(
    name = "archivectl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text (accepted anywhere on the command line).
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    global: context::GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Decrypt an encrypted archive (archive.ts) with your private key and the archive's password.
    Decrypt(commands::decrypt::Args),
    /// Work with archive passwords (the RSA-wrapped AES key and IV).
    #[command(subcommand)]
    Password(commands::password::Command),
    /// Generate an RSA key pair and the self-signed certificate to send to the service.
    Keygen(commands::keygen::Args),
    /// Work with certificates.
    #[command(subcommand)]
    Cert(commands::cert::Command),
    /// Check a decrypted archive is MPEG-TS and measure its real duration.
    Inspect(commands::inspect::Args),
    /// Run the whole flow locally on embedded defaults and say what happens at each step.
    Demo(commands::demo::Args),
    /// Set the project's archive upload target and encryption certificate.
    #[command(subcommand)]
    Storage(commands::storage::Command),
    /// List, get, start, stop and delete archives through the service's REST API.
    #[command(subcommand)]
    Archives(commands::archives::Command),
    /// Fetch archives from your S3 or Azure target and decrypt them while downloading (resumable).
    Pull(commands::pull::Args),
    /// Receive the service's archive status callbacks into the ledger (an HTTP server).
    #[command(subcommand)]
    Callbacks(commands::callbacks::Command),
    /// What the ledger knows about each archive: list, show, export.
    #[command(subcommand)]
    Ledger(commands::ledger::Command),
    /// Record the archives the REST API lists in the ledger, recovering what the receiver missed.
    Sync(commands::sync::Args),
}

fn main() -> std::process::ExitCode {
    quiet_panics();
    let cli = Cli::parse();
    let out = output::Output::new(cli.json);
    let result =
        match cli.command {
            Command::Decrypt(args) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::decrypt::run(args, &ctx)),
            Command::Password(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::password::run(cmd, &ctx)),
            Command::Keygen(args) => commands::keygen::run(args, &out),
            Command::Cert(cmd) => commands::cert::run(cmd, &out),
            Command::Inspect(args) => commands::inspect::run(args, &out),
            Command::Demo(args) => commands::demo::run(args, &out),
            Command::Storage(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::storage::run(cmd, &ctx)),
            Command::Archives(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::archives::run(cmd, &ctx)),
            Command::Pull(args) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::pull::run(args, &ctx)),
            Command::Callbacks(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::callbacks::run(cmd, &ctx)),
            Command::Ledger(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::ledger::run(cmd, &ctx)),
            Command::Sync(args) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::sync::run(args, &ctx)),
        };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

/// Output closed early (`archivectl ... | head`) ends the program quietly and successfully, as for other
/// command-line tools; any other panic is a bug, reported as one line (exit 1) instead of a backtrace.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // `exit` runs no destructors: remove what must not outlive the process (demo's private key) first.
        exit::remove_registered();
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{at}: {message} (a bug: please report it)");
        std::process::exit(i32::from(exit::INTERNAL));
    }));
}
