//! The service's `sha256sum` against the object `pull` downloaded (issue 13).
//!
//! The service reports a `sha256sum` for an archive (base64 in recorded payloads; hex is accepted too). What
//! it hashes for an *encrypted* archive is not documented, so the pull hashes the object's bytes as stored (the
//! ciphertext), compares, records the outcome in the ledger, and warns on a mismatch: a warning, never an
//! error — the output's own verification (MPEG-TS throughout, the object's length, the padding) is what makes
//! it trusted.

use std::sync::Mutex;

use archive_db::Ledger;
use base64::Engine as _;

use crate::{Observer, Pulled, settle::lock};

/// The outcome of comparing the service's `sha256sum` with the object's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sha256sumCheck {
    /// They are the same digest.
    Matched,
    /// They differ.
    Mismatched,
    /// The service's value is neither hex nor base64 of 32 bytes: nothing to compare.
    Unreadable,
}

/// The digest the service's `sha256sum` spells: 64 hex digits (either case), or base64 (standard or URL-safe,
/// padded or not) of 32 bytes; `None` for anything else. Surrounding whitespace is ignored.
///
/// ```
/// let hex = "ab".repeat(32);
/// assert_eq!(archive_pull::decode_sha256sum(&hex), Some([0xab; 32]));
/// assert_eq!(archive_pull::decode_sha256sum("q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="), Some([0xab; 32]));
/// assert_eq!(archive_pull::decode_sha256sum("test_sha256_sum"), None);
/// ```
pub fn decode_sha256sum(value: &str) -> Option<[u8; 32]> {
    let value = value.trim();
    let mut digest = [0u8; 32];
    if value.len() == 64 && hex::decode_to_slice(value, &mut digest).is_ok() {
        return Some(digest);
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|engine| {
        engine
            .decode(value)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
    })
}

/// Compares the service's `sha256sum` with the object's SHA-256 (`object`, hex as [`crate::Pulled`] has it).
pub fn check_sha256sum(service: &str, object: &str) -> Sha256sumCheck {
    let mut ours = [0u8; 32];
    match decode_sha256sum(service) {
        None => Sha256sumCheck::Unreadable,
        Some(_) if hex::decode_to_slice(object, &mut ours).is_err() => Sha256sumCheck::Unreadable,
        Some(theirs) if theirs == ours => Sha256sumCheck::Matched,
        Some(_) => Sha256sumCheck::Mismatched,
    }
}

/// Compares the service's `sha256sum` the ledger holds for the pulled archive with the SHA-256 of the object
/// the pull downloaded, records the outcome in the ledger, sets [`Pulled::service_sha256_matched`], and warns
/// `observer` on a mismatch (or a value that is not a SHA-256). Never fails: the output is verified and
/// recorded already; a ledger that cannot take the outcome is a warning too.
pub(crate) fn check_and_record(
    ledger: &Mutex<Ledger>,
    pulled: &mut Pulled,
    observer: &dyn Observer,
) {
    let id = pulled.id.as_str();
    let service = match lock(ledger).archive(id) {
        Ok(record) => record.and_then(|r| r.service_sha256),
        Err(e) => {
            observer.warning(&format!(
                "cannot read the service's sha256sum of {id} from the ledger: {e}"
            ));
            None
        }
    };
    let matched = match (service.as_deref(), pulled.object_sha256.as_deref()) {
        (None, _) => None,
        (Some(_), None) => {
            observer.note(&format!(
                "archive {id}: the part downloaded before this run cannot be read back, so the service's \
                 sha256sum is not checked"
            ));
            None
        }
        (Some(theirs), Some(ours)) => match check_sha256sum(theirs, ours) {
            Sha256sumCheck::Matched => Some(true),
            Sha256sumCheck::Mismatched => {
                observer.warning(&format!(
                    "archive {id}: the SHA-256 of the object as downloaded ({ours}) is not the service's \
                     sha256sum ({}); the output is verified (MPEG-TS throughout, length, padding) and what the \
                     service hashes for an encrypted archive is not documented, so this is not an error",
                    archive_db::escape_controls(theirs)
                ));
                Some(false)
            }
            Sha256sumCheck::Unreadable => {
                observer.warning(&format!(
                    "archive {id}: the service's sha256sum ({}) is neither hex nor base64 of a SHA-256: not checked",
                    archive_db::escape_controls(theirs)
                ));
                None
            }
        },
    };
    pulled.service_sha256_matched = matched;
    if let Err(e) = lock(ledger).record_object_sha256(id, pulled.object_sha256.as_deref(), matched)
    {
        observer.warning(&format!(
            "cannot record the sha256sum check of {id} in the ledger: {e}"
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn base64_and_hex_spellings_of_the_same_digest_match_and_others_do_not() {
        let digest = Sha256::digest(b"an encrypted archive");
        let ours = hex::encode(digest);
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        for spelling in [
            b64.clone(),
            b64.trim_end_matches('=').to_owned(),
            base64::engine::general_purpose::URL_SAFE.encode(digest),
            ours.clone(),
            ours.to_uppercase(),
            format!(" {b64}\n"),
        ] {
            assert_eq!(
                check_sha256sum(&spelling, &ours),
                Sha256sumCheck::Matched,
                "{spelling}"
            );
        }
        let other = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"another"));
        assert_eq!(check_sha256sum(&other, &ours), Sha256sumCheck::Mismatched);
        // Not a SHA-256 in either spelling (the recorded fixtures' placeholders, a SHA-1, empty).
        for unreadable in [
            "test_sha256_sum",
            "abc123def456",
            "",
            &hex::encode([1u8; 20]),
            &base64::engine::general_purpose::STANDARD.encode([1u8; 31]),
        ] {
            assert_eq!(
                check_sha256sum(unreadable, &ours),
                Sha256sumCheck::Unreadable,
                "{unreadable}"
            );
        }
    }
}
