//! The Piston v2 compatible API under `/api/v2` (engineer-man/piston, `api/src/api/v2.js`): so
//! that clients written for Piston (`piston-client` on npm, `pistonapi` on PyPI) run their code
//! in warden unchanged. An adapter over [`AppState::execute`]: it parses Piston's request,
//! calls the engine and renders Piston's answer; warden's finer outcome rides along in an extra
//! `warden` object of each stage. Shapes, messages and the known differences:
//! docs/compat.md#piston-v2.

mod connect;
mod execute;
mod names;
mod packages;
mod request;
mod response;
mod runtimes;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use crate::state::{Api, AppState, Caller, ExecError};
use crate::toolchains::Toolchains;

/// The routes of `/api/v2` (`runtimes`, `execute`, the WebSocket `connect`, `packages`), to
/// be merged into the server's router.
pub fn routes() -> Router<AppState> {
    routes_with(Toolchains::default())
}

fn routes_with(toolchains: Toolchains) -> Router<AppState> {
    Router::new()
        .route("/api/v2/runtimes", get(runtimes::list))
        .route("/api/v2/execute", post(execute::execute))
        .route("/api/v2/connect", get(connect::connect))
        .route(
            "/api/v2/packages",
            get(packages::list)
                .post(packages::install)
                .delete(packages::uninstall),
        )
        .layer(Extension(toolchains))
}

/// Who asked: the server's tokens, presented as `Authorization: Bearer` (Piston itself has no
/// authentication; its clients can send a header).
fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, PistonError> {
    state
        .authenticate(headers, Api::Piston)
        .map_err(|e| PistonError {
            status: StatusCode::UNAUTHORIZED,
            message: e.to_string(),
            retry_after: None,
        })
}

/// [`caller`] as an extractor of the request's head, for the routes that take a body: axum
/// runs it before the body is read, so a request without a valid token is refused on its
/// headers rather than after the server took (and held) up to `max_body` of it.
pub(crate) struct PistonCaller(pub(crate) Caller);

impl axum::extract::FromRequestParts<AppState> for PistonCaller {
    type Rejection = PistonError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, PistonError> {
        caller(state, &parts.headers).map(Self)
    }
}

/// The request's `Content-Type`, lower-cased (empty when absent or not text).
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Piston's rule for a request with a body: JSON, or its 415.
fn json_only(headers: &HeaderMap) -> Result<(), PistonError> {
    if content_type(headers).starts_with("application/json") {
        Ok(())
    } else {
        Err(PistonError::unsupported_media_type())
    }
}

/// An error in Piston's shape: `{"message": "..."}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PistonError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl PistonError {
    /// A 400 (Piston's status for every validation failure).
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A 504 in Piston's shape: the execution outlived `[server] sync_deadline` (Piston has
    /// no such deadline; its own errors are `{"message"}`).
    fn deadline(deadline: std::time::Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!(
                "the execution did not finish within the synchronous deadline of {}",
                warden_core::units::format_duration(deadline)
            ),
            retry_after: None,
        }
    }

    /// Piston's 415 for a body that is not JSON.
    fn unsupported_media_type() -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "requests must be of type application/json".to_owned(),
            retry_after: None,
        }
    }
}

/// A body that could not be read (over `[server] max_body`: 413, naming it) as Piston's
/// `{"message"}`, not axum's plain text.
impl From<axum::extract::rejection::BytesRejection> for PistonError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let message = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => crate::body_pace::body_too_large(),
            _ => rejection.body_text(),
        };
        Self {
            status: rejection.status(),
            message,
            retry_after: None,
        }
    }
}

impl From<ExecError> for PistonError {
    fn from(e: ExecError) -> Self {
        match e {
            // Piston's public instance answers 429 when it is rate limited; a full queue is the
            // same situation for a client.
            ExecError::QueueFull { retry_after_secs } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "the queue is full, retry later".to_owned(),
                retry_after: Some(retry_after_secs),
            },
            ExecError::QuotaExceeded {
                retry_after_secs, ..
            } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: e.to_string(),
                retry_after: Some(retry_after_secs),
            },
            ExecError::ShuttingDown => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                retry_after: Some(5),
            },
            ExecError::Engine(inner) if inner.kind().is_caller_fault() => {
                Self::bad_request(warden_engine::error_chain(&inner))
            }
            other => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: crate::error::logged_internal(
                    "piston execution failed",
                    &warden_engine::error_chain(&other),
                ),
                retry_after: None,
            },
        }
    }
}

impl IntoResponse for PistonError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "message": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests;
