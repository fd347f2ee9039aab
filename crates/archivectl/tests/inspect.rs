//! `archivectl inspect` and `archivectl demo`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn inspect_reports_streams_and_duration_of_the_clip() {
    let clip = clip();
    let out = run(&["inspect", clip.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let len = std::fs::metadata(&clip).unwrap().len();
    assert_eq!(json["packets"], len / 188);
    let duration = json["duration_seconds"].as_f64().unwrap();
    assert!((duration - 4.0).abs() < 0.2, "duration {duration}");
    let streams = json["streams"].to_string();
    assert!(
        streams.contains("H.264") && streams.contains("AAC"),
        "{streams}"
    );
}

#[test]
fn inspect_refuses_what_is_not_ts() {
    let fx = Fixture::new();
    let out = run(&["inspect", &fx.path("archive.ts")]);
    assert_fails(&out, 3, "still encrypted");
    std::fs::write(fx.path("empty.ts"), b"").unwrap();
    assert_fails(&run(&["inspect", &fx.path("empty.ts")]), 3, "empty");
    assert_fails(&run(&["inspect", &fx.path("missing.ts")]), 5, "cannot open");
}

#[cfg(feature = "demo")]
#[test]
fn demo_runs_the_whole_local_flow() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let out = run(&["demo", "--keep", keep.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = json["archive_id"].as_str().unwrap();
    let steps: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "keygen",
            "S3 server",
            "callback receiver",
            "service",
            "storage set",
            "archives start",
            "archives stop",
            "callbacks",
            "archives get",
            "pull",
            "ledger",
            "inspect"
        ]
    );
    assert!(
        json["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{}",
        json["steps"][1]
    );

    // The archive went through started, stopped and uploaded, committed to the ledger by the receiver; the
    // service reported duration 0 (the known issue).
    assert_eq!(
        json["callbacks"],
        serde_json::json!(["started", "stopped", "uploaded"])
    );
    let uploaded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(keep.join("callback.json")).unwrap())
            .unwrap();
    assert_eq!(uploaded["event"], "archive");
    assert_eq!(uploaded["status"], "uploaded");
    assert_eq!(uploaded["duration"], 0);
    let ledger = keep.join("ledger.sqlite3");
    let out = run(&[
        "ledger",
        "show",
        id,
        "--json",
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        row["password"], uploaded["password"],
        "the ledger holds the password as received"
    );
    assert_eq!(row["status"], "uploaded");
    assert_eq!(row["sha256"], json["pulled"]["sha256"]);
    assert!(row["measured_duration"].as_f64().unwrap() > 30.0, "{row}");
    assert_eq!(json["service"]["status"], "uploaded");
    assert_eq!(json["service"]["duration"], 0);

    // The pulled file: MPEG-TS, about the 30 s recorded (the clip repeated), hashed, and inspected again.
    let pulled = keep.join(format!("{id}.ts"));
    assert_eq!(
        json["pulled"]["path"].as_str().unwrap(),
        pulled.to_str().unwrap()
    );
    let bytes = std::fs::read(&pulled).unwrap();
    assert_eq!(json["pulled"]["bytes"], bytes.len() as u64);
    assert_eq!(
        json["pulled"]["sha256"].as_str().unwrap(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    let measured = json["pulled"]["measured_duration"].as_f64().unwrap();
    assert!((30.0..40.0).contains(&measured), "duration {measured}");
    assert_eq!(json["report"]["duration_seconds"], measured);
    assert_eq!(json["report"]["continuity_errors"], 0);
    let object = keep
        .join("s3/archives/46000000")
        .join(id)
        .join("archive.ts");
    assert_eq!(
        std::fs::metadata(&object).unwrap().len(),
        bytes.len() as u64
    );
    assert_ne!(
        std::fs::read(&object).unwrap(),
        bytes,
        "the stored object is encrypted"
    );

    // The password the callback carried, as received, decrypts the object in the S3 server's directory with
    // the documented openssl commands into exactly the pulled file.
    let password = uploaded["password"].as_str().unwrap();
    assert!(!password.is_empty());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keep.join("callback.json")).unwrap()).unwrap();
    assert_eq!(saved["password"], password);
    std::fs::write(keep.join("pw.b64"), password).unwrap();
    let script = format!(
        "openssl enc -base64 -d -A -in pw.b64 -out pw.enc
         openssl pkeyutl -decrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in pw.enc -out pw.bin
         openssl enc -d -aes-256-cbc -nopad -in s3/archives/46000000/{id}/archive.ts -out openssl.ts \
           -K $(xxd -s 3 -l 32 -c 32 -p pw.bin) -iv $(xxd -s 35 -l 16 -c 16 -p pw.bin)
         cmp openssl.ts {id}.ts"
    );
    sh(&keep, &script);
}

#[test]
fn inspect_says_what_is_wrong_without_blaming_a_key_it_never_used() {
    let fx = Fixture::new();
    let out = run(&["inspect", &fx.path("archive.ts")]);
    assert_fails(&out, 3, "is not MPEG-TS");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("key or password"), "{stderr}");

    // Padding is 1 to 16 bytes; more than that is not padding.
    sh(
        fx.dir.path(),
        "cat clip.ts > padded.ts; printf '\\020%.0s' $(seq 16) >> padded.ts
         cat clip.ts > long.ts; head -c 184 /dev/zero >> long.ts",
    );
    let padded = run(&["inspect", &fx.path("padded.ts")]);
    let text = String::from_utf8_lossy(&padded.stdout);
    assert!(
        text.contains("16 trailing bytes") && text.contains("PKCS#7 padding"),
        "{text}"
    );
    let long = run(&["inspect", &fx.path("long.ts")]);
    let text = String::from_utf8_lossy(&long.stdout);
    assert!(
        text.contains("184 trailing bytes") && !text.contains("PKCS#7 padding the"),
        "{text}"
    );
    assert!(text.contains("more than PKCS#7 padding"), "{text}");
}

#[test]
fn cert_inspect_with_a_key_that_does_not_match_fails() {
    let fx = Fixture::new();
    sh(
        fx.dir.path(),
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out other.pem 2>/dev/null
         openssl req -new -x509 -key key.pem -subj /CN=x -out cert.pem -days 1",
    );
    let out = run(&[
        "cert",
        "inspect",
        &fx.path("cert.pem"),
        "--key",
        &fx.path("other.pem"),
    ]);
    assert_fails(&out, 4, "does not belong to certificate");
    // What it found is still shown.
    assert!(String::from_utf8_lossy(&out.stdout).contains("matches key:  NO"));
    let out = run(&[
        "cert",
        "inspect",
        &fx.path("cert.pem"),
        "--key",
        &fx.path("key.pem"),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("matches key:  yes"));
}

#[test]
fn a_weak_key_is_called_weak_by_keygen_and_cert_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let out = run(&["keygen", "--bits", "1024", "--cert", cert, "--key", key]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: a 1024-bit RSA key is weak"),
        "{stderr}"
    );
    let out = run(&["cert", "inspect", cert]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RSA 1024 bits (WEAK"), "{stdout}");
    let out = run(&["cert", "inspect", cert, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["warnings"][0].as_str().unwrap().contains("weak"),
        "{json}"
    );

    // The default size gets no warning.
    std::fs::remove_file(cert).unwrap();
    std::fs::remove_file(key).unwrap();
    let out = run(&["keygen", "--cert", cert, "--key", key]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("weak"));
    let out = run(&["cert", "inspect", cert, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["warnings"], serde_json::json!([]));
}
