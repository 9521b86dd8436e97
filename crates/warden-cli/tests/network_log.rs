//! `warden show`, `warden network log` and `warden network stats` read the traffic log from the
//! history (issue 10). The executions are recorded through the engine's history store, so no
//! sandbox runs and no traffic flows: needs only a writable temporary directory.

mod support;

use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::World;
use warden_core::detect::DetectedBy;
use warden_core::{ByteSize, LanguageId, Limits, Mode, Outcome, ThreatLevel, Usage};
use warden_engine::{
    Connection, ExecutionId, ExecutionResult, HistoryStore, LanguageDetection, NetworkReport,
    RecordInput, Retention, Security,
};

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_millis()).expect("fits")
}

/// A TCP attempt on port 443; an allowed one moved 100 bytes up and 2048 down.
fn attempt(started_ms: u64, host: Option<&str>, addr: Option<&str>, allowed: bool) -> Connection {
    Connection {
        started_ms,
        protocol: "tcp".to_owned(),
        host: host.map(str::to_owned),
        addr: addr.map(str::to_owned),
        port: 443,
        allowed,
        rule: if allowed { "rule 1" } else { "default" }.to_owned(),
        reason: if allowed {
            "the mirror"
        } else {
            "nothing else"
        }
        .to_owned(),
        bytes_up: if allowed { 100 } else { 0 },
        bytes_down: if allowed { 2048 } else { 0 },
        duration_ms: if allowed { 1500 } else { 0 },
        cut_by: None,
        repeats: 0,
    }
}

/// A finished bash execution whose policy's proxy logged `connections`.
fn execution(policy: &str, connections: Vec<Connection>) -> ExecutionResult {
    let language = LanguageId::new("bash").expect("a language id");
    let denied = connections.iter().filter(|c| !c.allowed).count();
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
        outcome: Outcome::Exited { code: 0 },
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        output_order: Default::default(),
        usage: Usage {
            cpu_time: Duration::from_millis(3),
            wall_time: Duration::from_millis(9),
            peak_memory: ByteSize::mib(4),
        },
        samples: Vec::new(),
        limits: Limits::default(),
        dependencies: None,
        compile: None,
        tests: Vec::new(),
        security: Security {
            mode: Mode::Sandboxed,
            reason: "requested".to_owned(),
            threat_level: ThreatLevel::Low,
            findings: Vec::new(),
            parse_error: None,
            violations: Vec::new(),
            analysis_time: std::time::Duration::ZERO,
        },
        network: Some(NetworkReport {
            policy: policy.to_owned(),
            connections,
            denied: u32::try_from(denied).expect("few"),
            dropped: 0,
        }),
        volumes: Vec::new(),
    }
}

/// Three attempts from `start`: a name allowed and cut by a limit, an address denied, a lookup
/// denied.
fn three_attempts(start: u64) -> Vec<Connection> {
    let mut cut = attempt(start, Some("mirror.test"), Some("192.0.2.10"), true);
    cut.protocol = "https".to_owned();
    cut.cut_by = Some("total_bytes".to_owned());
    let mut lookup = attempt(start + 2, Some("exfiltrate.test"), None, false);
    lookup.protocol = "dns".to_owned();
    lookup.port = 53;
    vec![
        cut,
        attempt(start + 1, None, Some("198.51.100.7"), false),
        lookup,
    ]
}

/// Records `results` in the world's history, as `warden run` would.
fn record(world: &World, results: &[&ExecutionResult]) {
    let store = HistoryStore::open(world.db()).expect("history opens");
    for r in results {
        let input = RecordInput {
            code: b"curl https://mirror.test/",
            stdin_bytes: Some(0),
            api: "cli",
            token: None,
        };
        store
            .record(r, input, Retention::Metadata)
            .expect("recorded");
    }
}

fn warden(world: &World, args: &[&str]) -> Output {
    world.warden().args(args).output().expect("warden runs")
}

fn ok_text(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn ok_json(out: &Output) -> Value {
    serde_json::from_str(&ok_text(out)).expect("valid JSON on stdout")
}

#[test]
fn show_lists_the_connections_of_an_execution() {
    let world = World::new();
    let r = execution("mirror_only", three_attempts(now_ms()));
    record(&world, &[&r]);

    let text = ok_text(&warden(&world, &["show", r.id.as_str()]));
    assert!(
        text.contains("network:     mirror_only: 3 attempts, 2 denied\n--- connections ---\n"),
        "{text}"
    );
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "--- connections ---")
        .skip(1)
        .collect();
    let header: Vec<&str> = table[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TIME", "PROTOCOL", "HOST", "ADDRESS", "PORT", "DECISION", "RULE", "UP", "DOWN",
            "DURATION", "CUT"
        ]
    );
    assert_eq!(table.len(), 4, "a header and one row per attempt: {text}");
    let cells = |row: &str| row.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
    assert_eq!(
        cells(table[1]),
        "https mirror.test 192.0.2.10 443 allow rule 1 100B 2.0KiB 1500ms total_bytes"
    );
    assert_eq!(
        cells(table[2]),
        "tcp - 198.51.100.7 443 deny default 0B 0B 0s -"
    );
    assert_eq!(
        cells(table[3]),
        "dns exfiltrate.test - 53 deny default 0B 0B 0s -"
    );

    let json = ok_json(&warden(&world, &["show", "--json", &r.id.as_str()[..8]]));
    let recorded = serde_json::to_value(&r.network).expect("serializable");
    assert_eq!(json["network"], recorded, "{json:#}");
    assert_eq!(json["network_policy"], "mirror_only");
    assert_eq!(json["network_denied"], 2);
}

#[test]
fn network_log_filters_the_traffic_log() {
    let world = World::new();
    let hour_ago = now_ms() - 3_600_000;
    let old = execution("mirror_only", three_attempts(hour_ago));
    let recent = execution(
        "internet_access",
        vec![
            attempt(now_ms(), Some("api.test"), Some("203.0.113.5"), true),
            attempt(now_ms(), None, Some("198.51.100.9"), false),
        ],
    );
    record(&world, &[&old, &recent]);

    let denied = ok_json(&warden(&world, &["network", "log", "--denied", "--json"]));
    let denied = denied.as_array().expect("an array");
    assert_eq!(denied.len(), 3, "{denied:#?}");
    assert!(denied.iter().all(|c| c["allowed"] == false), "{denied:#?}");
    assert_eq!(
        denied[0]["execution_id"],
        recent.id.as_str(),
        "newest first"
    );
    assert_eq!(denied[0]["policy"], "internet_access");
    assert_eq!(denied[0]["addr"], "198.51.100.9");

    let all = ok_json(&warden(&world, &["network", "log", "--json"]));
    assert_eq!(all.as_array().map(Vec::len), Some(5));
    let one = ok_json(&warden(
        &world,
        &["network", "log", "--limit", "1", "--json"],
    ));
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    let prefix = &old.id.as_str()[..10];
    let of_old = ok_json(&warden(
        &world,
        &["network", "log", "--execution", prefix, "--json"],
    ));
    let of_old = of_old.as_array().expect("an array");
    assert_eq!(of_old.len(), 3);
    assert!(of_old.iter().all(|c| c["execution_id"] == old.id.as_str()));
    let last_minute = ok_json(&warden(
        &world,
        &["network", "log", "--since", "1m", "--json"],
    ));
    assert_eq!(
        last_minute.as_array().map(Vec::len),
        Some(2),
        "{last_minute:#}"
    );

    let text = ok_text(&warden(&world, &["network", "log", "--denied"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and the 3 denials: {text}");
    assert!(lines[0].starts_with("TIME (UTC) "), "{text}");
    assert!(
        lines[0].contains(" EXECUTION ") && lines[0].contains(" POLICY "),
        "{text}"
    );
    assert!(lines[1].contains(&recent.id.as_str()[..12]), "{text}");
    assert!(lines[1].contains("internet_access"), "{text}");

    let bad = warden(&world, &["network", "log", "--execution", "xyz", "--json"]);
    assert_eq!(bad.status.code(), Some(125));
    let error: Value = serde_json::from_slice(&bad.stdout).expect("JSON error");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or("")
            .contains("not an execution id"),
        "{error}"
    );
}

#[test]
fn network_stats_sum_per_host_and_per_policy() {
    let world = World::new();
    let start = now_ms();
    let first = execution("mirror_only", three_attempts(start));
    let second = execution("mirror_only", three_attempts(start + 10));
    let quiet = execution("mirror_only", Vec::new());
    let other = execution(
        "internet_access",
        vec![attempt(
            start,
            Some("mirror.test"),
            Some("192.0.2.10"),
            true,
        )],
    );
    record(&world, &[&first, &second, &quiet, &other]);

    let stats = ok_json(&warden(&world, &["network", "stats", "--json"]));
    assert_eq!(stats["total_attempts"], 7, "{stats:#}");
    assert_eq!(stats["total_denied"], 4, "{stats:#}");
    let hosts = stats["per_host"].as_array().expect("per_host");
    let host = |name: &str| {
        hosts
            .iter()
            .find(|h| h["host"] == name)
            .unwrap_or_else(|| panic!("{name} in {hosts:#?}"))
    };
    let mirror = host("mirror.test");
    assert_eq!(
        [
            &mirror["attempts"],
            &mirror["denied"],
            &mirror["bytes_up"],
            &mirror["bytes_down"]
        ],
        [3, 0, 300, 6144]
    );
    let address = host("198.51.100.7");
    assert_eq!([&address["attempts"], &address["denied"]], [2, 2]);
    let lookup = host("exfiltrate.test");
    assert_eq!([&lookup["attempts"], &lookup["denied"]], [2, 2]);
    assert_eq!(hosts.len(), 3, "{hosts:#?}");
    let policies = stats["per_policy"].as_array().expect("per_policy");
    assert_eq!(
        policies,
        &[
            serde_json::json!({"policy": "mirror_only", "executions": 3, "attempts": 6, "denied": 4}),
            serde_json::json!({"policy": "internet_access", "executions": 1, "attempts": 1, "denied": 0}),
        ]
    );

    let text = ok_text(&warden(&world, &["network", "stats"]));
    assert!(text.starts_with("attempts:  7 (4 denied)\n"), "{text}");
    assert!(text.contains("\nPOLICY "), "{text}");
    assert!(text.contains("\nHOST "), "{text}");
    let last_hour = ok_json(&warden(
        &world,
        &["network", "stats", "--since", "1h", "--json"],
    ));
    assert_eq!(last_hour, stats, "all four finished just now");
}
