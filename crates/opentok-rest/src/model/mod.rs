//! The service's JSON: what it answers about archives, what it takes to set the storage target and to start
//! an archive, the archive status callback, and its error bodies.
//!
//! Everything here is plain serde, sync, and usable without the HTTP client (build the crate with
//! `default-features = false`). Reading is tolerant, because the service and its recorded responses are:
//! unknown fields are kept (in `extra`, and written back), `null` is accepted wherever a value may be missing, the project id may be a
//! number or a string, and status or mode values this crate does not know are kept as
//! [`ArchiveStatus::Unknown`] (etc.) instead of failing the whole body.
//!
//! ```
//! use opentok_rest::model::{Archive, ArchiveStatus};
//!
//! // A body as the service sends it (recorded in the official SDKs' test suites).
//! let archive: Archive = serde_json::from_str(r#"{
//!     "createdAt": 1395187836000, "duration": 62, "id": "f6e7ee58-d6cf-4a59-896b-6d56b158ec71",
//!     "name": "", "partnerId": 123456, "reason": "", "sessionId": "SESSIONID", "size": 8347554,
//!     "status": "paused", "url": null, "notarealproperty": "not a real value"
//! }"#).unwrap();
//! assert_eq!(archive.status, ArchiveStatus::Paused);
//! assert_eq!(archive.url, None);
//! assert_eq!(archive.project().map(|p| p.to_string()).as_deref(), Some("123456"));
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What may be shown of an archive's (presigned) `url`: see [`crate::redact`].
pub use crate::redact::{RedactedUrl, redact_url};

/// Defines a string-valued enum of the service that keeps values it does not know.
macro_rules! open_string_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, kept exactly as the service wrote it.
            Unknown(String),
        }

        impl $name {
            /// The value as the service writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::from(text.as_str()))
            }
        }
    };
}

open_string_enum! {
    /// Where an archive is in its life, as the service reports it.
    ///
    /// ```
    /// use opentok_rest::model::ArchiveStatus;
    /// assert_eq!(ArchiveStatus::from("uploaded"), ArchiveStatus::Uploaded);
    /// assert_eq!(ArchiveStatus::from("transcoding"), ArchiveStatus::Unknown("transcoding".into()));
    /// assert_eq!(ArchiveStatus::Unknown("transcoding".into()).to_string(), "transcoding");
    /// ```
    ArchiveStatus {
        /// Recording.
        Started => "started",
        /// Recording, but no client is publishing (the archive resumes when one does).
        Paused => "paused",
        /// Recording has ended; the file is being processed or uploaded.
        Stopped => "stopped",
        /// The file is in the project's own storage target (S3 or Azure).
        Uploaded => "uploaded",
        /// The file is in the service's cloud and can be downloaded from `url`.
        Available => "available",
        /// The file was in the service's cloud and has been removed after its retention time.
        Expired => "expired",
        /// Recording or upload failed (see `reason`).
        Failed => "failed",
        /// Deleted through the REST API.
        Deleted => "deleted",
    }
}

open_string_enum! {
    /// Whether an archive is one composed file or one file per stream.
    OutputMode {
        /// All streams composed into one file (the only mode that can be encrypted).
        Composed => "composed",
        /// One file per stream, delivered as a ZIP.
        Individual => "individual",
    }
}

open_string_enum! {
    /// Whether the service adds every stream of the session to the archive, or the caller chooses them.
    StreamMode {
        /// Every stream published to the session is recorded.
        Auto => "auto",
        /// Streams are added and removed explicitly.
        Manual => "manual",
    }
}

open_string_enum! {
    /// Predefined layouts of a composed archive.
    LayoutType {
        /// Tiles of equal size.
        BestFit => "bestFit",
        /// A custom CSS `stylesheet`.
        Custom => "custom",
        /// One large stream above a row of small ones.
        HorizontalPresentation => "horizontalPresentation",
        /// Picture in picture.
        Pip => "pip",
        /// One large stream beside a column of small ones.
        VerticalPresentation => "verticalPresentation",
    }
}

/// A project or application identifier as the service writes it in a body: the API key is a number in most
/// responses and a string in some (`"partnerId": 123456` and `"partnerId": "APIKEY"` both occur); a Vonage
/// application id is a UUID string. The form read is the form written back.
///
/// ```
/// use opentok_rest::model::ProjectId;
/// let numeric: ProjectId = serde_json::from_str("47203").unwrap();
/// let text: ProjectId = serde_json::from_str("\"47203\"").unwrap();
/// assert_eq!(numeric.to_string(), text.to_string());
/// assert_eq!(serde_json::to_string(&numeric).unwrap(), "47203");
/// assert_eq!(serde_json::to_string(&text).unwrap(), "\"47203\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProjectId {
    /// A numeric API key.
    Number(u64),
    /// An API key or application id written as a string.
    Text(String),
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// One stream of an archive (in `streams`, present for archives in manual stream mode and in newer bodies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStream {
    /// The stream's id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stream_id: String,
    /// Whether the stream's audio is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_audio: Option<bool>,
    /// Whether the stream's video is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_video: Option<bool>,
}

/// An archive as the service describes it in answers to the archive calls and in status callbacks.
///
/// Fields the service may leave out or send as `null` are `Option`s, except for a few counters and the
/// session id where a missing value and zero (or empty) mean the same thing. Unknown fields are kept in
/// [`Archive::extra`].
/// Serializing writes the fields that are set, in the service's camelCase, so a parsed body reads back equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    /// The archive's id (a UUID).
    pub id: String,
    /// Where the archive is in its life.
    pub status: ArchiveStatus,
    /// The name given when the archive was started (`null` or `""` when none was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why the archive stopped or failed (for example `"user initiated"`, `"session ended"`); often `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The session that was recorded (`""` if the body had none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub session_id: String,
    /// The project's API key, under its old name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<ProjectId>,
    /// The project's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    /// The Vonage application id, for applications using Vonage auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ProjectId>,
    /// When recording started, in milliseconds since the Unix epoch (0 if the body had none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: i64,
    /// When the archive last changed, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// Length in seconds (0 while recording; always 0 for encrypted archives, a known issue of the service).
    #[serde(default, deserialize_with = "null_as_default")]
    pub duration: u64,
    /// File size in bytes (0 until the archive is stopped).
    #[serde(default, deserialize_with = "null_as_default")]
    pub size: u64,
    /// Whether audio is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_audio: Option<bool>,
    /// Whether video is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_video: Option<bool>,
    /// Whether a transcription is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_transcription: Option<bool>,
    /// Composed or individual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<OutputMode>,
    /// Automatic or manual stream selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode: Option<StreamMode>,
    /// Video resolution of a composed archive, such as `"640x480"` or `"1920x1080"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Download URL while the file is `available` in the service's cloud; `null` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For encrypted archives: base64 of the archive key and IV wrapped with RSA-OAEP under the project's
    /// certificate. `""` or absent for archives that are not encrypted; see [`Archive::encrypted_password`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// SHA-256 of the archive file when the service reports it (often `""`; base64 in recorded Vonage
    /// payloads, hex in some older ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256sum: Option<String>,
    /// The tag that lets several archives of one session run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_archive_tag: Option<String>,
    /// Maximum video bitrate requested, bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u64>,
    /// Video quantization parameter requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_parameter: Option<u32>,
    /// `"archive"` in status callbacks; absent in REST answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The archive's streams, when the service lists them.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub streams: Vec<ArchiveStream>,
    /// The transcription of the archive's audio, when one was asked for (`hasTranscription`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<Transcription>,
    /// Fields this crate does not know, kept as the service wrote them (and written back).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `transcription` of an archive: where the transcription of its audio is, and how it went.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcription {
    /// Its state, such as `"requested"`, `"started"`, `"uploaded"` or `"failed"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where the transcription file can be downloaded, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why it is in its state (for example why it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The language transcribed, such as `"en-US"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_language_code: Option<String>,
    /// Whether a summary is made too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_summary: Option<bool>,
    /// Fields this crate does not know, kept as the service wrote them.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `transcriptionProperties` of a start request (with `hasTranscription: true`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptionProperties {
    /// The language to transcribe, such as `"en-US"` (the service's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_language_code: Option<String>,
    /// Also make a summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_summary: Option<bool>,
}

impl Archive {
    /// The wrapped archive key, if this archive is encrypted: `password` when it is present and not empty.
    ///
    /// ```
    /// # use opentok_rest::model::Archive;
    /// let plain: Archive = serde_json::from_str(r#"{"id":"a","status":"started","password":""}"#).unwrap();
    /// assert_eq!(plain.encrypted_password(), None);
    /// let encrypted: Archive = serde_json::from_str(r#"{"id":"a","status":"uploaded","password":"ZTQy"}"#).unwrap();
    /// assert_eq!(encrypted.encrypted_password(), Some("ZTQy"));
    /// ```
    pub fn encrypted_password(&self) -> Option<&str> {
        self.password.as_deref().filter(|p| !p.trim().is_empty())
    }

    /// The project the archive belongs to: `projectId`, else `partnerId`, else `applicationId`.
    pub fn project(&self) -> Option<&ProjectId> {
        self.project_id
            .as_ref()
            .or(self.partner_id.as_ref())
            .or(self.application_id.as_ref())
    }
}

/// One page of `GET /v2/project/{id}/archive`: the total number of archives that match, and this page's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveList {
    /// How many archives match in total (not the length of `items`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub count: u64,
    /// This page, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<Archive>,
}

/// The value of `event` in an archive status callback.
pub const ARCHIVE_EVENT: &str = "archive";

/// The body of an archive status callback: the archive object with `"event": "archive"`.
///
/// Reading accepts a body without `event` (older callbacks) and refuses one whose `event` is something else
/// (a session-monitoring event sent to the wrong URL, say). Either way the event read back has `event` set,
/// and writing always includes it, so an event survives a round trip through JSON unchanged.
///
/// ```
/// use opentok_rest::model::{ArchiveEvent, ArchiveStatus};
///
/// // The callback body from the service's encryption guide.
/// let body = r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","createdAt":1384221380000,
///   "duration":328,"name":"Foo","partnerId":123456,"reason":"",
///   "sessionId":"2_MX40NzIwMzJ-flR1ZSBPERUIDIwMTN-MC45NDQ2MzE2NH4","size":18023312,
///   "status":"uploaded","password":"e42c...d23"}"#;
/// let event: ArchiveEvent = serde_json::from_str(body).unwrap();
/// assert_eq!(event.archive().status, ArchiveStatus::Uploaded);
/// let again: ArchiveEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
/// assert_eq!(again, event);
/// assert!(serde_json::from_str::<ArchiveEvent>(r#"{"id":"x","status":"started","event":"broadcast"}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Archive", into = "Archive")]
pub struct ArchiveEvent {
    archive: Archive,
}

impl ArchiveEvent {
    /// The callback the service would send for `archive` (sets `event` to `"archive"`).
    pub fn new(mut archive: Archive) -> Self {
        archive.event = Some(ARCHIVE_EVENT.to_owned());
        Self { archive }
    }

    /// The archive the event is about.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The archive, taking it out of the event.
    pub fn into_archive(self) -> Archive {
        self.archive
    }
}

/// Why a JSON object is not an archive status callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an archive status callback: its \"event\" is {0:?}, expected \"archive\"")]
pub struct NotAnArchiveEvent(pub String);

impl TryFrom<Archive> for ArchiveEvent {
    type Error = NotAnArchiveEvent;

    fn try_from(archive: Archive) -> Result<Self, Self::Error> {
        match archive.event.as_deref() {
            None | Some(ARCHIVE_EVENT) => Ok(Self::new(archive)),
            Some(other) => Err(NotAnArchiveEvent(other.to_owned())),
        }
    }
}

impl From<ArchiveEvent> for Archive {
    fn from(event: ArchiveEvent) -> Self {
        event.archive
    }
}

/// The layout of a composed archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveLayout {
    /// Which layout.
    #[serde(rename = "type")]
    pub layout_type: LayoutType,
    /// The CSS for [`LayoutType::Custom`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylesheet: Option<String>,
    /// The layout to switch to while a screen is shared (with [`LayoutType::BestFit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshare_type: Option<LayoutType>,
}

/// The body of `POST /v2/project/{id}/archive`: everything but the session id is optional and left out of
/// the JSON when not set, so the service's defaults apply.
///
/// ```
/// use opentok_rest::model::{OutputMode, StartArchiveRequest};
///
/// let request = StartArchiveRequest {
///     name: Some("daily standup".into()),
///     output_mode: Some(OutputMode::Composed),
///     ..StartArchiveRequest::new("2_MX4xMDB-fg")
/// };
/// assert_eq!(
///     serde_json::to_string(&request).unwrap(),
///     r#"{"sessionId":"2_MX4xMDB-fg","name":"daily standup","outputMode":"composed"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartArchiveRequest {
    /// The session to record.
    pub session_id: String,
    /// A name for the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Record audio (the service's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_audio: Option<bool>,
    /// Record video (the service's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_video: Option<bool>,
    /// Composed (the default, and the only mode that can be encrypted) or individual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<OutputMode>,
    /// Resolution of a composed archive, such as `"1280x720"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Layout of a composed archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<ArchiveLayout>,
    /// Automatic (the default) or manual stream selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode: Option<StreamMode>,
    /// Lets several archives of the same session run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_archive_tag: Option<String>,
    /// Maximum video bitrate, bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u64>,
    /// Video quantization parameter (quality instead of bitrate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_parameter: Option<u32>,
    /// Also make a transcription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_transcription: Option<bool>,
    /// How to transcribe (with `has_transcription`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_properties: Option<TranscriptionProperties>,
}

/// Why start options cannot be sent as they are (the service would answer 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartOptionsError {
    /// `maxBitrate` and `quantizationParameter` both set: the service takes one or the other.
    #[error("maxBitrate and quantizationParameter cannot both be set: give one or the other")]
    BitrateAndQuantization,
    /// `maxBitrate` outside the service's range.
    #[error("maxBitrate {0} is out of range: it must be from 100000 to 6000000 bits per second")]
    BitrateOutOfRange(u64),
    /// `quantizationParameter` outside the service's range.
    #[error("quantizationParameter {0} is out of range: it must be from 15 to 40")]
    QuantizationOutOfRange(u32),
    /// A layout that the service refuses (see [`ArchiveLayout::check`]).
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The service's range of `maxBitrate`, bits per second.
pub const MAX_BITRATE_RANGE: std::ops::RangeInclusive<u64> = 100_000..=6_000_000;
/// The service's range of `quantizationParameter`.
pub const QUANTIZATION_RANGE: std::ops::RangeInclusive<u32> = 15..=40;

/// Why a layout cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `type: custom` without a `stylesheet`.
    #[error("a custom layout needs a stylesheet")]
    CustomWithoutStylesheet,
    /// A `stylesheet` with another type than `custom`.
    #[error("a stylesheet can only be given with the custom layout type, not {0}")]
    StylesheetWithoutCustom(String),
    /// `screenshareType` with another type than `bestFit`.
    #[error("screenshareType can only be given with the bestFit layout type, not {0}")]
    ScreenshareWithoutBestFit(String),
}

impl ArchiveLayout {
    /// Checks the combination the service accepts: a stylesheet exactly for `custom`, a screenshare type
    /// only with `bestFit`.
    ///
    /// ```
    /// use opentok_rest::model::{ArchiveLayout, LayoutType};
    /// let layout = ArchiveLayout { layout_type: LayoutType::Custom, stylesheet: None, screenshare_type: None };
    /// assert!(layout.check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), LayoutError> {
        match (&self.layout_type, &self.stylesheet) {
            (LayoutType::Custom, None) => return Err(LayoutError::CustomWithoutStylesheet),
            (LayoutType::Custom, Some(_)) | (_, None) => {}
            (other, Some(_)) => {
                return Err(LayoutError::StylesheetWithoutCustom(other.to_string()));
            }
        }
        if self.screenshare_type.is_some() && self.layout_type != LayoutType::BestFit {
            return Err(LayoutError::ScreenshareWithoutBestFit(
                self.layout_type.to_string(),
            ));
        }
        Ok(())
    }
}

/// The body of `PATCH /v2/project/{id}/archive/{archiveId}/streams`: add a stream to an archive in manual
/// stream mode (optionally without its audio or video), or remove one.
///
/// ```
/// use opentok_rest::model::StreamChange;
/// let add = StreamChange::Add { stream_id: "s1".into(), has_audio: Some(true), has_video: Some(false) };
/// assert_eq!(serde_json::to_string(&add).unwrap(), r#"{"addStream":"s1","hasAudio":true,"hasVideo":false}"#);
/// let remove: StreamChange = serde_json::from_str(r#"{"removeStream":"s1"}"#).unwrap();
/// assert_eq!(remove, StreamChange::Remove { stream_id: "s1".into() });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StreamChange {
    /// `{"addStream": id, "hasAudio": .., "hasVideo": ..}`.
    Add {
        /// The stream to add.
        #[serde(rename = "addStream")]
        stream_id: String,
        /// Record its audio (the service's default: true).
        #[serde(rename = "hasAudio", default, skip_serializing_if = "Option::is_none")]
        has_audio: Option<bool>,
        /// Record its video (the service's default: true).
        #[serde(rename = "hasVideo", default, skip_serializing_if = "Option::is_none")]
        has_video: Option<bool>,
    },
    /// `{"removeStream": id}`.
    Remove {
        /// The stream to remove.
        #[serde(rename = "removeStream")]
        stream_id: String,
    },
}

impl StartArchiveRequest {
    /// A request to record `session_id` with the service's defaults.
    pub fn new(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            ..Self::default()
        }
    }

    /// Checks what the service would refuse with a 400: `maxBitrate` and `quantizationParameter` together
    /// or out of range, and a layout it does not accept.
    ///
    /// ```
    /// use opentok_rest::model::{StartArchiveRequest, StartOptionsError};
    /// let both = StartArchiveRequest {
    ///     max_bitrate: Some(2_000_000),
    ///     quantization_parameter: Some(25),
    ///     ..StartArchiveRequest::new("2_MX4xMDB-fg")
    /// };
    /// assert_eq!(both.check(), Err(StartOptionsError::BitrateAndQuantization));
    /// ```
    pub fn check(&self) -> Result<(), StartOptionsError> {
        if self.max_bitrate.is_some() && self.quantization_parameter.is_some() {
            return Err(StartOptionsError::BitrateAndQuantization);
        }
        if let Some(rate) = self.max_bitrate.filter(|r| !MAX_BITRATE_RANGE.contains(r)) {
            return Err(StartOptionsError::BitrateOutOfRange(rate));
        }
        if let Some(qp) = self
            .quantization_parameter
            .filter(|q| !QUANTIZATION_RANGE.contains(q))
        {
            return Err(StartOptionsError::QuantizationOutOfRange(qp));
        }
        if let Some(layout) = &self.layout {
            layout.check()?;
        }
        Ok(())
    }
}
mod storage;

pub use storage::{
    ArchiveEncryption, AzureConfig, Fallback, S3Config, ServerSideEncryption, ServiceErrorBody,
    StorageDestination, StorageTarget,
};

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
