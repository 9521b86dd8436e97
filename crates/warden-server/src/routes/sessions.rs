//! `/v1/sessions`: sandboxes that live across calls (docs/sessions.md). Create one, run
//! commands and programs in it, move files in and out of its workspace, look at it, remove it.
//! A session belongs to the token that created it; other tokens get 404 for it.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use warden_core::ByteSize;
use warden_engine::{
    FileAnswer, FileOp, SessionCall, SessionError, SessionFile, SessionInfo, SessionRequest,
};

use super::{blocking, V1Caller};
use crate::error::ApiError;
use crate::execution_request::{ExecutionBody, LimitsBody, ModeBody};
use crate::json_body::JsonObject;
use crate::quota::FilePermit;
use crate::state::AppState;
use crate::ExecError;

/// The bytes of a download read at once: what a client that reads slowly holds in the server
/// (beside its socket's buffer), however large the file.
const PIECE: usize = 64 << 10;

/// The caller of a file operation and its place among the file operations at once (its
/// token's and the server's, `quota.rs`), taken before the request's body is read: many
/// uploads or slow downloads of one caller cannot hold the server's memory and threads.
pub(crate) struct FileSlot {
    token: Option<String>,
    permit: FilePermit,
}

impl axum::extract::FromRequestParts<AppState> for FileSlot {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let V1Caller(caller) = V1Caller::from_request_parts(parts, state).await?;
        let permit = state.hold_file_operation(&caller)?;
        // Once it has its place: a request of the caller's rate, as the `files` tool's call.
        state.charge(&caller)?;
        Ok(Self {
            token: caller.token,
            permit,
        })
    }
}

/// `POST /v1/sessions`: what the session is. Every field is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionBody {
    /// `sandboxed` or `isolated`; `auto` (the default) is the mode the operator's policy gives
    /// code without findings. A call whose code needs a stronger mode is refused.
    #[serde(default)]
    mode: Option<ModeBody>,
    /// The network policy of every call.
    #[serde(default)]
    network: Option<String>,
    /// `memory` and `max_procs` hold for the whole session (every process of every call); the
    /// others are its calls' limits.
    #[serde(default, deserialize_with = "crate::json_body::object")]
    limits: LimitsBody,
    /// Stop the session when no call or file operation used it for this long (`10m`).
    #[serde(default)]
    idle_timeout: Option<String>,
    /// Stop it this long after it started (`1h`).
    #[serde(default)]
    max_lifetime: Option<String>,
    /// Its workspace's size (`256MiB`), a hard quota; not with `workspace` (refused: the
    /// workspace's size is the volume's).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "256MiB")]
    disk: Option<ByteSize>,
    /// An existing volume to use as the workspace (kept when the session is removed).
    #[serde(default)]
    workspace: Option<String>,
}

/// `POST /v1/sessions/{id}/exec`: a shell command, or a program as `POST /v1/executions`
/// takes it (without `tests`, `dependencies` or `volumes`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandBody {
    /// A shell command, run by `bash -c` in `/work`.
    command: String,
    /// Standard input.
    #[serde(default)]
    stdin: Option<String>,
    /// Standard input in base64, for input that is not UTF-8 text; instead of `stdin`.
    #[serde(default)]
    stdin_base64: Option<String>,
    /// Arguments (`$1`, `$2`, ... of the command).
    #[serde(default)]
    args: Vec<String>,
    /// The call's limits, within the session's.
    #[serde(default, deserialize_with = "crate::json_body::object")]
    limits: LimitsBody,
}

/// A file's bytes as a request body, for the OpenAPI document (a `Vec<u8>` would read as an
/// array of integers).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only: the handler takes the body's bytes.
pub(crate) struct FileBytes(Vec<u8>);

/// Where in the workspace a file operation acts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PathQuery {
    /// A path relative to the workspace.
    #[serde(default)]
    path: String,
}

/// Which page of which directory a listing answers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// The directory, relative to the workspace ("" for the workspace).
    #[serde(default)]
    path: String,
    /// The page holds the entries whose names sort after this one: the last name of the page
    /// before, whose `truncated` was true ("" for the first page).
    #[serde(default)]
    after: String,
}

/// A query (`T`: [`PathQuery`] or [`ListQuery`]) that is UTF-8 text once decoded: axum's
/// `Query` decodes a byte that is not with U+FFFD, so `?path=%ff%fe` wrote a file named U+FFFD
/// U+FFFD. A workspace's names are UTF-8 here (they travel as JSON text); one that is not is
/// refused, 422.
pub(crate) struct FileQuery<T = PathQuery>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for FileQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        if !decodes_to_utf8(parts.uri.query().unwrap_or_default()) {
            return Err(ApiError::unprocessable(
                "the query (path, or a listing's after) is not UTF-8 text once percent-decoded; a \
                 file's name is UTF-8 (percent-encode its UTF-8 bytes)",
            ));
        }
        let Query(query) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| ApiError::from(e))?;
        Ok(Self(query))
    }
}

/// Whether `query`, percent-decoded (and `+` read as a space) as a form is, is UTF-8.
fn decodes_to_utf8(query: &str) -> bool {
    let raw = query.as_bytes();
    let hex = |at: usize| {
        raw.get(at)
            .and_then(|b| char::from(*b).to_digit(16))
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut decoded = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        match (raw[at], hex(at + 1), hex(at + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push(high << 4 | low);
                at += 3;
            }
            (b'+', _, _) => {
                decoded.push(b' ');
                at += 1;
            }
            (byte, _, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// Starts a session.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions", operation_id = "create_session",
    request_body = SessionBody,
    responses(
        (status = 201, description = "The session", body = serde_json::Value),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "The network policy or the mode is not allowed here"),
        (status = 404, description = "The workspace volume named does not exist"),
        (status = 409, description = "The workspace volume has a writer"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "A field is invalid or above the server's most"),
        (status = 429, description = "Too many sessions (the server's or the caller's), or the token's requests_per_minute is spent"),
        (status = 503, description = "The mode's backend or the volumes' tools are missing, or the host has no room for the workspace's image"),
        (status = 507, description = "The token's volumes, its sessions' workspaces included, would reserve more than `[volumes] quota_per_caller` with this session's workspace"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    JsonObject(body): JsonObject<SessionBody>,
) -> Result<Response, ApiError> {
    let duration = |field: &str, text: Option<String>| {
        text.map(|t| {
            warden_core::parse_duration(&t)
                .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))
        })
        .transpose()
    };
    let request = SessionRequest {
        mode: body.mode.map(ModeBody::request),
        network: body.network,
        limits: body.limits.checked(&state.options().maxima)?,
        idle_timeout: duration("idle_timeout", body.idle_timeout)?,
        max_lifetime: duration("max_lifetime", body.max_lifetime)?,
        disk: body.disk,
        workspace: body.workspace,
        owner: caller.token.clone(),
    };
    // A sandbox started and a workspace image made: a request of the caller's rate.
    state.charge(&caller)?;
    let created = blocking(&state, move |engine| engine.create_session(request)).await?;
    Ok((StatusCode::CREATED, Json(created.map_err(session_error)?)).into_response())
}

/// The caller's sessions.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions", operation_id = "list_sessions",
    responses(
        (status = 200, description = "The sessions", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let token = caller.token;
    Ok(Json(
        blocking(&state, move |engine| engine.sessions(token.as_deref())).await?,
    ))
}

/// One session: its state, why it stopped, its resources now, its workspace's use.
#[utoipa::path(
    get, path = "/v1/sessions/{id}", tag = "sessions", operation_id = "get_session",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such session"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionInfo>, ApiError> {
    let Path(id) = id?;
    let token = caller.token;
    let info = blocking(&state, move |engine| engine.session(&id, token.as_deref())).await?;
    Ok(Json(info.map_err(session_error)?))
}

/// Stops a session and removes it with its workspace.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions", operation_id = "remove_session",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such session"),
        (status = 409, description = "Its workspace stayed in use (a file operation on the stopped session) for 5 seconds; the session is stopped, try again"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let token = caller.token;
    let removed = blocking(&state, move |engine| {
        engine.remove_session(&id, token.as_deref())
    })
    .await?;
    removed.map_err(session_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a command or a program in the session, after the calls before it, and answers the
/// result as `POST /v1/executions` does.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/exec", tag = "sessions", operation_id = "session_exec",
    params(("id" = String, Path, description = "The session's id")),
    request_body(content = serde_json::Value, description = "`{\"command\": ...}` (CommandBody) or a program (ExecutionBody)"),
    responses(
        (status = 200, description = "The result, as `warden run --json` prints it", body = serde_json::Value),
        (status = 400, description = "Malformed JSON, or a query parameter (a call has none)"),
        (status = 401, description = "Missing or invalid token"),
        (status = 403, description = "The code needs a stronger mode than the session's"),
        (status = 404, description = "No such session"),
        (status = 409, description = "The session stopped (the reason is given)"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "A field is invalid"),
        (status = 429, description = "The queue is full or the token is over a quota"),
        (status = 503, description = "A toolchain is missing, or the server is shutting down"),
        (status = 504, description = "Not finished within the synchronous deadline (the call runs on to its end in the session)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn exec(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    JsonObject(body): JsonObject<serde_json::Value>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    // `?wait=false` was taken and ignored: a call is answered when it has finished.
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "POST /v1/sessions/{{id}}/exec takes no query parameters ({query:?}): a call is \
             answered when it has finished"
        )));
    }
    let call = call_of(body, &state)?;
    let deadline = state.sync_deadline();
    let ran = tokio::time::timeout(deadline, state.session_call(id, call, caller))
        .await
        .map_err(|_| ApiError::session_call_deadline(deadline))??;
    match ran {
        Ok(ran) => Ok(Json(ran.result).into_response()),
        // Its session stopped with the server at the shutdown deadline: answered as every
        // request the deadline ends is, not as a call on a stopped session.
        Err(SessionError::Stopped { .. }) if state.is_past_deadline() => {
            Err(ExecError::ShuttingDown.into())
        }
        Err(e) => Err(session_error(e)),
    }
}

/// A call from its JSON: a command when it has `command`, else a program.
pub(crate) fn call_of(body: serde_json::Value, state: &AppState) -> Result<SessionCall, ApiError> {
    let invalid = |e: serde_json::Error| ApiError::unprocessable(e.to_string());
    if body.get("command").is_some() {
        let body: CommandBody = serde_json::from_value(body).map_err(invalid)?;
        let request = warden_engine::ExecutionRequest {
            args: body.args,
            stdin: crate::execution_request::stdin_of(body.stdin, body.stdin_base64)?,
            limits: body.limits.checked(&state.options().maxima)?,
            ..Default::default()
        };
        return Ok(SessionCall::Command {
            command: body.command,
            request,
        });
    }
    let body: ExecutionBody = serde_json::from_value(body).map_err(invalid)?;
    if body.mode.is_some() || body.network.is_some() {
        return Err(ApiError::unprocessable(
            "a session call runs in the session's mode and network policy: leave out `mode` \
             and `network`",
        ));
    }
    Ok(SessionCall::Program(body.into_request(state.options())?))
}

/// A page of the entries of a directory of the workspace: at most 1,000, sorted by name.
#[utoipa::path(
    get, path = "/v1/sessions/{id}/files", tag = "sessions", operation_id = "list_session_files",
    params(("id" = String, Path, description = "The session's id"), ListQuery),
    responses(
        (status = 400, description = "A malformed query"),
        (status = 401, description = "Missing or invalid token"),
        (status = 200, description = "`{path, entries: [{name, kind, size}], truncated, omitted?}`: at most 1,000 entries; `truncated` when more follow (ask again with `after` set to the last name); `omitted`, when present, the entries left out of a group of more than 1,000 names answered alike", body = serde_json::Value),
        (status = 404, description = "No such session or directory"),
        (status = 422, description = "The path leaves the workspace, crosses a link, or is not UTF-8"),
        (status = 429, description = "The caller has 8 file operations at once (a download counts until its client has read it), or the server 64, or the token's requests_per_minute is spent"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_files(
    State(state): State<AppState>,
    slot: FileSlot,
    id: Result<Path<String>, PathRejection>,
    query: Result<FileQuery<ListQuery>, ApiError>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let FileQuery(ListQuery { path, after }) = query?;
    let op = FileOp::List {
        path: path.clone(),
        after,
    };
    match file_op(&state, id, slot, op).await? {
        FileAnswer::Entries(listing) => Ok(Json(listing.to_json(&path)).into_response()),
        _ => Err(ApiError::internal(&std::io::Error::other(
            "a listing answered otherwise",
        ))),
    }
}

/// A file of the workspace, its bytes as the body.
#[utoipa::path(
    get, path = "/v1/sessions/{id}/file", tag = "sessions", operation_id = "download_session_file",
    params(("id" = String, Path, description = "The session's id"), PathQuery),
    responses(
        (status = 400, description = "A malformed query"),
        (status = 401, description = "Missing or invalid token"),
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
        (status = 404, description = "No such session or file"),
        (status = 422, description = "The path leaves the workspace, crosses a link, is not a file, or is not UTF-8"),
        (status = 429, description = "The caller has 8 file operations at once (a download counts until its client has read it), or the server 64, or the token's requests_per_minute is spent"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn download(
    State(state): State<AppState>,
    slot: FileSlot,
    id: Result<Path<String>, PathRejection>,
    query: Result<FileQuery, ApiError>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let FileQuery(query) = query?;
    let FileSlot { token, permit } = slot;
    let opened = blocking(&state, move |engine| {
        engine.session_files(&id, token.as_deref(), FileOp::Open(query.path))
    })
    .await?;
    match opened.map_err(session_error)? {
        FileAnswer::File(file) => {
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_LENGTH, file.size().to_string()),
            ];
            Ok((headers, file_body(file, permit)).into_response())
        }
        _ => Err(ApiError::internal(&std::io::Error::other(
            "an open answered otherwise",
        ))),
    }
}

/// The bytes of `file` as a body, read a [`PIECE`] at a time on a blocking thread as the
/// client takes them; `permit` is held until the body ends or the client leaves. A file cut
/// shorter meanwhile ends the body early: the client sees fewer bytes than `Content-Length`.
fn file_body(file: SessionFile, permit: FilePermit) -> Body {
    let pieces = futures_util::stream::try_unfold((file, permit), |(mut file, permit)| async {
        let (file, piece) = tokio::task::spawn_blocking(move || {
            let piece = file.next_piece(PIECE);
            (file, piece)
        })
        .await
        .map_err(std::io::Error::other)?;
        match piece {
            Ok(Some(bytes)) => Ok(Some((Bytes::from(bytes), (file, permit)))),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::info!(error = %e, "download ended early");
                Err(std::io::Error::other(e))
            }
        }
    });
    Body::from_stream(pieces)
}

/// Writes (replaces) a file of the workspace from the body's bytes, creating its directories.
#[utoipa::path(
    put, path = "/v1/sessions/{id}/file", tag = "sessions", operation_id = "upload_session_file",
    params(("id" = String, Path, description = "The session's id"), PathQuery),
    request_body(content = FileBytes, content_type = "application/octet-stream"),
    responses(
        (status = 400, description = "A malformed query"),
        (status = 401, description = "Missing or invalid token"),
        (status = 413, description = "The file is larger than the server accepts"),
        (status = 204, description = "Written"),
        (status = 404, description = "No such session"),
        (status = 409, description = "Another file operation on the stopped session's workspace held it for 5 seconds; try again"),
        (status = 422, description = "The path leaves the workspace, crosses a link, or is not UTF-8"),
        (status = 507, description = "The workspace is full (its quota)"),
        (status = 429, description = "The caller has 8 file operations at once (a download counts until its client has read it), or the server 64, or the token's requests_per_minute is spent"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    slot: FileSlot,
    id: Result<Path<String>, PathRejection>,
    query: Result<FileQuery, ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let FileQuery(query) = query?;
    let body = Vec::from(body?);
    file_op(&state, id, slot, FileOp::Write(query.path, body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a file, link or empty directory of the workspace.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}/file", tag = "sessions", operation_id = "delete_session_file",
    params(("id" = String, Path, description = "The session's id"), PathQuery),
    responses(
        (status = 400, description = "A malformed query"),
        (status = 401, description = "Missing or invalid token"),
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session or file"),
        (status = 409, description = "Another file operation on the stopped session's workspace held it for 5 seconds; try again"),
        (status = 422, description = "The path leaves the workspace, names a directory that is not empty, or is not UTF-8"),
        (status = 429, description = "The caller has 8 file operations at once (a download counts until its client has read it), or the server 64, or the token's requests_per_minute is spent"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    slot: FileSlot,
    id: Result<Path<String>, PathRejection>,
    query: Result<FileQuery, ApiError>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let FileQuery(query) = query?;
    file_op(&state, id, slot, FileOp::Delete(query.path)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One file operation on a blocking thread, its slot held until it is done.
async fn file_op(
    state: &AppState,
    id: String,
    slot: FileSlot,
    op: FileOp,
) -> Result<FileAnswer, ApiError> {
    let FileSlot { token, permit } = slot;
    let answer = blocking(state, move |engine| {
        let answer = engine.session_files(&id, token.as_deref(), op);
        drop(permit);
        answer
    })
    .await?;
    answer.map_err(session_error)
}

/// The status and message of a session error.
pub(crate) fn session_error(e: SessionError) -> ApiError {
    use warden_engine::tools::FilesError;
    use warden_engine::volumes::VolumeErrorKind;
    match e {
        SessionError::NotFound(_) => ApiError::not_found(e.to_string()),
        SessionError::Stopped { .. }
        | SessionError::Elsewhere { .. }
        | SessionError::WorkspaceHeld { .. } => {
            ApiError::with_status(StatusCode::CONFLICT, e.to_string())
        }
        SessionError::TooMany(_) => {
            ApiError::with_status(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        SessionError::Invalid(_) => ApiError::unprocessable(e.to_string()),
        SessionError::Files(FilesError::NotFound(_)) => ApiError::not_found(e.to_string()),
        SessionError::Files(FilesError::NoSpace(_)) => {
            ApiError::with_status(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
        }
        SessionError::Files(ref files) if files.is_internal() => ApiError::internal(&e),
        SessionError::Files(_) => ApiError::unprocessable(e.to_string()),
        SessionError::Volume(ref volume) => match volume.kind() {
            VolumeErrorKind::Invalid => ApiError::unprocessable(e.to_string()),
            VolumeErrorKind::NotFound => ApiError::not_found(e.to_string()),
            VolumeErrorKind::Conflict => ApiError::with_status(StatusCode::CONFLICT, e.to_string()),
            VolumeErrorKind::Quota => super::volumes::over_quota(volume),
            VolumeErrorKind::Unavailable => ApiError::unavailable(e.to_string()),
            VolumeErrorKind::Internal => ApiError::internal(&e),
        },
        SessionError::State { ref source, .. }
            if source.kind() == std::io::ErrorKind::StorageFull =>
        {
            ApiError::with_status(
                StatusCode::INSUFFICIENT_STORAGE,
                "this server has no room left to keep a new session's state",
            )
        }
        SessionError::State { .. } => ApiError::internal(&e),
        SessionError::Engine(e) => ApiError::from(e),
    }
}
