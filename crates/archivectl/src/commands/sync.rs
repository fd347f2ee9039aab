//! `archivectl sync`: list archives through the REST API and record them in the ledger, recovering whatever the
//! callback receiver missed — passwords included. The ledger's upsert rules apply (status moves forward only,
//! a known password is never replaced by an empty one), so running it again, or alongside the receiver, is safe.

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
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "w" => n.checked_mul(604_800),
        _ => return Err(bad_since(text)),
    };
    seconds
        .and_then(|s| now.checked_sub(time::Duration::seconds(s)))
        .ok_or_else(|| Failure::usage(format!("--since {text:?}: too long ago to be a time")))
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
    let mut ledger = args.ledger.open(ctx)?;
    let origin = client.base_url().to_string();
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
            Err(e) => failed.push(format!("{}: {e}", archive.id)),
        }
    }
    let json = serde_json::json!({
        "listed": archives.len(), "new": new, "updated": updated, "passwords_recorded": passwords,
        "password_conflicts": conflicts, "failed": failed, "ledger": ledger.path(),
    });
    ctx.out.emit(&json, || {
        println!(
            "synced {} archive(s) into {}: {new} new, {updated} updated, {passwords} password(s) recovered{}",
            archives.len(),
            ledger.path().display(),
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
    }
}
