//! Signal dispositions and masks a payload must not inherit. Ignored signals survive execve
//! (signal(7)): the Rust runtime ignores SIGPIPE in every warden process, and a program that
//! inherited that would see EPIPE errors where it expects to die quietly.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};

/// The kernel's `struct sigaction`, as `rt_sigaction` takes it: glibc's wrapper refuses
/// signals 32 and 33 (its own), which a parent may still have left ignored.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: libc::sighandler_t,
    mask: u64,
}

/// The highest signal number (`SIGRTMAX` of the kernel, not glibc's).
const LAST_SIGNAL: libc::c_int = 64;

fn rt_sigaction(
    signal: libc::c_int,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> Result<(), Errno> {
    let new = new.map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut KernelSigaction);
    // SAFETY: both pointers are null or point to live KernelSigaction structs laid out as the
    // kernel's; the size argument is that of the 64-bit mask.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            new,
            old,
            std::mem::size_of::<u64>(),
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// The signals (numbers, realtime ones included) this process ignores (`SIG_IGN`): what a
/// child keeps across execve. The caught ones return to their default there.
pub fn ignored() -> Result<Vec<libc::c_int>, Errno> {
    let mut ignored = Vec::new();
    for signal in 1..=LAST_SIGNAL {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        match is_ignored(signal) {
            Ok(true) => ignored.push(signal),
            // A number this kernel does not have.
            Ok(false) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ignored)
}

/// Whether this process ignores `signal` (`SIG_IGN`).
pub fn is_ignored(signal: libc::c_int) -> Result<bool, Errno> {
    let mut old = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    rt_sigaction(signal, None, Some(&mut old))?;
    Ok(old.handler == libc::SIG_IGN)
}

/// Resets `signals` to their default action and unblocks all signals. Given what [`ignored`]
/// returned in the parent, a child calling this before execve starts its program with every
/// signal at its default and none blocked.
pub fn reset(signals: &[libc::c_int]) -> Result<(), Errno> {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for &signal in signals {
        rt_sigaction(signal, Some(&default), None)?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_runtime_ignores_sigpipe_and_catches_nothing_it_ignores() {
        let ignored = ignored().expect("ignored");
        assert!(ignored.contains(&libc::SIGPIPE), "{ignored:?}");
        assert!(!ignored.contains(&libc::SIGSEGV), "{ignored:?}");
    }
}
