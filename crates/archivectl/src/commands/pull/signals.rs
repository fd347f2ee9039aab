//! SIGINT, SIGTERM and SIGHUP during `pull`: each cancels the run's one [`CancelToken`] (what is decrypted is
//! checkpointed, temporary files are removed, archives still queued are not started), with exit code 130 for
//! SIGINT (Ctrl-C) and 143 for SIGTERM and SIGHUP (what systemd, container runtimes and a closed terminal
//! send; see `exit::code_for`). One listener for the whole run, so a signal that arrives between two
//! downloads is not lost.

use archive_pull::{CancelToken, StopReason};

/// Starts listening for SIGINT, SIGTERM and SIGHUP (on the current runtime), cancelling `token`.
fn listen(token: CancelToken) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let reason = tokio::select! {
                _ = int.recv() => StopReason::Interrupt,
                _ = term.recv() => StopReason::Terminate,
                _ = hup.recv() => StopReason::Terminate,
            };
            token.cancel(reason);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel(StopReason::Interrupt);
        }
    });
    Ok(())
}

/// The process's cancellation token, its signal listener started on first use (inside the runtime); if it
/// cannot be started, a token that never fires, and the signals keep their default effect.
pub(crate) fn current() -> CancelToken {
    static CURRENT: std::sync::OnceLock<CancelToken> = std::sync::OnceLock::new();
    CURRENT
        .get_or_init(|| {
            let token = CancelToken::new();
            if let Err(e) = listen(token.clone()) {
                eprintln!("warning: cannot listen for signals: {e}");
            }
            token
        })
        .clone()
}
