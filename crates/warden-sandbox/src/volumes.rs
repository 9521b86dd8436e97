//! A sandbox's volumes (`SandboxSpec::volumes`): host directories mounted id-mapped into the
//! sandbox. Two processes take part, and each does what only it can:
//!
//! - the **helper** (host root, in the host's mount namespace) makes each mount, once it has
//!   written the init's id maps: it clones the host directory into a detached mount
//!   (`open_tree`), and id-maps it to the init's user namespace (`/proc/<init>/ns/user`) with
//!   `nosuid`, `nodev`, private propagation and, for a read-only volume, read-only
//!   (`mount_setattr`). Only host root can: an id mapping needs privilege over the
//!   filesystem (the host's) and over the user namespace, and must be set before the mount is
//!   attached anywhere. Through that mapping, uid and gid 0 on disk are the sandbox's root
//!   (host: the slot's uid), so the next sandbox, in another slot, owns the same files; other
//!   ids on disk show as `nobody` and are read-only to the sandbox.
//! - the **init** (pid 1 of the sandbox, in its own mount namespace) receives the mounts on
//!   the socket it waits on for its id maps (`SCM_RIGHTS`, one message per volume, then the
//!   release byte), and attaches each in the new root (`move_mount`) before `pivot_root`.
//!
//! The mounts never enter the host's mount namespace: until attached they live in anonymous
//! namespaces held by their descriptors (a mount whose descriptor closes unattached is
//! unmounted), then in the sandbox's, which dies with its init. Nothing is left to unmount.
//!
//! The clone is not recursive: a volume is one filesystem (in practice the mount of its
//! image), and mounts that happen to sit below its host directory are not part of it (nor
//! could every filesystem type be id-mapped).
//!
//! The host path is opened without following any symlink (`RESOLVE_NO_SYMLINKS`): a volume
//! may sit below a directory a sandbox could write, and a link planted there must not turn
//! into a mount of the host's `/etc` (ARCHITECTURE.md invariant 5).
//!
//! The attributes are not locked against the sandbox's own root: the kernel locks them only
//! on mounts copied into a less privileged namespace, and these are moved, not copied. Only
//! the init holds that root's capabilities; the program runs with none, under no_new_privs,
//! and its seccomp filter denies every mount system call, so it cannot remount a read-only
//! volume writable.
//!
//! Man pages: open_tree(2), mount_setattr(2), move_mount(2), openat2(2), unix(7).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use warden_sys::fdpass::{recv_with_fds, send_with_fds};
use warden_sys::mount::{clone_detached, move_detached, set_detached_attributes, MountAttributes};

use crate::child::SetupError;
use crate::mounts;
use crate::plan::VolumeMount;

/// The byte that carries one volume's mount.
const VOLUME: u8 = b'v';
/// The byte that releases the init: its id maps are written and every volume was sent.
const RELEASE: u8 = 1;

/// In the helper, after the init's id maps are written: a detached, id-mapped mount of each
/// volume's host directory, in the order of `volumes`.
pub(crate) fn make_mounts(volumes: &[VolumeMount], init: Pid) -> Result<Vec<OwnedFd>, SetupError> {
    if volumes.is_empty() {
        return Ok(Vec::new());
    }
    let userns_path = format!("/proc/{init}/ns/user");
    let userns = nix::fcntl::open(
        userns_path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::sys("open the init's user namespace", Path::new(&userns_path), e))?;
    volumes
        .iter()
        .map(|volume| {
            make_one(volume, userns.as_fd())
                .map_err(|e| SetupError::sys("make volume mount of", &volume.host, e))
        })
        .collect()
}

/// A detached mount of `volume`'s host directory, id-mapped to `userns` (uid and gid 0 on disk
/// are that namespace's root), `nosuid`, `nodev`, private, and read-only unless writable: the
/// native init's, and a gVisor sandbox's (`gvisor/bundle.rs`).
pub(crate) fn make_one(
    volume: &VolumeMount,
    userns: std::os::fd::BorrowedFd<'_>,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let dir = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, &volume.host, how)?;
    let mount = clone_detached(dir.as_fd())?;
    set_detached_attributes(
        mount.as_fd(),
        &MountAttributes {
            id_map: Some(userns),
            read_only: !volume.writable,
            nosuid: true,
            nodev: true,
            private: true,
        },
    )?;
    Ok(mount)
}

/// In the helper: sends each mount to the init, then the byte that releases it.
pub(crate) fn release(sync: &OwnedFd, mounts: Vec<OwnedFd>) -> Result<(), SetupError> {
    for mount in &mounts {
        send_with_fds(sync.as_fd(), &[VOLUME], &[mount.as_fd()])
            .map_err(|e| SetupError::errno("send a volume to the init", e))?;
    }
    // The init holds them now (or they are in flight to it); the helper's copies go.
    drop(mounts);
    send_with_fds(sync.as_fd(), &[RELEASE], &[])
        .map(drop)
        .map_err(|e| SetupError::errno("release the init", e))
}

/// In the init: blocks until the helper has written the id maps and moved it into the
/// cgroup; returns the volumes' mounts it sent on the way, in the spec's order.
pub(crate) fn wait_for_release(sync: OwnedFd) -> Result<Vec<OwnedFd>, SetupError> {
    let mut mounts = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let (n, mut fds) = recv_with_fds(sync.as_fd(), &mut byte)
            .map_err(|e| SetupError::errno("wait for id maps", e))?;
        match (n, byte[0], fds.len()) {
            (0, _, _) => {
                return Err(SetupError::new(
                    "wait for id maps",
                    "the helper closed the sync socket",
                ))
            }
            (1, VOLUME, 1) => mounts.extend(fds.pop()),
            (1, RELEASE, 0) => return Ok(mounts),
            (_, byte, count) => {
                return Err(SetupError::new(
                    "wait for id maps",
                    format!("unexpected message {byte} with {count} descriptors"),
                ))
            }
        }
    }
}

/// In the init, after `pivot_root` and the workspace tmpfs, while `/` is writable: attaches
/// each volume's mount at its target, created as an empty directory in the root tmpfs (for
/// `/work`, the directory the workspace tmpfs would have had).
pub(crate) fn attach(volumes: &[VolumeMount], received: Vec<OwnedFd>) -> Result<(), SetupError> {
    if received.len() != volumes.len() {
        return Err(SetupError::new(
            "attach volumes",
            format!("{} volumes but {} mounts", volumes.len(), received.len()),
        ));
    }
    for (volume, mount) in volumes.iter().zip(received) {
        mounts::mkdir(&volume.target)?;
        move_detached(mount.as_fd(), &volume.target)
            .map_err(|e| SetupError::sys("attach volume at", &volume.target, e))?;
    }
    Ok(())
}
