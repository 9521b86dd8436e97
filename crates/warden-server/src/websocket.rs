//! What the interactive WebSocket sessions share (Piston's `/api/v2/connect`, the own
//! `/v1/executions/connect`): the running program's stdin, a pipe whose read end the program
//! gets, written by a thread of its own, so that a program that does not read cannot block the
//! session; the job's task, aborted with the session; and the JSON messages.

use std::io::Write as _;
use std::os::fd::OwnedFd;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::Value;
use warden_sandbox::Stdin;

/// The writing side of the program's stdin.
pub(crate) struct StdinWriter(Option<std::sync::mpsc::Sender<Vec<u8>>>);

impl StdinWriter {
    /// A pipe for the program's stdin (`Stdin::Pipe`, its read end) and its writer.
    pub(crate) fn open() -> std::io::Result<(Stdin, Self)> {
        let (read, write) = std::io::pipe()?;
        let (chunks, received) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut pipe = write;
            for chunk in received {
                if pipe.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        Ok((Stdin::Pipe(OwnedFd::from(read)), Self(Some(chunks))))
    }

    /// Queues `bytes` for the program (dropped once it closed its stdin, or after `close`).
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        if let Some(chunks) = &self.0 {
            let _ = chunks.send(bytes.to_vec());
        }
    }

    /// End of file for the program, once what was written has gone through.
    pub(crate) fn close(&mut self) {
        self.0 = None;
    }
}

/// Aborts the job's task when the session ends, which cancels its execution.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A message's JSON, text or binary; `None` when it is not JSON (or a control frame).
pub(crate) fn parse(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        Message::Binary(bytes) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

/// Sends `value` as a text message.
pub(crate) async fn send(socket: &mut WebSocket, value: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(value.to_string().into())).await
}

/// Closes the session with `code` and `reason`.
pub(crate) async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
