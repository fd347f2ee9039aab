//! Authenticating to the service: a fresh JSON Web Token for every request.
//!
//! Two kinds of credentials reach the same archive endpoints (`/v2/project/{id}/...`):
//!
//! * **OpenTok project** ([`ProjectCredentials`]): the API key and API secret. Each request carries
//!   `X-OPENTOK-AUTH: <JWT>`, an HS256 token keyed with the secret, with the claims
//!   `{"iss": API key, "ist": "project", "iat": now, "exp": now + at most 300 s, "jti": a fresh UUID}`.
//!   Base URL `https://api.opentok.com`, `{id}` is the API key.
//! * **Vonage application** ([`ApplicationCredentials`]): the application id and its RSA private key.
//!   Each request carries `Authorization: Bearer <JWT>`, an RS256 token with
//!   `{"application_id", "iat", "exp", "jti"}`. Base URL `https://video.api.vonage.com`, `{id}` is the
//!   application id.
//!
//! Tokens live [`DEFAULT_TOKEN_LIFETIME`] (3 minutes, the service's recommendation) unless told otherwise,
//! and never more than [`MAX_TOKEN_LIFETIME`] (5 minutes, the service's limit).
//!
//! [`verify_project_token`] and [`verify_application_token`] check tokens the way the service does; the
//! emulator uses them.
//!
//! JWTs are signed and verified by `jsonwebtoken` on its RustCrypto backend (`hmac`/`sha2` for HS256, `rsa`'s
//! PKCS#1 v1.5 for RS256; no OpenSSL, no aws-lc). Its `Validation` checks the algorithm and the signature;
//! the service's own claim rules (`iss`/`application_id`, `ist`, `exp` after `iat` by at most 300 s, a minute of
//! clock skew for `iat`) are checked on top, against the caller's clock. jsonwebtoken keeps its own copy of
//! a key (not wiped on drop): credentials build theirs once, not per request.
//!
//! ```
//! use std::time::Duration;
//! use opentok_rest::auth::{self, Credentials};
//!
//! let credentials = Credentials::project("123456", "0123456789abcdef".into());
//! let header = credentials.auth_header(auth::DEFAULT_TOKEN_LIFETIME).unwrap();
//! assert_eq!(header.name(), "X-OPENTOK-AUTH");
//! let claims = auth::verify_project_token(header.value(), "123456", b"0123456789abcdef", auth::unix_now().unwrap()).unwrap();
//! assert_eq!(claims.ist, "project");
//! assert_eq!(claims.exp - claims.iat, 180);
//! // The secret never shows.
//! assert!(!format!("{credentials:?} {header:?}").contains("0123456789abcdef"));
//! assert!(!format!("{header:?}").contains(header.value()));
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{PrivateKey, PublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Base URL of the service for OpenTok project credentials.
pub const OPENTOK_API_URL: &str = "https://api.opentok.com";
/// Base URL of the service for Vonage application credentials.
pub const VONAGE_VIDEO_API_URL: &str = "https://video.api.vonage.com";
/// How long a token lives unless told otherwise: 3 minutes, as the service recommends.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(180);
/// The longest lifetime the service accepts: `exp` at most 5 minutes after `iat`.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// How far in the future `iat` may be, in seconds, before [`verify_project_token`] calls it a forgery
/// rather than clock skew.
pub const CLOCK_SKEW_LEEWAY_SECS: u64 = 60;
/// The request header of OpenTok project auth.
pub const OPENTOK_AUTH_HEADER: &str = "X-OPENTOK-AUTH";
/// The request header of Vonage application auth.
pub const AUTHORIZATION_HEADER: &str = "Authorization";
/// The `ist` (issuer type) claim of project tokens.
pub const ISSUER_TYPE_PROJECT: &str = "project";

/// Why a token could not be made or was not accepted. Messages name claims and ids, never secrets or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A lifetime longer than the service accepts.
    #[error("a token lifetime of {0} s is longer than the service accepts (at most 300 s)")]
    LifetimeTooLong(u64),
    /// A lifetime of zero.
    #[error("a token lifetime must be at least one second")]
    LifetimeZero,
    /// The system clock is before 1970.
    #[error("the system clock is before the Unix epoch")]
    Clock,
    /// An issued-at time so large that `exp` would overflow.
    #[error("issued-at time {0} is out of range: no expiry can follow it")]
    TimeOutOfRange(u64),
    /// The private key could not be read.
    #[error("the application's private key: {0}")]
    PrivateKey(String),
    /// RSA signing failed.
    #[error("could not sign the token: {0}")]
    Signing(String),
    /// Not three base64url parts, or parts that are not the JSON they should be.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// A token signed with another algorithm than expected (including `none`).
    #[error("token algorithm is {found:?}, expected {expected}")]
    WrongAlgorithm {
        /// What the service expects.
        expected: &'static str,
        /// What the token's header says.
        found: String,
    },
    /// The signature does not match.
    #[error("token signature does not verify")]
    BadSignature,
    /// `iss` or `application_id` is not the expected project or application.
    #[error("token is for {found:?}, expected {expected:?}")]
    WrongIssuer {
        /// The expected API key or application id.
        expected: String,
        /// The one in the token.
        found: String,
    },
    /// `ist` is not `project`.
    #[error("token issuer type (ist) is {0:?}, expected \"project\"")]
    WrongIssuerType(String),
    /// `exp` is more than 300 s after `iat` (or before it).
    #[error("token lifetime exp - iat = {0} s is outside 1..=300 s")]
    LifetimeOutOfRange(i64),
    /// `exp` has passed.
    #[error("token expired at {exp}, it is now {now}")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `iat` is in the future beyond [`CLOCK_SKEW_LEEWAY_SECS`].
    #[error("token issued at {iat}, in the future (it is now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
    },
}

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> Result<u64, AuthError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| AuthError::Clock)
}

/// Checks a token lifetime against the service's limit and returns it in seconds.
pub fn checked_lifetime(lifetime: Duration) -> Result<u64, AuthError> {
    let secs = lifetime.as_secs();
    if lifetime > MAX_TOKEN_LIFETIME {
        return Err(AuthError::LifetimeTooLong(secs));
    }
    if secs == 0 {
        return Err(AuthError::LifetimeZero);
    }
    Ok(secs)
}

/// `iat + lifetime`, or an error for an `iat` so large that the sum overflows.
fn expiry(iat: u64, lifetime: u64) -> Result<u64, AuthError> {
    iat.checked_add(lifetime)
        .ok_or(AuthError::TimeOutOfRange(iat))
}

/// A fresh random (version 4) UUID for `jti`.
pub fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The claims of an OpenTok project token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectClaims {
    /// The project's API key.
    pub iss: String,
    /// Issuer type: `"project"`.
    pub ist: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// A unique token id (optional for the service; always set by this crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl ProjectClaims {
    /// Claims for `api_key`, issued at `iat`, living `lifetime` (at most 300 s), with a fresh `jti`.
    pub fn new(api_key: &str, iat: u64, lifetime: Duration) -> Result<Self, AuthError> {
        let lifetime = checked_lifetime(lifetime)?;
        Ok(Self {
            iss: api_key.to_owned(),
            ist: ISSUER_TYPE_PROJECT.to_owned(),
            iat,
            exp: expiry(iat, lifetime)?,
            jti: Some(new_jti()),
        })
    }
}

/// The claims of a Vonage application token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationClaims {
    /// The Vonage application id.
    pub application_id: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// A unique token id.
    pub jti: String,
}

impl ApplicationClaims {
    /// Claims for `application_id`, issued at `iat`, living `lifetime` (at most 300 s), with a fresh `jti`.
    pub fn new(application_id: &str, iat: u64, lifetime: Duration) -> Result<Self, AuthError> {
        let lifetime = checked_lifetime(lifetime)?;
        Ok(Self {
            application_id: application_id.to_owned(),
            iat,
            exp: expiry(iat, lifetime)?,
            jti: new_jti(),
        })
    }
}

/// The `alg` a token's header names, read without trusting anything else in it (so that `none` or an
/// algorithm jsonwebtoken does not know is reported by name).
fn header_alg(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "a JWT has three dot-separated parts".into(),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not unpadded base64url".into()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the header is not JWT JSON".into()))?;
    value
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AuthError::Malformed("the header has no alg".into()))
}

/// jsonwebtoken's `Validation` for `algorithm` alone: the signature and the algorithm are its to check;
/// the claims are checked by the service's rules ([`check_times`] and the callers), with the caller's clock.
fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims.clear();
    validation
}

fn decode_token<C: DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
    expected: &'static str,
) -> Result<C, AuthError> {
    let found = header_alg(token)?;
    if found != expected {
        return Err(AuthError::WrongAlgorithm { expected, found });
    }
    jsonwebtoken::decode::<C>(token, key, &validation(algorithm))
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::WrongAlgorithm {
                    expected,
                    found: "another".into(),
                }
            }
            ErrorKind::Json(e) => AuthError::Malformed(format!("claims: {e}")),
            _ => AuthError::Malformed(e.to_string()),
        })
}

fn encode_token<C: Serialize>(
    claims: &C,
    key: &EncodingKey,
    algorithm: Algorithm,
) -> Result<String, AuthError> {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key)
        .map_err(|e| AuthError::Signing(e.to_string()))
}

/// Signs `claims` as an HS256 JWT (header `alg` `HS256`, `typ` `JWT`) keyed with `secret`.
///
/// An empty secret is refused ([`AuthError::Signing`]): jsonwebtoken takes no empty HMAC key.
pub fn sign_hs256<C: Serialize>(claims: &C, secret: &[u8]) -> Result<String, AuthError> {
    encode_token(claims, &hs256_key(secret)?, Algorithm::HS256)
}

/// The secret as jsonwebtoken takes it; an empty one is an error (jsonwebtoken refuses empty HMAC keys).
fn hs256_key(secret: &[u8]) -> Result<EncodingKey, AuthError> {
    EncodingKey::from_secret(secret).map_err(|e| AuthError::Signing(format!("HS256 key: {e}")))
}

/// The application key as jsonwebtoken takes it (PKCS#1 DER), made once per credentials.
fn rs256_key(key: &PrivateKey) -> Result<EncodingKey, AuthError> {
    let der = key
        .to_pkcs1_der()
        .map_err(|e| AuthError::PrivateKey(e.to_string()))?;
    Ok(EncodingKey::from_rsa_der(der.as_bytes()))
}

/// Signs `claims` as an RS256 JWT (header `alg` `RS256`, `typ` `JWT`; RSASSA-PKCS1-v1_5 with SHA-256).
pub fn sign_rs256<C: Serialize>(claims: &C, key: &PrivateKey) -> Result<String, AuthError> {
    encode_token(claims, &rs256_key(key)?, Algorithm::RS256)
}

/// Checks an HS256 JWT's algorithm and signature (in constant time) and returns its claims. Claims are not
/// checked: see [`verify_project_token`]. With an empty secret no token verifies ([`AuthError::BadSignature`]).
pub fn verify_hs256<C: DeserializeOwned>(token: &str, secret: &[u8]) -> Result<C, AuthError> {
    let key = DecodingKey::from_secret(secret).map_err(|_| AuthError::BadSignature)?;
    decode_token(token, &key, Algorithm::HS256, "HS256")
}

/// Checks an RS256 JWT's algorithm and signature and returns its claims. Claims are not checked: see
/// [`verify_application_token`].
pub fn verify_rs256<C: DeserializeOwned>(token: &str, key: &PublicKey) -> Result<C, AuthError> {
    let key = DecodingKey::from_rsa_raw_components(&key.n_bytes(), &key.e_bytes());
    decode_token(token, &key, Algorithm::RS256, "RS256")
}

fn check_times(iat: u64, exp: u64, now: u64, max_lifetime: Option<u64>) -> Result<(), AuthError> {
    let lifetime = i64::try_from(exp)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(iat).unwrap_or(i64::MAX));
    if lifetime <= 0 || max_lifetime.is_some_and(|max| lifetime > max as i64) {
        return Err(AuthError::LifetimeOutOfRange(lifetime));
    }
    if exp <= now {
        return Err(AuthError::Expired { exp, now });
    }
    if iat > now.saturating_add(CLOCK_SKEW_LEEWAY_SECS) {
        return Err(AuthError::IssuedInFuture { iat, now });
    }
    Ok(())
}

/// Verifies an `X-OPENTOK-AUTH` token as the service does: HS256 signed with `api_secret`, `iss` equal to
/// `api_key`, `ist` equal to `"project"`, `exp` after `iat` by at most 300 s, not expired at `now` (Unix
/// seconds), and not issued more than a minute in the future.
///
/// ```
/// use std::time::Duration;
/// use opentok_rest::auth::*;
///
/// let claims = ProjectClaims::new("123456", 1_700_000_000, Duration::from_secs(180)).unwrap();
/// let token = sign_hs256(&claims, b"secret").unwrap();
/// assert_eq!(verify_project_token(&token, "123456", b"secret", 1_700_000_010).unwrap(), claims);
/// assert_eq!(verify_project_token(&token, "123456", b"other", 1_700_000_010), Err(AuthError::BadSignature));
/// assert!(matches!(verify_project_token(&token, "123456", b"secret", 1_700_000_180), Err(AuthError::Expired { .. })));
/// ```
pub fn verify_project_token(
    token: &str,
    api_key: &str,
    api_secret: &[u8],
    now: u64,
) -> Result<ProjectClaims, AuthError> {
    let claims: ProjectClaims = verify_hs256(token, api_secret)?;
    if claims.iss != api_key {
        return Err(AuthError::WrongIssuer {
            expected: api_key.to_owned(),
            found: claims.iss,
        });
    }
    if claims.ist != ISSUER_TYPE_PROJECT {
        return Err(AuthError::WrongIssuerType(claims.ist));
    }
    check_times(
        claims.iat,
        claims.exp,
        now,
        Some(MAX_TOKEN_LIFETIME.as_secs()),
    )?;
    Ok(claims)
}

/// Verifies a Vonage application token: RS256 under the application's public key, `application_id` equal to
/// `application_id`, `exp` after `iat`, not expired at `now`, not issued more than a minute in the future.
/// (Vonage accepts application tokens living longer than 5 minutes, so the lifetime is not capped here.)
pub fn verify_application_token(
    token: &str,
    application_id: &str,
    public_key: &PublicKey,
    now: u64,
) -> Result<ApplicationClaims, AuthError> {
    let claims: ApplicationClaims = verify_rs256(token, public_key)?;
    if claims.application_id != application_id {
        return Err(AuthError::WrongIssuer {
            expected: application_id.to_owned(),
            found: claims.application_id,
        });
    }
    check_times(claims.iat, claims.exp, now, None)?;
    Ok(claims)
}

/// An OpenTok project's API key and API secret.
#[derive(Clone)]
pub struct ProjectCredentials {
    api_key: String,
    /// Kept to blank the secret out of error messages that echo it (the client's); tokens are signed with
    /// `signing_key` (or, for an empty secret, refused through it).
    api_secret: SecretString,
    /// jsonwebtoken's copy of the secret, made once; `None` for an empty secret, which jsonwebtoken does not
    /// take and [`ProjectCredentials::token`] reports.
    signing_key: Option<Arc<EncodingKey>>,
}

impl ProjectCredentials {
    /// The credentials of project `api_key`.
    pub fn new(api_key: impl Into<String>, api_secret: SecretString) -> Self {
        let signing_key = hs256_key(api_secret.expose_secret().as_bytes())
            .ok()
            .map(Arc::new);
        Self {
            api_key: api_key.into(),
            api_secret,
            signing_key,
        }
    }

    /// The API key (not a secret: it is in every URL).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The secret, only to blank it out of error messages that echo it.
    #[cfg(feature = "client")]
    pub(crate) fn api_secret_for_redaction(&self) -> &str {
        self.api_secret.expose_secret()
    }

    /// A fresh `X-OPENTOK-AUTH` token issued now.
    pub fn token(&self, lifetime: Duration) -> Result<String, AuthError> {
        let claims = ProjectClaims::new(&self.api_key, unix_now()?, lifetime)?;
        match &self.signing_key {
            Some(key) => encode_token(&claims, key, Algorithm::HS256),
            None => sign_hs256(&claims, self.api_secret.expose_secret().as_bytes()),
        }
    }
}

impl fmt::Debug for ProjectCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectCredentials")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[REDACTED]")
            .finish()
    }
}

/// A Vonage application's id and RSA private key.
#[derive(Clone)]
pub struct ApplicationCredentials {
    application_id: String,
    private_key: Arc<PrivateKey>,
    /// jsonwebtoken's form of the key (PKCS#1 DER), made once; `None` if the key cannot be encoded, which
    /// [`ApplicationCredentials::token`] reports.
    signing_key: Option<Arc<EncodingKey>>,
}

impl ApplicationCredentials {
    /// The credentials of application `application_id`.
    pub fn new(application_id: impl Into<String>, private_key: PrivateKey) -> Self {
        let signing_key = rs256_key(&private_key).ok().map(Arc::new);
        Self {
            application_id: application_id.into(),
            private_key: Arc::new(private_key),
            signing_key,
        }
    }

    /// Reads the application's private key (the `private.key` Vonage hands out is unencrypted PKCS#8 PEM;
    /// PKCS#1, DER and encrypted keys are read too, through archive-core's key loader).
    pub fn from_private_key_file_contents(
        application_id: impl Into<String>,
        key: &[u8],
        passphrase: Option<&SecretString>,
    ) -> Result<Self, AuthError> {
        let private_key = archive_core::keys::load_private_key(key, passphrase)
            .map_err(|e| AuthError::PrivateKey(e.to_string()))?;
        Ok(Self::new(application_id, private_key))
    }

    /// The application id (not a secret: it is in every URL).
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The public half of the key, which the service (or the emulator) verifies tokens with.
    pub fn public_key(&self) -> PublicKey {
        self.private_key.to_public_key()
    }

    /// A fresh `Authorization: Bearer` token issued now.
    pub fn token(&self, lifetime: Duration) -> Result<String, AuthError> {
        let claims = ApplicationClaims::new(&self.application_id, unix_now()?, lifetime)?;
        match &self.signing_key {
            Some(key) => encode_token(&claims, key, Algorithm::RS256),
            None => sign_rs256(&claims, &self.private_key),
        }
    }
}

impl fmt::Debug for ApplicationCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationCredentials")
            .field("application_id", &self.application_id)
            .field("private_key", &"[REDACTED]")
            .finish()
    }
}

/// How requests are authenticated: as an OpenTok project or as a Vonage application.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// API key and secret; HS256 in `X-OPENTOK-AUTH`.
    Project(ProjectCredentials),
    /// Application id and private key; RS256 in `Authorization: Bearer`.
    Application(ApplicationCredentials),
}

impl Credentials {
    /// OpenTok project credentials.
    pub fn project(api_key: impl Into<String>, api_secret: SecretString) -> Self {
        Self::Project(ProjectCredentials::new(api_key, api_secret))
    }

    /// Vonage application credentials.
    pub fn application(application_id: impl Into<String>, private_key: PrivateKey) -> Self {
        Self::Application(ApplicationCredentials::new(application_id, private_key))
    }

    /// The id in request paths, `/v2/project/{id}/...`: the API key or the application id.
    pub fn path_id(&self) -> &str {
        match self {
            Self::Project(p) => p.api_key(),
            Self::Application(a) => a.application_id(),
        }
    }

    /// The base URL these credentials are meant for.
    pub fn default_base_url(&self) -> &'static str {
        match self {
            Self::Project(_) => OPENTOK_API_URL,
            Self::Application(_) => VONAGE_VIDEO_API_URL,
        }
    }

    /// A fresh token in the header these credentials use.
    pub fn auth_header(&self, lifetime: Duration) -> Result<AuthHeader, AuthError> {
        Ok(match self {
            Self::Project(p) => AuthHeader {
                name: OPENTOK_AUTH_HEADER,
                value: Zeroizing::new(p.token(lifetime)?),
            },
            Self::Application(a) => {
                let token = Zeroizing::new(a.token(lifetime)?);
                let mut value = Zeroizing::new(String::with_capacity(7 + token.len()));
                value.push_str("Bearer ");
                value.push_str(&token);
                AuthHeader {
                    name: AUTHORIZATION_HEADER,
                    value,
                }
            }
        })
    }
}

/// One request's authentication header. `Debug` does not show the token, and it is wiped from memory when
/// dropped (the HTTP client's own copy is marked sensitive, never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    name: &'static str,
    value: Zeroizing<String>,
}

impl AuthHeader {
    /// `X-OPENTOK-AUTH` or `Authorization`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The token, or `Bearer <token>`.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
