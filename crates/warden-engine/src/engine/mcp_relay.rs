//! `warden mcp wrap` (docs/mcp.md#wrapping-a-server): a third-party stdio MCP server run as
//! one long execution in a sandbox, under a network policy, its messages relayed between the
//! client and the server line by line, and each `tools/call` it answers recorded in the
//! tool statistics. A server that tries a connection its policy denies, sends a message over
//! 16 MiB or stops reading its input is stopped: it gets no more messages, it is killed at its
//! next output, and the calls in flight fail with the reason. The caller may end the relay at
//! once ([`RelayStop`], a signal): the server is killed, the calls in flight fail, and the
//! client's side is not waited for.
//!
//! Three threads take part: the caller's (the execution, whose output sink handles the
//! server's lines), a reader of the client's messages, and the proxy's (the denial hook).
//! They share one [`Relay`] behind a mutex, which also orders every write to the client.

mod in_flight;

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use warden_core::{ByteSize, LimitOverrides, ModeRequest, Stream};
use warden_sandbox::{OutputSink, Stdin};

use super::Engine;
use crate::error::EngineError;
use crate::execution::{ExecutionRequest, ExecutionResult, Interactive, Origin, SourceFile};
use crate::history::{ToolCallRecord, ToolCallStatus};
use in_flight::{Call, InFlight};

/// The longest message either side may send; a longer one is refused (client) or ends the
/// server (a flood).
const MAX_LINE: usize = 16 << 20;
/// How long a server has to exit once its client has gone, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// A server to wrap.
#[derive(Debug, Clone, Default)]
pub struct McpWrap {
    /// Its name: its tools are counted as `NAME/TOOL`.
    pub name: String,
    /// Its command: an absolute program, then its arguments.
    pub command: Vec<String>,
    /// Its network policy (default: the configuration's default).
    pub network: Option<String>,
    /// Host paths it may read (its code, its packages), beside the sandbox's base tree.
    pub read_only: Vec<PathBuf>,
    /// Its limits over the relay's defaults (the operator's maxima for time, 512 MiB).
    pub limits: LimitOverrides,
    /// Who runs it, as the history records it.
    pub origin: Origin,
    /// How long a `tools/call` may wait for its answer before it fails (the server goes on);
    /// zero takes [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Duration,
    /// Ends the relay at once when the caller triggers it (a signal).
    pub stop: RelayStop,
}

/// Ends a relay at once from another thread (`warden mcp wrap` got SIGTERM, SIGINT or
/// SIGHUP): the server is killed (its execution recorded as cancelled), the calls in flight
/// fail and are counted as failures, the calls answered are counted, and the relay returns
/// without waiting for its client to close its side. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RelayStop {
    cancel: crate::Cancellation,
    stopped: Arc<AtomicBool>,
}

impl RelayStop {
    /// Stops the relay (at once, or as it starts).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

impl McpWrap {
    /// The wrap a registered tool file describes (`[run] mcp = [...]`): its command, network
    /// policy, read-only paths and limits; `None` for another kind of tool.
    pub fn from_tool(tool: &crate::tools::RegisteredTool) -> Option<Self> {
        let warden_core::tool::Runner::Mcp(argv) = &tool.tool.runner else {
            return None;
        };
        Some(Self {
            name: tool.tool.name.clone(),
            command: argv.clone(),
            network: Some(tool.tool.network.clone()),
            read_only: tool.tool.read_only.clone(),
            limits: tool.tool.limits,
            origin: Origin::new("mcp", None),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            stop: RelayStop::default(),
        })
    }
}

/// How long a relayed call waits for its answer unless the wrap says otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// How a relay ended.
#[derive(Debug)]
pub struct RelayReport {
    /// The server's execution, as recorded: outcome `cancelled` when it had to be killed
    /// after its client left, or at the caller's [`RelayStop`]; `None` when it never started.
    pub execution: Option<ExecutionResult>,
    /// Why warden stopped the server, if it did.
    pub stopped: Option<Stopped>,
    /// The caller ended the relay ([`RelayStop`]).
    pub interrupted: bool,
    /// The tool calls it served.
    pub calls: usize,
}

/// Why warden stopped a wrapped server, and what that makes of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Which rule stopped it.
    pub kind: StopKind,
    /// What it did, in words.
    pub reason: String,
}

/// The rule that stopped a wrapped server (docs/mcp.md#wrapping-a-server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// It tried a connection its network policy denies: its calls are violations.
    Denied,
    /// It sent a single message over 16 MiB: the output limit; its calls are failures.
    OutputLimit,
    /// It stopped reading its input (the relay's write to it failed): its calls are failures.
    StoppedReading,
}

impl StopKind {
    /// How the statistics count a call the stop failed.
    fn status(self) -> ToolCallStatus {
        match self {
            Self::Denied => ToolCallStatus::Violation,
            Self::OutputLimit | Self::StoppedReading => ToolCallStatus::Failure,
        }
    }
}

/// A `tools/call` answered (or failed), to record once the execution has an id: the
/// execution's id is made as it ends, so the call is recorded then, with the time of its
/// answer.
struct Answered {
    tool: String,
    status: ToolCallStatus,
    latency: Duration,
    error: Option<String>,
    at: SystemTime,
}

/// What the relay's threads share.
struct Relay {
    client: Box<dyn Write + Send>,
    /// The client's requests not yet answered (its tool calls among them), each passed to the
    /// server under an id of the relay's: an answer the server gives to any other id, or a
    /// second one, is dropped.
    in_flight: InFlight,
    answered: Vec<Answered>,
    stopped: Option<Stopped>,
    /// Why the server is gone, once its execution has ended, and how a call made then is
    /// counted: later requests are answered with it until the client closes its side.
    ended: Option<(String, ToolCallStatus)>,
    /// The server's output not yet ending in a newline.
    partial: Vec<u8>,
    /// Lines of the server's output that were not JSON.
    dropped: u64,
    /// The server's stdin; dropped (end-of-file) when the client leaves or the server is
    /// stopped.
    server_in: Option<Box<dyn Write + Send>>,
}

impl Relay {
    /// Sends one message to the client.
    fn send(&mut self, message: &Value) {
        let mut line = message.to_string();
        line.push('\n');
        // A client that has gone cannot be told anything; the server ends with its stdin.
        let _ = self
            .client
            .write_all(line.as_bytes())
            .and_then(|()| self.client.flush());
    }

    /// Stops the server for `reason` (the first stop wins).
    fn stop(&mut self, kind: StopKind, reason: String) {
        if self.stopped.is_none() {
            tracing::warn!(%reason, "stopping the wrapped MCP server");
            self.stopped = Some(Stopped { kind, reason });
            self.server_in = None;
        }
    }

    /// Fails the calls that have waited longer than `timeout`: their late answers, if any,
    /// are dropped.
    fn expire(&mut self, timeout: Duration) {
        for request in self.in_flight.expired(timeout) {
            let reason = format!(
                "the wrapped server did not answer within {}",
                warden_core::units::format_duration(timeout)
            );
            self.send(&error_response(request.client_id, -32001, &reason));
            if let Some(call) = request.call {
                self.count(call, ToolCallStatus::Failure, Some(reason));
            }
        }
    }

    /// Fails every request in flight with `reason`: the calls, and the other requests
    /// (`initialize`, `tools/list`), which the client waited for while warden waited for it.
    fn fail_pending(&mut self, reason: &str, status: ToolCallStatus) {
        for request in self.in_flight.drain() {
            self.send(&error_response(request.client_id, -32000, reason));
            if let Some(call) = request.call {
                self.count(call, status, Some(reason.to_owned()));
            }
        }
    }

    /// Counts `call`, ended now.
    fn count(&mut self, call: Call, status: ToolCallStatus, error: Option<String>) {
        self.answered.push(Answered {
            tool: call.tool,
            status,
            latency: call.started.elapsed(),
            error,
            at: SystemTime::now(),
        });
    }

    /// One line of the server's stdout: an answer goes to the client under the id of the
    /// request it answers (and a call's is recorded), or is dropped when it answers none in
    /// flight; every other JSON message goes to the client as it is; anything else is dropped
    /// (a client cannot read it).
    fn server_line(&mut self, line: &[u8]) {
        let Ok(mut message) = serde_json::from_slice::<Value>(line) else {
            if self.dropped == 0 {
                tracing::warn!(
                    "dropped a line of the wrapped MCP server that is not JSON (further ones \
                     are dropped without a word)"
                );
            }
            self.dropped += 1;
            return;
        };
        let answer = message.get("method").is_none()
            && (message.get("result").is_some() || message.get("error").is_some());
        if !answer {
            self.send(&message);
            return;
        }
        let Some(request) = message
            .get("id")
            .and_then(|ours| self.in_flight.answered(ours))
        else {
            // Not the answer to a request the client is waiting for: one it never sent, or a
            // second answer (one the relay already gave, as a timeout), or one cancelled.
            tracing::debug!("dropped an answer of the wrapped server to no request in flight");
            return;
        };
        message["id"] = request.client_id;
        if let Some(call) = request.call {
            let failed = message.get("error").is_some()
                || message["result"]["isError"].as_bool() == Some(true);
            let (status, error) = if failed {
                (ToolCallStatus::Failure, Some(error_text(&message)))
            } else {
                (ToolCallStatus::Success, None)
            };
            self.count(call, status, error);
        }
        self.send(&message);
    }

    /// Refuses a request whose id is already in flight, as `warden mcp` does (JSON-RPC asks
    /// ids unique among a client's requests in flight): both would reach the server, and only
    /// one answer the client. A call so refused is counted as refused.
    fn refuse_duplicate(&mut self, message: &Value, id: Value) {
        let text = format!(
            "request id {id} is already in flight in this session: an id must be unique among \
             a session's requests until answered"
        );
        self.send(&error_response(id, -32600, &text));
        if message["method"] == "tools/call" {
            self.answered.push(Answered {
                tool: tool_name(message),
                status: ToolCallStatus::Refused,
                latency: Duration::ZERO,
                error: Some(text),
                at: SystemTime::now(),
            });
        }
    }

    /// Refuses a JSON-RPC batch (an array of messages), which MCP's 2025-06-18 revision
    /// removed: passed on as it came, its requests reached the server under the client's own
    /// ids (which may be the relay's for other requests) and its calls were neither timed nor
    /// counted. Each request gets its error in one array, as JSON-RPC answers a batch; an empty
    /// batch, one error.
    fn refuse_batch(&mut self, batch: &[Value]) {
        const WHY: &str = "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): \
                           send each message on a line of its own";
        if batch.is_empty() {
            self.send(&error_response(
                Value::Null,
                -32600,
                "invalid request: an empty batch",
            ));
            return;
        }
        let mut errors = Vec::new();
        for message in batch {
            let Some(id) = message
                .get("id")
                .filter(|_| message.get("method").is_some())
            else {
                continue;
            };
            errors.push(error_response(id.clone(), -32600, WHY));
            if message["method"] == "tools/call" {
                self.answered.push(Answered {
                    tool: tool_name(message),
                    status: ToolCallStatus::Refused,
                    latency: Duration::ZERO,
                    error: Some(WHY.to_owned()),
                    at: SystemTime::now(),
                });
            }
        }
        if !errors.is_empty() {
            self.send(&Value::Array(errors));
        }
    }

    /// One line of the client: malformed, a batch (refused), refused (the server is stopped,
    /// its id is in flight), or forwarded, a request under an id of the relay's own.
    fn client_line(&mut self, line: &[u8]) {
        let message = match serde_json::from_slice::<Value>(line) {
            Ok(message) => message,
            Err(e) => {
                self.send(&error_response(
                    Value::Null,
                    -32700,
                    &format!("parse error: {e}"),
                ));
                return;
            }
        };
        if let Value::Array(batch) = &message {
            self.refuse_batch(batch);
            return;
        }
        let id = message.get("id").cloned();
        let is_request = message.get("method").is_some() && id.is_some();
        let gone = self
            .stopped
            .as_ref()
            .map(|stop| {
                (
                    format!("the wrapped server was stopped: {}", stop.reason),
                    stop.kind.status(),
                )
            })
            .or_else(|| self.ended.clone());
        if let (true, Some(id), Some(name)) = (is_request, &id, overlong_tool(&message)) {
            // No tool has such a name (MCP advises at most 128 characters): answered here, so
            // that neither the server nor the statistics take a name of up to 16 MiB.
            let text = format!(
                "unknown tool: {}: a tool name is at most {MAX_TOOL_NAME_LEN} bytes",
                warden_core::tool::name_excerpt(name)
            );
            self.send(&error_response(id.clone(), -32602, &text));
            self.answered.push(Answered {
                tool: tool_name(&message),
                status: ToolCallStatus::Refused,
                latency: Duration::ZERO,
                error: Some(text),
                at: SystemTime::now(),
            });
            return;
        }
        if let Some((text, status)) = gone {
            if let (true, Some(id)) = (is_request, id) {
                self.send(&error_response(id, -32000, &text));
                // A call made to a server that is gone failed, as those it left in flight.
                if message["method"] == "tools/call" {
                    self.answered.push(Answered {
                        tool: tool_name(&message),
                        status,
                        latency: Duration::ZERO,
                        error: Some(text),
                        at: SystemTime::now(),
                    });
                }
            }
            return;
        }
        let mut message = message;
        let forwarded = match (is_request, id) {
            (true, Some(id)) if self.in_flight.holds(&id) => {
                self.refuse_duplicate(&message, id);
                return;
            }
            (true, Some(id)) => {
                let call = (message["method"] == "tools/call").then(|| Call {
                    tool: tool_name(&message),
                    started: Instant::now(),
                });
                message["id"] = Value::from(self.in_flight.admit(id, call));
                Cow::Owned(message.to_string().into_bytes())
            }
            _ if message["method"] == "notifications/cancelled" => {
                let client_id = &message["params"]["requestId"];
                let Some((ours, request)) = self.in_flight.cancelled(client_id) else {
                    // Not in flight: passed on, the id could name another of its requests
                    // to the server.
                    return;
                };
                if let Some(call) = request.call {
                    let reason = "cancelled by the client".to_owned();
                    self.count(call, ToolCallStatus::Failure, Some(reason));
                }
                message["params"]["requestId"] = Value::from(ours);
                Cow::Owned(message.to_string().into_bytes())
            }
            // A notification, or an answer to the server's own request: as it came.
            _ => Cow::Borrowed(line),
        };
        let line = forwarded.as_ref();
        let forwarded = self.server_in.as_mut().map(|server| {
            server
                .write_all(line)
                .and_then(|()| server.write_all(b"\n"))
                .and_then(|()| server.flush())
        });
        if let Some(Err(e)) = forwarded {
            self.stop(
                StopKind::StoppedReading,
                format!("it stopped reading its input ({e})"),
            );
        }
    }
}

/// The longest tool name the relay passes on: MCP's advice (2025-11-25 revision, "Tool names
/// SHOULD be between 1 and 128 characters"), in bytes.
const MAX_TOOL_NAME_LEN: usize = 128;

/// The tool a `tools/call` names, as recorded: cut to [`MAX_TOOL_NAME_LEN`] bytes (and `...`)
/// when longer.
fn tool_name(message: &Value) -> String {
    let name = message["params"]["name"].as_str().unwrap_or("?");
    if name.len() <= MAX_TOOL_NAME_LEN {
        return name.to_owned();
    }
    let mut cut = MAX_TOOL_NAME_LEN;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &name[..cut])
}

/// The name of a `tools/call` longer than [`MAX_TOOL_NAME_LEN`] bytes, if the message is one.
fn overlong_tool(message: &Value) -> Option<&str> {
    (message["method"] == "tools/call")
        .then(|| message["params"]["name"].as_str())
        .flatten()
        .filter(|name| name.len() > MAX_TOOL_NAME_LEN)
}

/// A JSON-RPC error response.
fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The error a failed response carries, in one line.
fn error_text(message: &Value) -> String {
    let text = message["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            message["result"]["content"]
                .as_array()
                .and_then(|c| c.iter().find_map(|part| part["text"].as_str()))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "the tool reported an error".to_owned());
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

fn lock(relay: &Mutex<Relay>) -> MutexGuard<'_, Relay> {
    relay.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server's output, as the sandbox reads it.
struct ServerOutput {
    relay: Arc<Mutex<Relay>>,
    log: Box<dyn Write + Send>,
}

impl OutputSink for ServerOutput {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        if stream == Stream::Stderr {
            // The server's log, passed on as MCP's stdio transport lets a server log.
            let _ = self.log.write_all(bytes);
            return lock(&self.relay).stopped.is_none();
        }
        let mut relay = lock(&self.relay);
        if relay.stopped.is_some() {
            return false;
        }
        // Only the new bytes are searched for line ends, and the consumed lines are removed
        // once per chunk: a flood of short lines, or one long line, costs its length.
        let mut buffer = std::mem::take(&mut relay.partial);
        let mut start = 0;
        let mut scan = buffer.len();
        buffer.extend_from_slice(bytes);
        while let Some(at) = buffer[scan..].iter().position(|&b| b == b'\n') {
            let end = scan + at;
            let line = buffer[start..end].trim_ascii();
            if !line.is_empty() {
                relay.server_line(line);
            }
            start = end + 1;
            scan = start;
        }
        buffer.drain(..start);
        relay.partial = buffer;
        if relay.partial.len() > MAX_LINE {
            relay.stop(
                StopKind::OutputLimit,
                format!(
                    "it sent a message longer than {} MiB (output limit exceeded)",
                    MAX_LINE >> 20
                ),
            );
        }
        relay.stopped.is_none()
    }
}

impl Engine {
    /// Runs `wrap`'s server in a sandbox and relays its messages with `client` until the
    /// client closes its side and the server exits (or a limit, a denial or a [`Stopped`]
    /// ends it), or at once at `wrap.stop` ([`RelayStop`]). Each call is recorded, with the
    /// time of its answer, once the execution has ended.
    pub fn relay_mcp(
        &self,
        wrap: McpWrap,
        client_in: Box<dyn Read + Send>,
        client_out: Box<dyn Write + Send>,
        server_log: Box<dyn Write + Send>,
    ) -> Result<RelayReport, EngineError> {
        let (stdin_read, stdin_write) = server_pipe()?;
        let relay = Arc::new(Mutex::new(Relay {
            client: client_out,
            in_flight: InFlight::default(),
            answered: Vec::new(),
            stopped: None,
            ended: None,
            partial: Vec::new(),
            dropped: 0,
            server_in: Some(Box::new(std::fs::File::from(stdin_write))),
        }));
        // The server is killed by the caller's stop, or after its client left (`EXIT_GRACE`).
        let cancel = wrap.stop.cancel.clone();
        let policy = wrap.network.clone().unwrap_or_else(|| "the default".into());
        let on_denial = {
            let relay = relay.clone();
            Arc::new(move |what: &str| {
                let reason = format!("it tried to connect to {what}, which policy {policy} denies");
                lock(&relay).stop(StopKind::Denied, reason);
            })
        };
        let done = Arc::new(AtomicBool::new(false));
        let reader = spawn_client_reader(client_in, relay.clone(), cancel.clone(), done.clone());
        let timeout = match wrap.call_timeout {
            Duration::ZERO => DEFAULT_CALL_TIMEOUT,
            timeout => timeout,
        };
        spawn_watchdog(relay.clone(), timeout, done.clone());
        let request = self.relay_request(
            &wrap,
            stdin_read,
            cancel,
            relay.clone(),
            server_log,
            on_denial,
        );
        let executed = self.execute(request);
        done.store(true, Ordering::Relaxed);
        let interrupted = wrap.stop.is_stopped();
        let mut state = lock(&relay);
        state.server_in = None;
        let (reason, status) = match (&state.stopped, &executed) {
            (Some(stop), _) => (
                format!("the wrapped server was stopped: {}", stop.reason),
                stop.kind.status(),
            ),
            (None, _) if interrupted => (
                "warden mcp wrap was interrupted: the wrapped server was killed".to_owned(),
                ToolCallStatus::Failure,
            ),
            (None, Ok(done)) => (
                format!(
                    "the wrapped server ended before answering ({})",
                    done.result.outcome
                ),
                ToolCallStatus::Failure,
            ),
            (None, Err(e)) => (
                format!("the wrapped server ended: {e}"),
                ToolCallStatus::Failure,
            ),
        };
        state.fail_pending(&reason, status);
        state.ended = Some((reason, status));
        drop(state);
        // The client owns the session: until it closes its side, its requests are answered
        // with why the server is gone. Not once stopped, before or while waiting: the reader
        // may block on a client that will not close its side (an MCP client's SIGTERM comes
        // before its SIGKILL).
        while !wrap.stop.is_stopped() {
            if reader.is_finished() {
                let _ = reader.join();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let interrupted = wrap.stop.is_stopped();
        let mut state = lock(&relay);
        let answered = std::mem::take(&mut state.answered);
        let stopped = state.stopped.clone();
        drop(state);
        let execution = match executed {
            Ok(done) => Some(done.result),
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => e.cancelled_execution().cloned(),
            Err(e) => return Err(e),
        };
        for call in &answered {
            self.record_relayed(&wrap, call, execution.as_ref());
        }
        Ok(RelayReport {
            execution,
            stopped,
            interrupted,
            calls: answered.len(),
        })
    }

    /// The execution that runs the server.
    fn relay_request(
        &self,
        wrap: &McpWrap,
        stdin: OwnedFd,
        cancel: crate::Cancellation,
        relay: Arc<Mutex<Relay>>,
        log: Box<dyn Write + Send>,
        on_denial: crate::DenialHook,
    ) -> ExecutionRequest {
        let program = wrap.command.first().cloned().unwrap_or_default();
        let defaults = LimitOverrides {
            wall_time: Some(self.maxima.wall_time),
            cpu_time: Some(self.maxima.cpu_time),
            memory: Some(ByteSize::mib(512)),
            max_output: Some(ByteSize::mib(64)),
            ..LimitOverrides::default()
        };
        ExecutionRequest {
            language: Some("bash".into()),
            sources: vec![SourceFile {
                name: None,
                code: format!("exec '{}' \"$@\"\n", program.replace('\'', r"'\''")).into_bytes(),
                executable: false,
            }],
            args: wrap.command.iter().skip(1).cloned().collect(),
            stdin: Stdin::Pipe(stdin),
            limits: defaults.overridden_by(&wrap.limits),
            mode: Some(ModeRequest::Exactly(warden_core::Mode::Sandboxed)),
            network: wrap.network.clone(),
            read_only: wrap.read_only.clone(),
            origin: wrap.origin.clone(),
            cancel: Some(cancel),
            interactive: Some(Interactive {
                output: Box::new(ServerOutput { relay, log }),
                on_denial: Some(on_denial),
                on_run: None,
                on_prepared: None,
            }),
            ..ExecutionRequest::default()
        }
    }

    fn record_relayed(&self, wrap: &McpWrap, call: &Answered, execution: Option<&ExecutionResult>) {
        let tool = format!("{}/{}", wrap.name, call.tool);
        let id = execution.map(|e| e.id.to_string());
        if let Err(e) = self.with_writer(|store, rule| {
            store.record_tool_call(
                &ToolCallRecord {
                    tool: &tool,
                    category: "host",
                    api: &wrap.origin.api,
                    caller: wrap.origin.token.as_deref(),
                    status: call.status,
                    latency: call.latency,
                    execution_id: id.as_deref(),
                    error: call.error.as_deref(),
                    answered_at: Some(call.at),
                },
                rule,
            )
        }) {
            if !matches!(e, EngineError::NoHistory) {
                tracing::warn!(error = %e, %tool, "relayed tool call not recorded");
            }
        }
    }
}

/// The server's stdin: close-on-exec, so that no process the sandbox starts keeps the write
/// end open (the server must see end-of-file when its client leaves).
fn server_pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
        EngineError::Sandbox(warden_sandbox::SandboxError::Helper {
            action: "creating the wrapped server's stdin",
            source: e.into(),
        })
    })
}

/// Fails the calls a server leaves unanswered for longer than `timeout`, once a second, until
/// `done`.
fn spawn_watchdog(relay: Arc<Mutex<Relay>>, timeout: Duration, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            lock(&relay).expire(timeout);
        }
    });
}

/// Reads the client's messages on a thread of their own and hands each to the relay, until
/// the client closes its side. Then the server's stdin is closed; a server still running after
/// [`EXIT_GRACE`] is killed (a thread of its own waits, so that the reader ends at once).
fn spawn_client_reader(
    client_in: Box<dyn Read + Send>,
    relay: Arc<Mutex<Relay>>,
    cancel: crate::Cancellation,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(client_in);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) if line.len() > MAX_LINE => {
                    let text = format!("message longer than {} MiB", MAX_LINE >> 20);
                    lock(&relay).send(&error_response(Value::Null, -32600, &text));
                    if !skip_line(&mut reader) {
                        break;
                    }
                }
                Ok(_) => {
                    let trimmed = line.trim_ascii();
                    if !trimmed.is_empty() {
                        lock(&relay).client_line(trimmed);
                    }
                }
            }
        }
        lock(&relay).server_in = None;
        std::thread::spawn(move || {
            let deadline = Instant::now() + EXIT_GRACE;
            while Instant::now() < deadline {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            cancel.cancel();
        });
    })
}

/// Discards the rest of a line without holding it; false at end-of-file.
fn skip_line(reader: &mut impl BufRead) -> bool {
    loop {
        let (consumed, found) = match reader.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buf.len(), false),
            },
        };
        reader.consume(consumed);
        if found {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn relay() -> (Relay, Shared) {
        let (relay, out, _) = relay_to_server();
        (relay, out)
    }

    /// A relay, what it sends the client, and what it sends the server.
    fn relay_to_server() -> (Relay, Shared, Shared) {
        let (out, server) = (Shared::default(), Shared::default());
        let relay = Relay {
            client: Box::new(out.clone()),
            in_flight: InFlight::default(),
            answered: Vec::new(),
            stopped: None,
            ended: None,
            partial: Vec::new(),
            dropped: 0,
            server_in: Some(Box::new(server.clone())),
        };
        (relay, out, server)
    }

    fn sent(out: &Shared) -> Vec<Value> {
        let bytes = out.0.lock().expect("lock").clone();
        String::from_utf8(bytes)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    /// Left undone, then fixed: a JSON-RPC batch went to the server as it came, its requests
    /// under the client's ids (the relay's own for other requests) and its calls neither timed
    /// nor counted. It is refused, each request with its error, and nothing reaches the server.
    #[test]
    fn a_batch_is_refused_and_nothing_of_it_reaches_the_server() {
        let (mut relay, out, server) = relay_to_server();
        relay.client_line(
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"b","method":"tools/list"}]"#,
        );
        relay.client_line(b"[]");
        assert!(
            server.0.lock().expect("lock").is_empty(),
            "nothing forwarded"
        );
        let sent = sent(&out);
        let ids: Vec<Value> = sent[0]
            .as_array()
            .expect("an array of errors")
            .iter()
            .map(|e| {
                assert_eq!(e["error"]["code"], -32600, "{e}");
                e["id"].clone()
            })
            .collect();
        assert_eq!(ids, [json!(1), json!("b")]);
        assert_eq!(sent[1]["id"], Value::Null, "an empty batch: {}", sent[1]);
        assert_eq!(relay.answered.len(), 1);
        assert_eq!(relay.answered[0].status, ToolCallStatus::Refused);
        assert!(relay.in_flight.is_empty());
    }

    #[test]
    fn calls_are_matched_to_their_answers() {
        let (mut relay, out) = relay();
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add"}}"#,
        );
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"div"}}"#,
        );
        relay.server_line(br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#);
        relay.server_line(
            br#"{"jsonrpc":"2.0","id":2,"result":{"isError":true,"content":[{"type":"text","text":"division by zero"}]}}"#,
        );
        let statuses: Vec<_> = relay
            .answered
            .iter()
            .map(|a| (a.tool.as_str(), a.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("add", ToolCallStatus::Success),
                ("div", ToolCallStatus::Failure)
            ]
        );
        assert_eq!(relay.answered[1].error.as_deref(), Some("division by zero"));
        let ids: Vec<Value> = sent(&out).iter().map(|m| m["id"].clone()).collect();
        assert_eq!(ids, [json!(7), json!("x")]);
    }

    #[test]
    fn a_call_left_unanswered_fails_after_the_timeout_and_the_relay_goes_on() {
        let (mut relay, out) = relay();
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hang"}}"#,
        );
        relay.expire(Duration::from_secs(60));
        assert!(sent(&out).is_empty());
        relay.expire(Duration::ZERO);
        let sent = sent(&out);
        assert_eq!(sent[0]["id"], 3);
        assert_eq!(sent[0]["error"]["code"], -32001);
        assert_eq!(relay.answered[0].status, ToolCallStatus::Failure);
        assert!(relay.in_flight.is_empty());
    }

    #[test]
    fn malformed_client_lines_get_a_parse_error_and_server_noise_is_dropped() {
        let (mut relay, out) = relay();
        relay.client_line(b"{not json");
        relay.server_line(b"Server starting...");
        let sent = sent(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["error"]["code"], -32700);
    }

    #[test]
    fn a_stopped_server_gets_nothing_and_its_calls_fail_with_the_reason() {
        let (mut relay, out) = relay();
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"leak"}}"#,
        );
        relay.stop(
            StopKind::Denied,
            "it tried to connect to 10.0.0.1:80".into(),
        );
        relay.client_line(br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
        relay.fail_pending("stopped", ToolCallStatus::Violation);
        let sent = sent(&out);
        assert_eq!(sent[0]["id"], 2);
        assert!(sent[0]["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("10.0.0.1"));
        assert_eq!(sent[1]["id"], 1);
        assert_eq!(relay.answered[0].status, ToolCallStatus::Violation);
    }

    /// Hunt tools 1: a 100 000-character tool name was forwarded and recorded whole, and
    /// `warden tool stats` then panicked writing its table.
    #[test]
    fn a_tool_name_over_128_bytes_is_refused_and_recorded_cut() {
        let (mut relay, out) = relay();
        let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                          "params": {"name": "é".repeat(50_000)}});
        relay.client_line(call.to_string().as_bytes());
        let sent = sent(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["id"], 9);
        assert_eq!(sent[0]["error"]["code"], -32602);
        assert!(relay.in_flight.is_empty());
        assert_eq!(relay.answered[0].status, ToolCallStatus::Refused);
        assert_eq!(relay.answered[0].tool, format!("{}...", "é".repeat(64)));
        let name = "a".repeat(128);
        relay.client_line(
            json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": name}})
                .to_string()
                .as_bytes(),
        );
        assert!(relay.in_flight.holds(&json!(10)));
    }

    /// Bug hunt: a call made after the stop got its error reply but was counted nowhere; and
    /// every stop counted its calls as violations, a message over 16 MiB as well.
    #[test]
    fn calls_after_a_stop_are_counted_as_the_stops_kind() {
        for (kind, status) in [
            (StopKind::Denied, ToolCallStatus::Violation),
            (StopKind::OutputLimit, ToolCallStatus::Failure),
            (StopKind::StoppedReading, ToolCallStatus::Failure),
        ] {
            let (mut relay, out) = relay();
            relay.stop(kind, "a reason".into());
            relay.client_line(
                br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"late"}}"#,
            );
            relay.client_line(br#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#);
            assert_eq!(sent(&out).len(), 2, "{kind:?}");
            let counted: Vec<_> = relay
                .answered
                .iter()
                .map(|a| (a.tool.as_str(), a.status))
                .collect();
            assert_eq!(counted, [("late", status)], "{kind:?}");
        }
    }

    /// Regression (hunt mcp 5): after a call timed out, the server's late answer to it was
    /// given to the next request that reused its id, whose own answer was dropped.
    #[test]
    fn a_late_answer_never_answers_a_request_that_reused_the_id() {
        let (mut relay, out, server) = relay_to_server();
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}"#,
        );
        relay.expire(Duration::ZERO);
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#,
        );
        let forwarded = sent(&server);
        assert_eq!(forwarded.len(), 2);
        assert_ne!(forwarded[0]["id"], forwarded[1]["id"]);
        let answer = |ours: &Value, text: &str| {
            json!({"jsonrpc": "2.0", "id": ours, "result": {"content": [{"type": "text", "text": text}]}})
                .to_string()
        };
        relay.server_line(answer(&forwarded[0]["id"], "slept").as_bytes());
        relay.server_line(answer(&forwarded[1]["id"], "echoed").as_bytes());
        let sent = sent(&out);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            (&sent[0]["id"], &sent[0]["error"]["code"]),
            (&json!(2), &json!(-32001))
        );
        assert_eq!(sent[1]["id"], 2);
        assert_eq!(sent[1]["result"]["content"][0]["text"], "echoed");
        let counted: Vec<_> = relay
            .answered
            .iter()
            .map(|a| (a.tool.as_str(), a.status))
            .collect();
        assert_eq!(
            counted,
            [
                ("slow", ToolCallStatus::Failure),
                ("echo", ToolCallStatus::Success)
            ]
        );
    }

    /// Regression (hunt mcp 5): a cancelled call's id stayed in flight, and its result
    /// answered the next request that reused the id.
    #[test]
    fn a_cancelled_call_is_cancelled_under_the_servers_id_and_its_answer_dropped() {
        let (mut relay, out, server) = relay_to_server();
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"slow"}}"#,
        );
        relay.client_line(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}"#,
        );
        relay.client_line(
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo"}}"#,
        );
        // A cancel for an id not in flight would name another request to the server.
        relay.client_line(
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        );
        let forwarded = sent(&server);
        assert_eq!(forwarded.len(), 3, "{forwarded:?}");
        assert_eq!(forwarded[1]["params"]["requestId"], forwarded[0]["id"]);
        relay.server_line(
            json!({"jsonrpc": "2.0", "id": forwarded[0]["id"], "result": {"content": []}})
                .to_string()
                .as_bytes(),
        );
        relay.server_line(
            json!({"jsonrpc": "2.0", "id": forwarded[2]["id"], "result": {"content": [{"type": "text", "text": "new"}]}})
                .to_string()
                .as_bytes(),
        );
        let sent = sent(&out);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["id"], 5);
        assert_eq!(sent[0]["result"]["content"][0]["text"], "new");
        let counted: Vec<_> = relay
            .answered
            .iter()
            .map(|a| (a.tool.as_str(), a.status))
            .collect();
        assert_eq!(
            counted,
            [
                ("slow", ToolCallStatus::Failure),
                ("echo", ToolCallStatus::Success)
            ]
        );
    }

    /// Regression (hunt mcp 9): two requests with one id in flight were both forwarded, one
    /// answer was dropped and one call not counted. The second is refused, as `warden mcp`
    /// refuses it.
    #[test]
    fn a_request_whose_id_is_in_flight_is_refused() {
        let (mut relay, out, server) = relay_to_server();
        let call = br#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo"}}"#;
        relay.client_line(call);
        relay.client_line(call);
        assert_eq!(sent(&server).len(), 1);
        let sent = sent(&out);
        assert_eq!(
            (&sent[0]["id"], &sent[0]["error"]["code"]),
            (&json!(11), &json!(-32600))
        );
        assert_eq!(relay.answered[0].status, ToolCallStatus::Refused);
    }
}
