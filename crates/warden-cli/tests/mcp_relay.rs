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
    let stats = support::json_of(
        &world
            .warden()
            .args(["tool", "stats", "--json"])
            .output()
            .expect("runs"),
    );
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
    assert_eq!(
        out.status.code(),
        Some(120),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("longer than 16 MiB"), "{stderr}");
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
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["method"], "initialize",
        "cat echoes the message: {sent:?}"
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
