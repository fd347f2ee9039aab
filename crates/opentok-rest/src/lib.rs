//! The Vonage Video (OpenTok) archiving REST API: the service's JSON model, JWT auth and a typed client.
//!
//! * [`model`]: the service's JSON (archives, the storage target with its encryption certificate, the
//!   archive status callback, start options, error bodies). Sync and usable without the HTTP client.

pub mod model;
