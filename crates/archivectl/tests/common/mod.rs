//! Shared helpers for the black-box tests: run archivectl, run openssl and the documented shell steps.
#![allow(dead_code, clippy::unwrap_used)]

pub mod demo;
pub mod emulator;
pub mod fake_service;
pub mod gate;
pub mod ledgers;
pub mod storage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The archivectl binary built for these tests.
pub fn archivectl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_archivectl"));
    cmd.stdin(Stdio::null());
    // Never the user's own ledger: one per test process unless a test names its own.
    cmd.env(
        "ARCHIVECTL_LEDGER",
        std::env::temp_dir().join(format!("archivectl-tests-{}.sqlite3", std::process::id())),
    );
    cmd
}

/// Runs archivectl with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    archivectl().args(args).output().unwrap()
}

/// Runs a command and panics with its stderr if it fails.
pub fn sh(dir: &Path, script: &str) -> Vec<u8> {
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "script failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts a failure with this exit code whose one stderr line contains `needle`, and no panic or backtrace.
pub fn assert_fails(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} should mention {needle:?}"
    );
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "one clear last line: {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

/// The files in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The committed real MPEG-TS clip.
pub fn clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/clip.ts")
}

/// A scratch directory with an openssl key (`key.pem`, PKCS#8 as OpenSSL 3 writes it), an archive encrypted
/// from the clip with `openssl enc` (PKCS#7, as the service does), and its password wrapped by `pkeyutl`
/// (`password.b64`), plus `password.bin` and `key.hex`/`iv.hex`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(clip(), dir.path().join("clip.ts")).unwrap();
        sh(
            dir.path(),
            "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem 2>/dev/null
             { printf '\\001\\001\\001'; openssl rand 48; } > password.bin
             openssl pkeyutl -encrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in password.bin -out password.enc
             openssl enc -base64 -A -in password.enc > password.b64
             xxd -s 3 -l 32 -c 32 -p password.bin > key.hex
             xxd -s 35 -l 16 -c 16 -p password.bin > iv.hex
             openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in clip.ts -out archive.ts",
        );
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs the service's documented decryption, verbatim, into `out`.
    pub fn documented_decrypt(&self, archive: &str, out: &str) {
        let script = format!(
            "openssl enc -base64 -d -A <<< \"$(cat password.b64)\" -out password.doc.enc
             openssl rsautl -decrypt -oaep -inkey key.pem -in password.doc.enc -out password.doc.bin 2>/dev/null
             openssl enc -d -aes-256-cbc -nopad -in {archive} \\
               -out {out} \\
               -K $(xxd -s 3 -l 32 -c 32 -p password.doc.bin) \\
               -iv $(xxd -s 35 -l 16 -c 16 -p password.doc.bin)
             rm password.doc.enc password.doc.bin"
        );
        sh(self.dir.path(), &script);
    }
}

/// Every command path (`[]`, `["storage"]`, `["storage", "set", "s3"]`, ...), read from the `Commands:` lists
/// of the `--help` pages, clap's own `help` left out.
pub fn command_paths() -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(path) = stack.pop() {
        let help = archivectl().args(&path).arg("--help").output().unwrap();
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
        found.push(path);
    }
    found.sort();
    found
}
