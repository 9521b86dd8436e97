//! `POST /v1/executions/stream`: one program, its output sent as server-sent events while it
//! is produced (issue 12). The body is `POST /v1/executions`'s; the answer is
//! `text/event-stream`:
//!
//! ```text
//! event: stdout
//! data: {"data":"first line\n"}
//!
//! event: result
//! data: {...the result object of docs/result-schema.md...}
//! ```
//!
//! `stdout` and `stderr` events carry the run stage's output in order, each chunk as read up
//! to its last whole character (invalid UTF-8 replaced, the chunk's exact bytes then in
//! `data_base64`), within the output limit; `usage` events a reading of the run's
//! cgroup every 100 ms (`{t_ms, cpu_time_ms, memory_bytes, pids}`, live resource monitoring);
//! before the first of them, for a compiled language whose compiler ran, one `compile` event
//! (the compile stage's object of the result, its warnings in it); then exactly one `result`
//! event, or an
//! `error` event (`{error, kind}`) when the execution did not run to a result. A client that
//! goes away cancels the execution, as it cancels a synchronous one (`AppState::run_admitted`):
//! hyper drops the response's body once a write to the gone client fails (a `usage` event
//! every 100 ms makes one), and the body's [`Events`] cancels the execution as it is dropped,
//! queued (it never runs) or running (its sandboxes are killed, nothing is recorded).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_core::{Stream, UsageSample};
use warden_engine::{Cancellation, Interactive};
use warden_sandbox::OutputSink;

use super::V1Caller;
use crate::error::ApiError;
use crate::execution_request::{check_single_run, ExecutionBody};
use crate::json_body::JsonObject;
use crate::outbox;
use crate::state::AppState;
use crate::text::OutputText;
use crate::websocket::AbortOnDrop;

/// One server-sent event of the stream, as the OpenAPI document describes each.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: events are written as text by `event`.
pub(crate) struct StreamEvent {
    /// `compile`, `stdout`, `stderr`, `usage`, `result` or `error`.
    #[schema(pattern = "^(compile|stdout|stderr|usage|result|error)$")]
    event: String,
    /// One line of JSON: the compile stage's object, `{"data": TEXT}` for output, a reading
    /// `{t_ms, cpu_time_ms, memory_bytes, pids}`, the result object, or `{error, kind}`.
    data: String,
}

/// Runs a program and streams its output, then its result.
#[utoipa::path(
    post, path = "/v1/executions/stream", tag = "executions", operation_id = "stream_execution",
    request_body = ExecutionBody,
    responses(
        (status = 200, description = "Server-sent events: `compile` (the compile stage, when a compiler ran) as the run starts, `stdout` and `stderr` (`{\"data\": TEXT}`) as the program writes, then one `result` (the result object) or `error` (`{error, kind}`)", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "Malformed JSON"),
        (status = 401, description = "Missing or invalid token"),
        (status = 413, description = "The body is larger than the server accepts"),
        (status = 415, description = "Not `Content-Type: application/json`"),
        (status = 422, description = "A field is invalid: unknown language, limit above the maximum, too many files"),
        (status = 429, description = "The queue is full or the token is over a quota; see Retry-After"),
        (status = 503, description = "The server is shutting down"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    JsonObject(body): JsonObject<ExecutionBody>,
) -> Result<Response, ApiError> {
    let mut request = body.into_request(state.options())?;
    // What can be refused before the stream starts is refused with its status: an unknown
    // language, no room. Later refusals (the analysis, the mode policy) are `error` events.
    check_single_run(&request, state.engine().catalog(), "a streamed execution")?;
    // A place among the caller's long-lived connections, held with the body: what a client
    // that does not read leaves waiting outlives the run and its worker.
    let place = state.stream_place(&caller)?;
    let admitted = state.admit(&caller)?;
    let cancel = Cancellation::new();
    request.cancel = Some(cancel.clone());
    let (events, receiver) = outbox::channel::<Item>();
    request.interactive = Some(Interactive {
        output: Box::new(EventSink(events.clone())),
        on_denial: None,
        on_run: Some(compiled(events.clone())),
        on_prepared: None,
    });
    let job = tokio::spawn(async move {
        let finished = state.run_admitted(admitted, request, caller, || {}).await;
        let last = match finished {
            Ok(execution) => match json_event("result", &execution.result) {
                Ok(result) => result,
                Err(e) => event(
                    "error",
                    &json!({"error": e.to_string(), "kind": "internal"}).to_string(),
                ),
            },
            Err(e) => event("error", &ApiError::from(e).body().to_string()),
        };
        let _ = events.send(Item::Last(last));
    });
    let events = Events {
        cancel: Some(cancel),
        _job: AbortOnDrop(job),
        _place: place,
        text: OutputText::default(),
        waiting: None,
    };
    // The queue's next item as the text of its events; the stream ends after the last.
    let stream = futures_util::stream::unfold(
        (events, receiver),
        |(mut events, mut receiver)| async move {
            let text = match events.next_output() {
                Some(text) => text,
                None => events.text_of(receiver.recv().await?),
            };
            Some((Ok::<_, Infallible>(text), (events, receiver)))
        },
    );
    let body = Body::from_stream(stream);
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// What the program's side queues for the client (`outbox.rs`): its output, merged while it
/// waits, as bytes; the other events as their text.
enum Item {
    Output(Stream, Vec<u8>),
    /// An event written whole: a `usage` reading, the `compile` stage.
    Whole(Bytes),
    /// The `result` or `error` event, after which nothing comes.
    Last(Bytes),
}

impl outbox::Event for Item {
    fn output(&mut self) -> Option<(Stream, &mut Vec<u8>)> {
        match self {
            Item::Output(stream, bytes) => Some((*stream, bytes)),
            Item::Whole(_) | Item::Last(_) => None,
        }
    }
}

/// The response's body's state: the output as text, and the execution's handles. Dropped
/// before the last event was taken (the client left), it cancels the execution at once, before
/// the queue closes, so that the program's next chunk cannot find the queue closed while the
/// execution is not yet cancelled; then it aborts the task, which gives up an execution's
/// place in the queue if it has no worker yet.
struct Events {
    /// The execution's; `None` once the last event was taken.
    cancel: Option<Cancellation>,
    _job: AbortOnDrop,
    /// The caller's place among its long-lived connections, given back with the body.
    _place: crate::quota::StreamPermit,
    /// The output cut at character boundaries: what a chunk ended inside of waits for the
    /// next one, or for the end of the run.
    text: OutputText,
    /// Output taken from the queue and not yet all sent (from the offset on): a merged chunk,
    /// everything a slow client had not taken, is encoded one event of at most 64 KiB of
    /// output at a time, as the client takes them, never all at once (six times its size in
    /// JSON for control bytes, and a copy more for the event).
    waiting: Option<(Stream, Vec<u8>, usize)>,
}

impl Events {
    /// The text of `item`'s events (none for output that ended inside a character); output
    /// beyond its first 64 KiB waits for [`Events::next_output`].
    fn text_of(&mut self, item: Item) -> Bytes {
        match item {
            Item::Output(stream, bytes) => {
                self.waiting = Some((stream, bytes, 0));
                self.next_output().unwrap_or_default()
            }
            Item::Whole(text) => text,
            Item::Last(last) => {
                // The execution is over: a client leaving now cancels nothing.
                self.cancel = None;
                let mut all = Vec::new();
                for (stream, chunk) in self.text.finish() {
                    let data = serde_json::Value::Object(chunk.fields()).to_string();
                    all.extend_from_slice(&event(stream_name(stream), &data));
                }
                all.extend_from_slice(&last);
                Bytes::from(all)
            }
        }
    }
}

impl Events {
    /// The next event of the output taken and not yet sent, if any.
    fn next_output(&mut self) -> Option<Bytes> {
        loop {
            let (stream, bytes, from) = self.waiting.as_mut()?;
            if *from == bytes.len() {
                self.waiting = None;
                return None;
            }
            let (chunk, took) = self.text.first_piece(*stream, &bytes[*from..]);
            *from += took;
            if !chunk.is_empty() {
                let data = serde_json::Value::Object(chunk.fields()).to_string();
                return Some(event(stream_name(*stream), &data));
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            tracing::debug!("the stream's client left: cancelling its execution");
            cancel.cancel();
        }
    }
}

/// The run's output and readings, queued for the client.
struct EventSink(outbox::Sender<Item>);

impl OutputSink for EventSink {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        let _ = self.0.send(Item::Output(stream, bytes.to_vec()));
        // Never ends the job itself: the body that a gone client leaves has cancelled the
        // execution before its queue closed, and the cancel ends it as `cancelled`, not as a
        // program killed (`Events`).
        true
    }

    fn sample(&mut self, sample: &UsageSample) {
        if let Ok(data) = serde_json::to_string(sample) {
            let _ = self.0.send(Item::Whole(event("usage", &data)));
        }
    }
}

/// The hook that queues a `compile` event as the run starts, when a compiler ran: what it said
/// of the program (warnings) before the program's output, as running the compiler oneself
/// shows it. A cached compile ran nothing and has nothing to say.
fn compiled(events: outbox::Sender<Item>) -> warden_engine::RunHook {
    Box::new(move |compile| {
        let Some(compile) = compile.filter(|c| !c.cached) else {
            return;
        };
        if let Ok(data) = serde_json::to_string(compile) {
            let _ = events.send(Item::Whole(event("compile", &data)));
        }
    })
}

/// The event of a stream's output.
fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// One server-sent event; `data` is one line of JSON (no raw newline can occur in it).
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// One server-sent event whose data is `value` as JSON, written in place: the result repeats
/// the output (six times its size for control bytes), and [`event`] of its text would copy
/// all of that once more.
fn json_event(name: &str, value: &impl serde::Serialize) -> Result<Bytes, serde_json::Error> {
    let mut text = format!("event: {name}\ndata: ").into_bytes();
    serde_json::to_writer(&mut text, value)?;
    text.extend_from_slice(b"\n\n");
    Ok(Bytes::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_json_line() {
        let data = json!({"data": "a\nb"}).to_string();
        assert_eq!(
            event("stdout", &data),
            Bytes::from("event: stdout\ndata: {\"data\":\"a\\nb\"}\n\n")
        );
        let written = json_event("stdout", &json!({"data": "a\nb"})).expect("JSON");
        assert_eq!(written, event("stdout", &data));
    }
}
