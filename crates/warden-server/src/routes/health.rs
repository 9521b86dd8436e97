//! `GET /v1/health` (liveness: the process answers; never queued behind executions, never
//! authenticated) and `GET /v1/ready` (readiness: a sandbox can be built here, as
//! `warden doctor` checks, cached for a few seconds).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::admission::Load;
use crate::state::AppState;

/// How long a readiness answer is reused: a check builds a sandbox.
const READY_CACHE: Duration = Duration::from_secs(10);

/// The server is up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    pub(crate) status: &'static str,
    /// warden's version.
    pub(crate) version: &'static str,
    /// Running and queued executions.
    pub(crate) load: Load,
}

/// Whether the host can run sandboxes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Whether executions can run.
    pub(crate) ready: bool,
    /// What the check found.
    pub(crate) detail: String,
}

/// Liveness.
#[utoipa::path(
    get, path = "/v1/health", tag = "health", operation_id = "health",
    responses((status = 200, description = "The server is up", body = Health))
)]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        load: state.load(),
    })
}

/// Readiness: a sandbox can be built on this host.
#[utoipa::path(
    get, path = "/v1/ready", tag = "health", operation_id = "ready",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The host cannot run sandboxes", body = Readiness),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    match state.readiness(READY_CACHE).await {
        Ok(detail) => (
            StatusCode::OK,
            Json(Readiness {
                ready: true,
                detail,
            }),
        ),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                detail,
            }),
        ),
    }
}
