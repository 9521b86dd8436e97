//! `callback_url`: Judge0 `PUT`s the finished submission there (default fields, always base64,
//! up to 3 tries, 5 s each, a try again only when one failed to get an answer, as Judge0's
//! `call_callback` retries only on an exception). warden's hosts have no network, so only a
//! loopback URL (`http://127.0.0.1:…`, `http://localhost:…`, `http://[::1]:…`; the host's
//! address read as a URL parser reads it, `127.1`, `0x7f.1` and `localhost.` included, an empty
//! port being 80) is accepted; any other, and one with a user name or password, is refused when
//! the submission is made. Plain HTTP/1.1 over a TCP stream: one request, so no
//! HTTP client crate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Judge0's `CALLBACKS_MAX_TRIES`.
const TRIES: u32 = 3;
/// Judge0's `CALLBACKS_TIMEOUT`.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read for its status line (`HTTP/1.1 200 OK` and a long reason).
const STATUS_LINE: usize = 256;

/// A callback URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

/// Checks a callback URL: a message for Judge0's 422 when it is not a loopback `http` URL.
pub(crate) fn check(url: &str) -> Result<(), String> {
    target(url).map(|_| ())
}

fn target(url: &str) -> Result<Target, String> {
    let refuse = || {
        "must be an http URL on a loopback address (127.0.0.1, localhost or [::1]): this host has no network"
            .to_owned()
    };
    // A scheme's case does not matter (RFC 3986, 3.1).
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .and_then(|_| url.get(7..))
        .ok_or_else(refuse)?;
    // The fragment is the client's own; the rest goes into the request line as it is, so a
    // space, a control character (CR LF: a second request of the caller's making to the
    // callback's host) or a byte that is not ASCII is refused, as no valid URL has one.
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    if !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be a URL without spaces, control characters or non-ASCII bytes (encode them)"
                .to_owned(),
        );
    }
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    // A URL parser reads a host after the last `@`, but the user name and password before it
    // would be stored with the submission and shown back with its fields, and a receiver
    // that wants them would get a callback without them: refused, saying why.
    if authority.contains('@') {
        return Err(
            "must not carry a user name or password (`user:password@`): warden sends no credentials with a callback"
                .to_owned(),
        );
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An empty port is the scheme's own, as a URL parser reads it.
        Some((host, "")) => (host, 80),
        // Digits alone, as a URL's port is (`u16`'s parse also takes a sign: `+42010`).
        Some((host, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, port.parse::<u16>().map_err(|_| refuse())?)
        }
        Some((_, port)) if !port.contains(']') => return Err(refuse()),
        _ => (authority, 80),
    };
    let ip: IpAddr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => IpAddr::V6(v6.parse::<Ipv6Addr>().map_err(|_| refuse())?),
        // A host name's case does not matter, and a trailing dot names the same host (the
        // root of the DNS tree), as `127.0.0.1.` is the same address.
        None if ["localhost", "localhost."]
            .iter()
            .any(|name| host.eq_ignore_ascii_case(name)) =>
        {
            IpAddr::from([127, 0, 0, 1])
        }
        None => IpAddr::V4(ipv4(host).ok_or_else(refuse)?),
    };
    if !ip.is_loopback() {
        return Err(refuse());
    }
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host: authority.strip_suffix(':').unwrap_or(authority).to_owned(),
        path: if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        },
    })
}

/// An IPv4 address as a URL parser (WHATWG's, and `inet_aton`, which Judge0's HTTP client
/// resolves a host with) reads it: one to four parts, each decimal, octal (`0` first) or hex
/// (`0x` first), the last filling the bytes the others left (`127.1` is 127.0.0.1,
/// `2130706433` too), a trailing dot allowed. `None` for anything else (a host name).
fn ipv4(host: &str) -> Option<Ipv4Addr> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<u32> = host
        .split('.')
        .map(|part| {
            let (digits, radix) = match part.get(..2) {
                Some("0x" | "0X") => (&part[2..], 16),
                _ if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
                _ => (part, 10),
            };
            match digits {
                // `0x` alone is 0, as both parsers read it.
                "" if radix == 16 => Some(0),
                _ if digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(digits, radix).ok()
                }
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    let (last, first) = parts.split_last()?;
    if parts.len() > 4 || first.iter().any(|p| *p > 255) {
        return None;
    }
    let room = 8 * (4 - first.len() as u32);
    if room < 32 && *last >> room != 0 {
        return None;
    }
    let high = first
        .iter()
        .enumerate()
        .fold(0u32, |n, (i, p)| n | p << (24 - 8 * i as u32));
    Some(Ipv4Addr::from(high | last))
}

/// `PUT`s `body` to `url`; failures are logged, never returned (the submission's result does
/// not depend on its callback). As Judge0: tried again, up to three tries, only when a try got
/// no answer (a connection refused, a timeout); any answer, a 500 too, ends it.
pub(crate) async fn deliver(url: String, body: String) {
    let url = url.as_str();
    let Ok(target) = target(url) else {
        return;
    };
    for attempt in 1..=TRIES {
        match tokio::time::timeout(TIMEOUT, put(&target, &body)).await {
            Ok(Ok(Ok(status))) if (200..300).contains(&status) => return,
            Ok(Ok(Ok(status))) => {
                tracing::warn!(url, status, "callback refused");
                return;
            }
            // The receiver had the request and answered: trying again would send it twice.
            Ok(Ok(Err(answer))) => {
                tracing::warn!(url, answer, "callback answered without an HTTP status line");
                return;
            }
            Ok(Err(e)) => tracing::warn!(url, error = %e, attempt, "callback failed"),
            Err(_) => tracing::warn!(url, attempt, "callback timed out"),
        }
    }
}

/// One `PUT`; the status code of the answer, or (`Err`) the start of an answer that has none;
/// an I/O error when nothing came back.
async fn put(target: &Target, body: &str) -> std::io::Result<Result<u16, String>> {
    let mut stream = TcpStream::connect(target.addr).await?;
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let line = status_line(&mut stream).await?;
    let line = String::from_utf8_lossy(&line);
    let mut words = line.split_whitespace();
    let code = words
        .next()
        .filter(|version| version.starts_with("HTTP/"))
        .and_then(|_| words.next())
        .and_then(|code| code.parse().ok());
    Ok(code.ok_or_else(|| format!("{line:?}")))
}

/// The answer's status line (`HTTP/1.1 200 OK`): read until its CRLF, the end of the stream
/// or [`STATUS_LINE`] bytes, however many segments it comes in (a server may write
/// `HTTP/1.1` and the rest apart). `Err` only when nothing came back at all, the one case a
/// try is made again.
async fn status_line(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(STATUS_LINE);
    let mut chunk = [0u8; STATUS_LINE];
    while line.len() < STATUS_LINE && !line.contains(&b'\n') {
        let room = STATUS_LINE - line.len();
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&chunk[..n]);
    }
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection closed without an answer",
        ));
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    line.truncate(end);
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls_are_accepted() {
        for url in [
            "http://127.0.0.1:8080/cb",
            "http://localhost:9000",
            "http://[::1]:80/x?y=1",
            "http://127.1.2.3/",
        ] {
            assert_eq!(check(url), Ok(()), "{url}");
        }
        for url in [
            "https://127.0.0.1/cb",
            "http://example.invalid/cb",
            "http://10.0.0.1:80/",
            "ftp://localhost/",
        ] {
            assert!(check(url).is_err(), "{url}");
        }
        let t = target("http://localhost:9000").expect("valid");
        assert_eq!((t.addr.port(), t.path.as_str()), (9000, "/"));
        // Bug hunt: CR LF in the path wrote a second request of the caller's making to the
        // callback's host.
        for url in [
            "http://127.0.0.1:8080/cb HTTP/1.1\r\nHost: x\r\n\r\nDELETE /submissions/a",
            "http://127.0.0.1:8080/c\nb",
            "http://127.0.0.1:8080/cé",
            "http://127.0.0.1:80\r\n/",
        ] {
            assert!(check(url).is_err(), "{url:?}");
        }
        let t = target("http://127.0.0.1:8080/cb?x=1#frag").expect("valid");
        assert_eq!(t.path, "/cb?x=1");
        let t = target("http://127.0.0.1:8080?x=1").expect("valid");
        assert_eq!((t.addr.port(), t.path.as_str()), (8080, "/?x=1"));
    }

    /// Hunt compat 4: `HTTP://` was refused (a scheme's case does not matter), and so was
    /// `127.1`, an address in 127.0.0.0/8 that Judge0's client reaches.
    #[test]
    fn the_scheme_and_the_address_are_read_as_a_url_parser_reads_them() {
        for (url, addr) in [
            ("HTTP://127.0.0.1:9000/cb", [127, 0, 0, 1]),
            ("Http://localhost:9000/", [127, 0, 0, 1]),
            ("http://127.1:9000/", [127, 0, 0, 1]),
            ("http://127.0.1:9000/", [127, 0, 0, 1]),
            ("http://127.1.2.3.:9000/", [127, 1, 2, 3]),
            ("http://2130706433:9000/", [127, 0, 0, 1]),
            ("http://0x7f.1:9000/", [127, 0, 0, 1]),
            ("http://0177.0.0.1:9000/", [127, 0, 0, 1]),
            ("http://127.0x:9000/", [127, 0, 0, 0]),
        ] {
            let t = target(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.addr, SocketAddr::from((addr, 9000)), "{url}");
        }
        for url in [
            // Not loopback, however spelled.
            "http://10.1:80/",
            "http://167772161/",
            "http://0x0a.0.0.1/",
            "http://0.0.0.0/",
            // Not addresses.
            "http://127.0.0.256/",
            "http://127.1.2.3.4/",
            "http://127..1/",
            "http://08.0.0.1/",
            "http://127.0xg/",
            "http://127.16777216/",
            "http://[127.0.0.1]/",
            "httpx://127.0.0.1/",
            "http:/127.0.0.1/",
        ] {
            assert!(check(url).is_err(), "{url}");
        }
    }

    /// Hunt compat 4: a 500 answer was tried three times; Judge0 tries again only when a try
    /// raised (no answer, a timeout).
    #[tokio::test]
    async fn an_answer_ends_the_tries_whatever_its_status() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&tries);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
                let _ = stream.write_all(answer).await;
            }
        });
        deliver(format!("http://127.0.0.1:{port}/cb"), "{}".to_owned()).await;
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    /// A receiver on loopback that answers each connection with `pieces`, pausing between
    /// them; the count of connections (each one `PUT`) it got.
    async fn receiver(
        pieces: &'static [&'static [u8]],
    ) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let puts = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&puts);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                for piece in pieces {
                    let _ = stream.write_all(piece).await;
                    let _ = stream.flush().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        (port, puts)
    }

    /// Hunt compat (j0): a status line that came in two segments (`HTTP/1.1`, then ` 200 OK`)
    /// was read as "not an HTTP answer" from the first alone, and the callback `PUT` three
    /// times to a receiver that had answered 200.
    #[tokio::test]
    async fn a_status_line_in_pieces_is_one_answer() {
        use std::sync::atomic::Ordering;
        let (port, puts) = receiver(&[
            b"HTTP/1.1",
            b" 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ])
        .await;
        let target = target(&format!("http://127.0.0.1:{port}/cb")).expect("valid");
        assert_eq!(put(&target, "{}").await.expect("an answer"), Ok(200));
        deliver(format!("http://127.0.0.1:{port}/cb"), "{}".to_owned()).await;
        assert_eq!(puts.load(Ordering::SeqCst), 2, "one PUT for each call");
    }

    /// Only no answer at all is tried again: one that is not HTTP came from a receiver that
    /// had the request.
    #[tokio::test]
    async fn only_no_answer_is_tried_again() {
        use std::sync::atomic::Ordering;
        let (port, puts) = receiver(&[b"nonsense\r\n"]).await;
        deliver(format!("http://127.0.0.1:{port}/cb"), "{}".to_owned()).await;
        assert_eq!(puts.load(Ordering::SeqCst), 1);
        let (port, puts) = receiver(&[]).await;
        deliver(format!("http://127.0.0.1:{port}/cb"), "{}".to_owned()).await;
        assert_eq!(
            puts.load(Ordering::SeqCst),
            3,
            "closed without a byte: tried again"
        );
    }

    /// Hunt compat 7: `LOCALHOST` was refused while `127.0.0.1:+42010` was accepted (and sent
    /// as the `Host`). A host name's case does not matter; a port is digits alone.
    #[test]
    fn a_host_names_case_is_ignored_and_a_signed_port_refused() {
        let t = target("http://LocalHost:9000/cb").expect("valid");
        assert_eq!(t.addr, SocketAddr::from(([127, 0, 0, 1], 9000)));
        for url in [
            "http://127.0.0.1:+42010/",
            "http://localhost:-1/",
            "http://[::1]:+80/",
        ] {
            assert!(check(url).is_err(), "{url}");
        }
    }

    /// Regression hunt L3: `localhost.` and an empty port (`127.0.0.1:`), both loopback as a
    /// URL parser reads them, were refused as not loopback.
    #[test]
    fn a_trailing_dot_on_localhost_and_an_empty_port_are_read_as_a_url_parser_reads_them() {
        for (url, port, host) in [
            ("http://localhost.:9000/f", 9000, "localhost.:9000"),
            ("http://LOCALHOST./f", 80, "LOCALHOST."),
            ("http://127.0.0.1:/g", 80, "127.0.0.1"),
            ("http://[::1]:/g", 80, "[::1]"),
            ("http://localhost.:?x=1", 80, "localhost."),
        ] {
            let t = target(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((t.addr.port(), t.host.as_str()), (port, host), "{url}");
            assert!(t.addr.ip().is_loopback(), "{url}");
        }
        for url in [
            "http://localhost../",
            "http://localhost.example/",
            "http://10.0.0.1:/",
            "http://example.invalid.:/",
        ] {
            assert!(check(url).is_err(), "{url}");
        }
    }

    /// Regression hunt L3: a URL with a user name or password was refused as "not a loopback
    /// address" although its host is one. It is still refused (the credentials would be kept
    /// and shown with the submission, and never sent), now saying so; a host after the `@`
    /// that is not loopback stays refused.
    #[test]
    fn a_user_name_or_password_is_refused_for_what_it_is() {
        for url in [
            "http://user@127.0.0.1:9000/e",
            "http://u:p@localhost:9000/",
            "http://127.0.0.1@example.invalid/",
            "http://u@10.0.0.1/",
        ] {
            let message = check(url).expect_err(url);
            assert!(
                message.contains("user name or password"),
                "{url}: {message}"
            );
        }
    }
}
