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
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                c.windows(16).any(|w| w == b"__sandbox-zygote")
                    && std::fs::read_to_string(e.path().join("status"))
                        .is_ok_and(|s| s.contains(&format!("PPid:\t{}", std::process::id())))
            })
        })
        .count();
    assert_eq!(zygotes, 0, "the zygote outlived its sandbox");
}
