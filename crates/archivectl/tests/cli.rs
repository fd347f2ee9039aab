//! Golden files of the command line: every command's `--help` and the error lines of common mistakes, in
//! `tests/cmd/` (one `.toml` per invocation, its `.stdout`/`.stderr` beside it), so that an accidental change
//! of a flag, a heading, an example, a message or an exit code shows up. After an intended change:
//! `TRYCMD=overwrite cargo test -p archivectl --test cli`, then review the diff.
// The golden files are those of the default build (with `demo`).
#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used)]

mod common;

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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd");
    let missing: Vec<String> = common::command_paths()
        .into_iter()
        .map(|path| {
            if path.is_empty() {
                "help".to_string()
            } else {
                format!("help-{}", path.join("-"))
            }
        })
        .filter(|name| !dir.join(format!("{name}.toml")).exists())
        .collect();
    assert!(missing.is_empty(), "no golden --help for {missing:?}");
}
