//! `archivectl archives streams add|remove` and `archivectl archives layout` (issue 13) against a local HTTP
//! server standing in for the service: the exact method, path and JSON body sent, and the local checks made
//! before anything is sent.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::fake_service::{cli_against, serve};

const API_KEY: &str = "46000001";
const SECRET: &str = "0123456789abcdef0123456789abcdef01234567";
const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

fn cli(addr: SocketAddr, args: &[&str]) -> std::process::Output {
    cli_against(addr, API_KEY, SECRET, args)
}

#[test]
fn streams_add_and_remove_send_the_services_patch_bodies() {
    let (addr, fake) = serve(vec![(204, ""), (204, ""), (204, "")]);
    for args in [
        vec!["archives", "streams", "add", ID, "s1"],
        vec!["archives", "streams", "add", ID, "s2", "--no-video"],
        vec!["archives", "streams", "remove", ID, "s1"],
    ] {
        let out = cli(addr, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "PATCH");
        assert_eq!(r.uri, format!("/v2/project/{API_KEY}/archive/{ID}/streams"));
    }
    let body = |i: usize| serde_json::from_str::<serde_json::Value>(&reqs[i].body).unwrap();
    assert_eq!(
        body(0),
        serde_json::json!({"addStream": "s1", "hasAudio": true, "hasVideo": true})
    );
    assert_eq!(
        body(1),
        serde_json::json!({"addStream": "s2", "hasAudio": true, "hasVideo": false})
    );
    assert_eq!(body(2), serde_json::json!({"removeStream": "s1"}));

    // Neither audio nor video: a usage error, nothing sent.
    let (addr, fake) = serve(vec![]);
    let out = cli(
        addr,
        &[
            "archives",
            "streams",
            "add",
            ID,
            "s1",
            "--no-audio",
            "--no-video",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(fake.requests.lock().unwrap().is_empty());
}

#[test]
fn layout_sends_the_type_the_stylesheet_file_and_the_screenshare_type() {
    let dir = tempfile::tempdir().unwrap();
    let css = dir.path().join("layout.css");
    std::fs::write(&css, "stream.instructor { position: absolute; }\n").unwrap();
    let (addr, fake) = serve(vec![(200, ""), (200, "")]);
    let out = cli(
        addr,
        &[
            "archives",
            "layout",
            ID,
            "--type",
            "custom",
            "--stylesheet",
            css.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        addr,
        &[
            "archives",
            "layout",
            ID,
            "--type",
            "bestFit",
            "--screenshare-type",
            "pip",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["layout"]["screenshareType"], "pip");
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].uri,
        format!("/v2/project/{API_KEY}/archive/{ID}/layout")
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reqs[0].body).unwrap(),
        serde_json::json!({"type": "custom", "stylesheet": "stream.instructor { position: absolute; }\n"})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reqs[1].body).unwrap(),
        serde_json::json!({"type": "bestFit", "screenshareType": "pip"})
    );

    // custom without a stylesheet: refused before sending, with the reason.
    let (addr, fake) = serve(vec![]);
    let out = cli(addr, &["archives", "layout", ID, "--type", "custom"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stylesheet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(fake.requests.lock().unwrap().is_empty());
}

const VONAGE_ARCHIVE: &str = r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","status":"started","name":"n","reason":"",
  "sessionId":"S1","applicationId":"test_application_id","createdAt":1727870434974,"updatedAt":1727870634977,
  "size":0,"duration":0,"outputMode":"composed","streamMode":"manual","hasAudio":true,"hasVideo":true,
  "hasTranscription":true,"sha256sum":"q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U=","password":"",
  "multiArchiveTag":"tag","resolution":"1280x720","quantizationParameter":30,"url":null,
  "streams":[{"streamId":"s1","hasAudio":true,"hasVideo":false}],
  "transcription":{"status":"requested","primaryLanguageCode":"fr-FR","hasSummary":true},"someNewField":[1,2]}"#;

#[test]
fn start_takes_every_option_and_get_shows_the_new_fields() {
    let (addr, fake) = serve(vec![
        (200, VONAGE_ARCHIVE),
        (200, VONAGE_ARCHIVE),
        (200, VONAGE_ARCHIVE),
    ]);
    let out = cli(
        addr,
        &[
            "archives",
            "start",
            "--session-id",
            "S1",
            "--stream-mode",
            "manual",
            "--layout",
            "bestFit",
            "--screenshare-type",
            "pip",
            "--quantization-parameter",
            "30",
            "--transcription",
            "--transcription-language",
            "fr-FR",
            "--transcription-summary",
            "--multi-archive-tag",
            "tag",
            "--resolution",
            "1280x720",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = fake.requests.lock().unwrap().clone();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reqs[0].body).unwrap(),
        serde_json::json!({"sessionId": "S1", "resolution": "1280x720", "streamMode": "manual",
            "layout": {"type": "bestFit", "screenshareType": "pip"}, "multiArchiveTag": "tag",
            "quantizationParameter": 30, "hasTranscription": true,
            "transcriptionProperties": {"primaryLanguageCode": "fr-FR", "hasSummary": true}})
    );
    let out = cli(addr, &["archives", "get", ID]);
    let text = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "application: test_application_id",
        "streams:     manual",
        "stream:      s1 (audio only)",
        "qp:          30",
        "transcription: requested, fr-FR, with summary",
        "sha256sum:   q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U=",
    ] {
        assert!(text.contains(shown), "{shown:?} not in:\n{text}");
    }
    // --json carries every field, unknown ones too.
    let out = cli(addr, &["archives", "get", ID, "--json"]);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut sent: serde_json::Value = serde_json::from_str(VONAGE_ARCHIVE).unwrap();
    sent.as_object_mut().unwrap().remove("url");
    assert_eq!(printed, sent);

    // maxBitrate with a quantization parameter: a usage error, nothing sent.
    let (addr, fake) = serve(vec![]);
    let out = cli(
        addr,
        &[
            "archives",
            "start",
            "--session-id",
            "S1",
            "--max-bitrate",
            "2000000",
            "--quantization-parameter",
            "30",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(fake.requests.lock().unwrap().is_empty());
}
