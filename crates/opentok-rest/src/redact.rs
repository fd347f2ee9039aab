//! What may be shown of a URL: presigned download URLs carry their signature (and sometimes a credential) in
//! the query, so a URL is shown, logged or stored only without its query, fragment and user info.
//!
//! One rule for the whole workspace: [`redact_url`] (or [`RedactedUrl`] to format one in place) for a URL we
//! hold, [`redact_urls_in_text`] for text that may contain one (an error chain from an HTTP client), and
//! [`redact_archive_json`] for an archive's JSON (a callback body, a REST answer) before it is kept.
//!
//! ```
//! use opentok_rest::redact::{redact_url, redact_urls_in_text, RedactedUrl};
//!
//! let url = "https://bucket.s3.amazonaws.com/47203/a/archive.ts?X-Amz-Signature=SECRETSIG&X-Amz-Expires=600";
//! assert_eq!(redact_url(url), "https://bucket.s3.amazonaws.com/47203/a/archive.ts");
//! assert_eq!(RedactedUrl(url).to_string(), redact_url(url));
//! let text = format!("error sending request for url ({url}): connection reset");
//! assert!(!redact_urls_in_text(&text).contains("SECRETSIG"));
//! ```

use std::borrow::Cow;
use std::fmt;

/// `url` without its query, fragment and user info: what may be shown, logged or stored of it.
///
/// Text that is not an absolute URL is cut at its first `?` or `#` all the same.
pub fn redact_url(url: &str) -> String {
    RedactedUrl(url).to_string()
}

/// Formats a URL as [`redact_url`] does, without allocating first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedactedUrl<'a>(pub &'a str);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let without_query = self.0.split(['?', '#']).next().unwrap_or_default();
        match without_query.split_once("://") {
            Some((scheme, rest)) => {
                let (authority, path) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => (rest, ""),
                };
                let host = authority.rsplit('@').next().unwrap_or(authority);
                write!(f, "{scheme}://{host}{path}")
            }
            None => f.write_str(without_query),
        }
    }
}

/// Characters that end a URL inside free text (error messages quote URLs in parentheses or quotes).
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ')' | '(' | '"' | '\'' | '<' | '>' | '`' | ',' | ';' | '\\'
        )
}

/// `text` with every `http://` or `https://` URL in it redacted by [`redact_url`] (borrowed when there is
/// nothing to change). For error text from clients that put the URL of the request into their messages.
pub fn redact_urls_in_text(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(start) = find_url_start(rest) {
        let (before, from) = rest.split_at(start);
        let end = from.find(ends_url).unwrap_or(from.len());
        let (url, after) = from.split_at(end);
        let shown = redact_url(url);
        out.push_str(before);
        if shown != url {
            changed = true;
        }
        out.push_str(&shown);
        rest = after;
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn find_url_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")]
        .into_iter()
        .flatten()
        .min()
}

/// An archive's JSON with its `url` redacted ([`redact_url`]); borrowed, exactly as given, when the body has no
/// `url` with a query (or is not a JSON object). Where the body spells the URL as `serde_json` would, only that
/// string changes and the rest of the body is kept byte for byte.
///
/// ```
/// use opentok_rest::redact::redact_archive_json;
///
/// let body = r#"{"id":"a","url":"https://h/a.mp4?Signature=SECRETSIG", "status":"available"}"#;
/// assert_eq!(redact_archive_json(body), r#"{"id":"a","url":"https://h/a.mp4", "status":"available"}"#);
/// let plain = r#"{ "id" : "a", "status":"started" }"#;
/// assert_eq!(redact_archive_json(plain), plain);
/// ```
pub fn redact_archive_json(body: &str) -> Cow<'_, str> {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str::<serde_json::Value>(body)
    else {
        return Cow::Borrowed(body);
    };
    let Some(serde_json::Value::String(url)) = object.get("url") else {
        return Cow::Borrowed(body);
    };
    let shown = redact_url(url);
    if &shown == url {
        return Cow::Borrowed(body);
    }
    let as_written = serde_json::Value::String(url.clone()).to_string();
    let replacement = serde_json::Value::String(shown.clone()).to_string();
    if body.matches(&as_written).count() == 1 {
        return Cow::Owned(body.replacen(&as_written, &replacement, 1));
    }
    object.insert("url".into(), serde_json::Value::String(shown));
    Cow::Owned(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn queries_fragments_and_user_info_are_dropped() {
        assert_eq!(
            redact_url("https://s3.example/1/a/archive.ts?X-Amz-Signature=abc&Expires=1"),
            "https://s3.example/1/a/archive.ts"
        );
        assert_eq!(redact_url("http://h/x.mp4"), "http://h/x.mp4");
        assert_eq!(redact_url("http://h:8080"), "http://h:8080");
        assert_eq!(
            redact_url("https://user:pw@h/p#frag"),
            "https://h/p",
            "user info goes too"
        );
        assert_eq!(redact_url("https://h?sig=1"), "https://h");
        assert_eq!(redact_url("not a url?x"), "not a url");
    }

    #[test]
    fn urls_in_text_are_redacted_wherever_they_are() {
        let text = "error sending request for url (https://h/a.ts?X-Amz-Signature=SECRETSIG): \
                    redirected to HTTPS://other/x?Signature=SECRETSIG2, then http://plain/";
        let shown = redact_urls_in_text(text);
        assert_eq!(
            shown,
            "error sending request for url (https://h/a.ts): redirected to HTTPS://other/x, then http://plain/"
        );
        let nothing = "connection refused (os error 111) at http://127.0.0.1:9/";
        assert!(matches!(redact_urls_in_text(nothing), Cow::Borrowed(_)));
    }

    #[test]
    fn archive_bodies_lose_only_the_signature() {
        let escaped = r#"{"id":"a","url":"https:\/\/h\/a.ts?Signature=SECRETSIG"}"#;
        let shown = redact_archive_json(escaped);
        assert!(!shown.contains("SECRETSIG"), "{shown}");
        let value: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(value["url"], "https://h/a.ts");
        assert_eq!(value["id"], "a");
        assert_eq!(redact_archive_json("not json"), "not json");
        assert_eq!(redact_archive_json(r#"{"url":null}"#), r#"{"url":null}"#);
    }
}
