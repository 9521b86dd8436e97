//! `/v1/tools`: the tool registry over HTTP (docs/tools.md): list, show, register, remove,
//! call, statistics. What `warden tool ... --json` shows, from the same engine.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use warden_engine::tools::ToolView;
use warden_engine::{ProgramFile, Registrant, ToolCallError, ToolReply, ToolStats};

use super::{blocking, V1Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/tools`: a tool file to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    /// The tool file, TOML (docs/tools.md#the-tool-file).
    definition: String,
    /// The program files it names, by file name.
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
    /// Replace a registered tool of the same name.
    #[serde(default)]
    replace: bool,
}

/// Filter of `GET /v1/tools/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsQuery {
    /// Only calls made within this age (`1h`, `7d`).
    since: Option<String>,
}

/// The tools, by name.
#[utoipa::path(
    get, path = "/v1/tools", tag = "tools", operation_id = "list_tools",
    responses(
        (status = 200, description = "The tools: name, category, level, status, input schema", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<Vec<ToolView>>, ApiError> {
    // Another token's registrations are its own (docs/tools.md#registering).
    let tools = blocking(&state, move |engine| {
        let tools = engine.tools_for(caller.token.as_deref());
        tools.iter().map(|t| t.client_view()).collect()
    })
    .await?;
    Ok(Json(tools))
}

/// One tool.
#[utoipa::path(
    get, path = "/v1/tools/{name}", tag = "tools", operation_id = "get_tool",
    params(("name" = String, Path, description = "The tool's name")),
    responses(
        (status = 200, description = "The tool", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such tool"),
        (status = 409, description = "The caller's registered tool is kept but does not load (the message says why); DELETE removes it"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<ToolView>, ApiError> {
    let Path(name) = name?;
    let found = blocking(&state, {
        let name = name.clone();
        move |engine| {
            let token = caller.token.as_deref();
            match engine.tool(&name).filter(|t| t.visible_to(token)) {
                Some(tool) => Ok(tool.client_view()),
                // The caller's registration that is kept but does not load: said, with why
                // (never the host's path of its file), as it holds one of the token's places.
                None => Err(engine
                    .tool_load_problems()
                    .into_iter()
                    .find(|p| p.tool.as_deref() == Some(name.as_str()) && p.registered_by(token))
                    .map(|p| p.problem)),
            }
        }
    })
    .await?;
    match found {
        Ok(view) => Ok(Json(view)),
        Err(Some(problem)) => Err(ApiError::with_status(
            StatusCode::CONFLICT,
            format!(
                "tool {name:?} is registered but does not load ({problem}): remove it \
                 (DELETE /v1/tools/{name}) or register it again with \"replace\": true"
            ),
        )),
        Err(None) => Err(ApiError::not_found(format!("no tool named {name:?}"))),
    }
}

/// Registers a tool file: assessed, refused when it understates what it needs or its
/// category is not allowed, pending when its category needs approval.
#[utoipa::path(
    post, path = "/v1/tools", tag = "tools", operation_id = "register_tool",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered (its status says whether it awaits approval)", body = serde_json::Value),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "Replacing a tool another token or the operator registered"),
        (status = 409, description = "A tool of that name exists (a built-in's or the operator's name cannot be taken even with `replace`)"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "The file is invalid, larger than the registry loads (the tool file 4 MiB, its program 16 MiB), or its assessment refuses it"),
        (status = 429, description = "The token's rate is spent or it has `max_concurrent` registrations or executions admitted, the queue is full (the registration's analysis waits for a worker like an execution), or it has registered as many tools as one may (64; the message names those of them that do not load)"),
        (status = 503, description = "The server is shutting down"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ToolView>), ApiError> {
    let Json(body) = body?;
    let files: Vec<ProgramFile> = body
        .files
        .into_iter()
        .map(|(name, code)| ProgramFile {
            name,
            code: code.into_bytes(),
        })
        .collect();
    // The registration analyses the tool's program: admitted like an execution (the caller's
    // quotas, its rate and `max_concurrent`, then a place in the queue).
    let worker_caller = caller.clone();
    let registered = state
        .with_worker(&worker_caller, move |engine| {
            let by = Registrant::Client(caller.token.as_deref());
            engine.register_tool(&body.definition, &files, body.replace, by)
        })
        .await?;
    match registered {
        Ok(tool) => Ok((StatusCode::CREATED, Json(tool.client_view()))),
        Err(warden_engine::RegistryError::Exists(name)) => Err(ApiError::with_status(
            StatusCode::CONFLICT,
            format!("a tool named {name:?} already exists (set \"replace\": true)"),
        )),
        // A built-in's or the operator's name: no `replace` would help.
        Err(e @ warden_engine::RegistryError::Reserved(..)) => {
            Err(ApiError::with_status(StatusCode::CONFLICT, e.to_string()))
        }
        Err(e @ warden_engine::RegistryError::NotYours(_)) => {
            Err(ApiError::with_status(StatusCode::FORBIDDEN, e.to_string()))
        }
        Err(e @ warden_engine::RegistryError::TooMany { .. }) => Err(ApiError::with_status(
            StatusCode::TOO_MANY_REQUESTS,
            e.to_string(),
        )),
        Err(e) if e.is_caller_fault() => Err(ApiError::unprocessable(e.to_string())),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// Removes a registered tool.
#[utoipa::path(
    delete, path = "/v1/tools/{name}", tag = "tools", operation_id = "remove_tool",
    params(("name" = String, Path, description = "The tool's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "A tool another token or the operator registered"),
        (status = 404, description = "No such tool"),
        (status = 422, description = "Not a registered tool (built-in or the operator's)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = name?;
    let removed = blocking(&state, move |engine| {
        engine.remove_tool(&name, Registrant::Client(caller.token.as_deref()))
    });
    match removed.await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(warden_engine::RegistryError::Unknown(name)) => {
            Err(ApiError::not_found(format!("no tool named {name:?}")))
        }
        Err(e @ warden_engine::RegistryError::NotYours(_)) => {
            Err(ApiError::with_status(StatusCode::FORBIDDEN, e.to_string()))
        }
        Err(e) if e.is_caller_fault() => Err(ApiError::unprocessable(e.to_string())),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// Calls a tool with a JSON input (the body). The tool's own failure is a 200 with
/// `is_error: true`.
#[utoipa::path(
    post, path = "/v1/tools/{name}/call", tag = "tools", operation_id = "call_tool",
    params(("name" = String, Path, description = "The tool's name")),
    request_body(content = serde_json::Value, description = "The input, matching the tool's input schema"),
    responses(
        (status = 200, description = "The reply: text, structured output, execution", body = serde_json::Value),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such tool"),
        (status = 409, description = "The tool awaits approval"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "The input does not match the schema"),
        (status = 429, description = "The caller's quota is used up"),
        (status = 503, description = "The queue is full, or the tool is unavailable here"),
        (status = 504, description = "The call did not finish within `sync_deadline`: cancelled"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn call(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<ToolReply>, ApiError> {
    let Path(name) = name?;
    let Json(input) = body?;
    let deadline = state.sync_deadline();
    // On the deadline (or when the client goes away) this future is dropped, as an
    // execution's is: a queued call never runs, a running one is cancelled (`call_tool`'s
    // `CancelOnDrop`) and recorded as such.
    let called = tokio::time::timeout(deadline, state.call_tool(name, input, caller))
        .await
        .map_err(|_| ApiError::tool_deadline(deadline))?;
    match called? {
        Ok(reply) => Ok(Json(reply)),
        Err(e) => Err(call_error(e)),
    }
}

/// The HTTP answer to a call that did not reach its tool.
fn call_error(e: ToolCallError) -> ApiError {
    match e {
        ToolCallError::Unknown(_) => ApiError::not_found(e.to_string()),
        ToolCallError::Input { .. } | ToolCallError::NotCallable { .. } => {
            ApiError::unprocessable(e.to_string())
        }
        ToolCallError::Pending(_) => ApiError::with_status(StatusCode::CONFLICT, e.to_string()),
        ToolCallError::Unavailable { .. } => {
            ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        ToolCallError::Engine(e) => ApiError::from(e),
        ToolCallError::Files(e) => ApiError::internal(&e),
    }
}

/// Calls, successes, failures, refusals, violations and latency per tool and category.
#[utoipa::path(
    get, path = "/v1/tools/stats", tag = "tools", operation_id = "tool_stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "As `warden tool stats --json`, over the calls of the caller's token (an admin token's: every token's)", body = serde_json::Value),
        (status = 400, description = "A bad query parameter"),
        (status = 401, description = "Missing or invalid token"),
        (status = 429, description = "The token's requests_per_minute is spent (`Retry-After` says when)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<ToolStats>, ApiError> {
    let Query(query) = query?;
    let since = super::history::since(query.since.as_deref())?;
    // Read over the whole database, as `/v1/stats`: a request of the caller's rate.
    state.charge(&caller)?;
    // A token's own calls (their last errors quote its input), an admin token's every token's.
    let caller = caller.token.filter(|name| !state.tokens().is_admin(name));
    let stats = blocking(&state, move |engine| {
        engine.tool_stats(since, caller.as_deref())
    })
    .await??;
    Ok(Json(stats))
}
