//! Cancelling an execution from another thread: an HTTP adapter whose client went away cancels
//! the execution it was running. Every live sandbox the execution creates is registered here,
//! and cancelling kills them all (and any created later at once); the execution then ends
//! with [`crate::EngineError::Cancelled`].

use std::sync::{Arc, Mutex, PoisonError};

use warden_sandbox::CancelHandle;

/// Cancels the execution it is given to (`ExecutionRequest::cancel`); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    cancelled: bool,
    sandboxes: Vec<CancelHandle>,
}

impl Cancellation {
    /// A cancellation not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kills every sandbox of the execution, now and from now on.
    pub fn cancel(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.cancelled = true;
        for sandbox in state.sandboxes.drain(..) {
            sandbox.cancel();
        }
    }

    /// Whether [`Cancellation::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancelled
    }

    /// Registers a sandbox of the execution (cancelled at once when the execution already is).
    pub(crate) fn watch(&self, sandbox: CancelHandle) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            sandbox.cancel();
        } else {
            state.sandboxes.push(sandbox);
        }
    }
}
