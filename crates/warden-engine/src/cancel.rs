//! Cancelling an execution from another thread: an HTTP adapter whose client went away cancels
//! the execution it was running. Every live sandbox the execution creates is registered here,
//! and cancelling kills them all (and any created later at once); the execution then ends
//! with [`crate::EngineError::Cancelled`]. A signal asked before the execution has a sandbox
//! (still queued for a worker, or still being planned), or between two stages' sandboxes, is
//! kept and sent to the next sandbox that registers, whose next job gets it as it starts: an
//! interactive client's signal sent at once after its program, or as its run is announced, is
//! not lost.

use std::sync::{Arc, Mutex, PoisonError};

use warden_sandbox::CancelHandle;

/// Cancels the execution it is given to (`ExecutionRequest::cancel`); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    cancelled: bool,
    sandboxes: Vec<CancelHandle>,
    /// Sandboxes the execution only signals (a session's: cancelling would end the session).
    signalled: Vec<CancelHandle>,
    /// Signals asked before any sandbox registered, in order, for the first one that does.
    pending: Vec<warden_core::Signal>,
    /// What [`Cancellation::on_cancel`] asked to be told.
    hooks: Vec<Hook>,
}

/// A callback run once, at the cancel.
struct Hook(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Cancellation {
    /// A cancellation not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kills every sandbox of the execution, now and from now on.
    pub fn cancel(&self) {
        let hooks = {
            let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            state.cancelled = true;
            state.pending.clear();
            for sandbox in state.sandboxes.drain(..) {
                sandbox.cancel();
            }
            std::mem::take(&mut state.hooks)
        };
        // Outside the lock: a hook may ask the cancellation again.
        for Hook(hook) in hooks {
            hook();
        }
    }

    /// Runs `hook` once at [`Cancellation::cancel`], or now if it was cancelled already: a
    /// caller that waits for something else (an adapter's queued request, for a worker)
    /// stops waiting at the cancel.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            drop(state);
            hook();
        } else {
            state.hooks.push(Hook(Box::new(hook)));
        }
    }

    /// Sends `signal` to the program the execution runs now (or to the next one it starts, as
    /// it starts): [`warden_sandbox::CancelHandle::signal`] on each of its sandboxes. Before
    /// the execution has a sandbox, the signal waits for the first one (its first job gets
    /// it: the program, or the compiler or installer of a stage before it). A signal the
    /// sandbox's init forwards (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) reaches
    /// the program, which may handle it; any other ends the program's job. Nothing once
    /// cancelled.
    pub fn signal(&self, signal: warden_core::Signal) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            return;
        }
        if state.sandboxes.is_empty() && state.signalled.is_empty() {
            state.pending.push(signal);
            return;
        }
        for sandbox in state.sandboxes.iter().chain(&state.signalled) {
            sandbox.signal(signal);
        }
    }

    /// Whether [`Cancellation::signal`] delivers `signal` to the program (rather than ending
    /// its job).
    pub fn delivers(signal: warden_core::Signal) -> bool {
        CancelHandle::delivers(signal)
    }

    /// Whether [`Cancellation::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancelled
    }

    /// Registers a sandbox that [`Cancellation::signal`] reaches and [`Cancellation::cancel`]
    /// does not (a session's, which outlives the call).
    pub(crate) fn watch_signals(&self, sandbox: CancelHandle) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for signal in state.pending.drain(..) {
            sandbox.signal(signal);
        }
        state.signalled.push(sandbox);
    }

    /// Forgets a sandbox whose jobs for the execution are over (let go, given back to its
    /// pool, replaced): a signal asked after it waits for the next sandbox, as before the
    /// first; it went to the sandbox let go, and was lost (a kill between the compile stage
    /// and the run).
    pub(crate) fn unwatch(&self, sandbox: &CancelHandle) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.sandboxes.retain(|s| !s.same_lease(sandbox));
    }

    /// Registers a sandbox of the execution (cancelled at once when the execution already is).
    pub(crate) fn watch(&self, sandbox: CancelHandle) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            sandbox.cancel();
        } else {
            // The handle queues them until its sandbox's next job reads them.
            for signal in state.pending.drain(..) {
                sandbox.signal(signal);
            }
            state.sandboxes.push(sandbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_hook_runs_once_at_the_cancel_or_at_once_after_it() {
        let cancel = Cancellation::new();
        let told = Arc::new(AtomicUsize::new(0));
        let count = |told: &Arc<AtomicUsize>| {
            let told = Arc::clone(told);
            move || {
                told.fetch_add(1, Ordering::SeqCst);
            }
        };
        cancel.on_cancel(count(&told));
        assert_eq!(told.load(Ordering::SeqCst), 0, "not cancelled yet");
        cancel.cancel();
        assert_eq!(told.load(Ordering::SeqCst), 1);
        cancel.cancel();
        assert_eq!(told.load(Ordering::SeqCst), 1, "once");
        cancel.on_cancel(count(&told));
        assert_eq!(told.load(Ordering::SeqCst), 2, "cancelled already: at once");
    }
}
