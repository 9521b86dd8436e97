//! The sandbox's filesystem, built by the init inside its new mount namespace: an empty tmpfs
//! root, read-only binds of only the runtime paths, a minimal `/dev`; then `pivot_root` into
//! it, a size-capped tmpfs holding `/work` and `/tmp` (only `/tmp` when a volume is the
//! workspace: `volumes.rs` attaches the volumes), a fresh `/proc`, and the host's tree dropped.
//! mount(2), pivot_root(2), mount_namespaces(7).
//!
//! Every unmount that frees a mount waits for an expedited RCU grace period (the kernel's
//! `namespace_unlock`), up to half a millisecond here under load, and interrupts every CPU.
//! So mounts that go are gathered under one parent and detached together: the workspace
//! tmpfs's temporary place is under the parked old root at setup, under a holder at a reset.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use warden_core::{ByteSize, Limits};

use crate::child::SetupError;
use crate::plan::{SandboxSpec, WORKDIR};
use crate::workspace::{Misfit, Room};

/// Where the new root is assembled. A tmpfs mounted over `/tmp` inside the new mount namespace
/// hides the host's `/tmp` and leaves the host's `/` visible to bind from.
const NEW_ROOT: &str = "/tmp";
/// Where the old root is parked between `pivot_root` and its detachment.
const OLD_ROOT: &str = ".oldroot";
/// Where the workspace tmpfs sits at setup until `/work` and `/tmp` are bound out of it: a
/// directory of the parked host root (the host's `/tmp`, which [`NEW_ROOT`] covered until
/// `pivot_root` moved it away), so that it goes with the old root's detachment. Mounting there
/// changes nothing of the host: the mount namespace is the sandbox's, and private.
const SETUP_SCRATCH: &str = "/.oldroot/tmp";
/// At a reset, the holder under which the old workspace mounts and the new tmpfs's temporary
/// place are gathered, to be detached at once.
const RESET_HOLDER: &str = "/.reset";
/// Host devices bound into the sandbox's `/dev`.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

type Result<T> = std::result::Result<T, SetupError>;

/// Where `path` of the sandbox is in the new root while it is assembled.
pub(crate) fn at(path: &Path) -> PathBuf {
    Path::new(NEW_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

fn do_mount(
    step: &str,
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(source, target, fstype, flags, data).map_err(|e| SetupError::sys(step, target, e))
}

/// Stops mount events from propagating back to the host (mount_namespaces(7)).
pub(crate) fn make_private() -> Result<()> {
    do_mount(
        "make mounts private",
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
}

/// Assembles the new root under [`NEW_ROOT`]; nothing is visible in it but what the plan binds.
pub(crate) fn build_root(plan: &SandboxSpec) -> Result<()> {
    let root = Path::new(NEW_ROOT);
    do_mount(
        "mount the root tmpfs",
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m,nr_inodes=4096,mode=0755"),
    )?;
    for bind in &plan.binds {
        bind_read_only(&bind.path)?;
    }
    build_dev()?;
    write_identity_files()?;
    mkdir(&at(Path::new("/proc")))?;
    mkdir(&root.join(OLD_ROOT))
}

pub(crate) fn mkdir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| SetupError::io("create directory", path, e))
}

fn touch(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map(drop)
        .map_err(|e| SetupError::io("create mount point", path, e))
}

/// Binds a host path read-only at the same place in the new root. A host symlink is recreated
/// as a symlink (merged-/usr `/bin`); a missing path is skipped.
fn bind_read_only(host: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(host) else {
        return Ok(());
    };
    let target = at(host);
    if let Some(parent) = target.parent() {
        mkdir(parent)?;
    }
    if meta.file_type().is_symlink() {
        let link = fs::read_link(host).map_err(|e| SetupError::io("read symlink", host, e))?;
        return symlink(&link, &target).map_err(|e| SetupError::io("create symlink", &target, e));
    }
    if meta.is_dir() {
        mkdir(&target)?;
    } else {
        touch(&target)?;
    }
    do_mount("bind", Some(host), &target, None, MsFlags::MS_BIND, None)?;
    remount_read_only(&target)
}

/// Remounts a bind read-only. Flags the host mount has locked (nosuid, nodev, noexec, atime
/// flags) must be repeated or a user-namespaced remount fails with EPERM.
fn remount_read_only(target: &Path) -> Result<()> {
    let st = statvfs(target).map_err(|e| SetupError::sys("statvfs", target, e))?;
    let mut flags =
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID;
    let f = st.flags();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    do_mount("remount read-only", None, target, None, flags, None)
}

/// A tmpfs `/dev` with the harmless host devices bound in and the usual symlinks.
fn build_dev() -> Result<()> {
    let dev = at(Path::new("/dev"));
    mkdir(&dev)?;
    do_mount(
        "mount /dev tmpfs",
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("size=64k,nr_inodes=64,mode=0755"),
    )?;
    for name in DEVICES {
        let target = dev.join(name);
        touch(&target)?;
        let host = Path::new("/dev").join(name);
        do_mount(
            "bind device",
            Some(&host),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("shm", "/tmp"),
    ] {
        let link = dev.join(name);
        symlink(to, &link).map_err(|e| SetupError::io("create symlink", &link, e))?;
    }
    seal_devices("remount /dev read-only", &dev)
}

/// Remounts the bind mount at `target` read-only, nosuid and noexec (its devices stay usable).
fn seal_devices(step: &str, target: &Path) -> Result<()> {
    do_mount(
        step,
        None,
        target,
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NOEXEC,
        None,
    )
}

/// The directories of the workspace tmpfs, with their modes: `/work` and `/tmp`, or only
/// `/tmp` when a volume is the workspace.
fn scratch_dirs(plan: &SandboxSpec) -> Vec<(&'static str, &'static str, u32)> {
    let work_is_volume = plan.volumes.iter().any(|v| v.target == Path::new(WORKDIR));
    [("work", WORKDIR, 0o755), ("tmp", "/tmp", 0o1777)]
        .into_iter()
        .filter(|(_, outer, _)| !(work_is_volume && *outer == WORKDIR))
        .collect()
}

/// One size-capped tmpfs for everything writable, so `/work` and `/tmp` share one cap,
/// mounted at `place` (an empty directory) and bound at `/work` and `/tmp` (`scratch_dirs`).
/// After `pivot_root`, while `/` is writable. The caller detaches `place`'s mount with others;
/// the binds keep the tmpfs alive.
fn build_scratch(plan: &SandboxSpec, place: &Path) -> Result<()> {
    let size = plan.limits.workspace_size.bytes();
    let inodes = (size / 4096).clamp(1024, 1 << 20);
    do_mount(
        "mount the workspace tmpfs",
        Some(Path::new("tmpfs")),
        place,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("size={size},nr_inodes={inodes},mode=0755")),
    )?;
    for (inner, outer, mode) in scratch_dirs(plan) {
        let source = place.join(inner);
        fs::DirBuilder::new()
            .mode(mode)
            .create(&source)
            .map_err(|e| SetupError::io("create directory", &source, e))?;
        // The umask trimmed the mode (the sticky, world-writable /tmp in particular).
        fs::set_permissions(&source, fs::Permissions::from_mode(mode))
            .map_err(|e| SetupError::io("chmod", &source, e))?;
        let target = Path::new(outer);
        mkdir(target)?;
        do_mount(
            "bind workspace",
            Some(&source),
            target,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    Ok(())
}

/// After `pivot_root`, before the old root is detached: the workspace tmpfs, its temporary
/// place under the old root ([`SETUP_SCRATCH`]).
pub(crate) fn build_workspace(plan: &SandboxSpec) -> Result<()> {
    build_scratch(plan, Path::new(SETUP_SCRATCH))
}

/// The workspace tmpfs as the init keeps it from job to job. Each job has its own
/// `workspace_size`: before the job's files are written, the tmpfs's cap is set to it with a
/// remount (`MS_REMOUNT`, `size=`; mount(2), tmpfs(5)), which changes the one superblock behind
/// `/work` and `/tmp`, whatever an earlier job (a compile stage) had. Its inode count stays the
/// sandbox's. The kernel refuses a cap below what the tmpfs holds; the job is refused first,
/// saying so ([`Misfit`](crate::workspace::Misfit)).
pub(crate) struct Scratch {
    /// The cap the tmpfs has now.
    size: ByteSize,
    /// Whether `/work` is on it (no volume there), so that the job's files are too.
    holds_work: bool,
}

impl Scratch {
    /// The tmpfs as [`build_workspace`] or a reset made it: the spec's size.
    pub(crate) fn new(spec: &SandboxSpec) -> Self {
        Self {
            size: spec.limits.workspace_size,
            holds_work: scratch_dirs(spec)
                .iter()
                .any(|(_, outer, _)| *outer == WORKDIR),
        }
    }

    /// Caps the tmpfs at the job's `workspace_size` and returns the room its files have;
    /// refuses a job whose size is below what the tmpfs holds already.
    pub(crate) fn fit(&mut self, limits: &Limits) -> Result<Option<Room>> {
        let tmp = Path::new("/tmp");
        let holds = crate::workspace::used_bytes(tmp)?;
        let size = limits.workspace_size;
        if holds > size.bytes() {
            return Err(Misfit::holds_more(size, holds));
        }
        if size != self.size {
            do_mount(
                "resize the workspace",
                None,
                tmp,
                None,
                // The bind's own flags, which a remount would otherwise clear.
                MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&format!("size={}", size.bytes())),
            )?;
            self.size = size;
        }
        Ok(self.holds_work.then_some(Room {
            size,
            holds: ByteSize(holds),
            // The tmpfs's pages are charged to the cgroup of the process that wrote them:
            // the init, in the job's cgroup.
            memory: Some(limits.memory),
        }))
    }
}

/// `/etc/passwd`, `/etc/group` and `/etc/hosts` describing the sandbox, not the host, and
/// `/etc/resolv.conf` naming the resolver on the sandbox's own loopback: warden's, when a
/// network policy lets anything out (docs/network.md); nothing answers there otherwise, and a
/// lookup fails at once.
fn write_identity_files() -> Result<()> {
    let etc = at(Path::new("/etc"));
    mkdir(&etc)?;
    for (name, contents) in [
        ("passwd", "root:x:0:0:sandbox:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        ("group", "root:x:0:\nnogroup:x:65534:\n"),
        ("hosts", "127.0.0.1 localhost warden\n::1 localhost\n"),
        (
            "resolv.conf",
            "nameserver 127.0.0.1\noptions ndots:0 attempts:1 timeout:1\n",
        ),
    ] {
        let path = etc.join(name);
        fs::write(&path, contents).map_err(|e| SetupError::io("write", &path, e))?;
    }
    Ok(())
}

/// Makes the new root `/` and parks the host's root at `/.oldroot`.
pub(crate) fn pivot_into() -> Result<()> {
    let root = Path::new(NEW_ROOT);
    nix::unistd::chdir(root).map_err(|e| SetupError::sys("chdir", root, e))?;
    nix::unistd::pivot_root(".", OLD_ROOT).map_err(|e| SetupError::sys("pivot_root", root, e))?;
    nix::unistd::chdir("/").map_err(|e| SetupError::sys("chdir", Path::new("/"), e))
}

/// Mounts a fresh `/proc` for the new pid namespace. Must happen while the old root (with the
/// host's fully visible `/proc`) is still attached: the kernel refuses a new proc mount in a
/// user namespace otherwise (`mount_too_revealing`).
pub(crate) fn mount_proc() -> Result<()> {
    do_mount(
        "mount /proc",
        Some(Path::new("proc")),
        Path::new("/proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
}

/// The files of a fresh `/proc` that show the whole host rather than the sandbox and that no
/// program needs, covered with `/dev/null` where the kernel has them: `interrupts` and
/// `softirqs` (per-CPU interrupt counts, each device's queue by name, which a program can
/// watch to time another's keystrokes, disk or network traffic; the totals stay readable in
/// `/proc/stat`'s `intr` and `softirq` lines, which top, psutil and glibc's `get_nprocs`
/// read, and page-in and swap totals in `/proc/vmstat`, without which procps' `vmstat`
/// fails: docs/threat-model.md, Known limits), `locks` (every file lock of the host, among them the uid-slot locks of all
/// concurrent runs: how many run, and their host uids), `cmdline` (the machine's boot command
/// line), and what a later kernel might open to the sandbox's user (`kcore`, `keys`,
/// `latency_stats`, `timer_list`, `sched_debug`), and the host's block devices with their live
/// I/O counters (`diskstats`, `partitions`: every session's workspace and every volume in use
/// is a loop device, so a program could watch another tenant's writes as they happen).
/// Read-only mounts (what is written to one is discarded nonetheless: it is a device); with
/// mount and umount denied by seccomp and no capability, the masks stay. Each costs two mount
/// calls, about 7 µs of the init's setup here (`strace -T`).
const MASKED_PROC: [&str; 11] = [
    "/proc/interrupts",
    "/proc/softirqs",
    "/proc/locks",
    "/proc/cmdline",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/diskstats",
    "/proc/partitions",
];

/// The directories of a fresh `/proc` that show the host's filesystems, covered with an empty
/// read-only tmpfs: `fs` (under `fs/ext4`, each mounted ext4 filesystem by its device, a
/// session's or a volume's loop device among them, with its block groups' free space as it
/// changes).
const MASKED_PROC_DIRS: [&str; 1] = ["/proc/fs"];

/// Covers [`MASKED_PROC`] with the sandbox's `/dev/null` and [`MASKED_PROC_DIRS`] with an empty
/// tmpfs, and makes `/proc/sys` read-only.
/// After [`mount_proc`] and the root built, before the old root is detached.
pub(crate) fn mask_proc() -> Result<()> {
    let null = Path::new("/dev/null");
    for file in MASKED_PROC.map(Path::new) {
        if !file.exists() {
            continue;
        }
        do_mount(
            "mask a /proc file",
            Some(null),
            file,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
        // Read-only, as every mount but the workspace's (a device's writes pass anyway).
        seal_devices("make a /proc mask read-only", file)?;
    }
    for dir in MASKED_PROC_DIRS.map(Path::new) {
        if !dir.is_dir() {
            continue;
        }
        do_mount(
            "mask a /proc directory",
            Some(Path::new("tmpfs")),
            dir,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=4k,nr_inodes=1,mode=0555"),
        )?;
    }
    // The sysctls of the sandbox's own namespaces are its root user's to write, with no
    // capability: `kernel/pid_max` of its pid namespace (Linux 6.14 and later), which a job
    // set to 301 and used up for every later job of the sandbox (a reset keeps the pid
    // namespace), and the IPC limits, which a session's calls share. Read-only, as container
    // runtimes make it.
    let sys = Path::new("/proc/sys");
    do_mount(
        "bind /proc/sys",
        Some(sys),
        sys,
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    seal_devices("make /proc/sys read-only", sys)
}

/// Detaches the host's tree; from here on nothing of it is reachable.
pub(crate) fn detach_old_root() -> Result<()> {
    let old = Path::new("/").join(OLD_ROOT);
    umount2(&old, MntFlags::MNT_DETACH)
        .map_err(|e| SetupError::sys("detach the old root", &old, e))?;
    fs::remove_dir(&old).map_err(|e| SetupError::io("remove directory", &old, e))
}

/// After `pivot_root`, between jobs: replaces the workspace tmpfs behind `/work` and `/tmp`
/// with an empty one (the old one is freed once unmounted). A volume, `/work` included, is
/// left as it is: its contents are meant to last. The root is writable only while this runs,
/// when no process but the init exists.
///
/// One detachment: a small holder tmpfs receives the old `/work` and `/tmp` mounts (moved, not
/// unmounted) and the new tmpfs's temporary place, and goes with all three.
pub(crate) fn renew_scratch(plan: &SandboxSpec) -> Result<()> {
    do_mount(
        "remount / writable",
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    )?;
    let holder = Path::new(RESET_HOLDER);
    mkdir(holder)?;
    do_mount(
        "mount the reset holder",
        Some(Path::new("tmpfs")),
        holder,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=16k,nr_inodes=16,mode=0700"),
    )?;
    for (inner, outer, _) in scratch_dirs(plan) {
        let parked = holder.join(format!("old-{inner}"));
        mkdir(&parked)?;
        do_mount(
            "move the old workspace away",
            Some(Path::new(outer)),
            &parked,
            None,
            MsFlags::MS_MOVE,
            None,
        )?;
    }
    let place = holder.join("new");
    mkdir(&place)?;
    build_scratch(plan, &place)?;
    umount2(holder, MntFlags::MNT_DETACH)
        .map_err(|e| SetupError::sys("detach the old workspace", holder, e))?;
    fs::remove_dir(holder).map_err(|e| SetupError::io("remove directory", holder, e))?;
    make_root_read_only()
}

/// Makes the root tmpfs read-only: only `/work` and `/tmp` stay writable.
pub(crate) fn make_root_read_only() -> Result<()> {
    do_mount(
        "remount / read-only",
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    )
}
