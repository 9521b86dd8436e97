//! A submission as Judge0 shows it: the `fields` asked for (a default set, `*`, or a list;
//! unknown names refused with Judge0's 400), its text attributes base64-encoded when
//! `base64_encoded=true`, and Judge0's units (`time` in seconds as a decimal string, `memory` in
//! kilobytes). The extra `warden` attribute (the exact outcome) is in the default set and may be
//! named, but `*` leaves it out: the `judge0` SDK asks for `*` and fails on an attribute its
//! model lacks.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{json, Map, Value};
use warden_core::{ByteSize, Limits, Outcome, Usage};
use warden_engine::{ExecutionResult, TestResult, Verdict};

use super::statuses::{exit_signal, message, Status};
use super::store::{Attributes, Progress, Record};
use super::Judge0Error;

/// `compile_output` when the compile stage ran out of time, as Judge0 words it.
const COMPILE_TIME_LIMIT: &str = "Compilation time limit exceeded.";

/// Every attribute of `*` (Judge0's documented set plus `language`, `language_id`,
/// `status_id`, which its code also shows).
const ALL: [&str; 35] = [
    "source_code",
    "language_id",
    "language",
    "stdin",
    "expected_output",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "exit_code",
    "exit_signal",
    "status",
    "status_id",
    "created_at",
    "finished_at",
    "token",
    "time",
    "wall_time",
    "memory",
    "compiler_options",
    "command_line_arguments",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "redirect_stderr_to_stdout",
    "enable_network",
    "number_of_runs",
    "additional_files",
    "callback_url",
];

/// Judge0's default fields, and warden's outcome.
const DEFAULT: [&str; 9] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
    "warden",
];

/// The attributes whose text is base64-encoded on request.
const TEXT: [&str; 7] = [
    "source_code",
    "stdin",
    "expected_output",
    "stdout",
    "stderr",
    "compile_output",
    "message",
];

/// Which attributes to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields(Vec<String>);

impl Fields {
    /// The `fields` query parameter: absent for the default set, `*` for all, else a
    /// comma-separated list; a list that names nothing (`,`) is the default set too, as
    /// Judge0 reads it (`fields.presence || default_fields`).
    pub(crate) fn parse(param: Option<&str>) -> Result<Self, Judge0Error> {
        let names: Vec<String> = match param.map(str::trim) {
            None | Some("") => Vec::new(),
            Some("*") => return Ok(Self(ALL.map(str::to_owned).to_vec())),
            Some(list) => list
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect(),
        };
        if names.is_empty() {
            return Ok(Self(DEFAULT.map(str::to_owned).to_vec()));
        }
        let unknown: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|f| !ALL.contains(f) && *f != "warden" && *f != "*")
            .collect();
        if !unknown.is_empty() {
            return Err(Judge0Error::bad_request(format!(
                "invalid fields: [{}]",
                unknown.join(", ")
            )));
        }
        // `*` anywhere in the list is every field, as Judge0 reads it; `warden` may be added.
        if names.iter().any(|f| f == "*") {
            let mut all: Vec<String> = ALL.map(str::to_owned).to_vec();
            if names.iter().any(|f| f == "warden") {
                all.push("warden".to_owned());
            }
            return Ok(Self(all));
        }
        Ok(Self(names))
    }

    /// The default set Judge0 `PUT`s to a callback.
    pub(crate) fn callback() -> Self {
        Self(DEFAULT.map(str::to_owned).to_vec())
    }
}

/// Judge0's message when a text attribute is not UTF-8 and base64 was not asked for.
pub(crate) const NOT_UTF8: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// The `fields` of a submission's attributes, or `Err` when one is not UTF-8 and `base64` is
/// off.
pub(crate) fn render(full: &Attributes, fields: &Fields, base64: bool) -> Result<Value, ()> {
    let mut shown = Map::new();
    for name in &fields.0 {
        let value = full.get(name).cloned().unwrap_or(Value::Null);
        let value = match (TEXT.contains(&name.as_str()), value) {
            (true, Value::String(encoded)) if !base64 => text(&encoded)?,
            (_, other) => other,
        };
        shown.insert(name.clone(), value);
    }
    Ok(Value::Object(shown))
}

/// Text kept as base64 (until the encoding is chosen), as UTF-8.
fn text(encoded: &str) -> Result<Value, ()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| ())?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| ())
}

/// Bytes as a text attribute is kept: base64.
pub(crate) fn text_value(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Every attribute of a submission as it stands (Judge0's `*` and `warden`), its text as
/// base64: what the store keeps and [`render`] shows.
pub(crate) fn attributes(record: &Record) -> Attributes {
    let input = &record.input;
    let mut a = input.echo.clone();
    // What Judge0's `set_defaults` fills in for a flag not sent, as `/config_info` says.
    for (key, default) in [
        ("number_of_runs", json!(1)),
        ("cpu_extra_time", json!(0.0)),
        ("redirect_stderr_to_stdout", json!(false)),
        ("enable_network", json!(false)),
        ("enable_per_process_and_thread_time_limit", json!(false)),
        ("enable_per_process_and_thread_memory_limit", json!(false)),
    ] {
        unsent(&mut a, key, default);
    }
    a.insert("token".into(), json!(record.token));
    a.insert("source_code".into(), text_value(&input.source_code));
    a.insert("language_id".into(), json!(input.language_id));
    a.insert(
        "language".into(),
        json!({ "id": input.language_id, "name": input.language_name }),
    );
    a.insert(
        "stdin".into(),
        input.stdin.as_deref().map_or(Value::Null, text_value),
    );
    let expected = input.expected_output.as_deref();
    a.insert(
        "expected_output".into(),
        expected.map_or(Value::Null, text_value),
    );
    a.insert("created_at".into(), json!(timestamp(record.created_at)));
    a.insert(
        "finished_at".into(),
        json!(record.finished_at.map(timestamp)),
    );
    let status = match &record.progress {
        Progress::Queued => Status::InQueue,
        Progress::Processing => Status::Processing,
        Progress::Failed(why) => {
            a.insert("message".into(), text_value(why.as_bytes()));
            Status::InternalError
        }
        Progress::Refused(why) => {
            a.insert("message".into(), text_value(why.as_bytes()));
            a.insert("compile_output".into(), text_value(why.as_bytes()));
            Status::CompilationError
        }
        Progress::Finished(result) => finished(&mut a, result, expected, input.cpu_time_limit),
    };
    // Until a run says which limits it had, those it will have.
    let limits = match &record.progress {
        Progress::Finished(result) => Some(&result.limits),
        _ => input.planned.as_ref(),
    };
    if let Some(limits) = limits {
        unsent_limits(&mut a, limits);
    }
    a.insert("status".into(), status.json());
    a.insert("status_id".into(), json!(status.id()));
    a
}

/// Sets `key` to `value` unless the submission sent it.
fn unsent(a: &mut Map<String, Value>, key: &str, value: Value) {
    match a.get(key) {
        None | Some(Value::Null) => {
            a.insert(key.to_owned(), value);
        }
        Some(_) => {}
    }
}

/// The limits not sent, in Judge0's units: the language's default, or the operator's.
fn unsent_limits(a: &mut Map<String, Value>, limits: &Limits) {
    let kb = |size: ByteSize| size.bytes() / 1024;
    for (key, value) in [
        ("cpu_time_limit", json!(limits.cpu_time.as_secs_f64())),
        ("wall_time_limit", json!(limits.wall_time.as_secs_f64())),
        ("memory_limit", json!(kb(limits.memory))),
        ("stack_limit", json!(kb(limits.stack_size))),
        ("max_processes_and_or_threads", json!(limits.max_procs)),
        ("max_file_size", json!(kb(limits.max_file_size))),
    ] {
        unsent(a, key, value);
    }
}

fn finished(
    a: &mut Map<String, Value>,
    result: &ExecutionResult,
    expected: Option<&[u8]>,
    cpu_time_limit: Option<Duration>,
) -> Status {
    let run = shown(result, expected, cpu_time_limit);
    let status = run.status;
    // Judge0 reads each output file and keeps `nil if empty?`.
    let output = |bytes: &[u8]| {
        if bytes.is_empty() {
            Value::Null
        } else {
            text_value(bytes)
        }
    };
    a.insert("stdout".into(), output(run.stdout));
    a.insert("stderr".into(), output(run.stderr));
    // A failed dependency installation stands where a failed compile would (statuses.rs).
    let failed_install = result
        .dependencies
        .as_ref()
        .filter(|_| result.outcome == Outcome::DependencyError);
    let compile_output = match (failed_install, &result.compile) {
        // Judge0's text for a compile its time limit stopped, in place of the compiler's
        // output (isolate_job.rb: `if metadata[:status] == "TO"`).
        (None, Some(c)) if matches!(c.outcome, Outcome::TimeLimit { .. }) => {
            Some(COMPILE_TIME_LIMIT.as_bytes().to_vec())
        }
        (stage, compile) => stage
            .or(compile.as_ref())
            .map(|c| [&c.stdout[..], &c.stderr[..]].concat()),
    };
    a.insert(
        "compile_output".into(),
        compile_output.as_deref().map_or(Value::Null, output),
    );
    let message = message(run.outcome);
    a.insert(
        "message".into(),
        message
            .as_deref()
            .map_or(Value::Null, |m| text_value(m.as_bytes())),
    );
    // Judge0's `metadata[:exitcode].try(:to_i) || 0`: a run isolate killed (a signal, a
    // limit) has no exit code in its meta file, and shows 0; one whose write failed at the
    // file size limit and then exited (a runtime that ignores SIGXFSZ) shows its own.
    let code = match run.outcome {
        Outcome::Exited { code }
        | Outcome::FileSizeLimit {
            ended: Some(warden_core::ProgramEnd::Exited { code }),
        } => *code,
        _ => 0,
    };
    a.insert("exit_code".into(), json!(code));
    a.insert("exit_signal".into(), json!(exit_signal(run.outcome)));
    a.insert("time".into(), json!(seconds(run.usage.cpu_time)));
    a.insert("wall_time".into(), json!(seconds(run.usage.wall_time)));
    a.insert("memory".into(), json!(run.usage.peak_memory.bytes() / 1024));
    a.insert(
        "warden".into(),
        json!({ "id": result.id, "outcome": run.outcome, "runs": result.tests.len().max(1) }),
    );
    if status == Status::CompilationError {
        // Nothing ran: Judge0 leaves what a run would have measured or printed null.
        for field in [
            "stdout",
            "stderr",
            "message",
            "exit_code",
            "exit_signal",
            "time",
            "wall_time",
            "memory",
        ] {
            a.insert(field.into(), Value::Null);
        }
    }
    status
}

/// The run a submission shows, and its status.
#[derive(Debug)]
struct Shown<'a> {
    status: Status,
    outcome: &'a Outcome,
    stdout: &'a [u8],
    stderr: &'a [u8],
    /// Its usage, or with `number_of_runs` the average of the runs up to it.
    usage: Usage,
}

/// The run Judge0 shows. With `number_of_runs` (the runs are test cases), Judge0 stops at the
/// first run that is not Accepted and shows it, `time` and `memory` averaged over the runs
/// made (isolate_job.rb: `break if submission.status != Status.ac`); the engine stopped there
/// too (`stop_on_failure`, submission.rs), save where only Judge0's rules fail a run that
/// the engine accepted (past `cpu_time_limit` within `cpu_extra_time`), and then the runs
/// after it are passed over.
fn shown<'a>(
    result: &'a ExecutionResult,
    expected: Option<&[u8]>,
    cpu_time_limit: Option<Duration>,
) -> Shown<'a> {
    // With `redirect_stderr_to_stdout` the sandbox gave the program one stream for both, so
    // stdout holds them interleaved and stderr is empty.
    let judged = |outcome: &Outcome, stdout: &[u8], usage: &Usage| {
        let status = Status::of(outcome, stdout, expected);
        // Past the limit asked for, within its extra time: killed or not, too slow.
        let ran = status != Status::CompilationError;
        if cpu_time_limit.is_some_and(|limit| ran && usage.cpu_time > limit) {
            Status::TimeLimitExceeded
        } else {
            status
        }
    };
    // A run's output kept whole, or cut at the budget the runs share after the engine had
    // compared it whole (regression hunt: the 17th run of a correct program printing 1 MB was
    // judged on its cut output, a Wrong Answer): then the engine's verdict stands.
    let case = |r: &TestResult| {
        if !(r.stdout_truncated && r.verdict == Verdict::Accepted) {
            judged(&r.outcome, &r.stdout, &r.usage)
        } else if cpu_time_limit.is_some_and(|limit| r.usage.cpu_time > limit) {
            Status::TimeLimitExceeded
        } else {
            Status::Accepted
        }
    };
    let runs = &result.tests;
    let last = runs
        .iter()
        .position(|r| case(r) != Status::Accepted)
        .unwrap_or(runs.len().saturating_sub(1));
    let usage = if runs.is_empty() {
        result.usage
    } else {
        averaged(&runs[..=last])
    };
    match runs.get(last).filter(|_| last + 1 < runs.len()) {
        Some(run) => Shown {
            status: case(run),
            outcome: &run.outcome,
            stdout: &run.stdout,
            stderr: &run.stderr,
            usage,
        },
        // The last run is the execution's own, its output whole (a test case's may be cut at
        // the budget the cases share).
        None => Shown {
            status: judged(&result.outcome, &result.stdout, &result.usage),
            outcome: &result.outcome,
            stdout: &result.stdout,
            stderr: &result.stderr,
            usage,
        },
    }
}

/// The average usage of `runs`, as Judge0 shows that of its `number_of_runs`.
fn averaged(runs: &[TestResult]) -> Usage {
    let n = u32::try_from(runs.len()).unwrap_or(u32::MAX).max(1);
    let memory: u64 = runs.iter().map(|r| r.usage.peak_memory.bytes()).sum();
    Usage {
        cpu_time: runs.iter().map(|r| r.usage.cpu_time).sum::<Duration>() / n,
        wall_time: runs.iter().map(|r| r.usage.wall_time).sum::<Duration>() / n,
        peak_memory: ByteSize(memory / u64::from(n)),
    }
}

/// Seconds as Judge0 shows them: a decimal string with milliseconds (`"0.012"`).
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `2024-05-01T12:00:00.123Z`: Rails' format, which the SDK parses with
/// `%Y-%m-%dT%H:%M:%S.%fZ`.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::detect::DetectedBy;
    use warden_core::{LanguageId, Mode, Signal, ThreatLevel, TimeLimitKind};
    use warden_engine::{ExecutionId, LanguageDetection, Security, StageResult};

    /// A C program that did not compile: its compile stage ended as `compile`, printing
    /// `diagnostics`.
    fn compile_error(compile: Outcome, diagnostics: &str) -> ExecutionResult {
        let language = LanguageId::new("c").expect("a language id");
        let mut stage = StageResult::cached();
        stage.cached = false;
        stage.outcome = compile;
        stage.stderr = diagnostics.as_bytes().to_vec();
        ExecutionResult {
            id: ExecutionId::random().expect("random bytes"),
            detection: LanguageDetection {
                language: language.clone(),
                confidence: 1.0,
                by: DetectedBy::Explicit,
                runner_up: None,
            },
            language,
            mode: Mode::Sandboxed,
            outcome: Outcome::CompileError,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            output_order: Default::default(),
            usage: Usage::default(),
            samples: Vec::new(),
            limits: Limits::default(),
            dependencies: None,
            compile: Some(stage),
            tests: Vec::new(),
            security: Security {
                mode: Mode::Sandboxed,
                reason: "requested".to_owned(),
                threat_level: ThreatLevel::None,
                findings: Vec::new(),
                parse_error: None,
                violations: Vec::new(),
                analysis_time: Duration::ZERO,
            },
            network: None,
            volumes: Vec::new(),
        }
    }

    /// A run that ended as `outcome`, printing `stdout` and `stderr`, using `cpu_ms` of cpu
    /// time and as many kilobytes of memory.
    fn case(outcome: Outcome, stdout: &str, stderr: &str, cpu_ms: u64) -> TestResult {
        TestResult {
            verdict: match outcome {
                Outcome::Exited { code: 0 } => warden_engine::Verdict::Accepted,
                ref other => warden_engine::Verdict::Failed(other.kind()),
            },
            outcome,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            usage: Usage {
                cpu_time: Duration::from_millis(cpu_ms),
                wall_time: Duration::from_millis(2 * cpu_ms),
                peak_memory: ByteSize(cpu_ms * 1024),
            },
        }
    }

    /// An execution whose runs were `runs`: with more than one asked for (`tests`), each a
    /// test case, the last also the execution's own run, as the engine gives it.
    fn executed(runs: Vec<TestResult>, tests: bool) -> ExecutionResult {
        let mut result = compile_error(Outcome::Exited { code: 0 }, "");
        let last = runs.last().expect("a run").clone();
        result.outcome = last.outcome;
        result.stdout = last.stdout;
        result.stderr = last.stderr;
        result.usage = last.usage;
        result.tests = if tests { runs } else { Vec::new() };
        result
    }

    fn shown_text(a: &Map<String, Value>, name: &str) -> Value {
        match &a[name] {
            Value::Null => Value::Null,
            encoded => text(encoded.as_str().expect("base64")).expect("UTF-8"),
        }
    }

    /// Hunt compat (j0) 3: an empty stdout or stderr was `""` where Judge0 keeps `nil if
    /// empty?`, and a run killed by a signal or a limit had `exit_code` null where Judge0
    /// shows `metadata[:exitcode].try(:to_i) || 0`.
    #[test]
    fn empty_output_is_null_and_a_killed_run_exits_0() {
        let cpu = TimeLimitKind::Cpu;
        for (outcome, code) in [
            (Outcome::Exited { code: 0 }, 0),
            (Outcome::Exited { code: 3 }, 3),
            (Outcome::Signaled { signal: Signal(11) }, 0),
            (Outcome::TimeLimit { which: cpu }, 0),
            (Outcome::MemoryLimit, 0),
        ] {
            let result = executed(vec![case(outcome.clone(), "", "", 1)], false);
            let mut a = Map::new();
            finished(&mut a, &result, None, None);
            assert_eq!(a["exit_code"], json!(code), "{outcome}");
            assert_eq!((&a["stdout"], &a["stderr"]), (&Value::Null, &Value::Null));
            for base64 in [true, false] {
                let fields = Fields::parse(Some("stdout,stderr")).expect("known");
                let shown = render(&a, &fields, base64);
                assert_eq!(shown, Ok(json!({"stdout": null, "stderr": null})));
            }
        }
        let result = executed(vec![case(Outcome::Exited { code: 0 }, "1\n", "", 1)], false);
        let mut a = Map::new();
        finished(&mut a, &result, None, None);
        assert_eq!(shown_text(&a, "stdout"), json!("1\n"));
        assert_eq!(a["stderr"], Value::Null);
        // Nothing ran: null, as before.
        let result = compile_error(Outcome::Exited { code: 1 }, "");
        let mut a = Map::new();
        finished(&mut a, &result, None, None);
        assert_eq!(a["exit_code"], Value::Null);
        assert_eq!(a["compile_output"], Value::Null);
    }

    /// Regression hunt: the runs share one output budget, so a middle run of a correct program
    /// printing much kept its output cut; it was judged on that cut output, a Wrong Answer the
    /// engine (which compared it whole) had accepted.
    #[test]
    fn a_run_whose_kept_output_was_cut_keeps_the_engines_verdict() {
        let expected = b"zzzz\n";
        let whole = case(Outcome::Exited { code: 0 }, "zzzz\n", "", 10);
        let cut = TestResult {
            stdout: b"zz".to_vec(),
            stdout_truncated: true,
            ..whole.clone()
        };
        let result = executed(vec![whole.clone(), cut, whole], true);
        let mut a = Map::new();
        assert_eq!(
            finished(&mut a, &result, Some(expected), None),
            Status::Accepted
        );
        assert_eq!(a["warden"]["runs"], json!(3));
    }

    /// Hunt compat (j0) 2: with `number_of_runs` every run ran and the last was shown, so a
    /// failing run before a passing one was hidden. Judge0 stops at the first run that is not
    /// Accepted and shows it, averaging the runs made.
    #[test]
    fn the_first_run_that_is_not_accepted_is_shown() {
        let ok = |cpu_ms| case(Outcome::Exited { code: 0 }, "0\n", "", cpu_ms);
        let nzec = case(Outcome::Exited { code: 1 }, "1\n", "boom\n", 40);
        // The engine stopped at the failing run (`stop_on_failure`).
        let result = executed(vec![ok(10), ok(10), nzec.clone()], true);
        let mut a = Map::new();
        assert_eq!(finished(&mut a, &result, None, None), Status::Nzec);
        assert_eq!(shown_text(&a, "stdout"), json!("1\n"));
        assert_eq!(shown_text(&a, "stderr"), json!("boom\n"));
        assert_eq!(a["exit_code"], json!(1));
        assert_eq!((&a["time"], &a["memory"]), (&json!("0.020"), &json!(20)));
        assert_eq!(a["warden"]["runs"], json!(3));
        assert_eq!(a["warden"]["outcome"]["kind"], json!("exited"));
        // It failed the first time: one run.
        let result = executed(vec![nzec], true);
        let mut a = Map::new();
        assert_eq!(finished(&mut a, &result, None, None), Status::Nzec);
        assert_eq!(
            (&a["time"], &a["warden"]["runs"]),
            (&json!("0.040"), &json!(1))
        );
        // Every run accepted: the last shown, all averaged.
        let result = executed(vec![ok(10), ok(30)], true);
        let mut a = Map::new();
        assert_eq!(finished(&mut a, &result, None, None), Status::Accepted);
        assert_eq!(a["time"], json!("0.020"));
        assert_eq!(a["warden"]["runs"], json!(2));
        // Only Judge0's rule fails the second (over `cpu_time_limit`, within its extra
        // time): the engine went on, the second is shown, the third passed over.
        let result = executed(vec![ok(10), ok(50), ok(10)], true);
        let mut a = Map::new();
        let limit = Some(Duration::from_millis(20));
        assert_eq!(
            finished(&mut a, &result, None, limit),
            Status::TimeLimitExceeded
        );
        assert_eq!(a["time"], json!("0.030"));
        assert_eq!(a["warden"]["runs"], json!(3));
        // A wrong answer stops the runs too.
        let wrong = case(Outcome::Exited { code: 0 }, "41\n", "", 10);
        let result = executed(vec![ok(10), wrong], true);
        let mut a = Map::new();
        let status = finished(&mut a, &result, Some(b"0"), None);
        assert_eq!(status, Status::WrongAnswer);
        assert_eq!(shown_text(&a, "stdout"), json!("41\n"));
    }

    /// Hunt comp 5: a compile stopped by its time limit (cc1 blocked on `#include
    /// "/proc/self/fd/1"`) answered 6 Compilation Error with `compile_output` null; Judge0 says
    /// "Compilation time limit exceeded." there, whatever the compiler printed.
    #[test]
    fn a_compile_out_of_time_says_so_in_judge0s_words() {
        for which in [TimeLimitKind::Wall, TimeLimitKind::Cpu] {
            for printed in ["", "main.c:1: warning: ...\n"] {
                let result = compile_error(Outcome::TimeLimit { which }, printed);
                let mut a = Map::new();
                let status = finished(&mut a, &result, None, None);
                assert_eq!(status, Status::CompilationError);
                assert_eq!(
                    text(a["compile_output"].as_str().expect("text")),
                    Ok(json!("Compilation time limit exceeded."))
                );
            }
        }
        let result = compile_error(Outcome::Exited { code: 1 }, "main.c:1: error: ...\n");
        let mut a = Map::new();
        finished(&mut a, &result, None, None);
        assert_eq!(
            text(a["compile_output"].as_str().expect("text")),
            Ok(json!("main.c:1: error: ...\n"))
        );
    }

    #[test]
    fn fields_are_checked_with_judge0s_message() {
        assert!(Fields::parse(None)
            .expect("default")
            .0
            .contains(&"warden".to_owned()));
        assert!(!Fields::parse(Some("*"))
            .expect("all")
            .0
            .contains(&"warden".to_owned()));
        assert_eq!(
            Fields::parse(Some("stdout,warden")).expect("known").0,
            ["stdout", "warden"]
        );
        let e = Fields::parse(Some("stdout,foo,bar")).expect_err("unknown");
        assert_eq!(e.message, "invalid fields: [foo, bar]");
        // Hunt compat 5: separators alone answered `{}`.
        let default = Fields::parse(None).expect("default").0;
        for param in [",", " , ,", ",,,"] {
            assert_eq!(Fields::parse(Some(param)).expect("default").0, default);
        }
    }

    #[test]
    fn text_is_base64_or_utf8_or_refused() {
        let hello = text_value(b"hi");
        assert_eq!(hello, json!("aGk="));
        let full: Attributes = [
            ("stdout".to_owned(), hello),
            ("stderr".into(), text_value(&[255])),
        ]
        .into_iter()
        .collect();
        let stdout = Fields::parse(Some("stdout")).expect("known");
        assert_eq!(render(&full, &stdout, true), Ok(json!({"stdout": "aGk="})));
        assert_eq!(render(&full, &stdout, false), Ok(json!({"stdout": "hi"})));
        let stderr = Fields::parse(Some("stderr")).expect("known");
        assert_eq!(render(&full, &stderr, false), Err(()));
        assert_eq!(render(&full, &stderr, true), Ok(json!({"stderr": "/w=="})));
    }

    /// Bug hunt: `*` with other names was refused as an invalid field; Judge0 reads it as
    /// every field wherever it stands.
    #[test]
    fn a_star_anywhere_is_every_field() {
        let all = Fields::parse(Some("*")).expect("all");
        let star_and_more = Fields::parse(Some("stdout,*")).expect("all");
        assert_eq!(star_and_more.0, all.0);
        let with_warden = Fields::parse(Some("*,warden")).expect("all and warden");
        assert_eq!(with_warden.0.len(), all.0.len() + 1);
        assert_eq!(with_warden.0.last().map(String::as_str), Some("warden"));
        assert!(Fields::parse(Some("*,nope")).is_err());
    }

    #[test]
    fn timestamps_are_in_rails_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_564_800_123);
        assert_eq!(timestamp(t), "2024-05-01T12:00:00.123Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
