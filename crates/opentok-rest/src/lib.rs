//! The Vonage Video (OpenTok) archiving REST API: the service's JSON model, JWT auth and a typed client.
//!
//! * [`model`]: the service's JSON (archives, the storage target with its encryption certificate, the
//!   archive status callback, start options, error bodies). Sync and usable without the HTTP client.
//! * [`auth`]: a fresh JWT per request, HS256 for OpenTok projects and RS256 for Vonage applications, and
//!   the matching verification.

pub mod auth;
pub mod model;
