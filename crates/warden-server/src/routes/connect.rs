//! `GET /v1/executions/connect`: one program run interactively over a WebSocket (issue 12),
//! what the server-sent events of `/v1/executions/stream` cannot do: stdin written while the
//! program runs, and signals. JSON text messages:
//!
//! - the client's first message is the program, `POST /v1/executions`'s body (no `tests`), within
//!   [`REQUEST_TIMEOUT`] (Ping and Pong frames before it are passed over);
//! - then the client may send `{"type": "stdin", "data": TEXT}` (written to the program's stdin
//!   as it comes), `{"type": "stdin", "eof": true}` (with or without `data`: stdin is closed after
//!   it), and `{"type": "signal", "signal": "SIGINT"}`: SIGTERM, SIGINT, SIGHUP, SIGQUIT,
//!   SIGUSR1 and SIGUSR2 reach the program, which may handle them; any other signal ends it as
//!   a kill (`warden_engine::Cancellation::signal`);
//! - the server sends `{"type": "compile", "compile": {...}}` as the run starts when a compiler
//!   ran (the compile stage's object of the result: what the compiler said, its warnings),
//!   `{"type": "stdout" | "stderr", "data": TEXT}` as the program writes,
//!   `{"type": "usage", ...}` readings every 100 ms, then exactly one `{"type": "result",
//!   "result": {...}}` (the result object) or `{"type": "error", "error", "kind"}`, and closes
//!   (1000).
//!
//! A first message that is not a valid request, a refused one (unknown language, no room in the
//! queue), or a later message that is not one of the above is answered with an `error` and the
//! session closes (1008 for the client's mistakes, 1009 for a message larger than
//! `[server] max_body`); the program, if it runs, is ended. A client that goes away ends the
//! program.
//!
//! `GET /v1/sessions/{id}/connect` runs one call of a session the same way, its first message
//! `POST /v1/sessions/{id}/exec`'s body; the session outlives the WebSocket.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use warden_core::{Signal, Stream, UsageSample};
use warden_engine::{Cancellation, ExecutionRequest, Interactive, SessionCall};
use warden_sandbox::OutputSink;

use super::V1Caller;
use crate::error::ApiError;
use crate::execution_request::{check_single_run, ExecutionBody};
use crate::outbox;
use crate::state::{AppState, Caller};
use crate::text::{Chunk, OutputText};
use crate::websocket::{
    close, close_too_big, parse, send, text_of, too_big, AbortOnDrop, StdinWriter,
};

/// How long a client has to send its program.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Close code for a client's protocol mistake (RFC 6455: policy violation).
const CLIENT_ERROR: u16 = 1008;
/// Close code for a message larger than the session takes (RFC 6455).
const MESSAGE_TOO_BIG: u16 = 1009;

/// Runs one program interactively over a WebSocket.
#[utoipa::path(
    get, path = "/v1/executions/connect", tag = "executions", operation_id = "connect_execution",
    responses(
        (status = 101, description = "A WebSocket session: the client's first message is the program (`POST /v1/executions`'s body, without `tests`); then `{\"type\": \"stdin\", \"data\"?, \"eof\"?}` and `{\"type\": \"signal\", \"signal\": \"SIGINT\"}` from the client; `{\"type\": \"stdout\" | \"stderr\", \"data\"}`, `{\"type\": \"usage\", ...}`, then one `{\"type\": \"result\", \"result\"}` or `{\"type\": \"error\", \"error\", \"kind\"}` from the server (docs/server.md)"),
        (status = 400, description = "Not a WebSocket handshake"),
        (status = 401, description = "Missing or invalid token"),
        (status = 405, description = "Not GET"),
        (status = 426, description = "The connection cannot be upgraded"),
        (status = 429, description = "The caller holds as many WebSockets and event streams as it may (its execution is charged to its rate when admitted: a refusal is an `error` message)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn connect(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A handshake refused answers `{error, kind}` as every other error.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(e) => return axum::response::IntoResponse::into_response(ApiError::from(e)),
    };
    let hold = match state.hold_websocket(&caller) {
        Ok(permit) => permit,
        Err(e) => return axum::response::IntoResponse::into_response(ApiError::from(e)),
    };
    sized(upgrade, &state).on_upgrade(move |socket| async move {
        session(socket, state, caller, Target::Execution).await;
        drop(hold);
    })
}

/// The WebSocket's sizes: a message at most what a request's body may be (`[server]
/// max_body`), and buffers of 16 KiB (tungstenite's default read buffer of 128 KiB a socket
/// made idle sockets cost gigabytes).
pub(crate) fn sized(upgrade: WebSocketUpgrade, state: &AppState) -> WebSocketUpgrade {
    let most = state.options().max_body;
    upgrade
        .max_message_size(most)
        .max_frame_size(most)
        .read_buffer_size(16 << 10)
        .write_buffer_size(16 << 10)
}

/// Runs one call of a session interactively over a WebSocket: the first message is `POST
/// /v1/sessions/{id}/exec`'s body (a command or a program), then as for
/// `/v1/executions/connect`. A client that leaves ends the call's program, not the session.
#[utoipa::path(
    get, path = "/v1/sessions/{id}/connect", tag = "sessions", operation_id = "connect_session",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 101, description = "A WebSocket session as `/v1/executions/connect`'s, whose first message is `POST /v1/sessions/{id}/exec`'s body: `{\"command\": ...}` or a program (docs/sessions.md)"),
        (status = 400, description = "Not a WebSocket handshake, or a malformed path"),
        (status = 401, description = "Missing or invalid token"),
        (status = 405, description = "Not GET"),
        (status = 426, description = "The connection cannot be upgraded"),
        (status = 429, description = "The caller holds as many WebSockets and event streams as it may (its execution is charged to its rate when admitted: a refusal is an `error` message)"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn connect_session(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
    id: Result<Path<String>, PathRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade?;
    let Path(id) = id?;
    let hold = state.hold_websocket(&caller)?;
    Ok(sized(upgrade, &state).on_upgrade(move |socket| async move {
        session(socket, state, caller, Target::Session(id)).await;
        drop(hold);
    }))
}

/// Where the program of a session runs.
enum Target {
    /// A one-shot execution.
    Execution,
    /// A call in this session.
    Session(String),
}

/// What the first message asks, parsed.
enum Work {
    Execution(ExecutionRequest),
    Call(String, SessionCall),
}

impl Work {
    /// The request whose stdin, output and cancellation the session provides.
    fn request(&mut self) -> &mut ExecutionRequest {
        match self {
            Work::Execution(request)
            | Work::Call(_, SessionCall::Command { request, .. })
            | Work::Call(_, SessionCall::Program(request)) => request,
        }
    }
}

/// What the running job reports to the session.
enum Event {
    Output(Stream, Vec<u8>),
    Usage(UsageSample),
    /// The compile stage, as the run starts, when a compiler ran.
    Compiled(Value),
    /// The last message: the result, or why there is none.
    Done(Value),
}

async fn session(mut socket: WebSocket, state: AppState, caller: Caller, target: Target) {
    let most = state.options().max_body;
    // A Ping or Pong (a client library's keep-alive may come first) is the WebSocket's own,
    // not a message: passed over, the program still due within the timeout.
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    let first = loop {
        let received = tokio::select! {
            received = tokio::time::timeout_at(deadline, socket.recv()) => received,
            // Shutdown does not wait for a program that has not come yet.
            () = state.stopping() => {
                let error = ApiError::from(crate::state::ExecError::ShuttingDown);
                let _ = send(&mut socket, error_message(&error)).await;
                return close(socket, 1001, "the server is shutting down").await;
            }
        };
        match received {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(message))) => break message,
            Ok(Some(Err(e))) if too_big(&e) => return refuse_too_big(socket, most).await,
            Ok(_) => return,
            Err(_) => {
                let why = ApiError::unprocessable(format!(
                    "nothing to run within {} s: send the program (or the call) first",
                    REQUEST_TIMEOUT.as_secs()
                ));
                return refuse(socket, &why).await;
            }
        }
    };
    let parsed = match target {
        Target::Execution => program(&state, &first).map(Work::Execution),
        Target::Session(id) => call(&state, &first).map(|call| Work::Call(id, call)),
    };
    let mut work = match parsed {
        Ok(work) => work,
        Err(why) => return refuse(socket, &why).await,
    };
    let (program_stdin, mut stdin) = match StdinWriter::open() {
        Ok(pipe) => pipe,
        Err(e) => {
            let why = json!({"type": "error", "error": format!("creating the program's stdin: {e}"), "kind": "internal"});
            let _ = send(&mut socket, why).await;
            return close(socket, 1011, "internal error").await;
        }
    };
    let (events, mut received) = outbox::channel::<Event>();
    let signals = Cancellation::new();
    {
        let request = work.request();
        request.stdin = program_stdin;
        request.interactive = Some(Interactive {
            output: Box::new(Sink(events.clone())),
            on_denial: None,
            on_run: Some(compiled(events.clone())),
            on_prepared: None,
        });
        request.cancel = Some(signals.clone());
    }
    let call = matches!(work, Work::Call(..));
    let job = match work {
        Work::Execution(request) => {
            let admitted = match state.admit(&caller) {
                Ok(admitted) => admitted,
                Err(e) => {
                    let error = ApiError::from(e);
                    let _ = send(&mut socket, error_message(&error)).await;
                    return close(socket, 1013, "try again later").await;
                }
            };
            tokio::spawn(async move {
                let finished = state.run_admitted(admitted, request, caller, || {}).await;
                let _ = events.send(Event::Done(last_message(finished.map_err(ApiError::from))));
            })
        }
        // A session's call is admitted as `POST /v1/sessions/{id}/exec` admits it; the client's
        // leaving ends it (`CallLeft`).
        Work::Call(id, call) => tokio::spawn(async move {
            let finished = match state.session_call(id, call, caller).await {
                Ok(Ok(execution)) => Ok(execution),
                Ok(Err(e)) => Err(super::sessions::session_error(e)),
                Err(e) => Err(ApiError::from(e)),
            };
            let _ = events.send(Event::Done(last_message(finished)));
        }),
    };
    // Dropping the job's future (the session ended) cancels the execution.
    let job = AbortOnDrop(job);
    // A session's call runs in a blocking thread that the abort does not reach: the client's
    // leaving ends it here.
    let mut left = CallLeft(call.then(|| signals.clone()));
    // The output as text, cut at character boundaries.
    let mut text = OutputText::default();
    let output = |stream: Stream, chunk: Chunk| {
        let name = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let mut message = chunk.fields();
        message.insert("type".into(), json!(name));
        Value::Object(message)
    };
    loop {
        tokio::select! {
            event = received.recv() => {
                let Some(event) = event else { return };
                let (messages, last) = match event {
                    // In messages of at most 64 KiB of output each, however much waited.
                    Event::Output(stream, bytes) => {
                        for chunk in text.pieces(stream, &bytes) {
                            if send(&mut socket, output(stream, chunk)).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Event::Usage(sample) => {
                        let mut reading = serde_json::to_value(sample).unwrap_or_default();
                        if let Value::Object(fields) = &mut reading {
                            fields.insert("type".into(), json!("usage"));
                        }
                        (vec![reading], false)
                    }
                    Event::Compiled(compile) => {
                        (vec![json!({"type": "compile", "compile": compile})], false)
                    }
                    // What the output ended inside of, then the result.
                    Event::Done(last) => {
                        let mut messages: Vec<Value> = text
                            .finish()
                            .into_iter()
                            .map(|(stream, chunk)| output(stream, chunk))
                            .collect();
                        messages.push(last);
                        (messages, true)
                    }
                };
                for message in messages {
                    if send(&mut socket, message).await.is_err() {
                        return;
                    }
                }
                if last {
                    left.disarm();
                    return close(socket, 1000, "done").await;
                }
            }
            message = socket.recv() => {
                let message = match message {
                    Some(Err(e)) if too_big(&e) => {
                        drop(job);
                        return refuse_too_big(socket, most).await;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(message)) => message,
                };
                if let Err(why) = client_message(&message, &mut stdin, &signals) {
                    return refuse(socket, &ApiError::unprocessable(why)).await;
                }
            }
        }
    }
}

/// The engine's request from the session's first message.
fn program(state: &AppState, message: &Message) -> Result<ExecutionRequest, ApiError> {
    let Some(value) = parse(message) else {
        return Err(ApiError::bad_request(
            "the first message must be the program as JSON: POST /v1/executions's body",
        ));
    };
    if !value.is_object() {
        return Err(ApiError::unprocessable("the program must be a JSON object"));
    }
    if let Some(e) = crate::json_body::duplicate_key(text_of(message)) {
        return Err(ApiError::unprocessable(format!("the program: {e}")));
    }
    no_stdin(&value)?;
    let body: ExecutionBody = serde_json::from_value(value)
        .map_err(|e| ApiError::unprocessable(format!("the program: {e}")))?;
    let request = body.into_request(state.options())?;
    check_single_run(
        &request,
        state.engine().catalog(),
        "an interactive execution",
    )?;
    Ok(request)
}

/// Handles one message of the client while the program runs: stdin, its end, or a signal.
fn client_message(
    message: &Message,
    stdin: &mut StdinWriter,
    signals: &Cancellation,
) -> Result<(), String> {
    let value = parse(message).ok_or("a message must be JSON")?;
    match value["type"].as_str() {
        Some("stdin") => {
            match (&value["data"], &value["data_base64"]) {
                (Value::String(_), Value::String(_)) => {
                    return Err("stdin: give `data` or `data_base64`, not both".into())
                }
                (Value::String(data), Value::Null) => {
                    stdin.write(data.as_bytes()).map_err(|e| e.to_string())?
                }
                (Value::Null, Value::String(encoded)) => {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .map_err(|e| format!("stdin: `data_base64` is not valid base64: {e}"))?;
                    stdin.write(&bytes).map_err(|e| e.to_string())?
                }
                (Value::Null, Value::Null) => {}
                _ => return Err("stdin: `data` and `data_base64` must be strings".into()),
            }
            match &value["eof"] {
                Value::Bool(true) => stdin.close(),
                Value::Bool(false) | Value::Null => {}
                _ => return Err("stdin: `eof` must be a boolean".into()),
            }
            Ok(())
        }
        Some("signal") => {
            let name = value["signal"].as_str().unwrap_or_default();
            match Signal::from_name(name).filter(|s| (1..=31).contains(&s.0)) {
                Some(signal) if name.starts_with("SIG") => {
                    signals.signal(signal);
                    Ok(())
                }
                _ => Err(format!(
                    "signal: {name:?} is not a signal's name (SIGINT, SIGTERM, SIGKILL, ...)"
                )),
            }
        }
        _ => Err("a message's `type` must be `stdin` or `signal`".into()),
    }
}

/// The session's last message: the result, or why there is none.
fn last_message(finished: Result<warden_engine::Execution, ApiError>) -> Value {
    match finished {
        Ok(execution) => json!({"type": "result", "result": execution.result}),
        Err(e) => error_message(&e),
    }
}

/// A session's call from the first message: `POST /v1/sessions/{id}/exec`'s body.
fn call(state: &AppState, message: &Message) -> Result<SessionCall, ApiError> {
    let Some(value) = parse(message).filter(Value::is_object) else {
        return Err(ApiError::bad_request(
            "the first message must be the call as a JSON object: POST /v1/sessions/{id}/exec's body",
        ));
    };
    if let Some(e) = crate::json_body::duplicate_key(text_of(message)) {
        return Err(ApiError::unprocessable(format!("the call: {e}")));
    }
    no_stdin(&value)?;
    super::sessions::call_of(value, state)
}

/// Refuses a first message that gives the program's input: the program's stdin is the
/// session's `stdin` messages, and input given here would be lost without a word.
fn no_stdin(first: &Value) -> Result<(), ApiError> {
    match ["stdin", "stdin_base64"]
        .into_iter()
        .find(|key| first.get(key).is_some())
    {
        Some(key) => Err(ApiError::unprocessable(format!(
            "{key}: an interactive run's input is sent as `stdin` messages after the first \
             one, not in it"
        ))),
        None => Ok(()),
    }
}

/// An `error` message as the synchronous call's error body.
fn error_message(error: &ApiError) -> Value {
    let mut body = error.body();
    if let Value::Object(fields) = &mut body {
        fields.insert("type".into(), json!("error"));
    }
    body
}

/// Answers a client's mistake (or a refusal before the program runs) and closes.
async fn refuse(mut socket: WebSocket, why: &ApiError) {
    let _ = send(&mut socket, error_message(why)).await;
    close(socket, CLIENT_ERROR, "refused").await;
}

/// Answers a message larger than `[server] max_body` (`most` bytes) and closes (1009, RFC
/// 6455's "message too big"); the program, if it runs, ends with the session.
async fn refuse_too_big(socket: WebSocket, most: usize) {
    let why = ApiError::with_status(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!("a message is larger than the server takes ({most} bytes, [server] max_body)"),
    );
    close_too_big(
        socket,
        error_message(&why),
        MESSAGE_TOO_BIG,
        "message too big",
    )
    .await;
}

impl outbox::Event for Event {
    fn output(&mut self) -> Option<(Stream, &mut Vec<u8>)> {
        match self {
            Event::Output(stream, bytes) => Some((*stream, bytes)),
            Event::Usage(_) | Event::Compiled(_) | Event::Done(_) => None,
        }
    }
}

/// The run's output and readings, as events of the session (merged while they wait for a
/// slow client: `outbox.rs`).
/// The hook that queues the compile stage as the run starts, when a compiler ran (a cached
/// compile ran nothing and has nothing to say).
fn compiled(events: outbox::Sender<Event>) -> warden_engine::RunHook {
    Box::new(move |compile| {
        if let Some(compile) = compile.filter(|c| !c.cached) {
            let _ = events.send(Event::Compiled(
                serde_json::to_value(compile).unwrap_or_default(),
            ));
        }
    })
}

/// Ends a session's call whose client left before its result: its program is killed now (a
/// queued call never starts) and the call is recorded as cancelled, as a one-shot execution's
/// is (docs/events.md#cancelled-executions). The session lives on: only the call's job ends
/// (`Cancellation::cancel` does not reach a session's sandbox). Bug hunt: the call ran until
/// its next output found nobody, and was recorded as killed by SIGKILL; one still queued
/// started after its client had left.
struct CallLeft(Option<Cancellation>);

impl CallLeft {
    /// The call's result reached its client.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CallLeft {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            // The kill before the cancel, which drops the signals asked after it.
            call.signal(Signal::KILL);
            call.cancel();
        }
    }
}

struct Sink(outbox::Sender<Event>);

impl OutputSink for Sink {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        // The session has ended when nobody takes the chunk: end the program.
        self.0.send(Event::Output(stream, bytes.to_vec())).is_ok()
    }

    fn sample(&mut self, sample: &UsageSample) {
        let _ = self.0.send(Event::Usage(*sample));
    }
}
