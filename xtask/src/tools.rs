//! Finding, installing and running the external tools tests and benchmarks need.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (the parent of xtask/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command in `dir`, inheriting stdio; fails on a non-zero exit.
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs a prepared command, its output shown only when it fails.
pub fn run_quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `cmd` run by `wrapper` (a program and its own arguments: `/usr/bin/time -f ...`, `taskset -c 1`, `sh -c ...`):
/// the wrapper's command line followed by `cmd`'s program and arguments, with `cmd`'s environment changes and
/// directory.
pub(crate) fn wrapped(mut wrapper: Command, cmd: &Command) -> Command {
    wrapper.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
    wrapper
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

/// Installs, with apt, whatever of ffmpeg/ffprobe, openssl, xxd and GNU time is missing.
pub fn ensure_test_tools() -> anyhow::Result<()> {
    let wanted = [
        ("ffmpeg", "ffmpeg"),
        ("ffprobe", "ffmpeg"),
        ("openssl", "openssl"),
        ("xxd", "xxd"),
    ];
    let mut packages: Vec<&str> = wanted
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !Path::new("/usr/bin/time").exists() {
        packages.push("time");
    }
    packages.sort_unstable();
    packages.dedup();
    apt_install(&packages)
}

/// Installs Debian `packages` with apt-get (through sudo when not root); nothing when the list is empty.
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        bail!(
            "missing tools ({}) and no apt-get to install them",
            packages.join(", ")
        );
    }
    eprintln!("xtask: installing {}", packages.join(" "));
    let sudo = !is_root() && have("sudo");
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut cmd = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            cmd.arg("apt-get");
        }
        let status = cmd
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(packages.iter().copied());
    apt(&install)
}

/// Whether xtask runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_command_keeps_the_commands_arguments_environment_and_directory() {
        let mut cmd = Command::new("aws");
        cmd.args(["s3", "cp"])
            .env("AWS_REGION", "us-east-1")
            .env_remove("HOME")
            .current_dir("/tmp");
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", "1"]);
        let wrapped = wrapped(taskset, &cmd);
        assert_eq!(wrapped.get_program(), "taskset");
        let args: Vec<_> = wrapped.get_args().collect();
        assert_eq!(args, ["-c", "1", "aws", "s3", "cp"]);
        let envs: Vec<_> = wrapped.get_envs().collect();
        assert!(envs.contains(&("AWS_REGION".as_ref(), Some("us-east-1".as_ref()))));
        assert!(
            envs.contains(&("HOME".as_ref(), None)),
            "a removed variable stays removed"
        );
        assert_eq!(wrapped.get_current_dir(), Some(Path::new("/tmp")));
    }
}
