//! The own API's routes under `/v1`, the OpenAPI document and the reference page; one module
//! per resource. The compatible APIs (`piston*.rs`, `judge0*.rs`) add their own routes to the
//! router built here.

pub(crate) mod batch;
pub(crate) mod docs;
pub(crate) mod executions;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod languages;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::{Api, AppState, Caller};

/// The own API, its documents, and a body cap for every route.
pub fn router(state: AppState) -> Router {
    let max_body = state.options().max_body;
    Router::new()
        .route("/v1/executions", post(executions::create))
        .route("/v1/executions/{id}", get(executions::status))
        .route("/v1/batch", post(batch::create))
        .route("/v1/languages", get(languages::list))
        .route("/v1/health", get(health::health))
        .route("/v1/ready", get(health::ready))
        .route("/v1/stats", get(history::stats))
        .route("/v1/history", get(history::list))
        .route("/v1/openapi.json", get(docs::openapi))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/docs", get(docs::page))
        .merge(crate::piston::routes())
        .merge(crate::judge0::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// The caller of an own-API route, authenticated by its bearer token.
#[derive(Debug)]
pub(crate) struct V1Caller(pub(crate) Caller);

impl FromRequestParts<AppState> for V1Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(state.authenticate(&parts.headers, Api::Own)?))
    }
}
