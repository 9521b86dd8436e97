//! The signals that would end a command (a terminal's Ctrl-C, a supervisor's SIGTERM, a closed
//! terminal's SIGHUP, Ctrl-\\'s SIGQUIT) or stop it (Ctrl-Z's SIGTSTP), taken by a command that
//! runs a program elsewhere and passed on to that program instead (a stop stops the program,
//! then the command itself, and both go on together): `warden run` (to its sandbox's
//! program, through the job's watch) and `warden session exec --interactive` (to the call's
//! program, through the server's WebSocket). They are blocked and read from a signalfd, so that
//! a single-threaded process needs no thread for them. SIGTTOU too, which the kernel sends a
//! background job writing to a terminal set to `tostop`: blocked, it lets the write through,
//! so the command checks before writing ([`PassedOn::stops_writing_to`]) and stops with its
//! program instead of alone. Man pages: signalfd(2), sigprocmask(2), termios(3) (`TOSTOP`).

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

/// Stops this process for a write to its terminal in the background (`tostop`): taken as
/// the others, so that it never stops this process alone, whose watch enforces the program's
/// limits (hunt esc: the program ran on unlimited while a background `warden run` was stopped).
const OUTPUT_STOP: Signal = Signal::SIGTTOU;

/// After this many signals, the program is killed instead: a program that handles or ignores
/// Ctrl-C still ends when the user insists.
const KILL_AFTER: u32 = 3;

/// The signals this process takes for its program.
pub(crate) struct PassedOn {
    fd: SignalFd,
    received: u32,
    /// SIGTTOU is taken ([`OUTPUT_STOP`]): the kernel no longer stops this process for a
    /// write to its terminal in the background, and [`PassedOn::stops_writing_to`] tells.
    output_stop_taken: bool,
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
        let output_stop_taken =
            any && warden_sys::signals::is_ignored(OUTPUT_STOP as i32) == Ok(false);
        if output_stop_taken {
            taken.add(OUTPUT_STOP);
        }
        if !any {
            return None;
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&taken), None).ok()?;
        match SignalFd::with_flags(&taken, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Some(Self {
                fd,
                received: 0,
                output_stop_taken,
            }),
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
            let stop = [Signal::SIGTSTP, OUTPUT_STOP]
                .into_iter()
                .find(|stop| *stop as u32 == info.ssi_signo);
            if let Some(stop) = stop {
                signals.push(stop);
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

    /// Whether writing to `fd` now would stop this process (SIGTTOU), were SIGTTOU not
    /// taken: a terminal set to `tostop` whose foreground job this process is not, in a
    /// process group a shell can continue. The caller then stops with its program first
    /// ([`PassedOn::stop_for_output`]), and writes once it is continued. Always false when
    /// SIGTTOU is not taken: the kernel then stops this process itself.
    pub(crate) fn stops_writing_to(&self, fd: BorrowedFd<'_>) -> bool {
        use nix::unistd::{getpgid, getpgrp, getppid, getsid, tcgetpgrp};
        // A group whose members' parents are all outside the session or in the group itself
        // is orphaned: the kernel discards the stop (and would have failed the write with
        // EIO). Its parent, the shell, is what this process knows of.
        let parent = getppid();
        let continuable = getpgid(Some(parent)).is_ok_and(|group| group != getpgrp())
            && getsid(Some(parent)).ok() == getsid(None).ok();
        self.output_stop_taken
            && continuable
            && tcgetpgrp(fd).is_ok_and(|group| group != getpgrp())
            && nix::sys::termios::tcgetattr(fd).is_ok_and(|terminal| {
                terminal
                    .local_flags
                    .contains(nix::sys::termios::LocalFlags::TOSTOP)
            })
    }

    /// Has the watch stop the program and then this process, as a write to the terminal in
    /// the background would have stopped this process alone: SIGTTOU, raised while taken,
    /// waits in the signalfd the watch polls, which then stops the program and calls
    /// [`PassedOn::suspend`] with it.
    pub(crate) fn stop_for_output() {
        let _ = nix::sys::signal::raise(OUTPUT_STOP);
    }

    /// Stops this process until it is continued, as `signal`'s own action would have: its
    /// shell sees the job stopped, and `fg` (SIGCONT) goes on from here. SIGTSTP is taken
    /// (blocked), so SIGSTOP stands in for it; SIGTTIN (a read of the terminal in the
    /// background) and SIGTTOU (a write to it) are raised themselves, which the kernel
    /// discards in an orphaned process group, where no shell could continue the job; SIGTTOU,
    /// taken, is let through for the raise.
    pub(crate) fn suspend(signal: i32) {
        if signal == OUTPUT_STOP as i32 {
            let mut only = SigSet::empty();
            only.add(OUTPUT_STOP);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
            let _ = nix::sys::signal::raise(OUTPUT_STOP);
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&only), None);
            return;
        }
        let signal = if signal == Signal::SIGTTIN as i32 {
            Signal::SIGTTIN
        } else {
            Signal::SIGSTOP
        };
        let _ = nix::sys::signal::raise(signal);
    }
}
