//! Unit tests of the model: the service's spellings, tolerant reading, exact writing, secrets kept out of `Debug`.

use super::*;
use serde_json::json;

fn s3_config() -> S3Config {
    S3Config {
        bucket: "example.com.archive-bucket".into(),
        secret_key: "BvKwyshsmEATx5mngeloHwgKrYMbP+".into(),
        access_key: "AWFS7BAO536E6MXA".into(),
        endpoint: None,
        sse: None,
    }
}

#[test]
fn statuses_read_and_write_as_the_service_spells_them() {
    for (text, status) in [
        ("started", ArchiveStatus::Started),
        ("paused", ArchiveStatus::Paused),
        ("stopped", ArchiveStatus::Stopped),
        ("uploaded", ArchiveStatus::Uploaded),
        ("available", ArchiveStatus::Available),
        ("expired", ArchiveStatus::Expired),
        ("failed", ArchiveStatus::Failed),
        ("deleted", ArchiveStatus::Deleted),
    ] {
        assert_eq!(
            serde_json::from_value::<ArchiveStatus>(json!(text)).unwrap(),
            status
        );
        assert_eq!(serde_json::to_value(&status).unwrap(), json!(text));
    }
    let odd: ArchiveStatus = serde_json::from_value(json!("Uploaded")).unwrap();
    assert_eq!(odd, ArchiveStatus::Unknown("Uploaded".into()));
    assert_eq!(serde_json::to_value(&odd).unwrap(), json!("Uploaded"));
    assert!(serde_json::from_value::<ArchiveStatus>(json!(3)).is_err());
}

#[test]
fn minimal_and_null_filled_archives_parse() {
    let minimal: Archive = serde_json::from_value(json!({"id": "a", "status": "started"})).unwrap();
    assert_eq!(minimal.session_id, "");
    assert_eq!(minimal.duration, 0);
    assert!(minimal.streams.is_empty());
    let nulls: Archive = serde_json::from_value(json!({
        "id": "a", "status": "started", "name": null, "reason": null, "sessionId": null, "createdAt": null,
        "duration": null, "size": null, "url": null, "password": null, "streams": null, "partnerId": null
    }))
    .unwrap();
    assert_eq!(nulls.name, None);
    assert_eq!(nulls.size, 0);
    assert_eq!(nulls.project(), None);
    assert!(
        serde_json::from_value::<Archive>(json!({"status": "started"})).is_err(),
        "id is required"
    );
    assert!(
        serde_json::from_value::<Archive>(json!({"id": "a"})).is_err(),
        "status is required"
    );
    assert!(
        serde_json::from_value::<Archive>(json!({"id": "a", "status": "started", "size": -1}))
            .is_err()
    );
}

#[test]
fn archive_round_trips_with_every_field() {
    let body = json!({
        "id": "b40ef09b-3811-4726-b508-e41a0f96c68f", "status": "uploaded", "name": "Foo", "reason": "",
        "sessionId": "2_MX4", "partnerId": 123456, "projectId": "123456", "applicationId": "0f3c-app",
        "createdAt": 1384221380000i64, "updatedAt": 1384221390000i64, "duration": 328, "size": 18023312,
        "hasAudio": true, "hasVideo": false, "hasTranscription": false, "outputMode": "composed",
        "streamMode": "manual", "resolution": "1280x720", "url": "https://example/archive.ts",
        "password": "ZTQy", "sha256sum": "ab12", "multiArchiveTag": "tag", "maxBitrate": 2000000,
        "quantizationParameter": 25, "event": "archive",
        "streams": [{"streamId": "s1", "hasAudio": true, "hasVideo": true}],
        "transcription": {"status": "requested", "extra": [1, 2]}
    });
    let archive: Archive = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(archive.project(), Some(&ProjectId::Text("123456".into())));
    assert_eq!(archive.stream_mode, Some(StreamMode::Manual));
    assert_eq!(serde_json::to_value(&archive).unwrap(), body);
}

#[test]
fn archive_event_normalizes_and_refuses_other_events() {
    let without: ArchiveEvent =
        serde_json::from_value(json!({"id": "a", "status": "failed"})).unwrap();
    assert_eq!(without.archive().event.as_deref(), Some("archive"));
    let value = serde_json::to_value(&without).unwrap();
    assert_eq!(value["event"], json!("archive"));
    assert_eq!(
        serde_json::from_value::<ArchiveEvent>(value).unwrap(),
        without
    );
    let err = serde_json::from_value::<ArchiveEvent>(
        json!({"id": "a", "status": "x", "event": "streamCreated"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("streamCreated"), "{err}");
}

#[test]
fn s3_target_serializes_exactly_as_documented() {
    let target = StorageTarget::s3(
        s3_config(),
        Fallback::None,
        ArchiveEncryption::Certificate("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0...".into()),
    );
    assert_eq!(
        serde_json::to_string(&target).unwrap(),
        concat!(
            r#"{"type":"s3","config":{"bucket":"example.com.archive-bucket","secretKey":"BvKwyshsmEATx5mngeloHwgKrYMbP+","#,
            r#""accessKey":"AWFS7BAO536E6MXA"},"fallback":"none","certificate":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0..."}"#
        )
    );
    let with_sse = StorageTarget {
        destination: StorageDestination::S3(S3Config {
            endpoint: Some("https://s3.cloudianhyperstore.com".into()),
            sse: Some(ServerSideEncryption::S3),
            ..s3_config()
        }),
        fallback: Some(Fallback::Vonage),
        certificate: None,
    };
    assert_eq!(
        serde_json::to_value(&with_sse).unwrap(),
        json!({"type": "s3", "config": {"bucket": "example.com.archive-bucket",
            "secretKey": "BvKwyshsmEATx5mngeloHwgKrYMbP+", "accessKey": "AWFS7BAO536E6MXA",
            "endpoint": "https://s3.cloudianhyperstore.com", "sse": "s3"}, "fallback": "vonage"})
    );
}

#[test]
fn azure_target_and_disabling_encryption() {
    let target = StorageTarget::azure(
        AzureConfig {
            account_name: "myAccountname".into(),
            account_key: "myAccountKey".into(),
            container: "containerName".into(),
            domain: Some("core.chinacloudapi.cn".into()),
        },
        Fallback::Opentok,
        ArchiveEncryption::Certificate("LS0t".into()),
    );
    let off = target.without_encryption();
    assert_eq!(
        serde_json::to_string(&off).unwrap(),
        concat!(
            r#"{"type":"azure","config":{"accountName":"myAccountname","accountKey":"myAccountKey","#,
            r#""container":"containerName","domain":"core.chinacloudapi.cn"},"fallback":"opentok","certificate":null}"#
        )
    );
    assert_eq!(
        target.certificate,
        Some(ArchiveEncryption::Certificate("LS0t".into())),
        "original untouched"
    );
}

#[test]
fn storage_targets_read_back_including_null_and_missing_certificate() {
    // The Azure "disable" body from the service's guide: no fallback, explicit null certificate.
    let documented = r#"{
        "type": "azure",
        "config": {"accountName":"myAccountname", "accountKey":"myAccountKey", "container": "containerName"},
        "certificate" : null
    }"#;
    let target: StorageTarget = serde_json::from_str(documented).unwrap();
    assert_eq!(target.certificate, Some(ArchiveEncryption::Disabled));
    assert_eq!(target.fallback, None);
    let sse_only: StorageTarget =
        serde_json::from_value(json!({"type": "s3", "config": {"bucket": "b",
        "secretKey": "s", "accessKey": "a", "sse": "s3"}, "fallback": "none"}))
        .unwrap();
    assert_eq!(sse_only.certificate, None);
    for target in [target, sse_only] {
        let again: StorageTarget =
            serde_json::from_str(&serde_json::to_string(&target).unwrap()).unwrap();
        assert_eq!(again, target);
    }
    assert!(serde_json::from_value::<StorageTarget>(json!({"type": "gcs", "config": {}})).is_err());
    assert!(
        serde_json::from_value::<StorageTarget>(json!({"type": "s3", "config": {"bucket": "b",
        "secretKey": "s", "accessKey": "a"}, "fallback": "sometimes"}))
        .is_err()
    );
}

#[test]
fn secrets_never_show_in_debug() {
    let s3 = format!(
        "{:?}",
        StorageTarget::s3(s3_config(), Fallback::None, ArchiveEncryption::Disabled)
    );
    assert!(!s3.contains("BvKwyshsmEATx5mngeloHwgKrYMbP+"), "{s3}");
    assert!(
        s3.contains("AWFS7BAO536E6MXA"),
        "the access key id is not a secret: {s3}"
    );
    let azure = AzureConfig {
        account_name: "acct".into(),
        account_key: "c2VjcmV0LWFjY291bnQta2V5".into(),
        container: "c".into(),
        domain: None,
    };
    assert!(!format!("{azure:?}").contains("c2VjcmV0LWFjY291bnQta2V5"));
}

#[test]
fn certificate_acceptance_is_checked_with_archive_core() {
    let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
    let cert =
        archive_core::cert::Certificate::generate_self_signed(&key, "CN=opentok-rest test", 2)
            .unwrap();
    ArchiveEncryption::for_certificate(&cert)
        .check_service_acceptance()
        .unwrap();
    ArchiveEncryption::Certificate(cert.to_json_escaped())
        .check_service_acceptance()
        .unwrap();
    ArchiveEncryption::Disabled
        .check_service_acceptance()
        .unwrap();
    assert!(
        ArchiveEncryption::Certificate("not a certificate".into())
            .check_service_acceptance()
            .is_err()
    );
}

#[test]
fn start_request_omits_what_is_not_set() {
    assert_eq!(
        serde_json::to_value(StartArchiveRequest::new("S")).unwrap(),
        json!({"sessionId": "S"})
    );
    let full = StartArchiveRequest {
        session_id: "S".into(),
        name: Some("n".into()),
        has_audio: Some(true),
        has_video: Some(false),
        output_mode: Some(OutputMode::Individual),
        resolution: Some("1920x1080".into()),
        layout: Some(ArchiveLayout {
            layout_type: LayoutType::BestFit,
            stylesheet: None,
            screenshare_type: Some(LayoutType::VerticalPresentation),
        }),
        stream_mode: Some(StreamMode::Auto),
        multi_archive_tag: Some("t".into()),
        max_bitrate: Some(1_000_000),
        quantization_parameter: None,
        has_transcription: Some(false),
        transcription_properties: None,
    };
    assert_eq!(
        serde_json::to_value(&full).unwrap(),
        json!({"sessionId": "S", "name": "n", "hasAudio": true, "hasVideo": false, "outputMode": "individual",
            "resolution": "1920x1080", "layout": {"type": "bestFit", "screenshareType": "verticalPresentation"},
            "streamMode": "auto", "multiArchiveTag": "t", "maxBitrate": 1000000, "hasTranscription": false})
    );
    assert_eq!(
        serde_json::from_value::<StartArchiveRequest>(serde_json::to_value(&full).unwrap())
            .unwrap(),
        full
    );
}

#[test]
fn error_bodies_parse_with_any_subset_of_fields() {
    let full: ServiceErrorBody = serde_json::from_str(
        r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#,
    )
    .unwrap();
    assert_eq!(full.code, Some(-1));
    assert_eq!(full.message.as_deref(), Some("Issuer not found"));
    let only_message: ServiceErrorBody =
        serde_json::from_str(r#"{ "message" : "Some error." }"#).unwrap();
    assert_eq!(only_message.code, None);
}
