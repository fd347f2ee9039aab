//! Golden files of the command line: every command's `--help` and the error lines of common mistakes, in
//! `tests/cmd/` (one `.toml` per invocation, its `.stdout`/`.stderr` beside it), so that an accidental change
//! of a flag, a heading, an example, a message or an exit code shows up. After an intended change:
//! `TRYCMD=overwrite cargo test -p archivectl --test cli`, then review the diff.
// The golden files are those of the default build (with `demo`).
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used)]

#[test]
fn cli_golden_files() {
    trycmd::TestCases::new()
        .register_bin(
            "archivectl",
            std::path::Path::new(env!("CARGO_BIN_EXE_archivectl")),
        )
        .case("tests/cmd/*.toml");
}

/// Every command and subcommand has its `--help` golden file.
#[test]
fn every_command_has_a_help_golden_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_archivectl"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd");
    let mut missing = Vec::new();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(path) = stack.pop() {
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        if !dir.join(format!("{name}.toml")).exists() {
            missing.push(name);
        }
        let help = std::process::Command::new(env!("CARGO_BIN_EXE_archivectl"))
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8(help.stdout).unwrap();
        let mut in_commands = false;
        for line in text.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                if !line.starts_with("  ") {
                    break;
                }
                // "  name   description", skipping description lines that continue the one above.
                if let Some(sub) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
                    let sub = sub.split_whitespace().next().unwrap().to_string();
                    if sub != "help" {
                        let mut next = path.clone();
                        next.push(sub);
                        stack.push(next);
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "no golden --help for {missing:?}");
}
