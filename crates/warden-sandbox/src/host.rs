//! What this host supports: the isolation features the native backend requires (user
//! namespaces, seccomp, cgroups, pidfds) and the optional ones `warden doctor` reports.
//! The sandbox refuses to run when a required one is missing; it never runs unconfined.

use std::fs;

use serde::Serialize;

use crate::cgroup::CgroupFs;
use crate::parent::SandboxError;

/// One feature and whether this host has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// Short name.
    pub name: &'static str,
    /// Whether the sandbox cannot run without it.
    pub required: bool,
    /// Whether it is available.
    pub available: bool,
    /// What was found, or what is missing and how to get it.
    pub detail: String,
}

/// Every feature, probed now.
pub fn features() -> Vec<Feature> {
    vec![
        root(),
        user_namespaces(),
        seccomp(),
        cgroups(),
        pidfd(),
        optional("landlock", landlock()),
        optional("gvisor (runsc)", runsc()),
    ]
}

/// A host setting that weakens what the sandbox promises without stopping it from running:
/// `warden doctor` reports it, and it is never a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Short name.
    pub name: &'static str,
    /// What was found, why it matters, and the operator's remedy.
    pub detail: String,
}

/// Every warning about this host's settings, read now.
pub fn warnings() -> Vec<Warning> {
    core_pattern_warning(read_trimmed(CORE_PATTERN).as_deref())
        .into_iter()
        .collect()
}

/// Where the kernel says what it does with a crashing process's memory (core(5)).
const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// A `kernel.core_pattern` that pipes core dumps to a program (`|/usr/lib/systemd/
/// systemd-coredump ...`, apport): the kernel starts that program for every crash in a
/// sandbox, as root on the host, outside the run's namespaces and cgroup, and feeds it the
/// crashing program's memory. The payload's `RLIMIT_CORE` of 0 stops only a file pattern:
/// for a pipe the kernel skips just a limit of 1, which the program could lower to 0 anyway.
/// `core_pattern` is not per namespace, so warden cannot change this for its runs alone.
fn core_pattern_warning(pattern: Option<&str>) -> Option<Warning> {
    let handler = pattern?.strip_prefix('|')?;
    Some(Warning {
        name: "core dumps",
        detail: format!(
            "kernel.core_pattern pipes core dumps to {:?}: every crash in a sandbox starts it \
             as root outside the run's cgroup, whatever RLIMIT_CORE (docs/threat-model.md); on \
             a host that runs untrusted code, set a file pattern (sysctl \
             kernel.core_pattern=core) or at least bound concurrent handlers (sysctl \
             kernel.core_pipe_limit=4)",
            handler.split_whitespace().next().unwrap_or_default()
        ),
    })
}

/// Fails with the first missing required feature.
pub(crate) fn require_isolation() -> Result<(), SandboxError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(SandboxError::NeedsRoot { uid: euid.as_raw() });
    }
    for check in [user_namespaces(), seccomp(), pidfd()] {
        if !check.available {
            return Err(SandboxError::Unsupported {
                feature: check.name,
                detail: check.detail,
            });
        }
    }
    Ok(())
}

/// warden maps each sandbox's root to an unprivileged host uid, creates cgroups and locks uid
/// slots in /run/warden: all of which needs root. Without it every run would fail half-way on
/// some internal file; this says what to do instead.
fn root() -> Feature {
    let euid = nix::unistd::geteuid();
    feature(
        "root privileges",
        euid.is_root(),
        if euid.is_root() {
            "running as root".to_owned()
        } else {
            format!(
                "running as uid {euid}: warden creates cgroups and user namespaces mapped to \
                 other uids, which needs root; run it as root (sudo warden ...)"
            )
        },
    )
}

fn feature(name: &'static str, available: bool, detail: String) -> Feature {
    Feature {
        name,
        required: true,
        available,
        detail,
    }
}

fn optional(name: &'static str, (available, detail): (bool, String)) -> Feature {
    Feature {
        name,
        required: false,
        available,
        detail,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn user_namespaces() -> Feature {
    let max =
        read_trimmed("/proc/sys/user/max_user_namespaces").and_then(|s| s.parse::<u64>().ok());
    let unprivileged_clone = read_trimmed("/proc/sys/kernel/unprivileged_userns_clone");
    match max {
        Some(0) => feature(
            "user namespaces",
            false,
            "user.max_user_namespaces is 0; raise it with sysctl".into(),
        ),
        Some(n) => feature(
            "user namespaces",
            true,
            format!(
                "max_user_namespaces={n}{}",
                unprivileged_clone
                    .map(|v| format!(", unprivileged_userns_clone={v}"))
                    .unwrap_or_default()
            ),
        ),
        None => feature(
            "user namespaces",
            false,
            "the kernel has no user namespace support".into(),
        ),
    }
}

fn seccomp() -> Feature {
    match read_trimmed("/proc/sys/kernel/seccomp/actions_avail") {
        Some(actions) if actions.contains("kill_process") && actions.contains("errno") => {
            feature("seccomp-bpf", true, format!("actions: {actions}"))
        }
        Some(actions) => feature(
            "seccomp-bpf",
            false,
            format!("missing kill_process or errno in: {actions}"),
        ),
        None => feature(
            "seccomp-bpf",
            false,
            "the kernel has no seccomp filter support".into(),
        ),
    }
}

fn cgroups() -> Feature {
    match CgroupFs::detect() {
        Ok(fs) => feature(
            "cgroups (memory, pids, cpu)",
            true,
            format!("cgroup {}", fs.version()),
        ),
        Err(e) => feature("cgroups (memory, pids, cpu)", false, e.to_string()),
    }
}

fn pidfd() -> Feature {
    match warden_sys::process::pidfd_open(nix::unistd::getpid()) {
        Ok(_) => feature("pidfd", true, "pidfd_open works".into()),
        Err(e) => feature(
            "pidfd",
            false,
            format!("pidfd_open: {e} (Linux 5.3 or later is needed)"),
        ),
    }
}

/// Landlock, asked of the kernel itself (securityfs, which lists the active LSMs, is often not
/// mounted). warden's sandbox does not use it: reported for the operator's information.
fn landlock() -> (bool, String) {
    match warden_sys::process::landlock_abi_version() {
        Ok(version) => (true, format!("ABI version {version}; not required")),
        Err(nix::errno::Errno::EOPNOTSUPP) => {
            (false, "built in but disabled at boot; not required".into())
        }
        Err(e) => (false, format!("landlock_create_ruleset: {e}; not required")),
    }
}

/// runsc's path and the version it reports (its gVisor release: what `isolated` mode can do
/// depends on it, docs/threat-model.md).
fn runsc() -> (bool, String) {
    match crate::gvisor::runsc_path() {
        Some(path) => {
            let version = std::process::Command::new(&path)
                .arg("--version")
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .and_then(|out| {
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .next()
                        .map(str::to_owned)
                })
                .filter(|line| !line.is_empty());
            match version {
                Some(version) => (true, format!("{}, {version}", path.display())),
                None => (true, path.display().to_string()),
            }
        }
        None => (
            false,
            "runsc not found; install the Debian package runsc for isolated mode".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt esc F5: with a piped core pattern every crash in a sandbox started the host's
    /// handler as root, and RLIMIT_CORE = 0 did not stop it; doctor said nothing.
    #[test]
    fn a_piped_core_pattern_is_a_warning_naming_the_handler() {
        let systemd = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h";
        let warning = core_pattern_warning(Some(systemd)).expect("a warning");
        assert_eq!(warning.name, "core dumps");
        assert!(
            warning.detail.starts_with(
                "kernel.core_pattern pipes core dumps to \"/usr/lib/systemd/systemd-coredump\""
            ),
            "{}",
            warning.detail
        );
        assert!(warning.detail.contains("kernel.core_pattern=core"));
        let apport = "|/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -- %E";
        assert!(core_pattern_warning(Some(apport)).is_some());
        for pattern in ["core", "/var/crash/core.%e.%p", "", "core|x"] {
            assert_eq!(core_pattern_warning(Some(pattern)), None, "{pattern}");
        }
        assert_eq!(core_pattern_warning(None), None);
    }
}
