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
