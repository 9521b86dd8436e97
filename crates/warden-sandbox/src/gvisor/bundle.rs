//! The OCI bundle of a gVisor sandbox, written in the parent: the same filesystem, devices,
//! privileges and system-call filter as a native sandbox (docs/threat-model.md compares them).
//!
//! ```text
//! <bundle>/rootfs/    read-only root: mount points, symlinks of the binds, /etc's few files,
//!                     the preloaded /.warden/no_automount.so and its /etc/ld.so.preload
//! <bundle>/scratch/   a tmpfs of the workspace's size: work/ at /work, tmp/ at /tmp (one cap),
//!                     the slot's
//! <bundle>/dev/       read-only /dev: mount points of the devices, the fd and shm symlinks
//! <bundle>/volumes/   the volumes' id-mapped mounts, bound from there (the slot's, 0700)
//! <bundle>/config.json, job-<n>.json   root's alone (0600)
//! ```
//!
//! The container has a user namespace whose uid and gid 0 are the run's uid slot on the host
//! (`idmap.rs`), as a native sandbox's: runsc's gofer, which opens the host's files for the
//! sandbox and does its mounts, runs as that uid in it, so the host refuses the sandbox's root a
//! root-only file in a bind, as natively (root's files show as `nobody`'s). So whatever the
//! sandbox may write is the slot's on the host: the scratch tmpfs and the files warden writes
//! into it for each job (`gvisor.rs`), and the volumes, through id-mapped mounts
//! ([`volume_mounts`]). The bundles, and each bundle, are 0711: the gofer passes through them.
//! A sandbox with egress has no user namespace yet ([`Ids`]).
//!
//! `/dev` is a read-only bind of `<bundle>/dev` with the host's null, zero, full, random and
//! urandom bound on their mount points, as the native sandbox binds them (`mounts.rs`). runsc
//! would otherwise give its own `/dev`, writable, with a tty, fuse, tun and a pty multiplexer;
//! and a read-only `/dev` of its own refuses to open its devices for writing (`EROFS` even on
//! `/dev/null`). runsc mounts a devpts at `/dev/pts` whatever the spec says: it is mounted
//! read-only here, so its multiplexer cannot be opened either. `/sys`, which runsc mounts when
//! the spec has none, is an empty read-only tmpfs (the native sandbox has no `/sys`).

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::resource::Resource;
use serde_json::{json, Value};
use warden_core::{ByteSize, Limits};

use crate::parent::SandboxError;
use crate::plan::{SandboxSpec, WORKDIR};
use crate::rlimits;

/// The devices a program may open, bound from the host: the native sandbox's list
/// (`mounts.rs`); tests/isolation.rs compares the two from inside.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The symlinks of `/dev`, as the native sandbox makes them.
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("shm", "/tmp"),
];

/// The uid and gid of the container's own process (the lifeline keeper): `nobody`, so that a
/// job, root without capabilities, can neither signal it nor read its memory or environment
/// (`/proc/1/environ` is refused as in the native sandbox, whose init is not the job's).
const KEEPER_ID: u32 = 65534;

/// The tmpfs that holds the workspace and `/tmp`.
pub(super) fn scratch(bundle: &Path) -> PathBuf {
    bundle.join("scratch")
}

/// The host directory the sandbox sees at `/work`: a volume mounted there, or the scratch
/// tmpfs's `work/`. Each job's files are written into it and its output collected from it.
pub(super) fn workspace(bundle: &Path, spec: &SandboxSpec) -> PathBuf {
    spec.volumes
        .iter()
        .find(|v| v.target == Path::new(WORKDIR))
        .map_or_else(|| scratch(bundle).join("work"), |v| v.host.clone())
}

/// Writes the bundle into a fresh directory. The scratch tmpfs is mounted last: the caller
/// unmounts it (detached) whether or not this got that far.
pub(super) fn write_bundle(
    bundle: &Path,
    spec: &SandboxSpec,
    loader: &Path,
    ids: &Ids,
) -> Result<(), SandboxError> {
    // Nobody else on the host (a trusted run, another user) may list the bundles or read what
    // one holds: the program's files, arguments and environment (its files, `config.json`
    // and the jobs' process files, root's alone, 0600), and its workspace and /tmp (on the
    // scratch tmpfs, the slot's alone, 0700). The bundles and each bundle may be passed
    // through (0711) by runsc's gofer, which runs as the slot's uid in the sandbox's user
    // namespace and binds the root, `/dev`, the scratch and the volumes from the bundle.
    let bundles = bundle.parent().unwrap_or(bundle);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(BUNDLES_MODE)
        .create(bundles)
        .and_then(|()| fs::set_permissions(bundles, fs::Permissions::from_mode(BUNDLES_MODE)))
        .map_err(io("creating the gVisor bundle directory"))?;
    fs::DirBuilder::new()
        .mode(BUNDLES_MODE)
        .create(bundle)
        .and_then(|()| fs::set_permissions(bundle, fs::Permissions::from_mode(BUNDLES_MODE)))
        .map_err(io("creating the gVisor bundle"))?;
    let rootfs = bundle.join("rootfs");
    for dir in ["work", "tmp", "proc", "dev", "sys", "etc"] {
        fs::create_dir_all(rootfs.join(dir)).map_err(io("creating the gVisor root"))?;
    }
    write_etc(&rootfs)?;
    write_preload(&rootfs)?;
    write_dev(&bundle.join("dev"))?;
    let mut mounts = base_mounts(bundle, spec);
    mounts.push(loader_mount(&rootfs, loader)?);
    mounts.extend(bind_mounts(&rootfs, spec)?);
    mounts.extend(volume_mounts(bundle, &rootfs, spec, ids)?);
    mount_scratch(&scratch(bundle), spec, ids.owner().unwrap_or(0))?;
    let config = oci_config(spec, mounts, ids);
    let text = serde_json::to_vec_pretty(&config).map_err(|e| SandboxError::Helper {
        action: "writing config.json",
        source: std::io::Error::other(e),
    })?;
    write_private(&bundle.join("config.json"), &text).map_err(io("writing config.json"))
}

/// The mode of the bundles' directory and of each bundle: passed through by runsc's gofer
/// (the slot's uid), listed by root alone.
pub(super) const BUNDLES_MODE: u32 = 0o711;

/// Writes `path` (created or truncated) as root's alone: a bundle's files are read by runsc,
/// which runs as root, and no one else.
pub(super) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)
}

/// The ids of a sandbox's user namespace: its root is `host_id` on the host, the slot's uid
/// and gid that the native sandbox's root has too (`idmap.rs`), when `mapped`. A sandbox with
/// egress (`--network=host`) is not: runsc 0.0~20221219 then starts its sentry in the
/// container's user namespace as its `nobody` with the container process's capabilities, and
/// its setup fails (`error setting up chroot: error converting mounts: operation not
/// permitted`, also with `nobody` mapped); its root is the host's uid 0 to the bound files, as
/// before (docs/threat-model.md, Known limits).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ids {
    pub(super) host_id: u32,
    pub(super) mapped: bool,
}

impl Ids {
    /// The host id what the sandbox may write must have: the slot's, or root's when unmapped.
    pub(super) fn owner(&self) -> Option<u32> {
        self.mapped.then_some(self.host_id)
    }
}

fn io(action: &'static str) -> impl Fn(std::io::Error) -> SandboxError {
    move |source| SandboxError::Helper { action, source }
}

fn write_etc(rootfs: &Path) -> Result<(), SandboxError> {
    for (name, contents) in [
        ("passwd", "root:x:0:0:sandbox:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        ("group", "root:x:0:\nnogroup:x:65534:\n"),
        ("hosts", "127.0.0.1 localhost warden\n::1 localhost\n"),
        // The resolver warden's proxy runs on loopback under a policy with egress (as the
        // native sandbox's, `mounts.rs`); nothing answers there otherwise.
        ("resolv.conf", "nameserver 127.0.0.1\noptions ndots:0 attempts:1 timeout:1\n"),
    ] {
        fs::write(rootfs.join("etc").join(name), contents).map_err(io("writing the gVisor root"))?;
    }
    Ok(())
}

/// The shared object every dynamically linked program of the sandbox preloads
/// (`no_automount.c`): the statx and fstatat calls without `AT_NO_AUTOMOUNT`, which this runsc
/// refuses with `EINVAL` (`ls /` failed).
const NO_AUTOMOUNT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/no_automount.so"));

/// Where it is inside the sandbox.
const NO_AUTOMOUNT_PATH: &str = "/.warden/no_automount.so";

/// The preloaded object in the root, and the root's `/etc/ld.so.preload` naming it: the root
/// is read-only, so the program can change neither.
fn write_preload(rootfs: &Path) -> Result<(), SandboxError> {
    let inside = rootfs.join(NO_AUTOMOUNT_PATH.trim_start_matches('/'));
    if let Some(parent) = inside.parent() {
        fs::create_dir_all(parent).map_err(io("creating the gVisor root"))?;
    }
    fs::write(&inside, NO_AUTOMOUNT).map_err(io("writing the gVisor root"))?;
    fs::write(
        rootfs.join("etc/ld.so.preload"),
        format!("{NO_AUTOMOUNT_PATH}\n"),
    )
    .map_err(io("writing the gVisor root"))
}

/// The source of the read-only `/dev`: an empty file per device (its mount point) and the
/// symlinks.
fn write_dev(dev: &Path) -> Result<(), SandboxError> {
    fs::create_dir(dev).map_err(io("creating the gVisor /dev"))?;
    for name in DEVICES {
        fs::write(dev.join(name), b"").map_err(io("creating the gVisor /dev"))?;
    }
    for (name, target) in DEV_LINKS {
        symlink(target, dev.join(name)).map_err(io("creating the gVisor /dev"))?;
    }
    Ok(())
}

/// `/proc`, `/sys`, `/dev` and its devices, the workspace and `/tmp`, in mount order.
fn base_mounts(bundle: &Path, spec: &SandboxSpec) -> Vec<Value> {
    let read_only = ["ro", "nosuid", "nodev", "noexec"];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/sys", "type": "tmpfs", "source": "tmpfs", "options": read_only}),
        json!({"destination": "/dev", "type": "bind", "source": bundle.join("dev"),
               "options": ["rbind", "ro", "nosuid", "noexec"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": read_only}),
    ];
    for name in DEVICES {
        let device = Path::new("/dev").join(name);
        mounts.push(
            json!({"destination": device, "type": "bind", "source": device,
                           "options": ["bind", "rw", "nosuid", "noexec"]}),
        );
    }
    let scratch = scratch(bundle);
    let writable = ["rbind", "rw", "nosuid", "nodev"];
    if !spec.volumes.iter().any(|v| v.target == Path::new(WORKDIR)) {
        mounts.push(json!({"destination": WORKDIR, "type": "bind", "source": scratch.join("work"), "options": writable}));
    }
    mounts.push(json!({"destination": "/tmp", "type": "bind", "source": scratch.join("tmp"), "options": writable}));
    mounts
}

/// The warden binary, read-only at the path each job starts from (`gvisor/filter_exec.rs`).
fn loader_mount(rootfs: &Path, loader: &Path) -> Result<Value, SandboxError> {
    let inside = rootfs.join(super::filter_exec::LOADER.trim_start_matches('/'));
    if let Some(parent) = inside.parent() {
        fs::create_dir_all(parent).map_err(io("creating the gVisor root"))?;
    }
    fs::write(&inside, b"").map_err(io("creating the gVisor root"))?;
    Ok(
        json!({"destination": super::filter_exec::LOADER, "type": "bind", "source": loader,
              "options": ["bind", "ro", "nosuid", "nodev"]}),
    )
}

/// The spec's read-only binds: a mount point in the root for each, or the symlink itself.
fn bind_mounts(rootfs: &Path, spec: &SandboxSpec) -> Result<Vec<Value>, SandboxError> {
    let mut mounts = Vec::new();
    for bind in &spec.binds {
        let Ok(meta) = fs::symlink_metadata(&bind.path) else {
            continue;
        };
        let inside = rootfs.join(bind.path.strip_prefix("/").unwrap_or(&bind.path));
        if let Some(parent) = inside.parent() {
            fs::create_dir_all(parent).map_err(io("creating the gVisor root"))?;
        }
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&bind.path).map_err(io("reading a symlink to recreate"))?;
            symlink(target, &inside).map_err(io("creating a symlink in the gVisor root"))?;
            continue;
        }
        if meta.is_dir() {
            fs::create_dir_all(&inside).map_err(io("creating the gVisor root"))?;
        } else {
            fs::write(&inside, b"").map_err(io("creating the gVisor root"))?;
        }
        mounts.push(
            json!({"destination": bind.path, "type": "bind", "source": bind.path,
                           "options": ["rbind", "ro", "nosuid", "nodev"]}),
        );
    }
    Ok(mounts)
}

/// The spec's volumes: binds, `nosuid` and `nodev`, read-only unless writable, of an id-mapped
/// mount of each host directory, as the native backend's (`volumes.rs`): through the map of a
/// user namespace whose root is the slot, uid and gid 0 on disk are the sandbox's root (the
/// gofer, which runs as the slot's uid, owns them and stores the files it creates as uid 0),
/// so the next sandbox, in another slot, owns the same files; other ids show as `nobody`.
/// runsc binds paths only: each mount is attached at `<bundle>/volumes/<n>` (the slot's
/// alone, 0700), in warden's mount namespace, and unmounted with the bundle
/// ([`remove_volumes`]). Its host directory is opened without following a link, as natively.
fn volume_mounts(
    bundle: &Path,
    rootfs: &Path,
    spec: &SandboxSpec,
    ids: &Ids,
) -> Result<Vec<Value>, SandboxError> {
    if spec.volumes.is_empty() {
        return Ok(Vec::new());
    }
    if !ids.mapped {
        return unmapped_volume_mounts(rootfs, spec);
    }
    let userns = user_namespace(ids.host_id)?;
    let attached = volumes(bundle);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&attached)
        .and_then(|()| std::os::unix::fs::lchown(&attached, Some(ids.host_id), Some(ids.host_id)))
        .map_err(io("creating the volumes' mount points"))?;
    let mut mounts = Vec::new();
    for (n, volume) in spec.volumes.iter().enumerate() {
        let Ok(inside) = volume.target.strip_prefix("/") else {
            return Err(SandboxError::Setup {
                step: "mount a volume".into(),
                detail: format!("the target {} is not absolute", volume.target.display()),
            });
        };
        fs::create_dir_all(rootfs.join(inside)).map_err(io("creating a volume's mount point"))?;
        let source = attached.join(n.to_string());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&source)
            .map_err(io("creating a volume's mount point"))?;
        let setup = |e: nix::errno::Errno| SandboxError::Setup {
            step: "mount a volume".into(),
            detail: format!("{}: {e}", volume.host.display()),
        };
        let mount = crate::volumes::make_one(volume, userns.as_fd()).map_err(setup)?;
        warden_sys::mount::move_detached(mount.as_fd(), &source).map_err(setup)?;
        let access = if volume.writable { "rw" } else { "ro" };
        mounts.push(
            json!({"destination": volume.target, "type": "bind", "source": source,
                           "options": ["rbind", access, "nosuid", "nodev"]}),
        );
    }
    Ok(mounts)
}

/// Without a user namespace, binds of the host directories themselves: runsc runs as host root
/// and its gofer creates files with the sandbox user's ids, so uid 0 on disk is the sandbox's
/// root already.
fn unmapped_volume_mounts(rootfs: &Path, spec: &SandboxSpec) -> Result<Vec<Value>, SandboxError> {
    let mut mounts = Vec::new();
    for volume in &spec.volumes {
        let Ok(inside) = volume.target.strip_prefix("/") else {
            return Err(SandboxError::Setup {
                step: "mount a volume".into(),
                detail: format!("the target {} is not absolute", volume.target.display()),
            });
        };
        fs::create_dir_all(rootfs.join(inside)).map_err(io("creating a volume's mount point"))?;
        let access = if volume.writable { "rw" } else { "ro" };
        mounts.push(
            json!({"destination": volume.target, "type": "bind", "source": volume.host,
                           "options": ["rbind", access, "nosuid", "nodev"]}),
        );
    }
    Ok(mounts)
}

/// Where a bundle's volumes are attached.
fn volumes(bundle: &Path) -> PathBuf {
    bundle.join("volumes")
}

/// A user namespace whose uid and gid 0 are `host_id` on the host (the map of a native
/// sandbox's, `idmap.rs`), from a child that waits in it while the map is written.
fn user_namespace(host_id: u32) -> Result<std::os::fd::OwnedFd, SandboxError> {
    let failed = |detail: String| SandboxError::Setup {
        step: "make the volumes' user namespace".into(),
        detail,
    };
    warden_sys::process::with_user_namespace_child(|child| {
        crate::idmap::write_maps(child, host_id).map_err(|e| failed(e.to_string()))?;
        fs::File::open(format!("/proc/{child}/ns/user"))
            .map(std::os::fd::OwnedFd::from)
            .map_err(|e| failed(format!("opening its /proc/{child}/ns/user: {e}")))
    })
    .map_err(|e| failed(format!("clone: {e}")))?
}

/// Unmounts a bundle's volumes (detached), before the bundle is removed: fails, and the bundle
/// must then be left, when one is still mounted, whose files a removal would reach.
pub(super) fn remove_volumes(bundle: &Path) -> std::io::Result<()> {
    let attached = volumes(bundle);
    let entries = match fs::read_dir(&attached) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        entries => entries?,
    };
    for entry in entries {
        let path = entry?.path();
        let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
        // The mount point was made empty; what it shows is a volume's (an empty volume's
        // mount point cannot be removed while it is mounted: `EBUSY`).
        if fs::read_dir(&path)?.next().is_some() {
            return Err(std::io::Error::other(format!(
                "{} is still mounted",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Mounts the scratch tmpfs, capped at the workspace size (bytes and inodes, as the native
/// sandbox's), with `work/` and a sticky `tmp/`: the program's writes to both reach it through
/// gVisor's gofer, and a host directory would have no cap.
fn mount_scratch(scratch: &Path, spec: &SandboxSpec, host_id: u32) -> Result<(), SandboxError> {
    fs::create_dir(scratch).map_err(io("creating the workspace"))?;
    let size = spec.limits.workspace_size.bytes();
    let inodes = (size / 4096).clamp(1024, 1 << 20);
    // The sandbox's root's alone (the slot's, or root's without a user namespace): the gofer
    // writes it as that root, and no one else on the host may pass through.
    let options = format!("size={size},nr_inodes={inodes},mode=0700,uid={host_id},gid={host_id}");
    nix::mount::mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| SandboxError::Helper {
        action: "mounting the gVisor workspace",
        source: e.into(),
    })?;
    // Both the sandbox's root's, as the native sandbox's are.
    let work = scratch.join("work");
    fs::create_dir(&work).map_err(io("creating the workspace"))?;
    std::os::unix::fs::lchown(&work, Some(host_id), Some(host_id))
        .map_err(io("creating the workspace"))?;
    let tmp = scratch.join("tmp");
    fs::create_dir(&tmp).map_err(io("creating the sandbox's /tmp"))?;
    std::os::unix::fs::lchown(&tmp, Some(host_id), Some(host_id))
        .map_err(io("creating the sandbox's /tmp"))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .map_err(io("creating the sandbox's /tmp"))
}

/// A gVisor job's rlimits: the plan's, but `RLIMIT_NPROC`, which is the process limit itself
/// there ([`oci_process`]): the program's `max_procs` and `beside` of warden's.
pub(super) fn job_rlimits(limits: &Limits, beside: u32) -> Vec<(Resource, u64, u64)> {
    let nproc = u64::from(limits.max_procs) + u64::from(beside);
    // The cpu backstop leaves the cgroup's accounting (the watch's) to decide by far more
    // than natively: gVisor counts a task's cpu time as the time its sentry thread ran it,
    // which on a host busy with other work includes time the host thread waited for a cpu;
    // a busy loop with a 1 s budget died of SIGXCPU (a `signaled` outcome, not its cpu limit)
    // with the cgroup at 0.6 s.
    let budget = limits.cpu_time.as_secs() + u64::from(limits.cpu_time.subsec_nanos() > 0);
    rlimits::from_limits(limits)
        .into_iter()
        .map(|(resource, soft, hard)| match resource {
            Resource::RLIMIT_NPROC => (resource, nproc, nproc),
            Resource::RLIMIT_CPU => (resource, soft + budget.max(1), hard + budget.max(1)),
            _ => (resource, soft, hard),
        })
        .collect()
}

/// One OCI process: the job's argv, environment and rlimits, as root of the container's user
/// namespace without capabilities and with no new privileges, in the workspace. `beside`
/// counts warden's own processes of a job under the job's uid: the loader, the program's
/// parent (the keeper runs as `nobody`, which is not counted). gVisor's processes are not the host cgroup's one by one, so `RLIMIT_NPROC`
/// is the process limit itself here, the program's `max_procs` plus those.
pub(super) fn oci_process(
    argv: &[String],
    env: &[(String, String)],
    limits: &Limits,
    beside: u32,
) -> Value {
    let rlimits: Vec<Value> = job_rlimits(limits, beside)
        .into_iter()
        .map(|(resource, soft, hard)| json!({"type": format!("{resource:?}"), "soft": soft, "hard": hard}))
        .collect();
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": argv,
        "env": env,
        "cwd": WORKDIR,
        "rlimits": rlimits,
        "noNewPrivileges": true,
        "capabilities": {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []}
    })
}

/// The open files and stack the keeper gives the jobs it runs to lower from (the default
/// operator maxima; a spec asking more has its own).
const KEEPER_OPEN_FILES: u32 = 65_536;
const KEEPER_STACK: ByteSize = ByteSize::mib(1024);

/// The OCI runtime configuration: the container's own process (bash on the lifeline, as
/// `nobody`, see `gvisor.rs`), the mounts, a read-only root, the seccomp policy, its own pid,
/// network, ipc, uts and mount namespaces (the network one a host namespace that runsc
/// creates, which its sandbox uses under `--network=host`).
pub(super) fn oci_config(spec: &SandboxSpec, mounts: Vec<Value>, ids: &Ids) -> Value {
    // Reads the lifeline until end-of-file; as pid 1 it also reaps the orphans jobs leave as
    // they end (`filter_exec.rs`, the keeper).
    let keeper = super::filter_exec::keeper_argv();
    // runsc gives the processes it execs this process's rlimits (not their own process
    // file's): the jobs', whose loader can only lower them. So they are the most a job may
    // ask, not the spec's: a session's call may set its own cpu time, file size, open files
    // and stack above the session's defaults (it got the session's, and a cpu limit of 20 s
    // ended at 7 s, killed as a crash). The process limit is the sandbox's own ceiling.
    let bounds = warden_core::LimitBounds::default().max;
    let ceilings = Limits {
        cpu_time: bounds.cpu_time,
        max_file_size: bounds.max_file_size,
        max_open_files: spec.limits.max_open_files.max(KEEPER_OPEN_FILES),
        stack_size: spec.limits.stack_size.max(KEEPER_STACK),
        ..spec.limits
    };
    // Beside a job at its process limit (its processes and its loader, the job's `RLIMIT_NPROC`
    // at most the ceiling's plus one), room for one more of the jobs' uid: the loader that
    // ends a job a limit or a signal ends (`gvisor.rs`, `RunscJobs::end_job`); without it,
    // a job that filled its process limit took the whole sandbox with it.
    let mut process = oci_process(&keeper, &crate::plan::base_environment(), &ceilings, 2);
    process["user"] = json!({"uid": KEEPER_ID, "gid": KEEPER_ID});
    let mut config = json!({
        "ociVersion": "1.0.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": true},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "seccomp": super::seccomp::oci_seccomp(&spec.seccomp),
        }
    });
    if ids.mapped {
        let linux = &mut config["linux"];
        if let Some(namespaces) = linux["namespaces"].as_array_mut() {
            namespaces.push(json!({"type": "user"}));
        }
        linux["uidMappings"] = id_mappings(ids);
        linux["gidMappings"] = id_mappings(ids);
    }
    config
}

/// The sandbox's user namespace maps its root, and only its root, to the slot's id: the
/// runtime's gofer, which opens the host's files for the sandbox, runs as that uid in it, so
/// the host checks the program's every open of a bound file as the slot's, as the native
/// sandbox's root: a root-only host file or directory is refused, and shows as owned by
/// `nobody` (the overflow id), as natively. The keeper's id ([`KEEPER_ID`]) is left
/// unmapped: gVisor's sentry keeps its own credentials for its processes, and the keeper
/// touches no host file through the gofer (it only waits on the lifeline and reaps), so it
/// needs no host id; mapping it to the host's `nobody` would give the gofer, as that id,
/// the host `nobody`'s files in the binds.
fn id_mappings(ids: &Ids) -> Value {
    json!([{"containerID": 0, "hostID": ids.host_id, "size": 1}])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{SandboxPlan, VolumeMount};
    use warden_core::{FilesystemPolicy, SeccompPolicy};

    fn spec() -> SandboxSpec {
        let plan = SandboxPlan::new(
            vec!["/usr/bin/python3".into(), "/work/main.py".into()],
            &FilesystemPolicy::builtin().expect("builtin"),
            SeccompPolicy::builtin().expect("builtin"),
        );
        plan.split().0
    }

    #[test]
    fn the_oci_config_and_each_job_process_carry_the_plan() {
        let plan = SandboxPlan::new(
            vec!["/usr/bin/python3".into(), "/work/main.py".into()],
            &FilesystemPolicy::builtin().expect("builtin"),
            SeccompPolicy::builtin().expect("builtin"),
        );
        let (spec, mut job) = plan.split();
        job.limits.max_open_files = 99;
        let config = oci_config(
            &spec,
            vec![],
            &Ids {
                host_id: 1_500_000_007,
                mapped: true,
            },
        );
        assert_eq!(
            config["process"]["args"][0],
            super::super::filter_exec::LOADER
        );
        assert_eq!(config["process"]["args"][2], "--keep");
        assert_eq!(config["process"]["user"]["uid"], KEEPER_ID);
        assert_eq!(config["root"]["readonly"], true);
        assert!(config["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .contains(&json!({"type": "user"})));
        for map in ["uidMappings", "gidMappings"] {
            assert_eq!(
                config["linux"][map],
                json!([{"containerID": 0, "hostID": 1_500_000_007u32, "size": 1}])
            );
        }
        // With egress, none (`Ids`).
        let unmapped = oci_config(
            &spec,
            vec![],
            &Ids {
                host_id: 1_500_000_007,
                mapped: false,
            },
        );
        assert!(!unmapped["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .contains(&json!({"type": "user"})));
        assert!(unmapped["linux"]["uidMappings"].is_null());
        assert_eq!(
            config["linux"]["seccomp"]["defaultAction"],
            "SCMP_ACT_ALLOW"
        );
        let process = oci_process(&job.argv, &job.env, &job.limits, 0);
        let config = json!({ "process": process });
        assert_eq!(config["process"]["args"][0], "/usr/bin/python3");
        assert_eq!(config["process"]["user"]["uid"], 0);
        assert_eq!(config["process"]["noNewPrivileges"], true);
        assert_eq!(config["process"]["capabilities"]["bounding"], json!([]));
        let rlimits = config["process"]["rlimits"].as_array().expect("rlimits");
        assert!(rlimits
            .iter()
            .any(|r| r["type"] == "RLIMIT_NOFILE" && r["soft"] == 99 && r["hard"] == 99));
        assert!(config["process"]["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e == "HOME=/work"));
    }

    #[test]
    fn dev_is_read_only_with_only_the_native_devices_writable() {
        let mounts = base_mounts(Path::new("/b"), &spec());
        let find = |at: &str| {
            mounts
                .iter()
                .find(|m| m["destination"] == at)
                .unwrap_or_else(|| panic!("{at} is mounted"))
        };
        assert_eq!(find("/dev")["source"], "/b/dev");
        assert!(find("/dev")["options"]
            .as_array()
            .expect("options")
            .contains(&json!("ro")));
        assert!(find("/dev/pts")["options"]
            .as_array()
            .expect("options")
            .contains(&json!("ro")));
        assert!(find("/sys")["options"]
            .as_array()
            .expect("options")
            .contains(&json!("ro")));
        for name in DEVICES {
            let device = format!("/dev/{name}");
            assert_eq!(find(&device)["source"], device.as_str());
        }
        let dev_mounts = mounts
            .iter()
            .filter(|m| {
                m["destination"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("/dev/"))
            })
            .count();
        assert_eq!(dev_mounts, DEVICES.len() + 1, "the devices and devpts only");
        assert_eq!(find("/work")["source"], "/b/scratch/work");
        assert_eq!(find("/tmp")["source"], "/b/scratch/tmp");
    }

    #[test]
    fn a_volume_at_the_workspace_replaces_the_scratch_workspace() {
        let mut spec = spec();
        spec.volumes.push(VolumeMount {
            host: "/var/lib/warden/volumes/v".into(),
            target: WORKDIR.into(),
            writable: true,
        });
        let mounts = base_mounts(Path::new("/b"), &spec);
        assert!(mounts.iter().all(|m| m["destination"] != WORKDIR));
        assert_eq!(
            workspace(Path::new("/b"), &spec),
            Path::new("/var/lib/warden/volumes/v")
        );
        spec.volumes.clear();
        assert_eq!(
            workspace(Path::new("/b"), &spec),
            Path::new("/b/scratch/work")
        );
    }
}
