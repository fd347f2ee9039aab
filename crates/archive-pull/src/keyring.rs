//! The key ring: the private keys an archive password may have been wrapped for (certificate rotation), tried
//! in turn. Keys are loaded only when a password is unwrapped (an unencrypted archive needs none), by loaders
//! the caller gives (a CLI reads files and prompts for passphrases; a service may hold keys in memory).

use std::fmt;

use archive_core::PasswordBlob;
use archive_core::oaep::{self, UnwrapError};
use rsa::PrivateKey;

use crate::{BoxError, Observer};

/// Loads one private key of the ring.
type Loader = Box<dyn Fn() -> Result<PrivateKey, BoxError> + Send + Sync>;

/// Why no key of the ring unwrapped a password.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The ring holds no key.
    #[error("the key ring is empty: give a private key")]
    Empty,
    /// The only key could not be loaded.
    #[error("{0}")]
    Load(#[source] BoxError),
    /// The only key is not the one the password was wrapped for, or the password is not a valid one.
    #[error("cannot unwrap the archive password with {label}")]
    Unwrap {
        /// The key (its path).
        label: String,
        /// Why.
        #[source]
        source: UnwrapError,
    },
    /// Several keys, none of those that could be loaded fits; the first that could not be loaded says why.
    #[error(
        "the password was wrapped for none of the {loaded} key(s) that could be loaded, and {unloadable} of \
         the {count} configured could not be loaded (check its path and passphrase), the first because"
    )]
    NoneLoadable {
        /// Keys in the ring.
        count: usize,
        /// Keys that were loaded and tried.
        loaded: usize,
        /// Keys that could not be loaded.
        unloadable: usize,
        /// Why the first unusable key could not be loaded.
        #[source]
        source: BoxError,
    },
    /// Several keys, all loaded, none fits.
    #[error("the password was wrapped for none of the {count} configured keys")]
    NoneFits {
        /// Keys in the ring.
        count: usize,
        /// Always [`UnwrapError::Decrypt`].
        #[source]
        source: UnwrapError,
    },
}

/// Private keys tried in turn to unwrap an archive password.
///
/// ```
/// use archive_core::{PasswordBlob, oaep};
/// use archive_pull::KeyRing;
///
/// let mut rng = rand::rng();
/// let old = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
/// let new = rsa::PrivateKey::new(&mut rng, 1024).unwrap();
/// let blob = PasswordBlob::new([7; 32], [9; 16]);
/// // The service wrapped this archive's key for the certificate of `old` (before a rotation).
/// let password = oaep::wrap_password(&old.to_public_key(), &blob, &mut rng).unwrap();
/// let ring = KeyRing::new()
///     .with_key("new.pem", move || Ok(new.clone()))
///     .with_key("old.pem", move || Ok(old.clone()));
/// assert_eq!(ring.unwrap_password(&password, &()).unwrap(), blob);
/// ```
#[derive(Default)]
pub struct KeyRing {
    keys: Vec<(String, Loader)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "keys",
                &self.keys.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, named `label` in messages (a path, say), loaded by `load` when it is needed.
    pub fn with_key(
        mut self,
        label: impl Into<String>,
        load: impl Fn() -> Result<PrivateKey, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.keys.push((label.into(), Box::new(load)));
        self
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Unwraps `password` (base64) with the first key it was wrapped for. With several keys, one that cannot
    /// be loaded does not stop the others from being tried (a warning goes to `observer`); it is reported if
    /// none of them fits.
    pub fn unwrap_password(
        &self,
        password: &str,
        observer: &dyn Observer,
    ) -> Result<PasswordBlob, KeyRingError> {
        if self.keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        let count = self.keys.len();
        let many = count > 1;
        let mut unusable: Option<BoxError> = None;
        let mut unloadable = 0;
        for (label, load) in &self.keys {
            let key = match load() {
                Ok(key) => key,
                Err(e) if many => {
                    observer.warning(&format!("skipping private key {label}: {}", chain(&*e)));
                    unloadable += 1;
                    unusable.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(KeyRingError::Load(e)),
            };
            match oaep::unwrap_password(&key, password) {
                Ok(blob) => return Ok(blob),
                Err(UnwrapError::Decrypt | UnwrapError::BlockLength { .. }) if many => continue,
                Err(source) => {
                    return Err(KeyRingError::Unwrap {
                        label: label.clone(),
                        source,
                    });
                }
            }
        }
        Err(match unusable {
            Some(source) => KeyRingError::NoneLoadable {
                count,
                loaded: count - unloadable,
                unloadable,
                source,
            },
            None => KeyRingError::NoneFits {
                count,
                source: UnwrapError::Decrypt,
            },
        })
    }
}

/// An error and its causes on one line (`a: b: c`), as `anyhow` shows them with `{:#}`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl Observer for Warnings {
        fn warning(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    fn key() -> PrivateKey {
        PrivateKey::new(&mut rand::rng(), 1024).unwrap()
    }

    fn unloadable() -> Result<PrivateKey, BoxError> {
        Err("wrong passphrase".into())
    }

    #[test]
    fn an_unloadable_key_is_skipped_with_a_warning_when_another_fits() {
        let (a, b) = (key(), key());
        let blob = PasswordBlob::new([1; 32], [2; 16]);
        let password = oaep::wrap_password(&b.to_public_key(), &blob, &mut rand::rng()).unwrap();
        let ring = KeyRing::new()
            .with_key("locked.pem", unloadable)
            .with_key("a.pem", move || Ok(a.clone()))
            .with_key("b.pem", move || Ok(b.clone()));
        let warnings = Warnings::default();
        assert_eq!(ring.unwrap_password(&password, &warnings).unwrap(), blob);
        assert_eq!(
            *warnings.0.lock().unwrap(),
            ["skipping private key locked.pem: wrong passphrase"]
        );
    }

    #[test]
    fn no_key_that_fits_is_a_wrong_secret_and_an_unloadable_one_is_named() {
        let (a, other) = (key(), key());
        let blob = PasswordBlob::new([1; 32], [2; 16]);
        let password =
            oaep::wrap_password(&other.to_public_key(), &blob, &mut rand::rng()).unwrap();
        let a2 = a.clone();
        let ring = KeyRing::new()
            .with_key("a.pem", move || Ok(a.clone()))
            .with_key("a-again.pem", move || Ok(a2.clone()));
        let e = ring.unwrap_password(&password, &()).unwrap_err();
        assert!(matches!(
            e,
            KeyRingError::NoneFits {
                count: 2,
                source: UnwrapError::Decrypt
            }
        ));
        let ring = KeyRing::new()
            .with_key("locked.pem", unloadable)
            .with_key("a.pem", || Ok(key()));
        let e = ring.unwrap_password(&password, &()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the password was wrapped for none of the 1 key(s) that could be loaded, and 1 of the 2 configured \
             could not be loaded (check its path and passphrase), the first because"
        );
        assert_eq!(
            chain(&e),
            "the password was wrapped for none of the 1 key(s) that could be loaded, and 1 of the 2 configured \
             could not be loaded (check its path and passphrase), the first because: wrong passphrase"
        );
        // One key: its own errors, as they are.
        let ring = KeyRing::new().with_key("locked.pem", unloadable);
        let e = ring.unwrap_password(&password, &()).unwrap_err();
        assert_eq!(chain(&e), "wrong passphrase: wrong passphrase");
    }
}
