//! `archivectl completions SHELL` and `archivectl man --out-dir DIR`: shell completions (clap_complete) and
//! man pages (clap_mangen), both from the command line's own definition, so they never drift from it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::exit::Failure;
use crate::output::Output;

/// Arguments of `archivectl completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

/// Arguments of `archivectl man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where to write `archivectl.1` and one `archivectl-COMMAND[-SUB].1` per command (created if missing).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "archivectl", &mut script);
    use std::io::Write as _;
    std::io::stdout()
        .write_all(&script)
        .context("cannot write the completion script to stdout")
}

/// Writes the man pages into `args.out_dir`, each atomically.
pub fn man(args: ManArgs, cmd: clap::Command, out: &Output) -> anyhow::Result<()> {
    if args.out_dir.exists() && !args.out_dir.is_dir() {
        return Err(Failure::usage(format!(
            "--out-dir {}: a file, not a directory; give a directory",
            args.out_dir.display()
        )));
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create the directory {}", args.out_dir.display()))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, &args.out_dir, &mut written)?;
    written.sort();
    out.emit(&written, || {
        for path in &written {
            println!("wrote {}", path.display());
        }
    })
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("cannot render the man page of {}", cmd.get_name()))?;
    let path = dir.join(man.get_filename());
    super::keygen::write_file(&path, &page, 0o644)?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Completions and man pages checked against clap's own command tree (`crate::command()`), not a list
    //! kept by hand: a new subcommand cannot be missed.
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every command path (`[]`, `["storage"]`, `["storage", "set", "s3"]`, ...) of the command line as
    /// clap builds it, clap's own `help` and hidden commands left out.
    fn command_paths(cmd: &clap::Command) -> Vec<Vec<String>> {
        fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            out.push(path.clone());
            for sub in cmd
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            {
                path.push(sub.get_name().to_string());
                walk(sub, path, out);
                path.pop();
            }
        }
        let mut out = Vec::new();
        walk(cmd, &mut Vec::new(), &mut out);
        out
    }

    fn built() -> clap::Command {
        let mut cmd = crate::command();
        cmd.build();
        cmd
    }

    /// The body of the zsh function `name` (up to its closing brace).
    fn zsh_function<'a>(script: &'a str, name: &str) -> Option<&'a str> {
        let start = script.find(&format!("\n{name}() {{\n"))?;
        let body = &script[start..];
        Some(&body[..body.find("\n}\n")?])
    }

    /// Where `script` (for `shell`) offers the command at `path` (never empty): each shell has its own
    /// construct for "after these words, this subcommand".
    fn offers(shell: clap_complete::Shell, script: &str, path: &[String]) -> bool {
        use clap_complete::Shell;
        let (name, parent) = path.split_last().unwrap();
        match shell {
            Shell::Bash => {
                let id = format!("archivectl__subcmd__{}", path.join("__subcmd__"));
                script.contains(&format!("cmd=\"{id}\""))
                    && script.contains(&format!("\n        {id})"))
            }
            Shell::Zsh => {
                let function = if parent.is_empty() {
                    "_archivectl_commands".to_string()
                } else {
                    format!(
                        "_archivectl__subcmd__{}_commands",
                        parent.join("__subcmd__")
                    )
                };
                zsh_function(script, &function).is_some_and(|f| f.contains(&format!("\n'{name}:")))
            }
            Shell::Fish => {
                let offer = format!("-f -a \"{name}\"");
                script.lines().any(|line| {
                    let condition = match parent {
                        [] => line.contains("-n \"__fish_archivectl_needs_command\""),
                        [first] => line.contains(&format!(
                            "-n \"__fish_archivectl_using_subcommand {first}; and not __fish_seen_subcommand_from"
                        )),
                        [first, rest @ ..] => line.contains(&format!(
                            "-n \"__fish_archivectl_using_subcommand {first}; and __fish_seen_subcommand_from {}\"",
                            rest.join(" ")
                        )),
                    };
                    condition && line.contains(&offer)
                })
            }
            Shell::PowerShell => {
                script.contains(&format!("'archivectl;{}' {{", path.join(";")))
                    && script.contains(&format!("[CompletionResult]::new('{name}', '{name}'"))
            }
            Shell::Elvish => script.contains(&format!("&'archivectl;{}'= {{", path.join(";"))),
            _ => false,
        }
    }

    #[test]
    fn completions_for_every_shell_offer_every_command_of_clap_s_tree() {
        use clap::ValueEnum as _;
        let paths = command_paths(&built());
        // The tree is the real one: every top-level command and the deepest ones are in it.
        assert!(paths.len() > 30, "{paths:?}");
        for p in [
            &["storage", "set", "s3"][..],
            &["archives", "streams", "add"],
            &["cert", "rotate"],
            &["doctor"],
        ] {
            assert!(paths.iter().any(|q| q == p), "{p:?} in {paths:?}");
        }
        for shell in clap_complete::Shell::value_variants() {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut crate::command(), "archivectl", &mut script);
            let script = String::from_utf8(script).unwrap();
            let missing: Vec<String> = paths
                .iter()
                .filter(|p| !p.is_empty() && !offers(*shell, &script, p))
                .map(|p| p.join(" "))
                .collect();
            assert!(
                missing.is_empty(),
                "{shell} completion does not offer {missing:?}"
            );
        }
    }

    #[test]
    fn the_completion_check_notices_a_command_that_is_not_offered() {
        use clap_complete::Shell;
        // A command line with `extra` under `storage`, and the script generated without it.
        let paths = vec!["storage".to_string(), "extra".to_string()];
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::command(), "archivectl", &mut script);
            let script = String::from_utf8(script).unwrap();
            assert!(!offers(shell, &script, &paths), "{shell}");
            assert!(
                offers(shell, &script, &["storage".into(), "set".into()]),
                "{shell}"
            );
        }
    }

    #[test]
    fn man_writes_a_page_per_command_of_clap_s_tree_naming_its_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        // As `man` does it.
        let mut cmd = crate::command().disable_help_subcommand(true);
        cmd.build();
        let mut written = Vec::new();
        write_pages(&cmd, dir.path(), &mut written).unwrap();
        let paths = command_paths(&built());
        let page = |path: &[String]| {
            if path.is_empty() {
                "archivectl.1".to_string()
            } else {
                format!("archivectl-{}.1", path.join("-"))
            }
        };
        let mut expected: Vec<String> = paths.iter().map(|p| page(p)).collect();
        expected.sort();
        let mut found: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, expected);
        for path in &paths {
            let text = std::fs::read_to_string(dir.path().join(page(path))).unwrap();
            assert!(text.contains(".TH"), "{} is roff", page(path));
            // Its own name in the header, and each of its subcommands as a man reference.
            let title = page(path).trim_end_matches(".1").to_string();
            assert!(text.contains(&title.replace('-', "\\-")), "{title}");
            for sub in paths
                .iter()
                .filter(|p| p.len() == path.len() + 1 && p.starts_with(path))
            {
                let name = page(sub).trim_end_matches(".1").replace('-', "\\-");
                assert!(text.contains(&name), "{} does not name {name}", page(path));
            }
        }
    }
}
