//! Hostile programs get precise outcomes, cannot hurt the host, and leave nothing behind.
//! The limits and the workspace cap are tried under `sandboxed` and `isolated` alike
//! (`support::MODES`); what depends on the native backend's host uids is tried there only.
//! Privileged: runs as root, and runsc for `isolated` (CI has both). Uses the host's real /bin/sh, /bin/bash, coreutils and
//! /usr/bin/python3 by absolute path inside the sandbox.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use support::{
    our_cgroups, out, plan, prerequisite, processes_of, run_in, sandbox, sh, sh_in, Mode, MODES,
};
use warden_core::seccomp_policy::{DenyErrno, DenySeverity};
use warden_core::{ByteSize, Limits, Outcome, Stream, TimeLimitKind};
use warden_sandbox::{SandboxError, SandboxRun, Stdin, HOST_ID_BASE, SLOTS};

/// One sandbox at a time in this process: the checks for leftovers look at everything this
/// process's sandboxes could have left, so another test's run must not be in flight. (Under
/// `cargo nextest` each test is its own process and this lock is uncontended.)
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_argv(argv: &[&str], limits: Limits) -> SandboxRun {
    run_argv_in(Mode::Sandboxed, argv, limits)
}

fn run_argv_in(mode: Mode, argv: &[&str], limits: Limits) -> SandboxRun {
    let mut p = plan(argv);
    p.limits = limits;
    run_in(mode, &p, Stdin::Null)
}

/// The host uid a `cat /proc/self/uid_map` line (`0 <host> 1`) maps root to.
fn host_uid(uid_map_line: &str) -> u32 {
    let host = uid_map_line
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("not a uid_map line: {uid_map_line:?}"));
    assert!(
        (HOST_ID_BASE..HOST_ID_BASE + SLOTS).contains(&host),
        "{uid_map_line}"
    );
    host
}

/// The program signals the sandbox's init with what warden itself would send it (end the job,
/// stop it, a signal to pass on to the program's group): the init ignores them, so a program
/// can neither fake the end a limit brings nor freeze its own run.
#[test]
fn the_programs_signals_to_its_init_are_ignored() {
    let _one = exclusive();
    let limits = Limits {
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    let run = sh(
        "trap 'echo got TERM' TERM; for s in PWR TSTP TERM; do kill -$s 1; done; \
         sleep 0.3; echo survived",
        limits,
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{}", out(&run));
    assert_eq!(out(&run), "survived\n");
}

/// Bug hunt: the same signals queued with a siginfo of the program's making (pid 0 and uid 0,
/// what the init took for warden's) ended the job as a limit would (SIGPWR) or froze it
/// (SIGTSTP). The kernel admits such an info only with a negative `si_code`, which the init
/// now refuses.
#[test]
fn signals_queued_with_a_forged_sender_are_ignored_too() {
    let _one = exclusive();
    let code = [
        "import ctypes, time",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "for sig in (30, 20):  # SIGPWR, SIGTSTP",
        "    info = (ctypes.c_int * 32)()",
        "    info[0], info[2] = sig, -1  # si_signo, si_code SI_QUEUE; si_pid, si_uid 0",
        "    assert libc.syscall(129, 1, sig, info) == 0, ctypes.get_errno()",
        "time.sleep(0.3)",
        "print('survived')",
    ]
    .join("\n");
    assert_python_survives(&code);
}

/// Bug hunt: the kernel sends a signal chosen with F_SETSIG to the owner set with F_SETOWN
/// when an O_ASYNC descriptor becomes ready, with a positive `si_code` (POLL_IN) and no
/// sender pid or uid; the init took it for warden's, and the program ended its own job as a
/// limit would (SIGPWR, exit 137) or froze it (SIGTSTP) by naming the init its pipe's owner.
/// The init acts only on a plain kill (`SI_USER`) now, which is what warden sends.
#[test]
fn signals_the_kernel_sends_for_the_program_are_ignored_too() {
    let _one = exclusive();
    let code = [
        "import fcntl, os, time",
        "F_SETSIG = 10",
        "for sig in (30, 20):  # SIGPWR, SIGTSTP",
        "    r, w = os.pipe()",
        "    fcntl.fcntl(r, fcntl.F_SETOWN, 1)",
        "    fcntl.fcntl(r, F_SETSIG, sig)",
        "    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)",
        "    os.write(w, b'x')",
        "time.sleep(0.3)",
        "print('survived')",
    ]
    .join("\n");
    assert_python_survives(&code);
}

#[test]
fn a_fork_bomb_is_contained_and_the_host_can_still_fork() {
    for mode in MODES {
        fork_bomb_in(mode);
    }
}

fn fork_bomb_in(mode: Mode) {
    let _one = exclusive();
    let limits = Limits {
        max_procs: 32,
        wall_time: Duration::from_secs(3),
        ..Limits::default()
    };
    // The bomb's pipelines return at once, so the payload blocks in bash's builtin `read` on
    // a pipe this test keeps open (no fork needed) while the bomb multiplies in the background.
    // bash's "fork: retry" complaints go nowhere so they cannot hit the output limit first.
    let (stdin, keep_open) = nix::unistd::pipe().expect("pipe");
    let bomb = std::thread::spawn(move || {
        let mut p = plan(&[
            "/bin/bash",
            "-c",
            "exec 2>/dev/null; :(){ :|:& };:; read -r line",
        ]);
        p.limits = limits;
        run_in(mode, &p, Stdin::Pipe(stdin))
    });
    let mut host_forks = 0;
    while !bomb.is_finished() || host_forks == 0 {
        let status = Command::new("/bin/true")
            .status()
            .expect("the host can fork during the bomb");
        assert!(status.success());
        host_forks += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = bomb.join().expect("bomb thread");
    drop(keep_open);
    assert!(
        matches!(run.outcome, Outcome::TimeLimit { .. })
            || matches!(run.outcome, Outcome::Exited { code } if code != 0),
        "{mode:?}: {:?}",
        run.outcome
    );
    assert!(Command::new("/bin/true")
        .status()
        .expect("the host can fork after the bomb")
        .success());
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let _one = exclusive();
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let limit = ByteSize::mib(64);
    let limits = Limits {
        memory: limit,
        ..Limits::default()
    };
    let script = "a = []\nwhile True:\n    a.append(bytearray(16 << 20))\n";
    let run = run_argv(&["/usr/bin/python3", "-c", script], limits);
    assert_eq!(
        run.outcome,
        Outcome::MemoryLimit,
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.usage.peak_memory.bytes() <= limit.bytes() + ByteSize::mib(4).bytes(),
        "peak {} over the {limit} limit",
        run.usage.peak_memory
    );
}

/// Bug hunt: a program opened NETLINK_ROUTE sockets, asked each for thousands of link dumps
/// and never read the replies, which queued in kernel memory charged to no cgroup (130 MB of
/// the host's unreclaimable memory from 16 sockets under a 16 MiB limit). Netlink sockets are
/// refused now, and name resolution, which glibc's `AI_ADDRCONFIG` did over netlink, still
/// works (without the list of addresses glibc assumes both families; with it, it saw only the
/// loopback addresses, which it skips, and a lookup of one family failed).
#[test]
fn netlink_sockets_are_refused_and_name_resolution_still_works() {
    let _one = exclusive();
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let code = [
        "import errno, socket",
        "try:",
        "    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)",
        "    print('netlink opened')",
        "except OSError as e:",
        "    print('netlink', errno.errorcode[e.errno])",
        "for family in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):",
        "    try:",
        "        found = socket.getaddrinfo('localhost', 80, family, socket.SOCK_STREAM, 0,",
        "                                   socket.AI_ADDRCONFIG)",
        "        print(family, sorted({a[4][0] for a in found}))",
        "    except OSError as e:",
        "        print(family, e)",
    ]
    .join("\n");
    let limits = Limits {
        memory: ByteSize::mib(16),
        ..Limits::default()
    };
    for mode in MODES {
        let run = run_argv_in(mode, &["/usr/bin/python3", "-c", &code], limits);
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "{mode:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let text = out(&run);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "netlink EAFNOSUPPORT", "{mode:?}: {text}");
        assert_eq!(
            lines[1..],
            ["0 ['127.0.0.1']", "2 ['127.0.0.1']", "10 ['::1']"],
            "{mode:?}: {text}"
        );
    }
}

/// Bug hunt: two io_setup calls of 32768 events each took the host's whole fs.aio-max-nr
/// (65536, one count no cgroup divides), and io_setup failed with EAGAIN for the host and
/// every other run while the program lived. Linux AIO looks absent now (ENOSYS).
#[test]
fn linux_aio_cannot_take_the_hosts_aio_events() {
    let _one = exclusive();
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let code = [
        "import ctypes, errno",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "for _ in range(2):",
        "    context = ctypes.c_ulong(0)",
        &format!(
            "    result = libc.syscall({}, 32768, ctypes.byref(context))",
            libc::SYS_io_setup
        ),
        "    print(result, errno.errorcode.get(ctypes.get_errno(), 0))",
    ]
    .join("\n");
    for mode in MODES {
        let run = run_argv_in(mode, &["/usr/bin/python3", "-c", &code], Limits::default());
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "{mode:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(out(&run), "-1 ENOSYS\n-1 ENOSYS\n", "{mode:?}");
    }
}

/// Hunt escape F2: the socket filter looked at the family only. `AF_INET` with `SOCK_PACKET`
/// became an AF_PACKET socket in the kernel (refused only by its CAP_NET_RAW check, unrecorded),
/// MPTCP and UDP-Lite sockets were made, and SCTP would have loaded its module on a kernel that
/// has it. Inet sockets are narrowed to TCP, UDP and ICMP now: the rest fail with the rule's
/// EAFNOSUPPORT and are recorded, and loopback TCP and UDP still work. Hunt escape F1:
/// `memfd_secret`, which split the host kernel's direct map for good, looks absent (ENOSYS)
/// and is not recorded, since libraries probe it.
#[test]
fn inet_sockets_beyond_tcp_udp_and_icmp_and_secret_memory_are_refused() {
    let _one = exclusive();
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let code = [
        "import ctypes, errno, socket",
        "def attempt(name, family, kind, protocol):",
        "    try:",
        "        socket.socket(family, kind, protocol).close()",
        "        print(name, 'ok')",
        "    except OSError as e:",
        "        print(name, errno.errorcode[e.errno])",
        "inet, inet6, stream, dgram = socket.AF_INET, socket.AF_INET6, socket.SOCK_STREAM, socket.SOCK_DGRAM",
        // SOCK_PACKET (10) with ETH_P_ALL in network order; MPTCP 262, UDP-Lite 136, SCTP 132.
        "attempt('packet', inet, 10, 0x300)",
        "attempt('mptcp', inet, stream, 262)",
        "attempt('udplite', inet6, dgram | socket.SOCK_CLOEXEC, 136)",
        "attempt('sctp', inet, stream, 132)",
        // Ping sockets pass the filter; the namespace's ping_group_range may refuse them.
        "attempt('icmp', inet, dgram, socket.IPPROTO_ICMP)",
        "attempt('icmpv6', inet6, dgram, socket.IPPROTO_ICMPV6)",
        "server = socket.socket(inet, stream | socket.SOCK_CLOEXEC, socket.IPPROTO_TCP)",
        "server.bind(('127.0.0.1', 0)); server.listen()",
        "client = socket.create_connection(server.getsockname())",
        "peer, _ = server.accept(); client.sendall(b'tcp'); print(peer.recv(3).decode())",
        "udp = socket.socket(inet6, dgram | socket.SOCK_NONBLOCK, socket.IPPROTO_UDP)",
        "udp.bind(('::1', 0)); udp.sendto(b'udp', udp.getsockname())",
        "udp.setblocking(True); print(udp.recv(3).decode())",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "result = libc.syscall(447, 0)",
        "print('memfd_secret', result, errno.errorcode.get(ctypes.get_errno(), 0))",
    ]
    .join("\n");
    let run = run_argv(&["/usr/bin/python3", "-c", &code], Limits::default());
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = out(&run);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "packet EAFNOSUPPORT",
            "mptcp EAFNOSUPPORT",
            "udplite EAFNOSUPPORT",
            "sctp EAFNOSUPPORT"
        ],
        "{text}"
    );
    for (line, name) in lines[4..6].iter().zip(["icmp", "icmpv6"]) {
        assert!(
            [format!("{name} ok"), format!("{name} EACCES")].contains(&(*line).to_owned()),
            "{text}"
        );
    }
    assert_eq!(
        lines[6..],
        ["tcp", "udp", "memfd_secret -1 ENOSYS"],
        "{text}"
    );
    let denied: Vec<(&str, DenyErrno, DenySeverity, u64)> = run
        .denied_syscalls
        .iter()
        .map(|d| (d.name.as_str(), d.errno, d.severity, d.count))
        .collect();
    assert_eq!(
        denied,
        [("socket", DenyErrno::Eafnosupport, DenySeverity::Low, 4)],
        "the four refused sockets are recorded, nothing else"
    );
}

/// Hunt escape F3: `posix_fadvise(POSIX_FADV_DONTNEED)` dropped any host file the sandbox can
/// read from the host's page cache (every other run then read it from disk again). The advice
/// is ignored now: the call returns 0, as advice may, and the pages stay cached. Measured from
/// outside with fincore(1), which reads the cache's residency (mincore) as root.
#[test]
fn dropping_a_host_files_cached_pages_is_ignored() {
    let _one = exclusive();
    let fincore = Command::new("fincore")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3")
        || !prerequisite(fincore, "fincore (util-linux)")
    {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // On the host's disk (tmpfs has no page cache to drop), bound where the sandbox has
    // nothing of its own (its /work and /tmp are the workspace).
    let dir = Path::new("/var/tmp").join(format!("warden-fadvise-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("make the directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let file = dir.join("cached");
    let pages = 64usize;
    let contents: Vec<u8> = (0..pages * 4096).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &contents).expect("write the file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // Written back, so the advice could drop every page (dirty ones it skips).
    std::fs::File::open(&file)
        .and_then(|f| f.sync_all())
        .expect("sync");
    let cached = || {
        let output = Command::new("fincore")
            .args(["--noheadings", "--output", "PAGES"])
            .arg(&file)
            .output()
            .expect("fincore runs");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("fincore: {output:?}"))
    };
    assert_eq!(
        std::fs::read(&file).expect("read it into the cache"),
        contents
    );
    assert_eq!(cached(), pages, "read, the file is cached");
    let code = format!(
        "import os\nfd = os.open('{}', os.O_RDONLY)\n\
         print(os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))",
        file.display()
    );
    let mut p = plan(&["/usr/bin/python3", "-c", &code]);
    p.add_bind(&dir);
    let run = run_in(Mode::Sandboxed, &p, Stdin::Null);
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(out(&run), "None\n");
    assert!(run.denied_syscalls.is_empty(), "{:?}", run.denied_syscalls);
    let after = cached();
    // The measurement can see an eviction: the same advice from outside drops the pages.
    let f = std::fs::File::open(&file).expect("open");
    nix::fcntl::posix_fadvise(
        &f,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .expect("advise");
    let outside = cached();
    std::fs::remove_dir_all(&dir).expect("remove the directory");
    assert_eq!(after, pages, "the sandbox's advice dropped cached pages");
    assert_eq!(outside, 0, "the host's own advice drops them");
}

/// Bug hunt: on cgroup v1 the memory controller charges socket buffers only once
/// `memory.kmem.tcp.limit_in_bytes` is set, and warden set only the memory limits: a run
/// under a 64 MiB limit queued 753 MiB in loopback connections it never read (every buffer
/// raised, written until EAGAIN), its cgroup at a few MiB. The run's socket buffers, TCP and
/// UDP, are held to its memory limit now (on v2 they are charged with the rest of its memory).
#[test]
fn loopback_socket_buffers_count_against_the_memory_limit() {
    let _one = exclusive();
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return;
    }
    let limit = ByteSize::mib(32);
    let code = [
        "import socket, time",
        "size = 4 << 20",
        "listener = socket.socket()",
        "listener.bind(('127.0.0.1', 0))",
        "listener.listen(64)",
        "ends = []",
        "for _ in range(8):",
        "    client = socket.socket()",
        "    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)",
        "    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)",
        "    client.connect(listener.getsockname())",
        "    server = listener.accept()[0]",
        "    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)",
        "    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)",
        "    ends += [client, server]",
        "chunk = b'x' * 65536",
        "queued = 0",
        "for end in ends:",
        "    end.setblocking(False)",
        "    refused = 0",
        "    while refused < 3:",
        "        try:",
        "            queued += end.send(chunk)",
        "            refused = 0",
        "        except OSError:",
        "            refused += 1",
        "            time.sleep(0.01)",
        "print(queued)",
    ]
    .join("\n");
    let limits = Limits {
        memory: limit,
        wall_time: Duration::from_secs(30),
        ..Limits::default()
    };
    // Runs `code`, which prints how many bytes it queued in `what`: at most the limit, or the
    // run ended at it (`true`: nothing more to check).
    let ended_at_the_limit = |code: &str, what: &str| {
        let run = run_argv(&["/usr/bin/python3", "-c", code], limits);
        if run.outcome == Outcome::MemoryLimit {
            return true;
        }
        assert_eq!(
            run.outcome,
            Outcome::Exited { code: 0 },
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let queued: u64 = out(&run).trim().parse().expect("the bytes queued");
        assert!(
            queued <= limit.bytes(),
            "{} MiB queued in {what} under a {limit} limit",
            queued >> 20
        );
        false
    };
    if ended_at_the_limit(&code, "loopback connections") {
        return;
    }
    // UDP receive queues are charged to the same socket counter (the TCP limit's, on v1):
    // 16 sockets of 8 MiB each, sent to until their queues are full, never read.
    let code = [
        "import socket",
        "sockets = []",
        "for _ in range(16):",
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)",
        "    s.bind(('127.0.0.1', 0))",
        "    sockets.append(s)",
        "sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "sender.setblocking(False)",
        "for s in sockets:",
        "    for _ in range(300):",
        "        try:",
        "            sender.sendto(b'x' * 60000, s.getsockname())",
        "        except OSError:",
        "            pass",
        "queued = 0",
        "for line in open('/proc/net/udp').readlines()[1:]:",
        "    queued += int(line.split()[4].split(':')[1], 16)",
        "print(queued)",
    ]
    .join("\n");
    ended_at_the_limit(&code, "UDP sockets");
}

#[test]
fn a_cpu_spin_hits_the_cpu_limit() {
    let _one = exclusive();
    let limits = Limits {
        cpu_time: Duration::from_millis(500),
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    for mode in MODES {
        let run = sh_in(mode, "while :; do :; done", limits);
        assert_eq!(
            run.outcome,
            Outcome::TimeLimit {
                which: TimeLimitKind::Cpu
            },
            "{mode:?}"
        );
        assert!(
            run.usage.cpu_time >= limits.cpu_time,
            "{mode:?}: {:?}",
            run.usage
        );
    }
}

/// Issue 8: a program that raises SIGXCPU itself, far below its budget, cannot forge a time
/// limit verdict: the accounting decides.
#[test]
fn a_self_raised_sigxcpu_is_not_a_time_limit() {
    for mode in MODES {
        let run = sh_in(mode, "kill -XCPU $$; sleep 1", Limits::default());
        assert_eq!(
            run.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal::XCPU
            },
            "{mode:?}: {run:?}"
        );
    }
}

/// Bug hunt: a program a real-time signal (32 to 64) ended was reported as reaching its wall
/// limit, having waited for it: nix's `waitpid` has no status for such a signal, and answered
/// `EINVAL` once the kernel had reaped the program, so its end was never seen.
#[test]
fn a_program_a_real_time_signal_ends_is_signaled() {
    let limits = Limits {
        wall_time: Duration::from_secs(60),
        ..Limits::default()
    };
    for mode in MODES {
        let run = sh_in(mode, "echo before; kill -37 $$; echo after", limits);
        assert_eq!(
            run.outcome,
            Outcome::Signaled {
                signal: warden_core::Signal(37)
            },
            "{mode:?}: {run:?}"
        );
        assert_eq!(out(&run), "before\n", "{mode:?}");
    }
}

#[test]
fn a_sleeper_hits_the_wall_limit() {
    let _one = exclusive();
    let limits = Limits {
        wall_time: Duration::from_millis(500),
        ..Limits::default()
    };
    for mode in MODES {
        let run = run_argv_in(mode, &["/bin/sleep", "30"], limits);
        assert_eq!(
            run.outcome,
            Outcome::TimeLimit {
                which: TimeLimitKind::Wall
            },
            "{mode:?}"
        );
    }
}

#[test]
fn a_program_that_stops_itself_hits_the_wall_limit() {
    let _one = exclusive();
    let limits = Limits {
        wall_time: Duration::from_secs(1),
        ..Limits::default()
    };
    for mode in MODES {
        let run = sh_in(mode, "kill -STOP 0; sleep 30", limits);
        assert_eq!(
            run.outcome,
            Outcome::TimeLimit {
                which: TimeLimitKind::Wall
            },
            "{mode:?}"
        );
    }
}

#[test]
fn a_stdout_flood_is_cut_at_the_output_limit_and_warden_memory_stays_bounded() {
    let _one = exclusive();
    let limits = Limits {
        max_output: ByteSize::mib(1),
        ..Limits::default()
    };
    let run = run_argv(&["/usr/bin/yes"], limits);
    assert_eq!(
        run.outcome,
        Outcome::OutputLimit {
            stream: Stream::Stdout
        }
    );
    assert_eq!(run.stdout.len(), 1 << 20);
    assert!(run.stdout_truncated);
    assert!(
        run.stdout.chunks(2).all(|c| c == b"y\n"),
        "the kept bytes are the program's first bytes"
    );
    let max_rss_kib = getrusage(UsageWho::RUSAGE_SELF)
        .expect("getrusage")
        .max_rss();
    assert!(
        max_rss_kib < 200 * 1024,
        "the test process peaked at {max_rss_kib} KiB"
    );
}

#[test]
fn a_stderr_flood_is_cut_at_the_output_limit() {
    let _one = exclusive();
    let limits = Limits {
        max_output: ByteSize::mib(1),
        ..Limits::default()
    };
    for mode in MODES {
        let run = sh_in(mode, "yes >&2", limits);
        assert_eq!(
            run.outcome,
            Outcome::OutputLimit {
                stream: Stream::Stderr
            },
            "{mode:?}"
        );
        assert_eq!(run.stderr.len(), 1 << 20, "{mode:?}");
        assert!(run.stderr_truncated, "{mode:?}");
        assert!(run.stdout.is_empty() && !run.stdout_truncated, "{mode:?}");
    }
}

#[test]
fn filling_the_workspace_fails_with_enospc_at_the_workspace_size() {
    let _one = exclusive();
    let size = ByteSize::mib(8);
    let limits = Limits {
        workspace_size: size,
        max_file_size: ByteSize::mib(1024),
        ..Limits::default()
    };
    for mode in MODES {
        fill_the_workspace_in(mode, size, limits);
    }
}

fn fill_the_workspace_in(mode: Mode, size: ByteSize, limits: Limits) {
    // /work and /tmp share the one capped tmpfs: once /work is full, /tmp is too. (`wc -c`,
    // not `stat`: coreutils' statx fails under gVisor 2022.)
    let run = sh_in(
        mode,
        "dd if=/dev/zero of=/work/fill bs=1M count=100; rc=$?\n\
         wc -c < /work/fill\n\
         if echo x > /tmp/more; then echo tmp-writable; else echo tmp-full; fi\n\
         exit $rc",
        limits,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        matches!(run.outcome, Outcome::Exited { code } if code != 0),
        "{mode:?}: {:?} {stderr}",
        run.outcome
    );
    assert!(
        stderr.contains("No space left on device"),
        "{mode:?}: {stderr}"
    );
    let stdout = out(&run);
    let mut lines = stdout.lines();
    let written: u64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{mode:?}: {stdout}"));
    assert!(
        written > 0 && written <= size.bytes(),
        "{mode:?}: wrote {written} bytes into a {size} workspace"
    );
    assert_eq!(lines.next(), Some("tmp-full"), "{mode:?}");
}

#[test]
fn a_file_over_the_file_size_limit_is_a_file_size_limit() {
    let _one = exclusive();
    let limits = Limits {
        max_file_size: ByteSize::mib(1),
        ..Limits::default()
    };
    // dd is the payload itself: SIGXFSZ goes to the process that wrote.
    for mode in MODES {
        let run = run_argv_in(
            mode,
            &[
                "/bin/dd",
                "if=/dev/zero",
                "of=/work/fill",
                "bs=1M",
                "count=4",
            ],
            limits,
        );
        // Under gVisor runsc's status 153 cannot tell SIGXFSZ from a program's `exit(153)`,
        // which must fake no limit (`verdict::SignalCertainty`).
        let expected = if matches!(mode, Mode::Isolated) {
            Outcome::Signaled {
                signal: warden_core::Signal::XFSZ,
            }
        } else {
            Outcome::FileSizeLimit { ended: None }
        };
        assert_eq!(
            run.outcome,
            expected,
            "{mode:?}: stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

/// Regression hunt: a call past the file size limit that takes no memory (`truncate -s`,
/// `fallocate`, `dd seek=`, which the kernel refuses before allocating) died of SIGXFSZ and
/// was `signaled` 25, as only the memory peak vouched for the limit. The program cannot send
/// SIGXFSZ itself (the filter refuses it: `file_size_signal.rs`), so such a death is the limit.
#[test]
fn a_write_past_the_file_size_limit_that_takes_no_memory_is_a_file_size_limit() {
    let _one = exclusive();
    let limits = Limits {
        max_file_size: ByteSize::mib(1),
        ..Limits::default()
    };
    for argv in [
        &["/usr/bin/truncate", "-s", "100M", "/work/f"][..],
        &["/usr/bin/fallocate", "-l", "100M", "/work/f"],
        &[
            "/bin/dd",
            "if=/dev/zero",
            "of=/work/f",
            "bs=1",
            "count=1",
            "seek=100M",
        ],
    ] {
        let run = run_argv_in(Mode::Sandboxed, argv, limits);
        assert_eq!(
            run.outcome,
            Outcome::FileSizeLimit { ended: None },
            "{argv:?}: stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // A program that tries to fake it is refused and goes on.
    let run = sh_in(
        Mode::Sandboxed,
        "kill -XFSZ $$ || echo refused; exit 3",
        limits,
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 3 }, "{}", out(&run));
    assert_eq!(out(&run), "refused\n");
}

#[test]
fn a_double_forked_daemon_does_not_outlive_the_run() {
    let _one = exclusive();
    let run = sh(
        "cat /proc/self/uid_map; (setsid sh -c 'sleep 100' &); echo started",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 });
    let stdout = out(&run);
    assert!(stdout.ends_with("started\n"), "{stdout}");
    let uid = host_uid(stdout.lines().next().expect("uid map"));
    let left = processes_of(&BTreeSet::from([uid]));
    assert!(
        left.is_empty(),
        "processes of the sandbox's uid {uid} outlived the run: {left:#?}"
    );
}

#[test]
fn kill_minus_one_inside_cannot_reach_host_processes() {
    let _one = exclusive();
    let mut host = Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .expect("spawn a host process");
    for mode in MODES {
        let run = sh_in(mode, "kill -9 -1; echo alive", Limits::default());
        assert!(
            host.try_wait().expect("try_wait").is_none(),
            "{mode:?}: kill -9 -1 in the sandbox killed a host process"
        );
        assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{mode:?}");
        assert_eq!(out(&run), "alive\n", "{mode:?}");
    }
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn a_missing_program_is_a_setup_error_naming_execve() {
    let _one = exclusive();
    let err = sandbox()
        .run(&plan(&["/nonexistent/program"]), Stdin::Null)
        .expect_err("there is no program to run");
    match err {
        SandboxError::Setup { step, detail } => {
            assert!(step.contains("execve"), "{step}: {detail}");
            assert!(step.contains("/nonexistent/program"), "{step}: {detail}");
            assert!(detail.contains("ENOENT"), "{step}: {detail}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}

/// What a run could leave on the host, as seen from the test process.
#[derive(Debug, PartialEq, Eq)]
struct HostTraces {
    mounts: usize,
    tmp_entries: BTreeSet<String>,
}

fn host_traces() -> HostTraces {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let tmp_entries = std::fs::read_dir("/tmp")
        .expect("/tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // warden's own names, and what the sandbox builds under its root should that root not
        // be a fresh tmpfs over /tmp.
        .filter(|n| {
            n.starts_with("warden")
                || [
                    ".oldroot", ".scratch", "work", "tmp", "usr", "dev", "etc", "proc",
                ]
                .contains(&n.as_str())
        })
        .collect();
    HostTraces {
        mounts: mountinfo.lines().count(),
        tmp_entries,
    }
}

/// `<cgroup mount>/warden/run-<this process>-*` directories, on v1 and v2.

#[test]
fn a_batch_of_runs_leaves_nothing_behind() {
    let _one = exclusive();
    let before = host_traces();
    let short = Limits {
        wall_time: Duration::from_millis(300),
        ..Limits::default()
    };
    let runs = [
        sh(
            "cat /proc/self/uid_map; echo hi > /work/f; echo ok",
            Limits::default(),
        ),
        sh(
            "cat /proc/self/uid_map; (setsid sh -c 'sleep 100' &); sleep 30",
            short,
        ),
        sh("cat /proc/self/uid_map; yes", Limits::default()),
        sh(
            "cat /proc/self/uid_map; sleep 30 & sleep 30 & exit 4",
            Limits::default(),
        ),
    ];
    let failed = sandbox().run(&plan(&["/nonexistent/program"]), Stdin::Null);
    assert!(
        matches!(failed, Err(SandboxError::Setup { .. })),
        "{failed:?}"
    );
    let uids: BTreeSet<u32> = runs
        .iter()
        .map(|run| host_uid(out(run).lines().next().expect("uid map")))
        .collect();
    let left = processes_of(&uids);
    assert!(
        left.is_empty(),
        "processes of the sandboxes' uids outlived their runs: {left:#?}"
    );
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
    assert_eq!(host_traces(), before, "mounts or /tmp entries left behind");
}

/// Runs the python `code` in a sandbox and asserts that its job ended as the program did:
/// exit 0, having printed `survived` (nothing of it made the init end or freeze the job).
fn assert_python_survives(code: &str) {
    let mut p = plan(&["/usr/bin/python3", "-c", code]);
    p.limits = Limits {
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    let run = sandbox().run(&p, Stdin::Null).expect("warden ran it");
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{} {}",
        out(&run),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(out(&run), "survived\n");
}
