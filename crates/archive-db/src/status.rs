//! The order of an archive's statuses, from the service's lifecycle.
//!
//! ```text
//!   started ⇄ paused ──▶ stopped ──▶ uploaded | available | failed ──▶ expired ──▶ deleted
//!   rank 1               rank 2      rank 3                          rank 4      rank 5
//! ```
//!
//! * `started` and `paused` are one stage (recording): an archive pauses when nobody publishes and starts again
//!   when someone does. Between them the service's `updatedAt` decides when both events carry it; otherwise
//!   the later arrival wins.
//! * `uploaded` (in your storage), `available` (in the service's cloud) and `failed` are the three outcomes of
//!   processing. The first outcome recorded stays; a different one arriving later is kept in the history only.
//! * `expired` (the cloud copy is gone) and `deleted` (through the REST API) come after any outcome.
//! * A status this build does not know never replaces a known one (it is kept in the history).
//!
//! So a late `stopped` after `uploaded` is recorded in the history and not applied.

use opentok_rest::model::ArchiveStatus;

/// The stage of a status (higher is later), or `None` for a status this build does not know.
///
/// ```
/// use archive_db::status::rank;
/// use opentok_rest::model::ArchiveStatus;
/// assert!(rank(&ArchiveStatus::Stopped) < rank(&ArchiveStatus::Uploaded));
/// assert_eq!(rank(&ArchiveStatus::Started), rank(&ArchiveStatus::Paused));
/// assert_eq!(rank(&ArchiveStatus::Unknown("transcoding".into())), None);
/// ```
pub fn rank(status: &ArchiveStatus) -> Option<u8> {
    Some(match status {
        ArchiveStatus::Started | ArchiveStatus::Paused => 1,
        ArchiveStatus::Stopped => 2,
        ArchiveStatus::Uploaded | ArchiveStatus::Available | ArchiveStatus::Failed => 3,
        ArchiveStatus::Expired => 4,
        ArchiveStatus::Deleted => 5,
        ArchiveStatus::Unknown(_) => return None,
    })
}

/// The rank stored in the ledger: [`rank`], or 0 for an unknown status.
pub(crate) fn stored_rank(status: &ArchiveStatus) -> i64 {
    rank(status).map_or(0, i64::from)
}

/// The current status of an archive, as the decision needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current<'a> {
    pub(crate) status: &'a str,
    pub(crate) rank: i64,
    pub(crate) service_updated_at: Option<i64>,
}

/// Whether an incoming status replaces the current one.
pub(crate) fn applies(
    current: Current<'_>,
    incoming: &ArchiveStatus,
    incoming_updated_at: Option<i64>,
) -> bool {
    let Some(incoming_rank) = rank(incoming).map(i64::from) else {
        // Unknown: only over another unknown (or nothing known).
        return current.rank == 0;
    };
    if current.status == incoming.as_str() {
        // Same status again: its fields may be newer (a repeated `available` with its url, say).
        return true;
    }
    match incoming_rank.cmp(&current.rank) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal if incoming_rank == 1 => {
            // started ⇄ paused: the newer by the service's clock, else the later arrival.
            match (current.service_updated_at, incoming_updated_at) {
                (Some(cur), Some(new)) => new >= cur,
                _ => true,
            }
        }
        // Two different outcomes (uploaded vs failed, say): the first recorded stays.
        std::cmp::Ordering::Equal => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(status: &str, updated: Option<i64>) -> Current<'_> {
        Current {
            status,
            rank: stored_rank(&ArchiveStatus::from(status)),
            service_updated_at: updated,
        }
    }

    #[test]
    fn forward_only_across_stages() {
        use ArchiveStatus::*;
        let order = [Started, Stopped, Uploaded, Expired, Deleted];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                assert_eq!(
                    applies(cur(a.as_str(), None), b, None),
                    j >= i,
                    "{a} then {b}"
                );
            }
        }
        assert!(!applies(cur("uploaded", None), &Stopped, None));
        assert!(!applies(cur("available", None), &Paused, None));
        assert!(applies(cur("failed", None), &Deleted, None));
    }

    #[test]
    fn started_and_paused_follow_the_service_clock_or_arrival() {
        use ArchiveStatus::*;
        assert!(applies(cur("started", None), &Paused, None));
        assert!(applies(cur("paused", None), &Started, None));
        assert!(applies(cur("paused", Some(20)), &Started, Some(30)));
        assert!(!applies(cur("paused", Some(30)), &Started, Some(20)));
    }

    #[test]
    fn first_outcome_stays_and_unknown_never_replaces_known() {
        use ArchiveStatus::*;
        assert!(!applies(cur("uploaded", None), &Failed, None));
        assert!(!applies(cur("failed", None), &Available, None));
        assert!(applies(cur("uploaded", None), &Uploaded, None));
        let odd = Unknown("transcoding".into());
        assert!(!applies(cur("started", None), &odd, None));
        assert!(applies(cur("transcoding", None), &Started, None));
        assert!(applies(cur("other", None), &odd, None));
    }
}
