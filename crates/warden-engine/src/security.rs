//! The security section of a result: which mode ran the program and why, what static analysis
//! found, and what the sandbox stopped at run time ([`Violation`], one structured event each).

use serde::{Deserialize, Deserializer, Serialize};
use warden_core::{Finding, Mode, Outcome, OutcomeKind, ThreatLevel};

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

/// One thing the sandbox stopped: a limit hit or a forbidden operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The stage it happened in.
    pub stage: Stage,
    /// What kind of outcome it ended the stage with (`time_limit`, `violation`, ...).
    pub kind: OutcomeKind,
    /// For people: `cpu time limit exceeded`, `seccomp: ptrace`.
    pub detail: String,
}

impl Violation {
    /// The violation a stage's outcome records, if it was a limit or a forbidden operation.
    pub fn of(stage: Stage, outcome: &Outcome) -> Option<Self> {
        let detail = match outcome {
            Outcome::Exited { .. }
            | Outcome::Signaled { .. }
            | Outcome::CompileError
            | Outcome::DependencyError => return None,
            Outcome::Violation { detail } => format!("seccomp: {detail}"),
            other => other.to_string(),
        };
        Some(Self {
            stage,
            kind: outcome.kind(),
            detail,
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
            ("time limit", OutcomeKind::TimeLimit),
            ("memory limit", OutcomeKind::MemoryLimit),
            ("output limit", OutcomeKind::OutputLimit),
            ("file size limit", OutcomeKind::FileSizeLimit),
        ];
        let kind = kinds
            .iter()
            .find(|(words, _)| detail.contains(words))
            .map_or(OutcomeKind::Violation, |(_, kind)| *kind);
        Self {
            stage,
            kind,
            detail: detail.to_owned(),
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
            kind: OutcomeKind,
            detail: String,
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
        assert_eq!(v.kind, OutcomeKind::TimeLimit);
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
        assert_eq!(old.kind, OutcomeKind::Violation);
        assert_eq!(old.detail, "seccomp: ptrace");
    }
}
