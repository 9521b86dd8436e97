//! How the proxy opens the upstream connection of an allowed attempt. Replaceable so that tests
//! can prove what would have been dialed without dialing. Runs on the proxy's runtime, in
//! warden's (the host's) network namespace.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::resolver::BoxFuture;

/// A byte stream the proxy can relay to: a TCP stream, or whatever a [`Dialer`] returns.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// An upstream connection.
pub type BoxedStream = Box<dyn AsyncStream>;

/// Opens upstream connections.
pub trait Dialer: Send + Sync + 'static {
    /// A connection to `addr`, which the policy allowed. The proxy bounds the call with its
    /// connect timeout.
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxedStream>>;
}

/// Plain TCP from the host's network namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxedStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            // The relay writes what it read at once; Nagle would only add latency.
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }
}
