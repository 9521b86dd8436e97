//! The parent's watch over one job of a live sandbox: one `poll` loop over the job's stdout
//! and stderr (read with a byte cap), its artifact pipe, the report pipe, the stdin feed, the
//! helper's pidfd (the whole sandbox ending), the cancel pipe and, for a backend whose jobs
//! are processes of their own, that process's pidfd; with the wall deadline and the cgroup's
//! cpu budget as timers. Each chunk of output goes to the run's [`OutputSink`] as soon as it
//! is read, so a caller sees the output while the job runs.
//!
//! A limit ends the job, not the sandbox: the parent sends the init `child::END_JOB`, and the
//! init kills every process but itself. Killing the cgroup instead would take the init (and
//! the sandbox) with it; it is the fallback when the init has not ended the job within
//! [`KILL_GRACE`], the path of a backend without warden's init, and what a cancel does.
//! In that order, first the cgroup's tasks and then the helper: the helper reaps the init and
//! exits by itself, whereas killing the helper first would orphan the init to the host's
//! pid 1, which may never reap it. Only before the job started (when the init may not sit in
//! the cgroup yet) does the helper go at once, and its death takes the init with it
//! (PR_SET_PDEATHSIG).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use warden_core::{Limits, Stream, UsageSample};

use crate::cgroup::Cgroup;
use crate::denials::{DeniedSyscall, KilledSyscall};
use crate::live::SETUP_TIMEOUT;
use crate::parent::{HelperProcess, SandboxError};
use crate::pipes::{nonblocking, ReportReader};
use crate::report::{ExitStatus, Report};
use crate::stream::OutputSink;
use crate::verdict::KillReason;
use crate::writes::ReadOnlyWrites;

/// How long the init (or the helper) gets to end a job after being asked.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(2);

/// Most refused calls one job reports: more than any policy's notified calls.
const MAX_DENIED: usize = 512;

/// How often a running job's cgroup is read (live resource monitoring).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The most readings one job keeps: past it, every other one is dropped and the interval
/// doubles, so a long run keeps an even series of bounded size.
pub const MAX_SAMPLES: usize = 600;

/// How the parent learns that a job ended.
#[derive(Debug)]
pub(crate) enum JobEnd {
    /// The init reports `Started` and `Exited`.
    Reported,
    /// The job is this host process (a runtime's `exec`, or its `run` of a one-job
    /// container); its exit is the job's.
    Process {
        child: std::process::Child,
        /// When the process was started.
        started: Instant,
        /// When the program starts later than the process (after the runtime's boot): what
        /// says so. Its wall clock and cpu count start there.
        start: Option<Box<dyn ProgramStart>>,
        /// How a signal reaches the program, when the runtime passes signals on; otherwise
        /// any signal ends the job.
        signals: Option<SignalProgram>,
        /// What ends the job's processes and leaves the sandbox to the next job, when a limit
        /// or a signal ends the job (`JobLauncher::end_job`); without it the whole sandbox
        /// ends with such a job.
        end_job: Option<Box<std::process::Command>>,
    },
}

/// Sends a signal (its number) to a runtime's init, which passes it on as warden's init does
/// (`child::forwards`); false when it could not be sent.
pub(crate) struct SignalProgram(pub(crate) Box<dyn Fn(i32) -> bool + Send>);

impl std::fmt::Debug for SignalProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalProgram")
    }
}

/// Tells when a job's program starts, for a job whose process first boots a runtime.
pub(crate) trait ProgramStart: Send {
    /// Polls readable when the program may have started.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Whether it has (reads what made the descriptor readable).
    fn started(&mut self) -> bool;
}

impl std::fmt::Debug for dyn ProgramStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgramStart")
    }
}

/// `bytes` without its last line when that line is what `runsc exec` says as it fails for its
/// sandbox killed under it (`waiting on pid 2: waiting on PID 2 in sandbox "warden-run-…":
/// urpc method "containerManager.WaitPID" failed: EOF`), written as one line in one write.
fn without_runtime_last_words(bytes: &[u8]) -> &[u8] {
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return bytes;
    };
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = &body[start..];
    let runtimes =
        line.starts_with(b"waiting on pid ") && line.windows(13).any(|w| w == b" in sandbox \"");
    if runtimes {
        &bytes[..start]
    } else {
        bytes
    }
}

/// The process that ends a runtime's job inside its sandbox (`JobEnd::Process::end_job`);
/// dropped, it is killed and reaped.
struct Ending(std::process::Child);

impl Ending {
    /// Whether it ended every process of the job (exited 0) within `within`.
    fn succeeded_within(mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) if status.success() => return true,
                Ok(Some(status)) => {
                    tracing::warn!(%status, "the process that ends a job in its sandbox failed");
                    return false;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => return false,
            }
        }
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How the parent ends a job that hit a limit.
pub(crate) enum KillPath<'a> {
    /// Ask the init (this pidfd) to end the job; the sandbox lives on.
    AskInit(&'a OwnedFd),
    /// Kill everything in the cgroup: the sandbox ends with the job.
    WholeSandbox,
}

/// The parent's ends of one job's pipes.
pub(crate) struct JobPipes {
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    /// Files sent back by the init, when the job collects.
    pub(crate) artifacts: Option<OwnedFd>,
    /// The stdin pipe's write end and what to feed it.
    pub(crate) stdin: Option<crate::pipes::StdinFeed>,
}

/// Everything one job's watch needs.
pub(crate) struct Watch<'a> {
    pub(crate) pipes: JobPipes,
    pub(crate) end: JobEnd,
    pub(crate) report: &'a mut ReportReader,
    pub(crate) helper: &'a mut HelperProcess,
    pub(crate) helper_pidfd: &'a OwnedFd,
    pub(crate) helper_done: &'a mut bool,
    pub(crate) cancel: &'a OwnedFd,
    /// The signals asked for the job's program, one byte each (`CancelHandle::signal`).
    pub(crate) signals: &'a OwnedFd,
    pub(crate) cgroup: &'a Cgroup,
    pub(crate) limits: &'a Limits,
    /// `Job::truncate_output`: output past the limit is dropped, not a reason to end the job.
    pub(crate) truncate_output: bool,
    /// The cgroup's cpu time when the job was sent.
    pub(crate) cpu_before: Duration,
    pub(crate) kill: KillPath<'a>,
    /// Gets each chunk of output as it is read.
    pub(crate) sink: &'a mut dyn OutputSink,
    /// Where the artifact stream goes instead of `Watched::artifacts` (`Job::spool`).
    pub(crate) spool: Option<std::fs::File>,
}

/// One output stream, captured up to a cap.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) data: Vec<u8>,
    pub(crate) truncated: bool,
    eof: bool,
}

/// What the watch saw.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
    /// The order the two were read in.
    pub(crate) order: crate::OutputOrder,
    pub(crate) status: Option<ExitStatus>,
    pub(crate) killed: Option<KillReason>,
    pub(crate) wall_time: Duration,
    pub(crate) setup_failure: Option<(String, String)>,
    /// The artifact stream (see `collect`), and whether it passed its cap.
    pub(crate) artifacts: Vec<u8>,
    /// The artifact stream on disk instead, and how many bytes of it were written.
    pub(crate) spool: Option<(std::fs::File, usize)>,
    /// Why writing the spool failed (a full disk).
    pub(crate) spool_error: Option<String>,
    pub(crate) artifacts_overflow: bool,
    artifacts_eof: bool,
    /// The whole sandbox was killed (it can run no more jobs).
    pub(crate) sandbox_killed: bool,
    /// A runtime's job that a limit or a signal ended was ended by `JobEnd::Process::end_job`,
    /// every process of it, and the sandbox kept.
    pub(crate) ended_in_sandbox: bool,
    /// The job was cancelled from another thread.
    pub(crate) cancelled: bool,
    /// The job had already ended, or was being ended for a limit, when the cancel came: its
    /// outcome is its own.
    pub(crate) ended_before_cancel: bool,
    /// The job's program started (the init reported it, or a runtime's program began).
    pub(crate) program_started: bool,
    /// How the job's own process ended (`JobEnd::Process`).
    pub(crate) process_status: Option<std::process::ExitStatus>,
    /// The cgroup's cpu time when the program started, for a program that started after its
    /// process (`JobEnd::Process::start`): where its count starts.
    pub(crate) cpu_at_start: Option<Duration>,
    /// The cgroup's readings while the job ran.
    pub(crate) samples: Vec<UsageSample>,
    /// The system calls the seccomp policy refused (`Report::Denied`).
    pub(crate) denied: Vec<DeniedSyscall>,
    /// The system calls the seccomp policy killed processes for (`Report::Killed`).
    pub(crate) seccomp_kills: Vec<KilledSyscall>,
    /// The writes to read-only paths (`Report::ReadOnly`).
    pub(crate) readonly: Option<ReadOnlyWrites>,
    /// Who killed for the filter's kills (`Report::Exited`).
    pub(crate) killer: crate::report::SeccompKiller,
    /// The program failed by itself and left a file cut at its file size limit
    /// (`Report::Exited`).
    pub(crate) file_at_limit: bool,
    /// What the job changed in the init (`Report::Tainted`).
    pub(crate) tainted: Option<String>,
}

struct State<'a> {
    w: Watched,
    watch: Watch<'a>,
    /// The job's process, for `JobEnd::Process`.
    process_pidfd: Option<OwnedFd>,
    /// When that process was started, and what tells when its program starts, if later.
    process_started: Option<Instant>,
    program_start: Option<Box<dyn ProgramStart>>,
    /// `JobEnd::Process::signals`.
    signal_program: Option<SignalProgram>,
    /// `JobEnd::Process::end_job`, and the process it started once a limit or a signal
    /// ended the job.
    end_job: Option<Box<std::process::Command>>,
    ending: Option<Ending>,
    ended: bool,
    /// When `ended` became true: the job's output gets [`KILL_GRACE`] from then to close.
    ended_at: Option<Instant>,
    started: Option<Instant>,
    killed_at: Option<Instant>,
    setup_deadline: Instant,
    next_cpu_check: Instant,
    stdin: Option<(OwnedFd, Vec<u8>, usize)>,
    /// `Stdin::Relay`'s descriptor, read when `stdin` has nothing left to write.
    relay: Option<OwnedFd>,
    /// The sink returned false: it gets nothing more, and the job is being ended.
    sink_stopped: bool,
    /// The job is being ended at the caller's request (its sink stopped, or a signal the
    /// init could not deliver): a SIGKILL however the runtime reports it.
    ended_on_request: bool,
    /// When to read the cgroup next, and how often.
    next_sample: Instant,
    sample_every: Duration,
    /// Signals asked for before the program started, delivered when it does.
    pending_signals: Vec<i32>,
    /// How long the program was stopped with its caller (`OutputSink::suspend`): the
    /// wall-clock limit does not count it.
    stopped_for: Duration,
}

/// Watches one job until it ended and every pipe of it is drained.
pub(crate) fn watch_job(mut watch: Watch<'_>) -> Result<Watched, SandboxError> {
    let io_err = |action| {
        move |e: Errno| SandboxError::Helper {
            action,
            source: e.into(),
        }
    };
    nonblocking(&watch.pipes.stdout)?;
    nonblocking(&watch.pipes.stderr)?;
    if let Some(fd) = &watch.pipes.artifacts {
        nonblocking(fd)?;
    }
    if let Some(feed) = &watch.pipes.stdin {
        // The pipe's end only: a relayed descriptor stays as the caller has it.
        nonblocking(&feed.pipe)?;
    }
    let now = Instant::now();
    let (process_pidfd, process_started, program_start, signal_program, end_job) =
        match &mut watch.end {
            JobEnd::Reported => (None, None, None, None, None),
            JobEnd::Process {
                child,
                started,
                start,
                signals,
                end_job,
            } => {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
                let pidfd = warden_sys::process::pidfd_open(pid)
                    .map_err(io_err("opening a pidfd of the job's process"))?;
                let end_job = end_job.take();
                (
                    Some(pidfd),
                    Some(*started),
                    start.take(),
                    signals.take(),
                    end_job,
                )
            }
        };
    // A program that starts after its process has no wall clock until it does.
    let started = process_started.filter(|_| program_start.is_none());
    let (stdin, relay) = match watch.pipes.stdin.take() {
        Some(feed) => (Some((feed.pipe, feed.bytes, 0)), feed.relay),
        None => (None, None),
    };
    let mut s = State {
        w: Watched {
            artifacts_eof: watch.pipes.artifacts.is_none(),
            spool: watch.spool.take().map(|file| (file, 0)),
            ..Watched::default()
        },
        watch,
        process_pidfd,
        process_started,
        program_start,
        signal_program,
        end_job,
        ending: None,
        ended: false,
        ended_at: None,
        started,
        killed_at: None,
        setup_deadline: now + SETUP_TIMEOUT,
        next_cpu_check: now,
        stdin,
        relay,
        sink_stopped: false,
        ended_on_request: false,
        next_sample: now + SAMPLE_EVERY,
        sample_every: SAMPLE_EVERY,
        pending_signals: Vec::new(),
        stopped_for: Duration::ZERO,
    };
    // Reports that arrived with the sandbox's `Ready` (a first job sent during its setup) are
    // already read: the pipe will not poll readable for them.
    s.read_reports();
    while !(s.ended && s.w.stdout.eof && s.w.stderr.eof && s.w.artifacts_eof) {
        s.enforce_deadlines();
        let timeout = s.poll_timeout();
        let ready = s.poll_once(timeout)?;
        if !ready && (s.ended || *s.watch.helper_done) && s.killed_at.is_some() {
            // Everything in the sandbox is dead; a pipe still open now has no writer we know of.
            break;
        }
        if *s.watch.helper_done && !s.ended && s.w.stdout.eof && s.w.stderr.eof {
            // The sandbox ended under the job (killed, or its init died).
            s.ended = true;
        }
    }
    if let Some(ending) = s.ending.take() {
        s.w.ended_in_sandbox = ending.succeeded_within(KILL_GRACE) && !s.w.sandbox_killed;
    }
    if s.w.process_status.is_none() {
        s.reap_unseen_process();
    }
    if s.ended_on_request && s.w.sandbox_killed {
        // The job went with its sandbox, killed (SIGKILL) by the parent at the caller's
        // request. A runtime's exec process then reports its own failure, not the program's
        // status.
        s.w.status = Some(ExitStatus::Signal(Signal::SIGKILL as i32));
        s.w.process_status = None;
    }
    if s.w.status.is_none() || s.w.wall_time.is_zero() {
        if let Some(started) = s.started.or(s.process_started) {
            let limit = s.watch.limits.wall_time;
            s.w.wall_time = s.w.wall_time.max(started.elapsed().min(limit));
        }
    }
    // A program whose start went unseen because its process's end was read first: one last
    // look (a one-job gVisor sandbox's state file, held open, still says `running`).
    s.w.program_started = s.started.is_some()
        || s.program_start
            .as_mut()
            .is_some_and(|start| start.started());
    // Signals asked while this job ran are this job's: none is left for the next one.
    let mut left = [0u8; 64];
    while matches!(nix::unistd::read(s.watch.signals, &mut left), Ok(n) if n > 0) {}
    Ok(s.w)
}

impl State<'_> {
    /// Ends the job for `reason`: through the init when it can, else with the whole sandbox.
    fn kill(&mut self, reason: Option<KillReason>) {
        let for_the_job = reason.is_some() || self.ended_on_request;
        if self.w.killed.is_none() {
            self.w.killed = reason;
        }
        if self.killed_at.is_some() {
            return;
        }
        if self.started.is_none() {
            // The init reports `Started` before it forks the payload, but that report is read
            // after the output when both arrive in one poll round: without it the job would
            // count as not started, and the whole sandbox would go.
            self.read_reports();
        }
        self.killed_at = Some(Instant::now());
        match (&self.watch.kill, self.started) {
            (KillPath::AskInit(init), Some(_)) => {
                if warden_sys::process::pidfd_send_signal(init, crate::child::END_JOB).is_err() {
                    self.kill_sandbox();
                }
            }
            // A runtime's job that a limit or a signal ends: its processes, not the sandbox
            // (a cancel ends the sandbox, which runs no more jobs). What is not ended within
            // [`KILL_GRACE`] takes the sandbox with it (`enforce_deadlines`).
            (KillPath::WholeSandbox, Some(_)) if for_the_job && self.end_job.is_some() => {
                let started = self.end_job.take().map(|mut command| command.spawn());
                match started {
                    Some(Ok(child)) => self.ending = Some(Ending(child)),
                    _ => self.kill_sandbox(),
                }
            }
            _ => self.kill_sandbox(),
        }
    }

    /// Ends the job for a cancel from another thread as a limit does: through the init, which
    /// kills the job's processes and then reports what the sandbox stopped in it (refused and
    /// killed calls, read-only writes) before the job's end, so that a cancelled run's events
    /// are not lost with it; the whole sandbox when the init cannot be asked, or does not end
    /// the job within [`KILL_GRACE`]. The sandbox runs no more jobs either way.
    fn cancel(&mut self) {
        self.w.cancelled = true;
        self.w.ended_before_cancel = self.ended || self.w.killed.is_some();
        self.kill(None);
    }

    /// Kills everything in the cgroup (the init with it) and the job's own process; before the
    /// job started, the helper too (module documentation).
    fn kill_sandbox(&mut self) {
        self.w.sandbox_killed = true;
        self.watch.cgroup.kill_all();
        if let Some(pidfd) = &self.process_pidfd {
            let _ = warden_sys::process::pidfd_send_signal(pidfd, Signal::SIGKILL);
        }
        if self.started.is_none() {
            self.kill_helper();
        }
    }

    fn kill_helper(&self) {
        let _ = warden_sys::process::pidfd_send_signal(self.watch.helper_pidfd, Signal::SIGKILL);
    }

    fn enforce_deadlines(&mut self) {
        if self.ended {
            self.end_leftovers();
            return;
        }
        if let Some(killed_at) = self.killed_at {
            // An init that has not ended the job this long after being asked is stuck; a
            // helper that has not reaped its init twice as long after is stuck too.
            let waited = killed_at.elapsed();
            if waited >= KILL_GRACE && !self.w.sandbox_killed {
                self.kill_sandbox();
            } else if waited >= 2 * KILL_GRACE {
                self.kill_helper();
            }
            return;
        }
        let now = Instant::now();
        let Some(started) = self.started else {
            if now >= self.setup_deadline {
                self.w.setup_failure =
                    Some(("wait for the job to start".into(), "timed out".into()));
                self.kill(None);
            }
            return;
        };
        let limits = self.watch.limits;
        if now >= started + limits.wall_time + self.stopped_for {
            self.w.wall_time = now - started;
            self.kill(Some(KillReason::Wall));
            return;
        }
        if now >= self.next_sample {
            self.sample(started, now);
        }
        if now >= self.next_cpu_check {
            match self.watch.cgroup.cpu_time() {
                Ok(total) => {
                    let used = total.saturating_sub(self.watch.cpu_before);
                    if used >= limits.cpu_time {
                        self.kill(Some(KillReason::Cpu));
                    } else {
                        let cpus = cpus();
                        let soonest = (limits.cpu_time - used) / cpus;
                        self.next_cpu_check = now
                            + soonest.clamp(Duration::from_millis(5), Duration::from_millis(250));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the cgroup's cpu time"),
            }
        }
    }

    /// The job ended but its output is still open after [`KILL_GRACE`]: some process the job
    /// left holds it (a runtime that does not end a job's other processes with it, or a
    /// loader the program killed), which no limit reaches any more. Ends them as a limit
    /// ends a runtime's job (`JobEnd::Process::end_job`), or, without that way or when they
    /// are not gone [`KILL_GRACE`] later, kills the whole sandbox; the program's own verdict
    /// is kept. Warden's init ends every process of a job before it reports the end, so only
    /// a runtime gets here.
    fn end_leftovers(&mut self) {
        let ended_at = *self.ended_at.get_or_insert_with(Instant::now);
        match self.killed_at {
            None if ended_at.elapsed() >= KILL_GRACE => {
                self.killed_at = Some(Instant::now());
                let started = self.end_job.take().map(|mut command| command.spawn());
                if let Some(Ok(child)) = started {
                    tracing::warn!(
                        "a job's output stayed open after it ended: ending its processes"
                    );
                    self.ending = Some(Ending(child));
                } else {
                    tracing::warn!(
                        "a job's output stayed open after it ended: killing its sandbox"
                    );
                    self.kill_sandbox();
                }
            }
            Some(at) if at.elapsed() >= KILL_GRACE && !self.w.sandbox_killed => {
                tracing::warn!("a job's processes outlived it: killing its sandbox");
                self.kill_sandbox();
            }
            _ => {}
        }
    }

    /// Reads the job's cgroup into the series (and hands the reading to the sink).
    fn sample(&mut self, started: Instant, now: Instant) {
        self.next_sample = now + self.sample_every;
        let cpu = self.watch.cgroup.cpu_time();
        let current = self.watch.cgroup.current();
        let (Ok(cpu), Ok((memory, pids))) = (cpu, current) else {
            return;
        };
        let sample = UsageSample {
            at: now - started,
            cpu_time: cpu.saturating_sub(self.watch.cpu_before),
            memory,
            pids,
        };
        if !self.sink_stopped {
            self.watch.sink.sample(&sample);
        }
        self.w.samples.push(sample);
        if self.w.samples.len() >= MAX_SAMPLES {
            let mut index = 0;
            self.w.samples.retain(|_| {
                index += 1;
                index % 2 == 0
            });
            self.sample_every *= 2;
        }
    }

    fn poll_timeout(&self) -> Duration {
        if self.ended {
            return match (self.ended_at, self.killed_at) {
                (Some(ended_at), None) => (ended_at + KILL_GRACE)
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
                _ => Duration::from_secs(1),
            };
        }
        if let Some(killed_at) = self.killed_at {
            let next = if self.w.sandbox_killed {
                killed_at + 2 * KILL_GRACE
            } else {
                killed_at + KILL_GRACE
            };
            return next
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
        }
        let now = Instant::now();
        let deadline = match self.started {
            Some(started) => (started + self.watch.limits.wall_time + self.stopped_for)
                .min(self.next_cpu_check)
                .min(self.next_sample),
            None => self.setup_deadline,
        };
        deadline
            .saturating_duration_since(now)
            .max(Duration::from_millis(1))
    }

    /// One poll round; returns whether anything was ready.
    fn poll_once(&mut self, timeout: Duration) -> Result<bool, SandboxError> {
        let mut fds = Vec::with_capacity(8);
        let mut roles = Vec::with_capacity(8);
        let input = PollFlags::POLLIN;
        let pipes = &self.watch.pipes;
        if !self.w.stdout.eof {
            fds.push(PollFd::new(pipes.stdout.as_fd(), input));
            roles.push(Role::Stdout);
        }
        if !self.w.stderr.eof {
            fds.push(PollFd::new(pipes.stderr.as_fd(), input));
            roles.push(Role::Stderr);
        }
        if let (false, Some(fd)) = (self.w.artifacts_eof, &pipes.artifacts) {
            fds.push(PollFd::new(fd.as_fd(), input));
            roles.push(Role::Artifacts);
        }
        if !self.watch.report.eof {
            fds.push(PollFd::new(self.watch.report.fd.as_fd(), input));
            roles.push(Role::Report);
        }
        if !*self.watch.helper_done {
            fds.push(PollFd::new(self.watch.helper_pidfd.as_fd(), input));
            roles.push(Role::Helper);
        }
        if let (false, Some(fd)) = (self.ended, &self.process_pidfd) {
            fds.push(PollFd::new(fd.as_fd(), input));
            roles.push(Role::Process);
        }
        if let (false, None, Some(start)) = (self.ended, self.started, &self.program_start) {
            fds.push(PollFd::new(start.fd(), input));
            roles.push(Role::ProgramStart);
        }
        if !self.w.cancelled {
            fds.push(PollFd::new(self.watch.cancel.as_fd(), input));
            roles.push(Role::Cancel);
        }
        if !self.ended && self.killed_at.is_none() {
            fds.push(PollFd::new(self.watch.signals.as_fd(), input));
            roles.push(Role::Signals);
            if let Some(fd) = self.watch.sink.signal_source() {
                fds.push(PollFd::new(fd, input));
                roles.push(Role::CallerSignals);
            }
        }
        if let Some((fd, bytes, written)) = &self.stdin {
            match &self.relay {
                Some(relay) if *written >= bytes.len() => {
                    if !self.ended {
                        fds.push(PollFd::new(relay.as_fd(), input));
                        roles.push(Role::Relay);
                    }
                }
                _ => {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                    roles.push(Role::Stdin);
                }
            }
        }
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(true),
            Err(e) => {
                return Err(SandboxError::Helper {
                    action: "polling the sandbox",
                    source: e.into(),
                })
            }
        }
        let ready: Vec<Role> = fds
            .iter()
            .zip(&roles)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, role)| *role)
            .collect();
        drop(fds);
        for role in ready {
            match role {
                Role::Stdout => self.read_output(Stream::Stdout),
                Role::Stderr => self.read_output(Stream::Stderr),
                Role::Report => self.read_reports(),
                Role::Artifacts => self.read_artifacts(),
                Role::Helper => {
                    let _ = self.watch.helper.wait();
                    *self.watch.helper_done = true;
                    // Its last reports may still be in the pipe.
                    self.read_reports();
                    if !self.ended {
                        // The sandbox ended under the job (its init killed: in `trusted` the
                        // program can signal it). What of the job is left goes now: a process
                        // holding the output open kept the job waiting for its wall time, and
                        // it ended as the program's own time limit.
                        self.watch.cgroup.kill_all();
                    }
                }
                Role::Process => self.reap_process(),
                Role::ProgramStart => self.see_program_start(),
                Role::Cancel => self.cancel(),
                Role::Stdin => self.feed_stdin(),
                Role::Relay => self.relay_stdin(),
                Role::Signals => self.read_signals(),
                Role::CallerSignals => {
                    for signal in self.watch.sink.signals() {
                        if signal == libc::SIGTSTP || signal == libc::SIGTTOU {
                            self.stop_with_caller(signal);
                        } else {
                            self.deliver(signal);
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    /// Reads the signals asked for the job's program and delivers each.
    fn read_signals(&mut self) {
        let mut asked = [0u8; 64];
        let n = nix::unistd::read(self.watch.signals, &mut asked).unwrap_or(0);
        for &signal in &asked[..n] {
            self.deliver(i32::from(signal));
        }
    }

    /// The caller is stopping for `signal` (a terminal's Ctrl-Z, or a read of or a write to
    /// the terminal in the background: [`OutputSink::suspend`]): the sandbox's processes stop with it
    /// (SIGTSTP to the init, which stops them all) and go on when it does (SIGCONT), and the
    /// time in between does not count against the wall-clock limit. A backend without
    /// warden's init, or a program not started yet, is left running: the caller stops alone.
    fn stop_with_caller(&mut self, signal: i32) {
        let stops = (matches!(self.watch.kill, KillPath::AskInit(_))
            || self.signal_program.is_some())
            && self.started.is_some()
            && !self.ended
            && self.killed_at.is_none();
        if stops {
            self.deliver(libc::SIGTSTP);
        }
        let since = Instant::now();
        self.watch.sink.suspend(signal);
        if stops {
            self.stopped_for += since.elapsed();
            self.deliver(libc::SIGCONT);
        }
    }

    /// Delivers `signal` to the job's program through the init, which forwards the signals
    /// it handles (`child::forwards`), or through a runtime's init that does the same
    /// (`JobEnd::Process::signals`); before the program starts, keeps it for then. Any other
    /// signal, or a backend with neither, ends the job.
    fn deliver(&mut self, signal: i32) {
        if self.started.is_none() {
            self.read_reports();
        }
        if self.ended || self.killed_at.is_some() {
            return;
        }
        let forwarded = Signal::try_from(signal)
            .ok()
            .filter(|s| crate::child::forwards(*s));
        let runtime = self.signal_program.is_some();
        match (&self.watch.kill, self.started, forwarded) {
            (KillPath::AskInit(_), None, _) => self.pending_signals.push(signal),
            (KillPath::AskInit(init), Some(_), Some(signal)) => {
                if warden_sys::process::pidfd_send_signal(init, signal).is_err() {
                    self.ended_on_request = true;
                    self.kill(None);
                }
            }
            (KillPath::WholeSandbox, None, _) if runtime => self.pending_signals.push(signal),
            (KillPath::WholeSandbox, Some(_), Some(signal)) if runtime => {
                let sent = self
                    .signal_program
                    .as_ref()
                    .is_some_and(|send| (send.0)(signal as i32));
                if !sent {
                    self.ended_on_request = true;
                    self.kill(None);
                }
            }
            _ => {
                self.ended_on_request = true;
                self.kill(None);
            }
        }
    }

    fn reap_process(&mut self) {
        if let JobEnd::Process { child, .. } = &mut self.watch.end {
            if let Ok(status) = child.wait() {
                self.w.process_status = Some(status);
                // A program whose start went unseen (it ended first) counts from its process.
                self.w.wall_time = self
                    .started
                    .or(self.process_started)
                    .map(|s| s.elapsed())
                    .unwrap_or_default();
            }
        }
        self.ended = true;
    }

    /// The job's process when the watch ended before its pidfd polled readable (the sandbox
    /// ended under it): killed if it still runs, and reaped, never left a zombie under a
    /// long-lived parent. Its status is not the job's: the sandbox's end decided that.
    fn reap_unseen_process(&mut self) {
        if let JobEnd::Process { child, .. } = &mut self.watch.end {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// The program started (`JobEnd::Process::start`): its wall clock and cpu count start.
    fn see_program_start(&mut self) {
        let Some(start) = &mut self.program_start else {
            return;
        };
        if start.started() {
            let now = Instant::now();
            self.started = Some(now);
            self.program_start = None;
            self.next_sample = now + self.sample_every;
            if let Ok(cpu) = self.watch.cgroup.cpu_time() {
                self.watch.cpu_before = cpu;
                self.w.cpu_at_start = Some(cpu);
            }
            // Signals asked before the program started.
            for signal in std::mem::take(&mut self.pending_signals) {
                self.deliver(signal);
            }
        }
    }

    fn read_output(&mut self, stream: Stream) {
        let cap = usize::try_from(self.watch.limits.max_output.bytes()).unwrap_or(usize::MAX);
        let (captured, fd) = match stream {
            Stream::Stdout => (&mut self.w.stdout, &self.watch.pipes.stdout),
            Stream::Stderr => (&mut self.w.stderr, &self.watch.pipes.stderr),
        };
        let mut chunk = [0u8; 65536];
        let mut overflow = false;
        let mut stop = false;
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    captured.eof = true;
                    break;
                }
                Ok(n) => {
                    let read = match stream {
                        // A runtime's exec process whose sandbox ended under it (warden killed
                        // it, or the memory limit's OOM killer took the sentry) reports its own
                        // failure on the stderr it shares with the program: not the program's.
                        Stream::Stderr if self.process_pidfd.is_some() => {
                            without_runtime_last_words(&chunk[..n])
                        }
                        _ => &chunk[..n],
                    };
                    let n = read.len();
                    let room = cap.saturating_sub(captured.data.len());
                    let kept = &read[..n.min(room)];
                    captured.data.extend_from_slice(kept);
                    self.w.order.push(stream, kept.len());
                    if !kept.is_empty() && !self.sink_stopped {
                        stop = !self.watch.sink.chunk(stream, kept);
                    }
                    if n > room {
                        captured.truncated = true;
                        overflow = true;
                    }
                    if stop || (overflow && self.killed_at.is_none()) {
                        // Ends the job at once, or (output truncated) lets the loop enforce
                        // the time limits between reads: a flood may not leave the pipe empty
                        // for a long while. Poll brings the reader back to drain it.
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    captured.eof = true;
                    break;
                }
            }
        }
        // A limit passed in the same read as the sink's stop is still the verdict.
        if overflow && self.w.killed.is_none() && !self.sink_stopped {
            if !self.watch.truncate_output {
                self.kill(Some(KillReason::Output(stream)));
            } else if self.ended {
                // The program is gone and something it left still floods the pipe: the time
                // limits no longer run, so this ends it, with the program's own verdict.
                self.kill(None);
            }
        }
        if stop {
            self.sink_stopped = true;
            if !self.ended {
                self.ended_on_request = true;
                self.kill(None);
            }
        }
    }

    fn read_artifacts(&mut self) {
        let Some(fd) = &self.watch.pipes.artifacts else {
            return;
        };
        // Room for the files plus their headers; past that the stream is dropped and the job
        // killed (the init enforces the same cap, so only a broken init gets here).
        let cap = usize::try_from(crate::collect::MAX_TOTAL).unwrap_or(usize::MAX) + (16 << 20);
        let mut chunk = [0u8; 65536];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.w.artifacts_eof = true;
                    return;
                }
                Ok(n)
                    if self
                        .w
                        .spool
                        .as_ref()
                        .map_or(self.w.artifacts.len(), |s| s.1)
                        + n
                        <= cap =>
                {
                    let Some((file, len)) = &mut self.w.spool else {
                        self.w.artifacts.extend_from_slice(&chunk[..n]);
                        continue;
                    };
                    *len += n;
                    if let Err(e) = std::io::Write::write_all(file, &chunk[..n]) {
                        // A full disk: the stream is lost, and the job ended as at its cap.
                        self.w.spool_error = Some(e.to_string());
                        self.w.spool = None;
                        self.w.artifacts_eof = true;
                        self.kill(None);
                        return;
                    }
                }
                Ok(_) => {
                    self.w.artifacts.clear();
                    self.w.spool = None;
                    self.w.artifacts_overflow = true;
                    self.w.artifacts_eof = true;
                    self.kill(None);
                    return;
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.w.artifacts_eof = true;
                    return;
                }
            }
        }
    }

    fn read_reports(&mut self) {
        for report in self.watch.report.read() {
            match report {
                Ok(Report::Started) => {
                    let now = Instant::now();
                    self.started = Some(now);
                    self.next_cpu_check = now;
                    for signal in std::mem::take(&mut self.pending_signals) {
                        self.deliver(signal);
                    }
                }
                Ok(Report::Exited {
                    status,
                    wall_time,
                    killer,
                    file_at_limit,
                }) => {
                    self.w.status = Some(status);
                    self.w.wall_time = wall_time;
                    self.w.killer = killer;
                    self.w.file_at_limit = file_at_limit;
                    self.ended = true;
                }
                // One per call of the policy; the bound only guards against a broken init.
                Ok(Report::Denied(call)) if self.w.denied.len() < MAX_DENIED => {
                    self.w.denied.push(call);
                }
                Ok(Report::Killed(call)) if self.w.seccomp_kills.len() < MAX_DENIED => {
                    self.w.seccomp_kills.push(call);
                }
                Ok(Report::ReadOnly(writes)) => self.w.readonly = Some(writes),
                Ok(Report::Tainted { what }) => self.w.tainted = Some(what),
                Ok(Report::SetupFailed { step, detail }) => {
                    self.w.setup_failure.get_or_insert((step, detail));
                }
                Ok(other) => tracing::warn!(?other, "unexpected report during a job"),
                Err(line) => tracing::warn!(%line, "unreadable line on the report pipe"),
            }
        }
    }

    fn feed_stdin(&mut self) {
        let Some((fd, bytes, written)) = &mut self.stdin else {
            return;
        };
        // (everything written, the pipe's reader gone)
        let (done, closed) = loop {
            if *written >= bytes.len() {
                break (true, false);
            }
            match nix::unistd::write(&*fd, &bytes[*written..]) {
                Ok(n) => *written += n,
                Err(Errno::EAGAIN) => break (false, false),
                Err(Errno::EINTR) => {}
                Err(_) => break (true, true),
            }
        };
        if closed {
            self.relay = None;
        }
        if done && self.relay.is_none() {
            self.stdin = None;
        }
    }

    /// Reads what the relayed descriptor has (poll said it has some) and feeds it to the
    /// program; its end, or an error, ends the program's input.
    fn relay_stdin(&mut self) {
        let Some(relay) = &self.relay else {
            return;
        };
        // A terminal whose foreground job the caller no longer is (it went on with `bg`): the
        // read would stop the caller alone (SIGTTIN), and the program would run on unheard.
        // Both stop instead, until the caller is continued (in the foreground again, or in
        // the background to stop again here).
        if nix::unistd::tcgetpgrp(relay).is_ok_and(|group| group != nix::unistd::getpgrp()) {
            self.stop_with_caller(libc::SIGTTIN);
            return;
        }
        let (Some(relay), Some((_, bytes, written))) = (&self.relay, &mut self.stdin) else {
            return;
        };
        let mut chunk = [0u8; 65536];
        match nix::unistd::read(relay, &mut chunk) {
            Ok(n) if n > 0 => {
                bytes.clear();
                bytes.extend_from_slice(&chunk[..n]);
                *written = 0;
                self.feed_stdin();
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            _ => {
                self.relay = None;
                self.stdin = None;
            }
        }
    }
}

/// The cpus the cgroup's tasks may use at once, read once per process: the standard library
/// reads the cgroup's quota files each time.
fn cpus() -> u32 {
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
    })
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Stdout,
    Stderr,
    Report,
    Artifacts,
    Helper,
    Process,
    /// `JobEnd::Process::start`'s descriptor.
    ProgramStart,
    Cancel,
    Stdin,
    /// `Stdin::Relay`'s descriptor.
    Relay,
    Signals,
    /// The sink's signal source (`OutputSink::signal_source`).
    CallerSignals,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runtimes_own_last_line_is_taken_out() {
        let said = b"waiting on pid 2: waiting on PID 2 in sandbox \"warden-run-1-0\": urpc method \"containerManager.WaitPID\" failed: EOF\n";
        assert_eq!(without_runtime_last_words(said), b"");
        let mut both = b"the program's\n".to_vec();
        both.extend_from_slice(said);
        assert_eq!(without_runtime_last_words(&both), b"the program's\n");
        for kept in [
            &b"the program's\n"[..],
            b"waiting on pid 2: something else\n",
            b"waiting on pid 2: waiting on PID 2 in sandbox \"x\": no newline",
            b"",
        ] {
            assert_eq!(without_runtime_last_words(kept), kept);
        }
    }
}
