//! Tidy rules for the whole workspace, run by `cargo test -p xtask` (and so by `cargo xtask ci`), in the manner of
//! rust-analyzer's `xtask/src/tidy.rs`: the conventions the codebase promises, checked instead of remembered.
//!
//! * every Rust source file opens with a `//!` comment;
//! * no library crate depends on `anyhow` (libraries return `thiserror` types; binaries use anyhow);
//! * no library crate depends on `archivectl` or `opentok-emulator` (dependencies point down, and the
//!   production crates never link a test double);
//! * no non-test source file is over [`MAX_LINES`] lines, apart from the few listed in [`OVERSIZED`];
//! * the production build (`archivectl --no-default-features`, `cargo tree -e normal`) links no test double
//!   or test library ([`NOT_IN_PRODUCTION`]) and one version of each RustCrypto crate ([`RUST_CRYPTO`]):
//!   one generation, the one object_store and postgres-protocol use too, apart from what
//!   [`SECOND_GENERATION`] lists with its reason (crc-fast's `digest` 0.10).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::workspace_root;

/// The size budget of a non-test source file (files under a `tests/` directory and `tests.rs` modules are
/// exempt: long test modules go there).
const MAX_LINES: usize = 800;

/// Files allowed over the budget (none since issue 10 split the last one). An entry must name a file that is
/// still over it: the test fails when a listed file is back under the budget, so the list only shrinks.
const OVERSIZED: &[&str] = &[];

/// Library crates allowed a dependency the rules otherwise refuse, with the reason.
const LIBRARY_EXCEPTIONS: &[(&str, &str, &str)] = &[
    // (crate, dependency, why)
    (
        "opentok-emulator",
        "anyhow",
        "its binary's main.rs; cargo cannot give a dependency to the bin target alone",
    ),
];

/// Crates the production build must not link: the test doubles and test libraries.
const NOT_IN_PRODUCTION: &[&str] = &["opentok-emulator", "s3s", "s3s-fs", "proptest", "trycmd"];

/// The RustCrypto crates: each at most once (one version) in the production build, so that it has one
/// generation of them.
const RUST_CRYPTO: &[&str] = &[
    "aes",
    "aes-gcm",
    "block-buffer",
    "block-padding",
    "cbc",
    "cipher",
    "const-oid",
    "crypto-bigint",
    "crypto-common",
    "der",
    "des",
    "digest",
    "ecdsa",
    "ed25519-dalek",
    "elliptic-curve",
    "hmac",
    "inout",
    "md-5",
    "p256",
    "p384",
    "pbkdf2",
    "pkcs1",
    "pkcs5",
    "pkcs8",
    "rsa",
    "scrypt",
    "sha1",
    "sha2",
    "signature",
    "spki",
    "x509-cert",
];

/// RustCrypto crates allowed a second version in the production build, with the reason. An entry must still
/// be needed: the rule fails when a listed version is gone, so the list only shrinks. Since issue 10 every
/// RustCrypto crate of ours is of the generation object_store and postgres-protocol use (rsa 0.10, digest 0.11,
/// cipher 0.5); what is left is crc-fast's `Digest` impl, on the old `digest` alone.
const SECOND_GENERATION: &[(&str, &str, &str)] = &[
    // (crate, the second version, why)
    (
        "digest",
        "0.10",
        "crc-fast 1.10's (the newest release) `Digest` impl, behind its default `std`, which object_store 0.14 \
         takes; no algorithm crate of the old generation comes with it",
    ),
    ("crypto-common", "0.1", "digest 0.10's, for crc-fast"),
];

/// The production build's rules broken by `tree`, the `name version` pairs of its crates, with `second` the
/// allowed second versions ([`SECOND_GENERATION`]): one line each.
fn production_violations(tree: &[(String, String)], second: &[(&str, &str, &str)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, version) in tree {
        if NOT_IN_PRODUCTION.contains(&name.as_str()) {
            bad.push(format!(
                "the production build links {name} {version}, a test double or test library"
            ));
        }
    }
    let allowed = |name: &str, version: &str| {
        second
            .iter()
            .any(|(n, v, _)| *n == name && (version == *v || version.starts_with(&format!("{v}."))))
    };
    for name in RUST_CRYPTO {
        let mut versions: Vec<&str> = tree
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        versions.sort();
        versions.dedup();
        let unexplained: Vec<&str> = versions
            .iter()
            .copied()
            .filter(|v| !allowed(name, v))
            .collect();
        if unexplained.len() > 1 || (unexplained.len() == 1 && versions.len() > 2) {
            bad.push(format!(
                "the production build links {name} {}: a second RustCrypto generation",
                versions.join(" and ")
            ));
        }
    }
    for (name, version, _) in second {
        let present = tree
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>();
        let second = present.iter().any(|v| allowed(name, v));
        let first = present.iter().any(|v| !allowed(name, v));
        if !(second && first) {
            bad.push(format!(
                "{name} {version} is no longer a second version in the production build: remove it from \
                 SECOND_GENERATION in xtask/src/tidy.rs"
            ));
        }
    }
    bad
}

/// The `name version` pairs of `cargo tree -e normal --prefix none` output (`name vX.Y.Z ...`).
fn tree_crates(text: &str) -> Vec<(String, String)> {
    let mut crates: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_string(), version.to_string()))
        })
        .collect();
    crates.sort();
    crates.dedup();
    crates
}

/// Every `.rs` file of the workspace that git knows about (tracked or new, not ignored).
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "*.rs",
        ])
        .current_dir(root)
        .output()
        .expect("git ls-files (the tidy test needs git)");
    assert!(out.status.success(), "git ls-files failed");
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(".xtask/"))
        .map(|l| root.join(l))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        files.len() > 50,
        "only {} Rust files found: is this the workspace?",
        files.len()
    );
    files
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Whether `rel` (a workspace-relative path) is test code: under a `tests/` directory, or a `tests.rs` module.
fn is_test_file(rel: &str) -> bool {
    rel.split('/').any(|c| c == "tests") || rel.ends_with("/tests.rs")
}

/// The files in `files` (workspace-relative path, contents) that do not open with `//!`.
fn missing_module_docs(files: &[(String, String)]) -> Vec<&str> {
    files
        .iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(rel, _)| rel.as_str())
        .collect()
}

/// The non-test files over `max` lines that are not in `allowed`, and the `allowed` ones no longer over it.
fn over_budget<'a>(
    files: &'a [(String, String)],
    max: usize,
    allowed: &[&'a str],
) -> (Vec<String>, Vec<&'a str>) {
    let mut over = Vec::new();
    let mut still_over = Vec::new();
    for (rel, text) in files {
        if is_test_file(rel) {
            continue;
        }
        let lines = text.lines().count();
        if lines > max {
            if allowed.contains(&rel.as_str()) {
                still_over.push(rel.as_str());
            } else {
                over.push(format!("{rel} ({lines} lines)"));
            }
        }
    }
    let fixed = allowed
        .iter()
        .copied()
        .filter(|a| !still_over.contains(a))
        .collect();
    (over, fixed)
}

fn read_all(root: &Path) -> Vec<(String, String)> {
    rust_files(root)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (relative(root, &p), text)
        })
        .collect()
}

/// A workspace package as `cargo metadata` sees it: its name, whether it builds a library, whether it builds a
/// binary, and its normal and build dependencies (not dev-dependencies).
#[derive(Debug)]
struct Package {
    name: String,
    lib: bool,
    bin: bool,
    deps: Vec<String>,
}

fn packages(metadata: &serde_json::Value) -> Vec<Package> {
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)))
        .map(|p| {
            let kinds: Vec<&str> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["kind"].as_array().into_iter().flatten())
                .filter_map(|k| k.as_str())
                .collect();
            Package {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                lib: kinds.iter().any(|k| k.ends_with("lib")),
                bin: kinds.contains(&"bin"),
                deps: p["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| d["kind"].is_null() || d["kind"] == "build")
                    .filter_map(|d| d["name"].as_str().map(str::to_string))
                    .collect(),
            }
        })
        .collect()
}

/// The dependency rules broken by `packages`: one line each.
fn dependency_violations(packages: &[Package]) -> Vec<String> {
    let mut bad = Vec::new();
    for p in packages.iter().filter(|p| p.lib) {
        for dep in &p.deps {
            let excepted = LIBRARY_EXCEPTIONS
                .iter()
                .any(|(k, d, _)| *k == p.name && d == dep);
            if dep == "anyhow" && !excepted {
                bad.push(format!(
                    "library crate {} depends on anyhow (libraries return thiserror types)",
                    p.name
                ));
            }
            if (dep == "archivectl" || dep == "opentok-emulator") && !excepted {
                bad.push(format!(
                    "library crate {} depends on {dep} (the binary and the test double sit on top)",
                    p.name
                ));
            }
        }
        // An exception holds only for a crate that also builds a binary.
        if LIBRARY_EXCEPTIONS.iter().any(|(k, _, _)| *k == p.name) && !p.bin {
            bad.push(format!(
                "{} is excepted for its binary but builds none: drop the exception",
                p.name
            ));
        }
    }
    bad
}

/// Runs the cargo that runs the tests with `args` in the workspace root; its stdout (it must succeed).
fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn every_source_file_opens_with_a_module_comment() {
    let files = read_all(&workspace_root());
    let missing = missing_module_docs(&files);
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` comment saying what they are:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn source_files_stay_within_the_size_budget() {
    let files = read_all(&workspace_root());
    let (over, fixed) = over_budget(&files, MAX_LINES, OVERSIZED);
    assert!(
        over.is_empty(),
        "non-test source files over {MAX_LINES} lines (split them; long test modules go to a tests.rs \
         beside the file or to tests/):\n  {}",
        over.join("\n  ")
    );
    assert!(
        fixed.is_empty(),
        "these files are within {MAX_LINES} lines now: remove them from OVERSIZED in xtask/src/tidy.rs:\n  {}",
        fixed.join("\n  ")
    );
}

#[test]
fn libraries_depend_on_neither_anyhow_nor_the_binary_nor_the_emulator() {
    let out = cargo(&["metadata", "--format-version", "1", "--no-deps", "--locked"]);
    let metadata: serde_json::Value = serde_json::from_slice(&out).expect("metadata JSON");
    let packages = packages(&metadata);
    for name in [
        "archive-core",
        "opentok-rest",
        "storage-fetch",
        "archive-db",
    ] {
        assert!(
            packages.iter().any(|p| p.name == name && p.lib),
            "no library {name} in cargo metadata: {packages:?}"
        );
    }
    let bad = dependency_violations(&packages);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_production_build_links_no_test_double_and_one_rustcrypto_generation() {
    let out = cargo(&[
        "tree",
        "-p",
        "archivectl",
        "--no-default-features",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--locked",
        "--offline",
    ]);
    let tree = tree_crates(&String::from_utf8_lossy(&out));
    assert!(
        tree.iter().any(|(n, _)| n == "archive-pull") && tree.iter().any(|(n, _)| n == "rsa"),
        "cargo tree listed too little: {tree:?}"
    );
    let bad = production_violations(&tree, SECOND_GENERATION);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

// The rules themselves, on made-up input (so a rule that stopped finding anything would be noticed).

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn a_file_without_a_module_comment_is_found() {
    let f = files(&[
        ("crates/a/src/lib.rs", "//! The a crate.\nfn x() {}\n"),
        ("crates/a/src/b.rs", "// not a module doc\n//! late\n"),
        (
            "crates/a/src/c.rs",
            "#![allow(x)]\n//! after an attribute\n",
        ),
        ("crates/a/src/d.rs", "\n//! after a blank line is fine\n"),
    ]);
    assert_eq!(
        missing_module_docs(&f),
        ["crates/a/src/b.rs", "crates/a/src/c.rs"]
    );
}

#[test]
fn the_budget_counts_non_test_files_and_the_exception_list_only_shrinks() {
    let long = "x\n".repeat(11);
    let f = files(&[
        ("crates/a/src/big.rs", &long),
        ("crates/a/src/listed.rs", &long),
        ("crates/a/src/was_listed.rs", "x\n"),
        ("crates/a/tests/long_test.rs", &long),
        ("crates/a/src/parser/tests.rs", &long),
        ("crates/a/src/ok.rs", &"x\n".repeat(10)),
    ]);
    let (over, fixed) = over_budget(
        &f,
        10,
        &["crates/a/src/listed.rs", "crates/a/src/was_listed.rs"],
    );
    assert_eq!(over, ["crates/a/src/big.rs (11 lines)"]);
    assert_eq!(fixed, ["crates/a/src/was_listed.rs"]);
}

#[test]
fn dependency_rules_catch_anyhow_and_upward_dependencies_in_libraries() {
    let pkg = |name: &str, lib: bool, bin: bool, deps: &[&str]| Package {
        name: name.into(),
        lib,
        bin,
        deps: deps.iter().map(|d| d.to_string()).collect(),
    };
    let ok = [
        pkg("archive-core", true, false, &["thiserror"]),
        pkg("archivectl", false, true, &["anyhow", "opentok-emulator"]),
        pkg("opentok-emulator", true, true, &["anyhow", "archive-core"]),
    ];
    assert!(dependency_violations(&ok).is_empty());
    let bad = [
        pkg("storage-fetch", true, false, &["anyhow"]),
        pkg(
            "archive-db",
            true,
            false,
            &["opentok-emulator", "archivectl"],
        ),
        pkg("opentok-emulator", true, false, &["anyhow"]),
    ];
    let found = dependency_violations(&bad);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("storage-fetch depends on anyhow"));
    assert!(found[1].contains("archive-db depends on opentok-emulator"));
    assert!(found[2].contains("archive-db depends on archivectl"));
    assert!(found[3].contains("builds none"));
}

#[test]
fn production_rules_catch_test_doubles_a_second_generation_and_stale_allowances() {
    let tree = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let allowed_pairs = [
        ("md-5", "0.10.6"),
        ("md-5", "0.11.0"),
        ("digest", "0.10.7"),
        ("digest", "0.11.3"),
        ("block-buffer", "0.10.4"),
        ("block-buffer", "0.12.1"),
        ("crypto-common", "0.1.7"),
        ("crypto-common", "0.2.2"),
        ("sha2", "0.11.0"),
        ("hmac", "0.12.1"),
        ("hmac", "0.13.0"),
        ("const-oid", "0.9.6"),
        ("const-oid", "0.10.3"),
    ];
    // An allowance list as the production build once needed (SECOND_GENERATION before issue 10).
    let second: &[(&str, &str, &str)] = &[
        ("md-5", "0.11", "object_store's"),
        ("digest", "0.11", "md-5 0.11's and hmac 0.13's"),
        ("sha2", "0.11", "postgres-protocol's"),
        ("hmac", "0.13", "postgres-protocol's"),
        ("const-oid", "0.10", "digest 0.11's"),
        ("block-buffer", "0.12", "digest 0.11's"),
        ("crypto-common", "0.2", "digest 0.11's"),
    ];
    let mut ok = tree(&[("sha2", "0.10.9"), ("rsa", "0.9.10")]);
    ok.extend(tree(&allowed_pairs));
    assert_eq!(production_violations(&ok, second), Vec::<String>::new());

    let mut bad = ok.clone();
    bad.extend(tree(&[("rsa", "0.10.0"), ("s3s", "0.12.0")]));
    let found = production_violations(&bad, second);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("links s3s 0.12.0"));
    assert!(found[1].contains("rsa 0.10.0 and 0.9.10"), "{found:#?}");

    // md-5 0.11 gone (object_store no longer needs it): its allowance must go too.
    let stale: Vec<(String, String)> = ok
        .into_iter()
        .filter(|(n, v)| !(n == "md-5" && v == "0.11.0"))
        .collect();
    let found = production_violations(&stale, second);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("md-5 0.11 is no longer"));

    // With no allowance, any second version is found.
    let two = tree(&[("sha2", "0.11.0"), ("sha2", "0.10.9"), ("rsa", "0.10.0")]);
    let found = production_violations(&two, &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("sha2 0.10.9 and 0.11.0"), "{found:#?}");
    assert_eq!(
        production_violations(&tree(&[("sha2", "0.11.0"), ("rsa", "0.10.0")]), &[]),
        Vec::<String>::new()
    );

    assert_eq!(
        tree_crates(
            "sha2 v0.10.9\nsha2 v0.10.9 (*)\narchive-core v0.1.0 (/w/crates/archive-core)\n"
        ),
        tree(&[("archive-core", "0.1.0"), ("sha2", "0.10.9")])
    );
}
