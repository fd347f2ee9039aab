//! `archivectl completions SHELL` and `archivectl man --out-dir DIR`: generated for every shell and every
//! command, mentioning every subcommand.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn completions_for_every_shell_mention_every_subcommand() {
    let paths = command_paths();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8(out.stdout).unwrap();
        for path in paths.iter().filter(|p| !p.is_empty()) {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "{shell} completion lacks {path:?}"
            );
        }
        // Options too, e.g. pull's.
        assert!(script.contains("delete-remote"), "{shell}");
    }
    assert_fails(&run(&["completions", "tcsh"]), 2, "invalid value 'tcsh'");
}

#[test]
fn man_writes_one_page_per_command_each_mentioning_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = run(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = command_paths();
    let mut expected: Vec<String> = paths
        .iter()
        .map(|p| {
            if p.is_empty() {
                "archivectl.1".to_string()
            } else {
                format!("archivectl-{}.1", p.join("-"))
            }
        })
        .collect();
    expected.sort();
    assert_eq!(files(&out_dir), expected);
    for path in &paths {
        let page = if path.is_empty() {
            "archivectl.1".to_string()
        } else {
            format!("archivectl-{}.1", path.join("-"))
        };
        let text = std::fs::read_to_string(out_dir.join(&page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is roff"
        );
        // A page names each of its command's subcommands.
        for sub in paths
            .iter()
            .filter(|p| p.len() == path.len() + 1 && p.starts_with(path))
        {
            let name = sub.last().unwrap();
            assert!(text.contains(name.as_str()), "{page} lacks {sub:?}");
        }
    }
    // The pull page has pull's options.
    let pull = std::fs::read_to_string(out_dir.join("archivectl-pull.1")).unwrap();
    assert!(pull.contains("delete\\-remote"), "{pull}");

    // A file is not a directory to write pages into.
    let file = dir.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    assert_fails(
        &run(&["man", "--out-dir", file.to_str().unwrap()]),
        2,
        "not a directory",
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
