//! Judge0's statuses (`app/enumerations/status.rb`), `GET /statuses`, and warden's outcomes in
//! that vocabulary. Judge0 has no memory or output limit status: a memory limit is "Runtime
//! Error (Other)" and an output or file size limit "Runtime Error (SIGXFSZ)" (isolate enforces
//! the output limit as a file size limit); the exact outcome stays in `warden.outcome`.

use axum::Json;
use serde_json::{json, Value};
use warden_core::{Outcome, Signal, TimeLimitKind};

/// A Judge0 status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    InQueue = 1,
    Processing = 2,
    Accepted = 3,
    WrongAnswer = 4,
    TimeLimitExceeded = 5,
    CompilationError = 6,
    Sigsegv = 7,
    Sigxfsz = 8,
    Sigfpe = 9,
    Sigabrt = 10,
    Nzec = 11,
    Other = 12,
    InternalError = 13,
    /// Listed as Judge0 lists it; warden never gives it (no run of warden's ends in an exec
    /// format error that is not the program's own: a program that cannot be exec'd ends as
    /// its launcher reports it).
    ExecFormatError = 14,
}

const ALL: [Status; 14] = [
    Status::InQueue,
    Status::Processing,
    Status::Accepted,
    Status::WrongAnswer,
    Status::TimeLimitExceeded,
    Status::CompilationError,
    Status::Sigsegv,
    Status::Sigxfsz,
    Status::Sigfpe,
    Status::Sigabrt,
    Status::Nzec,
    Status::Other,
    Status::InternalError,
    Status::ExecFormatError,
];

impl Status {
    /// The id.
    pub(crate) fn id(self) -> u8 {
        self as u8
    }

    /// The status with id `id`.
    pub(crate) fn from_id(id: i64) -> Option<Status> {
        ALL.into_iter().find(|s| i64::from(s.id()) == id)
    }

    /// Judge0's description.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Status::InQueue => "In Queue",
            Status::Processing => "Processing",
            Status::Accepted => "Accepted",
            Status::WrongAnswer => "Wrong Answer",
            Status::TimeLimitExceeded => "Time Limit Exceeded",
            Status::CompilationError => "Compilation Error",
            Status::Sigsegv => "Runtime Error (SIGSEGV)",
            Status::Sigxfsz => "Runtime Error (SIGXFSZ)",
            Status::Sigfpe => "Runtime Error (SIGFPE)",
            Status::Sigabrt => "Runtime Error (SIGABRT)",
            Status::Nzec => "Runtime Error (NZEC)",
            Status::Other => "Runtime Error (Other)",
            Status::InternalError => "Internal Error",
            Status::ExecFormatError => "Exec Format Error",
        }
    }

    /// `{id, description}`.
    pub(crate) fn json(self) -> Value {
        json!({ "id": self.id(), "description": self.description() })
    }

    /// The status of a run that ended with `outcome` and printed `stdout`, judged against
    /// `expected` as Judge0 does (each line and the text right-trimmed).
    pub(crate) fn of(outcome: &Outcome, stdout: &[u8], expected: Option<&[u8]>) -> Status {
        match outcome {
            Outcome::Exited { code: 0 } => match expected {
                Some(expected) if stripped(stdout) != stripped(expected) => Status::WrongAnswer,
                _ => Status::Accepted,
            },
            Outcome::Exited { .. } => Status::Nzec,
            // isolate sees only the program's own end: a write refused with EFBIG, which the
            // runtime turned into its error.
            Outcome::FileSizeLimit { ended: Some(end) } => {
                Self::of(&Outcome::from(*end), stdout, expected)
            }
            Outcome::Signaled { signal } => match signal.0 {
                11 => Status::Sigsegv,
                25 => Status::Sigxfsz,
                8 => Status::Sigfpe,
                6 => Status::Sigabrt,
                _ => Status::Other,
            },
            Outcome::TimeLimit { .. } => Status::TimeLimitExceeded,
            Outcome::OutputLimit { .. } | Outcome::FileSizeLimit { ended: None } => Status::Sigxfsz,
            Outcome::MemoryLimit | Outcome::Violation { .. } => Status::Other,
            // Judge0 has no dependency stage: like a compile stage, it failed before the
            // program ran, and its output is `compile_output`.
            Outcome::CompileError | Outcome::DependencyError => Status::CompilationError,
            // Only the history's record of a run its caller cancelled says this, never an
            // answer: the program was killed where it was.
            Outcome::Cancelled => Status::Other,
        }
    }
}

/// The signal Judge0 reports as `exit_signal` for an outcome (limits are enforced by a kill).
pub(crate) fn exit_signal(outcome: &Outcome) -> Option<i32> {
    match outcome {
        Outcome::Signaled { signal } => Some(signal.0),
        Outcome::TimeLimit { .. }
        | Outcome::MemoryLimit
        | Outcome::OutputLimit { .. }
        | Outcome::Cancelled => Some(Signal::KILL.0),
        Outcome::FileSizeLimit { ended: None } => Some(Signal::XFSZ.0),
        Outcome::FileSizeLimit { ended: Some(end) } => exit_signal(&Outcome::from(*end)),
        Outcome::Violation { .. } => Some(Signal::SYS.0),
        Outcome::Exited { .. } | Outcome::CompileError | Outcome::DependencyError => None,
    }
}

/// isolate's message for an outcome, as Judge0 passes it on.
pub(crate) fn message(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Exited { code: 0 } | Outcome::CompileError | Outcome::DependencyError => None,
        Outcome::Exited { code } => Some(format!("Exited with error status {code}")),
        Outcome::Signaled { signal } => Some(format!("Caught fatal signal {}", signal.0)),
        // isolate's words (as the Piston facade's, piston/response.rs), not warden's.
        Outcome::TimeLimit {
            which: TimeLimitKind::Cpu,
        } => Some("Time limit exceeded".to_owned()),
        Outcome::TimeLimit {
            which: TimeLimitKind::Wall,
        } => Some("Time limit exceeded (wall clock)".to_owned()),
        Outcome::FileSizeLimit { ended: Some(end) } => message(&Outcome::from(*end)),
        other => Some(capitalized(&other.to_string())),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `GET /statuses`.
pub(crate) async fn list() -> Json<Vec<Value>> {
    Json(ALL.iter().map(|s| s.json()).collect())
}

/// Output as Judge0 compares it (`isolate_job.rb`'s `strip`:
/// `text.split("\n").collect(&:rstrip).join("\n").rstrip`): each line and the whole
/// right-stripped of what Ruby's `String#rstrip` strips, which is ASCII white space, vertical
/// tab and NUL included (Rust's `trim_ascii_end` keeps those two).
fn stripped(text: &[u8]) -> Vec<&[u8]> {
    let rstrip = |line: &[u8]| -> usize {
        line.iter()
            .rposition(|b| !matches!(b, b'\0' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b' '))
            .map_or(0, |last| last + 1)
    };
    let text = &text[..rstrip(text)];
    text.split(|b| *b == b'\n')
        .map(|line| &line[..rstrip(line)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Stream;

    #[test]
    fn outcomes_map_to_judge0_statuses() {
        let ok = Outcome::Exited { code: 0 };
        assert_eq!(Status::of(&ok, b"42 \n\n", Some(b"42")), Status::Accepted);
        assert_eq!(Status::of(&ok, b"41\n", Some(b"42")), Status::WrongAnswer);
        assert_eq!(Status::of(&ok, b"anything", None), Status::Accepted);
        // Hunt compat 3: Ruby's rstrip also strips a trailing NUL and vertical tab, which
        // were a Wrong Answer.
        for stdout in [
            &b"42\x0b\n"[..],
            b"42\0\n",
            b"42\r\n\x0c\n\t \n",
            b"42\x0b\0",
        ] {
            assert_eq!(
                Status::of(&ok, stdout, Some(b"42\0")),
                Status::Accepted,
                "{stdout:?}"
            );
        }
        let lines = Status::of(&ok, b"1 \x0b\n2\0\n", Some(b"1\n2"));
        assert_eq!(lines, Status::Accepted);
        for (stdout, expected) in [
            (&b"1\n\n2"[..], &b"1\n2"[..]),
            (b"\x0b42", b"42"),
            (b"4 2", b"42"),
        ] {
            assert_eq!(
                Status::of(&ok, stdout, Some(expected)),
                Status::WrongAnswer,
                "{stdout:?}"
            );
        }
        let cases = [
            (Outcome::Exited { code: 1 }, 11),
            (Outcome::Signaled { signal: Signal(11) }, 7),
            (Outcome::Signaled { signal: Signal(25) }, 8),
            (Outcome::Signaled { signal: Signal(8) }, 9),
            (Outcome::Signaled { signal: Signal(6) }, 10),
            (Outcome::Signaled { signal: Signal(9) }, 12),
            (
                Outcome::TimeLimit {
                    which: TimeLimitKind::Cpu,
                },
                5,
            ),
            (Outcome::MemoryLimit, 12),
            (
                Outcome::OutputLimit {
                    stream: Stream::Stdout,
                },
                8,
            ),
            (Outcome::CompileError, 6),
            (Outcome::DependencyError, 6),
        ];
        for (outcome, id) in cases {
            assert_eq!(Status::of(&outcome, b"", None).id(), id, "{outcome}");
        }
        assert_eq!(
            message(&Outcome::MemoryLimit).as_deref(),
            Some("Memory limit exceeded")
        );
        assert_eq!(exit_signal(&Outcome::MemoryLimit), Some(9));
    }

    /// Hunt compat (j0) 4: time limits said warden's `Cpu time limit exceeded` and `Wall time
    /// limit exceeded`; Judge0 passes isolate's words on.
    #[test]
    fn time_limits_say_isolates_message() {
        for (which, said) in [
            (TimeLimitKind::Cpu, "Time limit exceeded"),
            (TimeLimitKind::Wall, "Time limit exceeded (wall clock)"),
        ] {
            let outcome = Outcome::TimeLimit { which };
            assert_eq!(message(&outcome).as_deref(), Some(said));
        }
    }
}
