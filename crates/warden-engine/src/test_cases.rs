//! Test cases: a program compiled once and run once per case, each run's output compared with
//! the case's expected output. The verdict is the outcome when the run did not exit 0 (a time
//! or memory limit, a crash), else `accepted` or `wrong_answer` by the comparison rule.

use serde::{Deserialize, Serialize};
use warden_core::{Outcome, OutcomeKind, Usage};

use crate::execution::lossy;

/// One case: the program's stdin and arguments, and what it should print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestCase {
    /// Standard input of this run.
    pub stdin: Vec<u8>,
    /// Arguments of this run (after the request's own).
    pub args: Vec<String>,
    /// The expected stdout; `None` accepts any output of a clean exit.
    pub expected_output: Option<Vec<u8>>,
}

/// How a run's stdout is compared with the expected output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Byte for byte.
    Exact,
    /// Each line right-trimmed, and trailing empty lines ignored (what Judge0 does).
    #[default]
    TrailingWhitespace,
}

impl Comparison {
    /// Whether `actual` matches `expected` under this rule.
    pub fn matches(self, actual: &[u8], expected: &[u8]) -> bool {
        match self {
            Comparison::Exact => actual == expected,
            Comparison::TrailingWhitespace => normalized(actual) == normalized(expected),
        }
    }
}

/// Lines right-trimmed, trailing empty lines dropped.
fn normalized(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii_end())
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Whether the cases of one execution share one sandbox (with the compile stage) or each get a
/// fresh one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxReuse {
    /// A fresh sandbox per run: a case never sees what another left (the default).
    #[default]
    Fresh,
    /// The compile stage and every run in one sandbox, one after another: faster, and the
    /// workspace persists between them (processes do not: each run's are killed at its end).
    Shared,
}

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Exited 0 with the expected output.
    Accepted,
    /// Exited 0 with other output.
    WrongAnswer,
    /// It did not exit 0: the outcome's kind says how (`exited` for a non-zero status).
    #[serde(untagged)]
    Failed(OutcomeKind),
}

impl Verdict {
    /// The verdict of a run that ended with `outcome` and printed `stdout`.
    pub fn of(outcome: &Outcome, stdout: &[u8], case: &TestCase, rule: Comparison) -> Self {
        match (outcome, &case.expected_output) {
            (Outcome::Exited { code: 0 }, None) => Verdict::Accepted,
            (Outcome::Exited { code: 0 }, Some(expected)) if rule.matches(stdout, expected) => {
                Verdict::Accepted
            }
            (Outcome::Exited { code: 0 }, Some(_)) => Verdict::WrongAnswer,
            (other, _) => Verdict::Failed(other.kind()),
        }
    }
}

/// One case's run.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// Accepted, wrong answer, or how the run failed.
    pub verdict: Verdict,
    /// How the run ended.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(expected: &str) -> TestCase {
        TestCase {
            expected_output: Some(expected.as_bytes().to_vec()),
            ..TestCase::default()
        }
    }

    #[test]
    fn trailing_whitespace_is_ignored_only_when_asked() {
        let rule = Comparison::TrailingWhitespace;
        assert!(rule.matches(b"1 2  \n3\n\n\n", b"1 2\n3"));
        assert!(!rule.matches(b"1  2\n", b"1 2\n"), "inner spaces count");
        assert!(!rule.matches(b" 1\n", b"1\n"), "leading spaces count");
        assert!(Comparison::Exact.matches(b"1\n", b"1\n"));
        assert!(!Comparison::Exact.matches(b"1\n", b"1"));
    }

    #[test]
    fn verdicts_follow_the_outcome_then_the_output() {
        let rule = Comparison::default();
        let ok = Outcome::Exited { code: 0 };
        assert_eq!(
            Verdict::of(&ok, b"42\n", &case("42"), rule),
            Verdict::Accepted
        );
        assert_eq!(
            Verdict::of(&ok, b"41\n", &case("42"), rule),
            Verdict::WrongAnswer
        );
        assert_eq!(
            Verdict::of(&ok, b"anything", &TestCase::default(), rule),
            Verdict::Accepted
        );
        assert_eq!(
            Verdict::of(&Outcome::MemoryLimit, b"42\n", &case("42"), rule),
            Verdict::Failed(OutcomeKind::MemoryLimit)
        );
        assert_eq!(
            Verdict::of(&Outcome::Exited { code: 1 }, b"42\n", &case("42"), rule),
            Verdict::Failed(OutcomeKind::Exited)
        );
        let json = serde_json::to_string(&Verdict::Failed(OutcomeKind::TimeLimit)).expect("json");
        assert_eq!(json, "\"time_limit\"");
        assert_eq!(
            serde_json::to_string(&Verdict::WrongAnswer).expect("json"),
            "\"wrong_answer\""
        );
    }
}
