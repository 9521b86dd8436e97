//! One execution: what is asked ([`ExecutionRequest`]) and what happened ([`ExecutionResult`],
//! whose JSON form is documented in docs/result-schema.md).

use serde::{Serialize, Serializer};
use warden_core::{LimitOverrides, Limits, Outcome, Usage};
use warden_sandbox::Stdin;

use crate::id::ExecutionId;

/// A program's source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name the user gave it (used for detection), if any.
    pub name: Option<String>,
    /// The code.
    pub code: Vec<u8>,
}

/// What to run and how.
#[derive(Debug, Default)]
pub struct ExecutionRequest {
    /// Language id or alias; detected from the source when absent.
    pub language: Option<String>,
    /// The program.
    pub source: Option<SourceFile>,
    /// Arguments passed to the program.
    pub args: Vec<String>,
    /// Standard input.
    pub stdin: Stdin,
    /// Limits the request sets (clamped to the operator's maxima).
    pub limits: LimitOverrides,
}

/// How strongly an execution is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The native sandbox (namespaces, seccomp, cgroups).
    Sandboxed,
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
    /// How the program ended.
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
    /// Resources used.
    pub usage: Usage,
    /// The limits that were enforced.
    pub limits: Limits,
}

fn lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}
