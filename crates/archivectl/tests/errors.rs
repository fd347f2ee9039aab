//! Every bad input gets one clear line, its documented exit code, and leaves nothing behind.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// Runs a decrypt into `out.ts` and checks that it fails as expected with no output or temporary file.
fn decrypt_fails(fx: &Fixture, args: &[&str], code: i32, needle: &str) {
    let before = files(fx.dir.path());
    let out_path = fx.path("out.ts");
    let mut all = vec!["decrypt", "--out", &out_path];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_fails(&out, code, needle);
    assert_eq!(
        files(fx.dir.path()),
        before,
        "nothing may be written for {args:?}"
    );
}

#[test]
fn wrong_and_missing_secrets() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:right -in key.pem -out enc.pem
         printf 'wrong\\n' > wrong.txt
         openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
         openssl genpkey -algorithm ED25519 -out ed.pem
         openssl req -new -x509 -key other.pem -subj /CN=x -out cert.pem -days 1
         echo 'not a key at all' > garbage.pem
         : > empty.pem
         openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -passout pass:right -in key.pem -out pbes1.pem",
    );
    let (archive, pw) = (fx.path("archive.ts"), fx.path("password.b64"));
    let base = |key: &str| {
        vec![
            "--in".to_string(),
            archive.clone(),
            "--password-file".into(),
            pw.clone(),
            "--key".into(),
            fx.path(key),
        ]
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            [
                base("enc.pem"),
                vec!["--passphrase-file".into(), fx.path("wrong.txt")],
            ]
            .concat(),
            4,
            "wrong passphrase",
        ),
        (base("enc.pem"), 4, "passphrase is needed"),
        (base("other.pem"), 4, "wrapped for another key"),
        (base("ec.pem"), 3, "not an RSA key (an EC key)"),
        (base("ed.pem"), 3, "not an RSA key (an Ed25519 key)"),
        (base("cert.pem"), 3, "a certificate, not a private key"),
        (base("garbage.pem"), 3, "not a readable private key"),
        (base("empty.pem"), 3, "empty"),
        (
            [
                base("pbes1.pem"),
                vec!["--passphrase-file".into(), fx.path("wrong.txt")],
            ]
            .concat(),
            3,
            "unsupported",
        ),
        (base("missing.pem"), 5, "cannot read private key"),
    ];
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        decrypt_fails(&fx, &args, code, needle);
    }
}

#[test]
fn bad_passwords() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "{ printf '\\002\\001\\001'; openssl rand 48; } > v2.bin
         { printf '\\001\\002\\001'; openssl rand 48; } > alg2.bin
         { printf '\\001\\001\\002'; openssl rand 48; } > mode2.bin
         { printf '\\001\\001\\001'; openssl rand 40; } > short.bin
         { printf '\\001\\001\\001'; openssl rand 48; } > other.bin
         for f in v2 alg2 mode2 short other; do
           openssl pkeyutl -encrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in $f.bin | openssl enc -base64 -A > $f.b64
         done
         echo '{\"id\":\"x\",\"password\":\"\"}' > unencrypted.json",
    );
    let (key, archive) = (fx.path("key.pem"), fx.path("archive.ts"));
    let cases: Vec<(&str, &str, i32, &str)> = vec![
        ("--password-file", "v2.b64", 3, "byte 0 (version) is 2"),
        ("--password-file", "alg2.b64", 3, "byte 1 (algorithm) is 2"),
        ("--password-file", "mode2.b64", 3, "byte 2 (mode) is 2"),
        (
            "--password-file",
            "short.b64",
            3,
            "43 bytes long, expected 51",
        ),
        ("--password-file", "other.b64", 4, "not MPEG-TS"),
        ("--password-file", "unencrypted.json", 3, "not encrypted"),
        ("--password", "abc$def", 3, "not valid base64"),
        ("--password", "QUFBQQ==", 4, "wrapped for another key"),
        ("--password", "", 3, "empty"),
    ];
    for (flag, value, code, needle) in cases {
        let value = if flag == "--password-file" {
            fx.path(value)
        } else {
            value.to_string()
        };
        decrypt_fails(
            &fx,
            &["--key", &key, "--in", &archive, flag, &value],
            code,
            needle,
        );
    }
}

#[test]
fn bad_archives() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "head -c 1000 archive.ts > odd.ts
         head -c $(( $(stat -c %s clip.ts) / 752 * 752 )) clip.ts > plain.ts
         : > empty.ts
         mkdir adir
         head -c 100000 archive.ts > truncated.ts",
    );
    let (key, pw) = (fx.path("key.pem"), fx.path("password.b64"));
    let cases: Vec<(String, i32, &str)> = vec![
        (fx.path("odd.ts"), 3, "1000 is not a multiple of 16"),
        (fx.path("empty.ts"), 3, "empty"),
        (fx.path("missing.ts"), 5, "missing.ts"),
        (fx.path("adir"), 5, "is a directory"),
        // Not encrypted at all: decrypting the plain clip produces noise.
        (fx.path("plain.ts"), 4, "not MPEG-TS"),
    ];
    for (input, code, needle) in cases {
        decrypt_fails(
            &fx,
            &["--key", &key, "--password-file", &pw, "--in", &input],
            code,
            needle,
        );
    }
    // Cut short at a block boundary: --trim cannot find the service's padding and says so, writing nothing;
    // without --trim the bytes are what openssl -nopad gives.
    let truncated = fx.path("truncated.ts");
    decrypt_fails(
        &fx,
        &[
            "--key",
            &key,
            "--password-file",
            &pw,
            "--in",
            &truncated,
            "--trim",
        ],
        3,
        "truncated or damaged",
    );
    let out = run(&[
        "decrypt",
        "--key",
        &key,
        "--password-file",
        &pw,
        "--in",
        &truncated,
        "--out",
        &fx.path("t.ts"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The output directory does not exist.
    let out = run(&[
        "decrypt",
        "--key",
        &key,
        "--password-file",
        &pw,
        "--in",
        &fx.path("archive.ts"),
        "--out",
        &fx.path("no/such/dir/out.ts"),
    ]);
    assert_fails(&out, 5, "no/such/dir");
    // The output is the input.
    let archive = fx.path("archive.ts");
    let out = run(&[
        "decrypt",
        "--key",
        &key,
        "--password-file",
        &pw,
        "--in",
        &archive,
        "--out",
        &archive,
    ]);
    assert_fails(&out, 3, "is the input file");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["decrypt", "--key", "k.pem", "--in", "a", "--out", "b"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "decrypt",
        "--key",
        "k",
        "--password",
        "x",
        "--password-file",
        "y",
        "--in",
        "a",
        "--out",
        "b",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ctrl_c_during_decrypt_leaves_nothing() {
    let fx = Fixture::new();
    // About 100 MB, decrypted in 4 KiB chunks on one thread: long enough to be interrupted mid-way.
    sh(
        fx.dir.path(),
        "for i in $(seq 800); do cat clip.ts; done > big.ts
         openssl enc -aes-256-cbc -K $(cat key.hex) -iv $(cat iv.hex) -in big.ts -out big.enc
         rm big.ts
         mkdir out",
    );
    let out_dir = fx.dir.path().join("out");
    let mut child = archivectl()
        .args(["decrypt", "--key", &fx.path("key.pem"), "--password-file"])
        .arg(fx.path("password.b64"))
        .args(["--in", &fx.path("big.enc"), "--out"])
        .arg(out_dir.join("big.ts"))
        .args(["--buffer-kib", "4", "--threads", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let started = std::fs::read_dir(&out_dir)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.metadata().map(|m| m.len() > (4 << 20)).unwrap_or(false));
        if started {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "decrypt ended before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "decrypt made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_fails(&out, 130, "interrupted");
    assert!(
        files(&out_dir).is_empty(),
        "left behind: {:?}",
        files(&out_dir)
    );
}

#[test]
fn messages_name_the_real_problem() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:right -in key.pem -out enc.pem
         : > empty.txt
         mkdir confdir",
    );
    let (archive, pw) = (fx.path("archive.ts"), fx.path("password.b64"));
    // An empty passphrase file is about the passphrase file, not the key.
    let empty = fx.path("empty.txt");
    decrypt_fails(
        &fx,
        &[
            "--key",
            &fx.path("enc.pem"),
            "--passphrase-file",
            &empty,
            "--password-file",
            &pw,
            "--in",
            &archive,
        ],
        3,
        "first line is empty",
    );
    // An output "directory" that is a file.
    let out = run(&[
        "decrypt",
        "--key",
        &fx.path("key.pem"),
        "--password-file",
        &pw,
        "--in",
        &archive,
        "--out",
        &fx.path("key.pem/x.ts"),
    ]);
    assert_fails(&out, 5, "key.pem is a file, not a directory");
    // A configuration file that is a directory, or missing: I/O (exit 5).
    let out = run(&["--config", &fx.path("confdir"), "ledger", "list"]);
    assert_fails(&out, 5, "confdir is a directory");
    let out = run(&["--config", &fx.path("nope.toml"), "ledger", "list"]);
    assert_fails(&out, 5, "nope.toml does not exist");
}

/// The exit codes the user guide documents, from its "Exit codes" table.
fn documented_exit_codes() -> Vec<i32> {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/user-guide.md"),
    )
    .unwrap();
    let table = guide.split("## Exit codes").nth(1).unwrap();
    let table = table.split("\n## ").next().unwrap();
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// Every code in the guide's table comes from a real invocation, with the one-line message the table
/// promises; a code the table lists and nothing here produces fails the test (1 is a bug: none known).
#[test]
fn the_guides_exit_code_table_is_what_archivectl_does() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem 2>/dev/null
         openssl req -new -x509 -key key.pem -subj /CN=x -out cert.pem -days 1
         echo 'not a ledger' > notledger.sqlite3
         echo secret > secret.txt",
    );
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = format!("http://127.0.0.1:{closed_port}");
    let (service, _) = common::fake_service::serve(vec![(500, r#"{"message":"boom"}"#)]);
    let service = format!("http://{service}");
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |args: &[&str], code: i32, needle: &str| {
        let out = archivectl()
            .env("OPENTOK_API_SECRET", "s")
            .env_remove("ARCHIVECTL_CONFIG")
            .current_dir(fx.dir.path())
            .args(args)
            .output()
            .unwrap();
        if code == 0 {
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert_fails(&out, code, needle);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.lines().count(), 1, "one line for {args:?}: {stderr}");
        }
        seen.insert(code);
    };
    let clip = clip();
    let clip = clip.to_str().unwrap();
    check(&["inspect", clip], 0, "");
    // Usage: clap's own errors and settings that are missing, all one line.
    check(&["no-such-command"], 2, "(see --help)");
    check(&["decrypt", "--nope"], 2, "unexpected argument '--nope'");
    check(
        &[
            "decrypt",
            "--in",
            "archive.ts",
            "--out",
            "o.ts",
            "--password-file",
            "password.b64",
            "--private-key",
            "key.pem",
        ],
        2,
        "did you mean --key?",
    );
    check(
        &["decrypt", "--in", "a"],
        2,
        "required arguments were not provided",
    );
    check(&["storage", "check"], 2, "no storage target");
    check(
        &[
            "decrypt",
            "--in",
            "archive.ts",
            "--out",
            "o.ts",
            "--password-file",
            "password.b64",
        ],
        2,
        "give --key PATH",
    );
    check(
        &["ledger", "list", "--status", "bogus"],
        2,
        "unknown status",
    );
    check(&["inspect", "archive.ts"], 3, "is not MPEG-TS");
    check(
        &["cert", "inspect", "cert.pem", "--key", "other.pem"],
        4,
        "does not belong to certificate",
    );
    check(&["cert", "inspect", "cert.pem", "--key", "key.pem"], 0, "");
    check(&["inspect", "missing.ts"], 5, "missing.ts");
    check(
        &["archives", "list", "--api-key", "1", "--api-url", &service],
        6,
        "the service failed",
    );
    check(
        &[
            "storage",
            "check",
            "--bucket",
            "b",
            "--endpoint",
            &closed,
            "--access-key-id",
            "A",
            "--secret-access-key-file",
            "secret.txt",
        ],
        7,
        "connection refused",
    );
    check(
        &["ledger", "list", "--ledger", "notledger.sqlite3"],
        8,
        "notledger.sqlite3",
    );
    check(
        &["archives", "list", "--api-key", "1", "--api-url", &closed],
        9,
        &format!("could not reach the service at {closed}/ (port"),
    );
    // Stopped by a signal: the demo, which removes its files on the way out.
    #[cfg(feature = "demo")]
    {
        common::demo::assert_signal_cleans_up("-INT", 130);
        seen.insert(130);
        common::demo::assert_signal_cleans_up("-TERM", 143);
        seen.insert(143);
    }

    let documented: std::collections::BTreeSet<i32> = documented_exit_codes()
        .into_iter()
        // 1 is a bug (none known); the signal codes come from the demo, in the default build only.
        .filter(|&c| c != 1 && (cfg!(feature = "demo") || c < 128))
        .collect();
    assert_eq!(
        seen, documented,
        "the guide's table and what archivectl does"
    );
}

#[test]
fn each_message_says_what_is_wrong_once() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "echo data > afile
         echo 'not a ledger' > notledger.sqlite3
         openssl req -new -x509 -key key.pem -subj /CN=x -out cert.pem -days 1
         echo secret > secret.txt",
    );
    // A path through a file.
    let out = run(&[
        "keygen",
        "--cert",
        &fx.path("afile/cert.pem"),
        "--key",
        &fx.path("k.pem"),
    ]);
    assert_fails(&out, 3, "afile is a file, not a directory");
    // The ledger named once, and the service left alone.
    let (addr, fake) = common::fake_service::serve(vec![]);
    let out = archivectl()
        .env("OPENTOK_API_SECRET", "s")
        .args([
            "storage",
            "set",
            "s3",
            "--api-key",
            "1",
            "--api-url",
            &format!("http://{addr}"),
            "--bucket",
            "b",
            "--access-key-id",
            "A",
            "--secret-access-key-file",
            &fx.path("secret.txt"),
            "--certificate",
            &fx.path("cert.pem"),
            "--ledger",
            &fx.path("notledger.sqlite3"),
        ])
        .output()
        .unwrap();
    assert_fails(&out, 8, "nothing was sent to the service");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("notledger.sqlite3").count(), 1, "{stderr}");
    assert!(fake.requests.lock().unwrap().is_empty());
}
