//! The seccomp policy for a gVisor job. runsc applies the bundle's OCI seccomp to the
//! container's own process only, not to what `runsc exec` starts, so each job starts as the
//! warden binary (bound read-only into the sandbox at [`LOADER`]) with [`SECCOMP_EXEC_ARG`]:
//! it sets no_new_privs, installs the policy compiled by the native backend's compiler
//! (`seccomp.rs`), and execs the job's program. gVisor implements seccomp(2) for the programs
//! it runs, so the job meets the very filter a native job meets: the same errnos, kills of the
//! whole process, and of foreign-ABI calls. Runs inside gVisor, as the job's process.
//!
//! The native filter hands the calls it records to the sandbox's init (seccomp user
//! notification); gVisor has no such init, so here every errno rule answers in the filter
//! itself and nothing is counted.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use nix::sys::resource::Resource;
use warden_core::SeccompPolicy;
use warden_sys::seccomp::SockFilter;

use crate::parent::SandboxError;

/// The argument that makes the warden binary (or the tests' helper binary) a job's filter
/// loader: `<binary> __seccomp-exec <program as hex> <path> <argv0> <args>...`.
pub const SECCOMP_EXEC_ARG: &str = "__seccomp-exec";

/// Where the loader is inside the sandbox.
pub(super) const LOADER: &str = "/.warden/seccomp-exec";

/// The policy's filter for a gVisor job, as the hex text the loader takes: every errno rule
/// answers in the filter (none is notified, no write is watched: there is no listener).
pub(super) fn compile_for_jobs(policy: &SeccompPolicy) -> Result<String, SandboxError> {
    let fail = |detail: String| SandboxError::Setup {
        step: "compile the seccomp policy for gVisor's jobs".into(),
        detail,
    };
    let mut value = serde_json::to_value(policy).map_err(|e| fail(e.to_string()))?;
    for rule in value["rules"].as_array_mut().into_iter().flatten() {
        rule["record"] = serde_json::Value::Bool(false);
    }

    let unrecorded: SeccompPolicy =
        serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
    let compiled = crate::seccomp::compile(&unrecorded).map_err(|e| fail(e.to_string()))?;
    let notifies = |i: &warden_sys::seccomp::SockFilter| {
        i.code == warden_sys::seccomp::BPF_RET | warden_sys::seccomp::BPF_K
            && i.k == warden_sys::seccomp::SECCOMP_RET_USER_NOTIF
    };
    if compiled.errno_only.iter().any(notifies) {
        return Err(fail(
            "the filter would notify a listener gVisor's jobs do not have".into(),
        ));
    }
    // Without writes watched either: no init there holds a listener.
    Ok(encode(&compiled.errno_only))
}

/// The argv of a job's `runsc exec` in a sandbox that runs several: the loader as the job's
/// parent ([`JOB_FLAG`]) with the job's rlimits, which it sets in the program's process
/// (runsc does not: an exec'd process gets the container's), then what [`program_argv`]
/// gives.
pub(super) fn job_argv(
    filter: &str,
    rlimits: &[(Resource, u64, u64)],
    argv: &[String],
) -> Vec<String> {
    let mut full = program_argv(filter, argv);
    full.insert(2, JOB_FLAG.to_owned());
    full.insert(3, encode_rlimits(rlimits));
    full
}

/// `resource=soft/hard,...`, each resource by its number.
fn encode_rlimits(rlimits: &[(Resource, u64, u64)]) -> String {
    rlimits
        .iter()
        .map(|(resource, soft, hard)| format!("{}={soft}/{hard}", *resource as i64))
        .collect::<Vec<_>>()
        .join(",")
}

/// Sets the rlimits [`encode_rlimits`] wrote in this process, each never above its current
/// hard limit (a process without `CAP_SYS_RESOURCE` cannot raise one: the job is then held
/// to the lower).
fn set_rlimits(text: &str) -> Result<(), String> {
    for entry in text.split(',').filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('=').and_then(|(resource, values)| {
            let (soft, hard) = values.split_once('/')?;
            Some((
                resource.parse::<i64>().ok()?,
                soft.parse::<u64>().ok()?,
                hard.parse::<u64>().ok()?,
            ))
        });
        let (number, soft, hard) = parsed.ok_or_else(|| format!("{entry:?} is not an rlimit"))?;
        let resource = RESOURCES
            .iter()
            .copied()
            .find(|r| *r as i64 == number)
            .ok_or_else(|| format!("{entry:?} names no known resource"))?;
        let pid = nix::unistd::Pid::from_raw(0);
        let current = warden_sys::process::prlimit(pid, resource, None)
            .map_err(|e| format!("getrlimit {resource:?}: {e}"))?;
        let hard = hard.min(current.1);
        let wanted = (soft.min(hard), hard);
        // One the container already has is left alone: gVisor refuses to set some
        // (RLIMIT_SIGPENDING) even to their own value.
        if wanted != current {
            warden_sys::process::prlimit(pid, resource, Some(wanted))
                .map_err(|e| format!("setrlimit {resource:?}: {e}"))?;
        }
    }
    Ok(())
}

/// The resources a job's rlimits may name.
const RESOURCES: [Resource; 11] = [
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_STACK,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_MEMLOCK,
];

/// The loader, the filter, then the job's own argv: the loader installs the filter and
/// becomes the program.
fn program_argv(filter: &str, argv: &[String]) -> Vec<String> {
    let mut full = vec![
        LOADER.to_owned(),
        SECCOMP_EXEC_ARG.to_owned(),
        filter.to_owned(),
    ];
    if let Some(program) = argv.first() {
        full.push(program.clone());
    }
    full.extend(argv.iter().cloned());
    full
}

/// The argv of a one-job sandbox's container process (`gvisor.rs`): the loader as the
/// container's init ([`INIT_FLAG`]), then what [`job_argv`] gives a job.
pub(super) fn init_argv(filter: &str, argv: &[String]) -> Vec<String> {
    let mut full = program_argv(filter, argv);
    full.insert(2, INIT_FLAG.to_owned());
    full
}

/// Makes the loader the container's pid 1: it forks, the child installs the filter and execs
/// the program, and pid 1 reaps every process until the program ends, then exits with its
/// status (128 + N for a death by signal N, as runsc reports one). The program is then not pid
/// 1 itself, whose signals the kernel's rules for an init would change: a program that signals
/// itself dies as it would anywhere else.
const INIT_FLAG: &str = "--init";

/// Makes the loader the parent of a job's program in a sandbox that runs several jobs (under
/// the keeper, `gvisor.rs`), as [`INIT_FLAG`] does for the container's init: it passes the
/// signals it is sent (`runsc kill --pid`) on to the program, and stops and continues the
/// program's process group (its own, the program's first) rather than the whole container,
/// where the keeper lives. Once the program exited, it kills the job's other processes
/// ([`end_the_job`]): what a session's call leaves in the background ends with the call.
const JOB_FLAG: &str = "--job";

/// Makes the loader end a job's leftover processes and exit, as [`end_the_job`] does once a
/// job's program exited: the argv of [`end_job_argv`], a `runsc exec` of its own as the
/// job's uid, after a job whose loader did not end normally. The program shares its loader's
/// uid and may kill it (SIGKILL cannot be caught), and then the loader never ended what the
/// program left running (`gvisor.rs`, `RunscJobs::end_leftovers`). Exits 0 once no process
/// of the uid runs, 1 if one still does after [`END_JOB_WITHIN`].
const END_JOB_FLAG: &str = "--end-job";

/// The argv of the `runsc exec` that ends a job's leftover processes ([`END_JOB_FLAG`]).
pub(super) fn end_job_argv() -> Vec<String> {
    vec![
        LOADER.to_owned(),
        SECCOMP_EXEC_ARG.to_owned(),
        END_JOB_FLAG.to_owned(),
    ]
}

/// Makes the loader the keeper of a sandbox of several jobs, its container's own process (as
/// `nobody`, `bundle.rs`): it waits for end-of-file on its stdin (the lifeline) and reaps the
/// orphans the jobs leave, which gVisor gives to pid 1, as each ends (SIGCHLD through a
/// signalfd). A zombie counts against the process limit of the job that runs next: bash as
/// the keeper reaped only when its read woke, up to 5 s later, and the next job's forks
/// failed. An idle sandbox, where no process ends, wakes it every [`KEEPER_WAKE`] only.
const KEEP_FLAG: &str = "--keep";

/// The backstop wake of the keeper ([`KEEP_FLAG`]): a SIGCHLD lost is made up for then.
const KEEPER_WAKE: std::time::Duration = std::time::Duration::from_secs(5);

/// The argv of the keeper ([`KEEP_FLAG`]).
pub(super) fn keeper_argv() -> Vec<String> {
    vec![
        LOADER.to_owned(),
        SECCOMP_EXEC_ARG.to_owned(),
        KEEP_FLAG.to_owned(),
    ]
}

/// The keeper's loop ([`KEEP_FLAG`]): exits 0 when the lifeline reads end-of-file or fails.
fn keep() -> Result<Infallible, String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::unistd::Pid;
    use std::os::fd::AsFd;
    use warden_sys::process::{wait_child, Waited};
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    chld.thread_block()
        .map_err(|e| format!("blocking SIGCHLD: {e}"))?;
    let signals = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let stdin = std::io::stdin();
    let wake = PollTimeout::try_from(KEEPER_WAKE).unwrap_or(PollTimeout::MAX);
    let mut buf = [0u8; 64];
    loop {
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, wake) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("polling the lifeline: {e}")),
        }
        let lifeline = fds[0].revents().unwrap_or(PollFlags::empty());
        while let Ok(Some(_)) = signals.read_signal() {}
        while matches!(
            wait_child(Pid::from_raw(-1), true),
            Ok(status) if status != Waited::StillAlive
        ) {}
        if !lifeline.is_empty() {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => std::process::exit(0),
                Ok(_) | Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => std::process::exit(0),
            }
        }
    }
}

/// Whose parent the loader is: what a stop reaches.
#[derive(Clone, PartialEq, Eq)]
enum Parent {
    /// The container's init: every process of the container.
    Init,
    /// One job's: the program's process group, with the job's rlimits ([`encode_rlimits`]).
    Job(String),
}

fn encode(program: &[SockFilter]) -> String {
    program
        .iter()
        .map(|i| format!("{:04x}{:02x}{:02x}{:08x}", i.code, i.jt, i.jf, i.k))
        .collect()
}

fn decode(text: &str) -> Option<Vec<SockFilter>> {
    if !text.len().is_multiple_of(16) || !text.is_ascii() {
        return None;
    }
    (0..text.len() / 16)
        .map(|n| {
            let i = &text[n * 16..n * 16 + 16];
            Some(SockFilter {
                code: u16::from_str_radix(&i[..4], 16).ok()?,
                jt: u8::from_str_radix(&i[4..6], 16).ok()?,
                jf: u8::from_str_radix(&i[6..8], 16).ok()?,
                k: u32::from_str_radix(&i[8..], 16).ok()?,
            })
        })
        .collect()
}

/// The loader's entry point (`warden __seccomp-exec ...`, checked first in `main`): installs
/// the filter and execs the program, or fails with status 127 and never runs it unfiltered.
pub fn seccomp_exec_main() -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    let Err(message) = load_and_exec(args);
    eprintln!("warden: {message}");
    std::process::exit(127)
}

fn load_and_exec(args: Vec<OsString>) -> Result<Infallible, String> {
    if args.first().is_some_and(|a| a == INIT_FLAG) {
        return run_as_parent(Parent::Init, args[1..].to_vec());
    }
    if args.first().is_some_and(|a| a == KEEP_FLAG) {
        return keep();
    }
    if args.first().is_some_and(|a| a == END_JOB_FLAG) {
        end_the_job();
        std::process::exit(i32::from(others_of_this_uid_run()))
    }
    if args.first().is_some_and(|a| a == JOB_FLAG) {
        let rlimits = args
            .get(1)
            .and_then(|r| r.to_str())
            .ok_or("the rlimits argument is missing")?
            .to_owned();
        return run_as_parent(Parent::Job(rlimits), args[2..].to_vec());
    }
    let [filter, path, argv @ ..] = args.as_slice() else {
        return Err(format!(
            "usage: {SECCOMP_EXEC_ARG} <filter> <path> <argv0> <args>..."
        ));
    };
    let program = filter
        .to_str()
        .and_then(decode)
        .ok_or("the seccomp filter argument is not a filter")?;
    let c_string = |s: &OsString| {
        CString::new(s.clone().into_vec()).map_err(|_| format!("{s:?} contains a NUL byte"))
    };
    let path = c_string(path)?;
    let argv: Vec<CString> = argv.iter().map(c_string).collect::<Result<_, _>>()?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    warden_sys::seccomp::install_filter(&program)
        .map_err(|e| format!("installing the seccomp filter: {e}"))?;
    let e = nix::unistd::execv(&path, &argv).unwrap_err();
    Err(format!("execve {path:?}: {e}"))
}

/// [`INIT_FLAG`] and [`JOB_FLAG`]: forks the program's loader and waits for it (as pid 1, or
/// as the job's process), handling the signals warden sends it (`runsc kill`) as warden's own
/// init does: the ones it forwards go to the program's process group, SIGTSTP stops the other
/// processes (SIGSTOP: every one of the container's, or the program's process group) and
/// SIGCONT continues them. A signal the job's own processes send it is dropped
/// ([`sent_from_outside`]). As a job's process, it ends the job as the native init does once
/// the program exited ([`end_the_job`]).
fn run_as_parent(parent: Parent, args: Vec<OsString>) -> Result<Infallible, String> {
    use nix::sys::signal::{kill, SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::unistd::Pid;
    use warden_sys::process::{wait_child, ForkResult, Waited};
    let mut handled = SigSet::empty();
    for signal in std::iter::once(Signal::SIGCHLD).chain(crate::child::FORWARDED) {
        handled.add(signal);
    }
    // Blocked before the fork, so that none is lost in between; the program gets its mask
    // back before its exec.
    handled
        .thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;
    let child = match warden_sys::process::fork_single_threaded()
        .map_err(|e| format!("forking the program: {e}"))?
    {
        ForkResult::Child => {
            let own_group = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))
                .map_err(|e| format!("setpgid: {e}"))
                .and_then(|()| match &parent {
                    Parent::Init => Ok(()),
                    Parent::Job(rlimits) => set_rlimits(rlimits),
                });
            let unblocked =
                own_group.and_then(|()| handled.thread_unblock().map_err(|e| e.to_string()));
            let Err(message) = unblocked.and_then(|()| load_and_exec(args));
            eprintln!("warden: {message}");
            warden_sys::process::exit_immediately(127)
        }
        ForkResult::Parent { child } => child,
    };
    // Made after the fork, closed on the program's exec all the same.
    let signals = SignalFd::with_flags(&handled, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    // The program's process group, which the signals passed on reach (as a terminal's reach
    // its foreground group), and what a stop and a continue reach: the group, or as the
    // container's init every process of the container. The group is made on both sides of the
    // fork, so that it exists whichever runs first.
    let _ = nix::unistd::setpgid(child, child);
    let group = Pid::from_raw(-child.as_raw());
    let stopped = match parent {
        Parent::Init => Pid::from_raw(-1),
        Parent::Job(_) => group,
    };
    let exit = |code: i32| -> ! {
        if matches!(parent, Parent::Job(_)) {
            end_the_job();
        }
        std::process::exit(code)
    };
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for signals: {e}")),
        };
        let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if signal != Signal::SIGCHLD && !sent_from_outside(&info) {
            continue;
        }
        match signal {
            Signal::SIGCHLD => loop {
                // Not nix's `waitpid`: a real-time signal's end would be lost (`wait_child`).
                match wait_child(Pid::from_raw(-1), true) {
                    Ok(Waited::Exited(pid, code)) if pid == child => exit(code),
                    Ok(Waited::Signaled(pid, signal)) if pid == child => exit(128 + signal),
                    Ok(Waited::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            },
            Signal::SIGTSTP => {
                let _ = kill(stopped, Signal::SIGSTOP);
            }
            Signal::SIGCONT => {
                let _ = kill(stopped, Signal::SIGCONT);
            }
            signal => {
                if kill(group, signal).is_err() {
                    let _ = kill(child, signal);
                }
            }
        }
    }
}

/// Whether a signal the loader received (`info`, as signalfd reads it) came from outside the
/// sandbox (`runsc kill`, which gVisor delivers as a plain kill's `SI_USER` with no sender,
/// pid 0) rather than from the job's own processes, which share the loader's uid and could
/// otherwise stop their job's clock (SIGTSTP) or have the loader signal their whole group. A
/// process inside has a pid in the sandbox's only pid namespace, so its kill carries it; a
/// signal it queues with a siginfo of its making needs a negative `si_code` (as under Linux:
/// `child::sent_by_warden`). SIGSTOP and SIGKILL cannot be caught: see docs/threat-model.md.
fn sent_from_outside(info: &nix::sys::signalfd::siginfo) -> bool {
    info.ssi_code == libc::SI_USER && info.ssi_pid == 0
}

/// Ends a job once its program exited, as the native init does after each job: kills every
/// process the loader may signal but itself (kill(-1): the job's processes, which share its
/// uid, root of the container's user namespace without capabilities; not the keeper, pid 1
/// and `nobody`), again until none of them is left running, so that a process forked while
/// the kill went round is caught by the next round. The job's orphans are the keeper's
/// children (runsc 20221219 refuses `PR_SET_CHILD_SUBREAPER` with `EINVAL`), and bash reaps
/// them only now and then: kill(-1) succeeds on those zombies, so what is left is read in
/// `/proc`. Bounded: what the loader cannot end within [`END_JOB_WITHIN`] is left to
/// warden's watch, which kills the whole sandbox when the job's output stays open after its
/// process ended.
fn end_the_job() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use warden_sys::process::{wait_child, Waited};
    let deadline = std::time::Instant::now() + END_JOB_WITHIN;
    while kill(Pid::from_raw(-1), Signal::SIGKILL) != Err(nix::errno::Errno::ESRCH)
        && std::time::Instant::now() < deadline
    {
        while matches!(
            wait_child(Pid::from_raw(-1), true),
            Ok(status) if status != Waited::StillAlive
        ) {}
        if !others_of_this_uid_run() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Whether a process of this one's uid other than itself and pid 1 has not exited yet (is no
/// zombie), as gVisor's `/proc/<pid>/status` says; one that cannot be read is gone.
fn others_of_this_uid_run() -> bool {
    let own = std::process::id().to_string();
    let uid = nix::unistd::getuid().as_raw().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == own || name == "1" || !name.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            return false;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        };
        let exited = matches!(field("State:").as_deref(), Some("Z" | "X"));
        field("Uid:").as_deref() == Some(uid.as_str()) && !exited
    })
}

/// How long the loader keeps ending a job's processes (module documentation of `watch.rs`:
/// its grace after the job's process ended is longer).
const END_JOB_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_filter_survives_the_hex_round_trip_without_notifications() {
        let policy = SeccompPolicy::builtin().expect("builtin policy");
        let text = compile_for_jobs(&policy).expect("compiles");
        let program = decode(&text).expect("decodes");
        assert_eq!(encode(&program), text);
        assert!(program.len() > 60, "{} instructions", program.len());
        let user_notif = 0x7fc0_0000;
        assert!(
            program.iter().all(|i| i.k != user_notif),
            "no notifications"
        );
        assert_eq!(decode("12"), None);
        assert_eq!(decode("zzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn a_jobs_argv_starts_with_the_loader() {
        let rlimits = [
            (Resource::RLIMIT_NOFILE, 77, 78),
            (Resource::RLIMIT_CORE, 0, 0),
        ];
        let argv = job_argv(
            "00",
            &rlimits,
            &["/bin/sh".into(), "-c".into(), "true".into()],
        );
        let encoded = format!(
            "{}=77/78,{}=0/0",
            Resource::RLIMIT_NOFILE as i64,
            Resource::RLIMIT_CORE as i64
        );
        assert_eq!(
            argv,
            [
                LOADER,
                SECCOMP_EXEC_ARG,
                JOB_FLAG,
                &encoded,
                "00",
                "/bin/sh",
                "/bin/sh",
                "-c",
                "true"
            ]
        );
    }
}
