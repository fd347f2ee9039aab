//! Recording one event: the raw row, then for an archive event the merge into the archive's row under the
//! ledger's rules, its status history, and any password conflict. Runs inside the caller's transaction.
//!
//! The rules, applied to every archive event whatever its source:
//! * the status moves forward only ([`crate::status`]); an event whose status is not applied still lands in
//!   the history (with `applied = 0`) and still fills in what the row lacks;
//! * a known password is never replaced by an empty or missing one; a different non-empty one is kept in
//!   `password_conflicts` and the archive is flagged (`password_conflict = 1`), the first one staying current;
//! * `size`, `duration` and `createdAt` are never overwritten by 0, the session id never by `""`, the project
//!   never by none;
//! * an event identical to one already recorded changes nothing but the history's `times_seen`.

use crate::db::{Conn, Dialect, Row, SqlError, params};
use opentok_rest::archive_id::validate_archive_id;
use opentok_rest::model::{Archive, ArchiveStatus};

use crate::event::{EventKind, EventSource, IncomingEvent};
use crate::status::{self, Current};
use crate::{DbError, stamp};

/// What recording an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOutcome {
    /// The raw event's row id in the ledger.
    pub event_id: i64,
    /// For an archive event, what happened to the archive.
    pub archive: Option<ArchiveOutcome>,
}

/// What an archive event did to the archive's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveOutcome {
    /// The archive.
    pub archive_id: String,
    /// The archive was not in the ledger before.
    pub inserted: bool,
    /// The event's status was applied (false: it is only in the history).
    pub status_applied: bool,
    /// The archive's row changed.
    pub changed: bool,
    /// The archive's status after the event.
    pub status: ArchiveStatus,
    /// What happened to the password.
    pub password: PasswordOutcome,
}

/// What happened to an archive's wrapped password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// Neither the ledger nor the event has one.
    NoPassword,
    /// The event brought the first password: it is recorded.
    Recorded,
    /// The event carried the same password as recorded.
    Unchanged,
    /// The event had no password (or an empty one); the recorded one stays.
    KeptOverMissing,
    /// The event carried a different non-empty password: the recorded one stays, the new one is kept as a
    /// conflict and the archive is flagged.
    Conflict,
}

/// The service's fields of an archive as the row holds them.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    status: String,
    rank: i64,
    service_updated_at: Option<i64>,
    project_id: Option<String>,
    session_id: String,
    name: Option<String>,
    reason: Option<String>,
    created_at: i64,
    duration: i64,
    size: i64,
    output_mode: Option<String>,
    resolution: Option<String>,
    url: Option<String>,
    password: Option<String>,
    service_sha256: Option<String>,
    raw_json: String,
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

impl Fields {
    /// Every text with its NUL characters as PostgreSQL stores them (see `db::postgres::scrub_nul`).
    fn scrub_nul(&mut self) {
        let scrub = |s: &mut String| {
            if s.contains('\0') {
                *s = crate::db::postgres::scrub_nul(s).into_owned();
            }
        };
        scrub(&mut self.status);
        scrub(&mut self.session_id);
        scrub(&mut self.raw_json);
        for s in [
            &mut self.project_id,
            &mut self.name,
            &mut self.reason,
            &mut self.output_mode,
            &mut self.resolution,
            &mut self.url,
            &mut self.password,
            &mut self.service_sha256,
        ]
        .into_iter()
        .flatten()
        {
            scrub(s);
        }
    }

    fn from_archive(a: &Archive, body: &str) -> Self {
        Self {
            status: a.status.as_str().to_owned(),
            rank: status::stored_rank(&a.status),
            service_updated_at: a.updated_at,
            project_id: a.project().map(ToString::to_string),
            session_id: a.session_id.clone(),
            name: a.name.clone(),
            reason: a.reason.clone(),
            created_at: a.created_at,
            duration: clamp(a.duration),
            size: clamp(a.size),
            output_mode: a.output_mode.as_ref().map(|m| m.as_str().to_owned()),
            resolution: a.resolution.clone(),
            url: a.url.clone(),
            // Exactly as received, but an empty or blank one is no password.
            password: a
                .encrypted_password()
                .map(|_| a.password.clone().unwrap_or_default()),
            service_sha256: non_empty(&a.sha256sum),
            raw_json: body.to_owned(),
        }
    }

    fn load(conn: &Conn, id: &str) -> Result<Option<Self>, SqlError> {
        conn.query_opt(
            "SELECT status, status_rank, service_updated_at, project_id, session_id, name, reason, created_at,
                    duration, size, output_mode, resolution, url, password, service_sha256, raw_json
             FROM archives WHERE id = ?1",
            &params![id],
        )?
        .map(|r: Row| {
            Ok(Self {
                status: r.get(0)?,
                rank: r.get(1)?,
                service_updated_at: r.get(2)?,
                project_id: r.get(3)?,
                session_id: r.get(4)?,
                name: r.get(5)?,
                reason: r.get(6)?,
                created_at: r.get(7)?,
                duration: r.get(8)?,
                size: r.get(9)?,
                output_mode: r.get(10)?,
                resolution: r.get(11)?,
                url: r.get(12)?,
                password: r.get(13)?,
                service_sha256: r.get(14)?,
                raw_json: r.get(15)?,
            })
        })
        .transpose()
    }
}

/// Whether the REST API's `status` replaces the current one against the forward-only rule: the current status
/// keeps the archive from being pulled (`failed`, `expired`, `deleted`), was set by a callback (which may be
/// forged or stale), and the service, the authority, now says something else. The history keeps both.
fn api_corrects(
    conn: &Conn,
    id: &str,
    cur: &Fields,
    status: &ArchiveStatus,
) -> Result<bool, SqlError> {
    let blocking = matches!(
        ArchiveStatus::from(cur.status.as_str()),
        ArchiveStatus::Failed | ArchiveStatus::Expired | ArchiveStatus::Deleted
    );
    if !blocking || cur.status == status.as_str() || status::rank(status).is_none() {
        return Ok(false);
    }
    let set_by: Option<String> = conn
        .query_opt(
            "SELECT source FROM status_history WHERE archive_id = ?1 AND status = ?2 AND applied = 1
             ORDER BY last_received_at DESC, id DESC LIMIT 1",
            &params![id, &cur.status],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    Ok(set_by.as_deref() == Some(EventSource::Callback.as_str()))
}

/// Merges `new` into `cur` under the rules (`force`: the status applies whatever its rank, see
/// [`api_corrects`]); returns the merged fields, whether the status applied, and the password outcome.
fn merge(
    cur: &Fields,
    new: Fields,
    status: &ArchiveStatus,
    force: bool,
) -> (Fields, bool, PasswordOutcome) {
    let applied = force
        || status::applies(
            Current {
                status: &cur.status,
                rank: cur.rank,
                service_updated_at: cur.service_updated_at,
            },
            status,
            new.service_updated_at,
        );
    // Applied: the event's values win where it has them. Not applied: it only fills what is missing.
    let pick = |cur: &Option<String>, new: Option<String>| -> Option<String> {
        if applied {
            new.or_else(|| cur.clone())
        } else {
            cur.clone().or(new)
        }
    };
    let number = |cur: i64, new: i64| -> i64 {
        if new != 0 && (applied || cur == 0) {
            new
        } else {
            cur
        }
    };
    let (password, outcome) = match (&cur.password, new.password) {
        (None, None) => (None, PasswordOutcome::NoPassword),
        (None, Some(p)) => (Some(p), PasswordOutcome::Recorded),
        (Some(c), None) => (Some(c.clone()), PasswordOutcome::KeptOverMissing),
        (Some(c), Some(p)) if *c == p => (Some(p), PasswordOutcome::Unchanged),
        (Some(c), Some(_)) => (Some(c.clone()), PasswordOutcome::Conflict),
    };
    let merged = Fields {
        status: if applied {
            new.status
        } else {
            cur.status.clone()
        },
        rank: if applied { new.rank } else { cur.rank },
        service_updated_at: match (cur.service_updated_at, new.service_updated_at) {
            (Some(c), Some(n)) if applied => Some(c.max(n)),
            (c, n) => c.or(n),
        },
        project_id: cur.project_id.clone().or(new.project_id),
        session_id: if cur.session_id.is_empty() {
            new.session_id
        } else {
            cur.session_id.clone()
        },
        name: pick(&cur.name, new.name),
        reason: pick(&cur.reason, new.reason),
        created_at: if cur.created_at == 0 {
            new.created_at
        } else {
            cur.created_at
        },
        duration: number(cur.duration, new.duration),
        size: number(cur.size, new.size),
        output_mode: pick(&cur.output_mode, new.output_mode),
        resolution: pick(&cur.resolution, new.resolution),
        url: pick(&cur.url, new.url),
        password,
        service_sha256: pick(&cur.service_sha256, new.service_sha256),
        raw_json: if applied {
            new.raw_json
        } else {
            cur.raw_json.clone()
        },
    };
    (merged, applied, outcome)
}

/// Records one event inside the caller's transaction (or savepoint). An event naming an archive id that is
/// not of the service's form is refused before anything is written.
pub(crate) fn record(conn: &Conn, ev: &IncomingEvent) -> Result<EventOutcome, DbError> {
    let now = stamp(ev.received_at);
    let archive = match &ev.kind {
        EventKind::Archive(a) => Some(a.as_ref()),
        EventKind::Other { .. } | EventKind::Unparsed { .. } => None,
    };
    if let Some(id) = ev.archive_id() {
        validate_archive_id(id)?;
    }
    let event_id: i64 = conn
        .query_one(
            "INSERT INTO events (received_at, source, origin, kind, archive_id, body, auth)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &params![
                &now,
                ev.source.as_str(),
                &ev.origin,
                ev.kind_name(),
                ev.archive_id(),
                &ev.body,
                ev.auth.as_str()
            ],
        )
        .and_then(|r| r.get(0))
        .map_err(DbError::sql("record the event"))?;
    let archive = match archive {
        Some(a) => Some(
            upsert_archive(conn, a, ev, &now, event_id)
                .map_err(DbError::sql("record the archive"))?,
        ),
        None => None,
    };
    Ok(EventOutcome { event_id, archive })
}

fn upsert_archive(
    conn: &Conn,
    a: &Archive,
    ev: &IncomingEvent,
    now: &str,
    event_id: i64,
) -> Result<ArchiveOutcome, SqlError> {
    let mut incoming = Fields::from_archive(a, &ev.body);
    if conn.dialect() == Dialect::Postgres {
        // As PostgreSQL will store them, so that comparing with what it holds means what it should.
        incoming.scrub_nul();
    }
    if let Some(project) = &incoming.project_id {
        conn.execute(
            "INSERT INTO projects (id, first_seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
            &params![project, now],
        )?;
    }
    let current = Fields::load(conn, &a.id)?;
    let inserted = current.is_none();
    let conflicting = incoming.password.clone();
    let (next, applied, password) = match &current {
        None => {
            let outcome = if incoming.password.is_some() {
                PasswordOutcome::Recorded
            } else {
                PasswordOutcome::NoPassword
            };
            (incoming, true, outcome)
        }
        Some(cur) => {
            let correct =
                ev.source == EventSource::Sync && api_corrects(conn, &a.id, cur, &a.status)?;
            merge(cur, incoming, &a.status, correct)
        }
    };
    let changed = current.as_ref() != Some(&next);
    if changed {
        conn.execute(
            "INSERT INTO archives (id, project_id, session_id, status, status_rank, name, reason, created_at,
                 service_updated_at, duration, size, output_mode, resolution, url, password, service_sha256,
                 raw_json, first_seen_at, changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)
             ON CONFLICT (id) DO UPDATE SET
                 project_id = excluded.project_id, session_id = excluded.session_id, status = excluded.status,
                 status_rank = excluded.status_rank, name = excluded.name, reason = excluded.reason,
                 created_at = excluded.created_at, service_updated_at = excluded.service_updated_at,
                 duration = excluded.duration, size = excluded.size, output_mode = excluded.output_mode,
                 resolution = excluded.resolution, url = excluded.url, password = excluded.password,
                 service_sha256 = excluded.service_sha256, raw_json = excluded.raw_json,
                 changed_at = excluded.changed_at",
            &params![
                &a.id,
                &next.project_id,
                &next.session_id,
                &next.status,
                next.rank,
                &next.name,
                &next.reason,
                next.created_at,
                next.service_updated_at,
                next.duration,
                next.size,
                &next.output_mode,
                &next.resolution,
                &next.url,
                &next.password,
                &next.service_sha256,
                &next.raw_json,
                now,
            ],
        )?;
    }
    conn.execute(
        "INSERT INTO status_history
             (archive_id, status, service_updated_at, applied, source, first_received_at, last_received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (archive_id, status, service_updated_at) DO UPDATE SET
             times_seen = status_history.times_seen + 1, last_received_at = excluded.last_received_at,
             applied = CASE WHEN excluded.applied > status_history.applied
                            THEN excluded.applied ELSE status_history.applied END",
        &params![
            &a.id,
            a.status.as_str(),
            a.updated_at.unwrap_or(0),
            applied,
            ev.source.as_str(),
            now
        ],
    )?;
    if password == PasswordOutcome::Conflict {
        conn.execute(
            "INSERT INTO password_conflicts (archive_id, password, first_seen_at, event_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (archive_id, password) DO NOTHING",
            &params![&a.id, &conflicting, now, event_id],
        )?;
        conn.execute(
            "UPDATE archives SET password_conflict = 1 WHERE id = ?1 AND password_conflict = 0",
            &params![&a.id],
        )?;
    }
    Ok(ArchiveOutcome {
        archive_id: a.id.clone(),
        inserted,
        status_applied: applied,
        changed,
        status: ArchiveStatus::from(next.status.as_str()),
        password,
    })
}
