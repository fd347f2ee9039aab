//! The service's archive id: the one rule every entry point checks before an id becomes a ledger row, a file
//! name or an object key.
//!
//! The service names each archive with a UUID in its canonical text form: 36 characters, hexadecimal digits
//! in groups of 8, 4, 4, 4 and 12 separated by `-` (`b40ef09b-3811-4726-b508-e41a0f96c68f`). Letters are
//! accepted in either case (the service writes lower case). Nothing else is an archive id: no braces, no
//! `urn:uuid:` prefix, no surrounding white space. Because the form has no `/`, `.`, `\`, `%` or control
//! character, a valid id is always safe as one path component and one object-key segment.
//!
//! ```
//! use opentok_rest::archive_id::{ArchiveId, validate_archive_id};
//!
//! let id = ArchiveId::parse("b40ef09b-3811-4726-b508-e41a0f96c68f").unwrap();
//! assert_eq!(id.as_str(), "b40ef09b-3811-4726-b508-e41a0f96c68f");
//! assert!(validate_archive_id("../../etc/passwd").is_err());
//! assert!(validate_archive_id("b40ef09b38114726b508e41a0f96c68f").is_err());
//! ```

use std::fmt;

/// The length of an archive id: a UUID's canonical text form.
pub const ARCHIVE_ID_LEN: usize = 36;

/// An id that is not of the service's archive id form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{shown} is not an archive id: the service's ids are UUIDs like b40ef09b-3811-4726-b508-e41a0f96c68f ({why})"
)]
pub struct InvalidArchiveId {
    /// The id as received, with control characters escaped and cut to 80 characters, safe to print.
    pub shown: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Checks `id` against the service's archive id form (see the module's documentation).
pub fn validate_archive_id(id: &str) -> Result<(), InvalidArchiveId> {
    let fail = |why| {
        Err(InvalidArchiveId {
            shown: shown(id),
            why,
        })
    };
    if id.len() != ARCHIVE_ID_LEN {
        return fail("it is not 36 characters long");
    }
    for (i, b) in id.bytes().enumerate() {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        if dash && b != b'-' {
            return fail("it has no '-' where a UUID has one");
        }
        if !dash && !b.is_ascii_hexdigit() {
            return fail("it has a character that is not a hexadecimal digit");
        }
    }
    Ok(())
}

/// An archive id known to be of the service's form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveId(String);

impl ArchiveId {
    /// Checks `id` (see [`validate_archive_id`]) and keeps it as it was written.
    pub fn parse(id: &str) -> Result<Self, InvalidArchiveId> {
        validate_archive_id(id)?;
        Ok(Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ArchiveId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ArchiveId {
    type Err = InvalidArchiveId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `id` made safe to print: control and non-ASCII characters escaped, at most 80 characters.
fn shown(id: &str) -> String {
    let mut out = String::new();
    for c in id.chars().take(80) {
        out.extend(c.escape_debug());
    }
    if id.chars().count() > 80 {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_form_is_accepted_in_either_case() {
        assert!(validate_archive_id("b40ef09b-3811-4726-b508-e41a0f96c68f").is_ok());
        assert!(validate_archive_id("B40EF09B-3811-4726-B508-E41A0F96C68F").is_ok());
    }

    #[test]
    fn everything_else_is_refused_with_the_reason() {
        for (id, why) in [
            ("", "36 characters"),
            ("b40ef09b-3811-4726-b508-e41a0f96c68", "36 characters"),
            ("{40ef09b-3811-4726-b508-e41a0f96c68f", "hexadecimal"),
            ("b40ef09b-3811-4726-b508/e41a0f96c68f", "'-'"),
            ("../../../../../../../../etc/passwdxx", "hexadecimal"),
            ("b40ef09b-3811-4726-b508-e41a0f96c6.f", "hexadecimal"),
            ("b40ef09b-3811-4726-b508-e41a0f96c6\n8", "hexadecimal"),
            ("b40ef09b13811-4726-b508-e41a0f96c68f", "'-'"),
        ] {
            let err = validate_archive_id(id).unwrap_err();
            assert!(err.to_string().contains(why), "{id:?}: {err}");
        }
    }

    #[test]
    fn multibyte_input_is_refused_without_panicking() {
        let id = "é".repeat(18);
        assert_eq!(id.len(), 36);
        assert!(validate_archive_id(&id).is_err());
    }

    #[test]
    fn the_shown_form_escapes_control_characters() {
        let err = validate_archive_id("\u{1b}[31mred").unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'));
        assert!(err.to_string().contains("\\u{1b}"));
    }
}
