//! `GET /metrics` (issue 13): the real server counts each execution by interface, language,
//! mode and outcome, what failed, how long runs took, and shows its queue and warm pool, in the
//! Prometheus text format; without the token it answers 401. The executions tools run are
//! counted like the others, and a tool name no tool has adds no series of its own. Needs root
//! (CI runs as root).

mod live_server;

use live_server::{LiveServer, ADMIN};

/// The value of the sample line starting with `series ` (name and labels exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_executions_failures_and_durations() {
    let server = LiveServer::start(ADMIN);
    let run = r#"{"language": "python", "code": "print(1)"}"#;
    for _ in 0..2 {
        let (status, body) = server.request("POST", "/v1/executions?wait=true", Some(run));
        assert_eq!(status, 200, "{body}");
    }
    let limited =
        r#"{"language": "python", "code": "while True: pass", "limits": {"cpu_time": "300ms"}}"#;
    let (status, body) = server.request("POST", "/v1/executions?wait=true", Some(limited));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.request(
        "POST",
        "/v1/executions?wait=true",
        Some(r#"{"language": "cobol", "code": "x"}"#),
    );
    assert_eq!(status, 422, "{body}");
    let compiled = r#"{"language": "c", "code": "int main(void) { return 0; }"}"#;
    let (status, body) = server.request("POST", "/v1/executions?wait=true", Some(compiled));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"text": "a b"}"#));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"txt": 1}"#));
    assert_eq!(status, 422, "{body}");

    let (status, text) = server.metrics();
    assert_eq!(status, 200, "{text}");
    let exited =
        r#"warden_executions_total{api="v1",language="python",mode="sandboxed",outcome="exited"}"#;
    assert_eq!(value(&text, exited), Some(2.0), "{text}");
    let limit = r#"warden_executions_total{api="v1",language="python",mode="sandboxed",outcome="time_limit"}"#;
    assert_eq!(value(&text, limit), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"warden_execution_failures_total{api="v1",kind="request"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_execution_duration_seconds_count{api="v1"}"#
        ),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_execution_duration_seconds_bucket{api="v1",le="+Inf"}"#
        ),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "warden_executions_running"),
        Some(0.0),
        "{text}"
    );
    assert!(value(&text, "warden_pool_hits_total").is_some(), "{text}");
    // The tool's execution is counted like the others, under the API that called the tool.
    let wc =
        r#"warden_executions_total{api="v1",language="bash",mode="sandboxed",outcome="exited"}"#;
    assert_eq!(value(&text, wc), Some(1.0), "{text}");
    // Stages: every admitted request waited in the queue (five executions, one tool call: the
    // call whose input the schema refused was refused before it took a place), five ran (not
    // the unknown language, not the refused tool call), one compiled (C).
    assert_eq!(
        value(
            &text,
            r#"warden_stage_duration_seconds_count{stage="queue"}"#
        ),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"warden_stage_duration_seconds_count{stage="run"}"#),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_stage_duration_seconds_count{stage="analysis"}"#
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_stage_duration_seconds_count{stage="compile"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_security_violations_total{kind="time_limit"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"warden_tool_calls_total{tool="wc",result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_tool_calls_total{tool="wc",result="refused"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(&text, "warden_workers").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    // Every line is a comment or `name{labels} number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, number) = line.rsplit_once(' ').expect("a value");
        assert!(number.parse::<f64>().is_ok(), "{line}");
    }
    // Hunt gv 5: every token's activity, so only an admin token's, as `/v1/stats` shows
    // other tokens' runs only to one.
    let (status, body) = server.request("GET", "/metrics", None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin = true"), "{body}");
    // Without the token: refused like the rest of the own API.
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.0\r\n\r\n").expect("sent");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.0 401") || answer.starts_with("HTTP/1.1 401"),
        "{answer}"
    );
}

/// Bug hunt: the executions that tools ran were missing from `/metrics`, and each unknown tool
/// name (a megabyte long) added a series of its own, kept until the server stopped.
#[test]
fn tool_executions_are_counted_and_unknown_tool_names_share_one_series() {
    let server = LiveServer::start(ADMIN);
    let shell = r#"{"command": "echo hi"}"#;
    let (status, body) = server.request("POST", "/v1/tools/shell/call", Some(shell));
    assert_eq!(status, 200, "{body}");
    let spin =
        r#"{"language": "python", "code": "while True: pass", "limits": {"cpu_time": "300ms"}}"#;
    let (status, body) = server.request("POST", "/v1/tools/run_code/call", Some(spin));
    assert_eq!(status, 200, "{body}");
    let long = "x".repeat(4000);
    for _ in 0..3 {
        let path = format!("/v1/tools/{long}/call");
        let (status, body) = server.request("POST", &path, Some("{}"));
        assert_eq!(status, 404, "{body}");
        assert!(
            body.len() < 400,
            "the error quotes the name's start only: {body}"
        );
    }

    let (status, text) = server.metrics();
    assert_eq!(status, 200, "{text}");
    let echoed =
        r#"warden_executions_total{api="v1",language="bash",mode="sandboxed",outcome="exited"}"#;
    assert_eq!(value(&text, echoed), Some(1.0), "{text}");
    let limited = r#"warden_executions_total{api="v1",language="python",mode="sandboxed",outcome="time_limit"}"#;
    assert_eq!(value(&text, limited), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"warden_execution_duration_seconds_count{api="v1"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"warden_stage_duration_seconds_count{stage="run"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_security_violations_total{kind="time_limit"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_tool_calls_total{tool="shell",result="ok"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"warden_tool_calls_total{tool="<unknown>",result="refused"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("xxxxxxxx"),
        "a series per unknown name: {text}"
    );
}

/// Bug hunt: a session's calls were in the history and the events but not in `/metrics`
/// (executions, durations, violations): `/metrics` and `/v1/stats` disagreed.
#[test]
fn a_sessions_calls_are_counted() {
    let server = LiveServer::start(ADMIN);
    let (status, body) = server.request("POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let id = session["id"].as_str().expect("an id");
    let call = r#"{"command": "echo hi > /etc/passwd; echo done"}"#;
    let (status, body) = server.request("POST", &format!("/v1/sessions/{id}/exec"), Some(call));
    assert_eq!(status, 200, "{body}");
    let (status, text) = server.metrics();
    assert_eq!(status, 200, "{text}");
    let exited =
        r#"warden_executions_total{api="v1",language="bash",mode="sandboxed",outcome="exited"}"#;
    assert_eq!(value(&text, exited), Some(1.0), "{text}");
    let written = r#"warden_security_violations_total{kind="readonly_write"}"#;
    assert_eq!(value(&text, written), Some(1.0), "{text}");
    let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
    assert!(status < 300, "{body}");
}

/// Bug hunt: each tool a caller registered (and removed, and registered again under another
/// name) added series to `/metrics` for as long as the server ran, naming it to every other
/// caller. Calls of tools registered at run time share one series.
#[test]
fn registered_tools_share_one_series() {
    let server = LiveServer::start(ADMIN);
    let definition = "name = \"shout_x1\"\ndescription = \"Upper-cases a text.\"\n\
                      category = \"compute\"\n[input]\ntype = \"object\"\nrequired = [\"text\"]\n\
                      [input.properties.text]\ntype = \"string\"\n[run]\nprogram = \"up.py\"\n\
                      stdin = \"text\"\n";
    let register = serde_json::json!({
        "definition": definition,
        "files": {"up.py": "import sys\nprint(sys.stdin.read().upper(), end='')\n"},
    })
    .to_string();
    let (status, body) = server.request("POST", "/v1/tools", Some(&register));
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        server.request("POST", "/v1/tools/shout_x1/call", Some(r#"{"text": "a"}"#));
    assert_eq!(status, 200, "{body}");
    let (status, text) = server.metrics();
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("shout_x1"), "{text}");
    let shared = r#"warden_tool_calls_total{tool="<registered>",result="ok"}"#;
    assert_eq!(value(&text, shared), Some(1.0), "{text}");
}
