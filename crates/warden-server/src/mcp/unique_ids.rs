//! The stdio session's request ids in flight, so that a request whose id is already in flight
//! is refused at once, as `/mcp` refuses it (`mcp_requests.rs`). Runs in `warden mcp`.
//!
//! rmcp answers each request by its id: a second request with the id of one in flight ran, and
//! only one of the two was answered; the other held a worker to its end, and
//! `notifications/cancelled` for the id reached only the later one (bug hunt). JSON-RPC asks a
//! client for ids unique among its requests in flight; this transport holds it to that.

use std::collections::HashSet;
use std::future::Future;

use rmcp::model::{ClientNotification, ErrorData, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;

/// A server transport that refuses, on `inner`, a request whose id is in flight: received and
/// neither answered nor cancelled.
pub(crate) struct UniqueIds<T> {
    inner: T,
    in_flight: HashSet<RequestId>,
}

impl<T> UniqueIds<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            in_flight: HashSet::new(),
        }
    }
}

/// JSON-RPC's answer to a request whose id is in flight: `-32600` (invalid request), in the
/// words `/mcp` uses.
fn duplicate_id(id: &RequestId) -> ErrorData {
    ErrorData::invalid_request(
        format!(
            "request id {} is already in flight in this session: an id must be unique among a \
             session's requests until answered",
            serde_json::to_string(id).unwrap_or_default()
        ),
        None,
    )
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for UniqueIds<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        match &item {
            JsonRpcMessage::Response(response) => {
                self.in_flight.remove(&response.id);
            }
            JsonRpcMessage::Error(error) => {
                if let Some(id) = &error.id {
                    self.in_flight.remove(id);
                }
            }
            JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_) => {}
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let message = self.inner.receive().await?;
            match &message {
                JsonRpcMessage::Request(request) if !self.in_flight.insert(request.id.clone()) => {
                    let refusal = ServerJsonRpcMessage::error(
                        duplicate_id(&request.id),
                        Some(request.id.clone()),
                    );
                    if let Err(error) = self.inner.send(refusal).await {
                        tracing::info!(%error, "mcp client gone");
                        return None;
                    }
                }
                JsonRpcMessage::Notification(notification) => {
                    // A cancelled request is not answered: its id is free again.
                    if let ClientNotification::CancelledNotification(cancelled) =
                        &notification.notification
                    {
                        if let Some(id) = &cancelled.params.request_id {
                            self.in_flight.remove(id);
                        }
                    }
                    return Some(message);
                }
                _ => return Some(message),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
