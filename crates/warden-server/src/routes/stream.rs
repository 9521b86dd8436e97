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
//! then exactly one `result` event, or an
//! `error` event (`{error, kind}`) when the execution did not run to a result. A client that
//! goes away cancels the execution, as it cancels a synchronous one (`AppState::run_admitted`):
//! hyper drops the response's body once a write to the gone client fails (a `usage` event
//! every 100 ms makes one), and the body's [`Events`] cancels the execution as it is dropped,
//! queued (it never runs) or running (its sandboxes are killed, nothing is recorded).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use warden_core::{Stream, UsageSample};
use warden_engine::{Cancellation, Interactive};
use warden_sandbox::OutputSink;

use super::V1Caller;
use crate::error::ApiError;
use crate::execution_request::{check_single_run, ExecutionBody};
use crate::json_body::JsonObject;
use crate::state::AppState;
use crate::text::{OutputText, Utf8Stream};
use crate::websocket::AbortOnDrop;

/// One server-sent event of the stream, as the OpenAPI document describes each.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: events are written as text by `event`.
pub(crate) struct StreamEvent {
    /// `stdout`, `stderr`, `usage`, `result` or `error`.
    #[schema(pattern = "^(stdout|stderr|usage|result|error)$")]
    event: String,
    /// One line of JSON: `{"data": TEXT}` for output, a reading `{t_ms, cpu_time_ms,
    /// memory_bytes, pids}`, the result object, or `{error, kind}`.
    data: String,
}

/// Runs a program and streams its output, then its result.
#[utoipa::path(
    post, path = "/v1/executions/stream", tag = "executions", operation_id = "stream_execution",
    request_body = ExecutionBody,
    responses(
        (status = 200, description = "Server-sent events: `stdout` and `stderr` (`{\"data\": TEXT}`) as the program writes, then one `result` (the result object) or `error` (`{error, kind}`)", content_type = "text/event-stream", body = StreamEvent),
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
    let admitted = state.admit(&caller)?;
    let cancel = Cancellation::new();
    request.cancel = Some(cancel.clone());
    let (events, receiver) = mpsc::unbounded_channel::<Bytes>();
    let text = Arc::new(Mutex::new(OutputText::default()));
    request.interactive = Some(Interactive {
        output: Box::new(EventSink {
            events: events.clone(),
            text: Arc::clone(&text),
        }),
        on_denial: None,
        on_run: None,
        on_prepared: None,
    });
    let job = tokio::spawn(async move {
        let finished = state.run_admitted(admitted, request, caller, || {}).await;
        let last = match finished {
            Ok(execution) => match serde_json::to_string(&execution.result) {
                Ok(result) => event("result", &result),
                Err(e) => event(
                    "error",
                    &json!({"error": e.to_string(), "kind": "internal"}).to_string(),
                ),
            },
            Err(e) => event("error", &ApiError::from(e).body().to_string()),
        };
        // A character the output ended inside of.
        let held_back = text.lock().map(|mut t| t.finish()).unwrap_or_default();
        for (stream, chunk) in held_back {
            let data = serde_json::Value::Object(chunk.fields()).to_string();
            let _ = events.send(event(stream_name(stream), &data));
        }
        let _ = events.send(last);
    });
    let body = Body::from_stream(Events {
        cancel: Some(cancel),
        _job: AbortOnDrop(job),
        received: receiver,
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}

/// The response's body: the events of the stream's channel until the execution's task has
/// sent its last one. Dropped before that (the client left), it cancels the execution at once,
/// before its channel closes, so that the program's next chunk cannot find the channel closed
/// while the execution is not yet cancelled; then it aborts the task, which gives up an
/// execution's place in the queue if it has no worker yet.
struct Events {
    /// The execution's; `None` once the task sent everything.
    cancel: Option<Cancellation>,
    _job: AbortOnDrop,
    received: mpsc::UnboundedReceiver<Bytes>,
}

impl tokio_stream::Stream for Events {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.received.poll_recv(cx);
        if let Poll::Ready(None) = polled {
            // Every sender is gone: the execution ended and its last event was read.
            self.cancel = None;
        }
        polled.map(|event| event.map(Ok))
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

/// The run's output and readings, as events on the stream's channel.
struct EventSink {
    events: mpsc::UnboundedSender<Bytes>,
    /// The output as text, cut at character boundaries (what a chunk ended inside of waits
    /// for the next one, or for the end of the run).
    text: Arc<Mutex<OutputText>>,
}

impl OutputSink for EventSink {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        let chunk = match self.text.lock() {
            Ok(mut text) => text.push(stream, bytes),
            Err(_) => Utf8Stream::default().push(bytes),
        };
        if !chunk.is_empty() {
            let data = serde_json::Value::Object(chunk.fields()).to_string();
            let _ = self.events.send(event(stream_name(stream), &data));
        }
        // Never ends the job itself: the body that a gone client leaves has cancelled the
        // execution before its channel closed, and the cancel ends it as `cancelled`, not as a
        // program killed (`Events`).
        true
    }

    fn sample(&mut self, sample: &UsageSample) {
        if let Ok(data) = serde_json::to_string(sample) {
            let _ = self.events.send(event("usage", &data));
        }
    }
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
    }
}
