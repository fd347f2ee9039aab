//! The promises table (`docs/promises.md`) stays true, run by `cargo test -p xtask`: every promise names at
//! least one test, and every test it names exists, as a test that is not ignored, in the file it names.
//! A test renamed, deleted or ignored without updating the table fails here.

use std::path::Path;

use crate::tools::workspace_root;

/// One row of the table that names something wrong, with why.
fn problems(table: &str, read: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut bad = Vec::new();
    for (n, line) in table.lines().enumerate() {
        let row = line.trim();
        if !row.starts_with('|') || row.starts_with("|---") || row.starts_with("| promise ") {
            continue;
        }
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        let held_by = cells.last().copied().unwrap_or_default();
        let tests: Vec<&str> = held_by
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.contains("::"))
            .collect();
        if tests.is_empty() {
            bad.push(format!("line {}: a promise that names no test", n + 1));
        }
        for test in tests {
            let Some((path, name)) = test.rsplit_once("::") else {
                continue;
            };
            match read(path) {
                None => bad.push(format!("line {}: {path} does not exist", n + 1)),
                Some(text) if !is_live_test(&text, name) => bad.push(format!(
                    "line {}: {path} has no test `{name}` (renamed, deleted or #[ignore]d?)",
                    n + 1
                )),
                Some(_) => {}
            }
        }
    }
    bad
}

/// Whether `text` defines `fn name` as a test (`#[test]` or `#[tokio::test...]` just above it, not ignored), or
/// defines `fn name` and names it in an `on_both!(...)` list (archive-db's conformance suite, which makes it a
/// test on each back end).
fn is_live_test(text: &str, name: &str) -> bool {
    is_attributed_test(text, name) || is_on_both_check(text, name)
}

/// `fn name(` is defined and `name` is one of the identifiers of an `on_both!( ... )` invocation.
fn is_on_both_check(text: &str, name: &str) -> bool {
    let defined = text.lines().any(|l| {
        let l = l.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        l.strip_prefix("fn ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with('('))
    });
    defined
        && text.split("on_both!(").skip(1).any(|after| {
            after
                .split(')')
                .next()
                .unwrap_or_default()
                .split(',')
                .any(|item| item.trim() == name)
        })
}

fn is_attributed_test(text: &str, name: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let l = line.trim_start();
        let defines = ["fn ", "async fn "].iter().any(|p| {
            l.strip_prefix(p)
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
        });
        if !defines {
            return false;
        }
        // The attributes directly above it (doc comments may sit among them).
        let attrs: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
            .filter(|l| l.starts_with("#["))
            .collect();
        attrs
            .iter()
            .any(|a| *a == "#[test]" || a.starts_with("#[tokio::test"))
            && !attrs.iter().any(|a| a.starts_with("#[ignore"))
    })
}

#[test]
fn every_promise_names_tests_that_exist() {
    let root = workspace_root();
    let table = std::fs::read_to_string(root.join("docs/promises.md")).expect("docs/promises.md");
    let bad = problems(&table, |p| {
        std::fs::read_to_string(Path::new(&root).join(p)).ok()
    });
    assert!(bad.is_empty(), "docs/promises.md:\n  {}", bad.join("\n  "));
}

#[test]
fn a_missing_renamed_or_ignored_test_is_found() {
    let table = "\
| promise | stated in | held by |
|---|---|---|
| a | README | `a.rs::kept`, `a.rs::gone` |
| b | guide | nothing named |
| c | guide | `b.rs::x` |
| d | guide | `a.rs::ignored`, `a.rs::helper`, `a.rs::asynchronous` |
";
    let a = "#[test]\nfn kept() {}\n#[test]\n#[ignore]\nfn ignored() {}\nfn helper() {}\n\
             #[tokio::test(flavor = \"multi_thread\")]\nasync fn asynchronous() {}\nfn kept_longer() {}\n";
    let bad = problems(table, |p| (p == "a.rs").then(|| a.to_string()));
    let both = "pub fn checked(db: &TestDb) {}\npub fn unlisted(db: &TestDb) {}\n\
                crate::on_both!(\n    checked,\n    listed_only,\n);\n";
    assert!(
        is_live_test(both, "checked"),
        "defined and listed in on_both!"
    );
    assert!(!is_live_test(both, "unlisted"), "defined, not listed");
    assert!(!is_live_test(both, "listed_only"), "listed, not defined");
    assert_eq!(
        bad,
        [
            "line 3: a.rs has no test `gone` (renamed, deleted or #[ignore]d?)",
            "line 4: a promise that names no test",
            "line 5: b.rs does not exist",
            "line 6: a.rs has no test `ignored` (renamed, deleted or #[ignore]d?)",
            "line 6: a.rs has no test `helper` (renamed, deleted or #[ignore]d?)",
        ]
    );
}
