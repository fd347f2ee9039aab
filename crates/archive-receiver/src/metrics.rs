//! The receiver's metrics, served by `GET /metrics` in the Prometheus (OpenMetrics) text format through the
//! `prometheus-client` crate:
//!
//! | name | type | what |
//! |---|---|---|
//! | `archivectl_callbacks_received_total` | counter | callbacks POSTed to the callback path |
//! | `archivectl_callbacks_acknowledged_total` | counter | answered 200: committed to the ledger |
//! | `archivectl_callbacks_rejected_total{reason}` | counter | not acknowledged, by [`Reason`] |
//! | `archivectl_commit_latency_seconds` | histogram | from handing a callback to the ledger's writer to its commit |
//! | `archivectl_queue_depth` | gauge | callbacks waiting for the ledger now |
//! | `archivectl_queue_capacity` | gauge | the most that may wait ([`crate::Limits::max_queued`]) |
//! | `certificate_expiry_days` | gauge | days left of the active certificate (only when known), computed at each scrape |
//! | `archivectl_certificate_expiry_days` | gauge | the same, under the prefix of the others |

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::QueueGauge;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a callback was not acknowledged: the `reason` label of `archivectl_callbacks_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 401: no token, or the wrong one.
    Unauthorized,
    /// 401: unsigned, or a signature that does not verify.
    BadSignature,
    /// 400: not a JSON object, or a broken archive callback (its id, say).
    BadRequest,
    /// 403: a callback for another project.
    OtherProject,
    /// 503: too many callbacks already waiting for the ledger.
    QueueFull,
    /// 503: the ledger could not commit it.
    LedgerUnavailable,
}

impl Reason {
    /// Every reason, so each has a series (at 0) from the start.
    pub const ALL: [Reason; 6] = [
        Reason::Unauthorized,
        Reason::BadSignature,
        Reason::BadRequest,
        Reason::OtherProject,
        Reason::QueueFull,
        Reason::LedgerUnavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::BadSignature => "bad_signature",
            Reason::BadRequest => "bad_request",
            Reason::OtherProject => "other_project",
            Reason::QueueFull => "queue_full",
            Reason::LedgerUnavailable => "ledger_unavailable",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    received: Counter,
    acknowledged: Counter,
    rejected: Family<ReasonLabel, Counter>,
    commit_latency: Histogram,
    queue_depth: Gauge,
    queue_capacity: Gauge,
    certificate_not_after: Mutex<Option<ExpirySource>>,
}

/// Where the certificate gauges read the end of validity, at each scrape.
#[derive(Clone)]
struct ExpirySource(Arc<dyn Fn() -> Option<SystemTime> + Send + Sync>);

impl std::fmt::Debug for ExpirySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpirySource(..)")
    }
}

/// The receiver's metrics; cheap to clone (one set shared by every clone). Make one with [`Metrics::new`],
/// give it to [`crate::router_with`], and set what only the caller knows ([`Metrics::set_certificate_expiry`]).
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, every counter at 0.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("archivectl");
        let received = Counter::default();
        registry.register(
            "callbacks_received",
            "Callbacks POSTed to the callback path",
            received.clone(),
        );
        let acknowledged = Counter::default();
        registry.register(
            "callbacks_acknowledged",
            "Callbacks answered 200: committed to the ledger",
            acknowledged.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        for reason in Reason::ALL {
            let _ = rejected.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        registry.register(
            "callbacks_rejected",
            "Callbacks not acknowledged, by reason",
            rejected.clone(),
        );
        // 0.5 ms to about 16 s.
        let commit_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "commit_latency_seconds",
            "Time from handing a callback to the ledger's writer to its commit",
            commit_latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Callbacks waiting for the ledger now",
            queue_depth.clone(),
        );
        let queue_capacity = Gauge::default();
        registry.register(
            "queue_capacity",
            "The most callbacks that may wait for the ledger",
            queue_capacity.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            received,
            acknowledged,
            rejected,
            commit_latency,
            queue_depth,
            queue_capacity,
            certificate_not_after: Mutex::new(None),
        }))
    }

    /// The end of validity (`notAfter`) of the certificate the service encrypts with now, for the
    /// `certificate_expiry_days` and `archivectl_certificate_expiry_days` gauges (absent until set, or when
    /// `None`). The days left are computed at each scrape.
    pub fn set_certificate_expiry(&self, not_after: Option<SystemTime>) {
        self.set_source(not_after.map(|at| ExpirySource(Arc::new(move || Some(at)))));
    }

    /// Like [`Metrics::set_certificate_expiry`], but `not_after` is asked at each scrape, so a certificate
    /// replaced meanwhile (a rotation) shows its own expiry on the next scrape. `None` from it: no gauge.
    pub fn set_certificate_expiry_source(
        &self,
        not_after: impl Fn() -> Option<SystemTime> + Send + Sync + 'static,
    ) {
        self.set_source(Some(ExpirySource(Arc::new(not_after))));
    }

    fn set_source(&self, source: Option<ExpirySource>) {
        if let Ok(mut at) = self.0.certificate_not_after.lock() {
            *at = source;
        }
    }

    pub(crate) fn received(&self) {
        self.0.received.inc();
    }

    pub(crate) fn acknowledged(&self, latency: Duration) {
        self.0.acknowledged.inc();
        self.0.commit_latency.observe(latency.as_secs_f64());
    }

    pub(crate) fn rejected(&self, reason: Reason) {
        self.0
            .rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A commit that failed took time too.
    pub(crate) fn commit_failed(&self, latency: Duration) {
        self.0.commit_latency.observe(latency.as_secs_f64());
        self.rejected(Reason::LedgerUnavailable);
    }

    /// The exposition, as of now.
    pub fn encode(&self, queue: &QueueGauge) -> String {
        let inner = &self.0;
        inner
            .queue_depth
            .set(i64::try_from(queue.queued()).unwrap_or(i64::MAX));
        inner
            .queue_capacity
            .set(i64::try_from(queue.capacity()).unwrap_or(i64::MAX));
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &inner.registry);
        let source = inner
            .certificate_not_after
            .lock()
            .ok()
            .and_then(|s| s.clone());
        // Asked outside the lock: the source may read the ledger.
        if let Some(not_after) = source.and_then(|s| (s.0)()) {
            let days = Gauge::<i64>::default();
            days.set(days_left(not_after, SystemTime::now()));
            // The name, and the same under the prefix of the other metrics.
            let mut certificate = Registry::default();
            certificate.register(
                "certificate_expiry_days",
                "Whole days left before the active certificate expires (negative: expired)",
                days.clone(),
            );
            certificate.sub_registry_with_prefix("archivectl").register(
                "certificate_expiry_days",
                "Whole days left before the active certificate expires (negative: expired)",
                days,
            );
            let _ = prometheus_client::encoding::text::encode_registry(&mut text, &certificate);
        }
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }
}

/// Whole days from `now` to `not_after`, rounded down (so 0 on the last day, -1 the day after).
fn days_left(not_after: SystemTime, now: SystemTime) -> i64 {
    let seconds = match not_after.duration_since(now) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    };
    seconds.div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_round_down() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = Duration::from_secs(86_400);
        assert_eq!(days_left(now + day * 30, now), 30);
        assert_eq!(days_left(now + day * 30 - Duration::from_secs(1), now), 29);
        assert_eq!(days_left(now + Duration::from_secs(5), now), 0);
        assert_eq!(days_left(now - Duration::from_secs(5), now), -1);
        assert_eq!(days_left(now - day * 2, now), -2);
    }
}
