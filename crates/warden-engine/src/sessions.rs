//! Sessions: a sandbox that lives across calls (docs/sessions.md).
//!
//! A session is one live sandbox, kept by the engine between calls, whose workspace `/work` is
//! a volume of its own (`session-<id>`), so that its files outlive the sandbox, the session's
//! stop and a restart of the server. Each call is an execution run as a job of that sandbox
//! (`engine/sessions.rs`), under the session's mode, network policy and ceilings; calls of one
//! session run one at a time, in the order they arrive.
//!
//! The store here keeps the sessions, their state and their files on the host (`meta/<id>.json`
//! beside the volumes' state), stops them (idle timeout, lifetime, a ceiling reached, removal),
//! and runs the reaper thread that enforces the timeouts. A session whose server stopped is
//! read back as stopped, with its files intact.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use warden_core::units::format_duration;
use warden_core::{ByteSize, LimitOverrides, Limits, Mode, ModeRequest, UsageSample};
use warden_sandbox::{CancelHandle, LiveSandbox, UsageReader};

use crate::error::EngineError;
use crate::tools::FilesError;

/// Where sessions are kept when neither the environment nor the history's place says.
pub const SYSTEM_SESSIONS_DIR: &str = "/var/lib/warden/sessions";

/// How often the reaper looks for sessions past their timeouts.
const REAP_EVERY: Duration = Duration::from_millis(500);

/// What `[sessions]` allows, with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsSettings {
    /// Where each session's state is kept (`WARDEN_SESSIONS_DIR`, else `sessions/` beside the
    /// history database).
    pub dir: PathBuf,
    /// Sessions alive at once.
    pub max: usize,
    /// Sessions of one caller alive at once.
    pub max_per_caller: usize,
    /// Sessions one caller keeps, running or stopped (at least `max_per_caller`).
    pub max_kept_per_caller: usize,
    /// The default and largest idle timeout.
    pub idle_timeout: Duration,
    /// The default and longest lifetime.
    pub max_lifetime: Duration,
    /// A workspace's size when the request names none.
    pub disk: ByteSize,
    /// The largest workspace a request may ask for.
    pub max_disk: ByteSize,
}

impl SessionsSettings {
    /// The settings of `config`, its state in `dir`.
    pub fn new(config: &warden_core::SessionsConfig, dir: PathBuf) -> Self {
        let max_per_caller = config
            .max_per_caller
            .unwrap_or(warden_core::config::DEFAULT_MAX_PER_CALLER);
        Self {
            dir,
            max: config
                .max
                .unwrap_or(warden_core::config::DEFAULT_MAX_SESSIONS),
            max_per_caller,
            max_kept_per_caller: config
                .max_kept_per_caller
                .unwrap_or(warden_core::config::DEFAULT_MAX_KEPT_PER_CALLER.max(max_per_caller)),
            idle_timeout: config
                .idle_timeout
                .unwrap_or(warden_core::config::DEFAULT_IDLE_TIMEOUT),
            max_lifetime: config
                .max_lifetime
                .unwrap_or(warden_core::config::DEFAULT_MAX_LIFETIME),
            disk: config.disk.unwrap_or(warden_core::config::DEFAULT_DISK),
            max_disk: config
                .max_disk
                .unwrap_or(warden_core::config::DEFAULT_MAX_DISK),
        }
    }
}

/// What a new session asks for. Unset fields take the configuration's defaults.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    /// The mode every call runs in: `sandboxed` or `isolated` (a session needs a mount
    /// namespace); `auto` is the mode the policy gives code without findings.
    pub mode: Option<ModeRequest>,
    /// The network policy of the whole session, by name.
    pub network: Option<String>,
    /// `memory` and `max_procs` are the whole session's (its cgroup); the others are each
    /// call's defaults.
    pub limits: LimitOverrides,
    /// Stop the session when no call used it for this long.
    pub idle_timeout: Option<Duration>,
    /// Stop it this long after it started, whatever it is doing.
    pub max_lifetime: Option<Duration>,
    /// The size of its workspace (a hard quota: writes past it fail with ENOSPC).
    pub disk: Option<ByteSize>,
    /// An existing volume to use as the workspace instead of a new one; it is kept when the
    /// session is removed.
    pub workspace: Option<String>,
    /// The caller: only the same token may use the session.
    pub owner: Option<String>,
}

/// Whether a session can take calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Its sandbox is alive; calls run in it.
    Running,
    /// Its sandbox is gone (`stopped_reason` says why); its files remain until it is removed.
    Stopped,
}

/// A session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// Running or stopped.
    pub state: SessionState,
    /// Why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The mode its calls run in.
    pub mode: Mode,
    /// Its network policy.
    pub network: String,
    /// Its ceilings (`memory`, `max_procs`) and the calls' default limits.
    pub limits: Limits,
    /// Idle timeout, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Lifetime, in milliseconds.
    pub max_lifetime_ms: u64,
    /// The volume holding its workspace.
    pub workspace: String,
    /// The workspace's size (its quota), in bytes.
    pub disk_bytes: u64,
    /// When it was created, last used (a call or a file operation) and will be stopped at the
    /// latest (RFC 3339, UTC).
    pub created_at: String,
    /// See `created_at`.
    pub last_used_at: String,
    /// See `created_at`.
    pub expires_at: String,
    /// Calls run so far.
    pub calls: u64,
    /// Whether a call is running now.
    pub busy: bool,
    /// The caller that owns it (an API token's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The sandbox's resources right now (memory, processes, cpu), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageSample>,
    /// The workspace's use, in bytes, when it could be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_used_bytes: Option<u64>,
}

/// A session operation that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session has this id (or it belongs to another caller, which is not told apart).
    #[error("no session {0:?}")]
    NotFound(String),
    /// The session stopped; it takes no more calls.
    #[error("session {id} stopped: {reason}")]
    Stopped {
        /// The session.
        id: String,
        /// Why.
        reason: String,
        /// The call the stop cancelled, as the history recorded it (outcome `cancelled`, with
        /// what its sandbox stopped until then: docs/events.md), when one was running.
        call: Option<Box<crate::execution::ExecutionResult>>,
    },
    /// A removal found the stopped session's workspace held by another file operation for
    /// longer than it waits: the session is stopped, not removed.
    #[error(
        "session {id} is stopped but not removed: another file operation held its workspace \
         for {}; try again",
        format_duration(*waited)
    )]
    WorkspaceHeld {
        /// The session.
        id: String,
        /// How long the removal waited.
        waited: Duration,
    },
    /// Too many sessions are alive.
    #[error("{0}")]
    TooMany(String),
    /// The request is wrong (a field out of bounds, a mode sessions cannot have).
    #[error("{0}")]
    Invalid(String),
    /// The workspace volume cannot be made, attached or removed.
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// A file operation failed (a bad path, a link, a missing file, the quota).
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The engine failed (building the sandbox, a volume, the call itself).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A new session's state cannot be written (a full or read-only sessions directory).
    #[error("the session's state cannot be kept in {}", dir.display())]
    State {
        /// The sessions' directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The session runs in another warden process (a server beside this `warden mcp`), whose
    /// sandbox this process cannot reach.
    #[error(
        "session {id} runs in another warden process (pid {pid}): reach it through that \
         process's API or MCP endpoint"
    )]
    Elsewhere {
        /// The session.
        id: String,
        /// The process that runs it.
        pid: u32,
    },
}

impl SessionError {
    /// The call a stop (or a cancel) ended, as the history recorded it, with what its sandbox
    /// stopped until then (docs/events.md), when one was running.
    pub fn cancelled_execution(&self) -> Option<&crate::execution::ExecutionResult> {
        match self {
            SessionError::Stopped { call, .. } => call.as_deref(),
            SessionError::Engine(e) => e.cancelled_execution(),
            _ => None,
        }
    }
}

/// The live part of a running session: its sandbox and workspace lease. Its proxy is each
/// call's own (`Runner::with_session`).
pub(crate) struct Live {
    pub(crate) sandbox: LiveSandbox,
    pub(crate) workspace: crate::volumes::VolumeLease,
    /// The session's network policy, for each call's jobs.
    pub(crate) network: crate::engine::network::NetworkPlan,
}

/// What is kept on disk about a session (`meta/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) mode: Mode,
    pub(crate) network: String,
    pub(crate) limits: Limits,
    /// What the session's request set for its calls (not `memory` and `max_procs`, which are
    /// the session's): each call's defaults, under what the call sets.
    #[serde(default)]
    pub(crate) call_limits: LimitOverrides,
    pub(crate) idle_timeout_ms: u64,
    pub(crate) max_lifetime_ms: u64,
    pub(crate) workspace: String,
    /// The workspace volume's identity: a volume of the same name made after it was removed
    /// is another, which the session must not reach. `None` in a session kept before
    /// identities were, until its store adopts the volume of its owner of that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace_id: Option<String>,
    /// Whether the workspace volume was made for the session (removed with it).
    pub(crate) own_workspace: bool,
    pub(crate) disk_bytes: u64,
    pub(crate) created_ms: i64,
    pub(crate) last_used_ms: i64,
    pub(crate) calls: u64,
    pub(crate) owner: Option<String>,
    pub(crate) stopped_reason: Option<String>,
    /// The process that runs it (its sandbox lives and dies with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) process: Option<ProcessMark>,
}

/// A process, told apart from a later one given the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessMark {
    pid: u32,
    /// Its start, in clock ticks after boot (`/proc/PID/stat`'s 22nd field).
    start: u64,
}

impl ProcessMark {
    /// This process.
    pub(crate) fn this() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// The process `pid` as it is now, if it runs.
    fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid ...: the comm may hold spaces and parentheses.
        let rest = stat.rsplit_once(')')?.1;
        let start = rest.split_whitespace().nth(19)?.parse().ok()?;
        Some(Self { pid, start })
    }

    /// Whether it is another process than this one, and still runs.
    fn is_another_alive(self) -> bool {
        self.pid != std::process::id() && self.is_alive()
    }

    /// Whether it still runs (not another process given its pid since).
    pub(crate) fn is_alive(self) -> bool {
        Self::of(self.pid) == Some(self)
    }
}

/// One session.
pub(crate) struct Session {
    pub(crate) id: String,
    meta: Mutex<Meta>,
    /// Held for the whole of a call: calls run one at a time.
    live: Mutex<Option<Live>>,
    /// Cancels the running call's job (the lifetime reached, removal).
    cancel: Mutex<Option<CancelHandle>>,
    /// Reads the sandbox's use while a call holds it.
    usage: Mutex<Option<UsageReader>>,
    /// The workspace on the host while the session runs, for file operations during calls.
    host_path: Mutex<Option<PathBuf>>,
    busy: std::sync::atomic::AtomicBool,
    /// Downloads of its files still being sent ([`Download`]): the session is in use.
    downloads: std::sync::atomic::AtomicUsize,
    /// Calls that arrived and wait for their turn ([`PendingCall`]): the session is in use.
    pending: std::sync::atomic::AtomicUsize,
    /// Being removed: its workspace may be gone before the store forgets it.
    removing: std::sync::atomic::AtomicBool,
    /// Held while its state is written: two writes at once (a call's start or end, a stop
    /// from another thread) would share the temporary file, and one could rename the other's
    /// half-written state into place.
    saving: Mutex<()>,
    dir: PathBuf,
}

/// A download's hold on a session: it is in use, not idle, until the download ends (its last
/// byte sent, or its client gone), and used last then.
pub(crate) struct Download(Arc<Session>);

impl Drop for Download {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .downloads
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Download").field(&self.0.id).finish()
    }
}

/// A call's hold on its session from its arrival until it ends, while it waits for its turn
/// (the server's queue, a worker, the calls before it): the session is in use, not idle.
/// Dropping it marks the session used now.
pub struct PendingCall(Arc<Session>);

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PendingCall").field(&self.0.id).finish()
    }
}

/// A call's hold on a running session; dropping it ends the call.
pub(crate) struct CallGuard<'s> {
    pub(crate) session: &'s Session,
    pub(crate) live: MutexGuard<'s, Option<Live>>,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.session.touch();
        self.session
            .busy
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Session {
    pub(crate) fn new(meta: Meta, live: Option<Live>, dir: PathBuf) -> Self {
        let cancel = live.as_ref().map(|l| l.sandbox.cancel_handle());
        let usage = live.as_ref().and_then(|l| l.sandbox.usage_reader());
        let host_path = live.as_ref().map(|l| l.workspace.host_path().to_owned());
        Self {
            id: meta.id.clone(),
            meta: Mutex::new(meta),
            live: Mutex::new(live),
            cancel: Mutex::new(cancel),
            usage: Mutex::new(usage),
            host_path: Mutex::new(host_path),
            busy: std::sync::atomic::AtomicBool::new(false),
            downloads: std::sync::atomic::AtomicUsize::new(0),
            pending: std::sync::atomic::AtomicUsize::new(0),
            removing: std::sync::atomic::AtomicBool::new(false),
            saving: Mutex::new(()),
            dir,
        }
    }

    pub(crate) fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the calls before this one, then holds the running session; a stopped one is
    /// refused with its reason.
    pub(crate) fn begin_call(&self) -> Result<CallGuard<'_>, SessionError> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = self.meta().stopped_reason.clone() {
            return Err(SessionError::Stopped {
                id: self.id.clone(),
                reason,
                call: None,
            });
        }
        self.busy.store(true, std::sync::atomic::Ordering::SeqCst);
        self.touch();
        // Kept at the call's start too: a server killed under it would otherwise say the
        // session was last used at the end of the call before (bug hunt).
        self.save_unsynced();
        Ok(CallGuard {
            session: self,
            live,
        })
    }

    /// Marks the session used now.
    pub(crate) fn touch(&self) {
        self.meta().last_used_ms = now_ms();
    }

    /// Holds the session in use while one of its files is sent.
    pub(crate) fn download(self: &Arc<Self>) -> Download {
        self.downloads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Download(Arc::clone(self))
    }

    /// Holds the session in use for a call that arrived, until the call ends; a stopped or
    /// removed session is refused as [`Session::begin_call`] would refuse it.
    pub(crate) fn expect_call(self: &Arc<Self>) -> Result<PendingCall, SessionError> {
        if self.is_removing() {
            return Err(SessionError::NotFound(self.id.clone()));
        }
        if let Some(reason) = self.meta().stopped_reason.clone() {
            return Err(SessionError::Stopped {
                id: self.id.clone(),
                reason,
                call: None,
            });
        }
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.touch();
        Ok(PendingCall(Arc::clone(self)))
    }

    /// Marks it as being removed ([`Session::is_removing`]).
    pub(crate) fn begin_removal(&self) {
        self.removing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Takes back [`Session::begin_removal`]: the removal failed, and the session stays.
    pub(crate) fn abandon_removal(&self) {
        self.removing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether it is being removed: an operation that finds its workspace gone failed
    /// because of that, and the session is as good as not found.
    pub(crate) fn is_removing(&self) -> bool {
        self.removing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops the session: its running call (if any) is cancelled (its proxy stopped with it),
    /// its sandbox destroyed and its workspace released; the reason is kept. Stopping a stopped
    /// session does nothing.
    pub(crate) fn stop(&self, reason: &str) {
        {
            let mut meta = self.meta();
            if meta.stopped_reason.is_some() {
                return;
            }
            meta.stopped_reason = Some(reason.to_owned());
        }
        if let Some(cancel) = self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take() {
            cancel.cancel();
        }
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.forget_live();
        end_live(live);
        self.save();
    }

    /// Drops what the session kept of its live part.
    fn forget_live(&self) {
        self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.usage.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.host_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// The workspace directory on the host, opened, while the session runs; `None` once it
    /// stopped. Opened under the lock [`Session::stop`] forgets the path with, before the
    /// workspace is released: a stop during a file operation cannot take the directory away
    /// between the two (the operation goes on through its descriptor).
    pub(crate) fn open_host_root(
        &self,
    ) -> Option<Result<std::os::fd::OwnedFd, crate::tools::FilesError>> {
        let path = self.host_path.lock().unwrap_or_else(|p| p.into_inner());
        path.as_deref().map(crate::tools::files::open_root)
    }

    /// The workspace directory on the host while the session runs.
    pub(crate) fn host_path(&self) -> Option<PathBuf> {
        self.host_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Gives the session's sandbox a new lease for a call (`LiveSandbox::renew_lease`): a
    /// handle of an earlier call (a late signal) does not reach this one. Under the lock
    /// [`Session::stop`] takes the handle with: a stop before it refuses the call, a stop after
    /// it cancels the call's job through the new handle.
    pub(crate) fn renew_lease(
        &self,
        sandbox: &mut LiveSandbox,
    ) -> Result<(), warden_sandbox::SandboxError> {
        let mut cancel = self.cancel.lock().unwrap_or_else(|p| p.into_inner());
        if cancel.is_none() {
            return Err(warden_sandbox::SandboxError::cancelled());
        }
        sandbox.renew_lease()?;
        *cancel = Some(sandbox.cancel_handle());
        Ok(())
    }

    /// Points the kept handles at a sandbox rebuilt during a call.
    pub(crate) fn rebind(&self, sandbox: &LiveSandbox) {
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(sandbox.cancel_handle());
        *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = sandbox.usage_reader();
    }

    /// Stops the session from within a call (the call holds the live part).
    pub(crate) fn stop_in_call(&self, guard: &mut CallGuard<'_>, reason: &str) {
        {
            let mut meta = self.meta();
            if meta.stopped_reason.is_none() {
                meta.stopped_reason = Some(reason.to_owned());
            }
        }
        self.forget_live();
        end_live(guard.live.take());
        self.save();
    }

    /// Writes the state to disk (best effort: a failure is logged; the session goes on).
    pub(crate) fn save(&self) {
        self.write_state(Durability::Synced);
    }

    /// [`Session::save`] without waiting for the disk (the two syncs took about 12 ms here):
    /// what a server killed meanwhile left is read back, what a host's crash lost is the state
    /// the last synced save wrote (see `write_meta`).
    fn save_unsynced(&self) {
        self.write_state(Durability::Unsynced);
    }

    /// Writes the state as it is now, one write at a time (`saving`).
    fn write_state(&self, durability: Durability) {
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let meta = self.meta().clone();
        if let Err(e) = write_meta(&self.dir, &meta, durability) {
            tracing::warn!(session = %meta.id, error = %e, "saving the session's state");
        }
    }

    /// What the API shows.
    pub(crate) fn info(&self) -> SessionInfo {
        let usage = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(UsageReader::sample);
        let busy = self.busy.load(std::sync::atomic::Ordering::SeqCst);
        let meta = self.meta();
        SessionInfo {
            id: meta.id.clone(),
            state: if meta.stopped_reason.is_some() {
                SessionState::Stopped
            } else {
                SessionState::Running
            },
            stopped_reason: meta.stopped_reason.clone(),
            mode: meta.mode,
            network: meta.network.clone(),
            limits: meta.limits,
            idle_timeout_ms: meta.idle_timeout_ms,
            max_lifetime_ms: meta.max_lifetime_ms,
            workspace: meta.workspace.clone(),
            disk_bytes: meta.disk_bytes,
            created_at: crate::history::utc(meta.created_ms),
            last_used_at: crate::history::utc(meta.last_used_ms),
            expires_at: crate::history::utc(
                meta.created_ms + i64::try_from(meta.max_lifetime_ms).unwrap_or(i64::MAX / 2),
            ),
            calls: meta.calls,
            busy,
            owner: meta.owner.clone(),
            usage,
            disk_used_bytes: None,
        }
    }

    /// The reason the reaper has to stop it now, if any.
    fn expired(&self, now: i64) -> Option<String> {
        let meta = self.meta();
        if meta.stopped_reason.is_some() {
            return None;
        }
        let lifetime = i64::try_from(meta.max_lifetime_ms).unwrap_or(i64::MAX / 2);
        if now - meta.created_ms >= lifetime {
            return Some(format!(
                "it reached its maximum lifetime of {}",
                format_duration(Duration::from_millis(meta.max_lifetime_ms))
            ));
        }
        let idle = i64::try_from(meta.idle_timeout_ms).unwrap_or(i64::MAX / 2);
        let busy = self.busy.load(std::sync::atomic::Ordering::SeqCst)
            || self.downloads.load(std::sync::atomic::Ordering::SeqCst) > 0
            || self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0;
        if !busy && now - meta.last_used_ms >= idle {
            return Some(format!(
                "it was idle for {} (its idle timeout)",
                format_duration(Duration::from_millis(meta.idle_timeout_ms))
            ));
        }
        None
    }
}

/// Ends a session's sandbox and workspace lease, logging what fails.
fn end_live(live: Option<Live>) {
    if let Some(live) = live {
        if let Err(e) = live.sandbox.destroy() {
            tracing::warn!(error = %e, "destroying a session's sandbox");
        }
        drop(live.workspace);
    }
}

/// A new session's place among the limits while it is being built.
pub(crate) struct Admission<'s> {
    sessions: &'s Sessions,
    caller: Option<String>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut creating = self
            .sessions
            .creating
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(at) = creating.iter().position(|c| *c == self.caller) {
            creating.swap_remove(at);
        }
    }
}

/// All sessions of an engine.
pub(crate) struct Sessions {
    pub(crate) settings: SessionsSettings,
    /// The sessions directory's identity ([`identity_of`]), written in the workspaces of its
    /// sessions: only a store of that directory sweeps them. `None` when it cannot be read
    /// or made: such a store sweeps nothing.
    pub(crate) identity: Option<String>,
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    /// The ids of the states that exist but cannot be read (cut short by a crash, written
    /// by another version): their sessions existed, so their workspaces are kept.
    unreadable: std::collections::BTreeSet<String>,
    /// Sessions another live warden process runs (a server beside `warden mcp`): their owner
    /// and that process. Neither read back as stopped nor rewritten here.
    elsewhere: BTreeMap<String, (Option<String>, u32)>,
    /// The owners of the sessions being built now (`admit`).
    creating: Mutex<Vec<Option<String>>>,
    reaper: std::sync::OnceLock<()>,
}

/// Writes a session's state to `dir/<id>.json`, whole or not at all (a temporary file renamed
/// over it, removed when the write fails). The file reaches the disk before the rename, and
/// the rename before this returns: a file system may commit a rename before the data it
/// names (ext4's delayed allocation, for a new file), and a crash of the host then leaves the
/// name on an empty file, a state no server can read.
///
/// `Durability::Unsynced` skips both syncs, for a state rewritten over one a synced write
/// left: a crash of the host may lose the new state, and ext4 (`auto_da_alloc`, its default)
/// writes a file renamed over another before the rename, so the old one is not replaced by an
/// empty file.
fn write_meta(dir: &Path, meta: &Meta, durability: Durability) -> std::io::Result<()> {
    let path = dir.join(format!("{}.json", meta.id));
    let tmp = dir.join(format!(".{}.json.tmp", meta.id));
    let synced = durability == Durability::Synced;
    let written = serde_json::to_vec_pretty(meta)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_file(&tmp, &bytes, synced))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .and_then(|()| if synced { sync_dir(dir) } else { Ok(()) });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether [`write_meta`] waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

/// Writes `bytes` to a new (or truncated) file at `path`, on the disk when this returns if
/// `synced`.
fn write_file(path: &Path, bytes: &[u8], synced: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    if synced {
        file.sync_all()?;
    }
    Ok(())
}

/// Puts the directory `dir`'s entries (a rename, a link) on the disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The file in a sessions directory that holds its identity.
const IDENTITY_FILE: &str = ".identity";

/// The identity of the sessions directory `dir`: random, made by the first store opened on it
/// and kept in `dir/.identity`, so that every process keeping its sessions there (a server,
/// `warden mcp`, `warden tool call` with the same `WARDEN_SESSIONS_DIR` or history) reads the
/// same, and a process keeping them elsewhere another. Made whole before it takes its name
/// (a link, which fails if another process made it first: then that one is read).
fn identity_of(dir: &Path) -> Option<String> {
    let path = dir.join(IDENTITY_FILE);
    let read = |path: &Path| {
        warden_core::bounded_file::read_to_string(path, 1024)
            .map(|text| text.trim().to_owned())
            .ok()
            .filter(|text| !text.is_empty())
    };
    if path.exists() {
        let found = read(&path);
        if found.is_none() {
            tracing::warn!(path = %path.display(), "the sessions directory's identity cannot be read: no session's workspace is swept");
        }
        return found;
    }
    let made = crate::id::ExecutionId::random().ok()?;
    let tmp = dir.join(format!("{IDENTITY_FILE}.{}", std::process::id()));
    let linked = write_file(&tmp, made.as_str().as_bytes(), true)
        .and_then(|()| std::fs::hard_link(&tmp, &path))
        .and_then(|()| sync_dir(dir));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            tracing::warn!(dir = %dir.display(), error = %e, "the sessions directory's identity cannot be made: no session's workspace is swept");
            None
        }
        _ => read(&path),
    }
}

impl Sessions {
    /// Writes the state of a session being created, before anything else of it exists.
    pub(crate) fn write_state(&self, meta: &Meta) -> Result<(), SessionError> {
        write_meta(&self.settings.dir, meta, Durability::Synced).map_err(|source| {
            SessionError::State {
                dir: self.settings.dir.clone(),
                source,
            }
        })
    }

    /// The ids of the sessions known here, kept, run elsewhere or with a state that cannot
    /// be read: what a workspace volume must belong to.
    pub(crate) fn known(&self, id: &str) -> bool {
        self.map().contains_key(id)
            || self.elsewhere.contains_key(id)
            || self.unreadable.contains(id)
    }

    /// The sessions kept in `settings.dir`: those a previous server left are read back as
    /// stopped, with the reason; those another live process runs are left to it.
    pub(crate) fn open(settings: SessionsSettings) -> Self {
        let mut sessions = BTreeMap::new();
        let mut elsewhere = BTreeMap::new();
        let mut unreadable = std::collections::BTreeSet::new();
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.dir)
        {
            tracing::warn!(dir = %settings.dir.display(), error = %e, "creating the sessions' directory");
        }
        if let Ok(entries) = std::fs::read_dir(&settings.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let Some(mut meta) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
                else {
                    // Its session existed: its workspace is kept, with the user's files, and
                    // the file is left for the operator (docs/sessions.md).
                    tracing::warn!(path = %path.display(), "a session's state cannot be read: the session is not listed, and its workspace is kept until this file is removed");
                    if let Some(id) = path.file_stem().and_then(|s| s.to_str()) {
                        unreadable.insert(id.to_owned());
                    }
                    continue;
                };
                let running_elsewhere = meta.process.filter(|p| p.is_another_alive());
                if let (None, Some(process)) = (&meta.stopped_reason, running_elsewhere) {
                    elsewhere.insert(meta.id.clone(), (meta.owner.clone(), process.pid));
                    continue;
                }
                if meta.stopped_reason.is_none() {
                    meta.stopped_reason = Some(format!(
                        "the server stopped (last use {}); its processes ended with it, its \
                         files are kept",
                        crate::history::utc(meta.last_used_ms)
                    ));
                }
                let session = Session::new(meta, None, settings.dir.clone());
                session.save();
                sessions.insert(session.id.clone(), Arc::new(session));
            }
        }
        Self {
            identity: identity_of(&settings.dir),
            settings,
            sessions: Mutex::new(sessions),
            unreadable,
            elsewhere,
            creating: Mutex::new(Vec::new()),
            reaper: std::sync::OnceLock::new(),
        }
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session `id` if `caller` owns it.
    pub(crate) fn get(&self, id: &str, caller: Option<&str>) -> Result<Arc<Session>, SessionError> {
        let found = self.map().get(id).cloned();
        let Some(session) = found else {
            return Err(match self.elsewhere.get(id) {
                Some((owner, pid)) if owner.as_deref() == caller => SessionError::Elsewhere {
                    id: id.to_owned(),
                    pid: *pid,
                },
                _ => SessionError::NotFound(id.to_owned()),
            });
        };
        if session.meta().owner.as_deref() != caller {
            return Err(SessionError::NotFound(id.to_owned()));
        }
        Ok(session)
    }

    /// Every session kept here, of every caller.
    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        self.map().values().cloned().collect()
    }

    /// The caller's sessions.
    pub(crate) fn list(&self, caller: Option<&str>) -> Vec<Arc<Session>> {
        self.map()
            .values()
            .filter(|s| s.meta().owner.as_deref() == caller)
            .cloned()
            .collect()
    }

    /// Refuses a new session of `caller` over the limits; else holds its place among them
    /// while it is being built (concurrent creations cannot pass the limits together), until
    /// the guard drops.
    pub(crate) fn admit(&self, caller: Option<&str>) -> Result<Admission<'_>, SessionError> {
        let map = self.map();
        let mut creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        let running = |s: &&Arc<Session>| s.meta().stopped_reason.is_none();
        let all = map.values().filter(running).count() + creating.len();
        if all >= self.settings.max {
            return Err(SessionError::TooMany(format!(
                "{all} sessions are running, the most this server keeps ([sessions] max); \
                 remove one first"
            )));
        }
        let mine = map
            .values()
            .filter(running)
            .filter(|s| s.meta().owner.as_deref() == caller)
            .count()
            + creating.iter().filter(|c| c.as_deref() == caller).count();
        if mine >= self.settings.max_per_caller {
            return Err(SessionError::TooMany(format!(
                "this caller has {mine} running sessions, the most one caller may have \
                 ([sessions] max_per_caller); remove one first"
            )));
        }
        // Stopped ones too: each is kept until it is removed (its state, its listing, its
        // mark on a volume given as its workspace), and one given a volume reserves no disk
        // that the volumes' quota would bound.
        let kept = map
            .values()
            .filter(|s| s.meta().owner.as_deref() == caller)
            .count()
            + self
                .elsewhere
                .values()
                .filter(|(owner, _)| owner.as_deref() == caller)
                .count()
            + creating.iter().filter(|c| c.as_deref() == caller).count();
        if kept >= self.settings.max_kept_per_caller {
            return Err(SessionError::TooMany(format!(
                "this caller keeps {kept} sessions, running or stopped, the most one caller \
                 may keep ([sessions] max_kept_per_caller); remove stopped ones first"
            )));
        }
        creating.push(caller.map(str::to_owned));
        Ok(Admission {
            sessions: self,
            caller: caller.map(str::to_owned),
        })
    }

    /// Adds a new session and starts the reaper if it is not running.
    pub(crate) fn insert(self: &Arc<Self>, session: Session) -> Arc<Session> {
        session.save();
        let session = Arc::new(session);
        self.map().insert(session.id.clone(), session.clone());
        self.reaper.get_or_init(|| {
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("warden-session-reaper".into())
                .spawn(move || reap(&weak));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting the session reaper");
            }
        });
        session
    }

    /// Forgets a session (after it was stopped and its state removed).
    pub(crate) fn forget(&self, id: &str) {
        self.map().remove(id);
        let _ = std::fs::remove_file(self.settings.dir.join(format!("{id}.json")));
    }

    /// Stops every running session (the server is stopping).
    pub(crate) fn stop_all(&self, reason: &str) {
        let sessions: Vec<_> = self.map().values().cloned().collect();
        for session in sessions {
            session.stop(reason);
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("settings", &self.settings)
            .field("sessions", &self.map().len())
            .finish()
    }
}

/// The reaper: stops the sessions past their idle timeout or lifetime, until the store is gone.
fn reap(sessions: &Weak<Sessions>) {
    loop {
        std::thread::sleep(REAP_EVERY);
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let now = now_ms();
        let all: Vec<_> = sessions.map().values().cloned().collect();
        for session in all {
            if let Some(reason) = session.expired(now) {
                tracing::info!(session = %session.id, %reason, "stopping a session");
                session.stop(&reason);
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_directory_keeps_one_identity_and_another_has_its_own() {
        let one = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let first = identity_of(one.path()).expect("made");
        assert_eq!(identity_of(one.path()).as_deref(), Some(first.as_str()));
        assert_ne!(identity_of(other.path()).expect("made"), first);
        // Nothing but the identity is left beside the states.
        let names: Vec<_> = std::fs::read_dir(one.path())
            .expect("listed")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        assert_eq!(names, [IDENTITY_FILE]);
    }

    /// The state of a stopped session of `owner` on the volume `workspace`, as a server that
    /// stopped it leaves it.
    /// Saves from several threads at once (a call's start and end, a stop from the reaper)
    /// shared the temporary file: each state read back whole, whatever ran beside it.
    #[test]
    fn saves_at_once_never_leave_a_torn_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = "00000000000000aa";
        let session = std::sync::Arc::new(Session::new(
            stopped_on(id, "bob", "bv1"),
            None,
            dir.path().to_owned(),
        ));
        session.save();
        let path = dir.path().join(format!("{id}.json"));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut torn = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let text = std::fs::read(&path).expect("the state is always there");
                    torn += usize::from(serde_json::from_slice::<Meta>(&text).is_err());
                }
                torn
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|n| {
                let session = session.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        session.meta().calls = n * 1000 + i;
                        session.save_unsynced();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer");
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reader.join().expect("the reader"), 0, "torn states read");
    }

    fn stopped_on(id: &str, owner: &str, workspace: &str) -> Meta {
        Meta {
            id: id.to_owned(),
            mode: Mode::Sandboxed,
            network: "no_access".into(),
            limits: Limits::default(),
            call_limits: LimitOverrides::default(),
            idle_timeout_ms: 1,
            max_lifetime_ms: 3_600_000,
            workspace: workspace.to_owned(),
            workspace_id: Some("v".into()),
            own_workspace: false,
            disk_bytes: ByteSize::mib(8).bytes(),
            created_ms: 0,
            last_used_ms: 0,
            calls: 0,
            owner: Some(owner.to_owned()),
            stopped_reason: Some("it was idle for 1ms (its idle timeout)".into()),
            process: None,
        }
    }

    /// Hunt sess F3: sessions given a volume as their workspace reserve no disk, and a stopped
    /// session is kept until it is removed: a token that made them in a loop, each idle for
    /// 1ms, was kept every one of them (a state file, a listing entry, a mark in the volume).
    /// A caller keeps at most `max_kept_per_caller`, stopped ones included.
    #[test]
    fn a_caller_keeps_at_most_its_number_of_sessions_stopped_ones_included() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in 0..3 {
            let meta = stopped_on(&format!("000000000000000{n}"), "bob", "bv1");
            write_meta(dir.path(), &meta, Durability::Synced).expect("written");
        }
        let config = warden_core::SessionsConfig {
            max_per_caller: Some(2),
            max_kept_per_caller: Some(3),
            ..warden_core::SessionsConfig::default()
        };
        let store = Sessions::open(SessionsSettings::new(&config, dir.path().to_owned()));
        assert_eq!(store.list(Some("bob")).len(), 3);
        match store.admit(Some("bob")) {
            Err(SessionError::TooMany(why)) => {
                assert!(
                    why.contains("3 sessions") && why.contains("max_kept_per_caller"),
                    "{why}"
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a fourth session of bob was admitted"),
        }
        // Another caller's sessions are its own count; a removed one frees its place.
        drop(store.admit(Some("alice")).expect("alice keeps none"));
        store.forget("0000000000000000");
        drop(store.admit(Some("bob")).expect("bob keeps 2"));
        // One being created counts too.
        let _creating = store.admit(Some("bob")).expect("bob keeps 2");
        assert!(matches!(
            store.admit(Some("bob")),
            Err(SessionError::TooMany(_))
        ));
    }

    #[test]
    fn a_state_that_cannot_be_read_keeps_its_id_known() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("0123456789abcdef.json"), b"").expect("cut short");
        let settings = SessionsSettings::new(
            &warden_core::SessionsConfig::default(),
            dir.path().to_owned(),
        );
        let store = Sessions::open(settings);
        assert!(store.known("0123456789abcdef"));
        assert!(!store.known("fedcba9876543210"));
        assert!(store.list(None).is_empty());
        assert!(store.identity.is_some());
    }
}
