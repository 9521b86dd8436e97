//! The sandbox init: the first process of the new namespaces (pid 1 inside). Runs in the child
//! of the helper's `clone`. It waits for its id maps, builds the filesystem, pivots into it,
//! forks the payload, then reaps every process and forwards signals until the payload exits.
//! When the init exits, the kernel kills whatever is left in its pid namespace. The trusted
//! backend's init (`enter_trusted`) runs the same supervision on the host, without namespaces.
//! Each step assumes the ones before it (docs/sandbox-setup.md).

use std::convert::Infallible;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
use warden_sys::process::{exit_immediately, fork_single_threaded, ForkResult};
use warden_sys::seccomp::SockFilter;

use crate::plan::{SandboxPlan, WORKDIR};
use crate::report::{ExitStatus, Report};
use crate::{collect, mounts, payload};

/// A setup step that failed inside the helper or the sandbox; travels to the parent as a
/// [`Report::SetupFailed`].
#[derive(Debug)]
pub(crate) struct SetupError {
    pub(crate) step: String,
    pub(crate) detail: String,
}

impl SetupError {
    pub(crate) fn new(step: &str, detail: impl fmt::Display) -> Self {
        Self {
            step: step.to_owned(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn errno(step: &str, e: Errno) -> Self {
        Self::new(step, e.desc())
    }

    pub(crate) fn sys(step: &str, path: &Path, e: Errno) -> Self {
        Self::new(
            &format!("{step} {}", path.display()),
            format!("{e} ({})", e.desc()),
        )
    }

    pub(crate) fn io(step: &str, path: &Path, e: std::io::Error) -> Self {
        Self::new(&format!("{step} {}", path.display()), e)
    }

    pub(crate) fn report(&self) -> Report {
        Report::failed(&self.step, &self.detail)
    }
}

/// The pipes the init talks through.
pub(crate) struct InitChannels {
    /// Readable once the helper has written the id maps.
    pub(crate) sync: OwnedFd,
    /// Reports to the parent.
    pub(crate) report: OwnedFd,
    /// Collected files to the parent (`SandboxPlan::collect`).
    pub(crate) artifacts: Option<OwnedFd>,
}

/// Signals the init passes on to the payload.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How the payload is confined beyond its rlimits and cgroup.
#[derive(Clone, Copy)]
pub(crate) enum Confinement<'a> {
    /// The native sandbox: drop every capability, no_new_privs, then this seccomp filter.
    Sandbox(&'a [SockFilter]),
    /// The trusted backend: the init already runs as an unprivileged uid; no_new_privs only.
    Trusted,
}

/// Runs the init; never returns. A failed step is reported and ends the sandbox.
pub(crate) fn run_init(plan: &SandboxPlan, filter: &[SockFilter], channels: InitChannels) -> ! {
    run_reporting(channels, |sync, report, artifacts| {
        enter_sandbox(plan, filter, sync, report, artifacts)
    })
}

/// Runs `enter` with the init's channels; a failed step is reported, and the init exits.
fn run_reporting(
    channels: InitChannels,
    enter: impl FnOnce(OwnedFd, &OwnedFd, Option<&OwnedFd>) -> Result<Infallible, SetupError>,
) -> ! {
    let InitChannels {
        sync,
        report,
        artifacts,
    } = channels;
    match enter(sync, &report, artifacts.as_ref()) {
        Ok(never) => match never {},
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(1)
        }
    }
}

/// Runs in the init. Each step assumes the ones before it (docs/sandbox-setup.md).
fn enter_sandbox(
    plan: &SandboxPlan,
    filter: &[SockFilter],
    sync: OwnedFd,
    report: &OwnedFd,
    artifacts: Option<&OwnedFd>,
) -> Result<Infallible, SetupError> {
    die_with_helper()?;
    wait_for_id_maps(sync)?;
    become_namespace_root()?;
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| SetupError::errno("unshare cgroup namespace", e))?;
    mounts::make_private()?;
    mounts::build_root(plan)?;
    mounts::pivot_into()?;
    mounts::mount_proc()?;
    mounts::detach_old_root()?;
    write_workspace(plan, Path::new(WORKDIR))?;
    mounts::make_root_read_only()?;
    nix::unistd::sethostname(&plan.hostname).map_err(|e| SetupError::errno("sethostname", e))?;
    warden_sys::network::bring_up_loopback().map_err(|e| SetupError::errno("bring up lo", e))?;
    let workdir = Path::new(WORKDIR);
    supervise_payload(
        plan,
        workdir,
        Confinement::Sandbox(filter),
        report,
        artifacts,
    )
}

/// Runs the trusted backend's init (`trusted.rs`); never returns.
pub(crate) fn run_trusted_init(
    plan: &SandboxPlan,
    workdir: &Path,
    id: u32,
    channels: InitChannels,
) -> ! {
    run_reporting(channels, |sync, report, artifacts| {
        enter_trusted(plan, workdir, id, sync, report, artifacts)
    })
}

/// Runs in the trusted backend's init, on the host: no namespaces. Once the helper has put it
/// in the cgroup, it becomes the run's unprivileged user (the only user of that uid on the host
/// while the run lasts), writes the workspace and supervises the program as an orphan reaper.
fn enter_trusted(
    plan: &SandboxPlan,
    workdir: &Path,
    id: u32,
    sync: OwnedFd,
    report: &OwnedFd,
    artifacts: Option<&OwnedFd>,
) -> Result<Infallible, SetupError> {
    die_with_helper()?;
    wait_for_id_maps(sync)?;
    become_user(id)?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SetupError::errno("become a child subreaper", e))?;
    write_workspace(plan, workdir)?;
    supervise_payload(plan, workdir, Confinement::Trusted, report, artifacts)
}

/// Drops every group and takes uid and gid `id`; the capabilities go with uid 0.
fn become_user(id: u32) -> Result<(), SetupError> {
    nix::unistd::setgroups(&[]).map_err(|e| SetupError::errno("setgroups", e))?;
    let gid = Gid::from_raw(id);
    let uid = Uid::from_raw(id);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| SetupError::errno("setresgid", e))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| SetupError::errno("setresuid", e))
}

/// If the helper dies (the parent killed it, or crashed), so does the init, and with it the
/// whole pid namespace.
fn die_with_helper() -> Result<(), SetupError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| SetupError::errno("set parent-death signal", e))
}

/// Blocks until the helper has written uid_map/gid_map (for a user namespace) and moved us into
/// the cgroup.
fn wait_for_id_maps(sync: OwnedFd) -> Result<(), SetupError> {
    let mut byte = [0u8; 1];
    let mut file = fs::File::from(sync);
    match file.read(&mut byte) {
        Ok(1) => Ok(()),
        Ok(_) => Err(SetupError::new(
            "wait for id maps",
            "the helper closed the sync pipe",
        )),
        Err(e) => Err(SetupError::new("wait for id maps", e)),
    }
}

/// Takes uid and gid 0 of the new user namespace (host: the slot's unprivileged id), keeping
/// the namespace's capabilities for the setup steps; the payload drops them all.
fn become_namespace_root() -> Result<(), SetupError> {
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(|e| SetupError::errno("setresgid 0", e))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(|e| SetupError::errno("setresuid 0", e))
}

/// Writes the plan's files into `workdir`. It is fresh (a new tmpfs, or a directory the parent
/// just created), so nothing there can be a link; `O_EXCL | O_NOFOLLOW` makes sure of it anyway.
fn write_workspace(plan: &SandboxPlan, workdir: &Path) -> Result<(), SetupError> {
    for file in &plan.files {
        let path = workdir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| SetupError::io("create directory", parent, e))?;
        }
        let mode = if file.executable { 0o755 } else { 0o644 };
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&path)
            .map_err(|e| SetupError::io("create workspace file", &path, e))?;
        std::io::Write::write_all(&mut out, &file.contents)
            .map_err(|e| SetupError::io("write workspace file", &path, e))?;
        out.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| SetupError::io("chmod workspace file", &path, e))?;
    }
    Ok(())
}

/// Forks the payload, then reaps and forwards signals until it exits; reports how it ended and
/// exits, which makes the kernel kill every process left in the namespace. Without namespaces
/// (trusted), it kills what is left itself: every process of the run's uid.
fn supervise_payload(
    plan: &SandboxPlan,
    workdir: &Path,
    confinement: Confinement<'_>,
    report: &OwnedFd,
    artifacts: Option<&OwnedFd>,
) -> Result<Infallible, SetupError> {
    let mut waited = SigSet::empty();
    waited.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        waited.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None)
        .map_err(|e| SetupError::errno("block signals", e))?;
    Report::Started.send(report.as_fd());
    let started = Instant::now();
    let payload =
        match fork_single_threaded().map_err(|e| SetupError::errno("fork the payload", e))? {
            ForkResult::Child => payload::exec(plan, workdir, confinement, report),
            ForkResult::Parent { child } => child,
        };
    loop {
        let signal = waited.wait().map_err(|e| SetupError::errno("sigwait", e))?;
        if signal != Signal::SIGCHLD {
            let _ = kill(payload, signal);
            continue;
        }
        if let Some(status) = reap(payload) {
            let wall_time = started.elapsed();
            if let (ExitStatus::Code(0), Some(path), Some(out)) = (status, &plan.collect, artifacts)
            {
                collect::send(workdir, path, out)?;
            }
            if matches!(confinement, Confinement::Trusted) {
                end_the_run();
            }
            Report::Exited { status, wall_time }.send(report.as_fd());
            exit_immediately(0);
        }
    }
}

/// Kills and reaps what is left of a trusted run. kill(-1) reaches every process this uid may
/// signal but the caller: the run's, as the uid is the run's alone. They are this subreaper's
/// descendants, so it reaps them: orphaned to the host's pid 1 they might stay zombies.
fn end_the_run() {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while waitpid(Pid::from_raw(-1), None).is_ok() {}
}

/// Reaps every exited child; returns the payload's status once it is among them.
fn reap(payload: Pid) -> Option<ExitStatus> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == payload => {
                result = Some(ExitStatus::Code(code))
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == payload => {
                result = Some(ExitStatus::Signal(signal as i32));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
