//! The standby payload: the next job's process, forked by the init and confined (signals,
//! session, working directory, capabilities, no_new_privs, seccomp filter) while the sandbox
//! waits for that job, so that a job sent to a ready sandbox only has its rlimits lowered (by
//! the init, on the standby's pid), its descriptors placed and its program exec'd
//! (docs/sandbox-setup.md, Standby).
//!
//! The init forks one when it has reported `Ready` (a new sandbox, or one just reset) and no
//! message is waiting; a job already waiting is run the ordinary way (`payload::exec`). The
//! standby holds nothing of the init's but its end of the launch socket (and, until its filter
//! is installed, of the listener's handoff). It is the job's payload: the same pid, the same
//! supervision, the same end; a reset or the sandbox's end kills an unused one with the rest.
//! A standby that died before its job (a setup step failed) makes the init fork the payload
//! the ordinary way, which reports the failure.
//!
//! After its filter the standby calls only `recvmsg`, `read`, `fcntl`, `dup2`/`dup3`, `close`,
//! `close_range`, memory calls and `execve`, none of which a seccomp policy can name
//! (`seccomp.rs`'s table), so no policy can stop a job that a forked payload would run.
//!
//! The launch on the wire: one byte carrying stdin, stdout, stderr and the report pipe
//! (`SCM_RIGHTS`), then `u64 length (LE) | JSON of` [`Launch`].

use std::io::Read;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use warden_sys::process::{exit_immediately, fork_single_threaded, ForkResult};

use crate::child::{Confinement, SetupError};
use crate::control::{self, JobFds};
use crate::payload::{self, PayloadSetup};
use crate::plan::Job;
use crate::rlimits;

/// Largest launch accepted: execve refuses far smaller command lines and environments.
const MAX_LAUNCH: u64 = 64 << 20;
/// The byte that carries a launch's descriptors.
const LAUNCH_MARK: u8 = b'G';
/// Descriptor number of the launch socket in the standby, before its job.
const LAUNCH_FD: i32 = 3;
/// Descriptor number of the listener's handoff in the standby, until its filter is installed.
const HANDOFF_FD: i32 = 4;

/// What the standby needs of its job besides the descriptors; the init has written the files
/// and lowered its rlimits.
#[derive(Debug, Serialize, Deserialize)]
struct Launch {
    argv: Vec<String>,
    env: Vec<(String, String)>,
}

/// A standby, as the init holds it.
pub(crate) struct Standby {
    /// Its pid: the job's payload once launched.
    pub(crate) pid: Pid,
    /// The init's end of the launch socket.
    launch: OwnedFd,
    /// The init's end of the socket the standby hands its seccomp listener through, when its
    /// filter notifies calls.
    pub(crate) handoff: Option<OwnedFd>,
}

impl Standby {
    /// Forks a standby, unless a message is already waiting on `control` (a job sent while
    /// the sandbox was being built runs at once, the ordinary way) or the confinement is not
    /// the native sandbox's. A failure to fork leaves the next job to the ordinary way too.
    pub(crate) fn ahead(
        setup: &PayloadSetup<'_>,
        workdir: &Path,
        control: &OwnedFd,
    ) -> Option<Self> {
        let Confinement::Sandbox(_) = setup.confinement else {
            return None;
        };
        let mut waiting = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        if poll(&mut waiting, PollTimeout::ZERO) != Ok(0) {
            return None;
        }
        let handoff = crate::child::listener_handoff(setup.confinement).ok()?;
        let (init_end, standby_end) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .ok()?;
        match fork_single_threaded().ok()? {
            ForkResult::Child => {
                crate::name_process(c"warden-payload");
                wait_for_job(
                    setup,
                    workdir,
                    handoff.map(|(_, standby_handoff)| standby_handoff),
                    standby_end,
                )
            }
            ForkResult::Parent { child } => Some(Self {
                pid: child,
                launch: init_end,
                handoff: handoff.map(|(init_handoff, _)| init_handoff),
            }),
        }
    }

    /// Lowers the standby's rlimits to `job`'s, known only now (`prlimit` on its pid, before
    /// the standby runs anything of the job), and sends it the job, whose files the init has
    /// written, and its descriptors. An error means the standby is gone or broken: the caller
    /// kills it and forks the payload the ordinary way.
    pub(crate) fn launch(&self, job: &Job, fds: &JobFds, report: &OwnedFd) -> std::io::Result<()> {
        rlimits::lower(self.pid, &job.limits)
            .map_err(|e| std::io::Error::other(format!("{}: {}", e.step, e.detail)))?;
        let attached = [
            fds.stdin.as_fd(),
            fds.stdout.as_fd(),
            fds.stderr.as_fd(),
            report.as_fd(),
        ];
        warden_sys::fdpass::send_with_fds(self.launch.as_fd(), &[LAUNCH_MARK], &attached)?;
        let launch = Launch {
            argv: job.argv.clone(),
            env: job.env.clone(),
        };
        control::write_json(self.launch.as_fd(), &launch)
    }
}

/// Runs in the standby: keeps only its sockets, confines itself as a payload does, then
/// waits for the job and execs it; never returns. Before the job it has no report pipe, so a
/// failure exits quietly (the init then runs the job the ordinary way); after, a failure is
/// reported as a payload's.
fn wait_for_job(
    setup: &PayloadSetup<'_>,
    workdir: &Path,
    handoff: Option<OwnedFd>,
    launch: OwnedFd,
) -> ! {
    let mut targets = vec![(launch.as_fd(), LAUNCH_FD)];
    if let Some(fd) = &handoff {
        targets.push((fd.as_fd(), HANDOFF_FD));
    }
    if warden_sys::process::arrange_fds(&targets).is_err() {
        exit_immediately(127)
    }
    // The original numbers were closed by arrange_fds: forget their owners without closing
    // again.
    let _ = launch.into_raw_fd();
    let handoff = handoff.and_then(|fd| {
        let _ = fd.into_raw_fd();
        warden_sys::process::inherited_fd(HANDOFF_FD)
    });
    let Some(launch) = warden_sys::process::inherited_fd(LAUNCH_FD) else {
        exit_immediately(127)
    };
    if payload::confine(workdir, setup, None, handoff).is_err() {
        exit_immediately(127)
    }
    let Some((fds, launch)) = receive(launch) else {
        exit_immediately(127)
    };
    let [stdin, stdout, stderr, report] = fds;
    let placed = warden_sys::process::arrange_fds(&[
        (stdin.as_fd(), 0),
        (stdout.as_fd(), 1),
        (stderr.as_fd(), 2),
        (report.as_fd(), payload::REPORT_FD),
    ]);
    for fd in [stdin, stdout, stderr, report] {
        let _ = fd.into_raw_fd();
    }
    let report = placed
        .ok()
        .and_then(|()| warden_sys::process::inherited_fd(payload::REPORT_FD))
        .filter(|fd| fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_ok());
    let Some(report) = report else {
        exit_immediately(127)
    };
    let outcome = launch.and_then(|launch| {
        let (argv, env) = payload::c_strings(&launch.argv, &launch.env)?;
        payload::replace_process(&argv, &env)
    });
    match outcome {
        Ok(never) => match never {},
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(127)
        }
    }
}

/// Reads the launch: its four descriptors, and the launch itself or why it is unreadable
/// (reported once the report pipe is in place). None when the init sent no launch (it ended).
fn receive(launch: OwnedFd) -> Option<([OwnedFd; 4], Result<Launch, SetupError>)> {
    let mut mark = [0u8; 1];
    let (n, fds) = warden_sys::fdpass::recv_with_fds(launch.as_fd(), &mut mark).ok()?;
    if n == 0 || mark[0] != LAUNCH_MARK {
        return None;
    }
    let fds: [OwnedFd; 4] = fds.try_into().ok()?;
    Some((fds, read_launch(&mut std::fs::File::from(launch))))
}

/// Reads the launch's `u64 length (LE) | JSON`.
fn read_launch(input: &mut impl Read) -> Result<Launch, SetupError> {
    control::read_json(input, MAX_LAUNCH, "launch").map(|(launch, _)| launch)
}
