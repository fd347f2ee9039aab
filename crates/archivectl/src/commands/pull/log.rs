//! `pull`'s log lines (tracing, on stderr): one when a run starts, one per archive with its outcome, one when
//! the run ends (archive `-`); each carries the run's id (`run_id`, random per invocation) and the archive id, so the lines
//! of several workers or runs can be told apart. `pull --all` shows them by default (`info`); a `pull` of
//! given archives with `-v`. Never a password, key or presigned URL: only ids, paths, sizes and digests.

use archive_pull::Pulled;

/// The id of one `pull` invocation.
pub(crate) fn run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The run starts with `archives` to pull.
pub(crate) fn started(run_id: &str, archives: usize) {
    tracing::info!(
        run_id,
        archive = "-",
        archives,
        outcome = "started",
        "pull started"
    );
}

/// One archive is done: pulled (`Some`), already there (`None`) or failed. Failures are warnings under
/// `--all` (the run goes on; the error is also in the summary), details with `-v` otherwise (the error
/// line says it already).
pub(crate) fn archive_done(
    run_id: &str,
    id: &str,
    result: &anyhow::Result<Option<Pulled>>,
    all: bool,
) {
    match result {
        Ok(Some(p)) => tracing::info!(
            run_id,
            archive = %id,
            outcome = "pulled",
            bytes = p.bytes,
            sha256 = %p.sha256,
            path = %p.path.display(),
            resumed_from = p.resumed_from,
            object_deleted = p.object_deleted,
            remote_deleted = p.remote_deleted,
            "archive pulled and verified"
        ),
        Ok(None) => tracing::info!(
            run_id,
            archive = %id,
            outcome = "already pulled",
            "archive already pulled and verified"
        ),
        Err(e) if all => tracing::warn!(
            run_id,
            archive = %id,
            outcome = "failed",
            exit_code = crate::exit::code_for(e),
            "archive not pulled: {e:#}"
        ),
        Err(e) => tracing::info!(
            run_id,
            archive = %id,
            outcome = "failed",
            exit_code = crate::exit::code_for(e),
            "archive not pulled: {e:#}"
        ),
    }
}

/// The run is over.
pub(crate) fn finished(run_id: &str, pulled: usize, failed: usize) {
    let outcome = if failed == 0 { "ok" } else { "failed" };
    tracing::info!(
        run_id,
        archive = "-",
        pulled,
        failed,
        outcome,
        "pull finished"
    );
}
