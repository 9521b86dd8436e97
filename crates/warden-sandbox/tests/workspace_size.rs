//! Each job of a live sandbox writes within its own `workspace_size`, and a job's files reach
//! the workspace without being held in the init's memory (bug hunt hc, F1 and F2: a run got
//! its compile stage's 512 MiB workspace, and a 300 MiB compiled program, read whole into the
//! init and written into the tmpfs, got the init killed by the run's memory cgroup: an internal
//! error, or `memory_limit` for a program that never started). Needs root, and runsc for
//! gVisor (CI has both).

mod support;

use support::{plan, prerequisite, sandbox};
use warden_core::{ByteSize, Limits, Outcome};
use warden_sandbox::{Backend, Job, SandboxError, SandboxSpec, Stdin, WorkspaceFile};

const MIB: u64 = ByteSize::MIB;

/// The backends whose workspace is a size-capped tmpfs: the native sandbox and gVisor (when
/// runsc is installed; CI has it).
fn backends() -> Vec<Box<dyn Backend>> {
    let host = sandbox();
    let mut all: Vec<Box<dyn Backend>> = vec![Box::new(host.native())];
    if prerequisite(warden_sandbox::runsc_path().is_some(), "runsc (gVisor)") {
        all.push(Box::new(host.gvisor().expect("runsc is installed")));
    }
    all
}

/// A sandbox whose ceilings hold a 256 MiB workspace, and files as large (gVisor's rlimits
/// are the container's ceilings).
fn spec() -> SandboxSpec {
    let mut spec = plan(&["/bin/true"]).split().0;
    spec.limits.workspace_size = ByteSize(256 * MIB);
    spec.limits.max_file_size = ByteSize(256 * MIB);
    spec
}

/// A shell job with a workspace of `workspace` MiB, files as large as it.
fn sh(script: &str, workspace: u64) -> Job {
    let mut job = plan(&["/bin/sh", "-c", script]).split().1;
    job.limits = Limits {
        workspace_size: ByteSize(workspace * MIB),
        max_file_size: ByteSize(256 * MIB),
        ..Limits::default()
    };
    job
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes 32 MiB into `/tmp/fill` and prints `head`'s status and the file's size.
const FILL: &str =
    "rm -f /tmp/fill; head -c 33554432 /dev/zero > /tmp/fill 2>/dev/null; echo $? $(wc -c < /tmp/fill)";

#[test]
fn each_job_writes_within_its_own_workspace_size() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let small = sandbox.run(&sh(FILL, 16), Stdin::Null).expect("ran");
        let (status, size) = text(&small.stdout)
            .split_once(' ')
            .map(|(s, n)| (s.to_owned(), n.trim().parse::<u64>().expect("a size")))
            .expect("status and size");
        assert_ne!(status, "0", "{name}: 32 MiB written in a 16 MiB workspace");
        assert!(
            size <= 16 * MIB,
            "{name}: {size} bytes in a 16 MiB workspace"
        );
        let large = sandbox.run(&sh(FILL, 256), Stdin::Null).expect("ran");
        assert_eq!(text(&large.stdout), "0 33554432\n", "{name}");
        sandbox.destroy().expect("destroyed");
    }
}

#[test]
fn a_workspace_holding_more_than_a_jobs_size_refuses_the_job_and_the_sandbox_lives_on() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let filled = sandbox.run(&sh(FILL, 256), Stdin::Null).expect("ran");
        assert_eq!(text(&filled.stdout), "0 33554432\n", "{name}");
        let refused = sandbox.run(&sh("echo ran", 16), Stdin::Null);
        match &refused {
            Err(e @ SandboxError::WorkspaceMisfit { limit, holds, .. }) => {
                assert_eq!(*limit, "workspace_size", "{name}");
                assert!(holds.bytes() >= 32 * MIB, "{name}: {holds}");
                let message = e.to_string();
                assert!(
                    message.contains("workspace_size (16MiB)"),
                    "{name}: {message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        let emptied = sandbox
            .run(&sh("rm /tmp/fill && echo emptied", 256), Stdin::Null)
            .expect("ran");
        assert_eq!(text(&emptied.stdout), "emptied\n", "{name}");
        let small = sandbox.run(&sh("echo ran", 16), Stdin::Null).expect("ran");
        assert_eq!(text(&small.stdout), "ran\n", "{name}");
        sandbox.destroy().expect("destroyed");
    }
}

#[test]
fn a_job_above_the_sandboxs_workspace_size_is_refused() {
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    let refused = sandbox.run(&sh("true", 512), Stdin::Null);
    assert!(matches!(refused, Err(SandboxError::Plan(_))), "{refused:?}");
}

#[test]
fn files_that_do_not_fit_the_workspace_or_the_memory_are_refused_before_the_program_runs() {
    let mut sandbox = sandbox().native().create(&spec()).expect("created");
    let mut too_large = sh("echo ran", 32);
    too_large
        .files
        .push(WorkspaceFile::new("big", vec![1u8; (40 * MIB) as usize]));
    let refused = sandbox.run(&too_large, Stdin::Null);
    assert!(
        matches!(
            refused,
            Err(SandboxError::WorkspaceMisfit {
                limit: "workspace_size",
                ..
            })
        ),
        "{refused:?}"
    );
    let mut too_heavy = sh("echo ran", 256);
    too_heavy.limits.memory = ByteSize(64 * MIB);
    too_heavy
        .files
        .push(WorkspaceFile::new("big", vec![1u8; (80 * MIB) as usize]));
    let refused = sandbox.run(&too_heavy, Stdin::Null);
    match &refused {
        Err(
            e @ SandboxError::WorkspaceMisfit {
                limit: "memory", ..
            },
        ) => {
            assert!(e.to_string().contains("held in memory"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // The refused jobs' bytes were read off the channel: the next job is read whole.
    let fine = sandbox.run(&sh("echo ran", 256), Stdin::Null).expect("ran");
    assert_eq!(text(&fine.stdout), "ran\n");
}

#[test]
fn a_large_file_reaches_the_workspace_without_being_held_in_the_inits_memory() {
    for one_shot in [false, true] {
        let mut job = sh("wc -c < big", 256);
        job.limits.memory = ByteSize(96 * MIB);
        job.files
            .push(WorkspaceFile::new("big", vec![7u8; (64 * MIB) as usize]));
        let mut spec = spec();
        spec.limits.memory = job.limits.memory;
        let host = sandbox();
        let mut sandbox = if one_shot {
            host.native().start(&spec)
        } else {
            host.native().create(&spec)
        }
        .expect("created");
        let run = sandbox.run(&job, Stdin::Null).expect("ran");
        assert_eq!(run.outcome, Outcome::Exited { code: 0 }, "{run:?}");
        assert_eq!(text(&run.stdout), "67108864\n");
        // The file's pages (64 MiB) and little more: not a second copy in the init.
        assert!(
            run.usage.peak_memory.bytes() < 90 * MIB,
            "{}",
            run.usage.peak_memory
        );
    }
}

/// Hunt sess F2: a job whose memory limit is below what the sandbox's tmpfs holds already (an
/// earlier job's files in `/tmp`) was warden's own error: cgroup v1 refuses the lower limit
/// (`EBUSY`), and v2 would kill in the group to meet it, the sandbox's init with it. The job
/// is refused, naming both amounts, before the limit is written; the sandbox runs on.
#[test]
fn a_job_whose_memory_is_below_what_the_sandbox_holds_is_refused_and_the_sandbox_lives_on() {
    for backend in backends() {
        let name = backend.name();
        let mut sandbox = backend.create(&spec()).expect("created");
        let fill = "head -c 100000000 /dev/zero > /tmp/fill && echo filled";
        let filled = sandbox.run(&sh(fill, 256), Stdin::Null).expect("ran");
        assert_eq!(text(&filled.stdout), "filled\n", "{name}");
        let mut small = sh("echo ran", 256);
        small.limits.memory = ByteSize(32 * MIB);
        let refused = sandbox.run(&small, Stdin::Null);
        match &refused {
            Err(e @ SandboxError::MemoryHeld { limit, held }) => {
                assert_eq!(*limit, ByteSize(32 * MIB), "{name}");
                assert!(held.bytes() >= 95 * MIB, "{name}: {held}");
                let message = e.to_string();
                assert!(message.contains("limit of 32MiB"), "{name}: {message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        let emptied = sandbox
            .run(&sh("rm /tmp/fill && echo emptied", 256), Stdin::Null)
            .expect("ran");
        assert_eq!(text(&emptied.stdout), "emptied\n", "{name}");
        if name == "native" {
            // gVisor's sentry keeps the memory its tmpfs had until it gives it back itself.
            let ran = sandbox.run(&small, Stdin::Null).expect("ran");
            assert_eq!(text(&ran.stdout), "ran\n", "{name}");
        }
        sandbox.destroy().expect("destroyed");
    }
}
