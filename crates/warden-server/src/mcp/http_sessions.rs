//! The sessions of `/mcp`: rmcp's in-memory session manager, each session's transport
//! wrapped in [`UniqueIds`] as the stdio session's is, so that rmcp's handler never sees a
//! client's request ids. Runs in the server process.
//!
//! rmcp keeps a cancelled request's id until its handler has returned and routes that
//! handler's answer, which it means to drop, by the id: a request that re-used the id at once
//! was answered as cancelled, and cancelled. `/mcp` refused such a request as a duplicate
//! until the cancelled request's stream ended instead (`mcp_requests.rs`). Under its own ids
//! rmcp tells the two apart, and the id is free at the cancel, over HTTP as over stdio.
//!
//! The session's worker, below the wrapper, still routes each answer to the `POST` that
//! carries its request by the client's id, and closes a cancelled request's stream at the
//! cancel: the wrapper sends every answer back under the client's id, and drops a cancelled
//! request's.

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};

use super::unique_ids::UniqueIds;

/// [`LocalSessionManager`], its sessions' transports under [`UniqueIds`].
#[derive(Debug, Default)]
pub(crate) struct UniqueIdSessions(LocalSessionManager);

impl SessionManager for UniqueIdSessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = UniqueIds<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.0.create_session().await?;
        Ok((id, UniqueIds::new(transport)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.0.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.0.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.0.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.0.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.0.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.0.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.0.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(match self.0.restore_session(id).await? {
            RestoreOutcome::Restored(transport) => {
                RestoreOutcome::Restored(UniqueIds::new(transport))
            }
            RestoreOutcome::AlreadyPresent => RestoreOutcome::AlreadyPresent,
            // `NotSupported`, or one rmcp adds: the session is not found (404).
            _ => RestoreOutcome::NotSupported,
        })
    }
}
