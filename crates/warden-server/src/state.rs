//! What every route shares: the engine (kept warm: catalog, analyzer rules, configuration and
//! database are loaded once), the admission queue, the tokens and their quotas. Every
//! execution, from any API, goes through [`AppState::execute`], which admits it, runs it on a
//! blocking thread and records which API and which caller asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::Mutex as AsyncMutex;
use warden_engine::{
    CallCheck, Cancellation, Engine, EngineError, Execution, ExecutionRequest, Origin, Phase,
    ToolCallError, ToolCallRequest, ToolReply,
};

use crate::admission::{Admission, Load, Running, Ticket};
use crate::auth::{AuthError, Tokens};
use crate::jobs::Jobs;
use crate::metrics::REGISTERED_TOOL;
use crate::options::ServerOptions;
use crate::quota::{QuotaPermit, Quotas, StreamPermit};

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
    /// MCP over streamable HTTP, at `/mcp`.
    Mcp,
}

impl Api {
    /// The name the history records: `v1`, `piston` or `judge0`.
    pub const fn name(self) -> &'static str {
        match self {
            Api::Own => "v1",
            Api::Piston => "piston",
            Api::Judge0 => "judge0",
            Api::Mcp => "mcp",
        }
    }
}

/// Who asked: the API and the name of the token that authenticated the request, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The API the request came through.
    pub api: Api,
    /// The configured name of the caller's token (never the token itself).
    pub token: Option<String>,
}

/// The caller a quota message names: its token, or none on a server without tokens.
fn caller_named(token: &str) -> String {
    if token.is_empty() {
        "the server's caller (no tokens configured)".to_owned()
    } else {
        format!("token {token:?}")
    }
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
    /// The caller's token has used up a quota.
    #[error("{} is over its quota of {reason}", caller_named(token))]
    QuotaExceeded {
        /// The token's name (empty: the one caller of a server without tokens).
        token: String,
        /// Which quota, e.g. `600 requests per minute`.
        reason: String,
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

/// Cancels an execution when dropped before it finished (its client left, or an MCP client
/// cancelled the call).
pub(crate) struct CancelOnDrop(Option<Cancellation>);

impl CancelOnDrop {
    /// A guard over a new cancellation, and the cancellation to give the execution.
    pub(crate) fn new() -> (Self, Cancellation) {
        let cancel = Cancellation::new();
        (Self(Some(cancel.clone())), cancel)
    }

    /// The execution finished: nothing to cancel.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            tracing::info!("the client left: cancelling its execution");
            cancel.cancel();
        }
    }
}

/// The state every route shares (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    options: ServerOptions,
    admission: Admission,
    tokens: Tokens,
    quotas: Quotas,
    jobs: Jobs,
    /// Judge0's submissions.
    judge0: crate::judge0::Store,
    /// Held (for reading) by each task that keeps an asynchronous answer, until it has kept
    /// it; shutdown takes it for writing, so that no answer is lost to the process's exit.
    keeping: Arc<tokio::sync::RwLock<()>>,
    metrics: crate::metrics::Metrics,
    /// The last host check and when it ran (`/v1/ready`).
    ready: AsyncMutex<Option<(Instant, Result<String, String>)>>,
    /// Ends the MCP sessions' open event streams at shutdown.
    mcp_shutdown: crate::mcp::McpShutdown,
    /// The token that opened each MCP session over HTTP: only it may use or end the session.
    mcp_owners: crate::mcp_owners::McpOwners,
    mcp_requests: crate::mcp_requests::InFlight,
    /// The `POST /mcp` answers still being written, which shutdown waits for.
    mcp_answering: crate::mcp_requests::Answering,
    /// Set when the shutdown deadline passed: what is still queued or running ends with
    /// [`ExecError::ShuttingDown`] (its sandboxes killed), so that its client gets an answer.
    past_deadline: tokio::sync::watch::Sender<bool>,
    /// How many WebSocket sessions are open (upgraded): shutdown waits for them as for the
    /// connections, which an upgraded one no longer is.
    websockets: tokio::sync::watch::Sender<usize>,
    /// Set when shutdown begins ([`AppState::drain`]): a WebSocket still waiting for its
    /// first message is refused then, not waited for.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// A WebSocket's hold: its place among its caller's long-lived connections, and its count
/// among the open sessions that shutdown waits for; both given back when it is dropped.
#[derive(Debug)]
pub(crate) struct WebSocketHold {
    _place: StreamPermit,
    open: tokio::sync::watch::Sender<usize>,
}

impl Drop for WebSocketHold {
    fn drop(&mut self) {
        self.open.send_modify(|open| *open -= 1);
    }
}

/// Where an admitted execution is.
#[derive(Debug)]
enum Place {
    /// Waiting for a worker.
    Queued(Ticket),
    /// With its worker already (one queued again at start-up).
    Started(Running),
}

/// An execution admitted (its quota taken, its place in the queue held), not yet running.
#[derive(Debug)]
pub(crate) struct Admitted {
    place: Place,
    quota: QuotaPermit,
    /// When it was admitted (the queue's wait, for the metrics).
    at: Instant,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// State around an engine, with the default options (no tokens, workers from the cores).
    pub fn new(engine: Engine) -> Self {
        Self::with_options(engine, ServerOptions::default())
    }

    /// State around an engine with `options`.
    pub fn with_options(engine: Engine, options: ServerOptions) -> Self {
        let kept = Arc::new(keep_answers(
            options.results.as_deref(),
            options.results_max_age,
        ));
        let jobs = Jobs::new(Arc::clone(&kept));
        let judge0 = crate::judge0::Store::new(Arc::clone(&kept));
        let interrupted = jobs.recover() + judge0.recover();
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "answered the requests the last server did not finish as interrupted"
            );
        }
        Self {
            inner: Arc::new(Inner {
                engine,
                admission: Admission::new(options.workers, options.queue_size),
                tokens: Tokens::new(&options.tokens),
                // A quarter of the connections for one caller's long-lived ones.
                quotas: Quotas::new(&options.tokens, options.max_connections / 4),
                jobs,
                judge0,
                keeping: Arc::default(),
                metrics: crate::metrics::Metrics::default(),
                ready: AsyncMutex::new(None),
                mcp_shutdown: crate::mcp::McpShutdown::default(),
                mcp_owners: crate::mcp_owners::McpOwners::default(),
                mcp_requests: crate::mcp_requests::InFlight::default(),
                mcp_answering: crate::mcp_requests::Answering::default(),
                past_deadline: tokio::sync::watch::Sender::new(false),
                websockets: tokio::sync::watch::Sender::new(0),
                stopping: tokio::sync::watch::Sender::new(false),
                options,
            }),
        }
    }

    /// The engine, for what does not run a program (languages, history, statistics).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Ends the MCP sessions at shutdown.
    pub(crate) fn mcp_shutdown(&self) -> &crate::mcp::McpShutdown {
        &self.inner.mcp_shutdown
    }

    /// Who opened which MCP session over HTTP.
    pub(crate) fn mcp_owners(&self) -> &crate::mcp_owners::McpOwners {
        &self.inner.mcp_owners
    }

    /// The shutdown deadline passed: every execution still queued or running ends now, its
    /// request answered as shutting down.
    pub(crate) fn deadline_passed(&self) {
        self.inner.past_deadline.send_replace(true);
    }

    /// Whether the shutdown deadline has passed ([`AppState::deadline_passed`]).
    pub(crate) fn is_past_deadline(&self) -> bool {
        *self.inner.past_deadline.borrow()
    }

    /// What `work` gives, or [`ExecError::ShuttingDown`] once [`AppState::deadline_passed`]
    /// was called (`work` is dropped then).
    async fn before_deadline<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, ExecError> {
        let mut passed = self.inner.past_deadline.subscribe();
        let past_deadline = async move {
            if passed.wait_for(|passed| *passed).await.is_err() {
                // The state is gone: no deadline can pass any more.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            done = work => Ok(done),
            () = past_deadline => Err(ExecError::ShuttingDown),
        }
    }

    /// What `wait` (for a worker, or a place) gives, unless the shutdown deadline has passed,
    /// also in the same poll: when it passes, the executions it ends give their workers back,
    /// and a queued execution's wait may be ready with it; chosen at random
    /// ([`AppState::before_deadline`]), it started a run that the server's exit then
    /// interrupted, where it should have been kept for the next server to run.
    async fn wait_before_deadline<T>(
        &self,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T, ExecError> {
        let got = self.before_deadline(wait).await?;
        if self.is_past_deadline() {
            return Err(ExecError::ShuttingDown);
        }
        Ok(got)
    }

    /// The server's options (caps, deadlines, maxima).
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// Who presents `headers` through `api`: `Authorization: Bearer <token>`, or for Judge0
    /// also `X-Auth-Token`. Anonymous when no token is configured.
    pub fn authenticate(&self, headers: &HeaderMap, api: Api) -> Result<Caller, AuthError> {
        self.inner.tokens.caller(headers, api)
    }

    /// The server's tokens (authorization: [`crate::auth::Tokens::authorized`]).
    pub(crate) fn tokens(&self) -> &crate::auth::Tokens {
        &self.inner.tokens
    }

    /// How long a synchronous request may wait and run before it is answered with a timeout.
    pub fn sync_deadline(&self) -> Duration {
        self.inner.options.sync_deadline
    }

    /// What `/metrics` shows.
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// How busy the server is.
    pub fn load(&self) -> Load {
        self.inner.admission.load()
    }

    /// Runs one request to its result on a blocking thread, once admitted: the caller's quotas
    /// and a place in the queue (else [`ExecError::QueueFull`] or
    /// [`ExecError::QuotaExceeded`]). Dropping the future before the execution has a worker
    /// drops it unrun; once running, it finishes (and is recorded) without a listener.
    pub async fn execute(
        &self,
        request: ExecutionRequest,
        caller: Caller,
    ) -> Result<Execution, ExecError> {
        let admitted = self.admit(&caller)?;
        self.run_admitted(admitted, request, caller, || {}).await
    }

    /// A place among `caller`'s long-lived connections for a WebSocket, counted among the
    /// sessions shutdown waits for, until it is dropped. Not charged to the caller's rate:
    /// the execution the session runs is, once, when it is admitted (and not when it is
    /// refused for want of room), as `POST /v1/executions`'s.
    pub(crate) fn hold_websocket(&self, caller: &Caller) -> Result<WebSocketHold, ExecError> {
        let place = self.stream_place(caller)?;
        self.inner.websockets.send_modify(|open| *open += 1);
        Ok(WebSocketHold {
            _place: place,
            open: self.inner.websockets.clone(),
        })
    }

    /// Resolves once shutdown has begun ([`AppState::drain`]).
    pub(crate) async fn stopping(&self) {
        let mut stopping = self.inner.stopping.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Resolves once no WebSocket session is open ([`AppState::hold_websocket`]).
    pub(crate) async fn websockets_closed(&self) {
        let mut open = self.inner.websockets.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = open.wait_for(|open| *open == 0).await;
    }

    /// A place among `caller`'s long-lived connections (an MCP event stream), held until it
    /// is dropped, charged to its rate (once it has the place).
    pub(crate) fn hold_stream(&self, caller: &Caller) -> Result<StreamPermit, ExecError> {
        let held = self.inner.quotas.hold_stream(caller.token.as_deref());
        if held.is_err() {
            self.inner.metrics.refused("quota");
        }
        held
    }

    /// A place among `caller`'s file operations on sessions' workspaces and the server's,
    /// held until it is dropped (a download's for as long as its client reads it).
    pub(crate) fn hold_file_operation(
        &self,
        caller: &Caller,
    ) -> Result<crate::quota::FilePermit, ExecError> {
        let held = self
            .inner
            .quotas
            .hold_file_operation(caller.token.as_deref());
        if let Err(e) = &held {
            self.inner.metrics.refused(match e {
                ExecError::QueueFull { .. } => "queue_full",
                _ => "quota",
            });
        }
        held
    }

    /// A place among `caller`'s long-lived connections for an MCP request's event stream
    /// (`POST /mcp`, open until its answer), not charged to its rate.
    pub(crate) fn stream_place(&self, caller: &Caller) -> Result<StreamPermit, ExecError> {
        let held = self.inner.quotas.stream_place(caller.token.as_deref());
        if held.is_err() {
            self.inner.metrics.refused("quota");
        }
        held
    }

    /// The MCP requests in flight in each session, by id.
    pub(crate) fn mcp_requests(&self) -> &crate::mcp_requests::InFlight {
        &self.inner.mcp_requests
    }

    /// The `POST /mcp` requests still answering, server-wide.
    pub(crate) fn mcp_answering(&self) -> &crate::mcp_requests::Answering {
        &self.inner.mcp_answering
    }

    /// Takes one request of `caller`'s rate, for a request that runs nothing but costs
    /// every caller (a tool registered).
    pub(crate) fn charge(&self, caller: &Caller) -> Result<(), ExecError> {
        let charged = self.inner.quotas.charge(caller.token.as_deref());
        if charged.is_err() {
            self.inner.metrics.refused("quota");
        }
        charged
    }

    /// A place for another MCP session of `caller`'s: within its count of open ones and ones
    /// being opened (as many as its long-lived connections), charged to its rate. The place is
    /// the caller's until the session opens or the [`Opening`](crate::mcp_owners::Opening) is
    /// dropped.
    pub(crate) fn open_mcp_session(
        &self,
        caller: &Caller,
    ) -> Result<crate::mcp_owners::Opening, ExecError> {
        let most = self.inner.quotas.streams_each();
        let Some(opening) = self.inner.mcp_owners.reserve(caller.token.as_deref(), most) else {
            self.inner.metrics.refused("quota");
            return Err(ExecError::QuotaExceeded {
                token: caller.token.clone().unwrap_or_default(),
                reason: format!(
                    "{most} MCP sessions open at once (end one with DELETE /mcp, or let it idle out)"
                ),
                retry_after_secs: 60,
            });
        };
        let charged = self.inner.quotas.charge(caller.token.as_deref());
        if charged.is_err() {
            self.inner.metrics.refused("quota");
        }
        charged.map(|()| opening)
    }

    /// Takes `caller`'s quota and a place in the queue; a request refused for want of a place
    /// costs none of `caller`'s rate.
    pub(crate) fn admit(&self, caller: &Caller) -> Result<Admitted, ExecError> {
        let admitted = self
            .inner
            .quotas
            .admit(caller.token.as_deref())
            .and_then(|quota| {
                let ticket = self
                    .inner
                    .admission
                    .admit()
                    .inspect_err(|_| self.inner.quotas.refund(caller.token.as_deref()))?;
                Ok(Admitted {
                    place: Place::Queued(ticket),
                    quota,
                    at: Instant::now(),
                })
            });
        if let Err(e) = &admitted {
            self.inner.metrics.refused(match e {
                ExecError::QueueFull { .. } => "queue_full",
                ExecError::QuotaExceeded { .. } => "quota",
                ExecError::ShuttingDown => "shutting_down",
                _ => "other",
            });
        }
        admitted
    }

    /// A place in the queue and a worker for a request the last server accepted and never
    /// ran, waiting for them; its quota was taken when it was accepted.
    pub(crate) async fn admit_resumed(&self) -> Result<Admitted, ExecError> {
        let running = self.inner.admission.admit_waiting().await?;
        Ok(Admitted {
            place: Place::Started(running),
            quota: QuotaPermit::none(),
            at: Instant::now(),
        })
    }

    /// The admitted execution's worker, waited for if it has none yet.
    async fn worker(&self, place: Place) -> Result<Running, ExecError> {
        match place {
            Place::Queued(ticket) => self.inner.admission.start(ticket).await,
            Place::Started(running) => Ok(running),
        }
    }

    /// Waits for a worker, calls `on_start`, and runs the request.
    pub(crate) async fn run_admitted(
        &self,
        admitted: Admitted,
        mut request: ExecutionRequest,
        caller: Caller,
        on_start: impl FnOnce() + Send + 'static,
    ) -> Result<Execution, ExecError> {
        // Cancelled while it waits (a job's `DELETE`): it never starts, and its place in the
        // queue is given back at once (the dropped wait gives it back).
        let (withdrawn, cancelled) = tokio::sync::oneshot::channel::<()>();
        if let Some(cancel) = &request.cancel {
            cancel.on_cancel(move || {
                let _ = withdrawn.send(());
            });
        }
        // Without a cancellation the sender is gone at once: that branch never matches.
        let running = tokio::select! {
            biased;
            Ok(()) = cancelled => {
                return Err(ExecError::Engine(EngineError::Cancelled { ran: None }));
            }
            running = self.wait_before_deadline(self.worker(admitted.place)) => running??,
        };
        if request
            .cancel
            .as_ref()
            .is_some_and(Cancellation::is_cancelled)
        {
            return Err(ExecError::Engine(EngineError::Cancelled { ran: None }));
        }
        let queued = admitted.at.elapsed();
        self.inner.metrics.queued(queued);
        let quota = admitted.quota;
        let api = caller.api.name();
        request.origin = Origin::new(api, caller.token);
        // Held by this future: when the client goes away, axum drops the future, and the guard
        // kills the execution's sandboxes; the blocking task then ends at once. A request may
        // come with its own (a job that `DELETE` cancels).
        let cancel = CancelOnDrop(Some(request.cancel.take().unwrap_or_default()));
        request.cancel = cancel.0.clone();
        let state = self.clone();
        let sent = Instant::now();
        let run = tokio::task::spawn_blocking(move || {
            // Held by the blocking task, not the future: a cancelled run still occupies its
            // worker and its token's quota until its sandboxes are gone.
            let _held = (running, quota);
            let dispatched = sent.elapsed();
            on_start();
            let started = Instant::now();
            let result = state.inner.engine.execute(request);
            state
                .inner
                .metrics
                .executed(api, started.elapsed(), &result);
            (result, dispatched, Instant::now())
        });
        // Past the deadline, `cancel`, dropped armed, kills the execution's sandboxes.
        let (result, dispatched, done) = self
            .before_deadline(run)
            .await?
            .map_err(|_| ExecError::Worker)?;
        cancel.disarm();
        let mut execution = result.map_err(ExecError::from)?;
        // The server's own steps around the engine's phases, for the `Server-Timing` header.
        let mut phases = vec![
            Phase {
                name: "queue",
                took: queued,
            },
            Phase {
                name: "dispatch",
                took: dispatched,
            },
        ];
        phases.append(&mut execution.phases);
        phases.push(Phase {
            name: "return",
            took: done.elapsed(),
        });
        execution.phases = phases;
        Ok(execution)
    }

    /// Calls a tool of the registry once admitted, as [`AppState::execute`] runs an
    /// execution: the caller's quotas, a place in the queue, a worker, and a cancel when the
    /// client goes away. A call refused before anything would run (an unknown tool, input the
    /// schema refuses, a tool awaiting approval, a `run_code` call's limits above the
    /// operator's maxima) is refused at once, with no place and no worker, but it takes a
    /// request of the caller's rate: it is recorded, and refusals that cost nothing filled the
    /// history at thousands a second (hunt hist 1). Past the rate it is answered 429,
    /// unrecorded.
    pub async fn call_tool(
        &self,
        tool: String,
        input: serde_json::Value,
        caller: Caller,
    ) -> Result<Result<ToolReply, ToolCallError>, ExecError> {
        let api = caller.api.name();
        let request = ToolCallRequest {
            tool,
            input,
            origin: Origin::new(api, caller.token.clone()),
            cancel: None,
        };
        // Off the async threads: the registry may read its directory again.
        let state = self.clone();
        let (mut request, checked) = tokio::task::spawn_blocking(move || {
            let checked = state.inner.engine.check_tool_call(&request);
            (request, checked)
        })
        .await
        .map_err(|_| ExecError::Worker)?;
        let runs_execution = match &checked {
            // Refused at once, without a place or a worker: the engine records the refusal
            // and runs nothing, whatever the registry holds by now.
            CallCheck::Refused(_) => {
                self.charge(&caller)?;
                return self.call_counted(request, checked, None).await;
            }
            CallCheck::Runs(entry) => !matches!(
                entry.tool.runner,
                warden_core::tool::Runner::Builtin(warden_core::tool::Builtin::Files)
            ),
        };
        let admitted = self.admit(&caller)?;
        let running = self
            .wait_before_deadline(self.worker(admitted.place))
            .await??;
        // A `files` call runs no execution: it counts only among the tool calls.
        if runs_execution {
            self.inner.metrics.queued(admitted.at.elapsed());
        }
        let (cancel, cancellation) = CancelOnDrop::new();
        request.cancel = Some(cancellation);
        // Past the deadline, `cancel`, dropped armed, ends the call's sandboxes.
        let reply = self
            .before_deadline(self.call_counted(request, checked, Some((running, admitted.quota))))
            .await??;
        cancel.disarm();
        Ok(reply)
    }

    /// Calls `request`'s tool as `checked` found it on a blocking thread, which holds `held`
    /// (its worker and quota) until the call ends, and counts it in the metrics.
    async fn call_counted(
        &self,
        request: ToolCallRequest,
        checked: CallCheck,
        held: Option<(Running, QuotaPermit)>,
    ) -> Result<Result<ToolReply, ToolCallError>, ExecError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let _held = held;
            let started = Instant::now();
            let api = request.origin.api.clone();
            let tool_name = request.tool.clone();
            // The tool the check found: the one called, though removed or replaced meanwhile.
            let registered = checked
                .tool()
                .is_some_and(|t| matches!(t.source, warden_engine::ToolSource::Registered(_)));
            let reply = state.inner.engine.call_checked(request, checked);
            // A tool registered at run time (a caller's, over `POST /v1/tools`) is counted
            // under one name: registering and removing tools would add series for ever, and
            // show every caller the others' tool names.
            let label = if registered {
                REGISTERED_TOOL
            } else {
                &tool_name
            };
            state
                .inner
                .metrics
                .tool_called(&api, label, started.elapsed(), &reply);
            reply
        })
        .await
        .map_err(|_| ExecError::Worker)
    }

    /// Runs one call in a session once admitted, as [`AppState::execute`] runs an execution:
    /// the caller's quotas, a place in the queue and a worker. A call whose client goes away
    /// runs to its end (its wall-time limit bounds it): cancelling it would kill the session's
    /// sandbox, and the session with it.
    pub(crate) async fn session_call(
        &self,
        session: String,
        call: warden_engine::SessionCall,
        caller: Caller,
    ) -> Result<Result<Execution, warden_engine::SessionError>, ExecError> {
        // Looked up before the call waits for a place and a worker: an unknown or stopped
        // session is refused at once, and a running one is in use while its call waits (its
        // idle timeout does not stop it under the call).
        let lookup = {
            let state = self.clone();
            let (id, token) = (session.clone(), caller.token.clone());
            tokio::task::spawn_blocking(move || {
                state
                    .inner
                    .engine
                    .expect_session_call(&id, token.as_deref())
            })
            .await
            .map_err(|_| ExecError::Worker)?
        };
        let pending = match lookup {
            Ok(pending) => pending,
            Err(e) => return Ok(Err(e)),
        };
        let admitted = self.admit(&caller)?;
        let running = self.worker(admitted.place).await?;
        self.inner.metrics.queued(admitted.at.elapsed());
        let quota = admitted.quota;
        let origin = Origin::new(caller.api.name(), caller.token.clone());
        let call = match call {
            warden_engine::SessionCall::Command {
                command,
                mut request,
            } => {
                request.origin = origin;
                warden_engine::SessionCall::Command { command, request }
            }
            warden_engine::SessionCall::Program(mut request) => {
                request.origin = origin;
                warden_engine::SessionCall::Program(request)
            }
        };
        let state = self.clone();
        let api = caller.api.name();
        tokio::task::spawn_blocking(move || {
            let _held = (running, quota, pending);
            let started = Instant::now();
            let called = state
                .inner
                .engine
                .session_call(&session, caller.token.as_deref(), call);
            // A call that ran is an execution of `api` like any other, and so is one its
            // session's stop cancelled (a failure whose events count, docs/events.md); one the
            // session refused (stopped, gone, over a limit) ran nothing.
            let ran = match &called {
                Ok(execution) => Some(&execution.result),
                Err(e) => e.cancelled_execution(),
            };
            if let Some(result) = ran {
                state.inner.metrics.ran(api, started.elapsed(), result);
            }
            called
        })
        .await
        .map_err(|_| ExecError::Worker)
    }

    /// Runs `work` on a blocking thread once it holds `caller`'s quota, a place in the queue
    /// and then a worker, like an execution: for what is not an execution but may cost as
    /// much, a tool registration's analysis of the tool's program
    /// (docs/server.md#admission). Without the place, every registration analysed at once on
    /// tokio's blocking pool, whatever `workers` said; without the quota, a token capped at
    /// one execution at once held every worker and place of the queue with registrations,
    /// and the other tokens' executions were refused (hunt tenants 2).
    pub(crate) async fn with_worker<T: Send + 'static>(
        &self,
        caller: &Caller,
        work: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, ExecError> {
        let Admitted { place, quota, .. } = self.admit(caller)?;
        let running = self.wait_before_deadline(self.worker(place)).await??;
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            // Held by the blocking task: a client that leaves does not free the worker (or
            // its quota) before the work ends.
            let _held = (running, quota);
            work(state.engine())
        })
        .await
        .map_err(|_| ExecError::Worker)
    }

    /// Executions started with `wait=false`.
    pub(crate) fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The host check of `/v1/ready` (`warden doctor`'s sandbox check), run at most once per
    /// `max_age`: a check forks a sandbox, too costly for every probe.
    pub(crate) async fn readiness(&self, max_age: Duration) -> Result<String, String> {
        let mut cached = self.inner.ready.lock().await;
        if let Some((at, answer)) = cached.as_ref() {
            if at.elapsed() < max_age {
                return answer.clone();
            }
        }
        let state = self.clone();
        let answer = tokio::task::spawn_blocking(move || state.inner.engine.sandbox_check())
            .await
            .map_err(|_| "the check's worker failed".to_owned())
            .and_then(|check| check.map_err(|e| warden_engine::error_chain(&e)))
            .and_then(|check| match check.outcome {
                warden_core::Outcome::Exited { code: 0 } => {
                    Ok(format!("sandbox works (cgroup {})", check.cgroup))
                }
                other => Err(format!("/bin/true in the sandbox: {other}")),
            });
        *cached = Some((Instant::now(), answer.clone()));
        answer
    }

    /// Stops admitting executions and waits, at most `deadline`, for the admitted ones to
    /// end; whether they all did.
    pub(crate) async fn drain(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        self.inner.stopping.send_replace(true);
        self.inner.admission.close();
        self.inner.admission.drain(deadline).await
            && tokio::time::timeout(
                deadline.saturating_sub(start.elapsed()),
                Arc::clone(&self.inner.keeping).write_owned(),
            )
            .await
            .is_ok()
    }

    /// Judge0's submissions.
    pub(crate) fn judge0_store(&self) -> &crate::judge0::Store {
        &self.inner.judge0
    }

    /// A hold on the shutdown, for a task that will keep an asynchronous answer: shutdown
    /// waits for it (within its deadline). `None` once shutdown has begun.
    pub(crate) fn keeping(&self) -> Option<tokio::sync::OwnedRwLockReadGuard<()>> {
        Arc::clone(&self.inner.keeping).try_read_owned().ok()
    }
}

/// The kept answers: in the database at `path`, else (none configured, or it cannot be
/// used) in memory, said in the log.
fn keep_answers(path: Option<&std::path::Path>, max_age: Duration) -> crate::kept::Kept {
    use crate::kept::{Bounds, Kept};
    let in_memory = || Kept::in_memory(Bounds::IN_MEMORY.for_age(max_age));
    let Some(path) = path else {
        return in_memory();
    };
    let kept = Kept::open(path, max_age);
    if kept.is_ok() {
        tracing::info!(path = %path.display(), "asynchronous answers are kept");
    }
    kept.unwrap_or_else(|e| {
        let why = warden_engine::error_chain(&e);
        tracing::warn!(
            error = %why,
            "asynchronous answers are kept in memory only: a restart forgets them"
        );
        in_memory()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::TokenConfig;

    fn token(name: &str, requests_per_minute: Option<u32>) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            token: format!("{name}-secret"),
            max_concurrent: None,
            requests_per_minute,
            admin: false,
        }
    }

    fn caller(token: &str) -> Caller {
        Caller {
            api: Api::Own,
            token: Some(token.into()),
        }
    }

    /// Bug hunt: requests the full queue refused (429 `queue_full`) took their caller's rate,
    /// so a client that retried as `Retry-After` said was then refused for its quota.
    #[tokio::test]
    async fn a_request_refused_for_a_full_queue_costs_no_request_of_the_rate() {
        let engine = Engine::new(warden_engine::EngineConfig::new(
            "/nonexistent/warden".into(),
        ))
        .expect("engine");
        let options = ServerOptions {
            workers: 1,
            queue_size: 0,
            tokens: vec![token("a", Some(2)), token("b", None)],
            ..ServerOptions::default()
        };
        let state = AppState::with_options(engine, options);
        let busy = state.admit(&caller("b")).expect("the one place");
        for _ in 0..2 {
            assert!(matches!(
                state.admit(&caller("a")),
                Err(ExecError::QueueFull { .. })
            ));
        }
        drop(busy);
        let first = state.admit(&caller("a")).expect("within the rate");
        drop(first);
        let second = state.admit(&caller("a")).expect("within the rate");
        drop(second);
        assert!(
            matches!(
                state.admit(&caller("a")),
                Err(ExecError::QuotaExceeded { .. })
            ),
            "two admitted: the rate is spent"
        );
    }

    /// Hunt tenants 2: a tool registration took a place in the queue and a worker, but not its
    /// token's `max_concurrent`: a token capped at one held every worker and place with
    /// registrations (each analysing up to its 3 s bound), and the other tokens were refused
    /// `queue_full`. It is admitted as an execution is, and refused as one past the cap.
    #[tokio::test]
    async fn a_registration_is_admitted_within_its_tokens_max_concurrent() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::new(warden_engine::EngineConfig {
            tools: Some(warden_engine::ToolsSettings::new(dir.path().to_owned())),
            ..warden_engine::EngineConfig::new("/nonexistent/warden".into())
        })
        .expect("engine");
        let capped = TokenConfig {
            max_concurrent: Some(1),
            ..token("dave", None)
        };
        let options = ServerOptions {
            workers: 2,
            queue_size: 8,
            tokens: vec![capped, token("alice", None)],
            ..ServerOptions::default()
        };
        let state = AppState::with_options(engine, options);
        let register = |who: &str, name: &str| {
            let definition = format!(
                "name = \"{name}\"\ndescription = \"d\"\ncategory = \"host\"\n\
                 [input]\ntype = \"object\"\n[run]\ncommand = [\"/bin/true\"]\n"
            );
            axum::http::Request::post("/v1/tools")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {who}-secret"))
                .body(axum::body::Body::from(
                    serde_json::json!({ "definition": definition }).to_string(),
                ))
                .expect("a request")
        };
        let send = |request: axum::http::Request<axum::body::Body>| async {
            let response = crate::routes::router(state.clone())
                .oneshot(request)
                .await
                .expect("an answer");
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body");
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        // dave's one admitted at once (an execution waiting for its worker, as a registration
        // being analysed is).
        let held = state.admit(&caller("dave")).expect("dave's one");
        let (status, body) = send(register("dave", "second")).await;
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("quota_exceeded"), "{body}");
        let (status, body) = send(register("alice", "alices")).await;
        assert_eq!(status, 201, "another token's: {body}");
        drop(held);
        let (status, body) = send(register("dave", "second")).await;
        assert_eq!(status, 201, "its place freed: {body}");
    }
}
