//! Volumes (issue 12): host directories mounted id-mapped into native sandboxes, from helpers
//! exec'd by the test and forked by a zygote. What one sandbox writes is stored as uid 0 and
//! belongs to the next sandbox's root; a read-only volume stays read-only; other ids on disk
//! are nobody's; links planted in a workspace volume are not followed; a sandbox without the
//! volume cannot reach it; and nothing of a volume outlives its sandbox. Needs root.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use support::{our_cgroups, plan, processes_of, sandbox};
use warden_core::{Limits, Outcome};
use warden_sandbox::{
    Backend, Job, LiveSandbox, PlanError, SandboxError, SandboxSpec, Stdin, VolumeMount,
    WorkspaceFile, WORKDIR,
};

/// The native backend with helpers exec'd by the test, and with helpers forked by a zygote.
fn natives() -> Vec<(&'static str, Box<dyn Backend>)> {
    let host = sandbox();
    let zygote = sandbox().with_zygote().expect("the zygote starts");
    vec![
        ("exec'd helper", Box::new(host.native())),
        ("zygote", Box::new(zygote.native())),
    ]
}

/// A root-owned host directory standing for a volume, removed when dropped. Under `/var/tmp`,
/// which no sandbox binds.
fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("warden-volume-test-")
        .tempdir_in("/var/tmp")
        .expect("a directory under /var/tmp");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn volume(host: &Path, target: &str, writable: bool) -> VolumeMount {
    VolumeMount {
        host: host.to_owned(),
        target: target.into(),
        writable,
    }
}

fn spec_with(volumes: Vec<VolumeMount>) -> SandboxSpec {
    let mut spec = plan(&["/bin/true"]).split().0;
    spec.volumes = volumes;
    spec
}

fn sh(script: &str) -> Job {
    let mut job = plan(&["/bin/sh", "-c", script]).split().1;
    job.limits = Limits::default();
    job
}

/// Runs `script`; returns stdout and stderr, asserting it exited 0.
fn run(sandbox: &mut LiveSandbox, script: &str) -> (String, String) {
    run_job(sandbox, &sh(script))
}

fn run_job(sandbox: &mut LiveSandbox, job: &Job) -> (String, String) {
    let ran = sandbox.run(job, Stdin::Null).expect("the job ran");
    let (out, err) = (text(&ran.stdout), text(&ran.stderr));
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 }, "{out}{err}");
    (out, err)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The host uid the sandbox's root is (its init's real uid on the host).
fn host_uid(sandbox: &LiveSandbox) -> u32 {
    let pid = sandbox.init_pid().expect("a native sandbox has an init");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("a Uid: line")
}

/// The line of the sandbox's own mount table for `target`.
fn mount_line(sandbox: &mut LiveSandbox, target: &str) -> String {
    let (out, _) = run(sandbox, &format!("grep ' {target} ' /proc/self/mountinfo"));
    out
}

/// The lines of this process's (the host's) mount table that mention `path`.
fn host_mounts_of(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_workspace_volume_keeps_files_across_jobs_and_sandboxes_stored_as_root() {
    for (name, backend) in natives() {
        let dir = host_dir();
        std::fs::write(dir.path().join("from_host.txt"), "host\n").expect("write");
        let spec = spec_with(vec![volume(dir.path(), WORKDIR, true)]);
        // Two at once, so that they hold different uid slots.
        let mut first = backend.create(&spec).expect("first sandbox");
        let mut second = backend.create(&spec).expect("second sandbox");
        assert_ne!(host_uid(&first), host_uid(&second), "{name}");
        let mut write =
            sh("echo one > notes.txt; stat -c '%u %g' from_host.txt; cat from_host.txt");
        write.files.push(WorkspaceFile::new("given.txt", "given\n"));
        let (out, _) = run_job(&mut first, &write);
        assert_eq!(
            out, "0 0\nhost\n",
            "{name}: root's files on disk are the sandbox's root's"
        );
        let (out, _) = run(&mut first, "cat notes.txt given.txt");
        assert_eq!(out, "one\ngiven\n", "{name}: the same sandbox's next job");
        let (out, _) = run(
            &mut second,
            "cat notes.txt && echo two >> notes.txt && stat -c '%u %g' notes.txt && echo x >> from_host.txt",
        );
        assert_eq!(
            out, "one\n0 0\n",
            "{name}: another sandbox reads and appends"
        );
        first.destroy().expect("destroyed");
        second.destroy().expect("destroyed");
        for file in ["notes.txt", "given.txt", "from_host.txt"] {
            let meta = std::fs::metadata(dir.path().join(file)).expect("on the host");
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name}: {file} on disk");
        }
        let notes = std::fs::read_to_string(dir.path().join("notes.txt")).expect("read");
        assert_eq!(notes, "one\ntwo\n", "{name}");
    }
}

#[test]
fn a_read_only_volume_is_readable_and_refuses_writes_chmod_and_remounts() {
    for (name, backend) in natives() {
        let dir = host_dir();
        std::fs::write(dir.path().join("data.txt"), "data\n").expect("write");
        let spec = spec_with(vec![volume(dir.path(), "/data", false)]);
        let mut sandbox = backend.create(&spec).expect("created");
        let line = mount_line(&mut sandbox, "/data");
        for option in ["ro,", "nosuid", "nodev", "idmapped"] {
            assert!(line.contains(option), "{name}: {option} in {line}");
        }
        let (out, _) = run(&mut sandbox, "cat /data/data.txt; command -v mount");
        assert!(
            out.starts_with("data\n/"),
            "{name}: readable, and mount exists: {out}"
        );
        let attempts = [
            "echo x > /data/new",
            "echo y >> /data/data.txt",
            "chmod 600 /data/data.txt",
            "touch /data/data.txt",
            "mkdir /data/d",
            "mount -o remount,rw /data",
            "mount -o remount,bind,rw /data",
        ];
        for attempt in attempts {
            let ran = sandbox.run(&sh(attempt), Stdin::Null).expect("ran");
            assert_ne!(
                ran.outcome,
                Outcome::Exited { code: 0 },
                "{name}: {attempt}"
            );
            if !attempt.starts_with("mount") {
                let err = text(&ran.stderr);
                assert!(
                    err.contains("Read-only file system") || err.contains("Permission denied"),
                    "{name}: {attempt}: {err}"
                );
            }
        }
        let line = mount_line(&mut sandbox, "/data");
        assert!(line.contains("ro,"), "{name}: still read-only: {line}");
        sandbox.destroy().expect("destroyed");
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .collect();
        assert_eq!(entries.len(), 1, "{name}: nothing added on the host");
        let meta = std::fs::metadata(dir.path().join("data.txt")).expect("stat");
        assert_eq!(meta.mode() & 0o7777, 0o644, "{name}");
        let data = std::fs::read_to_string(dir.path().join("data.txt")).expect("read");
        assert_eq!(data, "data\n", "{name}");
    }
}

#[test]
fn other_ids_on_disk_are_nobody_inside_and_setuid_bits_and_devices_do_nothing() {
    for (name, backend) in natives() {
        let dir = host_dir();
        let theirs = dir.path().join("theirs.txt");
        std::fs::write(&theirs, "theirs\n").expect("write");
        std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).expect("chown");
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let spec = spec_with(vec![volume(dir.path(), WORKDIR, true)]);
        let mut sandbox = backend.create(&spec).expect("created");
        let (out, _) = run(&mut sandbox, "stat -c '%u %g' theirs.txt; cat theirs.txt");
        assert_eq!(out, "65534 65534\ntheirs\n", "{name}");
        for attempt in [
            "echo x >> theirs.txt",
            "chmod 666 theirs.txt",
            "chown 0 theirs.txt",
        ] {
            let ran = sandbox.run(&sh(attempt), Stdin::Null).expect("ran");
            assert_ne!(
                ran.outcome,
                Outcome::Exited { code: 0 },
                "{name}: {attempt}"
            );
        }
        let line = mount_line(&mut sandbox, WORKDIR);
        for option in ["rw,", "nosuid", "nodev", "idmapped"] {
            assert!(line.contains(option), "{name}: {option} in {line}");
        }
        // The setuid bit can be set on the sandbox's own file, but the mount ignores it (and
        // the program runs under no_new_privs, which would too). On the host it is a setuid
        // file of root's: the engine must mount volume images nosuid there as well.
        let (out, _) = run(
            &mut sandbox,
            "cp /bin/true su && chmod 4755 su && stat -c %a su && ./su && echo ran",
        );
        assert_eq!(out, "4755\nran\n", "{name}");
        let ran = sandbox
            .run(&sh("mknod null c 1 3"), Stdin::Null)
            .expect("ran");
        assert_ne!(ran.outcome, Outcome::Exited { code: 0 }, "{name}: mknod");
        sandbox.destroy().expect("destroyed");
        assert!(!dir.path().join("null").exists(), "{name}: no device node");
        let meta = std::fs::metadata(dir.path().join("su")).expect("stat");
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o4755), "{name}");
        std::fs::remove_file(dir.path().join("su")).expect("rm");
    }
}

#[test]
fn a_sandbox_without_the_volume_cannot_reach_it() {
    for (name, backend) in natives() {
        let dir = host_dir();
        std::fs::write(dir.path().join("secret.txt"), "secret\n").expect("write");
        let host_path = dir.path().display().to_string();
        let with = spec_with(vec![volume(dir.path(), "/data", true)]);
        let mut holder = backend.create(&with).expect("created");
        let mut other = backend.create(&spec_with(Vec::new())).expect("created");
        let probe = format!(
            "for p in /data {host_path} /var/tmp; do test -e $p && echo \"$p exists\"; done; \
             find / \\( -path /proc -o -path /usr -o -path /sys \\) -prune -o -name secret.txt -print"
        );
        let (out, _) = run(&mut other, &probe);
        assert!(!out.contains("exists"), "{name}: {out}");
        let (out, _) = run(
            &mut holder,
            &format!("test -e {host_path} || echo hidden; cat /data/secret.txt"),
        );
        assert_eq!(out, "hidden\nsecret\n", "{name}: only at its target");
        holder.destroy().expect("destroyed");
        other.destroy().expect("destroyed");
    }
}

#[test]
fn links_planted_in_a_workspace_volume_are_not_followed_by_job_files() {
    for (name, backend) in natives() {
        let dir = host_dir();
        let outside = host_dir();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "untouched\n").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join("host_link")).expect("symlink");
        let shadow = std::fs::read("/etc/shadow").expect("read /etc/shadow");
        let spec = spec_with(vec![volume(dir.path(), WORKDIR, true)]);
        let mut sandbox = backend.create(&spec).expect("created");
        run(
            &mut sandbox,
            "ln -s /etc/shadow shadow && ln -s .. up && ln -s / rootdir && ln -s /etc/passwd passwd",
        );
        let mut replace =
            sh("test -L shadow || test -L host_link || test -L passwd || echo regular");
        for file in ["shadow", "host_link", "passwd"] {
            replace.files.push(WorkspaceFile::new(file, "replaced\n"));
        }
        let (out, _) = run_job(&mut sandbox, &replace);
        assert_eq!(
            out, "regular\n",
            "{name}: the links were replaced, not written through"
        );
        for escape in ["up/escaped", "rootdir/escaped", "up/up/escaped"] {
            let mut job = sh("true");
            job.files.push(WorkspaceFile::new(escape, "x"));
            let refused = sandbox.run(&job, Stdin::Null);
            assert!(
                matches!(refused, Err(SandboxError::JobFile { .. })),
                "{name}: {escape}: {refused:?}"
            );
        }
        let (out, _) = run(&mut sandbox, "echo still usable");
        assert_eq!(out, "still usable\n", "{name}");
        sandbox.destroy().expect("destroyed");
        assert_eq!(
            std::fs::read("/etc/shadow").expect("read"),
            shadow,
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "untouched\n",
            "{name}"
        );
        let parent = dir.path().parent().expect("a parent");
        assert!(!parent.join("escaped").exists(), "{name}");
        assert!(!Path::new("/escaped").exists(), "{name}");
        let replaced = std::fs::symlink_metadata(dir.path().join("host_link")).expect("stat");
        assert!(
            replaced.is_file(),
            "{name}: the host's link was replaced in the volume"
        );
    }
}

#[test]
fn a_reset_keeps_volumes_and_renews_the_rest() {
    for (name, backend) in natives() {
        let (work, data) = (host_dir(), host_dir());
        // /work a volume; then /work the tmpfs beside a volume at /data.
        for (spec, kept) in [
            (
                spec_with(vec![volume(work.path(), WORKDIR, true)]),
                "/work/a",
            ),
            (
                spec_with(vec![volume(data.path(), "/data", true)]),
                "/data/a",
            ),
        ] {
            let mut sandbox = backend.create(&spec).expect("created");
            run(
                &mut sandbox,
                &format!("echo a > {kept}; echo b > /tmp/b; echo c > /work/c"),
            );
            sandbox.reset().expect("reset");
            let (out, _) = run(
                &mut sandbox,
                &format!("cat {kept}; test -e /tmp/b || echo tmp renewed; ls /work"),
            );
            let expected = if kept.starts_with(WORKDIR) {
                "a\ntmp renewed\na\nc\n"
            } else {
                "a\ntmp renewed\n"
            };
            assert_eq!(out, expected, "{name}: {kept}");
            sandbox.destroy().expect("destroyed");
        }
    }
}

#[test]
fn destroying_a_sandbox_leaves_no_mount_and_no_process_of_its_volumes() {
    for (name, backend) in natives() {
        let (rw, ro) = (host_dir(), host_dir());
        let before: Vec<Vec<String>> = [rw.path(), ro.path()].map(host_mounts_of).into();
        let spec = spec_with(vec![
            volume(rw.path(), WORKDIR, true),
            volume(ro.path(), "/data", false),
        ]);
        let mut sandbox = backend.create(&spec).expect("created");
        run(&mut sandbox, "echo written > /work/a");
        let uid = host_uid(&sandbox);
        let init = sandbox.init_pid().expect("init");
        let during: Vec<Vec<String>> = [rw.path(), ro.path()].map(host_mounts_of).into();
        assert_eq!(
            during, before,
            "{name}: the volumes never enter the host's mount table"
        );
        sandbox.destroy().expect("destroyed");
        let after: Vec<Vec<String>> = [rw.path(), ro.path()].map(host_mounts_of).into();
        assert_eq!(after, before, "{name}");
        assert!(
            !PathBuf::from(format!("/proc/{init}")).exists(),
            "{name}: init gone"
        );
        assert_eq!(
            processes_of(&BTreeSet::from([uid])),
            Vec::<String>::new(),
            "{name}"
        );
    }
    assert_eq!(our_cgroups(), Vec::<String>::new());
}

#[test]
fn bad_volumes_are_refused_and_the_trusted_backend_refuses_any() {
    let dir = host_dir();
    let host = sandbox();
    let refused = host.native().create(&spec_with(vec![volume(
        dir.path(),
        "/usr/local/data",
        true,
    )]));
    assert!(
        matches!(
            refused,
            Err(SandboxError::Plan(PlanError::VolumeTarget { .. }))
        ),
        "{refused:?}"
    );
    let missing = dir.path().join("missing");
    let refused = host
        .native()
        .create(&spec_with(vec![volume(&missing, "/data", true)]));
    assert!(
        matches!(
            refused,
            Err(SandboxError::Plan(PlanError::VolumeHost { .. }))
        ),
        "{refused:?}"
    );
    let refused = host
        .trusted()
        .create(&spec_with(vec![volume(dir.path(), "/data", true)]));
    assert!(
        matches!(
            refused,
            Err(SandboxError::Plan(PlanError::VolumesUnsupported {
                backend: "trusted"
            }))
        ),
        "{refused:?}"
    );
}
