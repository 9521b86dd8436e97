//! The `isolated` backend: the same plan run under gVisor (`runsc`), so the program talks to a
//! user-space kernel instead of the host's. Runs in the parent.
//!
//! warden writes an OCI bundle (a read-only root of mount points and symlinks, the plan's
//! read-only binds, the workspace files, `config.json`) and has the helper join the run's
//! cgroup and exec `runsc run` there: runsc's sandbox, gofer and every program process are
//! charged to and killed with that cgroup, watched by the same loop as the native backend.
//! `--overlay2=all:memory` keeps every write inside the sandbox's memory, so the bundle on the
//! host is never written by the program and is removed as warden wrote it. The network is
//! `none`: the sandbox has only loopback.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use warden_core::{ByteSize, Limits};

use crate::helper::{Backend, HelperRequest};
use crate::parent::{finish, SandboxError, SandboxRun, Stdin, SETUP_TIMEOUT};
use crate::plan::{SandboxPlan, WORKDIR};
use crate::report::ExitStatus;
use crate::rlimits;
use crate::Sandbox;

/// Where runsc keeps its container state.
const RUNSC_ROOT: &str = "/run/warden/runsc";
/// Where bundles are written.
const BUNDLES: &str = "/run/warden/gvisor";
/// Memory of runsc's own processes (sentry, gofer), on top of the program's limit.
const RUNTIME_MEMORY: ByteSize = ByteSize::mib(192);
/// Threads of runsc's own processes, on top of the program's limit.
const RUNTIME_PIDS: u32 = 512;

/// Finds `runsc`: `None` when gVisor is not installed.
pub fn runsc_path() -> Option<PathBuf> {
    ["/usr/bin/runsc", "/usr/local/bin/runsc", "/usr/sbin/runsc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Sandbox {
    /// Runs the plan under gVisor. Fails (never falls back to another backend) when runsc is
    /// missing.
    pub fn run_isolated(
        &self,
        plan: &SandboxPlan,
        stdin: Stdin,
    ) -> Result<SandboxRun, SandboxError> {
        plan.validate()?;
        let runsc = runsc_path().ok_or(SandboxError::Unsupported {
            feature: "gVisor (runsc)",
            detail: "install the Debian package runsc for isolated mode".to_owned(),
        })?;
        let runtime_limits = Limits {
            memory: ByteSize(plan.limits.memory.bytes() + RUNTIME_MEMORY.bytes()),
            max_procs: plan.limits.max_procs.saturating_add(RUNTIME_PIDS),
            ..plan.limits
        };
        let cgroup = self.new_cgroup(&runtime_limits)?;
        let container = format!("warden-{}", cgroup.name());
        let bundle = Path::new(BUNDLES).join(&container);
        let result = write_bundle(&bundle, plan).and_then(|()| {
            let request = HelperRequest {
                plan: SandboxPlan {
                    limits: runtime_limits,
                    ..plan.clone()
                },
                host_id: 0,
                cgroup: cgroup.join(),
                backstop: SETUP_TIMEOUT + plan.limits.wall_time + Duration::from_secs(5),
                backend: Backend::Exec(runsc_argv(&runsc, &bundle, &container)),
            };
            let mut watched = self.spawn_and_watch(&request, stdin, &cgroup)?;
            watched.status = watched.helper_status.map(runsc_status);
            finish(watched, &cgroup, plan)
        });
        cgroup.kill_all();
        let _ = std::process::Command::new(&runsc)
            .args(["--root", RUNSC_ROOT, "delete", "--force", &container])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&bundle);
        let removed = cgroup.remove();
        let run = result?;
        removed?;
        Ok(run)
    }
}

fn runsc_argv(runsc: &Path, bundle: &Path, container: &str) -> Vec<String> {
    [
        runsc.to_string_lossy().as_ref(),
        "--root",
        RUNSC_ROOT,
        "--network=none",
        "--ignore-cgroups",
        "--overlay2=all:memory",
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

/// Writes `rootfs/` (mount points, symlinks, identity files), `work/` (the plan's files) and
/// `config.json` into a fresh directory.
fn write_bundle(bundle: &Path, plan: &SandboxPlan) -> Result<(), SandboxError> {
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
    ] {
        fs::write(rootfs.join("etc").join(name), contents).map_err(io("writing the gVisor root"))?;
    }
    let work = bundle.join("work");
    fs::create_dir(&work).map_err(io("creating the workspace"))?;
    for file in &plan.files {
        let path = work.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io("writing the workspace"))?;
        }
        fs::write(&path, &file.contents).map_err(io("writing the workspace"))?;
        let mode = if file.executable { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(io("writing the workspace"))?;
    }
    let config = oci_config(plan, mounts);
    let text = serde_json::to_vec_pretty(&config).map_err(|e| SandboxError::Helper {
        action: "writing config.json",
        source: std::io::Error::other(e),
    })?;
    fs::write(bundle.join("config.json"), text).map_err(io("writing config.json"))
}

/// The OCI runtime configuration: the plan's argv, environment, rlimits and mounts, a
/// read-only root, no capabilities, no new privileges, its own pid, network, ipc, uts and mount
/// namespaces (inside gVisor).
fn oci_config(plan: &SandboxPlan, mounts: Vec<Value>) -> Value {
    let rlimits: Vec<Value> = rlimits::from_limits(&plan.limits)
        .into_iter()
        .map(|(resource, soft, hard)| json!({"type": format!("{resource:?}"), "soft": soft, "hard": hard}))
        .collect();
    let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ociVersion": "1.0.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": plan.argv,
            "env": env,
            "cwd": WORKDIR,
            "rlimits": rlimits,
            "noNewPrivileges": true,
            "capabilities": {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []}
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": plan.hostname,
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
    fn the_oci_config_carries_the_plan() {
        let mut plan = SandboxPlan::new(
            vec!["/usr/bin/python3".into(), "/work/main.py".into()],
            &FilesystemPolicy::builtin().expect("builtin"),
            SeccompPolicy::builtin().expect("builtin"),
        );
        plan.limits.max_open_files = 99;
        let config = oci_config(&plan, vec![]);
        assert_eq!(config["process"]["args"][0], "/usr/bin/python3");
        assert_eq!(config["root"]["readonly"], true);
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
