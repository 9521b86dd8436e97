//! One program run over a server's WebSocket (`GET /v1/executions/connect`, `GET
//! /v1/sessions/{id}/connect`; docs/server.md#interactive-executions): the program (or call) as
//! the first message, this process's standard input forwarded as it is read, the output
//! written as it comes, and the signals that would end this command (Ctrl-C, SIGTERM, SIGHUP,
//! SIGQUIT) sent to the program instead (`passed_on`: the third as SIGKILL). The client of
//! `warden session exec --interactive` and of `warden run --server` in a terminal.

use std::io::{Read, Write};
use std::os::fd::AsFd;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tungstenite::Message;

use nix::sys::signal::Signal;

use super::client::{base64_text, exact_output, Client};
use super::passed_on::PassedOn;

/// How the run over the WebSocket ended.
pub(crate) enum Ended {
    /// The result object (`POST /v1/executions`'s answer); its output was written as it came.
    Result(Value),
    /// The server's `error` message (`error`, `kind`): refused, or failed before a result.
    Error(Value),
}

/// Runs `first` (the program or call) over the WebSocket at `path`; forwards this process's
/// standard input when `forward_stdin` (else the program's input is empty).
pub(crate) fn run(
    client: &Client,
    path: &str,
    first: &Value,
    forward_stdin: bool,
) -> anyhow::Result<Ended> {
    // Taken before the stdin thread starts, which inherits the mask: no thread of this
    // process then dies of them.
    let mut signals = PassedOn::take();
    let mut socket = client.websocket(path)?;
    socket
        .send(Message::text(first.to_string()))
        .context("sending the program")?;
    let input = if forward_stdin {
        Some(read_stdin())
    } else {
        let end = json!({ "type": "stdin", "eof": true });
        // A program that ended meanwhile has closed: its result is read below.
        let _ = socket.send(Message::text(end.to_string()));
        None
    };
    // Short reads, so that what stdin brings and the signals go out between them.
    socket
        .get_mut()
        .set_read_timeout(Some(std::time::Duration::from_millis(20)))?;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    // Stops the program, then this process (for `signal`) until it is continued, and then the
    // program goes on too.
    let stop_with_program = |socket: &mut tungstenite::WebSocket<_>, signal: Signal| {
        let message = json!({ "type": "signal", "signal": "SIGTSTP" });
        let _ = socket.send(Message::text(message.to_string()));
        let _ = socket.flush();
        PassedOn::suspend(signal as i32);
        let message = json!({ "type": "signal", "signal": "SIGCONT" });
        let _ = socket.send(Message::text(message.to_string()));
    };
    loop {
        while let Some(chunk) = input.as_ref().and_then(|(i, _)| i.try_recv().ok()) {
            let message = match chunk {
                Input::Text(text) => json!({ "type": "stdin", "data": text }),
                Input::Bytes(bytes) => {
                    json!({ "type": "stdin", "data_base64": base64_text(&bytes) })
                }
                Input::End => json!({ "type": "stdin", "eof": true }),
                Input::Background => {
                    stop_with_program(&mut socket, Signal::SIGTTIN);
                    if let Some((_, resumed)) = &input {
                        let _ = resumed.send(());
                    }
                    continue;
                }
            };
            let _ = socket.send(Message::text(message.to_string()));
        }
        for signal in signals.as_mut().map(PassedOn::received).unwrap_or_default() {
            if signal == Signal::SIGTSTP {
                stop_with_program(&mut socket, signal);
                continue;
            }
            let message = json!({ "type": "signal", "signal": signal.as_str() });
            let _ = socket.send(Message::text(message.to_string()));
        }
        let message = match socket.read() {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {
                bail!("the server ended the run without a result")
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => bail!("the run's WebSocket: {e}"),
        };
        let message: Value = serde_json::from_str(message.as_str())
            .context("the server sent a message that is not JSON")?;
        // Output to a terminal set to `tostop`, this process in the background: the write
        // would stop it alone (SIGTTOU, taken); the program stops with it, and the write
        // goes on `fg` (the loop then reads the next message, as after any stop).
        let writes_to = match message["type"].as_str() {
            Some("stdout") => Some(out.as_fd()),
            Some("compile" | "stderr") => Some(err.as_fd()),
            _ => None,
        };
        while writes_to.is_some_and(|fd| {
            signals
                .as_ref()
                .is_some_and(|signals| signals.stops_writing_to(fd))
        }) {
            stop_with_program(&mut socket, Signal::SIGTTOU);
        }
        match message["type"].as_str() {
            // What the compiler said of a program it compiled (its warnings), before the
            // program's output, as a local run shows it.
            Some("compile") => {
                for name in ["stdout", "stderr"] {
                    err.write_all(&exact_output(&message["compile"], name))?;
                }
            }
            Some("stdout") => {
                out.write_all(&exact_output(&message, "data"))?;
                out.flush()?;
            }
            Some("stderr") => {
                err.write_all(&exact_output(&message, "data"))?;
            }
            Some("result") => return Ok(Ended::Result(message["result"].clone())),
            Some("error") => return Ok(Ended::Error(message)),
            _ => {}
        }
    }
}

/// What the stdin thread has for the main one.
enum Input {
    /// A chunk of text, as it came.
    Text(String),
    /// A chunk that is not UTF-8 text, as it came (the API carries it in base64).
    Bytes(Vec<u8>),
    /// The end of the input.
    End,
    /// Input waits at the terminal, and this process is not its foreground job (it went on
    /// with `bg`): reading would stop this process alone (SIGTTIN) and leave the program
    /// running. The main thread stops the program and this process, and says when they go
    /// on; the thread then looks again.
    Background,
}

/// Reads this process's standard input on a thread of its own: each chunk as it comes (a
/// terminal's line, a pipe's block; a UTF-8 sequence split between reads is kept whole; bytes
/// that are not UTF-8 go as they are),
/// then its end; at a terminal, [`Input::Background`] instead of a read that would stop this
/// process alone. The sender is for the main thread to say that it went on after that.
fn read_stdin() -> (
    std::sync::mpsc::Receiver<Input>,
    std::sync::mpsc::Sender<()>,
) {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let (chunks, received) = std::sync::mpsc::channel();
    let (resume, resumed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let terminal = stdin.is_terminal();
        let mut buffer = [0u8; 8192];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            if terminal && in_the_background(stdin.as_fd()) {
                if chunks.send(Input::Background).is_err() || resumed.recv().is_err() {
                    return;
                }
                continue;
            }
            let n = match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buffer[..n]);
            let chunk = match std::str::from_utf8(&pending) {
                Ok(_) => {
                    Input::Text(String::from_utf8(std::mem::take(&mut pending)).unwrap_or_default())
                }
                // A character the next read completes waits for it.
                Err(e) if e.error_len().is_none() => {
                    let rest = pending.split_off(e.valid_up_to());
                    let text = std::mem::replace(&mut pending, rest);
                    Input::Text(String::from_utf8(text).unwrap_or_default())
                }
                // Not UTF-8: the bytes as they are.
                Err(_) => Input::Bytes(std::mem::take(&mut pending)),
            };
            if matches!(&chunk, Input::Text(text) if text.is_empty()) {
                continue;
            }
            if chunks.send(chunk).is_err() {
                return;
            }
        }
        if !pending.is_empty() {
            let _ = chunks.send(Input::Bytes(pending));
        }
        let _ = chunks.send(Input::End);
    });
    (received, resume)
}

/// Waits until the terminal `fd` has input, then says whether this process is not its
/// foreground job (so that reading it now would stop this process).
fn in_the_background(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
    nix::unistd::tcgetpgrp(fd).is_ok_and(|group| group != nix::unistd::getpgrp())
}
