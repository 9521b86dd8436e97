//! The tool registry end to end (issue 11) through `warden tool`: every built-in tool called
//! for real in its sandbox, limits, bad input, registration with its assessment (hostile tool
//! files refused), wrapping a host command, approval, removal, and the statistics the history
//! keeps. Needs root (real sandboxes), as CI runs.

mod support;

use std::process::Output;

use serde_json::{json, Value};
use support::{host_address, json_of, World};

fn call(world: &World, tool: &str, input: Value) -> Output {
    world
        .warden()
        .args([
            "tool",
            "call",
            tool,
            "--json",
            "--input",
            &input.to_string(),
        ])
        .output()
        .expect("warden runs")
}

/// A call's reply, which must have come back (the tool ran, whatever its own result).
fn reply(world: &World, tool: &str, input: Value) -> Value {
    let out = call(world, tool, input);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{tool}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out)
}

/// `tool`'s line of `warden tool stats --json`.
fn stat_of(world: &World, tool: &str) -> Value {
    let stats = json_of(
        &world
            .warden()
            .args(["tool", "stats", "--json"])
            .output()
            .expect("runs"),
    );
    stats["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["tool"] == tool)
        .cloned()
        .unwrap_or_else(|| panic!("{tool} counted: {stats:#}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_built_in_tools_are_listed_with_their_assessment() {
    let world = World::new();
    let out = world
        .warden()
        .args(["tool", "list", "--json"])
        .output()
        .expect("warden runs");
    let tools = json_of(&out);
    let by_name = |name: &str| -> Value {
        tools
            .as_array()
            .expect("a list")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} listed: {tools:#}"))
    };
    for (name, category) in [
        ("run_code", "shell"),
        ("python", "shell"),
        ("shell", "shell"),
        ("files", "filesystem"),
        ("http_fetch", "network"),
        ("jq", "host"),
        ("grep", "host"),
        ("wc", "host"),
    ] {
        let tool = by_name(name);
        assert_eq!(tool["category"], category, "{tool:#}");
        assert_eq!(tool["status"]["state"], "active", "{tool:#}");
        assert_eq!(tool["input_schema"]["type"], "object", "{tool:#}");
    }
    assert_eq!(by_name("http_fetch")["network"], "internet_access");
}

#[test]
fn code_runners_run_their_input_in_a_sandbox() {
    let world = World::new();
    let run = reply(
        &world,
        "run_code",
        json!({"language": "python", "code": "import os\nprint(os.path.exists('/root'), 6 * 7)"}),
    );
    assert_eq!(run["is_error"], false, "{run:#}");
    assert_eq!(run["text"], "False 42\n");
    assert_eq!(run["structured"]["outcome"]["kind"], "exited");
    assert_eq!(run["execution"]["mode"], "sandboxed", "{run:#}");
    let python = reply(
        &world,
        "python",
        json!({"code": "print(input()[::-1])", "stdin": "abc"}),
    );
    assert_eq!(python["text"], "cba\n", "{python:#}");
    let shell = reply(
        &world,
        "shell",
        json!({"command": "echo out; echo err >&2; exit 3"}),
    );
    assert_eq!(shell["is_error"], true, "{shell:#}");
    assert_eq!(shell["structured"]["stdout"], "out\n");
    assert_eq!(shell["structured"]["stderr"], "err\n");
    assert!(
        shell["text"]
            .as_str()
            .unwrap_or("")
            .ends_with("[exited with status 3]"),
        "{shell:#}"
    );
    // Compiled languages go through their compile stage.
    let c = reply(
        &world,
        "run_code",
        json!({"language": "c", "code": "#include <stdio.h>\nint main(){puts(\"c ok\");}"}),
    );
    assert_eq!(c["text"], "c ok\n", "{c:#}");
}

#[test]
fn a_limit_ends_a_tool_with_a_tool_error_not_a_failed_call() {
    let world = World::new();
    let slow = reply(
        &world,
        "run_code",
        json!({"language": "bash", "code": "sleep 30", "limits": {"wall_time": "1s"}}),
    );
    assert_eq!(slow["is_error"], true, "{slow:#}");
    assert_eq!(
        slow["structured"]["outcome"]["kind"], "time_limit",
        "{slow:#}"
    );
    assert!(
        slow["text"].as_str().unwrap_or("").contains("time limit"),
        "{slow:#}"
    );
    let bomb = reply(
        &world,
        "shell",
        json!({"command": "yes | head -c 100000000"}),
    );
    assert_eq!(bomb["is_error"], true, "{bomb:#}");
    assert_eq!(
        bomb["structured"]["outcome"]["kind"], "output_limit",
        "{bomb:#}"
    );
    // Code that reaches for the network meets no network.
    let net = reply(
        &world,
        "python",
        json!({"code": "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)"}),
    );
    assert_eq!(net["is_error"], true, "{net:#}");
}

#[test]
fn wrapped_host_commands_take_their_input_as_arguments_and_stdin() {
    let world = World::new();
    let jq = reply(
        &world,
        "jq",
        json!({"filter": ".items | length", "document": "{\"items\": [1, 2, 3]}"}),
    );
    assert_eq!(jq["text"], "3\n", "{jq:#}");
    let grep = reply(
        &world,
        "grep",
        json!({"pattern": "^b", "text": "apple\nbanana\n"}),
    );
    assert_eq!(grep["text"], "banana\n", "{grep:#}");
    // An argument that would be an option is refused before anything runs (exit 2).
    let option = call(
        &world,
        "jq",
        json!({"filter": "--rawfile", "document": "1"}),
    );
    assert_eq!(option.status.code(), Some(2), "{}", stderr(&option));
    let option = json_of(&option);
    assert_eq!(option["is_error"], true, "{option:#}");
    assert!(option.get("execution").is_none(), "{option:#}");
    assert!(
        option["text"].as_str().unwrap_or("").contains("option"),
        "{option:#}"
    );
}

#[test]
fn bad_calls_are_refused_clearly() {
    let world = World::new();
    let unknown = call(&world, "no_such_tool", json!({}));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no tool named \"no_such_tool\""),
        "{}",
        stderr(&unknown)
    );
    let wrong = call(&world, "wc", json!({"txt": 1}));
    assert_eq!(wrong.status.code(), Some(2));
    let text = stderr(&wrong);
    assert!(
        text.contains("missing required property \"text\""),
        "{text}"
    );
    assert!(text.contains("unknown property \"txt\""), "{text}");
    let mut huge = world
        .warden()
        .args(["tool", "call", "wc", "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("warden runs");
    let input = json!({"text": "x".repeat(2 << 20)}).to_string();
    std::io::Write::write_all(&mut huge.stdin.take().expect("stdin"), input.as_bytes())
        .expect("input written");
    let huge = huge.wait_with_output().expect("warden ends");
    assert_eq!(huge.status.code(), Some(2), "{}", stderr(&huge));
    assert!(stderr(&huge).contains("bytes"), "{}", stderr(&huge));
    let not_json = world
        .warden()
        .args(["tool", "call", "wc", "--input", "{not json"])
        .output()
        .expect("warden runs");
    assert_eq!(
        not_json.status.code(),
        Some(2),
        "refused before anything ran"
    );
    assert!(stderr(&not_json).contains("not valid JSON"));
}

#[test]
fn files_live_in_the_callers_workspace_and_nowhere_else() {
    let world = World::new();
    let wrote = reply(
        &world,
        "files",
        json!({"operation": "write", "path": "notes/a.txt", "content": "hello"}),
    );
    assert_eq!(wrote["is_error"], false, "{wrote:#}");
    let read = reply(
        &world,
        "files",
        json!({"operation": "read", "path": "notes/a.txt"}),
    );
    assert_eq!(read["text"], "hello");
    let listed = reply(
        &world,
        "files",
        json!({"operation": "list", "path": "notes"}),
    );
    assert_eq!(listed["structured"]["entries"][0]["name"], "a.txt");
    for escape in ["../../../etc/passwd", "/etc/passwd", "notes/../../x"] {
        let refused = reply(
            &world,
            "files",
            json!({"operation": "read", "path": escape}),
        );
        assert_eq!(refused["is_error"], true, "{escape}: {refused:#}");
        assert!(
            !refused["text"].as_str().unwrap_or("").contains("root:"),
            "{refused:#}"
        );
    }
    let deleted = reply(
        &world,
        "files",
        json!({"operation": "delete", "path": "notes/a.txt"}),
    );
    assert_eq!(deleted["is_error"], false, "{deleted:#}");
}

/// Bug hunt: measuring the workspace held a descriptor open per directory waiting to be
/// measured: with 1 000 sibling directories under `ulimit -n 1024`, every write failed as
/// warden's own error (`EMFILE`, a 500 over HTTP). Here 300 of them under `ulimit -n 256`.
#[test]
fn files_writes_in_a_workspace_of_many_directories_within_few_descriptors() {
    let world = World::new();
    let wrote = reply(
        &world,
        "files",
        json!({"operation": "write", "path": "seed", "content": "x"}),
    );
    assert_eq!(wrote["is_error"], false, "{wrote:#}");
    let siblings = world
        .db()
        .parent()
        .expect("a directory")
        .join("tools/files/local/siblings");
    for n in 0..300 {
        std::fs::create_dir_all(siblings.join(n.to_string())).expect("a directory");
    }
    let warden = world.warden();
    let input = json!({"operation": "write", "path": "more/notes.txt", "content": "kept"});
    let out = std::process::Command::new("/bin/bash")
        .args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\""])
        .arg(warden.get_program())
        .args([
            "tool",
            "call",
            "files",
            "--json",
            "--input",
            &input.to_string(),
        ])
        .env_clear()
        .envs(world.env())
        .output()
        .expect("bash runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let read = reply(
        &world,
        "files",
        json!({"operation": "read", "path": "more/notes.txt"}),
    );
    assert_eq!(read["text"], "kept", "{read:#}");
}

const WORD_COUNT: &str = r#"
name = "word_count"
description = "Counts the words of a text."
category = "compute"
example = { text = "a b c" }

[input]
type = "object"
required = ["text"]
additionalProperties = false
[input.properties.text]
type = "string"

[output]
format = "json"

[run]
program = "word_count.py"
"#;

#[test]
fn a_registered_program_tool_is_assessed_called_counted_and_removed() {
    let world = World::new();
    let dir = world.path().join("word_count");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(dir.join("word_count.toml"), WORD_COUNT).expect("tool file");
    std::fs::write(
        dir.join("word_count.py"),
        "import json, sys\nprint(json.dumps({'words': len(json.load(sys.stdin)['text'].split())}))\n",
    )
    .expect("program");
    let out = world
        .warden()
        .args(["tool", "register"])
        .arg(dir.join("word_count.toml"))
        .output()
        .expect("warden runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let counted = reply(&world, "word_count", json!({"text": "one two three"}));
    assert_eq!(counted["structured"], json!({"words": 3}), "{counted:#}");
    // The call is an execution in the history.
    let id = counted["execution"]["id"]
        .as_str()
        .expect("an execution id");
    let shown = world
        .warden()
        .args(["show", id, "--json"])
        .output()
        .expect("runs");
    assert!(shown.status.success(), "{}", stderr(&shown));
    // Registering the same name again is refused; --replace replaces.
    let again = world
        .warden()
        .args(["tool", "register"])
        .arg(dir.join("word_count.toml"))
        .output()
        .expect("warden runs");
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        call(&world, "word_count", json!({"text": 5})).status.code(),
        Some(2)
    );
    let wc = stat_of(&world, "word_count");
    assert_eq!(wc["calls"], 2, "{wc:#}");
    assert_eq!(wc["successes"], 1, "{wc:#}");
    assert_eq!(wc["refusals"], 1, "{wc:#}");
    assert!(wc["latency_p50_ms"].is_u64(), "{wc:#}");
    let rm = world
        .warden()
        .args(["tool", "rm", "word_count"])
        .output()
        .expect("runs");
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert_eq!(
        call(&world, "word_count", json!({"text": "a"}))
            .status
            .code(),
        Some(2)
    );
    let builtin = world
        .warden()
        .args(["tool", "rm", "jq"])
        .output()
        .expect("runs");
    assert!(
        stderr(&builtin).contains("not a registered tool"),
        "{}",
        stderr(&builtin)
    );
}

/// Registers `definition` with a program `code` beside it, and returns the command's output.
fn register(world: &World, definition: &str, program: Option<(&str, &str)>) -> Output {
    let dir = tempfile::tempdir_in(world.path()).expect("dir");
    let file = dir.path().join("tool.toml");
    std::fs::write(&file, definition).expect("tool file");
    if let Some((name, code)) = program {
        std::fs::write(dir.path().join(name), code).expect("program");
    }
    world
        .warden()
        .args(["tool", "register"])
        .arg(&file)
        .output()
        .expect("warden runs")
}

/// Bug hunt: a registered tool's description reached the operator's terminal as it was, escape
/// sequences and all (retitling the window, clearing the screen, moving the cursor over the
/// assessment read before `warden tool approve`).
#[test]
fn a_tool_s_text_reaches_the_terminal_escaped() {
    let world = World::new();
    let definition = WORD_COUNT.replace(
        "description = \"Counts the words of a text.\"",
        "description = \"Counts words.\\u001b]0;owned\\u0007\\u001b[2J\\nfake: line\"",
    );
    let out = register(&world, &definition, Some(("word_count.py", "print(1)\n")));
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [&["tool", "list"][..], &["tool", "show", "word_count"]] {
        let out = world.warden().args(args).output().expect("warden runs");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains('\u{1b}'), "{args:?}: {text:?}");
        assert!(!text.contains('\u{7}'), "{args:?}: {text:?}");
        assert!(!text.contains("\nfake: line"), "{args:?}: {text:?}");
    }
    let shown = world
        .warden()
        .args(["tool", "show", "word_count"])
        .output()
        .expect("warden runs");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(r"Counts words.\u{1b}]0;owned\u{7}\u{1b}[2J\nfake: line"),
        "{text}"
    );
}

#[test]
fn hostile_tool_files_are_refused_at_registration() {
    let world = World::new();
    // Declares compute, opens connections: the analysis exceeds the declaration.
    let sneaky = register(
        &world,
        WORD_COUNT,
        Some((
            "word_count.py",
            "import socket\ns = socket.create_connection(('203.0.113.9', 80))\nprint(1)\n",
        )),
    );
    assert!(!sneaky.status.success());
    let why = stderr(&sneaky);
    assert!(why.contains("refused") && why.contains("network"), "{why}");
    // Unknown keys, invalid schemas, a builtin claimed by a registered file, a missing program.
    for (definition, expected) in [
        (
            WORD_COUNT.replace(
                "category = \"compute\"",
                "category = \"compute\"\ncolour = 1",
            ),
            "colour",
        ),
        (
            WORD_COUNT.replace("type = \"string\"", "type = \"strnig\""),
            "strnig",
        ),
        (
            WORD_COUNT.replace("required = [\"text\"]", "requried = [\"text\"]"),
            "requried",
        ),
        (
            WORD_COUNT.replace("program = \"word_count.py\"", "builtin = \"shell\""),
            "builtin",
        ),
        (
            WORD_COUNT.replace("name = \"word_count\"", "name = \"../etc\""),
            "name",
        ),
        (
            WORD_COUNT.replace("name = \"word_count\"", "name = \"jq\""),
            "comes from the binary",
        ),
    ] {
        let out = register(&world, &definition, Some(("word_count.py", "print(1)\n")));
        assert!(!out.status.success(), "{definition}");
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
    }
    let missing = register(&world, WORD_COUNT, None);
    assert!(
        stderr(&missing).contains("word_count.py"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_wrapped_command_is_a_sandboxed_tool_whose_callers_cannot_add_options() {
    let world = World::new();
    let out = world
        .warden()
        .args([
            "tool",
            "wrap",
            "sorter",
            "--wall-time",
            "5s",
            "--",
            "sort",
            "-r",
        ])
        .output()
        .expect("warden runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let sorted = reply(&world, "sorter", json!({"stdin": "a\nc\nb\n"}));
    assert_eq!(sorted["text"], "c\nb\na\n", "{sorted:#}");
    let shown = json_of(
        &world
            .warden()
            .args(["tool", "show", "sorter", "--json"])
            .output()
            .expect("runs"),
    );
    assert_eq!(shown["category"], "host", "{shown:#}");
    // Bug hunt: input that is not JSON exited 125, as if warden had failed.
    let bad = world
        .warden()
        .args(["tool", "call", "sorter", "--input", "bad json"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not valid JSON"), "{}", stderr(&bad));
    // Bug hunt: the text said "in mode ?" for a tool with a fixed mode.
    let text = world
        .warden()
        .args(["tool", "show", "sorter"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("runs:        command in mode sandboxed"),
        "{text}"
    );
    // Refused before anything ran: exit 2 and a refusal in the statistics, not a failure.
    let option = call(
        &world,
        "sorter",
        json!({"args": ["--output=/etc/passwd"], "stdin": "x"}),
    );
    assert_eq!(option.status.code(), Some(2), "{}", stderr(&option));
    let option = json_of(&option);
    assert_eq!(option["is_error"], true, "{option:#}");
    assert_eq!(option["refused"], true, "{option:#}");
    let counted = stat_of(&world, "sorter");
    assert_eq!(
        (counted["refusals"].clone(), counted["failures"].clone()),
        (json!(1), json!(0)),
        "{counted:#}"
    );
    let missing = world
        .warden()
        .args(["tool", "wrap", "ghost", "--", "no-such-command-anywhere"])
        .output()
        .expect("warden runs");
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("not on PATH"),
        "{}",
        stderr(&missing)
    );
}

/// Regression (hunt srv 2): a registered tool the registry no longer loads (here, of a
/// category the configuration came to refuse; over HTTP, a file over the loader's bound) was
/// skipped, and `warden tool rm` answered that no such tool exists: it kept its name, and its
/// token's place, for ever. It is listed with the name that removes it, and removed.
#[test]
fn a_registered_tool_that_no_longer_loads_is_listed_and_removed() {
    let world = World::new();
    let wrap = ["tool", "wrap", "counter", "--", "/usr/bin/wc", "-l"];
    let out = world.warden().args(wrap).output().expect("warden runs");
    assert!(out.status.success(), "{}", stderr(&out));
    world.write_config("[tools]\nallowed_categories = [\"compute\", \"shell\"]\n");
    let list = || {
        world
            .warden()
            .args(["tool", "list"])
            .output()
            .expect("runs")
    };
    let listed = String::from_utf8_lossy(&list().stdout).into_owned();
    assert!(
        listed.contains(
            "allowed_categories does not allow (registered as counter: warden tool rm counter)"
        ),
        "{listed}"
    );
    let removed = world
        .warden()
        .args(["tool", "rm", "counter"])
        .output()
        .expect("runs");
    assert!(removed.status.success(), "{}", stderr(&removed));
    let listed = String::from_utf8_lossy(&list().stdout).into_owned();
    assert!(!listed.contains("counter"), "{listed}");
}

#[test]
fn categories_the_configuration_names_wait_for_approval_or_are_refused() {
    let world = World::with_config("[tools]\napproval = [\"host\"]\n");
    let out = world
        .warden()
        .args(["tool", "wrap", "counter", "--", "/usr/bin/wc", "-l"])
        .output()
        .expect("warden runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending"));
    let early = call(&world, "counter", json!({"stdin": "a\nb\n"}));
    assert_eq!(early.status.code(), Some(2));
    assert!(stderr(&early).contains("approval"), "{}", stderr(&early));
    let approve = world
        .warden()
        .args(["tool", "approve", "counter"])
        .output()
        .expect("runs");
    assert!(approve.status.success(), "{}", stderr(&approve));
    let counted = reply(&world, "counter", json!({"stdin": "a\nb\n"}));
    assert_eq!(counted["text"], "2\n", "{counted:#}");

    let strict = World::with_config("[tools]\nallowed_categories = [\"compute\", \"shell\"]\n");
    let refused = strict
        .warden()
        .args(["tool", "wrap", "counter", "--", "/usr/bin/wc"])
        .output()
        .expect("warden runs");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("allowed_categories"),
        "{}",
        stderr(&refused)
    );
    let listed = json_of(
        &strict
            .warden()
            .args(["tool", "list", "--json"])
            .output()
            .expect("runs"),
    );
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"run_code") && !names.contains(&"jq"),
        "{names:?}"
    );
}

#[test]
fn http_fetch_reaches_a_public_host_through_the_policy_and_never_this_one() {
    let world = World::new();
    // A registry this host's package managers use: public, and reachable from CI's machine.
    let (host, _) = world
        .registries()
        .into_iter()
        .next()
        .expect("a package registry is configured on this host");
    let fetched = reply(
        &world,
        "http_fetch",
        json!({"url": format!("https://{host}/"), "max_bytes": 1000}),
    );
    assert_eq!(fetched["is_error"], false, "{fetched:#}");
    assert!(fetched["structured"]["status"].is_u64(), "{fetched:#}");
    assert!(
        fetched["structured"]["body"].as_str().unwrap_or("").len() <= 1000,
        "{fetched:#}"
    );
    let network = &fetched["execution"]["network"];
    assert_eq!(network["policy"], "internet_access", "{fetched:#}");
    // The sandbox's loopback is its own: this host's listener is not there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let local = reply(
        &world,
        "http_fetch",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
    );
    assert_eq!(local["is_error"], true, "{local:#}");
    assert!(
        listener.accept().is_err(),
        "the host's listener was reached"
    );
    // This host's own address is in the deny set: the proxy refuses it by evaluation (no
    // packet leaves), logs it, and the call counts as a violation.
    let own = host_address();
    let denied = reply(
        &world,
        "http_fetch",
        json!({"url": format!("http://{own}:{port}/")}),
    );
    assert_eq!(denied["is_error"], true, "{denied:#}");
    let attempts = denied["execution"]["network"]["connections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        attempts
            .iter()
            .any(|c| c["allowed"] == false && c["port"] == port && c["addr"] == own.to_string()),
        "{denied:#}"
    );
    let fetch = stat_of(&world, "http_fetch");
    assert_eq!(fetch["successes"], 1, "{fetch:#}");
    assert_eq!(fetch["violations"], 1, "{fetch:#}");
}

/// Bug hunt: a tool whose read-only paths its sandbox cannot bind (`/etc`) or hides (`/tmp`),
/// or whose limits are out of range, registered as active and every call was refused. It is
/// listed unavailable with the reason now.
#[test]
fn a_tool_no_call_could_run_is_unavailable_with_the_reason() {
    let world = World::new();
    for (name, run, says) in [
        (
            "etc",
            "command = [\"/bin/cat\", \"/etc/hostname\"]\nread_only = [\"/etc\"]",
            "writes its own /etc/passwd",
        ),
        (
            "tmp",
            "command = [\"/bin/true\"]\nread_only = [\"/tmp\"]",
            "which the sandbox mounts its own over",
        ),
        (
            "slow",
            "command = [\"/bin/true\"]\n[limits]\nwall_time = \"1000h\"",
            "its limits: wall-time",
        ),
    ] {
        let definition = format!(
            "name = \"{name}\"\ndescription = \"d\"\ncategory = \"host\"\n\
             [input]\ntype = \"object\"\n[run]\n{run}\n"
        );
        let out = register(&world, &definition, None);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(
            text.contains("unavailable") && text.contains(says),
            "{name}: {text}"
        );
    }
    // A program graded high (it runs code chosen at run time) in a fixed sandboxed mode, which
    // the default policy keeps for threat levels below high.
    let definition = "name = \"dyn\"\ndescription = \"d\"\ncategory = \"compute\"\n\
                      [input]\ntype = \"object\"\n[run]\nprogram = \"dyn.py\"\n\
                      mode = \"sandboxed\"\n";
    let out = register(
        &world,
        definition,
        Some((
            "dyn.py",
            "import importlib\nimportlib.import_module('json')\n",
        )),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("unavailable: the mode policy refuses every call"),
        "{text}"
    );
}

/// Bug hunt: a tool's `[limits]` above the operator's `[maxima]` were lowered in silence (the
/// tool listed as active), and so were the `limits` of a `run_code` call (run, with less than
/// asked). docs/tools.md lists such a tool unavailable, and docs/server.md refuses a limit
/// above the maximum naming the field: both hold now, over every interface (MCP included).
#[test]
fn limits_above_the_operators_maxima_are_refused_not_lowered() {
    let world = World::with_config("[maxima]\nmemory = \"1GiB\"\n");
    let definition = "name = \"big\"\ndescription = \"d\"\ncategory = \"host\"\n\
                      [input]\ntype = \"object\"\n[run]\ncommand = [\"/bin/true\"]\n\
                      [limits]\nmemory = \"2GiB\"\n";
    let out = register(&world, definition, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(
            "unavailable: its [limits] memory: 2GiB is above the operator's maximum of 1GiB"
        ),
        "{text}"
    );
    let asked = call(
        &world,
        "run_code",
        json!({"language": "bash", "code": "echo ran", "limits": {"memory": "2GiB"}}),
    );
    // Refused before anything ran, as a bad input is.
    assert_eq!(asked.status.code(), Some(2), "{asked:?}");
    let asked = json_of(&asked);
    assert_eq!(
        (&asked["is_error"], &asked["refused"]),
        (&json!(true), &json!(true)),
        "{asked:#}"
    );
    assert!(
        asked["text"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.memory: 2GiB is above the operator's maximum of 1GiB"),
        "{asked:#}"
    );
    assert!(asked["execution"].is_null(), "nothing ran: {asked:#}");
    let within = reply(
        &world,
        "run_code",
        json!({"language": "bash", "code": "echo ran", "limits": {"memory": "1GiB"}}),
    );
    assert_eq!(within["text"], "ran\n", "{within:#}");
    let run_code = stat_of(&world, "run_code");
    assert_eq!(run_code["refusals"], 1, "{run_code:#}");
}

/// Hunt tools 2: a call whose child process seccomp killed (`open_by_handle_at`), or whose
/// `mount` the policy refused, was counted as a success because the program itself went on;
/// docs/tools.md counts "the sandbox stopped a forbidden operation" as a violation.
#[test]
fn a_forbidden_operation_a_program_survives_is_counted_as_a_violation() {
    let world = World::new();
    for (tool, line) in [
        (
            "kill_child",
            "python3 -c 'import ctypes; ctypes.CDLL(None).syscall(304, 0, 0, 0)'; echo after",
        ),
        (
            "refused_mount",
            "python3 -c 'import ctypes; print(ctypes.CDLL(None).mount(b\"none\", b\"/tmp\", b\"tmpfs\", 0, None))'",
        ),
    ] {
        let out = world
            .warden()
            .args(["tool", "call", "shell", "--json", "--input"])
            .arg(json!({ "command": line }).to_string())
            .output()
            .expect("warden runs");
        let reply = json_of(&out);
        let violations = &reply["execution"]["security"]["violations"];
        assert!(
            !violations.as_array().expect("violations").is_empty(),
            "{tool}: {reply:#}"
        );
    }
    let shell = stat_of(&world, "shell");
    assert_eq!(shell["violations"], 2, "{shell:#}");
    assert_eq!(shell["successes"], 0, "{shell:#}");
}

/// Hunt hist 5: `warden tool register` with no history yet created the history's directory
/// (and the tools' state under it) 0755, and the registered files 0644: a token's programs
/// were readable by every local user. The directories are 0700 and the files 0600, as the
/// history's (docs/history.md).
#[test]
fn a_registration_creates_private_directories_and_files() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    let dir = world.path().join("word_count");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(dir.join("word_count.toml"), WORD_COUNT).expect("tool file");
    std::fs::write(dir.join("word_count.py"), "print(1)\n").expect("program");
    let data = world.db().parent().expect("a directory").to_path_buf();
    assert!(!data.exists());
    let out = world
        .warden()
        .args(["tool", "register"])
        .arg(dir.join("word_count.toml"))
        .output()
        .expect("warden runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |path: &std::path::Path| {
        std::fs::symlink_metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let registered = data.join("tools/registered");
    for path in [
        data.clone(),
        data.join("tools"),
        registered.clone(),
        registered.join("word_count"),
    ] {
        assert_eq!(mode(&path), 0o700, "{}", path.display());
    }
    for file in std::fs::read_dir(registered.join("word_count")).expect("listed") {
        let path = file.expect("an entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&registered.join(".lock")), 0o600);
}
