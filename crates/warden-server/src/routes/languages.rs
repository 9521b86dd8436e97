//! `GET /v1/languages`: the catalog, and whether each toolchain is installed on this host.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// A language the server runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LanguageInfo {
    /// Its id, as `language` takes it.
    pub(crate) id: String,
    /// Its display name.
    pub(crate) name: String,
    /// Other names `language` accepts.
    pub(crate) aliases: Vec<String>,
    /// File extensions detection knows it by.
    pub(crate) extensions: Vec<String>,
    /// Whether it has a compile stage.
    pub(crate) compiled: bool,
    /// The compiler options `compile_options` may add: each an exact option, or a prefix
    /// ending in `*` whose rest holds only letters, digits and `_ + - . = :`.
    pub(crate) compile_options: Vec<String>,
    /// Whether its toolchain is installed on this host.
    pub(crate) available: bool,
    /// What is missing, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unavailable_because: Option<String>,
}

/// The languages, in the catalog's order.
#[utoipa::path(
    get, path = "/v1/languages", tag = "languages", operation_id = "list_languages",
    responses((status = 200, description = "Every language", body = [LanguageInfo]))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<LanguageInfo>> {
    let engine = state.engine();
    let languages = engine
        .catalog()
        .iter()
        .map(|l| {
            let missing = engine.toolchain_installed(l).err().map(|e| e.to_string());
            LanguageInfo {
                id: l.id.to_string(),
                name: l.name.clone(),
                aliases: l.aliases.clone(),
                extensions: l.extensions.clone(),
                compiled: l.compile.is_some(),
                compile_options: l
                    .compile
                    .as_ref()
                    .map_or_else(Vec::new, |c| c.options.clone()),
                available: missing.is_none(),
                unavailable_because: missing,
            }
        })
        .collect();
    Json(languages)
}
