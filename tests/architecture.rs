//! docs/architecture.md's crate table agrees with the workspace (`cargo metadata --no-deps`): every workspace
//! crate has a row, every crate named in a row's "depends on" is a real dependency of that crate, and every
//! dependency of a crate on another workspace crate is named in its row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Workspace crates and, for each, the workspace crates it depends on (normal dependencies).
fn workspace() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(*d))
                .map(str::to_string)
                .collect();
            (p["name"].as_str().expect("name").to_string(), deps)
        })
        .collect()
}

/// The rows of the table under "## Crates and what each may know": crate → the text of "depends on".
fn table(doc: &str) -> BTreeMap<String, String> {
    let section = doc
        .split("## Crates and what each may know")
        .nth(1)
        .expect("docs/architecture.md has the crate table");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            (name, cells[cells.len() - 2].to_string())
        })
        .collect()
}

/// The workspace crates named in `text` (whole words).
fn named<'a>(text: &str, crates: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    let words: BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .collect();
    crates
        .filter(|c| words.contains(c.as_str()))
        .cloned()
        .collect()
}

fn check(doc: &str, ws: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let rows = table(doc);
    let mut problems = Vec::new();
    for (name, deps) in ws {
        let Some(said) = rows.get(name) else {
            problems.push(format!("{name} has no row in the crate table"));
            continue;
        };
        let listed = named(said, ws.keys().filter(|c| *c != name));
        for d in listed.difference(deps) {
            problems.push(format!(
                "{name}'s row names {d}, which it does not depend on"
            ));
        }
        for d in deps.difference(&listed) {
            problems.push(format!(
                "{name} depends on {d}, which its row does not name"
            ));
        }
    }
    for name in rows.keys() {
        if !ws.contains_key(name) {
            problems.push(format!(
                "the crate table lists {name}, which is not a workspace crate"
            ));
        }
    }
    problems
}

#[test]
fn the_crate_table_matches_cargo_metadata() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc =
        std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs/architecture.md");
    let problems = check(&doc, &workspace());
    assert!(
        problems.is_empty(),
        "docs/architecture.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_missing_row_or_a_wrong_dependency_is_found() {
    let ws: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::new()),
        ("b".to_string(), ["a".to_string()].into()),
    ]
    .into();
    let good = "## Crates and what each may know\n\n| crate | owns | depends on |\n|---|---|---|\n\
                | `a` | x | std |\n| `b` | y | a |\n";
    assert!(check(good, &ws).is_empty());
    let wrong = good.replace("| y | a |", "| y | std |");
    assert_eq!(
        check(&wrong, &ws),
        ["b depends on a, which its row does not name"]
    );
    let missing = good.replace("| `a` | x | std |\n", "");
    assert_eq!(check(&missing, &ws), ["a has no row in the crate table"]);
    let extra = good.replace("| `a` | x | std |", "| `a` | x | b |");
    assert_eq!(
        check(&extra, &ws),
        ["a's row names b, which it does not depend on"]
    );
}
