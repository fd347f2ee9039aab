//! A leased pull: the renewal keeps the lease, notices when another worker took it over (the pull is then
//! cancelled and the fence refuses to settle), and the run's own token still cancels it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use archive_db::IncomingEvent;

use super::*;

const ID: &str = "00000000-0000-4000-8000-00000000000a";

fn ledger() -> Mutex<Ledger> {
    let mut l = Ledger::open_in_memory().unwrap();
    let body =
        format!(r#"{{"id":"{ID}","event":"archive","status":"uploaded","password":"ZTQy"}}"#);
    l.record_event(&IncomingEvent::from_callback(body.as_bytes(), "t").unwrap())
        .unwrap();
    Mutex::new(l)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Waits for `token` to be cancelled, failing the test after a generous bound.
async fn cancelled(token: &CancelToken) -> StopReason {
    tokio::time::timeout(Duration::from_secs(60), token.cancelled())
        .await
        .expect("cancelled within a minute")
}

#[test]
fn worker_ids_name_the_host_and_process_and_differ() {
    let (a, b) = (WorkerId::new(), WorkerId::new());
    assert_ne!(a, b);
    assert!(
        a.as_str().contains(&format!("-{}-", std::process::id())),
        "{a}"
    );
    assert!(!a.as_str().starts_with('-'), "{a}");
}

#[test]
fn a_held_lease_is_renewed_while_the_work_runs_and_released_after() {
    let l = ledger();
    let me = WorkerId::new();
    let opts = LeaseOptions {
        duration: Duration::from_secs(600),
        renew_every: Duration::from_millis(10),
    };
    let Claimed::Held(leased) = claim(&l, &me, ID, opts).unwrap() else {
        panic!("free archive")
    };
    let first = lock(&l).lease(ID).unwrap().unwrap();
    let other = WorkerId::new();
    assert!(
        matches!(claim(&l, &other, ID, opts).unwrap(), Claimed::Busy(b) if b.owner == me.as_str())
    );
    let parent = CancelToken::new();
    // The work waits until the ledger shows a renewal (a later expiry): an event, not a delay.
    let renewed = rt().block_on(leased.run(&parent, async {
        loop {
            let now = lock(&l).lease(ID).unwrap().unwrap();
            if now.expires_at_ms > first.expires_at_ms {
                break now;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }));
    assert_eq!(renewed.owner, me.as_str());
    assert!(!leased.lost());
    leased.fence().unwrap();
    assert!(leased.release().unwrap());
    assert_eq!(lock(&l).lease(ID).unwrap(), None);
}

#[test]
fn a_lease_taken_over_cancels_the_work_and_the_fence_refuses_to_settle() {
    let l = ledger();
    let me = WorkerId::new();
    let opts = LeaseOptions {
        duration: Duration::from_secs(600),
        renew_every: Duration::from_millis(10),
    };
    let Claimed::Held(leased) = claim(&l, &me, ID, opts).unwrap() else {
        panic!("free archive")
    };
    // Another worker takes it over, as if ours had expired (its clock an hour ahead).
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    assert!(matches!(
        lock(&l)
            .claim_lease(ID, "thief", later, Duration::from_secs(600))
            .unwrap(),
        Claim::Acquired(_)
    ));
    let parent = CancelToken::new();
    let reason = rt().block_on(leased.run(&parent, cancelled(leased.cancel_token())));
    assert_eq!(reason, StopReason::Terminate);
    assert!(leased.lost());
    assert!(parent.reason().is_none(), "only this archive's pull stops");
    assert!(matches!(leased.fence(), Err(LeaseError::Lost { id }) if id == ID));
    assert!(!leased.release().unwrap(), "not ours to release");
    assert_eq!(lock(&l).lease(ID).unwrap().unwrap().owner, "thief");
}

#[test]
fn the_runs_token_cancels_the_leased_work_without_losing_the_lease() {
    let l = ledger();
    let me = WorkerId::new();
    let Claimed::Held(leased) = claim(&l, &me, ID, LeaseOptions::default()).unwrap() else {
        panic!("free archive")
    };
    let parent = CancelToken::new();
    parent.cancel(StopReason::Interrupt);
    let reason = rt().block_on(leased.run(&parent, cancelled(leased.cancel_token())));
    assert_eq!(reason, StopReason::Interrupt);
    assert!(!leased.lost());
    assert!(leased.release().unwrap());
}
