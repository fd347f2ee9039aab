//! How a [`Store`](super::Store) talks to its target: timeouts, retries and their backoff
//! ([`StoreOptions`], [`Backoff`]), and how uploads are cut into parts ([`MultipartOptions`]).

use std::time::Duration;

#[cfg(doc)]
use super::Store;

/// How a [`Store`] talks to its target.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included (a download part, an upload part).
    pub request_timeout: Duration,
    /// How often a failed request (network failure, 5xx, 429) is tried again, after the first try, by
    /// [`Store::head`], [`Store::put`], [`Store::delete`] and the others. Downloads have their own count in
    /// [`DownloadOptions::retries`](crate::DownloadOptions::retries).
    pub retries: u32,
    /// The waits between tries.
    pub backoff: Backoff,
    /// Accept a plain `http://` endpoint on any host. Off by default: plain HTTP is used only for a loopback
    /// endpoint (`127.0.0.0/8`, `::1`, `localhost`: a local test server), since requests carry signatures
    /// and data in clear text otherwise.
    pub allow_http: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            retries: 3,
            backoff: Backoff::default(),
            allow_http: false,
        }
    }
}

/// Exponential backoff with jitter: try `n` (from 0) waits `initial × 2ⁿ`, at most `max`, times a random
/// factor in [0.5, 1] so that parallel parts failing together do not retry together.
///
/// ```
/// use std::time::Duration;
/// let b = storage_fetch::Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
/// assert!(b.delay(0) <= Duration::from_millis(100) && b.delay(0) >= Duration::from_millis(50));
/// assert!(b.delay(10) <= Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        let full = self.initial.saturating_mul(factor).min(self.max);
        let jitter: f64 = rand::RngExt::random_range(&mut rand::rng(), 0.5..=1.0);
        full.mul_f64(jitter)
    }

    /// The waits of `retries` retries, in order: what a `backon` retry loop is given, so that every retry of
    /// this crate (requests, download parts) follows the same schedule.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = storage_fetch::Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// let waits: Vec<Duration> = b.delays(3).collect();
    /// assert_eq!(waits.len(), 3);
    /// assert!(waits[2] <= Duration::from_millis(400) && waits[2] >= Duration::from_millis(200));
    /// ```
    pub fn delays(self, retries: u32) -> impl Iterator<Item = Duration> + Send + Sync + 'static {
        (0..retries).map(move |retry| self.delay(retry))
    }
}

/// How [`Store::put_multipart`] splits and sends an upload.
#[derive(Debug, Clone)]
pub struct MultipartOptions {
    /// Bytes per part. S3 requires at least 5 MiB for every part but the last; Azure blocks may be smaller.
    pub part_size: usize,
    /// Parts uploading at once; memory use is about `part_size × (concurrency + 1)`.
    pub concurrency: usize,
}

impl Default for MultipartOptions {
    fn default() -> Self {
        Self {
            part_size: 8 << 20,
            concurrency: 4,
        }
    }
}
