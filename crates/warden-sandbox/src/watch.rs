//! The parent's watch over a running sandbox: one `poll(2)` loop over the program's stdout and
//! stderr (read with a byte cap), the report pipe, the stdin feed and the helper's pidfd,
//! with the wall deadline and the cgroup's cpu budget as timers. Any limit kills the whole
//! tree: the helper by pidfd (its death takes the init and so the pid namespace with it), then
//! every task left in the cgroup.

use crate::parent::HelperProcess;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use warden_core::{Limits, Stream};

use crate::cgroup::Cgroup;
use crate::parent::{SandboxError, SETUP_TIMEOUT};
use crate::report::{drain_lines, ExitStatus, Report};
use crate::verdict::KillReason;

/// How long the helper gets to reap the init after the tree was killed.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// The parent's ends of the pipes.
pub(crate) struct Pipes {
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    pub(crate) report: OwnedFd,
    /// Files sent back by the init.
    pub(crate) artifacts: OwnedFd,
    /// The stdin pipe's write end and the bytes to feed it.
    pub(crate) stdin: Option<(OwnedFd, Vec<u8>)>,
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
    pub(crate) status: Option<ExitStatus>,
    pub(crate) killed: Option<KillReason>,
    pub(crate) wall_time: Duration,
    pub(crate) setup_failure: Option<(String, String)>,
    /// How the helper process ended (for a backend that exec'd its runtime in the helper, the
    /// program's status).
    pub(crate) helper_status: Option<std::process::ExitStatus>,
    /// The artifact stream (see `collect`), and whether it passed its cap.
    pub(crate) artifacts: Vec<u8>,
    pub(crate) artifacts_overflow: bool,
    artifacts_eof: bool,
}

struct State<'a> {
    w: Watched,
    helper: &'a mut HelperProcess,
    helper_pidfd: OwnedFd,
    helper_done: bool,
    cgroup: &'a Cgroup,
    limits: &'a Limits,
    report_buffer: Vec<u8>,
    report_eof: bool,
    started: Option<Instant>,
    killed_at: Option<Instant>,
    setup_deadline: Instant,
    next_cpu_check: Instant,
    stdin: Option<(OwnedFd, Vec<u8>, usize)>,
}

/// Watches the sandbox until every process in it is gone and every pipe is drained.
pub(crate) fn watch(
    helper: &mut HelperProcess,
    pipes: Pipes,
    cgroup: &Cgroup,
    limits: &Limits,
) -> Result<Watched, SandboxError> {
    let io_err = |action| {
        move |e: nix::errno::Errno| SandboxError::Helper {
            action,
            source: e.into(),
        }
    };
    for fd in [
        &pipes.stdout,
        &pipes.stderr,
        &pipes.report,
        &pipes.artifacts,
    ] {
        fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(io_err("making a pipe non-blocking"))?;
    }
    if let Some((fd, _)) = &pipes.stdin {
        fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(io_err("making a pipe non-blocking"))?;
    }
    let pid = helper.pid();
    let helper_pidfd =
        warden_sys::process::pidfd_open(pid).map_err(io_err("opening a pidfd of the helper"))?;
    let now = Instant::now();
    let mut s = State {
        w: Watched::default(),
        helper,
        helper_pidfd,
        helper_done: false,
        cgroup,
        limits,
        report_buffer: Vec::new(),
        report_eof: false,
        started: None,
        killed_at: None,
        setup_deadline: now + SETUP_TIMEOUT,
        next_cpu_check: now,
        stdin: pipes.stdin.map(|(fd, bytes)| (fd, bytes, 0)),
    };
    let ends = Ends {
        stdout: pipes.stdout,
        stderr: pipes.stderr,
        report: pipes.report,
        artifacts: pipes.artifacts,
    };
    while !(s.helper_done && s.w.stdout.eof && s.w.stderr.eof && s.report_eof && s.w.artifacts_eof)
    {
        s.enforce_deadlines();
        let timeout = s.poll_timeout();
        let ready = s.poll_once(&ends, timeout)?;
        if !ready && s.helper_done {
            // Everything in the sandbox is dead; a pipe still open now has no writer we know of.
            break;
        }
    }
    if s.w.status.is_none() || s.w.wall_time.is_zero() {
        if let Some(started) = s.started {
            s.w.wall_time = s.w.wall_time.max(started.elapsed().min(limits.wall_time));
        }
    }
    Ok(s.w)
}

impl State<'_> {
    fn kill(&mut self, reason: Option<KillReason>) {
        if self.w.killed.is_none() {
            self.w.killed = reason;
        }
        // The tree dies through its cgroup; the helper then reaps the init and exits by
        // itself. Killing the helper first would orphan the init to the host's pid 1, which
        // may never reap it. Before the program started the init may not be in the cgroup
        // yet, so then the helper goes too (its death takes the init: PR_SET_PDEATHSIG).
        self.cgroup.kill_all();
        if self.started.is_none() {
            self.kill_helper();
        }
        self.killed_at.get_or_insert_with(Instant::now);
    }

    fn kill_helper(&self) {
        let _ = warden_sys::process::pidfd_send_signal(&self.helper_pidfd, Signal::SIGKILL);
    }

    fn enforce_deadlines(&mut self) {
        if self.helper_done {
            return;
        }
        if let Some(killed_at) = self.killed_at {
            // A helper that has not reaped its init this long after the kill is stuck.
            if killed_at.elapsed() >= KILL_GRACE {
                self.kill_helper();
            }
            return;
        }
        let now = Instant::now();
        let Some(started) = self.started else {
            if now >= self.setup_deadline {
                self.w.setup_failure =
                    Some(("wait for the sandbox to start".into(), "timed out".into()));
                self.kill(None);
            }
            return;
        };
        if now >= started + self.limits.wall_time {
            self.w.wall_time = now - started;
            self.kill(Some(KillReason::Wall));
            return;
        }
        if now >= self.next_cpu_check {
            match self.cgroup.cpu_time() {
                Ok(used) if used >= self.limits.cpu_time => self.kill(Some(KillReason::Cpu)),
                Ok(used) => {
                    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
                    let soonest = (self.limits.cpu_time - used) / cpus;
                    self.next_cpu_check =
                        now + soonest.clamp(Duration::from_millis(5), Duration::from_millis(250));
                }
                Err(e) => tracing::warn!(error = %e, "reading the cgroup's cpu time"),
            }
        }
    }

    fn poll_timeout(&self) -> Duration {
        if self.helper_done {
            return Duration::from_secs(1);
        }
        if let Some(killed_at) = self.killed_at {
            return (killed_at + KILL_GRACE)
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
        }
        let now = Instant::now();
        let deadline = match self.started {
            Some(started) => (started + self.limits.wall_time).min(self.next_cpu_check),
            None => self.setup_deadline,
        };
        deadline
            .saturating_duration_since(now)
            .max(Duration::from_millis(1))
    }

    /// One poll round; returns whether anything was ready.
    fn poll_once(&mut self, ends: &Ends, timeout: Duration) -> Result<bool, SandboxError> {
        let mut fds = Vec::with_capacity(5);
        let mut roles = Vec::with_capacity(5);
        let input = PollFlags::POLLIN;
        if !self.w.stdout.eof {
            fds.push(PollFd::new(ends.stdout.as_fd(), input));
            roles.push(Role::Stdout);
        }
        if !self.w.stderr.eof {
            fds.push(PollFd::new(ends.stderr.as_fd(), input));
            roles.push(Role::Stderr);
        }
        if !self.report_eof {
            fds.push(PollFd::new(ends.report.as_fd(), input));
            roles.push(Role::Report);
        }
        if !self.w.artifacts_eof {
            fds.push(PollFd::new(ends.artifacts.as_fd(), input));
            roles.push(Role::Artifacts);
        }
        if !self.helper_done {
            fds.push(PollFd::new(self.helper_pidfd.as_fd(), input));
            roles.push(Role::Helper);
        }
        if let Some((fd, _, _)) = &self.stdin {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            roles.push(Role::Stdin);
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
                Role::Stdout => self.read_output(&ends.stdout, Stream::Stdout),
                Role::Stderr => self.read_output(&ends.stderr, Stream::Stderr),
                Role::Report => self.read_report(&ends.report),
                Role::Artifacts => self.read_artifacts(&ends.artifacts),
                Role::Helper => {
                    self.w.helper_status = self.helper.wait().ok();
                    self.helper_done = true;
                }
                Role::Stdin => self.feed_stdin(),
            }
        }
        Ok(true)
    }

    fn read_output(&mut self, fd: &OwnedFd, stream: Stream) {
        let cap = usize::try_from(self.limits.max_output.bytes()).unwrap_or(usize::MAX);
        let captured = match stream {
            Stream::Stdout => &mut self.w.stdout,
            Stream::Stderr => &mut self.w.stderr,
        };
        let mut chunk = [0u8; 65536];
        let mut overflow = false;
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    captured.eof = true;
                    break;
                }
                Ok(n) => {
                    let room = cap.saturating_sub(captured.data.len());
                    captured.data.extend_from_slice(&chunk[..n.min(room)]);
                    if n > room {
                        captured.truncated = true;
                        overflow = true;
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
        if overflow && self.w.killed.is_none() {
            self.kill(Some(KillReason::Output(stream)));
        }
    }

    fn read_artifacts(&mut self, fd: &OwnedFd) {
        // Room for the files plus their headers; past that the stream is dropped and the
        // sandbox killed (the init enforces the same cap, so only a broken init gets here).
        let cap = usize::try_from(crate::collect::MAX_TOTAL).unwrap_or(usize::MAX) + (16 << 20);
        let mut chunk = [0u8; 65536];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.w.artifacts_eof = true;
                    return;
                }
                Ok(n) if self.w.artifacts.len() + n <= cap => {
                    self.w.artifacts.extend_from_slice(&chunk[..n])
                }
                Ok(_) => {
                    self.w.artifacts.clear();
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

    fn read_report(&mut self, fd: &OwnedFd) {
        let mut chunk = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.report_eof = true;
                    break;
                }
                Ok(n) => self.report_buffer.extend_from_slice(&chunk[..n]),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.report_eof = true;
                    break;
                }
            }
            if self.report_buffer.len() > 1 << 20 {
                // A flood on the report pipe can only come from a broken helper.
                self.report_buffer.clear();
            }
        }
        for report in drain_lines(&mut self.report_buffer) {
            match report {
                Ok(Report::Started) => {
                    let now = Instant::now();
                    self.started = Some(now);
                    self.next_cpu_check = now;
                }
                Ok(Report::Exited { status, wall_time }) => {
                    self.w.status = Some(status);
                    self.w.wall_time = wall_time;
                }
                Ok(Report::SetupFailed { step, detail }) => {
                    self.w.setup_failure.get_or_insert((step, detail));
                }
                Err(line) => tracing::warn!(%line, "unreadable line on the report pipe"),
            }
        }
    }

    fn feed_stdin(&mut self) {
        let Some((fd, bytes, written)) = &mut self.stdin else {
            return;
        };
        let done = loop {
            if *written >= bytes.len() {
                break true;
            }
            match nix::unistd::write(&*fd, &bytes[*written..]) {
                Ok(n) => *written += n,
                Err(Errno::EAGAIN) => break false,
                Err(Errno::EINTR) => {}
                Err(_) => break true,
            }
        };
        if done {
            self.stdin = None;
        }
    }
}

/// The parent's read ends, owned for the whole watch.
struct Ends {
    stdout: OwnedFd,
    stderr: OwnedFd,
    report: OwnedFd,
    artifacts: OwnedFd,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Stdout,
    Stderr,
    Report,
    Artifacts,
    Helper,
    Stdin,
}
