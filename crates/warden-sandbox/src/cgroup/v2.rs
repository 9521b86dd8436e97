//! cgroup v2: one unified hierarchy. warden enables memory, pids and cpu for its subtree and
//! reads `cpu.stat`, `memory.peak` and `memory.events`. Documentation/admin-guide/cgroup-v2.rst.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warden_core::{ByteSize, Limits};

use super::{io_err, read_keyed, read_u64, write, CgroupError, CgroupStats, Files, WARDEN_CGROUP};

const NEEDED: [&str; 3] = ["memory", "pids", "cpu"];

/// Controllers the root of the unified hierarchy does not offer.
pub(super) fn missing_controllers(root: &Path) -> Vec<&'static str> {
    let offered = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    NEEDED
        .into_iter()
        .filter(|c| !offered.split_whitespace().any(|o| o == *c))
        .collect()
}

/// Creates `<root>/warden/<name>` with the controllers delegated down to it; `warden/` capped
/// at `total` tasks (`total.rs`).
pub(super) fn create(
    root: &Path,
    name: &str,
    limits: &Limits,
    total: Option<u64>,
) -> Result<PathBuf, CgroupError> {
    let parent = root.join(WARDEN_CGROUP);
    if !parent.exists() {
        fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
    }
    let enable = "+memory +pids +cpu";
    for dir in [root, parent.as_path()] {
        let control = dir.join("cgroup.subtree_control");
        let current = fs::read_to_string(&control).unwrap_or_default();
        if NEEDED
            .iter()
            .any(|c| !current.split_whitespace().any(|o| o == *c))
        {
            write(&control, enable)?;
        }
    }
    // Every run's tasks together stay within the bound (`warden/pids.max` exists once the
    // root delegates `pids`, just above).
    if let Some(bound) = total {
        super::total::cap(&parent, bound)?;
    }
    let dir = parent.join(name);
    fs::create_dir(&dir).map_err(io_err("creating", &dir))?;
    if let Err(e) = apply_limits(&dir, limits) {
        let _ = fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// Replaces the memory and process limits of a created cgroup.
pub(super) fn set_limits(dir: &Path, memory: ByteSize, max_procs: u32) -> Result<(), CgroupError> {
    write(&dir.join("pids.max"), &max_procs.to_string())?;
    write(&dir.join("memory.max"), &memory.bytes().to_string())
}

fn apply_limits(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    set_limits(dir, limits.memory, limits.max_procs)?;
    let swap = dir.join("memory.swap.max");
    if swap.exists() {
        write(&swap, "0")?;
    }
    // On OOM, kill the whole group rather than one task, so no half-dead tree lingers.
    let group = dir.join("memory.oom.group");
    if group.exists() {
        write(&group, "1")?;
    }
    Ok(())
}

pub(super) fn cpu_time(files: &Files, dir: &Path) -> Result<Duration, CgroupError> {
    let path = dir.join("cpu.stat");
    let usec = read_keyed(files, &path, "usage_usec")?.ok_or_else(|| CgroupError::Parse {
        path: path.clone(),
        contents: "no usage_usec".to_owned(),
    })?;
    Ok(Duration::from_micros(usec))
}

/// The memory charged and the tasks alive now.
pub(super) fn current(files: &Files, dir: &Path) -> Result<(ByteSize, u64), CgroupError> {
    Ok((
        ByteSize(read_u64(files, &dir.join("memory.current"))?),
        read_u64(files, &dir.join("pids.current"))?,
    ))
}

pub(super) fn stats(files: &Files, dir: &Path) -> Result<CgroupStats, CgroupError> {
    // memory.peak is Linux 5.19's; before, the charge now is the best there is.
    let peak = match read_u64(files, &dir.join("memory.peak")) {
        Err(CgroupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            read_u64(files, &dir.join("memory.current"))?
        }
        peak => peak?,
    };
    Ok(CgroupStats {
        cpu_time: cpu_time(files, dir)?,
        peak_memory: ByteSize(peak),
        oom_kills: read_keyed(files, &dir.join("memory.events"), "oom_kill")?.unwrap_or(0),
        process_limit_hits: read_keyed(files, &dir.join("pids.events"), "max")
            .ok()
            .flatten()
            .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_delegates_controllers_and_writes_limits() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::write(root.path().join("cgroup.subtree_control"), "").expect("write");
        fs::create_dir(root.path().join(WARDEN_CGROUP)).expect("mkdir");
        fs::write(
            root.path()
                .join(WARDEN_CGROUP)
                .join("cgroup.subtree_control"),
            "",
        )
        .expect("write");
        fs::write(root.path().join(WARDEN_CGROUP).join("pids.max"), "max\n").expect("write");
        let dir = create(
            root.path(),
            "run-1",
            &Limits {
                max_procs: 9,
                ..Limits::default()
            },
            Some(16_384),
        )
        .expect("created");
        // Hunt gv 1: every run's tasks together stay within the bound.
        assert_eq!(
            fs::read_to_string(root.path().join(WARDEN_CGROUP).join("pids.max")).expect("read"),
            "16384"
        );
        assert_eq!(
            fs::read_to_string(root.path().join("cgroup.subtree_control")).expect("read"),
            "+memory +pids +cpu"
        );
        assert_eq!(fs::read_to_string(dir.join("pids.max")).expect("read"), "9");
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).expect("read"),
            Limits::default().memory.bytes().to_string()
        );
    }

    #[test]
    fn stats_read_the_v2_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\n",
        )
        .expect("write");
        fs::write(dir.path().join("memory.peak"), "8192\n").expect("write");
        fs::write(dir.path().join("memory.events"), "oom 1\noom_kill 1\n").expect("write");
        let read = stats(&Files::default(), dir.path()).expect("readable");
        assert_eq!(read.cpu_time, Duration::from_micros(2500));
        assert_eq!(read.peak_memory, ByteSize(8192));
        assert_eq!(read.oom_kills, 1);
        // Before Linux 5.19 there is no memory.peak: the charge now stands in.
        fs::remove_file(dir.path().join("memory.peak")).expect("remove");
        fs::write(
            dir.path().join("memory.current"),
            "4096
",
        )
        .expect("write");
        let read = stats(&Files::default(), dir.path()).expect("readable");
        assert_eq!(read.peak_memory, ByteSize(4096));
    }
}
