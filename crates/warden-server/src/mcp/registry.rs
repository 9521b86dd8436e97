//! The tool registry behind the MCP server: [`ToolHost`] over the engine, directly for
//! `warden mcp` (stdio, one local caller) or through the server's admission for `/mcp`.

use std::sync::Arc;

use warden_core::tool::Category;
use warden_engine::{Engine, Origin, ToolCallError, ToolCallRequest, ToolStatus};

use super::{CallRefused, ToolCall, ToolHost, ToolInfo, ToolReply};
use crate::state::{Api, AppState, Caller, ExecError};

/// The active tools, as MCP lists them.
fn active_tools(engine: &Engine) -> Vec<ToolInfo> {
    engine
        .tools()
        .iter()
        .filter(|t| t.status == ToolStatus::Active)
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
        Ok(reply) => Ok(ToolReply {
            text: reply.text,
            structured: reply.structured,
            is_error: reply.is_error,
        }),
        Err(ToolCallError::Unknown(name)) => Err(CallRefused::UnknownTool(name)),
        Err(e) if e.is_caller_fault() => Ok(ToolReply {
            text: e.to_string(),
            structured: None,
            is_error: true,
        }),
        Err(e) => {
            tracing::error!(error = %e, "tool call failed");
            Ok(ToolReply {
                text: "warden failed to run the tool; its log has the details".into(),
                structured: None,
                is_error: true,
            })
        }
    }
}

/// The registry of one engine, for a local client (`warden mcp` over stdio).
pub struct EngineTools {
    engine: Arc<Engine>,
}

impl EngineTools {
    /// The tools of `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl ToolHost for EngineTools {
    fn tools(&self) -> Vec<ToolInfo> {
        active_tools(&self.engine)
    }

    fn call(&self, name: String, arguments: serde_json::Value, caller: Option<String>) -> ToolCall {
        let engine = self.engine.clone();
        Box::pin(async move {
            let reply = tokio::task::spawn_blocking(move || {
                engine.call_tool(ToolCallRequest {
                    tool: name,
                    input: arguments,
                    origin: Origin::new("mcp", caller),
                    cancel: None,
                })
            })
            .await
            .map_err(|_| CallRefused::Busy("the tool's worker failed".into()))?;
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
    fn tools(&self) -> Vec<ToolInfo> {
        active_tools(self.state.engine())
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
