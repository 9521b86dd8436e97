//! The sandboxes of one execution: the compile stage and each run are jobs, in one live
//! sandbox shared by all of them or in a fresh sandbox each, as the request says
//! ([`SandboxReuse`]). The one place `execute` reaches the sandbox.

use warden_core::Mode;
use warden_sandbox::{Backend, Job, LiveSandbox, Sandbox, SandboxRun, SandboxSpec, Stdin};

use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::test_cases::SandboxReuse;

/// Runs jobs for one execution in its mode's backend.
pub(super) struct Runner {
    backend: Box<dyn Backend>,
    spec: SandboxSpec,
    reuse: SandboxReuse,
    shared: Option<LiveSandbox>,
    cancel: Option<Cancellation>,
}

impl Runner {
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
            spec,
            reuse,
            shared: None,
            cancel,
        })
    }

    /// A new sandbox of this execution, registered with its cancellation.
    fn create(&self) -> Result<LiveSandbox, EngineError> {
        if self.cancel.as_ref().is_some_and(Cancellation::is_cancelled) {
            return Err(warden_sandbox::SandboxError::Cancelled.into());
        }
        let sandbox = self.backend.start(&self.spec)?;
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
                let destroyed = sandbox.destroy();
                let run = run?;
                destroyed?;
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

    /// Destroys the shared sandbox, if any.
    pub(super) fn finish(mut self) -> Result<(), EngineError> {
        if let Some(sandbox) = self.shared.take() {
            sandbox.destroy()?;
        }
        Ok(())
    }
}
