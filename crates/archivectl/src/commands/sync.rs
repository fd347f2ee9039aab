//! `archivectl sync`: list archives through the REST API and record them in the ledger, recovering whatever the
//! callback receiver missed — passwords included. The ledger's upsert rules apply (status moves forward only,
//! a known password is never replaced by an empty one), so running it again, or alongside the receiver, is safe.
//!
//! The REST API is the authority: a status a callback set to `failed`, `expired` or `deleted` is corrected by
//! what the service lists (archive-db's rule), and an archive of the project that the service no longer lists
//! within the window it listed (created since `--since`, in `--session-id`) is marked `deleted`, with its
//! history kept. An archive the service lists with an id that is not of its form is an error for that archive;
//! the others are recorded.

use anyhow::Context as _;
use archive_db::{EventSource, IncomingEvent, PasswordOutcome};
use futures_util::StreamExt;
use time::OffsetDateTime;

use crate::context::{self, Context};
use crate::exit::Failure;
use crate::ledger_path::LedgerArgs;

/// Arguments of `archivectl sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only archives created since then: an RFC 3339 time (2026-11-01T00:00:00Z), a date (2026-11-01), or an
    /// age such as 90m, 36h, 7d. Default: every archive the service lists.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only this session's archives.
    #[arg(long, value_name = "ID")]
    session_id: Option<String>,
    #[command(flatten)]
    ledger: LedgerArgs,
}

/// Parses `--since`.
fn parse_since(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(d.midnight().assume_utc());
    }
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = number.parse().map_err(|_| bad_since(text))?;
    let per_unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad_since(text)),
    };
    n.checked_mul(per_unit)
        .and_then(|seconds| now.checked_sub(time::Duration::seconds(seconds)))
        .ok_or_else(|| {
            Failure::usage(format!(
                "--since {text:?} reaches before any date archivectl can represent: give a shorter age or a date"
            ))
        })
}

fn bad_since(text: &str) -> anyhow::Error {
    Failure::usage(format!(
        "--since {text:?}: expected an RFC 3339 time, a date (YYYY-MM-DD) or an age (90m, 36h, 7d)"
    ))
}

/// Runs `archivectl sync`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, OffsetDateTime::now_utc()))
        .transpose()?;
    let since_ms = since.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    let client = ctx.client()?;
    let project = ctx.project_id().ok();
    let mut ledger = args.ledger.open(ctx)?;
    let origin = client.base_url().to_string();
    let listing_started_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let archives = context::runtime()?.block_on(async {
        let mut stream = std::pin::pin!(client.list_all_archives(args.session_id.as_deref()));
        let mut archives = Vec::new();
        while let Some(archive) = stream.next().await {
            let archive = archive.context("cannot list archives")?;
            // Newest first: the first one older than --since ends the listing.
            if since_ms.is_some_and(|s| archive.created_at < s) {
                break;
            }
            archives.push(archive);
        }
        anyhow::Ok(archives)
    })?;
    let events: Vec<IncomingEvent> = archives
        .iter()
        .map(|a| IncomingEvent::from_archive(a, EventSource::Sync, origin.clone()))
        .collect();
    let refs: Vec<&IncomingEvent> = events.iter().collect();
    let results = ledger
        .record_events(&refs)
        .context("cannot record the archives in the ledger")?;
    let (mut new, mut updated, mut passwords, mut conflicts, mut failed) =
        (0u64, 0u64, 0u64, 0u64, Vec::new());
    for (archive, result) in archives.iter().zip(results) {
        match result {
            Ok(outcome) => {
                if let Some(a) = outcome.archive {
                    if a.inserted {
                        new += 1;
                    } else if a.changed {
                        updated += 1;
                    }
                    match a.password {
                        PasswordOutcome::Recorded => passwords += 1,
                        PasswordOutcome::Conflict => conflicts += 1,
                        _ => {}
                    }
                }
            }
            Err(e) => failed.push(format!("{}: {e}", archive_db::escape_controls(&archive.id))),
        }
    }
    // What the ledger knows in the window the service just listed in full, and the service no longer lists.
    let mut marked_deleted = 0u64;
    if let Some(project) = project.as_deref() {
        let listed: std::collections::HashSet<&str> =
            archives.iter().map(|a| a.id.as_str()).collect();
        let gone: Vec<String> = ledger
            .in_listing_window(
                project,
                args.session_id.as_deref(),
                since_ms,
                listing_started_ms,
            )
            .context("cannot read the ledger")?
            .into_iter()
            .filter(|id| !listed.contains(id.as_str()))
            .collect();
        let events: Vec<IncomingEvent> = gone
            .iter()
            .filter_map(|id| {
                let body = serde_json::json!({"id": id, "status": "deleted",
                    "reason": "no longer listed by the service (archivectl sync)"});
                serde_json::from_value::<opentok_rest::model::Archive>(body).ok()
            })
            .map(|a| IncomingEvent::from_archive(&a, EventSource::Sync, origin.clone()))
            .collect();
        let refs: Vec<&IncomingEvent> = events.iter().collect();
        for (id, result) in gone.iter().zip(
            ledger
                .record_events(&refs)
                .context("cannot record the archives in the ledger")?,
        ) {
            match result {
                Ok(_) => marked_deleted += 1,
                Err(e) => failed.push(format!("{id}: {e}")),
            }
        }
    }
    let json = serde_json::json!({
        "listed": archives.len(), "new": new, "updated": updated, "passwords_recorded": passwords,
        "password_conflicts": conflicts, "marked_deleted": marked_deleted, "failed": failed,
        "ledger": ledger.path(),
    });
    ctx.out.emit(&json, || {
        println!(
            "synced {} archive(s) into {}: {new} new, {updated} updated, {passwords} password(s) recovered{}{}",
            archives.len(),
            ledger.path().display(),
            if marked_deleted > 0 {
                format!(", {marked_deleted} no longer listed by the service (marked deleted)")
            } else {
                String::new()
            },
            if conflicts > 0 { format!(", {conflicts} PASSWORD CONFLICT(S): see `archivectl ledger show`") } else { String::new() }
        );
    })?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "{} archive(s) could not be recorded: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_dates_and_ages() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(
            parse_since("36h", now).unwrap(),
            now - time::Duration::hours(36)
        );
        assert_eq!(
            parse_since("7d", now).unwrap(),
            now - time::Duration::days(7)
        );
        assert_eq!(
            parse_since("2026-11-01", now).unwrap().unix_timestamp(),
            1_793_491_200
        );
        assert_eq!(
            parse_since("2026-11-01T12:00:00Z", now)
                .unwrap()
                .unix_timestamp(),
            1_793_534_400
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5y", now).is_err());
        assert!(parse_since("99999999999999w", now).is_err(), "overflow");
        assert!(parse_since("9223372036854775807s", now).is_err());
    }
}
