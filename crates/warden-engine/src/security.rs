//! The security section of a result: which mode ran the program and why, what static analysis
//! found, and what the sandbox stopped at run time ([`Violation`], one structured event each):
//! limits hit, forbidden operations, denied connections, and the system calls the seccomp
//! policy refused with an error ([`ViolationKind::DeniedSyscall`], docs/events.md).

use serde::{Deserialize, Deserializer, Serialize};
use warden_core::seccomp_policy::{DenyErrno, DenySeverity};
use warden_core::{Finding, Mode, Outcome, OutcomeKind, ThreatLevel};
use warden_sandbox::{DeniedSyscall, KilledSyscall, ReadOnlyWrites};

/// Why an execution ran as it did, and what the sandbox stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Security {
    /// The isolation mode used.
    pub mode: Mode,
    /// Why that mode was chosen.
    pub reason: String,
    /// The static analysis' threat level.
    pub threat_level: ThreatLevel,
    /// The static analysis' findings.
    pub findings: Vec<Finding>,
    /// Why the code could not be parsed for analysis, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// What the sandbox stopped at run time (limits hit, forbidden operations), in order.
    pub violations: Vec<Violation>,
    /// How long the static analysis took (little when its answer came from the analysis cache).
    #[serde(rename = "analysis_us", with = "micros")]
    pub analysis_time: std::time::Duration,
}

/// `Duration` as whole microseconds.
mod micros {
    use serde::Serializer;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

/// A stage of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The dependency installation.
    Dependencies,
    /// The compile stage.
    Compile,
    /// The run stage.
    Run,
}

/// What kind of thing the sandbox stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The stage ended at its time limit.
    TimeLimit,
    /// The stage ended at its memory limit.
    MemoryLimit,
    /// The stage ended at its output limit.
    OutputLimit,
    /// The stage ended at its file size limit.
    FileSizeLimit,
    /// A forbidden operation: a system call the sandbox killed the program for, or a
    /// connection the network policy denied.
    Violation,
    /// A system call the seccomp policy refused with an error. The program went on (it may
    /// have handled the error), so the stage's outcome is its own.
    DeniedSyscall,
    /// Forks or clones refused at the process limit: a fork storm, or a program that needed
    /// more processes than it was given. The stage's outcome is its own.
    ProcessLimit,
    /// Writes to read-only paths (the root, the runtimes, `/dev`, a read-only volume), which
    /// the kernel refused (`EROFS`). The stage's outcome is its own.
    ReadonlyWrite,
    /// A connection a limit of the network policy refused (`max_connections`,
    /// `total_connections`, `total_bytes`): a limit hit, not a destination the policy denies.
    NetworkLimit,
}

impl ViolationKind {
    /// The kind of a stage's outcome, if it is one the sandbox stopped the stage with.
    pub fn of_outcome(kind: OutcomeKind) -> Option<Self> {
        Some(match kind {
            OutcomeKind::TimeLimit => Self::TimeLimit,
            OutcomeKind::MemoryLimit => Self::MemoryLimit,
            OutcomeKind::OutputLimit => Self::OutputLimit,
            OutcomeKind::FileSizeLimit => Self::FileSizeLimit,
            OutcomeKind::Violation => Self::Violation,
            OutcomeKind::Exited
            | OutcomeKind::Signaled
            | OutcomeKind::CompileError
            | OutcomeKind::DependencyError
            | OutcomeKind::Cancelled => return None,
        })
    }

    /// The name in JSON, the history and metrics labels (`denied_syscall`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::TimeLimit => "time_limit",
            Self::MemoryLimit => "memory_limit",
            Self::OutputLimit => "output_limit",
            Self::FileSizeLimit => "file_size_limit",
            Self::Violation => "violation",
            Self::DeniedSyscall => "denied_syscall",
            Self::ProcessLimit => "process_limit",
            Self::ReadonlyWrite => "readonly_write",
            Self::NetworkLimit => "network_limit",
        }
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the sandbox stopped: a limit hit, a forbidden operation, a refused system call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The stage it happened in.
    pub stage: Stage,
    /// What kind it was (`time_limit`, `violation`, `denied_syscall`, ...).
    pub kind: ViolationKind,
    /// For people: `cpu time limit exceeded`, `seccomp: ptrace`.
    pub detail: String,
    /// For a [`ViolationKind::DeniedSyscall`]: which call, how often, how serious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<RefusedCall>,
    /// For a [`ViolationKind::ReadonlyWrite`]: how many, how serious, the first paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes: Option<ReadOnlyWrites>,
}

/// A system call the seccomp policy refused with an error, as a violation records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedCall {
    /// The call's name (`mount`).
    pub name: String,
    /// The error each attempt failed with.
    pub errno: DenyErrno,
    /// How many times the stage's processes tried it.
    pub count: u64,
    /// How serious an attempt is, from the seccomp policy.
    pub severity: DenySeverity,
}

impl Violation {
    /// The violation a system call the policy refused records: one per call name and stage,
    /// whatever the number of attempts (a storm of a million is one event, with its count).
    pub fn denied_syscall(stage: Stage, call: &DeniedSyscall) -> Self {
        let times = if call.count == 1 { "time" } else { "times" };
        Self {
            stage,
            kind: ViolationKind::DeniedSyscall,
            detail: format!(
                "seccomp refused {} ({}), {} {times}",
                call.name,
                call.errno.name(),
                call.count
            ),
            syscall: Some(RefusedCall {
                name: call.name.clone(),
                errno: call.errno,
                count: call.count,
                severity: call.severity,
            }),
            writes: None,
        }
    }

    /// The violation of a stage whose processes other than its program were killed for a
    /// call the seccomp policy kills for (one event per call, with the count); `None` when
    /// only the program was, whose outcome already records it.
    pub fn seccomp_kill(stage: Stage, call: &KilledSyscall) -> Option<Self> {
        let others = call.count.saturating_sub(u64::from(call.program));
        if others == 0 {
            return None;
        }
        let processes = if others == 1 { "process" } else { "processes" };
        Some(Self {
            stage,
            kind: ViolationKind::Violation,
            detail: format!(
                "seccomp: {others} {processes} killed for {}, a forbidden system call",
                call.name
            ),
            syscall: None,
            writes: None,
        })
    }

    /// The violation of a stage whose processes tried to write to read-only paths: one event,
    /// whatever the number of attempts, naming the first paths.
    pub fn readonly_writes(stage: Stage, writes: &ReadOnlyWrites) -> Self {
        let paths: Vec<String> = writes
            .attempts
            .iter()
            .map(|a| format!("{} {}", a.call, a.path))
            .collect();
        let more = if writes.count > writes.attempts.len() as u64 {
            ", ..."
        } else {
            ""
        };
        let times = if writes.count == 1 { "time" } else { "times" };
        Self {
            stage,
            kind: ViolationKind::ReadonlyWrite,
            detail: format!(
                "write to a read-only path refused, {} {times}: {}{more}",
                writes.count,
                paths.join(", ")
            ),
            syscall: None,
            writes: Some(writes.clone()),
        }
    }

    /// The violation of a stage whose forks the process limit refused `hits` times (one
    /// event, whatever the count); `max_procs` is the limit, when the stage is the run.
    pub fn process_limit(stage: Stage, hits: u64, max_procs: Option<u32>) -> Self {
        let times = if hits == 1 { "fork was" } else { "forks were" };
        let limit = max_procs.map_or_else(
            || "the stage's process limit".to_owned(),
            |n| format!("max_procs {n}"),
        );
        Self {
            stage,
            kind: ViolationKind::ProcessLimit,
            detail: format!("process limit: {hits} {times} refused at {limit}"),
            syscall: None,
            writes: None,
        }
    }

    /// The violation a stage's outcome records, if it was a limit or a forbidden operation.
    pub fn of(stage: Stage, outcome: &Outcome) -> Option<Self> {
        let detail = match outcome {
            Outcome::Exited { .. }
            | Outcome::Signaled { .. }
            | Outcome::CompileError
            | Outcome::DependencyError
            | Outcome::Cancelled => return None,
            Outcome::Violation { detail } => format!("seccomp: {detail}"),
            other => other.to_string(),
        };
        Some(Self {
            stage,
            kind: ViolationKind::of_outcome(outcome.kind())?,
            detail,
            syscall: None,
            writes: None,
        })
    }

    /// A violation recorded before they were structured: `run: seccomp: ptrace`.
    fn from_legacy(text: &str) -> Self {
        let (stage, detail) = match text.split_once(": ") {
            Some(("dependencies", rest)) => (Stage::Dependencies, rest),
            Some(("compile", rest)) => (Stage::Compile, rest),
            Some(("run", rest)) => (Stage::Run, rest),
            _ => (Stage::Run, text),
        };
        let kinds = [
            ("time limit", ViolationKind::TimeLimit),
            ("memory limit", ViolationKind::MemoryLimit),
            ("output limit", ViolationKind::OutputLimit),
            ("file size limit", ViolationKind::FileSizeLimit),
        ];
        let kind = kinds
            .iter()
            .find(|(words, _)| detail.contains(words))
            .map_or(ViolationKind::Violation, |(_, kind)| *kind);
        Self {
            stage,
            kind,
            detail: detail.to_owned(),
            syscall: None,
            writes: None,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Stage::Dependencies => "dependencies",
            Stage::Compile => "compile",
            Stage::Run => "run",
        };
        write!(f, "{stage}: {}", self.detail)
    }
}

/// Reads the object form, and the text form that history databases written before violations
/// were structured still hold.
impl<'de> Deserialize<'de> for Violation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            stage: Stage,
            kind: ViolationKind,
            detail: String,
            #[serde(default)]
            syscall: Option<RefusedCall>,
            #[serde(default)]
            writes: Option<ReadOnlyWrites>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Object(Object),
            Text(String),
        }
        Ok(match Form::deserialize(d)? {
            Form::Object(o) => Self {
                stage: o.stage,
                kind: o.kind,
                detail: o.detail,
                syscall: o.syscall,
                writes: o.writes,
            },
            Form::Text(text) => Self::from_legacy(&text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::{Stream, TimeLimitKind};

    #[test]
    fn kills_of_processes_other_than_the_program_are_one_event_per_call() {
        let call = |count, program| KilledSyscall {
            name: "init_module".into(),
            count,
            samples: Vec::new(),
            program,
        };
        assert_eq!(Violation::seccomp_kill(Stage::Run, &call(1, true)), None);
        let one = Violation::seccomp_kill(Stage::Run, &call(2, true)).expect("one other");
        assert_eq!(
            (one.kind, one.detail.as_str()),
            (
                ViolationKind::Violation,
                "seccomp: 1 process killed for init_module, a forbidden system call"
            )
        );
        let three = Violation::seccomp_kill(Stage::Compile, &call(3, false)).expect("three");
        assert!(
            three.detail.starts_with("seccomp: 3 processes killed"),
            "{}",
            three.detail
        );
    }

    #[test]
    fn limits_and_forbidden_operations_are_violations_and_exits_are_not() {
        assert_eq!(
            Violation::of(Stage::Run, &Outcome::Exited { code: 1 }),
            None
        );
        let v = Violation::of(
            Stage::Compile,
            &Outcome::TimeLimit {
                which: TimeLimitKind::Cpu,
            },
        )
        .expect("a limit");
        assert_eq!(v.kind, ViolationKind::TimeLimit);
        assert_eq!(v.to_string(), "compile: cpu time limit exceeded");
        let v = Violation::of(
            Stage::Run,
            &Outcome::Violation {
                detail: "ptrace".into(),
            },
        )
        .expect("forbidden");
        assert_eq!(
            serde_json::to_value(&v).expect("serializable"),
            serde_json::json!({"stage": "run", "kind": "violation", "detail": "seccomp: ptrace"})
        );
    }

    #[test]
    fn both_the_object_and_the_old_text_form_read_back() {
        let v = Violation::of(
            Stage::Run,
            &Outcome::OutputLimit {
                stream: Stream::Stdout,
            },
        )
        .expect("a limit");
        let json = serde_json::to_string(&v).expect("serializable");
        assert_eq!(serde_json::from_str::<Violation>(&json).expect("parses"), v);
        let old: Violation =
            serde_json::from_str("\"run: output limit exceeded on stdout\"").expect("parses");
        assert_eq!(old, v);
        let old: Violation = serde_json::from_str("\"run: seccomp: ptrace\"").expect("parses");
        assert_eq!(old.kind, ViolationKind::Violation);
        assert_eq!(old.detail, "seccomp: ptrace");
    }

    #[test]
    fn a_refused_call_is_a_denied_syscall_with_its_count_and_severity() {
        let call = DeniedSyscall {
            name: "mount".into(),
            errno: DenyErrno::Eperm,
            severity: DenySeverity::High,
            count: 3,
            samples: vec![[0; 6]],
        };
        let v = Violation::denied_syscall(Stage::Run, &call);
        let json = serde_json::to_value(&v).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({
                "stage": "run",
                "kind": "denied_syscall",
                "detail": "seccomp refused mount (EPERM), 3 times",
                "syscall": {"name": "mount", "errno": "EPERM", "count": 3, "severity": "high"}
            })
        );
        assert_eq!(
            serde_json::from_value::<Violation>(json).expect("parses"),
            v
        );
    }
}
