//! The model against response bodies the official SDKs recorded from the service (see fixtures/SOURCES.md).
#![allow(clippy::unwrap_used)]

use opentok_rest::model::{
    Archive, ArchiveEvent, ArchiveLayout, ArchiveList, ArchiveStatus, LayoutType, OutputMode,
    ProjectId, StartArchiveRequest, StartOptionsError, StreamMode,
};

/// opentok/Opentok-.NET-SDK `OpenTokTest/Data/ArchiveTests/GetArchiveWithUnknownPropertiesAsync-response.json`.
const DOTNET_UNKNOWN_PROPERTIES: &str =
    include_str!("fixtures/dotnet-get-archive-unknown-properties.json");
/// opentok/OpenTok-Ruby-SDK `spec/cassettes/OpenTok_Archives/should_find_paused_archives_by_id.yml`.
const RUBY_PAUSED: &str = include_str!("fixtures/ruby-get-paused-archive.json");
/// opentok/OpenTok-PHP-SDK `tests/mock/v2/project/APIKEY/archive/get`.
const PHP_LIST: &str = include_str!("fixtures/php-list-archives.json");
/// opentok/OpenTok-PHP-SDK `tests/mock/v2/project/APIKEY/archive/ARCHIVEID/get-expired`.
const PHP_EXPIRED: &str = include_str!("fixtures/php-get-expired-archive.json");
/// opentok/opentok-node `test/archiving-test.js`, `mockStartArchiveResponseBody`.
const NODE_START: &str = include_str!("fixtures/node-start-archive.json");
/// opentok/opentok-node `test/archiving-test.js`, the `listArchives` reply (two of its items).
const NODE_LIST: &str = include_str!("fixtures/node-list-archives-excerpt.json");
/// Vonage/vonage-python-sdk `video/tests/data/archive_with_transcription.json`.
const VONAGE_TRANSCRIPTION: &str =
    include_str!("fixtures/vonage-python-archive-with-transcription.json");
/// Vonage/vonage-python-sdk `video/tests/data/list_archives.json`.
const VONAGE_LIST: &str = include_str!("fixtures/vonage-python-list-archives.json");

/// Every field of the Vonage SDK's recordings is read into its typed place, and each body reads back
/// equal, field for field, after writing it out.
#[test]
fn vonage_application_bodies_round_trip_with_every_field() {
    let archive: Archive = serde_json::from_str(VONAGE_TRANSCRIPTION).unwrap();
    assert_eq!(
        archive.application_id,
        Some(ProjectId::Text("test_application_id".into()))
    );
    assert_eq!(archive.has_transcription, Some(true));
    assert_eq!(archive.stream_mode, Some(StreamMode::Auto));
    assert_eq!(archive.updated_at, Some(1727870634977));
    assert_eq!(archive.sha256sum.as_deref(), Some("abc123def456"));
    assert_eq!(archive.multi_archive_tag.as_deref(), Some(""));
    assert_eq!(archive.event.as_deref(), Some("archive"));
    assert_eq!(archive.resolution.as_deref(), Some("1280x720"));
    let transcription = archive.transcription.clone().unwrap();
    assert_eq!(transcription.status.as_deref(), Some("completed"));
    assert_eq!(
        transcription.url.as_deref(),
        Some("https://example.com/transcription.json")
    );
    assert_eq!(
        transcription.reason.as_deref(),
        Some("transcription completed successfully")
    );
    assert_eq!(
        transcription.primary_language_code.as_deref(),
        Some("en-US")
    );
    assert_eq!(transcription.has_summary, Some(true));
    assert!(archive.extra.is_empty() && transcription.extra.is_empty());
    let as_sent: serde_json::Value = serde_json::from_str(VONAGE_TRANSCRIPTION).unwrap();
    assert_eq!(serde_json::to_value(&archive).unwrap(), as_sent);

    let list: ArchiveList = serde_json::from_str(VONAGE_LIST).unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].stream_mode, Some(StreamMode::Manual));
    assert_eq!(
        list.items[0].multi_archive_tag.as_deref(),
        Some("my-multi-archive")
    );
    assert_eq!(list.items[1].sha256sum.as_deref(), Some("test_sha256_sum"));
    // `"url": null` is read as no URL, so that one field is not written back; everything else is.
    let mut as_sent: serde_json::Value = serde_json::from_str(VONAGE_LIST).unwrap();
    as_sent["items"][0].as_object_mut().unwrap().remove("url");
    assert_eq!(serde_json::to_value(&list).unwrap(), as_sent);
}

/// Start options as the Vonage SDKs send them, and the checks the service makes on them.
#[test]
fn start_options_carry_transcription_and_layout_and_refuse_bitrate_with_qp() {
    let body = serde_json::json!({
        "sessionId": "2_MX4xMDB-fg", "hasTranscription": true, "outputMode": "individual",
        "transcriptionProperties": {"primaryLanguageCode": "fr-FR", "hasSummary": true},
        "layout": {"type": "bestFit", "screenshareType": "pip"}, "maxBitrate": 2000000
    });
    let request: StartArchiveRequest = serde_json::from_value(body.clone()).unwrap();
    let properties = request.transcription_properties.clone().unwrap();
    assert_eq!(properties.primary_language_code.as_deref(), Some("fr-FR"));
    assert_eq!(properties.has_summary, Some(true));
    assert_eq!(
        request.layout.as_ref().unwrap().screenshare_type,
        Some(LayoutType::Pip)
    );
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
    assert_eq!(request.check(), Ok(()));
    let both = StartArchiveRequest {
        quantization_parameter: Some(25),
        ..request.clone()
    };
    assert_eq!(both.check(), Err(StartOptionsError::BitrateAndQuantization));
    let low = StartArchiveRequest {
        max_bitrate: Some(99_999),
        ..request.clone()
    };
    assert_eq!(
        low.check(),
        Err(StartOptionsError::BitrateOutOfRange(99_999))
    );
    let custom = StartArchiveRequest {
        layout: Some(ArchiveLayout {
            layout_type: LayoutType::Custom,
            stylesheet: None,
            screenshare_type: None,
        }),
        ..request
    };
    assert!(matches!(custom.check(), Err(StartOptionsError::Layout(_))));
}

#[test]
fn unknown_properties_and_null_url_are_tolerated() {
    let archive: Archive = serde_json::from_str(DOTNET_UNKNOWN_PROPERTIES).unwrap();
    assert_eq!(archive.id, "$archiveId$");
    assert_eq!(archive.status, ArchiveStatus::Expired);
    assert_eq!(archive.url, None);
    assert_eq!(archive.name.as_deref(), Some(""));
    assert_eq!(archive.partner_id, Some(ProjectId::Number(123456)));
    assert_eq!(
        (archive.created_at, archive.duration, archive.size),
        (1395187836000, 62, 8347554)
    );
    // The unknown property is kept (issue 13), so writing it back gives the body as it came.
    let written = serde_json::to_value(&archive).unwrap();
    assert_eq!(written["notarealproperty"], "not a real value");
}

#[test]
fn paused_and_expired_archives() {
    let paused: Archive = serde_json::from_str(RUBY_PAUSED).unwrap();
    assert_eq!(paused.status, ArchiveStatus::Paused);
    assert_eq!(paused.session_id, "SESSIONID");
    let expired: Archive = serde_json::from_str(PHP_EXPIRED).unwrap();
    assert_eq!(expired.status, ArchiveStatus::Expired);
    assert_eq!(expired.project().unwrap().to_string(), "854511");
}

#[test]
fn start_answer_with_empty_password_and_string_project_id() {
    let archive: Archive = serde_json::from_str(NODE_START).unwrap();
    assert_eq!(archive.status, ArchiveStatus::Started);
    assert_eq!(archive.password.as_deref(), Some(""));
    assert_eq!(
        archive.encrypted_password(),
        None,
        "an empty password means not encrypted"
    );
    assert_eq!(archive.sha256sum.as_deref(), Some(""));
    assert_eq!(archive.project_id, Some(ProjectId::Text("APIKEY".into())));
    assert_eq!(archive.output_mode, Some(OutputMode::Composed));
    assert_eq!(
        (archive.has_audio, archive.has_video),
        (Some(true), Some(true))
    );
    assert_eq!(archive.updated_at, Some(1480749999476));
    // Everything known survives a round trip; the service's null url comes back as absent.
    let again: Archive = serde_json::from_str(&serde_json::to_string(&archive).unwrap()).unwrap();
    assert_eq!(again, archive);
}

#[test]
fn list_pages() {
    let php: ArchiveList = serde_json::from_str(PHP_LIST).unwrap();
    assert_eq!(php.count, 2);
    assert_eq!(php.items.len(), 2);
    assert_eq!(php.items[1].name.as_deref(), Some("showtime"));
    assert!(
        php.items
            .iter()
            .all(|a| a.status == ArchiveStatus::Available && a.url.is_some())
    );
    let node: ArchiveList = serde_json::from_str(NODE_LIST).unwrap();
    assert_eq!(node.count, 149, "count is the total, not the page length");
    assert_eq!(node.items.len(), 2);
    assert_eq!(node.items[1].name, None, "\"name\": null");
}

#[test]
fn a_recorded_archive_as_a_callback_round_trips() {
    let mut value: serde_json::Value = serde_json::from_str(NODE_START).unwrap();
    value["event"] = "archive".into();
    value["status"] = "uploaded".into();
    value["password"] = "ZTQyYy4uLmQyMw==".into();
    value["url"] = serde_json::Value::Null;
    let event: ArchiveEvent = serde_json::from_value(value).unwrap();
    assert_eq!(
        event.archive().encrypted_password(),
        Some("ZTQyYy4uLmQyMw==")
    );
    let written = serde_json::to_string(&event).unwrap();
    assert_eq!(
        serde_json::from_str::<ArchiveEvent>(&written).unwrap(),
        event
    );
}
