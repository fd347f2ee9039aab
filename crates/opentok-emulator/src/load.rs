//! A callback load generator (issue 14): service-like archive callbacks POSTed to one or more receivers, with
//! the service's retries, reporting which archives were acknowledged and how long that took.
//!
//! * **Callbacks**: `count` distinct archives (fresh ids), each one `"event": "archive"` callback of status
//!   [`LoadConfig::status`] carrying a password like the one an RSA-2048 project key makes (344 characters),
//!   as the emulator's own [`crate::callbacks`] sends them.
//! * **Retries** like the service's: a try fails on anything but 200 or on a connection error or timeout; it is
//!   tried again after [`LoadConfig::initial_backoff`], doubling up to [`LoadConfig::max_backoff`], until
//!   [`LoadConfig::give_up_after`] has passed since the first try.
//! * **Receivers** ([`Fanout`]): round-robin, with a retry going to the next receiver as a load balancer
//!   fails over, or every callback to every receiver at once (the service retrying while the first try is
//!   still in flight at another machine).
//! * **Report** ([`LoadReport`]): the acknowledged archive ids (a 200 from some receiver), those given up,
//!   tries, p50/p99 of the time from the first try to the acknowledgement, acknowledged per second.
//!
//! The `callback-load` program (`src/bin/callback-load.rs`) runs it from the command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How callbacks are spread over the receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fanout {
    /// Callback `i` goes first to receiver `i mod n`; each retry to the next one.
    RoundRobin,
    /// Every callback goes to every receiver at once (each with its own retries).
    All,
}

impl std::str::FromStr for Fanout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round-robin" => Ok(Self::RoundRobin),
            "all" => Ok(Self::All),
            other => Err(format!(
                "unknown fanout `{other}`: expected `round-robin` or `all`"
            )),
        }
    }
}

/// What to send, where, and how hard.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The receivers' callback URLs (`http://127.0.0.1:PORT/callbacks/archive`).
    pub urls: Vec<String>,
    /// How the callbacks are spread over `urls`.
    pub fanout: Fanout,
    /// How many archives (one callback each).
    pub count: u64,
    /// How many callbacks are in flight at once.
    pub concurrency: usize,
    /// The archives' status (`uploaded` by default).
    pub status: String,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// How long one try may take.
    pub timeout: Duration,
    /// No try starts this long after the first.
    pub give_up_after: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            fanout: Fanout::RoundRobin,
            count: 1000,
            concurrency: 32,
            status: "uploaded".into(),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(30),
        }
    }
}

/// Why a load could not be run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No receiver URL was given.
    #[error("no receiver URL")]
    NoUrl,
    /// Concurrency 0 would send nothing.
    #[error("concurrency must be at least 1")]
    NoConcurrency,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// What a load achieved.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The archives sent.
    pub sent: u64,
    /// The ids of the archives a receiver answered 200 for, in acknowledgement order.
    pub acked: Vec<String>,
    /// The ids given up on (no 200 within `give_up_after`).
    pub gave_up: Vec<String>,
    /// Every HTTP try, retries included.
    pub tries: u64,
    /// Time from the first try to the acknowledgement, per acknowledged archive, sorted.
    pub latencies: Vec<Duration>,
    /// From the first callback sent to the last answered.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Acknowledged archives per second.
    pub fn acked_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.acked.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// The `q` quantile (0..=1) of the acknowledgement latencies, nearest rank; zero when none.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }

    /// A one-line summary: `sent=N acked=N gave_up=N tries=N elapsed_ms=N acked_per_s=N p50_ms=N p99_ms=N`.
    pub fn summary(&self) -> String {
        format!(
            "sent={} acked={} gave_up={} tries={} elapsed_ms={} acked_per_s={:.1} p50_ms={:.2} p99_ms={:.2}",
            self.sent,
            self.acked.len(),
            self.gave_up.len(),
            self.tries,
            self.elapsed.as_millis(),
            self.acked_per_second(),
            self.latency_quantile(0.5).as_secs_f64() * 1000.0,
            self.latency_quantile(0.99).as_secs_f64() * 1000.0,
        )
    }
}

/// The nearest-rank quantile of sorted `values`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The receiver of try `attempt` (0-based) of callback `index` under round-robin.
fn round_robin(index: u64, attempt: u64, receivers: usize) -> usize {
    ((index + attempt) % receivers as u64) as usize
}

/// The wait before retry `n` (0-based): `initial * 2^n`, at most `max`.
fn backoff(n: u32, initial: Duration, max: Duration) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(n.min(20)))
        .min(max)
}

/// A password as an RSA-2048 project key makes: 344 base64 characters.
const PASSWORD: &str = "QUJD";

/// The callback body of one archive, as the service sends it.
pub fn callback_body(id: &str, status: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "id": id,
        "event": "archive",
        "createdAt": 1_700_000_000_000u64,
        "duration": 0,
        "name": "callback-load",
        "partnerId": 123456,
        "reason": "",
        "sessionId": "2_MX4xMjM0NTZ-fmNhbGxiYWNrLWxvYWQ",
        "size": 18_023_312,
        "status": status,
        "password": PASSWORD.repeat(86),
    });
    body.to_string().into_bytes()
}

struct Shared {
    config: LoadConfig,
    http: reqwest::Client,
    next: AtomicU64,
    tries: AtomicU64,
    results: Mutex<Results>,
}

#[derive(Default)]
struct Results {
    acked: Vec<String>,
    gave_up: Vec<String>,
    latencies: Vec<Duration>,
}

/// Sends the load and waits for every callback to be acknowledged or given up.
pub async fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    if config.urls.is_empty() {
        return Err(LoadError::NoUrl);
    }
    if config.concurrency == 0 {
        return Err(LoadError::NoConcurrency);
    }
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| LoadError::Http(e.to_string()))?;
    let shared = Arc::new(Shared {
        config,
        http,
        next: AtomicU64::new(0),
        tries: AtomicU64::new(0),
        results: Mutex::new(Results::default()),
    });
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..shared.config.concurrency {
        let shared = shared.clone();
        workers.spawn(async move {
            loop {
                let index = shared.next.fetch_add(1, Ordering::Relaxed);
                if index >= shared.config.count {
                    break;
                }
                one_archive(&shared, index).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let mut results = std::mem::take(&mut *shared.results.lock().await);
    results.latencies.sort_unstable();
    Ok(LoadReport {
        sent: shared.config.count,
        acked: results.acked,
        gave_up: results.gave_up,
        tries: shared.tries.load(Ordering::Relaxed),
        latencies: results.latencies,
        elapsed,
    })
}

/// Delivers archive `index`'s callback per the fanout and records the outcome.
async fn one_archive(shared: &Shared, index: u64) {
    let id = opentok_rest::auth::new_jti();
    let body = callback_body(&id, &shared.config.status);
    let started = Instant::now();
    let acked = match shared.config.fanout {
        Fanout::RoundRobin => deliver(shared, &body, |attempt| {
            round_robin(index, attempt, shared.config.urls.len())
        })
        .await
        .is_some(),
        Fanout::All => {
            let tries = (0..shared.config.urls.len()).map(|n| deliver(shared, &body, move |_| n));
            let outcomes = futures_util::future::join_all(tries).await;
            outcomes.iter().any(Option::is_some)
        }
    };
    let latency = started.elapsed();
    let mut results = shared.results.lock().await;
    if acked {
        results.acked.push(id);
        results.latencies.push(latency);
    } else {
        results.gave_up.push(id);
    }
}

/// Tries `body` until a 200 or `give_up_after`; `receiver(attempt)` picks the URL of each try.
async fn deliver(
    shared: &Shared,
    body: &[u8],
    receiver: impl Fn(u64) -> usize,
) -> Option<Duration> {
    let config = &shared.config;
    let started = Instant::now();
    let mut attempt: u64 = 0;
    loop {
        shared.tries.fetch_add(1, Ordering::Relaxed);
        let url = &config.urls[receiver(attempt)];
        let answer = shared
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(config.timeout)
            .body(body.to_vec())
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            return Some(started.elapsed());
        }
        let wait = backoff(
            attempt.min(u64::from(u32::MAX)) as u32,
            config.initial_backoff,
            config.max_backoff,
        );
        if started.elapsed() + wait > config.give_up_after {
            return None;
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|&m| Duration::from_millis(m)).collect() };
        let v = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(quantile(&ms(&[7]), 0.99), Duration::from_millis(7));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn round_robin_spreads_first_tries_and_moves_retries_to_the_next_receiver() {
        let first: Vec<usize> = (0..6).map(|i| round_robin(i, 0, 3)).collect();
        assert_eq!(first, [0, 1, 2, 0, 1, 2]);
        let retries: Vec<usize> = (0..4).map(|a| round_robin(1, a, 2)).collect();
        assert_eq!(retries, [1, 0, 1, 0]);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (0..6).map(|n| backoff(n, ms(100), ms(1000))).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(backoff(u32::MAX, ms(100), ms(1000)), ms(1000));
    }

    #[test]
    fn fanout_parses_and_refuses_unknown_names() {
        assert_eq!("round-robin".parse::<Fanout>(), Ok(Fanout::RoundRobin));
        assert_eq!("all".parse::<Fanout>(), Ok(Fanout::All));
        assert!("random".parse::<Fanout>().unwrap_err().contains("random"));
    }

    #[test]
    fn the_body_is_an_archive_callback_with_a_long_password() {
        let body: serde_json::Value =
            serde_json::from_slice(&callback_body("abc", "uploaded")).expect("json");
        assert_eq!(body["id"], "abc");
        assert_eq!(body["event"], "archive");
        assert_eq!(body["status"], "uploaded");
        assert_eq!(body["password"].as_str().map(str::len), Some(344));
    }

    /// A receiver that answers 503 to each archive's first try and 200 afterwards, counting tries per id.
    #[derive(Clone, Default)]
    struct Flaky {
        seen: Arc<std::sync::Mutex<HashMap<String, u32>>>,
        posts: Arc<AtomicUsize>,
    }

    async fn flaky(State(s): State<Flaky>, body: axum::body::Bytes) -> StatusCode {
        s.posts.fetch_add(1, Ordering::Relaxed);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json body");
        let id = v["id"].as_str().expect("id").to_string();
        let mut seen = s.seen.lock().expect("lock");
        let n = seen.entry(id).or_default();
        *n += 1;
        if *n == 1 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }

    async fn serve(state: Flaky) -> String {
        let app = Router::new().route("/cb", post(flaky)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/cb")
    }

    fn quick(urls: Vec<String>, fanout: Fanout, count: u64) -> LoadConfig {
        LoadConfig {
            urls,
            fanout,
            count,
            concurrency: 4,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            give_up_after: Duration::from_millis(600),
            ..LoadConfig::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_turn_a_503_into_an_acknowledgement_and_ids_are_distinct() {
        let state = Flaky::default();
        let url = serve(state.clone()).await;
        let report = run(quick(vec![url], Fanout::RoundRobin, 20))
            .await
            .expect("run");
        assert_eq!(report.sent, 20);
        assert_eq!(report.acked.len(), 20, "{}", report.summary());
        assert!(report.gave_up.is_empty());
        assert_eq!(report.tries, 40, "one 503 and one 200 each");
        assert_eq!(state.posts.load(Ordering::Relaxed), 40);
        let seen = state.seen.lock().expect("lock");
        assert_eq!(seen.len(), 20, "20 distinct archive ids");
        for id in &report.acked {
            assert_eq!(seen.get(id), Some(&2), "{id} was tried twice");
        }
        assert_eq!(report.latencies.len(), 20);
        assert!(report.latency_quantile(0.99) >= report.latency_quantile(0.5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_receiver_is_given_up_after_the_deadline_and_round_robin_fails_over() {
        // A port nothing listens on: bound, then closed.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}/cb", l.local_addr().expect("addr"))
        };
        let started = Instant::now();
        let report = run(quick(vec![dead.clone()], Fanout::RoundRobin, 3))
            .await
            .expect("run");
        assert!(report.acked.is_empty());
        assert_eq!(report.gave_up.len(), 3);
        assert!(report.tries > 3, "retried: {}", report.summary());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up in time"
        );

        // With a live receiver beside it, round-robin's retries reach the live one: every archive is acknowledged.
        let state = Flaky::default();
        let live = serve(state.clone()).await;
        let report = run(quick(vec![dead, live], Fanout::RoundRobin, 10))
            .await
            .expect("run");
        assert_eq!(report.acked.len(), 10, "{}", report.summary());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fanout_all_sends_each_callback_to_every_receiver() {
        let (a, b) = (Flaky::default(), Flaky::default());
        let urls = vec![serve(a.clone()).await, serve(b.clone()).await];
        let report = run(quick(urls, Fanout::All, 5)).await.expect("run");
        assert_eq!(report.acked.len(), 5);
        for s in [&a, &b] {
            let seen = s.seen.lock().expect("lock");
            assert_eq!(seen.len(), 5, "each receiver got every archive");
        }
    }

    #[tokio::test]
    async fn no_url_or_no_concurrency_is_an_error() {
        assert!(matches!(
            run(LoadConfig::default()).await,
            Err(LoadError::NoUrl)
        ));
        let config = LoadConfig {
            urls: vec!["http://127.0.0.1:1/".into()],
            concurrency: 0,
            ..LoadConfig::default()
        };
        assert!(matches!(run(config).await, Err(LoadError::NoConcurrency)));
    }
}
