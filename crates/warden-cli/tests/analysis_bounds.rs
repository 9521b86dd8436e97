//! End to end: the analysis of hostile code is bounded in memory and time, whatever the
//! parser does (docs/analysis.md#bounds). A few kilobytes of `a=|` made tree-sitter's
//! end-of-input step take 4.7 GB and 25 s inside warden's own process, where the analysis
//! budget could not stop it (hunter report F1); tool registrations analysed outside admission
//! (F4). The bounds asserted here are generous: they tell "bounded" from "minutes and
//! gigabytes", not a speed.

mod live_server;

use std::time::{Duration, Instant};

use live_server::support::World;
use live_server::LiveServer;

/// The program that made tree-sitter allocate gigabytes in one step (12 KB).
fn quadratic_c() -> String {
    "a=|".repeat(4000)
}

/// Peak resident memory of process `pid` (`VmHWM`), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

/// `warden analyze --json FILE` under `prlimit LIMIT` (for the whole command): its answer and
/// how long it took.
fn analyze_under(
    world: &World,
    file: &std::path::Path,
    limit: &str,
) -> (serde_json::Value, Duration) {
    let warden = world.warden();
    let started = Instant::now();
    let out = std::process::Command::new("prlimit")
        .arg(limit)
        .arg("--")
        .arg(warden.get_program())
        .args(["analyze", "--json"])
        .arg(file)
        .env_clear()
        .envs(warden.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .expect("prlimit runs warden");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).expect("JSON"), took)
}

/// `warden analyze` of the F1 program, under an address-space limit of 2 GiB for the whole
/// command (the unbounded analysis needed 4.7 GB and aborted at such a limit): it answers, at
/// once, that the analysis was stopped.
#[test]
fn the_cli_stops_an_analysis_that_would_take_gigabytes() {
    let world = World::new();
    let file = world.path().join("z.c");
    std::fs::write(&file, quadratic_c()).expect("written");
    let (answer, took) = analyze_under(&world, &file, &format!("--as={}", 2u64 << 30));
    let why = answer["parse_error"].as_str().unwrap_or_default();
    // Stopped at its memory limit, or, where the kernel was slow to give it the memory (a
    // loaded machine zeroing pages, which counts as its cpu), at the parse's cpu budget
    // first: either way an answer, graded as a parse that timed out.
    assert!(
        why.contains("analysis") || why.starts_with("parsing took longer than"),
        "{answer}"
    );
    assert_eq!(answer["threat_level"], "high", "{answer}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// Bug hunt hr2, F2: the analysing child raised the operator's soft address-space limit to
/// its hard one (`ulimit -S -v` was ignored): a parse of about 370 MB ran past a soft limit of
/// 300 MB, to the cpu budget. The lower of the two bounds holds.
#[test]
fn the_operators_soft_limit_bounds_the_analysis_too() {
    let world = World::new();
    let file = world.path().join("q.c");
    std::fs::write(&file, "a=|".repeat(1000)).expect("written");
    let (answer, _) = analyze_under(&world, &file, "--as=300000000:unlimited");
    let why = answer["parse_error"].as_str().unwrap_or_default();
    assert!(why.contains("was stopped"), "{answer}");
}

/// A Ruby scanner that loops quadratically inside one lex (hunter report F2: 290 KB took
/// 153 s of cpu) is stopped at the deadline.
#[test]
fn the_cli_stops_an_analysis_stuck_in_a_scanner() {
    let world = World::new();
    let file = world.path().join("r.rb");
    std::fs::write(&file, "\\ ".repeat(145_000)).expect("written");
    let started = Instant::now();
    let out = world
        .warden()
        .args(["analyze", "--json"])
        .arg(&file)
        .output()
        .expect("warden runs");
    let took = started.elapsed();
    assert!(out.status.success(), "{:?}", out.status);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(answer["parse_error"].is_string(), "{answer}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// Through a real server: the F1 program is answered quickly, the server's own memory stays
/// small (the analysis ran in a worker process, which was killed), and another request is
/// answered meanwhile and after.
#[test]
fn a_server_bounds_the_analysis_and_keeps_answering() {
    let server = LiveServer::start("[server]\nworkers = 2\n");
    let body = serde_json::json!({ "language": "c", "code": quadratic_c() }).to_string();
    let hostile = std::thread::scope(|scope| {
        let hostile = scope.spawn(|| {
            let started = Instant::now();
            let answer = server.request("POST", "/v1/executions", Some(&body));
            (answer, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        let probe = r#"{"language":"python","code":"print(1)"}"#;
        let (status, answer) = server.request("POST", "/v1/executions", Some(probe));
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("\"stdout\":\"1\\n\""), "{answer}");
        hostile.join().expect("the hostile request")
    });
    let ((status, answer), took) = hostile;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("the analysis"), "{answer}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let peak = peak_memory(server.pid());
    assert!(peak < 1 << 30, "the server's peak memory: {peak} bytes");
    // The worker that was killed is replaced.
    let (status, answer) = server.request(
        "POST",
        "/v1/executions",
        Some(r#"{"language":"python","code":"import os\nos.system('true')\n"}"#),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("python.os_system"), "{answer}");
}

/// A tool registration analyses the tool's program: it waits for a worker like an execution
/// (hunter report F4: four registrations analysed at once with `workers = 2`). With the only
/// worker busy and no queue, a registration is refused as an execution would be.
#[test]
fn a_tool_registration_takes_a_worker_place() {
    let server = LiveServer::start("[server]\nworkers = 1\nqueue_size = 0\n");
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| {
            let sleeper = r#"{"language":"python","code":"import time\ntime.sleep(4)\n"}"#;
            server.request("POST", "/v1/executions", Some(sleeper))
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server
            .request("GET", "/v1/health", None)
            .1
            .contains("\"running\":1")
        {
            assert!(Instant::now() < deadline, "the sleeper never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let tool = serde_json::json!({
            "definition": "name = \"slow\"\ndescription = \"x\"\ncategory = \"compute\"\n\
                           [input]\ntype = \"object\"\n[run]\nprogram = \"t.py\"\n\
                           language = \"python\"\n",
            "files": { "t.py": "print(1)\n" },
        })
        .to_string();
        let (status, answer) = server.request("POST", "/v1/tools", Some(&tool));
        assert_eq!(status, 429, "{answer}");
        let (status, answer) = busy.join().expect("the sleeper");
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = server.request("POST", "/v1/tools", Some(&tool));
        assert_eq!(status, 201, "{answer}");
    });
}

/// Bug hunt: `warden analyze` read its whole file before looking at its first MiB:
/// `warden analyze /dev/zero` took all the memory there was. It reads what `warden run` would
/// (16 MiB), under an address-space limit here that the whole read would pass.
#[test]
fn analyze_reads_a_bounded_amount_of_its_file() {
    let world = World::new();
    let warden = world.warden();
    let out = std::process::Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(warden.get_program())
        .args(["analyze", "/dev/zero"])
        .env_clear()
        .envs(warden.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .expect("prlimit runs warden");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("larger than 16MiB"), "{stderr}");
}

/// Bug hunt: a finding's excerpt reached the terminal with the code's own control characters
/// (an escape that clears the screen or sets its title), in `warden analyze` and in the
/// refusal lines of `warden run`.
#[test]
fn excerpts_are_printed_with_their_control_characters_shown() {
    let world = World::new();
    let file = world.path().join("title.py");
    std::fs::write(&file, "import ctypes; ctypes.CDLL(\"\x1b]0;PWN\x07\")\n").expect("written");
    let analyzed = world
        .warden()
        .arg("analyze")
        .arg(&file)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&analyzed.stdout);
    assert!(text.contains("python.native_code"), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    let refused = world
        .warden()
        .args(["run", "--mode", "sandboxed"])
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("python.native_code"), "{stderr}");
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\x07'),
        "{stderr:?}"
    );
}
