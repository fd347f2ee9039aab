//! Download URLs of archives kept in the emulator's cloud (`status: available`).
//!
//! Like the service's (presigned S3 URLs), a URL is made fresh for every answer that shows the archive, works
//! for [`crate::EmulatorConfig::download_url_ttl`] (10 minutes by default) and carries its own authorization in
//! the query: `GET /download/{apiKey}/{archiveId}/archive.ts?Expires=<unix seconds>&Signature=<HMAC-SHA256>`,
//! keyed with a random key drawn when the emulator starts. An expired or altered URL answers 403 with an
//! S3-style XML error; a single `Range: bytes=...` is honoured (206).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::state::{ArchiveRecord, Shared};

fn mac(shared: &Shared, path: &str, expires: u64) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&shared.download_key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(expires.to_string().as_bytes());
    mac
}

fn download_path(record: &ArchiveRecord) -> String {
    format!(
        "/download/{}/{}/{}",
        record.project, record.archive.id, record.file_name
    )
}

/// A fresh signed URL for an archive kept in the emulator's cloud.
pub(crate) fn signed_url(shared: &Shared, record: &ArchiveRecord) -> String {
    let now = opentok_rest::auth::unix_now().unwrap_or(0);
    let expires = now + shared.config.download_url_ttl.as_secs();
    let path = download_path(record);
    let signature = URL_SAFE_NO_PAD.encode(mac(shared, &path, expires).finalize().into_bytes());
    format!(
        "{}{path}?Expires={expires}&Signature={signature}",
        shared.public_url.trim_end_matches('/')
    )
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Parses a single `bytes=` range against a length: `Ok(None)` for no usable header (the whole file).
fn parse_range(value: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Err(());
    };
    let (start, end) = match (start.trim(), end.trim()) {
        ("", "") => return Err(()),
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (start, "") => (start.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().map_err(|_| ())?, end.parse().map_err(|_| ())?);
            (s, e.min(len.saturating_sub(1)))
        }
    };
    if len == 0 || start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `GET /download/{apiKey}/{archiveId}/{file}`.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((project, id, file)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let expires: Option<u64> = query.get("Expires").and_then(|e| e.parse().ok());
    let signature = query
        .get("Signature")
        .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    let (Some(expires), Some(signature)) = (expires, signature) else {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the Signature and Expires parameters",
        );
    };
    let path = format!("/download/{project}/{id}/{file}");
    if mac(&shared, &path, expires)
        .verify_slice(&signature)
        .is_err()
    {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if expires <= opentok_rest::auth::unix_now().unwrap_or(u64::MAX) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let file_path = {
        let mut inner = shared.lock();
        shared.expire_old(&mut inner);
        inner
            .archives
            .get(&id)
            .filter(|r| r.project == project && r.file_name == file)
            .and_then(|r| r.cloud_file.clone())
    };
    let Some(file_path) = file_path else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let bytes = match tokio::fs::read(&file_path).await {
        Ok(b) => b,
        Err(_) => {
            return s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            );
        }
    };
    let content_type = match file.rsplit('.').next() {
        Some("ts") => "video/MP2T",
        Some("mp4") => "video/mp4",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    };
    let len = bytes.len() as u64;
    match parse_range(headers.get(header::RANGE), len) {
        Ok(None) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (header::ACCEPT_RANGES, "bytes".to_owned()),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Ok(Some((start, end))) => {
            let part = bytes[start as usize..=end as usize].to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_TYPE, content_type.to_owned()),
                    (header::ACCEPT_RANGES, "bytes".to_owned()),
                    (header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
                ],
                Body::from(part),
            )
                .into_response()
        }
        Err(()) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
        let value = HeaderValue::from_str(text).map_err(|_| ())?;
        parse_range(Some(&value), len)
    }

    #[test]
    fn ranges_parse_as_http_says() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=9-3", 100), Err(()));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
    }
}
