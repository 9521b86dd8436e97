//! The signals that would end a command (a terminal's Ctrl-C, a supervisor's SIGTERM, a closed
//! terminal's SIGHUP, Ctrl-\\'s SIGQUIT) or stop it (Ctrl-Z's SIGTSTP), taken by a command that
//! runs a program elsewhere and passed on to that program instead (a stop stops the program,
//! then the command itself, and both go on together): `warden run` (to its sandbox's
//! program, through the job's watch) and `warden session exec --interactive` (to the call's
//! program, through the server's WebSocket). They are blocked and read from a signalfd, so that
//! a single-threaded process needs no thread for them. Man pages: signalfd(2), sigprocmask(2).

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals passed on. The sandbox's init forwards each of them to the program, and stops
/// every process of the job on SIGTSTP.
const PASSED_ON: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
];

/// After this many signals, the program is killed instead: a program that handles or ignores
/// Ctrl-C still ends when the user insists.
const KILL_AFTER: u32 = 3;

/// The signals this process takes for its program.
pub(crate) struct PassedOn {
    fd: SignalFd,
    received: u32,
}

impl PassedOn {
    /// Takes the signals from now on (blocked: they wait to be read); threads started later
    /// inherit the mask. Signals the process was started with ignored stay ignored: their
    /// sender meant the command to go on (a job started with `&` by a shell without job
    /// control). `None` when none could be taken (the default dispositions then stay).
    pub(crate) fn take() -> Option<Self> {
        let mut taken = SigSet::empty();
        let mut any = false;
        for signal in PASSED_ON {
            if warden_sys::signals::is_ignored(signal as i32) == Ok(false) {
                taken.add(signal);
                any = true;
            }
        }
        if !any {
            return None;
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&taken), None).ok()?;
        match SignalFd::with_flags(&taken, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Some(Self { fd, received: 0 }),
            Err(_) => {
                let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&taken), None);
                None
            }
        }
    }

    /// Readable (in poll) when signals wait.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The signals received since the last call, as they are to reach the program: each as
    /// it came, SIGKILL from the [`KILL_AFTER`]th on (said once on stderr; stops are not
    /// counted).
    pub(crate) fn received(&mut self) -> Vec<Signal> {
        let mut signals = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            if info.ssi_signo == Signal::SIGTSTP as u32 {
                signals.push(Signal::SIGTSTP);
                continue;
            }
            self.received += 1;
            if self.received >= KILL_AFTER {
                if self.received == KILL_AFTER {
                    eprintln!("warden: signalled {KILL_AFTER} times: killing the program");
                }
                signals.push(Signal::SIGKILL);
            } else if let Ok(signal) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
            {
                signals.push(signal);
            }
        }
        signals
    }

    /// Stops this process until it is continued, as `signal`'s own action would have: its
    /// shell sees the job stopped, and `fg` (SIGCONT) goes on from here. SIGTSTP is taken
    /// (blocked), so SIGSTOP stands in for it; SIGTTIN (a read of the terminal in the
    /// background) is raised itself, which the kernel discards in an orphaned process group,
    /// where no shell could continue the job.
    pub(crate) fn suspend(signal: i32) {
        let signal = if signal == Signal::SIGTTIN as i32 {
            Signal::SIGTTIN
        } else {
            Signal::SIGSTOP
        };
        let _ = nix::sys::signal::raise(signal);
    }
}
