//! The hosts a network rule names: any host, an exact name, a `*.suffix` wildcard, an IP address
//! or a CIDR block; and the one definition of a host name that rules, registries and attempts
//! share. Written here rather than taken from a crate: CIDR containment is a mask and a compare.
//!
//! Names are ASCII only. An internationalized name is written in its `xn--` (punycode) form, as
//! DNS carries it: comparing Unicode names would need IDNA mapping, and two spellings of one
//! name must not match differently in a policy and in a resolver (RFC 5890, RFC 1123 §2.1).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP network: an address with its host bits zero and a prefix length (`10.0.0.0/8`,
/// `2001:db8::/32`). A single address is the network of full length (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// An IPv4 network; for constant tables (the deny set), so not checked.
    pub const fn v4(octets: [u8; 4], prefix: u8) -> Self {
        let [a, b, c, d] = octets;
        Self {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// An IPv6 network; for constant tables (the deny set), so not checked.
    pub const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// The network of `addr` and `prefix`; refused when the prefix is longer than the address
    /// or the address has bits set past the prefix (`10.0.0.1/8` is ambiguous: a typo for an
    /// address, or for `10.0.0.0/8`?).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let bits = bits_of(addr);
        if prefix > bits {
            return Err(format!(
                "\"{addr}/{prefix}\": the prefix is longer than {bits} bits"
            ));
        }
        let net = Self { addr, prefix };
        if net.first() != addr {
            return Err(format!(
                "\"{addr}/{prefix}\" has bits set past the prefix (did you mean {}/{prefix}?)",
                net.first()
            ));
        }
        Ok(net)
    }

    /// The network of one address.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: bits_of(addr),
        }
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network (callers unwrap mapped addresses first, so an IPv4
    /// address is in an IPv6 network only when it is an IPv4-mapped one, `::ffff:a.b.c.d/N`
    /// with N of 96 or more, which stands for `a.b.c.d/(N - 96)`: an exemption written so
    /// exempted nothing).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if let (IpAddr::V6(net), IpAddr::V4(ip)) = (self.addr, ip) {
            return match net.to_ipv4_mapped() {
                Some(net) if self.prefix >= 96 => same_prefix(
                    u128::from(net.to_bits()),
                    u128::from(ip.to_bits()),
                    32,
                    self.prefix - 96,
                ),
                _ => false,
            };
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }

    /// The address with every bit past the prefix cleared.
    fn first(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask))
            }
        }
    }
}

fn bits_of(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` are equal.
fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    (a ^ b)
        .checked_shr(u32::from(bits - prefix.min(bits)))
        .unwrap_or(0)
        == 0
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == bits_of(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = strip_brackets(addr)
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        match prefix {
            None => Ok(Self::host(addr)),
            Some(p) => {
                let prefix = p
                    .parse::<u8>()
                    .map_err(|_| format!("{s:?}: the prefix {p:?} is not a number of bits"))?;
                Self::new(addr, prefix)
            }
        }
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s)
}

/// The hosts a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum HostPattern {
    /// Every host (`*`).
    #[default]
    Any,
    /// One name, not its subdomains (`example.org`); stored normalized.
    Name(String),
    /// Every subdomain of a name, not the name itself (`*.example.org`; stored without `*.`).
    Suffix(String),
    /// One address (`192.0.2.1`, `2001:db8::1`); an IPv4-mapped address is stored as IPv4.
    Addr(IpAddr),
    /// A CIDR block (`10.0.0.0/8`, `2001:db8::/32`).
    Net(IpNet),
}

impl HostPattern {
    /// Whether the pattern matches the host name `name`, which must already be normalized
    /// ([`normalize_name`]). Address patterns never match a name.
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => n == name,
            HostPattern::Suffix(suffix) => name
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|head| !head.is_empty()),
            HostPattern::Addr(_) | HostPattern::Net(_) => false,
        }
    }

    /// Whether the pattern matches the address `ip` (already unwrapped if IPv4-mapped). Name
    /// patterns never match an address.
    pub fn matches_addr(&self, ip: IpAddr) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Addr(a) => *a == ip,
            HostPattern::Net(net) => net.contains(ip),
            HostPattern::Name(_) | HostPattern::Suffix(_) => false,
        }
    }

    /// Whether the pattern names addresses rather than host names.
    pub fn is_address(&self) -> bool {
        matches!(self, HostPattern::Addr(_) | HostPattern::Net(_))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
            HostPattern::Addr(a) => write!(f, "{a}"),
            HostPattern::Net(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(HostPattern::Any);
        }
        if s.contains('/') {
            return s.parse().map(HostPattern::Net);
        }
        if let Ok(ip) = strip_brackets(s).parse::<IpAddr>() {
            return Ok(HostPattern::Addr(ip.to_canonical()));
        }
        if let Some(suffix) = s.strip_prefix("*.") {
            return checked_name(s, suffix).map(HostPattern::Suffix);
        }
        if s.contains('*') {
            return Err(format!(
                "host {s:?}: a wildcard is only allowed as a leading `*.` (`*.example.org`)"
            ));
        }
        checked_name(s, s).map(HostPattern::Name)
    }
}

/// `name` normalized, or why the host `whole` is refused.
fn checked_name(whole: &str, name: &str) -> Result<String, String> {
    normalize_name(name).ok_or_else(|| {
        format!("host {whole:?} is not a host name, IP address or CIDR block ({NAME_SYNTAX})")
    })
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What [`normalize_name`] accepts, in words for the messages that refuse a name.
pub const NAME_SYNTAX: &str = "a host name is ASCII letters, digits, - and _ in dot-separated \
     labels of 1 to 63 bytes, none starting or ending with -, the last not all digits nor 0x... \
     (which resolvers may read as an IPv4 address); an internationalized name in its xn-- form";

/// The canonical form of a host name: lowercase, without a trailing dot. The one definition
/// of a name: the policy's rules, the egress proxy (its HTTP and SOCKS5 proxies, its resolver,
/// the TLS server name check) and `warden network check` all read a name through it, so that
/// what the proxy passes on as a name is a name the rules can match. `None` for anything
/// that is not a plain ASCII name: empty labels, labels over 63 bytes or names over 253,
/// characters other than letters, digits, `-` and `_`, a label starting or ending with `-`,
/// non-ASCII text, or an all-digit last label (`127.1`, `0x7f.1` and the like, which some
/// resolvers read as IPv4 addresses).
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return None;
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.len() > 2 && last[..2].eq_ignore_ascii_case("0x"));
    if numeric {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn network_cidr_blocks_contain_their_addresses_only() {
        let net: IpNet = "10.0.0.0/8".parse().expect("valid");
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(
            !net.contains(ip("::ffff:10.0.0.1")),
            "mapped is unwrapped by callers"
        );
        let v6: IpNet = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let all: IpNet = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
        let one: IpNet = "192.0.2.7".parse().expect("valid");
        assert_eq!(one.prefix(), 32);
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert_eq!(one.to_string(), "192.0.2.7");
        assert_eq!(v6.to_string(), "2001:db8::/32");
        // Bug hunt: an exemption written as a mapped address exempted nothing.
        let mapped: IpNet = "::ffff:127.0.0.2".parse().expect("valid");
        assert!(mapped.contains(ip("127.0.0.2")));
        assert!(!mapped.contains(ip("127.0.0.3")));
        let mapped_net: IpNet = "::ffff:10.0.0.0/104".parse().expect("valid");
        assert!(mapped_net.contains(ip("10.9.9.9")) && !mapped_net.contains(ip("11.0.0.1")));
        let wide: IpNet = "::/0".parse().expect("valid");
        assert!(!wide.contains(ip("10.0.0.1")), "not a mapped network");
    }

    #[test]
    fn network_bad_cidr_blocks_say_why() {
        for (text, why) in [
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
            ("10.0.0.0/33", "longer than 32 bits"),
            ("10.0.0.0/x", "not a number of bits"),
            ("10.0.0/8", "not an IP address"),
            ("fe80::1%eth0", "not an IP address"),
        ] {
            let err = text.parse::<IpNet>().expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn network_host_patterns_parse_and_print_back() {
        for text in [
            "*",
            "example.org",
            "*.example.org",
            "192.0.2.1",
            "2001:db8::1",
            "10.0.0.0/8",
            "fc00::/7",
        ] {
            let pattern: HostPattern = text.parse().expect(text);
            assert_eq!(pattern.to_string(), text);
        }
        let upper: HostPattern = "Example.ORG.".parse().expect("valid");
        assert_eq!(upper, HostPattern::Name("example.org".into()));
        let mapped: HostPattern = "::ffff:192.0.2.1".parse().expect("valid");
        assert_eq!(mapped, HostPattern::Addr(ip("192.0.2.1")));
        for bad in [
            "a.*.org",
            "*example.org",
            "ex ample.org",
            "bücher.example",
            "a..b",
            "-a.org",
            "*.",
            "",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn network_wildcards_match_subdomains_but_not_the_apex() {
        let wild: HostPattern = "*.example.org".parse().expect("valid");
        assert!(wild.matches_name("a.example.org"));
        assert!(wild.matches_name("a.b.example.org"));
        assert!(!wild.matches_name("example.org"));
        assert!(!wild.matches_name("badexample.org"));
        assert!(!wild.matches_addr(ip("192.0.2.1")));
        let exact: HostPattern = "example.org".parse().expect("valid");
        assert!(exact.matches_name("example.org"));
        assert!(!exact.matches_name("a.example.org"));
    }

    #[test]
    fn network_names_are_normalized_or_refused() {
        assert_eq!(
            normalize_name("WWW.Example.Org."),
            Some("www.example.org".into())
        );
        assert_eq!(
            normalize_name("xn--bcher-kva.example"),
            Some("xn--bcher-kva.example".into())
        );
        assert_eq!(normalize_name("_srv.example"), Some("_srv.example".into()));
        for odd in [
            "bücher.example",
            "127.1",
            "0x7f.1",
            "a b",
            "a..b",
            ".",
            "a.-b",
            "1.2.3.4",
        ] {
            assert_eq!(normalize_name(odd), None, "{odd:?}");
        }
        assert_eq!(normalize_name(&"a.".repeat(128)), None);
    }
}
