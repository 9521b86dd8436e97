//! Moving the bytes of an allowed connection, both directions at once, under the execution's
//! limits: each chunk is paid for from the byte budget and paced by the direction's token
//! bucket before it is written, and a connection on which nothing moves for the idle timeout
//! is cut. The first bytes of a tunnel are held back until they are known not to be a TLS
//! ClientHello, or to be one whose server name is the allowed host; a tunnel that must carry
//! TLS, or TLS or a plain HTTP request (an `http` rule), relays nothing from the server before
//! that. Runs on the proxy's runtime.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use warden_core::network::normalize_name;

use crate::decider::{Attempt, Protocol, Verdict};
use crate::egress::{Destination, Host, Upstream};
use crate::http::{self, Framing};
use crate::proxy::Shared;
use crate::record::{Cut, Meter, Recording};
use crate::tls::{self, FirstBytes};

/// One read of a relay.
const CHUNK: usize = 32 * 1024;

/// One write paid for at a time: a rate-limited relay writes in steps this small, so that
/// connections sharing a bucket take turns.
const SLICE: usize = 16 * 1024;

/// What to check in the first bytes from the client.
#[derive(Debug)]
pub(crate) enum Inspection {
    /// A plain HTTP request, whose head the proxy read and rewrote: that head goes first,
    /// then the body as `framing` delimits it, and nothing after it.
    Request { head: Vec<u8>, framing: Framing },
    /// A tunnel: a TLS ClientHello must name the allowed host.
    Tunnel {
        /// The protocol the attempt was allowed as; https requires TLS, http (a tunnel an
        /// `http` rule admitted) TLS or one plain HTTP request.
        protocol: Protocol,
        host: Option<String>,
        addr: IpAddr,
        port: u16,
    },
}

impl Inspection {
    pub(crate) fn tunnel(protocol: Protocol, dest: &Destination, upstream: &Upstream) -> Self {
        Self::Tunnel {
            protocol,
            host: dest.name().map(str::to_owned),
            addr: upstream.addr.ip(),
            port: dest.port,
        }
    }
}

/// How a relay ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// Both ends closed, or one failed.
    Closed,
    /// A limit cut it.
    Cut(Cut),
    /// The TLS check refused it before anything was forwarded.
    Refused(Verdict),
}

enum Stop {
    Io(io::Error),
    Cut(Cut),
    Refused(Verdict),
}

/// What a tunnel's first bytes turned out to be.
enum First {
    /// Bytes to relay as they are, and everything after them.
    Relay(Vec<u8>),
    /// A plain HTTP request, forwarded as the HTTP proxy forwards one: its rewritten head,
    /// the bytes read after it, and how its body is delimited.
    Request {
        head: Vec<u8>,
        rest: Vec<u8>,
        framing: Framing,
    },
}

/// Relays between `client` and `upstream` until both ends are done or something stops it;
/// `initial` (bytes already read from the client) goes first.
pub(crate) async fn run(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: Upstream,
    initial: Vec<u8>,
    inspection: Inspection,
    meter: &Meter,
) -> Ending {
    let Upstream { stream, permit, .. } = upstream;
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = tokio::io::split(stream);
    meter.touch();
    // A tunnel that must carry TLS (or a plain HTTP request) hears nothing from the server
    // before its first bytes passed: a server that speaks first (SMTP, SSH) is not read in
    // plain text through it. Any other tunnel relays both ways at once, as such a server needs.
    let must_be_tls = matches!(
        inspection,
        Inspection::Tunnel {
            protocol: Protocol::Https | Protocol::Http,
            ..
        }
    );
    let (checked, passed) = tokio::sync::oneshot::channel::<()>();
    let up = async {
        if let Inspection::Request { head, framing } = inspection {
            let (reader, writer) = (&mut client_read, &mut upstream_write);
            return one_request(reader, writer, head, initial, framing, shared, meter).await;
        }
        let first =
            match first_flight(&mut client_read, initial, &inspection, shared, meter).await? {
                First::Relay(first) => first,
                First::Request {
                    head,
                    rest,
                    framing,
                } => {
                    let _ = checked.send(());
                    let (reader, writer) = (&mut client_read, &mut upstream_write);
                    return one_request(reader, writer, head, rest, framing, shared, meter).await;
                }
            };
        if must_be_tls && first.is_empty() {
            // Closed before its ClientHello: nothing to relay either way.
            return Err(Stop::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let _ = checked.send(());
        forward(&mut upstream_write, &first, true, shared, meter).await?;
        pump(&mut client_read, &mut upstream_write, true, shared, meter).await
    };
    let down = async {
        if must_be_tls && passed.await.is_err() {
            return Ok(());
        }
        pump(&mut upstream_read, &mut client_write, false, shared, meter).await
    };
    let stopped = tokio::select! {
        both = async { tokio::try_join!(up, down) } => both.err(),
        cut = idle(meter, shared.limits.idle_timeout) => Some(Stop::Cut(cut)),
    };
    // The slot is free once the upstream socket is closed, not before.
    drop((upstream_read, upstream_write));
    drop(permit);
    match stopped {
        None => Ending::Closed,
        Some(Stop::Io(e)) => {
            tracing::debug!(error = %e, "relay ended by an i/o error");
            Ending::Closed
        }
        Some(Stop::Cut(cut)) => Ending::Cut(cut),
        Some(Stop::Refused(verdict)) => Ending::Refused(verdict),
    }
}

/// How long a relay whose program side sent its end of file, and was sent bytes after it,
/// waits for the reset that tells a closed side from a half-closed one: on loopback it comes
/// at once, and only a side that was closed sends it.
const RESET_WAIT: Duration = Duration::from_millis(50);

/// Records how a relay ended. A program's side that sent its end of file and was sent bytes
/// after it either half-closed and reads them (the connection then ends when the server's side
/// closes), or closed and resets the connection as they arrive: the reset is waited for a
/// moment, the record concluded first, so that a stop during the wait finds the relay ended.
pub(crate) async fn conclude(rec: &mut Recording, ending: Ending, client: &TcpStream) {
    match ending {
        Ending::Closed => rec.ended(None),
        Ending::Cut(cut) => rec.ended(Some(cut)),
        Ending::Refused(verdict) => rec.verdict(&verdict),
    }
    if rec.meter.sent_after_client_eof() {
        let reset = tokio::time::timeout(RESET_WAIT, client.ready(Interest::ERROR)).await;
        let reset = matches!(reset, Ok(Ok(ready)) if ready.is_error());
        if reset || client.take_error().ok().flatten().is_some() {
            rec.meter.client_gone();
        }
    }
}

/// Copies `reader` to `writer` until end of file, then half-closes `writer`.
async fn pump<R, W>(
    reader: &mut R,
    writer: &mut W,
    upward: bool,
    shared: &Shared,
    meter: &Meter,
) -> Result<(), Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0; CHUNK];
    loop {
        let n = if upward {
            read_client(reader, &mut buf, meter).await?
        } else {
            reader.read(&mut buf).await.map_err(Stop::Io)?
        };
        if n == 0 {
            if !upward {
                meter.upstream_ended();
            }
            // The other direction may still be moving; a peer already gone is no error here.
            let _ = writer.shutdown().await;
            return Ok(());
        }
        meter.touch();
        forward(writer, &buf[..n], upward, shared, meter).await?;
    }
}

/// Reads from the client, noting when its side ends: end of file (a close or a half-close), or
/// an error (a reset: it closed with bytes unread, as a killed program's socket does).
async fn read_client<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    meter: &Meter,
) -> Result<usize, Stop> {
    match reader.read(buf).await {
        Ok(0) => {
            meter.client_eof();
            Ok(0)
        }
        Ok(n) => Ok(n),
        Err(e) => {
            meter.client_ended();
            Err(Stop::Io(e))
        }
    }
}

/// Forwards one request: `head`, then its body from `initial` and `reader` as `framing`
/// delimits it. What the client sends after the body (a pipelined request, to any host) is
/// read and dropped until it closes: only one request per connection is decided, so no
/// other may reach the origin server. Reading on, rather than closing, lets the response
/// reach the client whole (a close with unread bytes would reset the connection).
async fn one_request<R, W>(
    reader: &mut R,
    writer: &mut W,
    mut head: Vec<u8>,
    initial: Vec<u8>,
    mut framing: Framing,
    shared: &Shared,
    meter: &Meter,
) -> Result<(), Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let body = |framing: &mut Framing, bytes: &[u8]| {
        framing
            .take(bytes)
            .map_err(|why| Stop::Io(io::Error::new(io::ErrorKind::InvalidData, why.to_owned())))
    };
    let n = body(&mut framing, &initial)?;
    head.extend_from_slice(&initial[..n]);
    forward(writer, &head, true, shared, meter).await?;
    let mut buf = vec![0; CHUNK];
    let mut dropped = initial.len() - n;
    loop {
        let n = read_client(reader, &mut buf, meter).await?;
        if n == 0 {
            // The other direction may still be moving; a peer already gone is no error here.
            let _ = writer.shutdown().await;
            if dropped > 0 {
                tracing::debug!(dropped, "bytes after the forwarded request dropped");
            }
            return Ok(());
        }
        if framing.done() {
            dropped += n;
            continue;
        }
        meter.touch();
        let part = body(&mut framing, &buf[..n])?;
        dropped += n - part;
        forward(writer, &buf[..part], true, shared, meter).await?;
    }
}

/// Writes `bytes` as far as the byte budget allows, each slice paced by the bucket.
async fn forward<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    upward: bool,
    shared: &Shared,
    meter: &Meter,
) -> Result<(), Stop> {
    for slice in bytes.chunks(SLICE) {
        let allowed = shared.budget.spend(slice.len());
        let wait = shared.budget.reserve(upward, allowed);
        if !wait.is_zero() {
            // Waiting for the bucket is not idleness.
            meter.hold_off(wait);
            tokio::time::sleep(wait).await;
        }
        if let Err(e) = writer.write_all(&slice[..allowed]).await {
            if !upward {
                meter.client_ended();
            }
            return Err(Stop::Io(e));
        }
        meter.add(upward, allowed as u64);
        if allowed < slice.len() {
            return Err(Stop::Cut(Cut::TotalBytes));
        }
    }
    Ok(())
}

/// Cuts the connection once nothing moved for `limit`.
async fn idle(meter: &Meter, limit: std::time::Duration) -> Cut {
    loop {
        let idle_for = meter.idle_for();
        if idle_for >= limit {
            return Cut::IdleTimeout;
        }
        tokio::time::sleep(limit - idle_for).await;
    }
}

/// Reads the client's first bytes until they are known not to be TLS, or to be a ClientHello
/// that passes the check, or, in a tunnel an `http` rule admitted, to be a plain HTTP request.
async fn first_flight<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: Vec<u8>,
    inspection: &Inspection,
    shared: &Shared,
    meter: &Meter,
) -> Result<First, Stop> {
    let Inspection::Tunnel { protocol, .. } = inspection else {
        return Ok(First::Relay(buf));
    };
    let require_tls = *protocol == Protocol::Https;
    let tls_or_http = *protocol == Protocol::Http;
    match tls_or_not(reader, &mut buf, meter).await? {
        FirstBytes::Incomplete => Ok(First::Relay(buf)), // closed before sending anything
        FirstBytes::NotTls if require_tls => Err(refused(
            "an https connection must start with a TLS ClientHello",
        )),
        FirstBytes::NotTls if tls_or_http => plain_request(reader, buf, inspection, meter).await,
        FirstBytes::NotTls => Ok(First::Relay(buf)),
        FirstBytes::Malformed(why) => {
            // A TLS handshake the check refuses, logged as https as one naming another
            // host is, whatever rule let the tunnel through: one tunnel, one protocol.
            meter.saw_tls();
            Err(refused(why))
        }
        FirstBytes::ClientHello { server_name } => {
            meter.saw_tls();
            check_server_name(inspection, server_name, shared)?;
            Ok(First::Relay(buf))
        }
    }
}

/// Reads the client's first bytes into `buf` until they tell whether they are a TLS
/// ClientHello: [`FirstBytes::Incomplete`] only if the client closed before sending any.
async fn tls_or_not<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    meter: &Meter,
) -> Result<FirstBytes, Stop> {
    // The records read so far: each is parsed once, however many reads it takes.
    let mut hello = tls::Hello::default();
    // One buffer for every read: a hello sent a byte at a time is as many reads. Made at the
    // first read, as the first bytes are often all in `buf` already.
    let mut chunk = Vec::new();
    loop {
        let first = hello.parse(buf);
        if first != FirstBytes::Incomplete {
            return Ok(first);
        }
        chunk.resize(CHUNK, 0);
        let n = read_client(reader, &mut chunk, meter).await?;
        if n == 0 && buf.is_empty() {
            return Ok(FirstBytes::Incomplete);
        }
        if n == 0 {
            // It began a TLS record: logged as https, as every refusal by the check.
            meter.saw_tls();
            return Err(refused("a TLS ClientHello cut short"));
        }
        meter.touch();
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the plain HTTP request that starts a tunnel an `http` rule admitted, up to the end
/// of its head, and rewrites it as the HTTP proxy rewrites one: the `Host` the origin sees is
/// the host the tunnel was allowed for, whatever the program wrote.
async fn plain_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: Vec<u8>,
    inspection: &Inspection,
    meter: &Meter,
) -> Result<First, Stop> {
    let Inspection::Tunnel {
        host, addr, port, ..
    } = inspection
    else {
        return Ok(First::Relay(buf));
    };
    let dest = Destination {
        host: host.clone().map_or(Host::Addr(*addr), Host::Name),
        port: *port,
    };
    let not_http = |why: &str| {
        Stop::Refused(Verdict::deny(
            "http",
            format!(
                "an http connection must start with a TLS ClientHello or an HTTP request: {why}"
            ),
        ))
    };
    // The bytes before `seen` were looked at by an earlier search for the head's end.
    let mut seen = 0;
    // One buffer for every read: a head sent a byte at a time is as many reads.
    let mut chunk = vec![0; CHUNK];
    loop {
        match http::tunnelled_request(&buf, seen, &dest) {
            Ok(Some(http::TunnelledRequest {
                head,
                rest,
                framing,
            })) => {
                return Ok(First::Request {
                    head,
                    rest,
                    framing,
                })
            }
            Ok(None) => {}
            Err(why) => return Err(not_http(why)),
        }
        let n = read_client(reader, &mut chunk, meter).await?;
        if n == 0 {
            return Err(not_http("the request head is cut short"));
        }
        meter.touch();
        seen = buf.len();
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn refused(reason: &str) -> Stop {
    Stop::Refused(Verdict::deny("tls", reason))
}

/// The server name must be the host the tunnel was allowed for. A tunnel to a literal address
/// may name any host the policy allows as https on its port, decided by the name alone: a
/// rule for the address, which let the tunnel through, would match whatever name it carried
/// (a rule matches a name or an address), and so admit every virtual host there. A tunnel
/// allowed as tcp is decided again as https once it turns out to carry TLS.
fn check_server_name(
    inspection: &Inspection,
    server_name: Option<String>,
    shared: &Shared,
) -> Result<(), Stop> {
    let Inspection::Tunnel {
        protocol,
        host,
        addr,
        port,
    } = inspection
    else {
        return Ok(());
    };
    let server_name = match server_name {
        Some(name) => {
            Some(normalize_name(&name).ok_or_else(|| refused("an invalid TLS server name"))?)
        }
        None => None,
    };
    // With the name, the attempt is the name's (as before a name is resolved); without, the
    // address's.
    let decide_as_https = |host: Option<String>| {
        let addr = host.is_none().then_some(*addr);
        let verdict = shared.decider.decide(&Attempt {
            protocol: Protocol::Https,
            host,
            addr,
            port: *port,
        });
        if verdict.allow {
            Ok(())
        } else {
            Err(Stop::Refused(verdict))
        }
    };
    let already_https = *protocol == Protocol::Https;
    match (host, server_name) {
        (Some(host), Some(name)) if *host == name && already_https => Ok(()),
        (Some(host), Some(name)) if *host == name => decide_as_https(Some(name)),
        (Some(host), Some(name)) => Err(refused(&format!(
            "the TLS server name {name} is not the connection's host {host}"
        ))),
        (Some(host), None) => Err(refused(&format!(
            "a TLS ClientHello without a server name for host {host}"
        ))),
        (None, Some(name)) => decide_as_https(Some(name)),
        (None, None) if already_https => Ok(()),
        (None, None) => decide_as_https(None),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;
    use crate::http::head::SCANNED;
    use crate::record::TrafficLog;
    use crate::tls::SCANNED as TLS_SCANNED;

    /// Hands out its bytes one per read, as a program writing one byte at a time.
    struct Trickle(std::collections::VecDeque<u8>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(byte) = self.0.pop_front() {
                buf.put_slice(&[byte]);
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Hunt net N1: the head of a plain request in a tunnel an `http` rule admitted was searched
    /// from its first byte after every read, so that a head sent a byte at a time cost the
    /// proxy work in the square of its size. Each byte is now looked at a bounded number of
    /// times, as the HTTP proxy's own head reader does.
    #[tokio::test]
    async fn a_trickled_tunnel_request_head_is_searched_once() {
        let mut bytes = b"GET / HTTP/1.1\r\nHost: svc.test\r\n".to_vec();
        while bytes.len() < 16 * 1024 {
            bytes.extend_from_slice(b"X-Padding: 0123456789abcdef0123456789abcdef\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let head_len = bytes.len();
        let inspection = Inspection::Tunnel {
            protocol: Protocol::Http,
            host: Some("svc.test".into()),
            addr: IpAddr::from([127, 0, 0, 1]),
            port: 80,
        };
        let rec = Recording::new(
            Arc::new(TrafficLog::default()),
            Protocol::Http,
            None,
            None,
            80,
        );
        let mut reader = Trickle(bytes.into());
        SCANNED.with(|scanned| scanned.set(0));
        let first = plain_request(&mut reader, Vec::new(), &inspection, &rec.meter).await;
        assert!(
            matches!(first, Ok(First::Request { .. })),
            "the request is read"
        );
        let scanned = SCANNED.with(std::cell::Cell::get);
        assert!(
            scanned <= 8 * head_len,
            "{scanned} bytes looked at for a head of {head_len}"
        );
    }

    /// Hunt net N1's kind, for TLS: a ClientHello not complete yet was parsed again from its
    /// first record after every read, so that one sent as many one-byte records, a byte per
    /// write, cost the proxy work in the square of its size. Each byte is now looked at a
    /// bounded number of times.
    #[tokio::test]
    async fn a_trickled_client_hello_is_parsed_once() {
        let hello = tls::padded_client_hello(Some("svc.test"), Some(4000));
        let mut bytes = Vec::new();
        for byte in &hello[5..] {
            bytes.extend_from_slice(&[0x16, 3, 1, 0, 1, *byte]);
        }
        let sent = bytes.len();
        let rec = Recording::new(
            Arc::new(TrafficLog::default()),
            Protocol::Https,
            None,
            None,
            443,
        );
        let mut reader = Trickle(bytes.into());
        let mut buf = Vec::new();
        TLS_SCANNED.with(|scanned| scanned.set(0));
        let first = tls_or_not(&mut reader, &mut buf, &rec.meter).await;
        assert!(
            matches!(
                first,
                Ok(FirstBytes::ClientHello { server_name: Some(ref name) }) if name == "svc.test"
            ),
            "the hello is read"
        );
        assert_eq!(buf.len(), sent, "every byte is kept, to be forwarded");
        let scanned = TLS_SCANNED.with(std::cell::Cell::get);
        assert!(
            scanned <= 8 * sent,
            "{scanned} bytes looked at for a hello of {sent}"
        );
    }
}
