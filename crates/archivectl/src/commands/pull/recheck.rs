//! What `pull` does not take on trust from callbacks: the checks themselves are archive-pull's
//! (`archive_pull::ask_service`, `terminal_from_callbacks`, `ready`, `already_pulled`); here, only how a
//! failed pull is told to be a password that did not fit, so the REST API's password is tried.

/// Whether a pull failed because of the archive's password: it does not unwrap with our key, is not a valid
/// blob, or decrypts the archive to something that is not MPEG-TS.
pub(crate) fn password_failed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<archive_pull::PullError>()
        .is_some_and(archive_pull::PullError::is_password_failure)
}
