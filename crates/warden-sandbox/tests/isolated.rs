//! The isolated backend really runs under gVisor and keeps the limits. Privileged: root, and
//! runsc (scripts/setup.sh installs it).

mod support;

use support::{out, plan, sandbox};
use warden_core::{ByteSize, Limits, Outcome, TimeLimitKind};
use warden_sandbox::Stdin;

fn isolated(script: &str, limits: Limits) -> warden_sandbox::SandboxRun {
    assert!(
        warden_sandbox::runsc_path().is_some(),
        "runsc is missing: install the Debian package runsc (scripts/setup.sh does)"
    );
    let mut p = plan(&["/bin/sh", "-c", script]);
    p.limits = limits;
    sandbox()
        .run_isolated(&p, Stdin::Null)
        .expect("warden ran the program under gVisor")
}

/// The bundles' directory on the host, where each gVisor sandbox's files, arguments,
/// environment, workspace and /tmp live (opened to all by the program if it likes), cannot be
/// listed by another user of the host (a trusted run), whatever its mode was before: it is
/// passed through by runsc's gofer, which runs as the sandbox's slot uid (0711), and what a
/// bundle holds is root's or the slot's alone (`gvisor/bundle.rs`).
#[test]
fn the_bundles_of_gvisor_sandboxes_cannot_be_listed_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let bundles = std::path::Path::new("/run/warden/gvisor");
    if bundles.exists() {
        std::fs::set_permissions(bundles, std::fs::Permissions::from_mode(0o755))
            .expect("opened to all, as an older warden left it");
    }
    let run = isolated(
        "echo secret > /work/key; chmod -R 777 /work /tmp; ls /run 2>&1 | head -1",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
    let mode = std::fs::metadata(bundles)
        .expect("the bundles")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o711, "{mode:o}");
}

#[test]
fn the_program_sees_gvisors_kernel_not_the_hosts() {
    let host = std::fs::read_to_string("/proc/version").expect("host /proc/version");
    let run = isolated("cat /proc/version; echo done", Limits::default());
    let inside = out(&run);
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    assert!(inside.ends_with("done\n"), "{inside}");
    assert_ne!(
        inside.lines().next(),
        host.lines().next(),
        "the host kernel leaked: {inside}"
    );
    assert!(
        inside.contains("4.4.0"),
        "gVisor reports Linux 4.4.0: {inside}"
    );
}

#[test]
fn exit_codes_stdin_and_files_work_like_the_native_backend() {
    let mut p = plan(&[
        "/bin/sh",
        "-c",
        "read x; echo \"got $x\" > /work/out; cat /work/out; exit 3",
    ]);
    p.files
        .push(warden_sandbox::WorkspaceFile::new("in.txt", "unused"));
    let run = sandbox()
        .run_isolated(&p, Stdin::Bytes(b"five\n".to_vec()))
        .expect("ran");
    assert_eq!(out(&run), "got five\n");
    assert_eq!(run.outcome, Outcome::Exited { code: 3 });
}

/// coreutils' `ls` and `stat` pass `AT_NO_AUTOMOUNT` to statx, which this runsc refused with
/// `EINVAL` (`ls: cannot access '/': Invalid argument`); the sandbox's preloaded object drops
/// the flag, and the program cannot unset it: the root, its `/etc/ld.so.preload` included, is
/// read-only.
#[test]
fn coreutils_list_and_stat_files_under_gvisor() {
    let run = isolated(
        "ls -d / /work /tmp && stat -c '%F' /work && ls /proc/self/fd >/dev/null \
         && ! echo > /etc/ld.so.preload 2>/dev/null && ! rm -f /.warden/no_automount.so 2>/dev/null \
         && echo ok",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
    assert_eq!(out(&run), "/\n/tmp\n/work\ndirectory\nok\n");
}

#[test]
fn limits_hold_under_gvisor() {
    let wall = isolated(
        "sleep 30",
        Limits {
            wall_time: std::time::Duration::from_millis(1500),
            ..Limits::default()
        },
    );
    assert_eq!(
        wall.outcome,
        Outcome::TimeLimit {
            which: TimeLimitKind::Wall
        }
    );
    let flood = isolated(
        "yes",
        Limits {
            max_output: ByteSize::kib(64),
            ..Limits::default()
        },
    );
    assert!(
        matches!(flood.outcome, Outcome::OutputLimit { .. }),
        "{:?}",
        flood.outcome
    );
    assert_eq!(flood.stdout.len(), 64 << 10);
}

#[test]
fn the_network_has_no_route_out() {
    let run = isolated(
        "exec /usr/bin/python3 -c 'import socket; s=socket.socket(); s.settimeout(2)\ntry:\n s.connect((\"1.1.1.1\", 80)); print(\"connected\")\nexcept OSError as e: print(\"refused\", e.errno)'",
        Limits::default(),
    );
    assert!(out(&run).starts_with("refused"), "{}", out(&run));
}

#[test]
fn the_workspace_is_capped_at_its_size_under_gvisor() {
    let limits = Limits {
        workspace_size: ByteSize::mib(4),
        ..Limits::default()
    };
    let run = isolated(
        "head -c 8388608 /dev/zero > /work/big; echo status $?; wc -c < /work/big",
        limits,
    );
    let text = out(&run);
    assert!(text.contains("status 1"), "the write must fail: {text}");
    let written: u64 = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(u64::MAX);
    assert!(written <= 4 << 20, "{written} bytes in a 4 MiB workspace");
}

/// Issue 8: gVisor answered a program's blocking write into a full pipe with a short count,
/// and a program that does not retry (python -u) lost the rest without a word.
#[test]
fn unbuffered_output_larger_than_a_pipe_comes_back_whole_under_gvisor() {
    let script = "python3 -u -c 'import sys; sys.stdout.write(\"x\" * 500000); sys.stderr.write(\"y\" * 300000)'";
    let run = isolated(script, Limits::default());
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    assert_eq!((run.stdout.len(), run.stdout_truncated), (500_000, false));
    assert_eq!((run.stderr.len(), run.stderr_truncated), (300_000, false));
}

/// `/work` and `/tmp` share one capped tmpfs, as in the native sandbox: once `/work` is full,
/// `/tmp` is too.
#[test]
fn the_workspace_and_tmp_share_the_cap_under_gvisor() {
    let limits = Limits {
        workspace_size: ByteSize::mib(4),
        max_file_size: ByteSize::mib(64),
        ..Limits::default()
    };
    let run = isolated(
        "head -c 8388608 /dev/zero > /work/big; if echo x > /tmp/more; then echo tmp-writable; else echo tmp-full; fi",
        limits,
    );
    assert_eq!(out(&run).lines().last(), Some("tmp-full"), "{run:?}");
}

/// A root-owned host directory under `/var/tmp`, removed when dropped (also when a test
/// fails half-way).
struct HostVolume(std::path::PathBuf);

impl HostVolume {
    fn new(name: &str) -> Self {
        let path =
            std::path::PathBuf::from(format!("/var/tmp/warden-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the volume directory");
        Self(path)
    }

    /// Runs `script` in a fresh gVisor sandbox with this directory at `/data`.
    fn run(&self, writable: bool, script: &str) -> warden_sandbox::SandboxRun {
        use warden_sandbox::{Backend, VolumeMount};
        let mut spec = plan(&["/bin/true"]).split().0;
        spec.volumes.push(VolumeMount {
            host: self.0.clone(),
            target: "/data".into(),
            writable,
        });
        let gvisor = sandbox().gvisor().expect("runsc is installed");
        let mut live = gvisor.create(&spec).expect("created");
        let mut job = plan(&["/bin/sh", "-c", script]).split().1;
        job.limits = Limits::default();
        live.run(&job, Stdin::Null).expect("the job ran")
    }
}

impl Drop for HostVolume {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A volume is a bind of its host directory: the sandbox's root reads and writes files owned
/// by uid 0 on disk, and what it creates is stored as uid 0 (`SandboxSpec::volumes`).
#[test]
fn a_writable_volume_is_shared_with_the_host_as_uid_0() {
    use std::os::unix::fs::MetadataExt;
    let volume = HostVolume::new("volume-test");
    std::fs::write(volume.0.join("given.txt"), "from the host\n").expect("write a file");
    let run = volume.run(
        true,
        "cat /data/given.txt; echo more >> /data/given.txt; echo new > /data/made.txt; \
         python3 -c 'import os; s = os.stat(\"/data/made.txt\"); print(s.st_uid, s.st_gid)'",
    );
    assert_eq!(out(&run), "from the host\n0 0\n", "{run:?}");
    let given = std::fs::read_to_string(volume.0.join("given.txt")).expect("the file is there");
    assert_eq!(given, "from the host\nmore\n");
    let made = std::fs::metadata(volume.0.join("made.txt")).expect("the sandbox's file is on disk");
    assert_eq!((made.uid(), made.gid()), (0, 0));
}

/// A read-only volume cannot be written.
#[test]
fn a_read_only_volume_refuses_writes_under_gvisor() {
    let volume = HostVolume::new("volume-ro-test");
    let run = volume.run(false, "echo x > /data/f && echo wrote || echo refused");
    assert_eq!(out(&run), "refused\n", "{run:?}");
    let left = std::fs::read_dir(&volume.0).expect("the directory").count();
    assert_eq!(left, 0);
}

/// The program's memory is capped near its limit: the sandbox's cgroup holds the program and
/// runsc's own processes, which get 64 MiB on top (`gvisor.rs`, docs/threat-model.md).
#[test]
fn a_memory_bomb_hits_the_memory_limit_under_gvisor() {
    let limits = Limits {
        memory: ByteSize::mib(64),
        ..Limits::default()
    };
    let run = isolated(
        "exec python3 -c 'a = []\nwhile True: a.append(bytearray(16 << 20))'",
        limits,
    );
    assert_eq!(run.outcome, Outcome::MemoryLimit, "{run:?}");
    assert!(
        // A page or so past the cgroup's limit before the kill, as in tests/hostile.rs.
        run.usage.peak_memory.bytes() <= ByteSize::mib(64 + 64 + 4).bytes(),
        "peak {}",
        run.usage.peak_memory
    );
}

/// The devices behave as devices under both modes, on their read-only `/dev`.
#[test]
fn the_devices_work_and_dev_stays_read_only_in_both_modes() {
    let script = "echo x > /dev/null && echo null-ok; \
                  head -c 5 /dev/zero | wc -c; head -c 5 /dev/urandom | wc -c; \
                  head -c 5 /dev/random | wc -c; \
                  if echo x > /dev/full; then echo full-wrote; else echo full-refused; fi; \
                  if chmod 600 /dev/null; then echo chmod-ok; else echo chmod-refused; fi; \
                  if true > /dev/new; then echo created; else echo create-refused; fi";
    for mode in support::MODES {
        let run = support::sh_in(mode, script, Limits::default());
        assert_eq!(
            out(&run),
            "null-ok\n5\n5\n5\nfull-refused\nchmod-refused\ncreate-refused\n",
            "{mode:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

/// The job's files, the workspace and `/tmp` are the sandbox's root's under gVisor as natively:
/// the program may change its files and make new ones beside them, in both kinds of sandbox,
/// and on the host they are the run's slot's (the sandbox's user namespace, `gvisor/bundle.rs`).
#[test]
fn a_jobs_files_are_the_sandboxs_roots_under_gvisor() {
    let script = "stat -c '%u %g' /work /tmp /work/sub/given.txt; \
                  echo more >> /work/sub/given.txt && cat /work/sub/given.txt; \
                  mkdir /work/made && echo new > /work/sub/new.txt && echo made; \
                  echo t > /tmp/t && echo tmp";
    let mut p = plan(&["/bin/sh", "-c", script]);
    p.files.push(warden_sandbox::WorkspaceFile::new(
        "sub/given.txt",
        "given\n",
    ));
    let expected = "0 0\n0 0\n0 0\ngiven\nmore\nmade\ntmp\n";
    for mode in support::MODES {
        let run = support::run_in(mode, &p, Stdin::Null);
        assert_eq!(out(&run), expected, "{mode:?}: {run:?}");
    }
    use warden_sandbox::Backend;
    let (spec, job) = p.clone().split();
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.create(&spec).expect("created");
    let first = live.run(&job, Stdin::Null).expect("the job ran");
    assert_eq!(out(&first), expected, "{first:?}");
}

/// A root-only host file in a read-only bind is refused in both modes: the sandbox's root is
/// an unprivileged host uid (the run's slot) to the host's files, under gVisor as natively
/// (its OCI user namespace maps root to the slot, `gvisor/bundle.rs`), in a sandbox of one
/// job and in one of several.
#[test]
fn a_root_only_host_file_in_a_read_only_bind_is_refused_in_both_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::path::PathBuf::from(format!("/var/tmp/warden-root-only-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("create the bound directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = dir.join("secret");
    std::fs::write(&secret, "host secret\n").expect("write the secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(dir.join("open"), "open\n").expect("write an open file");
    std::fs::set_permissions(dir.join("open"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let private = dir.join("private");
    std::fs::create_dir(&private).expect("create a private directory");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let script = format!(
        "cat {d}/open; cat {d}/secret 2>/dev/null || echo refused; \
         ls {d}/private >/dev/null 2>&1 && echo listed || echo refused",
        d = dir.display()
    );
    let mut p = plan(&["/bin/sh", "-c", &script]);
    p.binds.push(warden_sandbox::Bind { path: dir.clone() });
    let several = |p: &warden_sandbox::SandboxPlan| {
        use warden_sandbox::Backend;
        let (spec, job) = p.clone().split();
        let gvisor = sandbox().gvisor().expect("runsc is installed");
        let mut live = gvisor.create(&spec).expect("created");
        live.run(&job, Stdin::Null).expect("the job ran")
    };
    let runs = [
        (
            "sandboxed",
            support::run_in(support::Mode::Sandboxed, &p, Stdin::Null),
        ),
        (
            "isolated",
            support::run_in(support::Mode::Isolated, &p, Stdin::Null),
        ),
        ("isolated, several jobs", several(&p)),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    for (mode, run) in runs {
        assert_eq!(out(&run), "open\nrefused\nrefused\n", "{mode}: {run:?}");
    }
}

/// A one-shot run's container is its job (`Backend::start_single`): the program runs under the
/// loader as the container's pid 1, not as pid 1 itself, so that a program signalling itself
/// dies of it as anywhere else (an init ignores signals it has no handler for), and its
/// orphans are reaped by someone.
#[test]
fn a_one_job_sandboxs_program_is_not_its_pid_1_and_dies_of_its_own_signals() {
    // The script's text is in pid 1's command line: what it prints after the kill is built.
    let run = isolated(
        "echo \"pid $$\"; tr '\\0' ' ' < /proc/1/cmdline; echo; kill -TERM $$; echo \"sur\"\"vived\"",
        Limits::default(),
    );
    let text = out(&run);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("pid 2"), "{text}");
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("/.warden/seccomp-exec __seccomp-exec --init ")),
        "pid 1 is the loader as init: {text}"
    );
    assert_eq!(lines.next(), None, "{text}");
    assert_eq!(
        run.outcome,
        Outcome::Signaled {
            signal: warden_core::Signal(15)
        },
        "{text}"
    );
}

/// The container of a one-job sandbox runs one job: a second is refused, and the sandbox
/// still ends cleanly, leaving no cgroup, bundle or runsc process.
#[test]
fn a_one_job_sandbox_refuses_a_second_job_and_leaves_nothing() {
    use warden_sandbox::Backend;
    let (spec, job) = plan(&["/bin/sh", "-c", "echo one"]).split();
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.start_single(&spec).expect("started");
    let first = live.run(&job, Stdin::Null).expect("the job ran");
    assert_eq!(out(&first), "one\n");
    let second = live.run(&job, Stdin::Null);
    assert!(
        matches!(second, Err(warden_sandbox::SandboxError::Gone { .. })),
        "{second:?}"
    );
    live.destroy().expect("destroyed");
    assert_eq!(
        support::our_cgroups(),
        Vec::<String>::new(),
        "cgroups left behind"
    );
    let bundles: Vec<_> = std::fs::read_dir("/run/warden/gvisor")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("warden-run-{}-", std::process::id()))
        })
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        bundles,
        Vec::<std::ffi::OsString>::new(),
        "bundles left behind"
    );
}

/// A gVisor job's loader passes signals on as warden's own init does, whether it is a one-job
/// sandbox's init (the container's pid 1) or a job's parent in a sandbox that runs several
/// (`runsc exec`, under the keeper: a session's, an egress run's): a SIGINT that the program
/// traps reaches it, one asked before the program started reaches it once it runs, and one
/// not passed on ends the job as a kill. In the sandbox of several jobs, the signalled job is
/// its second.
#[test]
fn signals_reach_a_gvisor_sandboxs_program() {
    use warden_core::Signal;
    use warden_sandbox::Backend;
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    for one_job in [true, false] {
        // Runs `script` in a fresh sandbox; `signal` (if any) is asked once the program
        // printed `ready`, `early` before the job.
        let run = |script: &str, signal: Option<Signal>, early: Option<Signal>| {
            let (spec, mut job) = plan(&["/bin/sh", "-c", script]).split();
            job.limits.wall_time = std::time::Duration::from_secs(20);
            let mut live = if one_job {
                gvisor.start_single(&spec).expect("started")
            } else {
                let mut live = gvisor.start(&spec).expect("started");
                let (_, mut first) = plan(&["/bin/true"]).split();
                first.limits.wall_time = std::time::Duration::from_secs(20);
                let first = live.run(&first, Stdin::Null).expect("a first job");
                assert_eq!(first.outcome, Outcome::Exited { code: 0 });
                live
            };
            let handle = live.cancel_handle();
            if let Some(early) = early {
                handle.signal(early);
            }
            let (mut seen, mut signalled) = (String::new(), false);
            let run = live
                .run_streaming(
                    &job,
                    Stdin::Null,
                    &mut |_: warden_core::Stream, chunk: &[u8]| {
                        seen.push_str(&String::from_utf8_lossy(chunk));
                        if let (true, Some(signal)) = (seen.contains("ready"), signal) {
                            if !std::mem::replace(&mut signalled, true) {
                                handle.signal(signal);
                            }
                        }
                        true
                    },
                )
                .expect("ran");
            live.destroy().expect("destroyed");
            run
        };
        let trapped = run(
            "trap 'echo caught INT; exit 7' INT; echo ready; while :; do sleep 0.05; done",
            Some(Signal::INT),
            None,
        );
        assert_eq!(
            trapped.outcome,
            Outcome::Exited { code: 7 },
            "one job: {one_job}: {}",
            out(&trapped)
        );
        assert_eq!(out(&trapped), "ready\ncaught INT\n", "one job: {one_job}");
        // To the program's process group, as a terminal's Ctrl-C: the command the shell
        // waits for ends by it (the shell alone would wait for it to end on its own).
        let waiting = run(
            "trap 'echo caught INT' INT; echo ready; sleep 15; echo after $?",
            Some(Signal::INT),
            None,
        );
        assert_eq!(
            out(&waiting),
            "ready\ncaught INT\nafter 130\n",
            "one job: {one_job}"
        );
        let early = run("sleep 5; echo never", None, Some(Signal::TERM));
        assert_eq!(
            early.outcome,
            Outcome::Signaled {
                signal: Signal::TERM
            },
            "one job: {one_job}: {}",
            out(&early)
        );
        // SIGALRM, which no init passes on.
        let unforwarded = run(
            "trap 'echo caught ALRM' ALRM; echo ready; sleep 5",
            Some(Signal(14)),
            None,
        );
        assert_eq!(
            unforwarded.outcome,
            Outcome::Signaled {
                signal: Signal::KILL
            },
            "one job: {one_job}: {}",
            out(&unforwarded)
        );
    }
}

/// `max_procs` holds the program's processes under gVisor as natively, whichever loader is
/// its parent (the container's init, or the job's process beside the keeper): the program
/// and two children at 3.
#[test]
fn max_procs_holds_the_programs_processes_in_either_kind_of_gvisor_sandbox() {
    use warden_sandbox::Backend;
    let forker = "import os, time\nn = 0\nfor _ in range(10):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(2)\n        os._exit(0)\n    n += 1\nprint(n)\n";
    let mut p = plan(&["/usr/bin/python3", "-c", forker]);
    p.limits.max_procs = 3;
    let (spec, job) = p.split();
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    for one_job in [true, false] {
        let mut live = if one_job {
            gvisor.start_single(&spec)
        } else {
            gvisor.start(&spec)
        }
        .expect("started");
        let run = live.run(&job, Stdin::Null).expect("ran");
        live.destroy().expect("destroyed");
        assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
        assert_eq!(out(&run), "2\n", "one job: {one_job}");
    }
}

/// A job beside the keeper gets its own rlimits, not the container's (which runsc gives what
/// it execs): the loader sets them. Here lower than the sandbox's, as a session's call or a
/// shared sandbox's run after its compile may ask.
#[test]
fn a_jobs_own_rlimits_hold_in_a_sandbox_of_several_jobs() {
    use warden_sandbox::Backend;
    let (spec, mut job) = plan(&[
        "/usr/bin/python3",
        "-c",
        "import resource as r\nprint(*(r.getrlimit(x) for x in (r.RLIMIT_NOFILE, \
         r.RLIMIT_FSIZE, r.RLIMIT_CPU, r.RLIMIT_STACK, r.RLIMIT_NPROC)))",
    ])
    .split();
    job.limits.max_open_files = 99;
    job.limits.max_file_size = ByteSize(12345);
    job.limits.cpu_time = std::time::Duration::from_secs(2);
    job.limits.stack_size = ByteSize::mib(3);
    job.limits.max_procs = 9;
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.start(&spec).expect("started");
    let run = live.run(&job, Stdin::Null).expect("ran");
    live.destroy().expect("destroyed");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
    // RLIMIT_CPU a second above twice the budget (the cgroup's count is the limit, and
    // gVisor's own count runs ahead of it on a busy host), RLIMIT_NPROC the program's 9 and
    // its loader.
    assert_eq!(
        out(&run),
        "(99, 99) (12345, 12345) (5, 6) (3145728, 3145728) (10, 10)\n"
    );
}

/// Bug hunt: in a gVisor sandbox of several jobs, a job's program a real-time signal ended
/// kept its loader waiting (nix's `waitpid` lost the status) until the wall limit. It is
/// signaled at once, and the sandbox takes the next job.
#[test]
fn a_job_a_real_time_signal_ends_is_signaled_in_a_sandbox_of_several_jobs() {
    use warden_sandbox::Backend;
    let (spec, mut job) = plan(&["/bin/sh", "-c", "echo before; kill -37 $$; echo after"]).split();
    job.limits.wall_time = std::time::Duration::from_secs(60);
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.start(&spec).expect("started");
    let run = live.run(&job, Stdin::Null).expect("ran");
    job.argv = vec!["/bin/echo".into(), "next".into()];
    let next = live.run(&job, Stdin::Null).expect("ran");
    live.destroy().expect("destroyed");
    assert_eq!(
        run.outcome,
        Outcome::Signaled {
            signal: warden_core::Signal(37)
        },
        "{}",
        out(&run)
    );
    assert_eq!(out(&run), "before\n");
    assert_eq!(out(&next), "next\n");
}

/// The caller of a gVisor sandbox stops (a terminal's Ctrl-Z: SIGTSTP among its sink's
/// signals) for two seconds once the program said `ready`: the program, sleeping half a second
/// then, stops with it (the loader stops every process of a one-job container, or the job's
/// process group in a sandbox of several jobs, where the signalled job is the second), so that
/// its own clock sees the two seconds go by; and the wall-clock limit of one second does not
/// count them.
#[test]
fn a_gvisor_sandboxs_program_stops_with_its_caller() {
    use warden_sandbox::Backend;
    struct StopsOnce(support::SignalPipe);
    impl warden_sandbox::OutputSink for StopsOnce {
        fn chunk(&mut self, _: warden_core::Stream, bytes: &[u8]) -> bool {
            if bytes.starts_with(b"ready") {
                self.0.ask();
            }
            true
        }
        fn signal_source(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
            Some(self.0.fd())
        }
        fn signals(&mut self) -> Vec<i32> {
            self.0.read(nix::libc::SIGTSTP)
        }
        fn suspend(&mut self, _signal: i32) {
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    }
    let (spec, mut job) = plan(&[
        "/usr/bin/python3",
        "-c",
        "import time\nprint('ready', flush=True)\nt = time.monotonic()\ntime.sleep(0.5)\n\
         print(int(time.monotonic() - t))\n",
    ])
    .split();
    job.limits.wall_time = std::time::Duration::from_secs(1);
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    for one_job in [true, false] {
        let mut live = if one_job {
            gvisor.start_single(&spec).expect("started")
        } else {
            let mut live = gvisor.start(&spec).expect("started");
            let (_, first) = plan(&["/bin/true"]).split();
            let first = live.run(&first, Stdin::Null).expect("a first job");
            assert_eq!(first.outcome, Outcome::Exited { code: 0 });
            live
        };
        let run = live
            .run_streaming(
                &job,
                Stdin::Null,
                &mut StopsOnce(support::SignalPipe::default()),
            )
            .expect("ran");
        live.destroy().expect("destroyed");
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "one job: {one_job}: {}",
            out(&run)
        );
        let slept: u32 = out(&run)
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("the time the program saw");
        assert!(
            slept >= 2,
            "one job: {one_job}: the program ran on while its caller was stopped: {slept} s"
        );
    }
}

/// A job of a sandbox that runs several (a session's call, a shared sandbox's test case, an
/// egress run's) ends with every process it started, as a native job does: the loader kills
/// what the program left in the background once it exited. Before, a busy loop left behind
/// kept the job's output open, so the job never ended and its limits no longer held.
#[test]
fn a_jobs_background_processes_end_with_it_in_a_sandbox_of_several_jobs() {
    use warden_sandbox::Backend;
    let started = std::time::Instant::now();
    let (spec, mut first) = plan(&[
        "/bin/sh",
        "-c",
        ": leftover-marker; (while :; do :; done) & sh -c 'sleep 300' >/dev/null 2>&1 </dev/null & echo started",
    ])
    .split();
    first.limits.wall_time = std::time::Duration::from_secs(5);
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.start(&spec).expect("started");
    let run = live.run(&first, Stdin::Null).expect("the first job ran");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
    assert_eq!(out(&run), "started\n");
    // Every process's command line but this job's own: the keeper (pid 1) and nothing of the
    // first job's.
    let (_, second) = plan(&[
        "/bin/sh",
        "-c",
        "for d in /proc/[0-9]*; do p=${d#/proc/}; [ $p = $$ ] || [ $p = $PPID ] || \
         { tr '\\0' ' ' < $d/cmdline; echo; }; done 2>/dev/null",
    ])
    .split();
    let listed = live.run(&second, Stdin::Null).expect("the second job ran");
    live.destroy().expect("destroyed");
    assert_eq!(
        listed.outcome,
        Outcome::Exited { code: 0 },
        "{}",
        out(&listed)
    );
    let text = out(&listed);
    assert!(!text.contains("leftover-marker"), "left running: {text}");
    assert!(!text.contains("sleep 300"), "left running: {text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the jobs took {:?}",
        started.elapsed()
    );
}

/// A job whose program kills its loader (SIGKILL cannot be refused) leaves a process holding
/// its output: warden's watch gives the output a short grace once the job's process ended,
/// then ends the job's processes as a limit does (another `runsc exec`), rather than waiting
/// for them with no limit; the sandbox takes the next job, where nothing of the first runs
/// (it was killed whole before). The program's status is its loader's death.
#[test]
fn output_held_open_after_a_jobs_end_does_not_hold_the_job() {
    use warden_sandbox::Backend;
    let started = std::time::Instant::now();
    let (spec, mut job) = plan(&[
        "/bin/sh",
        "-c",
        "(while :; do :; done) & echo started; kill -KILL $PPID; sleep 300",
    ])
    .split();
    job.limits.wall_time = std::time::Duration::from_secs(100);
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let mut live = gvisor.start(&spec).expect("started");
    let run = live.run(&job, Stdin::Null).expect("the job ran");
    assert_eq!(out(&run), "started\n");
    assert_eq!(
        run.outcome,
        Outcome::Signaled {
            signal: warden_core::Signal::KILL
        }
    );
    let (_, mut idle) = plan(&["/bin/sleep", "1"]).split();
    idle.limits.wall_time = std::time::Duration::from_secs(10);
    let next = live
        .run(&idle, Stdin::Null)
        .expect("the sandbox takes the next job");
    assert_eq!(next.outcome, Outcome::Exited { code: 0 });
    assert!(
        next.usage.cpu_time < std::time::Duration::from_millis(500),
        "the first job's loop ran on: {:?}",
        next.usage
    );
    live.destroy().expect("destroyed");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the job took {:?}",
        started.elapsed()
    );
}

/// The program cannot have its loader stop it or signal its group: the loader acts only on
/// signals from outside the sandbox (`runsc kill`), whether it is a one-job sandbox's init
/// (pid 1) or a job's parent beside the keeper. Before, SIGTSTP stopped the program until the
/// wall-clock limit, and SIGTERM was passed on to the program's group.
#[test]
fn a_gvisor_program_cannot_signal_through_its_loader() {
    use warden_sandbox::Backend;
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    for one_job in [true, false] {
        let (spec, mut job) = plan(&[
            "/bin/sh",
            "-c",
            "l=$PPID; kill -TSTP $l; kill -TERM $l; kill -INT $l; kill -USR1 $l; echo finished",
        ])
        .split();
        job.limits.wall_time = std::time::Duration::from_secs(10);
        let mut live = if one_job {
            gvisor.start_single(&spec)
        } else {
            gvisor.start(&spec)
        }
        .expect("started");
        let run = live.run(&job, Stdin::Null).expect("ran");
        live.destroy().expect("destroyed");
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "one job: {one_job}: {}",
            out(&run)
        );
        assert_eq!(out(&run), "finished\n", "one job: {one_job}");
    }
}

/// A program that exits with 128 + N under gVisor reads as killed by signal N (runsc's status
/// cannot tell them apart), but never as a limit or a forbidden call it did not meet: before,
/// `exit 153` was a file-size limit and `exit 159` a seccomp violation with its security event.
#[test]
fn an_exit_code_above_128_fakes_no_limit_or_violation_under_gvisor() {
    for (code, signal) in [(153, 25), (159, 31)] {
        let run = isolated(&format!("echo x; exit {code}"), Limits::default());
        assert_eq!(
            run.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal(signal)
            },
            "exit {code}"
        );
    }
}

/// The children of this process that have exited and wait to be reaped.
fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // The state and the parent's pid are the first fields after the command's `)`.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            fields.next() == Some("Z") && fields.next() == Some(me.as_str())
        })
        .collect()
}

/// Bug hunt (sessions): a job of a sandbox of several jobs cancelled while it runs (its
/// session removed under the call) left its `runsc exec` unreaped, a zombie under a server
/// until it exited: the watch ended when the sandbox did, before the process's pidfd polled
/// readable. The job's process is reaped before the job's end is returned, however it ended.
#[test]
fn a_cancelled_job_leaves_no_zombie_in_a_sandbox_of_several_jobs() {
    use warden_sandbox::Backend;
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    for round in 0..6 {
        let (spec, mut job) = plan(&[
            "/bin/sh",
            "-c",
            "for i in 1 2 3 4; do sleep 20 & done; echo ready; wait",
        ])
        .split();
        job.limits.wall_time = std::time::Duration::from_secs(30);
        let mut live = gvisor.start(&spec).expect("started");
        let handle = live.cancel_handle();
        let ran = live.run_streaming(
            &job,
            Stdin::Null,
            &mut |_: warden_core::Stream, chunk: &[u8]| {
                if String::from_utf8_lossy(chunk).contains("ready") {
                    // As far into the job as a client's DELETE comes: at once, or a moment on.
                    std::thread::sleep(std::time::Duration::from_millis(round * 20));
                    handle.cancel();
                }
                true
            },
        );
        assert!(ran.is_err(), "round {round}: cancelled: {ran:?}");
        let _ = live.destroy();
        assert_eq!(zombie_children(), Vec::<String>::new(), "round {round}");
    }
}

/// Hunt gv 2: in a one-job sandbox the job's process is `runsc run`, and a runsc that failed
/// before the container ran (its sentry's threads refused, a broken runsc) was reported as
/// the program's exit with runsc's stderr as the program's. It is the sandbox's failure, as it
/// is under the keeper (`runsc reports: ...`), and leaves nothing behind.
#[test]
fn a_runsc_that_fails_before_the_container_runs_is_a_sandbox_failure() {
    use std::os::unix::fs::PermissionsExt;
    use warden_sandbox::SandboxError;
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("runsc");
    std::fs::write(&fake, "#!/bin/sh\necho 'boot failed' >&2\nexit 2\n").expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let gvisor = sandbox()
        .gvisor()
        .expect("runsc is installed")
        .with_runsc(fake);
    let result = warden_sandbox::run_once(&gvisor, &plan(&["/bin/echo", "ran"]), Stdin::Null);
    match result {
        Err(SandboxError::Setup { detail, .. }) => {
            assert!(detail.contains("boot failed"), "{detail}");
        }
        other => panic!("a sandbox failure, not the program's run: {other:?}"),
    }
    assert_eq!(
        support::our_cgroups(),
        Vec::<String>::new(),
        "cgroups left behind"
    );
}

/// Hunt gv 2: a sentry that crashed under a one-job sandbox's job (its threads refused under
/// `RLIMIT_NPROC`) made `runsc run` exit with the sentry's status 2 after the container said
/// `running`, read as the program's exit. The Go runtime's crash report (`--panic-log`) says
/// it was the sandbox's failure. A stand-in runsc plays it: `running`, a report, exit 2.
#[test]
fn a_runtime_that_crashes_under_its_job_is_a_sandbox_failure() {
    use std::os::unix::fs::PermissionsExt;
    use warden_sandbox::SandboxError;
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("runsc");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
prev=
for a in "$@"; do
  case "$a" in --panic-log=*) panic="${a#--panic-log=}";; esac
  [ "$prev" = "--root" ] && root="$a"
  prev="$a"
  container="$a"
done
state="$root/${container}_sandbox:${container}.state"
echo "{\"id\":\"$container\",\"status\":\"running\"}" > "$state"
echo 'fatal error: newosproc' > "$panic"
sleep 0.2
rm -f "$state"
exit 2
"#,
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let gvisor = sandbox()
        .gvisor()
        .expect("runsc is installed")
        .with_runsc(fake);
    let result = warden_sandbox::run_once(&gvisor, &plan(&["/bin/echo", "ran"]), Stdin::Null);
    match result {
        Err(SandboxError::Setup { detail, .. }) => {
            assert!(detail.contains("newosproc"), "{detail}");
        }
        other => panic!("a sandbox failure, not the program's exit 2: {other:?}"),
    }
    assert_eq!(
        support::our_cgroups(),
        Vec::<String>::new(),
        "cgroups left behind"
    );
}

/// The host processes of this test's gVisor sandboxes whose command line starts with `name`
/// (`runsc-sandbox` is the sentry), found by their bundle in their arguments.
fn runsc_processes(name: &str) -> Vec<i32> {
    let bundle = format!("/run/warden/gvisor/warden-run-{}-", std::process::id());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.starts_with(name) && cmdline.contains(&bundle)).then_some(pid)
        })
        .collect()
}

/// Hunt sentry: a one-job sandbox's sentry killed from outside while its program ran (the
/// host's OOM killer, an operator) made `runsc run` exit 137, read as the program killed by
/// SIGKILL: its sentry ends with its job in any case, so it was never watched. It is the
/// sandbox's failure, as in a sandbox of several jobs. A program that kills itself, or its
/// loader (gVisor lets it SIGKILL its pid 1), with SIGKILL is still killed by SIGKILL.
#[test]
fn a_one_job_sandboxs_sentry_killed_under_its_job_is_a_sandbox_failure() {
    use std::time::{Duration, Instant};
    use warden_sandbox::SandboxError;
    let gvisor = sandbox().gvisor().expect("runsc is installed");
    let killer = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let [pid] = runsc_processes("runsc-sandbox")[..] {
                // The program runs by then: the sandbox boots in about 0.3 s.
                std::thread::sleep(Duration::from_secs(2));
                let pid = nix::unistd::Pid::from_raw(pid);
                return nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let result = warden_sandbox::run_once(
        &gvisor,
        &plan(&["/bin/sh", "-c", "echo started; sleep 30"]),
        Stdin::Null,
    );
    assert!(
        killer.join().expect("the killer ran"),
        "the sentry was found and killed"
    );
    match result {
        Err(SandboxError::Gone { why }) => assert!(why.contains("runtime ended"), "{why}"),
        other => panic!("a sandbox failure, not the program's: {other:?}"),
    }
    assert_eq!(
        support::our_cgroups(),
        Vec::<String>::new(),
        "cgroups left behind"
    );
    for script in ["echo x; kill -KILL $$", "echo x; kill -KILL 1; sleep 5"] {
        let run = isolated(script, Limits::default());
        assert_eq!(
            run.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal(9)
            },
            "{script}: {}",
            out(&run)
        );
    }
}
