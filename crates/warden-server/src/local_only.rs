//! A server without tokens serves this host's own programs only: it listens on loopback
//! (`serve.rs` refuses anything else), and this guard refuses what a web page in this host's
//! browser could send it. A page cannot read an answer across origins, but it can make the
//! browser send one: a WebSocket (which has no same-origin rule: `/v1/executions/connect` would
//! hand the page a program's output, with any volume it asks for mounted), a form's `POST`,
//! or any request after DNS rebinding (its own name resolved to 127.0.0.1, so that the page
//! is same-origin with the server). A browser names the page's origin in `Origin` and the name
//! it resolved in `Host`: either one that is not this host's loopback is refused with 403.
//! Clients that are not browsers (the SDKs, curl) send a loopback `Host` and no `Origin`.
//! With tokens configured, a request must carry one, which a page cannot know: no guard.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The middleware: a no-op with tokens configured.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.options().tokens.is_empty() {
        return next.run(request).await;
    }
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    match refusal(request.headers(), authority.as_deref()) {
        None => next.run(request).await,
        Some(message) => ApiError::with_status(StatusCode::FORBIDDEN, message).into_response(),
    }
}

/// Why a request to a server without tokens is refused, if it is: a `Host` (or HTTP/2's
/// authority) or an `Origin` that is not a loopback name.
fn refusal(headers: &HeaderMap, authority: Option<&str>) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .or(authority);
    if let Some(host) = host.filter(|h| !is_loopback_authority(h)) {
        return Some(format!(
            "Host {:?} is not a loopback name: a server without API tokens answers this \
             host's own clients only (configure [[server.tokens]] to serve others)",
            bounded(host)
        ));
    }
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().unwrap_or("\u{fffd}");
    let local = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .is_some_and(is_loopback_authority);
    (!local).then(|| {
        format!(
            "Origin {:?} is not a page of this host's loopback: a server without API tokens \
             does not take requests that a web page makes a browser send",
            bounded(text)
        )
    })
}

/// `localhost`, a name under it, or a loopback address, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // [::1]:2358
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || port(after) => inside,
            _ => return false,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((name, after)) if port(&format!(":{after}")) => name,
            Some(_) => return false,
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `:` and a port number.
fn port(text: &str) -> bool {
    text.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// At most 100 characters of a header, for a message.
fn bounded(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[test]
    fn loopback_names_and_addresses_pass() {
        for host in [
            "localhost",
            "localhost:2358",
            "LOCALHOST.",
            "api.localhost:80",
            "127.0.0.1",
            "127.0.0.2:2358",
            "[::1]",
            "[::1]:2358",
        ] {
            assert!(is_loopback_authority(host), "{host}");
            assert_eq!(refusal(&headers(&[(header::HOST, host)]), None), None);
        }
        // No Host at all (HTTP/1.0): nothing a browser sends.
        assert_eq!(refusal(&HeaderMap::new(), None), None);
        let local_page = headers(&[
            (header::HOST, "127.0.0.1:2358"),
            (header::ORIGIN, "http://localhost:3000"),
        ]);
        assert_eq!(refusal(&local_page, None), None);
    }

    #[test]
    fn other_names_and_foreign_pages_are_refused() {
        for host in [
            "attacker.example",
            "attacker.example:2358",
            "localhost.attacker.example",
            "127.0.0.1.attacker.example",
            "10.0.0.1:2358",
            "[::2]:2358",
            "[::1]x",
            "localhost:",
            "localhost:99999999",
        ] {
            assert!(!is_loopback_authority(host), "{host}");
            let refused = refusal(&headers(&[(header::HOST, host)]), None).expect("refused");
            assert!(refused.contains("not a loopback name"), "{refused}");
        }
        assert!(refusal(&HeaderMap::new(), Some("attacker.example")).is_some());
        for origin in [
            "https://attacker.example",
            "null",
            "file://",
            "http://127.0.0.1.nip",
        ] {
            let cross = headers(&[(header::HOST, "127.0.0.1:2358"), (header::ORIGIN, origin)]);
            let refused = refusal(&cross, None).expect("refused");
            assert!(refused.contains("Origin"), "{refused}");
        }
    }
}
