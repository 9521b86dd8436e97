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
