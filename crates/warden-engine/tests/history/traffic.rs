//! The traffic log in the history (schema version 4, issue 10): an execution's connections are
//! recorded with it, read back with it, listed across executions, summed up, pruned with it, and
//! a version 3 database gains the table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden_engine::history::{ConnectionFilter, HostStats, PolicyStats, Prune};
use warden_engine::{Connection, ExecutionResult, HistoryFilter, HistoryStore, NetworkReport};

use super::{exited, input, open, result, HistoryError, Retention, World};

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch");
    u64::try_from(since.as_millis()).expect("fits")
}

/// A TCP attempt on port 443; an allowed one moved 100 bytes up and 1000 down.
fn attempt(started_ms: u64, host: Option<&str>, addr: &str, allowed: bool) -> Connection {
    Connection {
        started_ms,
        protocol: "tcp".to_owned(),
        host: host.map(str::to_owned),
        addr: Some(addr.to_owned()),
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
        bytes_down: if allowed { 1000 } else { 0 },
        duration_ms: if allowed { 25 } else { 0 },
        cut_by: None,
        repeats: 0,
    }
}

fn with_network(
    mut r: ExecutionResult,
    policy: &str,
    connections: Vec<Connection>,
) -> ExecutionResult {
    let denied = connections.iter().filter(|c| !c.allowed).count();
    r.network = Some(NetworkReport {
        policy: policy.to_owned(),
        connections,
        denied: u32::try_from(denied).expect("few"),
        dropped: 0,
    });
    r
}

/// Three attempts: a name allowed (cut by a limit), an address denied, a lookup denied.
fn three_attempts(start: u64) -> Vec<Connection> {
    let mut cut = attempt(start, Some("mirror.test"), "192.0.2.10", true);
    cut.protocol = "https".to_owned();
    cut.cut_by = Some("total_bytes".to_owned());
    let mut lookup = attempt(start + 2, Some("exfiltrate.test"), "", false);
    lookup.protocol = "dns".to_owned();
    lookup.addr = None;
    lookup.port = 53;
    vec![cut, attempt(start + 1, None, "198.51.100.7", false), lookup]
}

fn count_rows(world: &World, table: &str) -> i64 {
    rusqlite::Connection::open(world.db())
        .and_then(|c| c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)))
        .expect("counted")
}

#[test]
fn connections_read_back_with_their_execution_at_every_retention() {
    let world = World::new();
    let store = open(&world);
    // Metadata retention: what the sandbox let out is metadata, kept all the same.
    let r = with_network(
        result("python", exited(0), 10),
        "mirror_only",
        three_attempts(now_ms()),
    );
    store
        .record(&r, input(b"x"), Retention::Metadata)
        .expect("recorded");
    let quiet = result("python", exited(0), 10);
    store
        .record(&quiet, input(b"x"), Retention::Full)
        .expect("recorded");

    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(
        e.network, r.network,
        "every field of every attempt, in order"
    );
    assert_eq!(e.network_policy.as_deref(), Some("mirror_only"));
    assert_eq!(e.network_denied, Some(2));
    let json = serde_json::to_value(&e).expect("serializable");
    assert_eq!(json["network"]["connections"][0]["cut_by"], "total_bytes");
    assert_eq!(json["network"]["denied"], 2);

    let listed = store.list(&HistoryFilter::default()).expect("listed");
    let entry = listed.iter().find(|l| l.id == r.id).expect("listed");
    assert!(entry.network.is_none(), "a list reads no connections");
    assert_eq!(entry.network_policy.as_deref(), Some("mirror_only"));
    assert_eq!(entry.network_denied, Some(2));
    let json = serde_json::to_value(entry).expect("serializable");
    assert!(json.get("network").is_none(), "{json}");

    let none = store
        .get(quiet.id.as_str())
        .expect("read")
        .expect("present");
    assert_eq!(
        (none.network, none.network_policy, none.network_denied),
        (None, None, None)
    );
}

/// Bug hunt: a flood of refused DNS questions made a 50 MB history row set. The proxy now
/// folds identical refusals (`repeats`) and counts those a full log dropped (`dropped`); the
/// history keeps both (schema version 11), and every count reads them.
#[test]
fn folded_and_dropped_refusals_are_kept_and_counted() {
    let world = World::new();
    let store = open(&world);
    let start = now_ms();
    let mut folded = attempt(start, None, "198.51.100.7", false);
    folded.repeats = 999;
    let connections = vec![
        attempt(start, Some("mirror.test"), "192.0.2.10", true),
        folded,
    ];
    let mut r = result("python", exited(0), 10);
    r.network = Some(NetworkReport::of("p".to_owned(), connections, 40));
    let report = r.network.as_ref().expect("set");
    assert_eq!((report.denied, report.dropped), (1040, 40));
    store
        .record(&r, input(b"x"), Retention::Full)
        .expect("recorded");
    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.network, r.network);
    assert_eq!(e.network_denied, Some(1040));
    let listed = store.list(&HistoryFilter::default()).expect("listed");
    assert_eq!(listed[0].network_denied, Some(1040));
    let stats = store.network_stats(None).expect("stats");
    assert_eq!(
        stats.total_attempts, 1001,
        "the kept ones, repeats included"
    );
    assert_eq!(stats.total_denied, 1000);
    assert_eq!(stats.per_policy[0].attempts, 1001);
    assert_eq!(stats.per_policy[0].denied, 1000);
}

#[test]
fn the_traffic_log_filters_and_orders_newest_first() {
    let world = World::new();
    let store = open(&world);
    let hour_ago = now_ms() - 3_600_000;
    let first = with_network(
        result("python", exited(0), 5),
        "mirror_only",
        three_attempts(hour_ago),
    );
    let second = with_network(
        result("bash", exited(0), 5),
        "internet_access",
        vec![attempt(now_ms(), Some("api.test"), "203.0.113.5", true)],
    );
    for r in [&first, &second] {
        store
            .record(r, input(b"x"), Retention::Code)
            .expect("recorded");
    }
    let log = |filter: ConnectionFilter| store.connections(&filter).expect("listed");

    let all = log(ConnectionFilter::default());
    let starts: Vec<u64> = all.iter().map(|c| c.connection.started_ms).collect();
    assert_eq!(
        starts,
        [started(&second, 0), hour_ago + 2, hour_ago + 1, hour_ago]
    );
    assert_eq!(all[0].execution_id, second.id);
    assert_eq!(all[0].policy, "internet_access");
    assert_eq!(all[3].policy, "mirror_only");
    assert_eq!(
        all[3].connection,
        first.network.as_ref().expect("network").connections[0]
    );

    let denied = log(ConnectionFilter {
        denied_only: true,
        ..Default::default()
    });
    assert_eq!(denied.len(), 2);
    assert!(denied
        .iter()
        .all(|c| !c.connection.allowed && c.execution_id == first.id));

    let by_prefix = log(ConnectionFilter {
        execution: Some(first.id.as_str()[..10].to_uppercase()),
        ..Default::default()
    });
    assert_eq!(by_prefix.len(), 3, "an id prefix, in either case");
    let recent = log(ConnectionFilter {
        since: SystemTime::now().checked_sub(Duration::from_secs(60)),
        ..Default::default()
    });
    assert_eq!(recent.len(), 1, "since is the connection's start");
    let newest_two = log(ConnectionFilter {
        limit: 2,
        ..Default::default()
    });
    assert_eq!(newest_two, all[..2]);
    let unknown = log(ConnectionFilter {
        execution: Some("0123456789abcdef0123456789abcdee".to_owned()),
        ..Default::default()
    });
    assert!(unknown.is_empty());
    let bad = store.connections(&ConnectionFilter {
        execution: Some("nope".to_owned()),
        ..Default::default()
    });
    assert!(matches!(bad, Err(HistoryError::InvalidId(_))), "{bad:?}");

    let json = serde_json::to_value(&all[0]).expect("serializable");
    assert_eq!(json["execution_id"], second.id.as_str());
    assert_eq!(
        json["host"], "api.test",
        "the attempt's fields are flat: {json}"
    );
}

fn started(r: &ExecutionResult, i: usize) -> u64 {
    r.network.as_ref().expect("network").connections[i].started_ms
}

#[test]
fn network_statistics_add_up_per_host_and_per_policy() {
    let world = World::new();
    let store = open(&world);
    let start = now_ms();
    let runs = [
        ("mirror_only", three_attempts(start)),
        ("mirror_only", three_attempts(start + 10)),
        ("mirror_only", Vec::new()),
        (
            "internet_access",
            vec![
                attempt(start, Some("mirror.test"), "192.0.2.10", true),
                attempt(start, None, "198.51.100.7", true),
            ],
        ),
    ];
    for (policy, connections) in runs {
        let r = with_network(result("bash", exited(0), 1), policy, connections);
        store
            .record(&r, input(b"x"), Retention::Code)
            .expect("recorded");
    }
    // An execution without egress counts under no policy.
    store
        .record(&result("bash", exited(0), 1), input(b"x"), Retention::Code)
        .expect("recorded");

    let s = store.network_stats(None).expect("stats");
    assert_eq!((s.total_attempts, s.total_denied), (8, 4));
    let host = |host: &str, attempts, denied, up, down| HostStats {
        host: host.to_owned(),
        attempts,
        denied,
        bytes_up: up,
        bytes_down: down,
    };
    assert_eq!(
        s.per_host,
        [
            host("198.51.100.7", 3, 2, 100, 1000),
            host("mirror.test", 3, 0, 300, 3000),
            host("exfiltrate.test", 2, 2, 0, 0),
        ],
        "the name when given, else the address; most attempts first, then by name"
    );
    let policy = |policy: &str, executions, attempts, denied| PolicyStats {
        policy: policy.to_owned(),
        executions,
        attempts,
        denied,
    };
    assert_eq!(
        s.per_policy,
        [
            policy("mirror_only", 3, 6, 4),
            policy("internet_access", 1, 2, 0)
        ]
    );

    let future = store
        .network_stats(Some(SystemTime::now() + Duration::from_secs(60)))
        .expect("stats");
    assert_eq!(future, Default::default());
}

#[test]
fn pruning_removes_the_connections_of_the_executions_it_deletes() {
    let world = World::new();
    let store = open(&world);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = with_network(
            result("bash", exited(0), 1),
            "mirror_only",
            three_attempts(now_ms()),
        );
        store
            .record(&r, input(b"x"), Retention::Code)
            .expect("recorded");
        ids.push(r.id);
        // Distinct milliseconds, so that the newest is the last recorded.
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(count_rows(&world, "connections"), 9);
    let keep_one = Prune {
        keep_last: Some(1),
        ..Default::default()
    };
    assert_eq!(store.prune(&keep_one).expect("pruned"), 2);
    assert_eq!(
        count_rows(&world, "connections"),
        3,
        "only the newest's are left"
    );
    let left = store
        .connections(&ConnectionFilter::default())
        .expect("listed");
    assert!(left.iter().all(|c| c.execution_id == ids[2]));

    let everything = Prune {
        older_than: Some(SystemTime::now() + Duration::from_secs(1)),
        ..Default::default()
    };
    assert_eq!(store.prune(&everything).expect("pruned"), 1);
    assert_eq!(count_rows(&world, "connections"), 0);
    assert_eq!(store.network_stats(None).expect("stats").total_attempts, 0);
}

/// A version 3 database: version 1's table and row, then versions 2 and 3 as released.
fn v3_schema() -> String {
    format!(
        "{}
ALTER TABLE executions ADD COLUMN threat_level TEXT;
ALTER TABLE executions ADD COLUMN finding_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN violation_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN security TEXT;
ALTER TABLE executions ADD COLUMN api TEXT;
ALTER TABLE executions ADD COLUMN token TEXT;
UPDATE executions SET api = 'cli';
PRAGMA user_version = 3;
",
        super::V1_SCHEMA.replace("PRAGMA user_version = 1;", "")
    )
}

#[test]
fn a_version_3_database_gains_the_traffic_log_and_keeps_its_rows() {
    let world = World::new();
    let path = world.path().join("v3.sqlite3");
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch(&v3_schema()))
        .expect("version 3 database written");

    let store = HistoryStore::open(&path).expect("opens and migrates");
    assert_eq!(
        store.schema_version().expect("version"),
        HistoryStore::LATEST_SCHEMA_VERSION
    );
    const { assert!(HistoryStore::LATEST_SCHEMA_VERSION >= 4) };
    let old = store
        .get("0123456789abcdef0123456789abcdef")
        .expect("read")
        .expect("the old row survives");
    assert_eq!(old.api.as_deref(), Some("cli"));
    assert_eq!((old.network_policy, old.network_denied), (None, None));
    assert!(old.network.is_none(), "no traffic log before version 4");

    let r = with_network(
        result("bash", exited(0), 1),
        "mirror_only",
        three_attempts(now_ms()),
    );
    store
        .record(&r, input(b"x"), Retention::Code)
        .expect("recorded");
    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.network, r.network);
    assert_eq!(
        store
            .connections(&ConnectionFilter::default())
            .expect("listed")
            .len(),
        3
    );
    assert_eq!(
        store.network_stats(None).expect("stats").per_policy.len(),
        1
    );
    drop(store);

    // Lookups by execution (show, prune, --execution) use the primary key's index, which starts
    // with the execution id; connections by time have their own.
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    let plan = |sql: &str| -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .expect("plan read");
        rows.join("; ")
    };
    let by_execution = plan("SELECT * FROM connections WHERE execution_id = 'x' ORDER BY seq");
    assert!(
        by_execution.contains("USING INDEX sqlite_autoindex_connections_1"),
        "{by_execution}"
    );
    let by_time = plan("SELECT * FROM connections WHERE started_at_ms >= 5");
    assert!(
        by_time.contains("USING INDEX connections_by_time"),
        "{by_time}"
    );
}

/// The engine answers `warden network log` and `warden network stats` from its history.
#[test]
fn the_engine_answers_the_traffic_log_from_its_history() {
    let world = World::new();
    let r = with_network(
        result("bash", exited(0), 1),
        "mirror_only",
        three_attempts(now_ms()),
    );
    open(&world)
        .record(&r, input(b"x"), Retention::Code)
        .expect("recorded");
    let engine = warden_engine::Engine::new(
        world
            .settings()
            .engine_config(std::path::PathBuf::from("/nonexistent")),
    )
    .expect("an engine");
    let denied = engine
        .history_connections(&ConnectionFilter {
            denied_only: true,
            execution: Some(r.id.to_string()),
            limit: 100,
            ..Default::default()
        })
        .expect("listed");
    assert_eq!(denied.len(), 2);
    let stats = engine.history_network_stats(None).expect("stats");
    assert_eq!((stats.total_attempts, stats.total_denied), (3, 2));
    let shown = engine
        .history_entry(r.id.as_str())
        .expect("read")
        .expect("found");
    assert_eq!(shown.network, r.network);
    let err = engine
        .history_connections(&ConnectionFilter {
            execution: Some("xyz".to_owned()),
            ..Default::default()
        })
        .expect_err("not hex");
    assert_eq!(err.kind(), warden_engine::ErrorKind::Request);
}
