//! One execution: what is asked ([`ExecutionRequest`]) and what happened ([`ExecutionResult`],
//! whose JSON form is documented in docs/result-schema.md).

use serde::{Serialize, Serializer};
use warden_core::{
    Finding, LimitOverrides, Limits, Mode, ModeRequest, Outcome, ThreatLevel, Usage,
};
use warden_sandbox::{SandboxRun, Stdin};

use crate::id::ExecutionId;

/// A program's source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name the user gave it (a relative path for the files after the entry), if any.
    pub name: Option<String>,
    /// The code.
    pub code: Vec<u8>,
}

/// What to run and how.
#[derive(Debug, Default)]
pub struct ExecutionRequest {
    /// Language id or alias; detected from the entry file when absent.
    pub language: Option<String>,
    /// The program's files, entry first.
    pub sources: Vec<SourceFile>,
    /// Arguments passed to the program.
    pub args: Vec<String>,
    /// Standard input.
    pub stdin: Stdin,
    /// Limits the request sets (clamped to the operator's maxima).
    pub limits: LimitOverrides,
    /// The isolation mode asked for.
    pub mode: ModeRequest,
}

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
    pub violations: Vec<String>,
}

impl Security {
    /// Records a stage's outcome when it was a limit or a forbidden operation.
    pub(crate) fn note(&mut self, stage: &str, outcome: &Outcome) {
        let what = match outcome {
            Outcome::Exited { .. } | Outcome::Signaled { .. } | Outcome::CompileError => return,
            Outcome::Violation { detail } => format!("seccomp: {detail}"),
            other => other.to_string(),
        };
        self.violations.push(format!("{stage}: {what}"));
    }
}

/// One stage's result (the compile stage; the run stage's fields sit at the top level).
#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    /// How the stage ended.
    pub outcome: Outcome,
    /// Its standard output.
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// Its standard error.
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// Resources used.
    pub usage: Usage,
    /// Whether the artifact came from the compile cache (no compiler ran).
    pub cached: bool,
}

impl StageResult {
    pub(crate) fn from_run(run: SandboxRun) -> Self {
        Self {
            outcome: run.outcome,
            stdout: run.stdout,
            stderr: run.stderr,
            stdout_truncated: run.stdout_truncated,
            stderr_truncated: run.stderr_truncated,
            usage: run.usage,
            cached: false,
        }
    }

    pub(crate) fn cached() -> Self {
        Self {
            outcome: Outcome::Exited { code: 0 },
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            usage: Usage::default(),
            cached: true,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionResult {
    /// The execution's id.
    pub id: ExecutionId,
    /// The language id.
    pub language: String,
    /// The isolation mode used.
    pub mode: Mode,
    /// How the program ended (`compile_error` when it never ran).
    pub outcome: Outcome,
    /// Standard output (invalid UTF-8 replaced in JSON).
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// Standard error (invalid UTF-8 replaced in JSON).
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// Resources used by the run stage.
    pub usage: Usage,
    /// The limits enforced on the run stage.
    pub limits: Limits,
    /// The compile stage, for compiled languages.
    pub compile: Option<StageResult>,
    /// The mode, why, the analysis and the run-time violations.
    pub security: Security,
}

fn lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}
