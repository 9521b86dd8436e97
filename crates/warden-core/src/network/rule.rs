//! One rule of a network policy: which protocol, host and ports it covers, what it decides and
//! why. Rules are ordered; the first that matches an attempt decides (`evaluate.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::host::HostPattern;

/// What a rule, or a policy by default, does with an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The connection (or the name's resolution) goes ahead.
    Allow,
    /// It is refused.
    Deny,
}

impl Action {
    /// The name used in TOML, JSON and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

impl super::choice::Choice for Action {
    const ALL: &'static [Self] = &[Action::Allow, Action::Deny];

    fn name(self) -> &'static str {
        Action::name(self)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The protocol of a rule, or of an attempt.
///
/// As a rule's protocol: `any` covers every attempt; `tcp` covers tcp, http and https (both run
/// over TCP); `http` covers http and https attempts (plain HTTP, or TLS checked for its host);
/// `https` covers https attempts only, so that what only an `https` rule admits carries TLS
/// for its host (docs/network.md#the-model); `udp` covers udp; `dns` covers the resolver's
/// question "may this name be answered?". As an attempt's protocol, `any` means unknown, and
/// only `any` rules cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Every protocol.
    #[default]
    Any,
    /// A TCP connection.
    Tcp,
    /// UDP datagrams.
    Udp,
    /// Plain HTTP (through the proxy, or intercepted).
    Http,
    /// HTTPS (an HTTP CONNECT or a TLS connection).
    Https,
    /// A name lookup by the sandbox's resolver.
    Dns,
}

impl Protocol {
    /// Every protocol, in the order help texts list them.
    pub const ALL: [Protocol; 6] = [
        Protocol::Any,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Http,
        Protocol::Https,
        Protocol::Dns,
    ];

    /// The name used in TOML, JSON and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Any => "any",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Dns => "dns",
        }
    }

    /// Whether a rule of this protocol covers an attempt of protocol `attempt`.
    pub fn covers(self, attempt: Protocol) -> bool {
        use Protocol::{Any, Dns, Http, Https, Tcp, Udp};
        match self {
            Any => true,
            Tcp => matches!(attempt, Tcp | Http | Https),
            Http => matches!(attempt, Http | Https),
            // Not http: an https allowance admitting plain requests would let a program reach
            // a plain service on the port, or read the host unencrypted, where the operator
            // asked for TLS.
            Https => attempt == Https,
            Udp => attempt == Udp,
            Dns => attempt == Dns,
        }
    }
}

impl super::choice::Choice for Protocol {
    const ALL: &'static [Self] = &Protocol::ALL;

    fn name(self) -> &'static str {
        Protocol::name(self)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown protocol {s:?} (any, tcp, udp, http, https, dns)"))
    }
}

/// The ports a rule covers: written `"*"`, `443` (or `"443"`) or `"8000-8999"`. Port 0 is never
/// a destination, so ranges start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PortRange {
    /// Every port.
    #[default]
    Any,
    /// One port.
    Single(u16),
    /// The ports from the first to the second, both included (the first is the lower).
    Range(u16, u16),
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        match *self {
            PortRange::Any => true,
            PortRange::Single(p) => p == port,
            PortRange::Range(lo, hi) => (lo..=hi).contains(&port),
        }
    }

    /// The lowest and highest port covered.
    pub fn bounds(&self) -> (u16, u16) {
        match *self {
            PortRange::Any => (1, u16::MAX),
            PortRange::Single(p) => (p, p),
            PortRange::Range(lo, hi) => (lo, hi),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRange::Any => f.write_str("*"),
            PortRange::Single(p) => write!(f, "{p}"),
            PortRange::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "*" {
            return Ok(PortRange::Any);
        }
        let port = |p: &str| match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!(
                "ports {s:?}: {p:?} is not a port (1-65535); write {PORT_FORMS}"
            )),
            Ok(n) => Ok(n),
        };
        match s.split_once('-') {
            None => port(s).map(PortRange::Single),
            Some((lo, hi)) => {
                let (lo, hi) = (port(lo)?, port(hi)?);
                match lo.cmp(&hi) {
                    std::cmp::Ordering::Less => Ok(PortRange::Range(lo, hi)),
                    std::cmp::Ordering::Equal => Ok(PortRange::Single(lo)),
                    std::cmp::Ordering::Greater => Err(format!(
                        "ports {s:?}: the range is reversed (write \"{hi}-{lo}\")"
                    )),
                }
            }
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortRange::Single(p) => s.serialize_u16(*p),
            other => s.collect_str(other),
        }
    }
}

/// The forms a rule's `ports` takes, as every message about them says.
const PORT_FORMS: &str = "\"*\", 443 or \"8000-8999\"";

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PortsVisitor)
    }
}

/// Reads `ports` as written: a number, a string, or (refused, with the forms accepted) any
/// other type. A visitor rather than an untagged enum, whose failure names neither the field
/// nor what it takes.
struct PortsVisitor;

impl<'de> serde::de::Visitor<'de> for PortsVisitor {
    type Value = PortRange;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ports as {PORT_FORMS}")
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PortRange, E> {
        match u16::try_from(n) {
            Ok(port) if port > 0 => Ok(PortRange::Single(port)),
            _ => Err(E::custom(format!(
                "ports {n}: not a port (1-65535); write {PORT_FORMS}"
            ))),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PortRange, E> {
        self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PortRange, E> {
        s.parse().map_err(E::custom)
    }

    /// A list is refused: a rule covers one port or one range (docs/network.md#the-model).
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<PortRange, A::Error> {
        Err(serde::de::Error::custom(format!(
            "ports: a rule takes one port or one range, not a list ({PORT_FORMS}); write a rule \
             for each"
        )))
    }
}

/// One rule: an attempt of a covered protocol, to a matching host, on a port in range, gets
/// `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The protocols covered.
    pub protocol: Protocol,
    /// The hosts covered: a name pattern matches the name the program asked for, an address
    /// pattern the address it would connect to.
    pub host: HostPattern,
    /// The destination ports covered (`dns` rules cover names, whatever the port).
    pub ports: PortRange,
    /// What the rule decides.
    pub action: Action,
    /// Why: shown with every decision the rule makes.
    pub reason: String,
}

impl fmt::Display for Rule {
    /// `allow https *.example.org:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.action, self.protocol, self.host)?;
        if self.protocol != Protocol::Dns {
            write!(f, " port {}", self.ports)?;
        }
        Ok(())
    }
}

/// A `[[rule]]` table as written. `action` and `reason` are checked after parsing, so that the
/// error can name the rule and its line (a missing key inside an array of tables is reported
/// by the parser at the array's first table).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    #[serde(default, deserialize_with = "protocol")]
    protocol: Protocol,
    #[serde(default)]
    host: HostPattern,
    #[serde(default)]
    ports: Option<PortRange>,
    #[serde(default, deserialize_with = "action")]
    action: Option<Action>,
    reason: Option<String>,
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
    super::choice::read(d, "protocol")
}

fn action<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Action>, D::Error> {
    super::choice::read(d, "action").map(Some)
}

impl RuleFile {
    /// The rule, or what is wrong with it.
    pub(super) fn validate(self) -> Result<Rule, String> {
        let action = self.action.ok_or("has no action (allow or deny)")?;
        let reason = self.reason.unwrap_or_default();
        if reason.trim().is_empty() {
            return Err("has no reason".to_owned());
        }
        if self.protocol == Protocol::Dns {
            if self.ports.is_some() {
                return Err("is a dns rule and names ports: it covers names, not ports".into());
            }
            if self.host.is_address() {
                return Err(format!(
                    "is a dns rule for the address {}: it covers names, not addresses",
                    self.host
                ));
            }
        }
        Ok(Rule {
            protocol: self.protocol,
            host: self.host,
            ports: self.ports.unwrap_or_default(),
            action,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_port_ranges_parse_check_and_print_back() {
        for (text, range) in [
            ("*", PortRange::Any),
            ("443", PortRange::Single(443)),
            ("8000-8999", PortRange::Range(8000, 8999)),
            ("80-80", PortRange::Single(80)),
        ] {
            assert_eq!(text.parse(), Ok(range), "{text}");
        }
        assert_eq!(PortRange::Range(1, 1024).to_string(), "1-1024");
        for (bad, why) in [
            ("0", "not a port"),
            ("65536", "not a port"),
            ("90-80", "reversed"),
            ("http", "not a port"),
            ("1-2-3", "not a port"),
        ] {
            let err = bad.parse::<PortRange>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(PortRange::Range(8000, 8999).contains(8999));
        assert!(!PortRange::Single(443).contains(80));
    }

    #[test]
    fn network_protocols_cover_what_runs_over_them() {
        use Protocol::*;
        assert!(Tcp.covers(Https) && Tcp.covers(Http) && Tcp.covers(Tcp));
        assert!(Http.covers(Http) && Http.covers(Https) && Https.covers(Https));
        assert!(
            !Https.covers(Http),
            "what only an https rule admits carries TLS (bug hunt: plain HTTP passed)"
        );
        assert!(!Https.covers(Tcp) && !Tcp.covers(Udp) && !Tcp.covers(Dns));
        assert!(Any.covers(Dns) && Any.covers(Any));
        assert!(
            !Tcp.covers(Any),
            "an unknown protocol is covered by `any` rules only"
        );
        assert!(Dns.covers(Dns) && !Dns.covers(Tcp));
    }
}
