//! What every route shares: the engine (kept warm: catalog, analyzer rules, configuration and
//! database are loaded once) and the way into it. Every execution, from any API, goes through
//! [`AppState::execute`], which admits it, runs it on a blocking thread and records which API
//! and which caller asked.

use std::sync::Arc;

use warden_engine::{Engine, EngineError, Execution, ExecutionRequest};

/// Which API an execution came through (recorded in the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// warden's own, under `/v1`.
    Own,
    /// Piston v2, under `/api/v2`.
    Piston,
    /// Judge0 CE, at the root.
    Judge0,
}

/// Who asked: the API and the name of the token that authenticated the request, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The API the request came through.
    pub api: Api,
    /// The configured name of the caller's token (never the token itself).
    pub token: Option<String>,
}

/// Why an execution did not run to a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The engine refused or failed it (its kind says whose fault).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The queue is full: the caller should retry after this many seconds.
    #[error("the queue is full")]
    QueueFull {
        /// A hint for `Retry-After`.
        retry_after_secs: u64,
    },
    /// The server is shutting down and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The blocking task that ran the engine panicked or was cancelled.
    #[error("the execution's worker failed")]
    Worker,
}

/// The state every route shares (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State around an engine.
    pub fn new(engine: Engine) -> Self {
        Self {
            inner: Arc::new(Inner { engine }),
        }
    }

    /// The engine, for what does not run a program (languages, history, statistics).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Runs one request to its result on a blocking thread.
    pub async fn execute(
        &self,
        request: ExecutionRequest,
        caller: Caller,
    ) -> Result<Execution, ExecError> {
        let _ = caller;
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.inner.engine.execute(request))
            .await
            .map_err(|_| ExecError::Worker)?
            .map_err(ExecError::from)
    }
}
