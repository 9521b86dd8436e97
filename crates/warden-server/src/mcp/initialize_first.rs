//! The stdio session's rule that `initialize` comes first, said in words a client's author
//! understands. rmcp refuses a request sent before the handshake as one of the 2026-07-28
//! revision (which needs none) lacking its per-request `_meta`: "request _meta is missing or
//! has malformed required fields: io.modelcontextprotocol/protocolVersion, ...", which does
//! not say that `initialize` was missing. This transport answers such a request itself, with
//! the same code (`-32602`, invalid params), before rmcp sees it. Runs in `warden mcp`.

use std::future::Future;

use rmcp::model::{
    ClientRequest, ErrorData, GetMeta, JsonRpcMessage, ProtocolVersion, ServerJsonRpcMessage,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;

/// What a request sent before `initialize` is answered.
pub(crate) const INITIALIZE_FIRST: &str =
    "`initialize` must come first: send it (then `notifications/initialized`) before any other \
     request";

/// A server transport that answers, on `inner`, every request before `initialize` that rmcp
/// would refuse; the rest passes through unchanged.
pub(crate) struct InitializeFirst<T> {
    inner: T,
    /// `initialize`, or a request that needs no handshake, has been passed on.
    started: bool,
}

impl<T> InitializeFirst<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            started: false,
        }
    }
}

/// Whether rmcp takes `request` before `initialize`: `ping` (which MCP allows then), the
/// handshake itself, or a request that carries the 2026-07-28 revision's `_meta` in full.
fn taken_before_initialize(request: &ClientRequest) -> bool {
    matches!(
        request,
        ClientRequest::InitializeRequest(_) | ClientRequest::PingRequest(_)
    ) || request
        .get_meta()
        .missing_required_keys(&ProtocolVersion::V_2026_07_28)
        .is_empty()
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for InitializeFirst<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let message = self.inner.receive().await?;
            let JsonRpcMessage::Request(request) = &message else {
                return Some(message);
            };
            if self.started {
                return Some(message);
            }
            if taken_before_initialize(&request.request) {
                self.started = !matches!(request.request, ClientRequest::PingRequest(_));
                return Some(message);
            }
            let refusal = ServerJsonRpcMessage::error(
                ErrorData::invalid_params(INITIALIZE_FIRST, None),
                Some(request.id.clone()),
            );
            if let Err(error) = self.inner.send(refusal).await {
                tracing::info!(%error, "mcp client gone before initializing");
                return None;
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
