//! How a callback is authenticated: the shared token (in `?token=` or the `X-Archivectl-Token` header) and the
//! signature of signed callbacks (`Authorization: Bearer <JWT>`, HS256, `payload_hash` = SHA-256 of the body).

use axum::http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{ReceiverConfig, TOKEN_HEADER};

/// The query string of a callback: only `token` is read.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    pub(crate) token: Option<String>,
}

/// The claims of a signed callback that are checked.
#[derive(Debug, Deserialize)]
struct SignedClaims {
    iat: Option<u64>,
    exp: Option<u64>,
    payload_hash: Option<String>,
}

/// Compares two secrets without leaking where they differ (both are hashed first, so lengths do not
/// leak either).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Why a callback was refused as unauthenticated (logged; the answer is a plain 401).
pub(crate) fn check_token(
    config: &ReceiverConfig,
    query: &TokenQuery,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    let Some(expected) = &config.token else {
        return Ok(());
    };
    let given = query
        .token
        .as_deref()
        .map(str::as_bytes)
        .or_else(|| headers.get(TOKEN_HEADER).map(|v| v.as_bytes()));
    match given {
        None => Err("no token"),
        Some(given) if same_secret(given, expected) => Ok(()),
        Some(_) => Err("wrong token"),
    }
}

/// Checks a signed callback's token against the body and the clock (when a signature secret is configured).
pub(crate) fn check_signature(
    config: &ReceiverConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let Some(secret) = &config.signature_secret else {
        return Ok(());
    };
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or("unsigned (no Authorization header)")?
        .to_str()
        .map_err(|_| "Authorization header is not text")?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    let claims: SignedClaims =
        opentok_rest::auth::verify_hs256(token, secret).map_err(|e| format!("signature: {e}"))?;
    let expected = hex::encode(Sha256::digest(body));
    match claims.payload_hash {
        Some(hash) if hash.eq_ignore_ascii_case(&expected) => {}
        Some(_) => return Err("signature: payload_hash does not match the body".into()),
        None => return Err("signature: no payload_hash claim".into()),
    }
    let now = opentok_rest::auth::unix_now().map_err(|e| e.to_string())?;
    let iat = claims.iat.ok_or("signature: no iat claim")?;
    if iat > now.saturating_add(opentok_rest::auth::CLOCK_SKEW_LEEWAY_SECS) {
        return Err(format!(
            "signature: issued in the future (iat {iat}, now {now})"
        ));
    }
    if let Some(exp) = claims.exp
        && exp.saturating_add(opentok_rest::auth::CLOCK_SKEW_LEEWAY_SECS) < now
    {
        return Err(format!("signature: expired (exp {exp}, now {now})"));
    }
    if now.saturating_sub(iat) > config.signature_max_age {
        return Err(format!(
            "signature: too old (iat {iat}, now {now}, at most {} s)",
            config.signature_max_age
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(token: Option<&str>, secret: Option<&str>) -> ReceiverConfig {
        ReceiverConfig {
            path: "/cb".into(),
            token: token.map(|t| zeroize::Zeroizing::new(t.as_bytes().to_vec())),
            signature_secret: secret.map(|s| zeroize::Zeroizing::new(s.as_bytes().to_vec())),
            signature_max_age: 300,
            project: None,
            limits: crate::Limits::default(),
        }
    }

    #[test]
    fn tokens_come_from_the_query_or_the_header() {
        let c = config(Some("s3cret"), None);
        let mut headers = HeaderMap::new();
        let q = |t: Option<&str>| TokenQuery {
            token: t.map(str::to_owned),
        };
        assert_eq!(check_token(&c, &q(None), &headers), Err("no token"));
        assert_eq!(
            check_token(&c, &q(Some("nope")), &headers),
            Err("wrong token")
        );
        assert_eq!(check_token(&c, &q(Some("s3cret")), &headers), Ok(()));
        headers.insert(TOKEN_HEADER, "s3cret".parse().unwrap());
        assert_eq!(check_token(&c, &q(None), &headers), Ok(()));
        assert_eq!(
            check_token(&config(None, None), &q(None), &HeaderMap::new()),
            Ok(())
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn signatures_are_checked_against_the_body_and_the_clock() {
        let c = config(None, Some("sig-secret"));
        let body = br#"{"id":"a","status":"started"}"#;
        let now = opentok_rest::auth::unix_now().unwrap();
        let sign_exp = |iat: u64, exp: Option<u64>, hash: &str, secret: &[u8]| {
            let mut claims =
                serde_json::json!({"iat": iat, "jti": "j", "iss": "Vonage", "payload_hash": hash});
            if let Some(exp) = exp {
                claims["exp"] = exp.into();
            }
            let token = opentok_rest::auth::sign_hs256(&claims, secret).unwrap();
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
            h
        };
        let sign = |iat: u64, hash: &str, secret: &[u8]| sign_exp(iat, None, hash, secret);
        let hash = hex::encode(Sha256::digest(body));
        assert_eq!(
            check_signature(
                &c,
                &sign_exp(now, Some(now + 60), &hash, b"sig-secret"),
                body
            ),
            Ok(())
        );
        let expired = check_signature(
            &c,
            &sign_exp(now - 100, Some(now - 90), &hash, b"sig-secret"),
            body,
        );
        assert!(expired.unwrap_err().contains("expired"));
        assert_eq!(
            check_signature(&c, &sign(now, &hash, b"sig-secret"), body),
            Ok(())
        );
        assert!(check_signature(&c, &HeaderMap::new(), body).is_err());
        assert!(check_signature(&c, &sign(now, &hash, b"other"), body).is_err());
        assert!(check_signature(&c, &sign(now, &"0".repeat(64), b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now - 301, &hash, b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now + 3600, &hash, b"sig-secret"), body).is_err());
        assert!(check_signature(&c, &sign(now, &hash, b"sig-secret"), b"{}").is_err());
    }
}
