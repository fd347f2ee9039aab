//! The lease rules: one winner among concurrent claims (connections of their own on one file), takeover only
//! after expiry, renew and release only by the owner.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};
use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::IncomingEvent;

const MINUTE: Duration = Duration::from_secs(60);

fn uid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn record(ledger: &mut Ledger, id: &str) {
    let body =
        format!(r#"{{"id":"{id}","event":"archive","status":"uploaded","password":"ZTQy"}}"#);
    ledger
        .record_event(&IncomingEvent::from_callback(body.as_bytes(), "t").unwrap())
        .unwrap();
}

#[test]
fn of_ledgers_on_one_file_claiming_at_once_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite3");
    let rounds = 40;
    {
        let mut l = Ledger::open(&path).unwrap();
        for i in 0..rounds {
            record(&mut l, &uid(i));
        }
    }
    let workers = 4;
    let barrier = Arc::new(Barrier::new(workers));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut l = Ledger::open(&path).unwrap();
                let owner = format!("worker-{w}");
                let mut won = Vec::new();
                for i in 0..rounds {
                    barrier.wait();
                    let now = OffsetDateTime::now_utc();
                    match l.claim_lease(&uid(i), &owner, now, MINUTE).unwrap() {
                        Claim::Acquired(lease) => {
                            assert_eq!(lease.owner, owner);
                            won.push(i);
                        }
                        Claim::HeldBy(lease) => assert_ne!(lease.owner, owner),
                    }
                }
                won
            })
        })
        .collect();
    let mut winners = vec![0; rounds];
    for h in handles {
        for i in h.join().unwrap() {
            winners[i] += 1;
        }
    }
    assert_eq!(winners, vec![1; rounds], "exactly one winner per archive");
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.leases().unwrap().len(), rounds);
}

#[test]
fn an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew_or_release_it() {
    let mut l = Ledger::open_in_memory().unwrap();
    let id = uid(1);
    record(&mut l, &id);
    let t0 = OffsetDateTime::now_utc();
    let Claim::Acquired(a) = l.claim_lease(&id, "a", t0, MINUTE).unwrap() else {
        panic!("a claims a free archive")
    };
    assert_eq!(a.expires_at_ms - a.acquired_at_ms, 60_000);
    // Not expired yet (one millisecond before): b is refused and told who holds it.
    let before = t0 + Duration::from_millis(59_999);
    assert_eq!(
        l.claim_lease(&id, "b", before, MINUTE).unwrap(),
        Claim::HeldBy(a.clone())
    );
    // a renews: the expiry moves; the lease is still a's.
    let renewed = l.renew_lease(&id, "a", before, MINUTE).unwrap().unwrap();
    assert_eq!(renewed.expires_at_ms, millis(before) + 60_000);
    assert_eq!(renewed.acquired_at_ms, a.acquired_at_ms);
    assert!(matches!(
        l.claim_lease(&id, "b", t0 + MINUTE, MINUTE).unwrap(),
        Claim::HeldBy(_)
    ));
    // Expired: b takes it over; a has lost it.
    let expired = before + MINUTE;
    let Claim::Acquired(b) = l.claim_lease(&id, "b", expired, MINUTE).unwrap() else {
        panic!("b takes over an expired lease")
    };
    assert_eq!((b.owner.as_str(), b.acquired_at_ms), ("b", millis(expired)));
    assert_eq!(l.renew_lease(&id, "a", expired, MINUTE).unwrap(), None);
    assert!(!l.release_lease(&id, "a").unwrap());
    assert_eq!(l.lease(&id).unwrap().unwrap().owner, "b");
    // The owner claiming again extends its own lease.
    let again = expired + Duration::from_secs(1);
    assert!(matches!(
        l.claim_lease(&id, "b", again, MINUTE).unwrap(),
        Claim::Acquired(x) if x.expires_at_ms == millis(again) + 60_000
    ));
    // Released: free for anyone at once; renewing a released lease is refused.
    assert!(l.release_lease(&id, "b").unwrap());
    assert_eq!(l.lease(&id).unwrap(), None);
    assert_eq!(l.renew_lease(&id, "b", again, MINUTE).unwrap(), None);
    assert!(matches!(
        l.claim_lease(&id, "a", again, MINUTE).unwrap(),
        Claim::Acquired(_)
    ));
}

#[test]
fn renewing_someone_elses_lease_is_refused_and_changes_nothing() {
    let mut l = Ledger::open_in_memory().unwrap();
    let id = uid(2);
    record(&mut l, &id);
    let t0 = OffsetDateTime::now_utc();
    l.claim_lease(&id, "a", t0, MINUTE).unwrap();
    let held = l.lease(&id).unwrap().unwrap();
    assert_eq!(
        l.renew_lease(&id, "b", t0 + MINUTE * 2, MINUTE * 10)
            .unwrap(),
        None
    );
    assert_eq!(l.lease(&id).unwrap().unwrap(), held, "unchanged");
    assert!(!l.release_lease(&id, "b").unwrap());
    assert_eq!(l.lease(&id).unwrap().unwrap(), held);
}

#[test]
fn an_archive_the_ledger_does_not_know_cannot_be_claimed() {
    let mut l = Ledger::open_in_memory().unwrap();
    let err = l
        .claim_lease(&uid(3), "a", OffsetDateTime::now_utc(), MINUTE)
        .unwrap_err();
    assert!(
        matches!(err, DbError::NotFound(ref id) if *id == uid(3)),
        "{err}"
    );
    assert!(l.leases().unwrap().is_empty());
}
