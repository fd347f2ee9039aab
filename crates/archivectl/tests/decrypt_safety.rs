//! `archivectl decrypt`'s promises about its output: created 0600 whatever the umask; an existing `--out` is
//! replaced only by a complete, checked decryption (a failure leaves its bytes as they were); SIGTERM, SIGHUP
//! and SIGINT never leave a partial plaintext behind, even while the decryption is blocked reading a pipe.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `archivectl decrypt` of `input` into `out.ts` with the fixture's key, under `umask 000`.
fn decrypt_cmd(fx: &Fixture, password_file: &str, input: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_archivectl"))
        .args(["decrypt", "--key", &fx.path("key.pem")])
        .args(["--password-file", &fx.path(password_file)])
        .args(["--in", &fx.path(input), "--out", &fx.path("out.ts")])
        .env("ARCHIVECTL_LEDGER", fx.path("ledger.sqlite3"))
        .stdin(Stdio::null());
    cmd
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_output_is_0600_whatever_the_umask_and_an_existing_out_changes_only_on_success() {
    let fx = Fixture::new();
    fx.documented_decrypt("archive.ts", "documented.ts");
    sh(
        fx.dir.path(),
        "{ printf '\\001\\001\\001'; openssl rand 48; } > other.bin
         openssl pkeyutl -encrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in other.bin | openssl enc -base64 -A > other.b64",
    );
    let before = b"an earlier output that must survive a failed decryption".to_vec();
    std::fs::write(fx.path("out.ts"), &before).unwrap();
    std::fs::set_permissions(fx.path("out.ts"), std::fs::Permissions::from_mode(0o644)).unwrap();

    // Another archive's password: refused, and out.ts is byte for byte what it was.
    let out = decrypt_cmd(&fx, "other.b64", "archive.ts")
        .output()
        .unwrap();
    assert_fails(&out, 4, "not MPEG-TS");
    assert_eq!(std::fs::read(fx.path("out.ts")).unwrap(), before);
    // A truncated archive (not whole blocks): the same.
    let ct = std::fs::read(fx.path("archive.ts")).unwrap();
    std::fs::write(fx.path("cut.ts"), &ct[..ct.len() - 5]).unwrap();
    let out = decrypt_cmd(&fx, "password.b64", "cut.ts").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(fx.path("out.ts")).unwrap(), before);
    let mut names = files(fx.dir.path());
    names.retain(|n| n.starts_with(".out.ts"));
    assert!(names.is_empty(), "no temporary file left: {names:?}");

    // The right password: replaced whole, and 0600 under umask 000.
    let out = decrypt_cmd(&fx, "password.b64", "archive.ts")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(fx.path("out.ts")).unwrap(),
        std::fs::read(fx.path("documented.ts")).unwrap()
    );
    assert_eq!(mode(&fx.path("out.ts")), 0o600);
}

#[test]
fn sigterm_sighup_and_sigint_while_reading_a_pipe_leave_no_partial_plaintext() {
    let fx = Fixture::new();
    let ct = std::fs::read(fx.path("archive.ts")).unwrap();
    assert!(
        ct.len() > 64 << 10,
        "the clip is larger than one pipe buffer"
    );
    for sig in ["TERM", "HUP", "INT"] {
        let fifo = fx.path("in.fifo");
        let _ = std::fs::remove_file(&fifo);
        sh(fx.dir.path(), "mkfifo in.fifo");
        let child = decrypt_cmd(&fx, "password.b64", "in.fifo")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Opening the pipe waits for decrypt to open it; then some ciphertext, and no end: decrypt blocks.
        let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        pipe.write_all(&ct[..32 << 10]).unwrap();
        // The event: decrypt has its temporary output open beside out.ts.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !files(fx.dir.path())
            .iter()
            .any(|n| n.starts_with(".out.ts.") && n.ends_with(".partial"))
        {
            assert!(
                Instant::now() < deadline,
                "decrypt never started its output"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        drop(pipe);
        assert_fails(&out, 130, "interrupted");
        let left: Vec<String> = files(fx.dir.path())
            .into_iter()
            .filter(|n| n.starts_with(".out.ts") || n == "out.ts")
            .collect();
        assert!(left.is_empty(), "SIG{sig} left {left:?}");
    }
}

#[test]
fn several_mib_archives_of_odd_sizes_decrypt_on_every_core_as_openssl_does() {
    let fx = Fixture::new();
    // Several 256 KiB chunks per core, and sizes that end mid-chunk: whole clips, and an odd packet count.
    for (name, make) in [
        (
            "forty",
            "for i in $(seq 40); do cat clip.ts; done > plain.ts",
        ),
        (
            "odd",
            "for i in $(seq 60); do cat clip.ts; done > all.ts; head -c $((188 * 27777)) all.ts > plain.ts",
        ),
    ] {
        sh(
            fx.dir.path(),
            &format!(
                "{make}
                 openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in plain.ts -out {name}.enc"
            ),
        );
        let size = std::fs::metadata(fx.path(&format!("{name}.enc")))
            .unwrap()
            .len();
        let past_last_chunk = size % (256 << 10);
        assert!(size > 4 << 20 && past_last_chunk > 0, "{name}: {size}");
        fx.documented_decrypt(&format!("{name}.enc"), "documented.ts");
        for (trim, expected) in [(false, "documented.ts"), (true, "plain.ts")] {
            let mut cmd = decrypt_cmd(&fx, "password.b64", &format!("{name}.enc"));
            if trim {
                cmd.arg("--trim");
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                std::fs::read(fx.path("out.ts")).unwrap()
                    == std::fs::read(fx.path(expected)).unwrap(),
                "{name} trim {trim}: not {expected}"
            );
        }
    }
}
