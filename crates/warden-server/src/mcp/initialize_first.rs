//! The stdio session's rule that `initialize` comes first, said in words a client's author
//! understands. rmcp refuses a request sent before the handshake as one of the 2026-07-28
//! revision (which needs none) lacking its per-request `_meta`: "request _meta is missing or
//! has malformed required fields: io.modelcontextprotocol/protocolVersion, ...", which does
//! not say that `initialize` was missing. This transport answers such a request itself, with
//! the same code (`-32602`, invalid params), before rmcp sees it; so it does a malformed
//! `initialize` (rmcp reads it as another method), and a request without `_meta` in a session
//! that began without `initialize`, and an `initialize` in such a session, each in its own
//! words. It drops the notifications and
//! responses sent before `initialize`, on which rmcp would end the session. Runs in
//! `warden mcp`.

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

/// What an `initialize` whose params MCP's shape does not fit is answered.
pub(crate) const MALFORMED_INITIALIZE: &str =
    "malformed `initialize`: its params need `protocolVersion` (a string), `capabilities` (an \
     object) and `clientInfo` (`name` and `version`)";

/// What a request without the 2026-07-28 revision's `_meta` is answered in a session that began
/// without `initialize` (its first request carried that `_meta`).
pub(crate) const META_IN_EVERY_REQUEST: &str =
    "this session began without `initialize` (its first request carried the 2026-07-28 \
     revision's `_meta`), so every request must carry that `_meta` too; missing or malformed:";

/// What an `initialize` is answered in a session that began without it. rmcp answered it,
/// naming a revision of the session model, then refused every request of that revision for
/// lacking the 2026-07-28 `_meta` (hunt mcp 4).
pub(crate) const BEGAN_WITHOUT_INITIALIZE: &str =
    "this session began without `initialize` (its first request carried the 2026-07-28 \
     revision's `_meta`) and cannot be initialized now: go on with that `_meta` in every \
     request, or start a new session with `initialize` first";

/// A server transport that answers, on `inner`, every request before `initialize` that rmcp
/// would refuse, and drops the notifications and responses sent before it (rmcp would end the
/// session on them); the rest passes through unchanged.
pub(crate) struct InitializeFirst<T> {
    inner: T,
    lifecycle: Lifecycle,
}

/// How far the session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Neither `initialize` nor a request that needs no handshake has been passed on.
    Unstarted,
    /// `initialize` has been passed on: the session model, no `_meta` needed.
    Initialized,
    /// A request carrying the 2026-07-28 revision's `_meta` has been passed on instead: every
    /// request needs that `_meta` (rmcp then refuses one without it).
    Inline,
}

impl<T> InitializeFirst<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            lifecycle: Lifecycle::Unstarted,
        }
    }

    /// The refusal of `request`, if this transport answers it instead of rmcp, and the
    /// lifecycle it starts when passed on.
    fn screen(&self, request: &ClientRequest) -> Result<Lifecycle, String> {
        let missing = || {
            request
                .get_meta()
                .missing_required_keys(&ProtocolVersion::V_2026_07_28)
        };
        match (self.lifecycle, request) {
            (Lifecycle::Initialized, _) | (_, ClientRequest::PingRequest(_)) => Ok(self.lifecycle),
            (Lifecycle::Inline, _) if request.method() == "initialize" => {
                Err(BEGAN_WITHOUT_INITIALIZE.to_owned())
            }
            // Also after a request with `_meta` that rmcp refused (a version it does not
            // support), which left its handshake open.
            (_, ClientRequest::InitializeRequest(_)) => Ok(Lifecycle::Initialized),
            // A probe: rmcp answers it and stays open to either lifecycle.
            (Lifecycle::Unstarted, ClientRequest::DiscoverRequest(_)) if missing().is_empty() => {
                Ok(Lifecycle::Unstarted)
            }
            (Lifecycle::Unstarted, _) if request.method() == "initialize" => {
                Err(MALFORMED_INITIALIZE.to_owned())
            }
            // Of a version rmcp does not know, it is refused (-32022) and the handshake stays
            // open: a client may fall back to `initialize` (regression hunt: it was refused as
            // in a session begun without it).
            (Lifecycle::Unstarted, _) if missing().is_empty() => {
                let known = request
                    .get_meta()
                    .protocol_version()
                    .is_some_and(|v| ProtocolVersion::KNOWN_VERSIONS.contains(&v));
                Ok(if known {
                    Lifecycle::Inline
                } else {
                    Lifecycle::Unstarted
                })
            }
            (Lifecycle::Unstarted, _) => Err(INITIALIZE_FIRST.to_owned()),
            (Lifecycle::Inline, _) => match missing() {
                keys if keys.is_empty() => Ok(Lifecycle::Inline),
                keys => Err(format!("{META_IN_EVERY_REQUEST} {}", keys.join(", "))),
            },
        }
    }
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
                if self.lifecycle == Lifecycle::Unstarted {
                    // A notification (`notifications/initialized` too early) or a response:
                    // nothing to answer, and rmcp would end the session on it.
                    tracing::debug!(
                        "dropped an mcp message that is not a request before initialize"
                    );
                    continue;
                }
                return Some(message);
            };
            let refusal = match self.screen(&request.request) {
                Ok(lifecycle) => {
                    self.lifecycle = lifecycle;
                    return Some(message);
                }
                Err(refusal) => refusal,
            };
            let refusal = ServerJsonRpcMessage::error(
                ErrorData::invalid_params(refusal, None),
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
