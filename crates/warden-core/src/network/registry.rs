//! A package registry a policy with `registries = true` admits: a host (and port) that the host
//! machine's package managers are configured to use, or that the operator added. Finding them
//! reads files and runs tools, so it is the engine's job (`warden_engine::network::registries`);
//! this module holds the value and reads the host out of a registry's URL.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::host::normalize_name;

/// One registry host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Registry {
    /// The host name (normalized) or IP address.
    pub host: String,
    /// The port, when the configuration names one; otherwise the registry is admitted on the
    /// HTTP and HTTPS ports (80 and 443).
    pub port: Option<u16>,
    /// Where it was found: `npm config (/root/.npmrc)`.
    pub source: String,
}

/// The ports a registry without its own port is admitted on.
pub const REGISTRY_PORTS: [u16; 2] = [80, 443];

impl Registry {
    /// The registry a URL or `host[:port]` names (`https://pkgs.example:8443/simple/`,
    /// `sparse+https://index.example/`, `mirror.example`), found at `source`. `None` when the
    /// text names no usable network host (a `file:` URL, an environment reference, garbage).
    pub fn from_url(url: &str, source: impl Into<String>) -> Option<Self> {
        let (host, port) = host_of_url(url)?;
        Some(Self {
            host,
            port,
            source: source.into(),
        })
    }

    /// Whether this registry is `name` (normalized) or `addr`, on `port`.
    pub fn admits(&self, name: Option<&str>, addr: Option<IpAddr>, port: u16) -> bool {
        let host = match self.host.parse::<IpAddr>() {
            Ok(ip) => addr == Some(ip.to_canonical()),
            Err(_) => name == Some(self.host.as_str()),
        };
        host && self.ports().contains(&port)
    }

    /// The ports it is admitted on: its own, or [`REGISTRY_PORTS`].
    pub fn ports(&self) -> &[u16] {
        self.port
            .as_ref()
            .map_or(&REGISTRY_PORTS[..], std::slice::from_ref)
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.host.contains(':')) {
            (Some(port), true) => write!(f, "[{}]:{port}", self.host),
            (Some(port), false) => write!(f, "{}:{port}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

/// The host and explicit port of a URL (or of a bare `host[:port]`). Only network schemes
/// count: `http`, `https`, and their `sparse+`, `registry+`, `git+`, `tor+` forms.
pub fn host_of_url(url: &str) -> Option<(String, Option<u16>)> {
    let url = url.trim().trim_matches(|c| c == '"' || c == '\'');
    let (rest, bare) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = scheme.rsplit('+').next().unwrap_or(scheme);
            if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                return None;
            }
            (rest, false)
        }
        None => (url, true),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_port(authority)?;
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        // Without a scheme, a single word is a keyword (`direct`, `off`), not a host; with a
        // port it is a host (`mirror:8080`).
        Err(_) if bare && !host.contains('.') && port.is_none() => return None,
        Err(_) => normalize_name(host)?,
    };
    Some((host, port))
}

/// `host:port` or `[v6]:port` or a bare host; `None` for a port that is not one.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok().filter(|p| *p != 0)?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Some((authority, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok().filter(|p| *p != 0)?))),
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_registry_hosts_come_out_of_urls() {
        let cases = [
            ("https://pkgs.example/simple/", Some(("pkgs.example", None))),
            (
                "https://user:pw@Pkgs.Example:8443/x",
                Some(("pkgs.example", Some(8443))),
            ),
            (
                "sparse+https://index.registry.test/",
                Some(("index.registry.test", None)),
            ),
            (
                "http://[2001:db8::1]:8080/",
                Some(("2001:db8::1", Some(8080))),
            ),
            ("mirror.example", Some(("mirror.example", None))),
            ("mirror.example:3142", Some(("mirror.example", Some(3142)))),
            (
                "\"https://quoted.example/\"",
                Some(("quoted.example", None)),
            ),
            ("file:///srv/mirror", None),
            ("ftp://old.example/", None),
            ("https://${HOST}/", None),
            ("https://pkgs.example:0/", None),
            ("direct", None),
            // Bug hunt: an operator's single-label host with a port was refused.
            ("mirror:8080", Some(("mirror", Some(8080)))),
        ];
        for (url, want) in cases {
            let got = host_of_url(url);
            let want = want.map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, want, "{url}");
        }
    }

    #[test]
    fn network_a_registry_admits_its_host_on_its_ports() {
        let plain = Registry::from_url("https://registry.test/", "test").expect("valid");
        assert!(plain.admits(Some("registry.test"), None, 443));
        assert!(plain.admits(Some("registry.test"), None, 80));
        assert!(!plain.admits(Some("registry.test"), None, 22));
        assert!(!plain.admits(Some("sub.registry.test"), None, 443));
        let own_port = Registry::from_url("http://pkgs.example:8080", "test").expect("valid");
        assert!(own_port.admits(Some("pkgs.example"), None, 8080));
        assert!(!own_port.admits(Some("pkgs.example"), None, 443));
        assert_eq!(own_port.to_string(), "pkgs.example:8080");
    }
}
