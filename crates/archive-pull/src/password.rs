//! Which wrapped password a pull uses, in one documented order, so that every caller gets the same one:
//!
//! 1. the password the user gave (`--password`), which also lifts the readiness check;
//! 2. else the ledger's (from a callback or a sync), unless two different passwords were recorded for the
//!    archive (a forged or stale callback): then the REST API's, which is the authority;
//! 3. else the REST API's.
//!
//! The REST API is asked only when the ledger cannot say (no password, not known to be uploaded, or a
//! conflict) and never when the user gave the password. An archive that neither the service nor the ledger
//! says is uploaded or available is refused ([`RecheckError::NotReady`]) unless the password was given.
//! After a pull failed because the password did not fit, [`PasswordChoice::retry_password`] names the REST
//! API's password if it is another one.
//!
//! [`PasswordChoice::decide`] is the rule without I/O; [`choose_password`] asks the REST API (and records
//! its answer in the ledger) when the rule says so.
//!
//! ```
//! use archive_pull::{LedgerFacts, PasswordInputs, PasswordSource};
//! use opentok_rest::model::{Archive, ArchiveStatus};
//!
//! let uploaded = ArchiveStatus::Uploaded;
//! let ledger = LedgerFacts { password: Some("from-a-callback"), status: &uploaded, conflict: false };
//!
//! // The ledger has an uploaded archive and its password: no need to ask the REST API.
//! let inputs = PasswordInputs { given: None, ledger: Some(ledger) };
//! assert!(!inputs.needs_service());
//! let choice = inputs.decide("b40ef09b-3811-4726-b508-e41a0f96c68f", None).unwrap();
//! assert_eq!((choice.password(), choice.source()), (Some("from-a-callback"), Some(PasswordSource::Ledger)));
//!
//! // Two passwords were recorded: the REST API's wins.
//! let conflicting = LedgerFacts { conflict: true, ..ledger };
//! let inputs = PasswordInputs { given: None, ledger: Some(conflicting) };
//! assert!(inputs.needs_service());
//! let service: Archive = serde_json::from_value(serde_json::json!({
//!     "id": "b40ef09b-3811-4726-b508-e41a0f96c68f", "status": "uploaded", "password": "from-the-api",
//! })).unwrap();
//! let choice = inputs.decide("b40ef09b-3811-4726-b508-e41a0f96c68f", Some(service)).unwrap();
//! assert_eq!(choice.source(), Some(PasswordSource::Service));
//!
//! // Still recording: refused, unless the user gives the password.
//! let started = ArchiveStatus::Started;
//! let recording = LedgerFacts { password: None, status: &started, conflict: false };
//! assert!(PasswordInputs { given: None, ledger: Some(recording) }.decide("b40ef09b-3811-4726-b508-e41a0f96c68f", None).is_err());
//! let given = PasswordInputs { given: Some("mine"), ledger: Some(recording) };
//! assert_eq!(given.decide("b40ef09b-3811-4726-b508-e41a0f96c68f", None).unwrap().source(), Some(PasswordSource::Given));
//! ```

use std::fmt;
use std::sync::Mutex;

use archive_db::{ArchiveRecord, Ledger};
use opentok_rest::model::{Archive, ArchiveStatus};

use crate::recheck::{RecheckError, ask_service, not_ready, ready};

/// Where the chosen password came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    /// The user gave it (`--password` or `--password-file`).
    Given,
    /// The ledger recorded it from a callback or a sync.
    Ledger,
    /// The REST API gave it.
    Service,
}

/// What the ledger knows of an archive that bears on its password: the recorded password, the status, and
/// whether conflicting passwords were recorded. Built from an [`ArchiveRecord`] with `From`.
#[derive(Clone, Copy)]
pub struct LedgerFacts<'a> {
    /// The wrapped password recorded first, if any.
    pub password: Option<&'a str>,
    /// The furthest status recorded.
    pub status: &'a ArchiveStatus,
    /// Another non-empty password was recorded too.
    pub conflict: bool,
}

impl<'a> From<&'a ArchiveRecord> for LedgerFacts<'a> {
    fn from(record: &'a ArchiveRecord) -> Self {
        Self {
            password: record.password.as_deref(),
            status: &record.status,
            conflict: record.password_conflict,
        }
    }
}

impl fmt::Debug for LedgerFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerFacts")
            .field("password", &self.password.map(|_| "[redacted]"))
            .field("status", self.status)
            .field("conflict", &self.conflict)
            .finish()
    }
}

/// What a pull knows before it chooses: the password the user gave, and what the ledger has.
#[derive(Debug, Clone, Copy)]
pub struct PasswordInputs<'a> {
    /// The password the user gave, if any.
    pub given: Option<&'a str>,
    /// What the ledger has of the archive, if it knows it.
    pub ledger: Option<LedgerFacts<'a>>,
}

impl<'a> PasswordInputs<'a> {
    /// The inputs from the user's password and the archive's ledger row.
    pub fn new(given: Option<&'a str>, record: Option<&'a ArchiveRecord>) -> Self {
        Self {
            given,
            ledger: record.map(LedgerFacts::from),
        }
    }

    /// Whether two passwords were recorded and the user gave none: the REST API says which one it is.
    fn conflict(&self) -> bool {
        self.given.is_none() && self.ledger.is_some_and(|l| l.conflict)
    }

    /// Whether the REST API must be asked: the user gave no password and the ledger has none, does not know
    /// the archive to be uploaded or available, or recorded conflicting passwords.
    pub fn needs_service(&self) -> bool {
        if self.given.is_some() {
            return false;
        }
        match self.ledger {
            None => true,
            Some(l) => l.password.is_none() || !ready(l.status) || l.conflict,
        }
    }

    /// Chooses the password of archive `id`, given what the REST API said of it (`None` if it was not
    /// asked or cannot be). Errors with [`RecheckError::NotReady`] if the archive is known not to be
    /// uploaded nor available and the user gave no password.
    pub fn decide(
        &self,
        id: &str,
        service: Option<Archive>,
    ) -> Result<PasswordChoice, RecheckError> {
        let status = service
            .as_ref()
            .map(|a| a.status.clone())
            .or_else(|| self.ledger.map(|l| l.status.clone()));
        if let Some(status) = &status
            && !ready(status)
            && self.given.is_none()
        {
            return Err(not_ready(id, status));
        }
        let from_service = service
            .as_ref()
            .and_then(Archive::encrypted_password)
            .map(|p| (p.to_owned(), PasswordSource::Service));
        let known = match (self.given, self.ledger.and_then(|l| l.password)) {
            (Some(given), _) => Some((given.to_owned(), PasswordSource::Given)),
            (None, Some(recorded)) => Some((recorded.to_owned(), PasswordSource::Ledger)),
            (None, None) => None,
        };
        let chosen = if self.conflict() {
            from_service.or(known)
        } else {
            known.or(from_service)
        };
        let (password, source) = chosen.unzip();
        Ok(PasswordChoice {
            password,
            source,
            status,
            given: self.given.is_some(),
            service,
        })
    }
}

/// The password a pull uses, where it came from, and what the REST API said of the archive if it was asked.
#[derive(Clone)]
pub struct PasswordChoice {
    password: Option<String>,
    source: Option<PasswordSource>,
    status: Option<ArchiveStatus>,
    given: bool,
    service: Option<Archive>,
}

impl fmt::Debug for PasswordChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChoice")
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("source", &self.source)
            .field("status", &self.status)
            .field("asked_service", &self.service.is_some())
            .finish()
    }
}

impl PasswordChoice {
    /// The wrapped password to unwrap, if any is known (an unencrypted archive needs none).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Where [`PasswordChoice::password`] came from.
    pub fn source(&self) -> Option<PasswordSource> {
        self.source
    }

    /// The archive's status, from the REST API if it was asked, else from the ledger (`None` if neither
    /// knows the archive).
    pub fn status(&self) -> Option<&ArchiveStatus> {
        self.status.as_ref()
    }

    /// The archive as the REST API gave it, if it was asked.
    pub fn service_archive(&self) -> Option<&Archive> {
        self.service.as_ref()
    }

    /// After a pull with [`PasswordChoice::password`] failed because the password did not fit: the password
    /// to try instead, which is `service_password` (the REST API's) if the user gave none and it is another
    /// one. `None`: there is nothing else to try.
    pub fn retry_password(&self, service_password: Option<&str>) -> Option<String> {
        let other = service_password.filter(|p| !p.trim().is_empty())?;
        (!self.given && self.password.as_deref() != Some(other)).then(|| other.to_owned())
    }
}

/// Chooses archive `id`'s password (see the module's order): asks the REST API through `client` when
/// [`PasswordInputs::needs_service`] says so, recording its answer in `ledger`, then
/// [`PasswordInputs::decide`]s. Without a client, the ledger's word is all there is.
pub async fn choose_password(
    client: Option<&opentok_rest::Client>,
    ledger: &Mutex<Ledger>,
    id: &str,
    inputs: PasswordInputs<'_>,
) -> Result<PasswordChoice, RecheckError> {
    let service = match client {
        Some(c) if inputs.needs_service() => Some(ask_service(c, ledger, id).await?),
        _ => None,
    };
    inputs.decide(id, service)
}

#[cfg(test)]
mod tests;
