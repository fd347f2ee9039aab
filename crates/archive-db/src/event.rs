//! What reaches the ledger: a raw body (a callback, or an archive listed by sync), where it came from, and
//! what it is.

use opentok_rest::archive_id::validate_archive_id;
use opentok_rest::model::{ARCHIVE_EVENT, Archive, redact_url};
use opentok_rest::redact::redact_archive_json;
use time::OffsetDateTime;

use crate::BodyError;

/// How an event reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// POSTed to the callback receiver.
    Callback,
    /// Read from the REST API's archive list by `archivectl sync`.
    Sync,
}

impl EventSource {
    /// The name stored in the ledger: `callback` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Callback => "callback",
            Self::Sync => "sync",
        }
    }
}

/// How an event was authenticated before it was recorded (the events table's `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAuth {
    /// A callback that carried the receiver's shared token.
    Token,
    /// A signed callback whose signature verified.
    Signature,
    /// A callback accepted without authentication (a receiver with none configured).
    None,
    /// Read from the service's REST API with our own credentials (`sync`, `pull`).
    Api,
}

impl EventAuth {
    /// The name stored in the ledger: `token`, `signature`, `none` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Signature => "signature",
            Self::None => "none",
            Self::Api => "api",
        }
    }
}

/// The events table's `kind` for an archive callback that could not be read even leniently.
pub const UNPARSED_ARCHIVE: &str = "archive-unparsed";

/// What an event is about.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// An archive status callback (or an archive object from sync).
    Archive(Box<Archive>),
    /// Another JSON object (a session-monitoring or broadcast callback, say), kept raw; `event` is its
    /// `"event"` field when it has a string one.
    Other {
        /// The object's `"event"`.
        event: Option<String>,
    },
    /// An archive status callback with a valid id that could not be read even leniently (its `status` is
    /// missing or not text, say): kept raw, password included, under the kind [`UNPARSED_ARCHIVE`], with no
    /// change to the archive's row, so that the service is not asked to retry it forever.
    Unparsed {
        /// The archive it names.
        archive_id: String,
        /// Why it could not be read.
        error: String,
    },
}

/// One event to record: the body as received (an archive's presigned `url` without its query), what it is,
/// where and when it came from.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub(crate) body: String,
    pub(crate) kind: EventKind,
    pub(crate) source: EventSource,
    pub(crate) origin: String,
    pub(crate) received_at: OffsetDateTime,
    pub(crate) auth: EventAuth,
}

impl IncomingEvent {
    /// Classifies a callback body: an object whose `"event"` is `"archive"` (or that has no `"event"` but an
    /// `id` and a `status`, as older callbacks do) is an archive status callback; any other JSON object is kept
    /// as a raw event. `origin` says where it came from (the peer address); the event counts as
    /// unauthenticated until [`IncomingEvent::authenticated`] says otherwise.
    ///
    /// An archive callback must carry an `id` of the service's form
    /// ([`opentok_rest::archive_id::validate_archive_id`]); its known fields are read leniently (numbers as
    /// strings, fractional durations), and one that still cannot be read is [`EventKind::Unparsed`].
    ///
    /// ```
    /// use archive_db::{EventKind, IncomingEvent};
    ///
    /// let ev = IncomingEvent::from_callback(br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","event":"archive","status":"uploaded","password":"ZTQy"}"#, "10.0.0.7:5000").unwrap();
    /// assert!(matches!(ev.kind(), EventKind::Archive(a) if a.id == "b40ef09b-3811-4726-b508-e41a0f96c68f"));
    /// let other = IncomingEvent::from_callback(br#"{"event":"streamCreated","sessionId":"S"}"#, "10.0.0.7:5000").unwrap();
    /// assert_eq!(other.kind(), &EventKind::Other { event: Some("streamCreated".into()) });
    /// assert!(IncomingEvent::from_callback(b"{not json", "x").is_err());
    /// assert!(IncomingEvent::from_callback(br#"{"event":"archive","status":"started"}"#, "x").is_err());
    /// assert!(IncomingEvent::from_callback(br#"{"event":"archive","id":"../a1","status":"started"}"#, "x").is_err());
    /// ```
    pub fn from_callback(body: &[u8], origin: impl Into<String>) -> Result<Self, BodyError> {
        let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
        let object = value.as_object().ok_or(BodyError::NotAnObject)?;
        let event = object.get("event");
        let is_archive = match event {
            Some(serde_json::Value::String(e)) => e == ARCHIVE_EVENT,
            None | Some(serde_json::Value::Null) => {
                object.contains_key("id") && object.contains_key("status")
            }
            Some(_) => false,
        };
        let kind = if is_archive {
            let id = match object.get("id") {
                None | Some(serde_json::Value::Null) => return Err(BodyError::MissingId),
                Some(serde_json::Value::String(id)) => id,
                Some(_) => {
                    return Err(BodyError::InvalidArchiveId("its id is not a string".into()));
                }
            };
            validate_archive_id(id).map_err(|e| BodyError::InvalidArchiveId(e.to_string()))?;
            match crate::lenient::parse_archive(object) {
                Ok(mut archive) => {
                    // A presigned download URL is never kept whole (issue 11): no query, so no signature.
                    archive.url = archive.url.as_deref().map(redact_url);
                    EventKind::Archive(Box::new(archive))
                }
                Err(error) => EventKind::Unparsed {
                    archive_id: id.clone(),
                    error,
                },
            }
        } else {
            EventKind::Other {
                event: event.and_then(|e| e.as_str()).map(str::to_owned),
            }
        };
        Ok(Self {
            body: redact_archive_json(text).into_owned(),
            kind,
            source: EventSource::Callback,
            origin: origin.into(),
            received_at: OffsetDateTime::now_utc(),
            auth: EventAuth::None,
        })
    }

    /// The same event, recorded as authenticated by `auth`.
    pub fn authenticated(mut self, auth: EventAuth) -> Self {
        self.auth = auth;
        self
    }

    /// How it was authenticated.
    pub fn auth(&self) -> EventAuth {
        self.auth
    }

    /// An archive read from the REST API (by sync); the body recorded is its JSON. `origin` is the URL or
    /// project it was listed from.
    ///
    /// ```
    /// use archive_db::{EventSource, IncomingEvent};
    /// use opentok_rest::model::Archive;
    ///
    /// let archive: Archive = serde_json::from_str(r#"{"id":"a1","status":"uploaded"}"#).unwrap();
    /// let ev = IncomingEvent::from_archive(&archive, EventSource::Sync, "https://api.opentok.com");
    /// assert_eq!(ev.archive().map(|a| a.id.as_str()), Some("a1"));
    /// ```
    pub fn from_archive(archive: &Archive, source: EventSource, origin: impl Into<String>) -> Self {
        // A presigned download URL is never kept whole (issue 11): no query, so no signature.
        let mut archive = archive.clone();
        archive.url = archive.url.as_deref().map(redact_url);
        // Serializing the model cannot fail: it is strings, numbers and JSON values only.
        let body = serde_json::to_string(&archive).unwrap_or_default();
        Self {
            body,
            kind: EventKind::Archive(Box::new(archive)),
            source,
            origin: origin.into(),
            received_at: OffsetDateTime::now_utc(),
            auth: match source {
                EventSource::Sync => EventAuth::Api,
                EventSource::Callback => EventAuth::None,
            },
        }
    }

    /// The same event, received at `at` (for replaying stored bodies and for tests).
    pub fn received_at(mut self, at: OffsetDateTime) -> Self {
        self.received_at = at;
        self
    }

    /// What the event is.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }

    /// The archive, for an archive event.
    pub fn archive(&self) -> Option<&Archive> {
        match &self.kind {
            EventKind::Archive(a) => Some(a),
            EventKind::Other { .. } | EventKind::Unparsed { .. } => None,
        }
    }

    /// The archive id the event names (an archive event, or one that could not be read).
    pub fn archive_id(&self) -> Option<&str> {
        match &self.kind {
            EventKind::Archive(a) => Some(&a.id),
            EventKind::Unparsed { archive_id, .. } => Some(archive_id),
            EventKind::Other { .. } => None,
        }
    }

    /// The body as received.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// How it reached us.
    pub fn source(&self) -> EventSource {
        self.source
    }

    /// Where it came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The name stored in the events table's `kind`: `archive`, the other object's `event`, or `unknown`.
    pub(crate) fn kind_name(&self) -> &str {
        match &self.kind {
            EventKind::Archive(_) => ARCHIVE_EVENT,
            EventKind::Other { event: Some(e) } => e,
            EventKind::Other { event: None } => "unknown",
            EventKind::Unparsed { .. } => UNPARSED_ARCHIVE,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_classified() {
        const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";
        let cb = |json: String| IncomingEvent::from_callback(json.as_bytes(), "p");
        let old = cb(format!(r#"{{"id":"{ID}","status":"stopped"}}"#)).unwrap();
        assert!(old.archive().is_some(), "older callbacks have no event");
        let null_event = cb(format!(
            r#"{{"id":"{ID}","status":"stopped","event":null}}"#
        ))
        .unwrap();
        assert!(null_event.archive().is_some());
        let no_event = IncomingEvent::from_callback(br#"{"sessionId":"S"}"#, "p").unwrap();
        assert_eq!(no_event.kind_name(), "unknown");
        let numeric =
            IncomingEvent::from_callback(br#"{"event":5,"id":"a","status":"x"}"#, "p").unwrap();
        assert_eq!(numeric.kind(), &EventKind::Other { event: None });
        assert_eq!(
            IncomingEvent::from_callback(b"[1,2]", "p").unwrap_err(),
            BodyError::NotAnObject
        );
        assert_eq!(
            IncomingEvent::from_callback(b"\xff\xfe", "p").unwrap_err(),
            BodyError::NotUtf8
        );
        assert!(matches!(
            IncomingEvent::from_callback(br#"{"event":"archive","id":"","status":"started"}"#, "p"),
            Err(BodyError::InvalidArchiveId(_))
        ));
        assert_eq!(
            IncomingEvent::from_callback(br#"{"event":"archive","status":"started"}"#, "p")
                .unwrap_err(),
            BodyError::MissingId
        );
        assert!(matches!(
            IncomingEvent::from_callback(br#"{"event":"archive","id":7,"status":"started"}"#, "p"),
            Err(BodyError::InvalidArchiveId(_))
        ));
        // A negative size is dropped (unknown), not a refusal.
        let lenient = cb(format!(
            r#"{{"event":"archive","id":"{ID}","status":"started","size":-4}}"#
        ))
        .unwrap();
        assert_eq!(lenient.archive().unwrap().size, 0);
        let unparsed = cb(format!(
            r#"{{"event":"archive","id":"{ID}","status":[1],"password":"cA=="}}"#
        ))
        .unwrap();
        assert_eq!(unparsed.kind_name(), UNPARSED_ARCHIVE);
        assert_eq!(unparsed.archive_id(), Some(ID));
        assert!(unparsed.archive().is_none());
        let kept = format!(r#"{{ "id" : "{ID}", "status":"started" , "zzz": [1] }}"#);
        assert_eq!(
            cb(kept.clone()).unwrap().body(),
            kept,
            "the body is kept exactly"
        );
        assert_eq!(old.auth(), EventAuth::None);
        assert_eq!(
            old.authenticated(EventAuth::Signature).auth(),
            EventAuth::Signature
        );
    }

    #[test]
    fn presigned_urls_are_kept_without_their_signature() {
        let body =
            br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","status":"available","url":"https://h/a.mp4?X-Amz-Signature=SECRETSIG"}"#;
        let ev = IncomingEvent::from_callback(body, "p").unwrap();
        assert!(!ev.body().contains("SECRETSIG"), "{}", ev.body());
        assert_eq!(
            ev.archive().unwrap().url.as_deref(),
            Some("https://h/a.mp4")
        );
        let listed = IncomingEvent::from_archive(ev.archive().unwrap(), EventSource::Sync, "o");
        assert!(!listed.body().contains("SECRETSIG"));
        let mut archive = ev.archive().unwrap().clone();
        archive.url = Some("https://h/a.mp4?Signature=SECRETSIG".into());
        let listed = IncomingEvent::from_archive(&archive, EventSource::Sync, "o");
        assert!(!listed.body().contains("SECRETSIG"), "{}", listed.body());
        assert_eq!(
            listed.archive().unwrap().url.as_deref(),
            Some("https://h/a.mp4")
        );
    }
}
