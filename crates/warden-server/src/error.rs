//! The own API's errors: one `IntoResponse`, 4xx with a precise message for the caller's
//! mistakes, 5xx with a request id for warden's own failures (logged in full). The compatible
//! APIs render their own error shapes (`judge0/`, `piston/`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use warden_engine::ErrorKind;

use crate::state::ExecError;

/// An error of warden's own API.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The kind, as JSON shows it (`request`, `refused`, `unavailable`, `internal`, ...).
    pub kind: &'static str,
    /// What went wrong, for the caller.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 4xx for the caller's mistake.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "request",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        let message = match &e {
            ExecError::Engine(inner) => format!("{inner:#}"),
            other => other.to_string(),
        };
        let (status, kind, retry_after) = match &e {
            ExecError::Engine(inner) => match inner.kind() {
                ErrorKind::Request => (StatusCode::UNPROCESSABLE_ENTITY, "request", None),
                ErrorKind::Refused => (StatusCode::FORBIDDEN, "refused", None),
                ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
                ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
            },
            ExecError::QueueFull { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                Some(*retry_after_secs),
            ),
            ExecError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down", Some(5)),
            ExecError::Worker => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        };
        if status.is_server_error() {
            tracing::error!(error = %message, "execution failed");
        }
        Self {
            status,
            kind,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message, "kind": self.kind }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(value) = secs.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}
