//! The emulator's REST API driven by opentok-rest's client and by raw requests: authentication failures and
//! their bodies, every endpoint under both prefixes, error bodies, uploads that fail (fallback), downloads.
//! No storage server is needed: targets here point at a closed port.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use archive_core::PasswordBlob;
use common::*;
use opentok_rest::Error;
use opentok_rest::model::{
    ArchiveEncryption, ArchiveStatus, Fallback, OutputMode, S3Config, StartArchiveRequest,
    StorageTarget,
};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// An S3 target nobody listens at (port 1 on loopback refuses connections).
fn dead_s3(fallback: Fallback, encryption: ArchiveEncryption) -> StorageTarget {
    StorageTarget::s3(
        S3Config {
            bucket: "archives".into(),
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "very-secret-s3-key".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            sse: None,
        },
        fallback,
        encryption,
    )
}

#[tokio::test]
async fn tokens_the_service_refuses_get_its_403_bodies() {
    let emulator = builder()
        .project("999", "other-secret".into())
        .start()
        .await
        .unwrap();
    let url = format!("{}/v2/project/{API_KEY}/archive", emulator.base_url());
    let now = opentok_rest::auth::unix_now().unwrap();
    let claims = |iss: &str, ist: Option<&str>, iat: u64, exp: u64| {
        let mut c = json!({"iss": iss, "iat": iat, "exp": exp});
        if let Some(ist) = ist {
            c["ist"] = ist.into();
        }
        c
    };
    let cases = [
        (None, "Missing authentication token"),
        (
            Some(token(
                claims("12", Some("project"), now, now + 60),
                API_SECRET,
            )),
            "Issuer not found",
        ),
        (
            Some(token(
                claims(API_KEY, Some("project"), now, now + 60),
                "wrong-secret",
            )),
            "Invalid signature",
        ),
        (
            Some(token(
                json!({"ist": "project", "iat": now, "exp": now + 60}),
                API_SECRET,
            )),
            "Invalid issuer format",
        ),
        (
            Some(token(
                claims("999", Some("project"), now, now + 60),
                "other-secret",
            )),
            "Issuer not authorized for this project",
        ),
        (
            Some(token(
                claims(API_KEY, Some("account"), now, now + 60),
                API_SECRET,
            )),
            "Invalid issuer type",
        ),
        (
            Some(token(
                claims(API_KEY, Some("project"), now, now + 301),
                API_SECRET,
            )),
            "Invalid token expiration",
        ),
        (
            Some(token(
                claims(API_KEY, Some("project"), now - 400, now - 100),
                API_SECRET,
            )),
            "Token expired",
        ),
        (Some("garbage".to_owned()), "Invalid token format"),
    ];
    for (token, message) in cases {
        let (status, body) = raw(Method::GET, &url, token.as_deref(), None).await;
        assert_eq!(status, 403, "{message}: {body}");
        assert_eq!(
            body,
            json!({"code": -1, "message": message, "description": message})
        );
    }
    // The recorded body, byte for byte.
    let text = common::http()
        .get(&url)
        .header(
            "X-OPENTOK-AUTH",
            token(claims("12", Some("project"), now, now + 60), API_SECRET),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#
    );
    // Exactly 300 s is allowed, no jti is needed, and the partner prefix authenticates the same way.
    let longest = token(claims(API_KEY, Some("project"), now, now + 300), API_SECRET);
    assert_eq!(raw(Method::GET, &url, Some(&longest), None).await.0, 200);
    let partner = url.replace("/project/", "/partner/");
    assert_eq!(
        raw(Method::GET, &partner, Some(&longest), None).await.0,
        200
    );

    // Through the client: a wrong secret is Unauthorized with the service's message.
    let err = client_with(&emulator, API_KEY, "not-the-secret")
        .list_archives(0, 10, None)
        .await
        .unwrap_err();
    let Error::Unauthorized(service) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (service.status, service.message.as_str()),
        (403, "Invalid signature")
    );
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    emulator.stop().await;
}

#[tokio::test]
async fn ruby_style_tokens_with_ist_in_the_header_are_accepted() {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let emulator = builder().start().await.unwrap();
    let now = opentok_rest::auth::unix_now().unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(br#"{"ist":"project","alg":"HS256"}"#),
        b64.encode(json!({"iss": API_KEY, "iat": now, "exp": now + 300}).to_string())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(API_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64.encode(mac.finalize().into_bytes()));
    let url = format!("{}/v2/project/{API_KEY}/archive", emulator.base_url());
    let (status, body) = raw(Method::GET, &url, Some(&token), None).await;
    assert_eq!((status, body), (200, json!({"count": 0, "items": []})));
}

#[tokio::test]
async fn an_unencrypted_archive_lives_from_start_to_delete() {
    let emulator = builder().start().await.unwrap();
    let client = client(&emulator);
    let started = client
        .start_archive(&StartArchiveRequest {
            name: Some("standup".into()),
            ..StartArchiveRequest::new("2_MX40NzAxMjM0fn5-session-a")
        })
        .await
        .unwrap();
    assert_eq!(started.status, ArchiveStatus::Started);
    assert_eq!(started.name.as_deref(), Some("standup"));
    assert_eq!(started.output_mode, Some(OutputMode::Composed));
    assert_eq!(started.resolution.as_deref(), Some("640x480"));
    assert_eq!(
        started.project().map(ToString::to_string).as_deref(),
        Some(API_KEY)
    );
    assert_eq!(started.encrypted_password(), None);
    assert_eq!(
        client.get_archive(&started.id).await.unwrap().status,
        ArchiveStatus::Started
    );

    // Deleting a recording archive is a conflict; so is stopping it twice.
    let Error::Conflict(conflict) = client.delete_archive(&started.id).await.unwrap_err() else {
        panic!("delete while started must be 409")
    };
    assert!(conflict.message.contains("started"), "{}", conflict.message);

    emulator.set_hooks(opentok_emulator::Hooks {
        recorded_seconds: Some(12),
        ..Default::default()
    });
    let stopped = client.stop_archive(&started.id).await.unwrap();
    assert_eq!(stopped.status, ArchiveStatus::Stopped);
    assert_eq!(stopped.reason.as_deref(), Some("user initiated"));
    assert_eq!(
        stopped.duration, 12,
        "unencrypted archives report their duration"
    );
    let clip = opentok_emulator::media::BUNDLED_CLIP.len() as u64;
    assert_eq!(
        stopped.size,
        3 * clip,
        "12 s is three copies of the 4 s clip"
    );
    let err = client.stop_archive(&started.id).await.unwrap_err();
    let Error::Conflict(service) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        service.message,
        "Conflict. You are trying to stop an archive that is not recording."
    );

    // No target: the file stays in the emulator's cloud, available at a signed URL.
    let available = emulator
        .wait_for_status(&started.id, &[ArchiveStatus::Available], WAIT)
        .await
        .unwrap();
    let url = available.url.clone().unwrap();
    assert!(
        url.contains("Expires=") && url.contains("Signature="),
        "{url}"
    );
    let got = client.get_archive(&started.id).await.unwrap();
    assert_eq!(got.status, ArchiveStatus::Available);
    let bytes = common::http()
        .get(got.url.as_deref().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, 3 * clip);
    assert_eq!(
        &bytes[..clip as usize],
        opentok_emulator::media::BUNDLED_CLIP
    );
    use base64::Engine as _;
    use sha2::Digest;
    assert_eq!(
        got.sha256sum.as_deref(),
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(&bytes))
                .as_str()
        )
    );
    // A range, as a downloader resuming would ask.
    let part = common::http()
        .get(got.url.as_deref().unwrap())
        .header("Range", "bytes=188-375")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[188..376]);

    client.delete_archive(&started.id).await.unwrap();
    assert_eq!(
        client.get_archive(&started.id).await.unwrap().status,
        ArchiveStatus::Deleted
    );
    assert_eq!(
        client.list_archives(0, 50, None).await.unwrap().count,
        0,
        "deleted archives leave the list"
    );
    // Deleting a deleted archive is allowed; its file is gone.
    client.delete_archive(&started.id).await.unwrap();
    assert_eq!(
        common::http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    // Unknown ids: the recorded 404 body.
    let (status, body) = raw(
        Method::POST,
        &format!(
            "{}/v2/project/{API_KEY}/archive/AN-INVALID-ARCHIVE-ID/stop",
            emulator.base_url()
        ),
        Some(&good_token()),
        Some("{}"),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"code": -1, "message": "Not found. You passed in an invalid archive ID."})
        )
    );
    assert!(matches!(
        client.get_archive("nope").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        client.delete_archive("nope").await,
        Err(Error::NotFound(_))
    ));
    emulator.stop().await;
}

#[tokio::test]
async fn start_requests_are_checked_and_python_style_nulls_accepted() {
    let emulator = builder().start().await.unwrap();
    let url = format!("{}/v2/project/{API_KEY}/archive", emulator.base_url());
    let token = good_token();
    // The Python SDK's body: every option present, unset ones null.
    let python = json!({"name": null, "sessionId": "S1", "hasAudio": true, "hasVideo": true,
        "outputMode": "composed", "resolution": null, "streamMode": "auto", "multiArchiveTag": null,
        "maxBitrate": null});
    let (status, body) = raw(Method::POST, &url, Some(&token), Some(&python.to_string())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], serde_json::Value::Null);
    assert_eq!(body["url"], serde_json::Value::Null);
    assert_eq!(body["password"], "");
    assert_eq!(body["partnerId"], json!(4701234));
    // The same session again: 409; with a multiArchiveTag: a second archive.
    let (status, _) = raw(
        Method::POST,
        &url,
        Some(&token),
        Some(r#"{"sessionId":"S1"}"#),
    )
    .await;
    assert_eq!(status, 409);
    let (status, tagged) = raw(
        Method::POST,
        &url,
        Some(&token),
        Some(r#"{"sessionId":"S1","multiArchiveTag":"b"}"#),
    )
    .await;
    assert_eq!(
        (status, tagged["multiArchiveTag"].as_str()),
        (200, Some("b"))
    );

    for (body, wanted) in [
        ("", "Invalid JSON"),
        ("{", "Invalid JSON"),
        ("[1]", "Invalid JSON"),
        ("{}", "sessionId is required"),
        (r#"{"sessionId":null}"#, "sessionId is required"),
        (r#"{"sessionId":"  "}"#, "sessionId is required"),
        (r#"{"sessionId":"S2","hasAudio":"yes"}"#, "Invalid request"),
        (
            r#"{"sessionId":"S2","outputMode":"individual","resolution":"1280x720"}"#,
            "individual",
        ),
        (
            r#"{"sessionId":"S2","resolution":"800x600"}"#,
            "Invalid resolution",
        ),
        (
            r#"{"sessionId":"S2","hasAudio":false,"hasVideo":false}"#,
            "audio or video",
        ),
        (r#"{"sessionId":"S2","outputMode":"mixed"}"#, "outputMode"),
    ] {
        let (status, answer) = raw(Method::POST, &url, Some(&token), Some(body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(wanted),
            "{body}: {answer}"
        );
    }
    emulator.stop().await;
}

#[tokio::test]
async fn lists_are_newest_first_paged_counted_and_filtered_by_session() {
    let emulator = builder().start().await.unwrap();
    let client = client(&emulator);
    let mut ids = Vec::new();
    for i in 0..5 {
        let session = if i % 2 == 0 { "even" } else { "odd" };
        let a = client
            .start_archive(&StartArchiveRequest {
                multi_archive_tag: Some(format!("t{i}")),
                ..StartArchiveRequest::new(session)
            })
            .await
            .unwrap();
        ids.push(a.id);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let all = client.list_archives(0, 50, None).await.unwrap();
    assert_eq!(all.count, 5);
    assert_eq!(
        all.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        newest_first
    );
    let page = client.list_archives(1, 2, None).await.unwrap();
    assert_eq!(
        (page.count, page.items.len()),
        (5, 2),
        "count is the total, not the page"
    );
    assert_eq!(page.items[0].id, newest_first[1]);
    let even = client.list_archives(0, 50, Some("even")).await.unwrap();
    assert_eq!(even.count, 3);
    assert!(even.items.iter().all(|a| a.session_id == "even"));
    assert_eq!(
        client
            .collect_all_archives(Some("odd"))
            .await
            .unwrap()
            .len(),
        2
    );
    // `session_id` works too, under the partner prefix as well; bad numbers are 400.
    let base = emulator.base_url();
    let (status, body) = raw(
        Method::GET,
        &format!("{base}/v2/partner/{API_KEY}/archive?session_id=odd&count=1"),
        Some(&good_token()),
        None,
    )
    .await;
    assert_eq!(
        (
            status,
            body["count"].as_u64(),
            body["items"].as_array().map(Vec::len)
        ),
        (200, Some(2), Some(1))
    );
    assert_eq!(
        body["items"][0]["id"], newest_first[1],
        "the newest odd one"
    );
    let (status, _) = raw(
        Method::GET,
        &format!("{base}/v2/project/{API_KEY}/archive?offset=x"),
        Some(&good_token()),
        None,
    )
    .await;
    assert_eq!(status, 400);
    // Another prefix is no API.
    let (status, _) = raw(
        Method::GET,
        &format!("{base}/v2/account/{API_KEY}/archive"),
        Some(&good_token()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    emulator.stop().await;
}

#[tokio::test]
async fn storage_targets_are_checked_as_documented() {
    let emulator = builder().start().await.unwrap();
    let url = format!(
        "{}/v2/project/{API_KEY}/archive/storage",
        emulator.base_url()
    );
    let token = good_token();
    let (_, cert) = certificate(None, 1024);
    let ok = json!({"type": "s3", "config": {"bucket": "b", "secretKey": "s3-secret-value", "accessKey": "a"},
        "fallback": "none", "certificate": cert.to_json_base64()});
    assert_eq!(
        raw(Method::PUT, &url, Some(&token), Some(&ok.to_string()))
            .await
            .0,
        200
    );
    let escaped = json!({"type": "azure", "config": {"accountName": "n", "accountKey": "azure-secret-value",
        "container": "c"}, "certificate": cert.to_json_escaped()});
    assert_eq!(
        raw(Method::PUT, &url, Some(&token), Some(&escaped.to_string()))
            .await
            .0,
        200
    );
    for (body, wanted) in [
        ("{oops", "Invalid JSON"),
        (r#"{"config":{"bucket":"b"}}"#, "Missing upload target"),
        (r#"{"type":"s3"}"#, "Missing upload target"),
        (r#"{"type":"gcs","config":{}}"#, "type"),
        (
            r#"{"type":"s3","config":{"bucket":"b","accessKey":"a"}}"#,
            "secretKey",
        ),
        (
            r#"{"type":"s3","config":{"bucket":"b","accessKey":"a","secretKey":"s"},"fallback":"x"}"#,
            "fallback",
        ),
        (
            r#"{"type":"s3","config":{"bucket":"b","accessKey":"a","secretKey":"s"},"certificate":"LS0tbm90"}"#,
            "certificate",
        ),
    ] {
        let (status, answer) = raw(Method::PUT, &url, Some(&token), Some(body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(wanted),
            "{body}: {answer}"
        );
    }
    // A key over 2048 bits: the client refuses to send it, the emulator refuses it too.
    let (_, big) = certificate(None, 3072);
    let target = dead_s3(Fallback::None, ArchiveEncryption::for_certificate(&big));
    assert!(matches!(
        client(&emulator).set_archive_storage(&target).await,
        Err(Error::Certificate(_))
    ));
    let mut body = serde_json::to_value(&target).unwrap();
    body["certificate"] = big.to_json_base64().into();
    let (status, answer) = raw(Method::PUT, &url, Some(&token), Some(&body.to_string())).await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("2048 bits or smaller"),
        "{answer}"
    );
    // The refused bodies did not replace the last good target; the listing shows no secret.
    let state = common::http()
        .get(format!("{}/_emulator/state", emulator.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(state.contains("\"azure\""), "{state}");
    assert!(
        !state.contains("azure-secret-value") && !state.contains("s3-secret-value"),
        "{state}"
    );
    // Wrong credentials: 403 before the body is read.
    assert_eq!(raw(Method::PUT, &url, None, Some("{oops")).await.0, 403);

    // `"certificate": null` turns encryption off for archives started afterwards.
    let client = client(&emulator);
    client
        .set_archive_storage(&dead_s3(
            Fallback::Opentok,
            ArchiveEncryption::for_certificate(&cert),
        ))
        .await
        .unwrap();
    let encrypted = client
        .start_archive(&StartArchiveRequest::new("enc"))
        .await
        .unwrap();
    assert!(encrypted.encrypted_password().is_some());
    client
        .disable_encryption(&dead_s3(Fallback::Opentok, ArchiveEncryption::Disabled))
        .await
        .unwrap();
    let plain = client
        .start_archive(&StartArchiveRequest::new("plain"))
        .await
        .unwrap();
    assert_eq!(plain.encrypted_password(), None);
    emulator.stop().await;
}

#[tokio::test]
async fn failed_uploads_follow_the_fallback() {
    // URLs live 10 s (at least 9 s, the service counts in whole seconds): ample to use one right away, then
    // the test waits for the clock to pass its `Expires`.
    let emulator = builder()
        .download_url_ttl(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let (key, cert) = certificate(None, 2048);

    // fallback none: failed, nothing kept.
    client
        .set_archive_storage(&dead_s3(
            Fallback::None,
            ArchiveEncryption::for_certificate(&cert),
        ))
        .await
        .unwrap();
    let lost = client
        .start_archive(&StartArchiveRequest::new("s-none"))
        .await
        .unwrap();
    client.stop_archive(&lost.id).await.unwrap();
    let failed = emulator
        .wait_for_status(
            &lost.id,
            &[ArchiveStatus::Failed, ArchiveStatus::Uploaded],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(failed.status, ArchiveStatus::Failed);
    assert_eq!(failed.url, None);
    let snapshot = emulator.snapshot();
    let entry = snapshot
        .archives
        .iter()
        .find(|a| a.archive.id == lost.id)
        .unwrap();
    assert!(
        entry.upload_error.is_some() && !entry.kept_in_cloud,
        "{entry:?}"
    );
    assert!(!format!("{snapshot:?}").contains("very-secret-s3-key"));
    let Error::Conflict(_) = client.delete_archive(&lost.id).await.unwrap_err() else {
        panic!("a failed archive cannot be deleted")
    };

    // fallback opentok (and vonage): available, encrypted, at a signed expiring URL.
    for fallback in [Fallback::Opentok, Fallback::Vonage] {
        client
            .set_archive_storage(&dead_s3(
                fallback,
                ArchiveEncryption::for_certificate(&cert),
            ))
            .await
            .unwrap();
        let kept = client
            .start_archive(&StartArchiveRequest::new(format!("s-{fallback:?}")))
            .await
            .unwrap();
        let stopped = client.stop_archive(&kept.id).await.unwrap();
        assert_eq!(
            stopped.duration, 0,
            "encrypted archives report duration 0 (the known issue)"
        );
        let available = emulator
            .wait_for_status(
                &kept.id,
                &[ArchiveStatus::Available, ArchiveStatus::Failed],
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(available.status, ArchiveStatus::Available);
        let url = available.url.clone().unwrap();
        assert!(
            url.contains(&format!("/{API_KEY}/{}/archive.ts?", kept.id)),
            "{url}"
        );
        let bytes = common::http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, available.size);
        let blob: PasswordBlob =
            archive_core::oaep::unwrap_password(&key, available.encrypted_password().unwrap())
                .unwrap();
        let mut plain = bytes.to_vec();
        archive_core::cbc::decrypt_in_place(blob.key(), blob.iv(), &mut plain).unwrap();
        let clip = opentok_emulator::media::BUNDLED_CLIP;
        assert_eq!(&plain[..clip.len()], clip);
        assert_eq!(
            archive_core::cbc::pkcs7_unpadded_len(&plain),
            Some(clip.len())
        );
        // A changed signature is refused; the URL expires.
        let tampered = url.replace("Expires=", "Expires=1");
        let refused = common::http().get(&tampered).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 403);
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("SignatureDoesNotMatch")
        );
        // Expired once the clock is past its `Expires` (waited for, not guessed).
        let expires: u64 = url
            .split_once("Expires=")
            .and_then(|(_, rest)| rest.split('&').next())
            .and_then(|e| e.parse().ok())
            .unwrap_or_else(|| panic!("no Expires in {url}"));
        wait_until_unix_ms(expires * 1000).await;
        let expired = common::http().get(&url).send().await.unwrap();
        assert_eq!(expired.status().as_u16(), 403);
        assert!(
            expired
                .text()
                .await
                .unwrap()
                .contains("Request has expired")
        );
        // A fresh GET gives a fresh URL that works.
        let fresh = client.get_archive(&kept.id).await.unwrap().url.unwrap();
        assert_ne!(fresh, url);
        assert_eq!(
            common::http()
                .get(&fresh)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        client.delete_archive(&kept.id).await.unwrap();
    }

    // The failUploads hook fails an upload that would otherwise go nowhere either; it is used up.
    emulator.set_hooks(opentok_emulator::Hooks {
        fail_uploads: 1,
        ..Default::default()
    });
    client
        .set_archive_storage(&dead_s3(Fallback::None, ArchiveEncryption::Disabled))
        .await
        .unwrap();
    let hooked = client
        .start_archive(&StartArchiveRequest::new("hooked"))
        .await
        .unwrap();
    client.stop_archive(&hooked.id).await.unwrap();
    emulator
        .wait_for_status(&hooked.id, &[ArchiveStatus::Failed], WAIT)
        .await
        .unwrap();
    let entry = emulator
        .snapshot()
        .archives
        .into_iter()
        .find(|a| a.archive.id == hooked.id)
        .unwrap();
    assert!(entry.upload_error.unwrap().contains("failUploads"));
    assert_eq!(
        entry.object_key.unwrap(),
        format!("{API_KEY}/{}/archive.mp4", hooked.id)
    );
    assert_eq!(emulator.hooks().fail_uploads, 0);
    emulator.stop().await;
}

#[tokio::test]
async fn archives_kept_in_the_cloud_expire_after_their_retention() {
    // Long enough that the archive is surely seen available first, however loaded the machine; then the
    // test waits for the clock to pass the end of the retention (its start is the archive's `updatedAt`).
    let retention = Duration::from_secs(10);
    let emulator = builder()
        .fallback_retention(retention)
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let a = client
        .start_archive(&StartArchiveRequest::new("r"))
        .await
        .unwrap();
    client.stop_archive(&a.id).await.unwrap();
    let available = emulator
        .wait_for_status(&a.id, &[ArchiveStatus::Available], WAIT)
        .await
        .unwrap();
    let available_since = available
        .updated_at
        .expect("updatedAt of the available archive");
    wait_until_unix_ms(available_since as u64 + retention.as_millis() as u64).await;
    let expired = client.get_archive(&a.id).await.unwrap();
    assert_eq!(
        (expired.status, expired.url),
        (ArchiveStatus::Expired, None)
    );
    // The URL has not expired, but the file is gone (S3's NoSuchKey).
    let gone = common::http()
        .get(available.url.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    assert!(gone.text().await.unwrap().contains("NoSuchKey"));
    emulator.stop().await;
}

#[tokio::test]
async fn callbacks_carry_every_status_with_the_password_and_are_retried() {
    let receiver = Receiver::start().await;
    let emulator = builder()
        .callback_url(receiver.url())
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let (key, cert) = certificate(None, 1024);
    client
        .set_archive_storage(&dead_s3(
            Fallback::Opentok,
            ArchiveEncryption::for_certificate(&cert),
        ))
        .await
        .unwrap();
    receiver.fail_next(2);
    let a = client
        .start_archive(&StartArchiveRequest::new("cb"))
        .await
        .unwrap();
    client.stop_archive(&a.id).await.unwrap();
    let statuses = receiver.wait_for(&a.id, 3, WAIT).await;
    assert_eq!(statuses, ["started", "stopped", "available"]);
    assert_eq!(
        receiver.failed(),
        2,
        "the first two tries were refused and retried"
    );
    for got in receiver.received() {
        assert_eq!(got.json["event"], "archive");
        assert_eq!(got.headers["content-type"], "application/json");
        let event: opentok_rest::model::ArchiveEvent =
            serde_json::from_value(got.json.clone()).unwrap();
        let password = event.archive().encrypted_password().unwrap();
        assert_eq!(
            password,
            a.password.as_deref().unwrap(),
            "every callback carries the same password"
        );
        archive_core::oaep::unwrap_password(&key, password).unwrap();
        assert!(
            got.headers.get("authorization").is_none(),
            "unsigned unless asked"
        );
    }
    let tries: Vec<(u32, String)> = emulator
        .snapshot()
        .callbacks
        .iter()
        .filter(|c| c.archive_id == a.id && c.status == "started")
        .map(|c| (c.attempt, c.outcome.clone()))
        .collect();
    assert_eq!(
        tries,
        [
            (1, "failed".into()),
            (2, "failed".into()),
            (3, "delivered".into())
        ]
    );

    // A receiver that never answers 2xx: the emulator gives up after its tries, and goes on with the next.
    receiver.fail_next(4);
    let b = client
        .start_archive(&StartArchiveRequest::new("cb2"))
        .await
        .unwrap();
    let c = client
        .start_archive(&StartArchiveRequest::new("cb3"))
        .await
        .unwrap();
    assert_eq!(receiver.wait_for(&c.id, 1, WAIT).await, ["started"]);
    assert!(receiver.statuses(&b.id).is_empty());
    assert!(
        emulator
            .snapshot()
            .callbacks
            .iter()
            .any(|r| r.archive_id == b.id && r.outcome == "gave up")
    );
    emulator.stop().await;
}

#[tokio::test]
async fn callback_hooks_drop_duplicate_and_reorder() {
    let receiver = Receiver::start().await;
    let emulator = builder()
        .callback_url(receiver.url())
        .start()
        .await
        .unwrap();
    let client = client(&emulator);
    let base = emulator.base_url();
    let set = |body: serde_json::Value| {
        let url = format!("{base}/_emulator/hooks");
        async move {
            let answer = common::http()
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 200);
            answer.json::<serde_json::Value>().await.unwrap()
        }
    };
    // Dropped: the started callback never arrives, the stopped one does.
    assert_eq!(set(json!({"dropCallbacks": 1})).await["dropCallbacks"], 1);
    let a = client
        .start_archive(&StartArchiveRequest::new("d"))
        .await
        .unwrap();
    client.stop_archive(&a.id).await.unwrap();
    assert_eq!(
        receiver.wait_for(&a.id, 2, WAIT).await,
        ["stopped", "available"]
    );
    // Duplicated.
    set(json!({"duplicateCallbacks": 1})).await;
    let b = client
        .start_archive(&StartArchiveRequest::new("dup"))
        .await
        .unwrap();
    assert_eq!(
        receiver.wait_for(&b.id, 2, WAIT).await,
        ["started", "started"]
    );
    // Reordered: the three callbacks of one archive arrive newest first.
    set(json!({"reorderCallbacks": 3, "uploadDelayMs": 100})).await;
    let c = client
        .start_archive(&StartArchiveRequest::new("re"))
        .await
        .unwrap();
    client.stop_archive(&c.id).await.unwrap();
    assert_eq!(
        receiver.wait_for(&c.id, 3, WAIT).await,
        ["available", "stopped", "started"]
    );
    // Unknown hooks are refused; DELETE resets.
    let refused = common::http()
        .post(format!("{base}/_emulator/hooks"))
        .body(r#"{"explode":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let reset: serde_json::Value = common::http()
        .delete(format!("{base}/_emulator/hooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["uploadDelayMs"], 0);
    emulator.stop().await;
}

#[tokio::test]
async fn signed_callbacks_carry_a_jwt_over_the_body() {
    let receiver = Receiver::start().await;
    let emulator = builder()
        .callback_signature_secret("callback-signing-secret".into())
        .start()
        .await
        .unwrap();
    // The callback URL set through the hook, after start.
    let answer = common::http()
        .put(format!(
            "{}/_emulator/projects/{API_KEY}/callback",
            emulator.base_url()
        ))
        .body(json!({"url": receiver.url()}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 204);
    let a = client(&emulator)
        .start_archive(&StartArchiveRequest::new("signed"))
        .await
        .unwrap();
    receiver.wait_for(&a.id, 1, WAIT).await;
    let got = &receiver.received()[0];
    let bearer = got.headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let claims: serde_json::Value =
        opentok_rest::auth::verify_hs256(bearer, b"callback-signing-secret").unwrap();
    use sha2::Digest;
    assert_eq!(
        claims["payload_hash"],
        hex::encode(sha2::Sha256::digest(&got.body))
    );
    assert_eq!(
        (claims["iss"].as_str(), claims["api_key"].as_str()),
        (Some("Vonage"), Some(API_KEY))
    );
    assert!(opentok_rest::auth::verify_hs256::<serde_json::Value>(bearer, b"wrong").is_err());
    emulator.stop().await;
}

#[tokio::test]
async fn vonage_application_tokens_work_for_a_configured_application() {
    let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let app_id = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    let emulator = builder()
        .application(app_id, key.to_public_key())
        .start()
        .await
        .unwrap();
    let app =
        opentok_rest::Client::builder(opentok_rest::auth::Credentials::application(app_id, key))
            .base_url(emulator.base_url())
            .retry(opentok_rest::RetryPolicy::none())
            .build()
            .unwrap();
    let a = app
        .start_archive(&StartArchiveRequest::new("vonage"))
        .await
        .unwrap();
    assert_eq!(
        a.application_id.map(|p| p.to_string()).as_deref(),
        Some(app_id)
    );
    assert_eq!(app.list_archives(0, 10, None).await.unwrap().count, 1);
    // Another key's tokens are refused with 401.
    let other = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
    let stranger =
        opentok_rest::Client::builder(opentok_rest::auth::Credentials::application(app_id, other))
            .base_url(emulator.base_url())
            .retry(opentok_rest::RetryPolicy::none())
            .build()
            .unwrap();
    let err = stranger.list_archives(0, 10, None).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    emulator.stop().await;
}

#[tokio::test]
async fn individual_archives_are_zips_and_never_encrypted() {
    let emulator = builder().start().await.unwrap();
    let client = client(&emulator);
    let (_, cert) = certificate(None, 1024);
    client
        .set_archive_storage(&dead_s3(
            Fallback::Opentok,
            ArchiveEncryption::for_certificate(&cert),
        ))
        .await
        .unwrap();
    let a = client
        .start_archive(&StartArchiveRequest {
            output_mode: Some(OutputMode::Individual),
            ..StartArchiveRequest::new("ind")
        })
        .await
        .unwrap();
    assert_eq!(a.encrypted_password(), None);
    assert_eq!(a.resolution, None);
    client.stop_archive(&a.id).await.unwrap();
    let done = emulator
        .wait_for_status(&a.id, &[ArchiveStatus::Available], WAIT)
        .await
        .unwrap();
    let url = done.url.unwrap();
    assert!(url.contains("/archive.zip?"), "{url}");
    let bytes = common::http()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(bytes.len() as u64, done.size);
    emulator.stop().await;
}

#[tokio::test]
async fn the_binary_serves_a_project_from_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), format!("{API_SECRET}\n")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
            "--api-secret-file",
        ])
        .arg(dir.path().join("secret.txt"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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
    let client = opentok_rest::Client::builder(opentok_rest::auth::Credentials::project(
        API_KEY,
        API_SECRET.into(),
    ))
    .base_url(&base)
    .retry(opentok_rest::RetryPolicy::none())
    .build()
    .unwrap();
    let a = client
        .start_archive(&StartArchiveRequest::new("bin"))
        .await
        .unwrap();
    client.stop_archive(&a.id).await.unwrap();
    let mut status = ArchiveStatus::Stopped;
    // Polled until it changes, for up to a minute (a bound a loaded machine does not reach).
    for _ in 0..1200 {
        status = client.get_archive(&a.id).await.unwrap().status;
        if status != ArchiveStatus::Stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, ArchiveStatus::Available);
    // --data-dir holds the file kept in the cloud.
    assert!(
        dir.path()
            .join("data/cloud")
            .join(API_KEY)
            .join(&a.id)
            .join("archive.mp4")
            .is_file()
    );
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("archive started"), "{logs}");
    assert!(!logs.contains(API_SECRET), "the secret must not be logged");

    // Missing secret: a clear error, exit 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .args(["--api-key", API_KEY])
        .env_remove("OPENTOK_API_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-secret-file"));
}

#[tokio::test]
async fn the_binary_reads_projects_from_a_config_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.secret"), "secret-one\n").unwrap();
    std::fs::write(
        dir.path().join("emulator.toml"),
        "listen = \"127.0.0.1:0\"\ndownload_url_ttl_secs = 30\n\
         [[project]]\napi_key = \"111\"\napi_secret_file = \"one.secret\"\n\
         [[project]]\napi_key = \"222\"\napi_secret_env = \"EMULATOR_TEST_SECRET_TWO\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opentok-emulator"))
        .arg("--config")
        .arg(dir.path().join("emulator.toml"))
        .args(["--api-key", "333"])
        .env("EMULATOR_TEST_SECRET_TWO", "secret-two")
        .env("OPENTOK_API_SECRET", "secret-three")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(4)
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .unwrap()
    .unwrap();
    let base = lines[0]
        .strip_prefix("opentok-emulator listening on ")
        .unwrap()
        .to_owned();
    for (key, secret) in [
        ("111", "secret-one"),
        ("222", "secret-two"),
        ("333", "secret-three"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("project {key}:"))),
            "{lines:?}"
        );
        let client = opentok_rest::Client::builder(opentok_rest::auth::Credentials::project(
            key,
            secret.into(),
        ))
        .base_url(&base)
        .retry(opentok_rest::RetryPolicy::none())
        .build()
        .unwrap();
        assert_eq!(
            client.list_archives(0, 10, None).await.unwrap().count,
            0,
            "{key}"
        );
    }
    child.kill().unwrap();
    let _ = child.wait();
}

/// Returns once the wall clock (which the emulator reads too) is past `unix_ms`.
async fn wait_until_unix_ms(unix_ms: u64) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64
    };
    while now() <= unix_ms {
        tokio::time::sleep(Duration::from_millis(unix_ms + 1 - now().min(unix_ms))).await;
    }
}
