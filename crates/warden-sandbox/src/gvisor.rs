//! The `isolated` backend: the same jobs run under gVisor (`runsc`), so the program talks to a
//! user-space kernel instead of the host's. Runs in the parent.
//!
//! warden writes an OCI bundle that carries the whole plan (`gvisor/bundle.rs`: a read-only
//! root, the spec's read-only binds and volumes, the native sandbox's `/dev`, a size-capped
//! workspace and `/tmp`, the seccomp policy as OCI seccomp, `gvisor/seccomp.rs`, and a user
//! namespace that maps the sandbox's root to the run's uid slot, the host id a native sandbox's
//! root has) and has the helper join the sandbox's cgroup and exec `runsc run` there: runsc's sandbox, gofer and
//! every program process are charged to and killed with that cgroup. The container's own
//! process is the keeper, warden's loader waiting on the lifeline (and, as pid 1, reaping
//! orphans as they end, `gvisor/filter_exec.rs`), run as
//! `nobody`: it exits, and the container with it, when the parent lets the sandbox go. Each
//! job is a `runsc exec` of an OCI process (argv, environment, rlimits, no capabilities, no
//! new privileges, the seccomp filter) whose exit status is the program's; its files are written into the
//! workspace directory first (as the slot's, on the scratch tmpfs: the sandbox's root's), and
//! what it collects (a compiler's output) read out after it, from the host, without following
//! links. A limit kills the whole
//! sandbox here (runsc has no cheap way to kill one job's processes and keep the rest), so
//! after a limit the sandbox runs no more jobs. The network is `none`: loopback only.
//!
//! A sandbox for one job (`Backend::start_single`, without egress) skips the keeper and the
//! `runsc exec`: its helper only holds the cgroup (`helper::Backend::Hold`), and the job's
//! process is the warden binary as [`CGROUP_EXEC_ARG`], which joins the cgroup and becomes
//! `runsc run` of a bundle whose process is the job, under the loader as the container's init.
//! The program's clock starts when runsc's state file says `running`. Its sentry ends with the
//! job, so it is not watched: `runsc run`'s own log ([`run_log`]) tells one killed under it.

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
use crate::cgroup::CgroupJoin;
use crate::helper::{Backend as HelperBackend, HelperRequest};
use crate::idmap::Purpose;
use crate::live::{JobLauncher, LiveSandbox, SETUP_TIMEOUT};
use crate::parent::{Launch, Sandbox, SandboxError, SandboxRun, Stdin};
use crate::plan::{Job, SandboxPlan, SandboxSpec};
use crate::report::ExitStatus;
use crate::watch::ProgramStart;
use crate::workspace::{InMemory, Misfit, Room};

/// Where runsc keeps its container state.
pub(crate) const RUNSC_ROOT: &str = "/run/warden/runsc";
/// Where bundles are written.
pub(crate) const BUNDLES: &str = "/run/warden/gvisor";
/// Memory of runsc's own processes (sentry, gofer), on top of the program's limit: the
/// cgroup holds the whole sandbox, and gVisor has no limit of its own for the program's
/// memory. An idle sandbox's runsc takes about 20 MiB (measured with runsc 0.0~20221219: a
/// python program touching 100 MiB peaks at 123 MiB), so a program can use up to about
/// 44 MiB more than its limit, less as the sentry grows (docs/threat-model.md).
const RUNTIME_MEMORY: ByteSize = ByteSize::mib(64);
/// Threads of runsc's own processes, on top of the program's limit and
/// [`RUNTIME_PIDS_PER_PROCESS`]: an idle sandbox's sentry, gofer and `runsc` take about 100.
const RUNTIME_PIDS: u32 = 512;
/// Host threads the runtime may keep for each process the program may have. Under the ptrace
/// platform every address space of the program is a stub process on the host, which gets
/// one thread for each sentry thread that ever ran in it, and the sentry keeps the stubs of
/// ended processes for reuse, so the threads of a sandbox whose jobs start many processes
/// grow toward about the sentry's threads (100 to 250) times the processes at once: measured
/// with runsc 0.0~20221219, a session whose calls each ran 55 processes at once grew by 100
/// to 800 host threads a call (busy loops; `(sleep 0.2; true) &`), to 3,500 after 30 calls
/// of the one and 4,300 after 6 of the other. The program itself stays within its own
/// `max_procs` (gVisor's `RLIMIT_NPROC`, `bundle.rs`); this limit only bounds runsc, and the
/// memory limit, which their kernel stacks count against, bounds it too.
const RUNTIME_PIDS_PER_PROCESS: u32 = 128;
/// The most host threads a gVisor sandbox's runtime may take, whatever its `max_procs`: at
/// most a quarter of the host's `kernel.pid_max` (32,768 on some hosts, where one sandbox
/// must not take them all), and never more than this. All sandboxes together are bounded by
/// warden's parent cgroup (`cgroup/total.rs`: half of the host's tasks).
const RUNTIME_PIDS_CEILING: u32 = 16_384;

/// The host threads a sandbox whose program may have `max_procs` processes gives its runtime.
fn runtime_pids(max_procs: u32) -> u32 {
    let host = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or(RUNTIME_PIDS_CEILING, |pid_max| pid_max / 4);
    max_procs
        .saturating_mul(RUNTIME_PIDS_PER_PROCESS)
        .saturating_add(RUNTIME_PIDS)
        .min(RUNTIME_PIDS_CEILING.min(host).max(RUNTIME_PIDS))
}

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

impl Gvisor {
    /// The same backend with another runsc binary at `runsc` (a wrapper of the host's, or a
    /// stand-in that fails as a broken runsc does, in tests).
    pub fn with_runsc(mut self, runsc: PathBuf) -> Self {
        self.runsc = runsc;
        self
    }
}

impl Backend for Gvisor {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    fn start(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        self.start_sandbox(spec, false)
    }

    /// One container whose own process is the job: no keeper, no `runsc exec` (about a third
    /// of a python hello's wall time). Not with egress: warden's proxy listens in the
    /// sandbox's network namespace, which must exist before the job starts.
    fn start_single(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        self.start_sandbox(spec, !spec.egress)
    }
}

impl Gvisor {
    /// Starts a sandbox that runs its jobs with `runsc exec` in a keeper container, or, when
    /// `one_job`, whose container is started for its first job and runs it (its only one).
    fn start_sandbox(
        &self,
        spec: &SandboxSpec,
        one_job: bool,
    ) -> Result<LiveSandbox, SandboxError> {
        spec.validate()?;
        spec.limits.validate(&LimitBounds::default())?;
        let runtime_pids = runtime_pids(spec.limits.max_procs);
        let runtime_limits = Limits {
            memory: ByteSize(spec.limits.memory.bytes() + RUNTIME_MEMORY.bytes()),
            max_procs: spec.limits.max_procs.saturating_add(runtime_pids),
            ..spec.limits
        };
        let cgroup = self.host.new_cgroup(&runtime_limits)?;
        // The run's uid slot, as a native sandbox's: its root is this host id to the host's
        // files (the bundle's user namespace, `bundle.rs`), unless the sandbox has egress.
        let slot = self.host.reserve_slot(Purpose::Sandbox)?;
        slot.set_owner(&cgroup.name())
            .map_err(|source| SandboxError::Helper {
                action: "recording the uid slot's cgroup",
                source,
            })?;
        let ids = bundle::Ids {
            host_id: slot.host_id(),
            // Not with egress: runsc cannot start it so (`bundle::Ids`).
            mapped: !spec.egress,
        };
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
                remove_bundle(&bundle)
            }) as Box<dyn FnOnce() -> Result<(), SandboxError> + Send>
        };
        let filter = filter_exec::compile_for_jobs(&spec.seccomp)?;
        if let Err(e) = bundle::write_bundle(&bundle, spec, self.host.helper_path(), &ids) {
            let _ = cleanup();
            return Err(e);
        }
        let run = runsc_argv(&self.runsc, &bundle, &container, spec.egress, one_job);
        let join = cgroup.join();
        let (backend, container_start) = if one_job {
            // The helper holds the cgroup; the job's process joins it and becomes `runsc run`.
            let mut argv = vec![
                self.host.helper_path().to_string_lossy().into_owned(),
                CGROUP_EXEC_ARG.to_owned(),
            ];
            let files = match &join {
                CgroupJoin::MoveHelper { enter, .. } => enter,
                CgroupJoin::WriteInitPid { procs } => procs,
            };
            argv.push(files.len().to_string());
            argv.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
            argv.extend(run);
            (
                HelperBackend::Hold {
                    bundle: bundle.clone(),
                },
                Some(argv),
            )
        } else {
            (
                HelperBackend::Exec {
                    argv: run,
                    bundle: bundle.clone(),
                },
                None,
            )
        };
        let request = HelperRequest {
            spec: SandboxSpec {
                limits: runtime_limits,
                ..spec.clone()
            },
            host_id: ids.host_id,
            cgroup: join,
            // runsc's sandbox has no init of warden's to read it: its jobs start on a ready one.
            cpu_counter: None,
            backend,
        };
        let launcher = RunscJobs {
            runsc: self.runsc.clone(),
            container,
            workspace: bundle::workspace(&bundle, spec),
            scratch_size: spec.limits.workspace_size,
            work_on_scratch: !spec
                .volumes
                .iter()
                .any(|v| v.target == Path::new(crate::plan::WORKDIR)),
            filter,
            bundle,
            ids,
            count: 0,
            container_start,
            start: None,
            pid_file: None,
            sentry: std::sync::OnceLock::new(),
        };
        self.host.launch(
            Launch {
                request,
                spec: spec.clone(),
                overhead: (RUNTIME_MEMORY, runtime_pids),
                slot: Some(slot),
                cgroup,
                cleanup: vec![cleanup],
            },
            Some(Box::new(launcher)),
        )
    }
}

/// Removes a bundle: its scratch tmpfs and its volumes unmounted (detached; not there when the
/// bundle was never complete), then the tree, without following links.
pub(crate) fn remove_bundle(bundle: &Path) -> Result<(), SandboxError> {
    let _ = nix::mount::umount2(&bundle::scratch(bundle), nix::mount::MntFlags::MNT_DETACH);
    // A volume still mounted there is left with the bundle: removing the tree would remove
    // the volume's files.
    bundle::remove_volumes(bundle).map_err(|source| SandboxError::Helper {
        action: "unmounting the gVisor sandbox's volumes",
        source,
    })?;
    match fs::remove_dir_all(bundle) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::Helper {
            action: "removing the gVisor bundle",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// What a container whose runsc was killed with its warden leaves, removed by its holder
/// (`helper::Backend::Hold`): runsc's files of it, then its bundle. Every process of it is
/// gone by then.
pub(crate) fn remove_container(bundle: &Path) {
    if let Some(container) = bundle.file_name().and_then(|n| n.to_str()) {
        for entry in fs::read_dir(RUNSC_ROOT).into_iter().flatten().flatten() {
            if is_runsc_file_of(&entry.file_name(), container) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let _ = remove_bundle(bundle);
}

/// Whether `name` is one of runsc's files of `container` in its root: its state and lock files
/// are named `<id>_sandbox:<id>.state` and `.lock`.
fn is_runsc_file_of(name: &std::ffi::OsStr, container: &str) -> bool {
    name.to_string_lossy()
        .strip_prefix(container)
        .is_some_and(|rest| rest.starts_with('_'))
}

/// Runs each job as `runsc exec --process`, or a one-job sandbox's job as its container.
#[derive(Debug)]
struct RunscJobs {
    runsc: PathBuf,
    container: String,
    bundle: PathBuf,
    /// The host directory the sandbox sees at `/work`.
    workspace: PathBuf,
    /// The scratch tmpfs's cap now: each job's `workspace_size` ([`RunscJobs::fit`]).
    scratch_size: ByteSize,
    /// Whether `workspace` is on the scratch tmpfs (no volume at `/work`).
    work_on_scratch: bool,
    /// The seccomp filter each job's loader installs (`gvisor/filter_exec.rs`).
    filter: String,
    /// The sandbox's user namespace's ids: the files of each job are written as its root's.
    ids: bundle::Ids,
    /// Jobs started so far (names their process files).
    count: u64,
    /// A one-job sandbox's: the command that joins the cgroup and runs the container
    /// (`warden __cgroup-exec ... runsc run`), whose process is the job.
    container_start: Option<Vec<String>>,
    /// What tells that the program of the job just prepared runs, watched from before its
    /// process starts until the watch takes it ([`JobLauncher::program_start`]): the
    /// container's state file (a one-job sandbox), or the job's pid file.
    start: Option<Box<dyn ProgramStart>>,
    /// Where `runsc exec` writes the pid (inside the sandbox) of the job just prepared: its
    /// loader, which passes signals on (`filter_exec.rs`).
    pid_file: Option<PathBuf>,
    /// The sandbox's sentry (the `runsc-sandbox` process), found once the container runs: a
    /// keeper's sandbox outlives its jobs, and a job's `runsc exec` ends with status 128 both
    /// when the program exits 128 and when the sentry died under it
    /// ([`JobLauncher::runtime_ended`]). Unset for a one-job sandbox, whose sentry ends with
    /// its job in any case (`runsc run`'s log tells instead, [`run_log`]), and until a state
    /// file names a live process (each job looks again).
    sentry: std::sync::OnceLock<Sentry>,
}

/// The host process of a sandbox's sentry: its pid, with a pidfd that keeps the pid's
/// meaning (a pid seen by its pidfd as not yet exited still names the sentry).
#[derive(Debug)]
struct Sentry {
    pid: u32,
    pidfd: std::os::fd::OwnedFd,
}

impl Sentry {
    /// Whether the sentry has ended or is ending. `runsc exec` sees the sentry's socket
    /// close as its threads exit, before the last of them has (when its pidfd turns
    /// readable): a sentry killed under a job reads as a zombie or exiting (`PF_EXITING`) in
    /// `/proc` by then. A pid that names another process by then means the sentry was
    /// reaped, which its pidfd, read again, says.
    fn ended(&self) -> bool {
        has_exited(&self.pidfd) || crate::stale::is_dead(self.pid) || has_exited(&self.pidfd)
    }
}

impl RunscJobs {
    fn runsc(&self) -> Command {
        let mut command = Command::new(&self.runsc);
        command.args(["--root", RUNSC_ROOT]);
        command
    }

    /// Caps the scratch tmpfs at the job's `workspace_size`, as the native init does its own
    /// (`mounts::Scratch`), and returns the room the job's files have. Warden mounted the
    /// tmpfs on the host and remounts it there (`MS_REMOUNT`, `size=`): gVisor's gofer writes
    /// the sandbox's `/work` and `/tmp` into it, so the new cap holds inside at once, with
    /// nothing asked of gVisor (whose sentry a mount call inside would reach, not this
    /// tmpfs). The files' pages are charged to warden, which writes them here, not to the
    /// sandbox's cgroup: no memory check.
    fn fit(&mut self, limits: &Limits) -> Result<Option<Room>, SandboxError> {
        let scratch = bundle::scratch(&self.bundle);
        let setup = |e: crate::child::SetupError| SandboxError::setup(e.step, e.detail);
        let holds = crate::workspace::used_bytes(&scratch).map_err(setup)?;
        let size = limits.workspace_size;
        if holds > size.bytes() {
            return Err(setup(Misfit::holds_more(size, holds)));
        }
        if size != self.scratch_size {
            nix::mount::mount(
                None::<&str>,
                &scratch,
                None::<&str>,
                nix::mount::MsFlags::MS_REMOUNT
                    | nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV,
                Some(format!("size={}", size.bytes()).as_str()),
            )
            .map_err(|e| SandboxError::Helper {
                action: "resizing the gVisor workspace",
                source: e.into(),
            })?;
            self.scratch_size = size;
        }
        Ok(self.work_on_scratch.then_some(Room {
            size,
            holds: ByteSize(holds),
            memory: None,
        }))
    }
}

impl RunscJobs {
    /// Waits until the container runs. Each `runsc state` is a process of its own (about
    /// 10 ms of cpu and 25 ms of wall while the sandbox boots), so runsc is not asked every
    /// few milliseconds: the state file runsc writes when the container is created and when
    /// it starts is watched (inotify) and read, and runsc itself is asked only when the file
    /// says something else, when no change came for [`STATE_RECHECK`] (a sandbox that died
    /// before writing it), or when the directory cannot be watched.
    fn wait_running(&self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        // Watching before the first look, so that no change after it goes unseen.
        let mut changes = StateChanges::watch(Path::new(RUNSC_ROOT), &self.container);
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
            } else if let Some(changes) = &mut changes {
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

/// Whether runsc still keeps files of `container` in its root; true when the root cannot be
/// read.
fn known_to_runsc(root: &Path, container: &str) -> bool {
    match fs::read_dir(root) {
        Ok(entries) => entries
            .flatten()
            .any(|entry| is_runsc_file_of(&entry.file_name(), container)),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// The container's state file as runsc wrote it: `Ok(None)` when there is none yet, `null`
/// when it cannot be read as JSON, `Err` when the root cannot be read.
fn state_file(root: &Path, container: &str) -> Result<Option<Value>, ()> {
    Ok(state_file_opened(root, container)?.map(|file| read_state(&file)))
}

/// The container's state file, opened: `Ok(None)` when there is none, `Err` when the root
/// cannot be read.
fn state_file_opened(root: &Path, container: &str) -> Result<Option<fs::File>, ()> {
    let entries = fs::read_dir(root).map_err(|_| ())?;
    Ok(entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            is_runsc_file_of(&name, container) && name.to_string_lossy().ends_with(".state")
        })
        .find_map(|entry| fs::File::open(entry.path()).ok()))
}

/// What an open state file says now, from its start; `null` when it cannot be read as JSON.
fn read_state(file: &fs::File) -> Value {
    use std::io::{Read, Seek};
    let mut text = Vec::new();
    let mut reader = file;
    reader
        .rewind()
        .and_then(|_| reader.read_to_end(&mut text))
        .ok()
        .and_then(|_| serde_json::from_slice::<Value>(&text).ok())
        .unwrap_or(Value::Null)
}

/// The container's sentry, from its state file's `sandbox.pid`.
fn sentry_of(root: &Path, container: &str) -> Option<Sentry> {
    let state = state_file(root, container).ok()??;
    let pid = u32::try_from(state["sandbox"]["pid"].as_u64()?).ok()?;
    let raw = i32::try_from(pid).ok().filter(|&pid| pid > 0)?;
    let pidfd = warden_sys::process::pidfd_open(nix::unistd::Pid::from_raw(raw)).ok()?;
    Some(Sentry { pid, pidfd })
}

/// Whether the process behind `pidfd` has exited (its pidfd reads as ready).
fn has_exited(pidfd: &std::os::fd::OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
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
#[derive(Debug)]
struct StateChanges {
    inotify: Inotify,
    root: PathBuf,
    /// The container's id, which starts its state file's name ([`is_runsc_file_of`]).
    container: String,
    /// The state file, open since it was first read. runsc rewrites it in place (one inode
    /// from `created` to `running`, seen with runsc 0.0~20221219) and removes it when a `runsc
    /// run` ends, so a container whose program ended before its `running` was read (its
    /// process's exit seen first) still says, through this descriptor, that it ran.
    held: Option<fs::File>,
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
            container: container.to_owned(),
            held: None,
        })
    }

    fn is_state_file(&self, name: &std::ffi::OsStr) -> bool {
        is_runsc_file_of(name, &self.container) && name.to_string_lossy().ends_with(".state")
    }

    /// Reads the state file's `status`: the file in runsc's root, or, once runsc removed it,
    /// what it last said ([`StateChanges::held`]).
    fn recorded(&mut self) -> Recorded {
        let state = match state_file_opened(&self.root, &self.container) {
            Err(()) => return Recorded::Other,
            Ok(Some(file)) => read_state(self.held.insert(file)),
            Ok(None) => match &self.held {
                Some(file) => read_state(file),
                None => return Recorded::Starting,
            },
        };
        let status = state["status"].as_str().map(str::to_owned);
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

    /// Waits until the container runs ([`RunscJobs::wait_running`]), then watches its sentry.
    fn await_running(&self) -> Result<(), SandboxError> {
        if self.container_start.is_some() {
            // Nothing runs before the job: its process starts the container.
            return Ok(());
        }
        self.wait_running()?;
        if self.sentry.get().is_none() {
            if let Some(sentry) = sentry_of(Path::new(RUNSC_ROOT), &self.container) {
                let _ = self.sentry.set(sentry);
            }
        }
        Ok(())
    }

    /// The sentry ended: the sandbox is gone, whatever the job's `runsc exec` said. A one-job
    /// sandbox's sentry ends with its job, whose status `runsc run` reports either way (137
    /// for a program killed by SIGKILL and for a sentry killed under it): there its log says
    /// whether the sentry was killed under the job ([`ended_by_runtime`]).
    fn runtime_ended(&self) -> bool {
        match self.container_start {
            Some(_) => ended_by_runtime(&run_log(&self.bundle)),
            None => self.sentry.get().is_some_and(Sentry::ended),
        }
    }

    /// A one-job sandbox's runtime that crashed under its job (its sentry refused a thread):
    /// `runsc run` then exits with the sentry's status, as if it were the program's, and only
    /// the Go runtime's crash report (`--panic-log`) tells. A sentry killed leaves no report:
    /// `runsc run`'s log tells that ([`JobLauncher::runtime_ended`]), as a keeper's sentry is
    /// watched.
    fn runtime_failure(&self) -> Option<String> {
        self.container_start.as_ref()?;
        crash_report(&panic_log(&self.bundle))
    }

    fn prepare(&mut self, job: &Job) -> Result<Command, SandboxError> {
        let room = self.fit(&job.limits)?;
        // The scratch workspace's files are the sandbox's root's (the slot's on the host), as
        // if it had written them; a volume at `/work` stores them as uid 0 on disk, which its
        // id-mapped mount shows as the sandbox's root (`bundle.rs`).
        let as_slot = self.ids.owner().filter(|_| self.work_on_scratch);
        as_host_id(as_slot, || {
            crate::workspace::write_files(&self.workspace, &job.files, &mut InMemory, room)
        })
        .map_err(|e| SandboxError::setup(e.step, e.detail))?;
        if let Some(argv) = &self.container_start {
            if self.count > 0 {
                return Err(SandboxError::Gone {
                    why: "a one-job gVisor sandbox runs one job",
                });
            }
            self.count += 1;
            return self.prepare_container(job, argv.clone());
        }
        // The last job's files are of no more use.
        for name in ["json", "pid"] {
            let _ = fs::remove_file(self.bundle.join(format!("job-{}.{name}", self.count)));
        }
        self.count += 1;
        let process = self.bundle.join(format!("job-{}.json", self.count));
        let pid_file = self.bundle.join(format!("job-{}.pid", self.count));
        // The loader stays as the program's parent, and sets the job's rlimits itself: runsc
        // 20221219 gives an exec'd process the container's own (the keeper's), not its
        // process file's.
        let rlimits = bundle::job_rlimits(&job.limits, 1);
        let text = serde_json::to_vec(&bundle::oci_process(
            &filter_exec::job_argv(&self.filter, &rlimits, &job.argv),
            &job.env,
            &job.limits,
            1,
        ))
        .map_err(|e| SandboxError::Helper {
            action: "writing a job's process.json",
            source: std::io::Error::other(e),
        })?;
        bundle::write_private(&process, &text).map_err(|source| SandboxError::Helper {
            action: "writing a job's process.json",
            source,
        })?;
        self.start = PidFile::watch(&pid_file).map(|p| Box::new(p) as Box<dyn ProgramStart>);
        let mut command = self.runsc();
        command
            .arg("exec")
            .arg("--internal-pid-file")
            .arg(&pid_file)
            .arg("--process")
            .arg(&process)
            .arg(&self.container)
            .env_clear();
        self.pid_file = Some(pid_file);
        Ok(command)
    }

    fn status(&self, status: std::process::ExitStatus) -> ExitStatus {
        runsc_status(status)
    }

    /// The job's loader passes signals on (`filter_exec.rs`): a one-job sandbox's, its
    /// container's init, gets each by a `runsc kill` of the container; another job's by a
    /// `runsc kill --pid` of the pid its `runsc exec` wrote (each a Go process of its own,
    /// about 10 ms).
    fn program_signals(&self) -> Option<crate::watch::SignalProgram> {
        let (runsc, container) = (self.runsc.clone(), self.container.clone());
        let pid_file = match (&self.container_start, &self.pid_file) {
            (Some(_), _) => None,
            (None, Some(pid_file)) => Some(pid_file.clone()),
            (None, None) => return None,
        };
        Some(crate::watch::SignalProgram(Box::new(move |signal: i32| {
            let mut command = Command::new(&runsc);
            command.args(["--root", RUNSC_ROOT, "kill"]);
            if let Some(pid_file) = &pid_file {
                let Some(pid) = PidFile::read(pid_file) else {
                    return false;
                };
                command.args(["--pid", &pid.to_string()]);
            }
            command
                .args([&container, &signal.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })))
    }

    fn program_start(&mut self) -> Option<Box<dyn ProgramStart>> {
        self.start.take()
    }

    /// The job's loader ends the job's other processes once the program exited
    /// (`filter_exec.rs`); a loader dead by a signal did not: the program, which shares its
    /// uid, may have killed it, and what it left running (a daemon that closed its output)
    /// would outlive the job. Another `runsc exec` of the loader as the job's uid ends them
    /// (kill(-1)). A program's own death by a signal reads the same (runsc reports both as
    /// 128 + N) and costs the job that exec too.
    fn end_leftovers(&mut self, job: &Job, status: ExitStatus) -> Result<(), SandboxError> {
        if !matches!(status, ExitStatus::Signal(_)) {
            return Ok(());
        }
        let Some(mut command) = self.end_job(job)? else {
            return Ok(());
        };
        let ended = wait_bounded(&mut command, END_LEFTOVERS_WITHIN);
        if ended.as_ref().is_ok_and(std::process::ExitStatus::success) {
            return Ok(());
        }
        Err(SandboxError::Setup {
            step: "end the processes a job left".into(),
            detail: match ended {
                Ok(status) => format!("the loader that ends them ended with {status}"),
                Err(e) => e,
            },
        })
    }

    /// Another `runsc exec` of the loader as the job's uid, which kills every process of the
    /// job (`filter_exec::end_job_argv`) and leaves the sandbox to the next job; `None` in a
    /// one-job sandbox, which ends with its job.
    fn end_job(&mut self, job: &Job) -> Result<Option<std::process::Command>, SandboxError> {
        if self.container_start.is_some() {
            return Ok(None);
        }
        let process = self.bundle.join("end-job.json");
        let text = serde_json::to_vec(&bundle::oci_process(
            &filter_exec::end_job_argv(),
            &[],
            &job.limits,
            1,
        ))
        .map_err(|e| SandboxError::Helper {
            action: "writing the process.json that ends a job",
            source: std::io::Error::other(e),
        })?;
        bundle::write_private(&process, &text).map_err(|source| SandboxError::Helper {
            action: "writing the process.json that ends a job",
            source,
        })?;
        let mut command = self.runsc();
        command
            .arg("exec")
            .arg("--process")
            .arg(&process)
            .arg(&self.container)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Ok(Some(command))
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

impl RunscJobs {
    /// A one-job sandbox's job: the bundle's process becomes the job (under the loader as
    /// the container's init, `filter_exec.rs`), and the command starts the container. The
    /// state file is watched from now on: the program's wall clock starts when it says
    /// `running` (the sandbox's boot is not the program's time).
    fn prepare_container(&mut self, job: &Job, argv: Vec<String>) -> Result<Command, SandboxError> {
        let io = |action: &'static str| move |source| SandboxError::Helper { action, source };
        let config_path = self.bundle.join("config.json");
        let mut config: Value = fs::read(&config_path)
            .map_err(io("reading config.json"))
            .and_then(|text| {
                serde_json::from_slice(&text)
                    .map_err(|e| io("reading config.json")(std::io::Error::other(e)))
            })?;
        config["process"] = bundle::oci_process(
            &filter_exec::init_argv(&self.filter, &job.argv),
            &job.env,
            &job.limits,
            // The loader, which stays as the container's pid 1.
            1,
        );
        let text = serde_json::to_vec(&config)
            .map_err(|e| io("writing config.json")(std::io::Error::other(e)))?;
        bundle::write_private(&config_path, &text).map_err(io("writing config.json"))?;
        self.start = StateChanges::watch(Path::new(RUNSC_ROOT), &self.container)
            .map(|changes| Box::new(changes) as Box<dyn ProgramStart>);
        let (program, args) = argv.split_first().ok_or(SandboxError::Setup {
            step: "start the gVisor container".into(),
            detail: "no command".into(),
        })?;
        let mut command = Command::new(program);
        command.args(args).env_clear();
        Ok(command)
    }
}

/// Runs `write` with this thread's filesystem uid and gid set to `host_id` (when given), so
/// that what it creates is that id's and it may do only what that id may; the thread's own
/// afterwards. The ids are per thread (setfsuid(2)): the parent's other threads are not
/// affected.
fn as_host_id<T>(host_id: Option<u32>, write: impl FnOnce() -> T) -> T {
    /// The thread's own filesystem ids, put back when dropped: also when `write` panics, so
    /// that the thread (a server's, which goes on serving) never keeps the slot's.
    struct Restore(nix::unistd::Uid, nix::unistd::Gid);
    impl Drop for Restore {
        fn drop(&mut self) {
            nix::unistd::setfsuid(self.0);
            nix::unistd::setfsgid(self.1);
        }
    }
    let Some(id) = host_id else {
        return write();
    };
    let gid = nix::unistd::setfsgid(nix::unistd::Gid::from_raw(id));
    let uid = nix::unistd::setfsuid(nix::unistd::Uid::from_raw(id));
    let _restore = Restore(uid, gid);
    write()
}

/// How long the `runsc exec` that ends a job's leftover processes may take: its loader's own
/// bound (`filter_exec::END_JOB_WITHIN`, 1 s) and the exec's start.
const END_LEFTOVERS_WITHIN: Duration = Duration::from_secs(5);

/// Runs `command` and waits for it at most `within`; killed and reaped past that.
fn wait_bounded(
    command: &mut Command,
    within: Duration,
) -> Result<std::process::ExitStatus, String> {
    let mut child = command.spawn().map_err(|e| format!("runsc exec: {e}"))?;
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("runsc exec did not end within {within:?}"));
            }
            Err(e) => return Err(format!("waiting for runsc exec: {e}")),
        }
    }
}

/// A job's pid file (`runsc exec --internal-pid-file`), written once its process runs inside
/// the sandbox, seen with inotify.
struct PidFile {
    inotify: Inotify,
    path: PathBuf,
}

impl PidFile {
    /// `None` when its directory cannot be watched (the job then counts from its process's
    /// start, and a signal asked before the file is written ends it).
    fn watch(path: &Path) -> Option<Self> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
        inotify
            .add_watch(
                path.parent()?,
                AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO,
            )
            .ok()?;
        Some(Self {
            inotify,
            path: path.to_owned(),
        })
    }

    /// The pid written there, once it is.
    fn read(path: &Path) -> Option<u32> {
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

impl ProgramStart for PidFile {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    fn started(&mut self) -> bool {
        let _ = self.inotify.read_events();
        Self::read(&self.path).is_some()
    }
}

impl ProgramStart for StateChanges {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Running, or already past it (the program may be over before the file was read).
    fn started(&mut self) -> bool {
        let _ = self.inotify.read_events();
        !matches!(self.recorded(), Recorded::Starting)
    }
}

/// The argument that makes the warden binary (or the tests' helper binary) start a one-job
/// sandbox's container: `<binary> __cgroup-exec <n> <file>... <program> <args>...` writes "0"
/// into each of the `n` cgroup files (`tasks` or `cgroup.procs`: this process moves into
/// the run's cgroup), then execs the program with an empty environment. Every process of the
/// runtime it becomes is born inside the cgroup.
pub const CGROUP_EXEC_ARG: &str = "__cgroup-exec";

/// The entry point of [`CGROUP_EXEC_ARG`] (checked first in `main`); fails with status 127
/// and never runs the program outside the cgroup.
pub fn cgroup_exec_main() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    let Err(message) = join_and_exec(&args);
    eprintln!("warden: {message}");
    std::process::exit(127)
}

fn join_and_exec(args: &[std::ffi::OsString]) -> Result<std::convert::Infallible, String> {
    use std::os::unix::ffi::OsStrExt;
    let usage = || format!("usage: {CGROUP_EXEC_ARG} <n> <cgroup file>... <program> <args>...");
    let (count, rest) = args.split_first().ok_or_else(usage)?;
    let count: usize = count
        .to_str()
        .and_then(|n| n.parse().ok())
        .ok_or_else(usage)?;
    if rest.len() <= count {
        return Err(usage());
    }
    let (files, argv) = rest.split_at(count);
    for file in files {
        fs::write(file, "0").map_err(|e| format!("joining the cgroup ({file:?}): {e}"))?;
    }
    let argv: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| format!("{a:?} has a NUL")))
        .collect::<Result<_, _>>()?;
    let e = nix::unistd::execve::<_, std::ffi::CString>(&argv[0], &argv, &[]).unwrap_err();
    Err(format!("execve {:?}: {e}", argv[0]))
}

/// `runsc run` of the bundle. With `egress`, gVisor's sockets are the host kernel's
/// (`--network=host`), in the new network namespace runsc makes for its sandbox process, where
/// warden's proxy then listens and its interception and resolver govern every socket (a
/// namespace with nothing but loopback); without, gVisor's own stack with loopback only.
/// A `runsc run` whose container is the job (`one_job`) logs to [`run_log`], and only it (not
/// the sentry and gofer it starts).
fn runsc_argv(
    runsc: &Path,
    bundle: &Path,
    container: &str,
    egress: bool,
    one_job: bool,
) -> Vec<String> {
    let log = one_job.then(|| {
        [
            format!("--debug-log={}", run_log(bundle).display()),
            "--debug-command=run".to_owned(),
        ]
    });
    let before = [
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
        // Where the Go runtime of runsc's processes (the sentry's among them) writes why it
        // crashed: a one-job sandbox's `runsc run` exits with its crashed sentry's status
        // (2), which would read as the program's ([`RunscJobs::runtime_failure`]).
        &format!("--panic-log={}", panic_log(bundle).display()),
    ]
    .map(str::to_owned);
    let run = ["run", "--bundle", &bundle.to_string_lossy(), container].map(str::to_owned);
    before
        .into_iter()
        .chain(log.into_iter().flatten())
        .chain(run)
        .collect()
}

/// The file runsc's Go runtime writes its crash reports into (`--panic-log`): beside the
/// bundle's tree, not bound into the container.
fn panic_log(bundle: &Path) -> PathBuf {
    bundle.join("panic.log")
}

/// The log of a one-job sandbox's `runsc run` (`--debug-log`, `--debug-command=run`): beside
/// the bundle's tree, not bound into the container, and written by runsc on the host only.
fn run_log(bundle: &Path) -> PathBuf {
    bundle.join("runsc-run.log")
}

/// Whether `runsc run`'s log says that the sandbox's sentry was killed under the job: its wait
/// for the container failed (the sentry's socket closed before it answered), so it waited on
/// the sandbox process instead (`Will try waiting on the sandbox process instead`), and the
/// status it exits with (`Exiting with status: N`, the raw wait status) is that process's
/// death by a signal (SIGKILL from the host's or the cgroup's OOM killer, or an operator).
/// Neither is the program's to cause: runsc writes this log on the host, and a program that
/// kills its loader (gVisor lets it SIGKILL its pid 1) or ends any other way is answered
/// through the sentry. So is a container whose gofer was killed (the sentry kills its init),
/// which reads as a program killed by SIGKILL still. A sentry that crashed exits 2 instead,
/// which its crash report tells ([`JobLauncher::runtime_failure`]). `false` without such
/// lines (a `runsc run` killed itself, a missing log). Reads the log's last [`RUN_LOG_READ`]
/// bytes.
fn ended_by_runtime(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::process::ExitStatusExt;
    let mut text = Vec::new();
    let read = fs::File::open(path).and_then(|mut file| {
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(RUN_LOG_READ)))?;
        file.take(RUN_LOG_READ).read_to_end(&mut text)
    });
    if read.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&text);
    let waited_on_the_sandbox = text
        .lines()
        .any(|line| line.ends_with("Will try waiting on the sandbox process instead."));
    let status = text
        .lines()
        .rev()
        .find_map(|line| line.split_once("] Exiting with status: "))
        .and_then(|(_, status)| status.trim().parse::<i32>().ok());
    waited_on_the_sandbox
        && status.is_some_and(|status| {
            std::process::ExitStatus::from_raw(status)
                .signal()
                .is_some()
        })
}

/// How much of the end of `runsc run`'s log is read: a run's whole log is about 2 KiB (its
/// start, its network, its end).
const RUN_LOG_READ: u64 = 64 * 1024;

/// What a crash report says, in a line: its first lines (the runtime's message), or `None` for
/// an empty or missing report. Reads at most [`PANIC_SHOWN`] bytes.
fn crash_report(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(PANIC_SHOWN)
        .read_to_end(&mut text)
        .ok()?;
    let text = String::from_utf8_lossy(&text);
    let said: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !glog_notice(line))
        .take(3)
        .collect();
    (!said.is_empty()).then(|| said.join("; "))
}

/// An informational or warning line of runsc's own log (glog's `I1207 12:34:56.789012 ...` or
/// `W...`), which the sentry also writes into the crash report's file: a program that tried a
/// raw socket got "A process tried to create a raw socket without CAP_NET_RAW" there, and its
/// finished run was taken for a crash of the runtime (hunt regress 4). Errors and fatal lines,
/// and the Go runtime's own reports, are kept.
fn glog_notice(line: &str) -> bool {
    let bytes = line.as_bytes();
    bytes.len() > 5
        && matches!(bytes[0], b'I' | b'W')
        && bytes[1..5].iter().all(u8::is_ascii_digit)
        && bytes[5] == b' '
}

/// How much of a crash report is read: its first lines say why.
const PANIC_SHOWN: u64 = 4096;

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
        let mut changes = StateChanges::watch(root.path(), "warden-run-1-0").expect("watch");
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

    /// Hunt gv 2: a one-job sandbox whose program ended before its `running` was read (the
    /// process's exit seen first) would read as never started, and runsc removes the file
    /// when `runsc run` ends: the file held open still says it ran.
    #[test]
    fn a_removed_state_file_still_says_what_it_last_said() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut changes = StateChanges::watch(root.path(), "c").expect("watch");
        let file = root.path().join("c_sandbox:c.state");
        fs::write(&file, r#"{"id":"c","status":"created"}"#).expect("write");
        assert!(matches!(changes.recorded(), Recorded::Starting));
        // In place, as runsc writes it, then removed.
        fs::write(&file, r#"{"id":"c","status":"running"}"#).expect("write");
        fs::remove_file(&file).expect("remove");
        assert!(matches!(changes.recorded(), Recorded::Running));
        assert!(ProgramStart::started(&mut changes));
        // Never written: not started.
        let mut other = StateChanges::watch(root.path(), "d").expect("watch");
        assert!(!ProgramStart::started(&mut other));
    }

    /// Hunt gv 2: a one-job sandbox whose sentry crashed under its job (its threads refused)
    /// ended as the program's exit 2; the crash report says why, an empty one nothing.
    #[test]
    fn a_crash_report_is_read_in_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("panic.log");
        assert_eq!(crash_report(&log), None);
        fs::write(&log, "").expect("write");
        assert_eq!(crash_report(&log), None);
        // runsc's notices are no crash (hunt regress 4: a raw socket's attempt).
        fs::write(
            &log,
            "I1207 12:26:18.412345    1 rate_limited.go:36] A process tried to create a raw \
             socket without CAP_NET_RAW. Should the container config enable CAP_NET_RAW?\n\
             W1207 12:26:18.500000    1 x.go:1] a warning\n",
        )
        .expect("write");
        assert_eq!(crash_report(&log), None);
        fs::write(
            &log,
            "runtime: failed to create new OS thread (have 29 already; errno=11)\n\
             runtime: may need to increase max user processes (ulimit -u)\n\
             fatal error: newosproc\n\nruntime stack:\n",
        )
        .expect("write");
        assert_eq!(
            crash_report(&log).as_deref(),
            Some(
                "runtime: failed to create new OS thread (have 29 already; errno=11); \
                 runtime: may need to increase max user processes (ulimit -u); \
                 fatal error: newosproc"
            )
        );
    }

    /// CI hunt: a session's call whose sentry was killed under it was once answered as the
    /// program's exit 128 (`runsc exec` saw the sentry's socket close before the sentry's
    /// last thread had exited, when its pidfd turns readable). A process whose first thread
    /// has exited while another still runs stands for that moment.
    #[test]
    fn a_sentry_whose_threads_are_exiting_has_ended() {
        use std::io::{BufRead, Write};
        let program = format!(
            "import ctypes, sys, threading, time\n\
             threading.Thread(target=time.sleep, args=(30,)).start()\n\
             print('ready', flush=True)\n\
             sys.stdin.readline()\n\
             ctypes.CDLL(None).syscall({}, 0)\n",
            nix::libc::SYS_exit
        );
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", &program])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("read");
        assert_eq!(ready, "ready\n");
        let root = tempfile::tempdir().expect("tempdir");
        fs::write(
            root.path().join("c_sandbox:c.state"),
            format!(r#"{{"sandbox":{{"pid":{}}}}}"#, child.id()),
        )
        .expect("write");
        let sentry = sentry_of(root.path(), "c").expect("the state file names a live process");
        assert!(!sentry.ended(), "a running process has not ended");
        writeln!(child.stdin.as_mut().expect("stdin")).expect("write");
        let leader_gone = || {
            fs::read_to_string(format!("/proc/{}/stat", child.id())).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, r)| r.starts_with('Z'))
            })
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !leader_gone() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(leader_gone(), "the first thread exited");
        assert!(
            !has_exited(&sentry.pidfd),
            "the pidfd waits for the last thread"
        );
        assert!(sentry.ended(), "a process whose threads exit has ended");
        child.kill().expect("kill");
        child.wait().expect("reaped");
        assert!(sentry.ended());
    }

    #[test]
    fn only_a_sandbox_with_egress_runs_on_the_host_network_stack() {
        let argv = |egress| {
            runsc_argv(
                Path::new("/usr/bin/runsc"),
                Path::new("/b"),
                "c",
                egress,
                false,
            )
        };
        assert!(argv(false).contains(&"--panic-log=/b/panic.log".to_owned()));
        assert!(argv(false).contains(&"--network=none".to_owned()));
        assert!(argv(true).contains(&"--network=host".to_owned()));
        assert!(!argv(true).contains(&"--network=none".to_owned()));
    }

    #[test]
    fn only_a_one_job_sandboxs_runsc_run_logs_and_only_itself() {
        let argv = |one_job| runsc_argv(Path::new("/r"), Path::new("/b"), "c", false, one_job);
        let log = "--debug-log=/b/runsc-run.log".to_owned();
        assert!(!argv(false).contains(&log));
        let one = argv(true);
        let at = |arg: &str| one.iter().position(|a| a == arg).expect(arg);
        assert!(at(&log) < at("run"), "a global flag: {one:?}");
        assert!(at("--debug-command=run") < at("run"), "{one:?}");
        assert_eq!(one.last().map(String::as_str), Some("c"));
    }

    #[test]
    fn a_run_log_tells_a_sentry_killed_under_its_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("runsc-run.log");
        let start = "I1207 18:34:00.231225    4942 main.go:216] ***************************\n";
        let failed = "W1207 18:34:01.783126    4942 sandbox.go:957] Wait RPC to container \"c\" \
                      failed: urpc method \"containerManager.Wait\" failed: EOF. Will try \
                      waiting on the sandbox process instead.\n";
        let exit = |status: &str| {
            format!("I1207 18:34:01.786004    4942 main.go:266] Exiting with status: {status}\n")
        };
        for (text, ended) in [
            // The sentry killed by SIGKILL: runsc waited on it and took its status.
            (format!("{start}{failed}{}", exit("9")), true),
            // A crashed sentry (exit 2), whose crash report tells.
            (format!("{start}{failed}{}", exit("512")), false),
            // Answered by the sentry: the program's exit 137 through its loader, a loader the
            // program killed (SIGKILL), a program's exit 0.
            (format!("{start}{}", exit("35072")), false),
            (format!("{start}{}", exit("9")), false),
            (format!("{start}{}", exit("0")), false),
            // A runsc run killed before its end.
            (format!("{start}{failed}"), false),
        ] {
            fs::write(&log, &text).expect("write");
            assert_eq!(ended_by_runtime(&log), ended, "{text}");
        }
        // Only the end is read: a long log still says how it ended.
        let long = format!("{}{failed}{}", start.repeat(2000), exit("9"));
        assert!(long.len() as u64 > RUN_LOG_READ);
        fs::write(&log, long).expect("write");
        assert!(ended_by_runtime(&log));
        assert!(!ended_by_runtime(&dir.path().join("missing.log")));
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
