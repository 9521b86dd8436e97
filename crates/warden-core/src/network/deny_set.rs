//! The deny set: addresses no policy rule can reach, whatever it says. A sandbox that could
//! connect to them could talk to the host's own services, the cloud provider's metadata service
//! (credentials), the operator's private network, or warden itself.
//!
//! The fixed ranges are the special-purpose registries of IANA (RFC 6890 and its updates) minus
//! the globally routable ones and the documentation ranges (some networks put real services in
//! them), plus multicast, every IPv6 address outside global unicast (`2000::/3`), and what can
//! be turned into one of them. An address that embeds an IPv4 address is judged by that
//! address too ([`effective`]): an IPv4-mapped one (`::ffff:a.b.c.d`) is the IPv4 address
//! itself to the kernel, and a NAT64 one (`64:ff9b::a.b.c.d`, RFC 6052) reaches it through the
//! translator, so both stand for it alone; the other forms (IPv4-compatible, SIIT, local-use
//! NAT64, 6to4) are denied outright, and their IPv4 address is checked as well. The host's own
//! addresses, networks and gateways and warden's service addresses are added by the caller at
//! evaluation time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::host::IpNet;

/// One range of the deny set, with why it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeniedRange {
    /// The range.
    pub net: IpNet,
    /// Why no sandbox may reach it.
    pub reason: &'static str,
}

const fn v4(octets: [u8; 4], prefix: u8, reason: &'static str) -> DeniedRange {
    DeniedRange {
        net: IpNet::v4(octets, prefix),
        reason,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, reason: &'static str) -> DeniedRange {
    DeniedRange {
        net: IpNet::v6(segments, prefix),
        reason,
    }
}

/// The fixed ranges. The first range containing an address names it, so narrower ranges come
/// before the wider ones that contain them (`::1/128` before `::/96`).
pub const DENY_SET: &[DeniedRange] = &[
    v4(
        [0, 0, 0, 0],
        8,
        "\"this network\"; 0.0.0.0 reaches the host itself on Linux, RFC 791",
    ),
    v4([10, 0, 0, 0], 8, "private network, RFC 1918"),
    v4(
        [100, 64, 0, 0],
        10,
        "shared address space of carrier-grade NAT, RFC 6598",
    ),
    v4(
        [127, 0, 0, 0],
        8,
        "loopback: the host's own services, RFC 1122",
    ),
    v4(
        [169, 254, 0, 0],
        16,
        "link-local, home of the cloud metadata service 169.254.169.254, RFC 3927",
    ),
    v4([172, 16, 0, 0], 12, "private network, RFC 1918"),
    v4(
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments, incl. some clouds' metadata service, RFC 6890",
    ),
    v4(
        [192, 88, 99, 0],
        24,
        "6to4 relay anycast, deprecated, RFC 7526",
    ),
    v4([192, 168, 0, 0], 16, "private network, RFC 1918"),
    v4([198, 18, 0, 0], 15, "benchmarking, RFC 2544"),
    v4([224, 0, 0, 0], 4, "multicast, RFC 5771"),
    v4(
        [240, 0, 0, 0],
        4,
        "reserved, and the broadcast address 255.255.255.255, RFC 1112",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        128,
        "the unspecified address; reaches the host itself",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        "loopback: the host's own services, RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-compatible, deprecated, RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0xffff, 0, 0, 0],
        96,
        "IPv4-translated (SIIT), reaches the embedded IPv4 address through a translator, RFC 2765",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64, reaches private networks, RFC 8215",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only, RFC 6666"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments, incl. Teredo tunnels to embedded IPv4 addresses, RFC 2928",
    ),
    v6(
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        "6to4, embeds IPv4 addresses, deprecated, RFC 7526",
    ),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "unique local: private networks, RFC 4193",
    ),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local, RFC 4291"),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local, deprecated, RFC 3879",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast, RFC 4291"),
    // Last: everything else outside 2000::/3 (`::/3`, `4000::/2`, `8000::/1`), but the NAT64
    // prefix, judged by the IPv4 address inside (`fixed_range`).
    v6([0, 0, 0, 0, 0, 0, 0, 0], 3, OUTSIDE_GLOBAL_UNICAST),
    v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2, OUTSIDE_GLOBAL_UNICAST),
    v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1, OUTSIDE_GLOBAL_UNICAST),
];

const OUTSIDE_GLOBAL_UNICAST: &str =
    "outside 2000::/3, the only IPv6 space assigned for global unicast: nothing on the \
     internet is there, RFC 4291";

/// The well-known NAT64 prefix (RFC 6052): the last 32 bits are an IPv4 address.
const NAT64: IpNet = IpNet::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

/// The forms with an IPv4 address in their last 32 bits, each denied as a range of its own:
/// IPv4-compatible (`::a.b.c.d`, RFC 4291), SIIT (`::ffff:0:a.b.c.d`, RFC 2765) and local-use
/// NAT64 in its /96 format (RFC 8215).
const LAST_32_BITS: [IpNet; 3] = [
    IpNet::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
    IpNet::v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
    IpNet::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 96),
];

/// 6to4 (RFC 3056): the 32 bits after `2002:` are an IPv4 address.
const SIX_TO_FOUR: IpNet = IpNet::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// Why an address is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DenyHit {
    /// A fixed range.
    Range(&'static DeniedRange),
    /// One of the host's own addresses.
    HostAddress(IpAddr),
    /// A network the host has an address on.
    HostNetwork(IpNet),
    /// A router or point-to-point peer of the host.
    HostGateway(IpAddr),
    /// One of warden's own service addresses.
    Service(SocketAddr),
}

/// The addresses `addr` stands for, which the deny set and every rule judge alike: the address
/// itself (an IPv4-mapped one as its IPv4 address, which it is to the kernel), then the IPv4
/// address embedded in a NAT64, IPv4-compatible, SIIT or 6to4 address. A rule matching either
/// matches the attempt, so that a rule denying `203.0.113.0/24` also denies
/// `64:ff9b::cb00:7105`. `::` and `::1` embed nothing: they are the unspecified and loopback
/// addresses themselves, not IPv4-compatible forms of 0.0.0.0 and 0.0.0.1 (RFC 4291 §2.5.5.1
/// excludes them), so an exemption of `::1` exempts it rather than meeting `0.0.0.0/8`.
pub(super) fn effective(addr: IpAddr) -> impl Iterator<Item = IpAddr> {
    let addr = addr.to_canonical();
    let embedded = match addr {
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_loopback() => None,
        IpAddr::V6(v6) => {
            let o = v6.octets();
            if NAT64.contains(addr) || LAST_32_BITS.iter().any(|n| n.contains(addr)) {
                Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
            } else if SIX_TO_FOUR.contains(addr) {
                Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
            } else {
                None
            }
        }
        IpAddr::V4(_) => None,
    };
    std::iter::once(addr).chain(embedded.map(IpAddr::V4))
}

/// The first fixed range containing `addr` (already made [`effective`]). A NAT64 address is
/// in none: the IPv4 address inside decides.
pub(super) fn fixed_range(addr: IpAddr) -> Option<&'static DeniedRange> {
    if NAT64.contains(addr) {
        return None;
    }
    DENY_SET.iter().find(|r| r.net.contains(addr))
}

/// Whether `addr` (already made [`effective`]) is one of the host's or warden's own. A service
/// address on the unspecified address listens on every host address, which `host` holds; on
/// port 0 it stands for every port.
pub(super) fn own_address(
    addr: IpAddr,
    port: u16,
    host: &[IpAddr],
    services: &[SocketAddr],
) -> Option<DenyHit> {
    let own = host.iter().find(|a| a.to_canonical() == addr);
    // A service first: an operator's policy may exempt a host address, never a service. One
    // on the unspecified address listens on every address of the host (loopback included);
    // a connection to the unspecified address (0.0.0.0, ::) reaches this host, whatever
    // address a service listens on.
    let service = services.iter().find(|s| {
        let on = s.ip().to_canonical();
        (s.port() == 0 || s.port() == port)
            && (on == addr
                || addr.is_unspecified()
                || (on.is_unspecified() && (own.is_some() || addr.is_loopback())))
    });
    service
        .map(|s| DenyHit::Service(*s))
        .or(own.map(|a| DenyHit::HostAddress(*a)))
}

/// Whether `addr` (already made [`effective`]) is one of the host's gateways or on one of its
/// networks: its neighbours, which trust it as they would not the internet.
pub(super) fn surroundings(
    addr: IpAddr,
    networks: &[IpNet],
    gateways: &[IpAddr],
) -> Option<DenyHit> {
    let gateway = gateways.iter().find(|g| g.to_canonical() == addr);
    gateway.map(|g| DenyHit::HostGateway(*g)).or_else(|| {
        networks
            .iter()
            .find(|n| n.contains(addr))
            .map(|n| DenyHit::HostNetwork(*n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn reason(s: &str) -> Option<&'static str> {
        effective(ip(s)).find_map(fixed_range).map(|r| r.reason)
    }

    /// Regression (bug hunt: `allow_denied = ["::1"]` could never work, since `::1` was read
    /// as the IPv4-compatible form of 0.0.0.1, then denied by `0.0.0.0/8` with its reason).
    #[test]
    fn network_the_unspecified_and_loopback_ipv6_addresses_are_themselves() {
        for (addr, why) in [("::1", "loopback"), ("::", "unspecified")] {
            assert_eq!(effective(ip(addr)).collect::<Vec<_>>(), [ip(addr)]);
            assert!(reason(addr).is_some_and(|r| r.contains(why)), "{addr}");
        }
        assert_eq!(
            effective(ip("::2")).collect::<Vec<_>>(),
            [ip("::2"), ip("0.0.0.2")],
            "the other IPv4-compatible forms still embed their address"
        );
    }

    #[test]
    fn network_deny_set_holds_the_special_ranges() {
        for addr in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "192.0.0.192",
            "198.18.0.1",
            "224.0.0.251",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            // Bug hunt: SIIT forms and addresses outside global unicast were allowed.
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "::ffff:0:808:808",
            "5f00::1",
            "::1:0:0:1",
            "1fff::1",
            "4000::1",
            "8000::1",
            "e000::1",
        ] {
            assert!(reason(addr).is_some(), "{addr} is not denied");
        }
        assert!(reason("5f00::1").is_some_and(|r| r.contains("2000::/3")));
        assert!(reason("::ffff:0:808:808").is_some_and(|r| r.contains("SIIT")));
        // The documentation ranges are not special to routing: some networks use them (a
        // registry mirror behind one, say), and nothing of the host's is there.
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "203.0.113.80",
            "2001:db8::1",
            "3fff::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(reason(addr), None, "{addr} is denied");
        }
        assert!(reason("169.254.169.254").is_some_and(|r| r.contains("metadata")));
        assert!(reason("::1").is_some_and(|r| r.contains("loopback")));
    }

    #[test]
    fn network_deny_set_ranges_are_valid_networks_with_reasons() {
        for range in DENY_SET {
            let again = IpNet::new(range.net.addr(), range.net.prefix());
            assert_eq!(again, Ok(range.net), "{}", range.net);
            assert!(!range.reason.is_empty());
        }
    }

    #[test]
    fn network_own_addresses_are_matched_through_mapping_and_ports() {
        let host = [ip("198.51.100.7"), ip("2001:db8::7")];
        let services: [SocketAddr; 2] = [
            "203.0.113.5:2358".parse().expect("addr"),
            "[2001:db8::9]:0".parse().expect("addr"),
        ];
        let hit =
            |a: &str, port| effective(ip(a)).find_map(|a| own_address(a, port, &host, &services));
        assert!(matches!(
            hit("::ffff:198.51.100.7", 80),
            Some(DenyHit::HostAddress(_))
        ));
        assert!(matches!(
            hit("203.0.113.5", 2358),
            Some(DenyHit::Service(_))
        ));
        assert_eq!(hit("203.0.113.5", 80), None);
        let anywhere: [SocketAddr; 1] = ["0.0.0.0:2358".parse().expect("addr")];
        let on = |a: &str, port| own_address(ip(a), port, &host, &anywhere);
        assert!(matches!(
            on("198.51.100.7", 2358),
            Some(DenyHit::Service(_))
        ));
        assert!(matches!(on("127.0.0.1", 2358), Some(DenyHit::Service(_))));
        assert!(matches!(
            on("198.51.100.7", 80),
            Some(DenyHit::HostAddress(_))
        ));
        assert_eq!(on("8.8.8.8", 2358), None);
        assert!(matches!(hit("2001:db8::9", 1), Some(DenyHit::Service(_))));
        // Bug hunt: 0.0.0.0 (and ::) reach this host's listeners, a loopback one included;
        // a policy exempting 0.0.0.0 reached warden's own API through it.
        let loopback: [SocketAddr; 1] = ["127.0.0.1:8005".parse().expect("addr")];
        let via = |a: &str, port| own_address(ip(a), port, &[], &loopback);
        for unspecified in ["0.0.0.0", "::"] {
            assert!(
                matches!(via(unspecified, 8005), Some(DenyHit::Service(_))),
                "{unspecified}"
            );
            assert_eq!(via(unspecified, 8006), None, "{unspecified}");
        }
        assert_eq!(
            via("127.0.0.2", 8005),
            None,
            "another address, not the listener's"
        );
    }
}
