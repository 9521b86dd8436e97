//! Piston's execute response: each stage's output, `code`, `signal`, `status` and `message` as
//! Piston derives them from isolate's report (`job.js`), times in milliseconds and memory in
//! bytes; warden's exact outcome in an extra `warden` object of each stage.

use serde_json::{json, Value};
use warden_core::{Outcome, Signal, Stream, TimeLimitKind, Usage};
use warden_engine::ExecutionResult;
use warden_sandbox::OutputOrder;

/// One stage's facts, whichever stage it was.
pub(crate) struct StageView<'a> {
    pub(crate) outcome: &'a Outcome,
    pub(crate) stdout: &'a [u8],
    pub(crate) stderr: &'a [u8],
    /// The order the two were read in.
    pub(crate) order: &'a OutputOrder,
    pub(crate) usage: &'a Usage,
}

/// The stages of a result: the compile stage if the language compiles, and the run stage
/// (`None` when compilation failed and the program never ran). Piston has no dependency stage:
/// a failed installation is shown as a failed compile stage.
pub(crate) fn stages(result: &ExecutionResult) -> (Option<StageView<'_>>, Option<StageView<'_>>) {
    let failed_install = result
        .dependencies
        .as_ref()
        .filter(|_| result.outcome == Outcome::DependencyError);
    let compile = failed_install
        .or(result.compile.as_ref())
        .map(|c| StageView {
            outcome: &c.outcome,
            stdout: &c.stdout,
            stderr: &c.stderr,
            order: &c.output_order,
            usage: &c.usage,
        });
    let ran = !matches!(
        result.outcome,
        Outcome::CompileError | Outcome::DependencyError
    );
    let run = ran.then(|| StageView {
        outcome: &result.outcome,
        stdout: &result.stdout,
        stderr: &result.stderr,
        order: &result.output_order,
        usage: &result.usage,
    });
    (compile, run)
}

/// The body of `POST /api/v2/execute`'s answer.
pub(crate) fn render(result: &ExecutionResult, language: &str, version: &str) -> Value {
    let (compile, run) = stages(result);
    let compile = compile.map(|s| stage(&s));
    // Piston: when compilation fails, `run` is set equal to `compile` for older clients.
    let run = run.map(|s| stage(&s)).or_else(|| compile.clone());
    let mut body = json!({ "language": language, "version": version, "run": run });
    if let Some(compile) = compile {
        body["compile"] = compile;
    }
    body["warden"] = json!({ "id": result.id, "outcome": result.outcome });
    body
}

/// One stage's object.
pub(crate) fn stage(view: &StageView<'_>) -> Value {
    let stdout = String::from_utf8_lossy(view.stdout);
    let stderr = String::from_utf8_lossy(view.stderr);
    let output = view.order.interleave(view.stdout, view.stderr);
    let verdict = verdict(view.outcome);
    json!({
        "stdout": stdout,
        "stderr": stderr,
        // Both, in the order they were read (as Piston appends each chunk as it arrives).
        "output": String::from_utf8_lossy(&output),
        "code": verdict.code,
        "signal": verdict.signal,
        "message": verdict.message,
        "status": verdict.status,
        "cpu_time": millis(view.usage.cpu_time),
        "wall_time": millis(view.usage.wall_time),
        "memory": view.usage.peak_memory.bytes(),
        "warden": { "outcome": view.outcome },
    })
}

/// What Piston reports for an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The exit status, `null` when killed.
    pub(crate) code: Option<i32>,
    /// The signal's name, `null` when it exited.
    pub(crate) signal: Option<String>,
    /// isolate's message.
    pub(crate) message: Option<String>,
    /// `RE`, `SG`, `TO`, `OL`, `EL`, or `null` on a clean exit.
    pub(crate) status: Option<&'static str>,
}

/// Piston's vocabulary for warden's outcomes. Piston has no memory or file-size status: both
/// are the kill signal the program died of, as isolate reports them.
pub(crate) fn verdict(outcome: &Outcome) -> Verdict {
    let killed = |status, signal: Signal, message: &str| Verdict {
        code: None,
        signal: Some(signal.name()),
        message: Some(message.to_owned()),
        status: Some(status),
    };
    match outcome {
        Outcome::Exited { code: 0 } => Verdict {
            code: Some(0),
            signal: None,
            message: None,
            status: None,
        },
        Outcome::Exited { code } => Verdict {
            code: Some(*code),
            signal: None,
            message: Some(format!("Exited with error status {code}")),
            status: Some("RE"),
        },
        Outcome::Signaled { signal } => {
            killed("SG", *signal, &format!("Caught fatal signal {}", signal.0))
        }
        Outcome::TimeLimit {
            which: TimeLimitKind::Cpu,
        } => killed("TO", Signal::KILL, "Time limit exceeded"),
        Outcome::TimeLimit {
            which: TimeLimitKind::Wall,
        } => killed("TO", Signal::KILL, "Time limit exceeded (wall clock)"),
        Outcome::OutputLimit {
            stream: Stream::Stdout,
        } => killed("OL", Signal::KILL, "stdout length exceeded"),
        Outcome::OutputLimit {
            stream: Stream::Stderr,
        } => killed("EL", Signal::KILL, "stderr length exceeded"),
        Outcome::MemoryLimit => killed("SG", Signal::KILL, "Memory limit exceeded"),
        Outcome::FileSizeLimit { ended: None } => {
            killed("SG", Signal::XFSZ, "File size limit exceeded")
        }
        // Piston's isolate sees only the program's own end after the refused write.
        Outcome::FileSizeLimit { ended: Some(end) } => verdict(&Outcome::from(*end)),
        Outcome::Violation { detail } => {
            killed("SG", Signal::SYS, &format!("Security violation: {detail}"))
        }
        // Only the top-level outcome says this; the compile stage's own outcome is rendered.
        Outcome::CompileError => Verdict {
            code: Some(1),
            signal: None,
            message: Some("Compilation failed".to_owned()),
            status: Some("RE"),
        },
        Outcome::DependencyError => Verdict {
            code: Some(1),
            signal: None,
            message: Some("Dependency installation failed".to_owned()),
            status: Some("RE"),
        },
        // Only the history's record of a run its caller cancelled says this, never an answer.
        Outcome::Cancelled => killed("SG", Signal::KILL, "Cancelled before its result"),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_pistons_status_and_signal() {
        let v = verdict(&Outcome::Exited { code: 0 });
        assert_eq!((v.code, v.status), (Some(0), None));
        let v = verdict(&Outcome::Exited { code: 3 });
        assert_eq!((v.code, v.status), (Some(3), Some("RE")));
        let v = verdict(&Outcome::Signaled { signal: Signal(11) });
        assert_eq!(v.signal.as_deref(), Some("SIGSEGV"));
        assert_eq!((v.code, v.status), (None, Some("SG")));
        for (outcome, status) in [
            (
                Outcome::TimeLimit {
                    which: TimeLimitKind::Wall,
                },
                "TO",
            ),
            (
                Outcome::OutputLimit {
                    stream: Stream::Stdout,
                },
                "OL",
            ),
            (
                Outcome::OutputLimit {
                    stream: Stream::Stderr,
                },
                "EL",
            ),
        ] {
            let v = verdict(&outcome);
            assert_eq!(v.status, Some(status));
            assert_eq!(v.signal.as_deref(), Some("SIGKILL"), "forced for {status}");
        }
        assert_eq!(
            verdict(&Outcome::MemoryLimit).signal.as_deref(),
            Some("SIGKILL")
        );
    }
}
