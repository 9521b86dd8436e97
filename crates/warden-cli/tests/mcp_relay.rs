//! `warden mcp wrap` with servers that misbehave (issue 11), spoken to in raw JSON-RPC lines:
//! one that never answers (its call fails after the call timeout), one that floods its output
//! (a limit ends it), one that sends a line too long to be a message (stopped), and a server
//! described by a registered tool file (`[run] mcp = [...]`), which waits for approval when its
//! category needs it. Needs root (real sandboxes), as CI runs.

mod support;

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::Value;
use support::World;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#;

/// Runs `warden mcp wrap ARGS` with `input` as the client's side (closed after it).
fn wrap(world: &World, args: &[&str], input: &str) -> Output {
    let mut child = world
        .warden()
        .args(["mcp", "wrap"])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("warden runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("input written");
    drop(stdin);
    child.wait_with_output().expect("warden ends")
}

/// `warden tool stats --json` in `world`.
fn tool_stats(world: &World) -> Value {
    support::json_of(
        &world
            .warden()
            .args(["tool", "stats", "--json"])
            .output()
            .expect("runs"),
    )
}

fn messages(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A read-only path that the sandbox's own mounts would hide (its /tmp, its workspace) is
/// refused, naming what covers it, instead of being left out in silence.
#[test]
fn a_read_only_path_the_sandbox_would_hide_is_refused() {
    let world = World::new();
    let hidden = world.path().join("kept");
    std::fs::create_dir(&hidden).expect("mkdir");
    assert!(
        hidden.starts_with("/tmp"),
        "the world lives under /tmp: {hidden:?}"
    );
    let out = wrap(
        &world,
        &[
            "x",
            "--read-only",
            hidden.to_str().expect("utf-8"),
            "--",
            "/bin/true",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("is under /tmp, which the sandbox mounts its own over"),
        "{stderr}"
    );
}

/// Bug hunt: `/etc` (where the sandbox writes its own passwd) or a path under a bind the
/// sandbox already has (/bin/ls) was accepted, and every run failed at setup with a 500.
#[test]
fn a_read_only_path_the_sandbox_cannot_bind_is_refused() {
    let world = World::new();
    for (path, says) in [
        ("/etc", "writes its own /etc/passwd"),
        ("/bin/ls", "shows it already, read-only, under"),
    ] {
        let out = wrap(&world, &["x", "--read-only", path, "--", "/bin/true"], "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{path}: {stderr}");
        assert!(stderr.contains(says), "{path}: {stderr}");
    }
}

#[test]
fn a_call_the_server_never_answers_fails_after_the_call_timeout() {
    let world = World::new();
    // Reads every message and answers none; it ends when its stdin does.
    let script = "sleep 4; cat > /dev/null";
    let out = {
        let mut child = world
            .warden()
            .args([
                "mcp",
                "wrap",
                "mute",
                "--call-timeout",
                "1s",
                "--",
                "/bin/sh",
                "-c",
                script,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("warden runs");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{CALL}").expect("written");
        // Keep the client's side open past the timeout, then leave.
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(stdin);
        child.wait_with_output().expect("warden ends")
    };
    let sent = messages(&out);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["id"], 2);
    assert_eq!(sent[0]["error"]["code"], -32001, "{sent:?}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = tool_stats(&world);
    assert_eq!(stats["tools"][0]["tool"], "mute/slow", "{stats:#}");
    assert_eq!(stats["tools"][0]["failures"], 1, "{stats:#}");
}

#[test]
fn a_flooding_server_is_ended_by_its_output_limit() {
    let world = World::new();
    // Lines of 4 KiB: the 64 MiB limit is reached in a fraction of the 5 s a server has to
    // exit once its client has left.
    let script = "yes \"$(head -c 4095 /dev/zero | tr '\\0' y)\"";
    let out = wrap(
        &world,
        &["flood", "--", "/bin/sh", "-c", script],
        &format!("{INITIALIZE}\n"),
    );
    // 122: the output limit (docs/cli.md); the flood is no JSON, so the client got nothing
    // from it but the error that the server ended.
    assert_eq!(
        out.status.code(),
        Some(122),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for message in messages(&out) {
        assert!(message.get("error").is_some(), "{message}");
    }
}

#[test]
fn a_line_too_long_to_be_a_message_stops_the_server() {
    let world = World::new();
    let script = "head -c 20000000 /dev/zero | tr '\\0' a; sleep 30";
    let out = wrap(
        &world,
        &["long", "--", "/bin/sh", "-c", script],
        &format!("{INITIALIZE}\n{CALL}\n"),
    );
    // Bug hunt: it was stopped as a policy denial is (120, the call counted as a violation);
    // a message over 16 MiB is the output limit (docs/mcp.md): 122, the call a failure.
    assert_eq!(
        out.status.code(),
        Some(122),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("longer than 16 MiB"), "{stderr}");
    let stats = tool_stats(&world);
    assert_eq!(stats["tools"][0]["tool"], "long/slow", "{stats:#}");
    assert_eq!(stats["tools"][0]["failures"], 1, "{stats:#}");
    assert_eq!(stats["tools"][0]["violations"], 0, "{stats:#}");
}

#[test]
fn a_registered_server_is_wrapped_by_name_once_approved() {
    let world = World::with_config("[tools]\napproval = [\"host\"]\n");
    let file = world.path().join("echo.toml");
    std::fs::write(
        &file,
        "name = \"echo\"\ndescription = \"Echoes every message back.\"\ncategory = \"host\"\n\
         [input]\ntype = \"object\"\n[run]\nmcp = [\"/bin/cat\"]\n",
    )
    .expect("tool file");
    let registered = world
        .warden()
        .args(["tool", "register"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let early = wrap(&world, &["echo"], &format!("{INITIALIZE}\n"));
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("approval"));
    let approved = world
        .warden()
        .args(["tool", "approve", "echo"])
        .output()
        .expect("runs");
    assert!(approved.status.success());
    let out = wrap(&world, &["echo"], &format!("{INITIALIZE}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = messages(&out);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        sent[0]["method"], "initialize",
        "cat echoes the message: {sent:?}"
    );
    // The echo is no answer: once cat ended, the request is answered with why.
    assert_eq!(sent[1]["id"], 1, "{sent:?}");
    assert!(
        sent[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ended before answering")),
        "{sent:?}"
    );
    // It is not a tool: calling it is refused with the way to run it.
    let call = world
        .warden()
        .args(["tool", "call", "echo"])
        .output()
        .expect("runs");
    assert_eq!(call.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&call.stderr).contains("warden mcp wrap echo"));
}

/// Bug hunt: the relay forwarded every answer of the server: one to an id the client never
/// sent, and a second one to a call already answered. Only the first answer to each request
/// of the client reaches it now.
#[test]
fn answers_to_requests_never_sent_or_answered_already_are_dropped() {
    let world = World::new();
    let script = "read line; \
        printf '%s\\n' '{\"jsonrpc\":\"2.0\",\"id\":12345,\"result\":{}}' \
        '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}}' \
        '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[]}}' \
        '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}'; \
        sleep 1";
    let out = wrap(
        &world,
        &["liar", "--", "/bin/sh", "-c", script],
        &format!("{CALL}\n"),
    );
    let sent = messages(&out);
    let answers: Vec<&Value> = sent.iter().filter(|m| m.get("id").is_some()).collect();
    assert_eq!(answers.len(), 1, "{sent:?}");
    assert_eq!(answers[0]["id"], 2, "{sent:?}");
    assert!(
        sent.iter().any(|m| m["method"] == "notifications/message"),
        "a notification still passes: {sent:?}"
    );
}

/// A wrapped server whose every `tools/call` opens a CONNECT tunnel to `argv[1]` through the
/// proxy, sends a TLS ClientHello naming `argv[2]` (none if empty), and answers with what came
/// back.
const TUNNELLING_SERVER: &str = r#"
import json, socket, struct, sys

def client_hello(name):
    ext = b""
    if name:
        n = name.encode()
        ext = struct.pack(">HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
    body = b"\x03\x03" + b"\x07" * 32 + b"\x00\x00\x02\x13\x01\x01\x00" + struct.pack(">H", len(ext)) + ext
    handshake = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake

for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") != "tools/call":
        continue
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[1].encode())
    head = s.recv(200).split(b"\r\n")[0].decode()
    s.sendall(client_hello(sys.argv[2]))
    text = "%s | %s" % (head, s.recv(100).decode())
    answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [{"type": "text", "text": text}]}}
    print(json.dumps(answer), flush=True)
"#;

/// A server on the host's loopback that answers whatever it is sent with `hello`: its port.
fn hello_server() -> u16 {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.read(&mut [0; 4096]);
            let _ = stream.write_all(b"hello");
        }
    });
    port
}

/// A world allowing only the policy `name` of `rule` (a `[[rule]]` body), which exempts the
/// loopback from the deny set, as the operator would import it.
fn world_with_policy(name: &str, rule: &str) -> World {
    let world = World::with_config(&format!(
        "[network]\nallowed = [\"no_access\", \"{name}\"]\n"
    ));
    let file = world.path().join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\ndescription = \"a test server on the loopback\"\n\
             level = \"custom\"\ndefault_action = \"deny\"\nallow_denied = [\"127.0.0.1\", \"::1\"]\n\n\
             [[rule]]\n{rule}action = \"allow\"\nreason = \"the test server\"\n"
        ),
    )
    .expect("policy written");
    let imported = world
        .warden()
        .args(["network", "import"])
        .arg(&file)
        .output()
        .expect("warden runs");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    world
}

/// Bug hunt: the server was stopped for a connection its policy allowed. An `https` rule on a
/// port other than 443 is decided by asking whether tcp is allowed there first (it is not),
/// then https (it is): the relay's hook heard the first question as a denial, while the
/// traffic log recorded the tunnel as allowed by the rule. It follows the decision applied
/// now.
#[test]
fn a_tunnel_an_https_rule_allows_on_another_port_does_not_stop_the_server() {
    let port = hello_server();
    let world = world_with_policy(
        "tls_port",
        &format!("protocol = \"https\"\nhost = \"127.0.0.1\"\nports = {port}\n"),
    );
    let out = wrap(
        &world,
        &[
            "tunnel",
            "--network",
            "tls_port",
            "--",
            "/usr/bin/python3",
            "-c",
            TUNNELLING_SERVER,
            &format!("127.0.0.1:{port}"),
            "",
        ],
        &format!("{CALL}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let sent = messages(&out);
    assert_eq!(sent.len(), 1, "{sent:?}\n{stderr}");
    assert_eq!(
        sent[0]["result"]["content"][0]["text"], "HTTP/1.1 200 Connection established | hello",
        "{sent:?}"
    );
}

/// Bug hunt: a tunnel the TLS check refused (its ClientHello named another host than the one
/// the tunnel was allowed for) did not stop the server: the check's refusal never went
/// through the policy's decider, where the hook was. It does now, as every refusal the
/// traffic log records.
#[test]
fn a_tunnel_the_tls_check_refuses_stops_the_server() {
    let port = hello_server();
    let world = world_with_policy(
        "name_port",
        &format!("protocol = \"tcp\"\nhost = \"localhost\"\nports = {port}\n"),
    );
    let out = wrap(
        &world,
        &[
            "tunnel",
            "--network",
            "name_port",
            "--",
            "/usr/bin/python3",
            "-c",
            TUNNELLING_SERVER,
            &format!("localhost:{port}"),
            "forbidden.test",
        ],
        &format!("{CALL}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(120), "{stderr}");
    let sent = messages(&out);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let message = sent[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("it tried to connect to localhost:{port}"))
            && message.contains("forbidden.test"),
        "{sent:?}"
    );
}

/// A server that stops reading its input is stopped as a failure, not as a policy denial: its
/// call fails and counts as a failure, and `warden mcp wrap` exits 1 (docs/cli.md).
#[test]
fn a_server_that_stops_reading_its_input_is_stopped_as_a_failure() {
    let world = World::new();
    // Closes its stdin, says so, then speaks every second (its next output after the stop
    // is when it is killed).
    let script = r#"exec 0<&-; echo '{"jsonrpc":"2.0","method":"notifications/closed"}'; while :; do sleep 1; echo '{}'; done"#;
    let mut child = world
        .warden()
        .args(["mcp", "wrap", "deaf", "--", "/bin/sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut next = || -> Value {
        let line = lines.next().expect("a message").expect("a line");
        serde_json::from_str(&line).expect("json")
    };
    assert_eq!(next()["method"], "notifications/closed");
    writeln!(stdin, "{CALL}").expect("written");
    let failed = next();
    assert_eq!(failed["id"], 2, "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("it stopped reading its input"),
        "{failed}"
    );
    drop(stdin);
    let out = child.wait_with_output().expect("warden ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let stats = tool_stats(&world);
    assert_eq!(stats["tools"][0]["tool"], "deaf/slow", "{stats:#}");
    assert_eq!(stats["tools"][0]["failures"], 1, "{stats:#}");
}

/// A wrapped server that holds each `tools/call` unanswered until a call of `flush`, then
/// answers the held calls not cancelled, and the `flush` with how many calls it held and how
/// many cancels it got.
const HOLDING_SERVER: &str = r#"
import json, sys

held, cancelled = [], []
def send(id, text):
    answer = {"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}}
    print(json.dumps(answer), flush=True)

for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "notifications/cancelled":
        cancelled.append(message["params"]["requestId"])
    elif message.get("method") == "tools/call" and message["params"]["name"] == "flush":
        for id in held:
            if id not in cancelled:
                send(id, "held")
        send(message["id"], json.dumps({"held": len(held), "cancelled": len(cancelled)}))
    elif message.get("method") == "tools/call":
        held.append(message["id"])
"#;

/// Hunt mcp 2: the relay compared the client's ids as JSON text, where `warden mcp` reads them
/// as rmcp does: `7.0` was passed on while `7` was in flight (and both answered), and a cancel
/// of `8.0` did not reach the call `8`. A whole number in float form is the integer now.
#[test]
fn an_id_in_float_form_is_the_integer_for_duplicates_and_cancels() {
    let world = World::new();
    let call = |id: &str, tool: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
        )
    };
    let cancel =
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":8.0}}"#;
    let input = [
        call("7", "slow"),
        call("7.0", "slow"),
        call("8", "slow"),
        cancel.to_owned(),
        call("\"8\"", "slow"),
        call("9", "flush"),
    ]
    .join("\n");
    let out = wrap(
        &world,
        &["holder", "--", "/usr/bin/python3", "-c", HOLDING_SERVER],
        &format!("{input}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let sent = messages(&out);
    let to = |id: Value| -> Vec<&Value> { sent.iter().filter(|m| m["id"] == id).collect() };
    let duplicate = to(serde_json::json!(7.0));
    assert_eq!(duplicate.len(), 1, "{sent:?}");
    assert_eq!(duplicate[0]["error"]["code"], -32600, "{sent:?}");
    assert_eq!(to(Value::from(7)).len(), 1, "{sent:?}");
    assert!(to(Value::from(8)).is_empty(), "8 was cancelled: {sent:?}");
    assert_eq!(to(Value::from("8")).len(), 1, "\"8\" is not 8: {sent:?}");
    let flushed = to(Value::from(9));
    assert_eq!(
        flushed[0]["result"]["content"][0]["text"], r#"{"held": 3, "cancelled": 1}"#,
        "{sent:?}"
    );
}
