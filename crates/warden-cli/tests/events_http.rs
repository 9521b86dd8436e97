//! The response rule on the real server (issue 13): an API token whose executions keep hitting
//! limits is refused (403, saying why) while another token's requests run; executions their
//! caller cancelled (it left before the answer, a `DELETE`) count all the same, recorded with
//! what their sandbox stopped. Needs root.

mod live_server;

use std::time::Duration;

use live_server::{eventually, LiveServer, ADMIN};
use serde_json::Value;

#[test]
fn a_probing_token_is_refused_and_the_others_are_not() {
    let server = LiveServer::start(
        "[response]\nevents = 2\nwithin = \"10m\"\naction = \"refuse\"\n\n\
         [[server.tokens]]\nname = \"other\"\ntoken = \"other-secret\"\n",
    );
    let flood = r#"{"language": "bash", "code": "yes", "limits": {"max_output": "1KiB"}}"#;
    for _ in 0..2 {
        let (status, body) = server.request("POST", "/v1/executions", Some(flood));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("output_limit"), "{body}");
    }
    let fine = r#"{"language": "bash", "code": "echo fine"}"#;
    let (status, body) = server.request("POST", "/v1/executions", Some(fine));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("test caused 2 security events"), "{body}");
    // The other token is not concerned.
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /v1/executions HTTP/1.0\r\nauthorization: Bearer other-secret\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{fine}",
            fine.len()
        )
        .as_bytes(),
    )
    .expect("sent");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(answer.contains("\"stdout\":\"fine\\n\""), "{answer}");
}

/// A program that tries to mount three times (each refused: one `denied_syscall` event of
/// severity high), says so, and then sleeps as `sleep MARKER` until it is cancelled.
fn probing(marker: &str) -> String {
    let code = format!(
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
         for _ in range(3):\n    libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n\
         print('probed', flush=True)\nos.execvp('sleep', ['sleep', '{marker}'])\n"
    );
    serde_json::json!({"language": "python", "code": code, "mode": "sandboxed",
                       "limits": {"wall_time": "60s"}})
    .to_string()
}

/// Where probing code runs sandboxed (by default code this suspicious runs isolated, where
/// gVisor's kernel answers the calls and nothing is recorded: docs/events.md).
const SANDBOXED: &str = "[modes]\nhigh = \"sandboxed\"\n";

/// Whether a process runs exactly `sleep MARKER`.
fn sleeping(marker: &str) -> bool {
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
        })
    })
}

/// Sends a synchronous `POST /v1/executions` of `body` and leaves once its program sleeps as
/// `sleep MARKER`, before the answer: the server cancels the execution.
fn leave_before_the_answer(server: &LiveServer, body: &str, marker: &str) {
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /v1/executions HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            live_server::TOKEN,
            body.len()
        )
        .as_bytes(),
    )
    .expect("sent");
    assert!(
        eventually(Duration::from_secs(30), || sleeping(marker)),
        "the program never ran: {}",
        server.log()
    );
    drop(stream);
    assert!(
        eventually(Duration::from_secs(30), || !sleeping(marker)),
        "the program outlived its client"
    );
}

/// `GET /v1/history`, parsed.
fn history(server: &LiveServer) -> Vec<Value> {
    let (status, body) = server.request("GET", "/v1/history", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .expect("JSON")
        .as_array()
        .expect("a list")
        .clone()
}

/// The recorded executions whose outcome is `cancelled`, once there are `n` of them: the
/// server records one once its sandbox is gone, off the client's path.
fn cancelled_in_history(server: &LiveServer, n: usize) -> Vec<Value> {
    let cancelled = |server: &LiveServer| -> Vec<Value> {
        history(server)
            .into_iter()
            .filter(|e| e["outcome"]["kind"] == "cancelled")
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(30), || cancelled(server).len() >= n),
        "{n} cancelled executions were never recorded: {:#?}",
        history(server)
    );
    cancelled(server)
}

/// Waits until `/metrics` counts one cancelled execution of the `v1` API and its one refused
/// call: the worker counts it once it let its sandbox go, just after the record.
fn counted_in_metrics(server: &LiveServer) {
    let lines = [
        "warden_security_violations_total{kind=\"denied_syscall\"} 1",
        "warden_execution_failures_total{api=\"v1\",kind=\"cancelled\"} 1",
    ];
    let metrics = || {
        let (status, metrics) = server.metrics();
        assert_eq!(status, 200, "{metrics}");
        metrics
    };
    assert!(
        eventually(Duration::from_secs(30), || {
            let metrics = metrics();
            lines.iter().all(|line| metrics.lines().any(|l| l == *line))
        }),
        "{lines:?} in\n{}",
        metrics()
    );
}

/// The gap docs/events.md named: a caller that leaves before its answer (or cancels its job)
/// took what the sandbox stopped with it, and could probe forbidden calls for ever without the
/// response rule seeing it. Cancelled executions are recorded with their events, and count.
#[test]
fn a_caller_that_cancels_its_probing_executions_is_refused_all_the_same() {
    let server = LiveServer::start(&format!(
        "{SANDBOXED}\n[response]\nevents = 2\nwithin = \"10m\"\naction = \"refuse\"\n"
    ));
    // One left before its answer.
    leave_before_the_answer(&server, &probing("611.25"), "611.25");
    // One asynchronous, deleted while it runs: answered as before (202, then `cancelled`).
    let (status, body) = server.request(
        "POST",
        "/v1/executions?wait=false",
        Some(&probing("612.25")),
    );
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert!(eventually(Duration::from_secs(30), || sleeping("612.25")));
    let path = format!("/v1/executions/{id}");
    let (status, body) = server.request("DELETE", &path, None);
    assert_eq!(status, 202, "{body}");
    assert!(
        eventually(Duration::from_secs(30), || {
            let (_, body) = server.request("GET", &path, None);
            serde_json::from_str::<Value>(&body)
                .is_ok_and(|job| job["error"]["kind"] == "cancelled")
        }),
        "the deleted job did not finish as cancelled"
    );
    cancelled_in_history(&server, 2);
    let fine = r#"{"language": "bash", "code": "echo fine"}"#;
    let (status, body) = server.request("POST", "/v1/executions", Some(fine));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("test caused 2 security events"), "{body}");
}

/// A cancelled execution is in the history as its caller's, outcome `cancelled`, with what
/// its sandbox stopped until the cancel: listed by `warden events`, counted by `/v1/stats`
/// and `/metrics`.
#[test]
fn a_cancelled_execution_is_recorded_with_the_events_of_its_sandbox() {
    let server = LiveServer::start(&format!("{SANDBOXED}\n{ADMIN}"));
    leave_before_the_answer(&server, &probing("613.25"), "613.25");
    let recorded = cancelled_in_history(&server, 1);
    let entry = &recorded[0];
    assert_eq!(entry["token"], "test", "{entry:#}");
    assert_eq!(entry["api"], "v1", "{entry:#}");
    assert_eq!(entry["mode"], "sandboxed", "{entry:#}");
    let events = server
        .world()
        .warden()
        .args(["events", "--json"])
        .output()
        .expect("warden events runs");
    let events: Value = serde_json::from_slice(&events.stdout).expect("JSON");
    let events = events.as_array().expect("a list");
    assert_eq!(events.len(), 1, "{events:#?}");
    let mount = &events[0];
    assert_eq!(mount["execution_id"], entry["id"], "{mount:#}");
    assert_eq!(mount["token"], "test", "{mount:#}");
    assert_eq!(mount["kind"], "denied_syscall", "{mount:#}");
    assert_eq!(mount["severity"], "high", "{mount:#}");
    assert_eq!(
        mount["detail"], "seccomp refused mount (EPERM), 3 times",
        "{mount:#}"
    );
    let (status, stats) = server.request("GET", "/v1/stats", None);
    assert_eq!(status, 200, "{stats}");
    let stats: Value = serde_json::from_str(&stats).expect("JSON");
    assert_eq!(stats["by_outcome"]["cancelled"], 1, "{stats:#}");
    assert_eq!(stats["security_violations"], 1, "{stats:#}");
    counted_in_metrics(&server);
}

/// Every test case counts (docs/events.md): cancelled during its second case, an execution is
/// recorded with the first case's result and the events of both runs.
#[test]
fn a_cancelled_execution_keeps_the_events_of_its_earlier_test_cases() {
    let server = LiveServer::start(SANDBOXED);
    let code = "import ctypes, os, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n\
                libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n\
                libc.unshare(0x10000000)\n\
                if sys.stdin.read().strip() == 'stay':\n    \
                    os.execvp('sleep', ['sleep', '614.25'])\nprint('ok')\n";
    let body = serde_json::json!({
        "language": "python", "code": code, "mode": "sandboxed", "limits": {"wall_time": "60s"},
        "tests": [{"stdin": "go", "expected_output": "ok\n"}, {"stdin": "stay"}]
    })
    .to_string();
    leave_before_the_answer(&server, &body, "614.25");
    let recorded = cancelled_in_history(&server, 1);
    let id = recorded[0]["id"].as_str().expect("an id");
    let shown = server
        .world()
        .warden()
        .args(["show", "--json", id])
        .output()
        .expect("warden show runs");
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    let violations = shown["security"]["violations"]
        .as_array()
        .expect("violations");
    let refused: Vec<&Value> = violations
        .iter()
        .filter(|v| v["kind"] == "denied_syscall")
        .map(|v| &v["syscall"]["name"])
        .collect();
    assert_eq!(
        refused,
        ["mount", "unshare", "mount", "unshare"],
        "both cases' refused calls: {shown:#}"
    );
}

/// A session stopped under its call (a `DELETE`, its lifetime, the server's stop) cancels the
/// call: the call is recorded with what its sandbox stopped, as a cancelled execution is.
#[test]
fn a_call_its_session_stop_cancelled_is_recorded_with_its_events() {
    let server = LiveServer::start(&format!("{SANDBOXED}\n{ADMIN}"));
    let (status, body) = server.request("POST", "/v1/sessions", Some("{}"));
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // A session's call has the session's mode: it names none.
    let mut call: Value = serde_json::from_str(&probing("615.25")).expect("JSON");
    call.as_object_mut().expect("an object").remove("mode");
    let call = call.to_string();
    let exec = format!("/v1/sessions/{id}/exec");
    std::thread::scope(|s| {
        let calling = s.spawn(|| server.request("POST", &exec, Some(&call)));
        assert!(
            eventually(Duration::from_secs(30), || sleeping("615.25")),
            "the call never ran: {}",
            server.log()
        );
        let (status, body) = server.request("DELETE", &format!("/v1/sessions/{id}"), None);
        assert_eq!(status, 204, "{body}");
        let (status, body) = calling.join().expect("the call's client");
        assert_ne!(status, 200, "the call was stopped: {body}");
    });
    let recorded = cancelled_in_history(&server, 1);
    let violations = &recorded[0]["security"]["violations"];
    assert_eq!(
        violations[0]["detail"], "seccomp refused mount (EPERM), 3 times",
        "{recorded:#?}"
    );
    assert_eq!(
        violations.as_array().map(Vec::len),
        Some(1),
        "{recorded:#?}"
    );
    counted_in_metrics(&server);
}

/// An execution still running at the server's shutdown deadline is cancelled, and recorded
/// before the server exits: a caller cannot hide its probing behind a restart.
#[test]
fn an_execution_the_shutdown_deadline_cancelled_is_recorded_before_the_exit() {
    let mut server = LiveServer::start(&format!(
        "{SANDBOXED}\n[server]\nshutdown_deadline = \"1s\"\n"
    ));
    let body = probing("616.25");
    std::thread::scope(|s| {
        let calling = s.spawn(|| server.request("POST", "/v1/executions", Some(&body)));
        assert!(
            eventually(Duration::from_secs(30), || sleeping("616.25")),
            "the program never ran: {}",
            server.log()
        );
        let pid = nix::unistd::Pid::from_raw(i32::try_from(server.pid()).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signalled");
        let (status, answer) = calling.join().expect("the client");
        // Answered as before: the server is shutting down.
        assert_eq!(status, 503, "{answer}");
    });
    server.stop(Duration::from_secs(40));
    let out = server
        .world()
        .warden()
        .args(["history", "--json", "--outcome", "cancelled"])
        .output()
        .expect("warden history runs");
    let recorded: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let recorded = recorded.as_array().expect("a list");
    assert_eq!(recorded.len(), 1, "{recorded:#?}\n{}", server.log());
    assert_eq!(
        recorded[0]["security"]["violations"][0]["detail"],
        "seccomp refused mount (EPERM), 3 times",
        "{recorded:#?}"
    );
}
