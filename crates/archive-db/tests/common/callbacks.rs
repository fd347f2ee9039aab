//! Generators of callback-like JSON bodies (issue 11), shared by the property tests (`prop_events.rs`) and the
//! conformance suite's differential test (`conformance/differential.rs`).
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};

pub const FIELDS: &[&str] = &[
    "id",
    "event",
    "status",
    "name",
    "reason",
    "sessionId",
    "partnerId",
    "projectId",
    "createdAt",
    "updatedAt",
    "duration",
    "size",
    "password",
    "url",
    "sha256sum",
    "hasAudio",
    "outputMode",
    "streams",
];

/// A JSON value of any type, with the edges that matter to SQLite and to the model.
pub fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX as u64 + 1)),
        (0u32..1_000_000).prop_map(|n| json!(f64::from(n) / 8.0)),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9]{1,22}".prop_map(Value::String),
        prop::sample::select(vec![
            "archive",
            "started",
            "stopped",
            "uploaded",
            "available",
            "failed",
            "expired",
            "deleted",
            "paused",
            "streamCreated",
            "composed",
            "b40ef09b-3811-4726-b508-e41a0f96c68f",
            "B40EF09B-3811-4726-B508-E41A0F96C68F",
            "../../etc/passwd",
            "",
        ])
        .prop_map(|s| json!(s)),
        prop::collection::vec(any::<u8>().prop_map(Value::from), 0..3).prop_map(Value::Array),
    ]
}

/// A value of the type the service sends for `field`.
pub fn plausible(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "id" => "[0-9a-fA-F]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            .prop_map(Value::String)
            .boxed(),
        "status" => prop::sample::select(vec![
            "started",
            "stopped",
            "uploaded",
            "available",
            "failed",
            "expired",
            "deleted",
            "paused",
        ])
        .prop_map(|s| json!(s))
        .boxed(),
        "event" => Just(json!("archive")).boxed(),
        "outputMode" => Just(json!("composed")).boxed(),
        "partnerId" | "projectId" => prop_oneof![
            any::<u64>().prop_map(Value::from),
            "[0-9]{1,8}".prop_map(Value::String)
        ]
        .boxed(),
        "createdAt" | "updatedAt" | "duration" | "size" => prop_oneof![
            any::<u64>().prop_map(Value::from),
            Just(json!(u64::MAX)),
            (0u32..1_000_000).prop_map(|n| json!(f64::from(n) / 8.0)),
            (0u64..100_000).prop_map(|n| json!(n.to_string())),
        ]
        .boxed(),
        "hasAudio" => any::<bool>().prop_map(Value::Bool).boxed(),
        "streams" => Just(json!([])).boxed(),
        _ => "\\PC{0,24}".prop_map(Value::String).boxed(),
    }
}

/// A field's value: usually of its type, sometimes anything.
pub fn field(name: &'static str) -> impl Strategy<Value = Value> {
    prop_oneof![4 => plausible(name), 1 => value()]
}

/// A callback-like object: usually `id` and `status`, sometimes `event`, and other fields.
pub fn callback() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, field("id")),
        prop::option::weighted(0.9, field("status")),
        prop::collection::vec(
            prop::sample::select(FIELDS.to_vec()).prop_flat_map(|name| (Just(name), field(name))),
            0..8,
        ),
    )
        .prop_map(|(id, status, rest)| {
            let mut map = Map::new();
            if let Some(id) = id {
                map.insert("id".into(), id);
            }
            if let Some(status) = status {
                map.insert("status".into(), status);
            }
            for (k, v) in rest {
                map.insert(k.to_owned(), v);
            }
            Value::Object(map)
        })
}
