//! The HTTP/1 request head as a forward proxy reads it: the request line, the header lines, the
//! target as CONNECT's `host:port` or an absolute `http://` URI, and the head rewritten for the
//! origin server. RFC 9112 §3 (request line), §3.2.2 and §3.2.3 (absolute and authority forms).

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

/// The end of the head in `buf` (just past the blank line), if it is all there.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Parses a complete head (including its blank line).
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
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err("the request line is not `METHOD target HTTP/1.x`");
    }
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or("a header line without a colon")?;
            if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
                return Err("a malformed header name");
            }
            Ok((name, value.trim()))
        })
        .collect::<Result<_, _>>()?;
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
    })
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

    /// The head to send to the origin: origin-form target, `Host` naming the destination,
    /// hop-by-hop and proxy headers dropped, and `Connection: close` (one request per
    /// connection: what follows on the client's connection is relayed, not parsed).
    pub(crate) fn for_origin(&self, path: &str, dest: &Destination) -> Vec<u8> {
        const DROPPED: &[&str] = &[
            "host",
            "connection",
            "proxy-connection",
            "proxy-authorization",
            "keep-alive",
        ];
        let mut out = format!(
            "{} {path} {}\r\nHost: {}\r\n",
            self.method,
            self.version,
            dest.authority(80)
        );
        for (name, value) in &self.headers {
            if !DROPPED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
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
        (v6, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
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
}
