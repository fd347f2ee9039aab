//! Opening, recording and reading back: the smallest round trip, and what every connection promises.

use archive_db::{ArchiveFilter, Backend, IncomingEvent};
use opentok_rest::model::ArchiveStatus;

use crate::support::TestDb;

const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

fn a_ledger_opens_records_and_reads_back(db: &TestDb) {
    let mut ledger = db.open();
    assert_eq!(ledger.backend(), db.backend());
    assert_eq!(
        ledger.schema_version().unwrap(),
        archive_db::schema::SCHEMA_VERSION
    );
    let uploaded = format!(
        r#"{{"id":"{ID}","event":"archive","status":"uploaded","size":4096,"password":"ZTQy","sessionId":"S","partnerId":123}}"#
    );
    let stop =
        format!(r#"{{"id":"{ID}","event":"archive","status":"stopped","size":0,"password":""}}"#);
    let first = ledger
        .record_event(&IncomingEvent::from_callback(uploaded.as_bytes(), "cb").unwrap())
        .unwrap();
    let late = ledger
        .record_event(&IncomingEvent::from_callback(stop.as_bytes(), "cb").unwrap())
        .unwrap();
    assert!(late.event_id > first.event_id);
    assert!(!late.archive.unwrap().status_applied);
    let record = ledger.archive(ID).unwrap().unwrap();
    assert_eq!(
        (
            record.status,
            record.size,
            record.password.as_deref(),
            record.project_id.as_deref()
        ),
        (ArchiveStatus::Uploaded, 4096, Some("ZTQy"), Some("123"))
    );
    assert_eq!(ledger.status_history(ID).unwrap().len(), 2);
    assert_eq!(ledger.pending().unwrap().len(), 1);
    assert_eq!(ledger.counts().unwrap(), (1, 2));
    assert!(ledger.contains(ID).unwrap());
    assert_eq!(ledger.by_session("S").unwrap().len(), 1);
    assert_eq!(
        ledger
            .list(&ArchiveFilter {
                status: Some(ArchiveStatus::Uploaded),
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert_eq!(ledger.events(Some(ID)).unwrap().len(), 2);
    assert_eq!(ledger.events(None).unwrap().len(), 2);
    drop(ledger);
    // Another connection sees it all, and opening again migrates nothing.
    let again = db.open();
    assert_eq!(again.counts().unwrap(), (1, 2));
}

fn every_connection_is_durable(db: &TestDb) {
    let ledger = db.open();
    let (journal, synchronous, foreign_keys) = ledger.pragmas().unwrap();
    match db.backend() {
        Backend::Sqlite => assert_eq!(journal, "wal"),
        Backend::Postgres => assert_eq!(journal, "postgresql"),
    }
    assert_eq!(synchronous, 2, "FULL / synchronous_commit = on");
    assert!(foreign_keys);
    if let Some(mut client) = db.pg_client() {
        // Even where the database's default is off, the ledger's own connections turn it on.
        client
            .batch_execute("ALTER DATABASE CURRENT SET synchronous_commit = off")
            .unwrap_or_else(|_| {
                let name: String = client
                    .query_one("SELECT current_database()", &[])
                    .unwrap()
                    .get(0);
                client
                    .batch_execute(&format!(
                        "ALTER DATABASE {name} SET synchronous_commit = off"
                    ))
                    .unwrap();
            });
        let fresh = db.open();
        assert_eq!(fresh.pragmas().unwrap().1, 2);
    }
}

/// The ledger is called from async code (the receiver, pull): on PostgreSQL its client runs on a thread of
/// its own, so calling it from inside a runtime — even a current-thread one — never panics.
fn the_ledger_can_be_called_from_inside_a_tokio_runtime(db: &TestDb) {
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            _ => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        };
        runtime.block_on(async {
            let mut ledger = db.open();
            let body = format!(r#"{{"id":"{ID}","event":"archive","status":"started"}}"#);
            ledger
                .record_event(&IncomingEvent::from_callback(body.as_bytes(), flavor).unwrap())
                .unwrap();
            assert!(ledger.contains(ID).unwrap());
            let writer = archive_db::GroupWriter::start(db.open());
            let done =
                writer.submit(IncomingEvent::from_callback(body.as_bytes(), flavor).unwrap());
            done.await.unwrap();
            writer.submitter().probe().await.unwrap();
            writer.shutdown().unwrap();
        });
    }
    assert_eq!(db.open().events(Some(ID)).unwrap().len(), 4);
}

#[tokio::test]
async fn sqlite_from_a_tokio_test() {
    the_ledger_from_async(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn postgres_from_a_tokio_test() {
    if let Some(db) = TestDb::postgres() {
        the_ledger_from_async(&db).await;
    }
}

async fn the_ledger_from_async(db: &TestDb) {
    let mut ledger = db.open();
    let body =
        format!(r#"{{"id":"{ID}","event":"archive","status":"uploaded","password":"ZTQy"}}"#);
    ledger
        .record_event(&IncomingEvent::from_callback(body.as_bytes(), "async").unwrap())
        .unwrap();
    assert_eq!(ledger.pending().unwrap().len(), 1);
    drop(ledger);
}

crate::on_both!(
    a_ledger_opens_records_and_reads_back,
    every_connection_is_durable,
    the_ledger_can_be_called_from_inside_a_tokio_runtime,
);
