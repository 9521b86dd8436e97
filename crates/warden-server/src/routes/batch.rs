//! `POST /v1/batch`: several executions in one request, admitted in their order, run
//! concurrently, answered together in order. Each is admitted on its own: one refused (a full
//! queue, a bad field) does not refuse the others.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::V1Caller;
use crate::error::ApiError;
use crate::execution_request::ExecutionBody;
use crate::json_body::{more_items_than, off_thread_if_large, parse_json_object, JsonBytes};
use crate::state::AppState;

/// Several executions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    /// The executions, at most the server's `max_batch`.
    #[serde(deserialize_with = "crate::json_body::objects")]
    pub(crate) executions: Vec<ExecutionBody>,
}

/// One execution's answer: its result, or why it has none.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchItem {
    /// The HTTP status it would have had alone.
    pub(crate) status: u16,
    /// The result (docs/result-schema.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<serde_json::Value>,
    /// `{error, kind}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<serde_json::Value>,
}

/// The answers, in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResponse {
    /// One per execution asked for.
    pub(crate) results: Vec<BatchItem>,
}

/// Runs several programs; answers when all have finished.
#[utoipa::path(
    post, path = "/v1/batch", tag = "executions", operation_id = "create_batch",
    request_body = BatchBody,
    responses(
        (status = 200, description = "One answer per execution, in order; an item not finished within the synchronous deadline is answered 504 in its place (cancelled)", body = BatchResponse),
        (status = 400, description = "Malformed JSON, or a query parameter (a batch has none)"),
        (status = 401, description = "Missing or invalid token"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "Wrong types or unknown fields, or more executions than the server accepts in one batch"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    RawQuery(query): RawQuery,
    JsonBytes(sent): JsonBytes,
) -> Result<Json<BatchResponse>, ApiError> {
    // `?wait=false` was taken and ignored: a client told by a 504 to use it waited again.
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "POST /v1/batch takes no query parameters ({query:?}): a batch is answered when its \
             items have finished; send long runs to POST /v1/executions?wait=false and poll"
        )));
    }
    let max = state.options().max_batch;
    // Its length first, reading no further than the item past `max_batch`: a body of millions
    // of items is refused before they are parsed.
    let body: BatchBody = off_thread_if_large(sent.len(), move || {
        if more_items_than(&sent, "executions", max) {
            return Err(ApiError::unprocessable(format!(
                "executions: more than {max} in one batch, at most {max} are accepted"
            )));
        }
        parse_json_object(&sent)
    })
    .await?;
    let deadline = state.sync_deadline();
    let count = body.executions.len();
    let mut results: Vec<Option<BatchItem>> = (0..count).map(|_| None).collect();
    // Dropping the set (the client went away, or the deadline) aborts what has not started,
    // and gives its place back.
    let mut set = JoinSet::new();
    // Admitted here, one after the other, before any runs: with fewer free places than items,
    // the items past them are the ones refused (docs/server.md). Admitted in their own tasks,
    // they were in the order the scheduler ran the tasks, the last spawned first.
    for (index, item) in body.executions.into_iter().enumerate() {
        let admitted = item.into_request(state.options()).and_then(|request| {
            // A program that cannot be laid out (an unknown language, a file named twice) is
            // refused now, as an item of bad shape is, rather than holding a place while the
            // items after it are admitted (it was refused only when it ran).
            state
                .engine()
                .check_program(&request)
                .map_err(|e| ApiError::from(crate::state::ExecError::from(e)))?;
            let admitted = state.admit(&caller).map_err(ApiError::from)?;
            Ok((request, admitted))
        });
        let (request, admitted) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                results[index] = Some(item_answer(Err(e)));
                continue;
            }
        };
        let (state, caller) = (state.clone(), caller.clone());
        set.spawn(async move {
            let answer = state
                .run_admitted(admitted, request, caller, || {})
                .await
                .map(|e| e.result)
                .map_err(ApiError::from);
            (index, answer)
        });
    }
    let collect = async {
        while let Some(joined) = set.join_next().await {
            // A task that panicked leaves its place empty, answered below as a worker failure.
            if let Ok((index, answer)) = joined {
                results[index] = Some(item_answer(answer));
            }
        }
    };
    // Past the deadline, what has finished keeps its result, and what has not is cancelled
    // (the set dropped) and answered 504 in its place: one 504 for the whole batch threw away
    // the results of the items that had run, and had been recorded.
    let past = tokio::time::timeout(deadline, collect).await.is_err();
    drop(set);
    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                item_answer(Err(if past {
                    ApiError::batch_item_deadline(deadline)
                } else {
                    crate::state::ExecError::Worker.into()
                }))
            })
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

fn item_answer(answer: Result<warden_engine::ExecutionResult, ApiError>) -> BatchItem {
    match answer {
        Ok(result) => BatchItem {
            status: 200,
            result: serde_json::to_value(&result).ok(),
            error: None,
        },
        Err(e) => BatchItem {
            status: e.status.as_u16(),
            result: None,
            error: Some(e.body()),
        },
    }
}
