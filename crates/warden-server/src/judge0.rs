//! The Judge0 CE compatible API at the root (judge0/judge0 v1.13.1): `submissions` (with `wait`,
//! `base64_encoded`, `fields`, `expected_output`, `callback_url`; the listing for Judge0's
//! authorization token), `submissions/batch`, `languages`, `statuses`, `about`, `config_info`,
//! `system_info`, `workers`, `statistics`, `isolate`, `authenticate`, `authorize`; so that Judge0's
//! clients (the `judge0` SDK, plain HTTP) run their code in warden unchanged. An adapter over
//! [`AppState::execute`]'s admission and run: it parses Judge0's request, runs it, and renders
//! Judge0's answer; warden's exact outcome rides in an extra `warden` attribute. Shapes,
//! messages, ids and the known differences: docs/compat.md#judge0-ce.

mod callback;
mod fields;
mod info;
mod languages;
mod statistics;
mod statuses;
mod store;
pub(crate) mod submission;
mod submissions;
mod zip;

pub(crate) use store::Store;
pub(crate) use submissions::{call_back, resume_submission};

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::{Api, AppState, Caller, ExecError};

/// Judge0's routes, to be merged into the server's router at the root.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/submissions",
            post(submissions::create).get(submissions::list),
        )
        .route(
            "/submissions/batch",
            post(submissions::create_batch).get(submissions::show_batch),
        )
        .route(
            "/submissions/{token}",
            get(submissions::show).delete(submissions::delete),
        )
        .route("/authenticate", post(authenticate))
        .route("/authorize", post(authorize_only))
        .route("/languages", get(languages::list))
        .route("/languages/all", get(languages::all))
        .route("/languages/{id}", get(languages::show))
        .route("/statuses", get(statuses::list))
        .route("/about", get(info::about))
        .route("/version", get(|| async { info::VERSION }))
        .route("/license", get(|| async { info::LICENSE }))
        .route("/config_info", get(info::config_info))
        .route("/system_info", get(info::system_info))
        .route("/workers", get(info::workers))
        .route("/statistics", get(statistics::show))
        .route("/isolate", get(|| async { info::ISOLATE }))
}

/// `POST /authenticate`: 200 when the request's token is one of the server's (or none is
/// configured), else 401, as Judge0 checks `X-Auth-Token`.
async fn authenticate(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, Judge0Error> {
    caller(&state, &headers).map(|_| StatusCode::OK)
}

/// `POST /authorize`: 200 when the request is authenticated and authorized ([`authorize`]),
/// else 401 or 403, as Judge0 answers.
async fn authorize_only(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, Judge0Error> {
    caller(&state, &headers)?;
    authorize(&state, &headers).map(|()| StatusCode::OK)
}

/// What Judge0 reserves to its authorization token (`X-Auth-User`): here a token marked
/// `admin = true` in `[[server.tokens]]`, presented in `X-Auth-User`; else 403.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Judge0Error> {
    if state.tokens().authorized(headers) {
        return Ok(());
    }
    Err(Judge0Error::new(
        StatusCode::FORBIDDEN,
        "this needs Judge0's authorization: a token with `admin = true` in [[server.tokens]], \
         sent as X-Auth-User",
    ))
}

/// Who asked: the server's tokens, presented as `X-Auth-Token` (Judge0's header) or
/// `Authorization: Bearer`; a missing one is asked for in Judge0's header first, the one a
/// Judge0 client knows.
fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Judge0Error> {
    state.authenticate(headers, Api::Judge0).map_err(|e| {
        let message = match e {
            crate::auth::AuthError::Missing => {
                "an API token is required: send `X-Auth-Token: <token>` (or `Authorization: \
                 Bearer <token>`)"
                    .to_owned()
            }
            e => e.to_string(),
        };
        Judge0Error::new(StatusCode::UNAUTHORIZED, message)
    })
}

/// [`caller`] as an extractor of the request's head, for the routes that take a body: axum
/// runs it before the body is read, so a request without a valid token is refused on its
/// headers, as `/v1` refuses it, rather than after the server took (and held) up to
/// `max_body` of it.
pub(crate) struct Judge0Caller(pub(crate) Caller);

impl axum::extract::FromRequestParts<AppState> for Judge0Caller {
    type Rejection = Judge0Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Judge0Error> {
        caller(state, &parts.headers).map(Self)
    }
}

/// An error in Judge0's shape: `{"error": "..."}`, or for invalid attributes a map of field →
/// messages (422).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judge0Error {
    status: StatusCode,
    message: String,
    body: Option<Value>,
    retry_after: Option<u64>,
}

impl Judge0Error {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            body: None,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A 504 in Judge0's shape: a `wait=true` submission outlived `[server] sync_deadline`
    /// (Judge0 has no such deadline; its own errors are `{"error"}`).
    fn deadline(deadline: std::time::Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the submission did not finish within the synchronous deadline of {}; \
                 submit it without wait=true and poll its token for long runs",
                warden_core::units::format_duration(deadline)
            ),
        )
    }

    /// 422 with Judge0's field → messages map.
    fn invalid(fields: BTreeMap<String, Vec<String>>) -> Self {
        Self {
            body: Some(json!(fields)),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid submission")
        }
    }
}

/// A body that could not be read (over `[server] max_body`: 413, naming it) in Judge0's JSON
/// shape, not axum's plain text.
impl From<axum::extract::rejection::BytesRejection> for Judge0Error {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let message = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => crate::body_pace::body_too_large(),
            _ => rejection.body_text(),
        };
        Self::new(rejection.status(), message)
    }
}

impl From<ExecError> for Judge0Error {
    fn from(e: ExecError) -> Self {
        let busy = |message: String, secs| Self {
            retry_after: Some(secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        };
        match e {
            ExecError::QueueFull { retry_after_secs } => {
                busy("queue is full".to_owned(), retry_after_secs)
            }
            ExecError::QuotaExceeded {
                retry_after_secs, ..
            } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                ..busy(e.to_string(), retry_after_secs)
            },
            ExecError::ShuttingDown => busy(e.to_string(), 5),
            ExecError::Engine(inner) if inner.kind().is_caller_fault() => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                warden_engine::error_chain(&inner),
            ),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::error::logged_internal(
                    "judge0 submission failed",
                    &warden_engine::error_chain(&other),
                ),
            ),
        }
    }
}

impl IntoResponse for Judge0Error {
    fn into_response(self) -> Response {
        let body = self
            .body
            .unwrap_or_else(|| json!({ "error": self.message }));
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

/// A boolean query parameter as Rails reads it (`true`, `1`; anything else is false).
fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1" | "True" | "TRUE"))
}

#[cfg(test)]
mod tests;
