//! The history store on real SQLite files in a temporary directory: recording and reading back,
//! retention, filters, statistics on known data, migration from an older schema, corruption,
//! and many writers at once, and the engine answering from the history its settings name; the
//! traffic log in `history/traffic.rs`, the bounds in bytes in `history/budget.rs`. Needs
//! nothing but a writable temporary directory (each test's own, from the shared
//! `support::World`).

#[path = "history/budget.rs"]
mod budget;
#[path = "../../warden-cli/tests/support.rs"]
mod support;
#[path = "history/traffic.rs"]
mod traffic;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::World;
use warden_core::detect::DetectedBy;
use warden_core::{
    ByteSize, Finding, LanguageId, Limits, Mode, Outcome, OutcomeKind, ThreatLevel, TimeLimitKind,
    Usage,
};
use warden_engine::history::{HistoryError, Prune};
use warden_engine::history::{ToolCallRecord, ToolCallStatus};
use warden_engine::{
    Engine, ExecutionId, ExecutionResult, HistoryFilter, HistoryStore, LanguageDetection,
    RecordInput, Retention, Security, Stage, StageResult, Violation,
};

fn result(language: &str, outcome: Outcome, wall_ms: u64) -> ExecutionResult {
    let language = LanguageId::new(language).expect("a language id");
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
        outcome,
        stdout: b"hello\n".to_vec(),
        stderr: b"warn\n".to_vec(),
        stdout_truncated: false,
        stderr_truncated: true,
        output_order: Default::default(),
        usage: Usage {
            cpu_time: Duration::from_millis(wall_ms / 2),
            wall_time: Duration::from_millis(wall_ms),
            peak_memory: ByteSize::mib(8),
        },
        samples: Vec::new(),
        limits: Limits::default(),
        dependencies: None,
        compile: None,
        tests: Vec::new(),
        security: Security {
            mode: Mode::Sandboxed,
            reason: "auto: threat level low".to_owned(),
            threat_level: ThreatLevel::Low,
            findings: vec![Finding {
                rule: "python.environ".to_owned(),
                severity: ThreatLevel::Low,
                line: 1,
                excerpt: "os.environ".to_owned(),
                explanation: "reads the environment".to_owned(),
            }],
            parse_error: None,
            violations: Vec::new(),
            analysis_time: std::time::Duration::ZERO,
        },
        network: None,
        volumes: Vec::new(),
    }
}

fn input(code: &[u8]) -> RecordInput<'_> {
    RecordInput {
        code,
        stdin_bytes: Some(3),
        api: "v1",
        token: Some("grader"),
    }
}

fn exited(code: i32) -> Outcome {
    Outcome::Exited { code }
}

/// Records one bash execution, metadata only.
fn record_one(store: &HistoryStore) {
    store
        .record(
            &result("bash", exited(0), 1),
            input(b"x"),
            Retention::Metadata,
        )
        .expect("recorded");
}

fn open(world: &World) -> HistoryStore {
    HistoryStore::open(world.db()).expect("history opens")
}

fn violation(stage: Stage, outcome: &Outcome) -> Violation {
    Violation::of(stage, outcome).expect("a violation")
}

/// Issue 10: a failed dependency installation is recorded with the installer's output, and
/// counted apart from programs that ran.
#[test]
fn a_dependency_error_reads_back_with_the_installers_output() {
    let dir = World::new();
    let store = open(&dir);
    let mut r = result("python", Outcome::DependencyError, 0);
    r.dependencies = Some(StageResult {
        outcome: exited(1),
        stdout: Vec::new(),
        stderr: b"ERROR: No matching distribution found for nope\n".to_vec(),
        stdout_truncated: false,
        stderr_truncated: false,
        output_order: Default::default(),
        usage: Usage::default(),
        cached: false,
        network: None,
        samples: Vec::new(),
        denied_syscalls: Vec::new(),
        seccomp_kills: Vec::new(),
        process_limit_hits: 0,
        readonly_writes: None,
    });
    store
        .record(&r, input(b"import nope"), Retention::Full)
        .expect("recorded");
    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.outcome, Outcome::DependencyError);
    let stage = e.dependencies.as_ref().expect("dependency stage recorded");
    assert_eq!(stage.outcome, exited(1));
    assert_eq!(
        stage.stderr.as_deref(),
        Some("ERROR: No matching distribution found for nope\n")
    );
    let listed = store.list(&HistoryFilter::default()).expect("listed");
    assert_eq!(listed[0].dependencies, e.dependencies);
}

/// An execution cancelled before its result is recorded with the outcome `cancelled` and what
/// the sandbox stopped until then: its events are the caller's, as any execution's, and its
/// cut-short usage stays out of the percentiles and averages (docs/events.md).
#[test]
fn a_cancelled_execution_reads_back_with_its_events() {
    let dir = World::new();
    let store = open(&dir);
    let mut r = result("python", Outcome::Cancelled, 5000);
    r.security.violations = vec![Violation::denied_syscall(
        Stage::Run,
        &warden_sandbox::DeniedSyscall {
            name: "mount".to_owned(),
            errno: warden_core::seccomp_policy::DenyErrno::Eperm,
            severity: warden_core::seccomp_policy::DenySeverity::High,
            count: 40,
            samples: Vec::new(),
        },
    )];
    store
        .record(&r, input(b"import ctypes"), Retention::Code)
        .expect("recorded");
    store
        .record(
            &result("python", exited(0), 10),
            input(b"x"),
            Retention::Code,
        )
        .expect("recorded");
    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.outcome, Outcome::Cancelled);
    assert_eq!(
        e.security.as_ref().map(|s| s.violations.clone()),
        Some(r.security.violations.clone())
    );
    let cancelled = HistoryFilter {
        outcome: Some(OutcomeKind::Cancelled),
        ..HistoryFilter::default()
    };
    let listed = store.list(&cancelled).expect("listed");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, r.id);
    let since = SystemTime::now() - Duration::from_secs(60);
    assert_eq!(
        store.caller_events(Some("grader"), since).expect("counted"),
        1
    );
    let stats = store.stats(None).expect("stats");
    assert_eq!(stats.by_outcome["cancelled"], 1);
    assert_eq!(stats.security_violations, 1);
    assert_eq!(
        stats.wall_time_p95_ms,
        Some(10),
        "a cancelled run's time is not a program's"
    );
}

#[test]
fn an_execution_reads_back_as_recorded() {
    let dir = World::new();
    let store = open(&dir);
    let mut r = result("cpp", exited(3), 40);
    r.compile = Some(StageResult {
        outcome: exited(0),
        stdout: Vec::new(),
        stderr: b"note: something\n".to_vec(),
        stdout_truncated: false,
        stderr_truncated: false,
        output_order: Default::default(),
        usage: Usage::default(),
        cached: false,
        network: None,
        samples: Vec::new(),
        denied_syscalls: Vec::new(),
        seccomp_kills: Vec::new(),
        process_limit_hits: 0,
        readonly_writes: None,
    });
    store
        .record(&r, input(b"int main() {}"), Retention::Full)
        .expect("recorded");

    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.id, r.id);
    assert_eq!(e.language.as_str(), "cpp");
    assert_eq!(e.mode, Mode::Sandboxed);
    assert_eq!(e.threat_level, Some(ThreatLevel::Low));
    assert_eq!(e.outcome, exited(3));
    assert_eq!(e.usage, r.usage);
    assert_eq!(e.limits, Some(Limits::default()));
    assert_eq!((e.code_bytes, e.stdin_bytes), (13, Some(3)));
    assert_eq!((e.stdout_bytes, e.stderr_bytes), (6, 5));
    assert!(!e.stdout_truncated && e.stderr_truncated);
    assert_eq!(e.api.as_deref(), Some("v1"));
    assert_eq!(e.token.as_deref(), Some("grader"));
    let compile = e.compile.as_ref().expect("compile stage recorded");
    assert_eq!(compile.stderr.as_deref(), Some("note: something\n"));
    let security = e.security.as_ref().expect("security recorded");
    assert_eq!(security.reason, "auto: threat level low");
    assert_eq!(security.findings, r.security.findings);
    let age = SystemTime::now()
        .duration_since(e.finished_at)
        .expect("in the past");
    assert!(age < Duration::from_secs(60), "finished just now: {age:?}");
    assert!(e.finished_at_utc().ends_with('Z'));

    let json = serde_json::to_value(&e).expect("serializable");
    assert_eq!(json["outcome"]["kind"], "exited");
    assert_eq!(json["code"], "int main() {}");
    assert_eq!(json["stdout"], "hello\n");
}

#[test]
fn retention_decides_what_is_kept_of_code_and_output() {
    let dir = World::new();
    let store = open(&dir);
    let code = b"import os; print(os.environ)";
    let mut kept = Vec::new();
    for retention in [Retention::Metadata, Retention::Code, Retention::Full] {
        let r = result("python", exited(0), 10);
        store.record(&r, input(code), retention).expect("recorded");
        let e = store.get(r.id.as_str()).expect("read").expect("present");
        assert_eq!(e.retention, retention);
        assert_eq!(e.code_bytes, code.len() as u64, "sizes are always kept");
        assert_eq!(e.stdout_bytes, 6, "sizes are always kept");
        let excerpt = &e.security.as_ref().expect("security").findings[0].excerpt;
        kept.push((
            e.code.is_some(),
            e.stdout.is_some() && e.stderr.is_some(),
            !excerpt.is_empty(),
        ));
        if let Some(c) = &e.code {
            assert_eq!(c, code);
        }
        let json = serde_json::to_value(&e).expect("serializable");
        assert_eq!(json.get("code").is_some(), e.code.is_some());
    }
    assert_eq!(
        kept,
        [
            (false, false, false),
            (true, false, true),
            (true, true, true)
        ],
        "(code, output, finding excerpt) kept for metadata, code, full"
    );
}

#[test]
fn listing_filters_and_orders_newest_first() {
    let dir = World::new();
    let store = open(&dir);
    let runs = [
        ("python", exited(0)),
        ("bash", exited(1)),
        (
            "python",
            Outcome::TimeLimit {
                which: TimeLimitKind::Wall,
            },
        ),
        ("go", Outcome::CompileError),
    ];
    let mut ids = Vec::new();
    for (language, outcome) in runs {
        let r = result(language, outcome, 5);
        store
            .record(&r, input(b"x"), Retention::Metadata)
            .expect("recorded");
        ids.push(r.id);
        // Distinct milliseconds, so that the order is the order of recording.
        std::thread::sleep(Duration::from_millis(3));
    }
    let list = |filter: HistoryFilter| -> Vec<_> {
        let entries = store.list(&filter).expect("listed");
        assert!(
            entries
                .iter()
                .all(|e| e.code.is_none() && e.stdout.is_none()),
            "lists carry no payload"
        );
        entries.into_iter().map(|e| e.id).collect()
    };
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(list(HistoryFilter::default()), newest_first);
    let python = HistoryFilter {
        language: Some(LanguageId::new("python").expect("id")),
        ..Default::default()
    };
    assert_eq!(list(python), [ids[2].clone(), ids[0].clone()]);
    let time_limit = HistoryFilter {
        outcome: Some(OutcomeKind::TimeLimit),
        ..Default::default()
    };
    assert_eq!(list(time_limit), [ids[2].clone()]);
    let isolated = HistoryFilter {
        mode: Some(Mode::Isolated),
        ..Default::default()
    };
    assert!(list(isolated).is_empty());
    let future = HistoryFilter {
        since: Some(SystemTime::now() + Duration::from_secs(3600)),
        ..Default::default()
    };
    assert!(list(future).is_empty());
    let last_hour = HistoryFilter {
        since: SystemTime::now().checked_sub(Duration::from_secs(3600)),
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(list(last_hour), newest_first[..2]);
}

#[test]
fn a_listing_pages_with_before_and_ties_break_by_id() {
    let dir = World::new();
    let store = open(&dir);
    // No pause between records: several finish in the same millisecond, and the id orders
    // them.
    for _ in 0..7 {
        record_one(&store);
    }
    let all: Vec<_> = store
        .list(&HistoryFilter::default())
        .expect("listed")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 7);
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list(&HistoryFilter {
                limit: Some(3),
                before: before.clone(),
                ..Default::default()
            })
            .expect("a page");
        let Some(last) = page.last() else { break };
        // A unique prefix in capitals names the execution as well as its id.
        before = Some(last.id.as_str()[..12].to_ascii_uppercase());
        paged.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(paged, all, "every execution once, in the listing's order");

    let gone = "0123456789abcdef0123456789abcdee";
    let unknown = store.list(&HistoryFilter {
        before: Some(gone.to_owned()),
        ..Default::default()
    });
    assert!(
        matches!(&unknown, Err(HistoryError::UnknownId(id)) if id == gone),
        "{unknown:?}"
    );
}

#[test]
fn ids_resolve_from_a_unique_prefix() {
    let dir = World::new();
    let store = open(&dir);
    let r = result("bash", exited(0), 1);
    store
        .record(&r, input(b"true"), Retention::Code)
        .expect("recorded");
    let prefix = &r.id.as_str()[..8];
    let found = store.get(prefix).expect("read").expect("present");
    assert_eq!(found.id, r.id);
    assert!(store
        .get("0123456789abcdef0123456789abcdee")
        .expect("read")
        .is_none());
    assert!(matches!(store.get("xyz%"), Err(HistoryError::InvalidId(_))));
    assert!(matches!(store.get(""), Err(HistoryError::InvalidId(_))));

    // Seventeen ids: two share their first hex digit, which then names neither.
    let mut firsts = vec![r.id.as_str()[..1].to_owned()];
    for _ in 0..16 {
        let other = result("bash", exited(0), 1);
        store
            .record(&other, input(b"true"), Retention::Code)
            .expect("recorded");
        firsts.push(other.id.as_str()[..1].to_owned());
    }
    let shared = firsts
        .iter()
        .find(|d| firsts.iter().filter(|e| e == d).count() > 1)
        .expect("pigeonhole");
    assert!(matches!(
        store.get(shared),
        Err(HistoryError::AmbiguousId(_))
    ));
}

#[test]
fn statistics_on_known_data() {
    let dir = World::new();
    let store = open(&dir);
    // python: wall 1..=20 ms; bash: one violation; go: a compile error (wall 0, left out).
    for wall in 1..=20 {
        let r = result("python", exited(0), wall);
        store
            .record(&r, input(b"x"), Retention::Metadata)
            .expect("recorded");
    }
    let mut violation = result(
        "bash",
        Outcome::Violation {
            detail: "ptrace".to_owned(),
        },
        100,
    );
    violation.security.mode = Mode::Isolated;
    violation.security.threat_level = ThreatLevel::High;
    violation.security.violations = vec![crate::violation(
        Stage::Run,
        &Outcome::Violation {
            detail: "ptrace".into(),
        },
    )];
    store
        .record(&violation, input(b"x"), Retention::Metadata)
        .expect("recorded");
    let mut limit = result("bash", Outcome::MemoryLimit, 100);
    limit.security.violations = vec![crate::violation(Stage::Run, &Outcome::MemoryLimit)];
    store
        .record(&limit, input(b"x"), Retention::Metadata)
        .expect("recorded");
    store
        .record(
            &result("go", Outcome::CompileError, 0),
            input(b"x"),
            Retention::Metadata,
        )
        .expect("recorded");

    let s = store.stats(None).expect("stats");
    assert_eq!(s.total, 23);
    assert_eq!(s.by_language["python"], 20);
    assert_eq!(s.by_language["bash"], 2);
    assert_eq!(s.by_language["go"], 1);
    assert_eq!(s.by_outcome["exited"], 20);
    assert_eq!(s.by_outcome["violation"], 1);
    assert_eq!(s.by_outcome["compile_error"], 1);
    assert_eq!(s.by_mode["sandboxed"], 22);
    assert_eq!(s.by_mode["isolated"], 1);
    assert_eq!(s.by_threat_level["low"], 22);
    assert_eq!(s.by_threat_level["high"], 1);
    assert_eq!(
        (s.violations, s.violation_outcomes, s.security_violations),
        (2, 1, 2)
    );
    // 22 programs ran: 1..=20, 100, 100. Nearest rank: p50 = 11th = 11, p95 = 21st = 100.
    assert_eq!(s.wall_time_p50_ms, Some(11));
    assert_eq!(s.wall_time_p95_ms, Some(100));
    let python = &s.per_language["python"];
    assert_eq!(python.runs, 20);
    assert!((python.avg_wall_time_ms - 10.5).abs() < 1e-9);
    // cpu = wall / 2, rounded down: 0, 1, 1, 2, 2, ..., 10 adds up to 100.
    assert!((python.avg_cpu_time_ms - 5.0).abs() < 1e-9, "{python:?}");
    assert!((python.avg_peak_memory_bytes - 8.0 * 1024.0 * 1024.0).abs() < 1e-3);
    assert!(!s.per_language.contains_key("go"), "go never ran");

    let future = store
        .stats(Some(SystemTime::now() + Duration::from_secs(60)))
        .expect("stats");
    assert_eq!(future.total, 0);
    assert_eq!(future.wall_time_p50_ms, None);
    assert!(future.per_language.is_empty());
}

#[test]
fn pruning_deletes_by_age_and_by_count() {
    let dir = World::new();
    let store = open(&dir);
    for _ in 0..5 {
        record_one(&store);
    }
    let keep_three = Prune {
        keep_last: Some(3),
        ..Default::default()
    };
    let ids = |store: &HistoryStore| -> Vec<String> {
        let listed = store.list(&HistoryFilter::default()).expect("listed");
        listed.iter().map(|e| e.id.to_string()).collect()
    };
    let newest_three = ids(&store)[..3].to_vec();
    assert_eq!(store.prune(&keep_three).expect("pruned"), 2);
    assert_eq!(ids(&store), newest_three, "the newest stay");
    assert_eq!(store.prune(&keep_three).expect("pruned"), 0, "nothing over");
    record_one(&store);
    assert_eq!(
        store.prune(&keep_three).expect("pruned"),
        1,
        "the count follows inserts and deletes"
    );
    let ancient = Prune {
        older_than: SystemTime::now().checked_sub(Duration::from_secs(3600)),
        ..Default::default()
    };
    assert_eq!(store.prune(&ancient).expect("pruned"), 0);
    let everything = Prune {
        older_than: Some(SystemTime::now() + Duration::from_secs(1)),
        ..Default::default()
    };
    assert_eq!(store.prune(&everything).expect("pruned"), 3);
    assert_eq!(store.stats(None).expect("stats").total, 0);
}

/// Bug hunt: `[history] max_count` deleted the oldest executions whoever asked for them: with
/// `max_count = 20`, one token's 25 runs deleted another token's 5 from its history. Past the
/// bound, the oldest executions of the token with the most go first now, so that a token's
/// flood deletes its own; executions without a token (the CLI's) are one more such caller.
#[test]
fn pruning_by_count_deletes_from_the_caller_with_the_most() {
    let dir = World::new();
    let store = open(&dir);
    let record_as = |token: Option<&str>| {
        let input = RecordInput {
            token,
            ..input(b"x")
        };
        store
            .record(&result("bash", exited(0), 1), input, Retention::Metadata)
            .expect("recorded");
    };
    let count_of = |token: Option<&str>| -> usize {
        let listed = store.list(&HistoryFilter::default()).expect("listed");
        listed
            .iter()
            .filter(|e| e.token.as_deref() == token)
            .count()
    };
    let keep = |n| Prune {
        keep_last: Some(n),
        ..Default::default()
    };
    for _ in 0..5 {
        record_as(Some("bob"));
    }
    record_as(None);
    for _ in 0..25 {
        record_as(Some("alice"));
        store.prune(&keep(20)).expect("pruned");
    }
    assert_eq!(count_of(Some("bob")), 5, "bob's executions stay");
    assert_eq!(count_of(None), 1, "the CLI's stays");
    assert_eq!(count_of(Some("alice")), 14);
    let newest = store.list(&HistoryFilter::default()).expect("listed")[0]
        .id
        .clone();
    // Lowered below what bob holds: alice comes down to bob's count, then both go together.
    assert_eq!(store.prune(&keep(7)).expect("pruned"), 13);
    assert_eq!(
        (
            count_of(Some("alice")),
            count_of(Some("bob")),
            count_of(None)
        ),
        (3, 3, 1)
    );
    assert_eq!(
        store.list(&HistoryFilter::default()).expect("listed")[0].id,
        newest,
        "each caller's newest stay"
    );
    assert_eq!(store.prune(&keep(7)).expect("pruned"), 0, "nothing over");
}

/// Bug hunt "auth": the `[response]` rule counts a caller's security events in its recorded
/// executions, and pruning by count deleted the caller's oldest whatever they held: a caller
/// that ran clean programs between its floods deleted its own events and was never refused.
/// Its executions without an event go first now.
#[test]
fn pruning_by_count_keeps_a_callers_security_events_to_the_last() {
    let dir = World::new();
    let store = open(&dir);
    let record = |flooding: bool| {
        let mut r = result("python", exited(0), 1);
        if flooding {
            r.outcome = Outcome::OutputLimit {
                stream: warden_core::Stream::Stdout,
            };
            r.security.violations = vec![violation(Stage::Run, &r.outcome)];
        }
        let input = RecordInput {
            token: Some("x"),
            ..input(b"x")
        };
        store
            .record(&r, input, Retention::Metadata)
            .expect("recorded");
    };
    let keep = |n| Prune {
        keep_last: Some(n),
        ..Default::default()
    };
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for _ in 0..3 {
        record(true);
        record(true);
        for _ in 0..6 {
            record(false);
        }
        store.prune(&keep(6)).expect("pruned");
    }
    assert_eq!(
        store
            .caller_events(Some("x"), an_hour_ago)
            .expect("counted"),
        6
    );
    let kinds: Vec<OutcomeKind> = store
        .list(&HistoryFilter::default())
        .expect("listed")
        .iter()
        .map(|e| e.outcome.kind())
        .collect();
    assert_eq!(kinds.len(), 6);
    assert!(
        kinds.iter().all(|k| *k == OutcomeKind::OutputLimit),
        "{kinds:?}"
    );
    // Past the count, the events go too, the oldest first.
    assert_eq!(store.prune(&keep(4)).expect("pruned"), 2);
    assert_eq!(
        store
            .caller_events(Some("x"), an_hour_ago)
            .expect("counted"),
        4
    );
}

/// The version 1 schema, as released before executions carried a security section.
const V1_SCHEMA: &str = "
CREATE TABLE executions (
    id TEXT PRIMARY KEY NOT NULL, finished_at_ms INTEGER NOT NULL, language TEXT NOT NULL,
    mode TEXT NOT NULL, outcome_kind TEXT NOT NULL, outcome TEXT NOT NULL,
    cpu_time_ms INTEGER NOT NULL, wall_time_ms INTEGER NOT NULL,
    peak_memory_bytes INTEGER NOT NULL, code_bytes INTEGER NOT NULL, stdin_bytes INTEGER,
    stdout_bytes INTEGER NOT NULL, stderr_bytes INTEGER NOT NULL,
    stdout_truncated INTEGER NOT NULL, stderr_truncated INTEGER NOT NULL,
    limits TEXT NOT NULL, compile TEXT, retention TEXT NOT NULL,
    code BLOB, stdout BLOB, stderr BLOB
);
CREATE INDEX executions_by_time ON executions (finished_at_ms);
INSERT INTO executions VALUES (
    '0123456789abcdef0123456789abcdef', 1700000000000, 'python', 'sandboxed', 'exited',
    '{\"kind\":\"exited\",\"code\":0}', 7, 12, 8388608, 14, 0, 3, 0, 0, 0,
    '{\"cpu_time\":\"5s\",\"wall_time\":\"10s\",\"memory\":\"256MiB\",\"max_procs\":64,\"max_output\":\"1MiB\",\"max_file_size\":\"16MiB\",\"workspace_size\":\"64MiB\",\"max_open_files\":256}',
    NULL, 'code', CAST('print(\"hi\")' AS BLOB), NULL, NULL
);
PRAGMA user_version = 1;
";

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let dir = World::new();
    let path = dir.path().join("old.sqlite3");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch(V1_SCHEMA))
        .expect("old database written");

    let store = HistoryStore::open(&path).expect("opens and migrates");
    assert_eq!(
        store.schema_version().expect("version"),
        HistoryStore::LATEST_SCHEMA_VERSION
    );
    const { assert!(HistoryStore::LATEST_SCHEMA_VERSION > 1) };
    let old = store
        .get("0123456789abcdef0123456789abcdef")
        .expect("read")
        .expect("the old row survives");
    assert_eq!(old.language.as_str(), "python");
    assert_eq!(old.outcome, exited(0));
    assert_eq!(old.usage.wall_time, Duration::from_millis(12));
    assert_eq!(old.code.as_deref(), Some(&b"print(\"hi\")"[..]));
    assert_eq!(old.threat_level, None, "not analysed before version 2");
    assert!(old.security.is_none());
    assert_eq!(old.api, None, "who asked is unknown before version 3");
    assert_eq!(old.token, None);

    // New rows go in beside it, and statistics count both.
    store
        .record(&result("bash", exited(0), 3), input(b"x"), Retention::Code)
        .expect("recorded");
    let stats = store.stats(None).expect("stats");
    assert_eq!(stats.total, 2);
    assert_eq!(stats.by_threat_level["unknown"], 1);
    drop(store);
    let again = HistoryStore::open(&path).expect("reopens without migrating again");
    assert_eq!(
        again.list(&HistoryFilter::default()).expect("listed").len(),
        2
    );
    // The migration counted the old row: keeping one deletes exactly it, the older.
    let keep_one = Prune {
        keep_last: Some(1),
        ..Default::default()
    };
    assert_eq!(again.prune(&keep_one).expect("pruned"), 1);
    assert!(again
        .get("0123456789abcdef0123456789abcdef")
        .expect("read")
        .is_none());
    assert_eq!(again.prune(&keep_one).expect("pruned"), 0);
    drop(again);
    // The time index leads with the finish time and the id, the order of every listing and
    // pruning (version 7), and carries what the statistics read (version 8).
    let conn = rusqlite::Connection::open(&path).expect("opened");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_info('executions_by_time') ORDER BY seqno")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("index read");
    assert_eq!(
        columns,
        [
            "finished_at_ms",
            "id",
            "language",
            "mode",
            "outcome_kind",
            "threat_level",
            "violation_count",
            "wall_time_ms",
            "cpu_time_ms",
            "peak_memory_bytes",
            "network_policy"
        ]
    );
}

/// Version 10 changes no table: it tells a warden before it, which cannot read a cancelled
/// execution's outcome, that the database is newer than it knows. A version 9 database (as
/// version 9 made it: without the columns, tables, indexes and triggers of versions 11 to 13) is
/// brought to the latest with its rows.
#[test]
fn a_version_9_database_reaches_the_latest_version_and_keeps_its_rows() {
    let dir = World::new();
    let path = dir.path().join("v9.sqlite3");
    let r = result("bash", exited(0), 3);
    let store = HistoryStore::open(&path).expect("opens");
    store
        .record(&r, input(b"echo"), Retention::Code)
        .expect("recorded");
    drop(store);
    rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(
                "DROP TRIGGER tool_calls_by_caller_in;
                 DROP TRIGGER tool_calls_by_caller_out;
                 DROP TABLE tool_call_count_by_caller;
                 DROP INDEX tool_calls_by_caller;
                 DROP TRIGGER executions_by_token_in;
                 DROP TRIGGER executions_by_token_out;
                 DROP TABLE execution_count_by_token;
                 DROP INDEX executions_by_token;
                 ALTER TABLE connections DROP COLUMN repeats;
                 ALTER TABLE executions DROP COLUMN network_dropped;
                 ALTER TABLE executions DROP COLUMN dependencies_network_dropped;
                 PRAGMA user_version = 9;",
            )
        })
        .expect("set back to version 9");
    let store = HistoryStore::open(&path).expect("opens and migrates");
    assert_eq!(HistoryStore::LATEST_SCHEMA_VERSION, 14);
    assert_eq!(store.schema_version().expect("version"), 14);
    assert!(store.get(r.id.as_str()).expect("read").is_some());
    let cancelled = result("bash", Outcome::Cancelled, 3);
    store
        .record(&cancelled, input(b"sleep 9"), Retention::Code)
        .expect("recorded");
    assert_eq!(store.stats(None).expect("stats").total, 2);
}

fn tool_call(caller: &str) -> ToolCallRecord<'_> {
    ToolCallRecord {
        tool: "wc",
        category: "compute",
        api: "v1",
        caller: Some(caller),
        status: ToolCallStatus::Success,
        latency: Duration::from_millis(2),
        execution_id: None,
        error: None,
        answered_at: None,
    }
}

/// Version 13 (hunt hist 1 and 2) widens `executions_by_token` to cover a token's statistics
/// and the `[response]` count, and counts each caller's tool calls for `max_count`. A version
/// 12 database (as version 12 made it) is brought to it in place: its calls are counted from
/// the rows, so that the first prune keeps the newest of the caller that holds the most.
#[test]
fn a_version_12_database_is_migrated_with_its_tool_calls_counted() {
    let dir = World::new();
    let path = dir.path().join("v12.sqlite3");
    let store = HistoryStore::open(&path).expect("opens");
    for wall in [3, 5, 7] {
        let mut r = result("bash", exited(0), wall);
        r.security.violations = vec![violation(Stage::Run, &Outcome::MemoryLimit)];
        store
            .record(&r, input(b"echo"), Retention::Code)
            .expect("recorded");
    }
    for caller in ["alice", "alice", "alice", "bob"] {
        store
            .record_tool_call(&tool_call(caller), None)
            .expect("recorded");
    }
    drop(store);
    rusqlite::Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(&format!(
                "{}DROP TRIGGER tool_calls_by_caller_in;
                 DROP TRIGGER tool_calls_by_caller_out;
                 DROP TABLE tool_call_count_by_caller;
                 DROP INDEX tool_calls_by_caller;
                 DROP INDEX executions_by_token;
                 CREATE INDEX executions_by_token ON executions (token, finished_at_ms, id);
                 PRAGMA user_version = 12;",
                budget::BEFORE_VERSION_14
            ))
        })
        .expect("set back to version 12");
    let store = HistoryStore::open(&path).expect("opens and migrates");
    assert_eq!(store.schema_version().expect("version"), 14);
    let grader = store.stats_of(None, Some("grader")).expect("stats");
    assert_eq!((grader.total, grader.security_violations), (3, 3));
    assert_eq!(
        store
            .caller_events(Some("grader"), SystemTime::UNIX_EPOCH)
            .expect("counted"),
        3
    );
    let keep_two = Prune {
        keep_last: Some(2),
        ..Prune::default()
    };
    assert_eq!(store.prune(&keep_two).expect("pruned"), 1);
    let calls = |caller| {
        store
            .tool_stats_of(None, Some(caller))
            .expect("stats")
            .tools
            .first()
            .map_or(0, |t| t.calls)
    };
    assert_eq!((calls("alice"), calls("bob")), (1, 1));
    // The triggers count from here on: alice's next call pushes out her oldest.
    store
        .record_tool_call(&tool_call("alice"), Some(&keep_two))
        .expect("recorded");
    assert_eq!((calls("alice"), calls("bob")), (1, 1));
}

#[test]
fn a_database_from_a_newer_warden_is_refused() {
    let dir = World::new();
    let path = dir.path().join("new.sqlite3");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 999;"))
        .expect("database written");
    let err = HistoryStore::open(&path).expect_err("refused");
    assert!(
        matches!(err, HistoryError::TooNew { found: 999, .. }),
        "{err}"
    );
}

#[test]
fn a_corrupt_file_is_a_clear_error() {
    let dir = World::new();
    let path = dir.path().join("history.sqlite3");
    std::fs::write(
        &path,
        b"this is not a database, just some garbage bytes".repeat(100),
    )
    .expect("garbage written");
    let err = HistoryStore::open(&path).expect_err("refused");
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("corrupt"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn concurrent_writers_on_a_new_database_lose_nothing() {
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let dir = World::new();
    let path = dir.path().join("history.sqlite3");
    let barrier = std::sync::Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                // Each opens its own connection, all at once, on a database none has created.
                let store = HistoryStore::open(&path).expect("opens");
                for _ in 0..EACH {
                    store
                        .record(&result("bash", exited(0), 2), input(b"x"), Retention::Full)
                        .expect("recorded");
                }
            });
        }
    });
    let store = HistoryStore::open(&path).expect("opens");
    assert_eq!(
        store.stats(None).expect("stats").total,
        (THREADS * EACH) as u64
    );
    let all = HistoryFilter::default();
    assert_eq!(store.list(&all).expect("listed").len(), THREADS * EACH);
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = World::new();
    let store = open(&dir);
    let mode = std::fs::metadata(store.path())
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "history holds code: mode {mode:o}");
}

#[test]
fn a_database_locked_past_the_busy_timeout_is_a_clear_error() {
    let dir = World::new();
    let store = open(&dir);
    let holder = rusqlite::Connection::open(store.path()).expect("second connection");
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("write lock taken");
    // Waits out the busy timeout (5 s), then gives up.
    let err = store
        .record(&result("bash", exited(0), 1), input(b"x"), Retention::Code)
        .expect_err("locked");
    assert!(matches!(err, HistoryError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked"), "{err}");
    holder.execute_batch("ROLLBACK").expect("lock released");
    store
        .record(&result("bash", exited(0), 1), input(b"x"), Retention::Code)
        .expect("recorded once the lock is gone");
    // Readers are never blocked by a writer (WAL).
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("write lock taken");
    assert_eq!(store.stats(None).expect("stats while locked").total, 1);
}

#[test]
fn the_wal_is_emptied_once_it_grows_past_its_limit() {
    let dir = World::new();
    let path = dir.path().join("history.sqlite3");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let mut largest = 0;
    for _ in 0..40 {
        // One process per record, as `warden run` does: no checkpoint happens on close.
        let store = HistoryStore::open(&path).expect("opens");
        let mut r = result("bash", exited(0), 1);
        r.stdout = vec![b'x'; 100 << 10];
        store
            .record(&r, input(b"x"), Retention::Full)
            .expect("recorded");
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // 40 records of 100 KiB went through a WAL that stayed near its 1 MiB limit.
    assert!(largest < 2 << 20, "WAL grew to {largest} bytes");
    let store = HistoryStore::open(&path).expect("opens");
    assert_eq!(store.stats(None).expect("stats").total, 40);
}

/// The engine, built from the settings of a world, answers from that world's database: what
/// `warden history`, `show` and `stats` ask. No sandbox is needed for it.
#[test]
fn the_engine_answers_from_the_history_its_settings_name() {
    let world = World::new();
    let mut recorded = result("python", exited(0), 5);
    recorded.security.violations = vec![violation(Stage::Run, &Outcome::MemoryLimit)];
    open(&world)
        .record(&recorded, input(b"print(1)"), Retention::Code)
        .expect("recorded");
    let engine = Engine::new(
        world
            .settings()
            .engine_config(PathBuf::from("/nonexistent")),
    )
    .expect("an engine");
    assert_eq!(engine.history_path(), Some(world.db().as_path()));
    let listed = engine
        .history_list(&HistoryFilter {
            mode: Some(Mode::Sandboxed),
            ..HistoryFilter::default()
        })
        .expect("listed");
    assert_eq!(listed.len(), 1);
    let shown = engine
        .history_entry(recorded.id.as_str())
        .expect("read")
        .expect("found");
    let security = shown.security.expect("security recorded");
    assert_eq!(security.violations, recorded.security.violations);
    assert_eq!(
        serde_json::to_value(&security.violations[0]).expect("serializable")["kind"],
        "memory_limit"
    );
    assert_eq!(engine.history_stats(None, None).expect("stats").total, 1);
    let err = engine.history_entry("xyz").expect_err("not hex");
    assert_eq!(err.kind(), warden_engine::ErrorKind::Request);
}

/// Rows recorded before violations were structured hold them as text; they read back as
/// structured violations.
#[test]
fn violations_recorded_as_text_read_back_structured() {
    let world = World::new();
    let store = open(&world);
    let recorded = result("bash", exited(0), 1);
    store
        .record(&recorded, input(b"x"), Retention::Code)
        .expect("recorded");
    drop(store);
    let conn = rusqlite::Connection::open(world.db()).expect("second connection");
    conn.execute(
        "UPDATE executions SET security = json_set(security, '$.violations', \
         json('[\"run: seccomp: ptrace\"]'))",
        [],
    )
    .expect("old-style violations written");
    let shown = open(&world)
        .get(recorded.id.as_str())
        .expect("read")
        .expect("found");
    let violations = shown.security.expect("security").violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].stage, Stage::Run);
    assert_eq!(violations[0].kind, warden_engine::ViolationKind::Violation);
    assert_eq!(violations[0].detail, "seccomp: ptrace");
}

/// One row the history cannot read back (an outcome written by a newer warden, a row edited
/// by hand) made every listing an error, the server's `/v1/history` included. It is left out;
/// the others are listed, and `get` still names the row and its column.
#[test]
fn an_unreadable_row_is_left_out_of_a_listing() {
    let world = World::new();
    let store = open(&world);
    let mut ids = Vec::new();
    for code in 0..3 {
        let recorded = result("bash", exited(code), 1);
        store
            .record(&recorded, input(b"x"), Retention::Code)
            .expect("recorded");
        ids.push(recorded.id);
    }
    drop(store);
    let conn = rusqlite::Connection::open(world.db()).expect("second connection");
    let changed = conn
        .execute(
            "UPDATE executions SET outcome = '{\"kind\":\"from_the_future\"}' WHERE id = ?1",
            [ids[1].as_str()],
        )
        .expect("the middle row's outcome replaced");
    assert_eq!(changed, 1);
    let store = open(&world);
    let listed = store
        .list(&HistoryFilter::default())
        .expect("the other rows are listed");
    let mut listed: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    // Rows recorded in the same millisecond are ordered by id.
    listed.sort_unstable();
    let mut readable = [ids[0].as_str(), ids[2].as_str()];
    readable.sort_unstable();
    assert_eq!(listed, readable);
    let err = store.get(ids[1].as_str()).expect_err("the row itself");
    assert!(
        matches!(
            err,
            HistoryError::Decode {
                column: "outcome",
                ..
            }
        ),
        "{err}"
    );
}
