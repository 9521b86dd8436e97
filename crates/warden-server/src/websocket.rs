//! What the interactive WebSocket sessions share (Piston's `/api/v2/connect`, the own
//! `/v1/executions/connect`): the running program's stdin, a pipe whose read end the program
//! gets, written by a thread of its own, so that a program that does not read cannot block the
//! session; the job's task, aborted with the session; and the JSON messages.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::Value;
use warden_sandbox::Stdin;

/// The most bytes a session's client may have sent that the program has not read yet: beyond,
/// the session ends (a client that writes faster than the program reads must not fill the
/// server's memory).
pub(crate) const MAX_UNREAD: usize = 16 << 20;
/// What one queued message costs besides its bytes (its allocation and its place in the
/// channel), counted against [`MAX_UNREAD`]: without it, a client sending millions of empty
/// or one-byte messages held hundreds of MiB while the count stayed near zero.
const MESSAGE_COST: usize = 64;

/// The writing side of the program's stdin.
pub(crate) struct StdinWriter {
    chunks: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    /// Bytes queued and not yet written into the pipe.
    queued: Arc<AtomicUsize>,
}

/// More than [`MAX_UNREAD`] bytes wait for the program.
#[derive(Debug)]
pub(crate) struct Unread;

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stdin: more than {} MiB sent and not read by the program (each message counts \
             {MESSAGE_COST} bytes more than its data)",
            MAX_UNREAD >> 20
        )
    }
}

impl StdinWriter {
    /// A pipe for the program's stdin (`Stdin::Pipe`, its read end) and its writer.
    pub(crate) fn open() -> std::io::Result<(Stdin, Self)> {
        let (read, write) = std::io::pipe()?;
        let (chunks, received) = std::sync::mpsc::channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let written = Arc::clone(&queued);
        std::thread::spawn(move || {
            let mut pipe = write;
            for chunk in received {
                if pipe.write_all(&chunk).is_err() {
                    break;
                }
                written.fetch_sub(chunk.len() + MESSAGE_COST, Ordering::Relaxed);
            }
        });
        let writer = Self {
            chunks: Some(chunks),
            queued,
        };
        Ok((Stdin::Pipe(OwnedFd::from(read)), writer))
    }

    /// Queues `bytes` for the program (dropped once it closed its stdin, or after `close`;
    /// nothing is queued for none); refused when more than [`MAX_UNREAD`] would wait, each
    /// message counting [`MESSAGE_COST`] bytes more than its own.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), Unread> {
        let Some(chunks) = &self.chunks else {
            return Ok(());
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let cost = bytes.len() + MESSAGE_COST;
        if self.queued.load(Ordering::Relaxed) + cost > MAX_UNREAD {
            return Err(Unread);
        }
        self.queued.fetch_add(cost, Ordering::Relaxed);
        if chunks.send(bytes.to_vec()).is_err() {
            // The program closed its stdin: nothing waits.
            self.queued.fetch_sub(cost, Ordering::Relaxed);
        }
        Ok(())
    }

    /// End of file for the program, once what was written has gone through.
    pub(crate) fn close(&mut self) {
        self.chunks = None;
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

/// A data message's bytes (none for a control frame).
pub(crate) fn text_of(message: &Message) -> &[u8] {
    match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Sends `value` as a text message.
pub(crate) async fn send(socket: &mut WebSocket, value: Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(value.to_string().into())).await
}

/// Whether a receive failed because the client's message is larger than the session takes
/// (its `max_message_size` or `max_frame_size`), rather than because the connection broke.
pub(crate) fn too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        error
            .source()
            .and_then(|e| e.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Ends a session whose client sent a message larger than it takes: `why` (the API's error
/// message), then a close frame with `code` and `reason`. Unlike [`close`], reads nothing
/// more: the rest of the message is still on its way, and reading it would hold it in
/// memory (the WebSocket reads a frame whole once its header was read). The connection is
/// kept, unread, for [`CLOSE_WAIT`]: dropped at once, with the message's rest unread, it
/// would be reset, and the client's reply to the close would fail, which makes a client
/// (Python's `websockets`) drop the `error` it had received.
pub(crate) async fn close_too_big(
    mut socket: WebSocket,
    why: Value,
    code: u16,
    reason: &'static str,
) {
    if send(&mut socket, why).await.is_err() {
        return;
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        tokio::time::sleep(CLOSE_WAIT).await;
    }
}

/// How long a closed session waits for the client's close frame.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Closes the session with `code` and `reason`, then reads (and drops) what the client still
/// sends until its close frame, at most [`CLOSE_WAIT`]: dropping the connection while the
/// client is sending would reset it, and the client could lose the messages sent before the
/// close (an `error` saying why).
pub(crate) async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_does_not_read_holds_at_most_max_unread() {
        let (_program_stdin, mut writer) = StdinWriter::open().expect("a pipe");
        let chunk = vec![b'x'; 1 << 20];
        // The pipe takes its buffer's worth; the rest waits in the queue, up to the cap.
        let mut accepted = 0usize;
        while writer.write(&chunk).is_ok() {
            accepted += chunk.len();
            assert!(accepted <= MAX_UNREAD + (1 << 20), "never refused");
        }
        assert!(
            accepted >= MAX_UNREAD - (1 << 20),
            "refused early: {accepted}"
        );
        assert!(writer.write(&chunk).is_err());
        writer.close();
        assert!(
            writer.write(b"after the end").is_ok(),
            "dropped once closed"
        );
    }

    /// Bug hunt: empty messages were queued and never counted, and a one-byte message counted
    /// one byte: a client sending millions of them grew the server by about 80 MiB a second
    /// while the count stayed near zero.
    #[test]
    fn tiny_and_empty_messages_count_against_the_cap() {
        let (_program_stdin, mut writer) = StdinWriter::open().expect("a pipe");
        for _ in 0..100_000 {
            writer.write(b"").expect("nothing to queue");
        }
        assert_eq!(writer.queued.load(Ordering::Relaxed), 0);
        // The pipe takes 64 KiB of them; the rest wait, each counted with its cost.
        let bound = (64 << 10) + MAX_UNREAD / (1 + MESSAGE_COST) + 1;
        let refused = (0..bound + 1).position(|_| writer.write(b"a").is_err());
        assert!(refused.is_some(), "never refused");
    }
}
