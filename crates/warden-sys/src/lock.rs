//! Open file description locks on byte ranges (`F_OFD_SETLK`, fcntl(2)): released by the kernel
//! when the descriptor closes, even if the process dies, so a slot can never leak.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// Releases this open file description's lock on byte `offset` of the file.
pub fn unlock_byte(fd: BorrowedFd<'_>, offset: u64) -> Result<(), Errno> {
    set(fd, offset, libc::F_UNLCK).map(|_| ())
}

/// Tries to take an exclusive lock on byte `offset` of the file. `Ok(false)` when another open
/// file description holds it.
pub fn try_lock_byte(fd: BorrowedFd<'_>, offset: u64) -> Result<bool, Errno> {
    set(fd, offset, libc::F_WRLCK)
}

/// `F_OFD_SETLK` of `kind` on byte `offset`: `Ok(false)` when another description holds it.
fn set(fd: BorrowedFd<'_>, offset: u64, kind: libc::c_int) -> Result<bool, Errno> {
    // SAFETY: flock is plain old data; all-zero is a valid value, then filled in below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
    lock.l_len = 1;
    lock.l_pid = 0;
    // SAFETY: F_OFD_SETLK reads the flock struct, which lives for the whole call.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if ret == 0 {
        return Ok(true);
    }
    match Errno::last() {
        Errno::EAGAIN | Errno::EACCES => Ok(false),
        e => Err(e),
    }
}
