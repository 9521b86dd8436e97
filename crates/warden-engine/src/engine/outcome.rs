//! The result of an execution, assembled from what each stage returned: the outcome and its
//! verdict, the violations the sandbox recorded, each test case's result and the output the
//! cases keep together. Pure: runs after the sandboxes have ended, in the engine's process.

use warden_core::{ByteSize, Outcome};
use warden_sandbox::SandboxRun;

use super::{NetworkReport, Prepared};
use crate::error::EngineError;
use crate::execution::{ExecutionResult, StageResult};
use crate::id::ExecutionId;
use crate::security::{Security, Stage, Violation};
use crate::test_cases::{TestCase, TestResult, Verdict};

/// What the results of one request's test cases keep of their output, all cases together:
/// as much as one run may print (its output limit, per stream), and at least 16 MiB, so that
/// thousands of cases each printing up to the limit cannot make one answer thousands of times
/// larger than a run's. Each verdict is taken on the case's whole output before it is cut.
pub(super) struct KeptOutput {
    stdout: u64,
    stderr: u64,
}

impl KeptOutput {
    /// The least the cases of a request share, per stream.
    const FLOOR: ByteSize = ByteSize::mib(16);

    pub(super) fn for_cases(max_output: ByteSize) -> Self {
        let each = max_output.bytes().max(Self::FLOOR.bytes());
        Self {
            stdout: each,
            stderr: each,
        }
    }

    /// Cuts `result`'s output to what is left, marking what was cut.
    pub(super) fn cut(&mut self, result: &mut TestResult) {
        for (left, output, truncated) in [
            (
                &mut self.stdout,
                &mut result.stdout,
                &mut result.stdout_truncated,
            ),
            (
                &mut self.stderr,
                &mut result.stderr,
                &mut result.stderr_truncated,
            ),
        ] {
            let keep = usize::try_from(*left).unwrap_or(usize::MAX);
            if output.len() > keep {
                output.truncate(keep);
                output.shrink_to_fit();
                *truncated = true;
            }
            *left -= output.len() as u64;
        }
    }
}

/// A test case's result from its run.
pub(super) fn test_result(
    run: &SandboxRun,
    case: &TestCase,
    rule: crate::test_cases::Comparison,
) -> TestResult {
    TestResult {
        verdict: Verdict::of(&run.outcome, &run.stdout, case, rule),
        outcome: run.outcome.clone(),
        stdout: run.stdout.clone(),
        stderr: run.stderr.clone(),
        stdout_truncated: run.stdout_truncated,
        stderr_truncated: run.stderr_truncated,
        usage: run.usage,
    }
}

/// What the sandbox stopped in one run of the run stage: its outcome when a limit or the
/// policy ended it, refused and killing system calls, refused forks, read-only writes.
fn run_violations(run: &SandboxRun, max_procs: u32) -> Vec<Violation> {
    Violation::of(Stage::Run, &run.outcome)
        .into_iter()
        .chain(
            run.denied_syscalls
                .iter()
                .map(|call| Violation::denied_syscall(Stage::Run, call)),
        )
        .chain(
            run.seccomp_kills
                .iter()
                .filter_map(|call| Violation::seccomp_kill(Stage::Run, call)),
        )
        .chain(
            (run.process_limit_hits > 0).then(|| {
                Violation::process_limit(Stage::Run, run.process_limit_hits, Some(max_procs))
            }),
        )
        .chain(
            run.readonly_writes
                .as_ref()
                .map(|writes| Violation::readonly_writes(Stage::Run, writes)),
        )
        .collect()
}

/// The result of an execution, built once from what each stage returned (the run stage as the
/// runs of the test cases before the last, and the last): `run` is `None` when
/// the dependency or the compile stage failed.
pub(super) fn finish(
    prepared: Prepared<'_>,
    dependencies: Option<StageResult>,
    compile: Option<StageResult>,
    (earlier, run): (Vec<SandboxRun>, Option<SandboxRun>),
    tests: Vec<TestResult>,
    network: Option<NetworkReport>,
) -> Result<ExecutionResult, EngineError> {
    let install_network = dependencies.as_ref().and_then(|d| d.network.as_ref());
    let denials = (install_network.iter().map(|n| (Stage::Dependencies, *n)))
        .chain(network.iter().map(|n| (Stage::Run, n)))
        .flat_map(|(stage, n)| n.violations().into_iter().map(move |d| (stage, d)))
        .map(|(stage, (kind, detail))| Violation {
            stage,
            kind,
            detail,
            syscall: None,
            writes: None,
        });
    // Each stage's refused system calls: they leave its outcome alone (docs/events.md).
    let refused = [
        (
            Stage::Dependencies,
            dependencies.as_ref().map(|d| &d.denied_syscalls),
        ),
        (Stage::Compile, compile.as_ref().map(|c| &c.denied_syscalls)),
        (Stage::Run, run.as_ref().map(|r| &r.denied_syscalls)),
    ]
    .into_iter()
    .flat_map(|(stage, calls)| calls.into_iter().flatten().map(move |c| (stage, c)))
    .map(|(stage, call)| Violation::denied_syscall(stage, call))
    .collect::<Vec<_>>();
    // Processes other than the program killed for a forbidden call (the program's own kill
    // is its stage's outcome).
    let kills = [
        (
            Stage::Dependencies,
            dependencies.as_ref().map(|d| &d.seccomp_kills),
        ),
        (Stage::Compile, compile.as_ref().map(|c| &c.seccomp_kills)),
        (Stage::Run, run.as_ref().map(|r| &r.seccomp_kills)),
    ]
    .into_iter()
    .flat_map(|(stage, calls)| calls.into_iter().flatten().map(move |c| (stage, c)))
    .filter_map(|(stage, call)| Violation::seccomp_kill(stage, call))
    .collect::<Vec<_>>();
    // Writes to read-only paths, which the kernel refused.
    let readonly = [
        (
            Stage::Dependencies,
            dependencies
                .as_ref()
                .and_then(|d| d.readonly_writes.as_ref()),
        ),
        (
            Stage::Compile,
            compile.as_ref().and_then(|c| c.readonly_writes.as_ref()),
        ),
        (
            Stage::Run,
            run.as_ref().and_then(|r| r.readonly_writes.as_ref()),
        ),
    ]
    .into_iter()
    .filter_map(|(stage, writes)| Some(Violation::readonly_writes(stage, writes?)))
    .collect::<Vec<_>>();
    // Forks refused at the process limit: a fork storm the program may have survived.
    let max_procs = prepared.limits.max_procs;
    let storms = [
        (
            Stage::Dependencies,
            dependencies.as_ref().map(|d| d.process_limit_hits),
        ),
        (
            Stage::Compile,
            compile.as_ref().map(|c| c.process_limit_hits),
        ),
        (Stage::Run, run.as_ref().map(|r| r.process_limit_hits)),
    ]
    .into_iter()
    .filter_map(|(stage, hits)| Some((stage, hits.filter(|h| *h > 0)?)))
    .map(|(stage, hits)| {
        let limit = (stage == Stage::Run).then_some(max_procs);
        Violation::process_limit(stage, hits, limit)
    })
    .collect::<Vec<_>>();
    // The test cases before the last ran in sandboxes of their own: what was stopped there
    // (a forbidden call, a read-only write, a fork storm, a limit) is the execution's too.
    let earlier = earlier
        .iter()
        .flat_map(|run| run_violations(run, max_procs))
        .collect::<Vec<_>>();
    let violations: Vec<Violation> = earlier
        .into_iter()
        .chain(
            [
                dependencies
                    .as_ref()
                    .and_then(|d| Violation::of(Stage::Dependencies, &d.outcome)),
                compile
                    .as_ref()
                    .and_then(|c| Violation::of(Stage::Compile, &c.outcome)),
                run.as_ref()
                    .and_then(|r| Violation::of(Stage::Run, &r.outcome)),
            ]
            .into_iter()
            .flatten(),
        )
        .chain(refused)
        .chain(kills)
        .chain(storms)
        .chain(readonly)
        .chain(denials)
        .collect();
    let security = Security {
        mode: prepared.mode,
        reason: prepared.reason,
        threat_level: prepared.analysis.threat_level,
        findings: prepared.analysis.findings,
        parse_error: prepared.analysis.parse_error,
        violations,
        analysis_time: prepared.analysis_time,
    };
    let never_ran = match &dependencies {
        Some(stage) if !stage.outcome.is_success() => Outcome::DependencyError,
        _ => Outcome::CompileError,
    };
    let run = run.map_or_else(
        || StageResult {
            outcome: never_ran,
            ..StageResult::empty()
        },
        StageResult::from_run,
    );
    Ok(ExecutionResult {
        id: ExecutionId::random()?,
        language: prepared.detection.language.clone(),
        detection: prepared.detection,
        mode: prepared.mode,
        outcome: run.outcome,
        stdout: run.stdout,
        stderr: run.stderr,
        stdout_truncated: run.stdout_truncated,
        stderr_truncated: run.stderr_truncated,
        output_order: run.output_order,
        usage: run.usage,
        samples: run.samples,
        limits: prepared.limits,
        dependencies,
        compile,
        tests,
        security,
        network,
        volumes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug hunt "comp": the test cases of one request kept every case's whole output, and
    /// 2,000 cases printing a megabyte each made a 2 GB answer. All cases together keep what one
    /// run may print (at least 16 MiB) per stream; past it, a case's output is cut and marked.
    #[test]
    fn the_cases_of_a_request_share_one_output_budget() {
        let result = |stdout: usize, stderr: usize| TestResult {
            verdict: Verdict::Accepted,
            outcome: Outcome::Exited { code: 0 },
            stdout: vec![b'x'; stdout],
            stderr: vec![b'e'; stderr],
            stdout_truncated: false,
            stderr_truncated: false,
            usage: warden_core::Usage::default(),
        };
        let mib = 1 << 20;
        let mut kept = KeptOutput::for_cases(ByteSize::mib(1));
        let mut lengths = Vec::new();
        for _ in 0..18 {
            let mut case = result(mib, 10);
            kept.cut(&mut case);
            lengths.push((case.stdout.len(), case.stdout_truncated, case.stderr.len()));
        }
        assert!(
            lengths[..16].iter().all(|&l| l == (mib, false, 10)),
            "{lengths:?}"
        );
        assert_eq!(lengths[16], (0, true, 10), "the budget is spent");
        assert_eq!(lengths[17], (0, true, 10));
        // A run allowed more than the floor: the cases share what it may print.
        let mut kept = KeptOutput::for_cases(ByteSize::mib(40));
        let mut case = result(30 * mib, 0);
        kept.cut(&mut case);
        assert_eq!(case.stdout.len(), 30 * mib);
        let mut case = result(30 * mib, 0);
        kept.cut(&mut case);
        assert_eq!((case.stdout.len(), case.stdout_truncated), (10 * mib, true));
    }
}
