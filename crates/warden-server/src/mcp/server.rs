//! The MCP server itself: `rmcp`'s `ServerHandler`, written by hand because the tools are
//! known only at run time. It answers `initialize`, `tools/list` and `tools/call` and
//! translates between MCP's vocabulary and the [`ToolHost`] port; every other method is
//! rmcp's default (method not found).

use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::http::McpCaller;
use super::{CallRefused, ToolHost, ToolInfo, ToolReply};

/// What `initialize` tells the client about this server.
const INSTRUCTIONS: &str = "warden runs every tool in a sandbox on this host: code and commands \
                            are isolated, limited in time and memory, and offline unless a \
                            network policy allows otherwise.";

/// The MCP server over one [`ToolHost`]; cheap to clone (one per HTTP session).
#[derive(Clone)]
pub(crate) struct McpServer {
    host: Arc<dyn ToolHost>,
    /// Ends every call at once when it turns true (`warden mcp` got a signal).
    stop: Option<StopSignal>,
}

impl McpServer {
    pub(crate) fn new(host: Arc<dyn ToolHost>) -> Self {
        Self { host, stop: None }
    }

    /// A server whose calls all end, cancelled, as soon as `stop` turns true: rmcp cancels a
    /// handler's `context.ct` only after its grace (2 s, more once stdin is closed), which a
    /// client that sends SIGTERM does not wait for before SIGKILL.
    pub(crate) fn stopped_by(host: Arc<dyn ToolHost>, stop: StopSignal) -> Self {
        Self {
            host,
            stop: Some(stop),
        }
    }
}

/// Turns true once to end a stdio session at once (see [`super::serve_stdio`]).
pub type StopSignal = tokio::sync::watch::Receiver<bool>;

/// Resolves when `stop` turns true; never without one, or once its sender is gone unsent.
pub(crate) async fn stopped(stop: Option<StopSignal>) {
    if let Some(mut stop) = stop {
        if stop.wait_for(|stopped| *stopped).await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        // On a blocking thread: the registry may have to load again, analysing the programs
        // another process registered, which the connection's thread must not wait for (hunt
        // tenants 1: it stalled every request of the server, `/v1/health` too).
        let host = Arc::clone(&self.host);
        let tools = tokio::task::spawn_blocking(move || host.tools(caller.as_deref()))
            .await
            .map_err(|_| ErrorData::internal_error("listing the tools failed", None))?
            .into_iter()
            .map(tool)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let name = request.name.into_owned();
        tracing::debug!(tool = %name, caller = ?caller, "mcp tool call");
        // rmcp runs the handler to its end and does not drop it when the client cancels the
        // request (`notifications/cancelled`) or the session ends (stdin closed, `DELETE`,
        // shutdown): it cancels `context.ct`. Dropping the host's future is how a call is
        // cancelled (`ToolHost::call`); rmcp drops the answer of a cancelled request itself.
        let call = self.host.call(name, arguments, caller);
        let reply = tokio::select! {
            reply = call => reply,
            () = context.ct.cancelled() => {
                tracing::info!(id = %context.id, "mcp tool call cancelled");
                return Err(ErrorData::internal_error("the call was cancelled", None));
            }
            () = stopped(self.stop.clone()) => {
                tracing::info!(id = %context.id, "mcp tool call cancelled: warden mcp stops");
                return Err(ErrorData::internal_error("warden mcp was stopped", None));
            }
        };
        match reply {
            Ok(reply) => Ok(result(reply).into()),
            Err(refused @ CallRefused::Busy(_)) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(refused.to_string())]).into())
            }
            Err(refused @ (CallRefused::UnknownTool(_) | CallRefused::Invalid(_))) => {
                Err(ErrorData::invalid_params(refused.to_string(), None))
            }
        }
    }

    /// rmcp checks the `Mcp-Param-*` headers of an HTTP call against the tool's schema.
    ///
    /// rmcp asks it synchronously, on the connection's thread: on a runtime of several
    /// threads (the server's), that thread hands its other connections over while the
    /// registry may load again ([`ServerHandler::list_tools`] says why).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        let found = if multi_thread {
            tokio::task::block_in_place(|| self.host.tool(name))
        } else {
            self.host.tool(name)
        };
        found.map(tool)
    }
}

/// `ToolInfo` as MCP lists it.
fn tool(info: ToolInfo) -> Tool {
    let annotations = ToolAnnotations::new()
        .read_only(info.read_only)
        .open_world(info.open_world);
    let tool = Tool::new(info.name, info.description, Arc::new(info.input_schema))
        .with_annotations(annotations);
    match info.title {
        Some(title) => tool.with_title(title),
        None => tool,
    }
}

/// A tool's reply as MCP's result: one text block, the structured value if any.
fn result(reply: ToolReply) -> CallToolResult {
    let content = vec![ContentBlock::text(reply.text)];
    let mut result = if reply.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = reply.structured;
    result
}

/// Who calls: over HTTP, the [`McpCaller`] the authenticating middleware put in the request's
/// extensions (rmcp hands the request's `Parts` to the handler); over stdio (no `Parts`),
/// the local user. An HTTP request without an `McpCaller` means `/mcp` was mounted without
/// that middleware: refused rather than run anonymously.
fn caller(context: &RequestContext<RoleServer>) -> Result<Option<String>, ErrorData> {
    let Some(parts) = context.extensions.get::<Parts>() else {
        return Ok(None);
    };
    match parts.extensions.get::<McpCaller>() {
        Some(McpCaller(name)) => Ok(name.clone()),
        None => {
            tracing::error!("an mcp call over http carries no McpCaller: is /mcp authenticated?");
            Err(ErrorData::internal_error(
                "the request was not authenticated",
                None,
            ))
        }
    }
}
