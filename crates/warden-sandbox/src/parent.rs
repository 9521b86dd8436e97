//! The host side of sandboxing, inside the warden process (which may be multi-threaded):
//! [`Sandbox`] holds what every sandbox of this host shares (the helper binary, the cgroup
//! layout, the uid slots) and starts the helper of each new sandbox, by exec'ing the warden
//! binary and sending it the request. Blocking; an async caller runs it on a blocking thread.
//!
//! A single-threaded caller (the `warden` CLI) may instead have the helper forked without exec
//! ([`Sandbox::fork_helper_when_single_threaded`]): the child of a single-threaded process holds
//! no lock another thread could have held, and skipping the exec (loading the binary, dynamic
//! linking, the runtime's start-up, sending and parsing the request) saves about 2 ms per run.
//! The process is checked to be single-threaded at each spawn; otherwise the helper is exec'd.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use warden_core::{ByteSize, Outcome, Usage};
use warden_sys::process::ForkResult;
use warden_sys::process::{wait_child, Waited};

use crate::cgroup::{Cgroup, CgroupError, CgroupFs};
use crate::collect::CollectedFile;
use crate::helper::{
    Backend as HelperBackend, HelperRequest, CONTROL_FD, HELPER_ARG, LIFELINE_FD, REPORT_FD,
    REQUEST_FD,
};
use crate::idmap::{IdMapError, IdSlot, Purpose, DEFAULT_SLOT_FILE};
use crate::live::{JobLauncher, LiveSandbox, Parts};
use crate::pipes::pipe;
use crate::plan::{PlanError, SandboxSpec};

/// The program's standard input.
#[derive(Debug, Default)]
pub enum Stdin {
    /// Nothing (`/dev/null`).
    #[default]
    Null,
    /// These bytes, then end-of-file.
    Bytes(Vec<u8>),
    /// Read from this pipe directly (never a terminal or a file: a magic link to either could
    /// be reopened from inside).
    Pipe(OwnedFd),
    /// What this descriptor gives while the job runs, copied by the parent into the program's
    /// stdin pipe as the program takes it, until the descriptor's end (a read of 0, a
    /// terminal's Ctrl-D) ends the program's input: a terminal, which is never handed in (an
    /// ioctl on it could push input into the caller's shell). Read only when poll says it has
    /// input and never made non-blocking: a terminal's open file is shared with its shell. The
    /// caller must be entitled to read it (a terminal's foreground process group), or the
    /// read stops it (SIGTTIN).
    Relay(OwnedFd),
}

/// What one sandboxed run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRun {
    /// How it ended.
    pub outcome: Outcome,
    /// Standard output, at most the output limit.
    pub stdout: Vec<u8>,
    /// Standard error, at most the output limit.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the limit.
    pub stderr_truncated: bool,
    /// The order stdout and stderr were read in (to interleave them).
    pub output_order: crate::OutputOrder,
    /// Resources used.
    pub usage: Usage,
    /// The files `SandboxPlan::collect` named, when the program exited with status 0.
    pub collected: Vec<CollectedFile>,
    /// The same, spooled to disk when the job named `Job::spool` (then `collected` is empty).
    pub spooled: Option<crate::collect::SpooledFiles>,
    /// Why collecting failed (the path was missing, not a regular file, or too large).
    pub collect_error: Option<String>,
    /// The job's cgroup read while it ran, every [`crate::SAMPLE_EVERY`] (and less often for
    /// a long run, at most [`crate::MAX_SAMPLES`] readings): live resource monitoring.
    pub samples: Vec<warden_core::UsageSample>,
    /// The system calls the seccomp policy refused with an error, with how often each was
    /// tried, in the order first tried (native backend; empty elsewhere, docs/events.md). A
    /// refused call does not change the outcome: the program may have handled the error.
    pub denied_syscalls: Vec<crate::DeniedSyscall>,
    /// The system calls the seccomp policy killed the job's processes for, in the order first
    /// made (native backend; docs/events.md). When the program itself was killed, its
    /// outcome is a violation naming the call.
    pub seccomp_kills: Vec<crate::KilledSyscall>,
    /// The writes to read-only paths the job attempted (native backend, docs/events.md):
    /// refused by the kernel (`EROFS`), recorded by the init. `None` when there were none.
    pub readonly_writes: Option<crate::ReadOnlyWrites>,
    /// Forks and clones the process limit refused during the job (the cgroup's `pids.events`):
    /// a fork storm shows here even when the program survives it.
    pub process_limit_hits: u64,
}

/// warden itself failed to run the program (never the program's own failure).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The plan is unusable.
    #[error("invalid sandbox plan")]
    Plan(#[from] PlanError),
    /// A limit is absurd.
    #[error(transparent)]
    Limit(#[from] warden_core::LimitError),
    /// The cgroup layer failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// No uid could be reserved.
    #[error(transparent)]
    IdMap(#[from] IdMapError),
    /// The process is not root: it cannot create cgroups, nor user namespaces mapped to other
    /// uids.
    #[error(
        "building a sandbox needs root (cgroups, and each sandbox's root mapped to an \
         unprivileged uid), and this runs as uid {uid}: run warden as root, e.g. with sudo"
    )]
    NeedsRoot {
        /// The effective uid it runs as.
        uid: u32,
    },
    /// A required isolation feature is missing on this host.
    #[error("refusing to run unconfined: {feature} is not available ({detail})")]
    Unsupported {
        /// The feature.
        feature: &'static str,
        /// Why it is considered missing.
        detail: String,
    },
    /// The helper could not be started or talked to.
    #[error("{action}")]
    Helper {
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A setup step inside the helper or the sandbox failed; the program never ran.
    #[error("sandbox setup failed at {step}: {detail}")]
    Setup {
        /// The step (docs/sandbox-setup.md).
        step: String,
        /// What went wrong.
        detail: String,
    },
    /// A file of the job could not be written in the workspace for a reason of the caller's:
    /// the workspace is full, or what its earlier jobs left there takes the file's path (a file
    /// where a directory must go, a directory where a file must).
    #[error("the program's file {path} cannot be written in the workspace: {why}")]
    JobFile {
        /// The file's path in the workspace.
        path: String,
        /// Why.
        why: String,
    },
    /// The job's files do not fit its limits: with what the workspace holds already (an
    /// earlier job's files and output: the compile stage's, in a sandbox it shares with the
    /// run), they are more than its `workspace_size`, or take all of its `memory` (a file in
    /// the native sandbox's workspace is held in memory, charged to the job). Nothing of the
    /// job ran; the sandbox runs further jobs.
    #[error(
        "the program's files ({}){} do not fit its {limit} ({size}){}",
        about(*files),
        if holds.bytes() > 0 {
            format!(" and what its workspace holds already ({})", about(*holds))
        } else {
            String::new()
        },
        if *limit == "memory" {
            ": files in the workspace are held in memory, charged to the program"
        } else {
            ""
        }
    )]
    WorkspaceMisfit {
        /// The limit: `workspace_size` or `memory`.
        limit: &'static str,
        /// Its value.
        size: ByteSize,
        /// What the workspace held before the job's files.
        holds: ByteSize,
        /// The job's files.
        files: ByteSize,
    },
    /// The job's memory limit is below what the sandbox holds already and cannot give back
    /// without swap: files in its `/tmp` and `/work` (tmpfs, held in memory) that earlier jobs
    /// of a kept sandbox left, and its own processes' memory. The kernel cannot meet such a
    /// limit (cgroup v1 refuses it; v2 would kill in the group to meet it, the sandbox's init
    /// with it). Nothing of the job ran; the sandbox runs further jobs with their own limits.
    #[error(
        "the sandbox holds {} of memory already, more than this job's memory limit of {limit}: \
         files left in its /tmp (and its /work, unless a volume) are held in memory; remove some, or \
         ask for more memory",
        about(*held)
    )]
    MemoryHeld {
        /// The job's memory limit.
        limit: ByteSize,
        /// What the sandbox held when the limit was to be applied.
        held: ByteSize,
    },
    /// The helper ended without a report of the program's end.
    #[error("the sandbox helper ended without reporting how the program ended")]
    Vanished,
    /// The sandbox was cancelled (`CancelHandle::cancel`); it runs no more jobs.
    #[error("the sandbox was cancelled")]
    Cancelled {
        /// What the job the cancel ended had done until then, when its program had started:
        /// its output so far, its usage, and what the sandbox stopped in it (refused and
        /// killed calls, read-only writes, refused forks), collected from the init as it
        /// ended the job (docs/events.md). Its outcome is [`warden_core::Outcome::Cancelled`],
        /// or how the job had already ended when the cancel came (a limit). `None` when no
        /// job was running, or its program had not started.
        ran: Option<Box<SandboxRun>>,
    },
    /// The sandbox can run no more jobs.
    #[error("the sandbox is gone: {why}")]
    Gone {
        /// What ended it.
        why: &'static str,
    },
}

/// `size` as a person reads it: exact when it is a whole number of MiB or GiB (of KiB below a
/// MiB), else in MiB (KiB below one) to one decimal: `120.2MiB`, not `123084KiB`.
fn about(size: ByteSize) -> String {
    let exact = size.to_string();
    let bytes = size.bytes();
    let whole =
        exact.ends_with("iB") && (bytes < ByteSize::MIB || bytes.is_multiple_of(ByteSize::MIB));
    if whole || bytes < ByteSize::KIB {
        return exact;
    }
    if bytes >= ByteSize::MIB {
        return format!("{:.1}MiB", bytes as f64 / ByteSize::MIB as f64);
    }
    format!("{:.1}KiB", bytes as f64 / ByteSize::KIB as f64)
}

impl SandboxError {
    /// A cancel that found nothing running: [`SandboxError::Cancelled`] without a job.
    pub fn cancelled() -> Self {
        SandboxError::Cancelled { ran: None }
    }

    /// The error a failed setup step reports: [`SandboxError::WorkspaceMisfit`] or
    /// [`SandboxError::JobFile`] when writing a job's files failed for a reason of the
    /// caller's, else [`SandboxError::Setup`].
    pub(crate) fn setup(step: String, detail: String) -> Self {
        if step == crate::workspace::FIT_STEP {
            if let Ok(misfit) = serde_json::from_str::<crate::workspace::Misfit>(&detail) {
                return SandboxError::WorkspaceMisfit {
                    limit: if misfit.limit == "memory" {
                        "memory"
                    } else {
                        "workspace_size"
                    },
                    size: ByteSize(misfit.size),
                    holds: ByteSize(misfit.holds),
                    files: ByteSize(misfit.files),
                };
            }
        }
        let path = step
            .strip_prefix(crate::workspace::WRITE_STEP)
            .and_then(|rest| rest.strip_prefix(' '));
        let errno = detail.split(':').next().unwrap_or_default();
        let why = match errno {
            "ENOSPC" | "EDQUOT" => Some(
                "the workspace is full (its size is the workspace_size limit, or a session's \
                 disk)",
            ),
            "ENOTDIR" | "ELOOP" => Some("a file or link is where a directory of its path must be"),
            "EISDIR" | "EEXIST" => Some("a directory is where the file must be"),
            _ => None,
        };
        match (path, why) {
            (Some(path), Some(why)) => SandboxError::JobFile {
                path: path.to_owned(),
                why: why.to_owned(),
            },
            _ => SandboxError::Setup { step, detail },
        }
    }
}

/// Tasks of warden's own in a sandbox's cgroup beside the job's processes: its init. A job's
/// `max_procs` counts the program's processes and threads alone (`max_procs = 1`: the program,
/// and no fork), so the cgroup's `pids.max` is this much above it.
pub(crate) const INIT_PIDS: u32 = 1;

/// The native sandbox backend.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
    helper_args: Vec<OsString>,
    cgroups: CgroupFs,
    slot_file: PathBuf,
    fork_helper: bool,
    /// Forks helpers for a multi-threaded process (`with_zygote`).
    zygote: Option<std::sync::Arc<crate::zygote::Zygote>>,
}

impl Sandbox {
    /// The helper binary (the warden binary, or a test's helper), which gVisor's jobs also
    /// start from (`gvisor/filter_exec.rs`).
    pub(crate) fn helper_path(&self) -> &std::path::Path {
        &self.helper
    }
}

/// The helper process, as the parent holds it.
#[derive(Debug)]
pub(crate) enum HelperProcess {
    /// Exec'd: the warden binary re-executing itself.
    Spawned(Child),
    /// Forked from this (single-threaded) process.
    Forked(Pid),
    /// Forked by the zygote, which reaps it; the parent holds a pidfd.
    Zygote(crate::zygote::ZygoteChild),
}

impl HelperProcess {
    pub(crate) fn pid(&self) -> Pid {
        match self {
            HelperProcess::Spawned(child) => {
                Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
            }
            HelperProcess::Forked(pid) => *pid,
            HelperProcess::Zygote(child) => child.pid,
        }
    }

    /// A pidfd of the helper: the zygote's (opened before it could reap the helper), or a new
    /// one of this process's own child.
    pub(crate) fn open_pidfd(&self) -> Result<OwnedFd, nix::errno::Errno> {
        match self {
            HelperProcess::Zygote(child) => child
                .pidfd
                .try_clone()
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))),
            other => warden_sys::process::pidfd_open(other.pid()),
        }
    }

    /// Kills it (it is waited for by [`HelperProcess::wait`]).
    pub(crate) fn kill(&mut self) {
        let _ = match self {
            HelperProcess::Spawned(child) => child.kill().map_err(|_| nix::errno::Errno::ESRCH),
            HelperProcess::Forked(pid) => {
                nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL)
            }
            HelperProcess::Zygote(child) => warden_sys::process::pidfd_send_signal(
                &child.pidfd,
                nix::sys::signal::Signal::SIGKILL,
            ),
        };
    }

    /// Waits for it to exit (it has exited when its pidfd is readable).
    pub(crate) fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            HelperProcess::Spawned(child) => child.wait(),
            HelperProcess::Forked(pid) => {
                let raw = match wait_child(*pid, false).map_err(std::io::Error::from)? {
                    Waited::Exited(_, code) => (code & 0xff) << 8,
                    Waited::Signaled(_, signal) => signal,
                    other => return Err(std::io::Error::other(format!("helper wait: {other:?}"))),
                };
                Ok(ExitStatus::from_raw(raw))
            }
            // Not this process's child: it has exited once its pidfd is readable (the zygote
            // reaps it, and knows its status; nothing here needs it).
            HelperProcess::Zygote(child) => {
                let mut fds = [nix::poll::PollFd::new(
                    child.pidfd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                loop {
                    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(e.into()),
                        Ok(_) => return Ok(ExitStatus::from_raw(0)),
                    }
                }
            }
        }
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Sandbox {
    /// A sandbox whose helper is `program` started with `[HELPER_ARG]` (the warden binary
    /// re-executing itself, or a test's helper binary). Refuses if the host cannot confine.
    pub fn new(program: PathBuf) -> Result<Self, SandboxError> {
        crate::host::require_isolation()?;
        let cgroups = CgroupFs::detect()?;
        crate::stale::sweep(&cgroups, Path::new(DEFAULT_SLOT_FILE));
        Ok(Self {
            helper: program,
            helper_args: vec![HELPER_ARG.into()],
            cgroups,
            slot_file: PathBuf::from(DEFAULT_SLOT_FILE),
            fork_helper: false,
            zygote: None,
        })
    }

    /// Has every helper forked by a zygote: a single-threaded process started now (one exec of
    /// the binary), which forks each helper without exec. For a multi-threaded process (the
    /// server), which must not fork helpers itself; see `zygote.rs`.
    pub fn with_zygote(mut self) -> Result<Self, SandboxError> {
        self.zygote = Some(std::sync::Arc::new(crate::zygote::Zygote::start(
            &self.helper,
        )?));
        Ok(self)
    }

    /// Has the helper forked without exec when this process is single-threaded at the time
    /// (checked at each run), which saves about 2 ms per run; see the module's documentation.
    #[must_use]
    pub fn fork_helper_when_single_threaded(mut self) -> Self {
        self.fork_helper = true;
        self
    }

    /// Removes what dead warden processes left (their runs' cgroups, killing what is still in
    /// them; trusted run directories; gVisor bundles): done when the sandbox is made, and
    /// again by a long-lived owner (a server's pool) from time to time, since a run's uid stays
    /// taken while its cgroup remains (`idmap.rs`).
    pub fn sweep(&self) {
        crate::stale::sweep(&self.cgroups, &self.slot_file);
    }

    /// The cgroup layout in use.
    pub fn cgroups(&self) -> &CgroupFs {
        &self.cgroups
    }

    /// What every sandbox with warden's own init needs first: its spec checked (the plan and
    /// the limits' bounds), a uid slot and a cgroup with the spec's limits.
    pub(crate) fn reserve(
        &self,
        spec: &SandboxSpec,
        purpose: Purpose,
    ) -> Result<(IdSlot, Cgroup), SandboxError> {
        spec.validate()?;
        spec.limits.validate(&warden_core::LimitBounds::default())?;
        let slot = self.reserve_slot(purpose)?;
        let limits = warden_core::Limits {
            max_procs: spec.limits.max_procs.saturating_add(INIT_PIDS),
            ..spec.limits
        };
        let cgroup = self.new_cgroup(&limits)?;
        slot.set_owner(&cgroup.name())
            .map_err(|source| SandboxError::Helper {
                action: "recording the uid slot's cgroup",
                source,
            })?;
        Ok((slot, cgroup))
    }

    /// A uid slot for one sandbox: not one whose last run's cgroup remains, nor for a trusted
    /// run one marked unusable for it (idmap.rs).
    pub(crate) fn reserve_slot(&self, purpose: Purpose) -> Result<IdSlot, SandboxError> {
        let hint = u64::from(std::process::id()) << 20 ^ RUN_COUNTER.load(Ordering::Relaxed);
        let parents = self.cgroups.parents();
        let in_use = |name: &str| parents.iter().any(|p| p.join(name).exists());
        Ok(IdSlot::reserve(&self.slot_file, hint, &in_use, purpose)?)
    }

    /// The file the uid slots are reserved in (idmap.rs).
    pub(crate) fn slot_file(&self) -> &Path {
        &self.slot_file
    }

    /// A cgroup for one sandbox, named uniquely within this process.
    pub(crate) fn new_cgroup(&self, limits: &warden_core::Limits) -> Result<Cgroup, SandboxError> {
        let run_id = format!(
            "run-{}-{}",
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Ok(self.cgroups.create(&run_id, limits)?)
    }

    /// Starts the helper for `request` and hands everything to a [`LiveSandbox`], which waits
    /// until the sandbox is ready. `launcher` runs the jobs of a backend without warden's init.
    pub(crate) fn launch(
        &self,
        parts: Launch,
        launcher: Option<Box<dyn JobLauncher>>,
    ) -> Result<LiveSandbox, SandboxError> {
        let Launch {
            request,
            spec,
            overhead,
            slot,
            cgroup,
            cleanup,
        } = parts;
        // Run on drop if the sandbox never starts (bound last, so dropped first on a return
        // below: before the cgroup goes and the slot is released).
        let cleanup = crate::live::Cleanup::new(cleanup);
        let with_init = !matches!(
            request.backend,
            HelperBackend::Exec { .. } | HelperBackend::Hold { .. }
        );
        let (report_read, report_write) = pipe()?;
        let (lifeline_read, lifeline_write) = pipe()?;
        let control = if with_init {
            let (parent, init) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| SandboxError::Helper {
                action: "creating the control channel",
                source: e.into(),
            })?;
            Some((parent, init))
        } else {
            None
        };
        let (control_parent, control_init) = match control {
            Some((p, i)) => (Some(p), Some(i)),
            None => (None, None),
        };
        let ends = HelperEnds {
            report: report_write,
            control: control_init,
            lifeline: lifeline_read,
        };
        let helper = if let Some(zygote) = &self.zygote {
            let fds = crate::zygote::ChildFds {
                report: ends.report.as_fd(),
                lifeline: ends.lifeline.as_fd(),
                control: ends.control.as_ref().map(AsFd::as_fd),
            };
            HelperProcess::Zygote(zygote.fork_helper(&request, fds)?)
        } else if self.fork_helper && warden_sys::process::single_threaded() {
            fork_helper(&request, ends)?
        } else {
            self.exec_helper(&request, ends)?
        };
        LiveSandbox::start(
            Parts {
                name: cgroup.name(),
                spec,
                slot,
                cgroup,
                helper,
                report: report_read,
                lifeline: lifeline_write,
                control: control_parent,
                cleanup,
                overhead,
            },
            with_init,
            launcher,
        )
    }

    /// Spawns the helper by exec'ing the warden binary and sends it the request.
    fn exec_helper(
        &self,
        request: &HelperRequest,
        ends: HelperEnds,
    ) -> Result<HelperProcess, SandboxError> {
        let (request_read, request_write) = pipe()?;
        let mut cmd = Command::new(&self.helper);
        cmd.args(&self.helper_args)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group (see `fork_helper`).
            .process_group(0);
        let mut fds = vec![
            (request_read, REQUEST_FD),
            (ends.report, REPORT_FD),
            (ends.lifeline, LIFELINE_FD),
        ];
        if let Some(control) = ends.control {
            fds.push((control, CONTROL_FD));
        }
        warden_sys::process::map_fds(&mut cmd, fds).map_err(|e| SandboxError::Helper {
            action: "passing descriptors to the sandbox helper",
            source: e.into(),
        })?;
        let mut helper = cmd.spawn().map_err(|source| SandboxError::Helper {
            action: "spawning the sandbox helper",
            source,
        })?;
        drop(cmd);
        if let Err(source) = send_request(request_write, request) {
            let _ = helper.kill();
            let _ = helper.wait();
            return Err(SandboxError::Helper {
                action: "sending the plan to the sandbox helper",
                source,
            });
        }
        Ok(HelperProcess::Spawned(helper))
    }
}

/// What a backend prepared for its sandbox, for [`Sandbox::launch`].
pub(crate) struct Launch {
    pub(crate) request: HelperRequest,
    /// The sandbox's job-level spec (the request's may carry the runtime's overhead).
    pub(crate) spec: SandboxSpec,
    /// See `Parts::overhead`.
    pub(crate) overhead: (warden_core::ByteSize, u32),
    pub(crate) slot: Option<IdSlot>,
    pub(crate) cgroup: Cgroup,
    pub(crate) cleanup: Vec<Box<dyn FnOnce() -> Result<(), SandboxError> + Send>>,
}

/// The descriptors the helper gets.
struct HelperEnds {
    report: OwnedFd,
    /// The init's end of the control channel (backends with warden's init).
    control: Option<OwnedFd>,
    lifeline: OwnedFd,
}

/// Forks the helper without exec; only for a single-threaded process. The child runs the
/// helper on the request it already has in memory, with its descriptors where an exec'd
/// helper would have them, and nothing else open; it never returns.
fn fork_helper(request: &HelperRequest, ends: HelperEnds) -> Result<HelperProcess, SandboxError> {
    let null = std::fs::File::open("/dev/null").map_err(|source| SandboxError::Helper {
        action: "opening /dev/null",
        source,
    })?;
    let fork = warden_sys::process::fork_single_threaded().map_err(|e| SandboxError::Helper {
        action: "forking the sandbox helper",
        source: e.into(),
    })?;
    match fork {
        ForkResult::Child => {
            let mut placed = vec![
                (null.as_fd(), 0),
                (null.as_fd(), 1),
                (null.as_fd(), 2),
                (ends.report.as_fd(), REPORT_FD),
                (ends.lifeline.as_fd(), LIFELINE_FD),
            ];
            if let Some(control) = &ends.control {
                placed.push((control.as_fd(), CONTROL_FD));
            }
            let placed = warden_sys::process::arrange_fds(&placed);
            if placed.is_err() || std::env::set_current_dir("/").is_err() {
                warden_sys::process::exit_immediately(2)
            }
            // A process group of its own, which the sandbox inherits: a terminal's Ctrl-C
            // (SIGINT to the foreground group) reaches the parent alone, which decides what the
            // program gets (`warden run` forwards it once, through the watch), rather than the
            // init getting it too. The parent may block the signals it takes through a
            // signalfd; the helper starts with none blocked, as an exec'd one does.
            let own_group = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let unmasked = nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            );
            if own_group.is_err() || unmasked.is_err() {
                warden_sys::process::exit_immediately(2)
            }
            // What an exec'd helper's command line would be: the sandbox sees its init's.
            if warden_sys::process::overwrite_own_cmdline(b"warden\0__sandbox-helper").is_err() {
                warden_sys::process::exit_immediately(2)
            }
            crate::helper::forked_main(request)
        }
        // The parent's copies of the helper's ends close here.
        ForkResult::Parent { child } => Ok(HelperProcess::Forked(child)),
    }
}

/// Writes `u64 length | JSON`, then closes the pipe.
fn send_request(fd: OwnedFd, request: &HelperRequest) -> std::io::Result<()> {
    let json = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    let mut out = std::io::BufWriter::new(std::fs::File::from(fd));
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(&json)?;
    out.flush()
}

/// Builds the request of a sandbox with warden's init: native or trusted.
pub(crate) fn init_request(
    spec: &SandboxSpec,
    slot: &IdSlot,
    cgroup: &Cgroup,
    backend: HelperBackend,
) -> HelperRequest {
    HelperRequest {
        spec: spec.clone(),
        host_id: slot.host_id(),
        cgroup: cgroup.join(),
        cpu_counter: Some(cgroup.cpu_counter()),
        backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_messages_read_as_a_person_reads_them() {
        assert_eq!(about(ByteSize::mib(120)), "120MiB");
        assert_eq!(about(ByteSize(123_084 * ByteSize::KIB)), "120.2MiB");
        assert_eq!(about(ByteSize(150_000_000)), "143.1MiB");
        assert_eq!(about(ByteSize(12 * ByteSize::KIB)), "12KiB");
        assert_eq!(about(ByteSize(1500)), "1.5KiB");
        assert_eq!(about(ByteSize(100)), "100B");
    }
}
