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

#[test]
fn collected_files_come_back_with_their_modes() {
    let mut p = plan(&[
        "/bin/sh",
        "-c",
        "mkdir -p out/sub && printf bin > out/main && chmod +x out/main && printf data > out/sub/b",
    ]);
    p.collect = Some("out".into());
    let run = sandbox().run(&p, Stdin::Null).expect("ran");
    assert_eq!(run.collect_error, None);
    let files: Vec<_> = run
        .collected
        .iter()
        .map(|f| {
            (
                f.path.to_string_lossy().into_owned(),
                f.contents.clone(),
                f.executable,
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("out/main".to_owned(), b"bin".to_vec(), true),
            ("out/sub/b".to_owned(), b"data".to_vec(), false)
        ]
    );
}

#[test]
fn a_planted_symlink_or_fifo_is_never_followed_out() {
    for script in [
        "ln -s /etc/hostname out",
        "mkdir out && ln -s /etc/passwd out/x",
        "mkfifo out",
    ] {
        let mut p = plan(&["/bin/sh", "-c", script]);
        p.collect = Some("out".into());
        let run = sandbox().run(&p, Stdin::Null).expect("ran");
        assert!(run.collected.is_empty(), "{script}: {:?}", run.collected);
        assert!(run.collect_error.is_some(), "{script}");
    }
}

#[test]
fn nothing_is_collected_from_a_failed_program() {
    let mut p = plan(&["/bin/sh", "-c", "printf x > out; exit 1"]);
    p.collect = Some("out".into());
    let run = sandbox().run(&p, Stdin::Null).expect("ran");
    assert!(run.collected.is_empty() && run.collect_error.is_none());
}

/// Hunt gv 1: each sandbox had a process limit but all of them together none, and a gVisor
/// sandbox's runtime may keep a quarter of the host's pids: a few at once took them all.
/// Creating a run's cgroup caps warden's parent of the pids hierarchy (v1) or the unified one
/// (v2) at half of the lower of `kernel.pid_max` and `kernel.threads-max`.
#[test]
fn all_sandboxes_together_hold_at_most_half_of_the_hosts_tasks() {
    let run = sh("true", Limits::default());
    assert_eq!(run.outcome, Outcome::Exited { code: 0 });
    let kernel = |name: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .expect("readable")
            .trim()
            .parse()
            .expect("a number")
    };
    let bound = kernel("pid_max").min(kernel("threads-max")) / 2;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let parents: Vec<std::path::PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let mut after = after.split(' ');
            let (fstype, _, options) = (after.next()?, after.next()?, after.next()?);
            let pids = fstype == "cgroup2"
                || (fstype == "cgroup" && options.split(',').any(|o| o == "pids"));
            let mount_point = before.split(' ').nth(4)?;
            pids.then(|| std::path::PathBuf::from(mount_point))
        })
        .map(|root| root.join(warden_sandbox::WARDEN_CGROUP))
        .filter(|parent| parent.join("pids.max").exists())
        .collect();
    assert!(!parents.is_empty(), "warden's parent cgroup with pids.max");
    for parent in parents {
        let max = std::fs::read_to_string(parent.join("pids.max")).expect("pids.max");
        let max: u64 = max
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{parent:?}: {max}"));
        assert!(max <= bound, "{parent:?}: {max} above {bound}");
    }
}
