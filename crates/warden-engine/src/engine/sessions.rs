//! The session use cases (`crate::sessions` keeps the sessions): create one, call into it,
//! work with its files, remove it. A call is an execution like any other (analysis, the mode
//! check, the compile stage and its cache, the result, the history), run as jobs of the
//! session's sandbox instead of a sandbox of its own.

use std::path::Path;
use std::sync::Arc;

use warden_core::{Mode, ModeRequest, Outcome, OutcomeKind, Signal, ThreatLevel};
use warden_sandbox::{SandboxSpec, VolumeMount, WORKDIR};

use super::outcome::finish;
use super::{runner, Engine, NetworkReport, PhaseClock};
use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::execution::{Execution, ExecutionRequest, SourceFile};
use crate::id::ExecutionId;
use crate::sessions::{
    now_ms, Live, Meta, Session, SessionError, SessionInfo, SessionRequest, Sessions,
};
use crate::test_cases::SandboxReuse;

/// What one call runs in a session.
#[derive(Debug)]
pub enum SessionCall {
    /// A shell command, run by `bash -c` in the workspace; nothing is written there for it.
    Command {
        /// The command line.
        command: String,
        /// The rest of the request (stdin, limits, cancellation, origin); its language and
        /// sources are ignored.
        request: ExecutionRequest,
    },
    /// A program, laid out in the workspace under its files' names (they replace files of the
    /// same name), compiled if its language is, and run.
    Program(ExecutionRequest),
}

impl Engine {
    /// The sessions store, opened at the first use; then the sessions' workspaces that
    /// belong to no session known (their state was lost, or their removal failed half-way)
    /// are removed, among those made for this sessions directory.
    pub(super) fn session_store(&self) -> &Arc<Sessions> {
        self.sessions.get_or_init(|| {
            let store = Arc::new(Sessions::open(self.sessions_settings.clone()));
            self.drop_unfinished_creations(&store);
            self.remove_orphaned_workspaces(&store);
            self.reconcile_given_workspaces(&store);
            store
        })
    }

    /// Brings the volumes' record of the sessions that use them as their workspace in line
    /// with the sessions kept: a session's mark is written again where it is missing (a
    /// session kept before marks were, or a removal that crashed after taking it off), with
    /// the volume's identity for a session kept before identities were, and with this sessions
    /// directory's identity (an own workspace's too, made before it was written); the mark of
    /// a session this directory no longer keeps (lost, or a removal that crashed before taking
    /// it off) is taken off. A mark of another directory's session is never taken off: this
    /// store cannot tell it from a session gone.
    fn reconcile_given_workspaces(&self, store: &Sessions) {
        let volumes = self.volumes();
        let ours = store.identity.as_deref();
        for session in store.all() {
            let (name, owner, identity, own) = {
                let meta = session.meta();
                let m = &*meta;
                (
                    m.workspace.clone(),
                    m.owner.clone(),
                    m.workspace_id.clone(),
                    m.own_workspace,
                )
            };
            if own {
                let adopted = ours.map_or(Ok(()), |ours| {
                    volumes.adopt_workspace(&name, &session.id, ours)
                });
                match adopted {
                    Ok(()) | Err(crate::volumes::VolumeError::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(session = %session.id, volume = name, error = %e, "a session's workspace was not marked as its sessions directory's");
                    }
                }
                continue;
            }
            let claimed = volumes.of(owner.as_deref()).claim_workspace(
                &name,
                (&session.id, ours),
                identity.as_deref(),
            );
            match claimed {
                Ok(found) if identity.is_none() => {
                    session.meta().workspace_id = Some(found);
                    session.save();
                }
                Ok(_) | Err(crate::volumes::VolumeError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(session = %session.id, volume = name, error = %e, "a session's workspace was not marked as its");
                }
            }
        }
        let (Some(ours), Ok(all)) = (ours, volumes.list()) else {
            return;
        };
        let now = u64::try_from(now_ms()).unwrap_or_default();
        for volume in all.iter().filter(|v| !v.workspace_of.is_empty()) {
            let users = volumes.workspace_users(&volume.name).unwrap_or_default();
            // One marked in the last minute may be another process's session being created
            // now (its state is written first), whose state this store read too early to see.
            let stale = users.into_iter().filter(|user| {
                user.store.as_deref() == Some(ours)
                    && !store.known(&user.session)
                    && now.saturating_sub(user.since_ms) > 60_000
            });
            for id in stale.map(|user| user.session) {
                match volumes.release_workspace(&volume.name, &id) {
                    Ok(()) => tracing::warn!(
                        volume = volume.name,
                        session = id,
                        "a volume was marked as the workspace of a session that no longer is"
                    ),
                    Err(e) => {
                        tracing::warn!(volume = volume.name, error = %e, "a mark of a session that no longer is was not taken off")
                    }
                }
            }
        }
    }

    /// Drops the sessions whose creation a crash ended before their own workspace was made
    /// (the state is written first): no workspace, no call, and no answer to the client that
    /// asked for it. Kept, each was listed as a stopped session without files, whose file
    /// operations answered that a volume its caller never named does not exist. A session
    /// another process runs (one being created now) is not among those read back.
    fn drop_unfinished_creations(&self, store: &Sessions) {
        for session in store.all() {
            let (unfinished, workspace) = {
                let meta = session.meta();
                let unfinished =
                    meta.own_workspace && meta.workspace_id.is_none() && meta.calls == 0;
                (unfinished, meta.workspace.clone())
            };
            if !unfinished {
                continue;
            }
            if let Err(crate::volumes::VolumeError::NotFound { .. }) =
                self.volumes().identity(&workspace)
            {
                tracing::warn!(
                    session = %session.id,
                    "dropped a session whose creation was interrupted before its workspace was made"
                );
                store.forget(&session.id);
            }
        }
    }

    /// Removes the own workspaces of this sessions directory's sessions that it no longer
    /// keeps. A workspace of another directory's session, or one that does not say whose
    /// (made before it was written), is kept: this store cannot prove its session gone.
    fn remove_orphaned_workspaces(&self, store: &Sessions) {
        let (Some(ours), Ok(volumes)) = (store.identity.as_deref(), self.volumes().list()) else {
            return;
        };
        // One made in the last minute may be another process's session being created now,
        // whose state this store read too early to see.
        let settled = |v: &crate::volumes::VolumeInfo| {
            v.created_at.elapsed().unwrap_or_default() > std::time::Duration::from_secs(60)
        };
        let orphans = volumes.into_iter().filter(|v| {
            v.session.as_deref().is_some_and(|id| !store.known(id)) && !v.in_use.any() && settled(v)
        });
        for orphan in orphans {
            // Written once, when the workspace is made (or adopted by its own store, from
            // none): read here, it cannot change to this directory's meanwhile.
            match self.volumes().workspace_store(&orphan.name) {
                Ok(Some(whose)) if whose == ours => {}
                Ok(None) => {
                    tracing::info!(volume = orphan.name, "a session's workspace that no session here has is kept: it does not say which sessions directory keeps its session");
                    continue;
                }
                _ => continue,
            }
            match self.volumes().remove_workspace(&orphan.name) {
                Ok(()) => tracing::warn!(
                    volume = orphan.name,
                    "removed a session's workspace that no session had"
                ),
                Err(e) => {
                    tracing::warn!(volume = orphan.name, error = %e, "a session's workspace that no session has was not removed")
                }
            }
        }
    }

    /// Starts a session: its workspace volume, its sandbox (with the interception in place, if
    /// its network policy lets traffic out: each call runs a proxy of its own), kept until it
    /// is removed or stopped.
    pub fn create_session(&self, request: SessionRequest) -> Result<SessionInfo, SessionError> {
        let store = self.session_store();
        let settings = &store.settings;
        let within = |what: &str, asked: Option<std::time::Duration>, most| match asked {
            None => Ok(most),
            // Kept in whole milliseconds: less would be 0, a session stopped at once.
            Some(d) if d < std::time::Duration::from_millis(1) => Err(SessionError::Invalid(
                format!("{what} must be at least 1ms"),
            )),
            Some(d) if d > most => Err(SessionError::Invalid(format!(
                "{what} {} is above this server's most, {}",
                warden_core::units::format_duration_human(d),
                warden_core::units::format_duration_human(most)
            ))),
            Some(d) => Ok(d),
        };
        let idle = within("idle_timeout", request.idle_timeout, settings.idle_timeout)?;
        let lifetime = within("max_lifetime", request.max_lifetime, settings.max_lifetime)?;
        if let (Some(disk), Some(name)) = (request.disk, &request.workspace) {
            // The workspace is the volume as it is: a size asked beside it would be answered
            // with the volume's and applied nowhere.
            return Err(SessionError::Invalid(format!(
                "disk {disk} with workspace {name:?}: a session given a volume has the volume's \
                 size (set when the volume was made); leave disk out"
            )));
        }
        let disk = request.disk.unwrap_or(settings.disk);
        if disk > settings.max_disk {
            return Err(SessionError::Invalid(format!(
                "disk {disk} is above this server's most, {}",
                settings.max_disk
            )));
        }
        let mode = self.session_mode(request.mode.unwrap_or_default())?;
        let limits = self.limits(&[&request.limits])?;
        let network = self.network.plan(request.network.as_deref(), mode)?;
        // Held until the session is in the store (or failed): its place among the limits.
        let _admitted = store.admit(request.owner.as_deref())?;

        let id = ExecutionId::random().map_err(EngineError::from)?.as_str()[..16].to_owned();
        let (workspace, own) = match &request.workspace {
            Some(name) => (name.clone(), false),
            None => (format!("session-{id}"), true),
        };
        let volumes = self.volumes();
        let owner = request.owner.as_deref();
        if !own {
            // A volume of another token is not found, as if it did not exist. A session's own
            // workspace goes with its session: no other session may keep it (nor keep that
            // session from being removed).
            let given = volumes.of(owner).inspect(&workspace)?;
            if let Some(session) = given.session {
                return Err(SessionError::Invalid(format!(
                    "workspace {workspace:?} is the own workspace of session {session}, which \
                     goes with it: give a volume of your own"
                )));
            }
        }
        let now = now_ms();
        let mut meta = Meta {
            id: id.clone(),
            mode,
            network: network.name.clone(),
            limits,
            call_limits: warden_core::LimitOverrides {
                memory: None,
                max_procs: None,
                ..request.limits
            },
            idle_timeout_ms: duration_ms(idle),
            max_lifetime_ms: duration_ms(lifetime),
            workspace: workspace.clone(),
            workspace_id: None,
            own_workspace: own,
            disk_bytes: disk.bytes(),
            created_ms: now,
            last_used_ms: now,
            calls: 0,
            owner: request.owner.clone(),
            stopped_reason: None,
            process: crate::sessions::ProcessMark::this(),
        };
        // The state first, then the workspace: a workspace never exists without the session
        // that removes it (a crash in between leaves a session to remove, not a volume that
        // nothing can), and a session whose state cannot be kept is refused, not lost at the
        // next restart.
        store.write_state(&meta)?;
        let forget = || store.forget(&id);
        // The workspace is the session's from here, by its identity: its own one made, or the
        // given one marked as its (no process removes or prunes it while the session is kept).
        let claimed = if own {
            volumes
                .create_workspace(&workspace, disk, owner, (&id, store.identity.as_deref()))
                .and_then(|_| volumes.identity(&workspace))
        } else {
            let session = (id.as_str(), store.identity.as_deref());
            volumes.of(owner).claim_workspace(&workspace, session, None)
        };
        let identity = match claimed {
            Ok(identity) => identity,
            Err(e) => {
                self.let_workspace_go(&workspace, own, &id);
                forget();
                return Err(e.into());
            }
        };
        meta.workspace_id = Some(identity.clone());
        let opened =
            self.open_session_sandbox(owner, (&workspace, &identity), mode, limits, &network);
        let (live, disk_bytes) = match opened {
            Ok(live) => live,
            Err(e) => {
                self.let_workspace_go(&workspace, own, &id);
                forget();
                return Err(e);
            }
        };
        meta.disk_bytes = disk_bytes;
        let session = Session::new(meta, Some(live), settings.dir.clone());
        Ok(store.insert(session).info())
    }

    /// Lets go of the workspace of a session that failed to start: its own one is removed, a
    /// given one no longer marked as its.
    fn let_workspace_go(&self, workspace: &str, own: bool, session: &str) {
        let volumes = self.volumes();
        let done = if own {
            volumes.remove_workspace(workspace)
        } else {
            volumes.release_workspace(workspace, session)
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, volume = workspace, "letting go of a failed session's workspace");
        }
    }

    /// The mode of a new session: `auto` is what the policy gives code without findings;
    /// `trusted` has no mount namespace for the workspace.
    fn session_mode(&self, asked: ModeRequest) -> Result<Mode, SessionError> {
        let choice = self
            .modes
            .choose(asked, ThreatLevel::None)
            .map_err(|refusal| {
                // The operator's policy, as for an execution: a refusal (403), not a mistake.
                SessionError::Engine(EngineError::Refused {
                    refusal,
                    analysis: warden_core::Analysis::default(),
                })
            })?;
        match (asked, choice.mode) {
            (ModeRequest::Exactly(Mode::Trusted), _) => Err(SessionError::Invalid(
                "a session runs sandboxed or isolated: trusted has no mount namespace for its \
                 workspace"
                    .into(),
            )),
            (_, Mode::Trusted) => Ok(Mode::Sandboxed),
            (_, mode) => Ok(mode),
        }
    }

    /// The sandbox of a session of `owner`: every language's mounts (a call may be in any),
    /// the workspace volume (its name and identity) at `/work`, the session's ceilings; with
    /// its interception.
    fn open_session_sandbox(
        &self,
        owner: Option<&str>,
        (workspace, identity): (&str, &str),
        mode: Mode,
        limits: warden_core::Limits,
        network: &super::network::NetworkPlan,
    ) -> Result<(Live, u64), SessionError> {
        let volumes = self.volumes().of(owner);
        let wait = self.volumes().settings().writer_wait;
        let lease = volumes.attach_identified(workspace, true, wait, None, Some(identity))?;
        let disk_bytes = volumes.inspect(workspace)?.size.bytes();
        let spec = self.session_spec(limits, lease.mount(Path::new(WORKDIR)));
        let mut runner =
            runner::Runner::new(self.sandbox()?, mode, spec, SandboxReuse::Shared, None)?
                .with_network(network.clone());
        let sandbox = runner.open()?;
        Ok((
            Live {
                sandbox,
                workspace: lease,
                network: network.clone(),
            },
            disk_bytes,
        ))
    }

    /// The spec of a session's sandbox.
    fn session_spec(&self, limits: warden_core::Limits, workspace: VolumeMount) -> SandboxSpec {
        let mut spec = SandboxSpec::new(&self.filesystem, self.seccomp.clone());
        for language in self.catalog.iter() {
            for mount in &language.mounts {
                if mount.exists() {
                    spec.add_bind(mount);
                }
            }
        }
        spec.limits = limits;
        spec.volumes.push(workspace);
        spec
    }

    /// A session as the caller sees it, with its workspace's use.
    pub fn session(&self, id: &str, caller: Option<&str>) -> Result<SessionInfo, SessionError> {
        let session = self.session_store().get(id, caller)?;
        let mut info = session.info();
        if let Some(root) = session.host_path() {
            info.disk_used_bytes = statvfs_used(&root);
        }
        Ok(info)
    }

    /// The caller's sessions.
    pub fn sessions(&self, caller: Option<&str>) -> Vec<SessionInfo> {
        self.session_store()
            .list(caller)
            .iter()
            .map(|s| s.info())
            .collect()
    }

    /// Looks up the session `id` of `caller` for a call that has just arrived, before it
    /// waits for its turn: an unknown, removed or stopped session is refused at once, and a
    /// running one is in use (not idle) while the returned hold lives.
    pub fn expect_session_call(
        &self,
        id: &str,
        caller: Option<&str>,
    ) -> Result<crate::sessions::PendingCall, SessionError> {
        self.session_store().get(id, caller)?.expect_call()
    }

    /// Runs one call in the session, after the calls before it. The result is an execution's,
    /// recorded in the history.
    pub fn session_call(
        &self,
        id: &str,
        caller: Option<&str>,
        call: SessionCall,
    ) -> Result<Execution, SessionError> {
        let session = self.session_store().get(id, caller)?;
        let (mut request, command) = match call {
            SessionCall::Command { command, request } => (request, Some(command)),
            SessionCall::Program(request) => (request, None),
        };
        if let Some(command) = &command {
            if command.trim().is_empty() {
                return Err(SessionError::Invalid("the command is empty".into()));
            }
            if command.contains('\0') {
                return Err(SessionError::Invalid(
                    "the command holds a NUL byte, which no command line can".into(),
                ));
            }
            request.language = Some("bash".into());
            request.sources = vec![SourceFile {
                name: None,
                code: command.clone().into_bytes(),
                executable: false,
            }];
        }
        if !request.dependencies.is_empty() {
            return Err(SessionError::Invalid(
                "a session call cannot carry dependencies: install them with a command in the \
                 session, under a network policy that reaches the package registries"
                    .into(),
            ));
        }
        if !request.tests.is_empty() {
            return Err(SessionError::Invalid(
                "a session call runs once; test cases are for executions".into(),
            ));
        }
        if !request.volumes.is_empty() {
            return Err(SessionError::Invalid(
                "a session call runs in the session's sandbox, whose mounts were made when it was \
                 created: use its workspace, or an execution for volumes"
                    .into(),
            ));
        }
        // The sandbox's /tmp was sized when the session was created, and /work is its disk: a
        // call's own size would be echoed in its result and applied nowhere.
        let sizes = [
            ("limits", request.limits.workspace_size),
            ("compile_limits", request.compile_limits.workspace_size),
        ];
        if let Some((field, Some(asked))) = sizes.into_iter().find(|(_, size)| size.is_some()) {
            let tmp = session.meta().limits.workspace_size;
            return Err(SessionError::Invalid(format!(
                "{field}.workspace_size {asked}: a call runs in the session's sandbox, whose /tmp \
                 is {tmp} (the session's limits.workspace_size, set when it is created) and \
                 whose /work is its disk"
            )));
        }
        let mut guard = session.begin_call()?;
        if request
            .cancel
            .as_ref()
            .is_some_and(Cancellation::is_cancelled)
        {
            // Its caller left while it waited for the session's earlier calls: it ran nothing,
            // and is not recorded (docs/events.md#cancelled-executions).
            return Err(EngineError::Cancelled { ran: None }.into());
        }
        let (mode, ceilings) = {
            let meta = session.meta();
            request.limits = meta.call_limits.overridden_by(&request.limits);
            (meta.mode, meta.limits)
        };
        // A call cannot have more than the whole session, nor can its compile stage: asked
        // for, it is refused, naming the field, rather than given less in silence (a program
        // sized for 1 GiB that then meets 256 MiB stops the session).
        within_ceilings("limits", &request.limits, &ceilings)?;
        within_ceilings("compile_limits", &request.compile_limits, &ceilings)?;
        let alive = guard.live.as_ref().is_some_and(|l| l.sandbox.is_alive());
        if !alive {
            let why = guard.live.as_ref().and_then(|l| l.sandbox.ended_because());
            session.stop_in_call(&mut guard, &sandbox_ended(why));
            return Err(stopped(&session));
        }
        let mut clock = PhaseClock::start();
        let responded = self.respond(&mut request)?;
        if let Some(why) = responded.filter(|_| mode != Mode::Isolated) {
            return Err(SessionError::Engine(EngineError::Refused {
                refusal: warden_core::mode::ModeRefusal::Escalated { mode, why },
                analysis: warden_core::Analysis::default(),
            }));
        }
        request.mode = Some(ModeRequest::Exactly(mode));
        let mut prepared = self.prepare(&request)?;
        prepared.command = command.is_some();
        // The workspace holds what earlier calls wrote, which no cache key holds.
        prepared.cacheable = false;
        // Within the session's ceilings, whatever the language's defaults say: the compile
        // stage's too (a compiler's default memory is above a default session's).
        prepared.limits.memory = prepared.limits.memory.min(ceilings.memory);
        prepared.limits.max_procs = prepared.limits.max_procs.min(ceilings.max_procs);
        // The size the call has, its sandbox's, whatever the language's default says.
        prepared.limits.workspace_size = ceilings.workspace_size;
        if let Some(compile) = &mut prepared.compile_limits {
            compile.memory = compile.memory.min(ceilings.memory);
            compile.max_procs = compile.max_procs.min(ceilings.max_procs);
            compile.workspace_size = ceilings.workspace_size;
        }
        let input = super::history::Pending::of(&request);
        clock.lap("prepare");

        let Some(live) = guard.live.take() else {
            return Err(stopped(&session));
        };
        let Live {
            mut sandbox,
            workspace,
            network,
        } = live;
        if session.renew_lease(&mut sandbox).is_err() {
            // Stopped meanwhile (its handle taken), or its sandbox is gone.
            *guard.live = Some(Live {
                sandbox,
                workspace,
                network,
            });
            return Err(stopped(&session));
        }
        // The call's signals reach the program it runs; its cancel does not end the session.
        if let Some(cancel) = &request.cancel {
            cancel.watch_signals(sandbox.cancel_handle());
        }
        let spec = sandbox.spec().clone();
        let mut runner = runner::Runner::new(
            self.sandbox()?,
            mode,
            spec,
            SandboxReuse::Shared,
            request.cancel.clone(),
        )?
        .with_network(network.clone())
        .with_session(sandbox);
        clock.lap("plan");
        let mut done = super::Stages::default();
        let stages = self.stages(&prepared, &mut request, &mut runner, &mut done);
        let timings = runner.timings();
        let kept = runner.give_back_session();
        // The call's own traffic: its proxy started with its first job and stopped with it.
        let report = network
            .has_egress()
            .then(|| NetworkReport::new(&network.name, runner.take_traffic()));
        match kept {
            Some(sandbox) => {
                if timings.setup > std::time::Duration::ZERO {
                    // The sandbox had ended and was rebuilt on the same workspace.
                    session.rebind(&sandbox);
                }
                *guard.live = Some(Live {
                    sandbox,
                    workspace,
                    network,
                });
            }
            None => drop(workspace),
        }
        if let Err(mut e) = stages {
            if e.kind() != crate::ErrorKind::Cancelled {
                // The sandbox ended under the call (gVisor's sentry died): the session cannot
                // go on, and says why, rather than the call failing as warden's own error.
                if let Some(why) = ended_sandbox(guard.live.as_ref()) {
                    session.stop_in_call(&mut guard, &sandbox_ended(why));
                    return Err(stopped(&session));
                }
                return Err(e.into());
            }
            // Stopped under the call (its lifetime, a `DELETE`, the server's stop): the call
            // is recorded with what it ran, as a cancelled execution is (`cancelled.rs`).
            if let Some(ran) = e.take_cancelled_run() {
                done.cancelled(ran);
            }
            let ran = self.record_cancel(prepared, None, done, None, &mut request, &input);
            if session.meta().stopped_reason.is_some() {
                return Err(stopped_under(&session, ran));
            }
            return Err(EngineError::Cancelled { ran }.into());
        }
        let super::Stages {
            compile,
            mut run,
            tests,
            earlier,
            ..
        } = done;
        if let Some(run) = run.as_mut().filter(|run| {
            run.outcome
                == (Outcome::Signaled {
                    signal: Signal::KILL,
                })
                && request
                    .cancel
                    .as_ref()
                    .is_some_and(Cancellation::is_cancelled)
        }) {
            // Its caller left and its program was killed for it (`Cancellation::signal`, or
            // its output finding nobody): cancelled, as a one-shot execution is.
            run.outcome = Outcome::Cancelled;
        }
        clock.split(&timings.phases());
        let ceiling = run.as_ref().and_then(|run| {
            let kind = run.outcome.kind();
            let memory =
                kind == OutcomeKind::MemoryLimit && prepared.limits.memory >= ceilings.memory;
            memory.then(|| {
                format!(
                    "a call reached the session's memory limit of {}",
                    ceilings.memory
                )
            })
        });
        session.meta().calls += 1;
        let mut warnings = std::mem::take(&mut prepared.lowered);
        let result = finish(prepared, None, compile, (earlier, run), tests, report)?;
        warnings.extend(self.record(&result, input.borrowed()));
        clock.lap("record");
        // gVisor's sandbox ends with a limit of one of its jobs (`gvisor.rs`): the session
        // says so now, not at its next call.
        match (ceiling, ended_sandbox(guard.live.as_ref())) {
            (Some(reason), _) => session.stop_in_call(&mut guard, &reason),
            (None, Some(why)) => session.stop_in_call(&mut guard, &sandbox_ended(why)),
            (None, None) => session.save(),
        }
        Ok(Execution {
            result,
            warnings,
            phases: clock.phases,
        })
    }

    /// Stops a session and removes it with its workspace (unless the workspace was a volume
    /// the session was given).
    pub fn remove_session(&self, id: &str, caller: Option<&str>) -> Result<(), SessionError> {
        let store = self.session_store();
        let session = store.get(id, caller)?;
        session.begin_removal();
        session.stop("it was removed");
        let (workspace, own) = {
            let meta = session.meta();
            (meta.workspace.clone(), meta.own_workspace)
        };
        let removed = if own {
            // Gone already (removed by hand on the host) is no reason to keep the session. A
            // file operation on the stopped session holds the workspace for a moment: waited
            // for, within reason.
            patiently(|| self.volumes().remove_workspace(&workspace))
        } else {
            // A given workspace is kept, and may be removed once no session names it.
            self.volumes().release_workspace(&workspace, id)
        };
        if let Err(e) = removed {
            // Not removed: the session stays, stopped, and its files are reached as before
            // until a removal succeeds (docs/sessions.md).
            session.abandon_removal();
            return Err(match e {
                crate::volumes::VolumeError::InUse { .. }
                | crate::volumes::VolumeError::WriterBusy { .. } => SessionError::WorkspaceHeld {
                    id: id.to_owned(),
                    waited: FILE_OPERATION_WAIT,
                },
                e => e.into(),
            });
        }
        store.forget(id);
        Ok(())
    }

    /// Stops every session (the server is stopping); their files stay.
    pub fn stop_sessions(&self) {
        if let Some(store) = self.sessions.get() {
            let when = crate::history::utc(now_ms());
            store.stop_all(&format!(
                "the server stopped at {when}; its processes ended with it, its files are kept"
            ));
        }
    }
}

/// Refuses `asked` (a call's `field`: `limits` or `compile_limits`) above the session's
/// ceilings, naming the field.
fn within_ceilings(
    field: &str,
    asked: &warden_core::LimitOverrides,
    ceilings: &warden_core::Limits,
) -> Result<(), SessionError> {
    if let Some(asked) = asked.memory.filter(|m| *m > ceilings.memory) {
        return Err(SessionError::Invalid(format!(
            "{field}.memory {asked} is above the session's memory limit of {}",
            ceilings.memory
        )));
    }
    if let Some(asked) = asked.max_procs.filter(|n| *n > ceilings.max_procs) {
        return Err(SessionError::Invalid(format!(
            "{field}.max_procs {asked} is above the session's process limit of {}",
            ceilings.max_procs
        )));
    }
    Ok(())
}

/// `attempt` again while a stopped session's workspace is held by a file operation (in use,
/// or its writer's place taken), for up to [`FILE_OPERATION_WAIT`].
pub(super) fn patiently<T>(
    mut attempt: impl FnMut() -> Result<T, crate::volumes::VolumeError>,
) -> Result<T, crate::volumes::VolumeError> {
    use crate::volumes::VolumeError;
    let deadline = std::time::Instant::now() + FILE_OPERATION_WAIT;
    loop {
        match attempt() {
            Err(VolumeError::InUse { .. } | VolumeError::WriterBusy { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// How long a file operation or a removal waits for another file operation on a stopped
/// session's workspace (docs/sessions.md).
const FILE_OPERATION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `Some` when the session's sandbox can run no more jobs (none kept counts), with what ended
/// it when known.
fn ended_sandbox(live: Option<&Live>) -> Option<Option<&'static str>> {
    live.map_or(Some(None), |l| {
        (!l.sandbox.is_alive()).then(|| l.sandbox.ended_because())
    })
}

/// A session's stop reason when its sandbox ended on its own: what ended it, when known.
fn sandbox_ended(why: Option<&str>) -> String {
    match why {
        Some(why) => format!("its sandbox ended: {why}"),
        None => "its sandbox ended unexpectedly".to_owned(),
    }
}

/// The error of a call to a stopped session.
fn stopped(session: &Session) -> SessionError {
    stopped_under(session, None)
}

/// The error of a call its session's stop cancelled, with the call as recorded (`call`).
fn stopped_under(
    session: &Session,
    call: Option<Box<crate::execution::ExecutionResult>>,
) -> SessionError {
    SessionError::Stopped {
        call,
        id: session.id.clone(),
        reason: session
            .meta()
            .stopped_reason
            .clone()
            .unwrap_or_else(|| "it stopped".into()),
    }
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The bytes used on the filesystem holding `root` (a volume's own filesystem).
fn statvfs_used(root: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(root).ok()?;
    let block = st.fragment_size() as u64;
    Some((st.blocks() as u64).saturating_sub(st.blocks_free() as u64) * block)
}
