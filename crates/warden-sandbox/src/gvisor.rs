//! The `isolated` backend: the same jobs run under gVisor (`runsc`), so the program talks to a
//! user-space kernel instead of the host's. Runs in the parent.
//!
//! warden writes an OCI bundle (a read-only root of mount points and symlinks, the spec's
//! read-only binds, an empty workspace, `config.json`) and has the helper join the sandbox's
//! cgroup and exec `runsc run` there: runsc's sandbox, gofer and every program process are
//! charged to and killed with that cgroup. The container's own process is a bash loop reading
//! the lifeline (and, as pid 1, reaping orphans): it exits, and the container with it, when the
//! parent lets the sandbox go. Each
//! job is a `runsc exec` of an OCI process (argv, environment, rlimits, no capabilities, no
//! new privileges) whose exit status is the program's; its files are written into the
//! workspace directory first, and what it collects (a compiler's output) read out after it,
//! from the host, without following links. A limit kills the whole
//! sandbox here (runsc has no cheap way to kill one job's processes and keep the rest), so
//! after a limit the sandbox runs no more jobs. The network is `none`: loopback only.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden_core::{ByteSize, LimitBounds, Limits};

use crate::backend::{run_once, Backend};
use crate::helper::{Backend as HelperBackend, HelperRequest};
use crate::live::{JobLauncher, LiveSandbox, SETUP_TIMEOUT};
use crate::parent::{Launch, Sandbox, SandboxError, SandboxRun, Stdin};
use crate::plan::{Job, SandboxPlan, SandboxSpec, WORKDIR};
use crate::report::ExitStatus;
use crate::rlimits;

/// Where runsc keeps its container state.
const RUNSC_ROOT: &str = "/run/warden/runsc";
/// Where bundles are written.
pub(crate) const BUNDLES: &str = "/run/warden/gvisor";
/// Memory of runsc's own processes (sentry, gofer), on top of the program's limit.
const RUNTIME_MEMORY: ByteSize = ByteSize::mib(192);
/// Threads of runsc's own processes, on top of the program's limit.
const RUNTIME_PIDS: u32 = 512;
/// Writes to the root stay in the sandbox's memory; the workspace is the bundle's `work/` (a
/// size-capped tmpfs), shared with the host so that each job's files reach it.
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
                let _ = Command::new(&runsc)
                    .args(["--root", RUNSC_ROOT, "delete", "--force", &container])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
                // Not there when the bundle was never complete.
                let _ = nix::mount::umount2(&bundle.join("work"), nix::mount::MntFlags::MNT_DETACH);
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
        if let Err(e) = write_bundle(&bundle, spec) {
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
            backend: HelperBackend::Exec(runsc_argv(&self.runsc, &bundle, &container, spec.egress)),
        };
        let launcher = RunscJobs {
            runsc: self.runsc.clone(),
            container,
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

impl JobLauncher for RunscJobs {
    /// The sandbox process's pid (`runsc state`), which runs in the network namespace runsc
    /// made for it.
    fn network_pid(&self) -> Option<nix::unistd::Pid> {
        let state: Value = serde_json::from_str(&self.state().ok()?).ok()?;
        let pid = i32::try_from(state["pid"].as_i64()?).ok()?;
        (pid > 0).then(|| nix::unistd::Pid::from_raw(pid))
    }

    /// Waits until runsc reports the container running.
    fn await_running(&self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let text = self.state()?;
            if text.contains("\"running\"") {
                return Ok(());
            }
            if text.contains("\"stopped\"") || Instant::now() >= deadline {
                return Err(SandboxError::Setup {
                    step: "start the gVisor container".into(),
                    detail: format!("runsc reports: {}", text.trim()),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn prepare(&mut self, job: &Job) -> Result<Command, SandboxError> {
        crate::workspace::write_files(&self.bundle.join("work"), &job.files).map_err(|e| {
            SandboxError::Setup {
                step: e.step,
                detail: e.detail,
            }
        })?;
        self.count += 1;
        let process = self.bundle.join(format!("job-{}.json", self.count));
        let text =
            serde_json::to_vec(&oci_process(&job.argv, &job.env, &job.limits)).map_err(|e| {
                SandboxError::Helper {
                    action: "writing a job's process.json",
                    source: std::io::Error::other(e),
                }
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
        crate::collect::send(&self.bundle.join("work"), path, &out).map_err(|e| {
            SandboxError::Setup {
                step: e.step,
                detail: e.detail,
            }
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

/// Writes `rootfs/` (mount points, symlinks, identity files), an empty `work/` (a tmpfs of the
/// workspace's size) and `config.json` into a fresh directory.
fn write_bundle(bundle: &Path, plan: &SandboxSpec) -> Result<(), SandboxError> {
    let io = |action: &'static str| move |source| SandboxError::Helper { action, source };
    fs::create_dir_all(bundle.parent().unwrap_or(bundle))
        .map_err(io("creating the gVisor bundle directory"))?;
    fs::create_dir(bundle).map_err(io("creating the gVisor bundle"))?;
    let rootfs = bundle.join("rootfs");
    for dir in ["work", "tmp", "proc", "dev", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).map_err(io("creating the gVisor root"))?;
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": WORKDIR, "type": "bind", "source": bundle.join("work"), "options": ["rbind", "rw"]}),
    ];
    for bind in &plan.binds {
        let Ok(meta) = fs::symlink_metadata(&bind.path) else {
            continue;
        };
        let inside = rootfs.join(bind.path.strip_prefix("/").unwrap_or(&bind.path));
        if let Some(parent) = inside.parent() {
            fs::create_dir_all(parent).map_err(io("creating the gVisor root"))?;
        }
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&bind.path).map_err(io("reading a symlink to recreate"))?;
            symlink(target, &inside).map_err(io("creating a symlink in the gVisor root"))?;
            continue;
        }
        if meta.is_dir() {
            fs::create_dir_all(&inside).map_err(io("creating the gVisor root"))?;
        } else {
            fs::write(&inside, b"").map_err(io("creating the gVisor root"))?;
        }
        mounts.push(json!({"destination": bind.path, "type": "bind", "source": bind.path, "options": ["rbind", "ro"]}));
    }
    for (name, contents) in [
        ("passwd", "root:x:0:0:sandbox:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        ("group", "root:x:0:\nnogroup:x:65534:\n"),
        ("hosts", "127.0.0.1 localhost warden\n::1 localhost\n"),
        // The resolver warden's proxy runs on loopback under a policy with egress (as the
        // native sandbox's, `mounts.rs`); nothing answers there otherwise.
        ("resolv.conf", "nameserver 127.0.0.1\noptions ndots:0 attempts:1 timeout:1\n"),
    ] {
        fs::write(rootfs.join("etc").join(name), contents).map_err(io("writing the gVisor root"))?;
    }
    let work = bundle.join("work");
    fs::create_dir(&work).map_err(io("creating the workspace"))?;
    // The workspace is a tmpfs of its own, capped at the workspace size: the program's writes
    // reach it through gVisor's gofer, and a host directory would have no cap.
    let size = format!("size={},mode=0755", plan.limits.workspace_size.bytes());
    nix::mount::mount(
        Some("tmpfs"),
        &work,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(size.as_str()),
    )
    .map_err(|e| SandboxError::Helper {
        action: "mounting the gVisor workspace",
        source: e.into(),
    })?;
    let config = oci_config(plan, mounts);
    let text = serde_json::to_vec_pretty(&config).map_err(|e| SandboxError::Helper {
        action: "writing config.json",
        source: std::io::Error::other(e),
    })?;
    fs::write(bundle.join("config.json"), text).map_err(io("writing config.json"))
}

/// One OCI process: the job's argv, environment and rlimits, as root of the container's user
/// namespace without capabilities and with no new privileges, in the workspace.
fn oci_process(argv: &[String], env: &[(String, String)], limits: &Limits) -> Value {
    let rlimits: Vec<Value> = rlimits::from_limits(limits)
        .into_iter()
        .map(|(resource, soft, hard)| json!({"type": format!("{resource:?}"), "soft": soft, "hard": hard}))
        .collect();
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": argv,
        "env": env,
        "cwd": WORKDIR,
        "rlimits": rlimits,
        "noNewPrivileges": true,
        "capabilities": {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []}
    })
}

/// The OCI runtime configuration: the container's own process (bash on the lifeline, see the
/// module documentation), the mounts, a read-only root, its own pid, network, ipc, uts and
/// mount namespaces (the network one a host namespace that runsc creates, which its sandbox
/// uses under `--network=host`).
fn oci_config(spec: &SandboxSpec, mounts: Vec<Value>) -> Value {
    // Reads the lifeline until end-of-file, waking every few seconds; as pid 1, bash also
    // reaps the orphans jobs leave, which would otherwise pile up as zombies.
    let keeper = [
        "/bin/bash".to_owned(),
        "-c".to_owned(),
        "while read -r -t 5 _ || [ $? -gt 128 ]; do :; done".to_owned(),
    ];
    json!({
        "ociVersion": "1.0.0",
        "process": oci_process(&keeper, &crate::plan::base_environment(), &spec.limits),
        "root": {"path": "rootfs", "readonly": true},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::{FilesystemPolicy, SeccompPolicy};

    #[test]
    fn the_oci_config_and_each_job_process_carry_the_plan() {
        let plan = SandboxPlan::new(
            vec!["/usr/bin/python3".into(), "/work/main.py".into()],
            &FilesystemPolicy::builtin().expect("builtin"),
            SeccompPolicy::builtin().expect("builtin"),
        );
        let (spec, mut job) = plan.split();
        job.limits.max_open_files = 99;
        let config = oci_config(&spec, vec![]);
        assert_eq!(config["process"]["args"][0], "/bin/bash");
        assert_eq!(config["root"]["readonly"], true);
        let process = oci_process(&job.argv, &job.env, &job.limits);
        let config = json!({ "process": process });
        assert_eq!(config["process"]["args"][0], "/usr/bin/python3");
        assert_eq!(config["process"]["noNewPrivileges"], true);
        let rlimits = config["process"]["rlimits"].as_array().expect("rlimits");
        assert!(rlimits
            .iter()
            .any(|r| r["type"] == "RLIMIT_NOFILE" && r["soft"] == 99 && r["hard"] == 99));
        assert!(config["process"]["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e == "HOME=/work"));
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
