//! The new mount API calls that neither `nix` nor `libc` wraps: `open_tree` (a detached copy of
//! a mount), `mount_setattr` (its attributes, the id mapping among them) and `move_mount`
//! (attaching it). A sandbox's volumes are made with them: host root clones the volume's
//! directory, id-maps the clone to the sandbox's user namespace, and the sandbox's init attaches
//! it in its own mount namespace. `libc` 0.2 has the constants and `struct mount_attr` but no
//! functions, so these call `libc::syscall`.
//!
//! Man pages: open_tree(2), mount_setattr(2), move_mount(2), mount_namespaces(7).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// What [`set_detached_attributes`] sets on a detached mount. Attributes left `false` are left
/// as the clone has them (a clone starts with its source's).
#[derive(Debug, Clone, Copy, Default)]
pub struct MountAttributes<'a> {
    /// Id-map the mount through this user namespace (`MOUNT_ATTR_IDMAP`): an id `n` on disk is
    /// shown as whatever `n` of that namespace is, and back.
    pub id_map: Option<BorrowedFd<'a>>,
    /// `MOUNT_ATTR_RDONLY`.
    pub read_only: bool,
    /// `MOUNT_ATTR_NOSUID`.
    pub nosuid: bool,
    /// `MOUNT_ATTR_NODEV`.
    pub nodev: bool,
    /// Make the mount private (`MS_PRIVATE`): no mount event propagates in or out.
    pub private: bool,
}

/// `open_tree(dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)`: a detached copy
/// of the mount at `dir` (an open directory, `O_PATH` is enough), rooted at that directory and
/// without the mounts below it. The copy lives in an anonymous mount namespace until
/// [`move_detached`] attaches it; closing the descriptor before that unmounts it.
pub fn clone_detached(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | c_flag(libc::AT_EMPTY_PATH)?;
    // SAFETY: open_tree(2) takes a directory descriptor, a NUL-terminated path (the empty
    // string literal, which lives for the whole call) and flags; it writes to no memory of
    // ours. `dir` is a valid open descriptor for the call (it is borrowed).
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), c"".as_ptr(), flags) };
    owned_fd(ret)
}

/// `mount_setattr(mount, "", AT_EMPTY_PATH, attr)` on a mount descriptor from
/// [`clone_detached`]. An id mapping can only be set on a detached mount that was never
/// attached, by a caller privileged over both the filesystem and the user namespace.
pub fn set_detached_attributes(
    mount: BorrowedFd<'_>,
    attributes: &MountAttributes<'_>,
) -> Result<(), Errno> {
    let mut attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    for (wanted, flag) in [
        (attributes.read_only, libc::MOUNT_ATTR_RDONLY),
        (attributes.nosuid, libc::MOUNT_ATTR_NOSUID),
        (attributes.nodev, libc::MOUNT_ATTR_NODEV),
    ] {
        if wanted {
            attr.attr_set |= flag;
        }
    }
    if let Some(userns) = attributes.id_map {
        attr.attr_set |= libc::MOUNT_ATTR_IDMAP;
        attr.userns_fd = u64::try_from(userns.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    }
    if attributes.private {
        // `c_ulong` is `u64` here but `u32` on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let private = u64::from(libc::MS_PRIVATE);
        attr.propagation = private;
    }
    const _: () = assert!(std::mem::size_of::<libc::mount_attr>() == 32);
    // SAFETY: mount_setattr(2) reads `size` bytes of `attr`, a fully initialised
    // `struct mount_attr` (MOUNT_ATTR_SIZE_VER0, 32 bytes, asserted above) that lives on this
    // stack frame for the whole call; the path is the empty string literal. It writes to no
    // memory of ours. `mount` and the user namespace descriptor are borrowed, so open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            c_flag(libc::AT_EMPTY_PATH)?,
            std::ptr::addr_of!(attr),
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    unit(ret)
}

/// `move_mount(mount, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attaches the detached
/// mount at `target` in the caller's mount namespace. A symlink as `target`'s last component
/// is not followed (no `MOVE_MOUNT_T_SYMLINKS`).
pub fn move_detached(mount: BorrowedFd<'_>, target: &Path) -> Result<(), Errno> {
    let target = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: move_mount(2) takes two (descriptor, NUL-terminated path) pairs and flags: the
    // empty string literal and `target`, a CString alive until the call returns. It writes to
    // no memory of ours; `mount` is borrowed, so open.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    unit(ret)
}

fn c_flag(flag: libc::c_int) -> Result<libc::c_uint, Errno> {
    libc::c_uint::try_from(flag).map_err(|_| Errno::EINVAL)
}

fn unit(ret: libc::c_long) -> Result<(), Errno> {
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn owned_fd(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    if ret == -1 {
        return Err(Errno::last());
    }
    let fd = i32::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: the system call returned a new descriptor, installed in this process for this
    // call alone; nothing else knows its number, so it gets exactly one owner here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_target_with_a_nul_byte_is_refused_before_the_call() {
        let (read, _write) = nix::unistd::pipe().expect("pipe");
        assert_eq!(
            move_detached(read.as_fd(), Path::new("a\0b")),
            Err(Errno::EINVAL)
        );
    }
}
