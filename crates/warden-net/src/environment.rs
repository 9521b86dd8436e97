//! What a sandboxed program is told about the network: the proxy variables that common tools
//! and package managers read, and the `resolv.conf` that points at the resolver inside. Pure
//! values; the sandbox's plan puts them in place.

/// The environment variables that route a program's traffic through the proxy inside its
/// sandbox. Programs that ignore them are intercepted transparently anyway; these give the
/// proxy the host name (and the program a readable 403) instead of a synthetic address.
///
/// Lower- and upper-case forms both: curl reads only `http_proxy` in lower case (httpoxy,
/// CVE-2016-5385), most others read either. Java reads none of them, and setting
/// `JAVA_TOOL_OPTIONS` would make every JVM print a notice on stderr: Java is left to the
/// transparent interception.
pub fn proxy_env() -> Vec<(String, String)> {
    let http = format!("http://127.0.0.1:{}", crate::HTTP_PROXY_PORT);
    let socks = format!("socks5h://127.0.0.1:{}", crate::SOCKS_PORT);
    let no_proxy = "localhost,127.0.0.1,::1".to_owned();
    [
        ("HTTP_PROXY", &http),
        ("HTTPS_PROXY", &http),
        ("http_proxy", &http),
        ("https_proxy", &http),
        ("ALL_PROXY", &socks),
        ("all_proxy", &socks),
        ("NO_PROXY", &no_proxy),
        ("no_proxy", &no_proxy),
        // npm and yarn read their own configuration keys before the environment.
        ("npm_config_proxy", &http),
        ("npm_config_https_proxy", &http),
        ("YARN_HTTP_PROXY", &http),
        ("YARN_HTTPS_PROXY", &http),
        ("PIP_PROXY", &http),
        ("CARGO_HTTP_PROXY", &http),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.clone()))
    .collect()
}

/// The sandbox's `/etc/resolv.conf`: the resolver inside, one attempt, one second (it answers
/// from memory; a lost answer is better retried soon), and `ndots:0` so that a bare name is
/// asked as is rather than through search domains the sandbox does not have.
pub fn resolv_conf() -> &'static str {
    "nameserver 127.0.0.1\noptions ndots:0 attempts:1 timeout:1\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proxy_variable_points_inside_the_sandbox() {
        let env = proxy_env();
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("http_proxy"), Some("http://127.0.0.1:3128"));
        assert_eq!(get("ALL_PROXY"), Some("socks5h://127.0.0.1:1080"));
        assert_eq!(get("NO_PROXY"), Some("localhost,127.0.0.1,::1"));
        assert!(env
            .iter()
            .all(|(_, v)| v.contains("127.0.0.1") || v.contains("localhost")));
        assert!(resolv_conf().starts_with("nameserver 127.0.0.1\n"));
    }
}
