//! An execution its caller cancelled before its result (the client left, a `DELETE`, an MCP
//! `notifications/cancelled`, the server's shutdown deadline, a session stopped under its
//! call): recorded all the same, outcome `cancelled`, with what ran until the cancel and what
//! the sandbox stopped in it (docs/events.md), so that the history, the statistics and the
//! response rule count a caller that leaves before its answers as one that waits for them.
//!
//! The job the cancel ended reports what it ran (`SandboxError::Cancelled`: the init ends the
//! job as for a limit, and reports its refused calls first); the stages that ended before it
//! are in [`Stages`]. Nobody waits for the answer: a server records in the background, so the
//! cancel costs the worker no more than the record's queueing.

use warden_core::Outcome;
use warden_sandbox::SandboxRun;

use super::history::Pending;
use super::outcome::finish;
use super::{Engine, NetworkReport, Prepared, Stages};
use crate::execution::{ExecutionRequest, ExecutionResult, StageResult};

impl Stages {
    /// Puts what the job a cancel ended had run where its stage goes: the compile stage, or a
    /// run after those that ended (a test case's).
    pub(super) fn cancelled(&mut self, ran: SandboxRun) {
        if self.running {
            self.push_run(ran);
        } else {
            self.compile = Some(StageResult::from_run(ran));
        }
    }

    /// Whether a job of the stages ran in a sandbox (a compile stage taken from the cache ran
    /// nothing).
    fn ran(&self) -> bool {
        self.run.is_some() || self.compile.as_ref().is_some_and(|c| !c.cached)
    }
}

impl Engine {
    /// Records an execution a cancel ended, with the dependency stage and the `done` stages as
    /// far as they ran, and returns the record, for the error its caller gets
    /// ([`EngineError::Cancelled`]). An execution none of whose jobs had started in a sandbox
    /// ran nothing and is not recorded (`None`), as one dropped from a server's queue is not.
    /// What the record could not write is logged: there is no answer to carry a warning.
    pub(super) fn record_cancel(
        &self,
        prepared: Prepared<'_>,
        dependencies: Option<StageResult>,
        done: Stages,
        network: Option<NetworkReport>,
        request: &mut ExecutionRequest,
        input: &Pending,
    ) -> Option<Box<ExecutionResult>> {
        let installed = dependencies.as_ref().is_some_and(|d| !d.cached);
        if !installed && !done.ran() {
            return None;
        }
        let Stages {
            compile,
            run,
            tests,
            earlier,
            ..
        } = done;
        let mut result = match finish(
            prepared,
            dependencies,
            compile,
            (earlier, run),
            tests,
            network,
        ) {
            Ok(result) => result,
            Err(e) => {
                tracing::warn!(error = %e, "a cancelled execution could not be recorded");
                return None;
            }
        };
        // The run's own outcome (a limit the cancel came after) stays among the violations.
        result.outcome = Outcome::Cancelled;
        result.volumes = std::mem::take(&mut request.volumes);
        for warning in self.record(&result, input.borrowed()) {
            tracing::warn!(what = ?warning.what, detail = %warning.detail, "cancelled execution");
        }
        tracing::info!(execution = %result.id, "recorded a cancelled execution");
        Some(Box::new(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, stdout: &str) -> SandboxRun {
        SandboxRun {
            outcome,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            output_order: Default::default(),
            usage: Default::default(),
            collected: Vec::new(),
            spooled: None,
            collect_error: None,
            samples: Vec::new(),
            denied_syscalls: Vec::new(),
            seccomp_kills: Vec::new(),
            readonly_writes: None,
            process_limit_hits: 0,
        }
    }

    #[test]
    fn a_job_cancelled_before_the_run_stage_is_the_compile_stages() {
        let mut done = Stages::default();
        done.cancelled(run(Outcome::Cancelled, "compiling"));
        let compile = done.compile.as_ref().expect("the compile stage");
        assert_eq!(compile.outcome, Outcome::Cancelled);
        assert_eq!(compile.stdout, b"compiling");
        assert!(done.run.is_none());
        assert!(done.ran());
    }

    #[test]
    fn a_job_cancelled_in_the_run_stage_follows_the_cases_that_ended() {
        let mut done = Stages {
            running: true,
            ..Stages::default()
        };
        done.push_run(run(Outcome::Exited { code: 0 }, "first"));
        done.cancelled(run(Outcome::Cancelled, "second, cut short"));
        let last = done.run.as_ref().expect("the cancelled run");
        assert_eq!(last.outcome, Outcome::Cancelled);
        assert_eq!(last.stdout, b"second, cut short");
        assert_eq!(done.earlier.len(), 1, "the case before it counts too");
        assert!(
            done.earlier[0].stdout.is_empty(),
            "its output is its test's"
        );
    }

    #[test]
    fn a_compile_stage_taken_from_the_cache_ran_nothing() {
        let done = Stages {
            compile: Some(StageResult::cached()),
            running: true,
            ..Stages::default()
        };
        assert!(!done.ran());
        assert!(!Stages::default().ran());
    }
}
