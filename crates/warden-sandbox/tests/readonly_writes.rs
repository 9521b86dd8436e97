//! Issue 13: writes to read-only paths are recorded with the run
//! (`SandboxRun::readonly_writes`): the init looks at every call that writes to a named path
//! and lets it run, so the program meets the kernel's refusal as before, and writes to the
//! writable paths (and to devices such as `/dev/null`) are not recorded. Privileged: runs as
//! root. Uses the host's /usr/bin/python3 by absolute path inside the sandbox.

mod support;

use std::path::Path;

use support::{out, plan, prerequisite, sandbox, TRIES};
use warden_core::seccomp_policy::DenySeverity;
use warden_core::{Limits, Outcome};
use warden_sandbox::{ReadOnlyWrites, SandboxRun, Stdin};

/// Runs `script` with `/usr/bin/python3` in a native sandbox, `None` without python.
fn python(script: &str) -> Option<SandboxRun> {
    if !prerequisite(Path::new("/usr/bin/python3").exists(), "/usr/bin/python3") {
        return None;
    }
    let mut p = plan(&["/usr/bin/python3", "-c", script]);
    p.limits = Limits::default();
    let run = sandbox()
        .run(&p, Stdin::Null)
        .expect("warden ran the program");
    assert_eq!(
        run.outcome,
        Outcome::Exited { code: 0 },
        "stdout: {}\nstderr: {}",
        out(&run),
        String::from_utf8_lossy(&run.stderr)
    );
    Some(run)
}

/// The attempts' `call path` pairs.
fn attempts(writes: &ReadOnlyWrites) -> Vec<String> {
    writes
        .attempts
        .iter()
        .map(|a| format!("{} {}", a.call, a.path))
        .collect()
}

#[test]
fn writes_to_read_only_paths_fail_as_before_and_are_recorded() {
    let Some(run) = python(&format!(
        r#"{TRIES}
usr = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
tries("create", lambda: os.open("/usr/planted", os.O_WRONLY | os.O_CREAT))
tries("relative", lambda: os.open("planted", os.O_WRONLY | os.O_CREAT, dir_fd=usr))
tries("mkdir", lambda: os.mkdir("/etc/planted"))
tries("fchmod", lambda: os.chmod(usr, 0o777))
tries("unlink missing", lambda: os.unlink("/usr/nothing"))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def empty_path():
    # fchownat(fd, "", -1, -1, AT_EMPTY_PATH): the descriptor itself.
    if libc.fchownat(usr, b"", -1, -1, 0x1000) != 0:
        raise OSError(ctypes.get_errno(), "fchownat")
tries("empty path", empty_path)
"#
    )) else {
        return;
    };
    assert_eq!(
        out(&run),
        "create EROFS\nrelative EROFS\nmkdir EROFS\nfchmod EROFS\nunlink missing EROFS\n\
         empty path EROFS\n"
    );
    let writes = run.readonly_writes.expect("the writes are recorded");
    assert_eq!(writes.count, 6, "{writes:?}");
    assert_eq!(
        attempts(&writes),
        [
            "openat /usr/planted",
            "openat /usr/planted",
            "mkdir /etc/planted"
        ]
    );
    // /etc is one of the sandbox's system surfaces.
    assert_eq!(writes.severity, DenySeverity::Medium);
}

#[test]
fn writes_that_the_kernel_lets_through_or_refuses_otherwise_are_not_recorded() {
    let Some(run) = python(&format!(
        r#"{TRIES}
tries("workspace", lambda: os.close(os.open("/work/f", os.O_WRONLY | os.O_CREAT)))
tries("tmp", lambda: os.mkdir("/tmp/d"))
tries("rename in tmp", lambda: os.rename("/tmp/d", "/tmp/e"))
tries("device", lambda: os.close(os.open("/dev/null", os.O_WRONLY)))
tries("read", lambda: os.close(os.open("/usr", os.O_RDONLY)))
tries("creat of an existing file to read", lambda: os.close(os.open("/usr/bin/python3", os.O_RDONLY | os.O_CREAT)))
tries("existing", lambda: os.mkdir("/usr/lib"))
tries("missing parent", lambda: os.mkdir("/usr/nowhere/d"))
"#
    )) else {
        return;
    };
    assert_eq!(
        out(&run),
        "workspace ok\ntmp ok\nrename in tmp ok\ndevice ok\nread ok\n\
         creat of an existing file to read ok\nexisting EEXIST\nmissing parent ENOENT\n"
    );
    assert_eq!(run.readonly_writes, None);
}

#[test]
fn a_childs_writes_are_recorded_with_their_count_and_a_storm_finishes() {
    // 20000 refused writes by a child, 20000 allowed ones: the run finishes, every refused
    // write is counted, three are kept, and the allowed ones are not counted.
    let Some(run) = python(
        r#"
import os, subprocess
subprocess.run(["/usr/bin/python3", "-c", """
import os
for i in range(20000):
    try:
        os.open("/usr/storm", os.O_WRONLY | os.O_CREAT)
    except OSError:
        pass
    os.close(os.open("/tmp/calm", os.O_WRONLY | os.O_CREAT))
print("done")
"""], check=True)
"#,
    ) else {
        return;
    };
    assert_eq!(out(&run), "done\n");
    let writes = run.readonly_writes.expect("the writes are recorded");
    assert_eq!(writes.count, 20000);
    assert_eq!(attempts(&writes), ["openat /usr/storm"; 3]);
    assert_eq!(writes.severity, DenySeverity::Low);
}

/// A program cannot hide its writes from the init by making itself non-dumpable (which
/// takes away the ptrace access other processes of its user have to its memory).
#[test]
fn a_non_dumpable_program_is_recorded_too() {
    let Some(run) = python(&format!(
        r#"{TRIES}
import ctypes
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
tries("hidden", lambda: os.mkdir("/usr/hidden"))
"#
    )) else {
        return;
    };
    assert_eq!(out(&run), "hidden EROFS\n");
    let writes = run.readonly_writes.expect("the write is recorded");
    assert_eq!(attempts(&writes), ["mkdir /usr/hidden"]);
}

#[test]
fn a_path_is_kept_short_and_printable() {
    let Some(run) = python(&format!(
        r#"{TRIES}
tries("long", lambda: os.mkdir("/usr/" + "x" * 250))
tries("odd", lambda: os.mkdir("/usr/a\nb"))
"#
    )) else {
        return;
    };
    assert_eq!(out(&run), "long EROFS\nodd EROFS\n");
    let writes = run.readonly_writes.expect("the writes are recorded");
    let [long, odd] = &writes.attempts[..] else {
        panic!("{writes:?}")
    };
    assert_eq!(long.path, format!("/usr/{}", "x".repeat(195)));
    assert_eq!(odd.path, "/usr/a?b");
}

#[test]
fn an_ordinary_program_records_nothing() {
    let run = support::sh(
        "echo hi > /tmp/x && cat /tmp/x > /dev/null && mkdir -p /work/a/b && echo ok",
        Limits::default(),
    );
    assert_eq!(out(&run), "ok\n");
    assert_eq!(run.readonly_writes, None);
}
