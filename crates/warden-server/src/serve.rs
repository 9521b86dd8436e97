//! The server's lifecycle: refuse an unprotected public address, bind every address, serve
//! until SIGTERM or SIGINT, then stop accepting, let admitted executions finish within the
//! shutdown deadline, and return. An execution still running past the deadline is ended by
//! its sandbox's lifeline when the process exits (ARCHITECTURE.md, invariant 7), so nothing is
//! left behind either way.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use warden_engine::Engine;

use crate::options::ServerOptions;
use crate::routes::router;
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
    /// A listener failed while serving.
    #[error("serving on {addr}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("installing the SIGTERM/SIGINT handlers")]
    Signals(#[source] std::io::Error),
}

/// Serves the own API (and whatever the router carries) on `options.listen` until SIGTERM or
/// SIGINT. Blocks; builds its own runtime. `engine` must not fork helpers (`fork_helper =
/// false`): this process is multi-threaded (ARCHITECTURE.md, invariant 8).
pub fn serve(engine: Engine, options: ServerOptions) -> Result<(), ServeError> {
    if let Some(addr) = options.exposed_without_token() {
        return Err(ServeError::OpenWithoutToken { addr });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warden-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(AppState::with_options(engine, options)))
}

async fn run(state: AppState) -> Result<(), ServeError> {
    let options = state.options().clone();
    let mut listeners = Vec::new();
    for &addr in &options.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener.local_addr().unwrap_or(addr);
        // The one line a supervisor or a test waits for.
        tracing::info!(addr = %local, "listening");
        eprintln!("warden: listening on http://{local}");
        listeners.push((local, listener));
    }
    let (stop, stopped) = watch::channel(false);
    let app = router(state.clone());
    let mut servers = tokio::task::JoinSet::new();
    for (addr, listener) in listeners {
        let mut stopped = stopped.clone();
        let app = app.clone();
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
                .map_err(|source| ServeError::Serve { addr, source })
        });
    }
    let signal = shutdown_signal()?;
    tokio::select! {
        () = signal => {}
        Some(Ok(Err(e))) = servers.join_next() => return Err(e),
    }
    tracing::info!("shutting down: no new connections; waiting for admitted executions");
    let _ = stop.send(true);
    drain(&state, &mut servers).await;
    Ok(())
}

/// Waits for the admitted executions and the open requests, within the shutdown deadline.
async fn drain(state: &AppState, servers: &mut tokio::task::JoinSet<Result<(), ServeError>>) {
    let deadline = state.options().shutdown_deadline;
    if !state.drain(deadline).await {
        tracing::warn!(
            load = ?state.load(),
            "executions still running at the shutdown deadline; their sandboxes end with the process"
        );
        return;
    }
    // The executions are done; their responses are being written.
    let flushed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if flushed.is_err() {
        tracing::warn!("connections still open after the executions ended; closing them");
    }
}

/// Resolves at the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    })
}
