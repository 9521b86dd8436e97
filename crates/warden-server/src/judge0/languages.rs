//! Judge0's language ids for warden's languages, and `GET /languages`, `/languages/all`,
//! `/languages/{id}`. Clients hard-code ids (the `judge0` SDK picks its table by the version
//! `/about` reports: 1.13.1), so every id Judge0 CE 1.13.1 and the hosted CE 1.14 give one of
//! these languages is accepted; each id's name says which warden language runs it.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use warden_core::Language;

use super::Judge0Error;
use crate::state::AppState;

/// One Judge0 id and the warden language it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LanguageIdEntry {
    /// Judge0's id.
    pub(crate) id: u32,
    /// warden's language id.
    pub(crate) warden: &'static str,
}

const fn entry(id: u32, warden: &'static str) -> LanguageIdEntry {
    LanguageIdEntry { id, warden }
}

/// Judge0 CE 1.13.1's ids (first for each language: what the SDK sends), then the hosted
/// CE 1.14's. Python 2 (70), TypeScript and the others have no warden language and stay
/// unknown.
pub(crate) const IDS: &[LanguageIdEntry] = &[
    entry(46, "bash"),
    // The multi-file program: its `compile` and `run` scripts, with bash (submission.rs).
    entry(89, "bash"),
    entry(50, "c"),
    entry(48, "c"),
    entry(49, "c"),
    entry(75, "c"),
    entry(103, "c"),
    entry(104, "c"),
    entry(110, "c"),
    entry(54, "cpp"),
    entry(52, "cpp"),
    entry(53, "cpp"),
    entry(76, "cpp"),
    entry(105, "cpp"),
    entry(60, "go"),
    entry(95, "go"),
    entry(106, "go"),
    entry(107, "go"),
    entry(62, "java"),
    entry(91, "java"),
    entry(63, "javascript"),
    entry(93, "javascript"),
    entry(97, "javascript"),
    entry(102, "javascript"),
    entry(68, "php"),
    entry(98, "php"),
    entry(71, "python"),
    entry(92, "python"),
    entry(100, "python"),
    entry(109, "python"),
    entry(113, "python"),
    entry(80, "r"),
    entry(99, "r"),
    entry(72, "ruby"),
    entry(73, "rust"),
    entry(108, "rust"),
];

/// The warden language Judge0 id `id` runs, if any.
pub(crate) fn language_of(state: &AppState, id: i64) -> Option<&Language> {
    let entry = IDS.iter().find(|e| i64::from(e.id) == id)?;
    state.engine().catalog().get(entry.warden)
}

/// The multi-file program's name, as Judge0 lists it.
const MULTI_FILE_NAME: &str = "Multi-file program";

/// The name of an id: its warden language's, but for the multi-file program.
pub(crate) fn name(id: impl Into<i64>, language: &Language) -> &str {
    if id.into() == super::submission::MULTI_FILE {
        MULTI_FILE_NAME
    } else {
        &language.name
    }
}

/// The name shown for an id: warden's language name (the version is the host's toolchain's,
/// not the one Judge0 had under that id).
fn listed(state: &AppState) -> Vec<(u32, &Language)> {
    let mut listed: Vec<(u32, &Language)> = IDS
        .iter()
        .filter_map(|e| Some((e.id, state.engine().catalog().get(e.warden)?)))
        .collect();
    listed.sort_by_key(|(id, _)| *id);
    listed
}

/// `GET /languages`: `[{id, name}]`.
pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<Value>> {
    Json(
        listed(&state)
            .into_iter()
            .map(|(id, l)| json!({ "id": id, "name": name(id, l) }))
            .collect(),
    )
}

/// `GET /languages/all`: `[{id, name, is_archived}]`, by name.
pub(crate) async fn all(State(state): State<AppState>) -> Json<Vec<Value>> {
    let mut listed = listed(&state);
    listed.sort_by(|a, b| name(a.0, a.1).cmp(name(b.0, b.1)).then(a.0.cmp(&b.0)));
    Json(
        listed
            .into_iter()
            .map(|(id, l)| json!({ "id": id, "name": name(id, l), "is_archived": false }))
            .collect(),
    )
}

/// `GET /languages/{id}`: the language with its file name and commands.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Judge0Error> {
    let not_found = || Judge0Error::not_found(format!("language with id {id} doesn't exist"));
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let language = language_of(&state, number).ok_or_else(not_found)?;
    if number == super::submission::MULTI_FILE {
        return Ok(Json(json!({
            "id": number,
            "name": MULTI_FILE_NAME,
            "is_archived": false,
            "source_file": null,
            "compile_cmd": "/bin/bash compile",
            "run_cmd": "/bin/bash run",
        })));
    }
    Ok(Json(json!({
        "id": number,
        "name": language.name,
        "is_archived": false,
        "source_file": language.source_file,
        // Judge0 writes `%s` where the submission's compiler options go.
        "compile_cmd": language.compile.as_ref().map(|c| c.argv.join(" ").replace("{options}", "%s")),
        "run_cmd": language.run.argv.join(" "),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_ids_of_judge0_1_13_1_are_mapped() {
        // judge0 0.0.8, data.py, "1.13.1".
        for (id, warden) in [
            (71, "python"),
            (50, "c"),
            (52, "cpp"),
            (54, "cpp"),
            (62, "java"),
            (63, "javascript"),
            (60, "go"),
            (73, "rust"),
            (72, "ruby"),
            (68, "php"),
            (80, "r"),
            (46, "bash"),
        ] {
            let found = IDS.iter().find(|e| e.id == id).map(|e| e.warden);
            assert_eq!(found, Some(warden), "{id}");
        }
        let mut ids: Vec<u32> = IDS.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), IDS.len(), "no id twice");
        assert!(!ids.contains(&70), "python 2 is not python 3");
    }
}
