//! The system calls a job's program was refused, counted by the sandbox's init. The payload
//! installs a filter whose recorded errno rules notify a listener
//! (`SECCOMP_RET_USER_NOTIF`, `seccomp.rs`) and hands the listener to the init over a socket
//! pair made for the job ([`handoff`]); the init answers every notified call with the rule's
//! errno, never letting one run, and counts it while it supervises the job ([`supervise`]).
//! The counts go to the parent as [`Report::Denied`] messages before the job's `Exited`.
//!
//! The same listener receives the calls that write to a named path: the init records those
//! that write to a read-only path and lets every one run (`writes.rs`), reported as one
//! [`Report::ReadOnly`]; and the calls the policy kills for: the init kills the calling
//! process (the call never runs) and records which call it made ([`KilledSyscall`],
//! [`Report::Killed`]), where a kill in the kernel would tell nobody.
//!
//! Man pages: seccomp_unotify(2), signalfd(2), poll(2).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use warden_core::seccomp_policy::{DenyErrno, DenySeverity};
use warden_sys::seccomp::{
    continue_notification, deny_notification, notification_pending, receive_notification,
    Notification,
};

use crate::child::SetupError;
use crate::report::{ExitStatus, Report};
use crate::seccomp::{Answer, CompiledFilter};
use crate::writes::{self, ReadOnlyWrites};

/// How many calls of each system call keep their arguments.
const SAMPLES: usize = 3;

/// One system call the seccomp policy refused with an error, with how often the job tried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedSyscall {
    /// The call's name (`mount`).
    pub name: String,
    /// The error each attempt failed with.
    pub errno: DenyErrno,
    /// How serious an attempt is, from the policy.
    pub severity: DenySeverity,
    /// How many times the job's processes tried it (saturates at `u64::MAX`).
    pub count: u64,
    /// The six arguments of the first few attempts (at most 3), in order.
    pub samples: Vec<[u64; 6]>,
}

/// One system call the seccomp policy kills for, with the processes of the job killed for
/// making it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KilledSyscall {
    /// The call's name (`open_by_handle_at`).
    pub name: String,
    /// How many processes were killed for it (saturates at `u64::MAX`).
    pub count: u64,
    /// The six arguments of the first few attempts (at most 3), in order.
    pub samples: Vec<[u64; 6]>,
    /// Whether the job's program (its first process) was one of them: its end is then this
    /// kill, the job's outcome a violation naming the call.
    pub program: bool,
}

/// The init's tally of one job's refused calls: one entry per notified call of the policy, so
/// its size is bounded by the policy whatever the program does.
#[derive(Debug, Default)]
pub(crate) struct Denials {
    calls: Vec<DeniedSyscall>,
    /// The calls processes were killed for.
    killed: Vec<KilledSyscall>,
    /// The process killed last: its other threads' calls, made at the same moment, are not
    /// other processes.
    last_killed: Option<Pid>,
    /// The writes to read-only paths.
    writes: ReadOnlyWrites,
}

impl Denials {
    /// Counts a call process `process` was killed for (once per process); `program` if it was
    /// the job's program.
    fn killed(&mut self, name: &str, n: &Notification, process: Pid, program: bool) {
        if self.last_killed.replace(process) == Some(process) {
            return;
        }
        let at = match self.killed.iter().position(|c| c.name == name) {
            Some(at) => at,
            None => {
                self.killed.push(KilledSyscall {
                    name: name.to_owned(),
                    count: 0,
                    samples: Vec::new(),
                    program: false,
                });
                self.killed.len() - 1
            }
        };
        let call = &mut self.killed[at];
        call.count = call.count.saturating_add(1);
        call.program |= program;
        if call.samples.len() < SAMPLES {
            call.samples.push(n.args);
        }
    }

    fn count(&mut self, filter: &CompiledFilter, n: &Notification) -> Errno {
        let Some(rule) = filter.notified_call(n.nr) else {
            // Only the filter's notified calls reach the listener; answer anything else as
            // a call that does not exist.
            return Errno::ENOSYS;
        };
        let Answer::Errno { errno, code } = rule.answer else {
            // A kill is answered by `kill_caller`; a call that gets here fails.
            return Errno::EPERM;
        };
        let at = match self.calls.iter().position(|c| c.name == rule.name) {
            Some(at) => at,
            None => {
                self.calls.push(DeniedSyscall {
                    name: rule.name.clone(),
                    errno,
                    severity: rule.severity,
                    count: 0,
                    samples: Vec::new(),
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[at];
        call.count = call.count.saturating_add(1);
        if call.samples.len() < SAMPLES {
            call.samples.push(n.args);
        }
        Errno::from_raw(code)
    }

    /// Sends one [`Report::Denied`] per call, in the order they were first tried, then one
    /// [`Report::Killed`] per call processes were killed for, then the writes to read-only
    /// paths, if any.
    pub(crate) fn send(self, report: BorrowedFd<'_>) {
        for call in self.calls {
            Report::Denied(call).send(report);
        }
        for call in self.killed {
            Report::Killed(call).send(report);
        }
        if self.writes.count > 0 {
            Report::ReadOnly(self.writes).send(report);
        }
    }
}

/// The job's socket pair for the listener: (the init's end, the payload's end). Both
/// close-on-exec; datagrams keep the one message whole.
pub(crate) fn handoff() -> Result<(OwnedFd, OwnedFd), SetupError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SetupError::errno("create the seccomp listener's socket pair", e))
}

/// What [`supervise`] ends with.
pub(crate) struct Supervised {
    /// How the payload ended.
    pub(crate) status: ExitStatus,
    /// The calls refused so far.
    pub(crate) denials: Denials,
    /// The listener, held until the job's processes are killed (closing it would fail their
    /// pending calls with ENOSYS and let them run on for a moment) and the job's end is
    /// reported (closing it frees the filter, off the way to the report).
    pub(crate) listener: Option<OwnedFd>,
}

impl Supervised {
    /// The end of a job supervised without a listener.
    pub(crate) fn plain(status: ExitStatus) -> Self {
        Self {
            status,
            denials: Denials::default(),
            listener: None,
        }
    }
}

/// Runs in the init while the payload lives: waits for the signals in `waited` (blocked, as
/// `sigwait` would), the listener on `handoff`, and notified calls on the listener, in one
/// `poll`, so neither the payload's signals nor a storm of denied calls can stall the other.
/// `on_signal` handles a signal as the plain supervision does and returns the payload's status
/// once it exited.
pub(crate) fn supervise(
    filter: &CompiledFilter,
    handoff: OwnedFd,
    payload: Pid,
    waited: &SigSet,
    mut on_signal: impl FnMut(Signal) -> Option<ExitStatus>,
) -> Result<Supervised, SetupError> {
    let signals = SignalFd::with_flags(waited, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SetupError::errno("signalfd", e))?;
    let mut handoff = Some(handoff);
    let mut listener: Option<OwnedFd> = None;
    // Whether the listener is still polled. One that hung up is kept, not closed: closing it
    // frees the filter, which is work the caller does after its report (`Supervised`).
    let mut listening = false;
    let mut denials = Denials::default();
    loop {
        let polled = listener.as_ref().filter(|_| listening);
        let ready = wait_ready(&signals, handoff.as_ref(), polled)?;
        if ready.handoff {
            // One message with the listener, or end of file: the payload exec'd (or failed)
            // without one. Either way the socket has served its purpose.
            if let Some(socket) = handoff.take() {
                listener = receive_listener(socket.as_fd());
                listening = listener.is_some();
            }
        }
        if let (Some(pending), Some(fd)) = (ready.listener, &listener) {
            // Not pending: hung up, no process uses the filter any more.
            if !pending || !answer(fd.as_fd(), filter, payload, &mut denials) {
                listening = false;
            }
        }
        if ready.signals {
            while let Some(info) = signals
                .read_signal()
                .map_err(|e| SetupError::errno("read signalfd", e))?
            {
                let Ok(signal) = Signal::try_from(info.ssi_signo.cast_signed()) else {
                    continue;
                };
                if !crate::child::sent_by_warden(&info) {
                    continue;
                }
                if let Some(status) = on_signal(signal) {
                    return Ok(Supervised {
                        status,
                        denials,
                        listener,
                    });
                }
            }
        }
    }
}

/// Which descriptors [`wait_ready`] found ready.
struct Ready {
    signals: bool,
    handoff: bool,
    /// `Some(true)` for a pending call, `Some(false)` when the listener hung up.
    listener: Option<bool>,
}

/// Blocks until a signal, the handoff or the listener is ready.
fn wait_ready(
    signals: &SignalFd,
    handoff: Option<&OwnedFd>,
    listener: Option<&OwnedFd>,
) -> Result<Ready, SetupError> {
    let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
    let mut handoff_at = None;
    let mut listener_at = None;
    for (fd, at) in [(handoff, &mut handoff_at), (listener, &mut listener_at)] {
        if let Some(fd) = fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            *at = Some(fds.len() - 1);
        }
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(SetupError::errno("poll the job's signals and listener", e)),
        }
    }
    let events = |at: usize| fds[at].revents().unwrap_or(PollFlags::empty());
    let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
    Ok(Ready {
        signals: events(0).contains(PollFlags::POLLIN),
        handoff: handoff_at.is_some_and(|at| events(at).intersects(PollFlags::POLLIN | gone)),
        listener: listener_at.map(events).and_then(|e| {
            if e.contains(PollFlags::POLLIN) {
                Some(true)
            } else if e.intersects(gone) {
                Some(false)
            } else {
                None
            }
        }),
    })
}

/// The listener the payload sent, if it sent one before its end closed.
fn receive_listener(socket: BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    match warden_sys::fdpass::recv_with_fds(socket, &mut byte) {
        Ok((_, fds)) => fds.into_iter().next(),
        Err(e) => {
            tracing::debug!(error = %e, "no seccomp listener from the payload");
            None
        }
    }
}

/// Takes one pending call and answers it: a foreign ABI's call or a call the policy kills for
/// kills its caller, a watched write runs, any other fails with its rule's errno. A call that
/// vanished (its caller was killed) needs no answer. Returns false if the listener failed otherwise: the
/// caller closes it, which fails every pending and later notified call with ENOSYS (still
/// refused), rather than poll a broken listener in a loop.
fn answer(
    listener: BorrowedFd<'_>,
    filter: &CompiledFilter,
    payload: Pid,
    denials: &mut Denials,
) -> bool {
    let call = match receive_notification(listener) {
        Ok(call) => call,
        Err(Errno::ENOENT | Errno::EINTR) => return true,
        Err(e) => {
            tracing::warn!(error = %e, "receiving a seccomp notification; closing the listener");
            return false;
        }
    };
    // A foreign ABI's number means another call: looked at before any rule.
    if let Some(name) = crate::seccomp::foreign_call(call.arch, call.nr) {
        kill_caller(listener, &name, &call, payload, denials);
        return true;
    }
    match filter.notified_call(call.nr) {
        Some(rule) if rule.answer == Answer::Kill => {
            let name = rule.name.clone();
            kill_caller(listener, &name, &call, payload, denials);
        }
        None if writes::watches(call.nr) => {
            // A write: looked at, then let run. What was read counts only if the call still
            // waits, so that its pid was not reused by another thread meanwhile.
            let mut seen = ReadOnlyWrites::default();
            writes::inspect(
                &writes::Call {
                    pid: call.pid,
                    nr: call.nr,
                    args: call.args,
                },
                &mut seen,
            );
            if seen.count > 0 && notification_pending(listener, call.id) {
                denials.writes.merge(seen);
            }
            let _ = continue_notification(listener, call.id);
        }
        _ => {
            let errno = denials.count(filter, &call);
            let _ = deny_notification(listener, call.id, errno);
        }
    }
    true
}

/// Kills the process that made `call`, a call the policy (or the ABI check) kills for, named
/// `name`, while the call waits (it never runs), and counts it. The calling thread's whole
/// process goes, as with `SECCOMP_RET_KILL_PROCESS`. Nothing is answered: the kill ends the
/// wait. A call that no longer waits (its caller was killed meanwhile) is not counted, and its
/// id not signalled, since its pid may be another process's by now.
fn kill_caller(
    listener: BorrowedFd<'_>,
    name: &str,
    call: &Notification,
    payload: Pid,
    denials: &mut Denials,
) {
    let Ok(caller) = i32::try_from(call.pid).map(Pid::from_raw) else {
        return;
    };
    // The thread's process: the program's own threads count as the program.
    let process = thread_group(caller).unwrap_or(caller);
    if !notification_pending(listener, call.id) {
        return;
    }
    // `kill` with a thread's id signals its whole process.
    if let Err(e) = nix::sys::signal::kill(caller, Signal::SIGKILL) {
        tracing::warn!(error = %e, pid = call.pid, call = name, "killing a process for a forbidden call");
        return;
    }
    denials.killed(name, call, process, process == payload);
}

/// The process (thread group) of thread `tid`, from the sandbox's `/proc`.
fn thread_group(tid: Pid) -> Option<Pid> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Tgid:"))?;
    line.trim().parse().ok().map(Pid::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::SeccompPolicy;

    fn filter() -> CompiledFilter {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        crate::seccomp::compile(&policy).expect("compiles")
    }

    fn call(nr: libc::c_long, arg0: u64) -> Notification {
        Notification {
            id: 7,
            pid: 2,
            nr: i32::try_from(nr).expect("small"),
            arch: warden_sys::seccomp::AUDIT_ARCH_NATIVE,
            args: [arg0, 0, 0, 0, 0, 0],
        }
    }

    #[test]
    fn calls_are_counted_per_name_with_the_first_arguments_and_their_errno() {
        let filter = filter();
        let mut denials = Denials::default();
        for i in 0..10 {
            assert_eq!(
                denials.count(&filter, &call(libc::SYS_mount, i)),
                Errno::EPERM
            );
        }
        assert_eq!(
            denials.count(&filter, &call(libc::SYS_socket, 40)),
            Errno::EAFNOSUPPORT
        );
        let [mount, socket] = &denials.calls[..] else {
            panic!("{:?}", denials.calls)
        };
        assert_eq!((mount.name.as_str(), mount.count), ("mount", 10));
        let firsts: Vec<u64> = mount.samples.iter().map(|a| a[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
        assert_eq!((socket.name.as_str(), socket.count), ("socket", 1));
        assert_eq!(socket.severity, DenySeverity::Low);
    }

    #[test]
    fn a_process_killed_for_calls_of_several_threads_counts_once() {
        let mut denials = Denials::default();
        let n = call(libc::SYS_init_module, 0);
        for _ in 0..3 {
            denials.killed("init_module", &n, Pid::from_raw(2), true);
        }
        denials.killed("init_module", &n, Pid::from_raw(9), false);
        let [killed] = &denials.killed[..] else {
            panic!("{:?}", denials.killed)
        };
        assert_eq!((killed.count, killed.program), (2, true));
    }

    #[test]
    fn a_call_the_filter_does_not_notify_is_answered_enosys_and_not_counted() {
        let mut denials = Denials::default();
        assert_eq!(
            denials.count(&filter(), &call(libc::SYS_read, 0)),
            Errno::ENOSYS
        );
        assert!(denials.calls.is_empty());
    }
}
