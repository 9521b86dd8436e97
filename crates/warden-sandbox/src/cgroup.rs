//! Control groups: one per execution, holding the sandbox's whole process tree, limiting
//! memory and pids, accounting cpu, and killing the tree at the end. Supports cgroup v1 (one
//! hierarchy per controller) and v2 (unified), detected at start from `/proc/self/mountinfo`.
//!
//! Runs in the parent. The filesystem roots are parameters so the decisions can be tested on a
//! directory of fixture files. cgroups(7), Documentation/admin-guide/cgroup-v2.rst.

mod total;
mod v1;
mod v2;

use std::collections::hash_map::{Entry, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use warden_core::{ByteSize, Limits};

/// Name of the parent cgroup under which warden creates one child per execution.
pub const WARDEN_CGROUP: &str = "warden";

/// A cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No usable hierarchy has the controllers warden needs.
    #[error("no cgroup hierarchy provides the controllers {missing} (needed for the memory, process and cpu limits)")]
    Unsupported {
        /// The missing controllers.
        missing: String,
    },
    /// Reading or writing a cgroup file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A memory limit below what the group holds and cannot give back without swap (its
    /// processes' memory, its tmpfs files): the kernel cannot meet it.
    #[error(
        "the group holds {held} of memory that it cannot give back, more than the limit {limit}"
    )]
    MemoryHeld {
        /// The limit asked for.
        limit: ByteSize,
        /// What the group held.
        held: ByteSize,
    },
    /// A cgroup file held something unexpected.
    #[error("unexpected contents in {path}: {contents:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        contents: String,
    },
}

pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Which cgroup layout this host offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupFs {
    /// cgroup v1: a mount point per controller.
    V1(v1::Mounts),
    /// cgroup v2: the unified hierarchy's mount point.
    V2(PathBuf),
}

/// How the helper puts the sandbox's init into its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum CgroupJoin {
    /// The helper writes "0" into each `enter` file before cloning the init (which is born
    /// inside), then into each `leave` file (warden's parent cgroups).
    MoveHelper {
        enter: Vec<PathBuf>,
        leave: Vec<PathBuf>,
    },
    /// The helper writes the init's pid into each `cgroup.procs` file after cloning it.
    WriteInitPid { procs: Vec<PathBuf> },
}

impl CgroupJoin {
    /// The run's cgroup directories (one per hierarchy).
    pub(crate) fn directories(&self) -> Vec<PathBuf> {
        let files = match self {
            Self::MoveHelper { enter, .. } => enter,
            Self::WriteInitPid { procs } => procs,
        };
        files
            .iter()
            .filter_map(|file| file.parent().map(Path::to_path_buf))
            .collect()
    }
}

/// What the kernel accounted for one cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupStats {
    /// CPU time of every task that was in the group.
    pub cpu_time: Duration,
    /// Highest memory charge.
    pub peak_memory: ByteSize,
    /// How many tasks the OOM killer killed in the group.
    pub oom_kills: u64,
    /// How many forks and clones the process limit refused (`pids.events`, `max`): a fork
    /// storm, or a program that needed more processes than it was given.
    pub process_limit_hits: u64,
}

/// Reads a cgroup's current memory, tasks and cpu time without owning it; reads fail once the
/// group is gone.
#[derive(Debug)]
pub struct CgroupReader {
    group: Cgroup,
}

impl Clone for CgroupReader {
    fn clone(&self) -> Self {
        self.group.reader()
    }
}

impl CgroupReader {
    /// The memory charged and the tasks alive now.
    pub fn current(&self) -> Result<(ByteSize, u64), CgroupError> {
        self.group.current()
    }

    /// CPU time used so far.
    pub fn cpu_time(&self) -> Result<Duration, CgroupError> {
        self.group.cpu_time()
    }
}

/// One execution's cgroup (a directory per hierarchy on v1, one on v2).
#[derive(Debug)]
pub struct Cgroup {
    layout: CgroupFs,
    dirs: Vec<PathBuf>,
    removed: bool,
    files: Files,
}

impl CgroupFs {
    /// Detects the layout from this process's mount table.
    pub fn detect() -> Result<Self, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(path).map_err(io_err("reading", path))?;
        Self::from_mountinfo(&text)
    }

    /// Chooses v1 when memory, pids and cpuacct each have a v1 hierarchy; otherwise v2 when the
    /// unified hierarchy offers memory, pids and cpu.
    pub fn from_mountinfo(text: &str) -> Result<Self, CgroupError> {
        let mut v2_root = None;
        let mut v1 = v1::Mounts::default();
        for line in text.lines() {
            let Some((mount_point, fstype, super_opts)) = parse_mountinfo_line(line) else {
                continue;
            };
            match fstype {
                "cgroup2" => v2_root = v2_root.or(Some(PathBuf::from(mount_point))),
                "cgroup" => v1.add(mount_point, super_opts),
                _ => {}
            }
        }
        if let Some(mounts) = v1.complete() {
            return Ok(CgroupFs::V1(mounts));
        }
        if let Some(root) = v2_root {
            let missing = v2::missing_controllers(&root);
            if missing.is_empty() {
                return Ok(CgroupFs::V2(root));
            }
            return Err(CgroupError::Unsupported {
                missing: missing.join(", "),
            });
        }
        Err(CgroupError::Unsupported {
            missing: v1.missing().join(", "),
        })
    }

    /// `v1` or `v2`, for reports.
    pub fn version(&self) -> &'static str {
        match self {
            CgroupFs::V1(_) => "v1",
            CgroupFs::V2(_) => "v2",
        }
    }

    /// warden's parent cgroup directories (`warden/` in each hierarchy).
    pub(crate) fn parents(&self) -> Vec<PathBuf> {
        match self {
            CgroupFs::V1(mounts) => mounts.parents(),
            CgroupFs::V2(root) => vec![root.join(WARDEN_CGROUP)],
        }
    }

    /// Creates the cgroup `warden/<name>` with the memory and pids limits applied, and caps
    /// warden's parent cgroup at half of the host's tasks (`cgroup/total.rs`): all of warden's
    /// sandboxes together never take every pid of the host.
    pub fn create(&self, name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let total = total::host_bound();
        let dirs = match self {
            CgroupFs::V1(mounts) => mounts.create(name, limits, total)?,
            CgroupFs::V2(root) => vec![v2::create(root, name, limits, total)?],
        };
        Ok(Cgroup {
            layout: self.clone(),
            dirs,
            removed: false,
            files: Files::default(),
        })
    }
}

/// Returns (mount point, fstype, super options) of one mountinfo line (proc(5)).
fn parse_mountinfo_line(line: &str) -> Option<(&str, &str, &str)> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    let _source = after.next()?;
    Some((mount_point, fstype, after.next().unwrap_or("")))
}

impl Cgroup {
    /// Its name, unique among the runs of this host (`run-<pid>-<n>`).
    pub(crate) fn name(&self) -> String {
        self.dirs
            .first()
            .and_then(|d| d.file_name())
            .map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// The `cgroup.procs` files listing this cgroup's processes.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The file counting the group's cpu time (v1 `cpuacct.usage`, v2 `cpu.stat`). The helper
    /// opens it for the sandbox's init, which reads it just before it reports `Ready`: the
    /// count that a first job sent during the build starts from (`parse_cpu_counter`).
    pub(crate) fn cpu_counter(&self) -> PathBuf {
        match &self.layout {
            CgroupFs::V1(mounts) => mounts
                .dir_of(&self.dirs, v1::Controller::Cpuacct)
                .join("cpuacct.usage"),
            CgroupFs::V2(_) => self.dirs[0].join("cpu.stat"),
        }
    }

    /// How the sandbox's init gets into this cgroup.
    pub(crate) fn join(&self) -> CgroupJoin {
        match self.layout {
            // Writing another process's pid to cgroup.procs takes the global
            // cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period
            // (5-25 ms here, docs/BENCHMARKS.md). A single-threaded process writing "0" to v1's
            // `tasks` moves only itself and skips that lock. So the helper steps in, clones the
            // init inside, and steps out into warden's own parent cgroup.
            CgroupFs::V1(_) => CgroupJoin::MoveHelper {
                enter: self.dirs.iter().map(|d| d.join("tasks")).collect(),
                leave: self
                    .dirs
                    .iter()
                    .filter_map(|d| d.parent())
                    .map(|p| p.join("tasks"))
                    .collect(),
            },
            CgroupFs::V2(_) => CgroupJoin::WriteInitPid {
                procs: self.procs_files(),
            },
        }
    }

    /// CPU time used so far.
    pub fn cpu_time(&self) -> Result<Duration, CgroupError> {
        match &self.layout {
            CgroupFs::V1(mounts) => v1::cpu_time(
                &self.files,
                &mounts.dir_of(&self.dirs, v1::Controller::Cpuacct),
            ),
            CgroupFs::V2(_) => v2::cpu_time(&self.files, &self.dirs[0]),
        }
    }

    /// The memory charged and the tasks alive at this moment (live monitoring).
    pub fn current(&self) -> Result<(ByteSize, u64), CgroupError> {
        match &self.layout {
            CgroupFs::V1(mounts) => v1::current(&self.files, mounts, &self.dirs),
            CgroupFs::V2(_) => v2::current(&self.files, &self.dirs[0]),
        }
    }

    /// A handle that reads the group's current use from any thread, while it exists.
    pub fn reader(&self) -> CgroupReader {
        CgroupReader {
            group: Cgroup {
                layout: self.layout.clone(),
                dirs: self.dirs.clone(),
                // Never removes anything: only `current` and `cpu_time` are reachable.
                removed: true,
                files: Files::default(),
            },
        }
    }

    /// The group's accounting so far.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        match &self.layout {
            CgroupFs::V1(mounts) => v1::stats(&self.files, mounts, &self.dirs),
            CgroupFs::V2(_) => v2::stats(&self.files, &self.dirs[0]),
        }
    }

    /// Replaces the memory and process limits (a live sandbox's next job may ask for less). A
    /// memory limit below what the group holds and cannot give back is refused before anything
    /// is written ([`CgroupError::MemoryHeld`]): v1 would refuse it (`EBUSY`), and v2 would
    /// reclaim, then kill in the group to meet it (cgroup-v2.rst, `memory.max`), the sandbox's
    /// init with the rest (`memory.oom.group`).
    pub(crate) fn set_limits(&self, memory: ByteSize, max_procs: u32) -> Result<(), CgroupError> {
        let held = self.held_memory()?;
        if held > memory {
            return Err(CgroupError::MemoryHeld {
                limit: memory,
                held,
            });
        }
        match &self.layout {
            CgroupFs::V1(mounts) => v1::set_limits(mounts, &self.dirs, memory, max_procs),
            CgroupFs::V2(_) => v2::set_limits(&self.dirs[0], memory, max_procs),
        }
    }

    /// The memory the group holds that no reclaim gives back without swap: its processes'
    /// anonymous memory and its shared memory, which holds the files of its tmpfs mounts (a
    /// sandbox's `/tmp` and `/work`). The page cache of files read is left out: the kernel
    /// reclaims it to meet a lower limit.
    pub(crate) fn held_memory(&self) -> Result<ByteSize, CgroupError> {
        let (stat, keys) = match &self.layout {
            // The `total_` counters include child groups (gVisor may make some).
            CgroupFs::V1(mounts) => (
                mounts
                    .dir_of(&self.dirs, v1::Controller::Memory)
                    .join("memory.stat"),
                ["total_rss", "total_shmem"],
            ),
            CgroupFs::V2(_) => (self.dirs[0].join("memory.stat"), ["anon", "shmem"]),
        };
        let mut held = 0u64;
        for key in keys {
            held = held.saturating_add(read_keyed(&self.files, &stat, key)?.unwrap_or(0));
        }
        Ok(ByteSize(held))
    }

    /// Restarts the memory peak from the current charge, so the next job's peak is its own
    /// (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` since Linux 6.12; on an older v2 the
    /// peak stays the sandbox's).
    pub(crate) fn reset_peak(&self) {
        let file = match &self.layout {
            CgroupFs::V1(mounts) => mounts
                .dir_of(&self.dirs, v1::Controller::Memory)
                .join("memory.max_usage_in_bytes"),
            CgroupFs::V2(_) => self.dirs[0].join("memory.peak"),
        };
        let _ = self.files.write(&file, "0");
    }

    /// Kills every task in the cgroup. Each pid is pinned with a pidfd and checked to still be
    /// in this cgroup before the signal, so a recycled pid outside is never hit.
    pub fn kill_all(&self) {
        if let CgroupFs::V2(_) = self.layout {
            if fs::write(self.dirs[0].join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                kill_if_member(pid, &self.dirs);
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn pids(&self) -> Vec<Pid> {
        let Some(procs) = self.procs_files().into_iter().next() else {
            return Vec::new();
        };
        fs::read_to_string(procs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .map(Pid::from_raw)
            .collect()
    }

    /// Removes the cgroup directories, waiting briefly for exiting tasks to leave.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.files.close();
        remove_dirs(&self.dirs)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            self.kill_all();
            self.files.close();
            if let Err(e) = remove_dirs(&self.dirs) {
                tracing::warn!(error = %e, "removing a cgroup on drop");
            }
        }
    }
}

fn remove_dirs(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    for dir in dirs {
        let mut attempt = 0;
        loop {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 500 => {
                    attempt += 1;
                    thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(io_err("removing", dir)(e)),
            }
        }
    }
    Ok(())
}

/// Kills the tasks of the cgroup directory `dir` (one hierarchy's), each pinned and checked
/// as [`Cgroup::kill_all`] does; whether any was found.
pub(crate) fn kill_tasks_of(dir: &Path) -> bool {
    let pids: Vec<Pid> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .map(Pid::from_raw)
        .collect();
    for pid in &pids {
        kill_if_member(*pid, std::slice::from_ref(&dir.to_path_buf()));
    }
    !pids.is_empty()
}

fn kill_if_member(pid: Pid, dirs: &[PathBuf]) {
    let Ok(pidfd) = warden_sys::process::pidfd_open(pid) else {
        return;
    };
    let Ok(membership) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return;
    };
    let ours = dirs.iter().any(|d| {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        membership
            .lines()
            .any(|l| l.ends_with(&format!("/{WARDEN_CGROUP}/{name}")))
    });
    if ours {
        let _ = warden_sys::process::pidfd_send_signal(&pidfd, Signal::SIGKILL);
    }
}

/// A cgroup's accounting files, each opened once and then read with one `pread` from the
/// start (which makes the kernel render it anew): a job's accounting reads four files before
/// and after it runs, and opening them each time cost five calls a file.
#[derive(Debug, Default)]
pub(crate) struct Files {
    open: Mutex<HashMap<PathBuf, fs::File>>,
    /// Files written each job (the memory peak's reset), open for writing.
    writable: Mutex<HashMap<PathBuf, fs::File>>,
}

impl Files {
    /// The contents of `path`.
    pub(crate) fn read(&self, path: &Path) -> Result<String, CgroupError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match open.entry(path.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(fs::File::open(path).map_err(io_err("reading", path))?),
        };
        let mut buf = [0u8; 4096];
        let n = file.read_at(&mut buf, 0).map_err(io_err("reading", path))?;
        if n == buf.len() {
            // Longer than any file read here: read it whole.
            return fs::read_to_string(path).map_err(io_err("reading", path));
        }
        String::from_utf8(buf[..n].to_vec()).map_err(|_| CgroupError::Parse {
            path: path.to_owned(),
            contents: String::from_utf8_lossy(&buf[..n.min(64)]).into_owned(),
        })
    }

    /// Writes `value` to `path` (from its start: a cgroup file takes each write whole).
    pub(crate) fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        let mut writable = self.writable.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match writable.entry(path.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err("writing", path))?,
            ),
        };
        file.write_all_at(value.as_bytes(), 0)
            .map_err(io_err("writing", path))
    }

    /// Closes every file (before the cgroup is removed).
    fn close(&self) {
        for files in [&self.open, &self.writable] {
            files.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// Reads a file holding one integer.
pub(crate) fn read_u64(files: &Files, path: &Path) -> Result<u64, CgroupError> {
    let text = files.read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        contents: text.chars().take(64).collect(),
    })
}

/// The cpu time a counter file ([`Cgroup::cpu_counter`]) holds: v1's nanoseconds, or v2's
/// `usage_usec` line.
pub(crate) fn parse_cpu_counter(text: &str) -> Option<Duration> {
    if let Ok(nanos) = text.trim().parse() {
        return Some(Duration::from_nanos(nanos));
    }
    keyed_value(text, "usage_usec").map(Duration::from_micros)
}

/// The value of `key` in `key value` lines.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads `key value` lines (memory.events, cpu.stat, memory.oom_control) for one key.
pub(crate) fn read_keyed(
    files: &Files,
    path: &Path,
    key: &str,
) -> Result<Option<u64>, CgroupError> {
    Ok(keyed_value(&files.read(path)?, key))
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counters_of_both_versions_parse() {
        assert_eq!(
            parse_cpu_counter("1500000\n"),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(
            parse_cpu_counter("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"),
            Some(Duration::from_micros(2500))
        );
        assert_eq!(parse_cpu_counter("user_usec 2000\n"), None);
        assert_eq!(parse_cpu_counter(""), None);
    }

    const HYBRID: &str = "\
35 25 0:30 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
36 35 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 35 0:32 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
39 35 0:34 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
43 35 0:38 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
45 35 0:40 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_use_v1_when_it_has_the_controllers() {
        let fs = CgroupFs::from_mountinfo(HYBRID).expect("v1 complete");
        assert_eq!(fs.version(), "v1");
    }

    #[test]
    fn comounted_cpu_and_cpuacct_count() {
        let text = "\
36 35 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
39 35 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
43 35 0:38 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        match CgroupFs::from_mountinfo(text).expect("complete") {
            CgroupFs::V1(m) => {
                assert_eq!(m.cpuacct, Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")))
            }
            other => panic!("expected v1, got {other:?}"),
        }
    }

    #[test]
    fn missing_controllers_are_named() {
        let text = "39 35 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let err = CgroupFs::from_mountinfo(text).expect_err("pids and cpuacct missing");
        let msg = err.to_string();
        assert!(msg.contains("pids") && msg.contains("cpuacct"), "{msg}");
    }

    #[test]
    fn v2_is_chosen_when_its_controllers_are_available() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        let text = format!(
            "45 35 0:40 / {} rw - cgroup2 cgroup2 rw\n",
            dir.path().display()
        );
        assert_eq!(CgroupFs::from_mountinfo(&text).expect("v2").version(), "v2");
        fs::write(dir.path().join("cgroup.controllers"), "cpu io\n").expect("write");
        let err = CgroupFs::from_mountinfo(&text).expect_err("memory and pids missing");
        assert!(err.to_string().contains("memory"), "{err}");
    }

    /// Hunt sess F2: a job's limit below what its kept sandbox's tmpfs held was written, and
    /// v1 refused it (`EBUSY`, an internal error); v2 would have killed in the group, the
    /// sandbox's init too. The memory that cannot be given back is checked first, on both.
    #[test]
    fn a_memory_limit_below_what_the_group_holds_is_refused_unwritten() {
        let root = tempfile::tempdir().expect("tempdir");
        let mounts = v1::Mounts {
            memory: Some(root.path().join("memory")),
            pids: Some(root.path().join("pids")),
            cpuacct: Some(root.path().join("cpuacct")),
        };
        let v2_root = root.path().join("unified");
        for dir in [
            root.path().join("memory"),
            root.path().join("pids"),
            root.path().join("cpuacct"),
            v2_root.join(WARDEN_CGROUP),
        ] {
            fs::create_dir_all(dir).expect("mkdir");
        }
        let limits = Limits {
            memory: ByteSize::mib(256),
            ..Limits::default()
        };
        // 150 MB of tmpfs files and 1 MiB of anonymous memory; the page cache (300 MB) is
        // reclaimed to meet a limit, and is not counted.
        let cases = [
            (
                CgroupFs::V1(mounts),
                "cache 300000000\nrss 0\nshmem 0\ntotal_cache 300000000\ntotal_rss 1048576\ntotal_shmem 150000000\n",
                "memory.limit_in_bytes",
            ),
            (
                CgroupFs::V2(v2_root),
                "anon 1048576\nfile 450000000\nshmem 150000000\n",
                "memory.max",
            ),
        ];
        for (layout, stat, limit_file) in cases {
            let version = layout.version();
            let mut group = layout.create("run-1", &limits).expect("created");
            let memory_dir = match &layout {
                CgroupFs::V1(mounts) => mounts.dir_of(&group.dirs, v1::Controller::Memory),
                CgroupFs::V2(_) => group.dirs[0].clone(),
            };
            fs::write(memory_dir.join("memory.stat"), stat).expect("write");
            let held = ByteSize(150_000_000 + ByteSize::MIB);
            match group.set_limits(ByteSize::mib(64), 8) {
                Err(CgroupError::MemoryHeld { limit, held: found }) => {
                    assert_eq!((limit, found), (ByteSize::mib(64), held), "{version}");
                }
                other => panic!("{version}: {other:?}"),
            }
            let written = || fs::read_to_string(memory_dir.join(limit_file)).expect("read");
            assert_eq!(
                written(),
                ByteSize::mib(256).bytes().to_string(),
                "{version}"
            );
            group
                .set_limits(ByteSize::mib(160), 8)
                .expect("above what is held");
            assert_eq!(
                written(),
                ByteSize::mib(160).bytes().to_string(),
                "{version}"
            );
            // Fixture files, not a kernel's group: nothing to kill or remove.
            group.removed = true;
        }
    }

    #[test]
    fn keyed_files_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("memory.events");
        fs::write(&path, "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n").expect("write");
        let files = Files::default();
        assert_eq!(
            read_keyed(&files, &path, "oom_kill").expect("readable"),
            Some(1)
        );
        assert_eq!(read_keyed(&files, &path, "absent").expect("readable"), None);
    }
}
