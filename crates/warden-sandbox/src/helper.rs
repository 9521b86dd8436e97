//! The helper: a freshly exec'd, single-threaded copy of the warden binary that builds one
//! sandbox. It reads its request from fd 3, clones the init into new namespaces, moves it into
//! the cgroup, writes its id maps (which needs the host privileges the init no longer has),
//! releases it, and waits for it with a backstop timer. Reports go to fd 4.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use warden_sys::process::{
    clone_into_namespaces, exit_immediately, fork_single_threaded, inherited_fd, ForkResult,
};

use crate::cgroup::CgroupJoin;
use crate::child::{self, SetupError};
use crate::plan::SandboxPlan;
use crate::{idmap, seccomp};

/// The argument that makes the warden binary act as the helper.
pub const HELPER_ARG: &str = "__sandbox-helper";

/// Descriptor of the request pipe in the helper.
pub(crate) const REQUEST_FD: i32 = 3;
/// Descriptor of the report pipe in the helper.
pub(crate) const REPORT_FD: i32 = 4;
/// Descriptor of the artifact pipe in the helper (and the init).
pub(crate) const ARTIFACT_FD: i32 = 5;

/// Largest request accepted (plan plus files).
const MAX_REQUEST: u64 = 1 << 30;

/// What the parent asks the helper to do: the plan plus the resources reserved for it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    pub(crate) plan: SandboxPlan,
    /// Host uid/gid that the sandbox's root maps to.
    pub(crate) host_id: u32,
    /// How the init gets into its cgroup.
    pub(crate) cgroup: CgroupJoin,
    /// After this long the helper kills the init itself, should the parent be gone.
    pub(crate) backstop: Duration,
    /// What the helper builds.
    pub(crate) backend: Backend,
}

/// What the helper builds for the plan.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Backend {
    /// The native sandbox: namespaces, a private root, seccomp.
    Namespaces,
    /// Limits only (`trusted.rs`): no namespaces; the init and the program run as the run's
    /// uid, in `workdir` on the host.
    Trusted { workdir: PathBuf },
    /// Join the cgroup and exec this command: another backend's runtime, such as `runsc`,
    /// which builds its own sandbox.
    Exec(Vec<String>),
}

/// The namespaces of every sandbox. The cgroup namespace is entered by the init itself once
/// it sits in its cgroup, so that the cgroup becomes its root.
fn namespaces() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
}

/// Entry point of the helper process; never returns.
pub fn helper_main() -> ! {
    let (Some(request_fd), Some(report)) = (inherited_fd(REQUEST_FD), inherited_fd(REPORT_FD))
    else {
        // Started by hand, not by a warden parent: there is no one to report to.
        exit_immediately(2)
    };
    let artifacts = inherited_fd(ARTIFACT_FD);
    let outcome = read_request(request_fd).and_then(|request| run(&request, &report, artifacts));
    end(outcome, &report)
}

/// Entry point of a helper forked from a single-threaded parent without exec (`parent.rs`):
/// the request is already in memory, and the parent has put the report and artifact pipes on
/// descriptors 4 and 5; never returns.
pub(crate) fn forked_main(request: &HelperRequest) -> ! {
    let Some(report) = inherited_fd(REPORT_FD) else {
        exit_immediately(2)
    };
    let artifacts = inherited_fd(ARTIFACT_FD);
    end(run(request, &report, artifacts), &report)
}

/// Exits with the helper's status, after reporting a failure.
fn end(outcome: Result<i32, SetupError>, report: &OwnedFd) -> ! {
    match outcome {
        Ok(code) => exit_immediately(code),
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(1)
        }
    }
}

fn run(
    request: &HelperRequest,
    report: &OwnedFd,
    artifacts: Option<OwnedFd>,
) -> Result<i32, SetupError> {
    match &request.backend {
        Backend::Exec(argv) => exec_in_cgroup(&request.cgroup, argv, report),
        Backend::Namespaces => {
            let filter = seccomp::compile(&request.plan.seccomp)
                .map_err(|e| SetupError::new("compile seccomp filter", e))?;
            let clone = || {
                clone_into_namespaces(namespaces())
                    .map_err(|e| SetupError::errno("clone into namespaces", e))
            };
            let init = |channels| child::run_init(&request.plan, &filter, channels);
            start_init(request, report, artifacts, clone, init)
        }
        // The trusted backend (`trusted.rs`): the init is forked without new namespaces.
        Backend::Trusted { workdir } => {
            let fork = || fork_single_threaded().map_err(|e| SetupError::errno("fork the init", e));
            let init = |channels| {
                child::run_trusted_init(&request.plan, workdir, request.host_id, channels)
            };
            start_init(request, report, artifacts, fork, init)
        }
    }
}

/// Creates the init with `create` (inside the run's cgroup on v1) and runs `init` in it, which
/// never returns. In the helper: puts the init in the cgroup (v2), writes its id maps (when it
/// has a user namespace), releases it and waits for it.
fn start_init(
    request: &HelperRequest,
    report: &OwnedFd,
    artifacts: Option<OwnedFd>,
    create: impl FnOnce() -> Result<ForkResult, SetupError>,
    init: impl FnOnce(child::InitChannels),
) -> Result<i32, SetupError> {
    let (sync_read, sync_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::errno("pipe", e))?;
    if let CgroupJoin::MoveHelper { enter, .. } = &request.cgroup {
        move_self(enter)?;
    }
    match create()? {
        ForkResult::Child => {
            drop(sync_write);
            let channels = child::InitChannels {
                sync: sync_read,
                report: report.try_clone().unwrap_or_else(|_| exit_immediately(1)),
                artifacts,
            };
            init(channels);
            // `init` never returns: it execs the program or exits.
            exit_immediately(1)
        }
        ForkResult::Parent { child } => {
            drop(sync_read);
            // Only the init writes artifacts; the parent must see end-of-file when it is gone.
            drop(artifacts);
            let id_maps = matches!(request.backend, Backend::Namespaces);
            release_child(request, child, sync_write, id_maps)?;
            detach_stdio();
            wait_with_backstop(child, request.backstop);
            Ok(0)
        }
    }
}

/// Reads `u64 length (LE) | JSON | file contents in plan order`.
fn read_request(fd: OwnedFd) -> Result<HelperRequest, SetupError> {
    let mut input = fs::File::from(fd);
    let mut len = [0u8; 8];
    input
        .read_exact(&mut len)
        .map_err(|e| SetupError::new("read request", e))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(SetupError::new(
            "read request",
            format!("{len} bytes is too large"),
        ));
    }
    let mut json = vec![0u8; usize::try_from(len).map_err(|e| SetupError::new("read request", e))?];
    input
        .read_exact(&mut json)
        .map_err(|e| SetupError::new("read request", e))?;
    let mut request: HelperRequest =
        serde_json::from_slice(&json).map_err(|e| SetupError::new("parse request", e))?;
    for file in &mut request.plan.files {
        let mut contents = Vec::new();
        (&mut input)
            .take(file.len)
            .read_to_end(&mut contents)
            .map_err(|e| SetupError::new("read workspace file", e))?;
        if contents.len() as u64 != file.len {
            return Err(SetupError::new(
                "read workspace file",
                "the request ended early",
            ));
        }
        file.contents = contents;
    }
    Ok(request)
}

/// Puts the init into its cgroup and writes its id maps (when it has a user namespace), then
/// lets it go.
fn release_child(
    request: &HelperRequest,
    child: Pid,
    sync: OwnedFd,
    id_maps: bool,
) -> Result<(), SetupError> {
    match &request.cgroup {
        CgroupJoin::MoveHelper { leave, .. } => move_self(leave)?,
        CgroupJoin::WriteInitPid { procs } => {
            let pid = child.to_string();
            for file in procs {
                write_cgroup_file(file, &pid)?;
            }
        }
    }
    if id_maps {
        idmap::write_maps(child, request.host_id)
            .map_err(|e| SetupError::new("write id maps", e))?;
    }
    nix::unistd::write(&sync, &[1]).map_err(|e| SetupError::errno("release the init", e))?;
    Ok(())
}

/// Joins the cgroup, reports the start and becomes `argv` (with an empty environment): the
/// other backend's runtime then lives, with all its processes, inside the run's cgroup.
fn exec_in_cgroup(join: &CgroupJoin, argv: &[String], report: &OwnedFd) -> Result<i32, SetupError> {
    match join {
        CgroupJoin::MoveHelper { enter, .. } => move_self(enter)?,
        CgroupJoin::WriteInitPid { procs } => {
            let pid = std::process::id().to_string();
            for file in procs {
                write_cgroup_file(file, &pid)?;
            }
        }
    }
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| SetupError::new("prepare argv", e));
    let argv: Vec<std::ffi::CString> = argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let program = argv
        .first()
        .ok_or_else(|| SetupError::new("prepare argv", "empty command"))?;
    crate::report::Report::Started.send(report.as_fd());
    let Err(e) = nix::unistd::execve::<std::ffi::CString, std::ffi::CString>(program, &argv, &[]);
    Err(SetupError::sys(
        "execve",
        Path::new(&program.to_string_lossy().into_owned()),
        e,
    ))
}

/// Moves this (single-threaded) process into the cgroups whose `tasks` files are given.
fn move_self(tasks: &[PathBuf]) -> Result<(), SetupError> {
    for file in tasks {
        write_cgroup_file(file, "0")?;
    }
    Ok(())
}

fn write_cgroup_file(path: &Path, value: &str) -> Result<(), SetupError> {
    fs::write(path, value).map_err(|e| SetupError::io("join cgroup", path, e))
}

/// The helper keeps no copy of the program's stdio, so the parent sees end-of-file as soon as
/// the sandbox's processes are gone.
fn detach_stdio() {
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            // The new descriptors must stay open: forget their owners.
            if let Ok(owned) = warden_sys::process::dup_onto(null.as_fd(), fd, false) {
                std::mem::forget(owned);
            }
        }
    }
}

/// Waits for the init; kills it if it outlives `backstop`.
fn wait_with_backstop(child: Pid, backstop: Duration) {
    if let Ok(pidfd) = warden_sys::process::pidfd_open(child) {
        let deadline = Instant::now() + backstop;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = warden_sys::process::pidfd_send_signal(&pidfd, Signal::SIGKILL);
                break;
            }
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                _ => break,
            }
        }
    }
    let _ = waitpid(child, None);
}
