//! The sandbox init: the first process of the new namespaces (pid 1 inside). Runs in the child
//! of the helper's `clone`. It waits for its id maps, builds the filesystem, pivots into it and
//! reports `Ready`; then, for each job the parent sends on the control channel, it writes the
//! job's files, forks the payload, reaps and forwards signals until the payload exits, and
//! kills every process the job left, so the next job starts with the init alone. When the
//! parent closes the channel, the init exits and the kernel kills whatever is left in its pid
//! namespace. The trusted backend's init (`enter_trusted`) serves jobs the same way on the
//! host, without namespaces. Each step assumes the ones before it (docs/sandbox-setup.md).

use std::convert::Infallible;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Gid, Pid, Uid};
use warden_sys::process::{exit_immediately, fork_single_threaded, wait_child, ForkResult, Waited};

use crate::control::{self, JobFds, Message};
use crate::payload::PayloadSetup;
use crate::plan::{Job, SandboxSpec, WORKDIR};
use crate::report::{ExitStatus, Report, SeccompKiller};
use crate::seccomp::CompiledFilter;
use crate::standby::Standby;
use crate::{collect, denials, files_at_limit, mounts, payload, volumes, workspace};
use warden_sys::seccomp::SockFilter;

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

    /// `e` as `ENOSPC: No space left on device`.
    pub(crate) fn sys(step: &str, path: &Path, e: Errno) -> Self {
        Self::new(&format!("{step} {}", path.display()), e)
    }

    pub(crate) fn io(step: &str, path: &Path, e: std::io::Error) -> Self {
        Self::new(&format!("{step} {}", path.display()), e)
    }

    pub(crate) fn report(&self) -> Report {
        Report::failed(&self.step, &self.detail)
    }
}

/// The channels the init talks through.
pub(crate) struct InitChannels {
    /// Readable once the helper has written the id maps.
    pub(crate) sync: OwnedFd,
    /// Reports to the parent.
    pub(crate) report: OwnedFd,
    /// Jobs from the parent (`control`).
    pub(crate) control: OwnedFd,
    /// The cgroup's cpu counter, read once before the first `Ready` and closed.
    pub(crate) cpu_counter: Option<OwnedFd>,
}

/// Signals the init passes on to the payload; SIGTSTP and SIGCONT stop and continue every
/// process of the job instead ([`on_signal`]).
pub(crate) const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTSTP,
    Signal::SIGCONT,
];

/// Whether the init passes `signal` on to the payload.
pub(crate) fn forwards(signal: Signal) -> bool {
    FORWARDED.contains(&signal)
}

/// The parent's request to end the current job at once (a limit was hit): the init kills every
/// process but itself. The kernel delivers a signal the init blocks whoever sends it (its rule
/// against signals to a namespace's init spares only a handler-less, unblocked one), so the
/// init acts only on what warden sent ([`sent_by_warden`]).
pub(crate) const END_JOB: Signal = Signal::SIGPWR;

/// Whether a signal the init received (`info`, as signalfd reads it) came from warden rather
/// than from the job's own processes, which could otherwise end their job as if a limit had
/// been hit (`END_JOB`), stop it (`SIGTSTP`), or have the init signal their whole group. A
/// child's `SIGCHLD` is the kernel's.
///
/// Warden signals the init with `pidfd_send_signal` and no info (`watch.rs`,
/// `warden_sys::process::pidfd_send_signal`), for which the kernel fills in a plain kill's
/// info: `si_code` `SI_USER`, the sender's pid and uid as the receiver sees them. In a pid
/// namespace (the init is its pid 1) warden is outside it, so the pid is 0 there; a trusted
/// run's init and payload share an unprivileged uid that warden (root) does not have. So only
/// `SI_USER` with pid 0 (uid 0 in a trusted run) is warden's:
/// - a process may queue a signal with a siginfo of its making (`rt_sigqueueinfo`,
///   `pidfd_send_signal` with an info), pid 0 and uid 0 included, but the kernel lets it only
///   with a negative `si_code` (`SI_QUEUE` and the like);
/// - the kernel sends signals on a process's behalf with other codes and no sender: the one
///   chosen with `F_SETSIG` to the owner (`F_SETOWN`) of a descriptor opened `O_ASYNC` when
///   it becomes ready, with `POLL_IN` and the like (its `si_band` overlays the pid and uid,
///   which signalfd reports as 0); `SI_KERNEL` for others. A program could make the init the
///   owner of its pipe.
pub(crate) fn sent_by_warden(info: &nix::sys::signalfd::siginfo) -> bool {
    if info.ssi_signo == Signal::SIGCHLD as u32 {
        return true;
    }
    if info.ssi_code != libc::SI_USER {
        return false;
    }
    if std::process::id() == 1 {
        info.ssi_pid == 0
    } else {
        info.ssi_uid == 0
    }
}

/// How the payload is confined beyond its rlimits and cgroup.
#[derive(Clone, Copy)]
pub(crate) enum Confinement<'a> {
    /// The native sandbox: drop every capability, no_new_privs, then this seccomp filter,
    /// whose notified calls the init answers (`denials.rs`).
    Sandbox(&'a CompiledFilter),
    /// The trusted backend: the init already runs as an unprivileged uid; no_new_privs, then
    /// this seccomp filter, which refuses the keyring operations that would lock the uid's
    /// keyrings (`seccomp/trusted.rs`), in the kernel, unrecorded.
    Trusted(&'a [SockFilter]),
}

/// Runs the init; never returns. A failed step is reported and ends the sandbox.
pub(crate) fn run_init(spec: &SandboxSpec, filter: &CompiledFilter, channels: InitChannels) -> ! {
    crate::name_process(c"warden-init");
    run_reporting(channels, |sync, report, control, cpu_counter| {
        enter_sandbox(spec, filter, sync, report, control, cpu_counter)
    })
}

/// Runs `enter` with the init's channels; a failed step is reported, and the init exits.
fn run_reporting(
    channels: InitChannels,
    enter: impl FnOnce(OwnedFd, &OwnedFd, &OwnedFd, Option<OwnedFd>) -> Result<Infallible, SetupError>,
) -> ! {
    let InitChannels {
        sync,
        report,
        control,
        cpu_counter,
    } = channels;
    match enter(sync, &report, &control, cpu_counter) {
        Ok(never) => match never {},
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(1)
        }
    }
}

/// Runs in the init. Each step assumes the ones before it (docs/sandbox-setup.md).
fn enter_sandbox(
    spec: &SandboxSpec,
    filter: &CompiledFilter,
    sync: OwnedFd,
    report: &OwnedFd,
    control: &OwnedFd,
    cpu_counter: Option<OwnedFd>,
) -> Result<Infallible, SetupError> {
    let volume_mounts = volumes::wait_for_release(sync)?;
    become_namespace_root()?;
    // After the change of ids, which clears the parent-death signal.
    die_with_helper()?;
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| SetupError::errno("unshare cgroup namespace", e))?;
    mounts::make_private()?;
    mounts::build_root(spec)?;
    mounts::pivot_into()?;
    mounts::build_workspace(spec)?;
    volumes::attach(&spec.volumes, volume_mounts)?;
    mounts::mount_proc()?;
    mounts::mask_proc()?;
    mounts::detach_old_root()?;
    mounts::make_root_read_only()?;
    nix::unistd::sethostname(&spec.hostname).map_err(|e| SetupError::errno("sethostname", e))?;
    warden_sys::network::bring_up_loopback().map_err(|e| SetupError::errno("bring up lo", e))?;
    serve_jobs(
        Path::new(WORKDIR),
        Confinement::Sandbox(filter),
        Some(spec),
        report,
        control,
        cpu_counter,
    )
}

/// The step a trusted init reports when its uid's keyrings refuse to be emptied
/// (`warden_sys::keys::refused_by_the_keyrings`): an earlier run locked them, so the slot is
/// unusable for trusted runs, and the parent moves the run to another (`trusted.rs`).
pub(crate) const LOCKED_KEYRINGS_STEP: &str = "empty the keyrings, which refuse it";

/// Runs the trusted backend's init (`trusted.rs`); never returns.
pub(crate) fn run_trusted_init(
    workdir: &Path,
    id: u32,
    filter: &[SockFilter],
    channels: InitChannels,
) -> ! {
    crate::name_process(c"warden-init");
    run_reporting(channels, |sync, report, control, cpu_counter| {
        enter_trusted(workdir, id, filter, sync, report, control, cpu_counter)
    })
}

/// Runs in the trusted backend's init, on the host: no namespaces. Once the helper has put it
/// in the cgroup, it becomes the run's unprivileged user (the only user of that uid on the host
/// while the sandbox lives), and serves jobs as an orphan reaper.
fn enter_trusted(
    workdir: &Path,
    id: u32,
    filter: &[SockFilter],
    sync: OwnedFd,
    report: &OwnedFd,
    control: &OwnedFd,
    cpu_counter: Option<OwnedFd>,
) -> Result<Infallible, SetupError> {
    wait_for_id_maps(sync)?;
    // System V IPC objects and POSIX message queues of its own, gone with its last process:
    // the uid is a slot the next trusted run may get, which would find what this one left in
    // the host's (a message queue's messages, where no /dev/mqueue is mounted to clean them).
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC)
        .map_err(|e| SetupError::errno("unshare IPC namespace", e))?;
    become_user(id)?;
    // A session keyring of the run's own: the one inherited is warden's (when it has one),
    // which every trusted run would share, and read.
    warden_sys::keys::join_new_session_keyring()
        .map_err(|e| SetupError::new("join a session keyring of its own", e))?;
    // What an earlier run of the uid left in its keyrings, which outlive processes.
    warden_sys::keys::forget_own_keys().map_err(|e| {
        let step = if warden_sys::keys::refused_by_the_keyrings(&e) {
            LOCKED_KEYRINGS_STEP
        } else {
            "empty the keyrings"
        };
        SetupError::new(step, e)
    })?;
    // After the change of ids, which clears the parent-death signal.
    die_with_helper()?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SetupError::errno("become a child subreaper", e))?;
    serve_jobs(
        workdir,
        Confinement::Trusted(filter),
        None,
        report,
        control,
        cpu_counter,
    )
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

/// The cpu time the cgroup's counter holds, in nanoseconds.
fn read_cpu_counter(fd: &OwnedFd) -> Option<u64> {
    let mut buf = [0u8; 1024];
    let n = nix::sys::uio::pread(fd, &mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let cpu = crate::cgroup::parse_cpu_counter(text)?;
    u64::try_from(cpu.as_nanos()).ok()
}

/// Reports `Ready`, then runs each job the parent sends, one after another, until the parent
/// closes the control channel; then exits, which (in a pid namespace) makes the kernel kill
/// whatever is left. A reset (`spec` given: the native sandbox) is answered with `Ready`.
fn serve_jobs(
    workdir: &Path,
    confinement: Confinement<'_>,
    spec: Option<&SandboxSpec>,
    report: &OwnedFd,
    control: &OwnedFd,
    cpu_counter: Option<OwnedFd>,
) -> Result<Infallible, SetupError> {
    let mut waited = SigSet::empty();
    waited.add(Signal::SIGCHLD);
    waited.add(END_JOB);
    for signal in FORWARDED {
        waited.add(signal);
    }
    let payload = PayloadSetup::new(confinement)?;
    // What every job's payload inherits; a job that changed them is told on (`Tainted`).
    let own_limits = crate::rlimits::Snapshot::take();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), None)
        .map_err(|e| SetupError::errno("block signals", e))?;
    // Reads (and so discards) an END_JOB or a forwarded signal left pending between jobs: it
    // was meant for a job that had already ended (the parent sends a job's signals once it
    // started).
    let mut stale = SigSet::empty();
    stale.add(END_JOB);
    for signal in FORWARDED {
        stale.add(signal);
    }
    let stale = SignalFd::with_flags(&stale, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SetupError::errno("signalfd", e))?;
    // Read last, so that the whole build is in it; closed here, before any payload exists.
    let cgroup_cpu_ns = cpu_counter.as_ref().and_then(read_cpu_counter);
    drop(cpu_counter);
    Report::Ready { cgroup_cpu_ns }.send(report.as_fd());
    // Whether the sandbox is as fresh as it was when it reported `Ready` (built or reset, no
    // job since): the moment for a standby payload, which must see the workspace and IPC
    // namespace its job will.
    let mut fresh = true;
    let mut standby = None;
    // The workspace tmpfs, resized for each job (the native sandbox's; a trusted run's
    // workspace is a host directory).
    let mut scratch = spec.map(mounts::Scratch::new);
    let writable = writable_roots(workdir, spec);
    // When the last job's processes were all gone: what it wrote is older.
    let mut last_end = None;
    loop {
        if std::mem::take(&mut fresh) {
            standby = Standby::ahead(&payload, workdir, control);
        }
        let (job, fds, mut bytes) = match control::receive(control)? {
            Message::Job(job, fds, bytes) => (*job, fds, bytes),
            Message::Reset => {
                if standby.take().is_some() {
                    end_the_job(None);
                }
                match spec.ok_or_else(|| SetupError::new("reset", "not supported")) {
                    Ok(spec) => match reset(spec) {
                        Ok(()) => {
                            scratch = Some(mounts::Scratch::new(spec));
                            Report::Ready {
                                cgroup_cpu_ns: None,
                            }
                            .send(report.as_fd());
                            fresh = true;
                        }
                        Err(e) => e.report().send(report.as_fd()),
                    },
                    Err(e) => e.report().send(report.as_fd()),
                }
                continue;
            }
            Message::End => {
                end_the_job(None);
                exit_immediately(0)
            }
        };
        while let Ok(Some(_)) = stale.read_signal() {}
        let standby = standby.take();
        let written = write_files(&job, workdir, scratch.as_mut(), &mut bytes);
        // What a refused or failed write left of the files on the channel.
        bytes.skip_rest()?;
        let ended = match written
            .and_then(|()| run_job(&job, fds, workdir, &payload, standby, report, &waited))
        {
            Ok(ended) => ended,
            Err(e) => {
                e.report().send(report.as_fd());
                end_the_job(None);
                Ended {
                    status: ExitStatus::Code(127),
                    wall_time: Duration::ZERO,
                    killer: SeccompKiller::default(),
                    listener: None,
                    started_at: None,
                }
            }
        };
        let file_at_limit = ended.started_at.is_some_and(|start| {
            let since = last_end.map_or(start, |end| start.max(end));
            cut_at_limit(&job, workdir, &writable, since, ended.status)
        });
        last_end = Some(files_at_limit::fine_now());
        // The payload has the init's uid: `prlimit` on pid 1 lowers the init's limits, which
        // every later payload would inherit (a hard limit cannot be raised back).
        if let Some(what) = own_limits.changed() {
            Report::Tainted { what }.send(report.as_fd());
        }
        Report::Exited {
            status: ended.status,
            wall_time: ended.wall_time,
            killer: ended.killer,
            file_at_limit,
        }
        .send(report.as_fd());
        drop(ended.listener);
    }
}

/// The places a job may write to, where a file cut at its file size limit would be: the
/// workspace tmpfs's `/work` and `/tmp` (a trusted run's `work/` and `tmp/` beside it, in its
/// directory, which its user may not list), and the writable volumes (`/work` among them for
/// a session).
fn writable_roots(workdir: &Path, spec: Option<&SandboxSpec>) -> Vec<PathBuf> {
    let Some(spec) = spec else {
        let tmp = workdir.parent().map(|run| run.join("tmp"));
        return std::iter::once(workdir.to_path_buf()).chain(tmp).collect();
    };
    let read_only_work = spec
        .volumes
        .iter()
        .any(|v| v.target == Path::new(WORKDIR) && !v.writable);
    let mut roots = vec![PathBuf::from("/tmp")];
    if !read_only_work {
        roots.insert(0, PathBuf::from(WORKDIR));
    }
    roots.extend(
        spec.volumes
            .iter()
            .filter(|v| v.writable && v.target != Path::new(WORKDIR))
            .map(|v| v.target.clone()),
    );
    roots
}

/// Whether a job that ended with `status` failed by itself after a write cut at its file size
/// limit (`files_at_limit.rs`); looked for only after a failure, its processes all gone.
fn cut_at_limit(
    job: &Job,
    workdir: &Path,
    roots: &[PathBuf],
    since: files_at_limit::Stamp,
    status: ExitStatus,
) -> bool {
    if !files_at_limit::worth_a_look(status) {
        return false;
    }
    let size = job.limits.max_file_size.bytes();
    let written: Vec<PathBuf> = job
        .files
        .iter()
        .filter(|f| f.len == size)
        .map(|f| workdir.join(&f.path))
        .collect();
    files_at_limit::Search {
        roots,
        size,
        since,
        written: &written,
    }
    .finds()
}

/// Renews what a job could have changed in the sandbox, so that the next one finds it as a
/// fresh sandbox has it (docs/sandbox-setup.md, Reset): a new workspace tmpfs for `/work` and
/// `/tmp` (the old one, with whatever the job wrote, is freed) and a new IPC namespace (System
/// V objects and POSIX message queues go with the old one). Every process of the job is
/// already gone (`end_the_job`), and the payload could change nothing else: the root and
/// `/dev` are read-only, and it had no capability to mount, set the host name or configure
/// the network.
fn reset(spec: &SandboxSpec) -> Result<(), SetupError> {
    mounts::renew_scratch(spec)?;
    nix::sched::unshare(CloneFlags::CLONE_NEWIPC)
        .map_err(|e| SetupError::errno("unshare ipc namespace", e))
}

/// Writes the job's files into the workspace, as they arrive on the channel, within the
/// job's room: the tmpfs resized to its `workspace_size` first (`scratch`; none in a trusted
/// run, whose directory is a tmpfs of the sandbox's workspace size, `trusted.rs`).
fn write_files(
    job: &Job,
    workdir: &Path,
    scratch: Option<&mut mounts::Scratch>,
    bytes: &mut control::FileBytes,
) -> Result<(), SetupError> {
    let room = match scratch {
        Some(scratch) => scratch.fit(&job.limits)?,
        None => trusted_room(workdir, &job.limits)?,
    };
    workspace::write_files(workdir, &job.files, bytes, room)
}

/// The room of a trusted job's files: its run directory's tmpfs, `workdir`'s parent, which
/// holds `work/` and `tmp/`, within the job's `workspace_size` (checked before a byte is
/// written, as in the sandbox: without it, files too large were refused halfway, by a full
/// disk); its pages are charged to the run's cgroup, which the init writing them is in.
fn trusted_room(
    workdir: &Path,
    limits: &warden_core::Limits,
) -> Result<Option<workspace::Room>, SetupError> {
    let Some(run) = workdir.parent() else {
        return Ok(None);
    };
    let holds = workspace::used_bytes(run)?;
    let size = limits.workspace_size;
    if holds > size.bytes() {
        return Err(workspace::Misfit::holds_more(size, holds));
    }
    Ok(Some(workspace::Room {
        size,
        holds: warden_core::ByteSize(holds),
        memory: Some(limits.memory),
    }))
}

/// How a job ended, as [`run_job`] returns it.
struct Ended {
    status: ExitStatus,
    wall_time: Duration,
    /// Who killed for the filter's kills.
    killer: SeccompKiller,
    /// The seccomp listener, closed once the end is reported (`denials::Supervised`).
    listener: Option<OwnedFd>,
    /// When the program started, as the kernel stamps files (`files_at_limit::coarse_now`); `None`
    /// when it never did.
    started_at: Option<files_at_limit::Stamp>,
}

/// Runs one job, its files written: forks its payload, forwards signals and reaps until the
/// payload exits, sends what the job collects, and kills and reaps every process left.
fn run_job(
    job: &Job,
    fds: JobFds,
    workdir: &Path,
    payload_setup: &PayloadSetup<'_>,
    standby: Option<Standby>,
    report: &OwnedFd,
    waited: &SigSet,
) -> Result<Ended, SetupError> {
    let confinement = payload_setup.confinement;
    let started_at = files_at_limit::coarse_now();
    Report::Started.send(report.as_fd());
    let started = Instant::now();
    let launched = standby.and_then(|standby| match standby.launch(job, &fds, report) {
        Ok(()) => Some((standby.pid, standby.handoff)),
        Err(e) => {
            tracing::debug!(error = %e, "the standby payload is gone; forking one");
            let _ = kill(standby.pid, Signal::SIGKILL);
            None
        }
    });
    let (payload, handoff) = match launched {
        Some(launched) => launched,
        None => {
            let handoff = listener_handoff(confinement)?;
            let forked =
                fork_single_threaded().map_err(|e| SetupError::errno("fork the payload", e))?;
            match forked {
                ForkResult::Child => {
                    crate::name_process(c"warden-payload");
                    let to_init = handoff.map(|(_, payload_end)| payload_end);
                    payload::exec(job, &fds, workdir, payload_setup, to_init, report)
                }
                // The payload's end closes here, so that the init's end reads end of file if
                // the payload never sends a listener.
                ForkResult::Parent { child } => {
                    (child, handoff.map(|(init_end, _payload_end)| init_end))
                }
            }
        }
    };
    // The payload has its own copies now. The init keeps none of stdin's read end, so that
    // a program that closed its stdin (and left no process holding it) is seen as having
    // done so by the writer, which gets EPIPE instead of filling the pipe for no reader.
    let JobFds {
        artifacts, stdin, ..
    } = fds;
    drop(stdin);
    let supervised = match (confinement, handoff) {
        (Confinement::Sandbox(filter), Some(init_end)) => {
            denials::supervise(filter, init_end, payload, waited, |s| on_signal(payload, s))?
        }
        _ => denials::Supervised::plain(supervise(payload, waited)?),
    };
    let wall_time = started.elapsed();
    let status = supervised.status;
    if let (ExitStatus::Code(0), Some(path), Some(out)) = (status, &job.collect, &artifacts) {
        collect::send(workdir, path, out)?;
    }
    drop(artifacts);
    end_the_job(Some(payload));
    if matches!(confinement, Confinement::Trusted(_)) {
        // The uid's keyrings outlive the job's processes, all gone now; failing here, the
        // next trusted init of the uid empties them before its first job.
        let _ = warden_sys::keys::forget_own_keys();
    }
    supervised.denials.send(report.as_fd());
    let killer = match confinement {
        Confinement::Trusted(_) => SeccompKiller::Nobody,
        // The listener came: every kill of the filter went through it.
        Confinement::Sandbox(_) if supervised.listener.is_some() => SeccompKiller::Init,
        Confinement::Sandbox(_) => SeccompKiller::Kernel,
    };
    Ok(Ended {
        status,
        wall_time,
        killer,
        listener: supervised.listener,
        started_at: Some(started_at),
    })
}

/// The socket pair the payload hands its seccomp listener to the init through, when its
/// filter notifies any call.
pub(crate) fn listener_handoff(
    confinement: Confinement<'_>,
) -> Result<Option<(OwnedFd, OwnedFd)>, SetupError> {
    match confinement {
        Confinement::Sandbox(filter) if filter.notifies() => denials::handoff().map(Some),
        _ => Ok(None),
    }
}

/// Forwards signals to the payload and reaps until it exits; on [`END_JOB`], kills the job.
/// Only warden's signals are acted on ([`sent_by_warden`]).
fn supervise(payload: Pid, waited: &SigSet) -> Result<ExitStatus, SetupError> {
    let signals = SignalFd::with_flags(waited, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SetupError::errno("signalfd", e))?;
    loop {
        let info = match signals.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::errno("read signalfd", e)),
        };
        let Ok(signal) = Signal::try_from(info.ssi_signo.cast_signed()) else {
            continue;
        };
        if !sent_by_warden(&info) {
            continue;
        }
        if let Some(status) = on_signal(payload, signal) {
            return Ok(status);
        }
    }
}

/// Handles one signal of the job: forwards it (to the payload's process group), reaps, or ends
/// the job on [`END_JOB`]. SIGTSTP
/// stops every process of the job (SIGSTOP, which none can handle, as kill(-1) reaches them:
/// see [`end_the_job`]) and SIGCONT continues them: its caller stopped at a terminal and went
/// on. Returns the payload's status once it exited.
fn on_signal(payload: Pid, signal: Signal) -> Option<ExitStatus> {
    if signal == END_JOB {
        end_the_job(Some(payload))
    } else if signal == Signal::SIGTSTP {
        let _ = kill(Pid::from_raw(-1), Signal::SIGSTOP);
        None
    } else if signal == Signal::SIGCONT {
        let _ = kill(Pid::from_raw(-1), Signal::SIGCONT);
        None
    } else if signal != Signal::SIGCHLD {
        // To the payload's process group (it made one with `setsid`), as a terminal sends its
        // Ctrl-C to the foreground group: a shell waiting for a command ends with it.
        if kill(Pid::from_raw(-payload.as_raw()), signal).is_err() {
            let _ = kill(payload, signal);
        }
        None
    } else {
        reap(payload, false)
    }
}

/// Kills every process the init may signal but itself, and reaps them all: in a pid namespace,
/// kill(-1) from its init reaches every other process of the namespace; in a trusted run, every
/// process of the run's uid, which is the run's alone. They are the init's descendants (a
/// subreaper inherits orphans), so it reaps them. Returns the payload's status if it was among
/// them.
fn end_the_job(payload: Option<Pid>) -> Option<ExitStatus> {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    reap(payload.unwrap_or(Pid::from_raw(0)), true)
}

/// Reaps exited children (every child until none is left, when `all`); returns the payload's
/// status once it is among them.
fn reap(payload: Pid, all: bool) -> Option<ExitStatus> {
    let mut result = None;
    loop {
        // Not nix's `waitpid`: a real-time signal's end would be lost (`wait_child`).
        match wait_child(Pid::from_raw(-1), !all) {
            Ok(Waited::Exited(pid, code)) if pid == payload => {
                result = Some(ExitStatus::Code(code))
            }
            Ok(Waited::Signaled(pid, signal)) if pid == payload => {
                result = Some(ExitStatus::Signal(signal));
            }
            Ok(Waited::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
