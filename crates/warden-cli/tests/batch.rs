//! End to end: `warden batch` runs many programs in one process, each in its own sandbox, and
//! answers one JSON line per program in the order given. Runs real sandboxes, so needs root
//! (CI is).

mod support;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::World;

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

fn write(dir: &Path, name: &str, code: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, code).expect("program written");
    path.to_string_lossy().into_owned()
}

/// `warden batch` with `args`, started with its output piped.
fn start(world: &World, args: &[&str], programs: &[String]) -> Child {
    world
        .warden()
        .arg("batch")
        .args(args)
        .args(programs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden batch starts")
}

/// The children of process `pid` whose command line contains `needle`.
fn children_with(pid: u32, needle: &str) -> Vec<u32> {
    processes_with(needle)
        .into_iter()
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // The parent's pid is the second field after the command's closing parenthesis.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(needle)
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn files_are_answered_in_order_each_in_a_fresh_sandbox_and_recorded() {
    let world = World::new();
    let dir = world.path();
    let programs = [
        write(
            dir,
            "plant.py",
            "open('/tmp/secret', 'w').write('x')\nopen('/work/secret', 'w').write('x')\nprint('planted')\n",
        ),
        write(dir, "status.sh", "echo two; exit 3\n"),
        dir.join("missing.py").to_string_lossy().into_owned(),
        write(
            dir,
            "look.py",
            "import os\nprint([p for p in ('/tmp/secret', '/work/secret') if os.path.exists(p)])\n",
        ),
        write(
            dir,
            "hello.c",
            "#include <stdio.h>\nint main(void) { puts(\"compiled\"); return 0; }\n",
        ),
    ];
    let child = start(&world, &["-j", "2"], &programs);
    let pid = child.id();
    let out = child.wait_with_output().expect("warden batch ends");
    // One program has no result (its file is missing): the batch says so in its status.
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), programs.len(), "one line per program");
    for (index, (line, program)) in lines.iter().zip(&programs).enumerate() {
        assert_eq!(line["index"], index, "in the order given: {line}");
        assert_eq!(line["file"], program.as_str());
    }
    assert_eq!(lines[0]["result"]["stdout"], "planted\n");
    assert_eq!(
        lines[1]["result"]["outcome"],
        serde_json::json!({"kind": "exited", "code": 3})
    );
    assert_eq!(lines[1]["result"]["stdout"], "two\n");
    assert_eq!(lines[2]["error"]["kind"], "request");
    assert!(lines[2].get("result").is_none());
    assert_eq!(lines[3]["result"]["stdout"], "[]\n", "{}", lines[3]);
    assert_eq!(lines[4]["result"]["stdout"], "compiled\n", "{}", lines[4]);
    // A summary for the person at the terminal, on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warden: 5 programs in ")
            && stderr.contains(": 3 exited 0, 1 exited non-zero, 1 without a result"),
        "{stderr}"
    );

    // Every program that ran is in the history, as the batch's.
    let history = world
        .warden()
        .args(["history", "--json"])
        .output()
        .expect("warden history runs");
    let records: Vec<Value> = serde_json::from_slice(&history.stdout).expect("history JSON");
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| r["api"] == "batch"), "{records:?}");
    // Nothing of its sandboxes outlives the batch: their cgroups are gone, so are their
    // processes (a cgroup with a process in it cannot be removed), and their helpers were
    // reaped, not left to the host's init.
    assert_eq!(support::cgroups_of(pid), 0);
    assert_eq!(support::orphaned_helpers(), Vec::<String>::new());
}

/// With several workers, a program `auto` sends to gVisor (a few hundred milliseconds where a
/// sandboxed one takes a few) starts first wherever it is in the list, so that it does not end
/// the batch alone: given last, after a hundred quick ones, it finishes before the last of
/// them.
/// The answers stay in the order given.
#[test]
fn a_program_that_runs_under_gvisor_starts_first_and_the_answers_keep_their_order() {
    let world = World::new();
    let dir = world.path();
    let mut programs: Vec<String> = (0..100)
        .map(|i| write(dir, &format!("quick{i}.py"), &format!("print({i})\n")))
        .collect();
    // `eval` of what it reads is high: the default policy runs it under gVisor.
    programs.push(write(dir, "slow.py", "x = '6 * 7'\nprint(eval(x))\n"));
    let out = start(&world, &["-j", "2"], &programs)
        .wait_with_output()
        .expect("warden batch ends");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), programs.len(), "one line per program");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], index, "in the order given: {line}");
    }
    assert_eq!(lines[100]["result"]["mode"], "isolated", "{}", lines[100]);
    assert_eq!(lines[100]["result"]["stdout"], "42\n");
    let history = world
        .warden()
        .args(["history", "--json", "--limit", "200"])
        .output()
        .expect("warden history runs");
    let records: Vec<Value> = serde_json::from_slice(&history.stdout).expect("history JSON");
    let finished = |mode: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["mode"] == mode)
            .filter_map(|r| r["finished_at"].as_str().map(str::to_owned))
            .collect()
    };
    let (isolated, sandboxed) = (finished("isolated"), finished("sandboxed"));
    assert_eq!((isolated.len(), sandboxed.len()), (1, 100), "{records:?}");
    let last_quick = sandboxed.iter().max().expect("quick ones");
    assert!(
        &isolated[0] < last_quick,
        "the gVisor program ended the batch ({} after {last_quick}): it was not started first",
        isolated[0]
    );
}

#[test]
fn request_lines_are_checked_as_the_server_checks_them() {
    let world = World::new();
    let requests = [
        r#"{"language": "python", "code": "print(input()[::-1])", "stdin": "abc"}"#,
        "",
        "not json",
        r#"{"language": "python", "code": "print(1)", "limits": {"memory": "100GiB"}}"#,
        r#"{"language": "klingon", "code": "x"}"#,
        r#"{"language": "bash", "code": ":(){ :|:& };:"}"#,
        r#"{"language": "python", "code": "print(int(input()) * 2)", "tests": [{"stdin": "2", "expected_output": "4"}, {"stdin": "3", "expected_output": "7"}]}"#,
        r#"{"language": "python", "code": "print(1)", "unknown_field": 1}"#,
    ]
    .join("\n");
    let out = support::output_with_stdin(
        world
            .warden()
            .args(["batch", "--requests", "-", "-j", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        requests.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    // The blank line is skipped: seven programs, numbered by their lines.
    let numbers: Vec<_> = lines.iter().map(|l| l["line"].as_u64()).collect();
    assert_eq!(numbers, [1, 3, 4, 5, 6, 7, 8].map(Some), "{lines:#?}");
    assert_eq!(lines[0]["result"]["stdout"], "cba\n");
    assert_eq!(lines[1]["error"]["kind"], "request");
    let memory = lines[2]["error"]["error"].as_str().unwrap_or_default();
    assert!(
        memory.contains("limits.memory") && memory.contains("maximum"),
        "{memory}"
    );
    assert!(lines[3]["error"]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("unknown language"));
    assert_eq!(lines[4]["error"]["kind"], "refused");
    assert_eq!(lines[4]["error"]["security"]["threat_level"], "critical");
    let verdicts: Vec<_> = lines[5]["result"]["tests"]
        .as_array()
        .expect("the test cases' results")
        .iter()
        .map(|t| t["verdict"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(verdicts, ["accepted", "wrong_answer"]);
    assert_eq!(lines[6]["error"]["kind"], "request");

    // The options of FILE programs do not mix with request lines, which carry their own.
    let mixed = world
        .warden()
        .args(["batch", "--requests", "-", "--memory", "64MiB"])
        .stdin(Stdio::null())
        .output()
        .expect("warden batch runs");
    assert_eq!(mixed.status.code(), Some(2), "a command-line error");
    // An absurd number of workers (a thread and a ready sandbox each) is refused likewise.
    let absurd = world
        .warden()
        .args(["batch", "-j", "100000", "x.py"])
        .output()
        .expect("warden batch runs");
    assert_eq!(absurd.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("cannot be used with"));
}

/// Hunt cli 3: a line that is a JSON array ran (serde read it as the body's fields in
/// order), a key given twice took its last value, and errors had no field path: the server
/// refuses all of these with 422. The lines are now checked by the server's own parser.
#[test]
fn request_lines_are_refused_as_the_server_refuses_their_bodies() {
    let world = World::new();
    let requests = [
        r#"["python", "print(\"positional\")"]"#,
        r#"{"language": "python", "code": "print(1)", "limits": {"max_open_files": 100000000, "max_open_files": 64}}"#,
        r#"{"language": "python", "code": "print(1)", "limits": [1]}"#,
    ]
    .join("\n");
    let out = support::output_with_stdin(
        world.warden().args(["batch", "--requests", "-", "-j", "1"]),
        requests.as_bytes(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    let errors: Vec<&str> = lines
        .iter()
        .map(|l| l["error"]["error"].as_str().unwrap_or("(ran)"))
        .collect();
    assert_eq!(
        errors[0], "line 1: the body must be a JSON object, not an array",
        "{lines:#?}"
    );
    assert!(
        errors[1].starts_with("line 2: ") && errors[1].contains("duplicate field `max_open_files`"),
        "{lines:#?}"
    );
    assert!(
        errors[2].contains("limits: expected an object, found an array"),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| l["error"]["kind"] == "request"));
}

/// A UTF-8 byte order mark first in `--requests` (Windows' Notepad, PowerShell 5 write one) is
/// the encoding's mark, not the first request's: the line runs (it was refused as not JSON).
/// Anywhere else it is the line's own, refused as the server refuses it.
#[test]
fn a_byte_order_mark_before_the_first_request_is_passed_over() {
    let world = World::new();
    let requests = "\u{feff}{\"language\": \"bash\", \"code\": \"echo first\"}\n\
                    \u{feff}{\"language\": \"bash\", \"code\": \"echo second\"}\n";
    let out = support::output_with_stdin(
        world.warden().args(["batch", "--requests", "-", "-j", "1"]),
        requests.as_bytes(),
    );
    let lines = lines(&out);
    assert_eq!(lines[0]["result"]["stdout"], "first\n", "{lines:#?}");
    assert_eq!(lines[1]["error"]["kind"], "request", "{lines:#?}");
}

/// Hunt cli 6: `warden batch --memory 100GiB` lowered the limit to the maximum without a word,
/// where `warden run` warns; it warns once for the batch, not once per program.
#[test]
fn a_limit_above_the_maximum_is_said_once_per_batch() {
    let world = World::new();
    let programs: Vec<String> = (0..3)
        .map(|i| write(world.path(), &format!("l{i}.sh"), "true\n"))
        .collect();
    let out = start(&world, &["-j", "2", "--memory", "100GiB"], &programs)
        .wait_with_output()
        .expect("warden batch runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warning =
        "warden: warning: limit lowered to the operator's maximum: memory 100GiB (maximum 8GiB)\n";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    assert!(lines(&out)
        .iter()
        .all(|l| l["result"]["limits"]["memory"] == "8GiB"));
}

/// Bug hunt cli: `--cpu-time 10 s` read `s` as a program file, whose line said only that it
/// could not be opened (`warden run` says why); and one program was "1 programs".
#[test]
fn a_units_name_read_as_a_program_says_a_value_and_its_unit_are_one_argument() {
    let world = World::new();
    let program = write(world.path(), "one.sh", "true\n");
    let out = start(&world, &["--cpu-time", "10"], &["s".to_owned(), program])
        .wait_with_output()
        .expect("warden batch runs");
    let answers = lines(&out);
    let error = answers[0]["error"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("a limit's value and its unit are one argument"),
        "{answers:?}"
    );
    let alone = start(&world, &[], &[write(world.path(), "two.sh", "true\n")])
        .wait_with_output()
        .expect("warden batch runs");
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(stderr.contains("warden: 1 program in "), "{stderr}");
}

/// A program whose language cannot be told is told how its kind of line names one: a file
/// with `--lang`, a request line with its `language` field.
#[test]
fn an_undetected_language_is_asked_for_as_the_line_names_it() {
    let world = World::new();
    let file = write(world.path(), "prog", "x\n");
    let out = start(&world, &[], &[file])
        .wait_with_output()
        .expect("warden batch runs");
    let error = lines(&out)[0]["error"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.ends_with("; pass --lang"), "{error}");
    let out = support::output_with_stdin(
        world
            .warden()
            .args(["batch", "--requests", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        br#"{"code": "x"}"#,
    );
    let error = lines(&out)[0]["error"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.ends_with("; set \"language\" in the line"), "{error}");
    // Hunt compat 5: the engine's errors lacked the `line N: ` every other one has.
    assert!(
        error.starts_with("line 1: cannot tell the language"),
        "{error}"
    );
}

/// Hunt "cli": with a history that cannot be written, `warden batch` said so only in the log
/// and its summary counted the programs as if recorded. The summary says how many were not.
#[test]
fn the_summary_says_how_many_results_the_history_could_not_take() {
    let world = World::new();
    std::fs::create_dir_all(world.db().parent().expect("a directory")).expect("made");
    std::fs::write(world.db(), "not a database, not even close to one").expect("written");
    let programs: Vec<String> = (0..2)
        .map(|i| write(world.path(), &format!("h{i}.sh"), "echo ran\n"))
        .collect();
    let out = start(&world, &[], &programs)
        .wait_with_output()
        .expect("warden batch runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        lines(&out).iter().all(|l| l["result"]["stdout"] == "ran\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 programs in") && stderr.contains("; 2 not recorded in the history"),
        "{stderr}"
    );
}

/// Waits up to `limit` for `done`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_interrupted_batch_stops_its_programs_and_leaves_nothing() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;

    let world = World::new();
    // A duration no other test sleeps, to find these programs' processes.
    let sleeper = "sleep 47.123";
    let programs: Vec<String> = (0..4)
        .map(|i| write(world.path(), &format!("s{i}.sh"), &format!("{sleeper}\n")))
        .collect();
    // A terminal's Ctrl-C (and its hang-up) signals the whole foreground process group; a
    // service manager sends SIGTERM to the process.
    for (signal, to_group) in [
        (Signal::SIGINT, true),
        (Signal::SIGTERM, false),
        (Signal::SIGHUP, true),
    ] {
        let mut child = world
            .warden()
            .args(["batch", "-j", "2", "--wall-time", "60s"])
            .args(&programs)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("warden batch starts");
        let pid = i32::try_from(child.id()).expect("a pid");
        assert!(
            eventually(Duration::from_secs(30), || processes_with(sleeper).len()
                >= 2),
            "two programs run at once"
        );
        // The zygote shows a helper's command line; its name (`comm`) is its own.
        let zygotes: Vec<u32> = children_with(child.id(), "__sandbox-helper")
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "warden-zygote")
            })
            .collect();
        assert_eq!(
            zygotes.len(),
            1,
            "the batch forks its helpers through a zygote"
        );
        let target = if to_group { -pid } else { pid };
        kill(Pid::from_raw(target), signal).expect("signal sent");
        let status = wait_for_exit(&mut child, Duration::from_secs(30)).expect("the batch stops");
        assert_eq!(status.code(), Some(128 + signal as i32), "{signal}");
        let out = child.wait_with_output().expect("its output");
        let lines = lines(&out);
        // The two that ran were stopped; the two that had not started never will, and say
        // so (they had no line: after a file run early, gVisor's first, a file never started
        // held back the lines of those after it for good).
        let indices: Vec<&Value> = lines.iter().map(|l| &l["index"]).collect();
        assert_eq!(indices, [0, 1, 2, 3], "{signal}: {lines:#?}");
        assert!(
            lines.iter().all(|l| l["error"]["kind"] == "cancelled"),
            "{signal}: {lines:#?}"
        );
        let not_started = lines
            .iter()
            .filter(|l| l["error"]["error"] == "not started: warden batch was interrupted")
            .count();
        assert_eq!(not_started, 2, "{signal}: {lines:#?}");
        assert!(
            processes_with(sleeper).is_empty(),
            "{signal}: no program outlives the batch"
        );
        assert!(
            !Path::new(&format!("/proc/{}", zygotes[0])).exists(),
            "{signal}: the zygote does not outlive the batch"
        );
        assert_eq!(support::cgroups_of(pid.unsigned_abs()), 0, "{signal}");
    }
    // The two that ran each time are in the history as cancelled (docs/events.md); the
    // programs never started are not.
    let cancelled = support::json_of(
        &world
            .warden()
            .args(["history", "--json", "--outcome", "cancelled"])
            .output()
            .expect("warden history runs"),
    );
    assert_eq!(cancelled.as_array().map(Vec::len), Some(6), "{cancelled:#}");
}

/// Hunt cli 4: SIGQUIT (Ctrl-\) killed the batch on the spot, its running programs neither
/// answered nor recorded; it is taken as SIGINT is (exit 131), as `warden run` passes it on.
/// And a signal the batch was started with ignored (a job started with `&` by a shell
/// without job control) stays ignored, as under `warden run`.
#[test]
fn sigquit_stops_a_batch_as_sigint_does_and_ignored_signals_stay_ignored() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let world = World::new();
    let sleeper = "sleep 41.321";
    let programs: Vec<String> = (0..2)
        .map(|i| write(world.path(), &format!("q{i}.sh"), &format!("{sleeper}\n")))
        .collect();
    let mut child = start(&world, &["-j", "2", "--wall-time", "60s"], &programs);
    assert!(
        eventually(Duration::from_secs(30), || processes_with(sleeper).len()
            >= 2),
        "two programs run at once"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGQUIT).expect("SIGQUIT");
    let status = wait_for_exit(&mut child, Duration::from_secs(30)).expect("the batch stops");
    assert_eq!(status.code(), Some(128 + Signal::SIGQUIT as i32));
    let out = child.wait_with_output().expect("its output");
    let stopped = lines(&out);
    assert_eq!(stopped.len(), 2, "{stopped:#?}");
    assert!(
        stopped.iter().all(|l| l["error"]["kind"] == "cancelled"),
        "{stopped:#?}"
    );
    let cancelled = support::json_of(
        &world
            .warden()
            .args(["history", "--json", "--outcome", "cancelled"])
            .output()
            .expect("warden history runs"),
    );
    assert_eq!(cancelled.as_array().map(Vec::len), Some(2), "{cancelled:#}");

    // Started with SIGINT ignored: the SIGINT meant for the shell's other jobs passes by.
    let short = "sleep 1.789";
    let program = write(world.path(), "short.sh", &format!("{short}\necho done\n"));
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("trap '' INT; exec \"$0\" batch \"$1\"")
        .arg(env!("CARGO_BIN_EXE_warden"))
        .arg(program)
        .env_clear()
        .envs(world.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    assert!(
        eventually(Duration::from_secs(30), || !processes_with(short)
            .is_empty()),
        "the program runs"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = wait_for_exit(&mut child, Duration::from_secs(30)).expect("the batch ends");
    let out = child.wait_with_output().expect("its output");
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out)[0]["result"]["stdout"], "done\n");
}

/// A batch fed by a pipe whose writer is still there but idle (a harness between two
/// requests) answers each request as it comes, and SIGTERM ends it at once, not at the next
/// line (the worker's read used to keep it waiting for the writer).
#[test]
fn a_batch_waiting_for_its_next_request_ends_on_sigterm() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader, Write};

    let world = World::new();
    let mut child = world
        .warden()
        .args(["batch", "--requests", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warden batch starts");
    let mut writer = child.stdin.take().expect("stdin");
    writeln!(writer, r#"{{"language": "bash", "code": "echo first"}}"#).expect("a request");
    let mut answers = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    answers.read_line(&mut first).expect("the first answer");
    let first: Value = serde_json::from_str(&first).expect("a JSON line");
    assert_eq!(first["result"]["stdout"], "first\n", "{first}");
    // The writer stays open and writes nothing more.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = wait_for_exit(&mut child, Duration::from_secs(30))
        .expect("SIGTERM ends a batch waiting for input");
    assert_eq!(status.code(), Some(128 + Signal::SIGTERM as i32));
    drop(writer);
    assert_eq!(support::cgroups_of(child.id()), 0);
}

/// Hunt cli 2: a program file that is a FIFO with no writer kept the worker in `open(2)`, and
/// the batch alive after SIGTERM (for ten minutes, until something wrote to the FIFO). It
/// ends at once, the FIFO's program answered as not started.
#[test]
fn a_batch_waiting_for_a_fifos_writer_ends_on_sigterm() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader};

    let world = World::new();
    let first = write(world.path(), "first.sh", "echo first\n");
    let fifo = world.path().join("waits.sh");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let fifo = fifo.to_string_lossy().into_owned();
    let mut child = start(&world, &["-j", "1"], &[first, fifo]);
    let mut answers = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    answers.read_line(&mut line).expect("the first answer");
    let first: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(first["result"]["stdout"], "first\n", "{first}");
    // The worker has taken the FIFO now, or is about to.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = wait_for_exit(&mut child, Duration::from_secs(20))
        .expect("SIGTERM ends a batch waiting for a FIFO's writer");
    assert_eq!(status.code(), Some(128 + Signal::SIGTERM as i32));
    line.clear();
    answers.read_line(&mut line).expect("the FIFO's answer");
    let waiting: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(waiting["index"], 1, "{waiting}");
    assert_eq!(waiting["error"]["kind"], "cancelled", "{waiting}");
}

#[test]
fn a_batch_with_nothing_to_read_answers_nothing() {
    let world = World::new();
    let out = world
        .warden()
        .args(["batch", "--requests", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("warden batch runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_program_sees_nothing_of_the_one_before_it() {
    let world = World::new();
    let dir = world.path();
    let plant = write(
        dir,
        "plant.py",
        "open('/tmp/secret', 'w').write('x')\nopen('/work/secret', 'w').write('x')\nprint('planted')\n",
    );
    let look = write(
        dir,
        "look.py",
        "import os\nprint([p for p in ('/tmp/secret', '/work/secret') if os.path.exists(p)])\n",
    );
    // One worker: the second program starts after the first has ended.
    for reuse in ["1", "3"] {
        let out = world
            .warden()
            .args([
                "batch", "-j", "1", "--reuse", reuse, &plant, &look, &plant, &look,
            ])
            .output()
            .expect("warden batch runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout: Vec<Value> = lines(&out)
            .iter()
            .map(|l| l["result"]["stdout"].clone())
            .collect();
        assert_eq!(
            stdout,
            ["planted\n", "[]\n", "planted\n", "[]\n"],
            "--reuse {reuse}"
        );
    }
}

#[test]
fn a_line_longer_than_a_body_is_answered_and_the_next_one_runs() {
    let world = World::with_config("[server]\nmax_body = \"64KiB\"\n");
    let long = format!(
        r#"{{"language": "python", "code": "print(1)", "stdin": "{}"}}"#,
        "a".repeat(100 << 10)
    );
    let requests = format!(
        "{long}\n{}\n",
        r#"{"language": "python", "code": "print(2)"}"#
    );
    let out = support::output_with_stdin(
        world
            .warden()
            .args(["batch", "--requests", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        requests.as_bytes(),
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0]["error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than 65536 bytes")),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["result"]["stdout"], "2\n");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_slow_first_program_holds_the_others_back_within_a_window() {
    let world = World::new();
    let sleeper = "sleep 8.642";
    let mut programs = vec![write(world.path(), "slow.sh", &format!("{sleeper}\n"))];
    let quick = write(world.path(), "quick.sh", "echo quick\n");
    programs.extend(std::iter::repeat_n(quick, 100));
    let child = start(&world, &["-j", "2"], &programs);
    let recorded = || {
        let out = world
            .warden()
            .args(["history", "--json", "--limit", "1000"])
            .output()
            .expect("warden history runs");
        serde_json::from_slice::<Vec<Value>>(&out.stdout).map_or(0, |r| r.len())
    };
    // Two workers, 16 waiting results each: 32 programs taken, the slow one and 31 quick ones
    // that the second worker runs while the first sleeps; then it waits.
    assert!(
        eventually(Duration::from_secs(30), || recorded() >= 31),
        "the other worker runs"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !processes_with(sleeper).is_empty(),
        "the first still sleeps"
    );
    let held = recorded();
    assert!(held <= 32, "{held} programs ran past the slow one");
    let out = child.wait_with_output().expect("warden batch ends");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out).len(), 101);
}

/// A file name that is not UTF-8 was given back with U+FFFD in place of each byte
/// it could not show, so `a\xff.sh` and `a\xfe.sh` had the same `file`. Such a name is given
/// exactly too now, as its bytes in base64 (`file_base64`); a UTF-8 name has no such field.
#[test]
fn a_file_name_that_is_not_utf8_is_given_back_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let world = World::new();
    let names: [&[u8]; 3] = [b"a\xff.sh", b"a\xfe.sh", b"plain.sh"];
    let paths: Vec<std::path::PathBuf> = names
        .iter()
        .map(|name| {
            let path = world.path().join(std::ffi::OsStr::from_bytes(name));
            std::fs::write(&path, "echo ran\n").expect("program written");
            path
        })
        .collect();
    let out = world
        .warden()
        .args(["batch", "-j", "1", "--lang", "bash"])
        .args(&paths)
        .output()
        .expect("warden batch runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    use base64::Engine as _;
    for (line, path) in lines.iter().zip(&paths) {
        assert_eq!(line["result"]["stdout"], "ran\n", "{line}");
        assert_eq!(line["file"], path.to_string_lossy().as_ref(), "{line}");
        let exact = line["file_base64"].as_str().map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .expect("base64")
        });
        if std::str::from_utf8(path.as_os_str().as_bytes()).is_ok() {
            assert_eq!(exact, None, "{line}");
        } else {
            assert_eq!(
                exact.as_deref(),
                Some(path.as_os_str().as_bytes()),
                "{line}"
            );
        }
    }
    assert_ne!(lines[0]["file_base64"], lines[1]["file_base64"]);
}
