//! The own API's errors: one `IntoResponse`, 4xx with a precise message for the caller's
//! mistakes, 5xx with a request id for warden's own failures (logged in full). The compatible
//! APIs render their own error shapes (`judge0/`, `piston/`).

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use warden_engine::{EngineError, ErrorKind};

use crate::auth::AuthError;
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

    /// A 422: the request is well formed but asks for what cannot be (a field out of range,
    /// too many files).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            ..Self::bad_request(message)
        }
    }

    /// A 404 for an unknown id.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            ..Self::bad_request(message)
        }
    }

    /// A 503 for what this host lacks (a program, room on its disk): no fault of the caller's,
    /// kind `unavailable`, as an engine error of that kind answers.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            ..Self::bad_request(message)
        }
    }

    /// A tool call (`POST /v1/tools/{name}/call`) past `sync_deadline`: cancelled.
    pub(crate) fn tool_deadline(deadline: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            kind: "deadline",
            message: format!(
                "the tool call did not finish within the synchronous deadline of {}; it was \
                 cancelled",
                warden_core::units::format_duration(deadline)
            ),
            retry_after: None,
        }
    }

    /// A 504: a synchronous request outlived its deadline.
    pub(crate) fn deadline(deadline: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            kind: "deadline",
            message: format!(
                "the execution did not finish within the synchronous deadline of {}; \
                 use ?wait=false and poll for long runs",
                warden_core::units::format_duration(deadline)
            ),
            retry_after: None,
        }
    }

    /// An item of `POST /v1/batch` not finished when the batch's deadline passed: cancelled,
    /// while the items that finished keep their results. A batch has no `?wait=false`.
    pub(crate) fn batch_item_deadline(deadline: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            kind: "deadline",
            message: format!(
                "the execution did not finish within the batch's synchronous deadline of {}; \
                 it was cancelled (send long runs to POST /v1/executions?wait=false and poll)",
                warden_core::units::format_duration(deadline)
            ),
            retry_after: None,
        }
    }

    /// A session call (`POST /v1/sessions/{id}/exec`) past `sync_deadline`: it runs on to its
    /// end in the session, as a call whose client left does (docs/sessions.md).
    pub(crate) fn session_call_deadline(deadline: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            kind: "deadline",
            message: format!(
                "the call did not finish within the synchronous deadline of {}; it runs on to \
                 its end in the session (its wall-time limit bounds it), and its files stay there",
                warden_core::units::format_duration(deadline)
            ),
            retry_after: None,
        }
    }

    /// A caller's error with its own status (a conflict, an unavailable tool).
    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            ..Self::bad_request(message)
        }
    }

    /// A 500 for warden's own failure: the details go to the log under a request id, the
    /// caller gets the id.
    pub(crate) fn internal(e: &dyn std::error::Error) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: logged_internal("request failed", &e.to_string()),
            retry_after: None,
        }
    }

    /// The body of this error, `{error, kind}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message, "kind": self.kind })
    }
}

/// The id a 500 gives its caller to quote, under which the log holds the details: random, so
/// that the ids of several servers' logs do not collide. It names a log line and grants
/// nothing (unlike a job's id or a Judge0 token, which are keys), so when the kernel gives no
/// random bytes the time stands for it.
/// What a caller is told of warden's own failure, through any API: a request id to quote. The
/// `details` (a path of the server's, a policy file's, a helper's error) go to the server's log
/// under that id with `what`.
pub(crate) fn logged_internal(what: &str, details: &str) -> String {
    let id = request_id();
    tracing::error!(request = %id, error = %details, "{what}");
    format!("internal error (request {id}); the server's log has the details")
}

fn request_id() -> String {
    match warden_engine::ExecutionId::random() {
        Ok(id) => id.to_string(),
        Err(_) => {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!("t{}", since.as_nanos())
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ExecError::Engine(e).into()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: e.to_string(),
            retry_after: None,
        }
    }
}

/// Malformed JSON is a 400, JSON of the wrong shape a 422, a body past the cap a 413, a body
/// that is not JSON 415: axum's rejection knows which, and says where.
impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let message = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => crate::body_pace::body_too_large(),
            _ => e.body_text(),
        };
        Self {
            status: e.status(),
            kind: "request",
            message,
            retry_after: None,
        }
    }
}

impl From<BytesRejection> for ApiError {
    /// A body over `max_body` (413, naming it) or one that could not be read.
    fn from(e: BytesRejection) -> Self {
        let message = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => crate::body_pace::body_too_large(),
            _ => e.body_text(),
        };
        Self {
            status: e.status(),
            kind: "request",
            message,
            retry_after: None,
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self {
            status: e.status(),
            kind: "request",
            message: e.body_text(),
            retry_after: None,
        }
    }
}

impl From<axum::extract::ws::rejection::WebSocketUpgradeRejection> for ApiError {
    /// Not a WebSocket handshake (400), not GET (405), or not upgradable (426).
    fn from(e: axum::extract::ws::rejection::WebSocketUpgradeRejection) -> Self {
        Self {
            status: e.status(),
            kind: "request",
            message: e.body_text(),
            retry_after: None,
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        Self {
            status: e.status(),
            kind: "request",
            message: e.body_text(),
            retry_after: None,
        }
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        let message = match &e {
            // The engine says what is wrong; how to fix it is this API's field.
            ExecError::Engine(inner) if inner.needs_language() => format!(
                "{}; set \"language\" in the request",
                warden_engine::error_chain(inner)
            ),
            ExecError::Engine(inner) => warden_engine::error_chain(inner),
            other => other.to_string(),
        };
        let (status, kind, retry_after) = match &e {
            ExecError::Engine(inner) => match inner.kind() {
                ErrorKind::Request => (StatusCode::UNPROCESSABLE_ENTITY, "request", None),
                ErrorKind::Refused => (StatusCode::FORBIDDEN, "refused", None),
                ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
                ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
                // Nobody reads it: the client that asked has gone (nginx's 499).
                ErrorKind::Cancelled => (
                    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                    "cancelled",
                    None,
                ),
            },
            ExecError::QueueFull { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                Some(*retry_after_secs),
            ),
            ExecError::QuotaExceeded {
                retry_after_secs, ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                Some(*retry_after_secs),
            ),
            ExecError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down", Some(5)),
            ExecError::Worker => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        };
        // A 5xx's details are for the operator's log; the caller gets an id to quote.
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            logged_internal("execution failed", &message)
        } else {
            message
        };
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
        let body = Json(self.body());
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(value) = secs.to_string().parse() {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (hunt lang 6): `POST /v1/executions` with ambiguous code answered `...; pass
    /// --lang`, an option of the CLI; an API client names the language in `language`.
    #[test]
    fn an_undetected_language_points_to_the_request_field() {
        let catalog = warden_core::Catalog::builtin().expect("catalog");
        for code in ["print(1)", "x = 1", ""] {
            let detect = warden_core::detect::resolve(&catalog, None, None, code)
                .expect_err("cannot be told");
            let answer = ApiError::from(EngineError::Language(detect));
            assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                answer
                    .message
                    .ends_with("; set \"language\" in the request"),
                "{}",
                answer.message
            );
            assert!(!answer.message.contains("--lang"), "{}", answer.message);
        }
        let unknown =
            warden_core::detect::resolve(&catalog, Some("cobol"), None, "").expect_err("unknown");
        let answer = ApiError::from(EngineError::Language(unknown));
        assert!(
            !answer.message.contains("set \"language\""),
            "{}",
            answer.message
        );
    }
}
