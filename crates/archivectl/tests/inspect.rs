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
    assert!(keep.join(format!("{id}.ts")).exists());
    assert!(keep.join("46000000").join(id).join("archive.ts").exists());
    assert!(json["steps"].as_array().unwrap().len() >= 6);
    // The kept files decrypt with the documented openssl commands too.
    let script = format!(
        "python3 -c 'import json;print(json.load(open(\"callback.json\"))[\"password\"])' > pw.b64
         openssl enc -base64 -d -A -in pw.b64 -out pw.enc
         openssl pkeyutl -decrypt -inkey key.pem -pkeyopt rsa_padding_mode:oaep -in pw.enc -out pw.bin
         openssl enc -d -aes-256-cbc -nopad -in 46000000/{id}/archive.ts -out openssl.ts \
           -K $(xxd -s 3 -l 32 -c 32 -p pw.bin) -iv $(xxd -s 35 -l 16 -c 16 -p pw.bin)
         cmp openssl.ts {id}.ts"
    );
    sh(&keep, &script);
}
