//! Security events and the response rule (issue 13): what the sandbox stopped is listed by
//! `warden events` with a severity; a caller that keeps probing is refused, or escalated to
//! `isolated`, once its events within the window reach the operator's threshold. Needs root
//! (real sandboxes), as CI runs.

mod support;

use std::process::Output;

use serde_json::{json, Value};
use support::{json_of, World};

/// A program that hits its output limit: one security event of low severity.
const FLOOD: [&str; 6] = ["--max-output", "1KiB", "-l", "bash", "-c", "yes"];

fn run(world: &World, args: &[&str]) -> Output {
    world
        .warden()
        .args(["run", "--json"])
        .args(args)
        .output()
        .expect("warden runs")
}

/// `warden events --json` with `args`, parsed.
fn listed_events(world: &World, args: &[&str]) -> Value {
    json_of(
        &world
            .warden()
            .args(["events", "--json"])
            .args(args)
            .output()
            .expect("warden runs"),
    )
}

#[test]
fn events_are_listed_with_their_severity() {
    let world = World::new();
    for _ in 0..2 {
        let result = json_of(&run(&world, &FLOOD));
        assert_eq!(result["outcome"]["kind"], "output_limit", "{result:#}");
    }
    let events = listed_events(&world, &[]);
    let events = events.as_array().expect("a list");
    assert_eq!(events.len(), 2, "{events:#?}");
    for event in events {
        assert_eq!(event["severity"], "low", "{event:#}");
        assert_eq!(event["kind"], "output_limit", "{event:#}");
        assert_eq!(event["stage"], "run", "{event:#}");
    }
    let serious = listed_events(&world, &["--severity", "high"]);
    assert_eq!(serious, Value::Array(Vec::new()));
    let bad = world
        .warden()
        .args(["events", "--severity", "urgent"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}

/// A program that tries to mount and to create a user namespace, and handles the refusals.
/// (`os.unshare` needs python 3.12; ctypes works with any.)
const PROBING: &str = "import ctypes
libc = ctypes.CDLL(None, use_errno=True)
ret = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)
print('mount', ret, ctypes.get_errno() == 1)
ret = libc.unshare(0x10000000)  # CLONE_NEWUSER
print('unshare', ret, ctypes.get_errno() == 1)
";

/// Issue 13: a system call the seccomp policy refuses with an error is a security event with
/// the policy's severity, and it leaves the program's outcome alone.
#[test]
fn refused_system_calls_are_events_and_the_program_still_succeeds() {
    // Sandboxed: by default code this suspicious runs isolated, where gVisor's own kernel
    // answers these calls and nothing is recorded (docs/events.md).
    let world = World::with_config("[modes]\nhigh = \"sandboxed\"\n");
    let args = ["--mode", "sandboxed", "-l", "python", "-c", PROBING];
    let result = json_of(&run(&world, &args));
    assert_eq!(result["outcome"]["kind"], "exited", "{result:#}");
    assert_eq!(result["outcome"]["code"], 0, "{result:#}");
    assert_eq!(
        result["stdout"], "mount -1 True\nunshare -1 True\n",
        "{result:#}"
    );
    let violations = result["security"]["violations"].as_array().expect("a list");
    let refused = |name: &str| {
        violations
            .iter()
            .find(|v| v["syscall"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not among {violations:#?}"))
            .clone()
    };
    for name in ["mount", "unshare"] {
        let v = refused(name);
        assert_eq!(v["kind"], "denied_syscall", "{v:#}");
        assert_eq!(v["stage"], "run", "{v:#}");
        assert_eq!(v["syscall"]["errno"], "EPERM", "{v:#}");
        assert_eq!(v["syscall"]["severity"], "high", "{v:#}");
        assert_eq!(v["syscall"]["count"], 1, "{v:#}");
    }
    let events = listed_events(&world, &["--severity", "high"]);
    let events = events.as_array().expect("a list");
    assert_eq!(events.len(), violations.len(), "{events:#?}");
    let mount = events
        .iter()
        .find(|e| e["detail"] == "seccomp refused mount (EPERM), 1 time")
        .unwrap_or_else(|| panic!("no mount event in {events:#?}"));
    assert_eq!(mount["kind"], "denied_syscall", "{mount:#}");
    assert_eq!(mount["severity"], "high", "{mount:#}");
    assert_eq!(mount["execution_id"], result["id"], "{mount:#}");
}

/// A call the seccomp policy kills for ends the process that made it before it runs, and
/// the event names the call: the program's own kill as its outcome, a child's as an event of
/// its own (the program went on after it).
#[test]
fn a_killed_call_is_named_for_the_program_and_for_its_children() {
    // open_by_handle_at, which the built-in policy kills for (the "shocker" escape).
    let nr = if cfg!(target_arch = "aarch64") {
        265
    } else {
        304
    };
    let code = format!(
        "import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
pid = os.fork()
if pid == 0:
    libc.syscall({nr}, -100, None, 0)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print('child', os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, flush=True)
libc.syscall({nr}, -100, None, 0)
print('survived')
"
    );
    let world = World::with_config("[modes]\nhigh = \"sandboxed\"\n");
    let args = ["--mode", "sandboxed", "-l", "python", "-c", &code];
    let result = json_of(&run(&world, &args));
    assert_eq!(result["stdout"], "child 9\n", "{result:#}");
    let killed = "open_by_handle_at, a forbidden system call (seccomp killed the process)";
    assert_eq!(
        result["outcome"],
        serde_json::json!({"kind": "violation", "detail": killed}),
        "{result:#}"
    );
    let details: Vec<&str> = result["security"]["violations"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|v| v["kind"] == "violation")
        .filter_map(|v| v["detail"].as_str())
        .collect();
    assert_eq!(
        details,
        [
            format!("seccomp: {killed}"),
            "seccomp: 1 process killed for open_by_handle_at, a forbidden system call".to_owned()
        ],
        "{result:#}"
    );
    let events = listed_events(&world, &["--severity", "high"]);
    let listed = events.as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{events:#}");
}

/// Hunt esc F1: a seccomp filter of the program's own could take the calls warden's filter
/// hands to the sandbox's init, unrecorded and unkilled. Installing one is refused with
/// EINVAL, as an event of medium severity, and the call after it is killed as ever.
#[test]
fn installing_a_seccomp_filter_of_its_own_is_refused_as_an_event() {
    let (seccomp, open_by_handle_at) = if cfg!(target_arch = "aarch64") {
        (277, 265)
    } else {
        (317, 304)
    };
    // SECCOMP_SET_MODE_FILTER with no program: EFAULT where a filter may be installed.
    let code = format!(
        "import ctypes
libc = ctypes.CDLL(None, use_errno=True)
ret = libc.syscall({seccomp}, 1, 0, None)
print('seccomp', ret, ctypes.get_errno(), flush=True)
libc.syscall({open_by_handle_at}, -100, None, 0)
print('survived')
"
    );
    let world = World::with_config("[modes]\nhigh = \"sandboxed\"\n");
    let args = ["--mode", "sandboxed", "-l", "python", "-c", &code];
    let result = json_of(&run(&world, &args));
    assert_eq!(result["stdout"], "seccomp -1 22\n", "{result:#}");
    assert_eq!(result["outcome"]["kind"], "violation", "{result:#}");
    let violations = result["security"]["violations"].as_array().expect("a list");
    let refused = violations
        .iter()
        .find(|v| v["kind"] == "denied_syscall")
        .unwrap_or_else(|| panic!("no refusal among {violations:#?}"));
    assert_eq!(
        refused["detail"], "seccomp refused seccomp (EINVAL), 1 time",
        "{refused:#}"
    );
    assert_eq!(refused["syscall"]["severity"], "medium", "{refused:#}");
}

/// Issue 13: writes to read-only paths are one security event of the stage, with the count,
/// the first paths and a severity; the program meets the kernel's refusal and goes on.
#[test]
fn writes_to_read_only_paths_are_events() {
    let world = World::new();
    let script = "echo x > /usr/planted; echo x > /etc/passwd; mkdir /usr/lib/d; \
                  echo fine > /work/ok; cat /work/ok; echo x > /dev/null";
    let args = ["--mode", "sandboxed", "-l", "bash", "-c", script];
    let result = json_of(&run(&world, &args));
    assert_eq!(result["outcome"]["kind"], "exited", "{result:#}");
    assert_eq!(result["stdout"], "fine\n", "{result:#}");
    let stderr = result["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    let violations = result["security"]["violations"].as_array().expect("a list");
    let [v] = &violations[..] else {
        panic!("one event expected: {violations:#?}")
    };
    assert_eq!(v["kind"], "readonly_write", "{v:#}");
    assert_eq!(v["stage"], "run", "{v:#}");
    assert_eq!(
        v["detail"],
        "write to a read-only path refused, 3 times: openat /usr/planted, openat /etc/passwd, \
         mkdir /usr/lib/d",
        "{v:#}"
    );
    assert_eq!(v["writes"]["count"], 3, "{v:#}");
    assert_eq!(v["writes"]["severity"], "medium", "{v:#}");
    let events = listed_events(&world, &["--severity", "medium"]);
    let events = events.as_array().expect("a list");
    let [event] = &events[..] else {
        panic!("one event expected: {events:#?}")
    };
    assert_eq!(event["kind"], "readonly_write", "{event:#}");
    assert_eq!(event["severity"], "medium", "{event:#}");
    assert_eq!(event["execution_id"], result["id"], "{event:#}");
}

#[test]
fn a_caller_that_keeps_probing_is_refused_until_its_events_age_out() {
    let world =
        World::with_config("[response]\nevents = 2\nwithin = \"10m\"\naction = \"refuse\"\n");
    for _ in 0..2 {
        assert!(run(&world, &FLOOD).status.code().is_some());
    }
    let refused = run(&world, &["-l", "bash", "-c", "echo fine"]);
    assert_eq!(refused.status.code(), Some(125));
    let error = json_of(&refused);
    let message = error["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("caused 2 security events within 600s"),
        "{message}"
    );
    // Another configuration without the rule runs the same caller again.
    world.write_config("");
    let fine = json_of(&run(&world, &["-l", "bash", "-c", "echo fine"]));
    assert_eq!(fine["stdout"], "fine\n", "{fine:#}");
}

#[test]
fn a_caller_over_the_threshold_is_escalated_to_isolated_and_told_why() {
    let world =
        World::with_config("[response]\nevents = 1\nwithin = \"1h\"\naction = \"isolate\"\n");
    let first = json_of(&run(&world, &FLOOD));
    assert_eq!(first["mode"], "sandboxed", "{first:#}");
    let next = json_of(&run(&world, &["-l", "bash", "-c", "echo fine"]));
    assert_eq!(next["stdout"], "fine\n", "{next:#}");
    assert_eq!(next["mode"], "isolated", "{next:#}");
    let reason = next["security"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("response rule:"), "{reason}");
    // Bug hunt "auth": a request that named its mode read "requested isolated" in its reason.
    let asked = json_of(&run(
        &world,
        &["--mode", "sandboxed", "-l", "bash", "-c", "echo fine"],
    ));
    assert_eq!(asked["mode"], "isolated", "{asked:#}");
    let reason = asked["security"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("so its executions run isolated (it asked for sandboxed)"),
        "{reason}"
    );
}

/// Forks until the process limit refuses one, then reports and exits 0: a fork storm the
/// program survives.
const FORK_STORM: &str = "
import os, time
children = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(3)
            os._exit(0)
        children.append(pid)
except OSError as e:
    print('refused after', len(children) > 0, e.errno)
";

/// `max_procs` counts the program's own processes and threads, not warden's init beside them
/// in the cgroup: at 1 the program runs alone, and its first fork is refused and counted (it
/// used to leave no room for the program at all, a broken pipe to the sandbox).
#[test]
fn max_procs_one_runs_the_program_alone() {
    let world = World::new();
    let fork = "import os\nprint('alone')\ntry:\n    os.fork()\nexcept OSError as e:\n    print('refused', e.errno)\n";
    let result = json_of(&run(
        &world,
        &["--max-procs", "1", "-l", "python", "-c", fork],
    ));
    assert_eq!(
        result["outcome"],
        json!({"kind": "exited", "code": 0}),
        "{result:#}"
    );
    assert_eq!(result["stdout"], "alone\nrefused 11\n", "{result:#}");
    let violations = result["security"]["violations"].as_array().expect("a list");
    assert!(
        violations
            .iter()
            .any(|v| v["detail"] == "process limit: 1 fork was refused at max_procs 1"),
        "{violations:#?}"
    );
}

/// The same `max_procs` holds the same number of the program's processes whichever sandbox
/// runs it: the pids cgroup natively (beside warden's init), `RLIMIT_NPROC` under gVisor
/// (beside the loader that is the container's init), and the trusted mode's cgroup.
#[test]
fn max_procs_holds_alike_in_every_mode() {
    let world = World::with_config("[modes]\ntrusted_enabled = true\nnone = \"trusted\"\nlow = \"trusted\"\nmedium = \"trusted\"\n");
    let forker = "import os, time\nn = 0\nfor _ in range(10):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(2)\n        os._exit(0)\n    n += 1\nprint(n)\n";
    for mode in ["sandboxed", "isolated", "trusted"] {
        let result = json_of(&run(
            &world,
            &[
                "--mode",
                mode,
                "--max-procs",
                "3",
                "-l",
                "python",
                "-c",
                forker,
            ],
        ));
        assert_eq!(result["outcome"]["kind"], "exited", "{mode}: {result:#}");
        assert_eq!(
            result["stdout"], "2\n",
            "{mode}: the program and two children: {result:#}"
        );
    }
}

#[test]
fn a_fork_storm_the_program_survives_is_an_event() {
    let world = World::with_config("[modes]\nhigh = \"sandboxed\"\n");
    let args = [
        "--mode",
        "sandboxed",
        "--max-procs",
        "8",
        "-l",
        "python",
        "-c",
        FORK_STORM,
    ];
    let result = json_of(&run(&world, &args));
    assert_eq!(result["outcome"]["kind"], "exited", "{result:#}");
    assert_eq!(result["stdout"], "refused after True 11\n", "{result:#}");
    let violations = result["security"]["violations"].as_array().expect("a list");
    let storm = violations
        .iter()
        .find(|v| v["kind"] == "process_limit")
        .unwrap_or_else(|| panic!("no process_limit among {violations:#?}"));
    assert_eq!(storm["stage"], "run", "{storm:#}");
    assert!(
        storm["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("process limit: ") && d.ends_with("at max_procs 8")),
        "{storm:#}"
    );
    let events = listed_events(&world, &["--severity", "medium"]);
    assert!(
        events.as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["kind"] == "process_limit" && e["severity"] == "medium")),
        "{events:#}"
    );

    // An ordinary program that forks a little is no event.
    let calm = json_of(&run(&world, &["-l", "bash", "-c", "echo a | cat | wc -l"]));
    assert_eq!(
        calm["security"]["violations"],
        serde_json::json!([]),
        "{calm:#}"
    );
}
