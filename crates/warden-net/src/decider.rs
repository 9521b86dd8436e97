//! What the proxy asks the network policy: one [`Attempt`] in, one [`Verdict`] out. The policy
//! model lives in `warden-core`; an adapter implements [`Decider`] over it, so this crate knows
//! nothing of rules beyond their names. Runs in warden's process, on the proxy's runtime.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The protocol of an attempt, as far as the proxy can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A plain HTTP request through the HTTP proxy (absolute URI), or a tunnel elsewhere than
    /// 443 that only a rule covering both http and https (or a registry) admits: TLS or one
    /// plain request.
    Http,
    /// A tunnel to port 443, one elsewhere that only an https rule admits, or one whose first
    /// bytes are a TLS ClientHello.
    Https,
    /// Any other tunnel: CONNECT, SOCKS5 or an intercepted connection.
    Tcp,
    /// A question to the resolver inside the sandbox.
    Dns,
}

/// One connection the sandboxed program tries to open.
///
/// The proxy asks twice for a name: once with `addr: None` before resolving it, then once per
/// resolved address with both set; an attempt to a literal address has `host: None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// How the program asked.
    pub protocol: Protocol,
    /// The host name, lower case without a trailing dot, when the program gave one (or
    /// connected to the synthetic address the resolver handed out for it).
    pub host: Option<String>,
    /// The address to be dialed, once known.
    pub addr: Option<IpAddr>,
    /// The destination port.
    pub port: u16,
}

/// The policy's answer to an [`Attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the attempt may go ahead.
    pub allow: bool,
    /// The rule that decided, by name (what the traffic log and the denial message show).
    pub rule: String,
    /// Why, in a few words for the program's user.
    pub reason: String,
}

impl Verdict {
    /// An allowing verdict.
    pub fn allow(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            allow: true,
            rule: rule.into(),
            reason: reason.into(),
        }
    }

    /// A denying verdict.
    pub fn deny(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            allow: false,
            rule: rule.into(),
            reason: reason.into(),
        }
    }
}

/// The network policy of one execution, as the proxy sees it. Called on the proxy's runtime
/// for every attempt and DNS question: it must answer from memory, without blocking.
pub trait Decider: Send + Sync + 'static {
    /// Whether `attempt` may go ahead, and by which rule.
    fn decide(&self, attempt: &Attempt) -> Verdict;

    /// Whether the resolver inside the sandbox may answer `name` (lower case, no trailing
    /// dot): true when some rule could allow a connection to it. A false answer is NXDOMAIN.
    fn may_resolve(&self, name: &str) -> bool;
}
