//! The model against response bodies the official SDKs recorded from the service (see fixtures/SOURCES.md).
#![allow(clippy::unwrap_used)]

use opentok_rest::model::{
    Archive, ArchiveEvent, ArchiveList, ArchiveStatus, OutputMode, ProjectId,
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
    // The unknown property is dropped, so writing it back gives the known fields only.
    let written = serde_json::to_value(&archive).unwrap();
    assert!(written.get("notarealproperty").is_none());
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
