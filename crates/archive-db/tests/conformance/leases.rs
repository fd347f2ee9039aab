//! The lease rules (moved here from `src/leases/tests.rs`): one winner among concurrent claims (connections
//! of their own on one ledger), takeover only after expiry, renew and release only by the owner; and
//! `claim_next` (`FOR UPDATE SKIP LOCKED` on PostgreSQL) handing workers disjoint archives.

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::Duration;

use archive_db::leases::millis;
use archive_db::{Claim, DbError, IncomingEvent, Ledger};
use time::OffsetDateTime;

use crate::support::TestDb;

const MINUTE: Duration = Duration::from_secs(60);

fn uid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn record(ledger: &mut Ledger, id: &str) {
    let body = format!(
        r#"{{"id":"{id}","event":"archive","status":"uploaded","password":"ZTQy","createdAt":1700000000000}}"#
    );
    ledger
        .record_event(&IncomingEvent::from_callback(body.as_bytes(), "t").unwrap())
        .unwrap();
}

pub fn of_ledgers_on_one_database_claiming_at_once_exactly_one_wins(db: &TestDb) {
    let rounds = 40;
    {
        let mut l = db.open();
        for i in 0..rounds {
            record(&mut l, &uid(i));
        }
    }
    let workers = 4;
    let barrier = Barrier::new(workers);
    let mut winners = vec![0; rounds];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut l = db.open();
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
        for h in handles {
            for i in h.join().unwrap() {
                winners[i] += 1;
            }
        }
    });
    assert_eq!(winners, vec![1; rounds], "exactly one winner per archive");
    assert_eq!(db.open().leases().unwrap().len(), rounds);
}

pub fn an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew_or_release_it(db: &TestDb) {
    let mut l = db.open();
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

pub fn renewing_someone_elses_lease_is_refused_and_changes_nothing(db: &TestDb) {
    let mut l = db.open();
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

pub fn an_archive_the_ledger_does_not_know_cannot_be_claimed(db: &TestDb) {
    let mut l = db.open();
    let err = l
        .claim_lease(&uid(3), "a", OffsetDateTime::now_utc(), MINUTE)
        .unwrap_err();
    assert!(
        matches!(err, DbError::NotFound(ref id) if *id == uid(3)),
        "{err}"
    );
    assert!(l.leases().unwrap().is_empty());
}

pub fn claim_next_takes_pending_archives_oldest_first_and_skips_held_ones(db: &TestDb) {
    let mut l = db.open();
    for i in 0..3 {
        record(&mut l, &uid(10 + i));
    }
    let t0 = OffsetDateTime::now_utc();
    let a = l.claim_next("a", t0, MINUTE).unwrap().unwrap();
    let b = l.claim_next("b", t0, MINUTE).unwrap().unwrap();
    assert_ne!(a.archive_id, b.archive_id);
    // The same worker asking again may be given its own again (here the oldest): a worker's own lease
    // never keeps an archive from it.
    assert_eq!(
        l.claim_next("a", t0, MINUTE).unwrap().unwrap().archive_id,
        a.archive_id
    );
    let c = l.claim_next("c", t0, MINUTE).unwrap().unwrap();
    assert_eq!(
        l.claim_next("d", t0, MINUTE).unwrap(),
        None,
        "all three are held"
    );
    // Once a's lease has expired, d takes it.
    let later = t0 + MINUTE * 2;
    let d = l.claim_next("d", later, MINUTE).unwrap().unwrap();
    assert!([&a.archive_id, &b.archive_id, &c.archive_id].contains(&&d.archive_id));
    // A pulled archive is no longer offered.
    for id in [&a.archive_id, &b.archive_id, &c.archive_id] {
        l.record_remote_delete(id, later).unwrap();
    }
    assert_eq!(l.claim_next("e", later + MINUTE * 2, MINUTE).unwrap(), None);
}

pub fn workers_claiming_next_at_once_get_disjoint_archives(db: &TestDb) {
    let archives = 60;
    {
        let mut l = db.open();
        for i in 0..archives {
            record(&mut l, &uid(100 + i));
        }
    }
    let workers = 4;
    let barrier = Barrier::new(workers);
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut l = db.open();
                    let owner = format!("worker-{w}");
                    barrier.wait();
                    let mut mine = Vec::new();
                    while let Some(lease) = l
                        .claim_next(&owner, OffsetDateTime::now_utc(), MINUTE * 10)
                        .unwrap()
                    {
                        assert_eq!(lease.owner, owner);
                        if mine.last() == Some(&lease.archive_id) {
                            panic!("{owner} was given {} twice", lease.archive_id);
                        }
                        // "Pull" it, then settle it: it is no longer pending.
                        l.record_remote_delete(&lease.archive_id, OffsetDateTime::now_utc())
                            .unwrap();
                        assert!(l.release_lease(&lease.archive_id, &owner).unwrap());
                        mine.push(lease.archive_id);
                    }
                    (owner, mine)
                })
            })
            .collect();
        for h in handles {
            let (owner, mine) = h.join().unwrap();
            for id in mine {
                if let Some(other) = claimed.insert(id.clone(), owner.clone()) {
                    panic!("{id} was claimed by {other} and {owner}");
                }
            }
        }
    });
    assert_eq!(claimed.len(), archives, "every archive claimed once");
}

crate::on_both!(
    of_ledgers_on_one_database_claiming_at_once_exactly_one_wins,
    an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew_or_release_it,
    renewing_someone_elses_lease_is_refused_and_changes_nothing,
    an_archive_the_ledger_does_not_know_cannot_be_claimed,
    claim_next_takes_pending_archives_oldest_first_and_skips_held_ones,
    workers_claiming_next_at_once_get_disjoint_archives,
);
