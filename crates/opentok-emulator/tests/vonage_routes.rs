//! The routes and fields of today's Vonage Video API (issue 13) on the emulator: stream changes of archives in
//! manual stream mode, layout changes, the transcription and bitrate/QP start options, both session filters.
#![allow(clippy::unwrap_used)]

mod common;

use common::{API_KEY, builder, good_token, raw};
use reqwest::Method;
use serde_json::Value;

fn url(emulator: &opentok_emulator::RunningEmulator, path: &str) -> String {
    format!("{}/v2/project/{API_KEY}/archive{path}", emulator.base_url())
}

async fn start(emulator: &opentok_emulator::RunningEmulator, body: &str) -> (u16, Value) {
    raw(
        Method::POST,
        &url(emulator, ""),
        Some(&good_token()),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn streams_are_added_and_removed_only_in_manual_stream_mode() {
    let emulator = builder().start().await.unwrap();
    let session = "manual-streams";
    let (status, manual) = start(
        &emulator,
        &format!(r#"{{"sessionId":"{session}","streamMode":"manual"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{manual}");
    let id = manual["id"].as_str().unwrap().to_owned();
    let streams = url(&emulator, &format!("/{id}/streams"));
    let token = good_token();
    let patch = |body: &'static str| raw(Method::PATCH, &streams, Some(&token), Some(body));

    assert_eq!(patch(r#"{"addStream":"s1"}"#).await.0, 204);
    assert_eq!(
        patch(r#"{"addStream":"s2","hasAudio":true,"hasVideo":false}"#)
            .await
            .0,
        204
    );
    let (_, got) = raw(
        Method::GET,
        &url(&emulator, &format!("/{id}")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        got["streams"],
        serde_json::json!([
            {"streamId": "s1", "hasAudio": true, "hasVideo": true},
            {"streamId": "s2", "hasAudio": true, "hasVideo": false}
        ])
    );
    assert_eq!(got["streamMode"], "manual");
    assert_eq!(patch(r#"{"removeStream":"s1"}"#).await.0, 204);
    // The service's errors: a stream it does not have, both or neither operation, no audio and no video.
    assert_eq!(patch(r#"{"removeStream":"s1"}"#).await.0, 404);
    assert_eq!(
        patch(r#"{"addStream":"s3","removeStream":"s2"}"#).await.0,
        400
    );
    assert_eq!(patch(r#"{}"#).await.0, 400);
    assert_eq!(
        patch(r#"{"addStream":"s3","hasAudio":false,"hasVideo":false}"#)
            .await
            .0,
        400
    );
    let (_, got) = raw(
        Method::GET,
        &url(&emulator, &format!("/{id}")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        got["streams"],
        serde_json::json!([{"streamId": "s2", "hasAudio": true, "hasVideo": false}])
    );

    // An archive in automatic stream mode: 405.
    let (_, auto) = start(&emulator, &format!(r#"{{"sessionId":"{session}-auto"}}"#)).await;
    let auto_streams = url(
        &emulator,
        &format!("/{}/streams", auto["id"].as_str().unwrap()),
    );
    let (status, body) = raw(
        Method::PATCH,
        &auto_streams,
        Some(&token),
        Some(r#"{"addStream":"s1"}"#),
    )
    .await;
    assert_eq!(status, 405, "{body}");
    // Once stopped: 409; an unknown archive: 404.
    raw(
        Method::POST,
        &url(&emulator, &format!("/{id}/stop")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(patch(r#"{"addStream":"s4"}"#).await.0, 409);
    let unknown = url(
        &emulator,
        &format!("/{}/streams", "7c0680fc-6274-4de5-a66f-d0648e8d3ac2"),
    );
    assert_eq!(
        raw(
            Method::PATCH,
            &unknown,
            Some(&token),
            Some(r#"{"addStream":"s1"}"#)
        )
        .await
        .0,
        404
    );
    emulator.stop().await;
}

#[tokio::test]
async fn layouts_are_checked_set_and_answered_with_the_archive() {
    let emulator = builder().start().await.unwrap();
    let token = good_token();
    let (_, archive) = start(
        &emulator,
        r#"{"sessionId":"layouts","layout":{"type":"pip"}}"#,
    )
    .await;
    let id = archive["id"].as_str().unwrap().to_owned();
    let layout = url(&emulator, &format!("/{id}/layout"));
    let put = |body: &'static str| raw(Method::PUT, &layout, Some(&token), Some(body));
    let layout_of = || async {
        let state = emulator.snapshot();
        state
            .archives
            .into_iter()
            .find(|a| a.archive.id == id)
            .unwrap()
            .layout
            .map(|l| serde_json::to_value(l).unwrap())
    };
    assert_eq!(layout_of().await, Some(serde_json::json!({"type": "pip"})));

    let (status, answer) =
        put(r#"{"type":"bestFit","screenshareType":"verticalPresentation"}"#).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(
        layout_of().await,
        Some(serde_json::json!({"type": "bestFit", "screenshareType": "verticalPresentation"}))
    );
    let (status, _) =
        put(r#"{"type":"custom","stylesheet":"stream.instructor {position: absolute;}"}"#).await;
    assert_eq!(status, 200);
    // The service's 400s: custom without a stylesheet, a stylesheet or screenshareType with the wrong type,
    // an unknown type.
    for bad in [
        r#"{"type":"custom"}"#,
        r#"{"type":"pip","stylesheet":"x {}"}"#,
        r#"{"type":"pip","screenshareType":"bestFit"}"#,
        r#"{"type":"mosaic"}"#,
    ] {
        assert_eq!(put(bad).await.0, 400, "{bad}");
    }
    assert_eq!(
        layout_of().await.unwrap()["type"],
        "custom",
        "a refused layout changes nothing"
    );
    raw(
        Method::POST,
        &url(&emulator, &format!("/{id}/stop")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(put(r#"{"type":"pip"}"#).await.0, 409);
    emulator.stop().await;
}

#[tokio::test]
async fn start_options_bitrate_or_qp_transcription_and_both_session_filters() {
    let emulator = builder().start().await.unwrap();
    let token = good_token();
    let (status, body) = start(
        &emulator,
        r#"{"sessionId":"q","maxBitrate":2000000,"quantizationParameter":25}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("maxBitrate"),
        "{body}"
    );
    for bad in [
        r#"{"sessionId":"q","maxBitrate":50}"#,
        r#"{"sessionId":"q","quantizationParameter":41}"#,
    ] {
        assert_eq!(start(&emulator, bad).await.0, 400, "{bad}");
    }
    let (status, qp) = start(&emulator, r#"{"sessionId":"q","quantizationParameter":30}"#).await;
    assert_eq!(status, 200, "{qp}");
    assert_eq!(qp["quantizationParameter"], 30);
    assert!(qp.get("maxBitrate").is_none());

    let (status, transcribed) = start(
        &emulator,
        r#"{"sessionId":"t","outputMode":"individual","hasTranscription":true,
            "transcriptionProperties":{"primaryLanguageCode":"fr-FR","hasSummary":true}}"#,
    )
    .await;
    assert_eq!(status, 200, "{transcribed}");
    assert_eq!(transcribed["hasTranscription"], true);
    assert_eq!(
        transcribed["transcription"],
        serde_json::json!({"status": "requested", "primaryLanguageCode": "fr-FR", "hasSummary": true})
    );
    assert!(qp.get("transcription").is_none());

    for filter in ["sessionId", "session_id"] {
        let (status, list) = raw(
            Method::GET,
            &format!("{}?{filter}=t", url(&emulator, "")),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(list["count"], 1, "{filter}: {list}");
        assert_eq!(list["items"][0]["sessionId"], "t");
    }
    emulator.stop().await;
}

/// The binary serves any number of applications from repeated `--application-id`/`--application-public-key`,
/// each with its own key, and refuses ids and keys that do not pair up.
#[tokio::test]
async fn the_binary_serves_several_applications() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ids = [
        "11111111-2222-4333-8444-555555555555",
        "66666666-7777-4888-9999-aaaaaaaaaaaa",
    ];
    let keys: Vec<rsa::PrivateKey> = dirs
        .iter()
        .map(|d| common::certificate(Some(d.path()), 2048).0)
        .collect();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"));
    command.args(["--listen", "127.0.0.1:0", "--data-dir"]);
    command.arg(dirs[0].path().join("data"));
    for (id, dir) in ids.iter().zip(&dirs) {
        command.args(["--application-id", id, "--application-public-key"]);
        command.arg(dir.path().join("key.pem"));
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base = first
        .trim()
        .strip_prefix("opentok-emulator listening on ")
        .unwrap()
        .to_owned();
    let app = |id: &str, key: &rsa::PrivateKey| {
        opentok_rest::Client::builder(opentok_rest::auth::Credentials::application(
            id,
            key.clone(),
        ))
        .base_url(&base)
        .retry(opentok_rest::RetryPolicy::none())
        .build()
        .unwrap()
    };
    for (id, key) in ids.iter().zip(&keys) {
        let started = app(id, key)
            .start_archive(&opentok_rest::model::StartArchiveRequest::new("apps"))
            .await
            .unwrap();
        assert_eq!(
            started.application_id.map(|p| p.to_string()).as_deref(),
            Some(*id)
        );
    }
    // One application's key is not the other's.
    let err = app(ids[0], &keys[1])
        .list_archives(0, 10, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .args(["--application-id", ids[0], "--application-id", ids[1]])
        .arg("--application-public-key")
        .arg(dirs[0].path().join("key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("one key per application"), "{stderr}");
}

/// `--tls-self-signed DIR` serves HTTPS with a throwaway CA written to `DIR/ca.pem`: a client trusting that CA
/// (curl, here) reaches it; one that does not is refused.
#[tokio::test]
async fn the_binary_serves_https_with_a_throwaway_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
            "--tls-self-signed",
        ])
        .arg(dir.path().join("tls"))
        .env("OPENTOK_API_SECRET", common::API_SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base = first
        .trim()
        .strip_prefix("opentok-emulator listening on ")
        .unwrap()
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = dir.path().join("tls/ca.pem");
    let curl = |trust: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--fail"]);
        if trust {
            cmd.arg("--cacert").arg(&ca);
        }
        cmd.arg(format!("{base}/_emulator/health"))
            .output()
            .unwrap()
    };
    let trusted = curl(true);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&trusted.stdout), "ok");
    assert!(
        !curl(false).status.success(),
        "the throwaway CA is not trusted by default"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
