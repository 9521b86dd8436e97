//! The proxy's sockets inside a sandbox's network namespace, opened by warden from a thread
//! that entered it (`netns.rs`). A socket stays in the namespace it was created in, so the
//! proxy accepts on them from warden's own runtime; the sandbox sees ordinary loopback
//! services and can reach nothing else.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};

use crate::netns::{run_in, NetnsError};

/// The HTTP proxy's port inside the sandbox (squid's conventional one).
pub const HTTP_PROXY_PORT: u16 = 3128;
/// The SOCKS5 proxy's port inside the sandbox.
pub const SOCKS_PORT: u16 = 1080;
/// The resolver's port inside the sandbox (UDP and TCP).
pub const DNS_PORT: u16 = 53;
/// Where the nftables rule redirects every other outbound TCP connection.
pub const TRANSPARENT_PORT: u16 = 15001;

/// The proxy's listening sockets in one sandbox's network namespace, non-blocking and
/// close-on-exec; handed to [`Proxy::start`](crate::Proxy::start). Dropping them closes them.
#[derive(Debug)]
pub struct NetnsListeners {
    pub(crate) http: TcpListener,
    pub(crate) socks: TcpListener,
    pub(crate) dns_udp: UdpSocket,
    pub(crate) dns_tcp: TcpListener,
    pub(crate) transparent: TcpListener,
}

/// Opens the proxy's listeners on `127.0.0.1` inside the network namespace `netns` (an open
/// `/proc/<pid>/ns/net`), bringing `lo` up first: `127.0.0.1` exists only on an up `lo`.
pub fn open_listeners(netns: &File) -> Result<NetnsListeners, NetnsError> {
    run_in(netns, || {
        warden_sys::network::bring_up_loopback().map_err(NetnsError::Loopback)?;
        let listeners = NetnsListeners {
            http: tcp("http proxy", HTTP_PROXY_PORT)?,
            socks: tcp("socks5", SOCKS_PORT)?,
            dns_udp: udp("dns", DNS_PORT)?,
            dns_tcp: tcp("dns", DNS_PORT)?,
            transparent: tcp("transparent", TRANSPARENT_PORT)?,
        };
        tracing::debug!("proxy listeners open in the sandbox's network namespace");
        Ok(listeners)
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

fn tcp(what: &'static str, port: u16) -> Result<TcpListener, NetnsError> {
    let addr = loopback(port);
    let listen_error = |source| NetnsError::Listen { what, addr, source };
    let listener = TcpListener::bind(addr).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    Ok(listener)
}

fn udp(what: &'static str, port: u16) -> Result<UdpSocket, NetnsError> {
    let addr = loopback(port);
    let listen_error = |source| NetnsError::Listen { what, addr, source };
    let socket = UdpSocket::bind(addr).map_err(listen_error)?;
    socket.set_nonblocking(true).map_err(listen_error)?;
    Ok(socket)
}
