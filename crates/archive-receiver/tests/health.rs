//! `/readyz` and `/metrics` through the router alone (no socket): the counters move as callbacks are
//! acknowledged or rejected, the commit latency is observed, the certificate gauge appears once known, and
//! readiness follows whether the ledger can commit (a trigger refusing writes, another connection holding the
//! write lock), with the callback itself answered 503 then too, never 200 without a commit.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use archive_db::{GroupWriter, Ledger};
use archive_receiver::{Metrics, ReceiverConfig, router_with};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

fn callback(id: &str) -> Request<Body> {
    let body =
        format!(r#"{{"id":"{id}","event":"archive","status":"uploaded","password":"cGFzcw=="}}"#);
    Request::post("/cb?token=tok-h")
        .body(Body::from(body))
        .unwrap()
}

async fn get(app: &Router, path: &str) -> (StatusCode, String, String) {
    let answer = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = answer.status();
    let kind = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, kind, String::from_utf8(body.to_vec()).unwrap())
}

async fn post(app: &Router, request: Request<Body>) -> StatusCode {
    app.clone().oneshot(request).await.unwrap().status()
}

/// The value of the sample `name` (with its labels, as printed) in the exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn config() -> ReceiverConfig {
    let mut config = ReceiverConfig::new("/cb");
    config.token = Some(zeroize::Zeroizing::new(b"tok-h".to_vec()));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_move_as_callbacks_are_acknowledged_and_rejected() {
    let writer = GroupWriter::start(Ledger::open_in_memory().unwrap());
    let metrics = Metrics::new();
    let (app, _) = router_with(config(), writer.submitter(), metrics.clone());

    let (status, kind, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(&text, "archivectl_callbacks_received_total"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"archivectl_callbacks_rejected_total{reason="unauthorized"}"#
        ),
        Some(0.0),
        "every reason has a series from the start: {text}"
    );
    assert_eq!(sample(&text, "archivectl_queue_depth"), Some(0.0));
    assert_eq!(sample(&text, "archivectl_queue_capacity"), Some(10_000.0));
    assert!(!text.contains("certificate_expiry_days"), "{text}");

    assert_eq!(
        post(&app, callback("b40ef09b-3811-4726-b508-e41a0f96c611")).await,
        StatusCode::OK
    );
    assert_eq!(
        post(&app, callback("b40ef09b-3811-4726-b508-e41a0f96c612")).await,
        StatusCode::OK
    );
    let wrong_token = Request::post("/cb?token=nope")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(post(&app, wrong_token).await, StatusCode::UNAUTHORIZED);
    let not_json = Request::post("/cb?token=tok-h")
        .body(Body::from("{x"))
        .unwrap();
    assert_eq!(post(&app, not_json).await, StatusCode::BAD_REQUEST);

    let (_, _, text) = get(&app, "/metrics").await;
    assert_eq!(
        sample(&text, "archivectl_callbacks_received_total"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "archivectl_callbacks_acknowledged_total"),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"archivectl_callbacks_rejected_total{reason="unauthorized"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"archivectl_callbacks_rejected_total{reason="bad_request"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"archivectl_callbacks_rejected_total{reason="ledger_unavailable"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "archivectl_commit_latency_seconds_count"),
        Some(2.0)
    );
    assert!(sample(&text, "archivectl_commit_latency_seconds_sum").unwrap() > 0.0);
    assert!(
        !text.contains("tok-h") && !text.contains("cGFzcw=="),
        "{text}"
    );

    // The certificate gauge: whole days left.
    let day = Duration::from_secs(86_400);
    metrics.set_certificate_expiry(Some(
        SystemTime::now() + day * 40 + Duration::from_secs(3600),
    ));
    let (_, _, text) = get(&app, "/metrics").await;
    assert_eq!(
        sample(&text, "archivectl_certificate_expiry_days"),
        Some(40.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "certificate_expiry_days"),
        Some(40.0),
        "the issue's name too: {text}"
    );
    assert!(text.ends_with("# EOF\n"));
    metrics.set_certificate_expiry(Some(SystemTime::now() - day * 3 - Duration::from_secs(60)));
    let (_, _, text) = get(&app, "/metrics").await;
    assert_eq!(
        sample(&text, "archivectl_certificate_expiry_days"),
        Some(-4.0),
        "{text}"
    );
    writer.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_whether_the_ledger_can_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let writer = GroupWriter::start(Ledger::open(&path).unwrap());
    let (app, _) = router_with(config(), writer.submitter(), Metrics::new());
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);

    // The ledger refuses writes: not ready, and the callback is not acknowledged either.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
        )
        .unwrap();
    let (status, _, why) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{why}");
    assert!(
        why.contains("cannot commit") && why.contains("disk says no"),
        "{why}"
    );
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK, "still alive");
    assert_eq!(
        post(&app, callback("b40ef09b-3811-4726-b508-e41a0f96c621")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (_, _, text) = get(&app, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            r#"archivectl_callbacks_rejected_total{reason="ledger_unavailable"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "archivectl_callbacks_acknowledged_total"),
        Some(0.0)
    );

    // Writes allowed again: ready, and callbacks acknowledged; the probes left nothing behind.
    other.execute_batch("DROP TRIGGER refuse").unwrap();
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    assert_eq!(
        post(&app, callback("b40ef09b-3811-4726-b508-e41a0f96c622")).await,
        StatusCode::OK
    );

    // Another connection holds the write lock: not ready (the probe gives up after its timeout).
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, _, why) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{why}");
    assert!(why.contains("did not answer"), "{why}");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    writer.shutdown().unwrap();
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(
        ledger.counts().unwrap(),
        (1, 1),
        "one archive, one event: no probe row"
    );
}
