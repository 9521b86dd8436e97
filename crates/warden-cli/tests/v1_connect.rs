//! End to end (issue 12): the own interactive WebSocket, `/v1/executions/connect`, spoken to by
//! a real WebSocket client (`websockets`, pinned in scripts/test-clients.txt): stdin while the
//! program runs, signals the program handles or dies of, refusals. The checks are
//! crates/warden-server/tests/clients/v1_connect.py. Real sandboxes: runs as root.

mod live_server;

use std::time::Duration;

use live_server::{eventually, LiveServer};

#[test]
fn an_interactive_session_takes_stdin_and_signals_and_ends_with_the_result() {
    let server = LiveServer::start("");
    server.client_script("v1_connect.py", &[]);
    // The session the script left mid-run took its program with it.
    let gone = eventually(Duration::from_secs(10), || !sleeping("600.5"));
    assert!(
        gone,
        "the program of a session whose client left still runs"
    );
    assert_eq!(server.health(Duration::from_secs(5)), Some(200));
}

/// Bug hunt, early signals: a signal sent while the program's session is still queued (no
/// sandbox of its own yet) waits for the program, over the own WebSocket and Piston's. The
/// checks are crates/warden-server/tests/clients/early_signals.py.
#[test]
fn a_signal_sent_before_the_program_started_waits_for_it() {
    let server = LiveServer::start("[server]\nworkers = 1\n");
    server.client_script("early_signals.py", &[]);
}

/// Bug hunt, oversized messages: a message over `[server] max_body` is answered with an
/// `error` and a close frame that says why, on the own WebSocket and Piston's, and the
/// session's program ends. The checks are crates/warden-server/tests/clients/too_big.py.
#[test]
fn a_message_over_max_body_is_refused_with_a_reason() {
    let server = LiveServer::start("[server]\nmax_body = \"64KiB\"\n");
    server.client_script("too_big.py", &[]);
    assert!(
        eventually(Duration::from_secs(10), || server
            .request("GET", "/v1/health", None)
            .1
            .contains("\"running\":0")),
        "the refused sessions' programs ended"
    );
}

/// Bug hunt: stdin sent after the program closed its own was held for it (the sandbox's init
/// kept the pipe's read end), until the session was ended for 16 MiB "not read by the
/// program". The checks are crates/warden-server/tests/clients/closed_stdin.py.
#[test]
fn stdin_sent_after_the_program_closed_it_is_dropped() {
    let server = LiveServer::start("[server]\nmax_body = \"2MiB\"\n");
    server.client_script("closed_stdin.py", &[]);
}

/// Whether a `sleep SECONDS` runs anywhere on the host.
fn sleeping(seconds: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| cmdline == format!("sleep\0{seconds}\0").as_bytes())
    })
}

/// Bug hunt: WebSockets were unbounded and not charged to the token's rate: one token opened
/// 20,000 idle ones, the server ran out of descriptors and its memory grew by gigabytes. A
/// caller holds at most a quarter of `max_connections` at once now (here 2), on every
/// WebSocket endpoint and `/v1/executions/stream` together.
#[test]
fn a_callers_websockets_are_bounded() {
    use std::io::{Read, Write};
    let server = LiveServer::start("[server]\nmax_connections = 8\n");
    let upgrade = |path: &str| {
        let mut stream = std::net::TcpStream::connect(server.addr()).expect("connects");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            live_server::TOKEN
        )
        .expect("handshake sent");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        let status = String::from_utf8_lossy(&head)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        (status, stream)
    };
    let (first, _a) = upgrade("/v1/executions/connect");
    let (second, _b) = upgrade("/api/v2/connect");
    assert_eq!((first, second), (101, 101));
    let (third, _) = upgrade("/v1/executions/connect");
    assert_eq!(third, 429, "a third WebSocket at once");
    // An event stream holds a place too, for as long as its client has not read it all
    // (bug hunt: one that never read held its output past its run, in any number).
    let (streamed, answer) = server.request(
        "POST",
        "/v1/executions/stream",
        Some(r#"{"language": "bash", "code": "echo hi"}"#),
    );
    assert_eq!(streamed, 429, "{answer}");
    assert!(answer.contains("event streams"), "{answer}");
    assert_eq!(server.health(Duration::from_secs(5)), Some(200));
    drop(_a);
    let freed = eventually(Duration::from_secs(20), || {
        upgrade("/v1/executions/connect").0 == 101
    });
    assert!(freed, "a closed WebSocket gives its place back");
}

/// Opens a WebSocket to `path` with the test's token, sends `frames`, and reads until the
/// server closes: its text messages and the close code.
fn session_of(
    server: &LiveServer,
    path: &str,
    frames: Vec<tungstenite::Message>,
) -> (Vec<String>, Option<u16>) {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let mut request = format!("ws://{}{path}", server.addr())
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", live_server::TOKEN)
            .parse()
            .expect("a header"),
    );
    let stream = std::net::TcpStream::connect(server.addr()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout set");
    let (mut socket, _) = tungstenite::client(request, stream).expect("upgraded");
    for frame in frames {
        socket.send(frame).expect("frame sent");
    }
    let mut texts = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => texts.push(text.to_string()),
            Ok(Message::Close(frame)) => return (texts, frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(e) => panic!("{path}: {e}; so far {texts:?}"),
        }
    }
}

/// A session for the test's token: its id.
fn new_session(server: &LiveServer) -> String {
    let (status, body) = server.request("POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    session["id"].as_str().expect("an id").to_owned()
}

/// Bug hunt: a Ping or a Pong sent before the first message ended the session as a first
/// message that is not the program (close 1008), on `/v1/executions/connect` and
/// `/v1/sessions/{id}/connect`; a client library's keep-alive ping may come first. They are
/// passed over, as Piston's `/api/v2/connect` does.
#[test]
fn a_ping_or_pong_before_the_first_message_is_passed_over() {
    use tungstenite::Message;
    let server = LiveServer::start("");
    let session = new_session(&server);
    let endpoints = [
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"echo pinged"}"#,
        ),
        (
            format!("/v1/sessions/{session}/connect"),
            r#"{"command":"echo pinged"}"#,
        ),
    ];
    for (path, first) in &endpoints {
        for control in [Message::Ping("x".into()), Message::Pong("y".into())] {
            let frames = vec![control.clone(), Message::Text((*first).into())];
            let (texts, close) = session_of(&server, path, frames);
            let result = texts.iter().find(|t| t.contains(r#""type":"result""#));
            assert_eq!(close, Some(1000), "{path} after {control:?}: {texts:?}");
            assert!(
                result.is_some_and(|r| r.contains(r#""stdout":"pinged\n""#)),
                "{path} after {control:?}: {texts:?}"
            );
        }
    }
    let (status, _) = server.request("DELETE", &format!("/v1/sessions/{session}"), None);
    assert_eq!(status, 204);
}

/// Bug hunt: a key given twice in the first message was taken with its last value, at the
/// top as in nested objects, where `POST /v1/executions` refuses it at the top: refused at
/// any depth now, as in every body of the own API.
#[test]
fn a_first_message_with_a_key_given_twice_is_refused() {
    use tungstenite::Message;
    let server = LiveServer::start("");
    let session = new_session(&server);
    let firsts = [
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"echo 1","code":"echo 2"}"#,
        ),
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"cat","limits":{"wall_time":"1s","wall_time":"2s"}}"#,
        ),
        (
            format!("/v1/sessions/{session}/connect"),
            r#"{"command":"echo 1","command":"echo 2"}"#,
        ),
    ];
    for (path, first) in &firsts {
        let (texts, close) = session_of(&server, path, vec![Message::Text((*first).into())]);
        assert_eq!(close, Some(1008), "{path} {first}: {texts:?}");
        assert!(
            texts.len() == 1 && texts[0].contains("duplicate field"),
            "{path} {first}: {texts:?}"
        );
    }
    let (status, _) = server.request("DELETE", &format!("/v1/sessions/{session}"), None);
    assert_eq!(status, 204);
}

/// A WebSocket to `path` on `server`, authenticated with `token`, upgraded.
fn open(
    server: &LiveServer,
    token: &str,
    path: &str,
) -> tungstenite::WebSocket<std::net::TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", server.addr())
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a header"),
    );
    let stream = std::net::TcpStream::connect(server.addr()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout set");
    tungstenite::client(request, stream).expect("upgraded").0
}

/// Reads `socket` until the server closes it: its text messages as JSON, and the close code.
fn read_to_close(
    socket: &mut tungstenite::WebSocket<std::net::TcpStream>,
) -> (Vec<serde_json::Value>, Option<u16>) {
    let mut messages = Vec::new();
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                messages.push(serde_json::from_str(text.as_str()).expect("JSON"));
            }
            Ok(tungstenite::Message::Close(frame)) => {
                return (messages, frame.map(|f| u16::from(f.code)))
            }
            Ok(_) => {}
            Err(e) => panic!("{e}; so far {} messages", messages.len()),
        }
    }
}

/// Bug hunt: a WebSocket's run was charged twice to its token's `requests_per_minute` (its
/// place, then its admission), on `/v1/executions/connect`, `/api/v2/connect` and
/// `/v1/sessions/{id}/connect`: a token of 6 a minute ran 3 programs over WebSockets and
/// was then refused. Each run is one request now, charged when it is admitted.
#[test]
fn a_websocket_run_costs_one_request_of_the_rate() {
    use tungstenite::Message;
    let server = LiveServer::start(
        "[[server.tokens]]\nname = \"rated\"\ntoken = \"r4ted\"\nrequests_per_minute = 6\n",
    );
    let (status, body) = server.request_as("r4ted", "POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let session = session["id"].as_str().expect("an id").to_owned();
    let runs = [
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"echo one"}"#,
        ),
        (
            "/api/v2/connect".to_owned(),
            r#"{"type":"init","language":"bash","version":"*","files":[{"content":"echo two"}]}"#,
        ),
        (
            format!("/v1/sessions/{session}/connect"),
            r#"{"command":"echo three"}"#,
        ),
    ];
    for (path, first) in &runs {
        let mut socket = open(&server, "r4ted", path);
        socket.send(Message::Text((*first).into())).expect("sent");
        let (messages, close) = read_to_close(&mut socket);
        assert!(
            matches!(close, Some(1000 | 4999)),
            "{path}: {close:?} {messages:?}"
        );
    }
    // Two of the minute's six are left: the session's creation took one.
    for n in 0..2 {
        let (status, body) = server.request_as(
            "r4ted",
            "POST",
            "/v1/executions",
            Some(r#"{"language":"bash","code":"echo four"}"#),
        );
        assert_eq!(
            status, 200,
            "request {n} after the WebSockets' runs: {body}"
        );
    }
    let (status, body) = server.request_as(
        "r4ted",
        "POST",
        "/v1/executions",
        Some(r#"{"language":"bash","code":"echo five"}"#),
    );
    assert_eq!(status, 429, "the seventh request of the minute: {body}");
}

/// Bug hunt: what a client had not taken yet went out as one message, however large: `warden
/// run --server` at a terminal (tungstenite: 16 MiB a frame) failed for a program printing a
/// few MB, Python's `websockets` (1 MiB) closed with 1009. An output message carries at most
/// 64 KiB of the output, on the own WebSocket and Piston's.
#[test]
fn output_messages_carry_at_most_64_kib() {
    use tungstenite::Message;
    let server = LiveServer::start("");
    // Two-byte characters, so that a cut at 64 KiB may fall inside one (Piston's runs may
    // print 1 MB).
    let program = |n: usize| format!("import sys\nsys.stdout.write('x' + 'é' * {n})\n");
    let first = serde_json::json!({
        "language": "python", "code": program(1_500_000), "limits": {"max_output": "16MiB"},
    });
    let init = serde_json::json!({
        "type": "init", "language": "python", "version": "*",
        "files": [{"content": program(400_000)}],
    });
    for (path, first, kind, n) in [
        ("/v1/executions/connect", first, "stdout", 1_500_000),
        ("/api/v2/connect", init, "data", 400_000),
    ] {
        let expected = format!("x{}", "é".repeat(n));
        let first = first.to_string();
        let mut socket = open(&server, live_server::TOKEN, path);
        socket.send(Message::Text(first.into())).expect("sent");
        // Not read meanwhile: the output waits for the client, merged.
        std::thread::sleep(Duration::from_secs(4));
        let (messages, close) = read_to_close(&mut socket);
        let output: Vec<&str> = messages
            .iter()
            .filter(|m| m["type"] == kind)
            .map(|m| m["data"].as_str().expect("text"))
            .collect();
        let longest = output.iter().map(|d| d.len()).max().unwrap_or_default();
        assert!(longest <= 64 << 10, "{path}: a message of {longest} bytes");
        assert_eq!(
            output.concat(),
            expected,
            "{path}: the output whole ({close:?})"
        );
    }
}

/// Bug hunt: shutdown did not wait for WebSocket sessions: a program that ended well within
/// `shutdown_deadline` lost the output its client had not read yet, and its result, as the
/// server exited under the session.
#[test]
fn shutdown_lets_a_websocket_session_send_its_output_and_result() {
    use tungstenite::Message;
    let mut server = LiveServer::start("");
    let mut socket = open(&server, live_server::TOKEN, "/v1/executions/connect");
    let program = "import sys, time\nprint('started', flush=True)\ntime.sleep(1)\n\
                   sys.stdout.write('w' * 8000000)\n";
    let first = serde_json::json!({
        "language": "python", "code": program, "limits": {"max_output": "16MiB"},
    })
    .to_string();
    socket.send(Message::Text(first.into())).expect("sent");
    loop {
        match socket.read().expect("a message") {
            Message::Text(text) if text.contains("started") => break,
            _ => {}
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signalled");
    // Not read meanwhile: the program ends with its output waiting for the client.
    std::thread::sleep(Duration::from_secs(3));
    let (messages, close) = read_to_close(&mut socket);
    // The `w`s: the line's newline may come in a message of its own after `started`.
    let written: usize = messages
        .iter()
        .filter(|m| m["type"] == "stdout")
        .map(|m| m["data"].as_str().map_or(0, |d| d.matches('w').count()))
        .sum();
    let result = messages.iter().find(|m| m["type"] == "result");
    assert_eq!(close, Some(1000), "{:?}", messages.last());
    assert_eq!(written, 8_000_000, "the output after `started`");
    assert!(
        result.is_some_and(|r| r["result"]["outcome"]["kind"] == "exited"),
        "{:?}",
        messages.last()
    );
    server.stop(Duration::from_secs(40));
}

/// Regression hunt: a WebSocket that had not sent its program yet held the server's shutdown
/// until its first message's timeout; it is told the server is shutting down (1001) at once.
#[test]
fn shutdown_refuses_a_websocket_that_has_sent_nothing_yet() {
    let mut server = LiveServer::start("");
    let mut socket = open(&server, live_server::TOKEN, "/v1/executions/connect");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signalled");
    let (messages, close) = read_to_close(&mut socket);
    assert_eq!(close, Some(1001), "{messages:?}");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], "error", "{messages:?}");
    assert!(
        messages[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("shutting down")),
        "{messages:?}"
    );
    server.stop(Duration::from_secs(40));
}

/// Bug hunt: a first message's `stdin` (or `stdin_base64`) was taken and never given to the
/// program, which reads what `stdin` messages send: refused now, saying so.
#[test]
fn a_first_message_with_stdin_is_refused() {
    use tungstenite::Message;
    let server = LiveServer::start("");
    let session = new_session(&server);
    let firsts = [
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"cat","stdin":"lost\n"}"#,
        ),
        (
            "/v1/executions/connect".to_owned(),
            r#"{"language":"bash","code":"cat","stdin_base64":"aGk="}"#,
        ),
        (
            format!("/v1/sessions/{session}/connect"),
            r#"{"command":"cat","stdin":"lost\n"}"#,
        ),
    ];
    for (path, first) in &firsts {
        let (texts, close) = session_of(&server, path, vec![Message::Text((*first).into())]);
        assert_eq!(close, Some(1008), "{path} {first}: {texts:?}");
        assert!(
            texts.len() == 1 && texts[0].contains("`stdin` messages"),
            "{path} {first}: {texts:?}"
        );
    }
    let (status, _) = server.request("DELETE", &format!("/v1/sessions/{session}"), None);
    assert_eq!(status, 204);
}

/// Hunt sessions: a session's call whose WebSocket client left ran on until its next output
/// found nobody, and was recorded as killed by SIGKILL; a call still queued behind an earlier
/// one started after its client had left. The call ends at once now, recorded as
/// `cancelled`; the queued one never starts; the session lives on.
#[test]
fn a_session_call_whose_client_left_ends_as_cancelled() {
    use tungstenite::Message;
    let server = LiveServer::start("");
    let session = new_session(&server);
    let path = format!("/v1/sessions/{session}/connect");
    let mut running = open(&server, live_server::TOKEN, &path);
    running
        .send(Message::Text(
            r#"{"command":"sleep 30.7; echo late"}"#.into(),
        ))
        .expect("sent");
    assert!(
        eventually(Duration::from_secs(30), || sleeping("30.7")),
        "the call started"
    );
    let mut queued = open(&server, live_server::TOKEN, &path);
    queued
        .send(Message::Text(
            r#"{"command":"touch queued-ran; sleep 30.8"}"#.into(),
        ))
        .expect("sent");
    std::thread::sleep(Duration::from_millis(500));
    drop(queued);
    std::thread::sleep(Duration::from_millis(200));
    drop(running);
    assert!(
        eventually(Duration::from_secs(10), || !sleeping("30.7")),
        "the call of a client that left still runs"
    );
    let (status, body) = server.request(
        "POST",
        &format!("/v1/sessions/{session}/exec"),
        Some(r#"{"command":"ls; echo listed"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("listed") && !body.contains("queued-ran"),
        "the queued call of a client that left ran: {body}"
    );
    assert!(!sleeping("30.8"), "the queued call runs");
    let recorded = |server: &LiveServer| {
        let (_, body) = server.request("GET", "/v1/history?limit=10", None);
        let entries: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        entries.as_array().expect("a list").clone()
    };
    assert!(
        eventually(Duration::from_secs(10), || recorded(&server).len() == 2),
        "the cancelled call and the listing recorded: {:?}",
        recorded(&server)
    );
    let outcomes: Vec<_> = recorded(&server)
        .iter()
        .map(|e| e["outcome"]["kind"].clone())
        .collect();
    assert!(
        outcomes.contains(&serde_json::json!("cancelled")),
        "the call whose client left: {outcomes:?}"
    );
    let (status, _) = server.request("DELETE", &format!("/v1/sessions/{session}"), None);
    assert_eq!(status, 204, "the session lived on");
}
