//! The parent side of one sandboxed run, inside the warden process (which may be
//! multi-threaded): reserve a uid slot and a cgroup, spawn the helper by exec'ing the warden
//! binary, send it the plan, then watch the program (see `watch`) and clean up. Blocking; an
//! async caller runs it on a blocking thread.
//!
//! A single-threaded caller (the `warden` CLI) may instead have the helper forked without exec
//! ([`Sandbox::fork_helper_when_single_threaded`]): the child of a single-threaded process holds
//! no lock another thread could have held, and skipping the exec (loading the binary, dynamic
//! linking, the runtime's start-up, sending and parsing the plan) saves about 2 ms per run.
//! The process is checked to be single-threaded at each spawn; otherwise the helper is exec'd.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use warden_core::{ByteSize, LimitBounds, Outcome, Usage};
use warden_sys::process::ForkResult;

use crate::cgroup::{Cgroup, CgroupError, CgroupFs};
use crate::collect::CollectedFile;
use crate::helper::{Backend, HelperRequest, ARTIFACT_FD, HELPER_ARG, REPORT_FD, REQUEST_FD};
use crate::idmap::{IdMapError, IdSlot, DEFAULT_SLOT_FILE};
use crate::plan::{PlanError, SandboxPlan};
use crate::watch::{self, Pipes, Watched};

/// How long the sandbox may take to be ready before the program starts.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Resources used.
    pub usage: Usage,
    /// The files `SandboxPlan::collect` named, when the program exited with status 0.
    pub collected: Vec<CollectedFile>,
    /// Why collecting failed (the path was missing, not a regular file, or too large).
    pub collect_error: Option<String>,
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
    /// The helper ended without a report of the program's end.
    #[error("the sandbox helper ended without reporting how the program ended")]
    Vanished,
}

/// The native sandbox backend.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
    helper_args: Vec<OsString>,
    cgroups: CgroupFs,
    slot_file: PathBuf,
    fork_helper: bool,
}

/// The helper process, as the parent holds it.
#[derive(Debug)]
pub(crate) enum HelperProcess {
    /// Exec'd: the warden binary re-executing itself.
    Spawned(Child),
    /// Forked from this (single-threaded) process.
    Forked(Pid),
}

impl HelperProcess {
    pub(crate) fn pid(&self) -> Pid {
        match self {
            HelperProcess::Spawned(child) => {
                Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
            }
            HelperProcess::Forked(pid) => *pid,
        }
    }

    /// Waits for it to exit (it has exited when its pidfd is readable).
    pub(crate) fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            HelperProcess::Spawned(child) => child.wait(),
            HelperProcess::Forked(pid) => {
                let raw = match waitpid(*pid, None).map_err(std::io::Error::from)? {
                    WaitStatus::Exited(_, code) => (code & 0xff) << 8,
                    WaitStatus::Signaled(_, signal, core) => signal as i32 | (i32::from(core) << 7),
                    other => return Err(std::io::Error::other(format!("helper wait: {other:?}"))),
                };
                Ok(ExitStatus::from_raw(raw))
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
        Ok(Self {
            helper: program,
            helper_args: vec![HELPER_ARG.into()],
            cgroups: CgroupFs::detect()?,
            slot_file: PathBuf::from(DEFAULT_SLOT_FILE),
            fork_helper: false,
        })
    }

    /// Has the helper forked without exec when this process is single-threaded at the time
    /// (checked at each run), which saves about 2 ms per run; see the module's documentation.
    #[must_use]
    pub fn fork_helper_when_single_threaded(mut self) -> Self {
        self.fork_helper = true;
        self
    }

    /// The cgroup layout in use.
    pub fn cgroups(&self) -> &CgroupFs {
        &self.cgroups
    }

    /// Runs the plan to completion.
    pub fn run(&self, plan: &SandboxPlan, stdin: Stdin) -> Result<SandboxRun, SandboxError> {
        plan.validate()?;
        plan.limits.validate(&LimitBounds::default())?;
        let slot = self.reserve_slot()?;
        let cgroup = self.new_cgroup(&plan.limits)?;
        let result = self.run_in(plan, stdin, &slot, &cgroup);
        cgroup.kill_all();
        let removed = cgroup.remove();
        let run = result?;
        removed?;
        Ok(run)
    }

    fn run_in(
        &self,
        plan: &SandboxPlan,
        stdin: Stdin,
        slot: &IdSlot,
        cgroup: &Cgroup,
    ) -> Result<SandboxRun, SandboxError> {
        let request = HelperRequest {
            plan: plan.clone(),
            host_id: slot.host_id(),
            cgroup: cgroup.join(),
            backstop: SETUP_TIMEOUT + plan.limits.wall_time + Duration::from_secs(5),
            backend: Backend::Namespaces,
        };
        let watched = self.spawn_and_watch(&request, stdin, cgroup)?;
        finish(watched, cgroup, plan)
    }

    /// A uid slot for one run.
    pub(crate) fn reserve_slot(&self) -> Result<IdSlot, SandboxError> {
        let hint = u64::from(std::process::id()) << 20 ^ RUN_COUNTER.load(Ordering::Relaxed);
        Ok(IdSlot::reserve(&self.slot_file, hint)?)
    }

    /// Starts the helper with `request` and watches the run to its end.
    pub(crate) fn spawn_and_watch(
        &self,
        request: &HelperRequest,
        stdin: Stdin,
        cgroup: &Cgroup,
    ) -> Result<Watched, SandboxError> {
        let (stdin_read, stdin_bytes) = stdin_source(stdin)?;
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let (report_read, report_write) = pipe()?;
        let (artifacts_read, artifacts_write) = pipe()?;
        let ends = HelperEnds {
            stdin: stdin_read,
            stdout: stdout_write,
            stderr: stderr_write,
            report: report_write,
            artifacts: artifacts_write,
        };
        let mut helper = if self.fork_helper && single_threaded() {
            fork_helper(request, ends)?
        } else {
            self.exec_helper(request, ends)?
        };
        let pipes = Pipes {
            stdout: stdout_read,
            stderr: stderr_read,
            report: report_read,
            artifacts: artifacts_read,
            stdin: stdin_bytes,
        };
        watch::watch(&mut helper, pipes, cgroup, &request.plan.limits)
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
            .stdin(ends.stdin.map(Stdio::from).unwrap_or_else(Stdio::null))
            .stdout(Stdio::from(ends.stdout))
            .stderr(Stdio::from(ends.stderr));
        warden_sys::process::map_fds(
            &mut cmd,
            vec![
                (request_read, REQUEST_FD),
                (ends.report, REPORT_FD),
                (ends.artifacts, ARTIFACT_FD),
            ],
        );
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

    /// A cgroup for one run, named uniquely within this process.
    pub(crate) fn new_cgroup(&self, limits: &warden_core::Limits) -> Result<Cgroup, SandboxError> {
        let run_id = format!(
            "run-{}-{}",
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Ok(self.cgroups.create(&run_id, limits)?)
    }
}

pub(crate) fn finish(
    w: Watched,
    cgroup: &Cgroup,
    plan: &SandboxPlan,
) -> Result<SandboxRun, SandboxError> {
    if let Some((step, detail)) = w.setup_failure {
        return Err(SandboxError::Setup { step, detail });
    }
    let stats = cgroup.stats()?;
    let outcome = crate::verdict::decide(w.killed, w.status, &stats, &plan.limits)
        .ok_or(SandboxError::Vanished)?;
    let exited_cleanly = outcome == warden_core::Outcome::Exited { code: 0 };
    let (collected, collect_error) = match (&plan.collect, exited_cleanly) {
        (Some(path), true) if w.artifacts_overflow => {
            (Vec::new(), Some(format!("{} is too large", path.display())))
        }
        (Some(_), true) => match crate::collect::parse(&w.artifacts) {
            Ok(files) => (files, None),
            Err(e) => (Vec::new(), Some(e)),
        },
        _ => (Vec::new(), None),
    };
    Ok(SandboxRun {
        outcome,
        stdout: w.stdout.data,
        stderr: w.stderr.data,
        stdout_truncated: w.stdout.truncated,
        stderr_truncated: w.stderr.truncated,
        usage: Usage {
            cpu_time: stats.cpu_time,
            wall_time: w.wall_time,
            peak_memory: ByteSize(stats.peak_memory.bytes()),
        },
        collected,
        collect_error,
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::Helper {
        action: "creating a pipe",
        source: e.into(),
    })
}

/// The pipe ends the helper gets.
struct HelperEnds {
    /// Its stdin, `/dev/null` when `None`.
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    report: OwnedFd,
    artifacts: OwnedFd,
}

/// Whether this process has one thread (`/proc/self/task` lists them).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Forks the helper without exec; only for a single-threaded process. The child runs the
/// helper on the request it already has in memory, with the pipe ends at the descriptors an
/// exec'd helper would have, and nothing else open; it never returns.
fn fork_helper(request: &HelperRequest, ends: HelperEnds) -> Result<HelperProcess, SandboxError> {
    let null = match &ends.stdin {
        Some(_) => None,
        None => Some(
            std::fs::File::open("/dev/null").map_err(|source| SandboxError::Helper {
                action: "opening /dev/null",
                source,
            })?,
        ),
    };
    let fork = warden_sys::process::fork_single_threaded().map_err(|e| SandboxError::Helper {
        action: "forking the sandbox helper",
        source: e.into(),
    })?;
    match fork {
        ForkResult::Child => {
            let stdin = match (&ends.stdin, &null) {
                (Some(fd), _) => fd.as_fd(),
                (None, Some(null)) => null.as_fd(),
                (None, None) => warden_sys::process::exit_immediately(2),
            };
            let placed = warden_sys::process::arrange_fds(&[
                (stdin, 0),
                (ends.stdout.as_fd(), 1),
                (ends.stderr.as_fd(), 2),
                (ends.report.as_fd(), REPORT_FD),
                (ends.artifacts.as_fd(), ARTIFACT_FD),
            ]);
            if placed.is_err() || std::env::set_current_dir("/").is_err() {
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

/// The read end handed to the helper as stdin, and for byte input the write end the watcher
/// feeds with the bytes.
type StdinEnds = (Option<OwnedFd>, Option<(OwnedFd, Vec<u8>)>);

/// The helper's stdin and, for byte input, the pipe end the watcher feeds.
fn stdin_source(stdin: Stdin) -> Result<StdinEnds, SandboxError> {
    match stdin {
        Stdin::Null => Ok((None, None)),
        Stdin::Pipe(fd) => Ok((Some(fd), None)),
        Stdin::Bytes(bytes) => {
            let (read, write) = pipe()?;
            Ok((Some(read), Some((write, bytes))))
        }
    }
}

/// Writes `u64 length | JSON | file contents`, then closes the pipe.
fn send_request(fd: OwnedFd, request: &HelperRequest) -> std::io::Result<()> {
    let json = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    let mut out = std::io::BufWriter::new(std::fs::File::from(fd));
    out.write_all(&(json.len() as u64).to_le_bytes())?;
    out.write_all(&json)?;
    for file in &request.plan.files {
        out.write_all(&file.contents)?;
    }
    out.flush()
}
