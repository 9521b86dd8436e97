//! MCP over stdio (`warden mcp`): newline-delimited JSON-RPC on stdin and stdout, one session
//! that lasts until the client closes stdin, or until a signal stops it. Stdout is the protocol channel: nothing else in
//! the process may write to it (logs go to stderr; `clippy::print_stdout` guards the code).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rmcp::service::{QuitReason, ServerInitializeError};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::initialize_first::InitializeFirst;
use super::server::{stopped, McpServer, StopSignal};
use super::unique_ids::UniqueIds;
use super::{McpError, ToolHost};

/// Serves `host`'s tools over stdin and stdout until the client closes stdin, or `stop` turns
/// true. Must run on a tokio runtime with its I/O driver enabled (`enable_all`): when stdin
/// and stdout are pipes, as MCP clients start servers, they are read and written without
/// blocking threads.
///
/// When stdin closes, rmcp gives the calls in flight its grace (5 s) before it cancels them.
/// When `stop` turns true (a signal: the client will not wait), this returns at once and every
/// call in flight is cancelled as the runtime next polls it, its host future dropped; the
/// caller then waits for the host's cancelled calls to be recorded (`EngineTools::finish`).
pub async fn serve_stdio(host: Arc<dyn ToolHost>, stop: StopSignal) -> Result<(), McpError> {
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    serve_stream(host, stdin, stdout, Some(stop)).await
}

/// Serves one session on `reader` and `writer` until `reader` ends or `stop` turns true.
pub(crate) async fn serve_stream<R, W>(
    host: Arc<dyn ToolHost>,
    reader: R,
    writer: W,
    stop: Option<StopSignal>,
) -> Result<(), McpError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    // A client whose side of stdout is gone reads no answer again: the session ends as a
    // stop ends it, its calls cancelled, instead of running each call to an answer that fails.
    let (broken, broke) = tokio::sync::watch::channel(false);
    let writer = Watched {
        inner: writer,
        broken,
    };
    let (ends, ended) = tokio::sync::watch::channel(false);
    let outer = stop;
    let mut watch_broken = broke;
    tokio::spawn(async move {
        tokio::select! {
            () = stopped(outer) => {}
            Ok(_) = watch_broken.wait_for(|b| *b) => {
                tracing::info!("mcp client's end of stdout is closed: the session ends");
            }
            () = ends.closed() => return,
        }
        ends.send_replace(true);
    });
    let stop = Some(ended);
    tokio::select! {
        served = serve_session(host, reader, writer, stop.clone()) => served,
        () = stopped(stop) => {
            tracing::info!("mcp session over stdio stopped");
            Ok(())
        }
    }
}

/// A writer that notes its first failure in `broken`.
struct Watched<W> {
    inner: W,
    broken: tokio::sync::watch::Sender<bool>,
}

impl<W> Watched<W> {
    fn note<T>(&self, polled: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(_)) = &polled {
            self.broken.send_replace(true);
        }
        polled
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Watched<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_session<R, W>(
    host: Arc<dyn ToolHost>,
    reader: R,
    writer: W,
    stop: Option<StopSignal>,
) -> Result<(), McpError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let server = match stop {
        Some(stop) => McpServer::stopped_by(host, stop),
        None => McpServer::new(host),
    };
    let transport =
        InitializeFirst::new(UniqueIds::new(AsyncRwTransport::new_server(reader, writer)));
    let running = match server.serve(transport).await {
        Ok(running) => running,
        // A client that leaves before its handshake ended the session, it did not break it.
        Err(ServerInitializeError::ConnectionClosed(_)) => {
            tracing::info!("mcp client closed stdin before initializing");
            return Ok(());
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
