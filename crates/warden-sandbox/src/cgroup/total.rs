//! The bound on the tasks of all of warden's sandboxes together: `pids.max` of warden's parent
//! cgroup (`warden/` of the pids hierarchy on v1, of the unified one on v2), which the kernel
//! enforces on every run's cgroup below it. Each sandbox has its own limit, but a gVisor
//! sandbox's runtime may keep thousands of host threads (`gvisor.rs`, `runtime_pids`: up to a
//! quarter of `kernel.pid_max`), so a few isolated sessions or runs at once could otherwise
//! take every pid of the host (Hunt gv 1). Runs in the parent, when it creates a run's
//! cgroup. The kernel's limits are read from a root that is a parameter, so the decision is
//! tested on fixture files.

use std::fs;
use std::path::Path;

use super::{io_err, write, CgroupError};

/// The share of the host's tasks all of warden's sandboxes may hold together: half, so that
/// the host's own services (and warden's server) keep the other half whatever the sandboxes do.
const SHARE_DIVISOR: u64 = 2;

/// The most tasks warden's sandboxes may hold together on a host whose `kernel/pid_max` and
/// `kernel/threads-max` are under `proc_sys` (`/proc/sys`): half of the lower (a task takes
/// a pid and counts against `threads-max`); `None` when neither can be read.
pub(crate) fn bound(proc_sys: &Path) -> Option<u64> {
    let read = |name: &str| {
        fs::read_to_string(proc_sys.join("kernel").join(name))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    let host = match (read("pid_max"), read("threads-max")) {
        (Some(pids), Some(threads)) => pids.min(threads),
        (one, other) => one.or(other)?,
    };
    Some(host / SHARE_DIVISOR)
}

/// The bound of this host (`/proc/sys`), read once per process: the kernel's limits do not
/// change under a running warden often enough to read them per run.
pub(crate) fn host_bound() -> Option<u64> {
    static BOUND: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BOUND.get_or_init(|| bound(Path::new("/proc/sys")))
}

/// Caps `pids.max` of warden's parent cgroup `parent` at `bound`, unless it is already at or
/// below it: an operator's lower value stays, and nothing above `parent` (not warden's) is
/// touched. A parent without the file (v2 before its `pids` controller is enabled) is left.
pub(crate) fn cap(parent: &Path, bound: u64) -> Result<(), CgroupError> {
    let file = parent.join("pids.max");
    let current = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("reading", &file)(e)),
    };
    let within = current
        .trim()
        .parse::<u64>()
        .is_ok_and(|limit| limit <= bound);
    if within {
        return Ok(());
    }
    write(&file, &bound.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(pid_max: Option<&str>, threads_max: Option<&str>) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir(root.path().join("kernel")).expect("kernel/");
        for (name, value) in [("pid_max", pid_max), ("threads-max", threads_max)] {
            if let Some(value) = value {
                fs::write(root.path().join("kernel").join(name), value).expect("write");
            }
        }
        root
    }

    #[test]
    fn the_bound_is_half_of_the_lower_kernel_limit() {
        let bound_of = |pids, threads| bound(kernel(pids, threads).path());
        assert_eq!(bound_of(Some("32768\n"), Some("192735\n")), Some(16_384));
        // A large pid_max: threads-max is reached first.
        assert_eq!(bound_of(Some("4194304\n"), Some("192735\n")), Some(96_367));
        assert_eq!(bound_of(Some("32768\n"), None), Some(16_384));
        assert_eq!(bound_of(None, Some("1000\n")), Some(500));
        assert_eq!(bound_of(None, None), None);
        assert_eq!(bound_of(Some("many"), None), None);
    }

    #[test]
    fn the_parent_is_capped_and_a_lower_limit_kept() {
        let parent = tempfile::tempdir().expect("tempdir");
        let file = parent.path().join("pids.max");
        let capped = |before: &str| {
            fs::write(&file, before).expect("write");
            cap(parent.path(), 16_384).expect("capped");
            fs::read_to_string(&file).expect("read")
        };
        // Hunt gv 1: unbounded, every sandbox's tasks together could take the host's pids.
        assert_eq!(capped("max\n"), "16384");
        assert_eq!(capped("50000\n"), "16384");
        // An operator's lower value stays.
        assert_eq!(capped("1000\n"), "1000\n");
        assert_eq!(capped("16384\n"), "16384\n");
        // No file (v2 without the pids controller yet): nothing written.
        fs::remove_file(&file).expect("remove");
        cap(parent.path(), 16_384).expect("nothing to cap");
        assert!(!file.exists());
    }
}
