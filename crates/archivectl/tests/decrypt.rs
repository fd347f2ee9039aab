//! `archivectl decrypt` and `password decrypt` against the openssl CLI: every key form, both password
//! wrappers, padded and unpadded archives, compared byte for byte with the documented commands.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn decrypt_is_byte_identical_to_the_documented_openssl_commands() {
    let fx = Fixture::new();
    let out = run(&[
        "decrypt",
        "--key",
        &fx.path("key.pem"),
        "--password-file",
        &fx.path("password.b64"),
        "--in",
        &fx.path("archive.ts"),
        "--out",
        &fx.path("ours.ts"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fx.documented_decrypt("archive.ts", "documented.ts");
    let ours = std::fs::read(fx.path("ours.ts")).unwrap();
    assert_eq!(ours, std::fs::read(fx.path("documented.ts")).unwrap());
    // -nopad keeps the PKCS#7 padding: the output is longer than the clip, which it starts with.
    let clip = std::fs::read(clip()).unwrap();
    assert_eq!(ours.len(), clip.len() + 16 - clip.len() % 16);
    assert_eq!(&ours[..clip.len()], &clip[..]);

    let out = run(&[
        "decrypt",
        "--key",
        &fx.path("key.pem"),
        "--password",
        std::str::from_utf8(&std::fs::read(fx.path("password.b64")).unwrap()).unwrap(),
        "--in",
        &fx.path("archive.ts"),
        "--out",
        &fx.path("trimmed.ts"),
        "--trim",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(fx.path("trimmed.ts")).unwrap(),
        clip,
        "--trim restores the original bytes"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["summary"]["trimmed_bytes"],
        16 - clip.len() as u64 % 16
    );
    assert_eq!(
        json["summary"]["report"]["packets"],
        clip.len() as u64 / 188
    );
}

#[test]
fn unpadded_archives_and_rsautl_passwords_decrypt_too() {
    let fx = Fixture::new();
    // A whole number of both blocks and packets (752 = lcm(16, 188)), encrypted without padding.
    sh(
        fx.dir.path(),
        "head -c $(( $(stat -c %s clip.ts) / 752 * 752 )) clip.ts > plain.ts
         openssl enc -aes-256-cbc -nopad -K $(cat key.hex) -iv $(cat iv.hex) -in plain.ts -out nopad.ts
         openssl rsautl -encrypt -oaep -inkey key.pem -in password.bin -out rsautl.enc 2>/dev/null
         openssl enc -base64 -A -in rsautl.enc > rsautl.b64",
    );
    for trim in [false, true] {
        let (key, pw, input, output) = (
            fx.path("key.pem"),
            fx.path("rsautl.b64"),
            fx.path("nopad.ts"),
            fx.path("out.ts"),
        );
        let mut args = vec![
            "decrypt",
            "--key",
            &key,
            "--password-file",
            &pw,
            "--in",
            &input,
            "--out",
            &output,
        ];
        if trim {
            args.push("--trim");
        }
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(fx.path("out.ts")).unwrap(),
            std::fs::read(fx.path("plain.ts")).unwrap(),
            "trim={trim}"
        );
    }
}

/// `packets` MPEG-TS packets (PID 0x100, continuity counter counting, pseudo-random payload from `seed`).
fn synthetic_ts(packets: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(packets * 188);
    for i in 0..packets {
        out.extend_from_slice(&[0x47, 0x01, 0x00, 0x10 | (i % 16) as u8]);
        for _ in 0..23 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
    }
    out
}

#[test]
fn archives_of_several_mib_decrypt_in_parallel_chunks_identically_to_openssl() {
    // The regular-file path splits the archive into 256 KiB chunks decrypted on every core; these sizes cross
    // many chunk boundaries, end mid-chunk, and have each kind of PKCS#7 tail (4, 12 and a whole 16 bytes).
    let fx = Fixture::new();
    for (packets, seed) in [(16_733, 1), (28_001, 2), (40_000, 3), (11_155, 4)] {
        let plain = synthetic_ts(packets, seed);
        let pad = 16 - plain.len() % 16;
        std::fs::write(fx.path("big.ts"), &plain).unwrap();
        sh(
            fx.dir.path(),
            "openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out big.enc",
        );
        fx.documented_decrypt("big.enc", "big.documented.ts");
        let documented = std::fs::read(fx.path("big.documented.ts")).unwrap();
        assert_eq!(documented.len(), plain.len() + pad, "openssl's own output");
        for trim in [false, true] {
            let (key, pw, input, output) = (
                fx.path("key.pem"),
                fx.path("password.b64"),
                fx.path("big.enc"),
                fx.path("big.out.ts"),
            );
            let mut args = vec![
                "decrypt",
                "--key",
                &key,
                "--password-file",
                &pw,
                "--in",
                &input,
                "--out",
                &output,
            ];
            if trim {
                args.push("--trim");
            }
            let out = run(&args);
            assert!(
                out.status.success(),
                "{packets} packets, trim={trim}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ours = std::fs::read(fx.path("big.out.ts")).unwrap();
            let expected: &[u8] = if trim { &plain } else { &documented };
            assert_eq!(ours.len(), expected.len(), "{packets} packets, trim={trim}");
            // Compared chunk by chunk, so a failure names the first chunk that differs.
            for (i, (a, b)) in ours
                .chunks(256 << 10)
                .zip(expected.chunks(256 << 10))
                .enumerate()
            {
                assert!(a == b, "{packets} packets, trim={trim}: chunk {i} differs");
            }
        }
    }
}

#[test]
fn every_private_key_form_openssl_writes_unwraps_the_password() {
    let fx = Fixture::new();
    std::fs::write(fx.path("pass.txt"), "s3cret pass\nsecond line is ignored\n").unwrap();
    sh(
        fx.dir.path(),
        "P='pass:s3cret pass'
         openssl rsa -in key.pem -traditional -out pkcs1.pem 2>/dev/null
         openssl rsa -in key.pem -traditional -outform DER -out pkcs1.der 2>/dev/null
         openssl pkcs8 -topk8 -nocrypt -in key.pem -outform DER -out pkcs8.der
         openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout \"$P\" -in key.pem -out p8-aes256-sha256.pem
         openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -passout \"$P\" -in key.pem -out p8-aes128-sha1.pem
         openssl pkcs8 -topk8 -v2 des3 -passout \"$P\" -in key.pem -out p8-des3-sha256.pem
         openssl pkcs8 -topk8 -v2 des3 -v2prf hmacWithSHA1 -passout \"$P\" -in key.pem -out p8-des3-sha1.pem
         openssl pkcs8 -topk8 -v2 aes-256-cbc -passout \"$P\" -in key.pem -outform DER -out p8-aes256.der
         openssl rsa -in key.pem -traditional -aes256 -passout \"$P\" -out trad-aes256.pem 2>/dev/null
         openssl rsa -in key.pem -traditional -aes128 -passout \"$P\" -out trad-aes128.pem 2>/dev/null
         openssl rsa -in key.pem -traditional -des3 -passout \"$P\" -out trad-des3.pem 2>/dev/null",
    );
    let expected_key = String::from_utf8(std::fs::read(fx.path("key.hex")).unwrap()).unwrap();
    let expected_iv = String::from_utf8(std::fs::read(fx.path("iv.hex")).unwrap()).unwrap();
    let plain = ["key.pem", "pkcs1.pem", "pkcs1.der", "pkcs8.der"];
    let encrypted = [
        "p8-aes256-sha256.pem",
        "p8-aes128-sha1.pem",
        "p8-des3-sha256.pem",
        "p8-des3-sha1.pem",
        "p8-aes256.der",
        "trad-aes256.pem",
        "trad-aes128.pem",
        "trad-des3.pem",
    ];
    for (name, needs_pass) in plain
        .iter()
        .map(|n| (n, false))
        .chain(encrypted.iter().map(|n| (n, true)))
    {
        let key = fx.path(name);
        let pw = fx.path("password.b64");
        let pass = fx.path("pass.txt");
        let mut args = vec![
            "password",
            "decrypt",
            "--key",
            &key,
            "--password-file",
            &pw,
            "--json",
        ];
        if needs_pass {
            args.extend(["--passphrase-file", &pass]);
        }
        let out = run(&args);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["version"], 1, "{name}");
        assert_eq!(json["algorithm"], 1);
        assert_eq!(json["mode"], 1);
        assert_eq!(json["key"].as_str().unwrap(), expected_key.trim(), "{name}");
        assert_eq!(json["iv"].as_str().unwrap(), expected_iv.trim(), "{name}");
        if needs_pass {
            let out = run(&["password", "decrypt", "--key", &key, "--password-file", &pw]);
            assert_fails(&out, 4, "passphrase");
        }
    }
}

#[test]
fn password_decrypt_prints_what_the_xxd_steps_show() {
    let fx = Fixture::new();
    let out = run(&[
        "password",
        "decrypt",
        "--key",
        &fx.path("key.pem"),
        "--password-file",
        &fx.path("password.b64"),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let key_hex = String::from_utf8(std::fs::read(fx.path("key.hex")).unwrap()).unwrap();
    assert!(text.contains("version:   1"));
    assert!(text.contains("algorithm: 1 (AES-256)"));
    assert!(text.contains("mode:      1 (CBC)"));
    assert!(text.contains(key_hex.trim()));
}

#[test]
fn openssl_req_keys_with_their_certificate() {
    let dir = tempfile::tempdir().unwrap();
    sh(
        dir.path(),
        "openssl req -new -x509 -days 365 -newkey rsa:2048 -out cert.pem -keyout key.pem -passout pass:pw -subj /CN=req 2>/dev/null
         printf 'pw' > pass.txt
         openssl enc -base64 -in cert.pem -out cert.pem.encoded -A",
    );
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    for cert in ["cert.pem", "cert.pem.encoded"] {
        let out = run(&[
            "cert",
            "inspect",
            &p(cert),
            "--key",
            &p("key.pem"),
            "--passphrase-file",
            &p("pass.txt"),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["matches_key"], true);
        assert_eq!(json["key_bits"], 2048);
        assert_eq!(json["service_accepts"], true);
        assert_eq!(
            json["json_base64"].as_str().unwrap(),
            std::fs::read_to_string(p("cert.pem.encoded")).unwrap()
        );
    }
}

#[test]
fn an_encrypted_key_prompts_for_its_passphrase_on_a_terminal() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:typed-secret -in key.pem -out enc.pem",
    );
    // `script` gives archivectl a pseudo-terminal; the passphrase is typed on it once the prompt is shown and
    // the terminal's echo is off (no sleep deciding when that is).
    let cmd = format!(
        "{} password decrypt --key enc.pem --password-file password.b64 --json",
        env!("CARGO_BIN_EXE_archivectl")
    );
    let (ok, text) = type_at_prompt(
        fx.dir.path(),
        &cmd,
        "Passphrase for enc.pem",
        "typed-secret\n",
    );
    assert!(ok, "{text}");
    assert!(text.contains("Passphrase for enc.pem"), "{text}");
    let key_hex = std::fs::read_to_string(fx.path("key.hex")).unwrap();
    assert!(text.contains(key_hex.trim()), "{text}");
    assert!(
        !text.contains("typed-secret"),
        "the passphrase is not echoed: {text}"
    );
}

#[test]
fn key_rotation_tries_every_configured_key_even_past_one_that_cannot_be_loaded() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out old.pem 2>/dev/null
         openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:right -in old.pem -out locked.pem
         printf 'wrong\\n' > wrong.txt
         printf 'unused\\n' > unused.txt
         xxd -p -s 3 -l 32 -c 32 password.bin > expected-key.hex",
    );
    let config = |keys: &str, passphrases: &str| {
        std::fs::write(
            fx.path("archivectl.toml"),
            format!("[keys]\nprivate_key = [{keys}]\npassphrase_file = [{passphrases}]\n"),
        )
        .unwrap();
        archivectl()
            .current_dir(fx.dir.path())
            .args([
                "--config",
                "archivectl.toml",
                "password",
                "decrypt",
                "--json",
            ])
            .args(["--password-file", "password.b64"])
            .output()
            .unwrap()
    };
    // A key whose passphrase file is wrong, another archive's key, then the right one: found, with a warning.
    let out = config(
        r#""locked.pem", "old.pem", "key.pem""#,
        r#""wrong.txt", "unused.txt", "unused.txt""#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = std::fs::read_to_string(fx.path("expected-key.hex")).unwrap();
    assert_eq!(json["key"].as_str().unwrap(), expected.trim());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: skipping private key locked.pem")
            && stderr.contains("wrong passphrase"),
        "{stderr}"
    );
    // None fits, one could not be loaded: that is what the error says (exit 4, the wrong passphrase).
    let out = config(r#""old.pem", "locked.pem""#, r#""unused.txt", "wrong.txt""#);
    assert_fails(
        &out,
        4,
        "none of the 1 key(s) that could be loaded, and 1 of the 2 configured could not be loaded",
    );
    // None fits and all loaded.
    let out = config(r#""old.pem""#, r#""unused.txt""#);
    assert_fails(&out, 4, "wrapped for another key");
}

/// Runs `cmd` on a pseudo-terminal (`script`), waits for `prompt` on it and for the terminal's echo to be off
/// (read with `stty`, as the program's own terminal), then types `input`. Returns whether it succeeded and
/// what the terminal showed. Every wait is for an event, bounded by a minute.
fn type_at_prompt(dir: &std::path::Path, cmd: &str, prompt: &str, input: &str) -> (bool, String) {
    use std::io::{Read as _, Write as _};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let bound = Duration::from_secs(60);
    let mut script = Command::new("script")
        .args(["-qfec", cmd, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) gives the command a terminal");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut stdout = script.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let started = Instant::now();
    while !String::from_utf8_lossy(&shown).contains(prompt) {
        let left = bound.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok(bytes) => shown.extend_from_slice(&bytes),
            Err(_) => {
                let _ = script.kill();
                panic!(
                    "no prompt {prompt:?} within {bound:?}: {}",
                    String::from_utf8_lossy(&shown)
                );
            }
        }
    }
    // The program's terminal: its standard input, a child of `script`.
    let tty = loop {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", script.id()))
            .unwrap_or_default();
        let tty = children
            .split_whitespace()
            .find_map(|pid| std::fs::read_link(format!("/proc/{pid}/fd/0")).ok());
        if let Some(tty) = tty {
            break tty;
        }
        assert!(
            started.elapsed() < bound,
            "the command under script has no terminal"
        );
        std::thread::yield_now();
    };
    loop {
        let settings = Command::new("stty")
            .arg("-F")
            .arg(&tty)
            .output()
            .expect("stty (coreutils) reads the terminal's settings");
        let settings = String::from_utf8_lossy(&settings.stdout);
        if settings.split_whitespace().any(|w| w == "-echo") {
            break;
        }
        assert!(
            started.elapsed() < bound,
            "the terminal's echo is still on at the prompt: {settings}"
        );
    }
    let mut stdin = script.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let status = script.wait().unwrap();
    reader.join().unwrap();
    shown.extend(rx.try_iter().flatten());
    (
        status.success(),
        String::from_utf8_lossy(&shown).into_owned(),
    )
}
