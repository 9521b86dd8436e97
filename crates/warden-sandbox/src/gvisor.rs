//! The `isolated` backend: the same jobs run under gVisor (`runsc`), so the program talks to a
//! user-space kernel instead of the host's. Runs in the parent.
//!
//! warden writes an OCI bundle that carries the whole plan (`gvisor/bundle.rs`: a read-only
//! root, the spec's read-only binds and volumes, the native sandbox's `/dev`, a size-capped
//! workspace and `/tmp`, the seccomp policy as OCI seccomp, `gvisor/seccomp.rs`) and has the
//! helper join the sandbox's cgroup and exec `runsc run` there: runsc's sandbox, gofer and
//! every program process are charged to and killed with that cgroup. The container's own
//! process is a bash loop reading the lifeline (and, as pid 1, reaping orphans), run as
//! `nobody`: it exits, and the container with it, when the parent lets the sandbox go. Each
//! job is a `runsc exec` of an OCI process (argv, environment, rlimits, no capabilities, no
//! new privileges, the seccomp filter) whose exit status is the program's; its files are written into the
//! workspace directory first, and what it collects (a compiler's output) read out after it,
//! from the host, without following links. A limit kills the whole
//! sandbox here (runsc has no cheap way to kill one job's processes and keep the rest), so
//! after a limit the sandbox runs no more jobs. The network is `none`: loopback only.

mod bundle;
mod filter_exec;
mod seccomp;

pub use filter_exec::{seccomp_exec_main, SECCOMP_EXEC_ARG};

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::Value;
use warden_core::{ByteSize, LimitBounds, Limits};

use crate::backend::{run_once, Backend};
use crate::helper::{Backend as HelperBackend, HelperRequest};
use crate::live::{JobLauncher, LiveSandbox, SETUP_TIMEOUT};
use crate::parent::{Launch, Sandbox, SandboxError, SandboxRun, Stdin};
use crate::plan::{Job, SandboxPlan, SandboxSpec};
use crate::report::ExitStatus;

/// Where runsc keeps its container state.
const RUNSC_ROOT: &str = "/run/warden/runsc";
/// Where bundles are written.
pub(crate) const BUNDLES: &str = "/run/warden/gvisor";
/// Memory of runsc's own processes (sentry, gofer), on top of the program's limit: the
/// cgroup holds the whole sandbox, and gVisor has no limit of its own for the program's
/// memory. An idle sandbox's runsc takes about 20 MiB (measured with runsc 0.0~20221219: a
/// python program touching 100 MiB peaks at 123 MiB), so a program can use up to about
/// 44 MiB more than its limit, less as the sentry grows (docs/threat-model.md).
const RUNTIME_MEMORY: ByteSize = ByteSize::mib(64);
/// Threads of runsc's own processes, on top of the program's limit.
const RUNTIME_PIDS: u32 = 512;
/// Writes to the root stay in the sandbox's memory (the root is read-only, so there are
/// none); the workspace and `/tmp` are on the bundle's size-capped tmpfs (`bundle.rs`),
/// shared with the host so that each job's files reach it.
const OVERLAY: &str = "--overlay2=root:memory";

/// Finds `runsc`: `None` when gVisor is not installed.
pub fn runsc_path() -> Option<PathBuf> {
    ["/usr/bin/runsc", "/usr/local/bin/runsc", "/usr/sbin/runsc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Builds gVisor sandboxes on this host.
#[derive(Debug, Clone)]
pub struct Gvisor {
    host: Sandbox,
    runsc: PathBuf,
}

impl Sandbox {
    /// The gVisor backend; fails (never falls back to another backend) when runsc is missing.
    pub fn gvisor(&self) -> Result<Gvisor, SandboxError> {
        let runsc = runsc_path().ok_or(SandboxError::Unsupported {
            feature: "gVisor (runsc)",
            detail: "install the Debian package runsc for isolated mode".to_owned(),
        })?;
        Ok(Gvisor {
            host: self.clone(),
            runsc,
        })
    }

    /// Runs the plan to completion in a fresh gVisor sandbox.
    pub fn run_isolated(
        &self,
        plan: &SandboxPlan,
        stdin: Stdin,
    ) -> Result<SandboxRun, SandboxError> {
        run_once(&self.gvisor()?, plan, stdin)
    }
}

impl Backend for Gvisor {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    fn start(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        spec.validate()?;
        spec.limits.validate(&LimitBounds::default())?;
        let runtime_limits = Limits {
            memory: ByteSize(spec.limits.memory.bytes() + RUNTIME_MEMORY.bytes()),
            max_procs: spec.limits.max_procs.saturating_add(RUNTIME_PIDS),
            ..spec.limits
        };
        let cgroup = self.host.new_cgroup(&runtime_limits)?;
        let container = format!("warden-{}", cgroup.name());
        let bundle = Path::new(BUNDLES).join(&container);
        let cleanup = {
            let (runsc, container, bundle) =
                (self.runsc.clone(), container.clone(), bundle.clone());
            Box::new(move || {
                // A `runsc run` that ended on its own destroyed its container; one killed (a
                // limit, a crash) left its state behind, which `delete` removes.
                if known_to_runsc(Path::new(RUNSC_ROOT), &container) {
                    let _ = Command::new(&runsc)
                        .args(["--root", RUNSC_ROOT, "delete", "--force", &container])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
                // Not there when the bundle was never complete.
                let _ = nix::mount::umount2(
                    &bundle::scratch(&bundle),
                    nix::mount::MntFlags::MNT_DETACH,
                );
                match fs::remove_dir_all(&bundle) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(SandboxError::Helper {
                            action: "removing the gVisor bundle",
                            source: e,
                        })
                    }
                    _ => Ok(()),
                }
            }) as Box<dyn FnOnce() -> Result<(), SandboxError> + Send>
        };
        let filter = filter_exec::compile_for_jobs(&spec.seccomp)?;
        if let Err(e) = bundle::write_bundle(&bundle, spec, self.host.helper_path()) {
            let _ = cleanup();
            return Err(e);
        }
        let request = HelperRequest {
            spec: SandboxSpec {
                limits: runtime_limits,
                ..spec.clone()
            },
            host_id: 0,
            cgroup: cgroup.join(),
            // runsc's sandbox has no init of warden's to read it: its jobs start on a ready one.
            cpu_counter: None,
            backend: HelperBackend::Exec(runsc_argv(&self.runsc, &bundle, &container, spec.egress)),
        };
        let launcher = RunscJobs {
            runsc: self.runsc.clone(),
            container,
            workspace: bundle::workspace(&bundle, spec),
            filter,
            bundle,
            count: 0,
        };
        self.host.launch(
            Launch {
                request,
                spec: spec.clone(),
                overhead: (RUNTIME_MEMORY, RUNTIME_PIDS),
                slot: None,
                cgroup,
                cleanup: vec![cleanup],
            },
            Some(Box::new(launcher)),
        )
    }
}

/// Runs each job as `runsc exec --process`.
#[derive(Debug, Clone)]
struct RunscJobs {
    runsc: PathBuf,
    container: String,
    bundle: PathBuf,
    /// The host directory the sandbox sees at `/work`.
    workspace: PathBuf,
    /// The seccomp filter each job's loader installs (`gvisor/filter_exec.rs`).
    filter: String,
    /// Jobs started so far (names their process files).
    count: u64,
}

impl RunscJobs {
    fn runsc(&self) -> Command {
        let mut command = Command::new(&self.runsc);
        command.args(["--root", RUNSC_ROOT]);
        command
    }
}

impl RunscJobs {
    /// What `runsc state` says of the container (JSON), if it answers.
    fn state(&self) -> Result<String, SandboxError> {
        let state = self
            .runsc()
            .args(["state", &self.container])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .map_err(|source| SandboxError::Helper {
                action: "asking runsc for the container's state",
                source,
            })?;
        Ok(String::from_utf8_lossy(&state.stdout).into_owned())
    }
}

/// Whether runsc still keeps files of `container` in its root (its state and lock files are
/// named `<id>_sandbox:<id>.state` and `.lock`); true when the root cannot be read.
fn known_to_runsc(root: &Path, container: &str) -> bool {
    let prefix = format!("{container}_");
    match fs::read_dir(root) {
        Ok(entries) => entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with(&prefix)),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// How long [`RunscJobs::await_running`] waits for a change of the state file before asking
/// runsc.
const STATE_RECHECK: Duration = Duration::from_millis(100);

/// What a container's state file says.
enum Recorded {
    /// Not written yet, or `creating` / `created`.
    Starting,
    Running,
    /// Anything else, or a file that cannot be read as runsc's: runsc is asked.
    Other,
}

/// Changes of one container's state file in runsc's root directory, seen with inotify.
struct StateChanges {
    inotify: Inotify,
    root: PathBuf,
    /// The state file's name starts with the container's id (`<id>_sandbox:<id>.state`).
    prefix: String,
}

impl StateChanges {
    /// `None` when the directory cannot be watched (the caller then asks runsc at short
    /// intervals).
    fn watch(root: &Path, container: &str) -> Option<Self> {
        // runsc creates its root as 0711 on its first run; created here first, the same.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .ok()?;
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        inotify
            .add_watch(
                root,
                AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO,
            )
            .ok()?;
        Some(Self {
            inotify,
            root: root.to_owned(),
            prefix: format!("{container}_"),
        })
    }

    fn is_state_file(&self, name: &std::ffi::OsStr) -> bool {
        let name = name.to_string_lossy();
        name.starts_with(&self.prefix) && name.ends_with(".state")
    }

    /// Reads the state file's `status`.
    fn recorded(&self) -> Recorded {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Recorded::Other;
        };
        let Some(file) = entries
            .flatten()
            .find(|entry| self.is_state_file(&entry.file_name()))
        else {
            return Recorded::Starting;
        };
        let status = fs::read(file.path())
            .ok()
            .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
            .and_then(|state| state["status"].as_str().map(str::to_owned));
        match status.as_deref() {
            Some("running") => Recorded::Running,
            Some("creating" | "created") => Recorded::Starting,
            _ => Recorded::Other,
        }
    }

    /// Waits until the container's state file is written again (true), or `timeout` passes
    /// (false). Other files (the lock file, other containers') are passed over.
    fn wait(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            let events = self.inotify.read_events().unwrap_or_default();
            if events
                .iter()
                .any(|event| event.name.as_deref().is_some_and(|n| self.is_state_file(n)))
            {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            let left = PollTimeout::try_from(left.max(Duration::from_millis(1)))
                .unwrap_or(PollTimeout::MAX);
            if matches!(poll(&mut fds, left), Ok(0)) {
                return false;
            }
        }
    }
}

impl JobLauncher for RunscJobs {
    /// The sandbox process's pid (`runsc state`), which runs in the network namespace runsc
    /// made for it.
    fn network_pid(&self) -> Option<nix::unistd::Pid> {
        let state: Value = serde_json::from_str(&self.state().ok()?).ok()?;
        let pid = i32::try_from(state["pid"].as_i64()?).ok()?;
        (pid > 0).then(|| nix::unistd::Pid::from_raw(pid))
    }

    /// Waits until the container runs. Each `runsc state` is a process of its own (about
    /// 10 ms of cpu and 25 ms of wall while the sandbox boots), so runsc is not asked every
    /// few milliseconds: the state file runsc writes when the container is created and when
    /// it starts is watched (inotify) and read, and runsc itself is asked only when the file
    /// says something else, when no change came for [`STATE_RECHECK`] (a sandbox that died
    /// before writing it), or when the directory cannot be watched.
    fn await_running(&self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        // Watching before the first look, so that no change after it goes unseen.
        let changes = StateChanges::watch(Path::new(RUNSC_ROOT), &self.container);
        let mut ask = changes.is_none();
        loop {
            let now = Instant::now();
            if ask || now >= deadline {
                let text = self.state()?;
                if text.contains("\"running\"") {
                    return Ok(());
                }
                if text.contains("\"stopped\"") || now >= deadline {
                    return Err(SandboxError::Setup {
                        step: "start the gVisor container".into(),
                        detail: format!("runsc reports: {}", text.trim()),
                    });
                }
            } else if let Some(changes) = &changes {
                match changes.recorded() {
                    Recorded::Running => return Ok(()),
                    Recorded::Starting => {}
                    Recorded::Other => {
                        ask = true;
                        continue;
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            ask = match &changes {
                Some(changes) => !changes.wait(STATE_RECHECK.min(left)),
                None => {
                    std::thread::sleep(Duration::from_millis(5));
                    true
                }
            };
        }
    }

    fn prepare(&mut self, job: &Job) -> Result<Command, SandboxError> {
        crate::workspace::write_files(&self.workspace, &job.files).map_err(|e| {
            SandboxError::Setup {
                step: e.step,
                detail: e.detail,
            }
        })?;
        self.count += 1;
        let process = self.bundle.join(format!("job-{}.json", self.count));
        let text = serde_json::to_vec(&bundle::oci_process(
            &filter_exec::job_argv(&self.filter, &job.argv),
            &job.env,
            &job.limits,
        ))
        .map_err(|e| SandboxError::Helper {
            action: "writing a job's process.json",
            source: std::io::Error::other(e),
        })?;
        fs::write(&process, text).map_err(|source| SandboxError::Helper {
            action: "writing a job's process.json",
            source,
        })?;
        let mut command = self.runsc();
        command
            .arg("exec")
            .arg("--process")
            .arg(&process)
            .arg(&self.container)
            .env_clear();
        Ok(command)
    }

    fn status(&self, status: std::process::ExitStatus) -> ExitStatus {
        runsc_status(status)
    }

    /// Reads the collected path out of the workspace, which is a host directory here, with the
    /// init's own collector: every path opened relative to its parent without following a
    /// link, only regular files, capped (`collect.rs`). The stream goes through an unnamed
    /// temporary file in the bundle.
    fn collect(&self, path: &Path) -> Result<Vec<u8>, SandboxError> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::OpenOptionsExt;
        let io = |action: &'static str| move |source| SandboxError::Helper { action, source };
        let mut stream = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(&self.bundle)
            .map_err(io("creating the collection's temporary file"))?;
        let out = std::os::fd::OwnedFd::from(
            stream
                .try_clone()
                .map_err(io("creating the collection's temporary file"))?,
        );
        crate::collect::send(&self.workspace, path, &out).map_err(|e| SandboxError::Setup {
            step: e.step,
            detail: e.detail,
        })?;
        stream.rewind().map_err(io("reading the collected files"))?;
        let mut bytes = Vec::new();
        stream
            .read_to_end(&mut bytes)
            .map_err(io("reading the collected files"))?;
        Ok(bytes)
    }
}

/// `runsc run` of the bundle. With `egress`, gVisor's sockets are the host kernel's
/// (`--network=host`), in the new network namespace runsc makes for its sandbox process, where
/// warden's proxy then listens and its interception and resolver govern every socket (a
/// namespace with nothing but loopback); without, gVisor's own stack with loopback only.
fn runsc_argv(runsc: &Path, bundle: &Path, container: &str, egress: bool) -> Vec<String> {
    [
        runsc.to_string_lossy().as_ref(),
        "--root",
        RUNSC_ROOT,
        if egress {
            "--network=host"
        } else {
            "--network=none"
        },
        "--ignore-cgroups",
        // Enforce the bundle's seccomp section on the program (`gvisor/seccomp.rs`).
        "--oci-seccomp",
        OVERLAY,
        "run",
        "--bundle",
        &bundle.to_string_lossy(),
        container,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// runsc exits with the program's status, or 128 + N when signal N killed it.
fn runsc_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) if (129..=128 + 64).contains(&code) => ExitStatus::Signal(code - 128),
        (Some(code), _) => ExitStatus::Code(code),
        (None, Some(signal)) => ExitStatus::Signal(signal),
        (None, None) => ExitStatus::Code(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_is_read_and_its_changes_seen() {
        let root = tempfile::tempdir().expect("tempdir");
        let changes = StateChanges::watch(root.path(), "warden-run-1-0").expect("watch");
        let file = root
            .path()
            .join("warden-run-1-0_sandbox:warden-run-1-0.state");
        // Not written yet: starting, and nothing changes.
        assert!(matches!(changes.recorded(), Recorded::Starting));
        assert!(!changes.wait(Duration::from_millis(20)));
        // Another container's file and the lock file are passed over.
        fs::write(
            root.path()
                .join("warden-run-2-0_sandbox:warden-run-2-0.state"),
            "{}",
        )
        .expect("write");
        fs::write(
            root.path()
                .join("warden-run-1-0_sandbox:warden-run-1-0.lock"),
            "",
        )
        .expect("write");
        assert!(!changes.wait(Duration::from_millis(20)));
        for (status, running, starting) in [
            ("created", false, true),
            ("running", true, false),
            ("stopped", false, false),
        ] {
            fs::write(
                &file,
                format!(r#"{{"id":"warden-run-1-0","status":"{status}"}}"#),
            )
            .expect("write");
            assert!(
                changes.wait(Duration::from_secs(5)),
                "{status}: the write is seen"
            );
            let recorded = changes.recorded();
            assert_eq!(matches!(recorded, Recorded::Running), running, "{status}");
            assert_eq!(matches!(recorded, Recorded::Starting), starting, "{status}");
        }
        assert!(known_to_runsc(root.path(), "warden-run-1-0"));
        assert!(!known_to_runsc(root.path(), "warden-run-3-0"));
        assert!(!known_to_runsc(&root.path().join("none"), "warden-run-1-0"));
        // A file runsc did not write this way: runsc is asked.
        fs::write(&file, "not json").expect("write");
        assert!(matches!(changes.recorded(), Recorded::Other));
    }

    #[test]
    fn only_a_sandbox_with_egress_runs_on_the_host_network_stack() {
        let argv = |egress| runsc_argv(Path::new("/usr/bin/runsc"), Path::new("/b"), "c", egress);
        assert!(argv(false).contains(&"--network=none".to_owned()));
        assert!(argv(true).contains(&"--network=host".to_owned()));
        assert!(!argv(true).contains(&"--network=none".to_owned()));
    }

    #[test]
    fn runsc_statuses_map_to_exit_codes_and_signals() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            runsc_status(std::process::ExitStatus::from_raw(3 << 8)),
            ExitStatus::Code(3)
        );
        assert_eq!(
            runsc_status(std::process::ExitStatus::from_raw(139 << 8)),
            ExitStatus::Signal(11)
        );
        assert_eq!(
            runsc_status(std::process::ExitStatus::from_raw(9)),
            ExitStatus::Signal(9)
        );
    }
}
