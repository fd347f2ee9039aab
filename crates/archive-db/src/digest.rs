//! The service's `sha256sum` check (issue 13): what `archivectl pull` found when it hashed the object it
//! downloaded, and whether that matched the `sha256sum` the service reported. The comparison itself is the
//! pull pipeline's; the ledger keeps its result beside the archive's other facts.

use crate::DbError;
use crate::db::params;
use crate::ledger::Ledger;

impl Ledger {
    /// Records the SHA-256 (lowercase hex) of the object's bytes as they were downloaded (`None`: not hashed)
    /// and whether it matched the service's `sha256sum` (`None`: not checked — the service reported none, or
    /// the pull could not hash the whole object).
    pub fn record_object_sha256(
        &mut self,
        id: &str,
        object_sha256: Option<&str>,
        matched: Option<bool>,
    ) -> Result<(), DbError> {
        let n = self
            .conn
            .write(|tx| {
                tx.execute(
                    "UPDATE archives SET object_sha256 = ?2, service_sha256_matched = ?3 WHERE id = ?1",
                    &params![id, object_sha256, matched],
                )
            })
            .map_err(DbError::sql("record the object's SHA-256"))?;
        if n == 0 {
            return Err(DbError::NotFound(id.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{IncomingEvent, Ledger};

    const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

    #[test]
    fn the_check_is_kept_beside_the_services_sha256sum() {
        let mut ledger = Ledger::open_in_memory().unwrap();
        let body = format!(
            r#"{{"id":"{ID}","status":"uploaded","password":"ZTQy","sha256sum":"q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U="}}"#
        );
        ledger
            .record_event(&IncomingEvent::from_callback(body.as_bytes(), "cb").unwrap())
            .unwrap();
        let before = ledger.archive(ID).unwrap().unwrap();
        assert_eq!(
            before.service_sha256.as_deref(),
            Some("q1Ykf5X0MM2kG3Qqk6mjmGkZr0m0Nw0Dw1nqk3rIY2U=")
        );
        assert_eq!(
            (before.object_sha256, before.service_sha256_matched),
            (None, None)
        );
        let hex = "ab".repeat(32);
        ledger
            .record_object_sha256(ID, Some(&hex), Some(false))
            .unwrap();
        let after = ledger.archive(ID).unwrap().unwrap();
        assert_eq!(after.object_sha256.as_deref(), Some(hex.as_str()));
        assert_eq!(after.service_sha256_matched, Some(false));
        let mut json = Vec::new();
        ledger.export_json(&mut json).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json[0]["service_sha256_matched"], false);
        assert!(matches!(
            ledger.record_object_sha256("2d1a1f2c-0000-4000-8000-000000000000", None, None),
            Err(crate::DbError::NotFound(_))
        ));
    }
}
