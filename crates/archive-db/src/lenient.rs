//! Lenient reading of archive status callbacks: the known fields of a callback whose values have unexpected
//! types (`"duration": 12.5`, `"size": "123"`, `"sessionId": 42`) are coerced to what the model expects, and a
//! value that cannot be coerced is dropped (the field is then unknown, as if absent), so that one odd field
//! never costs the event. The body itself is always kept exactly as received.

use opentok_rest::model::{Archive, ArchiveEvent};
use serde_json::{Map, Value};

/// Integer fields of the service's archive JSON (`true`: may not be negative).
const INTEGERS: &[(&str, bool)] = &[
    ("createdAt", false),
    ("updatedAt", false),
    ("duration", true),
    ("size", true),
    ("maxBitrate", true),
    ("quantizationParameter", true),
];

/// Text fields of the service's archive JSON.
const TEXTS: &[&str] = &[
    "name",
    "reason",
    "sessionId",
    "resolution",
    "url",
    "password",
    "sha256sum",
    "multiArchiveTag",
    "outputMode",
    "streamMode",
];

/// Boolean fields.
const BOOLS: &[&str] = &["hasAudio", "hasVideo", "hasTranscription"];

/// The fields kept when nothing else works.
const CORE: &[&str] = &[
    "id",
    "event",
    "status",
    "createdAt",
    "updatedAt",
    "duration",
    "size",
    "name",
    "reason",
    "sessionId",
    "partnerId",
    "projectId",
    "applicationId",
    "password",
    "url",
    "sha256sum",
    "resolution",
];

/// Parses `object` as an archive status callback: strictly first, then with its known fields coerced, then
/// with only its core fields. The error is the strict parse's when nothing works.
pub(crate) fn parse_archive(object: &Map<String, Value>) -> Result<Archive, String> {
    let strict = serde_json::from_value::<ArchiveEvent>(Value::Object(object.clone()));
    let first_error = match strict {
        Ok(event) => return Ok(event.into_archive()),
        Err(e) => e.to_string(),
    };
    let mut coerced = object.clone();
    coerce(&mut coerced);
    if let Ok(event) = serde_json::from_value::<ArchiveEvent>(Value::Object(coerced.clone())) {
        return Ok(event.into_archive());
    }
    coerced.retain(|k, _| CORE.contains(&k.as_str()));
    serde_json::from_value::<ArchiveEvent>(Value::Object(coerced))
        .map(ArchiveEvent::into_archive)
        .map_err(|_| first_error)
}

fn coerce(object: &mut Map<String, Value>) {
    for &(field, unsigned) in INTEGERS {
        coerce_field(object, field, |v| integer(v, unsigned));
    }
    for &field in TEXTS {
        coerce_field(object, field, text);
    }
    for &field in BOOLS {
        coerce_field(object, field, boolean);
    }
    for field in ["partnerId", "projectId", "applicationId"] {
        coerce_field(object, field, |v| match v {
            Value::String(_) | Value::Number(_) => Some(v.clone()),
            _ => None,
        });
    }
    // The status stays as it is unless it is a number or a boolean: a status that is an object or an array
    // cannot be read, and such a callback is kept as a raw event.
    if let Some(status @ (Value::Number(_) | Value::Bool(_))) = object.get("status") {
        let status = Value::String(status.to_string());
        object.insert("status".into(), status);
    }
}

/// Replaces `field` by `f(value)`, or removes it when `f` gives nothing (or the value is null).
fn coerce_field(object: &mut Map<String, Value>, field: &str, f: impl Fn(&Value) -> Option<Value>) {
    let Some(value) = object.get(field) else {
        return;
    };
    match (!value.is_null()).then(|| f(value)).flatten() {
        Some(v) => {
            object.insert(field.to_owned(), v);
        }
        None => {
            object.remove(field);
        }
    }
}

fn integer(v: &Value, unsigned: bool) -> Option<Value> {
    let n: f64 = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return (!unsigned || i >= 0).then(|| Value::from(i));
            }
            if let Some(u) = n.as_u64() {
                return Some(Value::from(u));
            }
            n.as_f64()?
        }
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return (!unsigned || i >= 0).then(|| Value::from(i));
            }
            s.parse().ok()?
        }
        _ => return None,
    };
    if !n.is_finite() || (unsigned && n < 0.0) || n.abs() >= 9.0e15 {
        return None;
    }
    // Within ±9e15 the rounded value is exact in both f64 and i64.
    #[allow(clippy::cast_possible_truncation)]
    Some(Value::from(n.round() as i64))
}

fn text(v: &Value) -> Option<Value> {
    match v {
        Value::String(_) => Some(v.clone()),
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<Value> {
    match v {
        Value::Bool(_) => Some(v.clone()),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(Value::Bool(false)),
            Some(1) => Some(Value::Bool(true)),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Archive, String> {
        parse_archive(
            serde_json::from_str::<Value>(json)
                .unwrap()
                .as_object()
                .unwrap(),
        )
    }

    #[test]
    fn odd_types_are_coerced_and_odd_values_dropped() {
        let a = parse(
            r#"{"id":"x","status":"uploaded","duration":12.5,"size":"123","createdAt":"1700000000000",
                "sessionId":42,"hasAudio":"true","hasVideo":1,"name":{"nested":1},"password":"cGFzcw=="}"#,
        )
        .unwrap();
        assert_eq!(
            (a.duration, a.size, a.created_at),
            (13, 123, 1_700_000_000_000)
        );
        assert_eq!(a.session_id, "42");
        assert_eq!((a.has_audio, a.has_video), (Some(true), Some(true)));
        assert_eq!(a.name, None);
        assert_eq!(a.password.as_deref(), Some("cGFzcw=="));
        let negative =
            parse(r#"{"id":"x","status":"uploaded","size":-4,"duration":"1e99"}"#).unwrap();
        assert_eq!((negative.size, negative.duration), (0, 0));
        assert_eq!(
            parse(r#"{"id":"x","status":5}"#).unwrap().status.as_str(),
            "5"
        );
        assert!(parse(r#"{"id":"x","status":{"s":1}}"#).is_err());
        assert!(parse(r#"{"id":"x"}"#).is_err());
    }
}
