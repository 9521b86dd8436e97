//! `/api/v2/packages`: Piston's package manager, over the host's toolchains. Piston installs
//! language packages into its own directory on request; warden runs the toolchains the host
//! has (`scripts/setup.sh` installs them with the distribution's packages), so the list is
//! what `/api/v2/runtimes` lists, all installed; installing one already there answers as
//! Piston does, and nothing is installed or removed through the API.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::runtimes::{self, Runtime};
use super::PistonError;
use crate::state::AppState;
use crate::toolchains::Toolchains;

/// Lists the packages: each runtime this host has, as `{language, language_version,
/// installed}`.
pub(crate) async fn list(
    state: State<AppState>,
    toolchains: Extension<Toolchains>,
) -> Json<Vec<Value>> {
    let Json(runtimes) = runtimes::list(state, toolchains).await;
    Json(
        runtimes
            .into_iter()
            .map(|r| {
                json!({
                    "language": r["language"],
                    "language_version": r["version"],
                    "installed": true,
                })
            })
            .collect(),
    )
}

/// `POST`: "installs" a package: one this host has is already installed, and is answered as
/// Piston answers an installation; any other does not exist here.
pub(crate) async fn install(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
    _caller: super::PistonCaller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, PistonError> {
    let runtime = requested(&state, &toolchains, &headers, &body).await?;
    Ok(Json(
        json!({ "language": runtime.language, "version": runtime.version }),
    ))
}

/// `DELETE`: warden does not remove the host's toolchains.
pub(crate) async fn uninstall(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
    _caller: super::PistonCaller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, PistonError> {
    let runtime = requested(&state, &toolchains, &headers, &body).await?;
    Err(PistonError {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "{}-{} is the host's toolchain, which warden does not uninstall",
            runtime.language, runtime.version
        ),
        retry_after: None,
    })
}

/// The runtime that the body's `{language, version}` names, or Piston's 404 `Requested
/// package L-V does not exist` (which, as Piston's, also answers missing fields). A body that
/// is not `application/json` is Piston's 415, as execute's is (its form exception is for
/// `pistonapi`'s execute alone).
async fn requested(
    state: &AppState,
    toolchains: &Toolchains,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Runtime, PistonError> {
    super::json_only(headers)?;
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| match &body[name] {
        Value::String(s) => s.clone(),
        Value::Null => "undefined".to_owned(),
        other => other.to_string(),
    };
    let (language, version) = (field("language"), field("version"));
    runtimes::resolve(state, toolchains, &language, &version)
        .await
        .map_err(|_| PistonError {
            status: StatusCode::NOT_FOUND,
            message: format!("Requested package {language}-{version} does not exist"),
            retry_after: None,
        })
}
