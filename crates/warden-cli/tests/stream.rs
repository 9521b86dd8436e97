//! `POST /v1/executions/stream` on the real server (issue 12): the program's output arrives as
//! server-sent events while it runs, in order, then the result; a client that leaves ends the
//! program. Needs root (CI runs as root).

mod live_server;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use live_server::{eventually, LiveServer, TOKEN};
use serde_json::Value;

/// Opens the stream for `body` and returns the reader past the response head, with its status.
fn open(server: &LiveServer, body: &str) -> (u16, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    write!(
        stream,
        "POST /v1/executions/stream HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request sent");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let code = status
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    (code, reader)
}

/// The next event (name and data), reading through chunked framing and blank lines.
fn next_event(reader: &mut BufReader<TcpStream>) -> Option<(String, Value)> {
    let mut name = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if let Some(event) = line.strip_prefix("event: ") {
            name = Some(event.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let value = serde_json::from_str(data).expect("JSON data");
            return Some((name.take().expect("event before data"), value));
        }
    }
}

fn running(server: &LiveServer) -> u64 {
    load(server, "running")
}

/// `running` or `queued` of `/v1/health`.
fn load(server: &LiveServer, what: &str) -> u64 {
    let (_, body) = server.request("GET", "/v1/health", None);
    let health: Value = serde_json::from_str(&body).expect("JSON");
    health["load"][what].as_u64().expect("a count")
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

#[test]
fn output_arrives_in_order_while_the_program_runs_then_the_result() {
    let server = LiveServer::start("");
    let program = "import sys, time\nprint('one', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(1)\nprint('two', flush=True)\n";
    let body = serde_json::json!({"language": "python", "code": program}).to_string();
    let (status, mut reader) = open(&server, &body);
    assert_eq!(status, 200);
    // Chunks are as the program wrote them (an unbuffered print may write its newline apart).
    let mut events = Vec::new();
    let mut stdout = String::new();
    while !stdout.contains("one\n") {
        let event = next_event(&mut reader).expect("an event");
        if event.0 == "stdout" {
            stdout.push_str(event.1["data"].as_str().unwrap_or_default());
        }
        events.push(event);
    }
    // The program is still running (it sleeps before its last line): the output came live.
    assert_eq!(running(&server), 1);
    while let Some(event) = next_event(&mut reader) {
        events.push(event);
    }
    // Live resource monitoring: readings of the run's cgroup while it slept.
    let readings: Vec<Value> = events
        .iter()
        .filter(|(n, _)| n == "usage")
        .map(|(_, v)| v.clone())
        .collect();
    assert!(!readings.is_empty(), "{events:?}");
    for reading in &readings {
        assert!(
            reading["memory_bytes"].as_u64().unwrap_or(0) > 0,
            "{readings:?}"
        );
        assert!(reading["pids"].as_u64().unwrap_or(0) >= 1, "{readings:?}");
    }
    events.retain(|(n, _)| n != "usage");
    let text = |name: &str| -> String {
        events
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v["data"].as_str())
            .collect()
    };
    assert_eq!(text("stdout"), "one\ntwo\n", "{events:?}");
    assert_eq!(text("stderr"), "err\n", "{events:?}");
    let position = |name: &str| events.iter().position(|(n, _)| n == name);
    let last_stdout = events.iter().rposition(|(n, _)| n == "stdout");
    assert!(
        position("stderr") < last_stdout,
        "err before two: {events:?}"
    );
    let (name, result) = events.last().expect("events");
    assert_eq!(name, "result", "{events:?}");
    assert_eq!(result["outcome"]["kind"], "exited");
    assert_eq!(
        result["stdout"], "one\ntwo\n",
        "the result has the whole output too"
    );
    assert_eq!(
        result["samples"].as_array().map(Vec::len),
        Some(readings.len()),
        "the result keeps the readings: {result:#}"
    );
}

/// A read of the program's pipe may end inside a character: it arrives whole all the same,
/// and the events' text is the result's (an invalid byte and a character never completed are
/// U+FFFD in both).
#[test]
fn a_character_cut_by_a_read_arrives_whole() {
    use base64::Engine as _;
    let server = LiveServer::start("");
    let program = "import sys, time\nout = sys.stdout.buffer\n\
                   for piece in [b'\\xc3', b'\\xa9 \\xe2\\x82', b'\\xac \\xff\\n\\xf0\\x9f']:\n\
                   \x20   out.write(piece); out.flush(); time.sleep(0.2)\n";
    let body = serde_json::json!({"language": "python", "code": program}).to_string();
    let (status, mut reader) = open(&server, &body);
    assert_eq!(status, 200);
    let mut events = Vec::new();
    while let Some(event) = next_event(&mut reader) {
        events.push(event);
    }
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "stdout")
        .filter_map(|(_, v)| v["data"].as_str())
        .collect();
    assert_eq!(streamed, "é € \u{fffd}\n\u{fffd}", "{events:?}");
    // A chunk whose text lost bytes carries them: together, the bytes the program wrote.
    let exact: Vec<u8> = events
        .iter()
        .filter(|(n, _)| n == "stdout")
        .flat_map(|(_, v)| match v["data_base64"].as_str() {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .expect("base64"),
            None => v["data"].as_str().unwrap_or_default().as_bytes().to_vec(),
        })
        .collect();
    assert_eq!(
        exact,
        "é € "
            .bytes()
            .chain(*b"\xff\n\xf0\x9f")
            .collect::<Vec<u8>>()
    );
    let (name, result) = events.last().expect("events");
    assert_eq!(name, "result", "{events:?}");
    assert_eq!(result["stdout"], streamed.as_str());
}

#[test]
fn a_client_that_leaves_ends_the_program_and_refusals_come_before_the_stream() {
    let server = LiveServer::start("");
    let program = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.2)\n";
    let body =
        serde_json::json!({"language": "python", "code": program, "limits": {"wall_time": "60s"}})
            .to_string();
    let (status, mut reader) = open(&server, &body);
    assert_eq!(status, 200);
    // A `usage` event (every 100 ms) may come first on a loaded machine, before python has
    // printed anything.
    let mut first = next_event(&mut reader).expect("an event").0;
    while first == "usage" {
        first = next_event(&mut reader).expect("an event").0;
    }
    assert_eq!(first, "stdout");
    assert_eq!(running(&server), 1);
    drop(reader);
    // Its next chunk finds nobody: the program is ended, not left to its wall time.
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(&server) != 0 {
        assert!(Instant::now() < deadline, "the program outlived its client");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = open(&server, r#"{"language": "cobol", "code": "x"}"#);
    assert_eq!(status, 422);
    let (status, _) = open(
        &server,
        r#"{"language": "python", "code": "print(1)", "tests": [{"stdin": "", "expected_output": "1"}]}"#,
    );
    assert_eq!(status, 422);
}

/// Bug hunt, the stream's cancellation: a client that leaves a stream cancels its execution as
/// a synchronous request's does, whether it still waits for a worker (it never runs) or runs
/// a program that writes nothing more (its next chunk would never come to notice the client
/// gone). Neither holds a worker or a place, and neither is recorded.
#[test]
fn a_client_that_leaves_cancels_its_execution_queued_or_running_silent() {
    let server = LiveServer::start("[server]\nworkers = 1\n");
    let silent = |seconds: &str| {
        serde_json::json!({"language": "bash", "code": format!("echo ready; sleep {seconds}"),
                           "limits": {"wall_time": "60s"}})
        .to_string()
    };
    let (status, mut running_one) = open(&server, &silent("29.5"));
    assert_eq!(status, 200);
    let (name, data) = next_event(&mut running_one).expect("an event");
    assert_eq!(
        (name.as_str(), &data["data"]),
        ("stdout", &Value::from("ready\n"))
    );
    let (status, queued_one) = open(&server, &silent("28.5"));
    assert_eq!(status, 200);
    assert!(
        eventually(Duration::from_secs(10), || load(&server, "queued") == 1),
        "the second stream waits for the only worker"
    );
    drop(queued_one);
    assert!(
        eventually(Duration::from_secs(10), || load(&server, "queued") == 0),
        "a stream whose client left still waits for a worker"
    );
    assert_eq!(running(&server), 1, "the first program runs on");
    drop(running_one);
    assert!(
        eventually(Duration::from_secs(10), || running(&server) == 0
            && !sleeping("29.5")),
        "the program of a stream whose client left still runs"
    );
    assert!(!sleeping("28.5"), "the stream left while queued ran");
    // The running one is recorded as cancelled, as a synchronous one is (docs/events.md); the
    // one that never ran is not recorded.
    let recorded = || {
        let (status, history) = server.request("GET", "/v1/history", None);
        assert_eq!(status, 200, "{history}");
        serde_json::from_str::<Value>(&history).expect("JSON")
    };
    assert!(
        eventually(Duration::from_secs(10), || recorded()
            .as_array()
            .is_some_and(|l| !l.is_empty())),
        "the cancelled execution is recorded"
    );
    let history = recorded();
    let history = history.as_array().expect("a list");
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0]["outcome"]["kind"], "cancelled", "{history:#?}");
}

/// The server's resident memory (`VmRSS`), in bytes.
fn resident(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the server's status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Bug hunt: output waiting for a client that does not read was queued one event per
/// `write(2)`, about 150 bytes of the server's memory for each byte a program wrote one at a
/// time (290 MB for 1.9 MB of output). Waiting output of one stream is now merged: the server
/// holds about what was written, and the client still gets every byte, in order.
#[test]
fn output_waiting_for_a_client_that_does_not_read_is_merged() {
    let server = LiveServer::start("");
    // Slower than the server reads: about one byte a read, one chunk each.
    let program = "import os, time\nend = time.time() + 3\nn = 0\n\
                   while time.time() < end:\n    os.write(1, b'a')\n    n += 1\n\
                   os.write(2, str(n).encode())\n";
    let body = serde_json::json!({"language": "python", "code": program,
        "limits": {"wall_time": "60s", "cpu_time": "30s", "max_output": "64MiB"}})
    .to_string();
    let before = resident(server.pid());
    let (status, mut reader) = open(&server, &body);
    assert_eq!(status, 200);
    // Nothing is read until the program is over.
    assert!(
        eventually(Duration::from_secs(60), || running(&server) == 0),
        "the program ends"
    );
    let grown = resident(server.pid()).saturating_sub(before);
    assert!(
        grown < 40 << 20,
        "the server grew by {grown} bytes holding the output"
    );
    let (mut stdout, mut stderr, mut last) = (0usize, String::new(), None);
    while let Some((name, data)) = next_event(&mut reader) {
        match name.as_str() {
            "stdout" => {
                let text = data["data"].as_str().expect("text");
                assert!(text.bytes().all(|b| b == b'a'), "{text}");
                stdout += text.len();
            }
            "stderr" => stderr.push_str(data["data"].as_str().expect("text")),
            _ => last = Some((name, data)),
        }
    }
    assert_eq!(stderr, stdout.to_string(), "every byte written came");
    let (name, result) = last.expect("the last event");
    assert_eq!(name, "result", "{result}");
    assert_eq!(result["outcome"]["kind"], "exited", "{result}");
}

/// What a compiler said of a program it compiled (its warnings) comes as one `compile` event
/// before the program's output, as a local `warden run` shows it; a compile served from the
/// cache ran nothing and sends none.
#[test]
fn a_compiles_warnings_come_as_a_compile_event_before_the_output() {
    let server = LiveServer::start("");
    let code = "#include <stdio.h>\\nint main(void) { int unused_here = 1; puts(\\\"hi\\\"); return 0; }\\n";
    let body = format!(r#"{{"language": "c", "code": "{code}", "compile_options": ["-Wall"]}}"#);
    for cached in [false, true] {
        let (status, mut reader) = open(&server, &body);
        assert_eq!(status, 200);
        let mut events = Vec::new();
        while let Some(event) = next_event(&mut reader) {
            events.push(event);
        }
        let names: Vec<&str> = events
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| *name != "usage")
            .collect();
        if cached {
            assert_eq!(names, ["stdout", "result"], "{events:?}");
            continue;
        }
        assert_eq!(names, ["compile", "stdout", "result"], "{events:?}");
        let compile = &events[0].1;
        assert!(
            compile["stderr"]
                .as_str()
                .is_some_and(|s| s.contains("unused_here")),
            "{compile}"
        );
        assert_eq!(compile["outcome"]["kind"], "exited", "{compile}");
        assert_eq!(compile["cached"], false, "{compile}");
    }
}

/// Bug hunt: what a client had not taken was encoded as one event, however much: a program
/// writing 100 MiB of control bytes made the server hold 14-18 times that at once (the text,
/// its JSON, the event). An event carries at most 64 KiB of the output now, encoded as the
/// client takes it.
#[test]
fn an_output_event_carries_at_most_64_kib() {
    let server = LiveServer::start("");
    // Two-byte characters, so that a cut at 64 KiB may fall inside one.
    let program = "import sys\nsys.stdout.write('x' + 'é' * 1500000)\n";
    let body = serde_json::json!({"language": "python", "code": program,
        "limits": {"max_output": "16MiB"}})
    .to_string();
    let (status, mut reader) = open(&server, &body);
    assert_eq!(status, 200);
    // Nothing is read until the program is over: its output waits, merged.
    assert!(
        eventually(Duration::from_secs(60), || running(&server) == 0),
        "the program ends"
    );
    let (mut stdout, mut longest, mut last) = (String::new(), 0, None);
    while let Some((name, data)) = next_event(&mut reader) {
        match name.as_str() {
            "stdout" => {
                let text = data["data"].as_str().expect("text");
                longest = longest.max(text.len());
                stdout.push_str(text);
            }
            _ => last = Some(name),
        }
    }
    assert!(longest <= 64 << 10, "an event of {longest} bytes of output");
    assert_eq!(stdout, format!("x{}", "é".repeat(1_500_000)));
    assert_eq!(last.as_deref(), Some("result"));
}
