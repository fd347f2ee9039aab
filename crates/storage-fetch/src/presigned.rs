//! Reading an archive the service keeps in its own cloud (status `available`) from its presigned URL, beside
//! the object downloads of [`crate::Store`]: one HTTP stream, asked from an offset with a `Range` request and
//! checked (the status, the length, the `Content-Range` start). A server that ignores the range and sends
//! everything again is read past what the caller already has, so the chunks always start at the offset.
//!
//! The URL's query (its signature) is never shown: errors and [`PresignedDownload::shown`] carry the URL
//! without it ([`without_query`]).

use std::time::Duration;

use bytes::Bytes;
use object_store_reqwest as reqwest;

/// What can go wrong reading a presigned URL. The URL in each message is shown without its query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresignedError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request could not be sent or answered.
    #[error("cannot download {url}: {error}")]
    Send {
        /// The URL, without its query.
        url: String,
        /// What failed (in the message: it is the whole story).
        error: reqwest::Error,
    },
    /// 403 or 404: a presigned URL that has expired, or an archive that is gone.
    #[error(
        "cannot download {url}: {status} (the service's download URL has expired or the archive is gone)"
    )]
    Expired {
        /// The URL, without its query.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// Any other status than 200 (or 206 for a range).
    #[error("cannot download {url}: {status}")]
    Status {
        /// The URL, without its query.
        url: String,
        /// The status.
        status: http::StatusCode,
    },
    /// The response has no `Content-Length`.
    #[error("{url} does not say how long the archive is")]
    NoLength {
        /// The URL, without its query.
        url: String,
    },
    /// A range request was answered with another range.
    #[error("{url} answered a request for bytes {asked}- with another range ({got:?})")]
    WrongRange {
        /// The URL, without its query.
        url: String,
        /// Where the range asked for starts.
        asked: u64,
        /// Where the answer's range starts, if it says.
        got: Option<u64>,
    },
    /// The body could not be read to its end.
    #[error("reading {url}")]
    Read {
        /// The URL, without its query.
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
}

/// `url` without its query: what may be shown of a presigned URL.
pub fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

/// Where a `Content-Range: bytes START-END/TOTAL` answer starts (`None` for anything else, never a panic: the
/// value comes from the server).
///
/// ```
/// use storage_fetch::content_range_start;
///
/// assert_eq!(content_range_start("bytes 4194304-8388607/9000000"), Some(4194304));
/// assert_eq!(content_range_start("bytes */9000000"), None);
/// ```
pub fn content_range_start(value: &str) -> Option<u64> {
    value
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .parse::<u64>()
        .ok()
}

/// An archive being read from a presigned URL, from [`PresignedDownload::open`]'s offset on.
#[derive(Debug)]
pub struct PresignedDownload {
    http: reqwest::Client,
    url: String,
    shown: String,
    size: u64,
    response: reqwest::Response,
    /// Bytes still to drop from the front of the body (a server that ignored the range).
    skip: u64,
}

impl PresignedDownload {
    /// GETs `url` from the start; the archive's size is the response's `Content-Length`.
    pub async fn open(url: &str) -> Result<Self, PresignedError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| PresignedError::Client(e.without_url()))?;
        let shown = without_query(url);
        let response = get(&http, url, &shown, None).await?;
        let size = response
            .content_length()
            .ok_or_else(|| PresignedError::NoLength { url: shown.clone() })?;
        Ok(Self {
            http,
            url: url.to_string(),
            shown,
            size,
            response,
            skip: 0,
        })
    }

    /// The archive's size (the first response's `Content-Length`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The URL without its query (its signature): what may be shown or recorded.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Continues from byte `offset` instead of 0: a new GET with `Range: bytes={offset}-`, checked; a server
    /// that answers 200 with the whole archive is read past `offset`.
    pub async fn resume_at(&mut self, offset: u64) -> Result<(), PresignedError> {
        if offset == 0 {
            return Ok(());
        }
        let response = get(&self.http, &self.url, &self.shown, Some(offset)).await?;
        self.skip = if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            // `Content-Range: bytes START-END/TOTAL` must start where the caller is.
            let start = response
                .headers()
                .get(http::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_start);
            if start != Some(offset) {
                return Err(PresignedError::WrongRange {
                    url: self.shown.clone(),
                    asked: offset,
                    got: start,
                });
            }
            0
        } else {
            offset
        };
        self.response = response;
        Ok(())
    }

    /// The next piece of the body (of any length), `None` at its end.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, PresignedError>> {
        loop {
            let mut chunk = match self.response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return None,
                Err(source) => {
                    return Some(Err(PresignedError::Read {
                        url: self.shown.clone(),
                        // reqwest's text would append the URL whole, signature included.
                        source: source.without_url(),
                    }));
                }
            };
            if self.skip > 0 {
                let n = self.skip.min(chunk.len() as u64);
                let _ = chunk.split_to(n as usize);
                self.skip -= n;
            }
            if !chunk.is_empty() {
                return Some(Ok(chunk));
            }
        }
    }
}

/// GET `url` (from byte `from` on, if given); a status other than 200 (or 206 for a range) is an error.
async fn get(
    http: &reqwest::Client,
    url: &str,
    shown: &str,
    from: Option<u64>,
) -> Result<reqwest::Response, PresignedError> {
    let mut request = http.get(url);
    if let Some(from) = from {
        request = request.header(http::header::RANGE, format!("bytes={from}-"));
    }
    let response = request.send().await.map_err(|error| PresignedError::Send {
        url: shown.to_string(),
        // reqwest's text would append the URL whole, signature included.
        error: error.without_url(),
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::NOT_FOUND {
        return Err(PresignedError::Expired {
            url: shown.to_string(),
            status,
        });
    }
    if !status.is_success() {
        return Err(PresignedError::Status {
            url: shown.to_string(),
            status,
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_of_a_presigned_url_is_never_shown() {
        assert_eq!(
            without_query("https://s3.example/1/a/archive.ts?X-Amz-Signature=abc&Expires=1"),
            "https://s3.example/1/a/archive.ts"
        );
        assert_eq!(without_query("http://h/x.mp4"), "http://h/x.mp4");
    }

    #[tokio::test]
    async fn a_failed_request_never_shows_the_signature() {
        // A port nobody listens on: the request fails in reqwest, whose own text appends the URL.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("http://127.0.0.1:{port}/1/a/archive.ts?X-Amz-Signature=SECRETSIG");
        let Err(err) = PresignedDownload::open(&url).await else {
            panic!("nothing listens on port {port}");
        };
        let mut shown = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            shown.push_str(&format!(": {e}"));
            source = e.source();
        }
        assert!(shown.contains("/1/a/archive.ts"), "{shown}");
        assert!(!shown.contains("SECRETSIG"), "{shown}");
    }
}
