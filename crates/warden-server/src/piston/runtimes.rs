//! `GET /api/v2/runtimes`: the languages this host can run, under Piston's names, each with
//! its toolchain's version as a semver; and the lookup of the runtime a request names.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::names::{self, piston_name};
use super::PistonError;
use crate::state::AppState;
use crate::toolchains::{semver, Toolchains};

/// A runtime a request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Runtime {
    /// warden's language id.
    pub(crate) id: String,
    /// Piston's `language` field.
    pub(crate) language: String,
    /// The toolchain's version, as a semver.
    pub(crate) version: String,
}

/// Lists the runtimes: only languages whose toolchain answered its version probe, as Piston
/// lists only installed packages.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
) -> Json<Vec<Value>> {
    let versions = toolchains.versions(&state).await;
    let runtimes = state
        .engine()
        .catalog()
        .iter()
        .filter_map(|language| {
            let line = versions.get(language.id.as_str())?.as_deref()?;
            let mut entry = match piston_name(language) {
                Some(n) => json!({ "language": n.language, "aliases": n.aliases }),
                None => json!({ "language": language.id.as_str(), "aliases": language.aliases }),
            };
            entry["version"] = json!(semver(line));
            if let Some(runtime) = piston_name(language).and_then(|n| n.runtime) {
                entry["runtime"] = json!(runtime);
            }
            Some(entry)
        })
        .collect();
    Json(runtimes)
}

/// The runtime `language` and `version` name, or Piston's `<lang>-<ver> runtime is unknown`.
pub(crate) async fn resolve(
    state: &AppState,
    toolchains: &Toolchains,
    language: &str,
    version: &str,
) -> Result<Runtime, PistonError> {
    let unknown = || PistonError::bad_request(format!("{language}-{version} runtime is unknown"));
    let found = names::resolve(state.engine().catalog(), language).ok_or_else(unknown)?;
    let versions = toolchains.versions(state).await;
    let line = versions
        .get(found.id.as_str())
        .and_then(Option::as_deref)
        .ok_or_else(unknown)?;
    let semver = semver(line);
    if !names::matches(version, &semver) {
        return Err(unknown());
    }
    Ok(Runtime {
        id: found.id.as_str().to_owned(),
        language: piston_name(found)
            .map(|n| n.language.to_owned())
            .unwrap_or_else(|| found.id.as_str().to_owned()),
        version: semver,
    })
}
