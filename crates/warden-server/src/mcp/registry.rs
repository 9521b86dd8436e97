//! The tool registry behind the MCP server: [`ToolHost`] over the engine, directly for
//! `warden mcp` (stdio, one local caller) or through the server's admission for `/mcp`.

use std::sync::Arc;

use warden_core::tool::Category;
use warden_engine::{CallCheck, Engine, Origin, ToolCallError, ToolCallRequest, ToolStatus};

use super::{CallRefused, ToolCall, ToolHost, ToolInfo, ToolReply};
use crate::admission::Admission;
use crate::state::{Api, AppState, Caller, CancelOnDrop, ExecError};

/// The active ones of `tools`, as MCP lists them.
fn active_tools(tools: Vec<Arc<warden_engine::RegisteredTool>>) -> Vec<ToolInfo> {
    tools
        .iter()
        .filter(|t| t.status == ToolStatus::Active)
        // An MCP server in the registry is run by `warden mcp wrap`, not called.
        .filter(|t| !matches!(t.tool.runner, warden_core::tool::Runner::Mcp(_)))
        .filter_map(|t| {
            let view = t.view();
            let serde_json::Value::Object(input_schema) = view.input_schema else {
                return None;
            };
            Some(ToolInfo {
                name: view.name,
                description: view.description,
                input_schema,
                title: None,
                read_only: view.category == Category::ReadOnly,
                open_world: view.network != "no_access",
            })
        })
        .collect()
}

/// An engine's reply, or why the call did not reach its tool, as MCP answers it: the tool's
/// failure and the caller's mistakes (input that does not fit the schema, a tool awaiting
/// approval) are tool errors the model can read and act on; an unknown tool is a protocol
/// error; warden's own failure is a tool error that says so (the log has the details).
fn answer(
    reply: Result<warden_engine::ToolReply, ToolCallError>,
) -> Result<ToolReply, CallRefused> {
    match reply {
        Ok(reply) => Ok(capped(reply)),
        Err(ToolCallError::Unknown(name)) => Err(CallRefused::UnknownTool(name)),
        Err(e) if e.is_caller_fault() => Ok(ToolReply {
            text: e.to_string(),
            structured: None,
            is_error: true,
        }),
        // The whole chain goes to the log (the engine's error alone said "starting a job's
        // process", not why), under a request id the reply gives, as every API's 500 does.
        Err(e) => Ok(ToolReply {
            text: format!(
                "warden failed to run the tool: {}",
                crate::error::logged_internal("tool call failed", &warden_engine::error_chain(&e))
            ),
            structured: None,
            is_error: true,
        }),
    }
}

/// The most of a tool's text a reply carries, and the largest structured content it keeps:
/// together, escaped as JSON, well under the 1 MiB a client's event stream takes by default
/// (the Python SDK's), where a program's output may reach the output limit.
const MAX_REPLY_TEXT: usize = 128 << 10;

/// A reply cut to fit: the text at [`MAX_REPLY_TEXT`] with a note saying how much there was,
/// the structured content left out when it is larger (the text still has the start of it).
fn capped(reply: warden_engine::ToolReply) -> ToolReply {
    let mut text = reply.text;
    let mut structured = reply.structured;
    if structured
        .as_ref()
        .is_some_and(|s| s.to_string().len() > MAX_REPLY_TEXT)
    {
        structured = None;
    }
    if text.len() > MAX_REPLY_TEXT {
        let total = text.len();
        let mut cut = MAX_REPLY_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let tail: String = text[cut..]
            .rsplit('\n')
            .next()
            .filter(|last| last.starts_with('[') && last.len() < 200)
            .map(|last| format!("\n{last}"))
            .unwrap_or_default();
        text.truncate(cut);
        text.push_str(&format!(
            "\n[warden: the reply was cut at {} KiB of {total} bytes]{tail}",
            MAX_REPLY_TEXT >> 10
        ));
    }
    ToolReply {
        text,
        structured,
        is_error: reply.is_error,
    }
}

/// The registry of one engine, for a local client (`warden mcp` over stdio), whose calls
/// are admitted as a server admits executions: at most `workers` run at once and `queue_size`
/// wait; a call past both is a tool error saying the queue is full, which the agent can
/// retry (a client may send any number of calls without waiting for their answers).
pub struct EngineTools {
    engine: Arc<Engine>,
    admission: Arc<Admission>,
}

impl EngineTools {
    /// The tools of `engine`, `workers` calls running at once and `queue_size` waiting.
    pub fn new(engine: Arc<Engine>, workers: usize, queue_size: usize) -> Self {
        Self {
            engine,
            admission: Arc::new(Admission::new(workers, queue_size)),
        }
    }

    /// Admits no more calls and waits, at most `deadline`, until the calls admitted have
    /// ended: those cancelled (their futures dropped) recorded as such, with their
    /// executions. Whether they all did.
    pub async fn finish(&self, deadline: std::time::Duration) -> bool {
        self.admission.close();
        self.admission.drain(deadline).await
    }
}

impl ToolHost for EngineTools {
    fn tools(&self, caller: Option<&str>) -> Vec<ToolInfo> {
        active_tools(self.engine.tools_for(caller))
    }

    fn tool(&self, name: &str) -> Option<ToolInfo> {
        active_tools(self.engine.tool(name).into_iter().collect()).pop()
    }

    fn call(&self, name: String, arguments: serde_json::Value, caller: Option<String>) -> ToolCall {
        let engine = self.engine.clone();
        let admission = self.admission.clone();
        Box::pin(async move {
            let busy = |e: ExecError| {
                let load = admission.load();
                CallRefused::Busy(format!(
                    "{e}: {} calls run at once and {} wait ([server] workers and queue_size); \
                     retry when one has ended",
                    load.workers, load.queue_size
                ))
            };
            let worker_failed = |_| CallRefused::Busy("the tool's worker failed".into());
            let mut request = ToolCallRequest {
                tool: name,
                input: arguments,
                origin: Origin::new("mcp", caller),
                cancel: None,
            };
            // Checked before it takes a place, as a server's calls are
            // (docs/server.md#admission-quotas-cancellation): a call refused before anything
            // would run is refused at once, not after the calls ahead of it.
            let checking = engine.clone();
            let (returned, checked) = tokio::task::spawn_blocking(move || {
                let checked = checking.check_tool_call(&request);
                (request, checked)
            })
            .await
            .map_err(worker_failed)?;
            request = returned;
            let running = match &checked {
                // Refused at once, without a place: the engine records the refusal and runs
                // nothing, whatever the registry holds by now.
                CallCheck::Refused(_) => None,
                CallCheck::Runs(_) => {
                    let ticket = admission.admit().map_err(busy)?;
                    // Cancel-safe: a call cancelled while it waits gives its place back unrun.
                    Some(admission.start(ticket).await.map_err(busy)?)
                }
            };
            // Held by this future: dropping it (the call cancelled) kills the execution's
            // sandboxes, and the blocking task ends at once.
            let (cancel, cancellation) = CancelOnDrop::new();
            request.cancel = Some(cancellation);
            let reply = tokio::task::spawn_blocking(move || {
                // The place is the blocking task's: an abandoned call counts until it ends.
                let _running = running;
                engine.call_checked(request, checked)
            })
            .await
            .map_err(worker_failed)?;
            cancel.disarm();
            answer(reply)
        })
    }
}

/// The registry of a running server: calls are admitted like executions (the caller's
/// quotas, the queue) and recorded as coming through `mcp`.
pub(crate) struct ServerTools {
    pub(crate) state: AppState,
}

impl ToolHost for ServerTools {
    fn tools(&self, caller: Option<&str>) -> Vec<ToolInfo> {
        active_tools(self.state.engine().tools_for(caller))
    }

    fn tool(&self, name: &str) -> Option<ToolInfo> {
        active_tools(self.state.engine().tool(name).into_iter().collect()).pop()
    }

    fn call(&self, name: String, arguments: serde_json::Value, caller: Option<String>) -> ToolCall {
        let state = self.state.clone();
        Box::pin(async move {
            let caller = Caller {
                api: Api::Mcp,
                token: caller,
            };
            match state.call_tool(name, arguments, caller).await {
                Ok(reply) => answer(reply),
                Err(e @ (ExecError::QueueFull { .. } | ExecError::QuotaExceeded { .. })) => {
                    Err(CallRefused::Busy(e.to_string()))
                }
                Err(e) => Err(CallRefused::Busy(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: String, structured: Option<serde_json::Value>) -> warden_engine::ToolReply {
        warden_engine::ToolReply {
            tool: "shell".into(),
            is_error: true,
            text,
            structured,
            execution: None,
            latency: std::time::Duration::ZERO,
            refused: false,
        }
    }

    /// Bug hunt: warden's own failure said only that the log had the details, with no id to
    /// find them by, and the log line lost the cause (`starting a job's process`, not why).
    #[test]
    fn warden_s_own_failure_gives_a_request_id() {
        let failed = warden_engine::EngineError::Egress {
            step: "spawning the proxy",
            source: "/srv/warden/helper: No such file or directory".into(),
        };
        let reply = answer(Err(ToolCallError::Engine(failed))).expect("a tool error");
        assert!(reply.is_error);
        assert!(
            reply
                .text
                .starts_with("warden failed to run the tool: internal error (request ")
                && !reply.text.contains("/srv/warden"),
            "{}",
            reply.text
        );
    }

    #[test]
    fn a_large_reply_is_cut_and_keeps_its_outcome_line() {
        let text = format!(
            "{}\n[output limit exceeded on stdout]",
            "y\n".repeat(500_000)
        );
        let big = serde_json::json!({ "stdout": text.clone() });
        let cut = capped(reply(text, Some(big)));
        assert!(cut.text.len() < MAX_REPLY_TEXT + 300, "{}", cut.text.len());
        assert!(
            cut.text.ends_with("[output limit exceeded on stdout]"),
            "{}",
            &cut.text[cut.text.len() - 200..]
        );
        assert!(cut
            .text
            .contains("the reply was cut at 128 KiB of 1000034 bytes"));
        assert!(cut.structured.is_none());
        assert!(cut.is_error);
        let small = capped(reply("ok\n".into(), Some(serde_json::json!({"a": 1}))));
        assert_eq!(small.text, "ok\n");
        assert!(small.structured.is_some());
    }
}
