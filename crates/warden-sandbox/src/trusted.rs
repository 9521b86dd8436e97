//! The trusted backend (`trusted` mode, docs/modes.md): limits only, no namespaces. The program
//! runs on the host in its own cgroup (memory, pids, cpu accounting) with the plan's rlimits,
//! as the run's unprivileged uid (the same per-run slot the native sandbox maps its root to),
//! without capabilities and with no_new_privs, in a fresh directory; its only seccomp filter
//! refuses the keyring operations that would lock its uid's keyrings (`seccomp/trusted.rs`),
//! and a slot whose keyrings are locked anyway is left for another ([`Trusted::start`]'s
//! documentation). It sees the host's
//! filesystem as that user and the host's network: this is for code the operator trusts, and
//! is never chosen unless the operator's configuration enables it. Runs in the parent.
//!
//! The plan speaks of the sandbox's `/work` and `/tmp`; here they are `work/` and `tmp/` under
//! `/run/warden/trusted/<run>/`, so arguments and environment values under those paths are
//! moved there in every job. When the sandbox is destroyed, the cgroup is killed and the
//! directory removed (without following links: `remove_dir_all` is safe against them since
//! Rust 1.58), and so is what the uid left in the host's world-writable directories
//! (`trusted/leftovers.rs`), which the next run given the same uid could otherwise read.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::backend::{run_once, Backend};
use crate::helper::Backend as HelperBackend;
use crate::idmap::Purpose;
use crate::live::LiveSandbox;
use crate::parent::{init_request, Launch, Sandbox, SandboxError, SandboxRun, Stdin};
use crate::plan::{Job, PlanError, SandboxPlan, SandboxSpec, WORKDIR};

pub(crate) mod leftovers;
mod tree;

/// Where trusted runs get their directories.
pub(crate) const TRUSTED_RUNS: &str = "/run/warden/trusted";
/// The sandbox's temporary directory, which a job may name.
const TMPDIR: &str = "/tmp";

/// Builds trusted "sandboxes" (limits only) on this host.
#[derive(Debug, Clone)]
pub struct Trusted {
    host: Sandbox,
}

impl Sandbox {
    /// The trusted backend of this host.
    pub fn trusted(&self) -> Trusted {
        Trusted { host: self.clone() }
    }

    /// Runs the plan with its limits but no isolation: see the module's documentation.
    pub fn run_trusted(
        &self,
        plan: &SandboxPlan,
        stdin: Stdin,
    ) -> Result<SandboxRun, SandboxError> {
        run_once(&self.trusted(), plan, stdin)
    }
}

impl Backend for Trusted {
    fn name(&self) -> &'static str {
        "trusted"
    }

    /// Unlike the other backends, waits until the init is ready: only its setup tells whether
    /// the slot's keyrings can be emptied, and when they refuse (an earlier trusted run locked
    /// them, before the trusted seccomp filter refused that), the run moves to another slot
    /// before any job is sent, and the slot is marked unusable for trusted runs once another
    /// worked (idmap.rs).
    fn start(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        // No mount namespace to attach a volume in, and no user namespace to id-map it to.
        if !spec.volumes.is_empty() {
            return Err(PlanError::VolumesUnsupported {
                backend: self.name(),
            }
            .into());
        }
        // Held, with their slots, until a slot works: none is tried twice.
        let mut locked: Vec<(LiveSandbox, u32)> = Vec::new();
        loop {
            let (mut sandbox, uid) = self.start_on_a_slot(spec)?;
            match sandbox.wait_ready() {
                Ok(()) => {
                    for (refused, uid) in locked {
                        self.pass_over(refused, uid);
                    }
                    return Ok(sandbox);
                }
                Err(e) if keyrings_refused(&e) && locked.len() + 1 < MAX_SLOTS_TRIED => {
                    tracing::warn!(uid, error = %e, "a trusted run moves to another slot");
                    locked.push((sandbox, uid));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The most slots one trusted run tries when their uid's keyrings refuse to be emptied. On a
/// host where every uid's refuse (a security module denying it), each trusted run fails after
/// this many, and marks none: a slot is marked only once another worked.
const MAX_SLOTS_TRIED: usize = 4;

/// Whether a sandbox's setup failed because its uid's keyrings refuse to be emptied (the
/// init's [`crate::child::LOCKED_KEYRINGS_STEP`]).
fn keyrings_refused(e: &SandboxError) -> bool {
    matches!(e, SandboxError::Setup { step, .. } if step == crate::child::LOCKED_KEYRINGS_STEP)
}

impl Trusted {
    /// Marks the slot of `uid`, whose keyrings refused to be emptied in `refused`, unusable for
    /// trusted runs (while `refused` still holds it), then destroys `refused`.
    fn pass_over(&self, refused: LiveSandbox, uid: u32) {
        let why = crate::idmap::Unusable::Keyrings;
        match crate::idmap::mark_unusable_for_trusted(self.host.slot_file(), uid, why) {
            Ok(()) => tracing::warn!(
                uid,
                "the uid's keyrings cannot be emptied: its slot is passed over by trusted runs \
                 until reboot"
            ),
            Err(e) => tracing::warn!(uid, error = %e, "marking a slot unusable for trusted runs"),
        }
        if let Err(e) = refused.destroy() {
            tracing::warn!(uid, error = %e, "destroying a trusted sandbox that never started");
        }
    }

    /// Starts the init of a trusted run on a slot (not one marked unusable for it), without
    /// waiting for it; the slot's uid with it.
    fn start_on_a_slot(&self, spec: &SandboxSpec) -> Result<(LiveSandbox, u32), SandboxError> {
        let (slot, cgroup) = self.host.reserve(spec, Purpose::Trusted)?;
        let dir = Path::new(TRUSTED_RUNS).join(cgroup.name());
        let remove_dir = {
            let dir = dir.clone();
            Box::new(move || match remove_run_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::Helper {
                    action: "removing the trusted run's directory",
                    source: e,
                }),
                _ => Ok(()),
            }) as Box<dyn FnOnce() -> Result<(), SandboxError> + Send>
        };
        // Run at teardown after the helper is reaped, so after the init killed and reaped
        // every process of the uid, and before the slot (the uid) is released, so that a slot
        // whose leftovers stay is marked before any other run can have it.
        let remove_leftovers = {
            let uid = slot.host_id();
            let slot_file = self.host.slot_file().to_owned();
            Box::new(move || {
                let shared = leftovers::shared_dirs();
                let dirs: Vec<&Path> = shared.iter().map(PathBuf::as_path).collect();
                leftovers::remove_or_pass_over(&dirs, uid, &slot_file).map_err(|source| {
                    SandboxError::Helper {
                        action:
                            "removing what the trusted run left in the host's shared directories",
                        source,
                    }
                })
            }) as Box<dyn FnOnce() -> Result<(), SandboxError> + Send>
        };
        if let Err(e) = prepare(&dir, slot.host_id(), spec.limits.workspace_size) {
            let _ = remove_dir();
            return Err(e);
        }
        let backend = HelperBackend::Trusted {
            workdir: dir.join("work"),
            slot_file: self.host.slot_file().to_owned(),
        };
        let request = init_request(spec, &slot, &cgroup, backend);
        let uid = slot.host_id();
        let mut sandbox = self.host.launch(
            Launch {
                request,
                spec: spec.clone(),
                overhead: (warden_core::ByteSize(0), crate::parent::INIT_PIDS),
                slot: Some(slot),
                cgroup,
                cleanup: vec![remove_dir, remove_leftovers],
            },
            None,
        )?;
        sandbox.relocate_jobs(on_host, dir, uid);
        Ok((sandbox, uid))
    }
}

/// Creates `dir`, a tmpfs of `size` (the plan's workspace size), with `work/` and `tmp/` owned
/// by `id`. A tmpfs, as the native sandbox's `/work` and `/tmp` are: on a host whose `/run`
/// is on disk the run wrote there without bound (`--workspace-size` held nowhere), and its
/// files counted towards no limit; a tmpfs's pages count towards the memory limit of the
/// cgroup that wrote them.
fn prepare(dir: &Path, id: u32, size: warden_core::ByteSize) -> Result<(), SandboxError> {
    let io = |action: &'static str| move |source| SandboxError::Helper { action, source };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(TRUSTED_RUNS)
        .map_err(io("creating /run/warden/trusted"))?;
    fs::DirBuilder::new()
        .mode(0o711)
        .create(dir)
        .map_err(io("creating the trusted run's directory"))?;
    let size = size.bytes();
    let inodes = (size / 4096).clamp(1024, 1 << 20);
    // Only traversable by others: the run's user needs to reach its two directories.
    let options = format!("size={size},nr_inodes={inodes},mode=0711");
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| io("mounting the trusted run's workspace")(e.into()))?;
    for sub in ["work", "tmp"] {
        let path = dir.join(sub);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io("creating the trusted run's directories"))?;
        std::os::unix::fs::chown(&path, Some(id), Some(id))
            .map_err(io("handing the trusted run's directories to its user"))?;
    }
    Ok(())
}

/// Removes a trusted run's directory: its tmpfs unmounted (detached: a file still open
/// somewhere keeps its pages until closed, not the mount), then the directory.
pub(crate) fn remove_run_dir(dir: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
        // Not a mount point (a run directory whose tmpfs was never mounted) or not there.
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    fs::remove_dir_all(dir)
}

/// The job with the sandbox's `/work` and `/tmp` moved to `dir/work` and `dir/tmp` in its
/// arguments and environment, and its `USER` the run's `uid`. The sandbox's `USER=root` is
/// true inside its user namespace; on the host the program is the slot's unprivileged uid,
/// which has no name there (no passwd entry), so its number is the truthful value; dropping
/// it would break `getpass.getuser()`, which reads `USER` before the passwd database.
fn on_host(job: &Job, dir: &Path, uid: u32) -> Job {
    let moved = |value: &String| relocate(value, dir).unwrap_or_else(|| value.clone());
    let mut on_host = Job {
        argv: job.argv.iter().map(moved).collect(),
        env: job.env.iter().map(|(k, v)| (k.clone(), moved(v))).collect(),
        ..job.clone()
    };
    if on_host.env.iter().any(|(k, _)| k == "USER") {
        on_host.set_env("USER", &uid.to_string());
    }
    on_host
}

/// `value` moved under `dir` if it is `/work`, `/tmp` or a path below them.
fn relocate(value: &str, dir: &Path) -> Option<String> {
    [(WORKDIR, "work"), (TMPDIR, "tmp")]
        .into_iter()
        .find_map(|(inside, sub)| {
            let rest = value.strip_prefix(inside)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| {
                let mut host = PathBuf::from(dir).join(sub).into_os_string();
                host.push(rest);
                host.to_string_lossy().into_owned()
            })
        })
}

#[cfg(test)]
pub(crate) mod tests {
    /// Whether the test runs as root, which it needs for `why`; a skip, said on stderr, outside
    /// CI only (CI runs the tests as root).
    pub(crate) fn as_root(why: &str) -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests as root"
        );
        eprintln!("skipped: {why}");
        false
    }

    use super::*;

    #[test]
    fn sandbox_paths_move_under_the_run_directory_and_nothing_else_does() {
        let dir = Path::new("/run/warden/trusted/run-1");
        assert_eq!(
            relocate("/work/main.py", dir).as_deref(),
            Some("/run/warden/trusted/run-1/work/main.py")
        );
        assert_eq!(
            relocate("/work", dir).as_deref(),
            Some("/run/warden/trusted/run-1/work")
        );
        assert_eq!(
            relocate("/tmp/go-cache", dir).as_deref(),
            Some("/run/warden/trusted/run-1/tmp/go-cache")
        );
        assert_eq!(relocate("/workshop", dir), None);
        assert_eq!(relocate("/usr/bin/python3", dir), None);
        assert_eq!(relocate("-O2", dir), None);
    }

    /// Hunt esc F2: the setup failure that moves a trusted run to another slot is the init's
    /// report that the uid's keyrings refuse to be emptied, and no other.
    #[test]
    fn only_keyrings_that_refuse_to_be_emptied_move_a_run_to_another_slot() {
        let failed = |step: &str| SandboxError::Setup {
            step: step.to_owned(),
            detail: "Required key not available (os error 126)".to_owned(),
        };
        assert!(keyrings_refused(&failed(
            crate::child::LOCKED_KEYRINGS_STEP
        )));
        assert!(!keyrings_refused(&failed("empty the keyrings")));
        assert!(!keyrings_refused(&failed("setresuid")));
        assert!(!keyrings_refused(&SandboxError::Vanished));
    }

    /// Bug hunt "modes" 11: a trusted run's environment said `USER=root` (the sandbox's
    /// user), while it runs as the run's unprivileged uid, which has no name on the host.
    #[test]
    fn a_trusted_job_names_its_user_by_its_uid() {
        let job = Job::new(vec!["/usr/bin/id".into()], warden_core::Limits::default());
        let moved = on_host(&job, Path::new("/run/warden/trusted/run-1"), 1_500_000_002);
        let env = |key: &str| {
            moved
                .env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(env("USER"), Some("1500000002"));
        assert_eq!(env("HOME"), Some("/run/warden/trusted/run-1/work"));
        assert_eq!(
            moved.env.iter().filter(|(k, _)| k == "USER").count(),
            1,
            "{:?}",
            moved.env
        );
    }
}
