//! The MCP adapter: warden's tools served over the Model Context Protocol, with the official
//! Rust SDK (`rmcp`), on stdio (`warden mcp`) and as streamable HTTP (`/mcp` of
//! `warden serve`). Runs in the server process (or the `warden mcp` process).
//!
//! The adapter translates and nothing more: it lists what a [`ToolHost`] offers and forwards
//! each call to it. The host is the tool registry seen through this port (the integrator
//! implements it over the engine), so the protocol code knows no tool and the registry knows
//! no protocol. A program's failure is a tool result with `isError: true`, never a JSON-RPC
//! error: the agent reads it and tries again (DESIGN.md §7, invariant 4).
//!
//! Spec: <https://modelcontextprotocol.io/specification/2025-06-18/server/tools>.

mod http;
mod http_sessions;
mod idle;
mod initialize_first;
mod registry;
mod server;
mod stdio;
#[cfg(test)]
mod tests;
mod unique_ids;

use std::future::Future;
use std::pin::Pin;

pub use http::{http_service, HttpOptions, McpCaller, McpShutdown, SessionClosed};
pub use registry::EngineTools;
pub(crate) use registry::ServerTools;
pub use server::StopSignal;
pub use stdio::serve_stdio;

/// What the MCP server serves: the tool registry, seen through this port.
pub trait ToolHost: Send + Sync + 'static {
    /// The tools `caller` may list and call, in the order to show them: `caller` as in
    /// [`ToolHost::call`] (another token's registrations are not among them).
    fn tools(&self, caller: Option<&str>) -> Vec<ToolInfo>;

    /// The tool named `name`, whoever may see it: what rmcp checks an HTTP call's
    /// `Mcp-Param-*` headers against before the call reaches [`ToolHost::call`] (which
    /// answers another token's tool as unknown). Never listed.
    fn tool(&self, name: &str) -> Option<ToolInfo>;

    /// Calls the tool `name` with `arguments` (a JSON object; `{}` when the client sent none)
    /// on behalf of `caller`: the name of the API token that authenticated the HTTP request,
    /// `None` over stdio (the local user who started `warden mcp`). The future runs the tool
    /// to its end; dropping it before then cancels the call (its execution's sandboxes are
    /// killed): the client cancelled the request or ended the session.
    fn call(&self, name: String, arguments: serde_json::Value, caller: Option<String>) -> ToolCall;
}

/// The future of one tool call: boxed, so that [`ToolHost`] stays object-safe without a macro.
pub type ToolCall = Pin<Box<dyn Future<Output = Result<ToolReply, CallRefused>> + Send>>;

/// One tool as `tools/list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// The name a call gives (`run_code`).
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON schema of the arguments: an object schema (`"type": "object"`), which MCP
    /// requires and the type makes impossible to get wrong.
    pub input_schema: serde_json::Map<String, serde_json::Value>,
    /// A name for people, if it differs from `name`.
    pub title: Option<String>,
    /// The tool changes nothing outside its sandbox (MCP's `readOnlyHint`).
    pub read_only: bool,
    /// The tool reaches the network (MCP's `openWorldHint`).
    pub open_world: bool,
}

/// What a tool answered: its output, whether it ran or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolReply {
    /// The output as text (the `text` content of the result).
    pub text: String,
    /// The same output as a JSON value (`structuredContent`), when the tool has one.
    pub structured: Option<serde_json::Value>,
    /// The tool failed (the program exited non-zero, hit a limit...): `isError: true`. The
    /// agent sees `text` and may correct its call.
    pub is_error: bool,
}

/// Why a call did not reach a tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRefused {
    /// No tool has this name: a JSON-RPC error (invalid params). The message quotes at most
    /// the first [`warden_core::tool::MAX_NAME_LEN`] bytes of the name: it is the client's
    /// text, of any length.
    #[error("unknown tool: {}", warden_core::tool::name_excerpt(.0))]
    UnknownTool(String),
    /// The request itself is malformed (arguments that do not fit the schema): a JSON-RPC
    /// error (invalid params) with this message.
    #[error("{0}")]
    Invalid(String),
    /// Not now (the queue is full, the caller's quota is used up): a tool result with
    /// `isError: true` and this message, which the agent can retry.
    #[error("{0}")]
    Busy(String),
}

/// Why the stdio server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The handshake failed otherwise (stdout closed, the initialize result not written).
    #[error("mcp handshake over stdio")]
    Handshake(#[source] Box<rmcp::service::ServerInitializeError>),
    /// The task serving the session panicked.
    #[error("mcp session over stdio")]
    Session(#[source] tokio::task::JoinError),
}
