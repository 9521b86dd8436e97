//! The trusted backend: limits only, no namespaces, as the run's unprivileged uid, and nothing
//! left behind. Privileged: runs as root.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{out, plan, processes_of, sandbox};
use warden_core::{ByteSize, Limits, Outcome, TimeLimitKind};
use warden_sandbox::{SandboxRun, Stdin, WorkspaceFile, HOST_ID_BASE, SLOTS};

fn trusted(argv: &[&str], limits: Limits) -> SandboxRun {
    let mut p = plan(argv);
    p.limits = limits;
    sandbox()
        .run_trusted(&p, Stdin::Null)
        .expect("warden ran the program")
}

fn trusted_sh(script: &str, limits: Limits) -> SandboxRun {
    trusted(&["/bin/sh", "-c", script], limits)
}

/// The value after `key` in /proc/self/status-like text.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
}

#[test]
fn it_runs_on_the_host_as_an_unprivileged_user_with_no_privileges() {
    let run = trusted_sh(
        "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo pwd=$(pwd); \
         echo pidns=$(readlink /proc/self/ns/pid); echo netns=$(readlink /proc/self/ns/net); \
         grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let uid: u32 = field(&text, "uid=")
        .split(' ')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("a uid");
    assert!(
        (HOST_ID_BASE..HOST_ID_BASE + SLOTS).contains(&uid),
        "{text}"
    );
    assert!(text.contains(&format!("gid={uid} groups={uid}")), "{text}");
    assert!(
        field(&text, "pwd=").starts_with("/run/warden/trusted/run-"),
        "{text}"
    );
    let host_ns = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .expect("readlink")
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(field(&text, "pidns="), host_ns("pid"), "no pid namespace");
    assert_eq!(
        field(&text, "netns="),
        host_ns("net"),
        "no network namespace"
    );
    assert_eq!(field(&text, "CapEff:"), "0000000000000000", "{text}");
    assert_eq!(field(&text, "CapPrm:"), "0000000000000000", "{text}");
    assert_eq!(field(&text, "NoNewPrivs:"), "1", "{text}");
    // Limits only, but for the filter that keeps the uid's keyrings usable (below).
    assert_eq!(field(&text, "Seccomp:"), "2", "{text}");
}

#[test]
fn workspace_files_and_sandbox_paths_are_moved_to_the_run_directory() {
    let mut p = plan(&["/bin/sh", "/work/main.sh", "/work/data.txt"]);
    p.files = vec![
        WorkspaceFile::new(
            "main.sh",
            "cat \"$1\"; echo \"$HOME $TMPDIR\"; touch \"$TMPDIR/x\"",
        ),
        WorkspaceFile::new("data.txt", "data\n"),
    ];
    let run = sandbox().run_trusted(&p, Stdin::Null).expect("ran");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let (data, dirs) = text.split_once('\n').expect("two lines");
    assert_eq!(data, "data");
    let (home, tmp) = dirs.trim().split_once(' ').expect("HOME and TMPDIR");
    assert!(home.starts_with("/run/warden/trusted/run-") && home.ends_with("/work"));
    assert_eq!(tmp, home.replace("/work", "/tmp"));
    assert!(
        !std::path::Path::new(home).exists(),
        "the run directory is removed"
    );
}

/// Regression hunt: with a trusted run's directory a tmpfs of the workspace size, files too
/// large for it were refused halfway, by a full disk ("cannot be written in the workspace"),
/// where the sandbox refuses them before a byte is written, naming the limit.
#[test]
fn files_that_do_not_fit_a_trusted_workspace_are_refused_before_the_program_runs() {
    let mut p = plan(&["/bin/sh", "-c", "echo ran"]);
    p.limits = Limits {
        workspace_size: ByteSize::mib(8),
        max_file_size: ByteSize::mib(64),
        ..Limits::default()
    };
    p.files = vec![WorkspaceFile::new("big", vec![1u8; 10 << 20])];
    let refused = sandbox().run_trusted(&p, Stdin::Null);
    assert!(
        matches!(
            refused,
            Err(warden_sandbox::SandboxError::WorkspaceMisfit {
                limit: "workspace_size",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn limits_hold_without_namespaces() {
    let memory = Limits {
        memory: ByteSize::mib(64),
        ..Limits::default()
    };
    let run = trusted(
        &[
            "/usr/bin/python3",
            "-c",
            "b = bytearray(512 << 20); print(len(b))",
        ],
        memory,
    );
    assert_eq!(run.outcome, Outcome::MemoryLimit, "{run:?}");
    let wall = Limits {
        wall_time: Duration::from_millis(300),
        ..Limits::default()
    };
    let run = trusted(&["/bin/sleep", "10"], wall);
    assert_eq!(
        run.outcome,
        Outcome::TimeLimit {
            which: TimeLimitKind::Wall
        }
    );
    let procs = Limits {
        max_procs: 8,
        ..Limits::default()
    };
    // Forty forks; the payload counts those that succeed: max_procs counts the program's
    // processes (itself and its children), not warden's init beside them in the cgroup.
    let forks = "import os, time\n\
                 n = 0\n\
                 for _ in range(40):\n\
                 \x20   try:\n\
                 \x20       pid = os.fork()\n\
                 \x20   except OSError:\n\
                 \x20       break\n\
                 \x20   if pid == 0:\n\
                 \x20       time.sleep(5)\n\
                 \x20       os._exit(0)\n\
                 \x20   n += 1\n\
                 print(n)\n";
    let run = trusted(&["/usr/bin/python3", "-c", forks], procs);
    let forked: u32 = out(&run)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{run:?}"));
    assert_eq!(forked, 7, "forks with max_procs 8");
}

/// Hunt esc F3: real-time priority, nice and locked memory were inherited from whoever
/// started warden; on the host itself a trusted program with RLIMIT_RTPRIO could run
/// SCHED_FIFO threads ahead of everything. They are the plan's, as in the sandbox.
#[test]
fn priorities_and_locked_memory_are_bounded_on_the_host_too() {
    let run = trusted_sh(
        "grep -E '^Max (realtime priority|nice priority|locked memory)' /proc/self/limits",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let limits: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().skip(2).collect())
        .collect();
    assert_eq!(
        limits,
        [
            vec!["memory", "8388608", "8388608", "bytes"],
            vec!["priority", "0", "0"],
            vec!["priority", "0", "0"],
        ],
        "{text}"
    );
}

#[test]
fn nothing_outlives_a_trusted_run() {
    let run = trusted_sh(
        "id -u; pwd; (setsid sh -c 'sleep 100.4242' &); sleep 100.4242 & echo started",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let uid: u32 = text
        .lines()
        .next()
        .and_then(|l| l.parse().ok())
        .expect("uid");
    // The uid slot is free once the run ends, and another test of this process (`cargo test`
    // runs them on threads) may already run as it: only this run's own sleeps count.
    let left: Vec<_> = processes_of(&BTreeSet::from([uid]))
        .into_iter()
        .filter(|p| p.contains("100.4242"))
        .collect();
    assert!(
        left.is_empty(),
        "processes of uid {uid} outlived the run: {left:#?}"
    );
    let dir = text.lines().nth(1).expect("the run's directory");
    assert!(dir.starts_with("/run/warden/trusted/run-"), "{text}");
    assert!(
        !std::path::Path::new(dir).exists(),
        "the run's directory {dir} was left behind"
    );
}

/// Hunt lim 1: the run's directory was a plain directory under `/run/warden/trusted`, and on
/// a host whose `/run` is on disk the run wrote there without bound: `--workspace-size` held
/// nowhere, and its files counted towards no limit. It is a tmpfs of the workspace size now,
/// as the native sandbox's `/work` and `/tmp` are, and goes (unmounted) with the run.
#[test]
fn a_trusted_runs_workspace_is_bounded_by_the_workspace_size() {
    let run = trusted_sh(
        "pwd; head -c 33554432 /dev/zero > big; echo \"wrote $?\"; \
         head -c 8388608 /dev/zero > \"$TMPDIR/small\" && echo tmp; exit 0",
        Limits {
            workspace_size: ByteSize::mib(16),
            max_file_size: ByteSize::mib(64),
            memory: ByteSize::mib(256),
            ..Limits::default()
        },
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let mut lines = text.lines();
    let dir = lines
        .next()
        .expect("the run's directory")
        .trim_end_matches("/work");
    assert_eq!(
        lines.next(),
        Some("wrote 1"),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("No space left"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The workspace and the run's `/tmp` share the bound, as in the sandbox.
    assert_ne!(lines.next(), Some("tmp"), "{text}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&format!(" {dir} ")),
        "the run's tmpfs {dir} outlived it"
    );
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}

/// The run's uid is a slot the next trusted run may get: what this run left in the host's
/// world-writable directories is removed at its end, or the next run of that uid could read
/// and change it. A link the run left is removed itself, never followed.
#[test]
fn a_trusted_runs_files_in_shared_host_directories_are_removed_at_its_end() {
    let tag = format!("warden-leftover-{}", std::process::id());
    let target = tempfile::NamedTempFile::new().expect("a file of root's");
    let script = format!(
        "echo secret > /tmp/{tag} && echo secret > /dev/shm/{tag} && \
         mkdir -p /var/tmp/{tag}/deep/er && echo secret > /var/tmp/{tag}/deep/er/file && \
         ln -s {target} /tmp/{tag}.link && ln -s {target} /var/tmp/{tag}/deep/link && \
         ls -l /tmp/{tag} /dev/shm/{tag} /var/tmp/{tag}/deep/er/file",
        target = target.path().display(),
    );
    let run = trusted_sh(&script, Limits::default());
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let left: Vec<String> = [
        format!("/tmp/{tag}"),
        format!("/tmp/{tag}.link"),
        format!("/dev/shm/{tag}"),
        format!("/var/tmp/{tag}"),
    ]
    .into_iter()
    .filter(|path| std::fs::symlink_metadata(path).is_ok())
    .collect();
    // Removed here too, so that a failing test leaves nothing behind.
    for path in &left {
        let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
    }
    assert!(
        left.is_empty(),
        "outlived the trusted run: {left:?}; {}",
        out(&run)
    );
    assert!(target.path().exists(), "a link was followed");
}

/// The System V IPC objects a trusted run's uid made in the host's IPC namespace (a message
/// queue, a semaphore set, a shared memory segment, which is RAM no cgroup holds once the run
/// ended) are removed at its end: the next run given the uid would find them.
#[test]
fn a_trusted_runs_system_v_ipc_objects_are_removed_at_its_end() {
    let run = trusted_sh(
        "id -u; ipcmk -Q >/dev/null && ipcmk -S 1 >/dev/null && ipcmk -M 4096 >/dev/null && echo made",
        Limits::default(),
    );
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    assert!(text.ends_with("made\n"), "{text}");
    let uid = text.lines().next().expect("uid").to_owned();
    // The owner's uid column of each listing.
    let left: Vec<String> = [("msg", 7), ("sem", 4), ("shm", 7)]
        .into_iter()
        .flat_map(|(kind, column)| {
            let listing =
                std::fs::read_to_string(format!("/proc/sysvipc/{kind}")).unwrap_or_default();
            listing
                .lines()
                .skip(1)
                .filter(|l| l.split_whitespace().nth(column) == Some(uid.as_str()))
                .map(|l| format!("{kind}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(left.is_empty(), "outlived the trusted run: {left:#?}");
}

/// Bug hunt: the world-writable directories beyond /tmp, /var/tmp, /dev/shm and /dev/mqueue
/// (Debian's /run/lock and /var/lib/php/sessions) kept what a trusted run left there, for the
/// next run given the uid to read. Every world-writable directory under /run, /var and /dev is
/// searched, one made after the first run included.
#[test]
fn a_trusted_runs_files_in_other_world_writable_directories_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let shared = std::path::PathBuf::from(format!(
        "/var/lib/warden-test-shared-{}",
        std::process::id()
    ));
    std::fs::create_dir(&shared).expect("a directory of root's");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777))
        .expect("world-writable");
    let run = trusted_sh(
        &format!(
            "echo secret > {0}/left && mkdir {0}/dir && echo made",
            shared.display()
        ),
        Limits::default(),
    );
    let left: Vec<String> = std::fs::read_dir(&shared)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&shared);
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    assert_eq!(out(&run), "made\n");
    assert!(left.is_empty(), "outlived the trusted run: {left:?}");
}

/// Bug hunt: a trusted run's POSIX message queue (no /dev/mqueue was mounted on the host to
/// clean it) and the keys in its uid's keyrings outlived it, for the next run given the uid to
/// read. The run has an IPC namespace of its own now, and its keyrings are emptied.
#[test]
fn a_trusted_runs_message_queues_and_keys_do_not_outlive_it() {
    let code = [
        "import ctypes, os",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "rt = ctypes.CDLL('librt.so.1', use_errno=True)",
        "q = rt.mq_open(b'/warden-test-leak', os.O_CREAT | os.O_RDWR, 0o600, None)",
        "assert q >= 0, ctypes.get_errno()",
        "assert rt.mq_send(q, b'secret', 6, 0) == 0, ctypes.get_errno()",
        "key = libc.syscall(248, b'user', b'warden-test-key', b'secret', 6, -4)  # add_key",
        "assert key > 0, ctypes.get_errno()",
        "print(os.getuid(), os.readlink('/proc/self/ns/ipc'))",
    ]
    .join("\n");
    let run = trusted(&["/usr/bin/python3", "-c", &code], Limits::default());
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let (uid, ipc) = text.trim().split_once(' ').expect("uid and namespace");
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").expect("our IPC namespace");
    assert_ne!(
        ipc,
        host_ipc.to_string_lossy(),
        "the run shared the host's IPC namespace"
    );
    // As the run's uid, on the host: its user keyring holds nothing of the run.
    let search = [
        "import ctypes, os, sys",
        "uid = int(sys.argv[1])",
        "os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "found = libc.syscall(250, 10, -4, b'user', b'warden-test-key', 0)  # KEYCTL_SEARCH",
        "print('found' if found > 0 else 'none')",
    ]
    .join("\n");
    let looked = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &search, uid])
        .output()
        .expect("python runs");
    assert_eq!(
        String::from_utf8_lossy(&looked.stdout),
        "none\n",
        "{looked:?}"
    );
}

/// Hunt xrun 1: a trusted run kept the session keyring it inherited from warden, through the
/// change of ids: under a warden with a session keyring of its own (a systemd service's, a
/// login's), every trusted run held it, read warden's keys and left keys there that the next
/// trusted run read, whatever its uid. Each run joins a session keyring of its own.
#[test]
fn a_trusted_run_holds_neither_wardens_session_keyring_nor_another_runs() {
    // This test process (nextest runs each test in its own) gets a session keyring of its own,
    // as a service's warden has, and a child of it (sharing it) puts a key in it.
    warden_sys::keys::join_new_session_keyring().expect("a session keyring");
    let add = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
               assert libc.syscall(248, b'user', b'operator-secret', b'root-only', 9, -3) > 0";
    let added = std::process::Command::new("/usr/bin/python3")
        .args(["-c", add])
        .output()
        .expect("python runs");
    assert!(added.status.success(), "{added:?}");
    let code = [
        "import ctypes",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "found = libc.syscall(250, 10, -3, b'user', b'operator-secret', 0)  # KEYCTL_SEARCH @s",
        "left = libc.syscall(248, b'user', b'left-by-a', b'x', 1, -3)  # add_key to @s",
        "print('found' if found > 0 else 'none', 'added' if left > 0 else 'refused')",
    ]
    .join("\n");
    let first = trusted(&["/usr/bin/python3", "-c", &code], Limits::default());
    assert_eq!(first.outcome, Outcome::Exited { code: 0 }, "{first:?}");
    assert_eq!(out(&first), "none added\n", "{first:?}");
    let probe = [
        "import ctypes",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "found = libc.syscall(250, 10, -3, b'user', b'left-by-a', 0)  # KEYCTL_SEARCH @s",
        "print('found' if found > 0 else 'none')",
    ]
    .join("\n");
    let second = trusted(&["/usr/bin/python3", "-c", &probe], Limits::default());
    assert_eq!(second.outcome, Outcome::Exited { code: 0 }, "{second:?}");
    assert_eq!(out(&second), "none\n", "{second:?}");
}

/// Hunt esc F2: a trusted program could `keyctl(KEYCTL_SETPERM, KEY_SPEC_USER_KEYRING, 0)`,
/// after which no one, root included, could empty its uid's user keyring again, and every
/// later trusted run given the slot failed at its setup until reboot (revoking it or setting
/// it a timeout did so for minutes). The operations that can lock a keyring are refused, under
/// the native ABI and the i386 one, on any key; the others work. `tests/keyrings/keyrings.c`
/// tries them on keys of its own first, and on its user keyring only once those were refused,
/// so that a build without the filter fails here without locking a real slot.
#[test]
fn a_trusted_program_cannot_lock_its_uids_keyrings() {
    const SOURCE: &str = include_str!("keyrings/keyrings.c");
    let Some(program) = support::compile_c("keyrings/keyrings.c", SOURCE) else {
        return;
    };
    let mut p = plan(&["/work/keyrings"]);
    p.limits = Limits::default();
    p.files.push(WorkspaceFile::executable("keyrings", program));
    let run = sandbox()
        .run_trusted(&p, Stdin::Null)
        .expect("warden ran the program");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    let text = out(&run);
    let mut expected = vec![
        "native setperm EPERM",
        "native revoke EPERM",
        "native set_timeout EPERM",
        "native restrict_keyring EPERM",
        "native get_keyring_id ok",
    ];
    if cfg!(target_arch = "x86_64") && !text.contains("i386 unavailable") {
        expected.extend([
            "i386 setperm EPERM",
            "i386 revoke EPERM",
            "i386 set_timeout EPERM",
            "i386 get_keyring_id ok",
        ]);
    }
    expected.push("native setperm @u EPERM");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("i386 unav"))
        .collect();
    assert_eq!(lines, expected, "{text}");
}

/// Bug hunt: a signal the kernel sends the owner of an O_ASYNC descriptor (F_SETOWN, the
/// signal chosen with F_SETSIG) carries no sender uid, which the trusted init took for root's
/// (warden's): the program ended its own job as a limit would, or froze it. The init acts only
/// on a plain kill (`SI_USER`) from root now.
#[test]
fn signals_the_kernel_sends_the_init_for_the_program_are_ignored() {
    let code = [
        "import fcntl, os, time",
        "F_SETSIG = 10",
        "for sig in (30, 20):  # SIGPWR, SIGTSTP",
        "    r, w = os.pipe()",
        "    fcntl.fcntl(r, fcntl.F_SETOWN, os.getppid())  # the init",
        "    fcntl.fcntl(r, F_SETSIG, sig)",
        "    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)",
        "    os.write(w, b'x')",
        "time.sleep(0.3)",
        "print('survived')",
    ]
    .join("\n");
    let limits = Limits {
        wall_time: Duration::from_secs(10),
        ..Limits::default()
    };
    let run = trusted(&["/usr/bin/python3", "-c", &code], limits);
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{} {}",
        out(&run),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(out(&run), "survived\n");
}

/// Bug hunt: at most 100,000 entries of each shared directory were looked at, so a run that
/// made 100,010 files in /dev/shm left the first one (64 MiB of RAM, its uid's), which the
/// next trusted run given the same slot read. However many the run made, they all go.
#[test]
fn every_file_a_trusted_run_made_goes_however_many() {
    let tag = format!("warden-many-{}", std::process::id());
    let code = format!(
        "import os\n\
         with open('/dev/shm/{tag}-first', 'w') as f:\n\
         \x20   f.write('secret')\n\
         for i in range(110_000):\n\
         \x20   os.close(os.open('/dev/shm/{tag}-%d' % i, os.O_CREAT | os.O_WRONLY, 0o600))\n\
         print(os.getuid())\n"
    );
    let limits = Limits {
        memory: ByteSize::mib(512),
        wall_time: Duration::from_secs(60),
        cpu_time: Duration::from_secs(30),
        ..Limits::default()
    };
    let run = trusted(&["/usr/bin/python3", "-c", &code], limits);
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&tag))
        .collect();
    // Removed here too, so that a failing test leaves nothing behind.
    for name in &left {
        let _ = std::fs::remove_file(std::path::Path::new("/dev/shm").join(name));
    }
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut first = left.iter().filter(|name| name.ends_with("-first"));
    assert!(
        left.is_empty(),
        "{} of the run's files outlived it{}",
        left.len(),
        if first.next().is_some() {
            ", the first among them"
        } else {
            ""
        }
    );
}

/// Bug hunt esc F1: the sweep removed a directory the run left with std's `remove_dir_all`,
/// which holds a descriptor per level: a chain of directories deeper than warden's soft
/// `RLIMIT_NOFILE` made the run end as warden's error (`EMFILE`, exit 125, its result lost)
/// and stayed for the next run given the slot. Here warden's limit is 256 (nextest runs each
/// test in a process of its own) and the chain 1,000 levels deep: the run's result stands and
/// the chain goes.
#[test]
fn a_tree_deeper_than_wardens_descriptor_limit_goes_and_the_result_stands() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let tag = format!("warden-deep-{}", std::process::id());
    let code = format!(
        "import os\n\
         os.chdir('/dev/shm')\n\
         os.mkdir('{tag}')\n\
         os.chdir('{tag}')\n\
         for _ in range(1000):\n\
         \x20   os.mkdir('d')\n\
         \x20   os.chdir('d')\n\
         print('made')\n"
    );
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, 256, hard).expect("lower the limit");
    let mut p = plan(&["/usr/bin/python3", "-c", &code]);
    p.limits = Limits::default();
    let run = sandbox().run_trusted(&p, Stdin::Null);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore the limit");
    let left = std::path::Path::new("/dev/shm").join(&tag);
    let stayed = left.exists();
    // Removed here too, so that a failing test leaves nothing behind.
    let _ = std::process::Command::new("rm")
        .arg("-rf")
        .arg(&left)
        .status();
    let run = run.expect("warden ran the program and removed what it left");
    assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
    assert_eq!(out(&run), "made\n");
    assert!(!stayed, "the chain outlived the run");
}

/// Hunt modes 1: in `trusted` the program can signal its init; killing it ended the run as the
/// sandbox's error only when nothing else held the output: a process left holding stdout kept
/// the job waiting for its wall time, recorded as the program's own time limit. What is left
/// goes once the init is gone, and the run is the sandbox's error (docs/modes.md).
///
/// What the killed init left (`sleep`, and the `sh` whose child it was) is reaped by the
/// run's helper before the run ends: this test process is made a subreaper, as the host's pid 1
/// is, so that an orphan the helper did not take stays here as a zombie, and is seen.
#[test]
fn killing_the_init_ends_the_run_even_when_a_process_holds_the_output() {
    nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    let mut p = plan(&[
        "/bin/sh",
        "-c",
        "(setsid sleep 250.4243 &); kill -9 $PPID; echo after",
    ]);
    p.limits = Limits {
        wall_time: Duration::from_secs(30),
        ..Limits::default()
    };
    let run = sandbox().run_trusted(&p, Stdin::Null);
    assert!(run.is_err(), "{run:?}");
    let slots: BTreeSet<u32> = (HOST_ID_BASE..HOST_ID_BASE + SLOTS).collect();
    let left: Vec<_> = processes_of(&slots)
        .into_iter()
        .filter(|p| p.contains("250.4243"))
        .collect();
    assert!(left.is_empty(), "outlived the run: {left:#?}");
    let zombies = zombie_children();
    for pid in &zombies {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*pid), None);
    }
    assert!(
        zombies.is_empty(),
        "left for the host's pid 1 to reap: {zombies:?}"
    );
}

/// This process's children that have exited and were not reaped.
fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let entries = std::fs::read_dir("/proc").expect("/proc");
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
            };
            (field("PPid:")? == me && field("State:")?.starts_with('Z')).then_some(pid)
        })
        .collect()
}

/// A trusted run's directory (a tmpfs) is made before its helper starts, and removed by a
/// cleanup the started sandbox runs at its end: a start that failed in between (a pipe or the
/// control channel refused for want of descriptors, the helper not forked) dropped that cleanup
/// unrun, and the directory and its mount stayed. Here the start is tried at every descriptor
/// limit from what this process holds up to one where the run succeeds: whatever step fails,
/// nothing of the run stays.
#[test]
fn a_start_that_fails_for_want_of_descriptors_leaves_nothing() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let ours = format!("run-{}-", std::process::id());
    let left = || -> Vec<String> {
        let dirs = std::fs::read_dir("/run/warden/trusted")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&ours));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let mounts = mounts
            .lines()
            .filter(|line| line.contains(&ours))
            .map(str::to_owned);
        dirs.chain(mounts).chain(support::our_cgroups()).collect()
    };
    let p = plan(&["/bin/true"]);
    let box_ = sandbox();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let open = std::fs::read_dir("/proc/self/fd").expect("fds").count() as u64;
    let mut failures = 0;
    for limit in open..open + 64 {
        setrlimit(Resource::RLIMIT_NOFILE, limit, hard).expect("lower the limit");
        let run = box_.run_trusted(&p, Stdin::Null);
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore the limit");
        let stayed = left();
        assert!(
            stayed.is_empty(),
            "at {limit} descriptors ({run:?}) the run left {stayed:#?}"
        );
        match run {
            Ok(run) => {
                assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
                assert!(failures > 0, "the run never failed for want of descriptors");
                return;
            }
            Err(_) => failures += 1,
        }
    }
    panic!("no run succeeded with up to 64 descriptors more than {open}");
}
