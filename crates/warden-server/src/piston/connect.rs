//! `GET /api/v2/connect`: Piston's interactive WebSocket. The client sends `init` (the execute
//! fields) within a second, then `data` messages for stdin and maybe a `signal`; the server
//! answers `runtime`, then per stage `stage`, `data` and `exit`, and closes with 4999.
//!
//! warden cannot stream into a running program yet: it collects the stdin messages until the
//! client is idle for [`STDIN_IDLE`] or sends end-of-transmission (`\u0004`, Ctrl-D), then runs
//! the program to completion and sends its output. A `signal` before the run ends the job
//! without running it; one sent during the run is not read until it is over
//! (docs/compat.md).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use warden_core::Signal;
use warden_sandbox::Stdin;

use super::response::{stages, verdict, StageView};
use super::runtimes::resolve;
use super::{caller, request};
use crate::state::{AppState, Caller};
use crate::toolchains::Toolchains;

/// How long a client has to send `init` (Piston's own timeout).
const INIT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long without a stdin message before the program is run with what arrived.
pub(crate) const STDIN_IDLE: Duration = Duration::from_millis(500);
/// End of transmission: a client's way to say stdin is complete.
const EOT: char = '\u{4}';

/// Upgrades the connection and runs one session on it.
pub(crate) async fn connect(
    State(state): State<AppState>,
    Extension(toolchains): Extension<Toolchains>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    match caller(&state, &headers) {
        Ok(caller) => upgrade.on_upgrade(move |socket| session(socket, state, toolchains, caller)),
        Err(e) => e.into_response(),
    }
}

async fn session(mut socket: WebSocket, state: AppState, toolchains: Toolchains, caller: Caller) {
    let init = match tokio::time::timeout(INIT_TIMEOUT, socket.recv()).await {
        Err(_) => return close(socket, 4001, "Initialization Timeout").await,
        Ok(Some(Ok(message))) => parse(&message),
        Ok(_) => return,
    };
    let Some(init) = init.filter(|v| v["type"] == "init") else {
        return close(socket, 4003, "Not yet Initialized").await;
    };
    let prepared = match request::from_json(&init) {
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
    let stdin = match collect_stdin(&mut socket).await {
        Collected::Stdin(bytes) => bytes,
        Collected::Signal(signal) => {
            let exit = json!({"type": "exit", "stage": "run", "code": null, "signal": signal});
            let _ = send(&mut socket, exit).await;
            return close(socket, 4999, "Job Completed").await;
        }
        Collected::Closed(Some((code, reason))) => return close(socket, code, reason).await,
        Collected::Closed(None) => return,
    };
    let mut execution = request.into_execution(&runtime.id);
    execution.stdin = Stdin::Bytes(stdin);
    match state.execute(execution, caller).await {
        Ok(done) => {
            let (compile, run) = stages(&done.result);
            for (name, view) in [("compile", compile), ("run", run)] {
                if let Some(view) = view {
                    if report(&mut socket, name, &view).await.is_err() {
                        return;
                    }
                }
            }
            close(socket, 4999, "Job Completed").await;
        }
        Err(e) => fail(socket, &super::PistonError::from(e).message).await,
    }
}

/// What the client sent before the run.
enum Collected {
    /// Its stdin, complete.
    Stdin(Vec<u8>),
    /// A valid signal: the job ends unrun.
    Signal(String),
    /// The session ends: with this close frame, or the client is gone.
    Closed(Option<(u16, &'static str)>),
}

async fn collect_stdin(socket: &mut WebSocket) -> Collected {
    let mut stdin = Vec::new();
    loop {
        let message = match tokio::time::timeout(STDIN_IDLE, socket.recv()).await {
            Err(_) => return Collected::Stdin(stdin),
            Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => {
                return Collected::Closed(None)
            }
            Ok(Some(Ok(message))) => message,
        };
        let Some(value) = parse(&message) else {
            continue;
        };
        match value["type"].as_str() {
            Some("init") => return Collected::Closed(Some((4000, "Already Initialized"))),
            Some("data") if value["stream"] == "stdin" => {
                let data = value["data"].as_str().unwrap_or_default();
                if let Some((before, _)) = data.split_once(EOT) {
                    stdin.extend_from_slice(before.as_bytes());
                    return Collected::Stdin(stdin);
                }
                stdin.extend_from_slice(data.as_bytes());
            }
            Some("data") => return Collected::Closed(Some((4004, "Can only write to stdin"))),
            Some("signal") => {
                let name = value["signal"].as_str().unwrap_or_default();
                return match Signal::from_name(name).filter(|s| (1..=31).contains(&s.0)) {
                    Some(signal) if name.starts_with("SIG") => Collected::Signal(signal.name()),
                    _ => Collected::Closed(Some((4005, "Invalid Signal"))),
                };
            }
            _ => {}
        }
    }
}

/// One stage's `stage`, `data` and `exit` messages.
async fn report(
    socket: &mut WebSocket,
    name: &str,
    view: &StageView<'_>,
) -> Result<(), axum::Error> {
    send(socket, json!({"type": "stage", "stage": name})).await?;
    for (stream, bytes) in [("stdout", view.stdout), ("stderr", view.stderr)] {
        if !bytes.is_empty() {
            let data = String::from_utf8_lossy(bytes);
            send(
                socket,
                json!({"type": "data", "stream": stream, "data": data}),
            )
            .await?;
        }
    }
    let v = verdict(view.outcome);
    let exit = json!({
        "type": "exit", "stage": name, "code": v.code, "signal": v.signal,
        "warden": { "outcome": view.outcome },
    });
    send(socket, exit).await
}

fn parse(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        Message::Binary(bytes) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

async fn send(socket: &mut WebSocket, value: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(value.to_string().into())).await
}

/// Piston's way to report an error: an `error` message, then close 4002.
async fn fail(mut socket: WebSocket, message: &str) {
    let _ = send(&mut socket, json!({"type": "error", "message": message})).await;
    close(socket, 4002, "Notified Error").await;
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
