//! Shared helpers of the privileged sandbox tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use warden_core::{FilesystemPolicy, Limits, SeccompPolicy};
use warden_sandbox::{Sandbox, SandboxPlan, SandboxRun, Stdin};

/// The sandbox, with the crate's stand-alone helper binary.
pub fn sandbox() -> Sandbox {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the sandbox tests must run as root (CI does)"
    );
    Sandbox::new(PathBuf::from(env!("CARGO_BIN_EXE_warden-sandbox-helper")))
        .expect("this host supports the sandbox")
}

/// A plan for `argv` with the base policies and default limits.
pub fn plan(argv: &[&str]) -> SandboxPlan {
    SandboxPlan::new(
        argv.iter().map(|s| (*s).to_owned()).collect(),
        &FilesystemPolicy::builtin().expect("builtin filesystem policy"),
        SeccompPolicy::builtin().expect("builtin seccomp policy"),
    )
}

/// The modes whose sandboxes enforce the same plan: `sandboxed` (the native backend) and
/// `isolated` (gVisor). `trusted` has its own, smaller set (tests/trusted.rs,
/// docs/threat-model.md) and is not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The native backend.
    Sandboxed,
    /// gVisor.
    Isolated,
}

/// Both modes, for tests that must hold under each.
pub const MODES: [Mode; 2] = [Mode::Sandboxed, Mode::Isolated];

/// Runs `plan` to completion under `mode`. runsc is required (CI has it).
pub fn run_in(mode: Mode, plan: &SandboxPlan, stdin: Stdin) -> SandboxRun {
    let host = sandbox();
    match mode {
        Mode::Sandboxed => host.run(plan, stdin),
        Mode::Isolated => {
            assert!(
                warden_sandbox::runsc_path().is_some(),
                "runsc is missing: install the Debian package runsc (scripts/setup.sh does)"
            );
            host.run_isolated(plan, stdin)
        }
    }
    .expect("warden ran the program")
}

/// Runs a shell script under `mode`.
pub fn sh_in(mode: Mode, script: &str, limits: Limits) -> SandboxRun {
    let mut p = plan(&["/bin/sh", "-c", script]);
    p.limits = limits;
    run_in(mode, &p, Stdin::Null)
}

/// Runs a shell script in the sandbox.
pub fn sh(script: &str, limits: Limits) -> SandboxRun {
    let mut p = plan(&["/bin/sh", "-c", script]);
    p.limits = limits;
    sandbox()
        .run(&p, Stdin::Null)
        .expect("warden ran the program")
}

/// Stdout as text.
pub fn out(run: &SandboxRun) -> String {
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// Whether a prerequisite of a test is met. When it is not, prints why the test skips; in CI
/// (`CI` set) a test must not skip, so a missing prerequisite fails it instead.
pub fn prerequisite(met: bool, what: &str) -> bool {
    if !met {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
        eprintln!("skipped: {what} is not available on this machine");
    }
    met
}

/// Host processes whose real uid is one of `uids`, as `pid state cmdline`. A process that sits
/// in another test process's run cgroup is that run's (it reserved the same, then free, slot).
pub fn processes_of(uids: &BTreeSet<u32>) -> Vec<String> {
    let others_run = format!("/{}/run-", warden_sandbox::WARDEN_CGROUP);
    let our_run = format!("{others_run}{}-", std::process::id());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .map(|l| l[key.len()..].trim().to_owned())
            };
            let uid: u32 = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
            if !uids.contains(&uid) {
                return None;
            }
            let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            if cgroups.contains(&others_run) && !cgroups.contains(&our_run) {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            Some(format!(
                "{} {} {}",
                entry.file_name().to_string_lossy(),
                field("State:").unwrap_or_default(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ))
        })
        .collect()
}

/// The cgroups of this test process's runs that still exist.
pub fn our_cgroups() -> Vec<String> {
    let prefix = format!("run-{}-", std::process::id());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| before.split(' ').nth(4).map(str::to_owned))?
        })
        .flat_map(|mount_point| {
            let parent = Path::new(&mount_point).join(warden_sandbox::WARDEN_CGROUP);
            std::fs::read_dir(parent).into_iter().flatten().flatten()
        })
        .map(|e| e.path().display().to_string())
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with(&prefix))
        })
        .collect()
}

/// Compiles the C program `tests/<path>` (whose text is `source`, for the cache key) once into
/// the cargo target's temporary directory, keyed by the source's hash so that concurrent test
/// processes share it safely, and returns the binary. Static, so that it needs nothing from
/// the sandbox's library binds (glibc's static libraries come with libc6-dev); dynamic
/// otherwise, since libc is bound into every sandbox. `None` when this machine has no gcc (a
/// skip outside CI).
pub fn compile_c(path: &str, source: &str) -> Option<Vec<u8>> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::process::Command;
    let gcc = Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !prerequisite(gcc, &format!("gcc (to compile tests/{path})")) {
        return None;
    }
    let name = Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("program");
    let mut hasher = DefaultHasher::new();
    source.hash(&mut hasher);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let binary = dir.join(format!("warden-{name}-{:016x}", hasher.finish()));
    if let Ok(bytes) = std::fs::read(&binary) {
        return Some(bytes);
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(path);
    let partial = dir.join(format!("warden-{name}.{}.partial", std::process::id()));
    let mut errors = String::new();
    for link in [Some("-static"), None] {
        let output = Command::new("gcc")
            .args(["-O1", "-Wall", "-Wextra"])
            .args(link)
            .arg("-o")
            .arg(&partial)
            .arg(&file)
            .output()
            .expect("gcc runs");
        if output.status.success() {
            std::fs::rename(&partial, &binary).expect("move the program into place");
            return Some(std::fs::read(&binary).expect("read the program"));
        }
        errors.push_str(&String::from_utf8_lossy(&output.stderr));
        eprintln!(
            "compiling {} with {link:?} failed:\n{errors}",
            file.display()
        );
    }
    panic!("gcc cannot compile {}:\n{errors}", file.display());
}

/// A test sink's signal source (`OutputSink::signal_source`): a pipe, to which [`ask`] writes
/// a byte and from which [`read`] takes them all, one signal each.
///
/// [`ask`]: SignalPipe::ask
/// [`read`]: SignalPipe::read
pub struct SignalPipe {
    source: std::os::fd::OwnedFd,
    trigger: std::os::fd::OwnedFd,
}

impl Default for SignalPipe {
    fn default() -> Self {
        let (source, trigger) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a signal pipe");
        Self { source, trigger }
    }
}

impl SignalPipe {
    /// Asks for one signal.
    pub fn ask(&self) {
        nix::unistd::write(&self.trigger, &[1]).expect("a signal asked");
    }

    /// What `signal_source` returns.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.source.as_fd()
    }

    /// `signal` once for each time it was asked, as `signals` returns them.
    pub fn read(&self, signal: i32) -> Vec<i32> {
        let mut bytes = [0u8; 16];
        let n = nix::unistd::read(&self.source, &mut bytes).unwrap_or(0);
        vec![signal; n]
    }
}

/// Python that defines `tries(label, f)`: prints `label` and the errno name each attempt
/// failed with (`ok` when it did not).
pub const TRIES: &str = r#"
import errno, os
def tries(label, f):
    try:
        f()
        r = "ok"
    except OSError as e:
        r = errno.errorcode[e.errno]
    print(label, r)
"#;
