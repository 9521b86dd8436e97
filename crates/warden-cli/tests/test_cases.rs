//! Test cases through the engine (issue 8: compile once, run many): verdicts, the comparison
//! rule, stopping at the first failure, and sandboxes shared by the compile stage and every
//! run or fresh for each, on the native backend. Needs root (CI runs as root).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{our_cgroups, World};
use warden_core::{LimitOverrides, Outcome, OutcomeKind};
use warden_engine::{
    Comparison, Engine, ExecutionRequest, SandboxReuse, SourceFile, TestCase, Verdict,
};

fn engine(world: &World) -> Engine {
    Engine::new(
        world
            .settings()
            .engine_config(PathBuf::from(env!("CARGO_BIN_EXE_warden"))),
    )
    .expect("engine")
}

fn case(stdin: &str, expected: &str) -> TestCase {
    TestCase {
        stdin: stdin.as_bytes().to_vec(),
        args: Vec::new(),
        expected_output: Some(expected.as_bytes().to_vec()),
    }
}

fn request(language: &str, code: &str, tests: Vec<TestCase>) -> ExecutionRequest {
    ExecutionRequest {
        language: Some(language.to_owned()),
        sources: vec![SourceFile {
            name: None,
            code: code.as_bytes().to_vec(),
            executable: false,
        }],
        tests,
        ..ExecutionRequest::default()
    }
}

const DOUBLER: &str =
    "n = int(input())\nif n < 0:\n    while True: pass\nprint(n * 2 if n != 7 else 0)\n";

#[test]
fn each_case_gets_a_verdict_in_fresh_and_shared_sandboxes() {
    let world = World::new();
    let engine = engine(&world);
    for reuse in [SandboxReuse::Fresh, SandboxReuse::Shared] {
        let mut req = request(
            "python",
            DOUBLER,
            vec![
                case("2\n", "4\n"),
                case("7\n", "14\n"),
                case("-1\n", ""),
                case("5", "10  \n\n"),
            ],
        );
        req.reuse = reuse;
        req.limits = LimitOverrides {
            cpu_time: Some(Duration::from_millis(500)),
            ..LimitOverrides::default()
        };
        let result = engine.execute(req).expect("executed").result;
        let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Accepted,
                Verdict::WrongAnswer,
                Verdict::Failed(OutcomeKind::TimeLimit),
                Verdict::Accepted,
            ],
            "{reuse:?}"
        );
        assert_eq!(result.tests[1].stdout, b"0\n");
        assert_eq!(
            result.outcome,
            Outcome::Exited { code: 0 },
            "the last case's"
        );
    }
}

#[test]
fn fresh_sandboxes_end_while_the_next_runs_and_none_outlives_the_execution() {
    // Each case's sandbox is let go when its run ends and destroyed while the next case runs
    // (or, for the last, while the history is written): each case still sees a new one, and
    // every one is gone when `execute` returns, whether it succeeded or not.
    let world = World::new();
    let engine = engine(&world);
    let code = "import os\nprint(os.path.exists('/tmp/mark'))\nopen('/tmp/mark', 'w').close()\n";
    let cases = (0..5).map(|_| case("", "False\n")).collect();
    let mut req = request("python", code, cases);
    req.reuse = SandboxReuse::Fresh;
    let result = engine.execute(req).expect("executed").result;
    assert!(
        result.tests.iter().all(|t| t.verdict == Verdict::Accepted),
        "{:?}",
        result.tests
    );
    assert_eq!(our_cgroups(), 0, "every sandbox is removed");
    let failing = request("python", "raise SystemExit(3)\n", vec![case("", "")]);
    let result = engine.execute(failing).expect("executed").result;
    assert_eq!(result.outcome, Outcome::Exited { code: 3 });
    assert_eq!(our_cgroups(), 0, "every sandbox is removed");
}

#[test]
fn exact_comparison_and_stop_on_failure() {
    let world = World::new();
    let engine = engine(&world);
    let mut req = request(
        "python",
        DOUBLER,
        vec![case("5", "10"), case("1", "2\n"), case("2", "4\n")],
    );
    req.comparison = Comparison::Exact;
    req.stop_on_failure = true;
    let result = engine.execute(req).expect("executed").result;
    let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::WrongAnswer],
        "stopped after the first failure"
    );
}

#[test]
fn a_compiled_program_is_compiled_once_and_run_per_case() {
    let world = World::new();
    let engine = engine(&world);
    let code = "#include <stdio.h>\nint main(void){int n; if(scanf(\"%d\",&n)!=1) return 2; printf(\"%d\\n\", n*n); return 0;}\n";
    for reuse in [SandboxReuse::Shared, SandboxReuse::Fresh] {
        let mut req = request(
            "c",
            code,
            vec![case("3", "9"), case("4", "16"), case("x", "")],
        );
        req.reuse = reuse;
        let result = engine.execute(req).expect("executed").result;
        let compile = result.compile.as_ref().expect("a compile stage");
        assert_eq!(compile.outcome, Outcome::Exited { code: 0 }, "{reuse:?}");
        let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Accepted,
                Verdict::Accepted,
                Verdict::Failed(OutcomeKind::Exited)
            ],
            "{reuse:?}"
        );
    }
}

/// Bug hunt: a signal sent between the compile stage and the run (an interactive client's kill
/// as the run is announced) went to the compile stage's sandbox, already let go, and was lost:
/// the program ran to its end. It now waits for the run's sandbox, as a signal sent before
/// the first stage does.
#[test]
fn a_signal_sent_between_the_stages_reaches_the_run() {
    use warden_core::{Signal, Stream};
    use warden_engine::{Cancellation, Interactive};
    let world = World::new();
    let engine = engine(&world);
    let signals = Cancellation::new();
    let mut req = request(
        "c",
        // The program outlasts the signal's way to it: one that ended at once could finish
        // before a loaded machine's watch read its start and delivered the signal.
        "#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { sleep(30); puts(\"ran to its end\"); return 0; }\n",
        Vec::new(),
    );
    req.reuse = SandboxReuse::Fresh;
    req.cancel = Some(signals.clone());
    let between = signals.clone();
    req.interactive = Some(Interactive {
        output: Box::new(|_: Stream, _: &[u8]| true),
        on_denial: None,
        on_prepared: None,
        on_run: Some(Box::new(move |compile| {
            assert!(compile.is_some(), "C compiles first");
            between.signal(Signal(libc_sigkill()));
        })),
    });
    let result = engine.execute(req).expect("executed").result;
    assert_eq!(
        result.outcome,
        Outcome::Signaled {
            signal: Signal(libc_sigkill())
        },
        "{:?}",
        String::from_utf8_lossy(&result.stdout)
    );
    assert!(result.stdout.is_empty(), "the program ran");
    assert_eq!(our_cgroups(), 0, "every sandbox is removed");
}

/// SIGKILL's number.
fn libc_sigkill() -> i32 {
    9
}

/// Bug hunt: what the sandbox stopped in a case before the last (a write to a read-only path,
/// a forbidden call, a time limit) was dropped: only the last case's run made events, so a
/// caller could probe without limit behind one clean last case (and Judge0's
/// `number_of_runs` the same). Every case's run counts now, in fresh and shared sandboxes.
#[test]
fn what_the_sandbox_stopped_in_any_case_is_a_violation_of_the_execution() {
    let world = World::new();
    let engine = engine(&world);
    let probe =
        "import os, sys\nif input() == 'bad':\n    try:\n        open('/etc/passwd', 'w')\n    \
                 except OSError:\n        pass\n    while True:\n        pass\nprint('ok')\n";
    for reuse in [SandboxReuse::Fresh, SandboxReuse::Shared] {
        let mut req = request(
            "python",
            probe,
            vec![case("bad\n", "ok\n"), case("clean\n", "ok\n")],
        );
        req.reuse = reuse;
        req.limits = LimitOverrides {
            cpu_time: Some(Duration::from_millis(300)),
            ..LimitOverrides::default()
        };
        let result = engine.execute(req).expect("executed").result;
        assert_eq!(
            result.outcome,
            Outcome::Exited { code: 0 },
            "the last case's"
        );
        let kinds: Vec<String> = result
            .security
            .violations
            .iter()
            .map(|v| v.kind.to_string())
            .collect();
        assert!(
            kinds.iter().any(|k| k == "readonly_write"),
            "{reuse:?}: {kinds:?}"
        );
        assert!(
            kinds.iter().any(|k| k == "time_limit"),
            "{reuse:?}: {kinds:?}"
        );
    }
}

/// Bug hunt "comp": the cases of one request kept all their output, so that 2,000 cases each
/// printing a megabyte made a 2 GB answer. Together they keep at most 16 MiB of each stream
/// here (the run's 1 MiB output limit is below that floor): the 17th case's output is cut to
/// what was left and marked, the 18th keeps nothing, and every verdict is still taken on the
/// whole output.
#[test]
fn the_cases_of_one_request_keep_at_most_one_budget_of_output() {
    let world = World::new();
    let engine = engine(&world);
    let printed = 1_000_000;
    let expected = "x".repeat(printed);
    let code = format!("import sys\nsys.stdout.write('x' * {printed})\n");
    let mut req = request(
        "python",
        &code,
        (0..18).map(|_| case("", &expected)).collect(),
    );
    req.reuse = SandboxReuse::Shared;
    let result = engine.execute(req).expect("executed").result;
    let kept: Vec<(usize, bool)> = result
        .tests
        .iter()
        .map(|t| (t.stdout.len(), t.stdout_truncated))
        .collect();
    let budget = 16 << 20;
    let mut want = vec![(printed, false); 16];
    want.push((budget - 16 * printed, true));
    want.push((0, true));
    assert_eq!(kept, want);
    assert!(
        result.tests.iter().all(|t| t.verdict == Verdict::Accepted),
        "each verdict on the whole output"
    );
}
