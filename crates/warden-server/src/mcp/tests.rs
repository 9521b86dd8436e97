//! The adapter against a fake registry: raw JSON-RPC lines over an in-memory stream (what an
//! MCP client writes to `warden mcp`'s stdin), and HTTP requests through the tower service.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use super::stdio::serve_stream;
use super::{
    http_service, CallRefused, HttpOptions, McpCaller, McpError, ToolCall, ToolHost, ToolInfo,
    ToolReply,
};

/// Two tools: `echo` answers its `text` (and who called), `fail` is a program that failed,
/// or with `"busy": true` a call the queue refused. And `hang`, not listed: a call that never
/// ends, which says when it started and when its future was dropped (the call cancelled);
/// and `nap`, a call of `ms` milliseconds that says how it ended (answered or cancelled).
#[derive(Default)]
struct FakeHost {
    hang: Arc<Hang>,
    naps: Arc<Naps>,
    listing: Arc<Gate>,
}

/// When closed, holds every listing of the tools until the test opens it: a registry that
/// loads again for long (the programs another process registered being analysed).
#[derive(Default)]
struct Gate {
    closed: std::sync::atomic::AtomicBool,
    entered: Notify,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Whether a listing stopped waiting, the test never having opened the gate (a bound on
    /// a hang: its thread was the one the test runs on).
    gave_up: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn pass(&self) {
        if !self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.entered.notify_one();
        let open = self.open.lock().expect("lock");
        let (_open, waited) = self
            .opened
            .wait_timeout_while(open, Duration::from_secs(60), |open| !*open)
            .expect("lock");
        if waited.timed_out() {
            self.gave_up
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn open(&self) {
        *self.open.lock().expect("lock") = true;
        self.opened.notify_all();
    }
}

/// How the `nap` calls ended, in order: `answered` or `cancelled`.
#[derive(Default)]
struct Naps {
    started: Notify,
    ended: Notify,
    outcomes: std::sync::Mutex<Vec<&'static str>>,
}

/// Held by a `nap` call's future: says at its drop whether the call was answered first.
struct NapEnd {
    naps: Arc<Naps>,
    answered: bool,
}

impl Drop for NapEnd {
    fn drop(&mut self) {
        let outcome = if self.answered {
            "answered"
        } else {
            "cancelled"
        };
        self.naps.outcomes.lock().expect("lock").push(outcome);
        self.naps.ended.notify_one();
    }
}

#[derive(Default)]
struct Hang {
    started: Notify,
    dropped: Notify,
    /// Whether dropping the call's future takes a while (a host that winds a call down before
    /// its handler returns), blocking its thread.
    slow_drop: std::sync::atomic::AtomicBool,
}

/// Held by a `hang` call's future: says when it is dropped.
struct DropSignal(Arc<Hang>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if self.0.slow_drop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(300));
        }
        self.0.dropped.notify_one();
    }
}

impl ToolHost for FakeHost {
    fn tool(&self, name: &str) -> Option<ToolInfo> {
        self.tools(None).into_iter().find(|t| t.name == name)
    }

    fn tools(&self, _caller: Option<&str>) -> Vec<ToolInfo> {
        self.listing.pass();
        let schema = |value: Value| match value {
            Value::Object(map) => map,
            _ => unreachable!("the schemas below are objects"),
        };
        vec![
            ToolInfo {
                name: "echo".into(),
                description: "Answers its text.".into(),
                input_schema: schema(json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                })),
                title: Some("Echo".into()),
                read_only: true,
                open_world: false,
            },
            ToolInfo {
                name: "fail".into(),
                description: "Fails.".into(),
                input_schema: schema(json!({"type": "object"})),
                title: None,
                read_only: false,
                open_world: true,
            },
        ]
    }

    fn call(&self, name: String, arguments: Value, caller: Option<String>) -> ToolCall {
        let hang = Arc::clone(&self.hang);
        let naps = Arc::clone(&self.naps);
        Box::pin(async move {
            match name.as_str() {
                "nap" => {
                    let mut end = NapEnd {
                        naps: Arc::clone(&naps),
                        answered: false,
                    };
                    naps.started.notify_one();
                    let ms = arguments["ms"].as_u64().unwrap_or_default();
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    end.answered = true;
                    Ok(ToolReply {
                        text: "napped".into(),
                        structured: None,
                        is_error: false,
                    })
                }
                "sleep" => {
                    let ms = arguments["ms"].as_u64().unwrap_or_default();
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(ToolReply {
                        text: "slept".into(),
                        structured: None,
                        is_error: false,
                    })
                }
                "hang" => {
                    let _signal = DropSignal(Arc::clone(&hang));
                    hang.started.notify_one();
                    std::future::pending().await
                }
                "echo" => {
                    let text = arguments["text"]
                        .as_str()
                        .ok_or_else(|| CallRefused::Invalid("`text` is required".into()))?;
                    Ok(ToolReply {
                        text: text.into(),
                        structured: Some(json!({"text": text, "caller": caller})),
                        is_error: false,
                    })
                }
                "fail" if arguments["busy"] == true => {
                    Err(CallRefused::Busy("the queue is full, retry later".into()))
                }
                "fail" => Ok(ToolReply {
                    text: "exited with status 1".into(),
                    structured: None,
                    is_error: true,
                }),
                _ => Err(CallRefused::UnknownTool(name)),
            }
        })
    }
}

/// The client's end of a stdio session.
struct Client {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    writer: WriteHalf<DuplexStream>,
    next_id: u64,
}

impl Client {
    /// A server on one end of an in-memory stream, this client on the other.
    fn start() -> (Self, JoinHandle<Result<(), McpError>>) {
        Self::start_on(Arc::new(FakeHost::default()))
    }

    /// The same, on `host`.
    fn start_on(host: Arc<FakeHost>) -> (Self, JoinHandle<Result<(), McpError>>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_reader, server_writer) = tokio::io::split(server);
        let server = tokio::spawn(serve_stream(host, server_reader, server_writer, None));
        let (reader, writer) = tokio::io::split(client);
        let client = Self {
            lines: BufReader::new(reader).lines(),
            writer,
            next_id: 1,
        };
        (client, server)
    }

    /// Starts a server and completes the handshake.
    async fn initialized() -> (Self, JoinHandle<Result<(), McpError>>) {
        Self::initialized_on(Arc::new(FakeHost::default())).await
    }

    /// The same, on `host`.
    async fn initialized_on(host: Arc<FakeHost>) -> (Self, JoinHandle<Result<(), McpError>>) {
        let (mut client, server) = Self::start_on(host);
        let answer = client.request("initialize", initialize_params()).await;
        assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
        client
            .send_line(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
            )
            .await;
        (client, server)
    }

    async fn send_line(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("the server reads");
    }

    /// Sends a request and returns the server's answer to it (skipping notifications).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&request.to_string()).await;
        self.answer(Some(&json!(id))).await
    }

    /// The next answer to the request `id`, or with `None` to a request whose id the server
    /// could not read (notifications, which have no id either, are skipped).
    async fn answer(&mut self, id: Option<&Value>) -> Value {
        // A bound on a hang, not a timing assertion: a missing answer fails instead of
        // blocking the suite.
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .expect("the server writes")
                    .expect("the server answers before closing");
                let message: Value = serde_json::from_str(&line).expect("the server writes JSON");
                if message.get("id") == id && message.get("method").is_none() {
                    return message;
                }
            }
        })
        .await
        .expect("an answer")
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "warden-tests", "version": "0"},
    })
}

#[tokio::test]
async fn initialize_names_warden_and_offers_tools() {
    let (mut client, _server) = Client::start();
    let answer = client.request("initialize", initialize_params()).await;
    let result = &answer["result"];
    assert_eq!(result["serverInfo"]["name"], "warden");
    assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(result["capabilities"]["tools"].is_object(), "{answer}");
    assert!(result["instructions"]
        .as_str()
        .is_some_and(|text| text.contains("sandbox")));
}

#[tokio::test]
async fn tools_list_shows_every_tool_with_its_schema_and_hints() {
    let (mut client, _server) = Client::initialized().await;
    let answer = client.request("tools/list", json!({})).await;
    let tools = answer["result"]["tools"].as_array().expect("a list");
    assert_eq!(tools.len(), 2, "{answer}");
    let echo = &tools[0];
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["title"], "Echo");
    assert_eq!(echo["description"], "Answers its text.");
    assert_eq!(echo["inputSchema"]["required"], json!(["text"]));
    assert_eq!(echo["annotations"]["readOnlyHint"], true);
    assert_eq!(echo["annotations"]["openWorldHint"], false);
    let fail = &tools[1];
    assert_eq!(fail["name"], "fail");
    assert_eq!(fail["inputSchema"], json!({"type": "object"}));
    assert_eq!(fail["annotations"]["openWorldHint"], true);
    assert!(fail.get("title").is_none());
}

#[tokio::test]
async fn a_call_answers_the_tools_text_and_structured_content() {
    let (mut client, _server) = Client::initialized().await;
    let answer = client.call("echo", json!({"text": "hello"})).await;
    let result = &answer["result"];
    assert_eq!(
        result["content"],
        json!([{"type": "text", "text": "hello"}])
    );
    assert_eq!(result["isError"], false);
    // Over stdio the caller is the local user: no token name.
    assert_eq!(
        result["structuredContent"],
        json!({"text": "hello", "caller": null})
    );
}

#[tokio::test]
async fn a_failed_program_is_a_tool_error_not_a_protocol_error() {
    let (mut client, _server) = Client::initialized().await;
    // No `arguments` at all: the host sees `{}`.
    let answer = client.request("tools/call", json!({"name": "fail"})).await;
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "exited with status 1"
    );
    assert!(answer["result"].get("structuredContent").is_none());
}

#[tokio::test]
async fn a_busy_server_is_a_tool_error_the_agent_can_retry() {
    let (mut client, _server) = Client::initialized().await;
    let answer = client.call("fail", json!({"busy": true})).await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "the queue is full, retry later"
    );
}

#[tokio::test]
async fn an_unknown_tool_or_malformed_call_is_invalid_params() {
    let (mut client, _server) = Client::initialized().await;
    let answer = client.call("nope", json!({})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(answer["error"]["message"], "unknown tool: \"nope\"");
    // A name of any length is quoted by its start only (the bug hunt sent 1 MB names).
    let answer = client.call(&"x".repeat(1 << 20), json!({})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().expect("a message");
    assert_eq!(
        message,
        format!("unknown tool: \"{}\"... (1048576 bytes)", "x".repeat(64))
    );
    let answer = client.call("echo", json!({"txt": "typo"})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(answer["error"]["message"], "`text` is required");
}

#[tokio::test]
async fn bad_input_does_not_stop_the_server() {
    let (mut client, _server) = Client::initialized().await;
    // Not JSON: ignored (there is no id to answer).
    client.send_line("{this is not json").await;
    // JSON, but not a JSON-RPC message: answered with "invalid request", id unknown.
    client.send_line(r#"{"hello": "world"}"#).await;
    let answer = client.answer(None).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    // A method MCP does not have.
    let answer = client.request("tools/frobnicate", json!({})).await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    // Still serving.
    let answer = client.call("echo", json!({"text": "still here"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

/// Hunter report (docs, finding 10): the refusal said "request _meta is missing or has
/// malformed required fields: ...", rmcp's words for a request of the revision that needs no
/// handshake, and not that `initialize` was missing.
#[tokio::test]
async fn a_request_before_initialize_is_refused_and_the_handshake_still_works() {
    let (mut client, _server) = Client::start();
    let answer = client.request("tools/list", json!({})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        super::initialize_first::INITIALIZE_FIRST,
        "{answer}"
    );
    // MCP allows `ping` before the handshake.
    let answer = client.request("ping", json!({})).await;
    assert!(answer["result"].is_object(), "{answer}");
    let answer = client.request("initialize", initialize_params()).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
}

/// The revision that needs no handshake (its `_meta` in every request) is still served: only
/// what rmcp would refuse is answered by `InitializeFirst`.
#[tokio::test]
async fn a_request_with_the_handshake_free_revisions_meta_is_served() {
    let (mut client, _server) = Client::start();
    let meta = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let answer = client.request("tools/list", meta.clone()).await;
    assert!(answer["result"]["tools"].is_array(), "{answer}");
    // Hunt mcp 4: an `initialize` now was answered, naming 2025-11-25, whose requests were
    // then all refused for lacking the `_meta`. It is refused, and the session goes on.
    let answer = client.request("initialize", initialize_params()).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        super::initialize_first::BEGAN_WITHOUT_INITIALIZE,
        "{answer}"
    );
    let answer = client.request("tools/list", meta).await;
    assert!(answer["result"]["tools"].is_array(), "{answer}");
}

/// Regression hunt: a request with the handshake-free `_meta` of a version rmcp does not know
/// is refused (-32022, naming the versions it supports), and a client falling back to
/// `initialize` was then refused as in a session begun without it.
#[tokio::test]
async fn initialize_after_an_unsupported_handshake_free_version_is_served() {
    let (mut client, _server) = Client::start();
    let meta = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let answer = client.request("tools/list", meta).await;
    assert_eq!(answer["error"]["code"], -32022, "{answer}");
    let answer = client.request("initialize", initialize_params()).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
}

#[tokio::test]
async fn closing_stdin_ends_the_session_cleanly() {
    let (client, server) = Client::initialized().await;
    drop(client);
    server.await.expect("the task").expect("a clean end");
    // Also before the handshake.
    let (client, server) = Client::start();
    drop(client);
    server.await.expect("the task").expect("a clean end");
}

/// Waits for `notified`, failing instead of blocking the suite (a bound on a hang, not a
/// timing assertion: rmcp gives the answers in flight 5 s when the client closes stdin).
async fn within_a_bound(notified: tokio::sync::futures::Notified<'_>, what: &str) {
    tokio::time::timeout(Duration::from_secs(30), notified)
        .await
        .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn a_cancelled_call_is_dropped_and_the_session_goes_on() {
    let host = Arc::new(FakeHost::default());
    let (mut client, _server) = Client::initialized_on(Arc::clone(&host)).await;
    let call = json!({"jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    client.send_line(&call.to_string()).await;
    within_a_bound(host.hang.started.notified(), "the call reached the host").await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": "slow-1", "reason": "the user gave up"}});
    client.send_line(&cancel.to_string()).await;
    within_a_bound(
        host.hang.dropped.notified(),
        "the cancelled call was dropped",
    )
    .await;
    let answer = client.call("echo", json!({"text": "still here"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "still here");
}

/// Regression (hunt tenants 1): `tools/list` asked the registry on the session's thread, and
/// a registry loading again (analysing a token's programs, seconds each) held it: on the
/// server's one io thread, every request, `/v1/health` too, waited for the load. The test
/// runs on the one thread of its runtime, which goes on while the listing waits.
#[tokio::test]
async fn a_listing_that_waits_for_the_registry_holds_no_thread_of_the_sessions() {
    let host = Arc::new(FakeHost::default());
    let (mut client, _server) = Client::initialized_on(Arc::clone(&host)).await;
    host.listing
        .closed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let list = json!({"jsonrpc": "2.0", "id": "list-1", "method": "tools/list", "params": {}});
    client.send_line(&list.to_string()).await;
    within_a_bound(
        host.listing.entered.notified(),
        "the listing reached the host",
    )
    .await;
    let answer = client.call("echo", json!({"text": "meanwhile"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "meanwhile");
    assert!(
        !host
            .listing
            .gave_up
            .load(std::sync::atomic::Ordering::SeqCst),
        "the test's thread was held by the listing"
    );
    host.listing.open();
    let answer = client.answer(Some(&json!("list-1"))).await;
    let tools = answer["result"]["tools"].as_array().expect("a list");
    assert_eq!(tools.len(), 2, "{answer}");
}

#[tokio::test]
async fn closing_stdin_cancels_the_calls_in_flight() {
    let host = Arc::new(FakeHost::default());
    let (mut client, server) = Client::initialized_on(Arc::clone(&host)).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    client.send_line(&call.to_string()).await;
    within_a_bound(host.hang.started.notified(), "the call reached the host").await;
    drop(client);
    within_a_bound(host.hang.dropped.notified(), "the call was dropped").await;
    server.await.expect("the task").expect("a clean end");
}

/// A POST to `/mcp` as a streamable HTTP client sends it.
fn post(body: &Value, session: Option<&str>, caller: Option<McpCaller>) -> Request<Body> {
    let mut request = Request::post("/mcp")
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    if let Some(caller) = caller {
        request = request.extension(caller);
    }
    request
        .body(Body::from(body.to_string()))
        .expect("a valid request")
}

/// The JSON-RPC message in an answer: the body itself, or the `data:` of an event stream.
async fn message(response: axum::response::Response) -> Value {
    let body = tokio::time::timeout(
        Duration::from_secs(30),
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("the answer ends")
    .expect("a body");
    let body = String::from_utf8(body.to_vec()).expect("UTF-8");
    // The stream starts with an empty `data:` (a priming event the client can resume from).
    let json = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .find(|data| !data.trim().is_empty())
        .unwrap_or(&body);
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn initialize_request() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params()})
}

#[tokio::test]
async fn http_initialize_opens_a_session() {
    let service = http_service(Arc::new(FakeHost::default()), HttpOptions::default());
    let response = service
        .oneshot(post(&initialize_request(), None, None))
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("a session id");
    assert!(!session.is_empty());
    let answer = message(response).await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
}

#[tokio::test]
async fn http_calls_run_as_the_caller_the_middleware_authenticated() {
    let service = http_service(Arc::new(FakeHost::default()), HttpOptions::default());
    let session = open_session(&service).await;

    let call = |id: u64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"text": "hi"}}})
    };
    let grader = McpCaller(Some("grader".into()));
    let response = service
        .clone()
        .oneshot(post(&call(2), Some(&session), Some(grader)))
        .await
        .expect("infallible")
        .into_response();
    let answer = message(response).await;
    assert_eq!(
        answer["result"]["structuredContent"],
        json!({"text": "hi", "caller": "grader"}),
        "{answer}"
    );

    // Mounted without the authenticating middleware: refused, not run anonymously.
    let response = service
        .oneshot(post(&call(3), Some(&session), None))
        .await
        .expect("infallible")
        .into_response();
    let answer = message(response).await;
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
}

#[tokio::test]
async fn http_refuses_a_host_it_does_not_serve() {
    let service = http_service(Arc::new(FakeHost::default()), HttpOptions::default());
    let mut request = post(&initialize_request(), None, None);
    request.headers_mut().insert(
        header::HOST,
        "evil.example".parse().expect("a header value"),
    );
    let response = service
        .oneshot(request)
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Opens a session: initialize, then initialized. Returns its id.
async fn open_session<S>(service: &S) -> String
where
    S: tower::Service<Request<Body>, Error = std::convert::Infallible> + Clone,
    S::Response: IntoResponse,
{
    let response = service
        .clone()
        .oneshot(post(&initialize_request(), None, None))
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = service
        .clone()
        .oneshot(post(&initialized, Some(&session), None))
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    session
}

/// Hunt mcp 6: rmcp's keep-alive closed a session 5 minutes after its last message, a call in
/// flight or not: a call that ran longer was cancelled, its `POST` unanswered. A session is
/// idle only with nothing in flight: the long call is answered, and the session closes
/// (the server told) once idle after it.
#[tokio::test]
async fn http_a_call_longer_than_the_idle_time_is_answered_and_the_session_closes_after() {
    let closed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let told = closed.clone();
    let options = HttpOptions {
        idle: Duration::from_millis(300),
        on_closed: Some(super::SessionClosed(Arc::new(move |id: &str| {
            told.lock().expect("lock").push(id.to_owned());
        }))),
        ..HttpOptions::default()
    };
    let service = http_service(Arc::new(FakeHost::default()), options);
    let session = open_session(&service).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "sleep", "arguments": {"ms": 1200}}});
    let caller = McpCaller(Some("grader".into()));
    let response = service
        .clone()
        .oneshot(post(&call, Some(&session), Some(caller)))
        .await
        .expect("infallible")
        .into_response();
    let answer = message(response).await;
    assert_eq!(answer["result"]["content"][0]["text"], "slept", "{answer}");
    assert!(
        closed.lock().expect("lock").is_empty(),
        "busy, then just answered"
    );

    let waited = std::time::Instant::now();
    while closed.lock().expect("lock").is_empty() && waited.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        *closed.lock().expect("lock"),
        std::slice::from_ref(&session)
    );
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    let response = service
        .oneshot(post(&ping, Some(&session), None))
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "closed idle");
}

#[tokio::test]
async fn http_shutdown_ends_the_open_event_streams() {
    let options = HttpOptions::default();
    let shutdown = options.shutdown.clone();
    let service = http_service(Arc::new(FakeHost::default()), options);
    let session = open_session(&service).await;
    // The session's stream for server messages: open until the session ends.
    let stream = Request::get("/mcp")
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(Body::empty())
        .expect("a valid request");
    let response = service
        .oneshot(stream)
        .await
        .expect("infallible")
        .into_response();
    assert_eq!(response.status(), StatusCode::OK);
    shutdown.close();
    // Keep-alive comments every 15 s would hold it open forever; the bound fails a hang.
    tokio::time::timeout(
        Duration::from_secs(30),
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("the stream ends at shutdown")
    .expect("a body");
}

/// Regression hunt: over HTTP, as over stdio, rmcp kept a cancelled request's id until its
/// handler returned and took that handler's answer for a new request of the same id: the new
/// request, still running, was answered as cancelled, and cancelled. Each session's requests
/// reach rmcp under ids of its own (`http_sessions.rs`): the new request runs on until its
/// own cancel, and neither stream gets the cancelled handler's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_request_reusing_a_cancelled_id_at_once_runs_on() {
    let host = Arc::new(FakeHost::default());
    // The cancelled handler returns only once the new request has reached rmcp.
    host.hang
        .slow_drop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let service = http_service(
        Arc::clone(&host) as Arc<dyn ToolHost>,
        HttpOptions::default(),
    );
    let session = open_session(&service).await;
    let send = |body: Value| {
        let service = service.clone();
        let session = session.clone();
        async move {
            service
                .oneshot(post(&body, Some(&session), Some(McpCaller(None))))
                .await
                .expect("infallible")
                .into_response()
        }
    };
    let hang = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 7}});
    let first = send(hang.clone()).await;
    within_a_bound(host.hang.started.notified(), "the call reached the host").await;
    assert_eq!(send(cancel.clone()).await.status(), StatusCode::ACCEPTED);
    let second = send(hang).await;
    within_a_bound(
        host.hang.started.notified(),
        "the new call reached the host",
    )
    .await;
    within_a_bound(
        host.hang.dropped.notified(),
        "the cancelled call was dropped",
    )
    .await;
    // A round trip through the session after the cancelled handler's answer.
    let ping = message(send(json!({"jsonrpc": "2.0", "id": 8, "method": "ping"})).await).await;
    assert_eq!(ping["id"], 8, "{ping}");
    assert_eq!(send(cancel).await.status(), StatusCode::ACCEPTED);
    within_a_bound(host.hang.dropped.notified(), "the new call was dropped").await;
    for (which, response) in [("cancelled", first), ("new", second)] {
        let body = tokio::time::timeout(
            Duration::from_secs(30),
            axum::body::to_bytes(response.into_body(), 1 << 20),
        )
        .await
        .expect("the stream ends at its cancel")
        .expect("a body");
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains(r#""id":7"#),
            "the {which} call was answered: {body}"
        );
    }
}

/// Hunt mcp 1: `DELETE /mcp` closed the session's stream, but rmcp gave its calls 5 s to
/// answer, as it does a closed stdin: a call that ended within them ran on, and counted as
/// answered, though nobody could receive its answer. The session's calls are cancelled at its
/// `DELETE` (docs/mcp.md): a call of 2 s, which the grace would have let end, is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_delete_cancels_the_sessions_calls_at_once() {
    let host = Arc::new(FakeHost::default());
    let service = http_service(
        Arc::clone(&host) as Arc<dyn ToolHost>,
        HttpOptions::default(),
    );
    let session = open_session(&service).await;
    let nap = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                     "params": {"name": "nap", "arguments": {"ms": 2000}}});
    let call = service
        .clone()
        .oneshot(post(&nap, Some(&session), Some(McpCaller(None))))
        .await
        .expect("infallible")
        .into_response();
    within_a_bound(host.naps.started.notified(), "the call reached the host").await;
    let delete = Request::delete("/mcp")
        .header(header::HOST, "localhost")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(Body::empty())
        .expect("a valid request");
    let deleted = service
        .oneshot(delete)
        .await
        .expect("infallible")
        .into_response();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    within_a_bound(host.naps.ended.notified(), "the call ended").await;
    assert_eq!(*host.naps.outcomes.lock().expect("lock"), ["cancelled"]);
    drop(call);
}

#[tokio::test]
async fn the_service_mounts_in_an_axum_router_behind_a_middleware() {
    // The integrator's shape: authenticate, then insert the caller.
    async fn authenticate(
        mut request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        request
            .extensions_mut()
            .insert(McpCaller(Some("agent".into())));
        next.run(request).await
    }
    let router = axum::Router::new()
        .route_service(
            "/mcp",
            http_service(Arc::new(FakeHost::default()), HttpOptions::default()),
        )
        .layer(axum::middleware::from_fn(authenticate));
    let session = open_session(&router).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "routed"}}});
    let response = router
        .oneshot(post(&call, Some(&session), None))
        .await
        .expect("infallible");
    let answer = message(response).await;
    assert_eq!(
        answer["result"]["structuredContent"]["caller"], "agent",
        "{answer}"
    );
}

/// Hunt tools 4: a notification or a response before `initialize` ended `warden mcp` (exit
/// 125), and the `initialize` after it was never answered.
#[tokio::test]
async fn a_notification_or_response_before_initialize_is_dropped_and_the_session_goes_on() {
    let (mut client, _server) = Client::start();
    for early in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
               "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {}}),
    ] {
        client.send_line(&early.to_string()).await;
    }
    let answer = client.request("initialize", initialize_params()).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
    let answer = client.call("echo", json!({"text": "served"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "served", "{answer}");
}

/// Hunt tools 5: a malformed `initialize` was told that `initialize` must come first, and an
/// ordinary request after a handshake-free one got rmcp's words about `_meta` alone.
#[tokio::test]
async fn a_malformed_initialize_and_a_request_without_meta_are_told_what_is_wrong() {
    let (mut client, _server) = Client::start();
    let answer = client
        .request("initialize", json!({"protocolVersion": 5}))
        .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        super::initialize_first::MALFORMED_INITIALIZE,
        "{answer}"
    );
    let meta = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let answer = client.request("tools/list", meta).await;
    assert!(answer["result"]["tools"].is_array(), "{answer}");
    let answer = client.call("echo", json!({"text": "no meta"})).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(super::initialize_first::META_IN_EVERY_REQUEST)
            && message.contains("io.modelcontextprotocol/protocolVersion"),
        "{answer}"
    );
}

/// Hunt tools 7: a second request with the id of one in flight ran too, and one of the two
/// was never answered; as over HTTP, it is refused at once.
#[tokio::test]
async fn a_request_whose_id_is_in_flight_is_refused_until_answered_or_cancelled() {
    let host = Arc::new(FakeHost::default());
    let (mut client, _server) = Client::initialized_on(Arc::clone(&host)).await;
    let hang = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    client.send_line(&hang.to_string()).await;
    within_a_bound(host.hang.started.notified(), "the call reached the host").await;
    let echo = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "second"}}});
    client.send_line(&echo.to_string()).await;
    let answer = client.answer(Some(&json!(7))).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("request id 7 is already in flight")),
        "{answer}"
    );
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 7}});
    client.send_line(&cancel.to_string()).await;
    within_a_bound(
        host.hang.dropped.notified(),
        "the cancelled call was dropped",
    )
    .await;
    client.send_line(&echo.to_string()).await;
    let answer = client.answer(Some(&json!(7))).await;
    assert_eq!(answer["result"]["content"][0]["text"], "second", "{answer}");
    // An id answered is free again.
    client.send_line(&echo.to_string()).await;
    let answer = client.answer(Some(&json!(7))).await;
    assert_eq!(answer["result"]["content"][0]["text"], "second", "{answer}");
}

/// A request sent right after `notifications/cancelled` with the cancelled one's
/// id (a client re-using it) was answered as cancelled, and cancelled: rmcp, which keeps the
/// id until the cancelled handler returns, took that handler's answer for the new request's.
/// The new request runs, and is answered; the cancelled one is not.
#[tokio::test]
async fn a_request_reusing_a_cancelled_id_at_once_runs_and_is_answered() {
    let host = Arc::new(FakeHost::default());
    let (mut client, _server) = Client::initialized_on(Arc::clone(&host)).await;
    let hang = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "hang", "arguments": {}}});
    client.send_line(&hang.to_string()).await;
    within_a_bound(host.hang.started.notified(), "the call reached the host").await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 7}});
    let echo = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "second"}}});
    // One write: the new request is read before the cancelled handler has returned.
    client.send_line(&format!("{cancel}\n{echo}")).await;
    let answer = client.answer(Some(&json!(7))).await;
    assert_eq!(answer["result"]["content"][0]["text"], "second", "{answer}");
    within_a_bound(
        host.hang.dropped.notified(),
        "the cancelled call was dropped",
    )
    .await;
    // Nothing more was answered for 7: the next answer is the ping's.
    let ping = json!({"jsonrpc": "2.0", "id": 8, "method": "ping"});
    client.send_line(&ping.to_string()).await;
    let line = client.lines.next_line().await.expect("the server writes");
    let next: Value = serde_json::from_str(&line.expect("an answer")).expect("JSON");
    assert_eq!(next["id"], 8, "{next}");
}
