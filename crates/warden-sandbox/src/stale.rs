//! What a warden process that died without cleaning up left on the host, removed by the next
//! one. A process killed outright (SIGKILL, the OOM killer) takes its sandboxes' processes with
//! it (the helpers watch their lifelines, the inits die with their helpers), but the empty
//! cgroup directories, a trusted run's directory and a gVisor bundle stay. Their names carry the
//! pid of the process that made them (`run-<pid>-<n>`); one whose process is gone is removed.
//! Runs in the parent, once per `Sandbox`.

use std::fs;
use std::path::Path;

use crate::cgroup::CgroupFs;

/// Removes what processes that no longer exist left: empty run cgroups, trusted run
/// directories and gVisor bundles. Best effort: what cannot be removed stays (and is logged).
pub(crate) fn sweep(cgroups: &CgroupFs) {
    for parent in cgroups.parents() {
        for dir in dead_runs(&parent, "run-") {
            // rmdir fails on a cgroup that still has tasks: those are left alone.
            let _ = fs::remove_dir(&dir);
        }
    }
    for dir in dead_runs(Path::new(crate::trusted::TRUSTED_RUNS), "run-") {
        remove_tree(&dir);
    }
    for dir in dead_runs(Path::new(crate::gvisor::BUNDLES), "warden-run-") {
        let _ = nix::mount::umount2(&dir.join("work"), nix::mount::MntFlags::MNT_DETACH);
        remove_tree(&dir);
    }
}

fn remove_tree(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "removing what a dead warden left");
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
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
