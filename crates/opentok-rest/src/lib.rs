//! The Vonage Video (OpenTok) archiving REST API: the service's JSON model, JWT auth and a typed client.
//!
//! Filled in by the opentok-rest issue.
