//! `/v1/volumes`: named persistent volumes over HTTP (docs/volumes.md): create, list, inspect,
//! remove, prune. What `warden volume ... --json` shows, from the same engine; a run mounts
//! one through the `volumes` field of `POST /v1/executions`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::ByteSize;
use warden_engine::{VolumeError, VolumeErrorKind, VolumeInfo};

use super::{blocking, V1Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/volumes`: a volume to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeBody {
    /// Its name: 1 to 63 of `a-z 0-9 _ . -`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,62}$", example = "data")]
    name: String,
    /// Its quota, at least 8MiB and at most `[volumes] max_size`.
    #[schema(schema_with = crate::execution_request::size_schema)]
    size: ByteSize,
}

/// `POST /v1/volumes/prune`: what was removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pruned {
    /// The names of the volumes removed.
    removed: Vec<String>,
}

/// A volume error as the API answers it: 400 invalid, 404 unknown, 409 exists or in use, 507
/// past the caller's quota, 503 a host without the programs volumes need or without room, 500
/// warden's own failure.
fn api_error(e: &VolumeError) -> ApiError {
    match e.kind() {
        VolumeErrorKind::Invalid => ApiError::bad_request(e.to_string()),
        VolumeErrorKind::NotFound => ApiError::not_found(e.to_string()),
        VolumeErrorKind::Conflict => ApiError::with_status(StatusCode::CONFLICT, e.to_string()),
        VolumeErrorKind::Quota => over_quota(e),
        VolumeErrorKind::Unavailable => ApiError::unavailable(e.to_string()),
        VolumeErrorKind::Internal => ApiError::internal(e),
    }
}

/// 507 Insufficient Storage, kind `quota_exceeded`: the caller's volumes (its sessions'
/// workspaces included) would reserve more than `[volumes] quota_per_caller`. Not 429: no wait
/// makes room, removing a volume or a session does.
pub(crate) fn over_quota(e: &VolumeError) -> ApiError {
    ApiError {
        kind: "quota_exceeded",
        ..ApiError::with_status(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
    }
}

/// Creates an empty volume with a quota.
#[utoipa::path(
    post, path = "/v1/volumes", tag = "volumes", operation_id = "create_volume",
    request_body = VolumeBody,
    responses(
        (status = 201, description = "Created: name, size_bytes, used_bytes, created_at, last_used_at, in_use", body = serde_json::Value),
        (status = 400, description = "A bad name or size, or malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 409, description = "A volume of that name exists"),
        (status = 429, description = "The token's requests_per_minute is spent (`Retry-After` says when)"),
        (status = 507, description = "The token's volumes, its sessions' workspaces included, would reserve more than `[volumes] quota_per_caller`"),
        (status = 503, description = "The host lacks the programs volumes need, or room for the volume's image"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "A body of the wrong shape"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    body: Result<Json<VolumeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<VolumeInfo>), ApiError> {
    let Json(body) = body?;
    // An image made and formatted: a request of the caller's rate.
    state.charge(&caller)?;
    let created = blocking(&state, move |engine| {
        engine
            .volumes()
            .of(caller.token.as_deref())
            .create(&body.name, body.size)
    })
    .await?;
    created
        .map(|info| (StatusCode::CREATED, Json(info)))
        .map_err(|e| api_error(&e))
}

/// The volumes, by name.
#[utoipa::path(
    get, path = "/v1/volumes", tag = "volumes", operation_id = "list_volumes",
    responses(
        (status = 200, description = "The volumes, as `warden volume ls --json`", body = serde_json::Value),
        (status = 401, description = "Missing or invalid token"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<Vec<VolumeInfo>>, ApiError> {
    let listed = blocking(&state, move |engine| {
        engine.volumes().of(caller.token.as_deref()).list()
    })
    .await?;
    listed.map(Json).map_err(|e| api_error(&e))
}

/// One volume: its quota, bytes used, creation, last use, and who uses it now.
#[utoipa::path(
    get, path = "/v1/volumes/{name}", tag = "volumes", operation_id = "get_volume",
    params(("name" = String, Path, description = "The volume's name")),
    responses(
        (status = 200, description = "The volume, as `warden volume inspect --json`", body = serde_json::Value),
        (status = 400, description = "An invalid name"),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such volume (or another token's)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<VolumeInfo>, ApiError> {
    let Path(name) = name?;
    let found = blocking(&state, move |engine| {
        engine.volumes().of(caller.token.as_deref()).inspect(&name)
    })
    .await?;
    found.map(Json).map_err(|e| api_error(&e))
}

/// Removes a volume and its files; refused while a run or session uses it, or a session
/// (running or stopped) has it as its workspace.
#[utoipa::path(
    delete, path = "/v1/volumes/{name}", tag = "volumes", operation_id = "remove_volume",
    params(("name" = String, Path, description = "The volume's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An invalid name"),
        (status = 401, description = "Missing or invalid token"),
        (status = 404, description = "No such volume (or another token's)"),
        (status = 409, description = "The volume is in use, a session's own workspace, or the workspace of a session (running or stopped)"),
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
        engine.volumes().of(caller.token.as_deref()).remove(&name)
    })
    .await?;
    removed
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|e| api_error(&e))
}

/// Removes the volumes no run or session uses (only those unused for `[volumes]
/// prune_after`, when set).
#[utoipa::path(
    post, path = "/v1/volumes/prune", tag = "volumes", operation_id = "prune_volumes",
    responses(
        (status = 200, description = "The names of the volumes removed", body = Pruned),
        (status = 401, description = "Missing or invalid token"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn prune(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<Json<Pruned>, ApiError> {
    let pruned = blocking(&state, move |engine| {
        engine.volumes().of(caller.token.as_deref()).prune()
    })
    .await?;
    pruned
        .map(|removed| Json(Pruned { removed }))
        .map_err(|e| api_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI: a host without room for a volume's image answered 503 with kind `request`, a status
    /// the OpenAPI document did not list (schemathesis found it on a nearly full disk). It is
    /// the host's lack, kind `unavailable`, and documented.
    #[test]
    fn a_host_without_room_is_unavailable_and_documented() {
        let e = VolumeError::NoSpace {
            size: warden_core::ByteSize::mib(8192),
            dir: "/var/lib/warden/volumes".into(),
        };
        let answer = api_error(&e);
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.kind, "unavailable");
        let document = serde_json::to_value(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
            .expect("JSON");
        let responses = &document["paths"]["/v1/volumes"]["post"]["responses"];
        assert!(responses.get("503").is_some(), "{responses:#}");
    }
}
