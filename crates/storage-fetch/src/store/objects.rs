//! What a store's operations name and return: an archive's three possible objects ([`ArchiveKind`],
//! [`archive_key`]), an object's size and ETag ([`ObjectInfo`], [`Located`]) and a write's result ([`PutInfo`]).

#[cfg(doc)]
use super::Store;

/// Which object of an archive: the service writes exactly one of these under `{apiKey}/{archiveId}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    /// `archive.ts`: an encrypted archive (AES-256-CBC over MPEG-TS).
    EncryptedTs,
    /// `archive.mp4`: an unencrypted composed archive.
    Mp4,
    /// `archive.zip`: an individual-stream archive (never encrypted).
    IndividualZip,
}

impl ArchiveKind {
    /// In the order [`Store::locate`] tries them.
    pub const ALL: [ArchiveKind; 3] = [
        ArchiveKind::EncryptedTs,
        ArchiveKind::Mp4,
        ArchiveKind::IndividualZip,
    ];

    /// The object's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            ArchiveKind::EncryptedTs => "archive.ts",
            ArchiveKind::Mp4 => "archive.mp4",
            ArchiveKind::IndividualZip => "archive.zip",
        }
    }

    /// Whether the object is encrypted (only `archive.ts` is).
    pub fn is_encrypted(self) -> bool {
        self == ArchiveKind::EncryptedTs
    }
}

/// The key the service writes an archive to: `{apiKey}/{archiveId}/archive.{ts,mp4,zip}`.
///
/// ```
/// use storage_fetch::{ArchiveKind, archive_key};
/// assert_eq!(archive_key("123456", "b40ef09b", ArchiveKind::EncryptedTs), "123456/b40ef09b/archive.ts");
/// ```
pub fn archive_key(api_key: &str, archive_id: &str, kind: ArchiveKind) -> String {
    format!("{api_key}/{archive_id}/{}", kind.file_name())
}

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, as the store sends it (quotes included), if the store sends one.
    pub e_tag: Option<String>,
    /// When it was last written, as RFC 3339.
    pub last_modified: String,
}

impl ObjectInfo {
    pub(super) fn from_meta(meta: &object_store::ObjectMeta) -> Self {
        Self {
            key: meta.location.to_string(),
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339(),
        }
    }
}

/// An archive's object, as found by [`Store::locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Which of the three objects it is.
    pub kind: ArchiveKind,
    /// Its key, size and ETag.
    pub object: ObjectInfo,
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutInfo {
    /// The key written.
    pub key: String,
    /// Bytes written.
    pub size: u64,
    /// The new object's ETag, if the store returned one.
    pub e_tag: Option<String>,
}
