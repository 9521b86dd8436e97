//! MCP over streamable HTTP (`/mcp` of `warden serve`): rmcp's tower service with its
//! in-memory session manager, mounted in the axum router. Runs in the server process.
//!
//! This service does not authenticate: the router's middleware does, with the server's API
//! tokens, and tells the service who called by putting an [`McpCaller`] in the request's
//! extensions. rmcp hands each request's `http::request::Parts` (extensions included) to the
//! handler, so every call is attributed to the token of the POST that carries it; and the
//! middleware lets only the token that opened a session use or end it (`mcp_owners.rs`).

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Request;
use axum::response::IntoResponse;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use super::http_sessions::UniqueIdSessions;
use super::server::McpServer;
use super::ToolHost;

/// Who calls, as the authenticating middleware found it: the name of the API token (never
/// the token), `None` when the server has no tokens (anonymous, loopback only). Insert it
/// into the request's extensions before the request reaches [`http_service`]; a call
/// without one is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCaller(pub Option<String>);

/// How the HTTP endpoint is held.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The `Host` header values accepted, with or without port (`localhost`,
    /// `example.com:8080`); empty accepts any. This is the guard against DNS rebinding, which
    /// matters when `/mcp` is anonymous on loopback: a web page cannot know an API token, so
    /// with tokens configured the list may be empty.
    pub allowed_hosts: Vec<String>,
    /// The largest request body, in bytes (rmcp answers 413 beyond it).
    pub max_body: usize,
    /// Closes every session of the service at shutdown.
    pub shutdown: McpShutdown,
    /// How long a session with no request in flight lasts after its last message.
    pub idle: std::time::Duration,
    /// Told the id of each session closed for being idle.
    pub on_closed: Option<SessionClosed>,
}

/// What is told the id of each `/mcp` session closed for being idle (the server forgets its
/// owner then).
#[derive(Clone)]
pub struct SessionClosed(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for SessionClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionClosed")
    }
}

impl Default for HttpOptions {
    /// Loopback hosts only, 4 MiB bodies.
    fn default() -> Self {
        Self {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            max_body: 4 * 1024 * 1024,
            shutdown: McpShutdown::default(),
            idle: super::idle::IDLE,
            on_closed: None,
        }
    }
}

/// The MCP endpoint as a tower service, to mount with `Router::route_service("/mcp", ...)`:
/// `POST` carries JSON-RPC messages (answered as a server-sent-event stream), `GET` opens
/// the session's stream for server messages, `DELETE` ends the session. Sessions are
/// identified by the `Mcp-Session-Id` header, kept in memory, and closed after
/// `options.idle` (5 minutes) without a message and with no request in flight (`idle.rs`);
/// rmcp's handler knows each request by an id of the session's own (`http_sessions.rs`).
pub fn http_service(
    host: Arc<dyn ToolHost>,
    options: HttpOptions,
) -> impl tower::Service<
    Request,
    Response: IntoResponse + 'static,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts)
        .with_max_request_body_bytes(options.max_body);
    let stop = config.cancellation_token.clone();
    options.shutdown.on_close(move || stop.cancel());
    StreamableHttpService::new(
        move || Ok(McpServer::new(host.clone())),
        Arc::new(UniqueIdSessions::new(options.idle, options.on_closed)),
        config,
    )
}

/// Ends the sessions of the services built with it, and their open event streams, which
/// would otherwise hold their connections (and the server's drain) until the client leaves.
/// Clones share one switch.
#[derive(Clone, Default)]
pub struct McpShutdown {
    state: Arc<Mutex<Switch>>,
}

#[derive(Default)]
struct Switch {
    closed: bool,
    // Closures rather than rmcp's cancellation tokens: naming their type would take a direct
    // dependency on tokio-util for one call.
    on_close: Vec<Box<dyn FnOnce() + Send>>,
}

impl McpShutdown {
    /// Ends every session now and refuses new ones. Idempotent.
    pub fn close(&self) {
        let pending = {
            let mut switch = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            switch.closed = true;
            std::mem::take(&mut switch.on_close)
        };
        for close in pending {
            close();
        }
    }

    /// Runs `close` when the switch is thrown, or now if it already was.
    fn on_close(&self, close: impl FnOnce() + Send + 'static) {
        let mut switch = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if switch.closed {
            drop(switch);
            close();
        } else {
            switch.on_close.push(Box::new(close));
        }
    }
}

impl fmt::Debug for McpShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let switch = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("McpShutdown")
            .field("closed", &switch.closed)
            .finish_non_exhaustive()
    }
}
