//! MCP over stdio (`warden mcp`): newline-delimited JSON-RPC on stdin and stdout, one session
//! that lasts until the client closes stdin. Stdout is the protocol channel: nothing else in
//! the process may write to it (logs go to stderr; `clippy::print_stdout` guards the code).

use std::sync::Arc;

use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::server::McpServer;
use super::{McpError, ToolHost};

/// Serves `host`'s tools over stdin and stdout until the client closes stdin. Must run on a
/// tokio runtime with its I/O driver enabled (`enable_all`): when stdin and stdout are pipes,
/// as MCP clients start servers, they are read and written without blocking threads.
pub async fn serve_stdio(host: Arc<dyn ToolHost>) -> Result<(), McpError> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    serve_stream(host, stdin, stdout).await
}

/// Serves one session on `reader` and `writer` until `reader` ends.
pub(crate) async fn serve_stream<R, W>(
    host: Arc<dyn ToolHost>,
    reader: R,
    writer: W,
) -> Result<(), McpError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let running = match McpServer::new(host).serve((reader, writer)).await {
        Ok(running) => running,
        // A client that leaves before its handshake ended the session, it did not break it.
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("mcp client closed stdin before initializing");
            return Ok(());
        }
        Err(ServerInitializeError::ExpectedInitializeRequest(_)) => {
            return Err(McpError::NotInitialized)
        }
        Err(error) => return Err(McpError::Handshake(Box::new(error))),
    };
    tracing::info!("mcp session started over stdio");
    match running.waiting().await.map_err(McpError::Session)? {
        QuitReason::JoinError(error) => Err(McpError::Session(error)),
        reason => {
            tracing::info!(?reason, "mcp session over stdio ended");
            Ok(())
        }
    }
}
