//! The history's bounds in bytes (hunt srv 1): each code and output kept at most `[history]
//! max_kept` bytes, cut and flagged past it, and the database within `[history] max_size`, its
//! oldest records pruned past it, from the caller that holds the most bytes (schema version
//! 14 counts them). Without them, a client of `warden serve` filled the disk through the
//! history: nothing pruned it by default, and each execution kept its whole entry file (three
//! 7 MB programs grew the database by 21 MB).

use rusqlite::Connection;
use warden_core::{ByteSize, Outcome};
use warden_engine::history::{PendingRecord, Prune, ToolCallRecord, ToolCallStatus};
use warden_engine::{HistoryFilter, HistoryStore, RecordInput, Stage, StageResult};

use super::{exited, input, open, result, violation, Retention, World};

/// Takes a database back to before version 14: without each caller's bytes, counted by
/// version 12's triggers.
pub(super) const BEFORE_VERSION_14: &str = "
DROP TRIGGER executions_by_token_in;
DROP TRIGGER executions_by_token_out;
ALTER TABLE execution_count_by_token DROP COLUMN bytes;
CREATE TRIGGER executions_by_token_in AFTER INSERT ON executions
BEGIN
    INSERT INTO execution_count_by_token (token, n) SELECT NEW.token, 0
    WHERE NOT EXISTS (SELECT 1 FROM execution_count_by_token WHERE token IS NEW.token);
    UPDATE execution_count_by_token SET n = n + 1 WHERE token IS NEW.token;
END;
CREATE TRIGGER executions_by_token_out AFTER DELETE ON executions
BEGIN
    UPDATE execution_count_by_token SET n = n - 1 WHERE token IS OLD.token;
    DELETE FROM execution_count_by_token WHERE token IS OLD.token AND n <= 0;
END;
";

/// A stage whose standard error is `stderr`.
fn stage(stderr: Vec<u8>) -> StageResult {
    StageResult {
        outcome: exited(1),
        stdout: b"ok\n".to_vec(),
        stderr,
        stdout_truncated: false,
        stderr_truncated: false,
        output_order: Default::default(),
        usage: Default::default(),
        cached: false,
        network: None,
        samples: Vec::new(),
        denied_syscalls: Vec::new(),
        seccomp_kills: Vec::new(),
        process_limit_hits: 0,
        readonly_writes: None,
    }
}

/// The database's pages, all of them and those in use, in bytes, as another connection sees
/// them.
fn pages(world: &World) -> (u64, u64) {
    let conn = Connection::open(world.db()).expect("opened");
    let pragma = |name: &str| -> u64 {
        let n: i64 = conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .expect("read");
        u64::try_from(n).expect("not negative")
    };
    let size = pragma("page_size");
    let all = pragma("page_count");
    (all * size, (all - pragma("freelist_count")) * size)
}

/// `count` executions of `token`, each with `code_bytes` of code kept; their ids, oldest
/// first.
fn record_many(
    store: &HistoryStore,
    token: Option<&str>,
    count: usize,
    code_bytes: usize,
    rule: &Prune,
) -> Vec<String> {
    (0..count)
        .map(|i| {
            let r = result("bash", exited(0), 1);
            let code = format!("#{i:07}").repeat(code_bytes / 8);
            let input = RecordInput {
                token,
                ..input(code.as_bytes())
            };
            store.record(&r, input, Retention::Code).expect("recorded");
            store.prune(rule).expect("pruned");
            r.id.to_string()
        })
        .collect()
}

/// The ids of the executions of `token` (every execution's when `None`) left, sorted.
fn ids_of(store: &HistoryStore, token: Option<&str>) -> Vec<String> {
    let filter = HistoryFilter {
        token: token.map(str::to_owned),
        ..HistoryFilter::default()
    };
    let listed = store.list(&filter).expect("listed");
    let mut ids: Vec<String> = listed.iter().map(|e| e.id.to_string()).collect();
    ids.sort();
    ids
}

/// Whether `recorded`, sorted, are the ids `kept`.
fn all_kept(kept: &[String], recorded: &[String]) -> bool {
    let mut recorded = recorded.to_vec();
    recorded.sort();
    kept == recorded
}

/// Checks that the executions `kept` are the newest of those `recorded` (oldest first), and
/// the newest among them. Executions that finished in the same millisecond are ordered by
/// their ids, as pruning takes them: the few oldest kept may be a little older.
fn assert_the_newest_kept(kept: &[String], recorded: &[String]) {
    let newest = &recorded[recorded.len().saturating_sub(kept.len() + 16)..];
    let older = kept.iter().filter(|id| !newest.contains(id)).count();
    assert_eq!(older, 0, "{older} of the {} kept are older", kept.len());
    let last = recorded.last().expect("recorded");
    assert!(kept.contains(last), "the newest is kept");
}

/// A program past the bound is kept cut, and every reading says so: `show --json` and the
/// listing (`history --json`, `/v1/history`) carry `code_cut`, `code_bytes` the whole size.
#[test]
fn a_program_past_the_default_bound_is_kept_cut_and_says_so() {
    let world = World::new();
    let store = open(&world);
    let large = result("bash", exited(0), 1);
    let code = "echo é; ".repeat(100 * 1024);
    store
        .record(&large, input(code.as_bytes()), Retention::Code)
        .expect("recorded");
    let small = result("bash", exited(0), 1);
    store
        .record(&small, input(b"echo hi"), Retention::Code)
        .expect("recorded");

    let entry = store
        .get(large.id.as_str())
        .expect("read")
        .expect("present");
    let json = serde_json::to_value(&entry).expect("serialized");
    let kept = json["code"].as_str().expect("the code is kept");
    assert_eq!(kept.len(), 256 * 1024, "the default bound, 256 KiB");
    assert!(code.starts_with(kept), "the start is kept");
    assert_eq!(json["code_cut"], true, "{}", json["code_bytes"]);
    assert_eq!(json["code_bytes"], code.len());
    let listed = store.list(&HistoryFilter::default()).expect("listed");
    let flags: Vec<(String, bool)> = listed
        .iter()
        .map(|e| {
            let json = serde_json::to_value(e).expect("serialized");
            (e.id.to_string(), json["code_cut"] == true)
        })
        .collect();
    assert_eq!(
        flags,
        [(small.id.to_string(), false), (large.id.to_string(), true)]
    );
    let whole = store
        .get(small.id.as_str())
        .expect("read")
        .expect("present");
    assert_eq!(whole.code.as_deref(), Some(&b"echo hi"[..]));
    assert!(!whole.code_cut);
}

/// Under `full`, the output and the compiler's and installer's output are cut at the same
/// bound as the code, each flagged on its own; a character the bound would split is left
/// out whole.
#[test]
fn each_code_and_output_past_max_kept_is_cut_on_its_own() {
    let world = World::new();
    let store = open(&world);
    let mut r = result("c", exited(0), 1);
    r.stdout = "é".repeat(1000).into_bytes();
    r.stderr = b"short\n".to_vec();
    r.compile = Some(stage(vec![b'w'; 5000]));
    r.dependencies = Some(stage(b"installed\n".to_vec()));
    let code = vec![b'/'; 3000];
    let record = PendingRecord::new(&r, input(&code), Retention::Full, ByteSize(1001));
    store.record_all(&[record]).expect("recorded");

    let e = store.get(r.id.as_str()).expect("read").expect("present");
    assert_eq!(e.code.as_deref().map(<[u8]>::len), Some(1001));
    assert_eq!((e.code_bytes, e.code_cut), (3000, true));
    // 500 two-byte characters, not 500 and a half.
    assert_eq!(e.stdout.as_deref(), Some("é".repeat(500).as_bytes()));
    assert_eq!((e.stdout_bytes, e.stdout_cut), (2000, true));
    assert_eq!(e.stderr.as_deref(), Some(&b"short\n"[..]));
    assert!(!e.stderr_cut);
    let compile = e.compile.as_ref().expect("the compile stage");
    assert_eq!(compile.stderr.as_deref().map(str::len), Some(1001));
    assert_eq!((compile.stderr_bytes, compile.stderr_cut), (5000, true));
    assert!(!compile.stdout_cut);
    let installer = e.dependencies.as_ref().expect("the dependency stage");
    assert!(!installer.stderr_cut && !installer.stdout_cut);
    let json = serde_json::to_value(&e).expect("serialized");
    assert_eq!(json["compile"]["stderr_cut"], true);
    assert!(
        json["dependencies"].get("stderr_cut").is_none(),
        "a flag that is false is left out of a stage: {}",
        json["dependencies"]
    );
}

/// The size is measured after every 64th record, and past the bound the oldest records go
/// until it is back under it: the database never holds more than the bound and the 64
/// records that may have come since the last measure, and neither does its file.
#[test]
fn a_history_past_its_max_size_loses_its_oldest_records() {
    let world = World::new();
    let store = open(&world);
    let max = ByteSize::mib(4);
    let rule = Prune {
        max_size: Some(max),
        ..Prune::default()
    };
    // 640 executions of 16 KiB: 10 MiB kept whole.
    let mut ids = Vec::new();
    let mut largest = 0;
    for _ in 0..10 {
        ids.extend(record_many(&store, None, 64, 16 * 1024, &rule));
        largest = largest.max(pages(&world).0);
    }
    let slack = 64 * 24 * 1024;
    assert!(
        largest <= max.bytes() + slack,
        "the file reached {largest} bytes"
    );
    let (file, used) = pages(&world);
    assert!(used <= max.bytes(), "{used} bytes in use");
    assert!(
        std::fs::metadata(world.db()).expect("the file").len() <= max.bytes() + slack,
        "{file}"
    );
    let kept = ids_of(&store, None);
    assert!(
        (150..=256).contains(&kept.len()),
        "{} executions kept",
        kept.len()
    );
    assert_the_newest_kept(&kept, &ids);
}

/// Past the bound, the caller that holds the most bytes loses its oldest records, not the one
/// that holds the most records: a token sending large programs deletes its own. By count,
/// alice's 16 KiB programs would have cut bob's 400 small executions down to hers.
#[test]
fn past_its_max_size_the_caller_with_the_most_bytes_loses_its_own() {
    let world = World::new();
    let store = open(&world);
    let max = ByteSize::mib(4);
    let rule = Prune {
        max_size: Some(max),
        ..Prune::default()
    };
    // 1024 records in all: the last is measured after.
    let bob = record_many(&store, Some("bob"), 400, 8, &rule);
    let alice = record_many(&store, Some("alice"), 624, 16 * 1024, &rule);
    assert!(pages(&world).1 <= max.bytes());
    assert!(all_kept(&ids_of(&store, Some("bob")), &bob), "bob's stay");
    let kept = ids_of(&store, Some("alice"));
    assert!(kept.len() < 256, "{} of alice's kept", kept.len());
    assert_the_newest_kept(&kept, &alice);
}

/// The tool registry's calls count toward the bound: a caller's flood of (refused) calls is
/// pruned, its oldest first, and another's executions stay.
#[test]
fn past_its_max_size_a_flood_of_tool_calls_prunes_its_own() {
    let world = World::new();
    let store = open(&world);
    let max = ByteSize::mib(1);
    let rule = Prune {
        max_size: Some(max),
        ..Prune::default()
    };
    let bob = record_many(&store, Some("bob"), 100, 8, &rule);
    let call = ToolCallRecord {
        tool: "wc",
        category: "compute",
        api: "v1",
        caller: Some("mallory"),
        status: ToolCallStatus::Refused,
        latency: std::time::Duration::from_millis(1),
        execution_id: None,
        error: Some("input: missing required property \"text\""),
        answered_at: None,
    };
    // The last call, the 6016th, is measured after.
    for _ in 0..6016 {
        store
            .record_tool_call(&call, Some(&rule))
            .expect("recorded");
    }
    assert!(pages(&world).1 <= max.bytes());
    assert!(all_kept(&ids_of(&store, Some("bob")), &bob), "bob's stay");
    let calls = store
        .tool_stats_of(None, Some("mallory"))
        .expect("stats")
        .tools[0]
        .calls;
    assert!((1000..6000).contains(&calls), "{calls} calls kept");
}

/// Pruning by size keeps a caller's executions with a security event to the last, as pruning
/// by count does (the `[response]` rule counts them), and never the one just recorded.
#[test]
fn pruning_by_size_keeps_security_events_to_the_last() {
    let world = World::new();
    let store = open(&world);
    let max = ByteSize::mib(1);
    let rule = Prune {
        max_size: Some(max),
        ..Prune::default()
    };
    let mut flagged = result("python", Outcome::MemoryLimit, 1);
    flagged.security.violations = vec![violation(Stage::Run, &Outcome::MemoryLimit)];
    store
        .record(&flagged, input(b"x"), Retention::Metadata)
        .expect("recorded");
    // 192 records in all: the last is measured after.
    let ids = record_many(&store, Some("grader"), 191, 16 * 1024, &rule);
    assert!(pages(&world).1 <= max.bytes());
    let newest = ids.last().expect("recorded");
    assert!(store.get(newest).expect("read").is_some());
    assert!(
        store.get(flagged.id.as_str()).expect("read").is_some(),
        "the event stays"
    );
    assert_eq!(
        store
            .caller_events(Some("grader"), std::time::UNIX_EPOCH)
            .expect("counted"),
        1
    );
}

/// A database far past its bound (made before the bound existed, or whose bound was just
/// lowered) comes down a step at a time: a check deletes at most 4,096 records (620,000 small
/// executions deleted at once held one record for 31 s), and the process measures again at
/// its next record while it is past the bound, not at the 64th.
#[test]
fn a_history_far_past_its_max_size_comes_down_a_step_at_a_time() {
    let world = World::new();
    let store = open(&world);
    record_many(&store, None, 6015, 8, &Prune::default());
    let count = || store.list(&HistoryFilter::default()).expect("listed").len();
    let rule = Prune {
        max_size: Some(ByteSize::mib(1)),
        ..Prune::default()
    };
    let (_, before) = pages(&world);
    assert!(before > 4 * ByteSize::MIB, "{before} bytes in use");
    // The 6016th record is measured after: 4,096 of the oldest go, and it is still past.
    record_many(&store, None, 1, 8, &rule);
    assert_eq!(count(), 6016 - 4096);
    assert!(pages(&world).1 > ByteSize::MIB);
    // The next record is measured after too, and brings it under.
    let last = record_many(&store, None, 1, 8, &rule);
    assert!(pages(&world).1 <= ByteSize::MIB);
    assert!(store.get(&last[0]).expect("read").is_some());
    let left = count();
    assert!(left < 6016 - 4096, "{left}");
    // Under it, the next records are not measured until the 64th.
    record_many(&store, None, 1, 8, &rule);
    assert_eq!(count(), left + 1);
}

/// Version 14 counts each caller's bytes: a version 13 database (as version 13 made it) is
/// brought to it with its rows counted as the triggers count new ones.
#[test]
fn a_version_13_database_is_migrated_with_its_bytes_counted() {
    let world = World::new();
    let store = open(&world);
    let rule = Prune::default();
    record_many(&store, Some("alice"), 3, 4096, &rule);
    record_many(&store, None, 2, 64, &rule);
    drop(store);
    let bytes = |conn: &Connection| -> Vec<(Option<String>, i64, i64)> {
        conn.prepare("SELECT token, n, bytes FROM execution_count_by_token ORDER BY token")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .expect("read")
    };
    let conn = Connection::open(world.db()).expect("opened");
    let counted = bytes(&conn);
    assert_eq!(counted.len(), 2);
    assert!(counted[1].2 > 3 * 4096, "{counted:?}");
    conn.execute_batch(&format!("{BEFORE_VERSION_14}PRAGMA user_version = 13;"))
        .expect("set back to version 13");
    drop(conn);
    let store = open(&world);
    assert_eq!(store.schema_version().expect("version"), 14);
    let conn = Connection::open(world.db()).expect("opened");
    assert_eq!(bytes(&conn), counted, "counted as the triggers count");
    // And kept by the triggers from here on: a caller's last execution gone is its row gone.
    record_many(&store, None, 1, 64, &rule);
    let everything = Prune {
        older_than: Some(std::time::SystemTime::now() + std::time::Duration::from_secs(1)),
        ..Prune::default()
    };
    assert_eq!(store.prune(&everything).expect("pruned"), 6);
    assert!(bytes(&conn).is_empty());
}
