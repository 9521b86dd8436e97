//! `/v1/tools` on the real server (issue 11): list, show, call (a tool's failure is a 200 with
//! `is_error`), register (201, a taken name 409, a refused file 422), remove, statistics, with
//! the token required. Needs root (CI runs as root).

mod live_server;

use live_server::{LiveServer, ADMIN};
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

const UPPER: &str = r#"
name = "upper"
description = "Upper-cases a text."
category = "compute"
[input]
type = "object"
required = ["text"]
[input.properties.text]
type = "string"
[run]
program = "upper.py"
stdin = "text"
"#;

#[test]
fn the_registry_over_http() {
    let server = LiveServer::start("");
    let (status, body) = server.request("GET", "/v1/tools", None);
    assert_eq!(status, 200, "{body}");
    let names: Vec<String> = parse(&body)
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"run_code".to_owned()), "{names:?}");
    let (status, body) = server.request("GET", "/v1/tools/jq", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["category"], "host");
    let (status, _) = server.request("GET", "/v1/tools/nope", None);
    assert_eq!(status, 404);

    let run = json!({"language": "bash", "code": "echo hi; exit 2"}).to_string();
    let (status, body) = server.request("POST", "/v1/tools/run_code/call", Some(&run));
    assert_eq!(status, 200, "{body}");
    let reply = parse(&body);
    assert_eq!(reply["is_error"], true, "{reply:#}");
    assert_eq!(reply["structured"]["stdout"], "hi\n");
    let (status, body) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"txt": 1}"#));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("missing required property"), "{body}");

    let register = json!({
        "definition": UPPER,
        "files": {"upper.py": "import sys\nprint(sys.stdin.read().upper(), end='')\n"},
    })
    .to_string();
    let (status, body) = server.request("POST", "/v1/tools", Some(&register));
    assert_eq!(status, 201, "{body}");
    assert_eq!(parse(&body)["status"]["state"], "active");
    let (status, _) = server.request("POST", "/v1/tools", Some(&register));
    assert_eq!(status, 409);
    let understated = json!({
        "definition": UPPER.replace("name = \"upper\"", "name = \"upper2\""),
        "files": {"upper.py": "import socket\nsocket.create_connection(('192.0.2.1', 80))\n"},
    })
    .to_string();
    let (status, body) = server.request("POST", "/v1/tools", Some(&understated));
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.request("POST", "/v1/tools/upper/call", Some(r#"{"text": "abc"}"#));
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["text"], "ABC");

    let (status, body) = server.request("GET", "/v1/tools/stats", None);
    assert_eq!(status, 200, "{body}");
    let stats = parse(&body);
    let upper = stats["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["tool"] == "upper")
        .cloned()
        .expect("upper counted");
    assert_eq!(upper["successes"], 1, "{stats:#}");
    let (status, _) = server.request("DELETE", "/v1/tools/upper", None);
    assert_eq!(status, 204);
    let (status, _) = server.request("DELETE", "/v1/tools/jq", None);
    assert_eq!(status, 422);
}

/// Regression (hunt srv 2, 3): a tool file over the 4 MiB the registry loads was registered
/// (201) and kept, a tool no one could list, call or remove that held one of its token's 64
/// places; a program named past 255 bytes was a 500 that left its `.building-NAME` behind. Both
/// are refused (422, naming the bound or the key), nothing is left, and a registration an
/// earlier warden kept though it does not load is shown to its token with why, and removed.
#[test]
fn what_the_registry_cannot_keep_is_refused_and_what_it_skips_can_be_removed() {
    let server = LiveServer::start("");
    let registered = server.world().path().join("data/tools/registered");
    let program = "import sys\nprint(sys.stdin.read().upper(), end='')\n";
    let ghost = format!(
        "#{}\n{}",
        "p".repeat(4 << 20),
        UPPER.replace("\"upper\"", "\"ghost\"")
    );
    let register = json!({"definition": ghost, "files": {"upper.py": program}}).to_string();
    let (status, body) = server.request("POST", "/v1/tools", Some(&register));
    assert_eq!(status, 422, "{}", &body[..body.len().min(300)]);
    assert!(body.contains("larger than 4MiB"), "{body}");
    let name = format!("{}.py", "a".repeat(253));
    let long = UPPER
        .replace("\"upper\"", "\"long\"")
        .replace("upper.py", &name);
    let register = json!({"definition": long, "files": {name.clone(): program}}).to_string();
    let (status, body) = server.request("POST", "/v1/tools", Some(&register));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("[run] program"), "{body}");
    assert!(body.contains("longer than a file name can be"), "{body}");
    let left: Vec<_> = std::fs::read_dir(&registered)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|name| name == ".lock"),
        "left behind: {left:?}"
    );

    // As an earlier warden kept it: its token is told why it does not load, and removes it.
    let kept = registered.join("ghost");
    std::fs::create_dir_all(&kept).expect("mkdir");
    std::fs::write(kept.join("tool.toml"), &ghost).expect("write");
    std::fs::write(kept.join("upper.py"), program).expect("write");
    std::fs::write(kept.join("owner"), "test").expect("write");
    let (status, body) = server.request("GET", "/v1/tools/ghost", None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("does not load"), "{body}");
    assert!(body.contains("larger than 4MiB"), "{body}");
    assert!(!body.contains(&registered.display().to_string()), "{body}");
    let (status, body) = server.request("DELETE", "/v1/tools/ghost", None);
    assert_eq!(status, 204, "{body}");
    assert!(!kept.exists());
    let (status, _) = server.request("GET", "/v1/tools/ghost", None);
    assert_eq!(status, 404);
}

/// A tool that `warden tool register` (another process) registers, approves or removes beside
/// a running server is what the server serves at its next call: it loaded its registry once.
#[test]
fn what_the_cli_registers_beside_a_running_server_is_served() {
    let server = LiveServer::start("[tools]\napproval = [\"compute\"]\n");
    let dir = server.world().path().join("upper");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("upper.toml"), UPPER).expect("write");
    std::fs::write(
        dir.join("upper.py"),
        "import sys\nprint(sys.stdin.read().upper(), end='')\n",
    )
    .expect("write");
    let cli = |args: &[&str]| {
        let out = server
            .world()
            .warden()
            .arg("tool")
            .args(args)
            .output()
            .expect("warden tool runs");
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let call = || server.request("POST", "/v1/tools/upper/call", Some(r#"{"text": "abc"}"#));
    assert_eq!(call().0, 404, "not registered yet");
    cli(&["register", dir.join("upper.toml").to_str().expect("utf-8")]);
    let (status, body) = server.request("GET", "/v1/tools/upper", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse(&body)["status"]["state"], "pending", "{body}");
    assert_eq!(call().0, 409, "awaiting approval");
    cli(&["approve", "upper"]);
    let (status, body) = call();
    assert_eq!(
        (status, parse(&body)["text"].clone()),
        (200, json!("ABC")),
        "{body}"
    );
    cli(&["rm", "upper"]);
    assert_eq!(call().0, 404, "removed");
}

/// Bug hunt: any API token registered a `compute` tool with `read_only` host paths, active at
/// once, and read the host's world-readable files through it (the server's configuration,
/// with every token's secret, among them); another token could replace or remove it. Host
/// paths are category `host` now, a client's `host` tool waits for the operator's approval,
/// and a client changes only the tools its token registered.
#[test]
fn a_clients_tools_are_its_own_and_host_ones_wait_for_the_operator() {
    let server = LiveServer::start("[[server.tokens]]\nname = \"other\"\ntoken = \"t-other\"\n");
    let peek = |category: &str| {
        format!(
            "name = \"peek\"\ndescription = \"Shows a host file.\"\ncategory = \"{category}\"\n\
             [input]\ntype = \"object\"\n[run]\ncommand = [\"/bin/cat\", \"/etc/machine-id\"]\n\
             read_only = [\"/etc/machine-id\"]\n"
        )
    };
    let register = |category: &str, replace: bool| {
        json!({"definition": peek(category), "replace": replace}).to_string()
    };
    let upper = json!({
        "definition": UPPER,
        "files": {"upper.py": "print(1)\n"},
    });

    let (status, body) = server.request("POST", "/v1/tools", Some(&register("compute", false)));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("shows its program the host's /etc/machine-id"),
        "{body}"
    );
    let (status, body) = server.request("POST", "/v1/tools", Some(&register("host", false)));
    assert_eq!(status, 201, "{body}");
    assert_eq!(parse(&body)["status"]["state"], "pending", "{body}");
    let (status, body) = server.request("POST", "/v1/tools/peek/call", Some("{}"));
    assert_eq!(
        status, 409,
        "a client's host tool waits for approval: {body}"
    );

    // Another token neither replaces nor removes it; its own token does.
    let (status, body) = server.request_as(
        "t-other",
        "POST",
        "/v1/tools",
        Some(&register("host", true)),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.request_as("t-other", "DELETE", "/v1/tools/peek", None);
    assert_eq!(status, 403, "{body}");
    let (status, body) = server.request("POST", "/v1/tools", Some(&register("host", true)));
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.request("DELETE", "/v1/tools/peek", None);
    assert_eq!(status, 204, "{body}");

    // A file the tool does not run is refused, not dropped; one it runs registers.
    let mut extra = upper.clone();
    extra["files"]["helper.py"] = json!("x = 1\n");
    let (status, body) = server.request("POST", "/v1/tools", Some(&extra.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("runs no file named \\\"helper.py\\\""),
        "{body}"
    );

    // The operator's registration is the operator's: no token removes it.
    let dir = server.world().path().join("upper");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("upper.toml"), UPPER).expect("write");
    std::fs::write(dir.join("upper.py"), "print(1)\n").expect("write");
    let out = server
        .world()
        .warden()
        .args(["tool", "register"])
        .arg(dir.join("upper.toml"))
        .output()
        .expect("warden tool runs");
    assert!(out.status.success(), "{out:?}");
    let (status, body) = server.request("DELETE", "/v1/tools/upper", None);
    assert_eq!(status, 403, "{body}");
}

/// Bug hunt: registrations were neither charged to the token's rate nor bounded: one token
/// registered 2,100 tools at 60 requests a minute, and every other caller's `tools/list` grew
/// to 1.25 MB. Each registration takes a request of the rate now, and a token holds at most
/// 64 registered tools.
#[test]
fn a_tokens_registrations_are_charged_and_bounded() {
    // A registration waits for a worker like an execution: a queue that holds all 80 at once,
    // so that the registry's own bound is what refuses.
    let server = LiveServer::start(
        "[server]\nqueue_size = 128\n\
         [[server.tokens]]\nname = \"slow\"\ntoken = \"t-slow\"\nrequests_per_minute = 2\n",
    );
    let tool = |name: &str| {
        json!({"definition": format!(
            "name = \"{name}\"\ndescription = \"d\"\ncategory = \"host\"\n\
             [input]\ntype = \"object\"\n[run]\ncommand = [\"/bin/true\"]\n"
        )})
        .to_string()
    };
    for i in 0..2 {
        let (status, body) =
            server.request_as("t-slow", "POST", "/v1/tools", Some(&tool(&format!("s{i}"))));
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = server.request_as("t-slow", "POST", "/v1/tools", Some(&tool("s2")));
    assert_eq!(status, 429, "the rate: {body}");

    // At once (each registration made the server load a new registry, and each counted
    // against its own: 65 were kept), of one name twice among them.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let server = &server;
        let tool = &tool;
        let threads: Vec<_> = (0..80)
            .map(|i| {
                s.spawn(move || {
                    let name = format!("t{}", i.min(78));
                    server.request("POST", "/v1/tools", Some(&tool(&name))).0
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a client"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        64,
        "{statuses:?}"
    );
    let (status, body) = server.request("POST", "/v1/tools", Some(&tool("t79")));
    assert_eq!(status, 429, "the 65th: {body}");
    assert!(body.contains("as many as one may"), "{body}");
    let held: Vec<String> = {
        let (_, body) = server.request("GET", "/v1/tools", None);
        parse(&body)
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .filter(|n| n.starts_with('t') && n[1..].parse::<u32>().is_ok())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(held.len(), 64, "{held:?}");
    let (status, _) = server.request("DELETE", &format!("/v1/tools/{}", held[0]), None);
    assert_eq!(status, 204);
    let (status, body) = server.request("POST", "/v1/tools", Some(&tool("t79")));
    assert_eq!(status, 201, "a place freed: {body}");
    // `replace` replaces a registered tool only, not a built-in one.
    let builtin = json!({"definition": UPPER.replace("name = \"upper\"", "name = \"run_code\""),
                         "files": {"upper.py": "print(1)\n"}, "replace": true});
    let (status, body) = server.request("POST", "/v1/tools", Some(&builtin.to_string()));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not a registered tool"), "{body}");
}

/// Hunt tools 13: a built-in's name was answered 409 "set replace: true" (which then failed
/// with 422), and the 201 showed the server's own directory.
#[test]
fn a_builtins_name_is_refused_as_such_and_no_host_path_is_shown() {
    let server = LiveServer::start("");
    let wc = json!({"definition": UPPER.replace("name = \"upper\"", "name = \"wc\""),
                    "files": {"upper.py": "print(1)\n"}});
    let (status, body) = server.request("POST", "/v1/tools", Some(&wc.to_string()));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("comes from the binary"), "{body}");
    assert!(!body.contains("replace"), "{body}");
    let register = json!({
        "definition": UPPER,
        "files": {"upper.py": "import sys\nprint(sys.stdin.read().upper(), end='')\n"},
    });
    let (status, body) = server.request("POST", "/v1/tools", Some(&register.to_string()));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        parse(&body)["source"],
        json!({"kind": "registered"}),
        "{body}"
    );
    let (_, body) = server.request("GET", "/v1/tools/upper", None);
    assert_eq!(
        parse(&body)["source"],
        json!({"kind": "registered"}),
        "{body}"
    );
    let (_, body) = server.request("GET", "/v1/tools", None);
    assert!(!body.contains("\"path\":\"/"), "{body}");
}

/// The count of queue-time samples in `/metrics`.
fn queue_samples(server: &LiveServer) -> u64 {
    let (_, body) = server.metrics();
    body.lines()
        .find_map(|l| l.strip_prefix(r#"warden_stage_duration_seconds_count{stage="queue"} "#))
        .map_or(0, |n| n.trim().parse::<f64>().expect("a count") as u64)
}

/// Hunt tools 8: a call of an unknown tool, or with input its schema refuses, took a place in
/// the queue (429 when it was full), waited for a worker, and counted a queue-time sample; a
/// `files` call counted one too. They are refused at once now, and only executions count.
#[test]
fn a_call_refused_before_it_runs_takes_no_place_and_no_queue_time() {
    let server = LiveServer::start(&format!("[server]\nworkers = 1\nqueue_size = 1\n{ADMIN}"));
    let files = json!({"operation": "write", "path": "a.txt", "content": "x"}).to_string();
    let (status, body) = server.request("POST", "/v1/tools/files/call", Some(&files));
    assert_eq!(status, 200, "{body}");
    assert_eq!(queue_samples(&server), 0, "a files call");
    std::thread::scope(|s| {
        let sleeps: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let sleep = json!({"command": "sleep 3; echo slept"}).to_string();
                    server.request("POST", "/v1/tools/shell/call", Some(&sleep))
                })
            })
            .collect();
        // Both places taken: a third execution is refused (one that came before ran).
        let mut ran = 0;
        let full = (0..600).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let (status, _) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"text":"a"}"#));
            ran += u64::from(status == 200);
            status == 429
        });
        assert!(full, "the queue filled");
        let (status, body) = server.request("POST", "/v1/tools/nope/call", Some("{}"));
        assert_eq!(status, 404, "{body}");
        let (status, body) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"x":1}"#));
        assert_eq!(status, 422, "{body}");
        for sleep in sleeps {
            let (status, body) = sleep.join().expect("a client");
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(queue_samples(&server), 2 + ran, "the executions only");
    });
}

/// A `run_code` call whose `limits` are above the operator's maxima was refused
/// only once it had a place and a worker: with every place taken it was answered 429 (and
/// otherwise after the calls ahead of it). It is refused at once now, as the calls above are.
#[test]
fn a_run_code_call_above_the_maxima_is_refused_without_a_place() {
    let server =
        LiveServer::start("[server]\nworkers = 1\nqueue_size = 0\n[maxima]\nmemory = \"1GiB\"\n");
    std::thread::scope(|s| {
        let sleeping = s.spawn(|| {
            let sleep = json!({"command": "sleep 3.25; echo slept"}).to_string();
            server.request("POST", "/v1/tools/shell/call", Some(&sleep))
        });
        // Not before the sleep holds the worker: a probe that took it first would have the
        // sleep refused, and none of the probes after it (hunt hist, a race under load).
        let holding = (0..600).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            sleep_running("sleep 3.25")
        });
        assert!(holding, "the sleep did not start");
        let full = (0..600).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let (status, _) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"text":"a"}"#));
            status == 429
        });
        assert!(full, "the worker was taken");
        let over = json!({"language": "bash", "code": "echo ran",
                          "limits": {"memory": "2GiB"}})
        .to_string();
        let (status, body) = server.request("POST", "/v1/tools/run_code/call", Some(&over));
        assert_eq!(status, 200, "{body}");
        let reply = parse(&body);
        assert_eq!(reply["refused"], true, "{body}");
        assert_eq!(
            reply["text"], "limits.memory: 2GiB is above the operator's maximum of 1GiB",
            "{body}"
        );
        let (status, body) = sleeping.join().expect("a client");
        assert_eq!(status, 200, "{body}");
    });
}

/// Hunt hist 1: a call refused for its input (422) took none of the token's rate and was
/// recorded all the same: a token held to one request a minute wrote about 3,000 refusals a
/// second into the history. Every call takes a request of the rate now, refused ones
/// included; past the rate it is answered 429 and not recorded.
#[test]
fn a_refused_call_takes_a_request_of_the_rate() {
    let server = LiveServer::start(&format!(
        "[[server.tokens]]\nname = \"slow\"\ntoken = \"t-slow\"\nrequests_per_minute = 2\n{ADMIN}"
    ));
    for _ in 0..2 {
        let (status, body) = server.request_as(
            "t-slow",
            "POST",
            "/v1/tools/wc/call",
            Some(r#"{"text": 5}"#),
        );
        assert_eq!(status, 422, "{body}");
    }
    for call in [r#"{"text": 5}"#, r#"{"text": "a b"}"#] {
        let (status, body) = server.request_as("t-slow", "POST", "/v1/tools/wc/call", Some(call));
        assert_eq!(status, 429, "the rate is spent: {body}");
    }
    let (status, body) = server.request_as("t-slow", "POST", "/v1/tools/nope/call", Some("{}"));
    assert_eq!(status, 429, "an unknown tool too: {body}");
    let (status, body) = server.request_as("adm1n", "GET", "/v1/tools/stats", None);
    assert_eq!(status, 200, "{body}");
    let wc = parse(&body)["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["tool"] == "wc")
        .cloned()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        (wc["calls"].as_u64(), wc["refusals"].as_u64()),
        (Some(2), Some(2)),
        "{body}"
    );
}

/// True while a `sleep MARKER` process runs.
fn sleeping(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries.flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
            })
        })
        .unwrap_or(false)
}

/// Hunt hist 3: `POST /v1/tools/{name}/call` ignored `sync_deadline` (a `shell` call of
/// `sleep 5` under a 2 s deadline answered 200 after 5 s). It is answered 504 `deadline` at
/// the deadline now, as `/v1/executions` is: its program is killed and its execution recorded
/// as cancelled, and the worker is free for the next call.
#[test]
fn a_tool_call_past_the_synchronous_deadline_is_cancelled() {
    let server = LiveServer::start("[server]\nworkers = 1\nsync_deadline = \"2s\"\n");
    let marker = "42.4242";
    let started = std::time::Instant::now();
    let sleep = json!({"command": format!("exec sleep {marker}")}).to_string();
    let (status, body) = server.request("POST", "/v1/tools/shell/call", Some(&sleep));
    assert_eq!(status, 504, "{}", &body[..body.len().min(300)]);
    assert_eq!(parse(&body)["kind"], "deadline", "{body}");
    assert!(body.contains("tool call"), "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(
        live_server::eventually(std::time::Duration::from_secs(30), || !sleeping(marker)),
        "the program is killed at the deadline"
    );
    let cancelled = live_server::eventually(std::time::Duration::from_secs(30), || {
        let (_, body) = server.request("GET", "/v1/history?limit=1", None);
        parse(&body)[0]["outcome"]["kind"] == "cancelled"
    });
    assert!(cancelled, "recorded as cancelled");
    let (status, body) = server.request("POST", "/v1/tools/wc/call", Some(r#"{"text": "a b"}"#));
    assert_eq!(status, 200, "the worker is free: {body}");
}

/// Whether a process whose command line is `command` runs on this machine.
fn sleep_running(command: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|line| {
            line.split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(&b' ')
                == command.as_bytes()
        })
    })
}
