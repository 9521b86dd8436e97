//! cgroup v1: one hierarchy per controller. warden uses memory (limit, peak, OOM kills), pids
//! (process limit, membership) and cpuacct (cpu time). Documentation/admin-guide/cgroup-v1/.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warden_core::{ByteSize, Limits};

use super::{io_err, read_keyed, read_u64, write, CgroupError, CgroupStats, Files, WARDEN_CGROUP};

/// The v1 controllers warden needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Pids,
    Memory,
    Cpuacct,
}

/// Mount points of the needed v1 hierarchies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    pub(crate) memory: Option<PathBuf>,
    pub(crate) pids: Option<PathBuf>,
    pub(crate) cpuacct: Option<PathBuf>,
}

impl Mounts {
    pub(super) fn add(&mut self, mount_point: &str, super_opts: &str) {
        for opt in super_opts.split(',') {
            let slot = match opt {
                "memory" => &mut self.memory,
                "pids" => &mut self.pids,
                "cpuacct" => &mut self.cpuacct,
                _ => continue,
            };
            slot.get_or_insert_with(|| PathBuf::from(mount_point));
        }
    }

    pub(super) fn complete(&self) -> Option<Mounts> {
        (self.memory.is_some() && self.pids.is_some() && self.cpuacct.is_some())
            .then(|| self.clone())
    }

    pub(super) fn missing(&self) -> Vec<&'static str> {
        [
            ("memory", self.memory.is_none()),
            ("pids", self.pids.is_none()),
            ("cpuacct", self.cpuacct.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }

    /// The mount points in the order `create` returns directories: pids first (its
    /// `cgroup.procs` lists every task, so it is the one read for membership), then memory,
    /// then cpuacct.
    fn ordered(&self) -> [&Path; 3] {
        fn get(p: &Option<PathBuf>) -> &Path {
            p.as_deref().unwrap_or(Path::new("/nonexistent"))
        }
        [get(&self.pids), get(&self.memory), get(&self.cpuacct)]
    }

    /// warden's parent directory in each hierarchy.
    pub(super) fn parents(&self) -> Vec<PathBuf> {
        self.ordered()
            .iter()
            .map(|root| root.join(WARDEN_CGROUP))
            .collect()
    }

    pub(super) fn dir_of(&self, dirs: &[PathBuf], controller: Controller) -> PathBuf {
        let index = match controller {
            Controller::Pids => 0,
            Controller::Memory => 1,
            Controller::Cpuacct => 2,
        };
        dirs[index].clone()
    }

    /// Creates `warden/<name>` in each hierarchy, with the limits; warden's parent cgroup of
    /// the pids hierarchy capped at `total` tasks (`total.rs`).
    pub(super) fn create(
        &self,
        name: &str,
        limits: &Limits,
        total: Option<u64>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        let mut dirs = Vec::with_capacity(3);
        for (index, root) in self.ordered().into_iter().enumerate() {
            let parent = root.join(WARDEN_CGROUP);
            if !parent.exists() {
                fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
            }
            // The pids hierarchy's: every run's tasks together stay within the bound.
            if let (0, Some(bound)) = (index, total) {
                super::total::cap(&parent, bound)?;
            }
            let dir = parent.join(name);
            if let Err(e) = fs::create_dir(&dir).map_err(io_err("creating", &dir)) {
                let _ = super::remove_dirs(&dirs);
                return Err(e);
            }
            dirs.push(dir);
        }
        if let Err(e) = apply_limits(&dirs, limits) {
            let _ = super::remove_dirs(&dirs);
            return Err(e);
        }
        Ok(dirs)
    }
}

fn apply_limits(dirs: &[PathBuf], limits: &Limits) -> Result<(), CgroupError> {
    write_limits(dirs, limits.memory, limits.max_procs)
}

/// Replaces the memory and process limits of a created cgroup.
pub(super) fn set_limits(
    mounts: &Mounts,
    dirs: &[PathBuf],
    memory: ByteSize,
    max_procs: u32,
) -> Result<(), CgroupError> {
    let _ = mounts;
    write_limits(dirs, memory, max_procs)
}

fn write_limits(
    dirs: &[PathBuf],
    memory_limit: ByteSize,
    max_procs: u32,
) -> Result<(), CgroupError> {
    let (pids, memory) = (&dirs[0], &dirs[1]);
    write(&pids.join("pids.max"), &max_procs.to_string())?;
    let bytes = memory_limit.bytes().to_string();
    // memory+swap may not drop below memory, nor memory rise above memory+swap: the order
    // depends on the direction.
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        let _ = write(&memsw, &bytes);
    }
    let limit = memory.join("memory.limit_in_bytes");
    match write(&limit, &bytes) {
        // What the group holds could not be reclaimed below the limit (`Cgroup::set_limits`
        // checks the memory that cannot be; kernel memory is not among it).
        Err(CgroupError::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
            let usage = memory.join("memory.usage_in_bytes");
            let held = fs::read_to_string(&usage).map_err(io_err("reading", &usage))?;
            return Err(CgroupError::MemoryHeld {
                limit: memory_limit,
                held: ByteSize(held.trim().parse().unwrap_or(0)),
            });
        }
        written => written?,
    }
    // Without a memory+swap limit a program could page out to swap past its limit.
    if memsw.exists() {
        write(&memsw, &bytes)?;
    }
    write_tcp_limit(memory, &bytes)
}

/// v1 charges socket buffers to a cgroup only once it has a TCP limit, and then to a counter
/// of their own (`memory.kmem.tcp.usage_in_bytes`, not in `memory.usage_in_bytes`): without
/// one, a program that filled loopback connections it never read held 753 MiB of the host's
/// memory under a 64 MiB limit. Sockets are charged from their creation on, so this is
/// written before any process joins. A limit below what sockets still hold is refused
/// (`EBUSY`: the kernel does not reclaim socket buffers), which can only be a later job's
/// lower limit while an earlier job's closed connections drain: the sandbox's limit then
/// stays until the next job's. (v2 charges socket buffers to `memory.current` with the rest.)
fn write_tcp_limit(memory: &Path, bytes: &str) -> Result<(), CgroupError> {
    let tcp = memory.join("memory.kmem.tcp.limit_in_bytes");
    if !tcp.exists() {
        return Ok(());
    }
    match write(&tcp, bytes) {
        Err(CgroupError::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {
            tracing::debug!(
                limit = bytes,
                "socket buffers above the next job's TCP limit"
            );
            Ok(())
        }
        other => other,
    }
}

pub(super) fn cpu_time(files: &Files, cpuacct: &Path) -> Result<Duration, CgroupError> {
    read_u64(files, &cpuacct.join("cpuacct.usage")).map(Duration::from_nanos)
}

/// The memory charged and the tasks alive now.
pub(super) fn current(
    files: &Files,
    mounts: &Mounts,
    dirs: &[PathBuf],
) -> Result<(ByteSize, u64), CgroupError> {
    let memory = mounts.dir_of(dirs, Controller::Memory);
    let pids = mounts.dir_of(dirs, Controller::Pids);
    Ok((
        ByteSize(read_u64(files, &memory.join("memory.usage_in_bytes"))?),
        read_u64(files, &pids.join("pids.current"))?,
    ))
}

pub(super) fn stats(
    files: &Files,
    mounts: &Mounts,
    dirs: &[PathBuf],
) -> Result<CgroupStats, CgroupError> {
    let memory = mounts.dir_of(dirs, Controller::Memory);
    Ok(CgroupStats {
        cpu_time: cpu_time(files, &mounts.dir_of(dirs, Controller::Cpuacct))?,
        peak_memory: ByteSize(read_u64(files, &memory.join("memory.max_usage_in_bytes"))?),
        oom_kills: read_keyed(files, &memory.join("memory.oom_control"), "oom_kill")?.unwrap_or(0),
        // Absent before Linux 4.x's pids.events: then nothing is counted.
        process_limit_hits: read_keyed(
            files,
            &mounts.dir_of(dirs, Controller::Pids).join("pids.events"),
            "max",
        )
        .ok()
        .flatten()
        .unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Mounts) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounts = Mounts {
            memory: Some(dir.path().join("memory")),
            pids: Some(dir.path().join("pids")),
            cpuacct: Some(dir.path().join("cpuacct")),
        };
        for root in mounts.ordered() {
            fs::create_dir_all(root).expect("mkdir");
        }
        (dir, mounts)
    }

    #[test]
    fn create_writes_the_limits_into_each_hierarchy() {
        let (_dir, mounts) = fixture();
        let limits = Limits {
            memory: ByteSize::mib(64),
            max_procs: 7,
            ..Limits::default()
        };
        let dirs = mounts.create("run-1", &limits, None).expect("created");
        assert_eq!(
            fs::read_to_string(dirs[0].join("pids.max")).expect("pids.max"),
            "7"
        );
        assert_eq!(
            fs::read_to_string(dirs[1].join("memory.limit_in_bytes")).expect("limit"),
            (64u64 << 20).to_string()
        );
        assert!(dirs[2].ends_with("cpuacct/warden/run-1"));
    }

    /// Hunt gv 1: warden's parent of the pids hierarchy is capped, so that every run's tasks
    /// together stay within the bound; the other hierarchies' parents are left alone.
    #[test]
    fn the_pids_parent_is_capped_at_the_total() {
        let (_dir, mounts) = fixture();
        let parents = mounts.parents();
        for parent in &parents {
            fs::create_dir_all(parent).expect("mkdir");
            fs::write(parent.join("pids.max"), "max\n").expect("write");
        }
        mounts
            .create("run-5", &Limits::default(), Some(16_384))
            .expect("created");
        let read = |p: &PathBuf| fs::read_to_string(p.join("pids.max")).expect("pids.max");
        assert_eq!(read(&parents[0]), "16384", "{:?}", parents[0]);
        assert_eq!(read(&parents[1]), "max\n");
        assert_eq!(read(&parents[2]), "max\n");
    }

    /// Bug hunt: without a TCP limit v1 charges no socket buffer to the cgroup.
    #[test]
    fn the_tcp_limit_follows_the_memory_limit_where_the_kernel_has_it() {
        let (_dir, mounts) = fixture();
        let limits = Limits {
            memory: ByteSize::mib(64),
            ..Limits::default()
        };
        let without = mounts.create("run-3", &limits, None).expect("created");
        let tcp = "memory.kmem.tcp.limit_in_bytes";
        assert!(!without[1].join(tcp).exists(), "not made up where absent");
        let parent = mounts.memory.clone().expect("memory").join(WARDEN_CGROUP);
        fs::create_dir(parent.join("run-4")).expect("mkdir");
        fs::write(parent.join("run-4").join(tcp), "9223372036854771712").expect("write");
        let dirs: Vec<PathBuf> = mounts.parents().iter().map(|p| p.join("run-4")).collect();
        for dir in &dirs {
            let _ = fs::create_dir(dir);
        }
        set_limits(&mounts, &dirs, ByteSize::mib(32), 8).expect("written");
        assert_eq!(
            fs::read_to_string(dirs[1].join(tcp)).expect("tcp limit"),
            (32u64 << 20).to_string()
        );
    }

    #[test]
    fn stats_read_the_v1_files() {
        let (_dir, mounts) = fixture();
        let dirs = mounts
            .create("run-2", &Limits::default(), None)
            .expect("created");
        fs::write(dirs[2].join("cpuacct.usage"), "1500000000\n").expect("write");
        fs::write(dirs[1].join("memory.max_usage_in_bytes"), "4096\n").expect("write");
        fs::write(
            dirs[1].join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("write");
        let files = Files::default();
        let first = stats(&files, &mounts, &dirs).expect("readable");
        assert_eq!(first.cpu_time, Duration::from_millis(1500));
        // The files stay open; a second read sees what they hold now.
        fs::write(
            dirs[2].join("cpuacct.usage"),
            "2500000000
",
        )
        .expect("write");
        let stats = stats(&files, &mounts, &dirs).expect("readable");
        assert_eq!(stats.cpu_time, Duration::from_millis(2500));
        assert_eq!(stats.peak_memory, ByteSize(4096));
        assert_eq!(stats.oom_kills, 2);
    }
}
