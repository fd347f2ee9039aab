//! The service's error answers: status codes and JSON bodies, worded as the service words them where its
//! wording is on record.
//!
//! On record (recorded responses in the official SDKs' test suites and in their issue trackers):
//!
//! * 403 `{"code":-1,"message":"Issuer not found","description":"Issuer not found"}` (Ruby SDK fixture);
//! * 403 `{"code":-1,"message":"Invalid signature","description":"Invalid signature"}` and
//!   `{"code":-1,"message":"Invalid issuer format","description":"Invalid issuer format"}` (Node SDK issues);
//! * 404 `{"code":-1,"message":"Not found. You passed in an invalid archive ID."}` (Node SDK fixture, stop);
//! * 409 `{"message":"Conflict. You are trying to stop an archive that is not recording."}` (Node SDK fixture).
//!
//! Every other message is the emulator's own, in the same shape (`code` -1, a short `message`; 403s repeat it
//! as `description`). No message ever contains a token, a secret or a storage key.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentok_rest::model::ServiceErrorBody;

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: ServiceErrorBody,
}

/// Recorded: the archive id is not one of the project's archives.
pub(crate) const ARCHIVE_NOT_FOUND: &str = "Not found. You passed in an invalid archive ID.";
/// Recorded: stopping an archive that is not recording.
pub(crate) const STOP_CONFLICT: &str =
    "Conflict. You are trying to stop an archive that is not recording.";

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ServiceErrorBody {
                code: Some(-1),
                message: Some(message.into()),
                description: None,
            },
        }
    }

    /// 403 for an `X-OPENTOK-AUTH` token the service refuses, message repeated as `description`.
    pub(crate) fn forbidden(message: &str) -> Self {
        let mut error = Self::new(StatusCode::FORBIDDEN, message);
        error.body.description = Some(message.to_owned());
        error
    }

    /// 401 for a Vonage application token (`Authorization: Bearer`) that is refused.
    pub(crate) fn unauthorized(message: &str) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, message);
        error.body.description = Some(message.to_owned());
        error
    }

    /// 400: invalid JSON, a missing or invalid field.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 for an archive id the project does not have.
    pub(crate) fn archive_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ARCHIVE_NOT_FOUND)
    }

    /// 404 for a path that is not part of the API.
    pub(crate) fn no_such_resource() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found")
    }

    /// 404 with a message (a stream the archive does not have).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the archive's stream mode does not allow changing its streams.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, message)
    }

    /// 409 with a message.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: something the emulator itself could not do.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_bodies_serialize_as_recorded() {
        let issuer = ApiError::forbidden("Issuer not found");
        assert_eq!(issuer.status, StatusCode::FORBIDDEN);
        assert_eq!(
            serde_json::to_string(&issuer.body).ok().as_deref(),
            Some(r#"{"code":-1,"message":"Issuer not found","description":"Issuer not found"}"#)
        );
        assert_eq!(
            serde_json::to_string(&ApiError::archive_not_found().body)
                .ok()
                .as_deref(),
            Some(r#"{"code":-1,"message":"Not found. You passed in an invalid archive ID."}"#)
        );
    }
}
