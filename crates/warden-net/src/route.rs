//! The default IPv4 route via `lo` of a sandbox's namespace, added over rtnetlink: without a
//! route, `connect(2)` to any non-loopback address fails with `ENETUNREACH` before netfilter
//! sees a packet, so nothing could be intercepted. One netlink message instead of spawning
//! `ip route` (which costs ~3 ms per sandbox). Runs on the thread inside the namespace.
//!
//! Man pages: rtnetlink(7), netlink(7).

use nix::errno::Errno;
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTA_OIF: u16 = 4;
const RTA_PREFSRC: u16 = 7;

/// `ip -4 route replace default dev lo src 127.0.0.1` in the current thread's namespace.
/// `src`: without it the kernel picks 0.0.0.0 as the source of a connection that follows this
/// route, and the program sees that as its local address.
pub(crate) fn replace_default_via_lo() -> Result<(), Errno> {
    let lo = nix::net::if_::if_nametoindex("lo")?;
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &message(lo),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut reply = [0u8; 1024];
    let len = recv(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &mut reply,
        MsgFlags::empty(),
    )?;
    acknowledged(&reply[..len])
}

/// The RTM_NEWROUTE request: header, `rtmsg`, then the output interface and preferred source.
fn message(lo: u32) -> Vec<u8> {
    let mut body = vec![
        2, // rtm_family: AF_INET
        0, // rtm_dst_len: the default route
        0, // rtm_src_len
        0, // rtm_tos
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_LINK,
        RTN_UNICAST,
        0,
        0,
        0,
        0, // rtm_flags
    ];
    attribute(&mut body, RTA_OIF, &lo.to_ne_bytes());
    attribute(&mut body, RTA_PREFSRC, &[127, 0, 0, 1]);
    let len = u32::try_from(16 + body.len()).expect("a few dozen bytes");
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel assigns it
    msg.extend_from_slice(&body);
    msg
}

/// Appends an `rtattr` (length, type, payload padded to 4 bytes).
fn attribute(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).expect("a short attribute");
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The kernel's answer to a request with `NLM_F_ACK`: an `NLMSG_ERROR` whose error is 0 on
/// success, minus the errno otherwise.
fn acknowledged(reply: &[u8]) -> Result<(), Errno> {
    let field = |at: usize| reply.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
    let kind = reply.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    match (kind, field(16).map(i32::from_ne_bytes)) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(error)) => Err(Errno::from_raw(-error)),
        _ => Err(Errno::EPROTO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_well_formed_route_message() {
        let msg = message(1);
        assert_eq!(msg.len(), 16 + 12 + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize,
            msg.len()
        );
        let attribute = |at: usize| {
            (
                u16::from_ne_bytes([msg[at], msg[at + 1]]),
                u16::from_ne_bytes([msg[at + 2], msg[at + 3]]),
            )
        };
        assert_eq!(attribute(28), (8, RTA_OIF));
        assert_eq!(&msg[32..36], &1u32.to_ne_bytes());
        assert_eq!(attribute(36), (8, RTA_PREFSRC));
        assert_eq!(&msg[40..44], &[127, 0, 0, 1]);
    }

    #[test]
    fn the_ack_says_whether_it_worked() {
        let mut ack = vec![0; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(acknowledged(&ack), Ok(()));
        ack[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(acknowledged(&ack), Err(Errno::EPERM));
        assert_eq!(acknowledged(&[]), Err(Errno::EPROTO));
    }
}
