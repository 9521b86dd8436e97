//! End to end (issue 11): the official MCP Python SDK, unchanged, against warden's MCP server
//! and relay. It launches `warden mcp` on stdio and calls every built-in tool (http_fetch on a
//! package registry this host uses, found at run time), a limit, bad input and an unknown tool;
//! it connects to `warden serve`'s `/mcp` with the
//! server's bearer token (and is refused without it), and the calls are counted for the MCP
//! API; it launches `warden mcp wrap` on a third-party server written with the SDK, which sees
//! only its sandbox, is stopped at a connection its policy denies (to this host's own address,
//! refused by the egress proxy's evaluation: no packet leaves the machine) and leaves no
//! process behind; and a wrapped server that crashes fails the call in flight and ends the
//! relay. A call the client cancels, or leaves in flight when it closes stdin, ends its
//! program. The SDK (`mcp` 2.3.0 and what it pulls in) is pinned by scripts/mcp-clients.txt and
//! installed by scripts/setup.sh in a venv at [`VENV_PYTHON`]; the clients are the scripts in
//! tests/mcp/, each printing one JSON object of observations that these tests assert on.
//! Needs root (real sandboxes), as CI runs.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{host_address, json_of, World};

/// The venv scripts/setup.sh creates with the SDK at pinned versions.
const VENV_PYTHON: &str = "/opt/warden-mcp-venv/bin/python3";

/// The venv's python, or `None` (with the reason printed) when it is missing outside CI.
fn venv_python() -> Option<&'static str> {
    if Path::new(VENV_PYTHON).exists() {
        return Some(VENV_PYTHON);
    }
    let why = format!("{VENV_PYTHON} is missing: run scripts/setup.sh (it installs the MCP SDK)");
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

fn warden_binary() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

/// Runs a client script with the world's variables; its report (the last line of stdout).
fn run_client(python: &str, world: &World, name: &str, args: &[&str]) -> Value {
    let output = Command::new(python)
        .arg(script(name))
        .args(args)
        .envs(world.env())
        .stdin(Stdio::null())
        .output()
        .expect("the client script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{name} printed no report ({e}):\n{stdout}\n{stderr}"))
}

/// `warden tool stats --json` in `world`: the entry of `tool`.
fn stats_of(world: &World, tool: &str) -> Value {
    let out = world
        .warden()
        .args(["tool", "stats", "--json"])
        .output()
        .expect("warden runs");
    let stats = json_of(&out);
    stats["tools"]
        .as_array()
        .expect("a list of tools")
        .iter()
        .find(|t| t["tool"] == tool)
        .cloned()
        .unwrap_or_else(|| panic!("{tool} counted: {stats:#}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[test]
fn the_sdk_uses_every_built_in_tool_over_stdio() {
    let Some(python) = venv_python() else { return };
    let world = World::new();
    // A registry this host's package managers use: public, reachable from CI's machine.
    let (registry, _) = world
        .registries()
        .into_iter()
        .next()
        .expect("a package registry is configured on this host");
    let url = format!("https://{registry}/");
    let report = run_client(python, &world, "client_stdio.py", &[warden_binary(), &url]);
    for name in [
        "run_code",
        "python",
        "shell",
        "files",
        "http_fetch",
        "jq",
        "grep",
        "wc",
    ] {
        let schema = &report["tools"][name];
        assert_eq!(schema["type"], "object", "{name}: {report:#}");
    }
    let calls = &report["calls"];
    for (call, expected) in [
        ("run_code", "42\n"),
        ("python", "cba\n"),
        ("shell", "hello\n"),
        ("files_read", "kept"),
        ("jq", "3\n"),
        ("grep", "banana\n"),
    ] {
        assert_eq!(calls[call]["is_error"], false, "{call}: {calls:#}");
        assert_eq!(calls[call]["text"], expected, "{call}: {calls:#}");
    }
    assert_eq!(calls["files_write"]["is_error"], false, "{calls:#}");
    let counted: Vec<&str> = text(&calls["wc"]["text"]).split_whitespace().collect();
    assert_eq!(counted, ["1", "3", "6"], "{calls:#}");
    assert_eq!(
        calls["run_code"]["structured"]["mode"], "sandboxed",
        "{calls:#}"
    );
    let fetched = &calls["http_fetch"];
    assert_eq!(fetched["is_error"], false, "{fetched:#}");
    assert!(fetched["structured"]["status"].is_u64(), "{fetched:#}");

    let slow = &calls["slow"];
    assert_eq!(slow["is_error"], true, "{slow:#}");
    assert!(text(&slow["text"]).contains("time limit"), "{slow:#}");
    assert_eq!(slow["structured"]["outcome"]["kind"], "time_limit");
    let wrong = &calls["wrong_property"];
    assert_eq!(wrong["is_error"], true, "{wrong:#}");
    assert!(text(&wrong["text"]).contains("\"txt\""), "{wrong:#}");

    // An unknown tool is a protocol error (invalid params), and the session goes on.
    let unknown = &report["unknown"];
    assert_eq!(unknown["raised"], true, "{unknown:#}");
    assert_eq!(unknown["code"], -32602, "{unknown:#}");
    assert!(text(&unknown["message"]).contains("no_such_tool"));
    assert_eq!(report["after_unknown"]["is_error"], false, "{report:#}");
}

/// A `warden serve` that is stopped (SIGTERM, then a wait) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts `warden serve` on a free loopback port in `world` and waits for `/v1/health`.
fn serve(world: &World) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let mut cmd = world.warden();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let server = Server {
        child: cmd.spawn().expect("warden serve starts"),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if health(port) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("warden serve did not answer /v1/health on port {port} within 60 s");
}

fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

const TOKEN: &str = "mcp-test-secret-0123456789";
/// An `admin` token: `/metrics` answers only such a token.
const ADMIN_TOKEN: &str = "mcp-admin-secret-0123456789";

#[test]
fn the_sdk_calls_tools_over_http_with_the_servers_token() {
    let Some(python) = venv_python() else { return };
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"mcp-tester\"\ntoken = \"{TOKEN}\"\n\
         [[server.tokens]]\nname = \"root\"\ntoken = \"{ADMIN_TOKEN}\"\nadmin = true\n"
    ));
    let server = serve(&world);
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let report = run_client(python, &world, "client_http.py", &[&url, TOKEN]);
    // Bug hunt: the executions tools run were missing from /metrics (an admin token's).
    let (status, metrics) = get_as(server.port, "/metrics", ADMIN_TOKEN);
    assert_eq!(status, 200, "{metrics}");
    let exited = r#"warden_executions_total{api="mcp",language="python",mode="sandboxed",outcome="exited"} 1"#;
    assert!(metrics.lines().any(|l| l == exited), "{metrics}");
    drop(server);

    let tools = report["tools"].as_array().expect("the tools listed");
    for name in ["run_code", "shell", "files", "wc"] {
        assert!(tools.contains(&Value::from(name)), "{name}: {report:#}");
    }
    let run = &report["run_code"];
    assert_eq!(run["is_error"], false, "{run:#}");
    assert_eq!(run["text"], "over http\n", "{run:#}");
    let anonymous = &report["anonymous"];
    assert_eq!(anonymous["failed"], true, "{anonymous:#}");
    assert_eq!(anonymous["status"], 401, "{anonymous:#}");

    // The calls are counted under their tools, and recorded as the MCP API's, by the token.
    let run_code = stats_of(&world, "run_code");
    assert_eq!(run_code["calls"], 1, "{run_code:#}");
    assert_eq!(run_code["successes"], 1, "{run_code:#}");
    let shell = stats_of(&world, "shell");
    assert_eq!(shell["calls"], 1, "{shell:#}");
    assert_eq!(shell["failures"], 1, "{shell:#}");
    let id = text(&run["structured"]["execution_id"]);
    let shown = json_of(
        &world
            .warden()
            .args(["show", id, "--json"])
            .output()
            .expect("warden runs"),
    );
    assert_eq!(shown["api"], "mcp", "{shown:#}");
    assert_eq!(shown["token"], "mcp-tester", "{shown:#}");

    // Last, as it fails today: the result of a run cut at its output limit must reach a
    // client that keeps the SDK's default 1 MiB limit on one server-sent event.
    let flood = &report["flood"];
    assert_eq!(flood["is_error"], true, "{flood:#}");
    assert!(text(&flood["text"]).contains("output limit"), "{flood:#}");
}

/// The processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id().to_string();
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| e.file_name().to_string_lossy() != own)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

fn status_in(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_owned()
}

#[test]
fn a_wrapped_server_sees_only_its_sandbox_and_is_stopped_at_a_denied_connection() {
    let Some(python) = venv_python() else { return };
    let world = World::visible_to_sandboxes();
    let server_dir = world.path().join("server");
    std::fs::create_dir(&server_dir).expect("server directory");
    let server = server_dir.join("wrapped_server.py");
    std::fs::copy(script("wrapped_server.py"), &server).expect("server copied");
    let secret = world.path().join("secret.txt");
    std::fs::write(&secret, "the secret\n").expect("secret written");
    let status = world.path().join("status");
    let address = host_address().to_string();
    let report = run_client(
        python,
        &world,
        "client_wrapped.py",
        &[
            warden_binary(),
            &server_dir.to_string_lossy(),
            &secret.to_string_lossy(),
            &address,
            "9",
            &status.to_string_lossy(),
        ],
    );

    assert_eq!(
        report["tools"],
        serde_json::json!(["add", "connect", "read_file"]),
        "{report:#}"
    );
    assert_eq!(report["add"]["is_error"], false, "{report:#}");
    assert_eq!(report["add"]["text"], "5", "{report:#}");
    for read in ["secret", "shadow"] {
        assert_eq!(report[read]["is_error"], true, "{read}: {report:#}");
        assert!(
            !text(&report[read]["text"]).contains("the secret"),
            "{report:#}"
        );
    }
    for call in ["connect", "after"] {
        let failed = &report[call];
        assert_eq!(failed["raised"], true, "{call}: {report:#}");
        assert!(
            text(&failed["message"]).contains("stopped"),
            "{call}: {report:#}"
        );
    }
    assert!(
        text(&report["connect"]["message"]).contains(&format!("{address}:9")),
        "{report:#}"
    );
    assert_eq!(status_in(&status), "120", "warden mcp wrap's exit status");

    let log = json_of(
        &world
            .warden()
            .args(["network", "log", "--json", "--denied"])
            .output()
            .expect("warden runs"),
    );
    let attempts = log.as_array().expect("a list of attempts");
    assert!(
        attempts
            .iter()
            .any(|a| a["addr"] == address.as_str() && a["port"] == 9 && a["allowed"] == false),
        "{log:#}"
    );
    assert!(stats_of(&world, "demo/add")["successes"].as_u64() >= Some(1));
    let read = stats_of(&world, "demo/read_file");
    assert!(read["failures"].as_u64() >= Some(1), "{read:#}");
    let connect = stats_of(&world, "demo/connect");
    assert!(connect["violations"].as_u64() >= Some(1), "{connect:#}");
    let left = processes_with(&server.to_string_lossy());
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn a_wrapped_server_that_crashes_fails_the_call_and_ends_the_relay() {
    let Some(python) = venv_python() else { return };
    let world = World::visible_to_sandboxes();
    let server_dir = world.path().join("server");
    std::fs::create_dir(&server_dir).expect("server directory");
    let server = server_dir.join("crashing_server.py");
    std::fs::copy(script("crashing_server.py"), &server).expect("server copied");
    let status = world.path().join("status");
    let report = run_client(
        python,
        &world,
        "client_crash.py",
        &[
            warden_binary(),
            &server.to_string_lossy(),
            &status.to_string_lossy(),
        ],
    );
    assert_eq!(report["tools"], serde_json::json!(["crash"]), "{report:#}");
    let crash = &report["crash"];
    assert_eq!(crash["raised"], true, "{crash:#}");
    assert!(
        text(&crash["message"]).contains("exited with status 3"),
        "{crash:#}"
    );
    // The relay ended with the server, and says how the server ended.
    assert_eq!(status_in(&status), "3", "warden mcp wrap's exit status");
    let counted = stats_of(&world, "crashing/crash");
    assert_eq!(counted["failures"], 1, "{counted:#}");
    let left = processes_with(&server.to_string_lossy());
    assert!(left.is_empty(), "still running: {left:?}");
}

/// A GET with the server's token: the status and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    get_as(port, path, TOKEN)
}

/// A GET with `token`: the status and the body.
fn get_as(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

/// Whether `condition` holds within `bound` (a bound on a hang, not a timing assertion).
fn eventually(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    condition()
}

/// The processes whose command line is exactly `command`.
fn processes_running(command: &str) -> Vec<String> {
    processes_with(command)
        .into_iter()
        .filter(|c| c.trim() == command)
        .collect()
}

/// What client_cancel.py saw: the program started, the call was abandoned (the SDK sent
/// `notifications/cancelled`), the program's process went while the session stayed open, and
/// the session went on.
fn assert_cancelled(report: &Value) {
    assert!(report["started_after"].is_number(), "{report:#}");
    assert_eq!(report["cancelled"], true, "{report:#}");
    assert!(report.get("answered").is_none(), "{report:#}");
    assert!(
        report["gone_after"].is_number(),
        "the program outlived its cancelled call: {report:#}"
    );
    assert_eq!(report["after"]["is_error"], false, "{report:#}");
}

/// Bug hunt: `notifications/cancelled` was ignored; the program ran to its end (and
/// `warden mcp` with it, after its client had gone).
#[test]
fn a_cancelled_call_ends_its_program_over_stdio() {
    let Some(python) = venv_python() else { return };
    let world = World::new();
    let report = run_client(
        python,
        &world,
        "client_cancel.py",
        &["stdio", warden_binary(), "47.5"],
    );
    assert_cancelled(&report);
    // Bug hunt: the cancelled call was counted as refused (nothing ran), not as a failure.
    let run_code = stats_of(&world, "run_code");
    assert_eq!(
        (&run_code["failures"], &run_code["refusals"]),
        (&Value::from(1), &Value::from(0)),
        "{run_code:#}"
    );
    // Its execution is recorded as cancelled, with what it ran (docs/events.md).
    let cancelled = json_of(
        &world
            .warden()
            .args(["history", "--json", "--outcome", "cancelled"])
            .output()
            .expect("warden runs"),
    );
    let cancelled = cancelled.as_array().expect("a list");
    assert_eq!(cancelled.len(), 1, "{cancelled:#?}");
    assert_eq!(cancelled[0]["language"], "bash", "{cancelled:#?}");
    assert_eq!(cancelled[0]["api"], "mcp", "{cancelled:#?}");
}

/// Bug hunt: over `/mcp` too; and the worker the call held is free again.
#[test]
fn a_cancelled_call_ends_its_program_over_http() {
    let Some(python) = venv_python() else { return };
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"mcp-tester\"\ntoken = \"{TOKEN}\"\n"
    ));
    let server = serve(&world);
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    let report = run_client(
        python,
        &world,
        "client_cancel.py",
        &["http", &url, TOKEN, "48.5"],
    );
    assert_cancelled(&report);
    let idle = eventually(Duration::from_secs(20), || {
        let (_, body) = get(server.port, "/v1/health");
        serde_json::from_str::<Value>(&body).is_ok_and(|h| h["load"]["running"] == 0)
    });
    assert!(idle, "{:?}", get(server.port, "/v1/health"));
}

/// `initialize` as a client named `client` sends it, then `notifications/initialized`.
fn opening(client: &str) -> [Value; 2] {
    [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": client, "version": "0"}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]
}

/// `initialize` as one line of JSON, for a raw request to `/mcp`.
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// `warden mcp` over stdio in `world`, its answers to `stdout`; and its input.
fn stdio_mcp(world: &World, stdout: Stdio) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = world
        .warden()
        .arg("mcp")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("warden mcp starts");
    let stdin = child.stdin.take().expect("piped");
    (child, stdin)
}

/// Bug hunt: a client that closes stdin with a call in flight left its program running to
/// its end, and `warden mcp` waiting for it.
#[test]
fn closing_stdin_cancels_the_calls_in_flight() {
    let world = World::new();
    let (mut child, mut stdin) = stdio_mcp(&world, Stdio::null());
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"language": "bash", "code": "sleep 49.5; echo done",
        "limits": {"wall_time": "60s"}}}});
    for message in opening("closer").into_iter().chain([call]) {
        writeln!(stdin, "{message}").expect("warden mcp reads");
    }
    let started = eventually(Duration::from_secs(60), || {
        !processes_running("sleep 49.5").is_empty()
    });
    assert!(started, "the program did not start");
    drop(stdin);
    let gone = eventually(Duration::from_secs(25), || {
        processes_running("sleep 49.5").is_empty()
    });
    let exited = eventually(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(gone, "the program outlived its client");
    assert!(exited, "warden mcp outlived its client");
}

/// A raw HTTP request to `/mcp` with `token` and `headers`: the status, the `mcp-session-id`
/// answered (if any), and the body.
fn mcp_request(
    port: u16,
    method: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, String) {
    let answer = mcp_answer(port, method, token, headers, body);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let session = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("mcp-session-id")
            .then(|| value.trim().to_owned())
    });
    (status, session, body.to_owned())
}

/// [`mcp_request`]'s answer whole: its head and its body.
fn mcp_answer(
    port: u16,
    method: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut request = format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Bug hunt: an MCP session over HTTP was anyone's who knew its id: another token could end
/// it (killing its calls) or call tools in it. It is now its opener's only: for another
/// token, it is not found.
#[test]
fn an_mcp_session_is_its_opening_tokens_only() {
    const OTHER: &str = "mcp-other-secret-9876543210";
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n\
         [[server.tokens]]\nname = \"bob\"\ntoken = \"{OTHER}\"\n"
    ));
    let server = serve(&world);
    let init = INITIALIZE;
    let (status, session, body) = mcp_request(server.port, "POST", TOKEN, &[], init);
    assert_eq!(status, 200, "{body}");
    let session = session.expect("a session id");
    let with_session = [("Mcp-Session-Id", session.as_str())];
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (status, _, body) = mcp_request(server.port, "POST", OTHER, &with_session, list);
    assert_eq!(status, 404, "another token used the session: {body}");
    let (status, _, body) = mcp_request(server.port, "DELETE", OTHER, &with_session, "");
    assert_eq!(status, 404, "another token ended the session: {body}");
    let (status, _, body) = mcp_request(server.port, "DELETE", TOKEN, &with_session, "");
    assert_eq!(status, 200, "its opener ends it: {body}");
}

/// Bug hunt: MCP sessions were unbounded (40,000 `initialize` took 2 GB, none charged to the
/// token's rate), and each session's event stream (`GET /mcp`) held a connection slot for as
/// long as the client kept it: 64 of them kept every other client out. A caller holds at most
/// a quarter of `max_connections` of each now (here 2).
#[test]
fn a_callers_mcp_sessions_and_event_streams_are_bounded() {
    let world = World::with_config(&format!(
        "[server]\nmax_connections = 8\n[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n\
         [[server.tokens]]\nname = \"bob\"\ntoken = \"bob-secret-0123456789\"\n"
    ));
    let server = serve(&world);
    let init = INITIALIZE;
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let (status, session, body) = mcp_request(server.port, "POST", TOKEN, &[], init);
        assert_eq!(status, 200, "{body}");
        let session = session.expect("a session id");
        let with = [("Mcp-Session-Id", session.as_str())];
        let (status, _, body) = mcp_request(server.port, "POST", TOKEN, &with, initialized);
        assert!(status < 300, "{status}: {body}");
        sessions.push(session);
    }
    let (status, _, body) = mcp_request(server.port, "POST", TOKEN, &[], init);
    assert_eq!(status, 429, "a third session: {body}");
    assert!(body.contains("MCP sessions open at once"), "{body}");
    let (status, _, body) = mcp_request(server.port, "POST", "bob-secret-0123456789", &[], init);
    assert_eq!(status, 200, "another token has its own: {body}");

    // Two event streams held open; a third is refused, and health is answered throughout.
    let streams: Vec<TcpStream> = sessions
        .iter()
        .map(|session| {
            let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
            write!(
                stream,
                "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Accept: text/event-stream\r\nMcp-Session-Id: {session}\r\n\r\n"
            )
            .expect("request sent");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let with = [("Mcp-Session-Id", sessions[0].as_str())];
    let (status, _, body) = mcp_request(server.port, "GET", TOKEN, &with, "");
    assert_eq!(status, 429, "a third stream: {body}");
    assert!(health(server.port));
    drop(streams);
    // Ending a session frees its place.
    let (status, _, body) = mcp_request(server.port, "DELETE", TOKEN, &with, "");
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = mcp_request(server.port, "POST", TOKEN, &[], init);
    assert_eq!(status, 200, "a session again: {body}");
}

/// Left undone, then fixed: a caller's bound on MCP sessions was checked when an `initialize`
/// came and the session counted only once rmcp's answer named it, so `initialize`s sent
/// together all passed the check. A session being opened now holds its place from the check.
#[test]
fn initializes_sent_together_open_no_more_sessions_than_the_bound() {
    let world = World::with_config(&format!(
        "[server]\nmax_connections = 8\n[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n"
    ));
    let server = serve(&world);
    let port = server.port;
    let start = std::sync::Arc::new(std::sync::Barrier::new(12));
    let senders: Vec<_> = (0..12)
        .map(|_| {
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                (0..25)
                    .map(|_| mcp_request(port, "POST", TOKEN, &[], INITIALIZE))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("sender"))
        .collect();
    let mut opened: Vec<&String> = answers.iter().filter_map(|(_, s, _)| s.as_ref()).collect();
    opened.sort();
    opened.dedup();
    assert!(
        opened.len() <= 2,
        "{} sessions opened past a bound of 2",
        opened.len()
    );
    assert!(!opened.is_empty(), "some initialize passed");
    for (status, session, body) in &answers {
        assert!(
            (*status == 200 && session.is_some()) || *status == 429,
            "{status}: {body}"
        );
    }
}

/// Bug hunt: a request whose id was already in flight in its session took the route of the
/// first one's answer (rmcp routes answers by id): the first `POST`'s event stream never got
/// its answer and stayed open, kept alive, for five minutes; and `POST /mcp` streams were not
/// among a token's long-lived connections, so one token held the server's connections with
/// them. The second request is refused at once now (-32600), the first answered; and a
/// request's stream holds one of the token's places (here 2) until its answer, while a
/// notification (a cancel) needs none.
#[test]
fn an_id_in_flight_is_refused_and_a_requests_stream_holds_a_place() {
    let world = World::with_config(&format!(
        "[server]\nmax_connections = 8\n[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n"
    ));
    let server = serve(&world);
    let port = server.port;
    let init = INITIALIZE;
    let (status, session, body) = mcp_request(port, "POST", TOKEN, &[], init);
    assert_eq!(status, 200, "{body}");
    let session = session.expect("a session id");
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let with = [("Mcp-Session-Id", session.as_str())];
    let (status, _, body) = mcp_request(port, "POST", TOKEN, &with, initialized);
    assert!(status < 300, "{status}: {body}");
    let call = |id: u32, seconds: &'static str| {
        let session = session.clone();
        std::thread::spawn(move || {
            let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "shell", "arguments": {"command": format!("sleep {seconds}; echo done {id}")}}});
            let with = [("Mcp-Session-Id", session.as_str())];
            mcp_request(port, "POST", TOKEN, &with, &body.to_string())
        })
    };
    let first = call(7, "3.25");
    let second = call(8, "3.5");
    let running = eventually(Duration::from_secs(60), || {
        !processes_running("sleep 3.25").is_empty() && !processes_running("sleep 3.5").is_empty()
    });
    assert!(running, "the calls did not start");
    let (status, _, body) = mcp_request(
        port,
        "POST",
        TOKEN,
        &with,
        r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("-32600"), "{body}");
    assert!(body.contains("already in flight"), "{body}");
    // Two requests' streams are open: a third request is refused, a notification is not.
    let (status, _, body) = mcp_request(
        port,
        "POST",
        TOKEN,
        &with,
        r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
    );
    assert_eq!(status, 429, "a third stream: {body}");
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":8}}"#;
    let (status, _, body) = mcp_request(port, "POST", TOKEN, &with, cancel);
    assert!(status < 300, "a cancel at the limit: {status}: {body}");
    // The first call gets its own answer (before the fix: none, for five minutes).
    let (status, _, body) = first.join().expect("the first call");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("done 7"), "{body}");
    let _ = second.join().expect("the second call");
    let (status, _, body) = mcp_request(
        port,
        "POST",
        TOKEN,
        &with,
        r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""result""#), "the id is free again: {body}");
}

/// Bug hunt: `warden mcp` over stdio ran every call it was sent at once (60 calls, 60
/// sandboxes); `[server] workers` and `queue_size` did not apply. They bound it now: here one
/// call runs, one waits, and the third is a tool error saying the queue is full.
#[test]
fn calls_over_stdio_are_bounded_by_the_workers_and_the_queue() {
    let world = World::with_config("[server]\nworkers = 1\nqueue_size = 1\n");
    let (mut child, mut stdin) = stdio_mcp(&world, Stdio::piped());
    let mut messages = opening("many").to_vec();
    for id in 2..5 {
        messages.push(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": format!("sleep 1.25; echo call {id}")}}}));
    }
    for message in messages {
        writeln!(stdin, "{message}").expect("warden mcp reads");
    }
    let stdout = child.stdout.take().expect("piped");
    let mut answers = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let answer: Value = serde_json::from_str(&line.expect("a line")).expect("json");
        if answer["id"].as_u64().is_some_and(|id| id >= 2) {
            answers.push(answer);
        }
        if answers.len() == 3 {
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    let full: Vec<&Value> = answers
        .iter()
        .filter(|a| text(&a["result"]["content"][0]["text"]).contains("the queue is full"))
        .collect();
    assert_eq!(full.len(), 1, "{answers:#?}");
    assert_eq!(full[0]["result"]["isError"], true, "{answers:#?}");
    let ran = answers
        .iter()
        .filter(|a| text(&a["result"]["content"][0]["text"]).starts_with("call "))
        .count();
    assert_eq!(ran, 2, "{answers:#?}");
}

/// Over stdio, every call took a place before it was checked, so a `run_code`
/// call whose `limits` are above the operator's maxima (as an unknown tool, or input the schema
/// refuses) was answered that the queue is full while another call ran, or waited for it. Such
/// a call is refused at once now, taking no place.
#[test]
fn a_call_refused_before_it_runs_takes_no_place_over_stdio() {
    let world =
        World::with_config("[server]\nworkers = 1\nqueue_size = 0\n[maxima]\nmemory = \"1GiB\"\n");
    let (mut child, mut stdin) = stdio_mcp(&world, Stdio::piped());
    let sleep = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "shell", "arguments": {"command": "sleep 2.75; echo slept"}}});
    for message in opening("refused").into_iter().chain([sleep]) {
        writeln!(stdin, "{message}").expect("warden mcp reads");
    }
    let started = eventually(Duration::from_secs(60), || {
        !processes_running("sleep 2.75").is_empty()
    });
    assert!(started, "the first call did not start");
    let over = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "run_code", "arguments": {"language": "bash", "code": "echo ran",
        "limits": {"memory": "2GiB"}}}});
    writeln!(stdin, "{over}").expect("warden mcp reads");
    let stdout = child.stdout.take().expect("piped");
    let mut answers = std::collections::BTreeMap::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let answer: Value = serde_json::from_str(&line.expect("a line")).expect("json");
        if let Some(id @ 2..) = answer["id"].as_u64() {
            answers.insert(id, answer);
        }
        if answers.len() == 2 {
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    let refused = &answers[&3]["result"];
    assert_eq!(refused["isError"], true, "{answers:#?}");
    assert_eq!(
        text(&refused["content"][0]["text"]),
        "limits.memory: 2GiB is above the operator's maximum of 1GiB",
        "{answers:#?}"
    );
    assert_eq!(
        text(&answers[&2]["result"]["content"][0]["text"]),
        "slept\n",
        "{answers:#?}"
    );
}

/// A request to the own API with `token`: the status and the body.
fn v1_request(port: u16, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// Bug hunt: a tool one token registered with a property's description of 1.1 MiB was listed
/// in every token's `tools/list`, an event past the 1 MiB the Python SDK takes: every other
/// token's client failed to list (and so to call) tools, and could not remove it. A schema is
/// bounded now (64 KiB, its strings 2000 characters: 422 past either), and a client's
/// registrations are its own token's: neither listed nor callable by another.
#[test]
fn a_tokens_registered_tools_never_reach_another_tokens_list() {
    const BOB: &str = "mcp-bob-secret-0123456789";
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n\
         [[server.tokens]]\nname = \"bob\"\ntoken = \"{BOB}\"\n"
    ));
    let server = serve(&world);
    let port = server.port;
    let tool = |name: &str, description: &str| {
        let definition = format!(
            "name = \"{name}\"\ndescription = \"Counts words.\"\ncategory = \"compute\"\n\
             [input]\ntype = \"object\"\n[input.properties.text]\ntype = \"string\"\n\
             description = \"{description}\"\n[run]\nprogram = \"wc.py\"\n"
        );
        serde_json::json!({"definition": definition,
            "files": {"wc.py": "import sys, json\nprint(len(json.load(sys.stdin)['text'].split()))\n"}})
        .to_string()
    };
    let (status, body) = v1_request(
        port,
        TOKEN,
        "POST",
        "/v1/tools",
        &tool("huge", &"A".repeat(1_100_000)),
    );
    assert_eq!(status, 422, "{}", &body[..body.len().min(300)]);
    assert!(body.contains("more than 65536"), "{body}");
    let (status, body) = v1_request(
        port,
        TOKEN,
        "POST",
        "/v1/tools",
        &tool("long", &"A".repeat(3000)),
    );
    assert_eq!(status, 422, "{}", &body[..body.len().min(300)]);
    assert!(
        body.contains("/properties/text/description is 3000 characters long, more than 2000"),
        "{body}"
    );
    let (status, body) = v1_request(
        port,
        TOKEN,
        "POST",
        "/v1/tools",
        &tool("alices_wc", "The text."),
    );
    assert_eq!(status, 201, "{body}");

    let list = |token: &str| {
        let (status, session, body) = mcp_request(port, "POST", token, &[], INITIALIZE);
        assert_eq!(status, 200, "{body}");
        let session = session.expect("a session id");
        let with = [("Mcp-Session-Id", session.as_str())];
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        mcp_request(port, "POST", token, &with, initialized);
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        let (status, _, body) = mcp_request(port, "POST", token, &with, list);
        assert_eq!(status, 200, "{body}");
        body
    };
    let alices = list(TOKEN);
    assert!(alices.contains("alices_wc"), "{alices}");
    let bobs = list(BOB);
    assert!(bobs.contains("run_code"), "{bobs}");
    assert!(!bobs.contains("alices_wc"), "{bobs}");
    let (status, body) = v1_request(port, BOB, "GET", "/v1/tools", "");
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("alices_wc"), "{body}");
    let (status, body) = v1_request(port, BOB, "GET", "/v1/tools/alices_wc", "");
    assert_eq!(status, 404, "{body}");
    let input = r#"{"text": "one two"}"#;
    let (status, body) = v1_request(port, BOB, "POST", "/v1/tools/alices_wc/call", input);
    assert_eq!(status, 404, "{body}");
    let (status, body) = v1_request(port, TOKEN, "POST", "/v1/tools/alices_wc/call", input);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""text":"2\n""#), "{body}");
}

/// Sends `signal` to `child`, which this test started.
fn signal_child(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, signal).expect("the signal is sent");
}

/// The exit status of `child` within `bound`; it is killed (and the test fails) past it.
fn exit_within(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let mut status = None;
    let exited = eventually(bound, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    status.unwrap_or_else(|| panic!("the process outlived its signal by {bound:?}"))
}

/// Bug hunt: SIGTERM (how an MCP client ends a stdio server when closing stdin was not
/// enough) killed `warden mcp` outright: the call in flight was neither recorded as
/// cancelled nor counted. Now the signal ends the session at once, without rmcp's grace: the
/// call's program is killed, its execution recorded as cancelled and the call counted as a
/// failure, the call answered before it counted too; the exit status is 128 + 15.
#[test]
fn sigterm_cancels_and_records_the_calls_in_flight_over_stdio() {
    let world = World::new();
    let (mut child, mut stdin) = stdio_mcp(&world, Stdio::piped());
    let quick = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "shell", "arguments": {"command": "echo quick"}}});
    for message in opening("terminated").into_iter().chain([quick]) {
        writeln!(stdin, "{message}").expect("warden mcp reads");
    }
    let stdout = child.stdout.take().expect("piped");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let answered = lines.any(|line| {
        let answer: Value = serde_json::from_str(&line.expect("a line")).expect("json");
        answer["id"] == 2
    });
    assert!(answered, "the quick call was answered");
    let slow = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"language": "bash", "code": "sleep 46.5; echo done",
        "limits": {"wall_time": "60s"}}}});
    writeln!(stdin, "{slow}").expect("warden mcp reads");
    terminated_while(&mut child, stdin, "sleep 46.5");
    let run_code = stats_of(&world, "run_code");
    assert_eq!(
        (&run_code["calls"], &run_code["failures"]),
        (&Value::from(1), &Value::from(1)),
        "{run_code:#}"
    );
    assert_eq!(stats_of(&world, "shell")["calls"], 1);
    let cancelled = cancelled_executions(&world);
    assert_eq!(cancelled.len(), 1, "{cancelled:#?}");
    assert_eq!(cancelled[0]["api"], "mcp", "{cancelled:#?}");
}

/// Waits for `sleeping` (a process of the call in flight) to run, sends `child` SIGTERM while
/// its client still holds stdin open (as the SDK does until it sends SIGKILL), and checks it
/// exits 128 + 15 within 15 s leaving no process of the call and no cgroup.
fn terminated_while(child: &mut Child, stdin: std::process::ChildStdin, sleeping: &str) {
    let started = eventually(Duration::from_secs(60), || {
        !processes_running(sleeping).is_empty()
    });
    assert!(started, "{sleeping} did not start");
    signal_child(child, nix::sys::signal::Signal::SIGTERM);
    let status = exit_within(child, Duration::from_secs(15));
    drop(stdin);
    assert_eq!(status.code(), Some(128 + 15), "{status}");
    assert!(
        processes_running(sleeping).is_empty(),
        "{sleeping} outlived its call"
    );
    assert_eq!(
        support::cgroups_of(child.id()),
        0,
        "a cgroup was left behind"
    );
}

/// The executions the history records as cancelled.
fn cancelled_executions(world: &World) -> Vec<Value> {
    let cancelled = json_of(
        &world
            .warden()
            .args(["history", "--json", "--outcome", "cancelled"])
            .output()
            .expect("warden runs"),
    );
    cancelled.as_array().expect("a list").clone()
}

/// Bug hunt: SIGTERM killed `warden mcp wrap` outright: the server's execution was not
/// recorded, and none of the relayed calls were counted, not even one already answered. Now
/// the signal ends the relay at once, without waiting for the client to close its side: the
/// server is killed and its execution recorded as cancelled, the call answered counts as a
/// success and the call in flight as a failure; the exit status is 128 + 15.
#[test]
fn sigterm_ends_a_relay_and_records_its_calls_and_server() {
    let world = World::new();
    // Answers the first call at once, under the id the relay gave it (its own, not the
    // client's); reads the second and never answers it.
    let server = r#"read first; id=$(printf '%s' "$first" | sed -n 's/.*"id":\([0-9]*\).*/\1/p'); printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[]}}\n' "$id"; read second; sleep 45.5"#;
    let mut child = world
        .warden()
        .args(["mcp", "wrap", "term", "--", "/bin/sh", "-c", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("warden mcp wrap starts");
    let mut stdin = child.stdin.take().expect("piped");
    let call = |id: u32| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "slow", "arguments": {}}})
    };
    writeln!(stdin, "{}", call(2)).expect("the relay reads");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first: Value =
        serde_json::from_str(&lines.next().expect("an answer").expect("a line")).expect("json");
    assert_eq!(first["id"], 2, "{first}");
    writeln!(stdin, "{}", call(3)).expect("the relay reads");
    // The server reads the second call and sleeps.
    terminated_while(&mut child, stdin, "sleep 45.5");
    let slow = stats_of(&world, "term/slow");
    assert_eq!(
        (&slow["calls"], &slow["failures"]),
        (&Value::from(2), &Value::from(1)),
        "{slow:#}"
    );
    let cancelled = cancelled_executions(&world);
    assert_eq!(cancelled.len(), 1, "the server's execution: {cancelled:#?}");
}

/// Bug hunt "regr2": once the wrapped server had ended on its own, `warden mcp wrap` waited
/// for its client to close its side and ignored SIGTERM (it could only be killed), and a
/// request in flight that was not a tool call (`initialize`) was never answered, so client and
/// relay waited on each other. The request is answered with why the server is gone, and the
/// signal ends the relay.
#[test]
fn a_signal_ends_a_relay_whose_server_already_ended() {
    let world = World::new();
    let server = "read first; echo crashing >&2; exit 3";
    let mut child = world
        .warden()
        .args(["mcp", "wrap", "crashy", "--", "/bin/sh", "-c", server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("warden mcp wrap starts");
    let mut stdin = child.stdin.take().expect("piped");
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}});
    writeln!(stdin, "{initialize}").expect("the relay reads");
    let stdout = child.stdout.take().expect("piped");
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let _ = line_tx.send(lines.next());
    });
    let answered = line_rx.recv_timeout(Duration::from_secs(15));
    signal_child(&child, nix::sys::signal::Signal::SIGTERM);
    let status = exit_within(&mut child, Duration::from_secs(15));
    drop(stdin);
    let answer = answered.expect("initialize answered").expect("an answer");
    let answer: Value = serde_json::from_str(&answer.expect("a line")).expect("json");
    assert_eq!(answer["id"], 1, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("ended"), "{answer}");
    assert_eq!(status.code(), Some(128 + 15), "{status}");
}

/// Opens an MCP session as `token` on `port` and sends `notifications/initialized`.
fn open_mcp_session(port: u16, token: &str) -> String {
    let (status, session, body) = mcp_request(port, "POST", token, &[], INITIALIZE);
    assert_eq!(status, 200, "{body}");
    let session = session.expect("a session id");
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let with = [("Mcp-Session-Id", session.as_str())];
    let (status, _, body) = mcp_request(port, "POST", token, &with, initialized);
    assert!(status < 300, "{status}: {body}");
    session
}

/// Hunt tools 3: at SIGTERM the server ended the MCP sessions at once: a call in flight was
/// cancelled and its `POST` got no answer, where a `/v1` call finished within
/// `shutdown_deadline`. It finishes now, and is answered.
#[test]
fn an_mcp_call_in_flight_at_sigterm_finishes_and_is_answered() {
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n"
    ));
    let server = serve(&world);
    let port = server.port;
    let session = open_mcp_session(port, TOKEN);
    let call = std::thread::spawn(move || {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "shell", "arguments": {"command": "sleep 2.71; echo finished"}}});
        let with = [("Mcp-Session-Id", session.as_str())];
        mcp_request(port, "POST", TOKEN, &with, &body.to_string())
    });
    let running = eventually(Duration::from_secs(60), || {
        !processes_running("sleep 2.71").is_empty()
    });
    assert!(running, "the call did not start");
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
    let (status, _, body) = call.join().expect("the call");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("finished"), "{body}");
    assert!(!body.contains("isError\":true"), "{body}");
}

/// Hunt tools 10: another token's session id got warden's JSON 404, an unknown one rmcp's
/// plain one: the answers told the two apart.
#[test]
fn another_tokens_session_is_answered_as_an_unknown_one() {
    const BOB: &str = "mcp-bob-secret-9876543210";
    let world = World::with_config(&format!(
        "[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n\
         [[server.tokens]]\nname = \"bob\"\ntoken = \"{BOB}\"\n"
    ));
    let server = serve(&world);
    let session = open_mcp_session(server.port, TOKEN);
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    // The answers without their date.
    let answer = |session: &str| -> String {
        let with = [("Mcp-Session-Id", session)];
        mcp_answer(server.port, "POST", BOB, &with, list)
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let unknown = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let theirs = answer(&session);
    assert!(theirs.starts_with("HTTP/1.1 404"), "{theirs}");
    assert_eq!(theirs, answer(unknown));
    let end = |session: &str| {
        let with = [("Mcp-Session-Id", session)];
        let answer = mcp_answer(server.port, "DELETE", BOB, &with, "");
        let kept: Vec<&str> = answer
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect();
        kept.join("\n")
    };
    let theirs = end(&session);
    assert!(theirs.starts_with("HTTP/1.1 404"), "{theirs}");
    assert_eq!(theirs, end(unknown));
}

/// Hunt tools 11: a request without a session (a `ping`) was refused by the cap on sessions
/// (429), and charged as opening one, though only `initialize` opens one.
#[test]
fn only_an_initialize_counts_against_the_cap_on_sessions() {
    let world = World::with_config(&format!(
        "[server]\nmax_connections = 8\n[[server.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\n"
    ));
    let server = serve(&world);
    for _ in 0..2 {
        open_mcp_session(server.port, TOKEN);
    }
    let (status, _, body) = mcp_request(server.port, "POST", TOKEN, &[], INITIALIZE);
    assert_eq!(status, 429, "a third session: {body}");
    let ping = r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#;
    let (status, _, body) = mcp_request(server.port, "POST", TOKEN, &[], ping);
    assert_ne!(status, 429, "a ping opens no session: {body}");
}

/// Hunt cli 5: once the client's end of stdout was closed, every answer failed with a broken
/// pipe, yet `warden mcp` ran each new call to its end and lived until stdin closed. A failed
/// write now ends the session as a closed stdin does: the calls in flight are cancelled.
#[test]
fn a_closed_stdout_ends_the_session_and_cancels_the_calls_in_flight() {
    use std::io::BufRead;
    let world = World::new();
    let (mut child, mut stdin) = stdio_mcp(&world, Stdio::piped());
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    for message in opening("reader") {
        writeln!(stdin, "{message}").expect("warden mcp reads");
    }
    let mut answer = String::new();
    stdout
        .read_line(&mut answer)
        .expect("the initialize answer");
    assert!(answer.contains("\"result\""), "{answer}");
    drop(stdout);
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "run_code", "arguments": {"language": "bash", "code": "sleep 48.5; echo done",
        "limits": {"wall_time": "60s"}}}});
    writeln!(stdin, "{call}").expect("warden mcp reads");
    let started = eventually(Duration::from_secs(60), || {
        !processes_running("sleep 48.5").is_empty()
    });
    assert!(started, "the program did not start");
    // An answer to write: it fails.
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    writeln!(stdin, "{list}").expect("warden mcp reads");
    let gone = eventually(Duration::from_secs(25), || {
        processes_running("sleep 48.5").is_empty()
    });
    let exited = eventually(Duration::from_secs(10), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    drop(stdin);
    assert!(gone, "the program outlived its client's stdout");
    assert!(exited, "warden mcp outlived its client's stdout");
}
