//! The HTTP/1 request head as a forward proxy reads it: the request line, the header lines, the
//! target as CONNECT's `host:port` or an absolute `http://` URI, and the head rewritten for the
//! origin server. RFC 9112 §3 (request line), §3.2.2 and §3.2.3 (absolute and authority forms).

use super::body::Framing;
use crate::egress::Destination;

/// Bound on a request head: generous for real clients, small for warden's memory.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) version: &'a str,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
}

/// What a proxy request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// `CONNECT host:port`: a tunnel.
    Connect { host: &'a str, port: u16 },
    /// `GET http://host[:port]/path`: one request, forwarded with `path`.
    Absolute {
        host: &'a str,
        port: u16,
        path: String,
    },
}

/// How far the bytes read so far go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadEnd {
    /// The head ends just before this offset (past its blank line).
    At(usize),
    /// A line feed without its carriage return: refused, however the head goes on.
    BareLf,
    /// Not all there yet.
    Incomplete,
}

#[cfg(test)]
thread_local! {
    /// Bytes [`head_end`] looked at on this thread: the work a trickled head costs.
    pub(crate) static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Where the head in `buf` ends, looking only from `seen` on (what came before was looked at
/// by an earlier call): the end may straddle two reads.
pub(crate) fn head_end(buf: &[u8], seen: usize) -> HeadEnd {
    let from = seen.saturating_sub(3);
    #[cfg(test)]
    SCANNED.with(|scanned| scanned.set(scanned.get() + buf.len().saturating_sub(from)));
    let end = buf[from..]
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| from + at + 4);
    // Only the head: a body may hold line feeds of any kind.
    let lf_without_cr = (seen..end.unwrap_or(buf.len()))
        .any(|i| buf[i] == b'\n' && (i == 0 || buf[i - 1] != b'\r'));
    match end {
        _ if lf_without_cr => HeadEnd::BareLf,
        Some(end) => HeadEnd::At(end),
        None => HeadEnd::Incomplete,
    }
}

/// Parses a complete head (including its blank line). Every field is checked before anything
/// is forwarded: a line ends only at CR LF, and no field holds another control character, so
/// that the origin server reads the head exactly as the proxy did. A server that ends lines at
/// a bare LF (RFC 9112 §2.2 allows it) would otherwise find a second `Host` or a second request
/// where the proxy saw a header value.
pub(crate) fn parse(head: &[u8]) -> Result<RequestHead<'_>, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not text")?;
    let mut lines = text
        .strip_suffix("\r\n\r\n")
        .ok_or("the request head does not end with a blank line")?
        .split("\r\n");
    let request_line = lines.next().ok_or("no request line")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the request line is not `METHOD target HTTP/1.x`");
    };
    if !is_token(method) || !is_version(version) || target.is_empty() {
        return Err("the request line is not `METHOD target HTTP/1.x`");
    }
    // An absolute URI, or CONNECT's host:port: visible ASCII only (RFC 3986 §2).
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the request target holds a character a URI cannot");
    }
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or("a header line without a colon")?;
            if !is_token(name) {
                return Err("a malformed header name");
            }
            // Visible characters, spaces and tabs (RFC 9110 §5.5); CR, LF and NUL never.
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err("a control character in a header value");
            }
            Ok((name, value.trim_matches([' ', '\t'])))
        })
        .collect::<Result<_, _>>()?;
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
    })
}

/// What a request the proxy cannot parse asks for, as far as it can be read, for the log:
/// whether it is a CONNECT, its target (the request line's second word, or the whole line
/// when it has no second), and the port the target names (80 for an `http://` URL without
/// one, 0 when none can be read). Only the first line is looked at, and nothing is trusted.
pub(crate) fn rough_target(head: &[u8]) -> (bool, &[u8], u16) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let method = words.next().unwrap_or(line);
    let target = words.next().unwrap_or(line);
    let connect = method.eq_ignore_ascii_case(b"CONNECT");
    let authority = if connect {
        Some(target)
    } else if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        let rest = &target[7..];
        let end = rest.iter().position(|b| b"/?#".contains(b));
        Some(&rest[..end.unwrap_or(rest.len())])
    } else {
        None
    };
    let port = authority.map_or(0, |authority| {
        let colon = authority.iter().rposition(|&b| b == b':');
        let after = colon.map(|at| &authority[at + 1..]);
        match after {
            // A colon inside brackets is an IPv6 address's.
            Some(port) if !port.contains(&b']') => std::str::from_utf8(port)
                .ok()
                .and_then(|port| port.parse().ok())
                .unwrap_or(0),
            _ if connect => 0,
            _ => 80,
        }
    });
    (connect, target, port)
}

/// Whether `buf`, the start of a tunnel's request whose head is not all there yet, can still
/// be one that [`parse`] reads and a tunnel forwards: its request line, as far as it goes,
/// `METHOD /target HTTP/1.x` (origin form), and no control character but CR, LF and tab after
/// it. What is no HTTP (`SSH-2.0-...`, a greeting of another protocol) is told from its first
/// line rather than after the idle timeout, the server dialed and waiting. Only the bytes from
/// `seen` on are looked at for control characters, and the request line only in the first
/// [`FIRST_LOOK`] bytes and while they come in: a head sent a byte at a time costs work in its
/// size, not its square.
pub(crate) fn may_start_request(buf: &[u8], seen: usize) -> bool {
    let control = |b: &u8| b.is_ascii_control() && !b"\r\n\t".contains(b);
    if buf[seen.min(buf.len())..].iter().any(control) {
        return false;
    }
    seen >= FIRST_LOOK || request_line_may_start(&buf[..buf.len().min(FIRST_LOOK)])
}

/// How much of a tunnel's first bytes is looked at for a request line before its head ends.
const FIRST_LOOK: usize = 1024;

/// Whether `buf` starts as a request line a tunnel forwards does, as far as it goes.
fn request_line_may_start(buf: &[u8]) -> bool {
    let line_end = buf.windows(2).position(|pair| pair == b"\r\n");
    let line = &buf[..line_end.unwrap_or(buf.len())];
    // A CR at the very end may be the line's, its LF still to come.
    let line = match line_end {
        None => line.strip_suffix(b"\r").unwrap_or(line),
        Some(_) => line,
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next();
    let version = parts.next();
    match (target, version) {
        _ if !method.iter().all(|&b| is_token_byte(b)) => false,
        (None, _) => line_end.is_none(),
        (Some(target), _) if method.is_empty() || !target.iter().all(u8::is_ascii_graphic) => false,
        (Some(target), _) if target.first().is_some_and(|&b| b != b'/') => false,
        (Some(_), None) => line_end.is_none(),
        (Some(target), Some(version)) => {
            let prefix = &b"HTTP/1."[..version.len().min(7)];
            let minor = version.get(7..).unwrap_or_default();
            !target.is_empty()
                && version.starts_with(prefix)
                && minor.len() <= 1
                && minor.iter().all(u8::is_ascii_digit)
                && (line_end.is_none() || minor.len() == 1)
        }
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An RFC 9110 §5.6.2 token: a method or a header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `HTTP/1.0` or `HTTP/1.1` (or another minor version of 1).
fn is_version(s: &str) -> bool {
    s.strip_prefix("HTTP/1.")
        .is_some_and(|minor| minor.len() == 1 && minor.bytes().all(|b| b.is_ascii_digit()))
}

impl<'a> RequestHead<'a> {
    /// What the request asks the proxy for.
    pub(crate) fn proxy_target(&self) -> Result<Target<'a>, &'static str> {
        if self.method.eq_ignore_ascii_case("CONNECT") {
            let (host, port) = authority(self.target)?;
            let port = port.ok_or("CONNECT needs host:port")?;
            return Ok(Target::Connect { host, port });
        }
        let (scheme, rest) = self
            .target
            .split_once("://")
            .ok_or("not a proxy request: the target must be an absolute http:// URL")?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err("https:// URLs go through CONNECT");
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err("only http:// URLs are forwarded");
        }
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority_part, path) = rest.split_at(split);
        let (host, port) = authority(authority_part)?;
        let path = match path.split('#').next().unwrap_or_default() {
            "" => "/".to_owned(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_owned(),
        };
        Ok(Target::Absolute {
            host,
            port: port.unwrap_or(80),
            path,
        })
    }

    /// How the request's body is delimited (RFC 9112 §6): by `Transfer-Encoding: chunked`,
    /// by `Content-Length`, or not there. What the proxy and the origin server could read
    /// differently is refused: both headers at once, a coding after `chunked`, lengths that
    /// disagree (request smuggling, RFC 9112 §6.3 and §11.2).
    pub(crate) fn framing(&self) -> Result<Framing, &'static str> {
        let values = |wanted: &'static str| {
            self.headers
                .iter()
                .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
                .flat_map(|(_, value)| value.split(','))
                .map(|item| item.trim_matches([' ', '\t']))
        };
        let codings: Vec<&str> = values("transfer-encoding").collect();
        let lengths: Vec<&str> = values("content-length").collect();
        if !codings.is_empty() {
            if !lengths.is_empty() {
                return Err("both Transfer-Encoding and Content-Length");
            }
            if self.version == "HTTP/1.0" {
                return Err("Transfer-Encoding in an HTTP/1.0 request");
            }
            let chunked = |c: &&str| c.eq_ignore_ascii_case("chunked");
            return match codings.split_last() {
                Some((last, before)) if chunked(last) && !before.iter().any(chunked) => {
                    Ok(Framing::chunked())
                }
                _ => Err("a Transfer-Encoding that does not end with a single chunked"),
            };
        }
        let Some(first) = lengths.first() else {
            return Ok(Framing::Length(0));
        };
        let valid = lengths.iter().all(|l| l == first)
            && !first.is_empty()
            && first.bytes().all(|b| b.is_ascii_digit());
        match first.parse::<u64>() {
            Ok(length) if valid => Ok(Framing::Length(length)),
            _ => Err("a malformed Content-Length"),
        }
    }

    /// The head to send to the origin: origin-form target, `Host` naming the destination the
    /// policy decided on (the client's own is dropped, RFC 9112 §3.2.2), hop-by-hop and proxy
    /// headers dropped, those the client's `Connection` names too (RFC 9110 §7.6.1), and
    /// `Connection: close`: one request per connection, its body
    /// delimited by [`RequestHead::framing`]; whatever the client sends after it is never
    /// forwarded (`relay.rs`).
    pub(crate) fn for_origin(&self, path: &str, dest: &Destination) -> Vec<u8> {
        const DROPPED: &[&str] = &[
            "host",
            "connection",
            "proxy-connection",
            "proxy-authorization",
            "keep-alive",
        ];
        // Never the headers that frame the body: the proxy forwards the body as
        // [`RequestHead::framing`] read them, and the origin must read it so too (dropped,
        // `Connection: content-length` made the body a second request the origin answered).
        const FRAMING: &[&str] = &["content-length", "transfer-encoding"];
        let named: Vec<&str> = self
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, value)| value.split(','))
            .map(|option| option.trim_matches([' ', '\t']))
            .filter(|option| !FRAMING.iter().any(|f| option.eq_ignore_ascii_case(f)))
            .collect();
        let mut out = format!(
            "{} {path} {}\r\nHost: {}\r\n",
            self.method,
            self.version,
            dest.authority(80)
        );
        for (name, value) in &self.headers {
            let hop_by_hop = DROPPED.iter().chain(&named);
            if !hop_by_hop.clone().any(|d| name.eq_ignore_ascii_case(d)) {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

/// Splits `host[:port]` or `[v6][:port]`; no user information.
fn authority(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    if authority.contains('@') {
        return Err("user information in the URL is not forwarded");
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("an unclosed [ in the host")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("junk after the ] of the host")?,
            ),
        };
        (v6, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    // Digits alone: `u16`'s parse takes a sign (`+80`), which no URL's port has.
    let port = port
        .map(|p| {
            p.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u16>().ok())
                .flatten()
                .filter(|p| *p != 0)
                .ok_or("a bad port")
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticPool;

    #[test]
    fn what_is_no_start_of_a_request_is_told_from_its_first_line() {
        for start in [
            &b""[..],
            b"G",
            b"GET",
            b"GET ",
            b"GET /",
            b"GET /x HTT",
            b"GET /x HTTP/1.",
            b"GET /x HTTP/1.1",
            b"GET /x HTTP/1.1\r",
            b"GET /x HTTP/1.1\r\nHost: a\r\nX: \t",
        ] {
            assert!(
                may_start_request(start, 0),
                "{:?}",
                String::from_utf8_lossy(start)
            );
        }
        for start in [
            &b"SSH-2.0-x\r\n"[..],
            b"\x16\x03",
            b"GET http://a/ ",
            b"GET /x HTTP/2",
            b"GET /x HTTP/1.12",
            b"GET /x HTTP/1.\r\n",
            b"GET /x  HTTP/1.1",
            b"GET /\x01",
            b"GET /x HTTP/1.1\rX",
            b"GET /x HTTP/1.1\r\nX: \x01",
            b"EHLO x\r\n",
        ] {
            assert!(
                !may_start_request(start, 0),
                "{:?}",
                String::from_utf8_lossy(start)
            );
        }
        // Looked at as it comes in: a byte at a time the same.
        let ssh = b"SSH-2.0-x\r\n";
        let verdicts: Vec<_> = (1..=ssh.len())
            .map(|n| may_start_request(&ssh[..n], n - 1))
            .collect();
        assert_eq!(verdicts.iter().position(|ok| !ok), Some(ssh.len() - 1));
    }

    #[test]
    fn what_an_unreadable_request_asks_for_is_read_roughly() {
        assert_eq!(
            rough_target(b"CONNECT a\x01b:8443 HTTP/1.1\r\n"),
            (true, &b"a\x01b:8443"[..], 8443)
        );
        assert_eq!(
            rough_target(b"get http://[::1]/x HTTP/1.1\nHost: x\n"),
            (false, &b"http://[::1]/x"[..], 80)
        );
        assert_eq!(rough_target(b"GET http://a:99999/ HTTP/1.1").2, 0);
        assert_eq!(rough_target(b"GET /x HTTP/1.1\r\n"), (false, &b"/x"[..], 0));
        assert_eq!(rough_target(b"GARBAGE\r\n"), (false, &b"GARBAGE"[..], 0));
        assert_eq!(rough_target(b""), (false, &b""[..], 0));
    }

    #[test]
    fn connect_and_absolute_targets() {
        let connect = parse(b"CONNECT Svc.test:443 HTTP/1.1\r\nHost: x\r\n\r\n").expect("head");
        assert_eq!(
            connect.proxy_target(),
            Ok(Target::Connect {
                host: "Svc.test",
                port: 443
            })
        );
        let v6 = parse(b"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n").expect("head");
        assert_eq!(
            v6.proxy_target(),
            Ok(Target::Connect {
                host: "::1",
                port: 8443
            })
        );
        let get = parse(b"GET http://svc.test:8080?q=1 HTTP/1.1\r\n\r\n").expect("head");
        assert_eq!(
            get.proxy_target(),
            Ok(Target::Absolute {
                host: "svc.test",
                port: 8080,
                path: "/?q=1".into()
            })
        );
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET https://svc.test/ HTTP/1.1\r\n\r\n",
            b"GET http://user@svc.test/ HTTP/1.1\r\n\r\n",
            b"CONNECT svc.test HTTP/1.1\r\n\r\n",
            b"GET http://svc.test:99999/ HTTP/1.1\r\n\r\n",
        ] {
            let head = parse(bad).expect("parses");
            assert!(head.proxy_target().is_err(), "{head:?}");
        }
        assert!(parse(b"GET  http://a/ HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"GET http://a/ HTTP/1.1\r\nno colon\r\n\r\n").is_err());
    }

    /// Bug hunt: `http://[::ffff:127.0.0.1]junk:41002/` was read as port 80, the junk and
    /// the port dropped.
    #[test]
    fn junk_after_a_bracketed_host_is_refused() {
        let head =
            parse(b"GET http://[::ffff:127.0.0.1]junk:41002/m HTTP/1.1\r\n\r\n").expect("head");
        assert!(head.proxy_target().is_err(), "{:?}", head.proxy_target());
        let connect = parse(b"CONNECT [::1]x:443 HTTP/1.1\r\n\r\n").expect("head");
        assert!(connect.proxy_target().is_err());
        // Regression hunt: a port with a sign was read as the number.
        for signed in [
            &b"CONNECT 127.0.0.1:+443 HTTP/1.1\r\n\r\n"[..],
            b"CONNECT [::1]:+443 HTTP/1.1\r\n\r\n",
        ] {
            let head = parse(signed).expect("head");
            assert!(head.proxy_target().is_err(), "{:?}", head.proxy_target());
        }
        let fine = parse(b"GET http://[::1]/m HTTP/1.1\r\n\r\n").expect("head");
        assert!(matches!(
            fine.proxy_target(),
            Ok(Target::Absolute { port: 80, .. })
        ));
    }

    /// Bug hunt: `Connection: X-Secret` with `X-Secret: 1` reached the origin, where a proxy
    /// must drop what `Connection` names (RFC 9110 §7.6.1).
    #[test]
    fn headers_the_connection_header_names_are_dropped() {
        let head = parse(
            b"GET http://svc.test/ HTTP/1.1\r\nConnection: X-Secret, keep-alive\r\n\
              x-secret: 1\r\nX-Kept: 2\r\n\r\n",
        )
        .expect("head");
        let pool = SyntheticPool::default();
        let dest = Destination::named("svc.test", 80, &pool).expect("name");
        let out = String::from_utf8(head.for_origin("/", &dest)).expect("text");
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: svc.test\r\nX-Kept: 2\r\nConnection: close\r\n\r\n"
        );
    }

    /// Regression hunt: `Connection: content-length` (or `transfer-encoding`) dropped the
    /// header that framed the body while the proxy still forwarded the body, which the origin
    /// then read as a second request, to any host and path the program wrote.
    #[test]
    fn the_headers_that_frame_the_body_are_kept_whatever_connection_names() {
        let pool = SyntheticPool::default();
        let dest = Destination::named("svc.test", 80, &pool).expect("name");
        for (framing, value) in [("Content-Length", "46"), ("Transfer-Encoding", "chunked")] {
            let request = format!(
                "POST http://svc.test/ HTTP/1.1\r\n{framing}: {value}\r\n\
                 Connection: {}, x-gone\r\nX-Gone: 1\r\n\r\n",
                framing.to_ascii_lowercase()
            );
            let head = parse(request.as_bytes()).expect("head");
            let out = String::from_utf8(head.for_origin("/", &dest)).expect("text");
            assert_eq!(
                out,
                format!(
                    "POST / HTTP/1.1\r\nHost: svc.test\r\n{framing}: {value}\r\n\
                     Connection: close\r\n\r\n"
                )
            );
        }
    }

    #[test]
    fn the_origin_gets_origin_form_its_own_host_and_connection_close() {
        let head = parse(
            b"POST http://svc.test/up HTTP/1.1\r\nHost: other.test\r\nProxy-Connection: \
              keep-alive\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
        )
        .expect("head");
        let pool = SyntheticPool::default();
        let dest = Destination::named("svc.test", 80, &pool).expect("name");
        let out = String::from_utf8(head.for_origin("/up", &dest)).expect("text");
        assert_eq!(
            out,
            "POST /up HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }

    /// Bug hunt: `GET http://allowed/ HTTP/1.1\nHost: other` (a bare LF) passed as one
    /// request line, and a server ending lines at LF read the program's own `Host` first;
    /// an LF inside a header value did the same. No control character passes now.
    #[test]
    fn a_head_with_a_bare_cr_or_lf_or_another_control_character_is_refused() {
        for bad in [
            &b"GET http://svc.test/ HTTP/1.1\nHost:other.test\r\n\r\n"[..],
            b"GET http://svc.test/ HTTP/1.1\r\nX-A: v\nHost: other.test\r\n\r\n",
            b"GET http://svc.test/ HTTP/1.1\r\nX-A: v\rHost: other.test\r\n\r\n",
            b"GET http://svc.test/ HTTP/1.1\r\nX-A: v\0\r\n\r\n",
            b"GET http://svc.test/a\x7f HTTP/1.1\r\n\r\n",
            b"GET http://svc.test/\t HTTP/1.1\r\n\r\n",
            b"G\x01T http://svc.test/ HTTP/1.1\r\n\r\n",
            b"GET http://svc.test/ HTTP/1.1x\r\n\r\n",
            b"GET http://svc.test/ HTTP/2.0\r\n\r\n",
            b"GET http://svc.test/ HTTP/1.1\r\nX(A): v\r\n\r\n",
            b"GET http://svc.test/ HTTP/1.1\r\n folded: v\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let fine = parse(b"GET http://svc.test/ HTTP/1.0\r\nX-A: a\tb \r\n\r\n").expect("head");
        assert_eq!(fine.headers, [("X-A", "a\tb")]);
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads_and_a_bare_lf_ends_it_early() {
        let head = b"GET http://svc.test/ HTTP/1.1\r\nA: b\r\n\r\nbody\nbody";
        for split in 1..head.len() {
            let (first, _) = head.split_at(split);
            let found = match head_end(first, 0) {
                HeadEnd::Incomplete => head_end(head, split),
                end => end,
            };
            assert_eq!(found, HeadEnd::At(head.len() - 9), "split {split}");
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\n", 0), HeadEnd::BareLf);
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nA: b\r\n\n", 0),
            HeadEnd::BareLf
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n", 0), HeadEnd::Incomplete);
    }

    #[test]
    fn a_body_is_delimited_one_way_only() {
        let framing = |head: &[u8]| parse(head).expect("head").framing();
        assert_eq!(
            framing(b"POST http://a/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n"),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            framing(b"POST http://a/ HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n"),
            Ok(Framing::Length(3))
        );
        assert_eq!(
            framing(b"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            Ok(Framing::chunked())
        );
        assert_eq!(
            framing(b"GET http://a/ HTTP/1.1\r\n\r\n"),
            Ok(Framing::Length(0))
        );
        for smuggling in [
            &b"POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST http://a/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST http://a/ HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            b"POST http://a/ HTTP/1.1\r\nContent-Length:\r\n\r\n",
            b"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                framing(smuggling).is_err(),
                "{:?}",
                String::from_utf8_lossy(smuggling)
            );
        }
    }
}
