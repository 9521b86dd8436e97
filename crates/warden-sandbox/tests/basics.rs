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

#[test]
fn the_program_holds_only_descriptors_0_to_2() {
    // `ls` itself opens the directory it lists, as descriptor 3.
    let run = sh("exec ls -1 /proc/self/fd", Limits::default());
    assert_eq!(out(&run), "0\n1\n2\n3\n");
}

#[test]
fn the_program_leads_its_own_session_without_a_terminal() {
    let run = sh("exec cat /proc/self/stat", Limits::default());
    let stat = out(&run);
    let after_comm = stat.rsplit_once(") ").expect("stat has a comm field").1;
    let fields: Vec<&str> = after_comm.split(' ').collect();
    let (pid, session, tty) = (stat.split(' ').next(), fields[3], fields[4]);
    assert_eq!(pid, Some(session), "session leader: {stat}");
    assert_eq!(tty, "0", "no controlling terminal: {stat}");
}
