//! What a network policy decides for one destination, as the egress proxy would decide it:
//! an address is evaluated directly; a name is put to the sandbox resolver's question, then
//! decided before resolving (a denial there holds for every address, and the proxy does not
//! look the name up), then resolved with the system resolver, and each address is evaluated
//! with the name. Connects to nothing. Runs in the caller's process (`warden network check`).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use serde::Serialize;
use warden_core::network::{Action, Attempt, Decision, EvalContext, Matched, Protocol, Registry};

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
    /// For a name: the proxy's decision before it resolves the name. A denial holds for every
    /// address, so the name is not resolved; an allowing one is decided again per address.
    pub unresolved: Option<Verdict>,
    /// Each address, as the proxy would evaluate it.
    pub decisions: Vec<Verdict>,
    /// For `dns`, the resolver's answer; otherwise allowed if any address is, since the proxy
    /// connects to allowed addresses only.
    pub action: Action,
}

/// What the evaluation needs to know of the host: the registries (found and added), its own
/// addresses and warden's services.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts<'a> {
    /// The registries a policy with `registries = true` admits.
    pub registries: &'a [Registry],
    /// The host's own addresses.
    pub host_addrs: &'a [IpAddr],
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
        unresolved: None,
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
        let first = (protocol != Protocol::Dns).then(|| evaluate(&attempt(None)));
        report.unresolved = first.map(|d| Verdict::new(host.to_owned(), d));
        let admissible = report
            .unresolved
            .as_ref()
            .is_some_and(|v| v.action == Action::Allow);
        if admissible {
            report.resolved = true;
            for ip in resolve(host, port.unwrap_or(0))? {
                let d = evaluate(&attempt(Some(ip)));
                report.decisions.push(Verdict::new(ip.to_string(), d));
            }
        }
    }
    let allowed = match (&report.resolver, protocol) {
        (Some(r), Protocol::Dns) => r.action == Action::Allow,
        _ => report.decisions.iter().any(|d| d.action == Action::Allow),
    };
    report.action = if allowed { Action::Allow } else { Action::Deny };
    Ok(report)
}

/// The addresses the system resolver gives for `host`, in its order, each once.
fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError> {
    let addrs = (host, port)
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
            service_addrs: &[],
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
    }

    /// Regression (bug hunt: `check` allowed `localhost:23605` under a rule allowing
    /// `tcp 127.0.0.1 port 23605`, which the proxy refused): an address rule admits a name by
    /// the address it resolves to, and a name rule before it still denies, without resolving.
    #[test]
    fn network_check_admits_a_name_by_an_address_rule_and_a_name_rule_denies_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stored = PolicyStore::new(dir.path())
            .import(
                "local_test.toml",
                "name = \"local_test\"\nlevel = \"custom\"\ndefault_action = \"deny\"\n\
                 allow_denied = [\"127.0.0.1\"]\n\
                 [[rule]]\nprotocol = \"tcp\"\nhost = \"blocked.invalid\"\n\
                 action = \"deny\"\nreason = \"a name denied first\"\n\
                 [[rule]]\nprotocol = \"tcp\"\nhost = \"127.0.0.1\"\nports = 23605\n\
                 action = \"allow\"\nreason = \"the test server\"\n",
            )
            .expect("a valid policy");
        let facts = HostFacts {
            registries: &[],
            host_addrs: &[],
            service_addrs: &[],
        };
        let by_name = check(&stored, Protocol::Http, "localhost", Some(23605), &facts)
            .expect("localhost resolves from /etc/hosts");
        assert_eq!(by_name.action, Action::Allow, "{by_name:?}");
        let unresolved = by_name.unresolved.as_ref().expect("a name");
        assert_eq!(unresolved.action, Action::Allow, "the rule may admit it");
        let v4 = by_name
            .decisions
            .iter()
            .find(|d| d.address == "127.0.0.1")
            .expect("localhost is 127.0.0.1");
        assert_eq!((v4.action, v4.rule), (Action::Allow, Some(2)));
        let other_port =
            check(&stored, Protocol::Http, "localhost", Some(23606), &facts).expect("not resolved");
        assert_eq!(other_port.action, Action::Deny);
        assert!(!other_port.resolved && other_port.decisions.is_empty());
        // `.invalid` never resolves (RFC 6761): denied before resolving, so no error.
        let blocked = check(
            &stored,
            Protocol::Tcp,
            "blocked.invalid",
            Some(23605),
            &facts,
        )
        .expect("denied before resolving");
        assert_eq!(blocked.action, Action::Deny);
        assert!(!blocked.resolved);
        assert_eq!(blocked.unresolved.expect("a name").rule, Some(1));
    }
}
