//! `archivectl`: run Vonage Video (OpenTok) encrypted archiving in production.
//!
//! A thin command line over the workspace's libraries: `archive-core` does the cryptography and the MPEG-TS
//! checks; this crate parses arguments, reads secrets safely (files or a terminal prompt, never argument
//! values), prints tables for people and JSON for scripts, and maps every failure to one line on stderr and a
//! documented exit code (see [`exit`]).

mod commands;
mod exit;
mod output;
mod secrets;

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

    #[command(subcommand)]
    command: Command,
}

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.json);
    let result = match cli.command {
        Command::Decrypt(args) => commands::decrypt::run(args, &out),
        Command::Password(cmd) => commands::password::run(cmd, &out),
        Command::Keygen(args) => commands::keygen::run(args, &out),
        Command::Cert(cmd) => commands::cert::run(cmd, &out),
        Command::Inspect(args) => commands::inspect::run(args, &out),
        Command::Demo(args) => commands::demo::run(args, &out),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}
