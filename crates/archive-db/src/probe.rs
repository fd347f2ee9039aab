//! Readiness: whether the ledger can commit now, checked without changing it. A load balancer's
//! `/readyz` asks this through the group-commit writer ([`crate::Submitter::probe`]), so it is answered by
//! the connection that commits the callbacks, in turn with them.

use crate::{DbError, Ledger};

impl Ledger {
    /// Takes the write lock (`BEGIN IMMEDIATE` on SQLite, waiting for another writer as a commit would; on
    /// PostgreSQL `BEGIN`, which needs the server up and the connection working), writes a
    /// throw-away row where callbacks are written (so what would refuse a callback refuses this too), and
    /// rolls it all back: nothing in the ledger changes. An error means a callback could not be committed
    /// now either.
    pub fn probe_write(&mut self) -> Result<(), DbError> {
        self.conn
            .begin()
            .map_err(DbError::sql("take the write lock (readiness probe)"))?;
        let written = self.conn.execute(
            "INSERT INTO events (received_at, source, kind, body) VALUES ('', 'readiness probe', 'probe', '')",
            &[],
        );
        self.conn.rollback();
        written
            .map(drop)
            .map_err(DbError::sql("write (readiness probe)"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_changes_nothing_and_fails_when_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite3");
        let mut ledger = Ledger::open(&path).unwrap();
        ledger.probe_write().unwrap();
        assert_eq!(ledger.counts().unwrap(), (0, 0));
        ledger
            .conn
            .sqlite()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
            )
            .unwrap();
        let err = ledger.probe_write().unwrap_err();
        assert!(err.to_string().contains("disk says no"), "{err}");
    }
}
