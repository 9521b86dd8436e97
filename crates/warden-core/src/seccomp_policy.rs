//! The seccomp policy as data (`policies/seccomp/*.toml`): which system calls a sandboxed program
//! may not make, what happens when it tries, and why each one is denied.
//!
//! A deny list: every call not named is allowed. This module parses and validates the file into
//! a [`SeccompPolicy`]; the native backend compiles that into a BPF program and installs it in
//! the payload process (`warden-sandbox`, `seccomp.rs`). Whether a name exists on the target
//! architecture is the compiler's concern, not this module's. See seccomp(2) and
//! <https://docs.kernel.org/userspace-api/seccomp_filter.html>.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::embedded::SECCOMP_FILES;

/// The name of the built-in policy file in `policies/seccomp/`.
const BUILTIN_FILE: &str = "default.toml";

/// A validated seccomp deny list. Built by [`SeccompPolicy::builtin`] or
/// [`SeccompPolicy::from_toml`]; serializable so it can travel to the helper process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompPolicy {
    rules: Vec<DenyRule>,
}

/// One denied system call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    /// The system call's name as in `<asm/unistd.h>` (`mount`, `clone3`).
    pub syscall: String,
    /// What the call does instead of running.
    pub action: SeccompAction,
    /// When not empty, the call is denied only if its flags argument (the first argument of
    /// `clone`) has at least one of these flags; otherwise it is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when_flags_any: Vec<NamespaceFlag>,
    /// Which escape or attack the call enables.
    pub reason: String,
}

/// What a denied system call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompAction {
    /// The call fails with this error number and the program carries on.
    Errno(DenyErrno),
    /// The whole process is killed with SIGSYS (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
}

/// The error numbers a denied call may fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyErrno {
    /// Operation not permitted: the usual answer of a refused privileged call.
    #[serde(rename = "EPERM")]
    Eperm,
    /// Permission denied.
    #[serde(rename = "EACCES")]
    Eacces,
    /// Function not implemented: makes callers fall back to an older call (`clone3` -> `clone`).
    #[serde(rename = "ENOSYS")]
    Enosys,
}

impl DenyErrno {
    /// Every variant, in the order error messages list them.
    pub const ALL: [DenyErrno; 3] = [DenyErrno::Eperm, DenyErrno::Eacces, DenyErrno::Enosys];

    /// The C name (`EPERM`).
    pub const fn name(self) -> &'static str {
        match self {
            DenyErrno::Eperm => "EPERM",
            DenyErrno::Eacces => "EACCES",
            DenyErrno::Enosys => "ENOSYS",
        }
    }
}

/// The `CLONE_NEW*` flags a [`DenyRule::when_flags_any`] condition may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NamespaceFlag {
    /// A new mount namespace.
    #[serde(rename = "CLONE_NEWNS")]
    NewNs,
    /// A new UTS (host name) namespace.
    #[serde(rename = "CLONE_NEWUTS")]
    NewUts,
    /// A new IPC namespace.
    #[serde(rename = "CLONE_NEWIPC")]
    NewIpc,
    /// A new user namespace.
    #[serde(rename = "CLONE_NEWUSER")]
    NewUser,
    /// A new PID namespace.
    #[serde(rename = "CLONE_NEWPID")]
    NewPid,
    /// A new network namespace.
    #[serde(rename = "CLONE_NEWNET")]
    NewNet,
    /// A new cgroup namespace.
    #[serde(rename = "CLONE_NEWCGROUP")]
    NewCgroup,
    /// A new time namespace.
    #[serde(rename = "CLONE_NEWTIME")]
    NewTime,
}

impl NamespaceFlag {
    /// Every variant, in the order error messages list them.
    pub const ALL: [NamespaceFlag; 8] = [
        NamespaceFlag::NewNs,
        NamespaceFlag::NewUts,
        NamespaceFlag::NewIpc,
        NamespaceFlag::NewUser,
        NamespaceFlag::NewPid,
        NamespaceFlag::NewNet,
        NamespaceFlag::NewCgroup,
        NamespaceFlag::NewTime,
    ];

    /// The C name (`CLONE_NEWUSER`).
    pub const fn name(self) -> &'static str {
        match self {
            NamespaceFlag::NewNs => "CLONE_NEWNS",
            NamespaceFlag::NewUts => "CLONE_NEWUTS",
            NamespaceFlag::NewIpc => "CLONE_NEWIPC",
            NamespaceFlag::NewUser => "CLONE_NEWUSER",
            NamespaceFlag::NewPid => "CLONE_NEWPID",
            NamespaceFlag::NewNet => "CLONE_NEWNET",
            NamespaceFlag::NewCgroup => "CLONE_NEWCGROUP",
            NamespaceFlag::NewTime => "CLONE_NEWTIME",
        }
    }
}

/// The system calls whose flags argument a `when_flags_any` condition can inspect: their flags
/// are a register argument. `clone3` passes them in memory, which seccomp cannot read.
const FLAG_CONDITION_SYSCALLS: &[&str] = &["clone"];

/// A seccomp policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompPolicyError {
    /// The embedded built-in file is missing.
    #[error("the embedded seccomp policy {BUILTIN_FILE} is missing")]
    Missing,
    /// The TOML does not deserialize.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file name.
        file: String,
        /// The 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// A `[[deny]]` entry is unusable.
    #[error("{file}: deny {syscall:?}: {problem}")]
    Invalid {
        /// The file name.
        file: String,
        /// The entry's `syscall` value.
        syscall: String,
        /// What is wrong with it.
        problem: DenyEntryProblem,
    },
}

/// What is wrong with one `[[deny]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenyEntryProblem {
    /// `reason` is missing or blank.
    #[error("has no reason")]
    NoReason,
    /// The name is empty or not lowercase ASCII letters, digits and `_`.
    #[error("is not a system call name (lowercase letters, digits and _)")]
    BadName,
    /// A second entry for the same system call.
    #[error("is listed more than once")]
    Duplicate,
    /// `action` is not a known action.
    #[error("unknown action {0:?}, expected \"errno\" or \"kill\"")]
    UnknownAction(String),
    /// `errno` is not a known error name.
    #[error("unknown errno {0:?}, expected one of {names}", names = known(DenyErrno::ALL.map(DenyErrno::name)))]
    UnknownErrno(String),
    /// `errno` given with `action = "kill"`.
    #[error("errno is set but the action is \"kill\"")]
    ErrnoWithKill,
    /// A `when_flags_any` name is not a known flag.
    #[error("unknown flag {0:?}, expected one of {names}", names = known(NamespaceFlag::ALL.map(NamespaceFlag::name)))]
    UnknownFlag(String),
    /// `when_flags_any` is empty, so the entry would never deny anything.
    #[error("when_flags_any is empty")]
    EmptyFlags,
    /// `when_flags_any` on a call whose flags seccomp cannot inspect.
    #[error(
        "when_flags_any is only supported for {}",
        known(FLAG_CONDITION_SYSCALLS)
    )]
    FlagsNotSupported,
}

fn known<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A policy file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    deny: Vec<DenyEntry>,
}

/// A `[[deny]]` entry as written; names stay strings so errors can name the entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyEntry {
    syscall: String,
    action: Option<String>,
    errno: Option<String>,
    when_flags_any: Option<Vec<String>>,
    #[serde(default)]
    reason: String,
}

impl SeccompPolicy {
    /// The policy embedded in the binary (`policies/seccomp/default.toml`).
    pub fn builtin() -> Result<Self, SeccompPolicyError> {
        let (file, text) = SECCOMP_FILES
            .iter()
            .find(|(name, _)| *name == BUILTIN_FILE)
            .ok_or(SeccompPolicyError::Missing)?;
        Self::from_toml(file, text)
    }

    /// Parses and validates a policy file; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, SeccompPolicyError> {
        let parsed: PolicyFile =
            crate::data::from_str(text).map_err(|e| SeccompPolicyError::Parse {
                file: file.to_owned(),
                line: e.line,
                message: e.message,
            })?;
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(parsed.deny.len());
        for entry in parsed.deny {
            let invalid = |problem| SeccompPolicyError::Invalid {
                file: file.to_owned(),
                syscall: entry.syscall.clone(),
                problem,
            };
            let rule = entry.validate().map_err(invalid)?;
            if !seen.insert(rule.syscall.clone()) {
                return Err(invalid(DenyEntryProblem::Duplicate));
            }
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    /// The denied calls, in file order.
    pub fn rules(&self) -> &[DenyRule] {
        &self.rules
    }

    /// The rule for one system call, if it is denied.
    pub fn rule(&self, syscall: &str) -> Option<&DenyRule> {
        self.rules.iter().find(|r| r.syscall == syscall)
    }
}

impl DenyEntry {
    fn validate(&self) -> Result<DenyRule, DenyEntryProblem> {
        let name_ok = !self.syscall.is_empty()
            && self
                .syscall
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(DenyEntryProblem::BadName);
        }
        if self.reason.trim().is_empty() {
            return Err(DenyEntryProblem::NoReason);
        }
        Ok(DenyRule {
            syscall: self.syscall.clone(),
            action: self.action()?,
            when_flags_any: self.flags()?,
            reason: self.reason.trim().to_owned(),
        })
    }

    fn action(&self) -> Result<SeccompAction, DenyEntryProblem> {
        let errno = match &self.errno {
            None => DenyErrno::Eperm,
            Some(name) => DenyErrno::ALL
                .into_iter()
                .find(|e| e.name() == name)
                .ok_or_else(|| DenyEntryProblem::UnknownErrno(name.clone()))?,
        };
        match self.action.as_deref() {
            None | Some("errno") => Ok(SeccompAction::Errno(errno)),
            Some("kill") if self.errno.is_some() => Err(DenyEntryProblem::ErrnoWithKill),
            Some("kill") => Ok(SeccompAction::KillProcess),
            Some(other) => Err(DenyEntryProblem::UnknownAction(other.to_owned())),
        }
    }

    fn flags(&self) -> Result<Vec<NamespaceFlag>, DenyEntryProblem> {
        let Some(names) = &self.when_flags_any else {
            return Ok(Vec::new());
        };
        if !FLAG_CONDITION_SYSCALLS.contains(&self.syscall.as_str()) {
            return Err(DenyEntryProblem::FlagsNotSupported);
        }
        if names.is_empty() {
            return Err(DenyEntryProblem::EmptyFlags);
        }
        names
            .iter()
            .map(|name| {
                NamespaceFlag::ALL
                    .into_iter()
                    .find(|f| f.name() == name)
                    .ok_or_else(|| DenyEntryProblem::UnknownFlag(name.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calls the escape defences rely on being denied.
    const MUST_DENY: &[&str] = &[
        "mount",
        "umount2",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "bpf",
        "perf_event_open",
        "add_key",
        "request_key",
        "keyctl",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "open_by_handle_at",
        "name_to_handle_at",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "clock_settime",
        "settimeofday",
        "adjtimex",
        "clock_adjtime",
    ];

    /// Calls ordinary runtimes (python, node, the JVM, go, bash) cannot work without.
    const MUST_ALLOW: &[&str] = &[
        "execve",
        "execveat",
        "mmap",
        "mprotect",
        "munmap",
        "prctl",
        "socket",
        "connect",
        "read",
        "write",
        "openat",
        "futex",
        "rt_sigaction",
        "wait4",
        "pipe2",
        "seccomp",
        "arch_prctl",
    ];

    fn parse(text: &str) -> Result<SeccompPolicy, SeccompPolicyError> {
        SeccompPolicy::from_toml("t.toml", text)
    }

    fn problem(text: &str) -> DenyEntryProblem {
        match parse(text) {
            Err(SeccompPolicyError::Invalid { problem, .. }) => problem,
            other => panic!("expected an invalid entry, got {other:?}"),
        }
    }

    #[test]
    fn builtin_policy_loads_and_denies_the_escape_calls() {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        for name in MUST_DENY {
            assert!(policy.rule(name).is_some(), "{name} must be denied");
        }
        for name in MUST_ALLOW {
            assert!(policy.rule(name).is_none(), "{name} must stay allowed");
        }
        assert!(policy.rules().iter().all(|r| !r.reason.is_empty()));
    }

    #[test]
    fn builtin_policy_special_entries() {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        let clone = policy.rule("clone").expect("clone is listed");
        assert_eq!(clone.when_flags_any.len(), NamespaceFlag::ALL.len());
        for flag in NamespaceFlag::ALL {
            assert!(
                clone.when_flags_any.contains(&flag),
                "clone must be denied with {flag:?}"
            );
        }
        let clone3 = policy.rule("clone3").expect("clone3 is listed");
        assert_eq!(clone3.action, SeccompAction::Errno(DenyErrno::Enosys));
        let mount = policy.rule("mount").expect("mount is listed");
        assert_eq!(mount.action, SeccompAction::Errno(DenyErrno::Eperm));
        // libuv probes io_uring and falls back on failure: a kill would break node.
        let uring = policy
            .rule("io_uring_setup")
            .expect("io_uring_setup is listed");
        assert_ne!(uring.action, SeccompAction::KillProcess);
    }

    #[test]
    fn an_entry_without_a_reason_is_refused() {
        assert_eq!(
            problem("[[deny]]\nsyscall = \"mount\"\nreason = \"  \"\n"),
            DenyEntryProblem::NoReason
        );
        assert_eq!(
            problem("[[deny]]\nsyscall = \"mount\"\n"),
            DenyEntryProblem::NoReason
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        let dup = "[[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n[[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n";
        assert_eq!(problem(dup), DenyEntryProblem::Duplicate);
        let action = "[[deny]]\nsyscall = \"mount\"\naction = \"trap\"\nreason = \"r\"\n";
        assert_eq!(
            problem(action),
            DenyEntryProblem::UnknownAction("trap".into())
        );
        let errno = "[[deny]]\nsyscall = \"mount\"\nerrno = \"EFOO\"\nreason = \"r\"\n";
        assert_eq!(
            problem(errno),
            DenyEntryProblem::UnknownErrno("EFOO".into())
        );
        let kill =
            "[[deny]]\nsyscall = \"mount\"\naction = \"kill\"\nerrno = \"EPERM\"\nreason = \"r\"\n";
        assert_eq!(problem(kill), DenyEntryProblem::ErrnoWithKill);
        let flag =
            "[[deny]]\nsyscall = \"clone\"\nwhen_flags_any = [\"CLONE_VM\"]\nreason = \"r\"\n";
        assert_eq!(
            problem(flag),
            DenyEntryProblem::UnknownFlag("CLONE_VM".into())
        );
        let empty = "[[deny]]\nsyscall = \"clone\"\nwhen_flags_any = []\nreason = \"r\"\n";
        assert_eq!(problem(empty), DenyEntryProblem::EmptyFlags);
        let where_ =
            "[[deny]]\nsyscall = \"clone3\"\nwhen_flags_any = [\"CLONE_NEWNS\"]\nreason = \"r\"\n";
        assert_eq!(problem(where_), DenyEntryProblem::FlagsNotSupported);
        let name = "[[deny]]\nsyscall = \"Mount\"\nreason = \"r\"\n";
        assert_eq!(problem(name), DenyEntryProblem::BadName);

        let message = parse(errno).expect_err("unknown errno").to_string();
        assert_eq!(
            message,
            "t.toml: deny \"mount\": unknown errno \"EFOO\", expected one of EPERM, EACCES, ENOSYS"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_a_line() {
        let err = parse("[[deny]]\nsyscall = \"mount\"\nreason = \"r\"\nsyscal = \"x\"\n")
            .expect_err("unknown field");
        assert!(
            matches!(err, SeccompPolicyError::Parse { line: Some(4), .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("t.toml:4: "), "{err}");
    }

    #[test]
    fn actions_default_to_eperm_and_kill_is_kill_process() {
        let text = "[[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n[[deny]]\nsyscall = \"kexec_load\"\naction = \"kill\"\nreason = \"r\"\n";
        let policy = parse(text).expect("valid");
        assert_eq!(
            policy.rules()[0].action,
            SeccompAction::Errno(DenyErrno::Eperm)
        );
        assert_eq!(policy.rules()[1].action, SeccompAction::KillProcess);
    }

    #[test]
    fn the_policy_survives_a_json_round_trip() {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        let json = serde_json::to_string(&policy).expect("serializes");
        let back: SeccompPolicy = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, policy);
    }
}
