//! End to end: the Judge0 and Piston APIs over plain HTTP against the real `warden serve`, for
//! what depends on the server's configuration (`[maxima]`, `sync_deadline`) and on its
//! restarts, which the unchanged clients of compat_clients.rs do not reach. Real sandboxes:
//! runs as root (CI does).

mod live_server;

use std::time::Duration;

use live_server::{eventually, LiveServer, TOKEN};
use serde_json::{json, Value};

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"))
}

/// The server's `[maxima]` for the tests below: well under the built-in ones.
const LOW_MAXIMA: &str =
    "[maxima]\ncpu_time = \"2s\"\nwall_time = \"4s\"\nmemory = \"128MiB\"\nmax_procs = 16\n";

/// Hunt compat 1: both APIs checked limits against warden's built-in maxima (300 s cpu, 8 GiB),
/// not the operator's `[maxima]`: a Judge0 `cpu_time_limit: 10` under a 2 s maximum was
/// accepted, echoed, and killed at 2 s as a Time Limit Exceeded; Piston's error quoted the
/// built-in maximum; `/config_info` advertised it. Each API now refuses, in its own shape and
/// naming the field, what is above the configured maximum, and says the configured values.
#[test]
fn limits_above_the_operators_maxima_are_refused_by_judge0_and_piston() {
    let server = LiveServer::start(LOW_MAXIMA);
    let judge0 = |extra: Value| {
        let mut body = json!({"language_id": 46, "source_code": "echo hi"});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        let path = "/submissions?wait=true&fields=stdout,status_id";
        server.request("POST", path, Some(&body.to_string()))
    };
    for (extra, field, message) in [
        (json!({"cpu_time_limit": 10}), "cpu_time_limit", "2"),
        (json!({"wall_time_limit": 4.5}), "wall_time_limit", "4"),
        (json!({"memory_limit": 1_000_000}), "memory_limit", "131072"),
        (
            json!({"max_processes_and_or_threads": 17}),
            "max_processes_and_or_threads",
            "16",
        ),
        (json!({"cpu_extra_time": 3}), "cpu_extra_time", "2"),
    ] {
        let (status, body) = judge0(extra.clone());
        assert_eq!(status, 422, "{extra}: {body}");
        assert_eq!(
            parsed(&body),
            json!({ field: [format!("must be less than or equal to {message}")] }),
            "{extra}"
        );
    }
    let (status, body) = judge0(json!({"cpu_time_limit": 2, "wall_time_limit": 4,
        "memory_limit": 131_072, "max_processes_and_or_threads": 16}));
    assert_eq!(status, 201, "at the maxima: {body}");
    assert_eq!(parsed(&body)["stdout"], "hi\n", "{body}");

    let piston = |extra: Value| {
        let mut body = json!({"language": "bash", "version": "*",
            "files": [{"content": "echo hi"}]});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        server.request("POST", "/api/v2/execute", Some(&body.to_string()))
    };
    for (field, value, limit) in [
        ("run_cpu_time", 10_000, "2000"),
        ("compile_cpu_time", 2_001, "2000"),
        ("run_timeout", 100_000, "4000"),
        ("compile_timeout", 4_001, "4000"),
        ("run_memory_limit", 134_217_729, "134217728"),
    ] {
        let (status, body) = piston(json!({ field: value }));
        assert_eq!(status, 400, "{field}: {body}");
        assert_eq!(
            parsed(&body),
            json!({"message": format!("{field} cannot exceed the configured limit of {limit}")}),
        );
    }
    let (status, body) = piston(json!({"run_cpu_time": 2000, "run_timeout": 4000}));
    assert_eq!(status, 200, "at the maxima: {body}");
    assert_eq!(parsed(&body)["run"]["stdout"], "hi\n", "{body}");

    let (status, body) = server.request("GET", "/config_info", None);
    assert_eq!(status, 200, "{body}");
    let info = parsed(&body);
    for (key, want) in [
        ("max_cpu_time_limit", json!(2.0)),
        ("max_cpu_extra_time", json!(2.0)),
        ("max_wall_time_limit", json!(4.0)),
        ("max_memory_limit", json!(131_072)),
        ("max_max_processes_and_or_threads", json!(16)),
        // The defaults a submission runs with are within the maxima too.
        ("wall_time_limit", json!(4.0)),
        ("memory_limit", json!(131_072)),
        ("max_processes_and_or_threads", json!(16)),
    ] {
        assert_eq!(info[key], want, "{key}: {body}");
    }
    assert!(
        info["cpu_time_limit"].as_f64().is_some_and(|v| v <= 2.0),
        "{body}"
    );
}

/// Hunt compat 1: a submission queued with `cpu_time_limit: 100`, kept through a restart whose
/// configuration lowered the maximum to 3 s, ran with 3 s (and ended Accepted, echoing 100).
/// It is answered with the new server's refusal, as docs/server.md#kept-answers says, and
/// never runs.
#[test]
fn a_kept_submission_above_a_lowered_maximum_is_refused_after_the_restart() {
    let config = |more: &str| {
        format!(
            "[server]\nworkers = 1\nshutdown_deadline = \"1s\"\n{more}\n\
             [[server.tokens]]\nname = \"test\"\ntoken = \"{TOKEN}\"\n"
        )
    };
    let server = LiveServer::start("[server]\nworkers = 1\nshutdown_deadline = \"1s\"\n");
    let slow = json!({"language": "bash", "code": "exec sleep 600.5",
        "limits": {"wall_time": "60s"}});
    let (status, body) =
        server.request("POST", "/v1/executions?wait=false", Some(&slow.to_string()));
    assert_eq!(status, 202, "{body}");
    let job = parsed(&body)["id"].as_str().expect("an id").to_owned();
    let running = eventually(Duration::from_secs(30), || {
        let (_, body) = server.request("GET", &format!("/v1/executions/{job}"), None);
        parsed(&body)["state"] == "running"
    });
    assert!(running, "the slow job never ran:\n{}", server.log());
    let submission = json!({"language_id": 46, "source_code": "echo ran-above-the-maximum",
        "cpu_time_limit": 100});
    let (status, body) = server.request("POST", "/submissions", Some(&submission.to_string()));
    assert_eq!(status, 201, "{body}");
    let token = parsed(&body)["token"].as_str().expect("a token").to_owned();

    let server = server.restart_with(|world| {
        world.write_config(&config("[maxima]\ncpu_time = \"3s\"\n"));
    });
    let path = format!("/submissions/{token}?base64_encoded=false&fields=status_id,stdout,message");
    let mut answer = Value::Null;
    let finished = eventually(Duration::from_secs(30), || {
        let (status, body) = server.request("GET", &path, None);
        assert_eq!(status, 200, "{body}");
        answer = parsed(&body);
        answer["status_id"].as_u64().is_some_and(|s| s > 2)
    });
    assert!(finished, "never answered: {answer}\n{}", server.log());
    assert_eq!(answer["status_id"], 13, "{answer}");
    assert_eq!(answer["stdout"], Value::Null, "it ran: {answer}");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("this server refuses it")
            && message.contains("cpu_time_limit")
            && message.contains("must be less than or equal to 3"),
        "{answer}"
    );
}

/// Hunt compat 2: `[server] sync_deadline` bounded `/v1` alone; a Piston execute or a Judge0
/// `wait=true` held its connection (and its worker) for as long as the program ran. Past the
/// deadline each API answers 504 in its own shape, and the program is killed: the only worker
/// is free for the next request at once.
#[test]
fn piston_and_judge0_wait_answer_504_at_the_synchronous_deadline() {
    let server = LiveServer::start("[server]\nworkers = 1\nsync_deadline = \"2s\"\n");
    let piston = json!({"language": "bash", "version": "*",
        "files": [{"content": "exec sleep 20.25"}], "run_timeout": 30000});
    let started = std::time::Instant::now();
    let (status, body) = server.request("POST", "/api/v2/execute", Some(&piston.to_string()));
    assert_eq!(status, 504, "{body}");
    let message = parsed(&body)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("synchronous deadline of 2s"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered after {:?}",
        started.elapsed()
    );

    let judge0 = json!({"language_id": 46, "source_code": "exec sleep 20.5",
        "wall_time_limit": 30});
    let started = std::time::Instant::now();
    let (status, body) =
        server.request("POST", "/submissions?wait=true", Some(&judge0.to_string()));
    assert_eq!(status, 504, "{body}");
    let error = parsed(&body)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("synchronous deadline of 2s"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered after {:?}",
        started.elapsed()
    );

    // Both programs were killed: the one worker runs the next request at once.
    let quick = json!({"language": "bash", "version": "*", "files": [{"content": "echo next"}]});
    let (status, body) = server.request("POST", "/api/v2/execute", Some(&quick.to_string()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(parsed(&body)["run"]["stdout"], "next\n", "{body}");
}

/// A loopback listener that answers every request 200 and keeps what it was sent.
struct CallbackListener {
    addr: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CallbackListener {
    fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        let received = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
        let kept = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 65536];
                // Head, then as much body as its length says.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                let text = String::from_utf8_lossy(&request).into_owned();
                kept.lock().expect("lock").push(text);
            }
        });
        Self { addr, received }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }
}

/// Hunt compat 4: a submission running when its server stopped is answered by the next one as
/// status 13 ("warden stopped"), and its `callback_url` never heard of it: a client that
/// waits for callbacks rather than polling waited forever. The next server `PUT`s it.
#[test]
fn a_submission_interrupted_by_a_restart_gets_its_callback() {
    let config = "[server]\nworkers = 1\nshutdown_deadline = \"1s\"\njudge0_callbacks = true\n";
    let listener = CallbackListener::start();
    let server = LiveServer::start(config);
    let submission = json!({"language_id": 46, "source_code": "exec sleep 600.125",
        "wall_time_limit": 60, "callback_url": listener.url("/interrupted")});
    let (status, body) = server.request("POST", "/submissions", Some(&submission.to_string()));
    assert_eq!(status, 201, "{body}");
    let token = parsed(&body)["token"].as_str().expect("a token").to_owned();
    let path = format!("/submissions/{token}?fields=status_id");
    let running = eventually(Duration::from_secs(30), || {
        parsed(&server.request("GET", &path, None).1)["status_id"] == 2
    });
    assert!(running, "never ran:\n{}", server.log());

    let server = server.restart();
    let (_, body) = server.request("GET", &path, None);
    assert_eq!(parsed(&body)["status_id"], 13, "{body}");
    let called = eventually(Duration::from_secs(30), || {
        listener
            .received()
            .iter()
            .any(|r| r.starts_with("PUT /interrupted ") && r.contains(&token))
    });
    assert!(
        called,
        "no callback: {:?}\n{}",
        listener.received(),
        server.log()
    );
    let put = listener
        .received()
        .into_iter()
        .find(|r| r.starts_with("PUT /interrupted "))
        .expect("the callback");
    let (_, sent) = put.split_once("\r\n\r\n").expect("a body");
    let sent = parsed(sent);
    assert_eq!(sent["token"], token.as_str(), "{sent}");
    assert_eq!(sent["status"]["id"], 13, "{sent}");
}

/// Hunt compat (j0) 2, 3 and 4, against the real server: with `number_of_runs` Judge0 stops
/// at the first run that is not Accepted (warden ran them all and showed the last); an empty
/// stdout or stderr is `null` (was `""`), in a callback too; a run killed by a signal or a
/// limit has `exit_code` 0 (was `null`); a time limit's `message` is isolate's.
#[test]
fn judge0_stops_runs_shows_empty_output_as_null_and_limits_in_isolates_words() {
    let listener = CallbackListener::start();
    let server = LiveServer::start("[server]\njudge0_callbacks = true\n");
    let submit = |query: &str, body: Value| {
        let path = format!("/submissions?wait=true&{query}");
        let (status, answer) = server.request("POST", &path, Some(&body.to_string()));
        assert_eq!(status, 201, "{body}: {answer}");
        parsed(&answer)
    };
    let python = |code: &str, extra: Value| {
        let mut body = json!({"language_id": 71, "source_code": code});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        body
    };

    // Every run fails: the first one is shown, and no other ran.
    let fails = python(
        "import sys\nprint('x')\nsys.exit(3)",
        json!({"number_of_runs": 4}),
    );
    let answer = submit("fields=status,stdout,exit_code,warden", fails);
    assert_eq!(answer["status"]["id"], 11, "{answer}");
    assert_eq!(
        (&answer["stdout"], &answer["exit_code"]),
        (&json!("x\n"), &json!(3))
    );
    assert_eq!(answer["warden"]["runs"], 1, "{answer}");
    // A wrong answer stops them too; every run accepted, all ran.
    let wrong = python(
        "print('x')",
        json!({"number_of_runs": 3, "expected_output": "y"}),
    );
    let answer = submit("fields=status,warden", wrong);
    assert_eq!(
        (&answer["status"]["id"], &answer["warden"]["runs"]),
        (&json!(4), &json!(1))
    );
    let right = python(
        "print('x')",
        json!({"number_of_runs": 3, "expected_output": "x"}),
    );
    let answer = submit("fields=status,warden", right);
    assert_eq!(
        (&answer["status"]["id"], &answer["warden"]["runs"]),
        (&json!(3), &json!(3))
    );

    // Nothing printed: null, base64 or not, and in the callback.
    // (`cGFzcw==` is `pass` in base64.)
    for (query, code) in [("", "pass"), ("base64_encoded=true&", "cGFzcw==")] {
        let quiet = python(code, json!({"callback_url": listener.url("/quiet")}));
        let answer = submit(&format!("{query}fields=stdout,stderr,exit_code"), quiet);
        let nothing = json!({"stdout": null, "stderr": null, "exit_code": 0});
        assert_eq!(answer, nothing, "{query}");
    }
    let called = eventually(Duration::from_secs(30), || listener.received().len() == 2);
    assert!(
        called,
        "callbacks: {:?}\n{}",
        listener.received(),
        server.log()
    );
    for put in listener.received() {
        let (_, sent) = put.split_once("\r\n\r\n").expect("a body");
        let sent = parsed(sent);
        assert_eq!(
            (&sent["stdout"], &sent["stderr"]),
            (&Value::Null, &Value::Null),
            "{sent}"
        );
    }

    // Killed by a signal or a limit: exit code 0, isolate's message.
    let fields = "fields=status,exit_code,exit_signal,message";
    let answer = submit(
        fields,
        python("import os\nos.kill(os.getpid(), 11)", json!({})),
    );
    assert_eq!(
        answer,
        json!({"status": {"id": 7, "description": "Runtime Error (SIGSEGV)"}, "exit_code": 0,
               "exit_signal": 11, "message": "Caught fatal signal 11"})
    );
    for (code, limit, message) in [
        (
            "while True: pass",
            json!({"cpu_time_limit": 1}),
            "Time limit exceeded",
        ),
        (
            "import time\ntime.sleep(5)",
            json!({"wall_time_limit": 1}),
            "Time limit exceeded (wall clock)",
        ),
    ] {
        let answer = submit(fields, python(code, limit));
        assert_eq!(answer["status"]["id"], 5, "{answer}");
        assert_eq!(
            (&answer["exit_code"], &answer["message"]),
            (&json!(0), &json!(message))
        );
    }
}
