//! `POST /submissions`, `GET /submissions/{token}`, `submissions/batch` both ways, and the
//! listing and deletion that Judge0 reserves to its authorization token. Every
//! submission is admitted (a full queue answers 503 `queue is full` before a token is given),
//! then runs in a task of its own that records its progress in the store; `wait=true` awaits
//! that task. A client that leaves does not cancel its submission: it has a token, and Judge0
//! keeps running what it accepted.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::fields::{self, Fields, NOT_UTF8};
use super::info::max_batch;
use super::store::{self, Attributes, Progress, Record, Store};
use super::submission::{self, Input};
use super::{authorize, callback, caller, flag, Judge0Caller, Judge0Error};
use crate::resume::Resubmission;
use crate::state::{Admitted, Api, AppState, Caller, ExecError};

/// The query parameters of the submission endpoints.
#[derive(Debug, Default)]
pub(crate) struct Params {
    base64_encoded: Option<String>,
    wait: Option<String>,
    fields: Option<String>,
    tokens: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

/// The query as Rails reads it: a parameter given twice takes its last value (`?wait=true&
/// wait=false` was a plain-text 400 "duplicate field"), an unknown one is ignored.
pub(crate) struct JudgeQuery(Params);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JudgeQuery {
    type Rejection = Judge0Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| Judge0Error::bad_request(e.body_text()))?;
        let mut params = Params::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "base64_encoded" => &mut params.base64_encoded,
                "wait" => &mut params.wait,
                "fields" => &mut params.fields,
                "tokens" => &mut params.tokens,
                "page" => &mut params.page,
                "per_page" => &mut params.per_page,
                _ => continue,
            };
            *slot = Some(value);
        }
        Ok(Self(params))
    }
}

/// The most submissions one page of `GET /submissions` holds: each may carry megabytes of code
/// and output, all read at once. (Judge0 has no such cap.)
const MAX_PER_PAGE: i64 = 100;

/// `POST /submissions`: 201 with `{"token"}`, or with the finished submission when `wait=true`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Judge0Caller(caller): Judge0Caller,
    JudgeQuery(params): JudgeQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Judge0Error> {
    let body = body?;
    let base64 = flag(params.base64_encoded.as_deref());
    let fields = Fields::parse(params.fields.as_deref())?;
    let body = json_body(&body)?;
    let input = submission::parse(&state, &body, base64).map_err(Judge0Error::invalid)?;
    let store = state.judge0_store();
    let wait = flag(params.wait.as_deref());
    // Run again after a restart if it has not started by then: nobody waits for a `wait=true`
    // one once its connection is gone with the server.
    let again = (!wait).then_some((body, base64));
    let cancel = warden_engine::Cancellation::new();
    let (token, mut task) = start(
        &state,
        store,
        input,
        caller,
        again,
        wait.then(|| cancel.clone()),
    )?;
    if !wait {
        return Ok((StatusCode::CREATED, Json(json!({ "token": token }))));
    }
    let deadline = state.sync_deadline();
    let Ok(ended) = tokio::time::timeout(deadline, &mut task).await else {
        // Past `[server] sync_deadline`, as `/v1`'s synchronous requests: a queued submission
        // never runs, a running one is killed, and it is forgotten once it has ended (its
        // client never learnt its token, and gets no callback).
        cancel.cancel();
        let _ = task.await;
        let _ = store.delete(&token).await;
        return Err(Judge0Error::deadline(deadline));
    };
    if let Ok(Some(e)) = ended {
        if matches!(&e, ExecError::Engine(inner) if inner.kind().is_caller_fault()) {
            // Refused (the analysis, the mode policy): the client gets the refusal and no
            // token, so no submission is left behind for the listing and the statistics.
            let _ = store.delete(&token).await;
            return Err(e.into());
        }
        if matches!(e, ExecError::ShuttingDown) {
            return Err(e.into());
        }
    }
    let record = store
        .get(&token)
        .await
        .ok_or_else(|| Judge0Error::not_found(format!("submission {token} was forgotten")))?;
    Ok((StatusCode::CREATED, Json(shown(&record, &fields, base64))))
}

/// `GET /submissions/{token}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JudgeQuery(params): JudgeQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, Judge0Error> {
    caller(&state, &headers)?;
    let fields = Fields::parse(params.fields.as_deref())?;
    let record = state
        .judge0_store()
        .get(&token)
        .await
        .ok_or_else(|| Judge0Error::not_found("Not Found"))?;
    let base64 = flag(params.base64_encoded.as_deref());
    Ok(Json(shown(&record, &fields, base64)))
}

/// `GET /submissions?page=&per_page=`: every caller's submissions, the newest first, a page
/// at a time (20 by default, at most [`MAX_PER_PAGE`]), with Judge0's `meta`; only for a
/// request that Judge0 would authorize ([`authorize`]).
pub(crate) async fn list(
    State(state): State<AppState>,
    JudgeQuery(params): JudgeQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, Judge0Error> {
    caller(&state, &headers)?;
    authorize(&state, &headers)?;
    let fields = Fields::parse(params.fields.as_deref())?;
    let base64 = flag(params.base64_encoded.as_deref());
    let page = params.page.as_deref().map_or(1, ruby_to_i);
    let per_page = params.per_page.as_deref().map_or(20, ruby_to_i);
    if page <= 0 {
        return Err(Judge0Error::bad_request(format!("invalid page: {page}")));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(Judge0Error::bad_request(format!(
            "invalid per_page: {per_page} (from 1 to {MAX_PER_PAGE})"
        )));
    }
    let (page, per_page) = (page.unsigned_abs(), per_page.unsigned_abs());
    let offset = (page - 1).saturating_mul(per_page);
    let (total, listed) = state.judge0_store().page(offset, per_page).await;
    let submissions = listed
        .iter()
        .map(|attributes| fields::render(attributes, &fields, base64))
        .collect::<Result<Vec<Value>, ()>>()
        .map_err(|()| {
            Judge0Error::bad_request(
                "some attributes for one or more submissions cannot be converted to UTF-8, \
                 use base64_encoded=true query parameter",
            )
        })?;
    let total_pages = total.div_ceil(per_page);
    Ok(Json(json!({
        "submissions": submissions,
        "meta": {
            "current_page": page,
            "next_page": (page < total_pages).then_some(page + 1),
            "prev_page": (page > 1).then_some(page - 1),
            "total_pages": total_pages,
            "total_count": total,
        }
    })))
}

/// A number as Ruby's `to_i` reads it, as Judge0 reads `page` and `per_page`: the leading
/// integer after white space, 0 when there is none.
fn ruby_to_i(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = digits
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    digits
        .bytes()
        .fold(0i64, |n, d| {
            n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        })
        .saturating_mul(sign)
}

/// `DELETE /submissions/{token}`: the finished submission, gone from the store, shown with
/// `fields` and always in base64 (as Judge0 forces it, so that the answer holds what was
/// deleted whatever its bytes); 400 for one still queued or running. Once the server has an
/// admin token, only a request Judge0 would authorize may delete ([`authorize`]); without
/// one, any caller may (the token of a submission is its only key).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JudgeQuery(params): JudgeQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, Judge0Error> {
    caller(&state, &headers)?;
    if state.tokens().has_admin() {
        authorize(&state, &headers)?;
    }
    let fields = Fields::parse(params.fields.as_deref())?;
    match state.judge0_store().delete(&token).await {
        Ok(Some(attributes)) => Ok(Json(shown(&attributes, &fields, true))),
        Ok(None) => Err(Judge0Error::not_found("Not Found")),
        Err(status) => Err(Judge0Error::bad_request(format!(
            "submission cannot be deleted because its status is {} ({})",
            status.id(),
            status.description()
        ))),
    }
}

/// `POST /submissions/batch`: `{"submissions": [...]}` → one `{"token"}` or error map each;
/// 201 when at least one was accepted. When none was, and one was refused for a full queue
/// or its token's quota, the batch is answered as a single submission is (503 or 429 with
/// `Retry-After`, Judge0's 503 `queue is full` for a batch), so that a client retries it
/// rather than reading a validation error; else 422.
pub(crate) async fn create_batch(
    State(state): State<AppState>,
    Judge0Caller(caller): Judge0Caller,
    JudgeQuery(params): JudgeQuery,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), Judge0Error> {
    let body = body?;
    let base64 = flag(params.base64_encoded.as_deref());
    let body = json_body(&body)?;
    let items = body["submissions"].as_array().cloned().unwrap_or_default();
    batch_size(&state, items.len())?;
    let mut answers = Vec::with_capacity(items.len());
    let mut busy = None;
    for item in &items {
        let answer = match submission::parse(&state, item, base64) {
            Err(invalid) => json!(invalid),
            Ok(input) => match start(
                &state,
                state.judge0_store(),
                input,
                caller.clone(),
                Some((item.clone(), base64)),
                None,
            ) {
                Ok((token, _task)) => json!({ "token": token }),
                Err(e) => {
                    let answer = json!({ "error": e.message });
                    if e.retry_after.is_some() {
                        busy.get_or_insert(e);
                    }
                    answer
                }
            },
        };
        answers.push(answer);
    }
    if answers.iter().any(|a| a.get("token").is_some()) {
        return Ok((StatusCode::CREATED, Json(Value::Array(answers))));
    }
    match busy {
        Some(e) => Err(e),
        None => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(Value::Array(answers)),
        )),
    }
}

/// `GET /submissions/batch?tokens=…`: `{"submissions": [...]}`, `null` for unknown tokens.
pub(crate) async fn show_batch(
    State(state): State<AppState>,
    JudgeQuery(params): JudgeQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, Judge0Error> {
    caller(&state, &headers)?;
    let fields = Fields::parse(params.fields.as_deref())?;
    let base64 = flag(params.base64_encoded.as_deref());
    let tokens: Vec<&str> = params
        .tokens
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    batch_size(&state, tokens.len())?;
    let mut submissions = Vec::with_capacity(tokens.len());
    for token in tokens {
        let found = state.judge0_store().get(token).await;
        submissions.push(found.map_or(Value::Null, |r| shown(&r, &fields, base64)));
    }
    Ok(Json(json!({ "submissions": submissions })))
}

fn batch_size(state: &AppState, n: usize) -> Result<(), Judge0Error> {
    let most = max_batch(state.options());
    if n == 0 {
        return Err(Judge0Error::bad_request(
            "there should be at least one submission in a batch",
        ));
    }
    if n > most {
        return Err(Judge0Error::bad_request(format!(
            "number of submissions in a batch should be less than or equal to {most}"
        )));
    }
    Ok(())
}

fn json_body(body: &[u8]) -> Result<Value, Judge0Error> {
    serde_json::from_slice(body)
        .map_err(|e| Judge0Error::bad_request(format!("invalid JSON body: {e}")))
}

/// The attributes in `fields`, or Judge0's answer for text that is not UTF-8.
fn shown(attributes: &Attributes, fields: &Fields, base64: bool) -> Value {
    fields::render(attributes, fields, base64)
        .unwrap_or_else(|()| json!({ "token": attributes.get("token"), "error": NOT_UTF8 }))
}

/// Admits `input`, stores it as queued and runs it in a task of its own; the task yields the
/// error that kept it from a result, if any. With `again` (its body as sent, and whether it is
/// base64), it is kept to run again after a restart until it starts (crate::resume); with
/// `cancel`, its waiting client may give it up.
fn start(
    state: &AppState,
    store: &Store,
    input: Input,
    caller: Caller,
    again: Option<(Value, bool)>,
    cancel: Option<warden_engine::Cancellation>,
) -> Result<(String, tokio::task::JoinHandle<Option<ExecError>>), Judge0Error> {
    let admitted = state.admit(&caller)?;
    let token = store::token().map_err(|e| ExecError::Engine(e.into()))?;
    let input = Arc::new(input);
    let created_at = SystemTime::now();
    store.insert(Record {
        token: token.clone(),
        input: Arc::clone(&input),
        progress: Progress::Queued,
        created_at,
        finished_at: None,
        resumable: false,
        caller: caller.token.clone(),
    });
    let kept = again.map(|(body, base64)| {
        let accepted = created_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Resubmission {
            token: caller.token.clone(),
            base64,
            accepted_ms: i64::try_from(accepted.as_millis()).ok(),
            accepted_us: Some(crate::resume::accepted_now()),
            body,
        }
        .to_json()
    });
    let held = Held {
        admitted,
        kept,
        cancel,
    };
    let task = launch(state, store, token.clone(), input, caller, held);
    Ok((token, task))
}

/// What a submission about to run holds: its place, its request to run again after a restart
/// (if any), and its waiting client's cancellation (if any).
struct Held {
    admitted: Admitted,
    kept: Option<String>,
    cancel: Option<warden_engine::Cancellation>,
}

/// Runs a submission held in `store` (queued), once admitted, keeping it as queued first (with
/// its request to run again after a restart, if any).
fn launch(
    state: &AppState,
    store: &Store,
    token: String,
    input: Arc<Input>,
    caller: Caller,
    held: Held,
) -> tokio::task::JoinHandle<Option<ExecError>> {
    let Held {
        admitted,
        kept,
        cancel,
    } = held;
    let (state, store, id) = (state.clone(), store.clone(), token);
    let keeping = state.keeping();
    tokio::spawn(async move {
        // Until its answer is kept.
        let _keeping = keeping;
        store.keep_queued(&id, kept).await;
        let on_start = {
            let (store, id) = (store.clone(), id.clone());
            move || store.processing(&id)
        };
        let mut request = input.execution();
        request.cancel = cancel.clone();
        let ran = state
            .run_admitted(admitted, request, caller, on_start)
            .await;
        if let Err(ExecError::ShuttingDown) = ran {
            // Ended by the shutdown deadline: left as kept, the next server runs it (it had
            // not started) or answers it as interrupted (it had); a waiting client is
            // answered 503.
            return Some(ExecError::ShuttingDown);
        }
        let (progress, failure) = match ran {
            Ok(execution) => (Progress::Finished(Box::new(execution.result)), None),
            // Never an Internal Error when the client is the one to act.
            Err(ExecError::Engine(e)) if e.kind().is_caller_fault() => (
                Progress::Refused(warden_engine::error_chain(&e)),
                Some(ExecError::Engine(e)),
            ),
            // Judge0's Internal Error, whose `message` tells the client no more than a
            // request id: the details are the operator's (crate::error::logged_internal).
            Err(e) => (
                Progress::Failed(crate::error::logged_internal(
                    "judge0 submission failed",
                    &warden_engine::error_chain(&e),
                )),
                Some(e),
            ),
        };
        store.finish(&id, progress).await;
        if cancel.is_some_and(|c| c.is_cancelled()) {
            // Given up by its client (crate::judge0::submissions::create), and forgotten.
            return failure;
        }
        let finished = store.get(&id).await;
        if let (Some(url), Some(record)) = (&input.callback_url, finished) {
            call_back(url.clone(), &record);
        }
        failure
    })
}

/// `PUT`s a finished submission to its `callback_url` in the background: Judge0's default
/// fields, base64.
pub(crate) fn call_back(url: String, attributes: &Attributes) {
    let body = shown(attributes, &Fields::callback(), true).to_string();
    tokio::spawn(callback::deliver(url, body));
}

/// Runs a submission the last server accepted and never started, held queued in the store
/// since this server's start (crate::resume), once admitted.
pub(crate) fn resume_submission(state: &AppState, token: String, kept: String, admitted: Admitted) {
    let store = state.judge0_store();
    let Some(input) = store.input(&token) else {
        return;
    };
    let caller = Caller {
        api: Api::Judge0,
        token: serde_json::from_str::<Resubmission>(&kept)
            .ok()
            .and_then(|r| r.token),
    };
    let held = Held {
        admitted,
        kept: Some(kept),
        cancel: None,
    };
    launch(state, store, token, input, caller, held);
}

#[cfg(test)]
mod tests {
    use super::ruby_to_i;

    #[test]
    fn numbers_are_read_as_ruby_reads_them() {
        for (text, n) in [
            ("2", 2),
            (" 7x", 7),
            ("-3", -3),
            ("+4", 4),
            ("abc", 0),
            ("", 0),
        ] {
            assert_eq!(ruby_to_i(text), n, "{text:?}");
        }
        assert_eq!(ruby_to_i("99999999999999999999999"), i64::MAX);
    }
}
