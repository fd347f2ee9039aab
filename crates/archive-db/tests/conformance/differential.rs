//! The two back ends side by side: the same generated callbacks (issue 11's generators: odd types, numbers
//! past `i64`, any status, odd ids) recorded on SQLite and on PostgreSQL give the same outcome each, and in the
//! end the same archives, histories, raw events and exports, byte for byte.

use archive_db::{IncomingEvent, Ledger};
use proptest::strategy::{Strategy, ValueTree};

use crate::callbacks::callback;
use crate::support::TestDb;

fn everything(
    l: &Ledger,
) -> (
    String,
    String,
    Vec<archive_db::RawEvent>,
    Vec<Vec<archive_db::StatusChange>>,
) {
    let mut json = Vec::new();
    l.export_json(&mut json).unwrap();
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    let archives = l.list(&archive_db::ArchiveFilter::default()).unwrap();
    let histories = archives
        .iter()
        .map(|a| l.status_history(&a.id).unwrap())
        .collect();
    (
        String::from_utf8(json).unwrap(),
        String::from_utf8(csv).unwrap(),
        l.events(None).unwrap(),
        histories,
    )
}

#[test]
fn generated_callbacks_give_the_same_ledger_on_both_back_ends() {
    let Some(pg) = TestDb::postgres() else { return };
    let sqlite = TestDb::sqlite();
    let (mut a, mut b) = (sqlite.open(), pg.open());
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = callback();
    let (mut recorded, mut refused) = (0, 0);
    // Several reports of a few archives, so merges happen too: ids are drawn from a small set half the time.
    for i in 0..400 {
        let mut body = strategy.new_tree(&mut runner).unwrap().current();
        if i % 2 == 0
            && let Some(map) = body.as_object_mut()
        {
            map.insert(
                "id".into(),
                format!("00000000-0000-4000-8000-{:012}", i % 7).into(),
            );
        }
        let text = body.to_string();
        let Ok(event) = IncomingEvent::from_callback(text.as_bytes(), "127.0.0.1:1") else {
            continue;
        };
        let (x, y) = (a.record_event(&event), b.record_event(&event));
        match (&x, &y) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x.archive, y.archive, "{text}");
                recorded += 1;
            }
            (Err(x), Err(y)) => {
                assert_eq!(
                    std::mem::discriminant(x),
                    std::mem::discriminant(y),
                    "{text}: {x} / {y}"
                );
                refused += 1;
            }
            _ => panic!("{text}: SQLite {x:?}, PostgreSQL {y:?}"),
        }
    }
    assert!(
        recorded >= 100,
        "only {recorded} recorded ({refused} refused)"
    );
    let (x, y) = (everything(&a), everything(&b));
    assert_eq!(x.0, y.0, "JSON exports");
    assert_eq!(x.1, y.1, "CSV exports");
    assert_eq!(x.2, y.2, "raw events");
    assert_eq!(x.3, y.3, "status histories");
    assert_eq!(a.pending().unwrap(), b.pending().unwrap());
    assert_eq!(
        a.awaiting_password().unwrap(),
        b.awaiting_password().unwrap()
    );
}
