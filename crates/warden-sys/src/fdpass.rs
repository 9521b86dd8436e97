//! Passing open descriptors between processes over a Unix socket (`SCM_RIGHTS`): the parent
//! hands each job's pipes to a live sandbox's init this way, since the init was created long
//! before the job existed. `nix` wraps the messages; taking ownership of the received numbers
//! is the unsafe part, and it lives here.
//!
//! Man pages: unix(7) (SCM_RIGHTS), sendmsg(2), recvmsg(2), cmsg(3).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Most descriptors one message may carry (a job's stdin, stdout, stderr and artifact pipe,
/// with room to spare).
pub const MAX_FDS: usize = 8;

/// Sends `bytes` (at least one byte: a stream socket drops an empty message's descriptors)
/// with duplicates of `fds` attached. Returns how many bytes went out.
pub fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<usize, Errno> {
    if bytes.is_empty() || fds.len() > MAX_FDS {
        return Err(Errno::EINVAL);
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Receives up to `buf.len()` bytes and the descriptors attached to them, owned and
/// close-on-exec. Zero bytes means the peer closed the socket.
pub fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (n, raw) = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(msg) => {
                let mut raw = Vec::new();
                for cmsg in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        raw.extend(fds);
                    }
                }
                let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
                break (msg.bytes, if truncated { Err(raw) } else { Ok(raw) });
            }
        }
    };
    let own = |fds: Vec<RawFd>| -> Vec<OwnedFd> {
        fds.into_iter()
            // SAFETY: the kernel installed each of these descriptors in this process for this
            // message (SCM_RIGHTS); nothing else in the process knows their numbers, so each gets
            // exactly one owner here.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect()
    };
    match raw {
        Ok(fds) => Ok((n, own(fds))),
        // More descriptors than room: close what did arrive rather than leak them.
        Err(fds) => {
            drop(own(fds));
            Err(Errno::EMSGSIZE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn descriptors_cross_a_socket_and_stay_usable() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let (read, write) = nix::unistd::pipe().expect("pipe");
        send_with_fds(a.as_fd(), b"j", &[write.as_fd()]).expect("sent");
        drop(write);
        let mut buf = [0u8; 4];
        let (n, fds) = recv_with_fds(b.as_fd(), &mut buf).expect("received");
        assert_eq!((n, buf[0], fds.len()), (1, b'j', 1));
        let mut writer = std::fs::File::from(fds.into_iter().next().expect("one fd"));
        writer
            .write_all(b"hello")
            .expect("write through the passed end");
        drop(writer);
        let mut text = String::new();
        std::fs::File::from(read)
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "hello");
        drop(a);
        let (n, fds) = recv_with_fds(b.as_fd(), &mut buf).expect("eof");
        assert_eq!((n, fds.len()), (0, 0));
    }

    #[test]
    fn empty_messages_are_refused() {
        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        assert_eq!(send_with_fds(a.as_fd(), b"", &[]), Err(Errno::EINVAL));
    }
}
