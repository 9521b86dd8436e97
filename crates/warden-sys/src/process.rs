//! Process creation and control that `nix` does not wrap safely: `clone` into new namespaces,
//! `fork` in a single-threaded helper, pidfds, `close_range`, and fd mapping for a spawned
//! child.
//!
//! Man pages: clone(2), pidfd_open(2), pidfd_send_signal(2), close_range(2), prlimit(2).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Which side of a fork or clone the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkResult {
    /// The original process; the child has this pid.
    Parent {
        /// The new process.
        child: Pid,
    },
    /// The new process.
    Child,
}

/// Whether this process has exactly one thread (`num_threads` in `/proc/self/stat`, proc(5)).
/// An unreadable file counts as no: the callers below then refuse rather than guess.
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which may contain spaces; `state` is field 3.
            let after_comm = stat.rsplit_once(") ")?.1.to_owned();
            after_comm.split(' ').nth(20 - 3)?.parse::<u32>().ok()
        })
        == Some(1)
}

/// Fails with `EDEADLK` unless the process is single-threaded: a child of a multi-threaded
/// process inherits one thread, and a lock another thread held (the allocator's, stdio's)
/// stays locked forever in it. A server thread calling a fork wrapper gets this error instead
/// of a child that may hang.
fn require_single_thread() -> Result<(), Errno> {
    if single_threaded() {
        Ok(())
    } else {
        Err(Errno::EDEADLK)
    }
}

/// `clone(flags | SIGCHLD)` with fork semantics (the child continues on a copy of the stack).
///
/// Fails with `EDEADLK` unless the process is single-threaded (checked here): the child
/// inherits one thread and any lock another thread held stays locked forever. The warden
/// helper is freshly exec'd, or forked from a single-threaded CLI.
pub fn clone_into_namespaces(flags: CloneFlags) -> Result<ForkResult, Errno> {
    require_single_thread()?;
    let raw_flags = libc::c_ulong::try_from(flags.bits()).map_err(|_| Errno::EINVAL)?
        | libc::c_ulong::try_from(libc::SIGCHLD).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the raw clone syscall with a null stack behaves like fork(2): the child gets a
    // copy-on-write copy of the address space and continues here. No pointer arguments are
    // passed. The process is single-threaded (checked just above), so no lock can be held by a
    // thread that does not exist in the child.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw_flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(i32::try_from(pid).map_err(|_| Errno::EOVERFLOW)?),
        }),
    }
}

/// Runs `with` on the pid of a child that waits in a new user namespace of its own (no id map
/// written yet: `with` may write them, and open `/proc/<pid>/ns/user`, which holds the
/// namespace after the child is gone), then ends and reaps the child.
///
/// Safe from a multi-threaded process: the child, a copy of this one, runs nothing but
/// `close`, `read` and `_exit` system calls, and takes no lock. It is a clone child (no exit
/// signal), so a wait for any child elsewhere in the process neither reaps it nor sees it.
pub fn with_user_namespace_child<T>(with: impl FnOnce(Pid) -> T) -> Result<T, Errno> {
    let (release_read, release_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (read_fd, write_fd) = (release_read.as_raw_fd(), release_write.as_raw_fd());
    let flags = libc::c_ulong::try_from(libc::CLONE_NEWUSER).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the raw clone syscall with a null stack behaves like fork(2) (the child continues
    // here on a copy-on-write copy of the address space), with no exit signal. No pointer
    // arguments are passed.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if ret == 0 {
        // The child: waits until the parent closes its end of the pipe (or dies), then exits.
        // Raw system calls only: another thread of the parent may have held a lock at the
        // clone, which stays held here.
        let mut byte = 0u8;
        // SAFETY: close and read on descriptors this copy of the process owns, into a live
        // byte on this stack; _exit ends the process without running anything of the parent's.
        unsafe {
            libc::syscall(libc::SYS_close, write_fd);
            libc::syscall(
                libc::SYS_read,
                read_fd,
                std::ptr::addr_of_mut!(byte).cast::<libc::c_void>(),
                1usize,
            );
            libc::syscall(libc::SYS_exit_group, 0);
        }
        unreachable!("exit_group returned");
    }
    if ret < 0 {
        return Err(Errno::last());
    }
    let child = Pid::from_raw(i32::try_from(ret).map_err(|_| Errno::EOVERFLOW)?);
    drop(release_read);
    let result = with(child);
    drop(release_write);
    let reap = || nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::__WCLONE));
    while let Err(Errno::EINTR) = reap() {}
    Ok(result)
}

/// The kernel's `struct rlimit64`.
#[repr(C)]
struct Rlimit64 {
    soft: u64,
    hard: u64,
}

/// `prlimit(2)` on `pid` (0: this process): sets `new` (soft, hard) when given, and returns the
/// limits before. Another process's limits need CAP_SYS_RESOURCE over it, or its uids and gids
/// all equal to the caller's real ones (the sandbox init and its payloads: uid 0 of the same
/// user namespace).
pub fn prlimit(
    pid: Pid,
    resource: nix::sys::resource::Resource,
    new: Option<(u64, u64)>,
) -> Result<(u64, u64), Errno> {
    let new = new.map(|(soft, hard)| Rlimit64 { soft, hard });
    let mut old = Rlimit64 { soft: 0, hard: 0 };
    let new_ptr = new
        .as_ref()
        .map_or(std::ptr::null(), |n| n as *const Rlimit64);
    // SAFETY: `new_ptr` is null or points to a live Rlimit64 laid out as the kernel's struct
    // rlimit64; `old` is a live, writable one; the kernel reads and writes nothing else.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            pid.as_raw(),
            resource as libc::c_int,
            new_ptr,
            &mut old as *mut Rlimit64,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok((old.soft, old.hard))
    }
}

/// `fork(2)` for a single-threaded process (the sandbox init forking the payload, the CLI
/// forking its helper). Fails with `EDEADLK` when the process has other threads (checked here).
pub fn fork_single_threaded() -> Result<ForkResult, Errno> {
    require_single_thread()?;
    // SAFETY: the process is single-threaded (checked just above; only this thread could start
    // another, and it is here), so the child cannot inherit a lock held by another thread.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(ForkResult::Parent { child }),
        nix::unistd::ForkResult::Child => Ok(ForkResult::Child),
    }
}

/// Ends the process at once, without running destructors or atexit handlers (a forked child
/// must not flush buffers it shares with its parent).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit(2) takes an integer and never returns; it is always safe to call.
    unsafe { libc::_exit(code) }
}

/// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`, sysconf(3)): what the sizes in
/// `/proc/<pid>/statm` count in.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and returns one; no memory is shared.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// `pidfd_open(2)`: a file descriptor that refers to `pid` for its whole life, immune to pid
/// reuse, readable (in poll) when the process exits.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value; no memory is shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0u32) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a child ended, as `waitpid(2)` reports it, whatever its signal's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// It exited with this code.
    Exited(Pid, i32),
    /// A signal ended it: its number, a real-time one (32 to 64) as well.
    Signaled(Pid, i32),
    /// It stopped or continued (reported only to a tracer, or with flags not asked here).
    Other(Pid),
    /// No child has ended yet (`nohang`).
    StillAlive,
}

/// `waitpid(2)` for `pid` (-1: any child), without blocking when `nohang`. nix's
/// `WaitStatus` has no variant for a real-time signal: for a child a real-time signal ended,
/// its `waitpid` answers `EINVAL` after the kernel has reaped the child, and the status is
/// lost (the payload's, which the init then waited for until the wall limit).
pub fn wait_child(pid: Pid, nohang: bool) -> Result<Waited, Errno> {
    let mut status: libc::c_int = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: `status` is a live, writable c_int for the call; the kernel writes only it.
    let ret = unsafe { libc::waitpid(pid.as_raw(), &mut status, flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    if ret == 0 {
        return Ok(Waited::StillAlive);
    }
    let child = Pid::from_raw(ret);
    Ok(if libc::WIFEXITED(status) {
        Waited::Exited(child, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Waited::Signaled(child, libc::WTERMSIG(status))
    } else {
        Waited::Other(child)
    })
}

/// The Landlock ABI version the kernel offers (`landlock_create_ruleset(2)` with
/// `LANDLOCK_CREATE_RULESET_VERSION`): `EOPNOTSUPP` when Landlock is built in but disabled at
/// boot, `ENOSYS` when the kernel lacks it. Creates nothing.
pub fn landlock_abi_version() -> Result<u32, Errno> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: a null attribute pointer with size 0 and the VERSION flag is the documented way
    // to ask for the version; the kernel reads no memory and returns a number, no descriptor.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version < 0 {
        return Err(Errno::last());
    }
    u32::try_from(version).map_err(|_| Errno::EINVAL)
}

/// `pidfd_send_signal(2)`: signals the process `pidfd` refers to, never a recycled pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: Signal) -> Result<(), Errno> {
    // SAFETY: the fd is a valid open pidfd (borrowed for the call), the info pointer is null
    // (the kernel fills in a default siginfo) and flags are 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Closes every descriptor from `first` up (`close_range(2)`), so a payload holds only what
/// it was meant to hold.
pub fn close_fds_from(first: RawFd) -> Result<(), Errno> {
    let first = libc::c_uint::try_from(first).map_err(|_| Errno::EINVAL)?;
    // SAFETY: close_range takes integers only; closing descriptors the process owns cannot
    // violate memory safety in this process because it is single-threaded and about to exec.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0u32) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Makes `cmd` start with each `(fd, target)` of `fds` duplicated onto descriptor `target`
/// (without close-on-exec), whatever the caller's numbering. The sources may be close-on-exec,
/// so that no other child spawned concurrently inherits them.
///
/// The targets must be 3 or above (0-2 are set through `Command::stdin` and friends); a source
/// may sit at any number, another's target included. Fails when the process has no
/// descriptors left.
pub fn map_fds(cmd: &mut Command, fds: Vec<(OwnedFd, RawFd)>) -> Result<(), Errno> {
    // Each source first moves above every target, so that placing one never overwrites a
    // source still to be placed (a source may sit at another's target number).
    let above = fds.iter().map(|(_, target)| *target).max().unwrap_or(2) + 1;
    let fds: Vec<(OwnedFd, RawFd)> = fds
        .into_iter()
        .map(|(fd, target)| {
            let high = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(above))?;
            // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
            Ok((unsafe { OwnedFd::from_raw_fd(high) }, target))
        })
        .collect::<Result<_, Errno>>()?;
    let raw: Vec<(RawFd, RawFd)> = fds
        .iter()
        .map(|(fd, target)| (fd.as_raw_fd(), *target))
        .collect();
    // SAFETY: the closure runs in the child between fork and exec and only calls dup2(2), which
    // is async-signal-safe, and allocates nothing (`raw` was built before the fork). The owned
    // fds are moved into the closure, so they stay open until the Command is dropped.
    unsafe {
        cmd.pre_exec(move || {
            let _keep_open = &fds;
            for (source, target) in &raw {
                if libc::dup2(*source, *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
}

/// In a freshly forked child of a single-threaded process: opens each source of `fds` at its
/// target number (not close-on-exec), whatever the numbering, and closes every other
/// descriptor from 3 up. What `map_fds` does for an exec'd child, for a forked one that does
/// not exec. The sources are left open where they are only if they are also targets.
pub fn arrange_fds(fds: &[(BorrowedFd<'_>, RawFd)]) -> Result<(), Errno> {
    let highest = fds
        .iter()
        .flat_map(|(fd, target)| [fd.as_raw_fd(), *target])
        .max()
        .unwrap_or(2);
    // First every source moves above every number in play, so that no dup2 below overwrites a
    // source still to be placed.
    let mut moved = Vec::with_capacity(fds.len());
    for (fd, target) in fds {
        let high = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(highest + 1))?;
        moved.push((high, *target));
    }
    for &(high, target) in &moved {
        // SAFETY: dup2 takes integers only; `high` was just opened by this function.
        if unsafe { libc::dup2(high, target) } < 0 {
            return Err(Errno::last());
        }
    }
    let top = moved.iter().map(|&(_, t)| t).max().unwrap_or(2);
    for fd in 3..=top {
        if !moved.iter().any(|&(_, t)| t == fd) {
            // SAFETY: closing a descriptor number; nothing else in this single-threaded child
            // refers to it (the caller's owners of these numbers are never used again).
            unsafe { libc::close(fd) };
        }
    }
    close_fds_from(top.max(2) + 1)
}

/// Replaces this process's command line, as `/proc/<pid>/cmdline` shows it to others, with
/// `title` (NUL-padded; cut to fit). That file reads the argv area of the process's memory,
/// which a forked child shares with its parent until it writes there: a helper forked from the
/// CLI would otherwise show the CLI's arguments (paths on the host, the code) to the sandbox,
/// whose init is a copy of it. Only for a single-threaded process that no longer reads its
/// arguments.
pub fn overwrite_own_cmdline(title: &[u8]) -> Result<(), Errno> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|_| Errno::EIO)?;
    // Fields after the command name, which may contain spaces; `state` is field 3 (proc(5)).
    let after_comm = stat.rsplit_once(") ").ok_or(Errno::EIO)?.1;
    let field = |n: usize| -> Result<usize, Errno> {
        after_comm
            .split(' ')
            .nth(n - 3)
            .and_then(|f| f.trim().parse().ok())
            .ok_or(Errno::EIO)
    };
    let (start, end) = (field(48)?, field(49)?);
    if start == 0 || end <= start {
        return Err(Errno::EIO);
    }
    // SAFETY: [arg_start, arg_end) is this process's argv area, which the kernel reports for
    // itself: mapped and writable (the initial stack), and private to this process since the
    // fork (copy on write). Nothing reads it any more: the caller is single-threaded and does
    // not look at its arguments again.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    area.fill(0);
    let n = title.len().min(area.len().saturating_sub(1));
    area[..n].copy_from_slice(&title[..n]);
    Ok(())
}

/// Duplicates `fd` onto descriptor number `target` (`dup3(2)`), closing whatever `target`
/// was, optionally close-on-exec. The returned owner closes `target` when dropped.
pub fn dup_onto(
    fd: std::os::fd::BorrowedFd<'_>,
    target: RawFd,
    close_on_exec: bool,
) -> Result<OwnedFd, Errno> {
    let flags = if close_on_exec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 takes integers only; `fd` is borrowed so it is open for the call.
    let ret = unsafe { libc::dup3(fd.as_raw_fd(), target, flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel placed a new descriptor at `ret` (== target) for us; the previous
    // occupant of that number was closed by dup3, so no other owner refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Descriptors the helper inherits from the parent: 3 carries the plan, 4 the reports.
pub fn inherited_fd(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table entry; it has no side effects.
    let valid = unsafe { libc::fcntl(raw, libc::F_GETFD) } >= 0;
    // SAFETY: the descriptor is open (checked above) and was placed at this number by the
    // parent for this process alone (map_fds); nothing in this process owns it yet, and this
    // is called once per number at helper start.
    valid.then(|| unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fork_wrappers_refuse_a_multi_threaded_process() {
        // The test harness runs this test on a thread of its own; make sure of a second one.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        assert!(!single_threaded());
        assert_eq!(fork_single_threaded(), Err(Errno::EDEADLK));
        assert_eq!(
            clone_into_namespaces(CloneFlags::empty()),
            Err(Errno::EDEADLK)
        );
        drop(tx);
        let _ = other.join();
    }

    /// Bug hunt: a payload a real-time signal ended lost its status (nix's `waitpid` answers
    /// `EINVAL` for it, after reaping it), and the run waited for the wall limit.
    #[test]
    #[expect(
        clippy::zombie_processes,
        reason = "wait_child, under test, reaps them"
    )]
    fn a_child_a_real_time_signal_ended_is_reported_with_its_signal() {
        let child = Command::new("/bin/sh")
            .args(["-c", "kill -s RTMIN+3 $$"])
            .spawn()
            .expect("sh runs");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
        let rtmin = libc::SIGRTMIN();
        assert_eq!(wait_child(pid, false), Ok(Waited::Signaled(pid, rtmin + 3)));
        let exited = Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .expect("sh runs");
        let pid = Pid::from_raw(i32::try_from(exited.id()).expect("a pid"));
        assert_eq!(wait_child(pid, false), Ok(Waited::Exited(pid, 7)));
        assert_eq!(wait_child(pid, true), Err(Errno::ECHILD), "reaped");
    }
}
