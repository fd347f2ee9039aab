//! Copying a ledger into another (issue 14: `archivectl ledger migrate --to postgres://...`), so a team can
//! move from one machine's SQLite file to PostgreSQL without losing history, and checking the copy.
//!
//! * [`Ledger::copy_into`] inserts every row of every table ([`COPIED_TABLES`], in foreign-key order) of this
//!   ledger into `dest`, keeping ids, in one transaction of `dest`; a row whose key `dest` already has is
//!   left alone (`ON CONFLICT DO NOTHING`), so a second run adds nothing. PostgreSQL's identity sequences are
//!   moved past the copied ids. Leases are not copied: they are a running worker's, and would only hold the
//!   archives back until they expire.
//! * [`Ledger::table_sums`]: per table, the row count and a checksum of the rows (their values, whatever the
//!   order they come in), computed the same way on both back ends, so the two sides can be compared.

use crate::DbError;
use crate::db::{Conn, Dialect, SqlError, Value};
use crate::ledger::Ledger;

/// The tables a copy carries, parents before children; each with its columns (as of schema version 7; a test checks the list against the schema).
pub const COPIED_TABLES: &[(&str, &[&str])] = &[
    ("projects", &["id", "first_seen_at"]),
    (
        "archives",
        &[
            "id",
            "project_id",
            "session_id",
            "status",
            "status_rank",
            "name",
            "reason",
            "created_at",
            "service_updated_at",
            "duration",
            "size",
            "output_mode",
            "resolution",
            "url",
            "password",
            "service_sha256",
            "raw_json",
            "first_seen_at",
            "changed_at",
            "password_conflict",
            "local_path",
            "local_sha256",
            "measured_duration",
            "verified_at",
            "remote_deleted_at",
            "object_sha256",
            "service_sha256_matched",
        ],
    ),
    (
        "events",
        &[
            "id",
            "received_at",
            "source",
            "origin",
            "kind",
            "archive_id",
            "body",
            "auth",
        ],
    ),
    (
        "status_history",
        &[
            "id",
            "archive_id",
            "status",
            "service_updated_at",
            "applied",
            "source",
            "first_received_at",
            "last_received_at",
            "times_seen",
        ],
    ),
    (
        "password_conflicts",
        &["archive_id", "password", "first_seen_at", "event_id"],
    ),
    (
        "certificates",
        &[
            "fingerprint",
            "project_id",
            "subject",
            "not_after",
            "pem",
            "added_at",
        ],
    ),
    (
        "certificate_activations",
        &[
            "id",
            "project_id",
            "fingerprint",
            "active_from_ms",
            "active_from",
        ],
    ),
    (
        "pull_attempts",
        &[
            "id",
            "archive_id",
            "at",
            "outcome",
            "reason",
            "local_path",
            "bytes",
            "continuity_errors",
            "sync_losses",
        ],
    ),
    ("deletions", &["id", "archive_id", "what", "target", "at"]),
];

/// The tables whose `id` is an identity column (PostgreSQL) or rowid alias (SQLite).
const IDENTITY_TABLES: &[&str] = &[
    "events",
    "status_history",
    "certificate_activations",
    "pull_attempts",
    "deletions",
];

/// One table's rows, counted and summed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSum {
    /// The table.
    pub table: String,
    /// How many rows it has.
    pub rows: u64,
    /// A checksum of its rows (16 hex digits), independent of their order and of the back end.
    pub checksum: String,
}

/// What [`Ledger::copy_into`] did, per table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopiedTable {
    /// The table.
    pub table: String,
    /// The rows read from the source.
    pub read: u64,
    /// The rows inserted into the destination (the others were there already).
    pub inserted: u64,
}

impl Ledger {
    /// Copies every row of [`COPIED_TABLES`] of this ledger into `dest` (see the module docs); how many rows
    /// each table had and how many were new to `dest`. All or nothing: one transaction of `dest`.
    pub fn copy_into(&self, dest: &mut Ledger) -> Result<Vec<CopiedTable>, DbError> {
        let mut source_rows = Vec::with_capacity(COPIED_TABLES.len());
        for (table, columns) in COPIED_TABLES {
            let rows = self
                .conn
                .query(&select(table, columns), &[])
                .map_err(DbError::sql("read the source ledger"))?;
            source_rows.push((*table, *columns, rows));
        }
        let dialect = dest.conn.dialect();
        dest.conn
            .write(|tx: &Conn| -> Result<Vec<CopiedTable>, SqlError> {
                let mut report = Vec::with_capacity(source_rows.len());
                for (table, columns, rows) in &source_rows {
                    let insert = insert(table, columns);
                    let mut inserted = 0;
                    for row in rows {
                        inserted += tx.execute(&insert, &row.0)?;
                    }
                    report.push(CopiedTable {
                        table: (*table).to_string(),
                        read: rows.len() as u64,
                        inserted,
                    });
                }
                if dialect == Dialect::Postgres {
                    for table in IDENTITY_TABLES {
                        tx.query(
                            &format!(
                                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                            ),
                            &[],
                        )?;
                    }
                }
                Ok(report)
            })
            .map_err(DbError::sql("copy the rows into the destination ledger"))
    }

    /// Per table of [`COPIED_TABLES`]: its row count and checksum (see [`TableSum`]).
    pub fn table_sums(&self) -> Result<Vec<TableSum>, DbError> {
        let mut sums = Vec::with_capacity(COPIED_TABLES.len());
        for (table, columns) in COPIED_TABLES {
            let rows = self
                .conn
                .query(&select(table, columns), &[])
                .map_err(DbError::sql("read the ledger's rows"))?;
            let mut hashes: Vec<u64> = rows.iter().map(|r| row_hash(&r.0)).collect();
            hashes.sort_unstable();
            let mut sum = Fnv::new();
            for h in &hashes {
                sum.write(&h.to_le_bytes());
            }
            sums.push(TableSum {
                table: (*table).to_string(),
                rows: rows.len() as u64,
                checksum: format!("{:016x}", sum.0),
            });
        }
        Ok(sums)
    }
}

fn select(table: &str, columns: &[&str]) -> String {
    format!("SELECT {} FROM {table}", columns.join(", "))
}

fn insert(table: &str, columns: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        columns.join(", "),
        placeholders.join(", ")
    )
}

/// FNV-1a, 64 bits: stable across processes, platforms and Rust versions (unlike std's hasher).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A row's hash over its values, each tagged with its kind and (for text) its length, so that no two
/// different rows serialize alike.
fn row_hash(values: &[Value]) -> u64 {
    let mut h = Fnv::new();
    for v in values {
        match v {
            Value::Null => h.write(b"n"),
            Value::Int(n) => {
                h.write(b"i");
                h.write(&n.to_le_bytes());
            }
            Value::Real(x) => {
                h.write(b"r");
                h.write(&x.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                h.write(b"t");
                h.write(&(s.len() as u64).to_le_bytes());
                h.write(s.as_bytes());
            }
        }
    }
    h.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::IncomingEvent;

    const A: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";
    const B: &str = "c50ef09b-3811-4726-b508-e41a0f96c68f";

    fn event(id: &str, status: &str) -> IncomingEvent {
        let body = format!(
            r#"{{"id":"{id}","event":"archive","createdAt":1700000000000,"duration":0,"name":"n","partnerId":123456,"reason":"","sessionId":"s","size":10,"status":"{status}","password":"cGFzcw=="}}"#
        );
        IncomingEvent::from_callback(body.as_bytes(), "test").unwrap()
    }

    #[test]
    fn the_columns_listed_are_every_column_of_each_table() {
        let l = Ledger::open_in_memory().unwrap();
        let c = l.conn.sqlite().unwrap();
        for (table, columns) in COPIED_TABLES {
            let mut st = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
            let names: Vec<String> = st
                .query_map([], |r| r.get::<_, String>(1))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(names, *columns, "{table}");
        }
    }

    #[test]
    fn a_copy_has_the_same_sums_and_a_second_copy_adds_nothing() {
        let mut src = Ledger::open_in_memory().unwrap();
        for (id, status) in [(A, "started"), (A, "uploaded"), (B, "uploaded")] {
            src.record_event(&event(id, status)).unwrap();
        }
        let mut dest = Ledger::open_in_memory().unwrap();
        let first = src.copy_into(&mut dest).unwrap();
        let archives = first.iter().find(|t| t.table == "archives").unwrap();
        assert_eq!((archives.read, archives.inserted), (2, 2));
        let events = first.iter().find(|t| t.table == "events").unwrap();
        assert_eq!((events.read, events.inserted), (3, 3));
        assert_eq!(src.table_sums().unwrap(), dest.table_sums().unwrap());
        let again = src.copy_into(&mut dest).unwrap();
        assert!(again.iter().all(|t| t.inserted == 0), "{again:?}");
        assert_eq!(src.table_sums().unwrap(), dest.table_sums().unwrap());
        // A new event in the destination after the copy gets a fresh id, and the sums then differ.
        dest.record_event(&event(B, "available")).unwrap();
        assert_ne!(src.table_sums().unwrap(), dest.table_sums().unwrap());
    }

    #[test]
    fn row_hashes_tell_kinds_and_boundaries_apart() {
        let t = |s: &str| Value::Text(s.into());
        assert_ne!(row_hash(&[t("ab"), t("c")]), row_hash(&[t("a"), t("bc")]));
        assert_ne!(row_hash(&[Value::Int(1)]), row_hash(&[t("1")]));
        assert_ne!(row_hash(&[Value::Null]), row_hash(&[t("")]));
        assert_eq!(row_hash(&[Value::Real(1.5)]), row_hash(&[Value::Real(1.5)]));
    }
}
