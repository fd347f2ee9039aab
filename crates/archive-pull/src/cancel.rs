//! The one cancellation point of a pull: a [`CancelToken`] that carries why it was cancelled.
//!
//! Our own small type on `tokio::sync::watch` rather than `tokio_util`'s `CancellationToken`: the caller must
//! learn *why* a pull stopped ([`StopReason`]: an interrupt or a termination, which a CLI turns into different
//! exit codes, 130 and 143), and a token cancelled before a pull starts must be seen by it (a `watch` keeps
//! its last value; no signal between two archives is lost).

use std::sync::Arc;

use tokio::sync::watch;

/// Why a pull was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// An interrupt (Ctrl-C, SIGINT).
    Interrupt,
    /// A request to terminate (SIGTERM, SIGHUP: systemd, container runtimes, a closed terminal).
    Terminate,
}

/// Cancels pulls in progress and keeps queued ones from starting. Cheap to clone; every clone sees the same
/// state. The first reason given wins.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<watch::Sender<Option<StopReason>>>);

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token not cancelled yet.
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }

    /// Asks every pull holding this token to stop (checkpointing what it has), for `reason`.
    pub fn cancel(&self, reason: StopReason) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Why it was cancelled, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        *self.0.borrow()
    }

    /// Waits until the token is cancelled; returns why.
    pub async fn cancelled(&self) -> StopReason {
        let mut rx = self.0.subscribe();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins_and_is_seen_by_every_clone() {
        let token = CancelToken::new();
        let clone = token.clone();
        assert_eq!(clone.reason(), None);
        token.cancel(StopReason::Terminate);
        token.cancel(StopReason::Interrupt);
        assert_eq!(clone.reason(), Some(StopReason::Terminate));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(clone.cancelled()), StopReason::Terminate);
    }
}
