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
mod help;
mod ledger_path;
mod logging;
mod output;
mod pg_password;
mod profile;
mod progress;
mod secrets;
mod target;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

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
    #[arg(long, global = true, help_heading = context::GLOBAL_HEADING)]
    json: bool,

    #[command(flatten)]
    global: context::GlobalArgs,

    #[command(flatten)]
    log: logging::LogArgs,

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
    #[cfg(feature = "demo")]
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
    /// What the ledger knows about each archive: list, show, export; migrate a file into PostgreSQL.
    #[command(subcommand)]
    Ledger(commands::ledger::Command),
    /// Record the archives the REST API lists in the ledger, recovering what the receiver missed.
    Sync(commands::sync::Args),
    /// Check the setup: config, files, keys, certificate expiry, storage, service, ledger, receiver.
    Doctor(commands::doctor::Args),
    /// Show the effective settings and where each came from.
    #[command(subcommand)]
    Config(commands::config::Command),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    Completions(commands::shell::CompletionsArgs),
    /// Write the man pages: archivectl.1 and one archivectl-COMMAND[-SUB].1 per command.
    Man(commands::shell::ManArgs),
}

fn main() -> std::process::ExitCode {
    quiet_panics();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let out = output::Output::new(cli.json).quiet(cli.log.quiet);
    // The long-running commands log each callback and each archive; the others only what goes wrong.
    let long_running = matches!(&cli.command, Command::Callbacks(_))
        || matches!(&cli.command, Command::Pull(args) if args.all);
    cli.log.init(long_running);
    let result =
        match cli.command {
            Command::Decrypt(args) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::decrypt::run(args, &ctx)),
            Command::Password(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::password::run(cmd, &ctx)),
            Command::Keygen(args) => commands::keygen::run(args, &out),
            Command::Cert(cmd) => commands::cert::run(cmd, out, cli.global),
            Command::Inspect(args) => commands::inspect::run(args, &out),
            #[cfg(feature = "demo")]
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
            Command::Doctor(args) => commands::doctor::run(args, out, cli.global),
            Command::Config(cmd) => context::Context::new(out, cli.global)
                .and_then(|ctx| commands::config::run(cmd, &ctx)),
            Command::Completions(args) => commands::shell::completions(args, command()),
            Command::Man(args) => commands::shell::man(args, command(), &out),
        };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

/// The service's API options: only the commands that call the service show them in `--help` (see
/// [`calls_service`]); the others accept them (scripts may pass them to every command) and ignore them.
const SERVICE_ARGS: &[(&str, &str)] = &[
    ("api_key", "--api-key"),
    ("api_url", "--api-url"),
    ("api_secret_file", "--api-secret-file"),
    ("application_id", "--application-id"),
    ("private_key", "--private-key"),
    ("allow_http", "--allow-http"),
];

/// Whether the command at `path` (`["storage", "set", "s3"]`) calls the service's REST API.
fn calls_service(path: &[String]) -> bool {
    match path.first().map(String::as_str) {
        Some("archives" | "pull" | "sync" | "doctor") => true,
        Some("storage") => path.get(1).is_none_or(|s| s == "set"),
        Some("cert") => path.get(1).is_some_and(|s| s == "rotate"),
        _ => false,
    }
}

/// The command line's definition: the service's options (global, so that they may come before the
/// command too) are shown only by the commands that call the service, under the global heading.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let shown: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| SERVICE_ARGS.iter().any(|(id, _)| a.get_id() == id))
        .map(|a| a.clone().global(false))
        .collect();
    for (id, _) in SERVICE_ARGS {
        cmd = cmd.mut_arg(*id, |a| a.hide(true));
    }
    show_service_args(&mut cmd, &shown, &mut Vec::new());
    help::attach(cmd)
}

/// Gives each command that calls the service (and has no subcommands) its own visible copy of the service's
/// options; clap then does not propagate the hidden global ones to it.
fn show_service_args(cmd: &mut clap::Command, shown: &[clap::Arg], path: &mut Vec<String>) {
    for sub in cmd.get_subcommands_mut() {
        path.push(sub.get_name().to_string());
        if sub.get_subcommands().next().is_none() && calls_service(path) {
            *sub = std::mem::take(sub).args(shown.iter().cloned());
        }
        show_service_args(sub, shown, path);
        path.pop();
    }
}

/// Parses the command line; a mistake is reported as one line (exit 2).
fn parse() -> Result<Cli, std::process::ExitCode> {
    let matches = command()
        .try_get_matches()
        .map_err(|e| exit::report_clap(&e))?;
    let mut path = Vec::new();
    let mut at = &matches;
    while let Some((name, sub)) = at.subcommand() {
        path.push(name.to_string());
        at = sub;
    }
    context::remember_command_line(at);
    // The application's --private-key (a global option, hidden where it does not apply) is easily taken for
    // the archive key's --key: refused on the commands that have --key.
    let has_key = command_at(&command(), &path)
        .is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some("key")));
    if !calls_service(&path)
        && has_key
        && matches.value_source("private_key") == Some(clap::parser::ValueSource::CommandLine)
    {
        eprintln!(
            "error: --private-key (the Vonage application's key, for the commands that call the service) does \
             not apply to `archivectl {}`: did you mean --key? (see --help)",
            path.join(" ")
        );
        return Err(std::process::ExitCode::from(exit::USAGE));
    }
    Cli::from_arg_matches(&matches).map_err(|e| exit::report_clap(&e))
}

/// The (sub)command at `path`.
fn command_at<'a>(cmd: &'a clap::Command, path: &[String]) -> Option<&'a clap::Command> {
    match path.split_first() {
        None => Some(cmd),
        Some((first, rest)) => command_at(cmd.find_subcommand(first)?, rest),
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

#[cfg(test)]
mod tests {
    //! The global options, checked on every command of clap's own tree (not a list kept by hand).
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every command path, clap's `help` and hidden commands left out.
    fn paths(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            path.push(sub.get_name().to_string());
            paths(sub, path, out);
            path.pop();
        }
    }

    #[test]
    fn every_command_takes_quiet_verbose_log_format_json_and_profile_before_or_after_it() {
        let mut all = Vec::new();
        paths(&command(), &mut Vec::new(), &mut all);
        assert!(all.len() > 30, "{all:?}");
        for path in &all {
            for global in [
                &["-q"][..],
                &["--quiet"],
                &["-v"],
                &["-vv"],
                &["--verbose"],
                &["--log-format", "json"],
                &["--json"],
                &["--profile", "staging"],
            ] {
                for before in [true, false] {
                    let mut argv = vec!["archivectl".to_string()];
                    let global = global.iter().map(|s| s.to_string());
                    if before {
                        argv.extend(global);
                        argv.extend(path.iter().cloned());
                    } else {
                        argv.extend(path.iter().cloned());
                        argv.extend(global);
                    }
                    argv.push("--help".into());
                    let err = command().try_get_matches_from(&argv).unwrap_err();
                    assert_eq!(
                        err.kind(),
                        clap::error::ErrorKind::DisplayHelp,
                        "{argv:?}: {err}"
                    );
                }
            }
            // Together they are refused, on every command that runs (those with subcommands ask for one).
            let cmd = command();
            let at = command_at(&cmd, path).unwrap();
            if at.get_subcommands().next().is_some() {
                continue;
            }
            let mut argv = vec!["archivectl".to_string()];
            argv.extend(path.iter().cloned());
            argv.extend(["-q".to_string(), "-v".to_string()]);
            let err = command().try_get_matches_from(&argv).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{argv:?}: {err}"
            );
        }
        // And they land where the commands read them.
        let cli = Cli::from_arg_matches(
            &command()
                .try_get_matches_from(["archivectl", "doctor", "-vv"])
                .unwrap(),
        )
        .unwrap();
        assert_eq!((cli.log.quiet, cli.log.verbose), (false, 2));
        let cli = Cli::from_arg_matches(
            &command()
                .try_get_matches_from(["archivectl", "-q", "ledger", "list"])
                .unwrap(),
        )
        .unwrap();
        assert!(cli.log.quiet);
    }
}

#[cfg(test)]
mod guide_tests {
    //! docs/user-guide.md shows each command of clap's tree with a concrete example, not only a synopsis.
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Whether `line` (from a fenced block) runs `path` concretely: `archivectl [global flags] PATH ...`, with
    /// no synopsis marker (`[`, `...`, an upper-case placeholder such as `PATH` or `ID`).
    fn runs(line: &str, path: &[String]) -> bool {
        let line = line.trim_start().trim_start_matches("$ ");
        let line = line.split("  #").next().unwrap();
        let mut words = line.split_whitespace();
        if words.next() != Some("archivectl") {
            return false;
        }
        let command: Vec<&str> = words
            .filter(|w| !w.starts_with('-'))
            .take(path.len())
            .collect();
        let placeholder = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        command == path && !line.contains('[') && !line.contains("...") && !placeholder
    }

    /// The lines inside fenced code blocks.
    fn code_lines(text: &str) -> Vec<&str> {
        let mut inside = false;
        let mut lines = Vec::new();
        for line in text.lines() {
            if line.starts_with("```") {
                inside = !inside;
            } else if inside {
                lines.push(line);
            }
        }
        lines
    }

    fn leaves(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let subs: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push(path.clone());
        }
        for sub in subs {
            path.push(sub.get_name().to_string());
            leaves(sub, path, out);
            path.pop();
        }
    }

    #[test]
    fn every_command_has_a_concrete_example_in_the_user_guide() {
        let guide = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-guide.md"),
        )
        .unwrap();
        let code = code_lines(&guide);
        let mut all = Vec::new();
        leaves(&command(), &mut Vec::new(), &mut all);
        assert!(all.len() > 25, "{all:?}");
        let missing: Vec<String> = all
            .iter()
            .filter(|path| !code.iter().any(|line| runs(line, path)))
            .map(|p| p.join(" "))
            .collect();
        assert!(
            missing.is_empty(),
            "no example in docs/user-guide.md for {missing:?}"
        );
    }

    #[test]
    fn a_synopsis_is_not_an_example() {
        let path = |p: &str| p.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(runs("$ archivectl inspect a.ts", &path("inspect")));
        assert!(runs(
            "archivectl -v archives list   # every request",
            &path("archives list")
        ));
        assert!(!runs("archivectl cert inspect c.pem", &path("inspect")));
        assert!(!runs(
            "archivectl inspect ARCHIVE.ts [--json]",
            &path("inspect")
        ));
        assert!(!runs("archivectl archives get ID", &path("archives get")));
        assert!(!runs(
            "archivectl storage set s3 ...",
            &path("storage set s3")
        ));
    }
}
