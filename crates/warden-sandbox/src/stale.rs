//! What a warden process that died without cleaning up left on the host. A process killed
//! outright (SIGKILL, the OOM killer) takes its sandboxes' processes with it (the helpers watch
//! their lifelines, the inits die with their helpers), and each helper then removes its run's
//! cgroups ([`remove_orphaned`]), having killed what was left in them; a gVisor sandbox's
//! helper its bundle and runsc's files too, a trusted run's its directory. What a helper that
//! died too leaves (a cgroup, a run directory, a bundle, and the processes of a trusted run,
//! which no pid namespace holds) stays, and the next warden process removes it, killing the
//! processes ([`sweep`], once per `Sandbox`, and every minute in a server's pool). Their names carry the pid
//! of the process that made them (`run-<pid>-<n>`); one whose process is gone is removed.

use std::fs;
use std::path::Path;

use crate::cgroup::CgroupFs;

/// Removes what processes that no longer exist left: empty run cgroups, trusted run
/// directories, gVisor bundles and runsc's files of their containers. Best effort: what cannot be removed stays (and is logged).
/// A dead trusted run's slot is marked in `slot_file` when what its uid left cannot all be
/// removed (`trusted/leftovers.rs`).
pub(crate) fn sweep(cgroups: &CgroupFs, slot_file: &Path) {
    let dead: Vec<_> = cgroups
        .parents()
        .iter()
        .flat_map(|parent| dead_runs(parent, "run-"))
        .collect();
    // What outlived a dead trusted run goes before its cgroups: while they remain, its uid slot
    // is not handed out (idmap.rs), so no new run of that uid can lose its own files to the
    // removal of the dead one's.
    for dir in &dead {
        kill_what_is_left(dir);
    }
    for dir in dead_runs(Path::new(crate::trusted::TRUSTED_RUNS), "run-") {
        remove_trusted_leftovers(&dir, slot_file);
        if let Err(e) = crate::trusted::remove_run_dir(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "removing what a dead warden left");
        }
    }
    for dir in &dead {
        remove_killing(dir);
    }
    for dir in dead_runs(Path::new(crate::gvisor::BUNDLES), "warden-run-") {
        if let Err(e) = crate::gvisor::remove_bundle(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "removing what a dead warden left");
        }
    }
    // runsc's files of a container whose `runsc run` was killed with its warden.
    for file in dead_runs(Path::new(crate::gvisor::RUNSC_ROOT), "warden-run-") {
        let _ = fs::remove_file(&file);
    }
}

/// Removes the cgroup directory `dir` of a dead process's run. Tasks left in it outlived
/// their warden and their helper, both killed outright (a trusted program that left its
/// init's process tree): they are killed first, since their uid slot stays taken until the
/// cgroup is gone (`idmap.rs`). Gives up after about a second.
fn remove_killing(dir: &Path) {
    for _ in 0..500 {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if crate::cgroup::kill_tasks_of(dir) {
                    tracing::warn!(dir = %dir.display(), "killing what outlived a dead warden's run");
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            _ => return,
        }
    }
    tracing::warn!(dir = %dir.display(), "a dead warden's run cgroup cannot be removed");
}

/// Kills the tasks of the dead run's cgroup directory `dir` until none is left (about a second
/// at most).
fn kill_what_is_left(dir: &Path) {
    for _ in 0..500 {
        if !crate::cgroup::kill_tasks_of(dir) {
            return;
        }
        tracing::warn!(dir = %dir.display(), "killing what outlived a dead warden's run");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// What the uid of the dead trusted run whose directory is `dir` left in the host's shared
/// directories (its processes killed with its warden and helper, nothing removed it): the uid
/// is the owner of the run directory's `work/`.
fn remove_trusted_leftovers(dir: &Path, slot_file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(work) = fs::symlink_metadata(dir.join("work")) else {
        return;
    };
    let uid = work.uid();
    if !(crate::HOST_ID_BASE..crate::HOST_ID_BASE + crate::SLOTS).contains(&uid) {
        return;
    }
    let shared = crate::trusted::leftovers::shared_dirs();
    let shared: Vec<&Path> = shared.iter().map(std::path::PathBuf::as_path).collect();
    if let Err(e) = crate::trusted::leftovers::remove_or_pass_over(&shared, uid, slot_file) {
        tracing::warn!(dir = %dir.display(), uid, error = %e, "what a dead trusted run left");
    }
}

/// The entries of `parent` named `<prefix><pid>-<n>` whose pid is not a live process.
fn dead_runs(parent: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| made_by_a_dead_process(name, prefix))
        })
        .map(|entry| entry.path())
        .collect()
}

/// Whether `name` is `<prefix><pid>-<n>` and `pid` is not a live process.
fn made_by_a_dead_process(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(is_dead)
}

/// Whether the process `pid` is gone, a zombie, or exiting (`PF_EXITING`, set before its
/// descriptors close: a helper that sees its lifeline cut by its owner's death sees it).
/// proc(5): `/proc/PID/stat`'s third field is the state, its ninth the flags.
pub(crate) fn is_dead(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().copied().unwrap_or("");
    let flags = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0);
    matches!(state, "Z" | "X") || flags & PF_EXITING != 0
}

/// Whether the process that made the run's cgroups (`dirs`, named after its pid) is gone.
pub(crate) fn orphaned(dirs: &[std::path::PathBuf]) -> bool {
    !dirs.is_empty()
        && dirs.iter().all(|dir| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| made_by_a_dead_process(name, "run-"))
        })
}

/// A sandbox helper's last act, once its init is gone: when the process that made the run's
/// cgroups (`dirs`, named after its pid) died without letting the sandbox go (SIGKILL, the
/// OOM killer), removes them, so that nothing of the run waits for the next warden's sweep.
/// The cgroups' last tasks may still be exiting: a busy cgroup is tried again for up to a
/// second. Its owner alive, nothing is done: the owner removes them after reading them.
pub(crate) fn remove_orphaned(dirs: &[std::path::PathBuf]) {
    if !orphaned(dirs) {
        return;
    }
    for dir in dirs {
        for _ in 0..1000 {
            match fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                _ => break,
            }
        }
    }
    remove_empty_siblings(dirs);
}

/// The other empty cgroups of the same dead owner (`run-<pid>-*` beside `dirs`): a sandbox it
/// had let go, ending while the next one ran (a compile stage's, while the program ran), whose
/// helper exited before the owner died and so removed nothing. One still in use has its own
/// helper, which removes it; rmdir leaves it alone.
fn remove_empty_siblings(dirs: &[std::path::PathBuf]) {
    let Some(prefix) = dirs
        .first()
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('-'))
        .map(|(owner, _)| format!("{owner}-"))
    else {
        return;
    };
    for parent in dirs.iter().filter_map(|d| d.parent()) {
        let Ok(entries) = fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let ours = name
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && made_by_a_dead_process(n, "run-"));
            if ours {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_dead_and_this_process_is_not() {
        assert!(!is_dead(std::process::id()));
        assert!(is_dead(4_194_305), "above pid_max: never alive");
        let mut child = std::process::Command::new("/bin/true")
            .spawn()
            .expect("a child");
        // Not reaped yet: a zombie once it exited.
        let mut zombie = false;
        for _ in 0..2000 {
            zombie = is_dead(child.id());
            if zombie {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(std::path::Path::new(&format!("/proc/{}", child.id())).exists());
        assert!(zombie);
        child.wait().expect("reaped");
    }

    #[test]
    fn only_entries_of_dead_processes_are_chosen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alive = std::process::id();
        for name in [
            format!("run-{alive}-1"),
            "run-4194305-2".to_owned(), // above pid_max: never alive
            "other-4194305-3".to_owned(),
            "run-x-4".to_owned(),
        ] {
            fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        let dead: Vec<String> = dead_runs(dir.path(), "run-")
            .iter()
            .map(|p| {
                p.file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(dead, ["run-4194305-2"]);
    }
}
