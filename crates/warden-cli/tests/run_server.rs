//! `warden run --server URL` (issue 14): the same run in a running `warden serve`. For each
//! kind of ending, the run through the server prints what the local run prints and exits with
//! the same status; what a server's API cannot carry is refused before anything is sent; and
//! the run is recorded once, by the server, as its token's. Needs root (CI runs as root).

mod live_server;

use std::process::Output;
use std::time::Duration;

use live_server::support::output_with_stdin;
use live_server::{eventually, LiveServer, TOKEN};

/// `warden run ARGS` with `stdin`, locally or (with `server`) through it with its token.
fn run(server: &LiveServer, through: bool, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = server.world().warden();
    command.arg("run");
    if through {
        command
            .args(["--server", &server.base()])
            .env("WARDEN_TOKEN", TOKEN);
    }
    output_with_stdin(command.args(args), stdin)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `args` both ways; asserts the same status, stdout and stderr; returns the status and
/// the stderr.
fn same_both_ways(server: &LiveServer, args: &[&str], stdin: &[u8]) -> (Option<i32>, String) {
    let local = run(server, false, args, stdin);
    let remote = run(server, true, args, stdin);
    let show = |o: &Output| {
        format!(
            "{:?}\nstdout: {}\nstderr: {}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        )
    };
    assert_eq!(
        (local.status.code(), &local.stdout, &local.stderr),
        (remote.status.code(), &remote.stdout, &remote.stderr),
        "{args:?}\nlocal: {}\nthrough the server: {}\nserver log:\n{}",
        show(&local),
        show(&remote),
        server.log()
    );
    (remote.status.code(), text(&remote.stderr))
}

#[test]
fn a_run_through_the_server_ends_as_the_same_run_here() {
    let server = LiveServer::start("");
    let reverse = "import sys\nprint(sys.stdin.read()[::-1], sys.argv[1:])\nsys.exit(3)\n";
    let (code, _) = same_both_ways(
        &server,
        &["-l", "python", "-c", reverse, "--", "a", "b c"],
        b"abc",
    );
    assert_eq!(code, Some(3));

    let hog = "x = bytearray(200 << 20)\nprint(len(x))";
    let (code, stderr) = same_both_ways(
        &server,
        &["-l", "python", "--memory", "32MiB", "-c", hog],
        b"",
    );
    assert_eq!(code, Some(123), "{stderr}");
    assert!(
        stderr.ends_with("memory limit exceeded (32MiB)\n"),
        "{stderr}"
    );

    let spin = "while True: pass";
    let (code, stderr) = same_both_ways(
        &server,
        &["-l", "python", "--cpu-time", "300ms", "-c", spin],
        b"",
    );
    assert_eq!(code, Some(124), "{stderr}");
    assert!(stderr.contains("(300ms)"), "{stderr}");

    let broken = "int main(void) { return undeclared; }";
    let (code, stderr) = same_both_ways(&server, &["-l", "c", "-c", broken], b"");
    assert_eq!(code, Some(119), "{stderr}");
    assert!(
        stderr.contains("undeclared") && stderr.ends_with("warden: compilation failed\n"),
        "{stderr}"
    );

    let killed = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)";
    let (code, stderr) = same_both_ways(&server, &["-l", "python", "-c", killed], b"");
    assert_eq!(code, Some(137), "{stderr}");

    // A program file and standard input that are not UTF-8 go as their bytes (base64).
    let dir = server.world().path().join("program");
    std::fs::create_dir_all(&dir).expect("dir");
    let latin1 = dir.join("latin1.sh");
    std::fs::write(&latin1, b"echo '\xe9t\xe9'; od -An -tx1\n").expect("written");
    let (code, stderr) = same_both_ways(
        &server,
        &[latin1.to_str().expect("a UTF-8 path")],
        b"\xff\xfe",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let here = run(
        &server,
        false,
        &[latin1.to_str().expect("a UTF-8 path")],
        b"\xff\xfe",
    );
    assert_eq!(here.stdout, b"\xe9t\xe9\n ff fe\n");

    // Output that is not UTF-8 comes back byte for byte (the JSON's text could not carry it).
    let bytes = "printf '\\377\\000ok\\303'; printf '\\376 \\342\\202' >&2";
    let (code, stderr) = same_both_ways(&server, &["-l", "bash", "-c", bytes], b"");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr.as_bytes(), "\u{fffd} \u{fffd}".as_bytes());

    // A file's executable bit goes with it: a script the program runs by its path.
    use std::os::unix::fs::PermissionsExt;
    let tools = server.world().path().join("tools");
    std::fs::create_dir_all(&tools).expect("dir");
    let (main, tool, data) = (
        tools.join("main.sh"),
        tools.join("tool.sh"),
        tools.join("data.txt"),
    );
    std::fs::write(&main, "./tool.sh && stat -c %a tool.sh data.txt\n").expect("written");
    std::fs::write(&tool, "echo tool ran\n").expect("written");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(&data, "x").expect("written");
    let paths = [&main, &tool, &data].map(|p| p.to_str().expect("a UTF-8 path"));
    let (code, stderr) = same_both_ways(&server, &paths, b"");
    assert_eq!(code, Some(0), "{stderr}");
    let remote = run(&server, true, &paths, b"");
    assert_eq!(text(&remote.stdout), "tool ran\n755\n644\n");
}

/// Regression hunt: a local `warden run` shows a successful compile's warnings before the
/// program's output; through a server (pipes: one request) it showed none.
#[test]
fn a_compiles_warnings_through_the_server_come_before_the_output() {
    let server = LiveServer::start("");
    let code =
        "#include <stdio.h>\nint main(void) { int unused_here = 1; puts(\"hi\"); return 0; }\n";
    let out = run(
        &server,
        true,
        &["-l", "c", "--compile-option", "-Wall", "-c", code],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(
        text(&out.stderr).contains("unused_here"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_through_the_server_is_the_result_object_and_the_server_records_it() {
    let server = LiveServer::start("");
    let out = run(
        &server,
        true,
        &["--json", "-l", "bash", "-c", "echo \"$1\"", "--", "hi"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(result["stdout"], "hi\n", "{result}");
    assert_eq!(result["outcome"]["kind"], "exited");
    let id = result["id"].as_str().expect("an id");
    // The server recorded it (from a thread of its own, after the answer), once, as its
    // API's and its token's.
    let mut found = Vec::new();
    let recorded = eventually(Duration::from_secs(10), || {
        found = history(&server)
            .into_iter()
            .filter(|e| e["id"] == id)
            .collect();
        !found.is_empty()
    });
    assert!(recorded && found.len() == 1, "{found:?}");
    assert_eq!(found[0]["api"], "v1", "{found:?}");
    assert_eq!(found[0]["token"], "test", "{found:?}");
}

/// `WARDEN_SERVER` names the server as `--server` does (as for `warden session`); empty, the run
/// is local.
#[test]
fn warden_server_in_the_environment_sends_the_run_there() {
    let server = LiveServer::start("");
    // The world's history is shared: the server's runs are its API's.
    let served = || history(&server).iter().filter(|e| e["api"] == "v1").count();
    let locals = || {
        history(&server)
            .iter()
            .filter(|e| e["api"] == "cli")
            .count()
    };
    let through = |value: &str, extra: &[&str]| {
        let mut command = server.world().warden();
        command
            .args(["run", "-l", "bash", "-c", "echo hi"])
            .args(extra)
            .env("WARDEN_SERVER", value)
            .env("WARDEN_TOKEN", TOKEN);
        output_with_stdin(&mut command, b"")
    };
    let remote = through(&server.base(), &[]);
    assert!(remote.status.success(), "{}", text(&remote.stderr));
    assert_eq!(text(&remote.stdout), "hi\n");
    assert!(
        eventually(Duration::from_secs(10), || served() == 1),
        "the server recorded it"
    );
    assert_eq!(locals(), 0);
    let local = through("", &["--no-cache"]);
    assert!(local.status.success(), "{}", text(&local.stderr));
    assert_eq!(text(&local.stdout), "hi\n");
    assert_eq!((served(), locals()), (1, 1), "the empty value runs it here");
    let refused = through(&server.base(), &["--no-cache"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--no-cache"));
}

#[test]
fn what_the_api_cannot_carry_or_the_server_refuses_is_a_clear_error() {
    let server = LiveServer::start("");
    let before = history_count(&server);

    let out = run(&server, true, &["-l", "cobol", "-c", "x"], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("unknown language \"cobol\""));

    // trusted mode is refused unless the operator enables it: the mode policy's status.
    let out = run(
        &server,
        true,
        &["--mode", "trusted", "-l", "bash", "-c", "true"],
        b"",
    );
    assert_eq!(out.status.code(), Some(118), "{}", text(&out.stderr));
    let out = run(
        &server,
        true,
        &["--json", "--mode", "trusted", "-l", "bash", "-c", "true"],
        b"",
    );
    let refusal: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(refusal["refused"], true, "{refusal}");

    // Without the token.
    let out = server
        .world()
        .warden()
        .args([
            "run",
            "--server",
            &server.base(),
            "-l",
            "bash",
            "-c",
            "true",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("(401)"), "{}", text(&out.stderr));

    // --no-cache is this process's cache: refused with --server by the parser.
    let out = run(
        &server,
        true,
        &["--no-cache", "-l", "bash", "-c", "true"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(history_count(&server), before, "nothing ran");
    assert_eq!(server.health(Duration::from_secs(5)), Some(200));
}

/// The server's history, newest first.
/// Every execution of the server's world, the CLI's own included (`GET /v1/history` lists the
/// token's only).
fn history(server: &LiveServer) -> Vec<serde_json::Value> {
    let out = server
        .world()
        .warden()
        .args(["history", "--json", "--limit", "0"])
        .output()
        .expect("warden history");
    assert!(out.status.success(), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    value.as_array().cloned().expect("an array")
}

fn history_count(server: &LiveServer) -> usize {
    history(server).len()
}

#[test]
fn a_run_that_finds_the_server_full_waits_its_turn() {
    let server = LiveServer::start("[server]\nworkers = 1\nqueue_size = 0\n");
    // The only slot is taken by a run of about two seconds.
    let mut first = server.world().warden();
    first
        .args(["run", "--server", &server.base(), "-l", "bash", "-c"])
        .arg("sleep 2; echo first")
        .env("WARDEN_TOKEN", TOKEN);
    let first = first.spawn().expect("the first run starts");
    let full = eventually(Duration::from_secs(10), || {
        let body = r#"{"language": "bash", "code": "true"}"#;
        server.request("POST", "/v1/executions", Some(body)).0 == 429
    });
    assert!(full, "the server never said it was full: {}", server.log());
    // The next one is told to come back (429, Retry-After) and does.
    let second = run(&server, true, &["-l", "bash", "-c", "echo second"], b"");
    assert!(
        second.status.success(),
        "{}\nserver log:\n{}",
        text(&second.stderr),
        server.log()
    );
    assert_eq!(text(&second.stdout), "second\n");
    let first = first.wait_with_output().expect("the first run ends");
    assert_eq!(text(&first.stdout), "first\n", "{}", text(&first.stderr));
}

/// At a terminal, a run through the server is attached to it as a local run is (it goes over
/// the server's WebSocket): a typed line is answered while the program runs, and a Ctrl-C
/// typed there reaches the program, which handles it; both ways end alike.
#[test]
fn at_a_terminal_the_run_through_the_server_is_attached_as_here() {
    use std::io::{BufRead, BufReader, Write};
    let server = LiveServer::start("");
    let program = "import signal, sys\n\
                   def stop(number, frame):\n    print('interrupted', flush=True)\n    sys.exit(7)\n\
                   signal.signal(signal.SIGINT, stop)\n\
                   name = input()\n\
                   print('hello', name, flush=True)\n\
                   signal.pause()\n";
    for through in [false, true] {
        let mut args = vec!["run"];
        let base = server.base();
        if through {
            args.extend(["--server", base.as_str()]);
        }
        args.extend(["--wall-time", "60s", "-l", "python", "-c", program]);
        let (mut child, mut typing) =
            live_server::support::at_a_terminal(server.world(), &[("WARDEN_TOKEN", TOKEN)], &args);
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        typing.write_all(b"Ada\n").expect("a line typed");
        let mut line = String::new();
        stdout.read_line(&mut line).expect("an answer");
        assert_eq!(line, "hello Ada\n", "through the server: {through}");
        typing.write_all(b"\x03").expect("Ctrl-C typed");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).expect("the rest");
        assert_eq!(rest, "interrupted\n", "through the server: {through}");
        let out = child.wait_with_output().expect("warden ends");
        assert_eq!(
            out.status.code(),
            Some(7),
            "through the server: {through}: {}\nserver log:\n{}",
            text(&out.stderr),
            server.log()
        );
    }
}

/// At a terminal too (over the WebSocket), a successful compile's warnings are shown before
/// the program's output, as a local run shows them (they came only in the result, and were
/// not shown: the output had been written first). Unique code: no compile cached before.
#[test]
fn at_a_terminal_a_compiles_warnings_come_before_the_output() {
    use std::io::Read;
    let server = LiveServer::start("");
    let code = "#include <stdio.h>\n\
                int main(void) { int unused_here = 1; /* at a terminal */ fputs(\"program says hi\\n\", stderr); return 0; }\n";
    // Through the server only: a local run first would leave the compile cached.
    let base = server.base();
    let args = [
        "run",
        "--server",
        &base,
        "-l",
        "c",
        "--compile-option",
        "-Wall",
        "-c",
        code,
    ];
    let (mut child, _typing) =
        live_server::support::at_a_terminal(server.world(), &[("WARDEN_TOKEN", TOKEN)], &args);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("its stderr");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warned = stderr.find("unused_here");
    let said = stderr.find("program says hi");
    assert!(
        warned.is_some() && said.is_some() && warned < said,
        "{stderr}"
    );
}

/// At a terminal too (over the WebSocket), bytes that are not UTF-8 text pass both ways as
/// they do here: typed in (Latin-1), and written out by the program.
#[test]
fn at_a_terminal_bytes_that_are_not_text_pass_both_ways() {
    use std::io::{Read, Write};
    let server = LiveServer::start("");
    let program = "import sys\n\
                   line = sys.stdin.buffer.readline()\n\
                   sys.stdout.buffer.write(b'\\xff' + line)\n";
    for through in [false, true] {
        let mut args = vec!["run"];
        let base = server.base();
        if through {
            args.extend(["--server", base.as_str()]);
        }
        args.extend(["-l", "python", "-c", program]);
        let (mut child, mut typing) =
            live_server::support::at_a_terminal(server.world(), &[("WARDEN_TOKEN", TOKEN)], &args);
        typing.write_all(b"\xe9t\xe9\n").expect("a line typed");
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_end(&mut stdout)
            .expect("the output");
        let out = child.wait_with_output().expect("warden ends");
        assert_eq!(
            (out.status.code(), &stdout[..]),
            (Some(0), &b"\xff\xe9t\xe9\n"[..]),
            "through the server: {through}: {}\nserver log:\n{}",
            text(&out.stderr),
            server.log()
        );
    }
}

/// Through the server as here: after Ctrl-Z and `bg`, a line typed at the terminal would stop
/// warden alone when read; instead the server's program stops with it (SIGTSTP, then SIGCONT
/// over the WebSocket) until `fg`, where the line reaches the program.
#[test]
fn through_the_server_a_terminal_read_after_bg_stops_the_program_until_fg() {
    let server = LiveServer::start("");
    let base = server.base();
    let (out, _) = live_server::support::a_terminal_read_after_bg(
        server.world(),
        &[("WARDEN_TOKEN", TOKEN)],
        &["run", "--server", &base, "--wall-time", "60s"],
        |_warden| server.pid(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
}

/// Bug hunt: a compiler's diagnostics that are not UTF-8 reached a run through a server with
/// U+FFFD in place of their bytes: the compile stage had no `stderr_base64`. They come back
/// byte for byte, as here.
#[test]
fn compile_diagnostics_that_are_not_text_come_back_exactly() {
    let server = LiveServer::start("");
    let program = server.world().path().join("bytes.c");
    std::fs::write(
        &program,
        b"#warning \"\xff\xfe\"\n#error \"\xff\"\nint main(void) { return 0; }\n",
    )
    .expect("written");
    let path = program.to_str().expect("a UTF-8 path");
    let (code, stderr) = same_both_ways(&server, &[path], b"");
    assert_eq!(code, Some(119), "a compile error: {stderr}");
    let raw = run(&server, true, &[path], b"").stderr;
    assert!(raw.windows(2).any(|w| w == b"\xff\xfe"), "{}", text(&raw));
}

/// Bug hunt: at a terminal, a run through the server that printed more than 16 MiB (or a few
/// MB of control bytes) failed with exit 125 (`Message too long`): the server sent what the
/// client had not taken as one message, and the result repeats the output, both past the
/// WebSocket client's default frame limit. It ends as here now.
#[test]
fn at_a_terminal_a_run_that_prints_more_than_16_mib_ends_as_here() {
    use std::io::Read;
    let server = LiveServer::start("");
    let program = "import sys\nsys.stdout.write('w' * 17000000)\n";
    let base = server.base();
    let args = [
        "run",
        "--server",
        &base,
        "--max-output",
        "64MiB",
        "-l",
        "python",
        "-c",
        program,
    ];
    let (mut child, _typing) =
        live_server::support::at_a_terminal(server.world(), &[("WARDEN_TOKEN", TOKEN)], &args);
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("the output");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(
        (out.status.code(), stdout.len()),
        (Some(0), 17_000_000),
        "{}\nserver log:\n{}",
        text(&out.stderr),
        server.log()
    );
    assert!(stdout.iter().all(|b| *b == b'w'));
}
