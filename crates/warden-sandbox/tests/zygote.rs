//! The zygote (issue 9): a multi-threaded process has its helpers forked by a single-threaded
//! zygote instead of exec'ing the binary for each. Sandboxes built that way behave the same on
//! every backend, from several threads at once, and nothing is left when the zygote ends.

mod support;

use std::time::Duration;

use support::{our_cgroups, plan, sandbox};
use warden_core::{Limits, Outcome, TimeLimitKind};
use warden_sandbox::{Backend, Stdin};

fn job(script: &str) -> warden_sandbox::Job {
    plan(&["/bin/sh", "-c", script]).split().1
}

#[test]
fn sandboxes_forked_by_the_zygote_run_jobs_on_every_backend_from_many_threads() {
    let host = sandbox().with_zygote().expect("the zygote starts");
    let spec = plan(&["/bin/true"]).split().0;
    let mut backends: Vec<Box<dyn Backend>> =
        vec![Box::new(host.native()), Box::new(host.trusted())];
    if warden_sandbox::runsc_path().is_some() {
        backends.push(Box::new(host.gvisor().expect("runsc")));
    }
    for backend in &backends {
        let mut sandbox = backend.create(&spec).expect("created");
        let first = sandbox.run(&job("echo one"), Stdin::Null).expect("ran");
        assert_eq!(first.stdout, b"one\n", "{}", backend.name());
        let mut spin = job("while :; do :; done");
        spin.limits = Limits {
            cpu_time: Duration::from_millis(200),
            ..Limits::default()
        };
        let limited = sandbox.run(&spin, Stdin::Null).expect("ran");
        assert_eq!(
            limited.outcome,
            Outcome::TimeLimit {
                which: TimeLimitKind::Cpu
            },
            "{}",
            backend.name()
        );
        sandbox.destroy().expect("destroyed");
    }
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let host = host.clone();
            std::thread::spawn(move || {
                let script = format!("echo {i}");
                host.run(&plan(&["/bin/sh", "-c", &script]), Stdin::Null)
                    .expect("ran")
                    .stdout
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        assert_eq!(
            thread.join().expect("thread"),
            format!("{i}\n").into_bytes()
        );
    }
    drop(backends);
    drop(host);
    assert_eq!(our_cgroups(), Vec::<String>::new(), "cgroups left behind");
    let zygotes = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            is_zygote(&e.path())
                && std::fs::read_to_string(e.path().join("status"))
                    .is_ok_and(|s| s.contains(&format!("PPid:\t{}", std::process::id())))
        })
        .count();
    assert_eq!(zygotes, 0, "the zygote outlived its sandbox");
}

/// The zygote's own children, by state (`Z` for a zombie), while it runs. This process's only
/// zygote: nextest runs each test in a process of its own.
fn zygote_children() -> Vec<(i32, char)> {
    let ours = format!("PPid:\t{}", std::process::id());
    let zygote = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .find(|e| {
            is_zygote(&e.path())
                && std::fs::read_to_string(e.path().join("status"))
                    .is_ok_and(|s| s.lines().any(|l| l == ours))
        })
        .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .expect("this process's zygote");
    let parent = format!("PPid:\t{zygote}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            status.lines().any(|l| l == parent).then_some(())?;
            let state = status.lines().find_map(|l| l.strip_prefix("State:\t"))?;
            let pid = e.file_name().to_str()?.parse().ok()?;
            Some((pid, state.chars().next()?))
        })
        .collect()
}

/// A zygote whose parent asks nothing more (an idle server) still reaps the helpers of the
/// sandboxes that ended: none stays a zombie for more than about a second.
#[test]
fn an_idle_zygote_leaves_no_zombie_helpers() {
    let host = sandbox().with_zygote().expect("the zygote starts");
    let spec = plan(&["/bin/true"]).split().0;
    let native = host.native();
    for _ in 0..3 {
        let mut sandbox = native.create(&spec).expect("created");
        sandbox.run(&job("true"), Stdin::Null).expect("ran");
        sandbox.destroy().expect("destroyed");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let children = zygote_children();
        if children.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the zygote keeps children: {children:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(native);
    drop(host);
}

/// Whether the process of `/proc` entry `dir` is a zygote: its name (`comm`), since its
/// command line is a helper's (what the sandboxes forked from it show).
fn is_zygote(dir: &std::path::Path) -> bool {
    std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "warden-zygote")
}

/// This process's zygotes (its children running as one).
fn our_zygotes() -> Vec<i32> {
    let ours = format!("PPid:\t{}", std::process::id());
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            is_zygote(&e.path())
                && std::fs::read_to_string(e.path().join("status"))
                    .is_ok_and(|s| s.lines().any(|l| l == ours))
        })
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// A zygote that ends (the OOM killer, a SIGKILL by hand) is replaced at the next sandbox:
/// the server it serves goes on running programs, and the dead one is reaped, not left a
/// zombie.
#[test]
fn a_zygote_that_ended_is_replaced_and_reaped() {
    let host = sandbox().with_zygote().expect("the zygote starts");
    let native = host.native();
    let spec = plan(&["/bin/true"]).split().0;
    let run = || {
        let mut sandbox = native.create(&spec).expect("created");
        let ran = sandbox.run(&job("echo alive"), Stdin::Null).expect("ran");
        sandbox.destroy().expect("destroyed");
        ran.stdout
    };
    assert_eq!(run(), b"alive\n");
    let first = our_zygotes();
    assert_eq!(first.len(), 1, "{first:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("killed");
    for _ in 0..3 {
        assert_eq!(run(), b"alive\n");
    }
    let now = our_zygotes();
    assert_eq!(now.len(), 1, "one zygote, the new one: {now:?}");
    assert_ne!(now, first);
    let zombie = std::fs::read_to_string(format!("/proc/{}/status", first[0]))
        .is_ok_and(|s| s.contains("State:\tZ"));
    assert!(!zombie, "the dead zygote was not reaped");
    drop(native);
    drop(host);
}
