//! `PUT /v2/project/{apiKey}/archive/storage`: reading and checking the upload target as the service
//! documents it.
//!
//! The body is `{"type": "s3"|"azure", "config": {...}, "fallback": "none"|"opentok"|"vonage",
//! "certificate": "<base64 of PEM, or PEM with \n>" | null}`. S3 needs `bucket`, `accessKey`, `secretKey`
//! (`endpoint` and `sse` optional); Azure needs `accountName`, `accountKey`, `container` (`domain` optional).
//! A certificate must be RSA of at most 2048 bits; `null` (or no certificate) turns encryption off. A missing
//! `fallback` keeps failed uploads in the emulator's cloud (`opentok`), as the model crate documents for
//! the service. Invalid JSON or a missing target answers 400.

use opentok_rest::model::{ArchiveEncryption, Fallback, StorageDestination, StorageTarget};
use rsa::PublicKey;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A project's upload target, with its certificate read.
#[derive(Debug, Clone)]
pub(crate) struct StoredTarget {
    pub(crate) target: StorageTarget,
    pub(crate) certificate: Option<TargetCertificate>,
}

/// The certificate archives are encrypted for.
#[derive(Debug, Clone)]
pub(crate) struct TargetCertificate {
    pub(crate) public_key: PublicKey,
    pub(crate) sha256_fingerprint: String,
}

impl StoredTarget {
    /// What happens to archives that cannot be uploaded.
    pub(crate) fn fallback(&self) -> Fallback {
        self.target.fallback.unwrap_or(Fallback::Opentok)
    }
}

fn required_string(config: &Map<String, Value>, name: &str, kind: &str) -> Result<(), ApiError> {
    match config.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::bad_request(format!(
            "Invalid upload target: {kind} config.{name} is required"
        ))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid upload target: {kind} config.{name} must be a string"
        ))),
    }
}

fn optional_string(config: &Map<String, Value>, name: &str, kind: &str) -> Result<(), ApiError> {
    match config.get(name) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid upload target: {kind} config.{name} must be a string"
        ))),
    }
}

/// Reads and checks a storage body.
pub(crate) fn parse_storage_body(body: &[u8]) -> Result<StoredTarget, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::bad_request(
            "Invalid JSON: the body must be a JSON object",
        ));
    };
    let kind = match object.get("type") {
        Some(Value::String(t)) if t == "s3" || t == "azure" => t.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "Missing upload target: the type (\"s3\" or \"azure\") is required",
            ));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid upload target type {other}: must be \"s3\" or \"azure\""
            )));
        }
    };
    let Some(Value::Object(config)) = object.get("config") else {
        return Err(ApiError::bad_request(
            "Missing upload target: the config object is required",
        ));
    };
    if kind == "s3" {
        for name in ["bucket", "accessKey", "secretKey"] {
            required_string(config, name, "s3")?;
        }
        for name in ["endpoint", "sse"] {
            optional_string(config, name, "s3")?;
        }
        if let Some(Value::String(sse)) = config.get("sse")
            && sse != "s3"
            && sse != "none"
        {
            return Err(ApiError::bad_request(format!(
                "Invalid upload target: sse {sse:?} must be \"s3\" or \"none\""
            )));
        }
        if let Some(Value::String(endpoint)) = config.get("endpoint") {
            let probe = storage_fetch::S3Target::new("probe", "probe", "probe".into())
                .with_endpoint(endpoint.clone());
            if !endpoint.trim().is_empty() && probe.endpoint_url().is_err() {
                return Err(ApiError::bad_request(format!(
                    "Invalid upload target: endpoint {endpoint:?} is not an http(s) URL or host name"
                )));
            }
        }
    } else {
        for name in ["accountName", "accountKey", "container"] {
            required_string(config, name, "azure")?;
        }
        optional_string(config, "domain", "azure")?;
    }
    match object.get("fallback") {
        None | Some(Value::Null) => {
            object.remove("fallback");
        }
        Some(Value::String(f)) if matches!(f.as_str(), "none" | "opentok" | "vonage") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid fallback {other}: must be \"none\", \"opentok\" or \"vonage\""
            )));
        }
    }
    let certificate = match object.get("certificate") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            let encryption = ArchiveEncryption::Certificate(text.clone());
            encryption.check_service_acceptance().map_err(|e| match e {
                archive_core::cert::CertError::KeyTooLarge(bits) => ApiError::bad_request(format!(
                    "Invalid certificate: the key is {bits} bits; the size of the key must be 2048 bits or smaller"
                )),
                archive_core::cert::CertError::NotRsa(_) => {
                    ApiError::bad_request("Invalid certificate: the key must be RSA")
                }
                _ => ApiError::bad_request(
                    "Invalid certificate: send the PEM certificate base64-encoded, or with its newlines written \\n",
                ),
            })?;
            let cert = archive_core::cert::Certificate::parse(text.as_bytes())
                .map_err(|_| ApiError::bad_request("Invalid certificate"))?;
            let public_key = cert
                .rsa_public_key()
                .map_err(|_| ApiError::bad_request("Invalid certificate: the key must be RSA"))?;
            Some(TargetCertificate {
                public_key,
                sha256_fingerprint: cert.sha256_fingerprint(),
            })
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid certificate: must be a string or null",
            ));
        }
    };
    let target: StorageTarget = serde_json::from_value(Value::Object(object))
        .map_err(|e| ApiError::bad_request(format!("Invalid upload target: {e}")))?;
    Ok(StoredTarget {
        target,
        certificate,
    })
}

/// The target's description for the state listing, without secrets.
pub(crate) fn describe(target: &StoredTarget) -> serde_json::Value {
    let mut out = serde_json::json!({
        "fallback": target.fallback(),
        "encrypted": target.certificate.is_some(),
        "certificateSha256": target.certificate.as_ref().map(|c| c.sha256_fingerprint.clone()),
    });
    match &target.target.destination {
        StorageDestination::S3(s3) => {
            out["type"] = "s3".into();
            out["bucket"] = s3.bucket.clone().into();
            out["accessKey"] = s3.access_key.clone().into();
            out["endpoint"] = s3.endpoint.clone().into();
        }
        StorageDestination::Azure(az) => {
            out["type"] = "azure".into();
            out["accountName"] = az.account_name.clone().into();
            out["container"] = az.container.clone().into();
            out["domain"] = az.domain.clone().into();
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        parse_storage_body(body.as_bytes())
            .unwrap_err()
            .body
            .message
            .unwrap()
    }

    #[test]
    fn documented_bodies_are_accepted() {
        let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let cert = archive_core::cert::Certificate::generate_self_signed(&key, "CN=t", 2).unwrap();
        for certificate in [cert.to_json_base64(), cert.to_json_escaped()] {
            let body = serde_json::json!({"type": "s3", "config": {"bucket": "b", "secretKey": "s",
                "accessKey": "a"}, "fallback": "none", "certificate": certificate});
            let stored = parse_storage_body(body.to_string().as_bytes()).unwrap();
            assert!(stored.certificate.is_some());
            assert_eq!(stored.fallback(), Fallback::None);
        }
        let azure = r#"{"type":"azure","config":{"accountName":"myAccountname","accountKey":"myAccountKey",
            "container":"containerName"},"certificate":null}"#;
        let stored = parse_storage_body(azure.as_bytes()).unwrap();
        assert!(stored.certificate.is_none());
        assert_eq!(stored.fallback(), Fallback::Opentok);
        let sse = r#"{"type":"s3","config":{"bucket":"b","secretKey":"s","accessKey":"a",
            "endpoint":"https://s3.cloudianhyperstore.com","sse":"s3"},"fallback":"vonage"}"#;
        assert_eq!(
            parse_storage_body(sse.as_bytes()).unwrap().fallback(),
            Fallback::Vonage
        );
        let described = describe(&parse_storage_body(sse.as_bytes()).unwrap());
        assert!(!described.to_string().contains("\"s\""), "{described}");
    }

    #[test]
    fn invalid_bodies_are_400_with_a_reason() {
        assert!(message("{not json").starts_with("Invalid JSON"));
        assert!(message("[]").starts_with("Invalid JSON"));
        assert!(message(r#"{"config":{}}"#).starts_with("Missing upload target"));
        assert!(message(r#"{"type":"gcs","config":{}}"#).contains("must be \"s3\" or \"azure\""));
        assert!(message(r#"{"type":"s3"}"#).starts_with("Missing upload target"));
        assert!(
            message(r#"{"type":"s3","config":{"bucket":"b","accessKey":"a"}}"#)
                .contains("secretKey")
        );
        assert!(
            message(
                r#"{"type":"azure","config":{"accountName":"n","accountKey":"k","container":""}}"#
            )
            .contains("container")
        );
        assert!(message(r#"{"type":"s3","config":{"bucket":"b","accessKey":"a","secretKey":"s"},"fallback":"sometimes"}"#)
            .contains("fallback"));
        assert!(message(r#"{"type":"s3","config":{"bucket":"b","accessKey":"a","secretKey":"s"},"certificate":"nope"}"#)
            .starts_with("Invalid certificate"));
        assert!(message(r#"{"type":"s3","config":{"bucket":"b","accessKey":"a","secretKey":"s","sse":"kms"}}"#)
            .contains("sse"));
        let big = rsa::PrivateKey::new(&mut rand::rng(), 2560).unwrap();
        let cert =
            archive_core::cert::Certificate::generate_self_signed(&big, "CN=big", 2).unwrap();
        let body = serde_json::json!({"type": "s3", "config": {"bucket": "b", "secretKey": "s", "accessKey": "a"},
            "certificate": cert.to_json_base64()});
        assert!(message(&body.to_string()).contains("2048 bits or smaller"));
    }
}
