//! The sandboxes of one execution: the compile stage and each run are jobs, in one live
//! sandbox shared by all of them or in a fresh sandbox each, as the request says
//! ([`SandboxReuse`]). The one place `execute` reaches the sandbox.

use warden_core::Mode;
use warden_sandbox::{Backend, Job, LiveSandbox, Sandbox, SandboxRun, SandboxSpec, Stdin};

use super::pool::Pool;
use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::test_cases::SandboxReuse;

/// Runs jobs for one execution in its mode's backend.
pub(super) struct Runner<'e> {
    backend: Box<dyn Backend>,
    /// Ready native sandboxes to take instead of building one (`sandboxed` mode only).
    pool: Option<&'e Pool>,
    /// Whose runs these are: a pooled sandbox is reused only for the same owner.
    owner: String,
    spec: SandboxSpec,
    reuse: SandboxReuse,
    shared: Option<LiveSandbox>,
    cancel: Option<Cancellation>,
}

impl<'e> Runner<'e> {
    /// A runner for sandboxes of `spec` in `mode`'s backend; a mode this host cannot provide is
    /// an error, never a silent downgrade.
    pub(super) fn new(
        host: &Sandbox,
        mode: Mode,
        spec: SandboxSpec,
        reuse: SandboxReuse,
        cancel: Option<Cancellation>,
    ) -> Result<Self, EngineError> {
        let backend: Box<dyn Backend> = match mode {
            Mode::Sandboxed => Box::new(host.native()),
            Mode::Trusted => Box::new(host.trusted()),
            Mode::Isolated => Box::new(host.gvisor()?),
        };
        Ok(Self {
            backend,
            pool: None,
            owner: String::new(),
            spec,
            reuse,
            shared: None,
            cancel,
        })
    }

    /// Takes sandboxes from `pool` when it has them, and gives them back after use, for
    /// `owner` (`sandboxed` mode only).
    pub(super) fn with_pool(mut self, pool: Option<&'e Pool>, owner: &str) -> Self {
        if self.backend.name() == "native" {
            self.pool = pool;
            owner.clone_into(&mut self.owner);
        }
        self
    }

    /// Ends the use of a sandbox: back to the pool (reset for the owner's next run, or
    /// destroyed off the request's path), or destroyed here.
    fn release(&self, sandbox: LiveSandbox) -> Result<(), EngineError> {
        match self.pool {
            Some(pool) => pool.give_back(sandbox, &self.owner)?,
            None => sandbox.destroy()?,
        }
        Ok(())
    }

    /// A new sandbox of this execution (a pooled one when there is one), registered with its
    /// cancellation.
    fn create(&self) -> Result<LiveSandbox, EngineError> {
        if self.cancel.as_ref().is_some_and(Cancellation::is_cancelled) {
            return Err(warden_sandbox::SandboxError::Cancelled.into());
        }
        let pooled = self
            .pool
            .and_then(|pool| pool.take(&self.spec, &self.owner));
        let sandbox = match pooled {
            Some(sandbox) => sandbox,
            None => self.backend.start(&self.spec)?,
        };
        if let Some(cancel) = &self.cancel {
            cancel.watch(sandbox.cancel_handle());
        }
        Ok(sandbox)
    }

    /// Runs one job: in the shared sandbox (created at the first job, and again should a limit
    /// have ended it), or in a fresh one.
    pub(super) fn run(&mut self, job: &Job, stdin: Stdin) -> Result<SandboxRun, EngineError> {
        match self.reuse {
            SandboxReuse::Fresh => {
                let mut sandbox = self.create()?;
                let run = sandbox.run(job, stdin);
                let released = self.release(sandbox);
                let run = run?;
                released?;
                Ok(run)
            }
            SandboxReuse::Shared => {
                if !self.shared.as_ref().is_some_and(LiveSandbox::is_alive) {
                    if let Some(dead) = self.shared.take() {
                        dead.destroy()?;
                    }
                    self.shared = Some(self.create()?);
                }
                let sandbox = self.shared.as_mut().ok_or(EngineError::Sandbox(
                    warden_sandbox::SandboxError::Gone { why: "not created" },
                ))?;
                Ok(sandbox.run(job, stdin)?)
            }
        }
    }

    /// Releases the shared sandbox, if any.
    pub(super) fn finish(mut self) -> Result<(), EngineError> {
        match self.shared.take() {
            Some(sandbox) => self.release(sandbox),
            None => Ok(()),
        }
    }
}
