//! Reading the ledger: one archive, a filtered list, pending work, an archive's history and raw events, and
//! the whole ledger as JSON or CSV.

use std::io::Write;

use crate::db::{Dialect, Row, SqlError, Value, params};
use opentok_rest::model::ArchiveStatus;
use serde::Serialize;

use crate::{DbError, Ledger, stamp_ms};

/// An archive as the ledger knows it: the service's fields and our own facts. Times are RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveRecord {
    /// The archive's id.
    pub id: String,
    /// Its status (the furthest one received, see [`crate::status`]).
    pub status: ArchiveStatus,
    /// The session recorded (`""` if never reported).
    pub session_id: String,
    /// The project (API key or application id), if reported.
    pub project_id: Option<String>,
    /// The archive's name.
    pub name: Option<String>,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// When recording started (the service's `createdAt`).
    pub created_at: Option<String>,
    /// The service's `updatedAt`, if it sends one.
    pub updated_at: Option<String>,
    /// Seconds, as the service reports it (0 for encrypted archives: a known issue of the service).
    pub duration: u64,
    /// Bytes, as the service reports it.
    pub size: u64,
    /// `composed` or `individual`.
    pub output_mode: Option<String>,
    /// The resolution of a composed archive.
    pub resolution: Option<String>,
    /// The download URL while the service holds the file.
    pub url: Option<String>,
    /// The wrapped password exactly as received (the first one, if they conflict).
    pub password: Option<String>,
    /// A different non-empty password was received too (see `conflicting_passwords`).
    pub password_conflict: bool,
    /// The other passwords received, oldest first.
    pub conflicting_passwords: Vec<String>,
    /// The SHA-256 the service reported, if any.
    pub service_sha256: Option<String>,
    /// Where `archivectl pull` wrote it.
    pub local_path: Option<String>,
    /// SHA-256 of the pulled file.
    pub sha256: Option<String>,
    /// Duration in seconds measured from the pulled MPEG-TS.
    pub measured_duration: Option<f64>,
    /// When the pulled file was verified.
    pub verified_at: Option<String>,
    /// When it was deleted from the service.
    pub remote_deleted_at: Option<String>,
    /// When the ledger first heard of it.
    pub first_seen_at: String,
    /// When its row last changed.
    pub changed_at: String,
    /// SHA-256 (hex) of the object's bytes as `archivectl pull` downloaded them (the ciphertext as stored).
    pub object_sha256: Option<String>,
    /// Whether [`object_sha256`](Self::object_sha256) matched the service's `sha256sum` (`None`: not checked).
    pub service_sha256_matched: Option<bool>,
}

/// One status an archive was reported in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status.
    pub status: String,
    /// The service's `updatedAt` in that event, if it had one.
    pub service_updated_at: Option<String>,
    /// Whether it became the archive's status (false: it arrived late and is history only).
    pub applied: bool,
    /// `callback` or `sync` (of the first report).
    pub source: String,
    /// When it was first received.
    pub first_received_at: String,
    /// When it was last received.
    pub last_received_at: String,
    /// How many times it was received (duplicates count here).
    pub times_seen: u64,
}

/// One raw event as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawEvent {
    /// Its row id.
    pub id: i64,
    /// When it was received.
    pub received_at: String,
    /// `callback` or `sync`.
    pub source: String,
    /// Where it came from (peer address or URL).
    pub origin: String,
    /// `archive`, another callback's `event`, or `unknown`.
    pub kind: String,
    /// The archive it is about, for archive events.
    pub archive_id: Option<String>,
    /// The body, exactly as received.
    pub body: String,
    /// How it was authenticated: `token`, `signature`, `none`, `api` (read from the REST API), or `None` for an
    /// event recorded before the ledger kept it.
    pub auth: Option<String>,
}

/// An archive with its status history and the raw JSON of the event that set its status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveDetails {
    /// The archive.
    #[serde(flatten)]
    pub record: ArchiveRecord,
    /// Every status reported, in the order first received.
    pub status_history: Vec<StatusChange>,
    /// The service's JSON for the archive (from the event that set its current status).
    pub raw: serde_json::Value,
}

/// Which archives to list. Empty: all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveFilter {
    /// Only this status.
    pub status: Option<ArchiveStatus>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this project.
    pub project_id: Option<String>,
}

/// The columns of an [`ArchiveRecord`]; the conflicting passwords as a JSON array (each dialect's aggregate).
fn record_columns(dialect: Dialect) -> String {
    let conflicts = match dialect {
        Dialect::Sqlite => {
            "(SELECT json_group_array(password) FROM
                (SELECT password FROM password_conflicts pc WHERE pc.archive_id = a.id ORDER BY first_seen_at, password))"
        }
        Dialect::Postgres => {
            "COALESCE((SELECT json_agg(password ORDER BY first_seen_at, password)::text FROM password_conflicts pc
                WHERE pc.archive_id = a.id), '[]')"
        }
    };
    format!("{RECORD_COLUMNS_1}, {conflicts}, {RECORD_COLUMNS_2}")
}

const RECORD_COLUMNS_1: &str = "a.id, a.status, a.session_id, a.project_id, a.name, a.reason, a.created_at,
    a.service_updated_at, a.duration, a.size, a.output_mode, a.resolution, a.url, a.password, a.password_conflict";

const RECORD_COLUMNS_2: &str = "a.service_sha256, a.local_path, a.local_sha256, a.measured_duration, a.verified_at, a.remote_deleted_at,
    a.first_seen_at, a.changed_at, a.object_sha256, a.service_sha256_matched";

/// The archive is uploaded or available, not pulled, not deleted remotely.
const READY: &str = "a.status IN ('uploaded', 'available') AND a.local_path IS NULL AND a.remote_deleted_at IS NULL";

/// A certificate was active for the archive's project when it was created: it must be encrypted.
const ENCRYPTION_EXPECTED: &str =
    "COALESCE((SELECT CASE WHEN ca.fingerprint IS NOT NULL THEN 1 ELSE 0 END FROM certificate_activations ca
    WHERE ca.project_id = a.project_id AND ca.active_from_ms <= a.created_at
    ORDER BY ca.active_from_ms DESC, ca.id DESC LIMIT 1), 0)";

/// [`Ledger::pending`]'s condition on an archive `a`.
pub(crate) static PENDING: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{READY} AND (a.password IS NOT NULL OR (a.project_id IS NOT NULL AND {ENCRYPTION_EXPECTED} = 0))"
    )
});

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn record_from_row(r: &Row) -> Result<ArchiveRecord, SqlError> {
    let conflicts: String = r.get(15)?;
    let conflicting_passwords = serde_json::from_str(&conflicts).map_err(|e| {
        SqlError::Conversion(format!(
            "the conflicting passwords are not a JSON array: {e}"
        ))
    })?;
    Ok(ArchiveRecord {
        id: r.get(0)?,
        status: ArchiveStatus::from(r.get::<String>(1)?.as_str()),
        session_id: r.get(2)?,
        project_id: r.get(3)?,
        name: r.get(4)?,
        reason: r.get(5)?,
        created_at: stamp_ms(r.get(6)?),
        updated_at: r.get::<Option<i64>>(7)?.and_then(stamp_ms),
        duration: unsigned(r.get(8)?),
        size: unsigned(r.get(9)?),
        output_mode: r.get(10)?,
        resolution: r.get(11)?,
        url: r.get(12)?,
        password: r.get(13)?,
        password_conflict: r.get(14)?,
        conflicting_passwords,
        service_sha256: r.get(16)?,
        local_path: r.get(17)?,
        sha256: r.get(18)?,
        measured_duration: r.get(19)?,
        verified_at: r.get(20)?,
        remote_deleted_at: r.get(21)?,
        first_seen_at: r.get(22)?,
        changed_at: r.get(23)?,
        object_sha256: r.get(24)?,
        service_sha256_matched: r.get(25)?,
    })
}

impl Ledger {
    fn records(&self, where_: &str, args: &[&str]) -> Result<Vec<ArchiveRecord>, DbError> {
        let sql = format!(
            "SELECT {} FROM archives a WHERE {where_} ORDER BY a.created_at DESC, a.id",
            record_columns(self.conn.dialect())
        );
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        self.conn
            .query(&sql, &args)
            .map_err(DbError::sql("query archives"))?
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(DbError::sql("read archives"))
    }

    /// One archive, if the ledger has it.
    pub fn archive(&self, id: &str) -> Result<Option<ArchiveRecord>, DbError> {
        Ok(self.records("a.id = ?1", &[id])?.into_iter().next())
    }

    /// One archive with its status history and raw JSON.
    pub fn archive_details(&self, id: &str) -> Result<Option<ArchiveDetails>, DbError> {
        let Some(record) = self.archive(id)? else {
            return Ok(None);
        };
        let raw: String = self
            .conn
            .query_one("SELECT raw_json FROM archives WHERE id = ?1", &params![id])
            .and_then(|r| r.get(0))
            .map_err(DbError::sql("read the archive"))?;
        let raw = serde_json::from_str(&raw)
            .map_err(|e| DbError::Corrupt(format!("raw JSON of archive {id}: {e}")))?;
        Ok(Some(ArchiveDetails {
            record,
            status_history: self.status_history(id)?,
            raw,
        }))
    }

    /// The archives that match `filter`, newest first.
    ///
    /// ```
    /// use archive_db::{ArchiveFilter, IncomingEvent, Ledger};
    /// use opentok_rest::model::ArchiveStatus;
    ///
    /// let mut ledger = Ledger::open_in_memory().unwrap();
    /// for body in [r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","status":"uploaded","sessionId":"S1"}"#, r#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c690","status":"started","sessionId":"S2"}"#] {
    ///     ledger.record_event(&IncomingEvent::from_callback(body.as_bytes(), "test").unwrap()).unwrap();
    /// }
    /// let uploaded = ledger.list(&ArchiveFilter { status: Some(ArchiveStatus::Uploaded), ..Default::default() }).unwrap();
    /// assert_eq!(uploaded.len(), 1);
    /// let s2 = ledger.list(&ArchiveFilter { session_id: Some("S2".into()), ..Default::default() }).unwrap();
    /// assert_eq!(s2[0].id, "b40ef09b-3811-4726-b508-e41a0f96c690");
    /// ```
    pub fn list(&self, filter: &ArchiveFilter) -> Result<Vec<ArchiveRecord>, DbError> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut args: Vec<&str> = Vec::new();
        for (column, value) in [
            ("status", filter.status.as_ref().map(ArchiveStatus::as_str)),
            ("session_id", filter.session_id.as_deref()),
            ("project_id", filter.project_id.as_deref()),
        ] {
            if let Some(value) = value {
                args.push(value);
                clauses.push(format!("a.{column} = ?{}", args.len()));
            }
        }
        self.records(&clauses.join(" AND "), &args)
    }

    /// The archives of one session.
    pub fn by_session(&self, session_id: &str) -> Result<Vec<ArchiveRecord>, DbError> {
        self.records("a.session_id = ?1", &[session_id])
    }

    /// The archives in one status.
    pub fn by_status(&self, status: &ArchiveStatus) -> Result<Vec<ArchiveRecord>, DbError> {
        self.records("a.status = ?1", &[status.as_str()])
    }

    /// Work for `archivectl pull`: archives uploaded or available, not pulled yet nor deleted remotely, that
    /// can be decrypted — they have a password — or need none: their project is known and no certificate was
    /// active for it when they were created (as far as the ledger knows, see [`Ledger::activate_certificate`]).
    pub fn pending(&self) -> Result<Vec<ArchiveRecord>, DbError> {
        self.records(PENDING.as_str(), &[])
    }

    /// Archives that are ready but cannot be pulled yet: no password has reached the ledger and either a
    /// certificate was active when they were created, or their project is unknown so the ledger cannot tell
    /// (`archivectl sync` recovers both).
    pub fn awaiting_password(&self) -> Result<Vec<ArchiveRecord>, DbError> {
        self.records(
            &format!(
                "{READY} AND a.password IS NULL AND (a.project_id IS NULL OR {ENCRYPTION_EXPECTED} = 1)"
            ),
            &[],
        )
    }

    /// Every status the archive was reported in, in the order first received.
    pub fn status_history(&self, id: &str) -> Result<Vec<StatusChange>, DbError> {
        self.conn
            .query(
                "SELECT status, service_updated_at, applied, source, first_received_at, last_received_at, times_seen
                 FROM status_history WHERE archive_id = ?1 ORDER BY first_received_at, id",
                &params![id],
            )
            .map_err(DbError::sql("read the status history"))?
            .iter()
            .map(|r| {
                let updated: i64 = r.get(1)?;
                Ok(StatusChange {
                    status: r.get(0)?,
                    service_updated_at: stamp_ms(updated),
                    applied: r.get(2)?,
                    source: r.get(3)?,
                    first_received_at: r.get(4)?,
                    last_received_at: r.get(5)?,
                    times_seen: unsigned(r.get(6)?),
                })
            })
            .collect::<Result<Vec<_>, SqlError>>()
            .map_err(DbError::sql("read the status history"))
    }

    /// The raw events received about one archive, or with `None` all events, oldest first.
    pub fn events(&self, archive_id: Option<&str>) -> Result<Vec<RawEvent>, DbError> {
        let (sql, args) = match archive_id {
            Some(id) => (
                "SELECT id, received_at, source, origin, kind, archive_id, body, auth FROM events
                 WHERE archive_id = ?1 ORDER BY id",
                vec![Value::from(id)],
            ),
            None => (
                "SELECT id, received_at, source, origin, kind, archive_id, body, auth FROM events ORDER BY id",
                Vec::new(),
            ),
        };
        self.conn
            .query(sql, &args)
            .map_err(DbError::sql("read events"))?
            .iter()
            .map(|r| {
                Ok(RawEvent {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    source: r.get(2)?,
                    origin: r.get(3)?,
                    kind: r.get(4)?,
                    archive_id: r.get(5)?,
                    body: r.get(6)?,
                    auth: r.get(7)?,
                })
            })
            .collect::<Result<Vec<_>, SqlError>>()
            .map_err(DbError::sql("read events"))
    }

    /// The archives of `project` (of `session_id` too, when given) created from `since_ms` (milliseconds since
    /// the epoch, inclusive) to `until_ms` (exclusive) and not already `deleted`: what a complete listing of the
    /// service over that window must name. Archives whose creation time is unknown are never among them.
    pub fn in_listing_window(
        &self,
        project: &str,
        session_id: Option<&str>,
        since_ms: Option<i64>,
        until_ms: i64,
    ) -> Result<Vec<String>, DbError> {
        // Portable: PostgreSQL cannot infer the type of a parameter tested with IS NULL, so it is cast (the
        // same text on SQLite).
        self.conn
            .query(
                "SELECT id FROM archives
                 WHERE project_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR session_id = ?2) AND created_at > 0
                   AND (CAST(?3 AS BIGINT) IS NULL OR created_at >= ?3) AND created_at < ?4
                   AND status <> 'deleted'
                 ORDER BY created_at, id",
                &params![project, session_id, since_ms, until_ms],
            )
            .map_err(DbError::sql("read archives"))?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<Vec<String>, SqlError>>()
            .map_err(DbError::sql("read archives"))
    }

    /// How many archives and raw events the ledger holds.
    pub fn counts(&self) -> Result<(u64, u64), DbError> {
        self.conn
            .query_one(
                "SELECT (SELECT count(*) FROM archives), (SELECT count(*) FROM events)",
                &[],
            )
            .and_then(|r| Ok((unsigned(r.get(0)?), unsigned(r.get(1)?))))
            .map_err(DbError::sql("count rows"))
    }

    /// Whether the archive is in the ledger.
    pub fn contains(&self, id: &str) -> Result<bool, DbError> {
        self.conn
            .query_opt("SELECT 1 FROM archives WHERE id = ?1", &params![id])
            .map(|r| r.is_some())
            .map_err(DbError::sql("look up an archive"))
    }

    /// Writes every archive as one JSON array of [`ArchiveRecord`] objects.
    pub fn export_json(&self, mut out: impl Write) -> Result<(), DbError> {
        let all = self.list(&ArchiveFilter::default())?;
        serde_json::to_writer_pretty(&mut out, &all)
            .map_err(|e| DbError::Export(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(DbError::Export)
    }

    /// Writes every archive as CSV (RFC 4180: a header line, fields quoted when they need it, CRLF).
    ///
    /// ```
    /// use archive_db::{IncomingEvent, Ledger};
    ///
    /// let mut ledger = Ledger::open_in_memory().unwrap();
    /// let body = br#"{"id":"b40ef09b-3811-4726-b508-e41a0f96c68f","status":"uploaded","name":"Q3, \"final\"","password":"ZTQy"}"#;
    /// ledger.record_event(&IncomingEvent::from_callback(body, "test").unwrap()).unwrap();
    /// let mut csv = Vec::new();
    /// ledger.export_csv(&mut csv).unwrap();
    /// let csv = String::from_utf8(csv).unwrap();
    /// assert!(csv.starts_with("id,status,session_id,"));
    /// assert!(csv.contains(r#"b40ef09b-3811-4726-b508-e41a0f96c68f,uploaded,,,"Q3, ""final""","#));
    /// ```
    pub fn export_csv(&self, mut out: impl Write) -> Result<(), DbError> {
        let all = self.list(&ArchiveFilter::default())?;
        let mut write = |fields: &[String]| -> std::io::Result<()> {
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.write_all(line.join(",").as_bytes())?;
            out.write_all(b"\r\n")
        };
        write(&CSV_HEADER.map(str::to_owned)).map_err(DbError::Export)?;
        for r in all {
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            write(&[
                r.id.clone(),
                r.status.to_string(),
                r.session_id.clone(),
                opt(&r.project_id),
                opt(&r.name),
                opt(&r.created_at),
                r.duration.to_string(),
                r.size.to_string(),
                opt(&r.password),
                r.password_conflict.to_string(),
                opt(&r.local_path),
                opt(&r.sha256),
                r.measured_duration
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                opt(&r.verified_at),
                opt(&r.remote_deleted_at),
                r.first_seen_at.clone(),
            ])
            .map_err(DbError::Export)?;
        }
        Ok(())
    }
}

/// The CSV export's columns.
pub const CSV_HEADER: [&str; 16] = [
    "id",
    "status",
    "session_id",
    "project_id",
    "name",
    "created_at",
    "duration",
    "size",
    "password",
    "password_conflict",
    "local_path",
    "sha256",
    "measured_duration",
    "verified_at",
    "remote_deleted_at",
    "first_seen_at",
];

/// One CSV cell: a formula a spreadsheet would run is neutralised ([`crate::neutralise_formula`]), then the
/// cell is quoted when it needs it.
fn csv_field(field: &str) -> String {
    let field = crate::neutralise_formula(field);
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("=a,b"), "\"'=a,b\"");
    }
}
