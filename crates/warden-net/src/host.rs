//! The host's own addresses, and the networks around it, which no policy may let a sandbox
//! reach (DESIGN.md §4: the deny set): every interface's address, the network each address is
//! on (the host's neighbours), and its routers (every route's gateway, every point-to-point
//! interface's peer). A host on a public network would otherwise let an `internet_access`
//! sandbox reach its gateway's and neighbours' services, which trust the host. Read in the
//! caller's network namespace: call it from warden's own threads, which stay in the host's.
//!
//! Man pages: getifaddrs(3); route(8) and proc_net(5) for `/proc/net/route` (and its
//! undocumented IPv6 sibling `/proc/net/ipv6_route`, written by the kernel's
//! `net/ipv6/route.c`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use nix::sys::socket::SockaddrStorage;

/// `RTF_UP` of `<linux/route.h>`: the route is usable.
const RTF_UP: u32 = 0x1;
/// `RTF_GATEWAY`: the destination is reached through a router.
const RTF_GATEWAY: u32 = 0x2;

/// What of the host's surroundings a sandbox may not reach, beside the fixed deny set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNetworks {
    /// Every address of every interface (loopback included), each once.
    pub addresses: Vec<IpAddr>,
    /// The network of every interface address, as its first address and prefix length, each
    /// once (a `/0` netmask, which would name every address, is left out).
    pub networks: Vec<(IpAddr, u8)>,
    /// The gateway of every route through one, and the peer of every point-to-point
    /// interface, each once.
    pub gateways: Vec<IpAddr>,
}

/// The host's addresses, networks and gateways (see [`HostNetworks`]) in the caller's network
/// namespace. Costs one getifaddrs(3) and a read of two small files of `/proc`: about 55 µs
/// on a 2-core test machine, 20 of them the files (`warden network check` and an execution
/// with a policy that lets traffic out read it; nothing else does). What cannot be read is
/// left out, with a warning; the fixed deny set of loopback, private, shared and link-local
/// ranges still holds then.
pub fn host_networks() -> HostNetworks {
    let mut found = HostNetworks::default();
    match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => {
            for interface in interfaces {
                found.add_interface(
                    interface.address.as_ref(),
                    interface.netmask.as_ref(),
                    interface.destination.as_ref(),
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the host's addresses"),
    }
    found.read_gateways(Path::new("/proc/net"));
    found
}

impl HostNetworks {
    /// Adds one entry of getifaddrs(3): its address, its address's network, and a
    /// point-to-point peer.
    fn add_interface(
        &mut self,
        address: Option<&SockaddrStorage>,
        netmask: Option<&SockaddrStorage>,
        destination: Option<&SockaddrStorage>,
    ) {
        let Some(addr) = address.and_then(ip_of) else {
            return; // a link-layer address
        };
        push_new(&mut self.addresses, addr);
        if let Some(network) = netmask
            .and_then(ip_of)
            .and_then(|mask| network_of(addr, mask))
        {
            push_new(&mut self.networks, network);
        }
        // Set only for a point-to-point interface (`ifa_dstaddr`); a broadcast address is
        // `broadcast`, inside the network already.
        if let Some(peer) = destination.and_then(ip_of) {
            push_new(&mut self.gateways, peer);
        }
    }

    /// Adds the gateways of the routing tables in `proc_net` (`route`, `ipv6_route`).
    fn read_gateways(&mut self, proc_net: &Path) {
        for (file, parse) in [
            ("route", ipv4_gateways as fn(&str) -> Vec<IpAddr>),
            ("ipv6_route", ipv6_gateways),
        ] {
            let path = proc_net.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    for gateway in parse(&text) {
                        push_new(&mut self.gateways, gateway);
                    }
                }
                // No IPv6 on this kernel: no IPv6 gateway either.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "cannot read the routes");
                }
            }
        }
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        Some(IpAddr::V4(v4.ip()))
    } else {
        address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
    }
}

/// The network of `addr` under `mask`: its first address and prefix length; `None` for a
/// mask that is not a prefix, of another family, or empty.
fn network_of(addr: IpAddr, mask: IpAddr) -> Option<(IpAddr, u8)> {
    let prefix = |mask: u128, bits: u32| {
        let prefix = mask.leading_ones();
        let contiguous = mask.checked_shl(prefix).unwrap_or(0) == 0;
        u8::try_from(prefix.min(bits))
            .ok()
            .filter(|p| *p > 0 && contiguous)
    };
    match (addr, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => {
            let prefix = prefix(u128::from(m.to_bits()) << 96, 32)?;
            Some((
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & m.to_bits())),
                prefix,
            ))
        }
        (IpAddr::V6(a), IpAddr::V6(m)) => {
            let prefix = prefix(m.to_bits(), 128)?;
            Some((
                IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & m.to_bits())),
                prefix,
            ))
        }
        _ => None,
    }
}

/// The gateways of `/proc/net/route`: a header line, then per route the interface, the
/// destination, the gateway and the flags (addresses as the hex of their bytes read as a
/// native integer).
fn ipv4_gateways(text: &str) -> Vec<IpAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let gateway = u32::from_str_radix(fields.get(2)?, 16).ok()?;
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            let gateway = Ipv4Addr::from(gateway.to_ne_bytes());
            let through = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
            (through && !gateway.is_unspecified()).then_some(IpAddr::V4(gateway))
        })
        .collect()
}

/// The gateways of `/proc/net/ipv6_route`: per route, the destination and its prefix length,
/// the source and its prefix length, the next hop, the metric, two counters and the flags
/// (addresses as 32 hex digits, in network order).
fn ipv6_gateways(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let next_hop = u128::from_str_radix(fields.get(4)?, 16).ok()?;
            let flags = u32::from_str_radix(fields.get(8)?, 16).ok()?;
            let next_hop = Ipv6Addr::from_bits(next_hop);
            let through = flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
            (through && !next_hop.is_unspecified()).then_some(IpAddr::V6(next_hop))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn the_loopback_address_is_among_the_hosts() {
        let addrs = host_networks().addresses;
        assert!(
            addrs.contains(&IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }

    /// A made-up host's tables (not this machine's): a LAN, a default route through its
    /// router, a static route through another, a route without a gateway, a down route.
    #[test]
    fn the_gateways_are_read_from_the_routing_tables() {
        let hex = |a: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(a));
        let ipv4 = format!(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t{}\t{}\t0003\t0\t0\t100\t{}\t0\t0\t0\n\
             eth0\t{}\t{}\t0001\t0\t0\t100\t{}\t0\t0\t0\n\
             eth0\t{}\t{}\t0003\t0\t0\t0\t{}\t0\t0\t0\n\
             eth1\t{}\t{}\t0002\t0\t0\t0\t{}\t0\t0\t0\n",
            hex([0, 0, 0, 0]),
            hex([198, 51, 100, 1]),
            hex([0, 0, 0, 0]),
            hex([198, 51, 100, 0]),
            hex([0, 0, 0, 0]),
            hex([255, 255, 255, 0]),
            hex([203, 0, 113, 0]),
            hex([198, 51, 100, 254]),
            hex([255, 255, 255, 0]),
            hex([192, 0, 2, 0]),
            hex([192, 0, 2, 9]),
            hex([255, 255, 255, 0]),
        );
        assert_eq!(
            ipv4_gateways(&ipv4),
            [ip("198.51.100.1"), ip("198.51.100.254")]
        );
        let ipv6 = "\
            20010db8000000000000000000000000 40 00000000000000000000000000000000 00 \
            00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
            20010db8000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
            00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(ipv6_gateways(ipv6), [ip("2001:db8::1")]);
        let mut found = HostNetworks::default();
        found.read_gateways(Path::new("/nonexistent/proc/net"));
        assert_eq!(found, HostNetworks::default(), "no table, no gateway");
    }

    #[test]
    fn an_interface_address_gives_its_network() {
        assert_eq!(
            network_of(ip("198.51.100.7"), ip("255.255.255.0")),
            Some((ip("198.51.100.0"), 24))
        );
        assert_eq!(
            network_of(ip("2001:db8::7"), ip("ffff:ffff:ffff:ffff::")),
            Some((ip("2001:db8::"), 64))
        );
        assert_eq!(
            network_of(ip("203.0.113.9"), ip("255.255.255.255")),
            Some((ip("203.0.113.9"), 32))
        );
        assert_eq!(network_of(ip("203.0.113.9"), ip("0.0.0.0")), None);
        assert_eq!(network_of(ip("203.0.113.9"), ip("255.0.255.0")), None);
        assert_eq!(network_of(ip("203.0.113.9"), ip("ffff::")), None);
    }
}
