//! `POST /api/v2/execute`: one program run to completion, answered in Piston's shape.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::Value;

use super::runtimes::resolve;
use super::{request, response, PistonCaller, PistonError};
use crate::state::AppState;
use crate::toolchains::Toolchains;

/// Runs the request and renders its result.
pub(crate) async fn execute(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
    PistonCaller(caller): PistonCaller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<Value>, PistonError> {
    let body = body?;
    let request = parse(&headers, &body, state.options())?;
    let runtime = resolve(&state, &toolchains, &request.language, &request.version).await?;
    // Bounded as `/v1`'s synchronous requests are: on the deadline the future is dropped, so
    // a queued execution never runs and a running one is killed.
    let deadline = state.sync_deadline();
    let execution = tokio::time::timeout(
        deadline,
        state.execute(request.into_execution(&runtime.id), caller),
    )
    .await
    .map_err(|_| PistonError::deadline(deadline))??;
    Ok(Json(response::render(
        &execution.result,
        &runtime.language,
        &runtime.version,
    )))
}

/// The body by its content type: JSON as Piston takes it, or the form `pistonapi` sends.
fn parse(
    headers: &HeaderMap,
    body: &[u8],
    options: &crate::ServerOptions,
) -> Result<request::ExecuteRequest, PistonError> {
    if super::json_only(headers).is_ok() {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| PistonError::bad_request(format!("invalid JSON body: {e}")))?;
        request::from_json(&value, options)
    } else if super::content_type(headers).starts_with("application/x-www-form-urlencoded") {
        request::from_form(body, options)
    } else {
        Err(PistonError::unsupported_media_type())
    }
}
