//! SIGINT, SIGTERM and SIGHUP during `pull`: each stops the pull the same way (what is decrypted is
//! checkpointed, temporary files are removed, archives still queued are not started), with exit code 130 for
//! SIGINT (Ctrl-C) and 143 for SIGTERM and SIGHUP (what systemd, container runtimes and a closed terminal
//! send). One listener for the whole run, so a signal that arrives between two downloads is not lost.

use tokio::sync::watch;

/// Exit code after SIGTERM or SIGHUP (128 + SIGTERM).
pub(crate) const TERMINATED: u8 = 143;

/// Whether, and by which exit code, the run was asked to stop. Cheap to clone; every download loop holds one.
#[derive(Debug, Clone)]
pub(crate) struct Signals(watch::Receiver<Option<u8>>);

impl Signals {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP (on the current runtime).
    pub(crate) fn listen() -> anyhow::Result<Self> {
        let (tx, rx) = watch::channel(None);
        #[cfg(unix)]
        {
            use anyhow::Context as _;
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
            let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
            let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
            tokio::spawn(async move {
                let code = tokio::select! {
                    _ = int.recv() => crate::exit::INTERRUPTED,
                    _ = term.recv() => TERMINATED,
                    _ = hup.recv() => TERMINATED,
                };
                let _ = tx.send(Some(code));
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(Some(crate::exit::INTERRUPTED));
            }
        });
        Ok(Self(rx))
    }

    /// The process's listener, started on first use (inside the runtime); if it cannot be started, one that
    /// never fires, and the signals keep their default effect.
    pub(crate) fn current() -> Self {
        static CURRENT: std::sync::OnceLock<Signals> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                Self::listen().unwrap_or_else(|e| {
                    eprintln!("warning: {e:#}");
                    let (_, rx) = watch::channel(None);
                    Self(rx)
                })
            })
            .clone()
    }

    /// The exit code if a stop was asked for.
    pub(crate) fn code(&self) -> Option<u8> {
        *self.0.borrow()
    }

    /// Waits until a stop is asked for; returns its exit code.
    pub(crate) async fn stopped(&mut self) -> u8 {
        loop {
            if let Some(code) = *self.0.borrow_and_update() {
                return code;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
