//! What a network policy decides for one destination, as the egress proxy would decide it:
//! an address is evaluated directly; a name is put to the sandbox resolver's question, then
//! decided on the name alone (address rules never admit a name: the proxy does not look up a
//! name it denies there), and only when allowed resolved with the system resolver and each
//! address evaluated with the name, every one of which must be allowed. Connects to nothing; the
//! lookup is the only traffic, and only for a name the policy allows.
//! Runs in the caller's process (`warden network check`).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use serde::Serialize;
use warden_core::network::{
    Action, Attempt, Decision, EvalContext, IpNet, Matched, Protocol, Registry,
};

use super::store::StoredPolicy;

/// One evaluated address, or the resolver's question about the name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The address, or `resolver` for the name's question.
    pub address: String,
    /// Allowed or denied.
    pub action: Action,
    /// What decided.
    pub matched: Matched,
    /// The deciding rule, numbered from 1 as `warden network show` lists them.
    pub rule: Option<usize>,
    /// Why.
    pub reason: String,
}

impl Verdict {
    fn new(address: String, d: Decision) -> Self {
        Self {
            address,
            action: d.action,
            rule: d.rule().map(|i| i + 1),
            matched: d.matched,
            reason: d.reason,
        }
    }
}

/// The answer for one destination (docs/network.md#warden-network-commands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The policy's name.
    pub policy: String,
    /// `built-in` or `imported`.
    pub origin: &'static str,
    /// The protocol asked about.
    pub protocol: Protocol,
    /// The host asked about: a name or an address.
    pub host: String,
    /// The port, if one was given (`dns` needs none).
    pub port: Option<u16>,
    /// Whether the name was resolved with the system resolver.
    pub resolved: bool,
    /// For a name: whether the sandbox's resolver would answer it.
    pub resolver: Option<Verdict>,
    /// For a name (not `dns`): the proxy's decision on the name before it resolves it. Address
    /// rules play no part; a denial here is final and the name is not resolved.
    pub name: Option<Verdict>,
    /// Each address, as the proxy would evaluate it.
    pub decisions: Vec<Verdict>,
    /// What holds whatever the policy says: for `udp`, that the sandboxes send none (only
    /// their DNS questions, to their own resolver), so the attempt is denied.
    pub note: Option<&'static str>,
    /// For `dns`, the resolver's answer; for a name, allowed when the name and every address
    /// it resolves to are (the proxy refuses a name with one denied address); for an address,
    /// its decision.
    pub action: Action,
}

/// What the evaluation needs to know of the host: the registries (found and added), its own
/// addresses, networks and gateways, and warden's services.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFacts<'a> {
    /// The registries a policy with `registries = true` admits.
    pub registries: &'a [Registry],
    /// The host's own addresses.
    pub host_addrs: &'a [IpAddr],
    /// The networks the host has an address on.
    pub host_networks: &'a [IpNet],
    /// The host's gateways and point-to-point peers.
    pub host_gateways: &'a [IpAddr],
    /// warden's own service addresses.
    pub service_addrs: &'a [SocketAddr],
}

/// The name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("resolving {host}")]
pub struct ResolveError {
    /// The name.
    pub host: String,
    /// What the resolver said.
    #[source]
    pub source: std::io::Error,
}

/// Decides what `stored` does with `protocol` to `host` (a name or an address) on `port`.
pub fn check(
    stored: &StoredPolicy,
    protocol: Protocol,
    host: &str,
    port: Option<u16>,
    facts: &HostFacts<'_>,
) -> Result<CheckReport, ResolveError> {
    let ctx = EvalContext {
        registries: facts.registries,
        host_addrs: facts.host_addrs,
        host_networks: facts.host_networks,
        host_gateways: facts.host_gateways,
        service_addrs: facts.service_addrs,
        imported: stored.is_imported(),
    };
    let literal = host.parse::<IpAddr>().ok();
    let attempt = |addr| Attempt {
        protocol,
        host: (literal.is_none() || protocol == Protocol::Dns).then(|| host.to_owned()),
        addr,
        port: port.unwrap_or(0),
    };
    let evaluate = |a: &Attempt| stored.policy.evaluate(a, &ctx);
    let mut report = CheckReport {
        policy: stored.policy.name.clone(),
        origin: stored.origin.name(),
        protocol,
        host: host.to_owned(),
        port,
        resolved: false,
        resolver: None,
        name: None,
        note: None,
        decisions: Vec::new(),
        action: Action::Deny,
    };
    if let Some(ip) = literal {
        let d = evaluate(&attempt(Some(ip)));
        report.decisions.push(Verdict::new(ip.to_string(), d));
    } else {
        let question = Attempt {
            protocol: Protocol::Dns,
            ..attempt(None)
        };
        report.resolver = Some(Verdict::new("resolver".into(), evaluate(&question)));
        if protocol != Protocol::Dns {
            let first = Verdict::new(host.to_owned(), evaluate(&attempt(None)));
            let admitted = first.action == Action::Allow;
            report.name = Some(first);
            if !admitted {
                return Ok(report);
            }
            report.resolved = true;
            for ip in resolve(host, port.unwrap_or(0))? {
                let d = evaluate(&attempt(Some(ip)));
                report.decisions.push(Verdict::new(ip.to_string(), d));
            }
        }
    }
    let allowed = match (&report.resolver, protocol) {
        (Some(r), Protocol::Dns) => r.action == Action::Allow,
        _ => {
            !report.decisions.is_empty()
                && report.decisions.iter().all(|d| d.action == Action::Allow)
        }
    };
    report.action = if allowed { Action::Allow } else { Action::Deny };
    if protocol == Protocol::Udp {
        // The sandbox's nftables table rejects every UDP packet but its resolver's.
        report.note = Some(UDP_NOTE);
        report.action = Action::Deny;
    }
    Ok(report)
}

/// Why `udp` is denied whatever the policy says.
pub const UDP_NOTE: &str =
    "a sandbox sends no UDP but its DNS questions to its own resolver (docs/network.md)";

/// The addresses the system resolver gives for `host`, in its order, each once.
fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError> {
    // As the policy reads the name: a trailing dot and case do not matter (`LOCALHOST.` is
    // `localhost`, which /etc/hosts answers rather than a name server).
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let addrs = (name.as_str(), port)
        .to_socket_addrs()
        .map_err(|source| ResolveError {
            host: host.to_owned(),
            source,
        })?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in addrs.map(|a| a.ip()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::store::PolicyStore;

    fn builtin(name: &str) -> StoredPolicy {
        PolicyStore::new("/nonexistent")
            .get(name)
            .expect("built in")
    }

    #[test]
    fn network_check_evaluates_addresses_and_the_resolver_question() {
        let registries = [Registry::from_url("https://registry.test/", "test").expect("valid")];
        let host = ["192.0.2.10".parse().expect("addr")];
        let facts = HostFacts {
            registries: &registries,
            host_addrs: &host,
            ..HostFacts::default()
        };
        let report = check(
            &builtin("internet_access"),
            Protocol::Tcp,
            "169.254.169.254",
            Some(80),
            &facts,
        )
        .expect("no resolution needed");
        assert_eq!(report.action, Action::Deny);
        assert!(!report.resolved && report.resolver.is_none());
        assert!(matches!(report.decisions[0].matched, Matched::DenySet(_)));
        let limited = builtin("limited_access");
        let dns =
            check(&limited, Protocol::Dns, "registry.test", None, &facts).expect("no resolution");
        assert_eq!(dns.action, Action::Allow);
        assert!(dns.decisions.is_empty());
        let report = check(
            &builtin("development"),
            Protocol::Tcp,
            "localhost",
            Some(80),
            &facts,
        )
        .expect("localhost resolves from /etc/hosts");
        assert!(report.resolved && !report.decisions.is_empty());
        assert_eq!(report.action, Action::Deny, "{report:?}");
        let smtp = check(
            &builtin("internet_access"),
            Protocol::Tcp,
            "8.8.8.8",
            Some(25),
            &facts,
        )
        .expect("no resolution");
        assert_eq!(smtp.decisions[0].rule, Some(1));
        // Bug hunt: check allowed udp, which no run can send.
        let udp = check(
            &builtin("internet_access"),
            Protocol::Udp,
            "8.8.8.8",
            Some(4444),
            &facts,
        )
        .expect("no resolution");
        assert_eq!((udp.action, udp.note), (Action::Deny, Some(UDP_NOTE)));
    }

    /// Regression (bug hunt: `check` allowed `localhost:23605` under a rule allowing
    /// `tcp 127.0.0.1 port 23605`, which the proxy refused): an address rule does not admit a
    /// name (the name is not even resolved), and a name rule does, each address decided again.
    #[test]
    fn network_check_decides_a_name_on_its_name_first_as_the_proxy_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stored = PolicyStore::new(dir.path())
            .import(
                "local_test.toml",
                "name = \"local_test\"\nlevel = \"custom\"\ndefault_action = \"deny\"\n\
                 allow_denied = [\"127.0.0.1\", \"::1\"]\n\
                 [[rule]]\nprotocol = \"tcp\"\nhost = \"127.0.0.1\"\nports = 23605\n\
                 action = \"allow\"\nreason = \"the test server\"\n\
                 [[rule]]\nprotocol = \"tcp\"\nhost = \"localhost\"\nports = 23606\n\
                 action = \"allow\"\nreason = \"by name\"\n",
            )
            .expect("a valid policy");
        let facts = HostFacts::default();
        let by_address = check(&stored, Protocol::Http, "localhost", Some(23605), &facts)
            .expect("denied before resolving");
        assert_eq!(by_address.action, Action::Deny, "{by_address:?}");
        assert!(!by_address.resolved && by_address.decisions.is_empty());
        let name = by_address.name.expect("a name is decided on its name");
        assert_eq!(
            (name.action, name.matched),
            (Action::Deny, Matched::Default)
        );
        // `.invalid` never resolves (RFC 6761): denied before resolving, so no error.
        let never = check(&stored, Protocol::Tcp, "x.invalid", Some(23605), &facts)
            .expect("denied before resolving");
        assert_eq!(never.action, Action::Deny);
        let by_name = check(&stored, Protocol::Tcp, "localhost", Some(23606), &facts)
            .expect("localhost resolves from /etc/hosts");
        assert_eq!(by_name.action, Action::Allow, "{by_name:?}");
        assert!(by_name.resolved && !by_name.decisions.is_empty());
        assert!(
            by_name.decisions.iter().all(|d| d.rule == Some(2)),
            "{by_name:?}"
        );
        // The literal address is decided by the address rule.
        let literal =
            check(&stored, Protocol::Tcp, "127.0.0.1", Some(23605), &facts).expect("no resolution");
        assert_eq!(literal.action, Action::Allow);
    }
}
