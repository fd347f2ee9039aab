//! `archivectl keygen` and `cert inspect`: what we write, openssl reads, and the other way round.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn keygen_writes_what_openssl_reads_and_our_wrap_decrypts_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    std::fs::write(p("pass.txt"), "keygen pass\n").unwrap();
    let out = run(&[
        "keygen",
        "--cert",
        &p("cert.pem"),
        "--key",
        &p("key.pem"),
        "--days",
        "30",
        "--subject",
        "CN=archives,O=Example",
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
    assert_eq!(json["certificate"]["key_bits"], 2048);
    assert_eq!(json["key_encrypted"], true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(p("key.pem"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let text = String::from_utf8(sh(
        dir.path(),
        "openssl rsa -check -noout -in key.pem -passin file:pass.txt
         openssl asn1parse -in key.pem | grep -E 'PBES2|PBKDF2|hmacWithSHA256|aes-256-cbc' | wc -l
         openssl x509 -in cert.pem -noout -subject -dates -text | grep -E 'subject=|Public-Key'
         openssl x509 -in cert.pem -noout -modulus | openssl md5
         openssl rsa -in key.pem -passin file:pass.txt -noout -modulus 2>/dev/null | openssl md5",
    ))
    .unwrap();
    assert!(text.contains("RSA key ok"), "{text}");
    assert!(
        text.contains("\n4\n"),
        "PBES2 / PBKDF2 / HMAC-SHA256 / AES-256-CBC: {text}"
    );
    assert!(
        text.contains("CN = archives") || text.contains("CN=archives"),
        "{text}"
    );
    assert!(text.contains("(2048 bit)"), "{text}");
    let md5s: Vec<&str> = text.lines().filter(|l| l.contains("(stdin)=")).collect();
    assert_eq!(md5s.len(), 2);
    assert_eq!(md5s[0], md5s[1], "certificate and key share the modulus");

    // A password wrapped for our certificate by openssl unwraps with our key; and the reverse direction
    // (our archive-core wrap decrypted by openssl) is covered by the e2e interop tests.
    sh(
        dir.path(),
        "{ printf '\\001\\001\\001'; openssl rand 48; } > pw.bin
         openssl pkeyutl -encrypt -certin -inkey cert.pem -pkeyopt rsa_padding_mode:oaep -in pw.bin | openssl enc -base64 -A > pw.b64
         xxd -s 3 -l 32 -c 32 -p pw.bin > key.hex",
    );
    let out = run(&[
        "password",
        "decrypt",
        "--key",
        &p("key.pem"),
        "--passphrase-file",
        &p("pass.txt"),
        "--password-file",
        &p("pw.b64"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["key"].as_str().unwrap(),
        std::fs::read_to_string(p("key.hex")).unwrap().trim()
    );
}

#[test]
fn keygen_refuses_what_would_lose_a_key_or_be_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let out = run(&[
        "keygen",
        "--cert",
        &p("c.pem"),
        "--key",
        &p("k.pem"),
        "--bits",
        "4096",
    ]);
    assert_fails(&out, 3, "at most 2048");
    assert!(files(dir.path()).is_empty());
    std::fs::write(p("k.pem"), "precious").unwrap();
    let out = run(&["keygen", "--cert", &p("c.pem"), "--key", &p("k.pem")]);
    assert_fails(&out, 3, "refusing to overwrite");
    assert_eq!(std::fs::read_to_string(p("k.pem")).unwrap(), "precious");
    assert_eq!(files(dir.path()), vec!["k.pem"]);
    let out = run(&["keygen", "--cert", &p("x/c.pem"), "--key", &p("x/k.pem")]);
    assert_fails(&out, 5, "cannot create");
    // A directory where the certificate should go: refused before anything is written, even with --force,
    // so the existing key is never replaced by one without its certificate.
    std::fs::create_dir(p("cdir")).unwrap();
    let out = run(&[
        "keygen",
        "--cert",
        &p("cdir"),
        "--key",
        &p("k.pem"),
        "--force",
    ]);
    assert_fails(&out, 3, "is a directory");
    assert_eq!(std::fs::read_to_string(p("k.pem")).unwrap(), "precious");
    assert_eq!(files(dir.path()), vec!["cdir", "k.pem"]);
    // The certificate's directory unwritable: the key is not written either.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode;
        std::fs::create_dir(p("ro")).unwrap();
        std::fs::set_permissions(p("ro"), mode(0o555)).unwrap();
        let cert = p("ro/c.pem");
        let key = p("new.pem");
        let args = ["keygen", "--cert", &cert, "--key", &key];
        let out = if running_as_root() {
            // Root writes anywhere (and CI runs as root), so archivectl runs as nobody, in a directory where
            // nobody may write the key but not the certificate.
            std::fs::set_permissions(dir.path(), mode(0o777)).unwrap();
            let as_root = archivectl();
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(as_root.get_program())
                .args(args)
                .envs(
                    as_root
                        .get_envs()
                        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
                )
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap_or_else(|e| {
                    panic!("setpriv (util-linux) runs this case as nobody when the tests run as root: {e}")
                })
        } else {
            run(&args)
        };
        assert_fails(&out, 5, "cannot create");
        assert!(!dir.path().join("new.pem").exists());
    }
}

#[cfg(unix)]
fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn cert_inspect_reports_size_and_service_acceptance() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    sh(
        dir.path(),
        "openssl req -new -x509 -days 10 -newkey rsa:3072 -nodes -keyout big.key -out big.pem -subj /CN=big 2>/dev/null
         openssl req -new -x509 -days 10 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.pem -subj /CN=ec 2>/dev/null
         openssl x509 -in big.pem -outform DER -out big.der
         awk 'BEGIN{ORS=\"\\\\n\"} {print}' big.pem > big.escaped
         openssl x509 -in big.pem -noout -fingerprint -sha256 | cut -d= -f2 > fp.txt",
    );
    for form in ["big.pem", "big.der", "big.escaped"] {
        let out = run(&["cert", "inspect", &p(form), "--json"]);
        assert!(
            out.status.success(),
            "{form}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["key_bits"], 3072);
        assert_eq!(json["service_accepts"], false);
        assert!(
            json["service_rejection"]
                .as_str()
                .unwrap()
                .contains("at most 2048")
        );
        assert_eq!(
            json["sha256_fingerprint"].as_str().unwrap(),
            std::fs::read_to_string(p("fp.txt")).unwrap().trim()
        );
    }
    let out = run(&["cert", "inspect", &p("ec.pem")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("REJECTED"));
    let out = run(&["cert", "inspect", &p("big.key")]);
    assert_fails(&out, 3, "not a readable X.509 certificate");
    let out = run(&["cert", "inspect", &p("big.pem"), "--key", &p("ec.key")]);
    assert_fails(&out, 3, "not an RSA key");
}
