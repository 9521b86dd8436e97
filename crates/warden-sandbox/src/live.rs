//! A live sandbox, held by the parent: built once by a [`Backend`](crate::Backend), then
//! running jobs one after another, each with its own accounting and output, until it is
//! destroyed. It owns everything the sandbox holds on the host (the uid slot, the cgroup, the
//! helper, the pidfds, the control channel and the lifeline), so dropping it (or
//! [`LiveSandbox::destroy`]) leaves nothing behind. Runs in the parent, which may be
//! multi-threaded: a live sandbox can move between threads, and [`CancelHandle::cancel`] stops
//! it from any of them.
//!
//! The lifecycle is written once here; each backend (`native.rs`, `trusted.rs`, `gvisor.rs`)
//! supplies what differs: the helper's request, the host-side preparation and cleanup, and how
//! a job reaches the sandbox.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use warden_core::{ByteSize, LimitBounds, Stream, Usage};

use crate::backend::CancelHandle;
use crate::cgroup::{Cgroup, CgroupError, CgroupStats};
use crate::collect::CollectedFile;
use crate::control::{self, SendFds};
use crate::idmap::IdSlot;
use crate::parent::{HelperProcess, SandboxError, SandboxRun, Stdin};
use crate::pipes::{pipe, socket_pair, stdin_source, ReportReader};
use crate::plan::{Job, SandboxSpec};
use crate::report::Report;
use crate::stream::OutputSink;
use crate::watch::{self, JobEnd, JobPipes, KillPath};

/// How long a sandbox may take to be built, and a job to start.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How jobs reach the sandbox: the part of a live sandbox that differs between backends.
#[derive(Debug)]
pub(crate) enum Jobs {
    /// An init of warden's own serves jobs from the control channel (native and trusted).
    Init {
        /// The parent's end of the control channel.
        control: OwnedFd,
        /// The init, in the host's pid namespace, and its pidfd (to ask it to end a job,
        /// `child::END_JOB`); known once the sandbox is ready.
        init: Option<(Pid, OwnedFd)>,
        /// How a job maps onto the host (trusted), or `None`: its paths, and what it says of
        /// its user.
        relocate: Option<fn(&Job, &std::path::Path, u32) -> Job>,
        /// The directory `relocate` maps into, and the run's host uid.
        host_dir: Option<(PathBuf, u32)>,
    },
    /// Another runtime's own init; each job is a process the parent starts (gVisor's
    /// `runsc exec`), built by this function from the job.
    Process(Box<dyn JobLauncher>),
}

/// Starts a job as a host process of its own (a runtime's `exec` command), whose exit status
/// is the job's.
pub(crate) trait JobLauncher: std::fmt::Debug + Send {
    /// Writes the job's files into the sandbox and returns the command that runs it.
    fn prepare(&mut self, job: &Job) -> Result<std::process::Command, SandboxError>;
    /// How that process's exit status reads as the program's.
    fn status(&self, status: std::process::ExitStatus) -> crate::report::ExitStatus;
    /// Waits until the runtime takes jobs (after the helper's `Ready`).
    fn await_running(&self) -> Result<(), SandboxError>;
    /// After a job that exited 0: what it names to collect, in `collect.rs`'s stream format.
    fn collect(&self, path: &std::path::Path) -> Result<Vec<u8>, SandboxError>;
    /// What tells when the program of the job just prepared starts, when that is later than
    /// its process's (a one-job gVisor sandbox boots first); `None`: at once.
    fn program_start(&mut self) -> Option<Box<dyn crate::watch::ProgramStart>> {
        None
    }
    /// How a signal reaches the program of the job just prepared, when the runtime's own init
    /// passes signals on as warden's does (`child::forwards`: a one-job gVisor sandbox);
    /// `None`: any signal ends the job.
    fn program_signals(&self) -> Option<crate::watch::SignalProgram> {
        None
    }
    /// A host process in the runtime's network namespace, once it runs (gVisor's sandbox
    /// process on the host's network stack); `None` when its network is its own.
    fn network_pid(&self) -> Option<Pid> {
        None
    }
    /// Whether the runtime that outlives jobs (gVisor's sentry) has ended: a job that ended
    /// with it did not end on its own, whatever its process's status says.
    fn runtime_ended(&self) -> bool {
        false
    }
    /// Why the runtime failed under the job, when its own report says so (a one-job gVisor
    /// sandbox's crashed sentry): the job's status is then the runtime's, not the program's.
    fn runtime_failure(&self) -> Option<String> {
        None
    }
    /// The command that ends the processes of `job` and leaves the sandbox to the next job,
    /// for a limit or a signal that ends the job (a runtime's exec that kills them); `None`:
    /// the whole sandbox ends with such a job.
    fn end_job(&mut self, _job: &Job) -> Result<Option<std::process::Command>, SandboxError> {
        Ok(None)
    }
    /// After a job whose process ended with `status` (the sandbox still running): ends what
    /// the job left running when its own process could not have (a gVisor job's loader dead
    /// by a signal). An error leaves the sandbox unfit for another job.
    fn end_leftovers(
        &mut self,
        _job: &Job,
        _status: crate::report::ExitStatus,
    ) -> Result<(), SandboxError> {
        Ok(())
    }
}

/// Why a sandbox ended when its runtime (gVisor's sentry) died after the cgroup refused it a
/// thread: gVisor's ptrace platform keeps host threads for the program's processes
/// (docs/sandbox-setup.md, the isolated backend).
const RUNTIME_OUT_OF_THREADS: &str =
    "its runtime ended during a job, after reaching its limit of host threads";

/// The error of a job whose process (a runtime's, `runsc run`) ended with `status` before its
/// program started, with the end of what it wrote on stderr.
fn runtime_failed(status: std::process::ExitStatus, stderr: &[u8]) -> SandboxError {
    const SHOWN: usize = 512;
    let said = String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(SHOWN)..]);
    let said = said.trim();
    SandboxError::setup(
        "start the runtime's container".into(),
        if said.is_empty() {
            format!("the runtime ended ({status}) before the program started")
        } else {
            format!("the runtime ended ({status}) before the program started: {said}")
        },
    )
}

/// What a backend hands over for the common lifecycle.
pub(crate) struct Parts {
    pub(crate) name: String,
    pub(crate) spec: SandboxSpec,
    pub(crate) slot: Option<IdSlot>,
    pub(crate) cgroup: Cgroup,
    pub(crate) helper: HelperProcess,
    pub(crate) report: OwnedFd,
    pub(crate) lifeline: OwnedFd,
    /// The parent's end of the control channel, for backends with warden's init.
    pub(crate) control: Option<OwnedFd>,
    /// Undone when the sandbox is destroyed, after its processes are gone.
    pub(crate) cleanup: Cleanup,
    /// Memory and threads of the backend's own runtime in the cgroup, on top of each job's
    /// limits: gVisor's sentry and gofer, or warden's init (`parent::INIT_PIDS`).
    pub(crate) overhead: (ByteSize, u32),
}

/// What a backend prepared on the host for one sandbox (a trusted run's directory, a gVisor
/// bundle), undone at its end: by the sandbox's teardown, after its processes are gone, which
/// reports what failed; or, for a sandbox that never started (a descriptor, the helper's fork
/// refused), when dropped.
pub(crate) struct Cleanup(Vec<Box<dyn FnOnce() -> Result<(), SandboxError> + Send>>);

impl Cleanup {
    pub(crate) fn new(steps: Vec<Box<dyn FnOnce() -> Result<(), SandboxError> + Send>>) -> Self {
        Self(steps)
    }

    /// Runs every step not run yet, in order; the first error, once all have run.
    fn run(&mut self) -> Result<(), SandboxError> {
        let mut first_error = None;
        for undo in self.0.drain(..) {
            if let Err(e) = undo() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.run() {
            tracing::warn!(error = %e, "undoing a sandbox's preparation that never started");
        }
    }
}

/// Reads a live sandbox's current use (`LiveSandbox::usage_reader`).
#[derive(Debug, Clone)]
pub struct UsageReader {
    cgroup: crate::cgroup::CgroupReader,
    since: std::time::Instant,
}

impl UsageReader {
    /// Memory, tasks and cpu time now; `None` once the sandbox is gone. `t_ms` counts from when
    /// the reader was made.
    pub fn sample(&self) -> Option<warden_core::UsageSample> {
        let (memory, pids) = self.cgroup.current().ok()?;
        Some(warden_core::UsageSample {
            at: self.since.elapsed(),
            cpu_time: self.cgroup.cpu_time().ok()?,
            memory,
            pids,
        })
    }
}

/// A sandbox that exists and waits for jobs; see the module documentation.
pub struct LiveSandbox {
    name: String,
    spec: SandboxSpec,
    jobs: Option<Jobs>,
    helper: HelperProcess,
    helper_pidfd: OwnedFd,
    helper_done: bool,
    report: ReportReader,
    lifeline: Option<OwnedFd>,
    cancel: CancelHandle,
    cancel_read: OwnedFd,
    /// The read end of the cancel handle's signals.
    signals_read: OwnedFd,
    cgroup: Option<Cgroup>,
    slot: Option<IdSlot>,
    cleanup: Cleanup,
    /// The memory and process limits of the job the cgroup is now set for.
    cgroup_limits: (ByteSize, u32),
    /// What the backend's runtime adds to them (`Parts::overhead`).
    overhead: (ByteSize, u32),
    /// Why the sandbox can run no more jobs, once it cannot.
    dead: Option<&'static str>,
    destroyed: bool,
    /// Whether the sandbox reported ready (`wait_ready`).
    ready: bool,
    /// The cgroup's cpu count when the init reported ready after its build (`Report::Ready`).
    built_cpu: Option<Duration>,
    /// Whether the helper reports the init's pid (backends with warden's own init).
    wants_init: bool,
    /// Jobs sent so far.
    jobs_run: u64,
}

impl std::fmt::Debug for LiveSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSandbox")
            .field("name", &self.name)
            .field("init", &self.init_pid())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl LiveSandbox {
    /// Takes over what a backend started (its readiness is awaited by `wait_ready`). A failure
    /// destroys what was started.
    pub(crate) fn start(
        parts: Parts,
        wants_init: bool,
        launcher: Option<Box<dyn JobLauncher>>,
    ) -> Result<Self, SandboxError> {
        let held = lease().and_then(|lease| {
            let pidfd = parts
                .helper
                .open_pidfd()
                .map_err(|e| SandboxError::Helper {
                    action: "opening a pidfd of the helper",
                    source: e.into(),
                })?;
            Ok((lease, pidfd))
        });
        let ((cancel, cancel_read, signals_read), helper_pidfd) = match held {
            Ok(held) => held,
            Err(e) => {
                abandon(parts);
                return Err(e);
            }
        };
        let mut sandbox = Self {
            name: parts.name,
            cgroup_limits: (parts.spec.limits.memory, parts.spec.limits.max_procs),
            overhead: parts.overhead,
            spec: parts.spec,
            jobs: None,
            helper: parts.helper,
            helper_pidfd,
            helper_done: false,
            report: ReportReader::new(parts.report)?,
            lifeline: Some(parts.lifeline),
            cancel,
            cancel_read,
            signals_read,
            cgroup: Some(parts.cgroup),
            slot: parts.slot,
            cleanup: parts.cleanup,
            dead: None,
            destroyed: false,
            ready: false,
            built_cpu: None,
            wants_init,
            jobs_run: 0,
        };
        sandbox.jobs = Some(match (parts.control, launcher) {
            (Some(control), _) => {
                control::limit_send_time(&control).map_err(|source| SandboxError::Helper {
                    action: "configuring the control channel",
                    source,
                })?;
                Jobs::Init {
                    control,
                    init: None,
                    relocate: None,
                    host_dir: None,
                }
            }
            (None, Some(launcher)) => Jobs::Process(launcher),
            (None, None) => {
                return Err(SandboxError::Setup {
                    step: "start the sandbox".into(),
                    detail: "the backend gave no way to run jobs".into(),
                })
            }
        });
        Ok(sandbox)
    }

    /// Waits until the sandbox is built and takes jobs (the helper's `Init`, the init's or
    /// the runtime's `Ready`). A failure leaves the sandbox dead; drop or destroy it.
    pub fn wait_ready(&mut self) -> Result<(), SandboxError> {
        if self.ready {
            return Ok(());
        }
        let waited =
            self.await_ready(self.wants_init)
                .and_then(|init| match (&mut self.jobs, init) {
                    (Some(Jobs::Init { init: slot, .. }), Some(pid)) => {
                        let pidfd = warden_sys::process::pidfd_open(pid).map_err(|e| {
                            SandboxError::Helper {
                                action: "opening a pidfd of the sandbox's init",
                                source: e.into(),
                            }
                        })?;
                        *slot = Some((pid, pidfd));
                        Ok(())
                    }
                    (Some(Jobs::Process(launcher)), _) => launcher.await_running(),
                    _ => Err(SandboxError::Vanished),
                });
        match waited {
            Ok(()) => {
                self.ready = true;
                Ok(())
            }
            Err(e) => {
                self.dead = Some("its setup failed");
                Err(e)
            }
        }
    }

    /// Maps each job's paths onto the host before it is sent (the trusted backend).
    pub(crate) fn relocate_jobs(
        &mut self,
        f: fn(&Job, &std::path::Path, u32) -> Job,
        dir: PathBuf,
        uid: u32,
    ) {
        if let Some(Jobs::Init {
            relocate, host_dir, ..
        }) = &mut self.jobs
        {
            *relocate = Some(f);
            *host_dir = Some((dir, uid));
        }
    }

    /// Waits for `Ready` (and, when `wants_init`, the init's pid) within [`SETUP_TIMEOUT`].
    fn await_ready(&mut self, wants_init: bool) -> Result<Option<Pid>, SandboxError> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut init = None;
        let mut ready = false;
        let mut failure = None;
        while !(ready && (init.is_some() || !wants_init)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SandboxError::Setup {
                    step: "wait for the sandbox to start".into(),
                    detail: "timed out".into(),
                });
            }
            let mut fds = [
                PollFd::new(self.report.fd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.helper_pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(SandboxError::Helper {
                        action: "polling the sandbox",
                        source: e.into(),
                    })
                }
            }
            let helper_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
            let mut kept = Vec::new();
            for report in self.report.read() {
                match report {
                    Ok(Report::Init { pid }) => init = Some(Pid::from_raw(pid)),
                    // What follows `Ready` belongs to the first job, already on its way. The
                    // helper's `Init` may come after it: the init does not wait for the
                    // helper to report, and a trusted init is ready at once.
                    other if ready => kept.push(other),
                    Ok(Report::Ready { cgroup_cpu_ns }) => {
                        ready = true;
                        self.built_cpu = cgroup_cpu_ns.map(Duration::from_nanos);
                    }
                    Ok(Report::SetupFailed { step, detail }) => {
                        failure.get_or_insert(SandboxError::setup(step, detail));
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected report before Ready"),
                    Err(line) => tracing::warn!(%line, "unreadable line on the report pipe"),
                }
            }
            self.report.keep(kept);
            if let Some(failure) = failure.take() {
                return Err(failure);
            }
            if helper_gone && !(ready && (init.is_some() || !wants_init)) {
                // Its last reports may still be in the pipe.
                for report in self.report.read() {
                    if let Ok(Report::SetupFailed { step, detail }) = report {
                        return Err(SandboxError::setup(step, detail));
                    }
                }
                return Err(SandboxError::Vanished);
            }
        }
        Ok(init)
    }

    /// Gives the sandbox a new [`CancelHandle`] (a new lease): the handles handed out before
    /// neither cancel nor signal it any more. For a sandbox that serves one caller after
    /// another (a reset one, a session's between calls). Refused once cancelled.
    pub fn renew_lease(&mut self) -> Result<(), SandboxError> {
        if self.cancel.is_cancelled() {
            return Err(SandboxError::cancelled());
        }
        (self.cancel, self.cancel_read, self.signals_read) = lease()?;
        Ok(())
    }

    /// The handle that cancels this sandbox from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// The init's pid in the host's pid namespace (backends with warden's own init).
    pub fn init_pid(&self) -> Option<Pid> {
        match &self.jobs {
            Some(Jobs::Init { init, .. }) => init.as_ref().map(|(pid, _)| *pid),
            _ => None,
        }
    }

    /// The sandbox's network namespace, as a path another process may `setns` into while the
    /// sandbox lives (`/proc/<init>/ns/net`). For gVisor, the namespace its runtime runs in
    /// when the spec has egress (on the host's network stack); `None` otherwise (gVisor's own
    /// stack is inside its kernel).
    pub fn network_namespace(&self) -> Option<PathBuf> {
        let pid = match &self.jobs {
            Some(Jobs::Process(launcher)) if self.spec.egress => launcher.network_pid(),
            _ => self.init_pid(),
        }?;
        Some(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// Reads the sandbox's whole use (every job and process in it) from any thread while it
    /// lives: a session's state shows it. `None` for a backend without a cgroup.
    pub fn usage_reader(&self) -> Option<UsageReader> {
        self.cgroup.as_ref().map(|c| UsageReader {
            cgroup: c.reader(),
            since: std::time::Instant::now(),
        })
    }

    /// The sandbox's spec.
    pub fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    /// How many jobs it was sent.
    pub fn jobs_run(&self) -> u64 {
        self.jobs_run
    }

    /// What ended it, once it can run no more jobs (`None` while it can, or when it was
    /// cancelled).
    pub fn ended_because(&self) -> Option<&'static str> {
        self.dead
    }

    /// Whether it can still run jobs.
    pub fn is_alive(&self) -> bool {
        self.dead.is_none() && !self.cancel.is_cancelled()
    }

    /// Runs one job to its end: its own output, limits and accounting. A program's failure is
    /// `Ok`; `Err` is warden's (or a cancel). After a job, the sandbox holds only its init.
    pub fn run(&mut self, job: &Job, stdin: Stdin) -> Result<SandboxRun, SandboxError> {
        self.run_streaming(job, stdin, &mut |_: Stream, _: &[u8]| true)
    }

    /// Runs one job as [`run`](Self::run) does, handing its output to `sink` as it is read,
    /// while the job runs; `sink` can end the job ([`OutputSink`]). With
    /// [`Stdin::Pipe`] fed by another thread, this serves an interactive program; the caller
    /// keeps the pipe's write end close-on-exec (`pipe2(O_CLOEXEC)`), or a job process the
    /// parent starts (gVisor's `runsc exec`) inherits it and the program never reads
    /// end-of-file.
    pub fn run_streaming(
        &mut self,
        job: &Job,
        stdin: Stdin,
        sink: &mut dyn OutputSink,
    ) -> Result<SandboxRun, SandboxError> {
        if self.cancel.is_cancelled() {
            return Err(SandboxError::cancelled());
        }
        if let Some(why) = self.dead {
            return Err(SandboxError::Gone { why });
        }
        job.validate(&self.spec)?;
        job.limits.validate(&LimitBounds::default())?;
        if matches!(self.jobs, Some(Jobs::Process(_))) {
            self.wait_ready()?;
        }
        let counted = self.prepare_accounting(job)?;
        let (stdin_read, stdin_feed) = stdin_source(stdin)?;
        // gVisor makes the host descriptors it is given non-blocking and hands a program's
        // blocking write the short count of a full pipe: the rest of the output would be lost
        // without a word. A socket's buffer takes it whole.
        let output = if matches!(self.jobs, Some(Jobs::Process(_))) {
            socket_pair
        } else {
            pipe
        };
        let (stdout_read, stdout_write) = output()?;
        let (stderr_read, stderr_write) = output()?;
        // A runtime's job (gVisor) has no init of warden's to send its files: the parent reads
        // them after the job (`JobLauncher::collect`).
        let process = matches!(self.jobs, Some(Jobs::Process(_)));
        let artifacts = match (&job.collect, process) {
            (Some(_), false) => Some(pipe()?),
            _ => None,
        };
        // A directory whose file system has no unnamed files (`O_TMPFILE`) collects in memory,
        // as a job without a spool does, rather than failing the job.
        let spool = match (&job.spool, &artifacts) {
            (Some(dir), Some(_)) => spool_in(dir)
                .inspect_err(|e| tracing::warn!(error = %e, "collecting in memory instead"))
                .ok(),
            _ => None,
        };
        let null = std::fs::File::open("/dev/null").map_err(|source| SandboxError::Helper {
            action: "opening /dev/null",
            source,
        })?;
        let stdin_fd = stdin_read.unwrap_or_else(|| OwnedFd::from(null));
        let end = self.start_job(
            job,
            SendFds {
                stdin: stdin_fd.as_fd(),
                stdout: stdout_write.as_fd(),
                // Merged: the program's descriptor 2 is the same pipe as 1, and the stderr
                // pipe, whose write end no one holds, reads end-of-file at once.
                stderr: if job.merge_stderr {
                    stdout_write.as_fd()
                } else {
                    stderr_write.as_fd()
                },
                artifacts: artifacts.as_ref().map(|(_, w)| w.as_fd()),
            },
        );
        // The sandbox holds its own copies now; the parent must see end-of-file when they close.
        drop((stdin_fd, stdout_write, stderr_write));
        let oom_before = counted.as_ref().map_or(0, |c| c.oom_kills);
        let end = end.map_err(|e| self.files_misfit(job, oom_before).unwrap_or(e))?;
        self.jobs_run += 1;
        // A first job sent while the sandbox was still being built: its setup ends first, and
        // the job counts from where the init read the cgroup's cpu before reporting ready.
        self.wait_ready()?;
        let mut before = counted.unwrap_or(CgroupStats {
            cpu_time: self.built_cpu.unwrap_or_default(),
            ..CgroupStats::default()
        });
        let pipes = JobPipes {
            stdout: stdout_read,
            stderr: stderr_read,
            artifacts: artifacts.map(|(r, w)| {
                drop(w);
                r
            }),
            stdin: stdin_feed,
        };
        let kill = match &self.jobs {
            Some(Jobs::Init {
                init: Some((_, init_pidfd)),
                ..
            }) => KillPath::AskInit(init_pidfd),
            _ => KillPath::WholeSandbox,
        };
        let cgroup = self
            .cgroup
            .as_ref()
            .ok_or(SandboxError::Gone { why: "destroyed" })?;
        let watched = watch::watch_job(watch::Watch {
            pipes,
            end,
            report: &mut self.report,
            helper: &mut self.helper,
            helper_pidfd: &self.helper_pidfd,
            helper_done: &mut self.helper_done,
            cancel: &self.cancel_read,
            signals: &self.signals_read,
            cgroup,
            limits: &job.limits,
            truncate_output: job.truncate_output,
            cpu_before: before.cpu_time,
            kill,
            sink,
            spool,
        })?;
        let mut watched = watched;
        if let Some(cpu) = watched.cpu_at_start {
            // The program started after its process did (a runtime's boot): it counts from
            // there.
            before.cpu_time = cpu;
        }
        if let Some(status) = watched.process_status {
            watched.status = Some(self.launcher_status(status));
        }
        if self.helper_done {
            self.dead = Some("the sandbox ended");
        }
        if watched.cancelled {
            self.dead = Some("cancelled");
            // Read as a finished job's are; a cgroup that cannot be read any more leaves the
            // usage at zero, never the cancel unsaid.
            let used = cgroup
                .stats()
                .map_or(CgroupStats::default(), |after| used_since(&before, &after));
            return Err(SandboxError::Cancelled {
                ran: watched
                    .program_started
                    .then(|| Box::new(cancelled(watched, &used, job))),
            });
        }
        if let (Some(Jobs::Process(launcher)), Some(path)) = (&self.jobs, &job.collect) {
            if watched.status == Some(crate::report::ExitStatus::Code(0)) {
                watched.artifacts = launcher.collect(path)?;
            }
        }
        if watched.sandbox_killed {
            // By a limit, or for processes the job left that could not be ended otherwise.
            self.dead = Some(if watched.killed.is_some() {
                "a limit ended the whole sandbox"
            } else {
                "the processes a job left could not be ended"
            });
        }
        if let Some(what) = &watched.tainted {
            tracing::warn!(sandbox = %self.name, %what, "a job changed the sandbox's init");
            self.dead = Some("a job changed the limits of the sandbox's init");
        }
        if let Some(Jobs::Process(launcher)) = &self.jobs {
            if !watched.sandbox_killed && launcher.runtime_ended() {
                // Not by warden's hand (a limit). The memory cgroup's OOM killer picks the
                // largest task, which is the sentry when the program took the memory (cgroup
                // v1 kills one task, not the job's): the program reached its memory limit,
                // and its result says so. Otherwise runsc's own failure (`runsc exec` exits
                // 128 when its sentry is gone), not the program's, which has no status of its
                // own.
                let after = cgroup.stats().ok();
                if after.is_some_and(|s| s.oom_kills > before.oom_kills) {
                    self.dead = Some("a limit ended the whole sandbox");
                } else {
                    let threads =
                        after.is_some_and(|s| s.process_limit_hits > before.process_limit_hits);
                    let why = if threads {
                        RUNTIME_OUT_OF_THREADS
                    } else {
                        "its runtime ended during a job"
                    };
                    self.dead = Some(why);
                    return Err(SandboxError::Gone { why });
                }
            }
        }
        if let (Some(Jobs::Process(launcher)), Some(status), None, false) = (
            &mut self.jobs,
            watched.status,
            self.dead,
            watched.ended_in_sandbox,
        ) {
            if let Err(e) = launcher.end_leftovers(job, status) {
                tracing::warn!(sandbox = %self.name, error = %e, "a job's processes outlived it");
                self.dead = Some("the processes a job left could not be ended");
            }
        }
        if let Some((step, detail)) = watched.setup_failure {
            return Err(SandboxError::setup(step, detail));
        }
        if let (Some(Jobs::Process(launcher)), Some(_), None) =
            (&self.jobs, watched.process_status, watched.killed)
        {
            // Hunt gv 2: a one-job sandbox's sentry that crashed under its job made `runsc
            // run` exit with the sentry's status (2), read as the program's.
            if let Some(why) = launcher.runtime_failure().filter(|_| {
                !cgroup
                    .stats()
                    .is_ok_and(|after| after.oom_kills > before.oom_kills)
            }) {
                self.dead = Some("its runtime failed");
                return Err(SandboxError::setup(
                    "run the runtime's container".into(),
                    why,
                ));
            }
        }
        if let (false, Some(status), None) = (
            watched.program_started,
            watched.process_status,
            watched.killed,
        ) {
            // Hunt gv 2: a job's process that ended before its program started (a one-job
            // gVisor sandbox's `runsc run` that could not boot: its threads refused, a broken
            // runsc) is the runtime's failure; its status and stderr are runsc's, never the
            // program's. The memory cgroup's OOM killer (the sentry taking the job's memory)
            // stays a memory limit.
            if !cgroup
                .stats()
                .is_ok_and(|after| after.oom_kills > before.oom_kills)
            {
                self.dead = Some("its runtime failed to start");
                return Err(runtime_failed(status, &watched.stderr.data));
            }
        }
        if !watched.program_started {
            if let Some(misfit) = self.files_misfit(job, oom_before) {
                return Err(misfit);
            }
        }
        let after = cgroup.stats()?;
        finish(watched, &used_since(&before, &after), job)
    }

    /// The error of a job whose program never started because the memory cgroup killed the
    /// init while it wrote the job's files (the files, with the init's own memory, took the
    /// job's memory: the init refuses files that take it all by themselves, `workspace.rs`);
    /// `None` if there was no such kill since `oom_before`, or the job had no files, or no
    /// init of warden's wrote them (gVisor's are written by the parent, charged to it).
    fn files_misfit(&self, job: &Job, oom_before: u64) -> Option<SandboxError> {
        if !matches!(self.jobs, Some(Jobs::Init { .. })) {
            return None;
        }
        let files = job
            .files
            .iter()
            .map(|f| f.len)
            .fold(0u64, u64::saturating_add);
        let killed = self.cgroup.as_ref()?.stats().ok()?.oom_kills > oom_before;
        (killed && files > 0).then_some(SandboxError::WorkspaceMisfit {
            limit: "memory",
            size: job.limits.memory,
            holds: ByteSize(0),
            files: ByteSize(files),
        })
    }

    /// Makes the sandbox fit for an unrelated next job (native backend only): the init
    /// replaces the workspace (`/work` and `/tmp`) with an empty one and enters a new IPC
    /// namespace; every process of the last job is already gone. What stays is what no job
    /// can change (the read-only tree, the host name, the limits' ceilings) and what the
    /// kernel keeps per namespace beyond a job's processes (the pid counter, loopback ports in
    /// `TIME_WAIT`): a caller reuses a sandbox only for jobs of the same owner
    /// (docs/sandbox-setup.md, Reset). A failure leaves the sandbox dead; destroy it.
    pub fn reset(&mut self) -> Result<(), SandboxError> {
        // A new lease: the last run's handles (a client of it that leaves, say) no longer
        // reach this sandbox.
        self.renew_lease()?;
        if let Some(why) = self.dead {
            return Err(SandboxError::Gone { why });
        }
        let control = match &self.jobs {
            Some(Jobs::Init {
                control,
                init: Some(_),
                relocate: None,
                ..
            }) if self.ready => control,
            _ => {
                return Err(SandboxError::Unsupported {
                    feature: "resetting a sandbox",
                    detail: "only a ready native sandbox can be reset".into(),
                })
            }
        };
        let sent = control::send_reset(control).map_err(|source| SandboxError::Helper {
            action: "asking the sandbox to reset",
            source,
        });
        let answered = sent.and_then(|()| self.await_reset());
        if answered.is_err() {
            self.dead = Some("its reset failed");
        }
        answered
    }

    /// Waits for the init's answer to a reset: `Ready`, or the step that failed.
    fn await_reset(&mut self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + control::SEND_TIMEOUT;
        loop {
            for report in self.report.read() {
                match report {
                    Ok(Report::Ready { .. }) => return Ok(()),
                    Ok(Report::SetupFailed { step, detail }) => {
                        return Err(SandboxError::setup(step, detail))
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected report during a reset"),
                    Err(line) => tracing::warn!(%line, "unreadable line on the report pipe"),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.report.eof {
                return Err(SandboxError::Setup {
                    step: "reset".into(),
                    detail: if left.is_zero() {
                        "timed out".into()
                    } else {
                        "the sandbox ended".into()
                    },
                });
            }
            let mut fds = [PollFd::new(self.report.fd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(SandboxError::Helper {
                        action: "polling the sandbox",
                        source: e.into(),
                    })
                }
            }
        }
    }

    /// Applies the job's memory and process limits to the cgroup (when they differ from the
    /// last job's), resets the memory peak, and returns the counters before the job; `None`
    /// while the sandbox is being built.
    fn prepare_accounting(&mut self, job: &Job) -> Result<Option<CgroupStats>, SandboxError> {
        let cgroup = self
            .cgroup
            .as_ref()
            .ok_or(SandboxError::Gone { why: "destroyed" })?;
        let wanted = (job.limits.memory, job.limits.max_procs);
        if wanted != self.cgroup_limits {
            let memory = ByteSize(wanted.0.bytes().saturating_add(self.overhead.0.bytes()));
            cgroup
                .set_limits(memory, wanted.1.saturating_add(self.overhead.1))
                .map_err(|e| match e {
                    CgroupError::MemoryHeld { held, .. } => SandboxError::MemoryHeld {
                        limit: wanted.0,
                        held,
                    },
                    e => e.into(),
                })?;
            self.cgroup_limits = wanted;
        }
        if self.jobs_run == 0 && !self.ready {
            // A first job sent while the sandbox is still being built: the cgroup is fresh
            // (no peak to reset, no OOM kill, no refused fork), and the parent cannot read
            // its cpu count at the moment the job starts, since the init forks the payload
            // right after `Ready`. The init reads it before `Ready` instead (`built_cpu`); a
            // count read later here could hold the job's own cpu. A sandbox made ready
            // earlier (a pooled one) counts from its state when the job starts.
            return Ok(None);
        }
        cgroup.reset_peak();
        Ok(Some(cgroup.stats()?))
    }

    /// Sends the job to the init, or starts its process.
    fn start_job(&mut self, job: &Job, fds: SendFds<'_>) -> Result<JobEnd, SandboxError> {
        match self.jobs.as_mut() {
            Some(Jobs::Init {
                control,
                relocate,
                host_dir,
                ..
            }) => {
                let moved;
                let job = match (relocate, host_dir.as_ref()) {
                    (Some(f), Some((dir, uid))) => {
                        moved = f(job, dir, *uid);
                        &moved
                    }
                    _ => job,
                };
                control::send_job(control, job, fds).map_err(|source| {
                    self.dead = Some("its control channel failed");
                    SandboxError::Helper {
                        action: "sending a job to the sandbox",
                        source,
                    }
                })?;
                Ok(JobEnd::Reported)
            }
            Some(Jobs::Process(launcher)) => {
                use std::os::unix::process::CommandExt as _;
                let mut command = launcher.prepare(job)?;
                let stdio = |fd: BorrowedFd<'_>| {
                    fd.try_clone_to_owned()
                        .map(std::process::Stdio::from)
                        .map_err(|source| SandboxError::Helper {
                            action: "duplicating a job's pipe",
                            source,
                        })
                };
                command
                    .stdin(stdio(fds.stdin)?)
                    .stdout(stdio(fds.stdout)?)
                    .stderr(stdio(fds.stderr)?)
                    // Never in its owner's process group (a terminal's Ctrl-C would kill the
                    // runtime outright): signals reach the program through `program_signals`.
                    .process_group(0);
                let start = launcher.program_start();
                let signals = launcher.program_signals();
                let end_job = launcher.end_job(job)?.map(Box::new);
                let child = command.spawn().map_err(|source| SandboxError::Helper {
                    action: "starting a job's process",
                    source,
                })?;
                Ok(JobEnd::Process {
                    child,
                    started: Instant::now(),
                    start,
                    signals,
                    end_job,
                })
            }
            None => Err(SandboxError::Gone { why: "destroyed" }),
        }
    }

    /// Maps a job process's exit status to the program's (for `Jobs::Process`).
    pub(crate) fn launcher_status(
        &self,
        status: std::process::ExitStatus,
    ) -> crate::report::ExitStatus {
        match &self.jobs {
            Some(Jobs::Process(launcher)) => launcher.status(status),
            _ => crate::report::ExitStatus::Code(status.code().unwrap_or(-1)),
        }
    }

    /// Lets the sandbox end without waiting: its init reads end-of-file and exits, and the
    /// helper, its lifeline cut, follows, while the caller does something else (the CLI writes
    /// its history record meanwhile). It runs no more jobs; [`LiveSandbox::destroy`] (or
    /// dropping it) then waits for them and removes what is left.
    pub fn let_go(&mut self) {
        self.jobs = None;
        self.lifeline = None;
    }

    /// Ends the sandbox and removes everything it held on the host. Errors name what could
    /// not be removed; everything else is still removed.
    pub fn destroy(mut self) -> Result<(), SandboxError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), SandboxError> {
        if self.destroyed {
            return Ok(());
        }
        self.destroyed = true;
        // The init reads end-of-file and exits; the helper, its lifeline cut, kills it anyway,
        // reaps it and exits. Waiting for that is quicker than killing the cgroup's tasks
        // (which polls until they are gone), and leaves the cgroup empty for its removal.
        self.let_go();
        if !self.helper_done {
            self.reap_helper();
        }
        let mut first_error = self.cleanup.run().err();
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.kill_all();
            if let Err(e) = cgroup.remove() {
                first_error.get_or_insert(e.into());
            }
        }
        self.slot = None;
        first_error.map_or(Ok(()), Err)
    }

    /// Waits for the helper to exit; kills it if it takes longer than a grace period.
    fn reap_helper(&mut self) {
        let mut fds = [PollFd::new(self.helper_pidfd.as_fd(), PollFlags::POLLIN)];
        let grace = PollTimeout::try_from(watch::KILL_GRACE).unwrap_or(PollTimeout::MAX);
        if !matches!(poll(&mut fds, grace), Ok(n) if n > 0) {
            let _ = warden_sys::process::pidfd_send_signal(&self.helper_pidfd, Signal::SIGKILL);
        }
        let _ = self.helper.wait();
        self.helper_done = true;
    }
}

impl Drop for LiveSandbox {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(sandbox = %self.name, error = %e, "destroying a sandbox on drop");
        }
    }
}

/// Ends what a backend started for a sandbox that could not be taken over: the helper killed
/// and waited for (its lifeline too would end it, but not before the cleanup ran), then the
/// cleanup, then the rest (the cgroup removed, the slot released last).
fn abandon(mut parts: Parts) {
    parts.helper.kill();
    if let Err(e) = parts.helper.wait() {
        tracing::warn!(sandbox = %parts.name, error = %e, "waiting for an abandoned helper");
    }
    drop(std::mem::replace(
        &mut parts.cleanup,
        Cleanup::new(Vec::new()),
    ));
}

/// A new cancel handle and the read ends of its cancel and signal pipes.
fn lease() -> Result<(CancelHandle, OwnedFd, OwnedFd), SandboxError> {
    let (cancel_read, cancel_write) = pipe()?;
    let (signals_read, signals_write) = nix::unistd::pipe2(
        nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
    )
    .map_err(|e| SandboxError::Helper {
        action: "creating a pipe",
        source: e.into(),
    })?;
    Ok((
        CancelHandle::new(cancel_write, signals_write),
        cancel_read,
        signals_read,
    ))
}

/// What the cgroup accounted for one job: the counters at its end less those before it.
fn used_since(before: &CgroupStats, after: &CgroupStats) -> CgroupStats {
    CgroupStats {
        cpu_time: after.cpu_time.saturating_sub(before.cpu_time),
        peak_memory: after.peak_memory,
        oom_kills: after.oom_kills.saturating_sub(before.oom_kills),
        process_limit_hits: after
            .process_limit_hits
            .saturating_sub(before.process_limit_hits),
    }
}

/// How the job ended, from what the watch saw and the cgroup accounted; `None` when nothing
/// says (the helper ended without reporting the program's end).
fn verdict(w: &watch::Watched, used: &CgroupStats, job: &Job) -> Option<warden_core::Outcome> {
    let killed_for = w
        .seccomp_kills
        .iter()
        .find(|c| c.program)
        .map(|c| c.name.as_str());
    let certainty = if w.process_status.is_some() {
        crate::verdict::SignalCertainty::ExitCode
    } else {
        crate::verdict::SignalCertainty::WaitStatus
    };
    crate::verdict::decide(
        w.killed,
        killed_for,
        w.killer,
        (w.status, certainty),
        w.file_at_limit,
        used,
        &job.limits,
    )
}

/// What a cancelled job ran until the cancel ([`SandboxError::Cancelled`]): its outcome is
/// `cancelled`, unless it had already ended, or was being ended for a limit, when the cancel
/// came (then its own, when known); nothing is collected.
fn cancelled(w: watch::Watched, used: &CgroupStats, job: &Job) -> SandboxRun {
    let outcome = w
        .ended_before_cancel
        .then(|| verdict(&w, used, job))
        .flatten()
        .unwrap_or(warden_core::Outcome::Cancelled);
    run_of(w, used, outcome, Vec::new(), None, None)
}

/// An unnamed file in `dir` for a job's collected files (`Job::spool`), gone with its last
/// descriptor: nothing is left behind whatever ends warden.
fn spool_in(dir: &std::path::Path) -> Result<std::fs::File, SandboxError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .map_err(|source| SandboxError::Helper {
            action: "creating the spool of the collected files",
            source,
        })
}

/// The job's result from what the watch saw and the cgroup accounted.
fn finish(
    mut w: watch::Watched,
    used: &CgroupStats,
    job: &Job,
) -> Result<SandboxRun, SandboxError> {
    let outcome = verdict(&w, used, job).ok_or(SandboxError::Vanished)?;
    let exited_cleanly = outcome == warden_core::Outcome::Exited { code: 0 };
    let mut spooled = None;
    let (collected, collect_error): (Vec<CollectedFile>, _) = match (&job.collect, exited_cleanly) {
        (Some(path), true) if w.artifacts_overflow => {
            (Vec::new(), Some(format!("{} is too large", path.display())))
        }
        (Some(_), true) if w.spool_error.is_some() => (
            Vec::new(),
            w.spool_error
                .take()
                .map(|e| format!("spooling the collected files: {e}")),
        ),
        (Some(_), true) => match w.spool.take() {
            Some((file, _)) => match crate::collect::SpooledFiles::scan(file) {
                Ok(files) => {
                    spooled = Some(files);
                    (Vec::new(), None)
                }
                Err(e) => (Vec::new(), Some(e)),
            },
            None => match crate::collect::parse_owned(std::mem::take(&mut w.artifacts)) {
                Ok(files) => (files, None),
                Err(e) => (Vec::new(), Some(e)),
            },
        },
        _ => (Vec::new(), None),
    };
    Ok(run_of(w, used, outcome, collected, collect_error, spooled))
}

/// A job's result: what the watch saw, the cgroup's accounting, and the outcome.
fn run_of(
    w: watch::Watched,
    used: &CgroupStats,
    outcome: warden_core::Outcome,
    collected: Vec<CollectedFile>,
    collect_error: Option<String>,
    spooled: Option<crate::collect::SpooledFiles>,
) -> SandboxRun {
    SandboxRun {
        outcome,
        stdout: w.stdout.data,
        stderr: w.stderr.data,
        stdout_truncated: w.stdout.truncated,
        stderr_truncated: w.stderr.truncated,
        output_order: w.order,
        usage: Usage {
            cpu_time: used.cpu_time,
            wall_time: w.wall_time,
            peak_memory: ByteSize(used.peak_memory.bytes()),
        },
        collected,
        spooled,
        collect_error,
        samples: w.samples,
        denied_syscalls: w.denied,
        seccomp_kills: w.seccomp_kills,
        readonly_writes: w.readonly,
        process_limit_hits: used.process_limit_hits,
    }
}
