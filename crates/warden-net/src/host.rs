//! The host's own addresses, which no policy may let a sandbox reach (DESIGN.md §4: the deny
//! set). Read in the caller's network namespace: call it from warden's own threads, which stay
//! in the host's.
//!
//! Man pages: getifaddrs(3).

use std::net::IpAddr;

/// Every address of every interface of the caller's network namespace (loopback included),
/// each once. Empty, with a warning, if the interfaces cannot be listed; the policy's deny set
/// of loopback, private, shared and link-local ranges still holds then.
pub fn host_addresses() -> Vec<IpAddr> {
    let interfaces = match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => interfaces,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the host's addresses");
            return Vec::new();
        }
    };
    let mut addrs = Vec::new();
    for interface in interfaces {
        let Some(address) = interface.address else {
            continue;
        };
        let addr = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue; // a link-layer address
        };
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_address_is_among_the_hosts() {
        let addrs = host_addresses();
        assert!(
            addrs.contains(&IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }
}
