//! `GET /statistics`: Judge0's counts of the submissions this server keeps (`results.sqlite3`,
//! docs/server.md#kept-answers): in all, today and on each of the last 30 days (UTC), by
//! language and by status, and the database's size. As Judge0 does, an answer is reused for
//! ten minutes (`cached_until`) unless `invalidate_cache=true` asks for a fresh one. It counts
//! every client's submissions, so it needs Judge0's authorization, as the listing does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::fields::{civil_from_days, timestamp};
use super::languages;
use super::statuses::Status;
use super::{authorize, caller, Judge0Error};
use crate::kept::Tally;
use crate::state::AppState;

/// How long an answer is reused (Judge0's cache of its statistics).
const CACHED_FOR: Duration = Duration::from_secs(600);

/// The days counted one by one: today and the 30 before it.
const DAYS: i64 = 30;

/// `GET /statistics[?invalidate_cache=true]`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, Judge0Error> {
    caller(&state, &headers)?;
    authorize(&state, &headers)?;
    let invalidate = params
        .get("invalidate_cache")
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes" | "on"));
    let store = state.judge0_store();
    if !invalidate {
        if let Some(cached) = store.cached_statistics(CACHED_FOR) {
            return Ok(Json(cached));
        }
    }
    let (at, now) = (Instant::now(), SystemTime::now());
    let today = day_of(now);
    let tally = store.tally(today - DAYS).await;
    let statistics = render(&state, &tally, now, today);
    store.cache_statistics(at, statistics.clone());
    Ok(Json(statistics))
}

/// Judge0's document for `tally`, counted at `now` (UTC day `today`).
fn render(state: &AppState, tally: &Tally, now: SystemTime, today: i64) -> Value {
    let per_day: BTreeMap<i64, u64> = tally.by_day.iter().copied().collect();
    let mut last_30_days = serde_json::Map::new();
    for day in today - DAYS..=today {
        last_30_days.insert(date(day), json!(per_day.get(&day).copied().unwrap_or(0)));
    }
    let languages: Vec<Value> = tally
        .by_field
        .iter()
        .filter_map(|&(id, count)| {
            let id = id?;
            let name = languages::language_of(state, id).map(|l| languages::name(id, l));
            Some(json!({ "language": { "id": id, "name": name }, "count": count }))
        })
        .collect();
    let mut per_status: BTreeMap<i64, u64> = BTreeMap::new();
    for &(id, count) in &tally.finished_by_state {
        *per_status.entry(id.unwrap_or(0)).or_default() += count;
    }
    for (_, id) in &tally.unfinished {
        *per_status.entry(id.unwrap_or(0)).or_default() += 1;
    }
    let statuses: Vec<Value> = per_status
        .into_iter()
        .filter_map(|(id, count)| {
            let status = Status::from_id(id)?;
            Some(json!({
                "status": { "id": status.id(), "name": status.description() },
                "count": count,
            }))
        })
        .collect();
    json!({
        "now": timestamp(now),
        "cached_until": timestamp(now + CACHED_FOR),
        "submissions": {
            "total": tally.total,
            "today": per_day.get(&today).copied().unwrap_or(0),
            "last_30_days": last_30_days,
        },
        "languages": languages,
        "statuses": statuses,
        "database": { "size_pretty": pretty(tally.bytes), "size_in_bytes": tally.bytes },
    })
}

/// The UTC day of `t`, as days since 1970-01-01.
fn day_of(t: SystemTime) -> i64 {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// `YYYY-MM-DD` of a day since 1970-01-01.
fn date(day: i64) -> String {
    let (year, month, day) = civil_from_days(day);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A size as PostgreSQL's `pg_size_pretty` writes it (Judge0's `size_pretty`): bytes below
/// 10 kB, then the largest unit that keeps the number under 20 480 before halving, rounded
/// half up (`53747439` is `51 MB`).
fn pretty(bytes: u64) -> String {
    const LIMIT: u64 = 10 * 1024;
    if bytes < LIMIT {
        return format!("{bytes} bytes");
    }
    // In half units: rounding by adding one before the last halving.
    let mut halves = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if halves < 2 * LIMIT - 1 || unit == "TB" {
            return format!("{} {unit}", halves.div_ceil(2));
        }
        halves >>= 10;
    }
    unreachable!("the loop returns at TB")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use warden_engine::{Engine, EngineConfig};

    use super::super::store::{submission, Progress};
    use super::*;

    async fn statistics(state: &AppState, uri: &str) -> Value {
        let (status, body) = call(state, uri, Some("adm1n")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn call(state: &AppState, uri: &str, admin: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::get(uri).header("x-auth-token", "s3cret");
        if let Some(admin) = admin {
            request = request.header("x-auth-user", admin);
        }
        let request = request.body(Body::empty()).expect("request");
        let app = super::super::routes().with_state(state.clone());
        crate::test_support::answer(app, request).await
    }

    fn with_tokens() -> AppState {
        let engine = Engine::new(EngineConfig::new("/nonexistent/warden".into())).expect("engine");
        let token = |name: &str, token: &str, admin| warden_core::config::TokenConfig {
            name: name.into(),
            token: token.into(),
            max_concurrent: None,
            requests_per_minute: None,
            admin,
        };
        let options = crate::ServerOptions {
            tokens: vec![
                token("grader", "s3cret", false),
                token("root", "adm1n", true),
            ],
            ..crate::ServerOptions::default()
        };
        AppState::with_options(engine, options)
    }

    #[tokio::test]
    async fn submissions_are_counted_as_they_stand_and_the_answer_is_reused_until_asked_anew() {
        let state = with_tokens();
        assert_eq!(
            call(&state, "/statistics", None).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(&state, "/statistics", Some("s3cret")).await.0,
            StatusCode::FORBIDDEN
        );
        let empty = statistics(&state, "/statistics").await;
        assert_eq!(empty["submissions"]["total"], 0);
        let days = empty["submissions"]["last_30_days"]
            .as_object()
            .expect("days");
        assert_eq!(days.len(), 31, "today and the 30 days before: {empty}");
        assert!(days.values().all(|n| n == 0));
        assert_eq!(
            (&empty["languages"], &empty["statuses"]),
            (&json!([]), &json!([]))
        );
        assert!(
            empty["database"]["size_in_bytes"].as_u64() > Some(0),
            "{empty}"
        );

        let store = state.judge0_store();
        for token in ["queued", "running", "failed"] {
            store.insert(submission(token, 1));
            store.keep_queued(token, None).await;
        }
        store.processing("running");
        store.finish("failed", Progress::Failed("no".into())).await;
        // Reused: the answer of a moment ago.
        assert_eq!(statistics(&state, "/statistics").await, empty);
        let counted = statistics(&state, "/statistics?invalidate_cache=true").await;
        assert_eq!(counted["submissions"]["total"], 3, "{counted}");
        assert_eq!(counted["submissions"]["today"], 3, "{counted}");
        let today = date(day_of(SystemTime::now()));
        assert_eq!(
            counted["submissions"]["last_30_days"][&today], 3,
            "{counted}"
        );
        assert_eq!(counted["languages"][0]["language"]["id"], 71, "{counted}");
        assert!(
            counted["languages"][0]["language"]["name"].is_string(),
            "{counted}"
        );
        assert_eq!(counted["languages"][0]["count"], 3, "{counted}");
        assert_eq!(
            counted["statuses"],
            json!([
                {"status": {"id": 1, "name": "In Queue"}, "count": 1},
                {"status": {"id": 2, "name": "Processing"}, "count": 1},
                {"status": {"id": 13, "name": "Internal Error"}, "count": 1},
            ])
        );
        let until = counted["cached_until"].as_str().expect("a time");
        assert!(
            until > counted["now"].as_str().expect("a time"),
            "{counted}"
        );
    }

    #[tokio::test]
    async fn isolate_says_what_runs_the_submissions_instead() {
        use tower::ServiceExt;
        let engine = Engine::new(EngineConfig::new("/nonexistent/warden".into())).expect("engine");
        let app = super::super::routes().with_state(AppState::new(engine));
        let request = Request::get("/isolate")
            .body(Body::empty())
            .expect("request");
        let response = app.oneshot(request).await.expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            text.starts_with("warden ") && text.contains("not in isolate"),
            "{text}"
        );
    }

    #[test]
    fn sizes_read_as_pg_size_pretty_writes_them() {
        assert_eq!(pretty(0), "0 bytes");
        assert_eq!(pretty(10_239), "10239 bytes");
        assert_eq!(pretty(10_240), "10 kB");
        assert_eq!(pretty(53_747_439), "51 MB");
        assert_eq!(pretty(10_485_247), "10239 kB");
        assert_eq!(pretty(10_485_248), "10 MB");
        assert_eq!(pretty(20_480 * 1024), "20 MB");
        assert_eq!(pretty(u64::MAX), "16777216 TB");
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_793), "2026-12-06");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(20_793 * 86_400 + 86_399);
        assert_eq!(day_of(t), 20_793);
    }
}
