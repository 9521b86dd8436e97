//! How the proxy turns an allowed host name into addresses. The proxy resolves names itself,
//! on the host, and never trusts an address the sandboxed program computed (it only ever sees
//! synthetic ones); tests replace the resolver with one that answers from a table. Runs on the
//! proxy's runtime, in warden's (the host's) network namespace.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;

/// A boxed, sendable future: what the [`Resolver`] and [`Dialer`](crate::Dialer) traits return,
/// so that they can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves host names for the proxy.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `name` (lower case, no trailing dot). An empty list counts as "no such
    /// host". The proxy bounds the call with its connect timeout.
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>>;
}

/// The host's resolver (`getaddrinfo(3)` on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let mut addrs: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
                .await?
                .map(|addr| addr.ip())
                .collect();
            // getaddrinfo lists an address once per socket type.
            let mut seen = std::collections::HashSet::new();
            addrs.retain(|addr| seen.insert(*addr));
            Ok(addrs)
        })
    }
}
