//! The backend trait, one-shot runs, and cancelling a live sandbox from another thread. Runs in
//! the parent. The lifecycle every backend shares is `live.rs`.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::live::LiveSandbox;
use crate::parent::{SandboxError, SandboxRun, Stdin};
use crate::plan::{SandboxPlan, SandboxSpec};

/// An isolation backend: builds live sandboxes. The native, trusted and gVisor backends each
/// implement it once; everything else about a sandbox's life is common ([`LiveSandbox`]).
pub trait Backend: std::fmt::Debug + Send + Sync {
    /// A short name for reports (`native`, `trusted`, `gvisor`).
    fn name(&self) -> &'static str;

    /// Starts building a sandbox for `spec` without waiting for it: its first job may be sent
    /// at once, and the setup finishes while it travels (what a one-shot run does). A setup
    /// failure surfaces at the first job, or at [`LiveSandbox::wait_ready`].
    fn start(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError>;

    /// Starts building a sandbox for exactly one job, as [`Backend::start`] does; a backend
    /// may make it cheaper by refusing a second job (gVisor runs the job as its container).
    fn start_single(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        self.start(spec)
    }

    /// Builds a sandbox for `spec` and waits until it is ready for jobs.
    fn create(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        let mut sandbox = self.start(spec)?;
        sandbox.wait_ready()?;
        Ok(sandbox)
    }
}

/// Runs one plan in a fresh sandbox of `backend`: start, run the job (sent while the sandbox
/// is still being built), destroy. What `Sandbox::run` and its siblings do.
pub fn run_once(
    backend: &dyn Backend,
    plan: &SandboxPlan,
    stdin: Stdin,
) -> Result<SandboxRun, SandboxError> {
    let (spec, job) = plan.split();
    job.validate(&spec)?;
    let mut sandbox = backend.start_single(&spec)?;
    let run = sandbox.run(&job, stdin);
    let destroyed = sandbox.destroy();
    let run = run?;
    destroyed?;
    Ok(run)
}

/// Stops a live sandbox from another thread, or signals the program of its job. One lease of
/// the sandbox: a sandbox reset for its next run gets a new handle, so that an earlier run's
/// handle can neither stop nor signal a later run.
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<Cancel>);

#[derive(Debug)]
struct Cancel {
    requested: AtomicBool,
    /// Written once on cancel; the watch polls the read end.
    wake: OwnedFd,
    /// One byte per signal asked for, its number (non-blocking: a full pipe drops the signal);
    /// the watch reads them and delivers each.
    signals: OwnedFd,
}

impl CancelHandle {
    /// A handle that writes to `wake` (once) when cancelled, and a signal's number to
    /// `signals`.
    pub(crate) fn new(wake: OwnedFd, signals: OwnedFd) -> Self {
        Self(Arc::new(Cancel {
            requested: AtomicBool::new(false),
            wake,
            signals,
        }))
    }

    /// Ends the sandbox's use: the job running in it (if any) is killed and ends with
    /// `SandboxError::Cancelled`, carrying what it ran until then, as does every later one.
    /// Idempotent; the sandbox is still destroyed by its owner.
    pub fn cancel(&self) {
        if !self.0.requested.swap(true, Ordering::SeqCst) {
            let _ = nix::unistd::write(&self.0.wake, &[1]);
        }
    }

    /// Sends `signal` to the program of the job running in the sandbox (of the next job, as
    /// it starts, when none runs yet). The sandbox's init delivers the signals it forwards
    /// (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2: [`CancelHandle::delivers`]), and
    /// the program may handle them; SIGTSTP stops every process of the job and SIGCONT
    /// continues them (the wall-clock limit still counts the time stopped); any other signal, or any signal under a backend without
    /// warden's init, ends the job as a kill would. A one-job gVisor sandbox's init (warden's
    /// loader, `Backend::start_single`) passes them on the same way.
    pub fn signal(&self, signal: warden_core::Signal) {
        if let Ok(number) = u8::try_from(signal.0) {
            if !self.0.requested.load(Ordering::SeqCst) {
                let _ = nix::unistd::write(&self.0.signals, &[number]);
            }
        }
    }

    /// Whether the sandbox's init delivers `signal` to the program (rather than ending the
    /// job).
    pub fn delivers(signal: warden_core::Signal) -> bool {
        nix::sys::signal::Signal::try_from(signal.0).is_ok_and(crate::child::forwards)
    }

    /// Whether cancel was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Whether `other` is a handle of the same lease (a clone of this one).
    pub fn same_lease(&self, other: &CancelHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
