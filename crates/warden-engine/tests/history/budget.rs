//! The history's bounds in bytes (hunt srv 1): each code and output kept at most `[history]
//! max_kept` bytes, cut and flagged past it. Without it, a client of `warden serve` filled the
//! disk through the history: each execution kept its whole entry file (three 7 MB programs
//! grew the database by 21 MB).

use warden_core::ByteSize;
use warden_engine::history::PendingRecord;
use warden_engine::{HistoryFilter, StageResult};

use super::{exited, input, open, result, Retention, World};

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
