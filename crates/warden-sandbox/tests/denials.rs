//! Issue 13: the system calls the seccomp policy refuses with an error are counted and
//! reported with the run (`SandboxRun::denied_syscalls`), while the program still sees the same
//! error as before. `tests/denials/denials.c` makes the calls. Privileged: runs as root. Needs
//! gcc (and glibc's static libraries for a static binary).

mod support;

use std::sync::OnceLock;

use support::{compile_c, out, plan, sandbox, TRIES};
use warden_core::seccomp_policy::{DenyErrno, DenySeverity};
use warden_core::{Limits, Outcome, Signal};
use warden_sandbox::{Backend, DeniedSyscall, SandboxError, SandboxRun, Stdin, WorkspaceFile};

const SOURCE: &str = include_str!("denials/denials.c");

/// The test program, compiled once per test process into the cargo target's temporary
/// directory (keyed by the source's hash, so concurrent test processes share it safely).
fn program() -> Option<Vec<u8>> {
    static PROGRAM: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| compile_c("denials/denials.c", SOURCE))
        .clone()
}

/// Runs `/work/denials args...` in a sandbox with the built-in policy.
fn run(program: &[u8], args: &[&str]) -> SandboxRun {
    let mut argv = vec!["/work/denials"];
    argv.extend_from_slice(args);
    let mut p = plan(&argv);
    p.limits = Limits::default();
    p.files
        .push(WorkspaceFile::executable("denials", program.to_vec()));
    sandbox()
        .run(&p, Stdin::Null)
        .expect("warden ran the program")
}

fn exited(run: &SandboxRun) {
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "stdout: {}\nstderr: {}",
        out(run),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn denied<'a>(run: &'a SandboxRun, name: &str) -> &'a DeniedSyscall {
    run.denied_syscalls
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} not reported: {:?}", run.denied_syscalls))
}

#[test]
fn refused_calls_fail_as_before_and_are_reported_with_a_count() {
    let Some(program) = program() else { return };
    let run = run(&program, &["escapes"]);
    exited(&run);
    let eperm = libc::EPERM;
    assert_eq!(
        out(&run),
        format!("unshare {eperm}\nmount {eperm}\nkeyctl {eperm}\n")
    );
    let names: Vec<&str> = run
        .denied_syscalls
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["unshare", "mount", "keyctl"]);
    for call in &run.denied_syscalls {
        assert_eq!(call.count, 1, "{call:?}");
        assert_eq!(call.errno, DenyErrno::Eperm);
        assert_eq!(call.severity, DenySeverity::High);
        assert_eq!(call.samples.len(), 1);
    }
    let unshare = denied(&run, "unshare");
    assert_eq!(
        unshare.samples[0][0],
        u64::from(libc::CLONE_NEWUSER.unsigned_abs()),
        "the first argument is kept"
    );
}

#[test]
fn a_childs_refused_calls_are_counted() {
    let Some(program) = program() else { return };
    let run = run(&program, &["child"]);
    exited(&run);
    let eperm = libc::EPERM;
    assert_eq!(
        out(&run),
        format!("mount {eperm}\nmount {eperm}\nmount {eperm}\nchild 0\n")
    );
    let mount = denied(&run, "mount");
    assert_eq!(mount.count, 3);
    assert_eq!(mount.samples.len(), 3);
}

/// A storm of refused calls only runs slower: every call is refused, every one is counted, and
/// the init still ends the job.
#[test]
fn a_storm_of_refused_calls_finishes_and_is_counted() {
    let Some(program) = program() else { return };
    let run = run(&program, &["storm", "100000"]);
    exited(&run);
    assert_eq!(out(&run), "storm 100000 0\n");
    let mount = denied(&run, "mount");
    assert_eq!(mount.count, 100_000);
    assert_eq!(
        mount.samples.len(),
        3,
        "only the first few keep their arguments"
    );
    assert_eq!(run.denied_syscalls.len(), 1);
}

/// A cancel ends the job through the init, as a limit does, so that what the sandbox stopped
/// in it is still reported: a caller that leaves before the answer takes nothing of its
/// probing with it (docs/events.md). The sandbox runs no more jobs.
#[test]
fn a_cancelled_job_reports_the_calls_it_was_refused() {
    let Some(program) = program() else { return };
    let mut p = plan(&["/work/denials", "probe", "5"]);
    p.limits = Limits::default();
    p.limits.wall_time = std::time::Duration::from_secs(60);
    p.files.push(WorkspaceFile::executable("denials", program));
    let (spec, job) = p.split();
    let mut live = sandbox().native().create(&spec).expect("a sandbox");
    let cancel = live.cancel_handle();
    // Cancelled once the program says it probed: from its output, never a timing guess.
    let mut seen = Vec::new();
    let result = live.run_streaming(&job, Stdin::Null, &mut |_, chunk: &[u8]| {
        seen.extend_from_slice(chunk);
        if seen.ends_with(b"probed 5\n") {
            cancel.cancel();
        }
        true
    });
    let ran = match result {
        Err(SandboxError::Cancelled { ran: Some(ran) }) => ran,
        other => panic!("not a cancelled run with what it ran: {other:?}"),
    };
    assert_eq!(ran.outcome, Outcome::Cancelled);
    assert_eq!(out(&ran), "probed 5\n");
    let mount = denied(&ran, "mount");
    assert_eq!(mount.count, 5);
    assert_eq!(mount.severity, DenySeverity::High);
    assert!(!live.is_alive());
    assert!(matches!(
        live.run(&job, Stdin::Null),
        Err(SandboxError::Cancelled { ran: None })
    ));
    live.destroy().expect("destroyed");
}

#[test]
fn a_killed_call_is_still_a_kill_and_names_the_call() {
    let Some(program) = program() else { return };
    let named = Outcome::Violation {
        detail: "init_module, a forbidden system call (seccomp killed the process)".into(),
    };
    // Threads making the call at once are one process killed, not four.
    for mode in ["kill", "kill-thread", "kill-threads"] {
        let run = run(&program, &[mode]);
        assert_eq!(run.outcome, named, "{mode}: {}", out(&run));
        assert_eq!(out(&run), "", "{mode}: the call never returned");
        assert!(run.denied_syscalls.is_empty(), "{:?}", run.denied_syscalls);
        let [killed] = &run.seccomp_kills[..] else {
            panic!("{mode}: {:?}", run.seccomp_kills)
        };
        assert_eq!(
            (killed.name.as_str(), killed.count, killed.program),
            ("init_module", 1, true),
            "{mode}"
        );
    }
}

/// A call of a foreign ABI (its number means another call) is killed by the init too, and named
/// by its ABI and number; a program that raises SIGSYS itself, which no kill of the filter
/// causes any more, ends by that signal, not as a violation.
#[test]
fn a_foreign_abi_is_a_named_kill_and_a_raised_sigsys_is_the_program_s_own() {
    let Some(program) = program() else { return };
    let run_x32 = run(&program, &["x32"]);
    assert_eq!(
        run_x32.outcome,
        Outcome::Violation {
            detail: "x32 system call 39, a forbidden system call (seccomp killed the process)"
                .into()
        },
        "{}",
        out(&run_x32)
    );
    assert_eq!(out(&run_x32), "", "the call never returned");
    let int80 = run(&program, &["int80"]);
    if int80.outcome == (Outcome::Signaled { signal: Signal(11) }) {
        eprintln!("skipping the i386 case: this kernel has no IA32 emulation (int $0x80 faults)");
    } else {
        assert_eq!(
            int80.outcome,
            Outcome::Violation {
                detail: "i386 system call 20, a forbidden system call (seccomp killed the process)"
                    .into()
            },
            "{}",
            out(&int80)
        );
        let [killed] = &int80.seccomp_kills[..] else {
            panic!("{:?}", int80.seccomp_kills)
        };
        assert_eq!((killed.count, killed.program), (1, true));
    }
    let raised = run(&program, &["sigsys"]);
    assert_eq!(
        raised.outcome,
        Outcome::Signaled {
            signal: Signal::SYS
        }
    );
    assert!(
        raised.seccomp_kills.is_empty(),
        "{:?}",
        raised.seccomp_kills
    );
}

/// Hunt esc F1: a program installed a seccomp filter of its own answering
/// `SECCOMP_RET_USER_NOTIF` for the calls warden's filter hands to the init. Among equal answers
/// the kernel keeps the newest filter's, and that filter had no listener: unshare and mount
/// failed with ENOSYS and were not recorded, and init_module, which the policy kills for,
/// failed with ENOSYS too (the run exited 0 with no event). Installing a filter of its own now
/// fails with EINVAL and is recorded, and the calls after it are refused, recorded and killed
/// as ever.
#[test]
fn a_filter_of_the_programs_own_is_refused_and_hides_nothing() {
    let Some(program) = program() else { return };
    let run = run(&program, &["hide"]);
    let (einval, eperm) = (libc::EINVAL, libc::EPERM);
    assert_eq!(
        out(&run),
        format!("own filter {einval}\nprctl filter {einval}\nunshare {eperm}\nmount {eperm}\n")
    );
    assert_eq!(
        run.outcome,
        Outcome::Violation {
            detail: "init_module, a forbidden system call (seccomp killed the process)".into(),
        }
    );
    let [killed] = &run.seccomp_kills[..] else {
        panic!("{:?}", run.seccomp_kills)
    };
    assert_eq!(
        (killed.name.as_str(), killed.program),
        ("init_module", true)
    );
    let names: Vec<&str> = run
        .denied_syscalls
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["seccomp", "prctl", "unshare", "mount"]);
    for name in ["seccomp", "prctl"] {
        let call = denied(&run, name);
        assert_eq!(
            (call.count, call.errno, call.severity),
            (1, DenyErrno::Einval, DenySeverity::Medium),
            "{name}"
        );
    }
    assert_eq!(
        denied(&run, "seccomp").samples[0][0],
        u64::from(libc::SECCOMP_SET_MODE_FILTER)
    );
}

/// The same under `isolated`: the job's filter (gVisor implements seccomp for its programs)
/// refuses the program's own with EINVAL, and the call after it is killed, by SIGSYS there.
#[test]
fn a_filter_of_the_programs_own_is_refused_under_isolated_too() {
    let Some(program) = program() else { return };
    let mut p = plan(&["/work/denials", "hide"]);
    p.limits = Limits::default();
    p.files.push(WorkspaceFile::executable("denials", program));
    let run = support::run_in(support::Mode::Isolated, &p, Stdin::Null);
    let (einval, eperm) = (libc::EINVAL, libc::EPERM);
    assert_eq!(
        out(&run),
        format!("own filter {einval}\nprctl filter {einval}\nunshare {eperm}\nmount {eperm}\n")
    );
    assert_eq!(
        run.outcome,
        Outcome::Signaled {
            signal: Signal::SYS
        }
    );
}

/// A process the program started is killed for the call, not the program, which carries on:
/// the kill is recorded all the same (a kill in the kernel would go unseen).
#[test]
fn a_child_killed_for_a_forbidden_call_is_recorded_and_the_program_goes_on() {
    let Some(program) = program() else { return };
    let run = run(&program, &["kill-child"]);
    exited(&run);
    assert_eq!(out(&run), "child signal 9\n");
    let [killed] = &run.seccomp_kills[..] else {
        panic!("{:?}", run.seccomp_kills)
    };
    assert_eq!(
        (killed.name.as_str(), killed.count, killed.program),
        ("init_module", 1, false)
    );
    assert_eq!(killed.samples.len(), 1);
}

#[test]
fn an_ordinary_program_reports_nothing() {
    let Some(program) = program() else { return };
    let run = run(&program, &["none"]);
    exited(&run);
    assert_eq!(out(&run), "hello\n");
    assert!(run.denied_syscalls.is_empty(), "{:?}", run.denied_syscalls);
    // A shell forks through clone3 (refused with ENOSYS, unrecorded, then clone).
    let shell = support::sh("/bin/true & wait; echo ok", Limits::default());
    assert_eq!(out(&shell), "ok\n");
    assert!(
        shell.denied_syscalls.is_empty(),
        "{:?}",
        shell.denied_syscalls
    );
}

/// When warden itself runs under a filter that has a listener (a container runtime's), the
/// kernel refuses the payload a second one (`EBUSY`): the calls are refused alike, in the
/// kernel, and nothing is recorded.
#[test]
fn under_a_foreign_listener_calls_are_refused_unrecorded() {
    let Some(program) = program() else { return };
    // This test's thread (and every process it starts) gets a filter that allows everything
    // but holds a listener; the test process ends with the test.
    let allow = warden_sys::seccomp::SockFilter::stmt(
        warden_sys::seccomp::BPF_RET | warden_sys::seccomp::BPF_K,
        warden_sys::seccomp::SECCOMP_RET_ALLOW,
    );
    let _listener =
        warden_sys::seccomp::install_filter_with_listener(&[allow]).expect("a listener");
    let run_escapes = run(&program, &["escapes"]);
    exited(&run_escapes);
    let eperm = libc::EPERM;
    assert_eq!(
        out(&run_escapes),
        format!("unshare {eperm}\nmount {eperm}\nkeyctl {eperm}\n")
    );
    assert!(
        run_escapes.denied_syscalls.is_empty(),
        "{:?}",
        run_escapes.denied_syscalls
    );
    // The kernel kills, unnamed: a death by SIGSYS may be that kill, and is taken as one.
    let unnamed = Outcome::Violation {
        detail: "a forbidden system call (seccomp killed the process)".into(),
    };
    for mode in ["x32", "sigsys"] {
        let killed = run(&program, &[mode]);
        assert_eq!(killed.outcome, unnamed, "{mode}");
        assert!(killed.seccomp_kills.is_empty(), "{mode}");
    }
}

/// Runs `script` with the host's `/usr/bin/python3` as a job, `None` without python.
fn python_job(script: &str) -> Option<warden_sandbox::Job> {
    if !support::prerequisite(
        std::path::Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3",
    ) {
        return None;
    }
    let mut job = plan(&["/usr/bin/python3", "-c", script]).split().1;
    job.limits = Limits::default();
    Some(job)
}

/// Bug hunt: the program runs as the same uid as the sandbox's init, so `prlimit(1,
/// RLIMIT_FSIZE, 100)` (`prlimit --pid 1 --fsize=100:100`) lowered the init's limits, and every
/// later job of the sandbox (a pooled sandbox, `warden batch --reuse`, a session's next call)
/// inherited them: a file size limit of 100 bytes, or a MemoryError from a lowered
/// RLIMIT_AS. prlimit64 naming another process now fails with EPERM and is recorded; a program
/// still reads and sets its own limits (pid 0, what glibc's getrlimit and setrlimit pass).
#[test]
fn prlimit_on_the_init_is_refused_and_recorded_and_a_program_keeps_its_own_limits() {
    let attempt = format!(
        r#"{TRIES}
import resource
print("fsize", resource.getrlimit(resource.RLIMIT_FSIZE))
tries("prlimit init fsize", lambda: resource.prlimit(1, resource.RLIMIT_FSIZE, (100, 100)))
tries("prlimit init as", lambda: resource.prlimit(1, resource.RLIMIT_AS, (1 << 20, 1 << 20)))
tries("prlimit init read", lambda: resource.prlimit(1, resource.RLIMIT_FSIZE))
tries("prlimit own pid", lambda: resource.prlimit(os.getpid(), resource.RLIMIT_FSIZE))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
tries("setrlimit", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (32, hard)))
print("getrlimit", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
tries("prlimit 0", lambda: resource.prlimit(0, resource.RLIMIT_CORE, (0, 0)))
print("prlimit 0 read", resource.prlimit(0, resource.RLIMIT_NOFILE)[0])
"#
    );
    let Some(first) = python_job(&attempt) else {
        return;
    };
    let check = "import resource; print('fsize', resource.getrlimit(resource.RLIMIT_FSIZE))";
    let second = python_job(check).expect("python is there");
    let (spec, _) = plan(&["/bin/true"]).split();
    let mut live = sandbox().native().create(&spec).expect("a sandbox");
    let one = live.run(&first, Stdin::Null).expect("first job");
    exited(&one);
    let text = out(&one);
    let fsize = text.lines().next().expect("the limit").to_owned();
    assert_eq!(
        text.lines().skip(1).collect::<Vec<_>>(),
        [
            "prlimit init fsize EPERM",
            "prlimit init as EPERM",
            "prlimit init read EPERM",
            "prlimit own pid EPERM",
            "setrlimit ok",
            "getrlimit 32",
            "prlimit 0 ok",
            "prlimit 0 read 32",
        ],
        "{text}"
    );
    let prlimit = denied(&one, "prlimit64");
    assert_eq!(
        (prlimit.count, prlimit.errno, prlimit.severity),
        (4, DenyErrno::Eperm, DenySeverity::Medium)
    );
    assert_eq!(prlimit.samples[0][0], 1, "the pid is kept");
    assert_eq!(one.denied_syscalls.len(), 1, "{:?}", one.denied_syscalls);
    // The next job, forked from the same init, has the limits it had.
    let two = live.run(&second, Stdin::Null).expect("second job");
    exited(&two);
    assert_eq!(out(&two), format!("{fsize}\n"));
    live.destroy().expect("destroyed");
}

/// Behind the filter: should a job change the init's limits anyway (a policy without the
/// `prlimit64` rule, as this test's), the init tells on it after the job and the sandbox runs
/// no more jobs, which the pool then destroys and a session stops for.
#[test]
fn a_job_that_changed_the_inits_limits_is_the_sandboxs_last() {
    let lower =
        "import resource; resource.prlimit(1, resource.RLIMIT_NOFILE, (30, 30)); print('lowered')";
    let Some(first) = python_job(lower) else {
        return;
    };
    let (mut spec, _) = plan(&["/bin/true"]).split();
    spec.seccomp =
        warden_core::seccomp_policy::SeccompPolicy::from_toml("none", "").expect("an empty policy");
    let mut live = sandbox().native().create(&spec).expect("a sandbox");
    let one = live.run(&first, Stdin::Null).expect("the job");
    exited(&one);
    assert_eq!(out(&one), "lowered\n");
    assert!(!live.is_alive());
    assert_eq!(
        live.ended_because(),
        Some("a job changed the limits of the sandbox's init")
    );
    let second = python_job("print(1)").expect("python is there");
    assert!(matches!(
        live.run(&second, Stdin::Null),
        Err(SandboxError::Gone { .. })
    ));
    live.destroy().expect("destroyed");
}
