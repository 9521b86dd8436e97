//! End to end (issue 9): a bounded flood against a small queue. Thousands of requests over
//! fifty connections (crates/warden-server/tests/clients/load.py, stdlib only, loopback only)
//! get either an answer or the documented refusal with `Retry-After`; `/v1/health` answers
//! throughout; every accepted execution finishes and is recorded exactly once; and once the
//! server has stopped, none of its sandboxes' processes, cgroups or run directories remain.
//! Real sandboxes: runs as root (CI does).

mod live_server;

use std::path::PathBuf;
use std::time::Duration;

use live_server::LiveServer;

const WORKERS: usize = 2;
const QUEUE: usize = 8;

/// What the server's sandboxes leave on the host while they exist: their cgroups
/// (`run-<server pid>-<n>` under each controller's `warden/`) and trusted mode's run
/// directories. The parents (`warden/`, `/run/warden/`) are shared and stay.
fn sandbox_traces(server_pid: u32) -> Vec<PathBuf> {
    let prefix = format!("run-{server_pid}-");
    let mut parents: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("warden")).collect())
        .unwrap_or_default();
    // cgroup v2: one hierarchy, `warden/` at its root.
    parents.push(PathBuf::from("/sys/fs/cgroup/warden"));
    parents.push(PathBuf::from("/run/warden/trusted"));
    parents
        .iter()
        .filter_map(|parent| std::fs::read_dir(parent).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Processes still in one of the server's sandbox cgroups (`/proc/<pid>/cgroup` names it).
fn sandboxed_processes(server_pid: u32) -> Vec<String> {
    let needle = format!("/warden/run-{server_pid}-");
    std::fs::read_dir("/proc")
        .map(|entries| entries.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).ok()?;
            cgroups.contains(&needle).then(|| {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                format!(
                    "{}: {}",
                    entry.file_name().to_string_lossy(),
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                )
            })
        })
        .collect()
}

#[test]
fn a_flood_gets_answers_or_documented_refusals_and_loses_no_accepted_execution() {
    let mut server = LiveServer::start(&format!(
        "[server]\nworkers = {WORKERS}\nqueue_size = {QUEUE}\n"
    ));
    let pid = server.pid();
    // 2,000 requests over 50 connections, at most 40 s of sending.
    server.client_script("load.py", &["2000", "50", "40"]);

    // Nothing accumulates while the server lives: finished runs are gone; what remains is at
    // most what the server may keep ready (a warm pool) and never more than it can admit.
    let traces = sandbox_traces(pid);
    let controllers = 3; // cpuacct, memory, pids on cgroup v1; 1 on v2
    assert!(
        traces.len() <= (WORKERS + QUEUE) * controllers,
        "sandboxes accumulate after the flood: {traces:?}"
    );

    server.stop(Duration::from_secs(40));
    let gone = live_server::eventually(Duration::from_secs(20), || {
        sandbox_traces(pid).is_empty() && sandboxed_processes(pid).is_empty()
    });
    assert!(
        gone,
        "left behind after the server stopped: {:?} {:?}\n{}",
        sandbox_traces(pid),
        sandboxed_processes(pid),
        server.log()
    );
}
