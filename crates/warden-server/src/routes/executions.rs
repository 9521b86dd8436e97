//! `POST /v1/executions` (run one program, synchronously or not) and
//! `GET /v1/executions/{id}` (an asynchronous execution's state and result).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_engine::Phase;

use super::V1Caller;
use crate::error::ApiError;
use crate::execution_request::ExecutionBody;
use crate::jobs::{Deleted, JobStatus};
use crate::json_body::{json_answer, JsonObjectAsSent};
use crate::resume::Resubmission;
use crate::state::{Admitted, AppState, Caller, ExecError};

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Query parameters of `POST /v1/executions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitQuery {
    /// `false` answers 202 with an id at once; poll `GET /v1/executions/{id}`. Default `true`.
    wait: Option<bool>,
}

/// Runs a program and answers its result (docs/result-schema.md), or with `wait=false` an id
/// to poll.
#[utoipa::path(
    post, path = "/v1/executions", tag = "executions", operation_id = "create_execution",
    request_body = ExecutionBody, params(WaitQuery),
    responses(
        (status = 200, description = "The result, as `warden run --json` prints it", body = serde_json::Value,
            headers(("Server-Timing" = String, description = "Where the server's time went, step by step (docs/server.md)"))),
        (status = 202, description = "Admitted; poll its id", body = JobStatus),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "The mode policy refuses the program, or its network policy is not allowed here"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "A field is invalid: unknown language, limit above the maximum, too many files"),
        (status = 429, description = "The queue is full or the token is over a quota; see Retry-After"),
        (status = 503, description = "A toolchain or a mode's backend is missing, or the server is shutting down"),
        (status = 504, description = "Not finished within the synchronous deadline"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    query: Result<Query<WaitQuery>, QueryRejection>,
    JsonObjectAsSent(body, sent): JsonObjectAsSent<ExecutionBody>,
) -> Result<Response, ApiError> {
    let entered = Instant::now();
    let Query(query) = query?;
    let request = body.into_request(state.options())?;
    if query.wait == Some(false) {
        let status = start(&state, request, caller, &sent)?;
        return Ok((StatusCode::ACCEPTED, Json(status)).into_response());
    }
    let deadline = state.sync_deadline();
    // On the deadline (or when the client goes away) this future is dropped: a queued
    // execution never runs, a running one is cancelled (`run_admitted`'s `CancelOnDrop`).
    match tokio::time::timeout(deadline, state.execute(request, caller)).await {
        Ok(execution) => {
            let execution = execution?;
            let answer = json_answer(execution.result).await?;
            let timing = server_timing(&execution.phases, entered.elapsed());
            Ok(([(SERVER_TIMING, timing)], answer).into_response())
        }
        Err(_) => Err(ApiError::deadline(deadline)),
    }
}

/// Where a synchronous execution's time went, as a `Server-Timing` header (W3C Server
/// Timing): the server's steps (`queue`, `dispatch` to a blocking thread, `return` from it),
/// the engine's phases between them (`warden run --profile`'s), and `total`, from the
/// handler's start to the answer's. Durations in milliseconds.
fn server_timing(phases: &[Phase], total: Duration) -> HeaderValue {
    let mut value = String::new();
    for phase in phases.iter().chain(std::iter::once(&Phase {
        name: "total",
        took: total,
    })) {
        if !value.is_empty() {
            value.push_str(", ");
        }
        let _ = write!(
            value,
            "{};dur={:.3}",
            phase.name,
            phase.took.as_secs_f64() * 1000.0
        );
    }
    HeaderValue::from_str(&value).expect("phase names and numbers are header-safe")
}

/// Admits an execution and runs it in the background, tracked in the jobs; kept with its
/// body as `sent` to run again after a restart until it starts (crate::resume).
fn start(
    state: &AppState,
    mut request: warden_engine::ExecutionRequest,
    caller: Caller,
    sent: &[u8],
) -> Result<JobStatus, ApiError> {
    let admitted = state.admit(&caller)?;
    let id = warden_engine::ExecutionId::random()
        .map_err(|e| ApiError::from(warden_engine::EngineError::from(e)))?
        .to_string();
    let cancel = warden_engine::Cancellation::new();
    request.cancel = Some(cancel.clone());
    let status = state.jobs().insert(&id, cancel, caller.token.as_deref());
    let kept = Resubmission {
        token: caller.token.clone(),
        base64: false,
        accepted_ms: None,
        accepted_us: Some(crate::resume::accepted_now()),
        // It parsed as an `ExecutionBody`: it is JSON.
        body: serde_json::from_slice(sent).unwrap_or_default(),
    }
    .to_json();
    launch(state, id, request, caller, admitted, kept);
    Ok(status)
}

/// Runs a job held in the jobs (queued) once admitted, keeping it as queued first with `kept`,
/// its request to run again after a restart.
pub(crate) fn launch(
    state: &AppState,
    id: String,
    request: warden_engine::ExecutionRequest,
    caller: Caller,
    admitted: Admitted,
    kept: String,
) {
    let state = state.clone();
    let keeping = state.keeping();
    tokio::spawn(async move {
        // Until its answer is kept.
        let _keeping = keeping;
        state.jobs().keep_queued(&id, kept).await;
        let running = {
            let (state, id) = (state.clone(), id.clone());
            move || state.jobs().set_running(&id)
        };
        let ran = state.run_admitted(admitted, request, caller, running).await;
        if matches!(ran, Err(ExecError::ShuttingDown)) {
            // Ended by the shutdown deadline: left as kept, the next server runs it (it had
            // not started) or answers it as interrupted (it had).
            return;
        }
        let outcome = ran
            .map_err(|e| ApiError::from(e).body())
            .and_then(|execution| {
                serde_json::to_value(&execution.result)
                    .map_err(|e| serde_json::json!({ "error": e.to_string(), "kind": "internal" }))
            });
        state.jobs().finish(&id, outcome).await;
    });
}

/// An asynchronous execution's state, and its result once finished.
#[utoipa::path(
    get, path = "/v1/executions/{id}", tag = "executions", operation_id = "execution_status",
    params(("id" = String, Path, description = "The id `POST /v1/executions?wait=false` answered")),
    responses(
        (status = 200, description = "Its state", body = JobStatus),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such execution, another token's, or forgotten (see the history)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let status = state
        .jobs()
        .get(&id, caller.token.as_deref())
        .await
        .ok_or_else(|| ApiError::not_found(format!("no execution {id:?}")))?;
    json_answer(status).await
}

/// Cancels an asynchronous execution still queued or running (202: it finishes shortly with
/// `error.kind` `cancelled`), or forgets a finished one (200, with what it was).
#[utoipa::path(
    delete, path = "/v1/executions/{id}", tag = "executions", operation_id = "delete_execution",
    params(("id" = String, Path, description = "The id `POST /v1/executions?wait=false` answered")),
    responses(
        (status = 200, description = "It had finished: its last state, now forgotten", body = JobStatus),
        (status = 202, description = "It was queued or running: cancelled", body = JobStatus),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such execution, another token's, or forgotten"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    match state.jobs().delete(&id, caller.token.as_deref()).await {
        Some(Deleted::Cancelled(status)) => {
            Ok((StatusCode::ACCEPTED, Json(status)).into_response())
        }
        Some(Deleted::Forgotten(status)) => Ok(Json(status).into_response()),
        None => Err(ApiError::not_found(format!("no execution {id:?}"))),
    }
}
