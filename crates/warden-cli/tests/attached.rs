//! A local `warden run` attached to its caller: the program's output written as the program
//! writes it, and the signals a terminal or a supervisor sends to the CLI (Ctrl-C, SIGTERM)
//! passed on to the program, whose run then ends as any other: its verdict printed, its
//! sandbox removed, its history recorded. Runs as root (CI does).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::{cgroups_of, in_the_run, reaches, state_of, World};

/// `warden run ARGS` in `world`, in a process group of its own as a shell with job control
/// starts a command in a terminal.
fn attached(world: &World, args: &[&str]) -> Child {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    support::in_its_own_group(world, &[], &all)
}

/// The python `program` run attached, once it printed `ready`: warden, its pid, the rest of
/// the program's output.
fn started(world: &World, program: &str) -> (Child, u32, BufReader<ChildStdout>) {
    started_with(world, &[], program)
}

/// [`started`] with more of `warden run`'s options.
fn started_with(
    world: &World,
    options: &[&str],
    program: &str,
) -> (Child, u32, BufReader<ChildStdout>) {
    let mut args = options.to_vec();
    args.extend(["--wall-time", "60s", "-l", "python", "-c", program]);
    let mut child = attached(world, &args);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "ready\n");
    let pid = child.id();
    (child, pid, stdout)
}

/// Whether a process whose command line is `sleep <seconds>` runs on the host (each test
/// picks a duration no other sleeps).
fn sleep_runs(seconds: &str) -> bool {
    let cmdline = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .any(|p| std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c == cmdline.as_bytes()))
}

/// The next line of the program's output. Output held back to the end of the run would not
/// come before the program ends, which the programs here do only after the test's next step.
fn line(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line of output");
    line
}

/// The processes in the process group `group`.
fn members_of(group: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            rest.split_whitespace().nth(2) == Some(group.to_string().as_str())
        })
        .collect()
}

/// Waits until `pid` has taken the signal `signal` sent to it (it is no longer pending):
/// standard signals do not queue, so a second one sent before would be lost.
fn taken(pid: u32, signal: Signal) {
    let bit = 1u64 << (signal as u32 - 1);
    for _ in 0..6000 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let pending = status
            .lines()
            .filter(|l| l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
            .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            .fold(0, |all, mask| all | mask);
        if pending & bit == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("warden never took {signal}");
}

/// The newest run in `world`'s history.
fn last_run(world: &World) -> Value {
    let out = world
        .warden()
        .args(["history", "--json", "--limit", "1"])
        .output()
        .expect("warden history");
    let runs: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    runs[0].clone()
}

#[test]
fn output_is_written_as_the_program_writes_it() {
    let world = World::new();
    let program = "import sys\n\
                   print('ready', flush=True)\n\
                   print('on stderr', file=sys.stderr, flush=True)\n\
                   answer = sys.stdin.readline().strip()\n\
                   print('got', answer, flush=True)\n";
    let mut child = attached(
        &world,
        &["--wall-time", "60s", "-l", "python", "-c", program],
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    // The program now waits for its input: had warden held its output back, this line would
    // come only after the wall time killed it, and the answer below would be missing.
    assert_eq!(line(&mut stdout), "ready\n");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("stderr");
    assert_eq!(first, "on stderr\n");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("the answer written");
    drop(stdin);
    assert_eq!(line(&mut stdout), "got go\n");
    let status = child.wait().expect("warden ends");
    assert_eq!(status.code(), Some(0));
    assert_eq!(line(&mut stdout), "", "nothing written twice");
}

/// Under gVisor too (bug hunt: `runsc run`, started by warden itself, was in warden's
/// process group, so Ctrl-C killed the container outright: the program's handler never ran).
#[test]
fn ctrl_c_reaches_the_program_which_may_handle_it_and_nothing_is_lost() {
    let world = World::new();
    for mode in ["sandboxed", "isolated"] {
        ctrl_c_reaches_the_program_in(&world, mode);
    }
}

fn ctrl_c_reaches_the_program_in(world: &World, mode: &str) {
    let program = "import signal, sys, time\n\
                   def stop(number, frame):\n    print('interrupted', number, flush=True)\n    sys.exit(7)\n\
                   signal.signal(signal.SIGINT, stop)\n\
                   print('ready', flush=True)\n\
                   time.sleep(60)\n";
    let (child, pid, mut stdout) = started_with(world, &["--mode", mode], program);
    // The terminal's group holds warden alone: the sandbox's processes have a group of their
    // own, so that the program gets the signal once, from warden.
    let members = members_of(pid);
    assert_eq!(members.len(), 1, "{mode}: {members:?}");
    killpg(Pid::from_raw(pid as i32), Signal::SIGINT).expect("Ctrl-C");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(7), "{mode}: {out:?}");
    assert_eq!(line(&mut stdout), "interrupted 2\n");
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
    let run = last_run(world);
    assert_eq!(run["outcome"]["kind"], "exited", "{run}");
    assert_eq!(run["outcome"]["code"], 7, "{run}");
}

/// Ctrl-C reaches the program's process group, as a terminal's reaches its foreground group:
/// a shell waiting for a command sees the command end by it (and it ran its trap after), where
/// the shell alone would have waited for the command to end on its own.
#[test]
fn ctrl_c_reaches_the_command_a_shell_waits_for() {
    let world = World::new();
    let script = "trap 'echo caught INT' INT; echo ready; sleep 31.71; echo after $?";
    let mut child = attached(&world, &["--wall-time", "60s", "-l", "bash", "-c", script]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "ready\n");
    let pid = child.id();
    for _ in 0..500 {
        if sleep_runs("31.71") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(sleep_runs("31.71"), "the shell's command runs");
    killpg(Pid::from_raw(pid as i32), Signal::SIGINT).expect("Ctrl-C");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(line(&mut stdout), "caught INT\n");
    assert_eq!(line(&mut stdout), "after 130\n");
    assert!(!sleep_runs("31.71"));
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
}

#[test]
fn a_program_that_ignores_ctrl_c_is_killed_at_the_third() {
    let world = World::new();
    let program = "import signal, time\n\
                   signal.signal(signal.SIGINT, signal.SIG_IGN)\n\
                   print('ready', flush=True)\n\
                   time.sleep(60)\n";
    // Kept open: a reader that left would end the program on its own.
    let (child, pid, _stdout) = started(&world, program);
    for _ in 0..3 {
        killpg(Pid::from_raw(pid as i32), Signal::SIGINT).expect("Ctrl-C");
        taken(pid, Signal::SIGINT);
    }
    let out = child.wait_with_output().expect("warden ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(
        stderr.contains("signalled 3 times: killing the program"),
        "{stderr}"
    );
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
}

#[test]
fn ctrl_z_stops_the_program_with_warden_and_the_time_stopped_is_not_counted() {
    let world = World::new();
    // One second of work in a wall-clock limit of two, stopped for three in between.
    let program = "import time\n\
                   print('ready', flush=True)\n\
                   time.sleep(1)\n\
                   print('done', flush=True)\n";
    let mut child = attached(
        &world,
        &["--wall-time", "2s", "-l", "python", "-c", program],
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "ready\n");
    let pid = child.id();
    let programs = in_the_run(pid, "python3");
    assert_eq!(programs.len(), 1, "the program's process");
    // What a terminal's Ctrl-Z does: SIGTSTP to the foreground group, warden's alone.
    killpg(Pid::from_raw(pid as i32), Signal::SIGTSTP).expect("Ctrl-Z");
    reaches(pid, 'T');
    reaches(programs[0], 'T');
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(state_of(programs[0]), Some('T'), "still stopped");
    // What `fg` does.
    killpg(Pid::from_raw(pid as i32), Signal::SIGCONT).expect("fg");
    let out = child.wait_with_output().expect("warden ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "not killed at the wall-clock limit: {stderr}"
    );
    assert_eq!(line(&mut stdout), "done\n");
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
    let run = last_run(&world);
    assert_eq!(run["outcome"]["kind"], "exited", "{run}");
}

/// Ctrl-Z, then `bg`: warden goes on in the background, relaying its terminal to a program
/// that waits for a line. Once something is typed, reading it would stop warden alone (a
/// background job's read of its terminal: SIGTTIN), and the program would run on unheard;
/// instead the program stops with warden ("Stopped (tty input)"), and both go on at `fg`,
/// where the line reaches the program.
#[test]
fn a_terminal_read_after_bg_stops_the_program_with_warden_until_fg() {
    let world = World::new();
    let (out, warden) =
        support::a_terminal_read_after_bg(&world, &[], &["run", "--wall-time", "60s"], |pid| pid);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cgroups_of(warden), 0, "the run's cgroups are removed");
}

/// A background `warden run` at a terminal set to `tostop`: the program's first line would
/// stop warden alone (SIGTTOU) and leave the program running with no one to enforce its cpu
/// and wall-clock limits (hunt esc: 7 s of cpu under `--cpu-time 1s`); instead the program
/// stops with warden ("Stopped (tty output)"), and both go on at `fg`, where the line shows.
#[test]
fn a_terminal_write_in_the_background_stops_the_program_with_warden_until_fg() {
    let world = World::new();
    let mut warden_pid = 0;
    let (first, out, shown) = support::a_terminal_write_in_the_background(
        &world,
        &[
            "run",
            "--wall-time",
            "60s",
            "-l",
            "bash",
            "-c",
            "echo out; sleep 5.4321; echo done",
        ],
        |warden| {
            warden_pid = warden;
            // The program's bash, and its child if the stop came between its fork and its
            // exec (then named bash too) or after (sleep): every one of them stops.
            let mut programs = in_the_run(warden, "bash");
            programs.extend(in_the_run(warden, "sleep"));
            assert!(!programs.is_empty(), "the program's processes");
            for program in programs {
                reaches(program, 'T');
            }
        },
    );
    assert_eq!(first, format!("stopped {}\n", Signal::SIGTTOU as i32));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("out\r\ndone\r\n"), "{shown:?}");
    assert_ne!(warden_pid, 0, "warden was found stopped");
    assert_eq!(cgroups_of(warden_pid), 0, "the run's cgroups are removed");
}

/// A program read from a FIFO (a shell's `<(...)`) runs once its writer has written it; until
/// then warden waits in the read, where Ctrl-C or SIGTERM still end it (the signals it passes
/// on are taken only after the program and its input are read: it used to wait on,
/// unkillable but by SIGKILL).
#[test]
fn a_program_read_from_a_fifo_runs_and_the_wait_for_it_ends_with_sigterm() {
    let world = World::new();
    let fifo = world.path().join("program.py");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let path = fifo.to_str().expect("utf-8");
    let child = attached(&world, &[path]);
    std::fs::write(&fifo, "print('from a fifo')\n").expect("the writer");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from a fifo\n");

    let mut waiting = attached(&world, &[path]);
    let pid = waiting.id();
    let wchan = format!("/proc/{pid}/wchan");
    let in_the_open = (0..1000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::read_to_string(&wchan).is_ok_and(|w| w == "wait_for_partner")
    });
    assert!(in_the_open, "warden never waited for the FIFO's writer");
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let ended = (0..1000).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waiting.try_wait().expect("try_wait")
    });
    if ended.is_none() {
        let _ = waiting.kill();
    }
    let status = ended.expect("SIGTERM ends a warden that waits for its program");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32), "{status:?}");
}

#[test]
fn sigterm_to_warden_ends_the_program_as_sigterm_and_json_still_comes() {
    let world = World::new();
    let mut child = attached(
        &world,
        &[
            "--json",
            "--wall-time",
            "60s",
            "-l",
            "bash",
            "-c",
            "echo ready >&2; exec sleep 61.2345",
        ],
    );
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    // With --json the output is the object's: the program's stderr is not written as it
    // comes. Its start is seen from the process tree instead.
    let mut started = false;
    for _ in 0..6000 {
        started = sleep_runs("61.2345");
        if started {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(started, "the program never started");
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let result: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(result["outcome"]["kind"], "signaled", "{result}");
    assert_eq!(result["outcome"]["signal"], "SIGTERM", "{result}");
    assert_eq!(result["stderr"], "ready\n", "{result}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    assert_eq!(rest, "", "nothing on warden's own stderr");
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
}

#[test]
fn a_reader_that_leaves_ends_the_program_as_a_pipeline_would() {
    let world = World::new();
    let mut child = attached(
        &world,
        &["-l", "python", "-c", "while True: print('y', flush=True)"],
    );
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "y\n");
    drop(stdout);
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    // Ended when its reader left, not when its output reached the limit.
    let run = last_run(&world);
    assert_eq!(run["outcome"]["kind"], "signaled", "{run}");
    assert_eq!(cgroups_of(pid), 0, "the run's cgroups are removed");
}

/// A stdout that fails otherwise than by its reader leaving (a full disk: /dev/full) is
/// warden's failure, as with `--json`: exit 125 with the error, the program run to its end
/// and recorded as it ended. It was taken for a reader that left: exit 141, no message, the
/// program killed (recorded as SIGKILL).
#[test]
fn a_stdout_that_cannot_be_written_is_a_warden_failure_not_a_reader_that_left() {
    let world = World::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = world
        .warden()
        .args([
            "run",
            "-l",
            "bash",
            "-c",
            "echo x; echo to stderr >&2; exit 3",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .output()
        .expect("warden runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.starts_with("to stderr\n"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let run = last_run(&world);
    assert_eq!(run["outcome"]["kind"], "exited", "{run}");
    assert_eq!(run["outcome"]["code"], 3, "{run}");
}

#[test]
fn what_is_typed_at_the_terminal_reaches_the_program_as_it_runs() {
    let world = World::new();
    let program = "import sys\n\
                   name = input()\n\
                   print('hello', name, flush=True)\n\
                   print('rest', repr(sys.stdin.read()), flush=True)\n";
    let (mut child, mut typing) = support::at_a_terminal(
        &world,
        &[],
        &["run", "--wall-time", "60s", "-l", "python", "-c", program],
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    typing.write_all(b"Ada\n").expect("a line typed");
    // Answered while the terminal is still open: the input is relayed as it is typed, not
    // read to its end first.
    assert_eq!(line(&mut stdout), "hello Ada\n");
    // Ctrl-D at the start of a line: the end of the program's input.
    typing.write_all(b"more\n\x04").expect("typed");
    assert_eq!(line(&mut stdout), "rest 'more\\n'\n");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ctrl_c_typed_at_the_terminal_reaches_the_program_once() {
    let world = World::new();
    let program = "import signal, sys, time\n\
                   seen = []\n\
                   def interrupted(number, frame):\n    seen.append(number)\n\
                   signal.signal(signal.SIGINT, interrupted)\n\
                   print('ready', flush=True)\n\
                   while not seen:\n    time.sleep(0.01)\n\
                   time.sleep(0.5)\n\
                   print('interrupted', len(seen), flush=True)\n";
    let (mut child, mut typing) = support::at_a_terminal(
        &world,
        &[],
        &["run", "--wall-time", "60s", "-l", "python", "-c", program],
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "ready\n");
    // The terminal turns Ctrl-C into SIGINT for its foreground process group: warden's alone.
    typing.write_all(b"\x03").expect("Ctrl-C typed");
    assert_eq!(line(&mut stdout), "interrupted 1\n");
    let out = child.wait_with_output().expect("warden ends");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// warden killed outright (SIGKILL: no chance to clean up) while its program runs: the
/// sandbox's helper kills the program and, its owner dead, removes the run's cgroups itself,
/// instead of leaving them to the next warden's sweep.
#[test]
fn a_warden_killed_outright_leaves_nothing_behind() {
    // The helper, orphaned, becomes this process's child rather than the host's pid 1's.
    support::adopt_orphans();
    let world = World::new();
    // The program becomes `sleep 61.2468`, a command line the host's /proc shows.
    let program = "import os\n\
                   print('ready', flush=True)\n\
                   os.execv('/bin/sleep', ['sleep', '61.2468'])\n";
    let (child, pid, _stdout) = started(&world, program);
    assert_eq!(cgroups_of(pid), 1, "the run's cgroup exists while it runs");
    killed_outright_leaves_nothing(child, "61.2468");
}

/// Waits until the program (`sleep SECONDS`) runs, kills warden (`child`) outright, and waits
/// until neither the program nor any cgroup of warden's is left.
fn killed_outright_leaves_nothing(mut child: Child, seconds: &str) {
    let sleeping = || sleep_runs(seconds);
    let pid = child.id();
    for _ in 0..1000 {
        if sleeping() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(sleeping(), "the program runs");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reaped");
    let mut left = usize::MAX;
    for _ in 0..1000 {
        left = cgroups_of(pid);
        if support::reap_orphans() && left == 0 && !sleeping() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{left} cgroups of the killed warden left, or its program or helper still runs");
}

/// The same during the run stage of a compiled language (bug hunt: the compile stage's
/// sandbox, let go and ending while the program ran, had no helper left once warden died: its
/// cgroups stayed until the next warden's sweep). The run's helper, its owner dead, removes
/// every empty cgroup of that owner.
#[test]
fn a_warden_killed_outright_during_a_compiled_run_leaves_nothing_behind() {
    support::adopt_orphans();
    let world = World::new();
    let program = "#include <stdio.h>\n#include <unistd.h>\n\
                   int main(void) { puts(\"ready\"); fflush(stdout);\n\
                   execl(\"/bin/sleep\", \"sleep\", \"61.2470\", (char *)0); return 1; }\n";
    let mut child = attached(
        &world,
        &["--no-cache", "--wall-time", "60s", "-l", "c", "-c", program],
    );
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    assert_eq!(line(&mut stdout), "ready\n");
    killed_outright_leaves_nothing(child, "61.2470");
}

/// The same in trusted mode, whose run has a host directory of its own
/// (`/run/warden/trusted/run-<pid>-<n>`): the helper removes it too once its init is gone and
/// warden is dead, rather than leaving it for the next warden's sweep.
#[test]
fn a_warden_killed_outright_during_a_trusted_run_leaves_nothing_behind() {
    support::adopt_orphans();
    let world = World::with_config("[modes]\ntrusted_enabled = true\nnone = \"trusted\"\nlow = \"trusted\"\nmedium = \"trusted\"\n");
    let program = "import os\n\
                   print('ready', flush=True)\n\
                   os.execv('/bin/sleep', ['sleep', '61.2469'])\n";
    let sleeping = || sleep_runs("61.2469");
    let (mut child, pid, _stdout) = started_with(&world, &["--mode", "trusted"], program);
    let run_dirs = || {
        std::fs::read_dir("/run/warden/trusted")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("run-{pid}-"))
            })
            .count()
    };
    assert_eq!(run_dirs(), 1, "the run's directory exists while it runs");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reaped");
    for _ in 0..1000 {
        if support::reap_orphans() && cgroups_of(pid) == 0 && run_dirs() == 0 && !sleeping() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "left: {} cgroups, {} run directories, the program running: {}",
        cgroups_of(pid),
        run_dirs(),
        sleeping()
    );
}

/// Bug hunt: a trusted program that left its init's process tree (setsid, a double fork,
/// SIGTERM ignored) outlived its warden and its helper when both were killed outright: it ran
/// on in the run's cgroup, as the run's uid, which the next runs were given again (and a
/// process of that uid owns their user namespaces: it read and ptraced them). The next
/// warden's sweep kills it and removes its cgroup; until then no run gets its uid (idmap.rs).
#[test]
fn a_trusted_program_outliving_its_warden_and_helper_is_killed_by_the_next_warden() {
    support::adopt_orphans();
    let world = World::with_config("[modes]\ntrusted_enabled = true\nnone = \"trusted\"\nlow = \"trusted\"\nmedium = \"trusted\"\n");
    let leftover = format!("/tmp/warden-test-leftover-{}", std::process::id());
    let program = format!(
        "import os, signal, time\n\
                   open('{leftover}', 'w').write('secret')\n\
                   if os.fork() == 0:\n\
                   \x20   os.setsid()\n\
                   \x20   if os.fork() == 0:\n\
                   \x20       signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
                   \x20       os.execv('/bin/sleep', ['sleep', '61.3571'])\n\
                   \x20   os._exit(0)\n\
                   time.sleep(0.3)\n\
                   print('ready', flush=True)\n\
                   time.sleep(60)\n"
    );
    let survivor = || sleep_runs("61.3571");
    let (mut child, pid, _stdout) = started_with(&world, &["--mode", "trusted"], &program);
    assert!(Path::new(&leftover).exists(), "the run's file");
    assert!(survivor(), "the daemon runs");
    let helpers: Vec<Pid> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("warden's children")
        .split_whitespace()
        .map(|p| Pid::from_raw(p.parse().expect("a pid")))
        .collect();
    assert!(!helpers.is_empty(), "warden's helper");
    // Both killed outright, the helper held first so that it cannot clean up after warden.
    for helper in &helpers {
        kill(*helper, Signal::SIGSTOP).expect("SIGSTOP");
    }
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reaped");
    for helper in &helpers {
        kill(*helper, Signal::SIGKILL).expect("SIGKILL");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    support::reap_orphans();
    // Any warden starting meanwhile sweeps (the tests run in parallel): then it is gone already.
    if survivor() {
        assert_eq!(cgroups_of(pid), 1, "the daemon is in the run's cgroup");
    } else {
        eprintln!("another warden's sweep ended the daemon before the next run here");
    }
    let next = world
        .warden()
        .args(["run", "-l", "bash", "-c", "true"])
        .output()
        .expect("the next warden runs");
    assert!(next.status.success(), "{next:?}");
    // Its file in /tmp goes too: the slot's next trusted run would read it.
    for _ in 0..500 {
        if support::reap_orphans()
            && !survivor()
            && cgroups_of(pid) == 0
            && !Path::new(&leftover).exists()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "after the next warden: the daemon running {}, {} cgroups of the dead run, its file {}",
        survivor(),
        cgroups_of(pid),
        Path::new(&leftover).exists()
    );
}

/// The same under gVisor, whose one-shot run is `runsc run` started by warden itself (a
/// one-job container): the sandbox's helper, holding the run's cgroup, kills the runtime and
/// its program when warden dies, and removes the container's bundle (its scratch tmpfs
/// unmounted), runsc's files of it and the cgroup.
#[test]
fn a_warden_killed_outright_during_an_isolated_run_leaves_nothing_behind() {
    support::adopt_orphans();
    // A one-job container, and a keeper's (egress lets traffic out through warden's proxy,
    // which needs the sandbox's network before the job: no packet is sent here).
    let world = World::new();
    for network in ["no_access", "internet_access"] {
        killed_during_an_isolated_run(&world, network);
    }
}

fn killed_during_an_isolated_run(world: &World, network: &str) {
    let program = "import time\n\
                   print('ready', flush=True)\n\
                   time.sleep(60)\n";
    let (mut child, pid, _stdout) = started_with(
        world,
        &["--mode", "isolated", "--network", network],
        program,
    );
    // The run's processes: every one in the run's cgroup, gVisor's sandbox and gofer included.
    let tasks = || {
        support::run_cgroups(pid)
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .map(|procs| procs.lines().count())
            .sum::<usize>()
    };
    assert_eq!(cgroups_of(pid), 1, "the run's cgroup exists while it runs");
    assert!(tasks() >= 3, "runsc's processes run in it: {}", tasks());
    let container = format!("warden-run-{pid}-");
    let leftovers = || {
        let files = |dir: &str| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&container))
                .collect::<Vec<_>>()
        };
        let mut left = files("/run/warden/gvisor");
        left.extend(files("/run/warden/runsc"));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        left.extend(
            mounts
                .lines()
                .filter(|line| line.contains(&container))
                .map(str::to_owned),
        );
        left
    };
    assert!(
        !leftovers().is_empty(),
        "the run's bundle exists while it runs"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reaped");
    for _ in 0..1000 {
        if support::reap_orphans() && cgroups_of(pid) == 0 && leftovers().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!(
        "{network}: the killed warden left {} processes in its cgroup, or its helper still \
         runs, or {:?}",
        tasks(),
        leftovers()
    );
}

/// Hostile, at a terminal: the program's descriptors are pipes, never the terminal warden was
/// started in, and it has no controlling terminal, so it cannot push input into the user's
/// shell (`TIOCSTI`) or reach the terminal at all.
#[test]
fn a_program_run_at_a_terminal_cannot_reach_it() {
    let world = World::new();
    let program = "import fcntl, os, termios\n\
                   for fd in (0, 1, 2):\n\
                   \x20   try:\n\
                   \x20       fcntl.ioctl(fd, termios.TIOCSTI, b'x')\n\
                   \x20       print('injected through', fd)\n\
                   \x20   except OSError as e:\n\
                   \x20       print('refused', fd, e.errno)\n\
                   try:\n\
                   \x20   os.open('/dev/tty', os.O_RDWR)\n\
                   \x20   print('opened /dev/tty')\n\
                   except OSError:\n\
                   \x20   print('no terminal')\n\
                   print('tty' if any(os.isatty(fd) for fd in (0, 1, 2)) else 'no tty')\n";
    let (child, _typing) = support::at_a_terminal(
        &world,
        &[],
        &["run", "--mode", "sandboxed", "-l", "python", "-c", program],
    );
    let out = child.wait_with_output().expect("warden ends");
    let enotty = nix::errno::Errno::ENOTTY as i32;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "refused 0 {enotty}\nrefused 1 {enotty}\nrefused 2 {enotty}\nno terminal\nno tty\n"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
