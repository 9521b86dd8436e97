//! Signal dispositions and masks a payload must not inherit. Ignored signals survive execve
//! (signal(7)): the Rust runtime ignores SIGPIPE in every warden process, and a program that
//! inherited that would see EPIPE errors where it expects to die quietly.

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

/// Resets every catchable signal to its default action and unblocks all signals.
pub fn reset_all() -> Result<(), Errno> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no handler code in this process, so no handler can
        // observe inconsistent state.
        unsafe { sigaction(signal, &default) }?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}
