//! Judge0's information endpoints: `about` (its version picks the SDK's table of language ids,
//! so it says 1.13.1, the API warden follows), `config_info` (every flag and limit, in Judge0's
//! units, as warden applies them), `system_info`, `workers`, `license`, `isolate`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use warden_core::{ByteSize, Limits};

use crate::options::ServerOptions;
use crate::state::AppState;

/// The Judge0 version whose API this follows.
pub(crate) const VERSION: &str = "1.13.1";

/// `GET /license`: warden's license (Judge0 answers with its own, as plain text).
pub(crate) const LICENSE: &str = include_str!("../../../../LICENSE");

/// `GET /isolate`: Judge0 answers with `isolate --version` as plain text; warden, which does not
/// use isolate, with what runs the submissions instead.
pub(crate) const ISOLATE: &str = concat!(
    "warden ",
    env!("CARGO_PKG_VERSION"),
    " runs each submission in its own sandbox, not in isolate: new user, pid, mount, network, \
     IPC and UTS namespaces, a cgroup holding its limits, rlimits, every capability dropped and \
     a seccomp filter; under gVisor in the isolated mode (docs/threat-model.md).\n"
);

/// Judge0's own bound on the submissions of a batch (its `MAX_SUBMISSION_BATCH_SIZE`).
const JUDGE0_MAX_BATCH: usize = 20;

/// Judge0's own bound on `number_of_runs` (its `MAX_NUMBER_OF_RUNS`).
const JUDGE0_MAX_RUNS: usize = 20;

/// Most submissions in a batch (`POST` and `GET`): Judge0's 20, or fewer when the operator's
/// `[server] max_batch` says so, which bounds every API's batches.
pub(crate) fn max_batch(options: &ServerOptions) -> usize {
    JUDGE0_MAX_BATCH.min(options.max_batch)
}

/// Most runs of one submission: Judge0's 20, or fewer when the operator's `[server]
/// max_tests` says so (the runs after the first are test cases: submission.rs).
pub(crate) fn max_runs(options: &ServerOptions) -> usize {
    JUDGE0_MAX_RUNS.min(options.max_tests)
}

/// `GET /about`.
pub(crate) async fn about() -> Json<Value> {
    Json(json!({
        "version": VERSION,
        "homepage": "docs/compat.md",
        "source_code": "warden",
        "maintainer": "warden (a Judge0 CE compatible API)",
        "warden": { "version": env!("CARGO_PKG_VERSION") },
    }))
}

/// `GET /config_info`: the operator's maxima (`[maxima]`) and the defaults within them, in
/// Judge0's units (seconds, kilobytes).
pub(crate) async fn config_info(State(state): State<AppState>) -> Json<Value> {
    let m = state.options().maxima;
    let d = Limits::default().clamp_to(&m);
    let kb = |b: ByteSize| b.bytes() / ByteSize::KIB;
    Json(json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": true,
        "enable_callbacks": state.options().judge0_callbacks,
        "callbacks_max_tries": 3,
        "callbacks_timeout": 5.0,
        "enable_additional_files": true,
        "max_queue_size": state.load().queue_size,
        "cpu_time_limit": d.cpu_time.as_secs_f64(),
        "max_cpu_time_limit": m.cpu_time.as_secs_f64(),
        "cpu_extra_time": 0.0,
        "max_cpu_extra_time": m.cpu_time.as_secs_f64(),
        "wall_time_limit": d.wall_time.as_secs_f64(),
        "max_wall_time_limit": m.wall_time.as_secs_f64(),
        "memory_limit": kb(d.memory),
        "max_memory_limit": kb(m.memory),
        "stack_limit": kb(d.stack_size),
        "max_stack_limit": kb(m.stack_size),
        "max_processes_and_or_threads": d.max_procs,
        "max_max_processes_and_or_threads": m.max_procs,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "max_file_size": kb(d.max_file_size),
        "max_max_file_size": kb(m.max_file_size),
        "number_of_runs": 1,
        "max_number_of_runs": max_runs(state.options()),
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 0,
        "enable_batched_submissions": true,
        "max_submission_batch_size": max_batch(state.options()),
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    }))
}

/// `GET /system_info`.
pub(crate) async fn system_info() -> Json<Value> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    Json(json!({
        "Architecture": std::env::consts::ARCH,
        "CPU(s)": cpus,
        "Operating System": std::env::consts::OS,
    }))
}

/// `GET /workers`: one queue, `default`, with the server's load.
pub(crate) async fn workers(State(state): State<AppState>) -> Json<Value> {
    let load = state.load();
    Json(json!([{
        "queue": "default",
        "size": load.queued,
        "available": load.workers,
        "idle": load.workers.saturating_sub(load.running),
        "working": load.running,
        "paused": 0,
        "failed": 0,
    }]))
}
