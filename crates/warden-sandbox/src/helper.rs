//! The helper: a freshly exec'd (or, from a single-threaded caller, forked) single-threaded copy
//! of the warden binary that builds one sandbox. It reads its request from fd 3, clones the
//! init into new namespaces, moves it into the cgroup, writes its id maps and makes its
//! volumes' id-mapped mounts (both need the host privileges the init no longer has,
//! `volumes.rs`), releases it, tells the parent its pid, and waits for it. Reports go to fd 4;
//! the init inherits the control channel on fd 5. Fd 6 is the lifeline: the parent holds its
//! other end for as long as the sandbox lives, so when the parent drops the sandbox or dies,
//! the helper kills the init.

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use warden_sys::process::{
    clone_into_namespaces, exit_immediately, fork_single_threaded, inherited_fd, ForkResult,
};

use crate::cgroup::CgroupJoin;
use crate::child::{self, SetupError};
use crate::plan::SandboxSpec;
use crate::{idmap, seccomp, volumes};

/// The argument that makes the warden binary act as the helper.
pub const HELPER_ARG: &str = "__sandbox-helper";

/// Descriptor of the request pipe in the helper.
pub(crate) const REQUEST_FD: i32 = 3;
/// Descriptor of the report pipe in the helper.
pub(crate) const REPORT_FD: i32 = 4;
/// Descriptor of the init's end of the control channel in the helper (and the init).
pub(crate) const CONTROL_FD: i32 = 5;
/// Descriptor of the lifeline's read end in the helper.
pub(crate) const LIFELINE_FD: i32 = 6;

/// Largest request accepted.
const MAX_REQUEST: u64 = 64 << 20;

/// What the parent asks the helper to do: the sandbox plus the resources reserved for it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HelperRequest {
    pub(crate) spec: SandboxSpec,
    /// Host uid/gid that the sandbox's root maps to.
    pub(crate) host_id: u32,
    /// How the init gets into its cgroup.
    pub(crate) cgroup: CgroupJoin,
    /// The cgroup's cpu counter (`Cgroup::cpu_counter`), opened for the init.
    #[serde(default)]
    pub(crate) cpu_counter: Option<PathBuf>,
    /// What the helper builds.
    pub(crate) backend: Backend,
}

/// What the helper builds for the plan.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Backend {
    /// The native sandbox: namespaces, a private root, seccomp.
    Namespaces,
    /// Limits only (`trusted.rs`): no namespaces; the init and the program run as the run's
    /// uid, in `workdir` on the host. `slot_file` holds the run's uid slot, marked there when
    /// the helper cannot remove what the uid left, once warden died (`trusted/leftovers.rs`).
    Trusted {
        workdir: PathBuf,
        slot_file: PathBuf,
    },
    /// Join the cgroup and run this command, with the lifeline as its stdin: another
    /// backend's runtime, such as `runsc`, which builds its own sandbox (a gVisor keeper's,
    /// whose bundle is `bundle`). The helper stays as its parent outside the cgroup, and when
    /// the runtime ends after the parent died, kills what is left in the cgroup and removes
    /// the bundle (and runsc's files of its container) and the cgroup, as the parent would
    /// have.
    Exec { argv: Vec<String>, bundle: PathBuf },
    /// Join the cgroup and hold it until the lifeline is cut, then kill whatever else is still
    /// in it: a one-job gVisor sandbox, whose runtime the parent starts as the job's own
    /// process (`gvisor.rs`), so that a warden that dies mid-job leaves nothing running. When
    /// the parent is dead, the holder also removes the sandbox's gVisor bundle (and runsc's
    /// files of its container), as the parent would have.
    Hold { bundle: PathBuf },
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
    let ends = HelperEnds::inherited();
    let outcome = read_request(request_fd).and_then(|request| run(&request, &report, ends));
    end(outcome, &report)
}

/// Entry point of a helper forked from a single-threaded parent without exec (`parent.rs`):
/// the request is already in memory, and the parent has put the report, control and lifeline
/// descriptors where an exec'd helper has them; never returns.
pub(crate) fn forked_main(request: &HelperRequest) -> ! {
    let Some(report) = inherited_fd(REPORT_FD) else {
        exit_immediately(2)
    };
    end(run(request, &report, HelperEnds::inherited()), &report)
}

/// The descriptors the helper inherits besides the request and the report.
struct HelperEnds {
    /// The init's end of the control channel (absent for `Backend::Exec` and `Backend::Hold`).
    control: Option<OwnedFd>,
    /// Closed (end-of-file) when the parent lets the sandbox go.
    lifeline: Option<OwnedFd>,
}

impl HelperEnds {
    fn inherited() -> Self {
        Self {
            control: inherited_fd(CONTROL_FD),
            lifeline: inherited_fd(LIFELINE_FD),
        }
    }
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

fn run(request: &HelperRequest, report: &OwnedFd, ends: HelperEnds) -> Result<i32, SetupError> {
    crate::name_process(c"warden-helper");
    match &request.backend {
        Backend::Exec { argv, bundle } => {
            run_in_cgroup(&request.cgroup, argv, bundle, report, ends.lifeline)
        }
        Backend::Hold { bundle } => hold_cgroup(&request.cgroup, bundle, report, ends.lifeline),
        Backend::Namespaces => {
            let filter = seccomp::compile(&request.spec.seccomp)
                .map_err(|e| SetupError::new("compile seccomp filter", e))?;
            let clone = || clone_as(request.host_id);
            let init = |channels| child::run_init(&request.spec, &filter, channels);
            start_init(request, report, ends, clone, init)
        }
        // The trusted backend (`trusted.rs`): the init is forked without new namespaces.
        Backend::Trusted { workdir, .. } => {
            // With no pid namespace whose end takes the run's processes along, what the init
            // leaves when it dies (the program can kill it: it shares the program's uid) would
            // be the host's pid 1's to reap; they are this helper's instead ([`end_trusted`]).
            nix::sys::prctl::set_child_subreaper(true)
                .map_err(|e| SetupError::errno("become a child subreaper", e))?;
            // Its own policy, not the spec's: trusted mode refuses only what would lock the
            // uid's keyrings (`seccomp/trusted.rs`).
            let compile = |e: &dyn std::fmt::Display| {
                SetupError::new("compile the trusted seccomp filter", e)
            };
            let policy = warden_core::SeccompPolicy::builtin_trusted().map_err(|e| compile(&e))?;
            let filter = seccomp::compile_trusted(&policy).map_err(|e| compile(&e))?;
            let fork = || fork_single_threaded().map_err(|e| SetupError::errno("fork the init", e));
            let init =
                |channels| child::run_trusted_init(workdir, request.host_id, &filter, channels);
            start_init(request, report, ends, fork, init)
        }
    }
}

/// Clones the init into its namespaces with `host_id` as the effective uid, so that the new
/// user namespace is owned by the run's uid rather than host root: the kernel charges per-user
/// counters (inotify instances and watches, message-queue bytes, queued signals) of everything
/// inside to the namespace's owner, and a namespace of root's would share root's allowance
/// with every other run and the host's own services. The helper keeps root as its real and
/// saved uid, and takes it back as soon as the clone returns (the init's id maps, the cgroup
/// need it).
fn clone_as(host_id: u32) -> Result<ForkResult, SetupError> {
    let run_uid = nix::unistd::Uid::from_raw(host_id);
    nix::unistd::seteuid(run_uid).map_err(|e| SetupError::errno("seteuid to the run's uid", e))?;
    let cloned = clone_into_namespaces(namespaces());
    if !matches!(cloned, Ok(ForkResult::Child)) {
        nix::unistd::seteuid(nix::unistd::Uid::from_raw(0))
            .map_err(|e| SetupError::errno("seteuid back to root", e))?;
    }
    cloned.map_err(|e| SetupError::errno("clone into namespaces", e))
}

/// Creates the init with `create` (inside the run's cgroup on v1) and runs `init` in it, which
/// never returns. In the helper: puts the init in the cgroup (v2), writes its id maps (when it
/// has a user namespace), releases it, reports its pid and waits for it, or for the lifeline to
/// be cut.
fn start_init(
    request: &HelperRequest,
    report: &OwnedFd,
    ends: HelperEnds,
    create: impl FnOnce() -> Result<ForkResult, SetupError>,
    init: impl FnOnce(child::InitChannels),
) -> Result<i32, SetupError> {
    let control = ends
        .control
        .ok_or_else(|| SetupError::new("start the init", "no control channel"))?;
    // A socket rather than a pipe: the volumes' mounts travel to the init on it.
    let (sync_write, sync_read) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SetupError::errno("socketpair", e))?;
    // Read-only and close-on-exec; the init reads it once and closes it before any payload
    // exists. Without it, a first job's count includes the build, as it did before.
    let cpu_counter = request
        .cpu_counter
        .as_deref()
        .and_then(|path| fs::File::open(path).ok())
        .map(OwnedFd::from);
    if let CgroupJoin::MoveHelper { enter, .. } = &request.cgroup {
        move_self(enter)?;
    }
    match create()? {
        ForkResult::Child => {
            drop(sync_write);
            drop(ends.lifeline);
            let channels = child::InitChannels {
                sync: sync_read,
                report: report.try_clone().unwrap_or_else(|_| exit_immediately(1)),
                control,
                cpu_counter,
            };
            init(channels);
            // `init` never returns: it serves jobs and exits.
            exit_immediately(1)
        }
        ForkResult::Parent { child } => {
            drop((sync_read, cpu_counter));
            // Only the init talks on the control channel.
            drop(control);
            let id_maps = matches!(request.backend, Backend::Namespaces);
            release_child(request, child, sync_write, id_maps)?;
            crate::report::Report::Init {
                pid: child.as_raw(),
            }
            .send(report.as_fd());
            detach_stdio();
            wait_for_init(child, ends.lifeline);
            let cgroups = request.cgroup.directories();
            if let Backend::Trusted { .. } = &request.backend {
                end_trusted(&cgroups);
            }
            if crate::stale::orphaned(&cgroups) {
                // Warden died without letting the sandbox go. A trusted run's init has no pid
                // namespace whose end would take its processes along: what is left in the
                // cgroup is killed here (above, for a trusted run), and the run's host
                // directory removed, as the parent would have.
                kill_the_rest(&cgroups);
                if let Backend::Trusted { workdir, slot_file } = &request.backend {
                    if let Some(dir) = workdir.parent() {
                        let _ = crate::trusted::remove_run_dir(dir);
                    }
                    let shared = crate::trusted::leftovers::shared_dirs();
                    let dirs: Vec<&Path> = shared.iter().map(|d| d.as_path()).collect();
                    let uid = request.host_id;
                    let _ = crate::trusted::leftovers::remove_or_pass_over(&dirs, uid, slot_file);
                }
            }
            crate::stale::remove_orphaned(&cgroups);
            Ok(0)
        }
    }
}

/// Reads `u64 length (LE) | JSON`.
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
    serde_json::from_slice(&json).map_err(|e| SetupError::new("parse request", e))
}

/// Puts the init into its cgroup, writes its id maps and sends it its volumes' mounts (when it
/// has a user namespace), then lets it go.
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
    let mut mounts = Vec::new();
    if id_maps {
        idmap::write_maps(child, request.host_id)
            .map_err(|e| SetupError::new("write id maps", e))?;
        // The id mapping of a volume is the init's user namespace, so its maps come first.
        mounts = volumes::make_mounts(&request.spec.volumes, child)?;
    }
    volumes::release(&sync, mounts)
}

/// Joins the cgroup, reports the start and forks `argv` (with an empty environment, the
/// lifeline as its stdin): the other backend's runtime then lives, with all its processes,
/// inside the run's cgroup. This process leaves the cgroup and waits for it; once it ends, if
/// the parent is dead, kills what is left in the cgroup and removes the bundle and the cgroup.
fn run_in_cgroup(
    join: &CgroupJoin,
    argv: &[String],
    bundle: &Path,
    report: &OwnedFd,
    lifeline: Option<OwnedFd>,
) -> Result<i32, SetupError> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| SetupError::new("prepare argv", e));
    let argv: Vec<std::ffi::CString> = argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let program = argv
        .first()
        .ok_or_else(|| SetupError::new("prepare argv", "empty command"))?
        .clone();
    join_self(join)?;
    crate::report::Report::Ready {
        cgroup_cpu_ns: None,
    }
    .send(report.as_fd());
    match fork_single_threaded().map_err(|e| SetupError::errno("fork the runtime", e))? {
        ForkResult::Child => {
            // The runtime's stdin is the lifeline: it ends when the parent lets the sandbox go.
            if let Some(lifeline) = &lifeline {
                match warden_sys::process::dup_onto(lifeline.as_fd(), 0, false) {
                    Ok(owned) => std::mem::forget(owned),
                    Err(e) => end(Err(SetupError::errno("place the lifeline", e)), report),
                }
            }
            let Err(e) =
                nix::unistd::execve::<std::ffi::CString, std::ffi::CString>(&program, &argv, &[]);
            let path = program.to_string_lossy().into_owned();
            end(Err(SetupError::sys("execve", Path::new(&path), e)), report)
        }
        ForkResult::Parent { child } => {
            // Only the runtime holds the lifeline, whose end it reads.
            drop(lifeline);
            detach_stdio();
            let _ = leave(join);
            let _ = waitpid(child, None);
            let cgroups = join.directories();
            if crate::stale::orphaned(&cgroups) {
                kill_the_rest(&cgroups);
                crate::gvisor::remove_container(bundle);
            }
            crate::stale::remove_orphaned(&cgroups);
            Ok(0)
        }
    }
}

/// Moves this process out of the run's cgroup, into the hierarchies' parents.
fn leave(join: &CgroupJoin) -> Result<(), SetupError> {
    match join {
        CgroupJoin::MoveHelper { leave, .. } => move_self(leave),
        CgroupJoin::WriteInitPid { procs } => {
            let me = std::process::id().to_string();
            procs
                .iter()
                .filter_map(|file| file.parent()?.parent().map(|p| p.join("cgroup.procs")))
                .try_for_each(|file| write_cgroup_file(&file, &me))
        }
    }
}

/// Moves this (single-threaded) process into the run's cgroup.
fn join_self(join: &CgroupJoin) -> Result<(), SetupError> {
    match join {
        CgroupJoin::MoveHelper { enter, .. } => move_self(enter),
        CgroupJoin::WriteInitPid { procs } => {
            let pid = std::process::id().to_string();
            procs
                .iter()
                .try_for_each(|file| write_cgroup_file(file, &pid))
        }
    }
}

/// `Backend::Hold`: joins the cgroup, reports the start, and waits for the lifeline to be cut.
/// By then the job's process (`runsc run`) has normally ended; whatever is left in the cgroup
/// (a job running on when the parent died) is killed until none is left ([`kill_the_rest`]).
/// Then it leaves the cgroup, and if the parent is dead, removes
/// the bundle, runsc's files and the cgroup.
fn hold_cgroup(
    join: &CgroupJoin,
    bundle: &Path,
    report: &OwnedFd,
    lifeline: Option<OwnedFd>,
) -> Result<i32, SetupError> {
    join_self(join)?;
    crate::report::Report::Ready {
        cgroup_cpu_ns: None,
    }
    .send(report.as_fd());
    detach_stdio();
    if let Some(lifeline) = &lifeline {
        loop {
            let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) | Ok(_) => break,
            }
        }
    }
    kill_the_rest(&join.directories());
    // Out of the cgroup, so that it can be removed: by the parent, or here when the parent is
    // dead (as the helper of a native sandbox does).
    let _ = leave(join);
    if crate::stale::orphaned(&join.directories()) {
        crate::gvisor::remove_container(bundle);
    }
    crate::stale::remove_orphaned(&join.directories());
    Ok(0)
}

/// Kills every process in the cgroups `dirs` but this one, until none is left (new ones may
/// be forked meanwhile), for at most [`KILL_ROUNDS`] rounds.
fn kill_the_rest(dirs: &[PathBuf]) {
    let me = std::process::id().to_string();
    for _ in 0..KILL_ROUNDS {
        let others: Vec<i32> = dirs
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter(|pid| *pid != me)
                    .filter_map(|pid| pid.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        if others.is_empty() {
            break;
        }
        for pid in others {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How many times [`kill_the_rest`] looks for processes left in a cgroup (10 ms apart).
const KILL_ROUNDS: u32 = 200;

/// After a trusted run's init has ended: the run is over, as a sandbox is when its pid
/// namespace's init ends, so what is left in its cgroups is killed, and reaped here (this
/// helper is their subreaper), rather than left as zombies for the host's pid 1 to reap when
/// it gets to it, or never. The init ends with every process of its own killed and reaped when
/// it is let go; what is left is there only when the program killed the init, or the sandbox
/// was dropped with a job running.
fn end_trusted(cgroups: &[PathBuf]) {
    kill_the_rest(cgroups);
    reap_orphans();
}

/// Reaps this process's children until it has none. Each is dead or dying
/// ([`kill_the_rest`]): one that has left its cgroup's list may take a moment more to be a
/// zombie, so it is waited for, for at most [`REAP_WAIT`].
fn reap_orphans() {
    let deadline = std::time::Instant::now() + REAP_WAIT;
    loop {
        match warden_sys::process::wait_child(Pid::from_raw(-1), true) {
            Ok(warden_sys::process::Waited::StillAlive) => {
                if std::time::Instant::now() > deadline {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// How long [`reap_orphans`] waits for a killed child to end.
const REAP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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

/// Waits for the init to exit; kills it when the lifeline is cut first (the parent dropped the
/// sandbox, or died).
fn wait_for_init(child: Pid, lifeline: Option<OwnedFd>) {
    if let Ok(pidfd) = warden_sys::process::pidfd_open(child) {
        loop {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if let Some(lifeline) = &lifeline {
                fds.push(PollFd::new(lifeline.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            let init_exited = fds[0].revents().is_some_and(|r| !r.is_empty());
            let cut = fds
                .get(1)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty());
            if cut && !init_exited {
                let _ = warden_sys::process::pidfd_send_signal(&pidfd, Signal::SIGKILL);
            }
            if init_exited || cut {
                break;
            }
        }
    }
    let _ = waitpid(child, None);
}
