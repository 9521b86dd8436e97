//! The sandbox runs ordinary programs and reports exact outcomes. Privileged: runs as root.

mod support;

use support::{out, plan, sandbox, sh};
use warden_core::{Limits, Outcome};
use warden_sandbox::Stdin;

#[test]
fn echo_runs_and_exits_zero() {
    let run = sh("echo hello; echo oops >&2; exit 3", Limits::default());
    assert_eq!(out(&run), "hello\n");
    assert_eq!(run.stderr, b"oops\n");
    assert_eq!(run.outcome, Outcome::Exited { code: 3 });
}

#[test]
fn stdin_bytes_reach_the_program() {
    let p = plan(&["/bin/cat"]);
    let run = sandbox()
        .run(&p, Stdin::Bytes(b"five\n".to_vec()))
        .expect("ran");
    assert_eq!(out(&run), "five\n");
}
