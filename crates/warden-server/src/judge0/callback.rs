//! `callback_url`: Judge0 `PUT`s the finished submission there (default fields, always base64,
//! up to 3 tries, 5 s each). warden's hosts have no network, so only a loopback URL
//! (`http://127.0.0.1:…`, `http://localhost:…`, `http://[::1]:…`) is accepted; any other is
//! refused when the submission is made. Plain HTTP/1.1 over a TCP stream: one request, so no
//! HTTP client crate.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Judge0's `CALLBACKS_MAX_TRIES`.
const TRIES: u32 = 3;
/// Judge0's `CALLBACKS_TIMEOUT`.
const TIMEOUT: Duration = Duration::from_secs(5);

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
    let rest = url.strip_prefix("http://").ok_or_else(refuse)?;
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
    let (host, port) = match authority.rsplit_once(':') {
        // Digits alone, as a URL's port is (`u16`'s parse also takes a sign: `+42010`).
        Some((host, port)) if !port.contains(']') => match port.bytes().all(|b| b.is_ascii_digit())
        {
            true => (host, port.parse::<u16>().map_err(|_| refuse())?),
            false => return Err(refuse()),
        },
        _ => (authority, 80),
    };
    let ip: IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
        // A host name's case does not matter.
        name if name.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
        literal => literal.parse().map_err(|_| refuse())?,
    };
    if !ip.is_loopback() {
        return Err(refuse());
    }
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host: authority.to_owned(),
        path: if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        },
    })
}

/// `PUT`s `body` to `url`, trying up to three times; failures are logged, never returned (the
/// submission's result does not depend on its callback).
pub(crate) async fn deliver(url: String, body: String) {
    let url = url.as_str();
    let Ok(target) = target(url) else {
        return;
    };
    for attempt in 1..=TRIES {
        match tokio::time::timeout(TIMEOUT, put(&target, &body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return,
            Ok(Ok(status)) => tracing::warn!(url, status, attempt, "callback refused"),
            Ok(Err(e)) => tracing::warn!(url, error = %e, attempt, "callback failed"),
            Err(_) => tracing::warn!(url, attempt, "callback timed out"),
        }
    }
}

/// One `PUT`; the status code of the answer.
async fn put(target: &Target, body: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(target.addr).await?;
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host,
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut answer = vec![0u8; 64];
    let n = stream.read(&mut answer).await?;
    let line = String::from_utf8_lossy(&answer[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
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
}
