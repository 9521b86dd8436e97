//! The egress proxy of warden (DESIGN.md §4): a sandbox's network namespace has only loopback,
//! and every way out of it leads into this crate.
//!
//! Warden (root on the host) opens listeners *inside* the sandbox's namespace from a thread that
//! `setns(2)`s into it (`listeners.rs`), and installs a default route via `lo` plus an nftables
//! rule that redirects every other outbound TCP connection to one of them (`interception.rs`).
//! The sockets keep their namespace after that thread leaves, so the proxy itself runs on
//! warden's own tokio runtime (`proxy.rs`):
//!
//! - `127.0.0.1:3128` an HTTP proxy (CONNECT and absolute-URI requests, `http.rs`),
//! - `127.0.0.1:1080` a SOCKS5 proxy (`socks.rs`),
//! - `127.0.0.1:53` a resolver that answers only names the policy may allow, with synthetic
//!   addresses, and never forwards a query (`dns.rs`, `synthetic.rs`),
//! - `127.0.0.1:15001` the target of the transparent redirect (`transparent.rs`).
//!
//! Each attempt is decided by a [`Decider`] (the network policy, adapted), then the proxy
//! resolves the name itself, decides again on every address, dials through a [`Dialer`]
//! (`egress.rs`) and relays under the execution's [`ProxyLimits`] (`relay.rs`), checking a TLS
//! ClientHello's server name against the allowed host (`tls.rs`). Every attempt and every DNS
//! question ends as a [`ConnectionRecord`].

mod decider;
mod descriptors;
mod dialer;
mod dns;
mod egress;
mod environment;
mod host;
mod http;
mod interception;
mod limits;
mod listeners;
mod netns;
mod proxy;
mod record;
mod relay;
mod resolver;
mod route;
mod socks;
mod synthetic;
mod tls;
mod transparent;

pub use decider::{Attempt, Decider, Protocol, Verdict};
pub use descriptors::{
    ProxyDescriptors, ProxyShare, DESCRIPTORS_PER_CONNECTION, DESCRIPTORS_PER_PROXY, MIN_CLIENTS,
};
pub use dialer::{AsyncStream, BoxedStream, Dialer, TcpDialer};
pub use environment::{proxy_env, resolv_conf};
pub use host::{host_networks, HostNetworks};
pub use interception::install_interception;
pub use limits::{ExecutionBudget, ProxyLimits, DEFAULT_MAX_CLIENTS};
pub use listeners::{
    open_listeners, NetnsListeners, DNS_PORT, HTTP_PROXY_PORT, SOCKS_PORT, TRANSPARENT_PORT,
};
pub use netns::NetnsError;
pub use proxy::{BlockingProxy, Proxy, ProxyError, ProxyHandle};
pub use record::{ConnectionRecord, Cut, DenialObserver, Traffic};
pub use resolver::{BoxFuture, Resolver, SystemResolver};
pub use synthetic::{SyntheticSequence, SYNTHETIC_NETWORK};
