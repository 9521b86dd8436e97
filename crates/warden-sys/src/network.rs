//! The loopback interface of a fresh network namespace starts down; this brings it up so
//! programs can talk to themselves on 127.0.0.1 (and nothing else: there is no other
//! interface). netdevice(7).

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Sets `IFF_UP` on `lo` in the current network namespace.
pub fn bring_up_loopback() -> Result<(), Errno> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, which lives for
    // the whole call; the socket fd is open.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(Errno::last());
    }
    // SAFETY: after a successful SIOCGIFFLAGS the flags member of the union is the active one.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// How many bytes a connected TCP socket still holds that its peer has not acknowledged
/// (`SIOCOUTQ`, tcp(7)): what was written to it and not yet taken by the other end.
pub fn unacknowledged_bytes(fd: std::os::fd::BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ's number) writes one int into `queued`, which lives for the
    // whole call; the descriptor is borrowed, so open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) } < 0 {
        return Err(Errno::last());
    }
    Ok(u64::try_from(queued).unwrap_or(0))
}
