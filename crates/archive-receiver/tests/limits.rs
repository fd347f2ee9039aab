//! The receiver's bounded queue to the ledger, through the router alone (no socket): while the ledger is
//! locked by another connection, one callback waits for it and the next one is answered 503 with
//! `Retry-After`; once the lock is gone the waiting one is committed and answered 200.
#![allow(clippy::unwrap_used)]

use archive_db::{GroupWriter, Ledger};
use archive_receiver::{Limits, ReceiverConfig, router_with_gauge};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

fn callback(id: &str) -> Request<Body> {
    let body =
        format!(r#"{{"id":"{id}","event":"archive","status":"uploaded","password":"cGFzcw=="}}"#);
    Request::post("/cb").body(Body::from(body)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_503_with_retry_after_and_nothing_waits_unbounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let writer = GroupWriter::start(Ledger::open(&path).unwrap());
    let mut config = ReceiverConfig::new("/cb");
    config.limits = Limits {
        max_queued: 1,
        ..Limits::default()
    };
    let (app, gauge) = router_with_gauge(config, writer.submitter());
    assert_eq!((gauge.queued(), gauge.capacity()), (0, 1));

    // Another process holds the write lock: the writer cannot commit for now.
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let first = tokio::spawn(
        app.clone()
            .oneshot(callback("b40ef09b-3811-4726-b508-e41a0f96c601")),
    );
    // Wait for the event: the first callback is waiting for the ledger.
    while gauge.queued() < 1 {
        tokio::task::yield_now().await;
    }
    let second = app
        .clone()
        .oneshot(callback("b40ef09b-3811-4726-b508-e41a0f96c602"))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()[header::RETRY_AFTER], "1");

    locker.execute_batch("ROLLBACK").unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(gauge.queued(), 0, "the slot is given back");
    writer.shutdown().unwrap();
    let ledger = Ledger::open(&path).unwrap();
    assert!(
        ledger
            .contains("b40ef09b-3811-4726-b508-e41a0f96c601")
            .unwrap()
    );
    assert!(
        !ledger
            .contains("b40ef09b-3811-4726-b508-e41a0f96c602")
            .unwrap()
    );
}
