//! The sandbox plan: pure values that say everything the helper and the init will do, built and
//! tested without root. A [`SandboxSpec`] is what a sandbox *is* (its filesystem, ceilings,
//! system-call filter, host name) and lives as long as the sandbox; a [`Job`] is one program
//! run inside it (argv, environment, files, per-run limits, what to collect). A one-shot
//! [`SandboxPlan`] is both at once and [`SandboxPlan::split`]s into them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warden_core::{FilesystemPolicy, Limits, SeccompPolicy};

/// Where the program's writable workspace is, inside the sandbox.
pub const WORKDIR: &str = "/work";

/// A file placed in the workspace before the program starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceFile {
    /// Plain file name or relative path inside the workspace (no `..`, not absolute).
    pub path: PathBuf,
    /// Contents. Sent after the plan's JSON on the plan pipe, not inside it. Shared: the jobs
    /// of one execution (its runs, its test cases) each carry the same compiled program, which
    /// may be hundreds of MiB of warden's own memory, never copied per job.
    #[serde(skip)]
    pub contents: Arc<Vec<u8>>,
    /// Length of `contents`, for the wire format.
    pub len: u64,
    /// Whether the file gets the executable bit.
    pub executable: bool,
}

impl WorkspaceFile {
    /// A regular file.
    pub fn new(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        let contents = contents.into();
        Self {
            path: path.into(),
            len: contents.len() as u64,
            contents: Arc::new(contents),
            executable: false,
        }
    }

    /// An executable file.
    pub fn executable(path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            executable: true,
            ..Self::new(path, contents)
        }
    }
}

/// A host path bound read-only at the same path inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Host path (also the path inside).
    pub path: PathBuf,
}

/// Everything the helper needs to build the sandbox and start the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// The program and its arguments; `argv[0]` is an absolute path inside the sandbox.
    pub argv: Vec<String>,
    /// The complete environment (nothing of the host's leaks in).
    pub env: Vec<(String, String)>,
    /// Host paths bound read-only, in order.
    pub binds: Vec<Bind>,
    /// Files written into the workspace.
    pub files: Vec<WorkspaceFile>,
    /// The limits to enforce.
    pub limits: Limits,
    /// The system call filter.
    pub seccomp: SeccompPolicy,
    /// Host name inside the UTS namespace.
    pub hostname: String,
    /// A file or directory of the workspace sent back to the parent when the program exits
    /// with status 0 (a compiler's output); see `SandboxRun::collected`.
    pub collect: Option<PathBuf>,
}

/// What a live sandbox is, fixed for its life: the host paths it sees, its ceilings (the
/// cgroup's memory and process limits, the workspace's size) and its system-call filter. Its
/// network is its own namespace with loopback only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Host paths bound read-only, in order.
    pub binds: Vec<Bind>,
    /// The sandbox's ceilings: `memory`, `max_procs` and `workspace_size` (which sizes `/work`
    /// and `/tmp` when the sandbox is built) bound every job, which may ask for less and gets
    /// what it asks. The other fields are the defaults of a
    /// job that names none.
    pub limits: Limits,
    /// The system call filter every job's program runs under.
    pub seccomp: SeccompPolicy,
    /// Host name inside the UTS namespace.
    pub hostname: String,
    /// Whether warden's egress proxy will serve the sandbox's network namespace (a network
    /// policy that lets traffic out). The native backend's namespace is the same either way;
    /// gVisor then runs on the host's network stack inside a namespace of its own, so that the
    /// proxy, its interception and its resolver govern the program's sockets (`gvisor.rs`).
    #[serde(default)]
    pub egress: bool,
    /// Host directories mounted read-write or read-only at a path of their own inside the
    /// sandbox (named volumes, a session's workspace at `/work`). On disk their files belong
    /// to uid and gid 0, which inside the sandbox is its root (`VolumeMount`).
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
}

/// A host directory mounted into a sandbox. The mount is id-mapped: a file owned on disk by
/// uid 0 is owned by the sandbox's root inside, and a file the sandbox creates is stored as
/// uid 0, whichever host uid the sandbox runs as; it is `nosuid` and `nodev` on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The host directory (a volume's mount point, kept out of every sandbox's binds).
    pub host: PathBuf,
    /// Where it appears inside the sandbox: an absolute path, `/work` included.
    pub target: PathBuf,
    /// Whether the sandbox may write to it.
    pub writable: bool,
}

/// One program run in a live sandbox, with its own accounting (cpu time, peak memory, OOM
/// kills, wall time) and its own output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The program and its arguments; `argv[0]` is an absolute path inside the sandbox.
    pub argv: Vec<String>,
    /// The complete environment (nothing of the host's leaks in).
    pub env: Vec<(String, String)>,
    /// Files written into the workspace before the program starts, replacing files of the
    /// same name that an earlier job left.
    pub files: Vec<WorkspaceFile>,
    /// This run's limits. `memory`, `max_procs` and `workspace_size` above the sandbox's
    /// ceilings are refused; the workspace is resized to this `workspace_size` before the
    /// job's files are written (docs/sandbox-setup.md, part 5).
    pub limits: Limits,
    /// A file or directory of the workspace sent back when the program exits with status 0
    /// (a compiler's output); see `SandboxRun::collected`.
    pub collect: Option<PathBuf>,
    /// A host directory where the parent spools what `collect` sends back, an unnamed file
    /// there, instead of holding it in memory (up to 512 MiB, a dependency installation's
    /// set): the run's `SandboxRun::spooled`. The native backend's init jobs only; a
    /// runtime's (gVisor) collect into `SandboxRun::collected` as before, and so does a job
    /// whose directory's file system has no unnamed files (`O_TMPFILE`).
    #[serde(skip)]
    pub spool: Option<PathBuf>,
    /// The program's stderr is its stdout: one stream, in the order it was written, under
    /// the one output limit; the run's stderr is then empty.
    #[serde(default)]
    pub merge_stderr: bool,
    /// Output past `limits.max_output` is read and dropped, the run's `stdout_truncated` or
    /// `stderr_truncated` saying so, instead of ending the job with `Outcome::OutputLimit`:
    /// for a compiler, whose diagnostics are a report beside its real product and whose exit
    /// status is what counts. The job's time limits still end a stream that never stops.
    #[serde(default)]
    pub truncate_output: bool,
}

/// A plan that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The command is empty or not absolute.
    #[error("the program {program:?} must be an absolute path")]
    Program {
        /// `argv[0]`, or empty.
        program: String,
    },
    /// A workspace file name escapes the workspace.
    #[error("workspace file {path:?} must be a relative path without ..")]
    FilePath {
        /// The offending path.
        path: PathBuf,
    },
    /// A bind is not an absolute, normal path.
    #[error("bind {path:?} must be an absolute path without ..")]
    BindPath {
        /// The offending path.
        path: PathBuf,
    },
    /// A job asks for more than its sandbox's ceiling.
    #[error("the job's {what} ({asked}) is above the sandbox's ceiling ({ceiling})")]
    AboveCeiling {
        /// Which limit.
        what: &'static str,
        /// What the job asked for.
        asked: String,
        /// The sandbox's ceiling.
        ceiling: String,
    },
    /// A volume's host directory is unusable.
    #[error("volume host directory {path:?} {why}")]
    VolumeHost {
        /// The host directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A volume's target is not a place a volume may go.
    #[error("volume target {path:?} {why}")]
    VolumeTarget {
        /// The target inside the sandbox.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The backend cannot mount volumes.
    #[error("the {backend} backend cannot mount volumes: volumes and sessions run sandboxed or isolated")]
    VolumesUnsupported {
        /// The backend's name.
        backend: &'static str,
    },
    /// A string contains a NUL byte or an environment name contains `=`.
    #[error("{what} {value:?} contains a NUL byte or a misplaced =")]
    BadString {
        /// What the string is.
        what: &'static str,
        /// The string (truncated).
        value: String,
    },
}

/// Paths of the sandbox that its root provides: a volume may not cover them or sit inside
/// them, any more than it may cover or sit inside a bind. `/.oldroot` and `/.scratch` are
/// where `mounts.rs` parks the host's root and the workspace tmpfs during setup; `/.warden`
/// holds the isolated backend's loader and preloaded library (`gvisor/bundle.rs`), reserved
/// in every mode so that a request means the same in each.
const RESERVED_TARGETS: [&str; 7] = [
    "/proc",
    "/dev",
    "/etc",
    "/tmp",
    "/.oldroot",
    "/.scratch",
    "/.warden",
];

/// The environment every sandboxed program starts from.
pub fn base_environment() -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", WORKDIR),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
        ("USER", "root"),
        ("PWD", WORKDIR),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl SandboxPlan {
    /// A plan for `argv` with the base filesystem policy, the base environment, the default
    /// limits and the builtin seccomp policy.
    pub fn new(argv: Vec<String>, filesystem: &FilesystemPolicy, seccomp: SeccompPolicy) -> Self {
        Self {
            argv,
            env: base_environment(),
            binds: filesystem
                .mounts
                .iter()
                .map(|m| Bind {
                    path: m.path.clone(),
                })
                .collect(),
            files: Vec::new(),
            limits: Limits::default(),
            seccomp,
            hostname: "warden".to_owned(),
            collect: None,
        }
    }

    /// Sets (or replaces) one environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Adds a read-only bind unless it is already there.
    pub fn add_bind(&mut self, path: &Path) {
        if !self.binds.iter().any(|b| b.path == path) {
            self.binds.push(Bind {
                path: path.to_owned(),
            });
        }
    }

    /// Checks everything the helper would otherwise fail on half-way.
    pub fn validate(&self) -> Result<(), PlanError> {
        let (spec, job) = self.split();
        spec.validate()?;
        job.validate(&spec)
    }

    /// The sandbox this plan needs and the one job it runs there.
    pub fn split(&self) -> (SandboxSpec, Job) {
        let spec = SandboxSpec {
            binds: self.binds.clone(),
            limits: self.limits,
            seccomp: self.seccomp.clone(),
            hostname: self.hostname.clone(),
            egress: false,
            volumes: Vec::new(),
        };
        let job = Job {
            argv: self.argv.clone(),
            env: self.env.clone(),
            files: self.files.clone(),
            limits: self.limits,
            collect: self.collect.clone(),
            spool: None,
            merge_stderr: false,
            truncate_output: false,
        };
        (spec, job)
    }
}

impl SandboxSpec {
    /// The base filesystem policy's binds, default limits, the given seccomp policy.
    pub fn new(filesystem: &FilesystemPolicy, seccomp: SeccompPolicy) -> Self {
        let (spec, _) = SandboxPlan::new(Vec::new(), filesystem, seccomp).split();
        spec
    }

    /// Adds a read-only bind unless it is already there.
    pub fn add_bind(&mut self, path: &Path) {
        if !self.binds.iter().any(|b| b.path == path) {
            self.binds.push(Bind {
                path: path.to_owned(),
            });
        }
    }

    /// Checks everything the helper would otherwise fail on half-way.
    pub fn validate(&self) -> Result<(), PlanError> {
        for bind in &self.binds {
            let normal = bind
                .path
                .components()
                .skip(1)
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !bind.path.is_absolute() || !normal || bind.path.components().count() < 2 {
                return Err(PlanError::BindPath {
                    path: bind.path.clone(),
                });
            }
        }
        for (i, volume) in self.volumes.iter().enumerate() {
            self.check_volume_target(volume, &self.volumes[..i])?;
            self.check_volume_host(volume)?;
        }
        check_string("hostname", &self.hostname)
    }

    /// A volume's target: absolute and normal, not `/`, clear of the binds, the paths the
    /// root provides (`RESERVED_TARGETS`) and the `earlier` volumes, and not inside the
    /// workspace (which a reset replaces) unless it is the workspace.
    fn check_volume_target(
        &self,
        volume: &VolumeMount,
        earlier: &[VolumeMount],
    ) -> Result<(), PlanError> {
        let target = &volume.target;
        let refuse = |why: String| {
            Err(PlanError::VolumeTarget {
                path: target.clone(),
                why,
            })
        };
        if !is_absolute_normal(target) {
            return refuse("must be an absolute path without .., other than /".into());
        }
        let reserved = RESERVED_TARGETS.iter().map(Path::new);
        let binds = self.binds.iter().map(|b| b.path.as_path());
        if let Some(taken) = reserved.chain(binds).find(|p| overlaps(target, p)) {
            return refuse(format!(
                "overlaps {taken:?}, which the sandbox's root provides"
            ));
        }
        if target.starts_with(WORKDIR) && target != Path::new(WORKDIR) {
            return refuse(format!("is inside {WORKDIR}, the workspace"));
        }
        if let Some(other) = earlier.iter().find(|v| overlaps(target, &v.target)) {
            return refuse(format!("overlaps another volume's, {:?}", other.target));
        }
        Ok(())
    }

    /// A volume's host directory: an absolute path to an existing directory with no symlink
    /// on the way (the helper opens it with `RESOLVE_NO_SYMLINKS`), clear of the binds (a
    /// writable volume of `/usr` would let the sandbox's root write the host's programs).
    fn check_volume_host(&self, volume: &VolumeMount) -> Result<(), PlanError> {
        let host = &volume.host;
        let refuse = |why: String| {
            Err(PlanError::VolumeHost {
                path: host.clone(),
                why,
            })
        };
        if !is_absolute_normal(host) {
            return refuse("must be an absolute path without .., other than /".into());
        }
        match std::fs::canonicalize(host) {
            Ok(real) if real != *host => {
                return refuse(format!("must not go through a symlink (it is {real:?})"))
            }
            Ok(_) if !host.is_dir() => return refuse("is not a directory".into()),
            Ok(_) => {}
            Err(e) => return refuse(format!("cannot be reached: {e}")),
        }
        if let Some(bind) = self.binds.iter().find(|b| overlaps(host, &b.path)) {
            return refuse(format!("overlaps the bind {:?}", bind.path));
        }
        Ok(())
    }
}

impl Job {
    /// A job running `argv` with the base environment and `limits`.
    pub fn new(argv: Vec<String>, limits: Limits) -> Self {
        Self {
            argv,
            env: base_environment(),
            files: Vec::new(),
            limits,
            collect: None,
            spool: None,
            merge_stderr: false,
            truncate_output: false,
        }
    }

    /// Sets (or replaces) one environment variable.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Checks everything the init would otherwise fail on half-way, and that the job stays
    /// within `sandbox`'s ceilings.
    pub fn validate(&self, sandbox: &SandboxSpec) -> Result<(), PlanError> {
        let program = self.argv.first().map(String::as_str).unwrap_or("");
        if !program.starts_with('/') {
            return Err(PlanError::Program {
                program: program.to_owned(),
            });
        }
        for arg in &self.argv {
            check_string("argument", arg)?;
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') {
                return Err(bad("environment name", k));
            }
            check_string("environment name", k)?;
            check_string("environment value", v)?;
        }
        for file in &self.files {
            if !is_contained_relative(&file.path) || file.len != file.contents.len() as u64 {
                return Err(PlanError::FilePath {
                    path: file.path.clone(),
                });
            }
        }
        if let Some(path) = &self.collect {
            if !is_contained_relative(path) {
                return Err(PlanError::FilePath { path: path.clone() });
            }
        }
        let ceiling = |what, asked: String, ceiling: String| PlanError::AboveCeiling {
            what,
            asked,
            ceiling,
        };
        if self.limits.memory > sandbox.limits.memory {
            let (asked, top) = (self.limits.memory, sandbox.limits.memory);
            return Err(ceiling("memory", asked.to_string(), top.to_string()));
        }
        if self.limits.max_procs > sandbox.limits.max_procs {
            let (asked, top) = (self.limits.max_procs, sandbox.limits.max_procs);
            return Err(ceiling("process limit", asked.to_string(), top.to_string()));
        }
        if self.limits.workspace_size > sandbox.limits.workspace_size {
            let (asked, top) = (self.limits.workspace_size, sandbox.limits.workspace_size);
            return Err(ceiling(
                "workspace size",
                asked.to_string(),
                top.to_string(),
            ));
        }
        Ok(())
    }
}

/// True for `/a`, `/a/b`; false for `/`, `a`, `/a/../b`.
fn is_absolute_normal(path: &Path) -> bool {
    let mut components = path.components();
    components.next() == Some(std::path::Component::RootDir)
        && components.clone().next().is_some()
        && components.all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Whether one path is the other or lies below it (component-wise: `/data` and `/database`
/// do not overlap).
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// True for `a`, `a/b.txt`; false for `/a`, `../a`, `a/../../b`, ``, and a name holding a NUL.
pub(crate) fn is_contained_relative(path: &Path) -> bool {
    path.components().count() > 0
        && !path.as_os_str().as_encoded_bytes().contains(&0)
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn check_string(what: &'static str, s: &str) -> Result<(), PlanError> {
    if s.contains('\0') {
        Err(bad(what, s))
    } else {
        Ok(())
    }
}

fn bad(what: &'static str, s: &str) -> PlanError {
    PlanError::BadString {
        what,
        value: s.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SandboxPlan {
        SandboxPlan::new(
            vec!["/usr/bin/python3".into(), "main.py".into()],
            &FilesystemPolicy::builtin().expect("builtin"),
            SeccompPolicy::builtin().expect("builtin"),
        )
    }

    #[test]
    fn a_new_plan_is_valid_and_exposes_only_the_base_mounts() {
        let p = plan();
        p.validate().expect("valid");
        assert!(p.binds.iter().any(|b| b.path == Path::new("/usr")));
        assert!(p
            .binds
            .iter()
            .all(|b| !b.path.starts_with("/etc/shadow") && b.path != Path::new("/etc")));
    }

    #[test]
    fn the_environment_is_clean_and_overridable() {
        let mut p = plan();
        assert!(p
            .env
            .iter()
            .all(|(k, _)| k != "SSH_AUTH_SOCK" && k != "AWS_SECRET_ACCESS_KEY"));
        p.set_env("HOME", "/tmp");
        assert_eq!(p.env.iter().filter(|(k, _)| k == "HOME").count(), 1);
    }

    #[test]
    fn escaping_paths_and_relative_programs_are_refused() {
        let mut p = plan();
        p.files.push(WorkspaceFile::new("../../etc/passwd", "x"));
        assert!(matches!(p.validate(), Err(PlanError::FilePath { .. })));
        let mut p = plan();
        p.files.push(WorkspaceFile::new("/etc/passwd", "x"));
        assert!(p.validate().is_err());
        let mut p = plan();
        p.argv[0] = "python3".into();
        assert!(matches!(p.validate(), Err(PlanError::Program { .. })));
        let mut p = plan();
        p.add_bind(Path::new("/usr/../etc"));
        assert!(matches!(p.validate(), Err(PlanError::BindPath { .. })));
        let mut p = plan();
        p.env.push(("A=B".into(), "c".into()));
        assert!(p.validate().is_err());
    }

    fn with_volume(spec: &mut SandboxSpec, host: &Path, target: &str) {
        spec.volumes.push(VolumeMount {
            host: host.to_owned(),
            target: target.into(),
            writable: true,
        });
    }

    #[test]
    fn volumes_at_the_workspace_and_elsewhere_are_valid() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let (mut spec, _) = plan().split();
        with_volume(&mut spec, a.path(), WORKDIR);
        with_volume(&mut spec, b.path(), "/data/set");
        spec.validate().expect("valid");
    }

    #[test]
    fn volume_targets_that_cover_or_sit_inside_the_root_s_paths_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for target in [
            "/",
            "data",
            "/data/../etc",
            "/usr",
            "/usr/local/x",
            "/proc",
            "/dev/x",
            "/etc/x",
            "/tmp",
            "/tmp/x",
            "/work/x",
            "/.oldroot",
            "/.warden",
            "/.warden/seccomp-exec",
            "/.warden/x",
            "/lib",
        ] {
            let (mut spec, _) = plan().split();
            with_volume(&mut spec, dir.path(), target);
            assert!(
                matches!(spec.validate(), Err(PlanError::VolumeTarget { .. })),
                "{target}: {:?}",
                spec.validate()
            );
        }
    }

    #[test]
    fn two_volumes_at_one_target_or_one_inside_another_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (first, second) in [
            ("/data", "/data"),
            ("/data", "/data/x"),
            ("/data/x", "/data"),
        ] {
            let (mut spec, _) = plan().split();
            with_volume(&mut spec, dir.path(), first);
            with_volume(&mut spec, dir.path(), second);
            let refused = spec.validate();
            assert!(
                matches!(&refused, Err(PlanError::VolumeTarget { path, .. }) if path == Path::new(second)),
                "{first} then {second}: {refused:?}"
            );
        }
        let (mut spec, _) = plan().split();
        with_volume(&mut spec, dir.path(), "/data");
        with_volume(&mut spec, dir.path(), "/database");
        spec.validate().expect("/data and /database are distinct");
    }

    #[test]
    fn volume_hosts_must_be_real_directories_clear_of_the_binds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).expect("symlink");
        let missing = dir.path().join("missing");
        let below_link = link.join("sub");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        for host in [
            Path::new("relative"),
            Path::new("/"),
            &file,
            &link,
            &below_link,
            &missing,
            Path::new("/usr/share"),
        ] {
            let (mut spec, _) = plan().split();
            with_volume(&mut spec, host, "/data");
            assert!(
                matches!(spec.validate(), Err(PlanError::VolumeHost { .. })),
                "{host:?}: {:?}",
                spec.validate()
            );
        }
    }

    #[test]
    fn contained_paths() {
        assert!(is_contained_relative(Path::new("a/b.txt")));
        for bad in ["", "/a", "../a", "a/../../b", "./a"] {
            assert!(!is_contained_relative(Path::new(bad)), "{bad}");
        }
    }
}
