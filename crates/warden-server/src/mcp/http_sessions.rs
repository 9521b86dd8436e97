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

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionId, SessionManager};

use super::http::SessionClosed;
use super::idle::{Activity, IDLE};
use super::unique_ids::UniqueIds;

/// [`LocalSessionManager`], its sessions' transports under [`UniqueIds`], each session closed
/// once idle by warden's own watch (`idle.rs`) rather than by rmcp's keep-alive, which
/// counts no call in flight.
pub(crate) struct UniqueIdSessions {
    inner: Arc<LocalSessionManager>,
    idle: Duration,
    on_closed: Option<SessionClosed>,
}

impl Default for UniqueIdSessions {
    fn default() -> Self {
        Self::new(IDLE, None)
    }
}

impl UniqueIdSessions {
    /// Sessions closed after `idle` without a message and with nothing in flight, each
    /// closing told to `on_closed`.
    pub(crate) fn new(idle: Duration, on_closed: Option<SessionClosed>) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = None;
        Self {
            inner: Arc::new(inner),
            idle,
            on_closed,
        }
    }

    /// `transport` under [`UniqueIds`], its session `id` watched until it is idle, then
    /// closed.
    fn watched<T>(&self, id: &SessionId, transport: T) -> UniqueIds<T> {
        let activity = Activity::new();
        let (sessions, watched, idle) = (self.inner.clone(), activity.clone(), self.idle);
        let (id, on_closed) = (id.clone(), self.on_closed.clone());
        tokio::spawn(async move {
            while let Some(left) = watched.idle_in(idle) {
                tokio::time::sleep(left).await;
                if !sessions.has_session(&id).await.unwrap_or(false) {
                    break;
                }
            }
            if let Err(error) = sessions.close_session(&id).await {
                tracing::debug!(%error, "closing an idle mcp session");
            }
            if let Some(SessionClosed(on_closed)) = on_closed {
                on_closed(&id);
            }
        });
        UniqueIds::watched(transport, activity)
    }
}

impl std::fmt::Debug for UniqueIdSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UniqueIdSessions")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl SessionManager for UniqueIdSessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = UniqueIds<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        let transport = self.watched(&id, transport);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(match self.inner.restore_session(id.clone()).await? {
            RestoreOutcome::Restored(transport) => {
                RestoreOutcome::Restored(self.watched(&id, transport))
            }
            RestoreOutcome::AlreadyPresent => RestoreOutcome::AlreadyPresent,
            // `NotSupported`, or one rmcp adds: the session is not found (404).
            _ => RestoreOutcome::NotSupported,
        })
    }
}
