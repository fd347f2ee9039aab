//! Checking a request's token the way the service does.
//!
//! **OpenTok projects** send `X-OPENTOK-AUTH: <JWT>`, HS256 with the project's API secret. The claims the
//! service documents: `iss` (the API key; a string or a number), `ist` = `"project"`, `iat`, `exp` (at most
//! 5 minutes after `iat`), `jti` (optional). The SDKs differ in where they put `ist`: Python and Node in the
//! payload, Ruby in the JWT header; both are accepted. Checks, in order, and the 403 message of each:
//!
//! | check | message |
//! |---|---|
//! | the header is missing | `Missing authentication token` |
//! | not a JWT (three base64url parts of JSON) | `Invalid token format` |
//! | `iss` missing or not a string/number | `Invalid issuer format` (on record) |
//! | `iss` is no project of the emulator | `Issuer not found` (on record) |
//! | not HS256, or the signature does not verify | `Invalid signature` (on record) |
//! | `iss` is another project than the path's | `Issuer not authorized for this project` |
//! | `ist` is not `project` | `Invalid issuer type` |
//! | `iat`/`exp` missing, `exp` not after `iat`, or more than 300 s after it | `Invalid token expiration` |
//! | `exp` has passed | `Token expired` |
//! | `iat` more than a minute in the future | `Token issued in the future` |
//!
//! **Vonage applications** send `Authorization: Bearer <JWT>`, RS256 under the application's key, checked by
//! [`opentok_rest::auth::verify_application_token`]; failures answer 401.

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use opentok_rest::auth::{
    AuthError, CLOCK_SKEW_LEEWAY_SECS, ISSUER_TYPE_PROJECT, MAX_TOKEN_LIFETIME,
    OPENTOK_AUTH_HEADER, verify_application_token, verify_hs256,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::{ProjectAuth, ProjectConfig};
use crate::error::ApiError;

/// Authenticates a request for project `path_id` among `projects`, at `now` (Unix seconds).
pub(crate) fn authenticate<'a>(
    headers: &HeaderMap,
    path_id: &str,
    find: impl Fn(&str) -> Option<&'a ProjectConfig>,
    now: u64,
) -> Result<(), ApiError> {
    if let Some(value) = headers.get(OPENTOK_AUTH_HEADER) {
        let token = value
            .to_str()
            .map_err(|_| ApiError::forbidden("Invalid token format"))?;
        return check_project_token(token.trim(), path_id, find, now);
    }
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("Invalid token format"))?;
        let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthorized("Missing bearer token"));
        };
        return check_application_token(token.trim(), path_id, find, now);
    }
    Err(ApiError::forbidden("Missing authentication token"))
}

fn decode_json_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn claim_u64(claims: &Value, name: &str) -> Option<u64> {
    match claims.get(name)? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    }
}

fn check_project_token<'a>(
    token: &str,
    path_id: &str,
    find: impl Fn(&str) -> Option<&'a ProjectConfig>,
    now: u64,
) -> Result<(), ApiError> {
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload_part), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::forbidden("Invalid token format"));
    };
    let (Some(header), Some(claims)) = (
        decode_json_part(header_part),
        decode_json_part(payload_part),
    ) else {
        return Err(ApiError::forbidden("Invalid token format"));
    };
    let issuer = match claims.get("iss") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(ApiError::forbidden("Invalid issuer format")),
    };
    let Some(project) = find(&issuer) else {
        return Err(ApiError::forbidden("Issuer not found"));
    };
    let ProjectAuth::Secret(secret) = &project.auth else {
        // An application id is not a project: its tokens are RS256 Bearer tokens.
        return Err(ApiError::forbidden("Issuer not found"));
    };
    match verify_hs256::<Value>(token, secret.expose_secret().as_bytes()) {
        Ok(_) => {}
        Err(AuthError::Malformed(_)) => return Err(ApiError::forbidden("Invalid token format")),
        Err(_) => return Err(ApiError::forbidden("Invalid signature")),
    }
    if issuer != path_id {
        return Err(ApiError::forbidden(
            "Issuer not authorized for this project",
        ));
    }
    let ist = claims
        .get("ist")
        .or_else(|| header.get("ist"))
        .and_then(Value::as_str);
    if ist != Some(ISSUER_TYPE_PROJECT) {
        return Err(ApiError::forbidden("Invalid issuer type"));
    }
    let (Some(iat), Some(exp)) = (claim_u64(&claims, "iat"), claim_u64(&claims, "exp")) else {
        return Err(ApiError::forbidden("Invalid token expiration"));
    };
    if exp <= iat || exp - iat > MAX_TOKEN_LIFETIME.as_secs() {
        return Err(ApiError::forbidden("Invalid token expiration"));
    }
    if exp <= now {
        return Err(ApiError::forbidden("Token expired"));
    }
    if iat > now.saturating_add(CLOCK_SKEW_LEEWAY_SECS) {
        return Err(ApiError::forbidden("Token issued in the future"));
    }
    Ok(())
}

fn check_application_token<'a>(
    token: &str,
    path_id: &str,
    find: impl Fn(&str) -> Option<&'a ProjectConfig>,
    now: u64,
) -> Result<(), ApiError> {
    let Some(ProjectConfig {
        auth: ProjectAuth::ApplicationKey(key),
        ..
    }) = find(path_id)
    else {
        return Err(ApiError::unauthorized("Invalid application"));
    };
    verify_application_token(token, path_id, key, now).map_err(|e| {
        ApiError::unauthorized(match e {
            AuthError::Malformed(_) => "Invalid token format",
            AuthError::WrongAlgorithm { .. } | AuthError::BadSignature => "Invalid signature",
            AuthError::WrongIssuer { .. } => "Invalid application",
            AuthError::Expired { .. } => "Token expired",
            AuthError::IssuedInFuture { .. } => "Token issued in the future",
            _ => "Invalid token",
        })
    })?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use axum::http::HeaderValue;
    use opentok_rest::auth::{ApplicationClaims, ProjectClaims, sign_hs256, sign_rs256};

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn projects() -> HashMap<String, ProjectConfig> {
        let mut map = HashMap::new();
        map.insert("123".into(), ProjectConfig::project("123", "secret".into()));
        map.insert("456".into(), ProjectConfig::project("456", "other".into()));
        map
    }

    fn check(token: &str, path: &str) -> Result<(), String> {
        let projects = projects();
        let mut headers = HeaderMap::new();
        headers.insert(OPENTOK_AUTH_HEADER, HeaderValue::from_str(token).unwrap());
        authenticate(&headers, path, |id| projects.get(id), NOW)
            .map_err(|e| e.body.message.unwrap_or_default())
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        sign_hs256(&claims, secret).unwrap()
    }

    #[test]
    fn project_tokens_pass_and_fail_with_the_service_messages() {
        let good = ProjectClaims::new("123", NOW, Duration::from_secs(180)).unwrap();
        assert_eq!(check(&sign_hs256(&good, b"secret").unwrap(), "123"), Ok(()));
        // No jti, numeric iss (the Node and Ruby SDKs' forms).
        let numeric =
            serde_json::json!({"iss": 123, "ist": "project", "iat": NOW, "exp": NOW + 300});
        assert_eq!(check(&token(numeric, b"secret"), "123"), Ok(()));
        let cases = [
            (
                serde_json::json!({"ist": "project", "iat": NOW, "exp": NOW + 60}),
                b"secret".as_slice(),
                "Invalid issuer format",
            ),
            (
                serde_json::json!({"iss": "999", "ist": "project", "iat": NOW, "exp": NOW + 60}),
                b"secret",
                "Issuer not found",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "project", "iat": NOW, "exp": NOW + 60}),
                b"wrong",
                "Invalid signature",
            ),
            (
                serde_json::json!({"iss": "456", "ist": "project", "iat": NOW, "exp": NOW + 60}),
                b"other",
                "Issuer not authorized for this project",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "account", "iat": NOW, "exp": NOW + 60}),
                b"secret",
                "Invalid issuer type",
            ),
            (
                serde_json::json!({"iss": "123", "iat": NOW, "exp": NOW + 60}),
                b"secret",
                "Invalid issuer type",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "project", "iat": NOW, "exp": NOW + 301}),
                b"secret",
                "Invalid token expiration",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "project", "exp": NOW + 60}),
                b"secret",
                "Invalid token expiration",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "project", "iat": NOW - 300, "exp": NOW}),
                b"secret",
                "Token expired",
            ),
            (
                serde_json::json!({"iss": "123", "ist": "project", "iat": NOW + 120, "exp": NOW + 180}),
                b"secret",
                "Token issued in the future",
            ),
        ];
        for (claims, secret, message) in cases {
            assert_eq!(
                check(&token(claims.clone(), secret), "123"),
                Err(message.to_owned()),
                "{claims}"
            );
        }
        assert_eq!(
            check("not.a.jwt", "123"),
            Err("Invalid token format".into())
        );
        assert_eq!(check("abc", "123"), Err("Invalid token format".into()));
    }

    #[test]
    fn ist_in_the_header_is_accepted_as_the_ruby_sdk_sends_it() {
        // {"ist":"project","alg":"HS256"} . {"iss":"123","iat":..,"exp":..}, signed by hand.
        use hmac::{Hmac, KeyInit, Mac};
        let header = URL_SAFE_NO_PAD.encode(br#"{"ist":"project","alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"iss": "123", "iat": NOW, "exp": NOW + 300}))
                .unwrap(),
        );
        let input = format!("{header}.{payload}");
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"secret").unwrap();
        mac.update(input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(check(&format!("{input}.{signature}"), "123"), Ok(()));
    }

    #[test]
    fn application_tokens_are_bearer_rs256() {
        let key = rsa::PrivateKey::new(&mut rand::rng(), 1024).unwrap();
        let mut projects = projects();
        projects.insert(
            "app-1".into(),
            ProjectConfig::application("app-1", key.to_public_key()),
        );
        let claims = ApplicationClaims::new("app-1", NOW, Duration::from_secs(180)).unwrap();
        let token = sign_rs256(&claims, &key).unwrap();
        let run = |value: String, path: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
            authenticate(&headers, path, |id| projects.get(id), NOW)
        };
        assert!(run(format!("Bearer {token}"), "app-1").is_ok());
        let refused = run(format!("Bearer {token}"), "123").unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(run(format!("Basic {token}"), "app-1").is_err());
        // A project token for the application id: no such issuer among projects.
        let hs = sign_hs256(
            &serde_json::json!({"iss": "app-1", "ist": "project", "iat": NOW, "exp": NOW + 60}),
            b"x",
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(OPENTOK_AUTH_HEADER, HeaderValue::from_str(&hs).unwrap());
        let err = authenticate(&headers, "app-1", |id| projects.get(id), NOW).unwrap_err();
        assert_eq!(err.body.message.as_deref(), Some("Issuer not found"));
        let none = authenticate(&HeaderMap::new(), "123", |id| projects.get(id), NOW).unwrap_err();
        assert_eq!(none.status, axum::http::StatusCode::FORBIDDEN);
    }
}
