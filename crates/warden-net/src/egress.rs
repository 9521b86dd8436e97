//! The proxy's core, shared by every way in (HTTP, SOCKS5, transparent): decide the attempt,
//! take a connection slot, resolve the name on the host, decide again on every address (no DNS
//! rebinding: a name that resolves to one denied address is denied), and dial. Nothing is
//! dialed before every check passed. Runs on the proxy's runtime, in the host's namespace.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use warden_core::network::{normalize_name, NAME_SYNTAX};

use crate::decider::{Attempt, Protocol, Verdict};
use crate::dialer::BoxedStream;
use crate::limits::Permit;
use crate::proxy::Shared;
use crate::record::Recording;
use crate::synthetic::{is_synthetic, SyntheticPool};

/// Where the program wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub(crate) host: Host,
    pub(crate) port: u16,
}

/// A host name (normalized: lower case, no trailing dot) or an address literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Name(String),
    Addr(IpAddr),
}

impl Destination {
    /// What the program named: a host name, or an address literal (IPv6 in brackets or not).
    /// `None` for something that is neither: a name the policy's rules cannot read as one
    /// ([`normalize_name`], the one definition) is no name here either, so it is refused
    /// rather than passed on to be judged by the `*` rules or the default.
    pub(crate) fn named(host: &str, port: u16, pool: &SyntheticPool) -> Option<Self> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(addr) = bare.parse::<IpAddr>() {
            return Some(Self::address(addr, port, pool));
        }
        Some(Self {
            host: Host::Name(normalize_name(host)?),
            port,
        })
    }

    /// An address; a synthetic one the resolver handed out stands for its name.
    pub(crate) fn address(addr: IpAddr, port: u16, pool: &SyntheticPool) -> Self {
        let addr = canonical(addr);
        let host = pool.name_of(addr).map_or(Host::Addr(addr), Host::Name);
        Self { host, port }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match &self.host {
            Host::Name(name) => Some(name),
            Host::Addr(_) => None,
        }
    }

    pub(crate) fn literal(&self) -> Option<IpAddr> {
        match self.host {
            Host::Name(_) => None,
            Host::Addr(addr) => Some(addr),
        }
    }

    /// The host as an HTTP `Host` header or URL authority writes it, with the port unless it is
    /// `default_port`.
    pub(crate) fn authority(&self, default_port: u16) -> String {
        let host = match &self.host {
            Host::Name(name) => name.clone(),
            Host::Addr(IpAddr::V6(v6)) => format!("[{v6}]"),
            Host::Addr(IpAddr::V4(v4)) => v4.to_string(),
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it reaches, so that the
/// policy's IPv4 rules and the synthetic range apply to it.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// The rule that denies an attempt to something that is neither a host name nor an address,
/// as `warden network check` names it.
pub(crate) const INVALID_NAME: &str = "invalid name";

/// How many bytes of such a something the log keeps, escaped (a host name has at most 253).
const SHOWN_NAME: usize = 253;

/// Refuses an attempt to `asked`, which is neither a host name nor an address
/// ([`Destination::named`] said so): logged and told as a denial by [`INVALID_NAME`], since
/// every attempt is logged and a denial is a denial whatever was asked.
pub(crate) fn refuse_invalid(
    shared: &Shared,
    protocol: Protocol,
    asked: &[u8],
    port: u16,
) -> Refusal {
    let verdict = Verdict::deny(INVALID_NAME, invalid_name_reason());
    let mut rec = shared.recording_to(protocol, Some(shown(asked)), None, port);
    rec.verdict(&verdict);
    Refusal::Denied(verdict)
}

/// Why [`INVALID_NAME`] denies.
pub(crate) fn invalid_name_reason() -> String {
    format!("not a host name or address ({NAME_SYNTAX})")
}

/// The rule that denies a request the HTTP proxy cannot read (a control character in its head,
/// a bare LF, a head too large, a malformed body framing).
pub(crate) const MALFORMED: &str = "malformed request";

/// Logs and tells as a denial by [`MALFORMED`] a request the HTTP proxy answers `400` or `431`
/// for `why`: what it asked for, as far as it could be read (`asked`), kept as
/// [`refuse_invalid`] keeps a name, escaped and bounded.
pub(crate) fn refuse_malformed(
    shared: &Shared,
    protocol: Protocol,
    asked: &[u8],
    port: u16,
    why: &str,
) {
    let mut rec = shared.recording_to(protocol, Some(shown(asked)), None, port);
    rec.verdict(&Verdict::deny(MALFORMED, why));
}

/// The protocol a tunnel to something that is no host is logged as: as
/// [`tunnel_protocol`] would decide it with no rule to ask.
pub(crate) fn invalid_tunnel_protocol(port: u16) -> Protocol {
    if port == 443 {
        Protocol::Https
    } else {
        Protocol::Tcp
    }
}

/// `asked` as the log keeps it: the program chose it, so every character outside printable
/// ASCII is escaped (`\n`, `\u{1b}`, and a byte that is not UTF-8 as `\xff`: nothing that moves
/// a terminal's cursor or forges a line of a table, and nothing of what was sent lost), and it
/// is cut after [`SHOWN_NAME`] bytes, marked by `…` (which no escape writes).
pub(crate) fn shown(asked: &[u8]) -> String {
    let mut out = String::new();
    for chunk in asked.utf8_chunks() {
        let valid = chunk
            .valid()
            .chars()
            .map(|c| c.escape_default().to_string());
        let invalid = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        for escaped in valid.chain(invalid) {
            if out.len() + escaped.len() > SHOWN_NAME {
                out.push('…');
                return out;
            }
            out.push_str(&escaped);
        }
    }
    out
}

/// Why an attempt did not get an upstream connection.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The policy said no.
    Denied(Verdict),
    /// A connection cap said no.
    Limit(String),
    /// The name has no address.
    Unresolvable(String),
    /// Every address refused or failed.
    Unreachable(io::ErrorKind, String),
    /// Resolving plus connecting took longer than the connect timeout.
    TimedOut(String),
}

/// Why an attempt the policy allows is refused once the traffic log holds as many attempts
/// let through as it keeps (`ALLOWED_BYTES` in `record/log.rs`).
pub(crate) const LOG_FULL: &str =
    "the traffic log holds 4 MiB of attempts let through, as much as it keeps: nothing more is";

/// An allowed upstream connection with the connection slot it holds.
pub(crate) struct Upstream {
    pub(crate) stream: BoxedStream,
    pub(crate) addr: SocketAddr,
    /// Held until the relay ends.
    pub(crate) permit: Permit,
}

/// The protocol a tunnel (CONNECT, SOCKS5, an intercepted connection) to `dest` is decided
/// as: `https` on port 443; elsewhere `tcp`, unless the policy denies a tcp tunnel there and
/// allows an https one. Then it is `https`, and must carry TLS for the host it was allowed
/// for (an `https` rule on another port), or `http` when plain HTTP is allowed too (an `http`
/// rule, which covers both, or a registry, admitted for both and never for tcp): what the connection carries decides, a TLS ClientHello checked as
/// https is, a plain request forwarded as the HTTP proxy forwards one (`relay.rs`), so that a
/// program that ignores the proxy variables meets the decision one that honours them does.
pub(crate) fn tunnel_protocol(shared: &Shared, dest: &Destination) -> Protocol {
    if dest.port == 443 {
        return Protocol::Https;
    }
    let decide = |protocol| {
        shared.decider.decide(&Attempt {
            protocol,
            host: dest.name().map(str::to_owned),
            addr: dest.literal(),
            port: dest.port,
        })
    };
    if decide(Protocol::Tcp).allow || !decide(Protocol::Https).allow {
        Protocol::Tcp
    } else if decide(Protocol::Http).allow {
        Protocol::Http
    } else {
        Protocol::Https
    }
}

/// Decides, resolves, decides again and dials; records each step's outcome in `rec`.
pub(crate) async fn open(
    shared: &Shared,
    dest: &Destination,
    rec: &mut Recording,
) -> Result<Upstream, Refusal> {
    let first = match dest.host {
        Host::Addr(addr) if is_synthetic(addr) => Verdict::deny(
            "synthetic",
            format!("{addr} was not handed out by the sandbox's resolver"),
        ),
        _ => shared.decider.decide(&attempt(rec, dest, dest.literal())),
    };
    rec.verdict(&first);
    if !first.allow {
        return Err(Refusal::Denied(first));
    }
    if !rec.admit() {
        // Nothing is let through that the traffic log cannot keep.
        let full = Verdict::deny("limits", LOG_FULL);
        rec.verdict(&full);
        return Err(Refusal::Denied(full));
    }
    // After the log's room, so that an attempt the full log refuses spends no connection of
    // `total_connections`; a cap's refusal gives the room back (`Recording::limit`).
    let permit = shared.budget.admit().map_err(|(cut, reason)| {
        rec.limit(cut, reason.clone());
        Refusal::Limit(reason)
    })?;
    // Checked: a deadline past the clock's end panics (the policy's own bound keeps it far).
    let now = Instant::now();
    let deadline = now
        .checked_add(shared.limits.connect_timeout)
        .unwrap_or(now + Duration::from_secs(24 * 3600));
    let addrs = match &dest.host {
        Host::Name(name) => resolve_checked(shared, dest, name, deadline, rec).await?,
        Host::Addr(addr) => vec![*addr],
    };
    let (stream, addr) = dial_first(shared, &addrs, dest.port, deadline, rec).await?;
    Ok(Upstream {
        stream,
        addr,
        permit,
    })
}

fn attempt(rec: &Recording, dest: &Destination, addr: Option<IpAddr>) -> Attempt {
    Attempt {
        protocol: rec.protocol(),
        host: dest.name().map(str::to_owned),
        addr,
        port: dest.port,
    }
}

/// The addresses of `name`, each allowed by the policy.
async fn resolve_checked(
    shared: &Shared,
    dest: &Destination,
    name: &str,
    deadline: Instant,
    rec: &mut Recording,
) -> Result<Vec<IpAddr>, Refusal> {
    let fail = |rec: &mut Recording, refusal: Refusal, reason: String| {
        rec.failed(reason);
        Err(refusal)
    };
    let addrs = match timeout_at(deadline, shared.resolver.resolve(name)).await {
        Err(_) => {
            let reason = format!("resolving {name} timed out");
            return fail(rec, Refusal::TimedOut(reason.clone()), reason);
        }
        Ok(Err(e)) => {
            let reason = format!("cannot resolve {name}: {e}");
            return fail(rec, Refusal::Unresolvable(reason.clone()), reason);
        }
        Ok(Ok(addrs)) if addrs.is_empty() => {
            let reason = format!("{name} has no address");
            return fail(rec, Refusal::Unresolvable(reason.clone()), reason);
        }
        Ok(Ok(addrs)) => addrs.into_iter().map(canonical).collect::<Vec<_>>(),
    };
    for addr in &addrs {
        let verdict = shared.decider.decide(&attempt(rec, dest, Some(*addr)));
        if !verdict.allow {
            tracing::debug!(name, %addr, rule = verdict.rule, "a resolved address is denied");
            rec.set_addr(SocketAddr::new(*addr, dest.port));
            rec.verdict(&verdict);
            return Err(Refusal::Denied(verdict));
        }
    }
    Ok(addrs)
}

/// A connection to the first of `addrs` that accepts one.
async fn dial_first(
    shared: &Shared,
    addrs: &[IpAddr],
    port: u16,
    deadline: Instant,
    rec: &mut Recording,
) -> Result<(BoxedStream, SocketAddr), Refusal> {
    let mut last = None;
    for addr in addrs {
        let target = SocketAddr::new(*addr, port);
        rec.set_addr(target);
        match timeout_at(deadline, shared.dialer.dial(target)).await {
            Ok(Ok(stream)) => return Ok((stream, target)),
            Ok(Err(e)) => last = Some((target, e)),
            Err(_) => {
                let reason = format!("connecting to {target} timed out");
                rec.failed(reason.clone());
                return Err(Refusal::TimedOut(reason));
            }
        }
    }
    let (kind, reason) = match last {
        Some((target, e)) => (e.kind(), format!("cannot connect to {target}: {e}")),
        None => (
            io::ErrorKind::NotFound,
            "no address to connect to".to_owned(),
        ),
    };
    rec.failed(reason.clone());
    Err(Refusal::Unreachable(kind, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_no_host_is_shown_escaped_and_bounded() {
        assert_eq!(shown(b"bad_name!"), "bad_name!");
        assert_eq!(shown(b"a\nb\x1b[2J\0"), "a\\nb\\u{1b}[2J\\u{0}");
        assert_eq!(shown("\u{202e}x".as_bytes()), "\\u{202e}x");
        let long = shown("\u{7f}".repeat(300).as_bytes());
        assert!(long.ends_with('…') && long.len() <= SHOWN_NAME + '…'.len_utf8());
        assert_eq!(shown("a".repeat(253).as_bytes()), "a".repeat(253));
        assert_eq!(
            shown("a".repeat(254).as_bytes()),
            format!("{}…", "a".repeat(253))
        );
    }

    /// Bug hunt: a SOCKS name that is not UTF-8 was logged lossily (`\u{fffd}`): what the
    /// program sent was lost.
    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_sent() {
        assert_eq!(shown(b"\xff\xfe.example"), "\\xff\\xfe.example");
        assert_eq!(shown(b"a\xc3"), "a\\xc3");
        assert_eq!(shown("é\n".as_bytes()), "\\u{e9}\\n");
        let long = shown(&[0xff; 300]);
        assert!(long.ends_with('…') && long.len() <= SHOWN_NAME + '…'.len_utf8());
    }

    #[test]
    fn names_are_normalized_and_literals_recognized() {
        let pool = SyntheticPool::default();
        assert_eq!(
            Destination::named("Example.TEST.", 80, &pool)
                .and_then(|d| d.name().map(str::to_owned)),
            Some("example.test".into())
        );
        for odd in ["a..b", "bad host", &"a".repeat(64)] {
            assert_eq!(Destination::named(odd, 80, &pool), None, "{odd}");
        }
        let v6 = Destination::named("[::1]", 443, &pool).expect("literal");
        assert_eq!(v6.literal(), Some("::1".parse().expect("address")));
        assert_eq!(v6.authority(443), "[::1]");
        let named = Destination::named("Svc.Test", 8080, &pool).expect("name");
        assert_eq!(named.authority(80), "svc.test:8080");
        let synthetic = pool.address_for("svc.test").expect("room");
        let back = Destination::address(IpAddr::V4(synthetic), 80, &pool);
        assert_eq!(back.name(), Some("svc.test"));
        let mapped = Destination::named(&format!("[::ffff:{synthetic}]"), 80, &pool);
        assert_eq!(mapped.expect("literal").name(), Some("svc.test"));
        let metadata = Destination::named("::ffff:169.254.169.254", 80, &pool).expect("literal");
        assert_eq!(
            metadata.literal(),
            Some("169.254.169.254".parse().expect("address"))
        );
    }
}
