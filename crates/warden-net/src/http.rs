//! The HTTP proxy inside the sandbox (`127.0.0.1:3128`, what `HTTP_PROXY` names): `CONNECT`
//! opens a tunnel, a request with an absolute `http://` URI is forwarded in origin form, one
//! per connection: its head checked and rewritten (`head.rs`), its body forwarded to its end
//! and nothing after it (`body.rs`). A denial is a `403` whose body names the rule and the
//! reason, at once. Runs on the proxy's runtime.

mod body;
pub(crate) mod head;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::decider::Protocol;
use crate::egress::{self, Destination, Refusal};
use crate::proxy::Shared;
use crate::relay::{self, conclude, Inspection};
pub(crate) use body::Framing;
use head::{HeadEnd, RequestHead, Target};

/// Serves one client connection: one CONNECT tunnel or one forwarded request. A request it
/// cannot read is answered `400` (`431` for a head too large) and logged as a denial, as
/// every attempt is (hunt netlog 1: it was answered and logged nowhere).
pub(crate) async fn serve(shared: &Shared, mut client: TcpStream) {
    let mut buf = Vec::new();
    let end =
        match tokio::time::timeout(shared.limits.idle_timeout, read_head(&mut client, &mut buf))
            .await
        {
            Ok(Ok(HeadEnd::At(end))) => end,
            Ok(Ok(HeadEnd::BareLf)) => {
                let why = "a line of the request head ends without CR";
                return malformed(shared, &mut client, &buf, 400, why).await;
            }
            Ok(Ok(HeadEnd::Incomplete)) => {
                let why = "the request head is too large";
                return malformed(shared, &mut client, &buf, 431, why).await;
            }
            Ok(Err(_)) | Err(_) => return,
        };
    let rest = buf.split_off(end);
    let request = match head::parse(&buf) {
        Ok(request) => request,
        Err(why) => return malformed(shared, &mut client, &buf, 400, why).await,
    };
    match request.proxy_target() {
        Ok(Target::Connect { host, port }) => connect(shared, client, host, port, rest).await,
        Ok(Target::Absolute { host, port, path }) => {
            match request.framing().and_then(|f| body_starts_well(f, &rest)) {
                Ok(framing) => {
                    forward(shared, client, &request, (host, port, &path), framing, rest).await;
                }
                Err(why) => malformed(shared, &mut client, &buf, 400, why).await,
            }
        }
        Err(why) => malformed(shared, &mut client, &buf, 400, why).await,
    }
}

/// Answers a request the proxy cannot read with `status` and `why`, and logs it as a denial
/// by [`egress::MALFORMED`] with what it asked for as far as it can be read
/// ([`head::rough_target`]).
async fn malformed(shared: &Shared, client: &mut TcpStream, head: &[u8], status: u16, why: &str) {
    let (connect, asked, port) = head::rough_target(head);
    let protocol = if connect {
        egress::invalid_tunnel_protocol(port)
    } else {
        Protocol::Http
    };
    egress::refuse_malformed(shared, protocol, asked, port, why);
    respond(client, status, why).await;
}

/// Reads until the end of the request head, or until it is known to be refused;
/// [`HeadEnd::Incomplete`] when it grows past the bound first.
async fn read_head(client: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<HeadEnd> {
    let mut chunk = [0; 4096];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let seen = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        match head::head_end(buf, seen) {
            HeadEnd::Incomplete if buf.len() <= head::MAX_HEAD => {}
            end => return Ok(end),
        }
    }
}

async fn connect(shared: &Shared, mut client: TcpStream, host: &str, port: u16, rest: Vec<u8>) {
    let Some(dest) = Destination::named(host, port, &shared.pool) else {
        let protocol = egress::invalid_tunnel_protocol(port);
        let refusal = egress::refuse_invalid(shared, protocol, host.as_bytes(), port);
        return refuse(&mut client, &refusal).await;
    };
    let protocol = egress::tunnel_protocol(shared, &dest);
    let mut rec = shared.recording(protocol, &dest);
    let upstream = match egress::open(shared, &dest, &mut rec).await {
        Ok(upstream) => upstream,
        Err(refusal) => return refuse(&mut client, &refusal).await,
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return rec.ended(None);
    }
    let inspection = Inspection::tunnel(protocol, &dest, &upstream);
    let ending = relay::run(shared, &mut client, upstream, rest, inspection, &rec.meter).await;
    conclude(&mut rec, ending, &client).await;
}

async fn forward(
    shared: &Shared,
    mut client: TcpStream,
    request: &RequestHead<'_>,
    (host, port, path): (&str, u16, &str),
    framing: Framing,
    rest: Vec<u8>,
) {
    let Some(dest) = Destination::named(host, port, &shared.pool) else {
        let refusal = egress::refuse_invalid(shared, Protocol::Http, host.as_bytes(), port);
        return refuse(&mut client, &refusal).await;
    };
    let mut rec = shared.recording(Protocol::Http, &dest);
    let upstream = match egress::open(shared, &dest, &mut rec).await {
        Ok(upstream) => upstream,
        Err(refusal) => return refuse(&mut client, &refusal).await,
    };
    let inspection = Inspection::Request {
        head: request.for_origin(path, &dest),
        framing,
    };
    let ending = relay::run(shared, &mut client, upstream, rest, inspection, &rec.meter).await;
    conclude(&mut rec, ending, &client).await;
}

/// A plain request read from a tunnel: its head rewritten for the origin, the bytes read after
/// the head, and how its body is delimited.
pub(crate) struct TunnelledRequest {
    pub(crate) head: Vec<u8>,
    pub(crate) rest: Vec<u8>,
    pub(crate) framing: Framing,
}

/// The plain HTTP request at the start of a tunnel that an `http` rule admitted (`relay.rs`):
/// `Ok(None)` until its head is all in `buf`; then the head rewritten for the origin as the
/// proxy rewrites a forwarded one (`Host` naming `dest`, hop-by-hop headers dropped,
/// `Connection: close`), the bytes after it, and how its body is delimited. The target must
/// be in origin form (`/path`), as a program that does not know of a proxy sends it. The head's
/// end is looked for from `seen` on, as in [`read_head`]: what came before was looked at by an
/// earlier call, so that a head sent a byte at a time costs work in its size, not its square.
pub(crate) fn tunnelled_request(
    buf: &[u8],
    seen: usize,
    dest: &Destination,
) -> Result<Option<TunnelledRequest>, &'static str> {
    let end = match head::head_end(buf, seen) {
        HeadEnd::At(end) => end,
        HeadEnd::BareLf => return Err("a line of the request head ends without CR"),
        HeadEnd::Incomplete if buf.len() > head::MAX_HEAD => {
            return Err("the request head is too large")
        }
        HeadEnd::Incomplete if !head::may_start_request(buf, seen) => {
            return Err("its first bytes are no request line `METHOD /path HTTP/1.x`")
        }
        HeadEnd::Incomplete => return Ok(None),
    };
    let request = head::parse(&buf[..end])?;
    if !request.target.starts_with('/') {
        return Err("a plain HTTP request in a tunnel must have an origin-form target (/path)");
    }
    let framing = body_starts_well(request.framing()?, &buf[end..])?;
    let head = request.for_origin(request.target, dest);
    Ok(Some(TunnelledRequest {
        head,
        rest: buf[end..].to_vec(),
        framing,
    }))
}

/// `framing`, once the body bytes read with the head (`read`) are seen to follow it: a body
/// malformed from its first bytes (a chunk line ending in a bare LF, a chunk size of 16 hex
/// digits) is the client's error, answered before anything is dialed rather than as an allowed
/// connection cut with nothing sent. A body that goes wrong later is cut as it does.
fn body_starts_well(framing: Framing, read: &[u8]) -> Result<Framing, &'static str> {
    framing.clone().take(read)?;
    Ok(framing)
}

async fn refuse(client: &mut TcpStream, refusal: &Refusal) {
    let (status, text) = match refusal {
        // A deny-set range names its reason already ("deny set: ::1 (loopback: ...)").
        Refusal::Denied(verdict) if verdict.rule.contains(&verdict.reason) => {
            (403, format!("denied by {}", verdict.rule))
        }
        // The rule is named already: `rule 2`, `default`, `invalid name`, `tls`.
        Refusal::Denied(verdict) => (
            403,
            format!("denied by {}: {}", verdict.rule, verdict.reason),
        ),
        Refusal::Limit(reason) => (429, reason.clone()),
        Refusal::Unresolvable(reason) | Refusal::Unreachable(_, reason) => (502, reason.clone()),
        Refusal::TimedOut(reason) => (504, reason.clone()),
    };
    respond(client, status, &text).await;
}

/// Answers with `status` and `text` as a plain-text body, and closes.
async fn respond(client: &mut TcpStream, status: u16, text: &str) {
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        _ => "Gateway Timeout",
    };
    let body = format!("warden: {text}\n");
    let response = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may be gone already; there is no one else to tell.
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}
