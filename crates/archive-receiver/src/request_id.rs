//! Request ids: every log line of a callback carries one, and the answer gives it back in `X-Request-Id`.
//! A load balancer's own id (`X-Request-Id`, when it is short and plain) is kept, so one id follows the
//! request through both logs; otherwise the receiver makes one: a random prefix per process (several
//! receivers' ids do not collide) and a counter.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;

/// The header that carries the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// This process's prefix: random (std's hasher keys come from the operating system's randomness).
static PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:08x}", hasher.finish() as u32)
});

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The request's id: the caller's `X-Request-Id` if it is 1 to 64 characters of `[A-Za-z0-9._-]`, else a new one.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    if let Some(given) = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    {
        return given.to_owned();
    }
    format!("{}-{}", *PREFIX, NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        let (a, b) = (request_id(&headers), request_id(&headers));
        assert_ne!(a, b);
        assert_eq!(
            a.split('-').next(),
            b.split('-').next(),
            "one prefix per process"
        );
        headers.insert(REQUEST_ID_HEADER, "lb-42.x_y".parse().unwrap());
        assert_eq!(request_id(&headers), "lb-42.x_y");
        headers.insert(REQUEST_ID_HEADER, "a b".parse().unwrap());
        assert_ne!(request_id(&headers), "a b");
        headers.insert(REQUEST_ID_HEADER, "x".repeat(65).parse().unwrap());
        assert!(!request_id(&headers).starts_with("xxx"));
    }
}
