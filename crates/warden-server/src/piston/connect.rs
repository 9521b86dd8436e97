//! `GET /api/v2/connect`: Piston's interactive WebSocket. The client sends `init` (the execute
//! fields) within a second, then `data` messages for stdin and maybe a `signal`; the server
//! answers `runtime`, then per stage `stage`, `data` and `exit`, and closes with 4999.
//!
//! The program starts at once, its stdin a pipe: each `data` message is written to it while it
//! runs, and end of transmission (`\u0004`, Ctrl-D) closes it. Its output is sent as `data`
//! messages as it is produced (the run stage's, within the output limit; a compile stage is
//! reported whole before the run starts). A `signal` the sandbox's init forwards (SIGTERM,
//! SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) is delivered to the program, which may handle it,
//! and its end is reported as any end (one sent before the program started waits for it:
//! `warden_engine::Cancellation::signal`); any other valid signal ends the job at once: it is
//! killed, and the stage it was in (the run, or the compile stage of a language that compiles
//! before its run started) gets its `stage` message if it had none yet, then an `exit` with
//! the signal asked for (docs/compat.md). A message larger than `[server] max_body`, or one
//! that is not JSON (before `init` too), is answered with an `error` and 4002; a message of an
//! unknown type is passed over. A client that goes away ends the job.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

use warden_core::{Signal, Stream};
use warden_engine::{Interactive, StageResult};

use super::response::{stages, verdict, StageView};
use super::runtimes::resolve;
use super::{caller, request};
use crate::outbox;
use crate::state::{AppState, Caller};
use crate::text::OutputText;
use crate::toolchains::Toolchains;
use crate::websocket::{close, close_too_big, parse, send, too_big, AbortOnDrop, StdinWriter};

/// How long a client has to send `init` (Piston's own timeout).
const INIT_TIMEOUT: Duration = Duration::from_secs(1);
/// End of transmission: a client's way to say stdin is complete.
const EOT: char = '\u{4}';

/// Upgrades the connection and runs one session on it.
pub(crate) async fn connect(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let caller = match caller(&state, &headers) {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let hold = match state.hold_websocket(&caller) {
        Ok(permit) => permit,
        Err(e) => return crate::piston::PistonError::from(e).into_response(),
    };
    crate::routes::connect::sized(upgrade, &state).on_upgrade(move |socket| async move {
        session(socket, state, toolchains, caller).await;
        drop(hold);
    })
}

async fn session(mut socket: WebSocket, state: AppState, toolchains: Toolchains, caller: Caller) {
    let most = state.options().max_body;
    let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
    // As Piston: a message that is not JSON is an `error` and 4002; `data` or `signal` before
    // `init` is 4003; a message of another type is passed over, and `init` must still come
    // within the second.
    let init = loop {
        let received = tokio::select! {
            received = tokio::time::timeout_at(deadline, socket.recv()) => received,
            // Shutdown does not wait for an `init` that has not come yet.
            () = state.stopping() => return fail(socket, "the server is shutting down").await,
        };
        let message = match received {
            Err(_) => return close(socket, 4001, "Initialization Timeout").await,
            Ok(Some(Err(e))) if too_big(&e) => return fail_too_big(socket, most).await,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return,
            Ok(Some(Ok(message))) => message,
        };
        let Some(value) = parse(&message) else {
            return fail(socket, &not_json(&message)).await;
        };
        match value["type"].as_str() {
            Some("init") => break value,
            Some("data" | "signal") => {
                return close(socket, 4003, "Not yet Initialized").await;
            }
            _ => continue,
        }
    };
    let prepared = match request::from_json(&init, state.options()) {
        Ok(request) => resolve(&state, &toolchains, &request.language, &request.version)
            .await
            .map(|runtime| (request, runtime)),
        Err(e) => Err(e),
    };
    let (request, runtime) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => return fail(socket, &e.message).await,
    };
    let hello =
        json!({"type": "runtime", "language": runtime.language, "version": runtime.version});
    if send(&mut socket, hello).await.is_err() {
        return;
    }
    // Whether a stage runs before the program's: a signal that ends the job before the run
    // started ends that one.
    let compiles = state
        .engine()
        .catalog()
        .get(&runtime.id)
        .is_some_and(|language| language.compile.is_some());
    let mut execution = request.into_execution(&runtime.id);
    let (program_stdin, mut stdin) = match StdinWriter::open() {
        Ok(pipe) => pipe,
        Err(e) => return fail(socket, &format!("creating the program's stdin: {e}")).await,
    };
    execution.stdin = program_stdin;
    let (events, mut received) = outbox::channel::<Event>();
    let output = events.clone();
    let started = events.clone();
    execution.interactive = Some(Interactive {
        output: Box::new(move |stream: Stream, bytes: &[u8]| {
            output.send(Event::Output(stream, bytes.to_vec())).is_ok()
        }),
        on_denial: None,
        on_prepared: None,
        on_run: Some(Box::new(move |compile: Option<&StageResult>| {
            let _ = started.send(Event::Run(compile.cloned().map(Box::new)));
        })),
    });
    // Also the way to the program for a `signal` message.
    let signals = warden_engine::Cancellation::new();
    execution.cancel = Some(signals.clone());
    let admitted = match state.admit(&caller) {
        Ok(admitted) => admitted,
        Err(e) => return fail(socket, &super::PistonError::from(e).message).await,
    };
    let job = tokio::spawn(async move {
        let finished = state.run_admitted(admitted, execution, caller, || {}).await;
        let _ = events.send(Event::Done(Box::new(finished)));
    });
    // Dropping the job's future cancels it (its sandboxes are killed).
    let job = AbortOnDrop(job);
    let mut run_started = false;
    // The run's output as text, cut at character boundaries.
    let mut text = OutputText::default();
    loop {
        tokio::select! {
            event = received.recv() => {
                let Some(event) = event else { return };
                match relay(&mut socket, event, &mut run_started, &mut text).await {
                    Ok(None) => {}
                    Ok(Some(ending)) => return end(socket, ending).await,
                    Err(_) => return,
                }
            }
            message = socket.recv() => {
                match client_message(message, &mut stdin) {
                    Client::Continue => {}
                    Client::Signal(signal) if warden_engine::Cancellation::delivers(signal) => {
                        signals.signal(signal);
                    }
                    Client::Signal(signal) => {
                        drop(job);
                        // What the job reported before it was killed comes first: a stage
                        // that ended meanwhile, or its whole end.
                        while let Some(event) = received.try_recv() {
                            match relay(&mut socket, event, &mut run_started, &mut text).await {
                                Ok(None) => {}
                                Ok(Some(ending)) => return end(socket, ending).await,
                                Err(_) => return,
                            }
                        }
                        let stage = if run_started || !compiles { "run" } else { "compile" };
                        return killed(socket, stage, signal, run_started, &mut text).await;
                    }
                    Client::Close(Some((code, reason))) => return close(socket, code, reason).await,
                    Client::Fail(message) => return fail(socket, &message).await,
                    Client::TooBig => {
                        drop(job);
                        return fail_too_big(socket, most).await;
                    }
                    Client::Close(None) => return,
                }
            }
        }
    }
}

/// Ends the session as `ending` says.
async fn end(socket: WebSocket, ending: Ending) {
    match ending {
        Ending::Close(code, reason) => close(socket, code, reason).await,
        Ending::Fail(message) => fail(socket, &message).await,
    }
}

/// Ends the session of a job killed for a `signal` in `stage`, as Piston reports a stage:
/// its `stage` message, unless the run's was sent already (then what its output ended inside
/// of), and its `exit` with the signal; then close 4999.
async fn killed(
    mut socket: WebSocket,
    stage: &'static str,
    signal: Signal,
    run_started: bool,
    text: &mut OutputText,
) {
    let reported = if run_started {
        flush(&mut socket, text).await
    } else {
        send(&mut socket, json!({"type": "stage", "stage": stage})).await
    };
    if reported.is_err() {
        return;
    }
    // The job was cancelled where it was, as its history records it.
    let exit = json!({
        "type": "exit", "stage": stage, "code": null, "signal": signal.name(),
        "warden": { "outcome": warden_core::Outcome::Cancelled },
    });
    if send(&mut socket, exit).await.is_ok() {
        close(socket, 4999, "Job Completed").await;
    }
}

/// What the running job reports to the session.
enum Event {
    /// The run stage starts, after the compile stage (its result) if the language compiles.
    Run(Option<Box<StageResult>>),
    /// A chunk of the run stage's output.
    Output(Stream, Vec<u8>),
    /// The execution ended.
    Done(Box<Result<warden_engine::Execution, crate::state::ExecError>>),
}

impl outbox::Event for Event {
    fn output(&mut self) -> Option<(Stream, &mut Vec<u8>)> {
        match self {
            Event::Output(stream, bytes) => Some((*stream, bytes)),
            Event::Run(_) | Event::Done(_) => None,
        }
    }
}

/// How the session ends after an event that ends it.
enum Ending {
    Close(u16, &'static str),
    Fail(String),
}

/// Passes one event of the job to the client; how the session ends, if the event ends it.
async fn relay(
    socket: &mut WebSocket,
    event: Event,
    run_started: &mut bool,
    text: &mut OutputText,
) -> Result<Option<Ending>, axum::Error> {
    match event {
        Event::Run(compile) => {
            if let Some(stage) = &compile {
                report(socket, "compile", &view(stage)).await?;
            }
            send(socket, json!({"type": "stage", "stage": "run"})).await?;
            *run_started = true;
        }
        // In messages of at most 64 KiB of output each, however much waited.
        Event::Output(stream, bytes) => {
            for chunk in text.pieces(stream, &bytes) {
                send(socket, data_message(stream, chunk.text)).await?;
            }
        }
        Event::Done(finished) => {
            let done = match *finished {
                Ok(done) => done,
                Err(e) => return Ok(Some(Ending::Fail(super::PistonError::from(e).message))),
            };
            let (compile, run) = stages(&done.result);
            if *run_started {
                // The stages were reported as they happened: only what the output ended
                // inside of and the run's exit are left.
                flush(socket, text).await?;
                if let Some(run) = run {
                    send(socket, exit_message("run", &run)).await?;
                }
            } else {
                for (name, view) in [("compile", compile), ("run", run)] {
                    if let Some(view) = view {
                        report(socket, name, &view).await?;
                    }
                }
            }
            return Ok(Some(Ending::Close(4999, "Job Completed")));
        }
    }
    Ok(None)
}

/// A `data` message of the run's output.
fn data_message(stream: Stream, data: String) -> Value {
    let name = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    json!({"type": "data", "stream": name, "data": data})
}

/// Sends what the run's output ended inside of (a character never completed, as U+FFFD).
async fn flush(socket: &mut WebSocket, text: &mut OutputText) -> Result<(), axum::Error> {
    for (stream, chunk) in text.finish() {
        send(socket, data_message(stream, chunk.text)).await?;
    }
    Ok(())
}

fn view(stage: &StageResult) -> StageView<'_> {
    StageView {
        outcome: &stage.outcome,
        stdout: &stage.stdout,
        stderr: &stage.stderr,
        order: &stage.output_order,
        usage: &stage.usage,
    }
}

/// What a message of the client asks.
enum Client {
    Continue,
    /// A valid signal, for the program.
    Signal(Signal),
    /// The session ends: with this close frame, or the client is gone.
    Close(Option<(u16, &'static str)>),
    /// The session ends with Piston's `error` message (4002).
    Fail(String),
    /// The message is larger than the session takes: an `error` message, then 4002.
    TooBig,
}

/// Handles one message of the client: stdin is written to the program (end of transmission
/// closes it), a valid signal is the session's to send, a message that is not JSON ends the
/// session with an `error` (4002), anything else is refused or passed over as Piston does.
fn client_message(
    message: Option<Result<Message, axum::Error>>,
    stdin: &mut StdinWriter,
) -> Client {
    let message = match message {
        Some(Err(e)) if too_big(&e) => return Client::TooBig,
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Client::Close(None),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Client::Continue,
        Some(Ok(message)) => message,
    };
    let Some(value) = parse(&message) else {
        return Client::Fail(not_json(&message));
    };
    match value["type"].as_str() {
        Some("init") => Client::Close(Some((4000, "Already Initialized"))),
        Some("data") if value["stream"] == "stdin" => {
            // Piston writes `data` to the program's stdin, which throws for anything but a
            // string: its `error` message and 4002.
            let Some(data) = value["data"].as_str() else {
                return Client::Fail("data is required as a string".to_owned());
            };
            let (text, end) = match data.split_once(EOT) {
                Some((before, _)) => (before, true),
                None => (data, false),
            };
            if let Err(unread) = stdin.write(text.as_bytes()) {
                return Client::Fail(unread.to_string());
            }
            if end {
                stdin.close();
            }
            Client::Continue
        }
        Some("data") => Client::Close(Some((4004, "Can only write to stdin"))),
        Some("signal") => {
            let name = value["signal"].as_str().unwrap_or_default();
            match Signal::from_name(name).filter(|s| (1..=31).contains(&s.0)) {
                Some(signal) if name.starts_with("SIG") => Client::Signal(signal),
                _ => Client::Close(Some((4005, "Invalid Signal"))),
            }
        }
        _ => Client::Continue,
    }
}

/// The `error` message's text for a client message that is not JSON, as Piston's parser
/// names the fault.
fn not_json(message: &Message) -> String {
    let parsed = match message {
        Message::Text(text) => serde_json::from_str::<Value>(text.as_str()).err(),
        Message::Binary(bytes) => serde_json::from_slice::<Value>(bytes).err(),
        _ => None,
    };
    match parsed {
        Some(e) => format!("the message is not JSON: {e}"),
        None => "the message is not JSON".to_owned(),
    }
}

/// One stage's `stage`, `data` and `exit` messages.
async fn report(
    socket: &mut WebSocket,
    name: &str,
    view: &StageView<'_>,
) -> Result<(), axum::Error> {
    send(socket, json!({"type": "stage", "stage": name})).await?;
    for (stream, bytes) in [(Stream::Stdout, view.stdout), (Stream::Stderr, view.stderr)] {
        // The stage's output whole, in messages of at most 64 KiB of it, as it is streamed.
        let mut text = OutputText::default();
        for chunk in text.pieces(stream, bytes) {
            send(socket, data_message(stream, chunk.text)).await?;
        }
        for (_, chunk) in text.finish() {
            send(socket, data_message(stream, chunk.text)).await?;
        }
    }
    send(socket, exit_message(name, view)).await
}

/// A stage's `exit` message.
fn exit_message(name: &str, view: &StageView<'_>) -> Value {
    let v = verdict(view.outcome);
    json!({
        "type": "exit", "stage": name, "code": v.code, "signal": v.signal,
        "warden": { "outcome": view.outcome },
    })
}

/// A message larger than `[server] max_body` (`most` bytes): Piston's way to report an error,
/// without reading the rest of the message.
async fn fail_too_big(socket: WebSocket, most: usize) {
    let message = format!("message is larger than the server takes ({most} bytes)");
    let why = json!({"type": "error", "message": message});
    close_too_big(socket, why, 4002, "Notified Error").await;
}

/// Piston's way to report an error: an `error` message, then close 4002.
async fn fail(mut socket: WebSocket, message: &str) {
    let _ = send(&mut socket, json!({"type": "error", "message": message})).await;
    close(socket, 4002, "Notified Error").await;
}
