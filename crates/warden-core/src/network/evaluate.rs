//! Deciding one attempt: may the sandbox connect there, or may its resolver answer this name?
//! Pure; the egress proxy and `warden network check` call it with what they know.
//!
//! The order is fixed, and the first step that decides wins:
//! 1. the address (and the IPv4 address embedded in it, `deny_set::effective`) against the
//!    deny set, the host's own addresses, networks and gateways, and warden's services: checked before any rule, so a
//!    rule that allows a name cannot reach a denied address through it (DNS rebinding);
//! 2. the name asked for, which must be a host name ([`normalize_name`]) or an IP literal: no
//!    rule can match what is neither, so it is denied as `invalid name` rather than left to
//!    the `*` rules or the default, which would let it past a rule denying the name it
//!    imitates (`-a.evil.test` past `*.evil.test`);
//! 3. the policy's rules in order, a name pattern against the name asked for, an address
//!    pattern against the address and the IPv4 address embedded in it;
//! 4. the discovered registries, when the policy admits them, for http and https;
//! 5. the policy's default action.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Serialize, Serializer};

use super::deny_set::{self, DeniedRange, DenyHit};
use super::host::{normalize_name, HostPattern, IpNet, NAME_SYNTAX};
use super::port_set::PortSet;
use super::registry::Registry;
use super::rule::{Action, PortRange, Protocol, Rule};
use super::Policy;

/// What the sandbox tries to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The protocol; `dns` asks whether `host` may be resolved at all.
    pub protocol: Protocol,
    /// The host name as the program asked for it (an IP literal counts as the address).
    pub host: Option<String>,
    /// The address that would be connected to, once resolved.
    pub addr: Option<IpAddr>,
    /// The destination port (ignored for `dns`).
    pub port: u16,
}

/// What the caller knows that the pure evaluation cannot find out itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalContext<'a> {
    /// The registries discovered on the host and added by the operator.
    pub registries: &'a [Registry],
    /// The host's own addresses (every interface's, loopback included).
    pub host_addrs: &'a [IpAddr],
    /// The networks the host has an address on.
    pub host_networks: &'a [IpNet],
    /// The host's routers and point-to-point peers.
    pub host_gateways: &'a [IpAddr],
    /// warden's own services (its API, its proxy); port 0 stands for every port.
    pub service_addrs: &'a [SocketAddr],
    /// Whether the policy was imported by the operator: only then is its `allow_denied`
    /// honoured.
    pub imported: bool,
}

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allowed or denied.
    pub action: Action,
    /// What decided it.
    pub matched: Matched,
    /// Why, in words: the rule's reason, the deny set range's, ...
    pub reason: String,
}

impl Decision {
    /// The index in [`Policy::rules`] of the rule that decided, if one did.
    pub fn rule(&self) -> Option<usize> {
        match self.matched {
            Matched::Rule(i) => Some(i),
            _ => None,
        }
    }
}

/// What decided an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// A range of the deny set.
    DenySet(&'static DeniedRange),
    /// One of the host's own addresses.
    HostAddress(IpAddr),
    /// A network the host has an address on.
    HostNetwork(IpNet),
    /// A router or point-to-point peer of the host.
    HostGateway(IpAddr),
    /// One of warden's own service addresses.
    Service(SocketAddr),
    /// The rule at this index of [`Policy::rules`].
    Rule(usize),
    /// A registry the policy admits.
    Registry {
        /// Its host.
        host: String,
        /// Where it was found.
        source: String,
    },
    /// No rule matched: the policy's default action.
    Default,
    /// The host asked for is neither a host name nor an IP literal, so no rule can match it.
    InvalidName,
}

impl fmt::Display for Matched {
    /// `rule 2` (numbered from 1, as `warden network show` lists them), `default`,
    /// `deny set: 169.254.0.0/16 (...)`, `registry pkgs.example (from ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::DenySet(r) => write!(f, "deny set: {} ({})", r.net, r.reason),
            Matched::HostAddress(a) => write!(f, "deny set: the host's own address {a}"),
            Matched::HostNetwork(n) => write!(f, "deny set: the host's network {n}"),
            Matched::HostGateway(a) => write!(f, "deny set: the host's gateway {a}"),
            Matched::Service(s) => write!(f, "deny set: warden's own service {s}"),
            Matched::Rule(i) => write!(f, "rule {}", i + 1),
            Matched::Registry { host, source } => write!(f, "registry {host} (from {source})"),
            Matched::Default => f.write_str("default"),
            Matched::InvalidName => f.write_str("invalid name"),
        }
    }
}

impl Serialize for Matched {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread matched a rule against an attempt: the tests' measure of the
    /// work a decision takes, which must not grow with the square of the rules.
    pub(super) static RULES_TRIED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one rule matched against an attempt (`RULES_TRIED`); nothing outside the tests.
fn tried() {
    #[cfg(test)]
    RULES_TRIED.with(|n| n.set(n.get() + 1));
}

/// The protocols a connection can use, to ask whether any connection to a name is allowed.
const CONNECTION_PROTOCOLS: [Protocol; 4] = [
    Protocol::Tcp,
    Protocol::Udp,
    Protocol::Http,
    Protocol::Https,
];

impl Policy {
    /// Decides `attempt` (see the module's documentation for the order).
    pub fn evaluate(&self, attempt: &Attempt, ctx: &EvalContext<'_>) -> Decision {
        let literal = attempt
            .host
            .as_deref()
            .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        // What the rules see of the address: the same effective addresses as the deny set.
        let addrs: Vec<IpAddr> = attempt
            .addr
            .or(literal)
            .map(|a: IpAddr| deny_set::effective(a).collect())
            .unwrap_or_default();
        for a in [attempt.addr, literal].into_iter().flatten() {
            if let Some(denied) = self.denied(a, attempt.port, ctx) {
                return denied;
            }
        }
        let name = attempt.host.as_deref().and_then(normalize_name);
        if let (Some(asked), None, None) = (attempt.host.as_deref(), &name, literal) {
            return invalid_name(asked);
        }
        if attempt.protocol == Protocol::Dns {
            return self.answer(attempt.host.as_deref(), name.as_deref(), ctx);
        }
        self.by_rules(attempt.protocol, name.as_deref(), &addrs, attempt.port, ctx)
    }

    /// The deny set's verdict on `addr`, if it denies it.
    fn denied(&self, addr: IpAddr, port: u16, ctx: &EvalContext<'_>) -> Option<Decision> {
        let exempt = |a: IpAddr| ctx.imported && self.allow_denied.iter().any(|n| n.contains(a));
        // An operator-imported policy may exempt a named address of the fixed ranges or of the
        // host's own (a test server on the host's loopback); warden's own services, never.
        let hit = deny_set::effective(addr).find_map(|a| {
            match deny_set::own_address(a, port, ctx.host_addrs, ctx.service_addrs) {
                Some(service @ DenyHit::Service(_)) => Some(service),
                _ if exempt(a) => None,
                own => deny_set::fixed_range(a)
                    .map(DenyHit::Range)
                    .or(own)
                    .or_else(|| deny_set::surroundings(a, ctx.host_networks, ctx.host_gateways)),
            }
        })?;
        let (matched, reason) = match hit {
            DenyHit::Range(r) => (Matched::DenySet(r), r.reason),
            DenyHit::HostAddress(a) => (Matched::HostAddress(a), "the host's own address"),
            DenyHit::HostNetwork(n) => (
                Matched::HostNetwork(n),
                "a network the host is on: its neighbours trust it as they would not the internet",
            ),
            DenyHit::HostGateway(a) => (
                Matched::HostGateway(a),
                "the host's router (a route's gateway or a point-to-point peer)",
            ),
            DenyHit::Service(s) => (Matched::Service(s), "warden's own service"),
        };
        Some(Decision {
            action: Action::Deny,
            matched,
            reason: reason.to_owned(),
        })
    }

    /// Steps 3 to 5 for a connection to `addrs`, the effective addresses of the one it
    /// would connect to ([`deny_set::effective`]; none before a name is resolved): a rule or
    /// registry matching any of them matches.
    fn by_rules(
        &self,
        protocol: Protocol,
        name: Option<&str>,
        addrs: &[IpAddr],
        port: u16,
        ctx: &EvalContext<'_>,
    ) -> Decision {
        // `name` is a host name or none (an address, or a name not yet given): what is
        // neither was denied before the rules (`invalid_name`).
        let rule = self.rules.iter().position(|r| {
            tried();
            r.protocol.covers(protocol)
                && r.ports.contains(port)
                && (r.host == HostPattern::Any
                    || name.is_some_and(|n| r.host.matches_name(n))
                    || addrs.iter().any(|a| r.host.matches_addr(*a)))
        });
        if let Some(i) = rule {
            return self.by_rule(i);
        }
        let registry = self
            .admits_registries(protocol)
            .then(|| {
                ctx.registries.iter().find(|r| match addrs {
                    [] => r.admits(name, None, port),
                    _ => addrs.iter().any(|a| r.admits(name, Some(*a), port)),
                })
            })
            .flatten();
        registry.map_or_else(|| self.by_default(), by_registry)
    }

    /// Whether the registries are admitted for `protocol`: HTTP(S) only, as an `http` rule
    /// admits a host, so that a tunnel to one is decided as http or https and carries TLS
    /// naming it or one plain request with its `Host` (hunt net 2: admitted as tcp, a tunnel to
    /// its port 80 was relayed raw, any `Host` and pipelined requests reaching whatever else
    /// its address serves).
    fn admits_registries(&self, protocol: Protocol) -> bool {
        self.registries && matches!(protocol, Protocol::Http | Protocol::Https)
    }

    /// The decision of the rule at `index`.
    fn by_rule(&self, index: usize) -> Decision {
        let rule = &self.rules[index];
        Decision {
            action: rule.action,
            matched: Matched::Rule(index),
            reason: rule.reason.clone(),
        }
    }

    /// The decision of the default action.
    fn by_default(&self) -> Decision {
        Decision {
            action: self.default_action,
            matched: Matched::Default,
            reason: "no rule matched: the policy's default action".to_owned(),
        }
    }

    /// The resolver's question: may `name` be answered? The first `dns` rule matching the
    /// name decides, as does an `any` rule on every port. Otherwise the name is answered only
    /// if some connection to it could be allowed: an answered name is already a message out
    /// (the query travels to the name's servers), so names nothing may reach are refused. The
    /// answer given is the decision on the lowest port allowed, of the first protocol of
    /// [`CONNECTION_PROTOCOLS`] allowed on any.
    ///
    /// One pass over the rules, each read into the ports it decides for each protocol
    /// ([`Reach`]; hunt net 3: trying each port where a rule's range starts or ends against
    /// every rule took the square of the rules, 8 s of CPU per question for 40 000 rules).
    fn answer(&self, asked: Option<&str>, name: Option<&str>, ctx: &EvalContext<'_>) -> Decision {
        let Some(name) = name else {
            return invalid_name(asked.unwrap_or_default());
        };
        let mut reach = CONNECTION_PROTOCOLS.map(Reach::new);
        for (i, r) in self.rules.iter().enumerate() {
            tried();
            if !r.host.matches_name(name) {
                continue;
            }
            if r.protocol == Protocol::Dns
                || (r.protocol == Protocol::Any && r.ports == PortRange::Any)
            {
                return self.by_rule(i);
            }
            for reach in &mut reach {
                reach.read(i, r);
            }
        }
        match reach.iter().find_map(|r| r.lowest_allowed(self, name, ctx)) {
            Some(d) => Decision {
                reason: format!("a connection to it may be allowed: {}", d.reason),
                ..d
            },
            None => Decision {
                action: Action::Deny,
                matched: Matched::Default,
                reason: "no connection to this name is allowed".to_owned(),
            },
        }
    }
}

/// The decision of a registry that admits the attempt.
fn by_registry(registry: &Registry) -> Decision {
    Decision {
        action: Action::Allow,
        matched: Matched::Registry {
            host: registry.host.clone(),
            source: registry.source.clone(),
        },
        reason: "a package registry the host's package managers use".to_owned(),
    }
}

/// What a policy's rules decide of one protocol's connections to a name, as they are read in
/// order: each port is decided by the first rule covering it, the ports none covers by the
/// registries and the default action.
struct Reach {
    protocol: Protocol,
    /// The ports no rule read so far covers.
    open: PortSet,
    /// The lowest port a rule read so far allows, and that rule's index.
    allowed: Option<(u16, usize)>,
}

impl Reach {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            open: PortSet::all(),
            allowed: None,
        }
    }

    /// Reads the rule at `index`, which matches the name: it decides the ports of its range
    /// that no earlier rule covers.
    fn read(&mut self, index: usize, rule: &Rule) {
        if !rule.protocol.covers(self.protocol) {
            return;
        }
        let (lo, hi) = rule.ports.bounds();
        let Some(first) = self.open.take(lo, hi) else {
            return;
        };
        if rule.action == Action::Allow && self.allowed.is_none_or(|(port, _)| first < port) {
            self.allowed = Some((first, index));
        }
    }

    /// The decision on the lowest port a connection to `name` is allowed on, once every rule
    /// was read: a rule's, or on a port no rule covers, a registry's or the default action's
    /// (a registry's first where both allow, as [`Policy::by_rules`] decides).
    fn lowest_allowed(
        &self,
        policy: &Policy,
        name: &str,
        ctx: &EvalContext<'_>,
    ) -> Option<Decision> {
        let by_rules = self.allowed.map(|(port, i)| (port, policy.by_rule(i)));
        let registry = policy
            .admits_registries(self.protocol)
            .then(|| {
                ctx.registries
                    .iter()
                    .flat_map(|r| r.ports().iter().map(move |&port| (port, r)))
                    .filter(|&(port, r)| {
                        r.admits(Some(name), None, port) && self.open.contains(port)
                    })
                    .min_by_key(|&(port, _)| port)
            })
            .flatten()
            .map(|(port, r)| (port, by_registry(r)));
        let default = (policy.default_action == Action::Allow)
            .then(|| self.open.lowest())
            .flatten()
            .filter(|&port| registry.as_ref().is_none_or(|(at, _)| port < *at))
            .map(|port| (port, policy.by_default()));
        [by_rules, registry, default]
            .into_iter()
            .flatten()
            .min_by_key(|(port, _)| *port)
            .map(|(_, d)| d)
    }
}

/// The denial of an attempt to `asked`, which is neither a host name nor an IP literal.
/// How many bytes of what is no name its denial's reason quotes (a host name has at most 253).
const QUOTED_NAME: usize = 253;

/// The denial of `asked`, quoted (escaped) in the reason, cut after [`QUOTED_NAME`] bytes with
/// `…` (bug hunt: `warden network check` wrote a name of 100 kB whole, twice).
fn invalid_name(asked: &str) -> Decision {
    let end = (0..=asked.len().min(QUOTED_NAME))
        .rev()
        .find(|&at| asked.is_char_boundary(at))
        .unwrap_or(0);
    let cut = if end < asked.len() { "…" } else { "" };
    Decision {
        action: Action::Deny,
        matched: Matched::InvalidName,
        reason: format!(
            "{:?}{cut} is not a host name or address ({NAME_SYNTAX})",
            &asked[..end]
        ),
    }
}
