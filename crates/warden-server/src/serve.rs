//! The server's lifecycle: refuse an unprotected public address, bind every address, serve
//! until SIGTERM, SIGINT or SIGHUP, then stop accepting, let admitted executions finish within
//! the shutdown deadline, and return. An execution still running past the deadline is ended by
//! its sandbox's lifeline when the process exits (ARCHITECTURE.md, invariant 7), so nothing is
//! left behind either way.
//!
//! Connections are served by hyper's HTTP/1 server rather than `axum::serve`, for two limits
//! axum does not offer: a header-read timeout (a client that sends its headers byte by byte,
//! or nothing, is cut after `header_read_timeout` instead of holding its connection forever:
//! slow loris) and a cap on open connections (`max_connections`). The same timeout bounds the
//! other direction, a client that does not read what it is sent (`send_pace.rs`). Upgrades
//! stay enabled for the WebSockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use warden_engine::Engine;

use crate::options::ServerOptions;
use crate::routes::router;
use crate::send_pace::Paced;
use crate::state::AppState;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without any token would open code execution to the network.
    #[error(
        "refusing to listen on {addr} without an API token: anyone who can reach it could run \
         code on this host; add a [[server.tokens]] entry to warden.toml, or listen on \
         127.0.0.1"
    )]
    OpenWithoutToken {
        /// The address.
        addr: SocketAddr,
    },
    /// The async runtime could not be created.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// An address could not be bound.
    #[error("listening on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("installing the SIGTERM/SIGINT/SIGHUP handlers")]
    Signals(#[source] std::io::Error),
    /// Another server still holds the database of the answers owed for later.
    #[error(
        "{path} is still held by another warden server after {waited}s: stop it first, or \
         give this server a history database of its own ([history] path, WARDEN_DB); without \
         it this server would forget every asynchronous answer at its next restart"
    )]
    AnswersInUse {
        /// The database.
        path: std::path::PathBuf,
        /// How long this server waited for it, in seconds.
        waited: u64,
    },
}

/// Serves the own API (and whatever the router carries) on `options.listen` until SIGTERM or
/// SIGINT. Blocks; builds its own runtime. `engine` must not fork helpers (`fork_helper =
/// false`): this process is multi-threaded (ARCHITECTURE.md, invariant 8).
pub fn serve(engine: Engine, options: ServerOptions) -> Result<(), ServeError> {
    if let Some(addr) = options.exposed_without_token() {
        return Err(ServeError::OpenWithoutToken { addr });
    }
    if let Some(path) = &options.results {
        // The server before this one may still be finishing its executions (a restart): it
        // lets go of the database within its shutdown deadline.
        wait_for_answers(path, options.shutdown_deadline + Duration::from_secs(10))?;
    }
    // What a server killed before this one left mounted (its sessions' workspaces, its runs'
    // volumes); a server still running keeps its own.
    engine.volumes().release_stale_mounts();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.io_threads)
        .enable_all()
        .thread_name("warden-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(AppState::with_options(engine, options)))
}

/// Waits, at most `bound`, until no other server holds the answers' database at `path`
/// (`Kept`'s `flock` on it), saying so in the log while it waits. A database that cannot be
/// opened at all is left to `AppState` (which keeps the answers in memory, and says so).
fn wait_for_answers(path: &std::path::Path, bound: Duration) -> Result<(), ServeError> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < bound => {
                if !std::mem::replace(&mut said, true) {
                    tracing::warn!(
                        path = %path.display(),
                        "waiting for the warden server that holds the answers' database to end"
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ServeError::AnswersInUse {
                    path: path.to_owned(),
                    waited: started.elapsed().as_secs(),
                })
            }
            Err(std::fs::TryLockError::Error(_)) => return Ok(()),
        }
    }
}

async fn run(state: AppState) -> Result<(), ServeError> {
    // Before the first listener: once "listening" is printed, a supervisor may send SIGTERM,
    // and without the handlers in place the signal's default action would kill the server
    // with its admitted executions (seen in a test under load, the signal arriving while this
    // task had not yet run past the accept loops' spawning).
    let shutdown = shutdown_signal()?;
    let options = state.options().clone();
    let mut listeners = Vec::new();
    for &addr in &options.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener.local_addr().unwrap_or(addr);
        listeners.push((local, listener));
    }
    // The addresses bound (`--listen` over `[server] listen`, the kernel's port for port 0)
    // are warden's own services, which no network policy reaches: before anything runs.
    let bound: Vec<SocketAddr> = listeners.iter().map(|(local, _)| *local).collect();
    state.engine().set_services(bound.clone());
    // And registered for the other warden processes of this host (a `warden run` knows only
    // `[server] listen`): removed when this function returns, the server stopped.
    let _registration = match warden_engine::network::Registration::register(&bound) {
        Ok(registration) => Some(registration),
        Err(e) => {
            tracing::warn!(
                error = %e,
                dir = warden_engine::network::services::SERVICES_DIR,
                "cannot register this server's addresses: other warden processes' sandboxes \
                 may reach them"
            );
            None
        }
    };
    // What the last server accepted and never ran: queued again, ahead of new requests.
    state.resume();
    for (local, _) in &listeners {
        // The one line a supervisor or a test waits for.
        tracing::info!(addr = %local, "listening");
        eprintln!("warden: listening on http://{local}");
    }
    let (stop, stopped) = watch::channel(false);
    let app = router(state.clone());
    let mut servers = tokio::task::JoinSet::new();
    // One cap for all listeners: it bounds the process's descriptors, not an address's.
    let limits = ConnectionLimits {
        slots: Arc::new(Semaphore::new(options.max_connections)),
        header_read_timeout: options.header_read_timeout,
    };
    for (_, listener) in listeners {
        servers.spawn(accept(
            listener,
            app.clone(),
            limits.clone(),
            stopped.clone(),
        ));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections; waiting for admitted executions");
    let _ = stop.send(true);
    drain(&state, &mut servers).await;
    // Sessions end with the server: their processes stop, their files stay in their volumes,
    // and each says so when the next server reads it back (docs/sessions.md).
    let sessions = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        sessions.engine().stop_sessions();
        // The history is written in the background: what is queued is written before exit.
        sessions.engine().flush_history();
    })
    .await;
    Ok(())
}

/// Waits for the admitted executions (MCP tool calls among them) and the open requests,
/// within the shutdown deadline; then ends the MCP sessions once their answers are written.
async fn drain(state: &AppState, servers: &mut tokio::task::JoinSet<()>) {
    let deadline = state.options().shutdown_deadline;
    if !state.drain(deadline).await {
        tracing::warn!(
            load = ?state.load(),
            "executions still queued or running at the shutdown deadline: ended, their clients answered 503"
        );
        state.deadline_passed();
        close_mcp(state).await;
        // Their answers are written; a connection that holds on is closed with the process.
        let answered =
            tokio::time::timeout(Duration::from_secs(3), connections_closed(state, servers)).await;
        if answered.is_err() {
            tracing::warn!("connections still open after the shutdown deadline; closing them");
        }
        return;
    }
    close_mcp(state).await;
    // The executions are done; their responses (a WebSocket's output and result too) are
    // being written.
    let flushed =
        tokio::time::timeout(Duration::from_secs(5), connections_closed(state, servers)).await;
    if flushed.is_err() {
        tracing::warn!("connections still open after the executions ended; closing them");
    }
}

/// Ends the MCP sessions once the answers of the `POST /mcp` requests are written (for at
/// most 3 seconds): ending them sooner cuts those answers short, and their open event streams
/// (a session's `GET`) would otherwise hold their connections until the client leaves.
async fn close_mcp(state: &AppState) {
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        state.mcp_answering().all_answered(),
    )
    .await;
    if answered.is_err() {
        tracing::warn!("mcp answers still being written after 3 s; ending the sessions");
    }
    state.mcp_shutdown().close();
}

/// Resolves once every connection has closed: the accept loops' (each waits for its HTTP
/// connections) and the WebSocket sessions, which are no longer connections of theirs once
/// upgraded.
async fn connections_closed(state: &AppState, servers: &mut tokio::task::JoinSet<()>) {
    while servers.join_next().await.is_some() {}
    state.websockets_closed().await;
}

/// What every connection is held to.
#[derive(Clone)]
struct ConnectionLimits {
    /// One permit per open connection (`max_connections`).
    slots: Arc<Semaphore>,
    /// How long a request's headers may take to arrive, or a kept-alive connection may idle;
    /// and how long a write may wait for a client that takes nothing of it.
    header_read_timeout: Duration,
}

/// Accepts connections on `listener` until `stopped`, each once a slot is free; then waits for
/// the open ones to finish their requests.
async fn accept(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Past the cap, clients wait in the listen backlog rather than being refused.
        let slot = tokio::select! {
            slot = Arc::clone(&limits.slots).acquire_owned() => {
                slot.expect("the connection semaphore is never closed")
            }
            () = stop_requested(&mut stopped) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => break,
        };
        let connection = serve_connection(stream, app.clone(), &limits, stopped.clone(), slot);
        connections.spawn(connection);
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// A failed `accept`: a connection reset before it was accepted costs nothing; anything else
/// (typically `EMFILE`) is logged and retried after a pause, so that the loop does not spin.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection's requests until the client closes it, its headers are late, it does
/// not take what it is sent, or the server stops (then the request in progress is finished
/// and the connection closed). Holds its slot until then; an upgraded connection (WebSocket)
/// gives it back at the upgrade.
fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: &ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(
            TokioIo::new(Paced::new(stream, limits.header_read_timeout)),
            TowerToHyperService::new(app),
        )
        .with_upgrades();
    async move {
        let _slot = slot;
        tokio::pin!(connection);
        let ended = tokio::select! {
            ended = connection.as_mut() => ended,
            () = stop_requested(&mut stopped) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = ended {
            // Late headers, a reset, a malformed request, answers not read: the client's
            // doing.
            tracing::debug!(%error, "connection closed");
        }
    }
}

/// Resolves once the server is stopping (at once if it already is).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // The sender lives until `run` returns; an error would mean it is gone, i.e. stopping.
    let _ = stopped.wait_for(|s| *s).await;
}

/// Resolves at the first SIGTERM, SIGINT or SIGHUP (the terminal the server was started in
/// closed: stopping as asked beats dying with executions half done).
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
            _ = hangup.recv() => tracing::info!("SIGHUP"),
        }
    })
}
