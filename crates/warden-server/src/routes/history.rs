//! `GET /v1/history` and `GET /v1/stats`: what `warden history --json` and
//! `warden stats --json` show, read from the same database.

use std::time::SystemTime;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_engine::{EngineError, HistoryEntry, HistoryError, HistoryFilter, Stats};

use super::{blocking, V1Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The most executions one `GET /v1/history` answers: a page of entries (a few kilobytes each,
/// without code or output) that the server reads and holds at once. More are had page by page
/// with `before`.
const MAX_PAGE: u32 = 1000;

/// Filters of `GET /v1/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// At most this many, the newest (default 50, at most 1000).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
    /// Only executions listed after this one (its id or a unique prefix): the next page after
    /// a page whose last entry it was.
    before: Option<String>,
    /// Only this language.
    language: Option<String>,
    /// Only executions that finished within this age (`1h`, `7d`).
    since: Option<String>,
}

/// Filter of `GET /v1/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsQuery {
    /// Only executions that finished within this age (`1h`, `7d`).
    since: Option<String>,
}

pub(super) fn since(age: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    let Some(age) = age else { return Ok(None) };
    warden_core::parse_since(age, SystemTime::now())
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("since: {e}")))
}

/// Recorded executions, newest first, without code or output.
#[utoipa::path(
    get, path = "/v1/history", tag = "history", operation_id = "list_history",
    params(HistoryQuery),
    responses(
        (status = 200, description = "The executions, as `warden history --json`", body = serde_json::Value),
        (status = 400, description = "A bad query parameter, or a language neither in the catalog nor recorded"),
        (status = 401, description = "Missing or invalid token"),
        (status = 429, description = "The token's requests_per_minute is spent (`Retry-After` says when)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let Query(query) = query?;
    // An id or an alias of the catalog (`py`), as the CLI takes it; a language no longer in
    // the catalog by its id.
    let language = query
        .language
        .map(|name| match state.engine().catalog().get(&name) {
            Some(language) => Ok(language.id.clone()),
            None => warden_core::LanguageId::new(&name),
        })
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("language: {e}")))?;
    let limit = query.limit.unwrap_or(50);
    if limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit: at most {MAX_PAGE} a page; ask for the next page with before=<the last id>"
        )));
    }
    // The CLI's `--limit 0` is "all"; a page of the API has a bound, so 0 is no page at all.
    if limit == 0 {
        return Err(ApiError::bad_request(format!(
            "limit: 1 to {MAX_PAGE} a page (the CLI's --limit 0 lists all; page with before=<the last id>)"
        )));
    }
    // A page is read from the database every caller's executions are recorded in: it takes a
    // request of the caller's rate, as an execution does.
    state.charge(&caller)?;
    let filter = HistoryFilter {
        language,
        since: since(query.since.as_deref())?,
        limit: Some(limit),
        before: query.before,
        // A token sees the executions it asked for, an admin token all of them (without
        // tokens the server has one caller, the machine's).
        token: caller.token.filter(|name| !state.tokens().is_admin(name)),
        ..HistoryFilter::default()
    };
    match blocking(&state, move |engine| engine.history_list(&filter)).await? {
        Ok(entries) => Ok(Json(entries)),
        // The only id of the query.
        Err(EngineError::History(
            e @ (HistoryError::InvalidId(_)
            | HistoryError::AmbiguousId(_)
            | HistoryError::UnknownId(_)),
        )) => Err(ApiError::bad_request(format!("before: {e}"))),
        Err(e @ EngineError::UnrecordedLanguage { .. }) => {
            Err(ApiError::bad_request(format!("language: {e}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Statistics over recorded executions.
#[utoipa::path(
    get, path = "/v1/stats", tag = "history", operation_id = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "As `warden stats --json` over the executions of the caller's token (an admin token's: every token's), with the warm pool's state under `pool` (the server's)", body = serde_json::Value),
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
) -> Result<Json<ServerStats>, ApiError> {
    let Query(query) = query?;
    let since = since(query.since.as_deref())?;
    // Read over the whole database, as `/v1/history`: a request of the caller's rate.
    state.charge(&caller)?;
    // As `/v1/history`: a token's own executions, an admin token's every token's.
    let token = caller.token.filter(|name| !state.tokens().is_admin(name));
    let history = blocking(&state, move |engine| {
        engine.history_stats(since, token.as_deref())
    })
    .await??;
    Ok(Json(ServerStats {
        history,
        pool: state.engine().pool_stats(),
    }))
}

/// The history's statistics and the warm pool's state.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ServerStats {
    /// What `warden stats --json` shows.
    #[serde(flatten)]
    history: Stats,
    /// Sandboxes kept per spec, ready now, hits and misses; absent before the first run or
    /// without a pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<warden_engine::PoolStats>,
}

#[cfg(test)]
mod tests {
    /// Hunt cli 7: `since=18446744073709551615s` was read as everything, where `warden history
    /// --since` refuses it: both use `warden_core::parse_since` now.
    #[test]
    fn an_age_before_the_clocks_range_is_refused_as_by_the_cli() {
        let e = super::since(Some("18446744073709551615s")).expect_err("refused");
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "since: 18446744073709551615s ago is before the clock's range"
        );
        assert!(super::since(Some("1h")).is_ok_and(|t| t.is_some()));
    }

    /// Hunter report (docs, finding 6): `?language=cobol` answered `200 []` where
    /// `warden history --language cobol`, which the route mirrors, refuses the name.
    #[tokio::test]
    async fn a_language_neither_known_nor_recorded_is_refused_as_by_the_cli() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use warden_engine::{Engine, EngineConfig, HistorySettings, Retention};

        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = EngineConfig::new("/nonexistent/warden".into());
        config.history = Some(Ok(HistorySettings::new(
            dir.path().join("history.db"),
            Retention::Metadata,
        )));
        config.history_reads_only = true;
        let engine = Engine::new(config).expect("engine");
        let app = crate::routes::router(crate::state::AppState::new(engine));
        let ask = |query: &str| {
            let request = Request::get(format!("/v1/history?{query}"))
                .body(Body::empty())
                .expect("request");
            crate::test_support::answer(app.clone(), request)
        };
        let (status, body) = ask("language=cobol").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            body["error"],
            "language: \"cobol\": no such language in the catalog (`warden languages` lists \
             them), and no execution recorded under that name"
        );
        // A language of the catalog with nothing recorded is an empty page, as before.
        let (status, body) = ask("language=py").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, serde_json::json!([]));
    }
}
