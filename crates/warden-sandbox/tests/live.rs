//! Live sandboxes on every backend (issue 8): several jobs in one sandbox, each with its own
//! output and accounting; a cancel from another thread; a drop mid-run; and nothing left
//! behind. Needs root, and runsc for the gVisor backend (CI has both).

mod support;

use std::time::{Duration, Instant};

use support::{our_cgroups, plan, prerequisite, sandbox};
use warden_core::{Limits, Outcome, TimeLimitKind};
use warden_sandbox::{Backend, Job, SandboxError, SandboxSpec, Stdin, WorkspaceFile};

/// Every backend this host has (gVisor only when runsc is installed; CI has it).
fn backends() -> Vec<Box<dyn Backend>> {
    let host = sandbox();
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(host.native()), Box::new(host.trusted())];
    if prerequisite(warden_sandbox::runsc_path().is_some(), "runsc (gVisor)") {
        all.push(Box::new(host.gvisor().expect("runsc is installed")));
    }
    all
}

/// The backends whose jobs are processes of the host's kernel: the native sandbox and the
/// trusted backend (gVisor's run in its own kernel, which keeps them until the sandbox ends and
/// charges its memory to the sandbox as a whole, docs/sandbox-setup.md).
fn native_and_trusted() -> [Box<dyn Backend>; 2] {
    let host = sandbox();
    [Box::new(host.native()), Box::new(host.trusted())]
}

fn spec() -> SandboxSpec {
    plan(&["/bin/true"]).split().0
}

fn sh(script: &str) -> Job {
    let mut job = plan(&["/bin/sh", "-c", script]).split().1;
    job.limits = Limits::default();
    job
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn one_sandbox_runs_several_jobs_each_with_its_own_output_and_accounting() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let mut first = sh("cat input.txt; echo made > kept.txt; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 3");
        first
            .files
            .push(WorkspaceFile::new("input.txt", "from the host\n"));
        let one = sandbox.run(&first, Stdin::Null).expect("first job");
        assert_eq!(one.outcome, Outcome::Exited { code: 3 }, "{name}");
        assert_eq!(text(&one.stdout), "from the host\n", "{name}");
        let two = sandbox
            .run(
                &sh("cat kept.txt; cat -"),
                Stdin::Bytes(b"second stdin\n".to_vec()),
            )
            .expect("second job");
        assert_eq!(two.outcome, Outcome::Exited { code: 0 }, "{name}");
        assert_eq!(
            text(&two.stdout),
            "made\nsecond stdin\n",
            "{name}: the workspace persists"
        );
        assert!(
            two.usage.cpu_time < one.usage.cpu_time,
            "{name}: each job's cpu time is its own ({:?} then {:?})",
            one.usage.cpu_time,
            two.usage.cpu_time
        );
        let mut limited = sh("while :; do :; done");
        limited.limits.cpu_time = Duration::from_millis(300);
        let three = sandbox.run(&limited, Stdin::Null).expect("third job");
        assert_eq!(
            three.outcome,
            Outcome::TimeLimit {
                which: TimeLimitKind::Cpu
            },
            "{name}"
        );
        if name != "gvisor" {
            // A limit ends the job, not the sandbox (under gVisor it ends both, docs).
            let four = sandbox
                .run(&sh("echo still here"), Stdin::Null)
                .expect("fourth job");
            assert_eq!(text(&four.stdout), "still here\n", "{name}");
        }
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn each_job_of_a_live_sandbox_reports_its_own_memory_peak() {
    for backend in native_and_trusted() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        // tail keeps a line that never ends: 40 MB held at once.
        let hold_40_mb = sh("head -c 40000000 /dev/zero | tail -n 1 > /dev/null");
        let big = sandbox.run(&hold_40_mb, Stdin::Null).expect("first job");
        let small = sandbox.run(&sh("true"), Stdin::Null).expect("second job");
        let again = sandbox.run(&hold_40_mb, Stdin::Null).expect("third job");
        let mib = |run: &warden_sandbox::SandboxRun| run.usage.peak_memory.bytes() >> 20;
        assert!(mib(&big) >= 38, "{name}: {} MiB", mib(&big));
        assert!(
            mib(&small) < 20,
            "{name}: the peak is the job's own: {} MiB",
            mib(&small)
        );
        assert!(mib(&again) >= 38, "{name}: {} MiB", mib(&again));
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// Hunt lang 1: a program that ignores SIGXFSZ (as CPython, Node, Go and the JVM do) sees its
/// write past `max_file_size` fail with EFBIG and ends by itself; the file the kernel cut at
/// the limit makes that the file size limit, keeping the program's own end. Not a file of that
/// size the job was given, nor one an earlier job of the sandbox left, even within the
/// kernel's timestamp tick (4 ms at `HZ=250`, `files_at_limit::coarse_now`).
#[test]
fn a_failure_after_a_write_cut_at_the_limit_is_the_file_size_limit() {
    for backend in native_and_trusted() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let limited = |script: &str| {
            let mut job = sh(script);
            job.limits.max_file_size = warden_core::ByteSize::mib(1);
            job
        };
        let cut = sandbox
            .run(
                &limited("trap '' XFSZ; head -c 2000000 /dev/zero > cut; exit 1"),
                Stdin::Null,
            )
            .expect("job");
        assert_eq!(
            cut.outcome,
            Outcome::FileSizeLimit {
                ended: Some(warden_core::ProgramEnd::Exited { code: 1 })
            },
            "{name}: {}",
            text(&cut.stderr)
        );
        let mut given = limited("wc -c < given; exit 1");
        given
            .files
            .push(WorkspaceFile::new("given", vec![0u8; 1 << 20]));
        for (job, what) in [
            (given, "the job's own file"),
            (limited("exit 1"), "an earlier job's"),
        ] {
            let run = sandbox.run(&job, Stdin::Null).expect("job");
            assert_eq!(run.outcome, Outcome::Exited { code: 1 }, "{name}: {what}");
        }
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn a_first_job_sent_during_the_build_is_not_charged_for_the_build() {
    // A one-shot run sends its job before the sandbox is built; the cgroup counts the build
    // (the helper's clone, the init's mounts and pivot), the job must not.
    for backend in native_and_trusted() {
        let name = backend.name();
        let mut sandbox = backend.start(&spec()).expect("started");
        let reader = sandbox.usage_reader().expect("a cgroup");
        let run = sandbox.run(&sh("true"), Stdin::Null).expect("job");
        let total = reader.sample().expect("the sandbox lives").cpu_time;
        sandbox.destroy().expect("destroyed");
        // Counted from zero, the job would be the cgroup's whole count (nothing runs after
        // it); a native build takes a millisecond or more of cpu, a trusted one (no
        // namespaces, no mounts) as little as 30 µs on a loaded machine.
        let build = total.saturating_sub(run.usage.cpu_time);
        let least = if name == "trusted" {
            Duration::from_micros(10)
        } else {
            Duration::from_micros(100)
        };
        assert!(
            build >= least && run.usage.cpu_time > Duration::ZERO,
            "{name}: job {:?}, cgroup {total:?}: the build is not the job's",
            run.usage.cpu_time
        );
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn processes_a_job_leaves_are_gone_before_the_next_job() {
    // gVisor keeps them until the sandbox ends (docs/sandbox-setup.md).
    for backend in native_and_trusted() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let left = sandbox
            .run(
                &sh("(setsid sleep 1000 &); sleep 1000 & echo started"),
                Stdin::Null,
            )
            .expect("first job");
        assert_eq!(text(&left.stdout), "started\n", "{name}");
        let seen = sandbox
            .run(
                // The run's own uid: a trusted run sees the host's other processes too.
                &sh("ps -u \"$(id -u)\" -o comm= | grep -c '^sleep$' || true"),
                Stdin::Null,
            )
            .expect("second job");
        assert_eq!(
            text(&seen.stdout).trim(),
            "0",
            "{name}: a sleep survived its job"
        );
        sandbox.destroy().expect("destroyed");
    }
}

#[test]
fn a_cancel_from_another_thread_stops_the_job_and_the_sandbox() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let cancel = sandbox.cancel_handle();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        });
        let mut long = sh("echo begun; sleep 60");
        long.limits.wall_time = Duration::from_secs(60);
        let result = sandbox.run(&long, Stdin::Null);
        canceller.join().expect("canceller");
        assert!(
            matches!(result, Err(SandboxError::Cancelled { .. })),
            "{name}: {result:?}"
        );
        assert!(!sandbox.is_alive(), "{name}");
        let again = sandbox.run(&sh("true"), Stdin::Null);
        assert!(
            matches!(again, Err(SandboxError::Cancelled { .. })),
            "{name}: {again:?}"
        );
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn a_sandbox_dropped_mid_run_leaves_nothing_behind() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let init = sandbox.init_pid();
        let cancel = sandbox.cancel_handle();
        // The job's thread gives up on it at once (as a server whose client went away) and
        // drops the sandbox while the program and a daemon of it still run.
        let runner = std::thread::spawn(move || {
            let mut long = sh("(setsid sleep 1000 &); sleep 60");
            long.limits.wall_time = Duration::from_secs(60);
            let result = sandbox.run(&long, Stdin::Null);
            drop(sandbox);
            result
        });
        std::thread::sleep(Duration::from_millis(300));
        cancel.cancel();
        let result = runner.join().expect("runner");
        assert!(
            matches!(result, Err(SandboxError::Cancelled { .. })),
            "{name}: {result:?}"
        );
        if let Some(init) = init {
            assert!(
                !std::path::Path::new(&format!("/proc/{init}")).exists()
                    || std::fs::read_to_string(format!("/proc/{init}/stat"))
                        .is_ok_and(|s| s.contains(") Z ")),
                "{name}: the init outlived its sandbox"
            );
        }
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn an_idle_sandbox_dropped_without_destroy_leaves_nothing_behind() {
    for backend in backends() {
        let sandbox = backend.create(&spec()).expect("created");
        assert!(sandbox.is_alive());
        drop(sandbox);
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

#[test]
fn a_job_above_the_sandboxs_ceiling_is_refused_and_the_sandbox_lives_on() {
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    let mut greedy = sh("true");
    greedy.limits.memory = warden_core::ByteSize(spec().limits.memory.bytes() * 2);
    let refused = sandbox.run(&greedy, Stdin::Null);
    assert!(matches!(refused, Err(SandboxError::Plan(_))), "{refused:?}");
    let missing = sandbox.run(&plan(&["/nonexistent/program"]).split().1, Stdin::Null);
    assert!(
        matches!(missing, Err(SandboxError::Setup { .. })),
        "{missing:?}"
    );
    let fine = sandbox.run(&sh("echo ok"), Stdin::Null).expect("ran");
    assert_eq!(text(&fine.stdout), "ok\n");
}

/// A warden killed outright leaves empty cgroups (and run directories, gVisor bundles, runsc's
/// files) named after its pid; the next `Sandbox` removes those of processes that no longer
/// exist, and nothing else.
#[test]
fn what_a_dead_warden_left_is_swept_by_the_next() {
    // Above the kernel's largest pid: never a live process.
    let dead = "run-4194305-1";
    let alive = format!("run-{}-999999", std::process::id());
    let parents: Vec<std::path::PathBuf> = ["pids", "memory", "cpuacct", "unified"]
        .iter()
        .map(|h| {
            std::path::Path::new("/sys/fs/cgroup")
                .join(h)
                .join("warden")
        })
        .filter(|p| p.is_dir())
        .collect();
    assert!(!parents.is_empty(), "no warden cgroup parent on this host");
    for parent in &parents {
        for name in [dead, alive.as_str()] {
            let _ = std::fs::create_dir(parent.join(name));
        }
    }
    let trusted = std::path::Path::new("/run/warden/trusted").join(dead);
    std::fs::create_dir_all(trusted.join("work")).expect("a stale trusted directory");
    // A gVisor bundle with its scratch tmpfs still mounted, and runsc's files of its
    // container, as a warden killed during an isolated run leaves them.
    let bundle = std::path::Path::new("/run/warden/gvisor").join(format!("warden-{dead}"));
    let scratch = bundle.join("scratch");
    std::fs::create_dir_all(&scratch).expect("a stale bundle");
    nix::mount::mount(
        Some("tmpfs"),
        &scratch,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("its scratch tmpfs");
    std::fs::create_dir(scratch.join("work")).expect("a workspace");
    let runsc_root = std::path::Path::new("/run/warden/runsc");
    std::fs::create_dir_all(runsc_root).expect("runsc's root");
    let state = runsc_root.join(format!("warden-{dead}_sandbox:warden-{dead}.state"));
    std::fs::write(&state, "{}").expect("a stale state file");
    drop(sandbox());
    assert!(!bundle.exists(), "the bundle is removed");
    assert!(!state.exists(), "runsc's files are removed");
    for parent in &parents {
        assert!(!parent.join(dead).exists(), "{}", parent.display());
        assert!(
            parent.join(&alive).exists(),
            "a live process's cgroup was removed"
        );
        let _ = std::fs::remove_dir(parent.join(&alive));
    }
    assert!(!trusted.exists());
}

/// A live sandbox exposes its network namespace (where the network manager will attach its
/// proxy): a namespace of its own, not the host's, there while the sandbox lives.
#[test]
fn a_native_sandbox_exposes_its_own_network_namespace() {
    let sandbox = sandbox().native().create(&spec()).expect("created");
    let path = sandbox.network_namespace().expect("a namespace path");
    let inside = std::fs::read_link(&path).expect("the namespace exists while the sandbox lives");
    let host = std::fs::read_link("/proc/self/ns/net").expect("the host's namespace");
    assert_ne!(inside, host);
    assert!(inside.to_string_lossy().starts_with("net:["), "{inside:?}");
    sandbox.destroy().expect("destroyed");
    assert!(
        std::fs::read_link(&path).is_err(),
        "the init outlived its sandbox"
    );
}

/// The init's one child between jobs, the standby payload: its pid on the host and inside the
/// sandbox (the last field of `NSpid`). Waits for the init to fork it.
fn standby_pid(sandbox: &warden_sandbox::LiveSandbox) -> (i32, u32) {
    let init = sandbox.init_pid().expect("a native sandbox has an init");
    let children = format!("/proc/{init}/task/{init}/children");
    for _ in 0..200 {
        let listed = std::fs::read_to_string(&children).expect("the init's children");
        if let Some(child) = listed.split_whitespace().next() {
            let host: i32 = child.parse().expect("a pid");
            let status = std::fs::read_to_string(format!("/proc/{child}/status"))
                .expect("the standby's status");
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .expect("NSpid");
            let inside = nspid
                .split_whitespace()
                .last()
                .and_then(|p| p.parse().ok())
                .expect("a pid");
            return (host, inside);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no standby payload within 2 s");
}

/// Waits until the host's process `pid` has exited: a zombie, or gone.
fn wait_until_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the parenthesised name, which may itself hold ") ".
            Ok(stat)
                if !stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z')) =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return,
        }
    }
    panic!("process {pid} still alive 5 s after SIGKILL");
}

/// A ready sandbox forks the next job's payload ahead (docs/sandbox-setup.md, Standby): the
/// job runs in it, and it is confined exactly as a payload forked for the job is (the
/// one-shot runs of isolation.rs and basics.rs take that path), again after a reset.
#[test]
fn a_ready_sandbox_runs_its_job_in_a_standby_payload_confined_alike() {
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    sandbox.wait_ready().expect("ready");
    // `ls` opens the directory it lists as descriptor 3; the shell holds only 0 to 2.
    let facts = "echo $$; ulimit -n; ls -1 /proc/self/fd; echo --; exec grep -E \
        '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|SigIgn|SigBlk):' \
        /proc/self/status";
    for round in 0..2 {
        let (_, standby) = standby_pid(&sandbox);
        // Each job's own rlimits, set on the standby when the job comes.
        let open_files = 100 + round;
        let mut job = sh(facts);
        job.limits.max_open_files = open_files;
        let run = sandbox.run(&job, Stdin::Null).expect("a job");
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "{}",
            text(&run.stderr)
        );
        let out = text(&run.stdout);
        let (head, status) = out.split_once("--\n").expect("two parts");
        assert_eq!(
            head,
            format!("{standby}\n{open_files}\n0\n1\n2\n3\n"),
            "round {round}: the job ran in the standby, with the job's rlimits, holding nothing \
             of the init's"
        );
        assert_eq!(status.lines().count(), 10, "round {round}: {status}");
        for line in status.lines() {
            let (key, value) = line.split_once(':').expect("key: value");
            let want = match key {
                "NoNewPrivs" | "Seccomp_filters" => "1",
                "Seccomp" => "2",
                _ => "0000000000000000",
            };
            assert_eq!(value.trim(), want, "round {round}: {key}");
        }
        sandbox.reset().expect("reset");
        sandbox.wait_ready().expect("ready again");
    }
    // A standby that died before its job: the init forks the payload instead.
    let (host, _) = standby_pid(&sandbox);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the standby");
    // kill returns once the signal is queued; the standby has died (and closed its launch
    // socket) when it is a zombie or gone. A job sent before that would be the killed standby.
    wait_until_dead(host);
    let run = sandbox.run(&sh("echo after"), Stdin::Null).expect("a job");
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{}",
        text(&run.stderr)
    );
    assert_eq!(text(&run.stdout), "after\n");
    sandbox.destroy().expect("destroyed");
}

#[test]
fn a_reset_native_sandbox_keeps_nothing_of_the_last_job() {
    let before = our_cgroups();
    let mut reused = sandbox().native().create(&spec()).expect("created");
    let mut first =
        sh("echo secret > /work/left.txt; mkdir /tmp/d; echo secret > /tmp/d/f; ipcmk -M 4096 >/dev/null; ipcmk -Q >/dev/null; ipcs -m -q | grep -c 0x");
    first.files.push(WorkspaceFile::new("input.txt", "given\n"));
    let one = reused.run(&first, Stdin::Null).expect("first job");
    assert_eq!(one.outcome, Outcome::Exited { code: 0 }, "{one:?}");
    assert_eq!(
        text(&one.stdout).trim(),
        "2",
        "the job made its IPC objects"
    );

    reused.reset().expect("reset");
    let look = "ls -A /work /tmp; ipcs -m -q | grep -c 0x; echo >/work/new && echo writable";
    let two = reused
        .run(&sh(look), Stdin::Null)
        .expect("a job after the reset");
    assert_eq!(
        text(&two.stdout),
        "/tmp:\n\n/work:\n0\nwritable\n",
        "the workspace, /tmp and the IPC objects are new: {two:?}"
    );
    // Resetting again, and again, works the same (the old mounts do not pile up).
    for _ in 0..3 {
        reused.reset().expect("reset");
    }
    let three = reused
        .run(
            &sh("ls -A /work; grep -c ' /work \\| /tmp ' /proc/self/mountinfo"),
            Stdin::Null,
        )
        .expect("a job after more resets");
    assert_eq!(text(&three.stdout), "2\n", "{three:?}");
    // From inside, the reset sandbox looks like a fresh one: the same mount points (no holder
    // or temporary place left over) and a workspace with the same free blocks and inodes.
    let view = "awk '{print $5}' /proc/self/mountinfo | sort; stat -f -c '%b %f %c %d' /work /tmp";
    let reset_view = reused
        .run(&sh(view), Stdin::Null)
        .expect("a look after resets");
    reused.destroy().expect("destroyed");
    let mut fresh = sandbox().native().create(&spec()).expect("created");
    let fresh_view = fresh
        .run(&sh(view), Stdin::Null)
        .expect("a look when fresh");
    fresh.destroy().expect("destroyed");
    assert_eq!(
        reset_view.outcome,
        Outcome::Exited { code: 0 },
        "{reset_view:?}"
    );
    assert_eq!(text(&reset_view.stdout), text(&fresh_view.stdout));
    assert_eq!(our_cgroups(), before, "nothing left behind");
}

#[test]
fn only_a_native_sandbox_resets() {
    let mut sandbox = sandbox().trusted().create(&spec()).expect("created");
    assert!(matches!(
        sandbox.reset(),
        Err(SandboxError::Unsupported { .. })
    ));
    let after = sandbox
        .run(&sh("echo fine"), Stdin::Null)
        .expect("still runs");
    assert_eq!(text(&after.stdout), "fine\n");
    sandbox.destroy().expect("destroyed");
}

/// Streaming: an interactive program fed line by line from another thread, through
/// `Stdin::Pipe` (the pipe handed in) and through `Stdin::Relay` (the parent copying what the
/// descriptor gives), answers each line before the next is written, so its output reaches the
/// sink while it runs (what an MCP relay and an attached terminal need). The writer waits for
/// each reply before the next line: a sink that saw output only at the end, or input read to
/// its end first, would leave it waiting, and the test would fail.
#[test]
fn a_streamed_interactive_job_answers_each_line_before_the_next() {
    type Way = fn(std::os::fd::OwnedFd) -> Stdin;
    let ways: [(&str, Way); 2] = [("pipe", Stdin::Pipe), ("relay", Stdin::Relay)];
    for backend in backends() {
        let mut sandbox = backend.create(&spec()).expect("created");
        for (way, stdin) in ways {
            let name = format!("{}, {way}", backend.name());
            // Close-on-exec, or a runtime's job process (gVisor's `runsc exec`) would inherit
            // the write end and the program would never read end-of-file.
            let (read_end, write_end) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a stdin pipe");
            let (replies, replied) = std::sync::mpsc::channel::<String>();
            let writer = std::thread::spawn(move || {
                use std::io::Write;
                let mut input = std::fs::File::from(write_end);
                for i in 1..=3 {
                    writeln!(input, "{i}").map_err(|e| format!("writing line {i}: {e}"))?;
                    let reply = replied
                        .recv_timeout(Duration::from_secs(8))
                        .map_err(|e| format!("no reply to line {i} while the job runs: {e}"))?;
                    if reply != format!("got {i}") {
                        return Err(format!("line {i} answered {reply:?}"));
                    }
                }
                // Closing the write end is the program's end-of-file.
                Ok::<(), String>(())
            });
            let mut line = Vec::new();
            let mut streamed = Vec::new();
            let mut sink = |stream: warden_core::Stream, bytes: &[u8]| {
                if stream == warden_core::Stream::Stderr {
                    eprintln!("{name}: stderr: {}", text(bytes));
                    return true;
                }
                streamed.extend_from_slice(bytes);
                for &b in bytes {
                    if b == b'\n' {
                        let _ = replies.send(text(&std::mem::take(&mut line)));
                    } else {
                        line.push(b);
                    }
                }
                true
            };
            let run = sandbox
                .run_streaming(
                    &sh("while read l; do echo \"got $l\"; done; echo end"),
                    stdin(read_end),
                    &mut sink,
                )
                .expect("ran");
            writer.join().expect("writer").expect(&name);
            assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{name}: {run:?}");
            assert_eq!(text(&run.stdout), "got 1\ngot 2\ngot 3\nend\n", "{name}");
            assert_eq!(
                streamed, run.stdout,
                "{name}: the sink saw what was captured"
            );
        }
        // A relayed descriptor that stays open (its writer kept) while the program closes its
        // stdin: the job still ends.
        let (read_end, _kept) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("a pipe to relay");
        let run = sandbox
            .run(&sh("exec 0<&-; echo closed"), Stdin::Relay(read_end))
            .expect("ran");
        assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
        assert_eq!(text(&run.stdout), "closed\n");
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// A sink that asks for `signal` once the job printed `ready` (its signal source is a pipe),
/// and that, stopped (`OutputSink::suspend`, after a SIGTSTP), stays stopped longer than the
/// jobs' one-second wall-clock limit and notes the job's processes and their states.
struct Signalling {
    pipe: support::SignalPipe,
    signal: i32,
    seen: Vec<(String, char)>,
}

impl Signalling {
    fn new(signal: i32) -> Self {
        Self {
            pipe: support::SignalPipe::default(),
            signal,
            seen: Vec::new(),
        }
    }
}

impl warden_sandbox::OutputSink for Signalling {
    fn chunk(&mut self, stream: warden_core::Stream, bytes: &[u8]) -> bool {
        if stream == warden_core::Stream::Stdout && bytes.starts_with(b"ready") {
            self.pipe.ask();
        }
        true
    }
    fn signal_source(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.pipe.fd())
    }
    fn signals(&mut self) -> Vec<i32> {
        self.pipe.read(self.signal)
    }
    fn suspend(&mut self, _signal: i32) {
        std::thread::sleep(Duration::from_millis(1500));
        let cgroup = format!("/run-{}-", std::process::id());
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let dir = entry.path();
            let in_job =
                std::fs::read_to_string(dir.join("cgroup")).is_ok_and(|c| c.contains(&cgroup));
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if let (true, Some(state), "sh" | "sleep") = (in_job, state, comm.trim()) {
                self.seen.push((comm.trim().to_owned(), state));
            }
        }
    }
}

/// A sink's signal source (`OutputSink::signal_source`): the signals it brings reach the
/// program through the init, which handles them here; a signal that the init does not forward
/// ends the job as a kill.
#[test]
fn a_sinks_signals_reach_the_program() {
    let script = "trap 'echo term; exit 4' TERM; echo ready; while :; do sleep 0.05; done";
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    for (signal, expected) in [
        (libc::SIGTERM, Outcome::Exited { code: 4 }),
        (
            libc::SIGKILL,
            Outcome::Signaled {
                signal: warden_core::Signal(libc::SIGKILL),
            },
        ),
    ] {
        let mut sink = Signalling::new(signal);
        let run = sandbox
            .run_streaming(&sh(script), Stdin::Null, &mut sink)
            .expect("ran");
        assert_eq!(run.outcome, expected, "{signal}: {run:?}");
        if signal == libc::SIGTERM {
            assert_eq!(text(&run.stdout), "ready\nterm\n");
        }
    }
    sandbox.destroy().expect("destroyed");
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// A caller that stops (`OutputSink::suspend`, after a SIGTSTP among its signals): every process
/// of the job is stopped until the caller goes on, and the time stopped is not counted against
/// the wall-clock limit.
#[test]
fn a_caller_that_stops_stops_the_job_and_its_wall_clock() {
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    let mut sink = Signalling::new(libc::SIGTSTP);
    // One process (the shell becomes `sleep`): a shell that forks with vfork would wait for
    // its stopped child in state D.
    let mut job = sh("echo ready; exec sleep 0.5");
    job.limits.wall_time = Duration::from_secs(1);
    let run = sandbox
        .run_streaming(&job, Stdin::Null, &mut sink)
        .expect("ran");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    assert_eq!(text(&run.stdout), "ready\n");
    assert!(!sink.seen.is_empty(), "the job's process was found");
    assert!(
        sink.seen.iter().all(|(_, state)| *state == 'T'),
        "every process of the job stopped: {:?}",
        sink.seen
    );
    sandbox.destroy().expect("destroyed");
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// Streaming keeps the output limit: the sink gets no byte past it, and the job ends with the
/// output-limit outcome.
#[test]
fn a_streamed_flood_stops_at_the_output_limit() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let mut flood = sh("yes");
        flood.limits.max_output = warden_core::ByteSize::kib(64);
        let (mut streamed, mut errors) = (Vec::new(), Vec::new());
        let run = sandbox
            .run_streaming(
                &flood,
                Stdin::Null,
                &mut |stream: warden_core::Stream, bytes: &[u8]| {
                    match stream {
                        warden_core::Stream::Stdout => streamed.extend_from_slice(bytes),
                        warden_core::Stream::Stderr => errors.extend_from_slice(bytes),
                    }
                    true
                },
            )
            .expect("ran");
        assert_eq!(
            run.outcome,
            Outcome::OutputLimit {
                stream: warden_core::Stream::Stdout
            },
            "{name}"
        );
        // The limit is per stream, as without a sink: gVisor's `runsc exec` writes a line of its
        // own on the job's stderr when the sandbox is killed under it.
        assert!(streamed.len() <= 64 * 1024, "{name}: {}", streamed.len());
        assert_eq!(
            streamed, run.stdout,
            "{name}: the sink saw what was captured"
        );
        assert_eq!(errors, run.stderr, "{name}");
        assert!(run.stdout_truncated, "{name}");
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// A job that truncates its output (a compiler's, issue "compile warnings past 1 MiB") runs on
/// past the output limit: what it wrote past it is dropped and the run says so, its exit is
/// its own, and the sink saw only the kept bytes; one that writes forever still ends, at its
/// time limit, and the sandbox runs the next job.
#[test]
fn a_job_that_truncates_its_output_runs_past_the_limit_and_still_ends_at_its_time_limit() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let mut noisy = sh("head -c 300000 /dev/zero | tr '\\0' w >&2; echo done; exit 4");
        noisy.limits.max_output = warden_core::ByteSize::kib(64);
        noisy.truncate_output = true;
        let mut streamed = Vec::new();
        let run = sandbox
            .run_streaming(
                &noisy,
                Stdin::Null,
                &mut |stream: warden_core::Stream, bytes: &[u8]| {
                    if stream == warden_core::Stream::Stderr {
                        streamed.extend_from_slice(bytes);
                    }
                    true
                },
            )
            .expect("ran");
        assert_eq!(run.outcome, Outcome::Exited { code: 4 }, "{name}");
        assert_eq!(text(&run.stdout), "done\n", "{name}: it ran past the flood");
        assert_eq!(run.stderr, vec![b'w'; 64 * 1024], "{name}");
        assert!(run.stderr_truncated && !run.stdout_truncated, "{name}");
        assert_eq!(streamed, run.stderr, "{name}: the sink saw what was kept");

        let mut forever = sh("yes");
        forever.limits.max_output = warden_core::ByteSize::kib(64);
        forever.limits.wall_time = Duration::from_secs(1);
        forever.truncate_output = true;
        let run = sandbox.run(&forever, Stdin::Null).expect("ran");
        assert!(
            matches!(run.outcome, Outcome::TimeLimit { .. }),
            "{name}: {:?}",
            run.outcome
        );
        assert!(
            run.stdout_truncated && run.stdout.len() == 64 * 1024,
            "{name}"
        );
        if name != "gvisor" {
            // gVisor's sandbox ends with a job killed at a limit.
            let next = sandbox.run(&sh("echo next"), Stdin::Null).expect("ran");
            assert_eq!(text(&next.stdout), "next\n", "{name}");
        }
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// A sink that returns false ends a job that would print forever: the run returns with the
/// job killed (SIGKILL), no process of it is left, and a sandbox with warden's init runs the
/// next job (gVisor's ends with the job, as on a limit).
#[test]
fn a_sink_that_returns_false_ends_the_job() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let mut forever = sh("yes tick");
        // Far beyond the test: the run must end because of the sink, not a limit.
        forever.limits.wall_time = Duration::from_secs(60);
        forever.limits.cpu_time = Duration::from_secs(60);
        forever.limits.max_output = warden_core::ByteSize::mib(64);
        let mut calls = 0;
        let run = sandbox
            .run_streaming(
                &forever,
                Stdin::Null,
                &mut |_: warden_core::Stream, _: &[u8]| {
                    calls += 1;
                    calls < 3
                },
            )
            .expect("ran");
        assert_eq!(
            calls, 3,
            "{name}: the sink is not called after it said stop"
        );
        assert!(text(&run.stdout).starts_with("tick\ntick\n"), "{name}");
        assert_eq!(
            run.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal::KILL
            },
            "{name}"
        );
        // Under gVisor too: the job's processes end (another `runsc exec` kills them), the
        // sandbox goes on.
        let seen = sandbox
            .run(
                &sh("ps -u \"$(id -u)\" -o comm= | grep -c '^yes$' || true"),
                Stdin::Null,
            )
            .expect("the sandbox runs the next job");
        assert_eq!(text(&seen.stdout).trim(), "0", "{name}: a yes survived");
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// Live resource monitoring (issue 12): a running job's cgroup is read every interval, handed
/// to the sink as it is taken and kept in the run; a job shorter than one interval has none.
#[test]
fn a_running_job_is_sampled_and_the_readings_reach_the_sink_live() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        struct Readings(Vec<warden_core::UsageSample>);
        impl warden_sandbox::OutputSink for Readings {
            fn chunk(&mut self, _: warden_core::Stream, _: &[u8]) -> bool {
                true
            }
            fn sample(&mut self, sample: &warden_core::UsageSample) {
                self.0.push(*sample);
            }
        }
        let mut readings = Readings(Vec::new());
        // Busy for about half a second with an 8 MiB string held in memory.
        let mut job = sh("x=$(head -c 8388608 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo ${#x}");
        // Limits out of the way: under gVisor on a loaded machine the same loop has used more
        // than the default 5 s of cpu (the sentry's time is the sandbox's); this is about the
        // readings, not the limits.
        job.limits.cpu_time = Duration::from_secs(60);
        job.limits.wall_time = Duration::from_secs(60);
        let run = sandbox
            .run_streaming(&job, Stdin::Null, &mut readings)
            .expect("ran");
        assert_eq!(text(&run.stdout), "8388608\n", "{name}: {:?}", run.outcome);
        assert!(run.samples.len() >= 2, "{name}: {:?}", run.samples);
        assert_eq!(readings.0, run.samples, "{name}: the sink saw each reading");
        for pair in run.samples.windows(2) {
            assert!(pair[0].at < pair[1].at, "{name}: {:?}", run.samples);
            assert!(
                pair[0].cpu_time <= pair[1].cpu_time,
                "{name}: {:?}",
                run.samples
            );
        }
        let most = run
            .samples
            .iter()
            .map(|s| s.memory.bytes())
            .max()
            .unwrap_or(0);
        assert!(most >= 8 << 20, "{name}: {:?}", run.samples);
        assert!(
            run.samples.iter().all(|s| s.pids >= 1),
            "{name}: {:?}",
            run.samples
        );
        let quick = sandbox.run(&sh("true"), Stdin::Null).expect("ran");
        assert!(quick.samples.len() <= 1, "{name}: {:?}", quick.samples);
        sandbox.destroy().expect("destroyed");
    }
}

/// A signal for the job's program (what Piston's WebSocket `signal` message asks): with
/// warden's init (or gVisor's loader), a signal it forwards reaches the program, which handles
/// it and goes on to its own end; one it does not forward ends the job as a kill. A signal
/// asked before the program started waits for it.
#[test]
fn a_signal_reaches_the_program_which_may_handle_it() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let handle = sandbox.cancel_handle();
        let mut trapping = sh("trap 'echo caught INT; exit 7' INT; echo ready; \
                               while :; do sleep 0.05; done");
        trapping.limits.wall_time = Duration::from_secs(20);
        let mut seen = String::new();
        let mut signalled = false;
        let run = sandbox
            .run_streaming(
                &trapping,
                Stdin::Null,
                &mut |_: warden_core::Stream, chunk: &[u8]| {
                    seen.push_str(&text(chunk));
                    // Once: a second SIGINT reaching the shell inside its trap would run the
                    // trap again before its `exit`.
                    if seen.contains("ready") && !std::mem::replace(&mut signalled, true) {
                        handle.signal(warden_core::Signal::INT);
                    }
                    true
                },
            )
            .expect("ran");
        assert_eq!(run.outcome, Outcome::Exited { code: 7 }, "{name}: {run:?}");
        assert_eq!(text(&run.stdout), "ready\ncaught INT\n", "{name}");
        // Asked before the job: delivered as its program starts (the shell's trap is not
        // set yet, so SIGTERM's default ends it).
        handle.signal(warden_core::Signal::TERM);
        let early = sandbox
            .run(&sh("sleep 5; echo never"), Stdin::Null)
            .expect("ran");
        assert_eq!(
            early.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal::TERM
            },
            "{name}: {early:?}"
        );
        // Under gVisor a job ended as a kill ends its sandbox too (tests/isolated.rs).
        if name != "gvisor" {
            // One the init does not forward ends the job.
            let handle = sandbox.cancel_handle();
            let mut waiting = sh("echo ready; sleep 20");
            waiting.limits.wall_time = Duration::from_secs(20);
            let ended = sandbox
                .run_streaming(
                    &waiting,
                    Stdin::Null,
                    &mut |_: warden_core::Stream, _: &[u8]| {
                        handle.signal(warden_core::Signal(10 + 4)); // SIGALRM
                        true
                    },
                )
                .expect("ran");
            assert_eq!(
                ended.outcome,
                Outcome::Signaled {
                    signal: warden_core::Signal::KILL
                },
                "{name}: {ended:?}"
            );
            let next = sandbox
                .run(&sh("echo fine"), Stdin::Null)
                .expect("next job");
            assert_eq!(text(&next.stdout), "fine\n", "{name}: the sandbox lives on");
        }
        sandbox.destroy().expect("destroyed");
    }
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
}

/// A reset sandbox is a new lease: a handle of its last run (whose client may leave, and
/// cancel, after the sandbox went back to a pool) neither stops nor signals the next run; so is
/// one whose lease was renewed (a session's sandbox, between calls).
#[test]
fn a_handle_of_the_last_run_does_not_reach_the_sandbox_after_a_reset() {
    let mut reused = sandbox().native().create(&spec()).expect("created");
    let old = reused.cancel_handle();
    let first = reused.run(&sh("echo one"), Stdin::Null).expect("first job");
    assert_eq!(text(&first.stdout), "one\n");
    reused.reset().expect("reset");
    old.signal(warden_core::Signal::INT);
    old.cancel();
    let mut second = sh("sleep 0.3; echo two");
    second.limits.wall_time = Duration::from_secs(10);
    let two = reused
        .run(&second, Stdin::Null)
        .expect("the next run is not cancelled");
    assert_eq!(two.outcome, Outcome::Exited { code: 0 }, "{two:?}");
    assert_eq!(text(&two.stdout), "two\n");
    assert!(reused.is_alive());
    // A new lease without a reset (a session's, between calls) does the same.
    let before_call = reused.cancel_handle();
    reused.renew_lease().expect("renewed");
    before_call.signal(warden_core::Signal::TERM);
    before_call.cancel();
    let three = reused.run(&second, Stdin::Null).expect("not cancelled");
    assert_eq!(three.outcome, Outcome::Exited { code: 0 }, "{three:?}");
    // The new lease's handle still cancels.
    reused.cancel_handle().cancel();
    assert!(matches!(
        reused.run(&sh("true"), Stdin::Null),
        Err(SandboxError::Cancelled { .. })
    ));
    reused.destroy().expect("destroyed");
}

/// Hunt deps: a dependency set of up to 512 MiB came back into warden's memory whole. A job
/// that names a spool directory has its files written there as they come, to an unnamed file
/// (native backend; gVisor's still come back in memory), and read back one at a time.
#[test]
fn collected_files_spooled_to_disk_come_back_as_in_memory() {
    for backend in backends() {
        let name = backend.name();
        let spool = tempfile::tempdir().expect("a spool directory");
        let mut sandbox = backend.create(&spec()).expect("created");
        let mut job = sh(
            "mkdir -p out/sub && printf bin > out/main && chmod +x out/main \
                          && head -c 300000 /dev/zero > out/sub/big",
        );
        job.collect = Some("out".into());
        job.spool = Some(spool.path().to_owned());
        let run = sandbox.run(&job, Stdin::Null).expect("ran");
        assert_eq!(run.collect_error, None, "{name}");
        let mut files = Vec::new();
        match &run.spooled {
            Some(spooled) => {
                assert!(run.collected.is_empty(), "{name}");
                assert_eq!((spooled.len(), spooled.bytes()), (2, 300_003), "{name}");
                spooled
                    .for_each(|path, executable, contents| {
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(contents, &mut bytes)?;
                        files.push((path.to_owned(), bytes.len(), executable));
                        Ok(())
                    })
                    .expect("read back");
            }
            None => {
                assert_ne!(name, "native", "the native backend spools");
                for f in &run.collected {
                    files.push((f.path.clone(), f.contents.len(), f.executable));
                }
            }
        }
        assert_eq!(
            files,
            [
                ("out/main".into(), 3, true),
                ("out/sub/big".into(), 300_000, false)
            ],
            "{name}"
        );
        let left = std::fs::read_dir(spool.path()).expect("dir").count();
        assert_eq!(left, 0, "{name}: the spool has no name");
    }
}
