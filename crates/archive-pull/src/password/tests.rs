//! Unit tests of the password order: every branch of `PasswordInputs::decide`, `needs_service` and
//! `PasswordChoice::retry_password`.

use opentok_rest::model::{Archive, ArchiveStatus};

use super::*;

const ID: &str = "b40ef09b-3811-4726-b508-e41a0f96c68f";

fn service(status: &str, password: Option<&str>) -> Archive {
    let mut json = serde_json::json!({ "id": ID, "status": status });
    if let Some(p) = password {
        json["password"] = p.into();
    }
    serde_json::from_value(json).unwrap()
}

fn facts<'a>(
    password: Option<&'a str>,
    status: &'a ArchiveStatus,
    conflict: bool,
) -> LedgerFacts<'a> {
    LedgerFacts {
        password,
        status,
        conflict,
    }
}

fn inputs<'a>(given: Option<&'a str>, ledger: Option<LedgerFacts<'a>>) -> PasswordInputs<'a> {
    PasswordInputs { given, ledger }
}

#[test]
fn a_given_password_wins_and_the_service_is_never_asked() {
    let started = ArchiveStatus::Started;
    for ledger in [
        None,
        Some(facts(Some("ledger"), &started, false)),
        Some(facts(Some("ledger"), &started, true)),
    ] {
        let i = inputs(Some("given"), ledger);
        assert!(!i.needs_service(), "{ledger:?}");
        // Even a status that is not ready is no obstacle: the user knows the archive.
        let c = i.decide(ID, None).unwrap();
        assert_eq!(c.password(), Some("given"));
        assert_eq!(c.source(), Some(PasswordSource::Given));
        assert_eq!(c.retry_password(Some("service")), None);
    }
}

#[test]
fn the_ledger_suffices_when_it_has_a_password_of_a_ready_archive() {
    for status in [ArchiveStatus::Uploaded, ArchiveStatus::Available] {
        let i = inputs(None, Some(facts(Some("ledger"), &status, false)));
        assert!(!i.needs_service());
        let c = i.decide(ID, None).unwrap();
        assert_eq!(
            (c.password(), c.source()),
            (Some("ledger"), Some(PasswordSource::Ledger))
        );
        assert_eq!(c.status(), Some(&status));
        assert!(c.service_archive().is_none());
    }
}

#[test]
fn the_service_is_asked_when_the_ledger_cannot_say() {
    let uploaded = ArchiveStatus::Uploaded;
    let stopped = ArchiveStatus::Stopped;
    // Unknown to the ledger; no password recorded; not known to be uploaded; conflicting passwords.
    for ledger in [
        None,
        Some(facts(None, &uploaded, false)),
        Some(facts(Some("ledger"), &stopped, false)),
        Some(facts(Some("ledger"), &uploaded, true)),
    ] {
        assert!(inputs(None, ledger).needs_service(), "{ledger:?}");
    }
}

#[test]
fn the_ledger_password_comes_before_the_service_one_without_a_conflict() {
    let stopped = ArchiveStatus::Stopped;
    let i = inputs(None, Some(facts(Some("ledger"), &stopped, false)));
    let c = i
        .decide(ID, Some(service("uploaded", Some("service"))))
        .unwrap();
    assert_eq!(
        (c.password(), c.source()),
        (Some("ledger"), Some(PasswordSource::Ledger))
    );
    // The service's status is the one that counts.
    assert_eq!(c.status(), Some(&ArchiveStatus::Uploaded));
    assert!(c.service_archive().is_some());
    // It did not fit: the service's is the one to try next.
    assert_eq!(
        c.retry_password(Some("service")).as_deref(),
        Some("service")
    );
}

#[test]
fn the_service_password_is_used_when_the_ledger_has_none() {
    let i = inputs(None, None);
    let c = i
        .decide(ID, Some(service("available", Some("service"))))
        .unwrap();
    assert_eq!(
        (c.password(), c.source()),
        (Some("service"), Some(PasswordSource::Service))
    );
    // Nothing else to try: the service's password is the one that failed.
    assert_eq!(c.retry_password(Some("service")), None);
}

#[test]
fn a_conflict_is_settled_by_the_service() {
    let uploaded = ArchiveStatus::Uploaded;
    let i = inputs(None, Some(facts(Some("forged"), &uploaded, true)));
    let c = i
        .decide(ID, Some(service("uploaded", Some("service"))))
        .unwrap();
    assert_eq!(
        (c.password(), c.source()),
        (Some("service"), Some(PasswordSource::Service))
    );
    // The service gives no password (or cannot be asked): the ledger's is all there is.
    let c = i.decide(ID, Some(service("uploaded", None))).unwrap();
    assert_eq!(
        (c.password(), c.source()),
        (Some("forged"), Some(PasswordSource::Ledger))
    );
    let c = i.decide(ID, None).unwrap();
    assert_eq!(c.source(), Some(PasswordSource::Ledger));
}

#[test]
fn an_archive_not_ready_is_refused_with_its_status() {
    let uploaded = ArchiveStatus::Uploaded;
    let stopped = ArchiveStatus::Stopped;
    // The ledger says stopped and no service is asked.
    let err = inputs(None, Some(facts(Some("ledger"), &stopped, false)))
        .decide(ID, None)
        .unwrap_err();
    assert!(
        matches!(&err, RecheckError::NotReady { id, status } if id == ID && *status == ArchiveStatus::Stopped),
        "{err:?}"
    );
    // The service's word beats the ledger's: still recording.
    let err = inputs(None, Some(facts(Some("ledger"), &uploaded, true)))
        .decide(ID, Some(service("started", Some("service"))))
        .unwrap_err();
    assert!(err.to_string().contains("still recording"), "{err}");
}

#[test]
fn an_archive_nobody_knows_is_not_refused() {
    // No ledger row and no REST API: the pull goes on without a password (an unencrypted archive needs
    // none; an encrypted one fails later, naming the missing password).
    let c = inputs(None, None).decide(ID, None).unwrap();
    assert_eq!((c.password(), c.source(), c.status()), (None, None, None));
}

#[test]
fn no_retry_without_another_password() {
    let uploaded = ArchiveStatus::Uploaded;
    let c = inputs(None, Some(facts(Some("ledger"), &uploaded, false)))
        .decide(ID, None)
        .unwrap();
    assert_eq!(c.retry_password(None), None);
    assert_eq!(c.retry_password(Some("  ")), None);
    assert_eq!(c.retry_password(Some("ledger")), None);
    assert_eq!(c.retry_password(Some("other")).as_deref(), Some("other"));
}

#[test]
fn debug_never_shows_a_password() {
    let uploaded = ArchiveStatus::Uploaded;
    let ledger = facts(Some("wrapped-secret"), &uploaded, false);
    let c = inputs(None, Some(ledger)).decide(ID, None).unwrap();
    for shown in [format!("{c:?}"), format!("{ledger:?}")] {
        assert!(
            !shown.contains("wrapped-secret") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
