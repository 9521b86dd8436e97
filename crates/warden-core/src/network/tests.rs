//! Policies end to end: parsing and its errors, the built-in files, export and import, and the
//! evaluation of attempts.

use std::net::{IpAddr, SocketAddr};

use super::*;

fn policy(toml: &str) -> Policy {
    Policy::from_toml("test.toml", toml).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn to(protocol: Protocol, host: &str, port: u16) -> Attempt {
    let addr = host.parse().ok();
    Attempt {
        protocol,
        host: addr.is_none().then(|| host.to_owned()),
        addr,
        port,
    }
}

fn resolved(protocol: Protocol, name: &str, addr: &str, port: u16) -> Attempt {
    Attempt {
        protocol,
        host: Some(name.to_owned()),
        addr: Some(ip(addr)),
        port,
    }
}

fn dns(name: &str) -> Attempt {
    Attempt {
        protocol: Protocol::Dns,
        host: Some(name.to_owned()),
        addr: None,
        port: 53,
    }
}

const HEAD: &str = "name = \"t\"\nlevel = \"custom\"\ndefault_action = \"deny\"\n";

/// A custom default-deny policy with these rules appended.
fn custom(rules: &str) -> Policy {
    policy(&format!("{HEAD}{rules}"))
}

fn rule(protocol: &str, host: &str, ports: &str, action: &str) -> String {
    format!(
        "[[rule]]\nprotocol = \"{protocol}\"\nhost = \"{host}\"\nports = \"{ports}\"\n\
         action = \"{action}\"\nreason = \"{action} {host}\"\n"
    )
}

#[test]
fn network_every_builtin_loads_round_trips_and_has_reasons() {
    let builtins = Policy::builtins().expect("the built-in policies are valid");
    assert_eq!(builtins.len(), BUILTIN_NAMES.len());
    for p in &builtins {
        assert!(!p.description.is_empty(), "{} has no description", p.name);
        assert!(!p.is_dangerous(), "{} exempts deny-set addresses", p.name);
        assert!(p.rules.iter().all(|r| !r.reason.trim().is_empty()));
        let again = Policy::from_toml("export.toml", &p.to_toml())
            .unwrap_or_else(|e| panic!("{} does not re-import: {e}\n{}", p.name, p.to_toml()));
        assert_eq!(&again, p);
    }
    let by_name = |n: &str| builtins.iter().find(|p| p.name == n).expect(n);
    assert_eq!(by_name("no_access").level, Level::None);
    assert!(by_name("limited_access").registries);
    assert_eq!(by_name("internet_access").default_action, Action::Allow);
    assert!(by_name("development").log_detail);
    assert!(Policy::builtin("nonexistent").is_none());
}

#[test]
fn network_a_custom_policy_round_trips_through_toml() {
    let p = policy(
        "name = \"odd-one\"\ndescription = \"quotes \\\" and \\\\ and\\nlines\"\n\
         level = \"custom\"\ndefault_action = \"deny\"\nregistries = true\n\
         allow_denied = [\"10.1.2.3\", \"fd00::/8\"]\n\
         [limits]\nbandwidth_up = \"1.5KiB\"\ntotal_connections = 3\nidle_timeout = \"1500ms\"\n\
         [[rule]]\nprotocol = \"dns\"\nhost = \"*.example.org\"\naction = \"allow\"\nreason = \"r1\"\n\
         [[rule]]\nhost = \"2001:db8::/32\"\nports = \"1000-2000\"\naction = \"deny\"\nreason = \"r2\"\n\
         [[rule]]\nprotocol = \"udp\"\nhost = \"192.0.2.1\"\nports = 53\naction = \"allow\"\nreason = \"r3\"\n",
    );
    assert!(p.is_dangerous());
    assert_eq!(p.rules[1].protocol, Protocol::Any);
    let again = Policy::from_toml("export.toml", &p.to_toml()).expect("re-imports");
    assert_eq!(again, p);
}

#[test]
fn network_mistakes_are_refused_with_their_line() {
    let cases = [
        ("colour = \"red\"\n", 4, "unknown field"),
        (
            "[[rule]]\nhost = \"10.0.0.1/8\"\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "10.0.0.0/8",
        ),
        (
            "[[rule]]\nhost = \"a.*.org\"\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "wildcard",
        ),
        (
            "[[rule]]\nhost = \"bücher.example\"\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "xn--",
        ),
        (
            "[[rule]]\nports = \"90-80\"\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "reversed",
        ),
        (
            "[[rule]]\nports = 70000\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "not a port",
        ),
        (
            "[[rule]]\nprotocol = \"icmp\"\naction = \"allow\"\nreason = \"r\"\n",
            5,
            "icmp",
        ),
        (
            "[[rule]]\naction = \"allow\"\nreason = \"r\"\nport = 1\n",
            7,
            "unknown field",
        ),
        ("allow_denied = [\"10.0.0.0/40\"]\n", 4, "longer than 32"),
        ("[limits]\nmax_connections = 0\n", 5, "at least 1"),
    ];
    for (tail, line, why) in cases {
        let err = Policy::from_toml("p.toml", &format!("{HEAD}{tail}")).expect_err(tail);
        let PolicyError::Parse {
            line: got, message, ..
        } = &err
        else {
            panic!("{tail}: {err:?}");
        };
        assert_eq!(*got, Some(line), "{tail}: {err}");
        assert!(message.contains(why), "{tail}: {err}");
        assert!(
            err.to_string().starts_with(&format!("p.toml:{line}: ")),
            "{err}"
        );
    }
}

/// Regression (hunt net 7): `level = 5`, `default_action = 5`, `protocol = 6` and `action =
/// true` were refused with the parser's `wanted string or table`, which names neither the key
/// nor what it takes (a wrong name listed the names, still without the key). Each message names
/// both now, whatever the value's type.
#[test]
fn network_a_choice_of_the_wrong_type_names_its_key_and_the_names_it_takes() {
    let levels = "\"none\", \"limited\", \"internet\", \"custom\"";
    let actions = "\"allow\", \"deny\"";
    let protocols = "\"any\", \"tcp\", \"udp\", \"http\", \"https\", \"dns\"";
    let top = |level: &str, default: &str| {
        format!("name = \"t\"\nlevel = {level}\ndefault_action = {default}\n")
    };
    let rule = |line: &str| format!("{HEAD}[[rule]]\n{line}\nreason = \"r\"\n");
    let cases = [
        (
            top("5", "\"deny\""),
            2,
            format!("level 5: expected one of {levels}"),
        ),
        (
            top("\"bogus\"", "\"deny\""),
            2,
            format!("level \"bogus\": expected one of {levels}"),
        ),
        (
            top("{ a = 1 }", "\"deny\""),
            2,
            format!("level (a table): expected one of {levels}"),
        ),
        (
            top("\"custom\"", "5"),
            3,
            format!("default_action 5: expected one of {actions}"),
        ),
        (
            rule("protocol = 6\naction = \"allow\""),
            5,
            format!("protocol 6: expected one of {protocols}"),
        ),
        (
            rule("protocol = [\"tcp\"]\naction = \"allow\""),
            5,
            format!("protocol (a list): expected one of {protocols}"),
        ),
        (
            rule("action = true"),
            5,
            format!("action true: expected one of {actions}"),
        ),
        (
            rule("action = 1.5"),
            5,
            format!("action 1.5: expected one of {actions}"),
        ),
    ];
    for (text, line, message) in cases {
        let err = Policy::from_toml("p.toml", &text).expect_err(&text);
        assert_eq!(
            err.to_string(),
            format!("p.toml:{line}: {message}"),
            "{text}"
        );
    }
}

/// Bug hunt: `ports = [80, 443]` was refused with `data did not match any variant of untagged
/// enum Raw`, and `ports = -1` with `"" is not a port`. Each message now names the field, the
/// value and the forms a rule's ports take.
#[test]
fn network_malformed_ports_are_refused_with_the_forms_accepted() {
    let forms = "\"*\", 443 or \"8000-8999\"";
    let cases = [
        ("[80, 443]", "a rule for each"),
        ("-1", "ports -1: not a port (1-65535)"),
        ("0", "ports 0: not a port (1-65535)"),
        ("70000", "ports 70000: not a port (1-65535)"),
        ("1.5", "ports"),
        ("true", "ports"),
        ("{ from = 1 }", "ports"),
    ];
    for (value, why) in cases {
        let text = format!("{HEAD}[[rule]]\nports = {value}\naction = \"allow\"\nreason = \"r\"\n");
        let err = Policy::from_toml("p.toml", &text).expect_err(value);
        let message = err.to_string();
        assert!(message.starts_with("p.toml:5: "), "{value}: {message}");
        assert!(message.contains(why), "{value}: {message}");
        assert!(message.contains(forms), "{value}: {message}");
        assert!(!message.contains("untagged"), "{value}: {message}");
    }
}

#[test]
fn network_incoherent_rules_and_levels_name_their_line() {
    let ok = "[[rule]]\nhost = \"a.example\"\naction = \"allow\"\nreason = \"r\"\n\n";
    let cases = [
        (format!("{HEAD}{ok}[[rule]]\nhost = \"b.example\"\naction = \"allow\"\n"), 9, "rule 2: has no reason"),
        (format!("{HEAD}{ok}[[rule]]\nhost = \"b.example\"\nreason = \"r\"\n"), 9, "rule 2: has no action"),
        (format!("{HEAD}[[rule]]\nprotocol = \"dns\"\nports = 53\naction = \"allow\"\nreason = \"r\"\n"), 4, "names ports"),
        (format!("{HEAD}[[rule]]\nprotocol = \"dns\"\nhost = \"10.0.0.0/8\"\naction = \"allow\"\nreason = \"r\"\n"), 4, "not addresses"),
        ("name = \"t\"\nlevel = \"none\"\ndefault_action = \"deny\"\nregistries = true\n".to_owned(), 2, "allows nothing"),
        ("name = \"t\"\nlevel = \"limited\"\ndefault_action = \"allow\"\n".to_owned(), 3, "must be \"deny\""),
        ("name = \"t\"\n\nlevel = \"internet\"\ndefault_action = \"deny\"\n".to_owned(), 4, "must be \"allow\""),
    ];
    for (text, line, why) in cases {
        let err = Policy::from_toml("p.toml", &text).expect_err(&text);
        let PolicyError::Invalid {
            line: got, message, ..
        } = &err
        else {
            panic!("{text}: {err:?}");
        };
        assert_eq!(*got, Some(line), "{text}: {err}");
        assert!(message.contains(why), "{text}: {err}");
    }
    let err = Policy::from_toml(
        "p.toml",
        "name = \"../etc\"\nlevel = \"none\"\ndefault_action = \"deny\"\n",
    )
    .expect_err("a name that is a path");
    assert!(
        err.to_string().starts_with("p.toml:1: policy name"),
        "{err}"
    );
}

#[test]
fn network_rules_apply_in_order_and_the_first_match_wins() {
    let p = custom(
        &[
            rule("tcp", "blocked.example.org", "*", "deny"),
            rule("https", "*.example.org", "443", "allow"),
            rule("any", "*.example.org", "*", "deny"),
        ]
        .concat(),
    );
    let ctx = EvalContext::default();
    let d = p.evaluate(&to(Protocol::Https, "blocked.example.org", 443), &ctx);
    assert_eq!((d.action, d.rule()), (Action::Deny, Some(0)));
    let d = p.evaluate(&to(Protocol::Https, "www.example.org", 443), &ctx);
    assert_eq!((d.action, d.rule()), (Action::Allow, Some(1)));
    assert_eq!(d.reason, "allow *.example.org");
    assert_eq!(d.matched.to_string(), "rule 2");
    let d = p.evaluate(&to(Protocol::Https, "www.example.org", 8443), &ctx);
    assert_eq!((d.action, d.rule()), (Action::Deny, Some(2)));
    let d = p.evaluate(&to(Protocol::Https, "example.org", 443), &ctx);
    assert_eq!(
        (d.action, d.matched),
        (Action::Deny, Matched::Default),
        "apex not listed"
    );
    let d = p.evaluate(&to(Protocol::Tcp, "WWW.Example.Org.", 443), &ctx);
    assert_eq!(
        d.rule(),
        Some(2),
        "a tcp attempt is not covered by an https rule"
    );
    let d = p.evaluate(&to(Protocol::Https, "WWW.Example.Org.", 443), &ctx);
    assert_eq!(d.rule(), Some(1), "case and the trailing dot do not matter");
    let d = p.evaluate(&to(Protocol::Http, "www.example.org", 443), &ctx);
    assert_eq!(
        d.rule(),
        Some(2),
        "a plain http attempt is not covered by an https rule"
    );
}

#[test]
fn network_address_rules_match_cidr_blocks_v4_and_v6() {
    let p = custom(
        &[
            rule("tcp", "93.184.216.0/24", "80-443", "allow"),
            rule("udp", "2606:4700::/32", "*", "allow"),
            rule("any", "1.1.1.1", "*", "allow"),
        ]
        .concat(),
    );
    let ctx = EvalContext::default();
    let allow = |a: &Attempt| p.evaluate(a, &ctx).action == Action::Allow;
    assert!(allow(&to(Protocol::Tcp, "93.184.216.34", 443)));
    assert!(
        allow(&to(Protocol::Tcp, "::ffff:93.184.216.34", 80)),
        "mapped is its IPv4"
    );
    assert!(!allow(&to(Protocol::Tcp, "93.184.216.34", 444)));
    assert!(!allow(&to(Protocol::Tcp, "93.184.217.1", 443)));
    assert!(allow(&to(Protocol::Udp, "2606:4700::1111", 53)));
    assert!(!allow(&to(Protocol::Tcp, "2606:4700::1111", 53)));
    assert!(allow(&resolved(
        Protocol::Tcp,
        "one.example",
        "1.1.1.1",
        853
    )));
    assert!(
        !allow(&to(Protocol::Tcp, "one.example", 853)),
        "an address rule needs the address"
    );
    assert!(
        allow(&to(Protocol::Udp, "[2606:4700::1]", 5)),
        "a bracketed literal is its address"
    );
}

/// Bug hunt: a rule denying `203.0.113.0/24` was bypassed by the NAT64 address of one of its
/// hosts (`64:ff9b::cb00:7105`) and by its SIIT form (`::ffff:0:cb00:7105`): the deny set
/// unwrapped NAT64, the rules only IPv4-mapped addresses. Now every rule sees the addresses
/// the deny set does.
#[test]
fn network_rules_see_the_ipv4_address_inside_every_embedding_form() {
    let denying = policy(
        "name = \"t\"\nlevel = \"custom\"\ndefault_action = \"allow\"\n\
         [[rule]]\nhost = \"203.0.113.0/24\"\naction = \"deny\"\nreason = \"no\"\n",
    );
    let allowing = custom(&rule("tcp", "203.0.113.0/24", "*", "allow"));
    let ctx = EvalContext::default();
    for addr in ["203.0.113.5", "::ffff:203.0.113.5", "64:ff9b::cb00:7105"] {
        let d = denying.evaluate(&to(Protocol::Tcp, addr, 80), &ctx);
        assert_eq!(
            (d.action, d.rule()),
            (Action::Deny, Some(0)),
            "{addr}: {d:?}"
        );
        let d = allowing.evaluate(&to(Protocol::Tcp, addr, 80), &ctx);
        assert_eq!(
            (d.action, d.rule()),
            (Action::Allow, Some(0)),
            "{addr}: {d:?}"
        );
    }
    // The other forms reach nothing public: the deny set refuses them before any rule.
    for addr in [
        "::ffff:0:cb00:7105",
        "::cb00:7105",
        "2002:cb00:7105::1",
        "64:ff9b:1::cb00:7105",
    ] {
        for p in [&denying, &allowing] {
            let d = p.evaluate(&to(Protocol::Tcp, addr, 80), &ctx);
            assert_eq!(d.action, Action::Deny, "{addr}: {d:?}");
            assert!(matches!(d.matched, Matched::DenySet(_)), "{addr}: {d:?}");
        }
    }
    let d = denying.evaluate(&to(Protocol::Tcp, "64:ff9b::808:808", 80), &ctx);
    assert_eq!((d.action, d.matched), (Action::Allow, Matched::Default));
}

#[test]
fn network_the_deny_set_wins_over_every_rule() {
    let p = custom(&rule("any", "*", "*", "allow"));
    let host = [ip("198.51.100.20"), ip("127.0.0.1")];
    let services: [SocketAddr; 1] = ["192.0.2.80:2358".parse().expect("addr")];
    let ctx = EvalContext {
        host_addrs: &host,
        service_addrs: &services,
        ..EvalContext::default()
    };
    for addr in [
        "169.254.169.254",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
        "::ffff:0:7f00:1",
        "::ffff:0:a00:1",
        "5f00::1",
        "::1:0:0:1",
        "fc00::1",
        "fe80::1",
        "10.0.0.1",
        "::1",
        "0.0.0.0",
    ] {
        let d = p.evaluate(&to(Protocol::Tcp, addr, 80), &ctx);
        assert_eq!(d.action, Action::Deny, "{addr}: {d:?}");
        assert!(matches!(d.matched, Matched::DenySet(_)), "{addr}: {d:?}");
    }
    let d = p.evaluate(&to(Protocol::Tcp, "169.254.169.254", 80), &ctx);
    assert!(
        d.matched
            .to_string()
            .starts_with("deny set: 169.254.0.0/16 (link-local"),
        "{}",
        d.matched
    );
    let d = p.evaluate(
        &resolved(Protocol::Https, "rebound.example", "10.9.9.9", 443),
        &ctx,
    );
    assert_eq!(
        d.action,
        Action::Deny,
        "a name resolving into the deny set (DNS rebinding)"
    );
    let d = p.evaluate(&to(Protocol::Tcp, "198.51.100.20", 22), &ctx);
    assert_eq!(
        d.action,
        Action::Deny,
        "TEST-NET-2 is in the deny set anyway"
    );
    let public_host = [ip("8.8.4.4")];
    let ctx = EvalContext {
        host_addrs: &public_host,
        ..ctx
    };
    let d = p.evaluate(&to(Protocol::Tcp, "8.8.4.4", 22), &ctx);
    assert_eq!(d.matched, Matched::HostAddress(ip("8.8.4.4")));
    let d = p.evaluate(&to(Protocol::Tcp, "::ffff:8.8.4.4", 22), &ctx);
    assert_eq!(d.action, Action::Deny, "the host's own address, mapped");
    let d = p.evaluate(&to(Protocol::Tcp, "8.8.8.8", 22), &ctx);
    assert_eq!(d.action, Action::Allow);
}

/// Bug hunt: on a host whose interface is 192.0.2.2/24, routed through 192.0.2.1,
/// `internet_access` allowed the gateway and every neighbour (only 192.0.2.2 was denied): the
/// documentation ranges are outside the fixed deny set, and nothing else knew the host's
/// network. The host's networks and gateways are denied now, as its own addresses are.
#[test]
fn network_the_hosts_networks_and_gateways_are_denied() {
    let p = Policy::builtin("internet_access")
        .expect("built in")
        .expect("valid");
    let host = [ip("192.0.2.2"), ip("2001:db8:5::2")];
    let networks: [IpNet; 2] = [
        "192.0.2.0/24".parse().expect("net"),
        "2001:db8:5::/64".parse().expect("net"),
    ];
    let gateways = [ip("198.51.100.1"), ip("2001:db8:5::1")];
    let ctx = EvalContext {
        host_addrs: &host,
        host_networks: &networks,
        host_gateways: &gateways,
        ..EvalContext::default()
    };
    let matched = |addr: &str| p.evaluate(&to(Protocol::Tcp, addr, 80), &ctx).matched;
    assert_eq!(matched("192.0.2.2"), Matched::HostAddress(ip("192.0.2.2")));
    for neighbour in [
        "192.0.2.1",
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "64:ff9b::c000:207",
    ] {
        assert_eq!(
            matched(neighbour),
            Matched::HostNetwork(networks[0]),
            "{neighbour}"
        );
    }
    assert_eq!(matched("2001:db8:5::99"), Matched::HostNetwork(networks[1]));
    assert_eq!(matched("198.51.100.1"), Matched::HostGateway(gateways[0]));
    assert_eq!(matched("2001:db8:5::1"), Matched::HostGateway(gateways[1]));
    assert_eq!(
        matched("198.51.100.1").to_string(),
        "deny set: the host's gateway 198.51.100.1"
    );
    assert_eq!(
        matched("192.0.2.7").to_string(),
        "deny set: the host's network 192.0.2.0/24"
    );
    for elsewhere in ["192.0.3.1", "198.51.100.2", "2001:db8:6::1"] {
        assert_eq!(matched(elsewhere), Matched::Default, "{elsewhere}");
    }
    // An imported policy may exempt a neighbour (a mirror on the host's network).
    let mirror = policy(&format!(
        "{HEAD}allow_denied = [\"192.0.2.7\"]\n{}",
        rule("tcp", "*", "*", "allow")
    ));
    let imported = EvalContext {
        imported: true,
        ..ctx
    };
    let d = mirror.evaluate(&to(Protocol::Tcp, "192.0.2.7", 80), &imported);
    assert_eq!(d.action, Action::Allow, "{d:?}");
    let d = mirror.evaluate(&to(Protocol::Tcp, "192.0.2.8", 80), &imported);
    assert_eq!(d.action, Action::Deny, "{d:?}");
}

#[test]
fn network_service_addresses_are_denied_on_their_port() {
    let p = custom(&rule("any", "*", "*", "allow"));
    let services: [SocketAddr; 1] = ["8.8.4.4:2358".parse().expect("addr")];
    let ctx = EvalContext {
        service_addrs: &services,
        ..EvalContext::default()
    };
    let d = p.evaluate(&to(Protocol::Tcp, "8.8.4.4", 2358), &ctx);
    assert!(matches!(d.matched, Matched::Service(_)), "{d:?}");
    assert_eq!(
        p.evaluate(&to(Protocol::Tcp, "8.8.4.4", 443), &ctx).action,
        Action::Allow
    );
}

#[test]
fn network_allow_denied_is_honoured_only_for_imported_policies() {
    let p = policy(&format!(
        "{HEAD}allow_denied = [\"10.1.0.0/16\", \"169.254.169.254\"]\n{}",
        rule("tcp", "*", "*", "allow")
    ));
    let host = [ip("10.1.0.5")];
    let builtin = EvalContext {
        host_addrs: &host,
        ..EvalContext::default()
    };
    let imported = EvalContext {
        imported: true,
        ..builtin
    };
    let mirror = to(Protocol::Tcp, "10.1.2.3", 443);
    assert_eq!(p.evaluate(&mirror, &builtin).action, Action::Deny);
    assert_eq!(p.evaluate(&mirror, &imported).action, Action::Allow);
    let nat64 = to(Protocol::Tcp, "64:ff9b::a9fe:a9fe", 80);
    assert_eq!(p.evaluate(&nat64, &imported).action, Action::Allow);
    // The host's own address, named by the imported policy: exempt (a test server on the
    // host's loopback needs this); by a built-in, denied.
    let own = to(Protocol::Tcp, "10.1.0.5", 443);
    assert_eq!(p.evaluate(&own, &imported).action, Action::Allow);
    assert_eq!(p.evaluate(&own, &builtin).action, Action::Deny);
    let public_host = [ip("8.8.4.4")];
    let public = EvalContext {
        host_addrs: &public_host,
        ..EvalContext::default()
    };
    assert_eq!(
        p.evaluate(&to(Protocol::Tcp, "8.8.4.4", 443), &public)
            .matched,
        Matched::HostAddress(ip("8.8.4.4")),
        "a host address outside the fixed ranges is denied as the host's"
    );
    let other = p.evaluate(&to(Protocol::Tcp, "10.2.0.1", 443), &imported);
    assert_eq!(other.action, Action::Deny);
    // Bug hunt: an exempted `::1` was denied as `0.0.0.0/8`, the range of 0.0.0.1, which
    // `::1` was read as embedding.
    let v6_loopback = policy(&format!(
        "{HEAD}allow_denied = [\"::1\"]\n{}",
        rule("tcp", "::1", "41003", "allow")
    ));
    let at = |port| v6_loopback.evaluate(&to(Protocol::Tcp, "::1", port), &imported);
    assert_eq!(
        (at(41003).action, at(41003).rule()),
        (Action::Allow, Some(0))
    );
    assert_eq!(
        (at(41004).action, at(41004).matched),
        (Action::Deny, Matched::Default)
    );
    let denied = v6_loopback.evaluate(&to(Protocol::Tcp, "::1", 41003), &builtin);
    assert!(denied.reason.contains("loopback"), "{denied:?}");
    // warden's own services, never.
    let services = [std::net::SocketAddr::new(ip("10.1.0.5"), 2358)];
    let serving = EvalContext {
        service_addrs: &services,
        ..imported
    };
    let service = p.evaluate(&to(Protocol::Tcp, "10.1.0.5", 2358), &serving);
    assert!(
        matches!(service.matched, Matched::Service(_)),
        "{service:?}"
    );
}

#[test]
fn network_registries_are_admitted_after_the_rules_on_their_ports() {
    let limited = Policy::builtin("limited_access")
        .expect("built in")
        .expect("valid");
    let registries = [
        Registry::from_url("https://registry.test/simple/", "pip config (/x/pip.conf)")
            .expect("ok"),
        Registry::from_url("http://pkgs.example:8080/", "npm config (/x/.npmrc)").expect("ok"),
    ];
    let ctx = EvalContext {
        registries: &registries,
        ..EvalContext::default()
    };
    let d = limited.evaluate(
        &resolved(Protocol::Https, "Registry.Test", "93.184.216.34", 443),
        &ctx,
    );
    assert_eq!(d.action, Action::Allow);
    assert_eq!(
        d.matched.to_string(),
        "registry registry.test (from pip config (/x/pip.conf))"
    );
    let d = limited.evaluate(&to(Protocol::Https, "registry.test", 22), &ctx);
    assert_eq!(d.action, Action::Deny, "HTTP(S) ports only");
    let d = limited.evaluate(&to(Protocol::Udp, "registry.test", 443), &ctx);
    assert_eq!(d.action, Action::Deny, "TCP only");
    assert_eq!(
        limited
            .evaluate(&to(Protocol::Http, "pkgs.example", 8080), &ctx)
            .action,
        Action::Allow
    );
    assert_eq!(
        limited
            .evaluate(&to(Protocol::Http, "pkgs.example", 80), &ctx)
            .action,
        Action::Deny
    );
    let d = limited.evaluate(
        &resolved(Protocol::Https, "registry.test", "10.0.0.8", 443),
        &ctx,
    );
    assert!(
        matches!(d.matched, Matched::DenySet(_)),
        "a registry in the deny set stays denied"
    );
    let none = Policy::builtin("no_access")
        .expect("built in")
        .expect("valid");
    assert_eq!(
        none.evaluate(&to(Protocol::Https, "registry.test", 443), &ctx)
            .action,
        Action::Deny
    );
}

/// Regression (hunt net 2): a registry was admitted for `tcp` too, so a tunnel to one on a
/// port other than 443 was decided as tcp and relayed raw: any `Host`, any number of requests,
/// to whatever else the registry's address serves. A registry is admitted as `http` and `https`
/// only, as an `http` rule admits a host: its tunnels carry TLS for it or one plain request.
#[test]
fn network_a_registry_is_admitted_for_http_and_https_only() {
    let limited = Policy::builtin("limited_access")
        .expect("built in")
        .expect("valid");
    let registries = [
        Registry::from_url("https://registry.test/", "test").expect("ok"),
        Registry::from_url("pkgs.example:8080", "test").expect("ok"),
    ];
    let ctx = EvalContext {
        registries: &registries,
        ..EvalContext::default()
    };
    let action = |protocol, host, port| limited.evaluate(&to(protocol, host, port), &ctx).action;
    for (host, port) in [
        ("registry.test", 80),
        ("registry.test", 443),
        ("pkgs.example", 8080),
    ] {
        assert_eq!(
            action(Protocol::Tcp, host, port),
            Action::Deny,
            "{host}:{port}"
        );
        assert_eq!(
            action(Protocol::Http, host, port),
            Action::Allow,
            "{host}:{port}"
        );
        assert_eq!(
            action(Protocol::Https, host, port),
            Action::Allow,
            "{host}:{port}"
        );
    }
    // The resolver still answers its name: an http(s) connection to it may be allowed.
    let answer = limited.evaluate(&dns("registry.test"), &ctx);
    assert_eq!(answer.action, Action::Allow, "{answer:?}");
    assert!(
        matches!(answer.matched, Matched::Registry { .. }),
        "{answer:?}"
    );
}

/// Regression (hunt net 3): the resolver's question tried every port where a rule's range
/// starts or ends, for each protocol, against every rule: the square of the rules per question
/// (a valid policy of 40 000 rules, 3.7 MB, took 8 s of CPU for each, on the proxy's thread).
/// A question takes one pass over the rules now.
#[test]
fn network_answering_a_question_is_linear_in_the_rules() {
    let n = 1000;
    let rules: String = (0..n)
        .map(|i| {
            let (host, action) = match i % 2 {
                0 => ("*".to_owned(), "deny"),
                _ => (format!("h{i}.example"), "allow"),
            };
            rule("tcp", &host, &(1000 + i).to_string(), action)
        })
        .collect();
    let p = custom(&rules);
    let answer = |name: &str| {
        let before = evaluate::RULES_TRIED.with(std::cell::Cell::get);
        let d = p.evaluate(&dns(name), &EvalContext::default());
        (d, evaluate::RULES_TRIED.with(std::cell::Cell::get) - before)
    };
    let (d, tried) = answer("nothing.example");
    assert_eq!(d.action, Action::Deny, "{d:?}");
    assert!(tried <= 2 * n, "{tried} rules tried for {n}");
    let (d, tried) = answer("h999.example");
    assert_eq!((d.action, d.matched), (Action::Allow, Matched::Rule(999)));
    assert!(tried <= 2 * n, "{tried} rules tried for {n}");
}

/// The resolver's answer found the slow way, port by port: the first rule deciding the name
/// whatever the port, else the first protocol (tcp, udp, http, https) a connection of which
/// the policy allows on some port, decided on the lowest such port.
fn answer_port_by_port(p: &Policy, name: &str, ctx: &EvalContext<'_>) -> Decision {
    let whole = p.rules.iter().position(|r| {
        r.host.matches_name(name)
            && (r.protocol == Protocol::Dns
                || (r.protocol == Protocol::Any && r.ports == PortRange::Any))
    });
    if let Some(i) = whole {
        return Decision {
            action: p.rules[i].action,
            matched: Matched::Rule(i),
            reason: p.rules[i].reason.clone(),
        };
    }
    // Every port where the decision may change: the lowest allowed port is one of them.
    let mut edges = vec![1, u16::MAX];
    for r in &p.rules {
        let (lo, hi) = r.ports.bounds();
        edges.extend([lo, hi, hi.saturating_add(1)]);
    }
    let registry_ports = ctx.registries.iter().filter_map(|r| r.port);
    for port in REGISTRY_PORTS.into_iter().chain(registry_ports) {
        edges.extend([port, port.saturating_add(1)]);
    }
    edges.sort_unstable();
    edges.dedup();
    for protocol in [
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Http,
        Protocol::Https,
    ] {
        for &port in &edges {
            let d = p.evaluate(&to(protocol, name, port), ctx);
            if d.action == Action::Allow {
                let reason = format!("a connection to it may be allowed: {}", d.reason);
                return Decision { reason, ..d };
            }
        }
    }
    Decision {
        action: Action::Deny,
        matched: Matched::Default,
        reason: "no connection to this name is allowed".to_owned(),
    }
}

/// The resolver's answer, on policies drawn at random from rules that overlap, is the one
/// found port by port: the same decision, rule and reason.
#[test]
fn network_the_resolvers_answer_is_the_one_found_port_by_port() {
    // xorshift64: reproducible, and no dependency for it.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut pick = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).expect("small")
    };
    let protocols = ["any", "tcp", "udp", "http", "https", "dns"];
    let hosts = ["*", "svc.test", "*.test", "other.test", "10.0.0.0/8"];
    let ports = [
        "*",
        "1",
        "22",
        "79-81",
        "80",
        "443",
        "1-443",
        "444-65535",
        "8000-8999",
        "8080",
        "65535",
    ];
    let registries = [
        Registry::from_url("svc.test", "a").expect("ok"),
        Registry::from_url("svc.test:8080", "b").expect("ok"),
        Registry::from_url("other.test:81", "c").expect("ok"),
    ];
    for case in 0..3000 {
        let mut text = format!(
            "name = \"t\"\nlevel = \"custom\"\ndefault_action = \"{}\"\nregistries = {}\n",
            ["allow", "deny"][pick(2)],
            pick(2) == 0
        );
        for _ in 0..pick(7) {
            let action = ["allow", "deny"][pick(2)];
            match protocols[pick(protocols.len())] {
                "dns" => text.push_str(&format!(
                    "[[rule]]\nprotocol = \"dns\"\nhost = \"{}\"\naction = \"{action}\"\n\
                     reason = \"r{case}\"\n",
                    hosts[pick(hosts.len() - 1)]
                )),
                protocol => text.push_str(&rule(
                    protocol,
                    hosts[pick(hosts.len())],
                    ports[pick(ports.len())],
                    action,
                )),
            }
        }
        let p = policy(&text);
        let ctx = EvalContext {
            registries: &registries[pick(2)..=pick(2) + 1],
            ..EvalContext::default()
        };
        for name in ["svc.test", "a.test", "other.test", "far.example"] {
            assert_eq!(
                p.evaluate(&dns(name), &ctx),
                answer_port_by_port(&p, name, &ctx),
                "{name} under\n{text}"
            );
        }
    }
}

#[test]
fn network_dns_answers_only_names_a_connection_could_reach() {
    let registries = [Registry::from_url("https://registry.test/", "test").expect("ok")];
    let ctx = EvalContext {
        registries: &registries,
        ..EvalContext::default()
    };
    let builtin = |n: &str| Policy::builtin(n).expect("built in").expect("valid");
    let allow = |p: &Policy, name: &str| p.evaluate(&dns(name), &ctx).action == Action::Allow;
    let limited = builtin("limited_access");
    assert!(allow(&limited, "registry.test"));
    assert!(allow(&limited, "REGISTRY.test."));
    assert!(!allow(&limited, "exfil.attacker.example"));
    assert!(!allow(&builtin("no_access"), "registry.test"));
    assert!(allow(&builtin("internet_access"), "anything.example"));
    let d = builtin("internet_access").evaluate(&dns("bücher.example"), &ctx);
    assert_eq!(d.matched, Matched::InvalidName);
    // Bug hunt: the reason quoted a name of any length whole.
    let long = format!("{}é", "a".repeat(252));
    let d = builtin("internet_access").evaluate(&dns(&format!("{long}{long}")), &ctx);
    assert_eq!(d.matched, Matched::InvalidName);
    assert!(
        d.reason
            .starts_with(&format!("\"{}\"… is not", "a".repeat(252))),
        "{}",
        d.reason
    );

    let p = custom(
        &[
            rule("dns", "*.tracker.example", "*", "deny"),
            rule("tcp", "*.example", "8443", "allow"),
            rule("tcp", "forbidden.example", "*", "deny"),
            rule("udp", "10.0.0.0/8", "*", "allow"),
        ]
        .concat()
        .replace("ports = \"*\"\n", ""),
    );
    assert!(!allow(&p, "a.tracker.example"), "a dns rule decides first");
    assert!(
        allow(&p, "forbidden.example"),
        "port 8443 is allowed before the deny rule"
    );
    assert!(allow(&p, "www.example"));
    assert!(!allow(&p, "other.test"));
    let d = p.evaluate(&dns("www.example"), &ctx);
    assert_eq!(d.rule(), Some(1));
    assert!(
        d.reason.starts_with("a connection to it may be allowed"),
        "{}",
        d.reason
    );
    let any_deny = custom(&format!(
        "{}{}",
        rule("any", "*.blocked.example", "*", "deny"),
        rule("tcp", "*", "*", "allow")
    ));
    assert!(
        !allow(&any_deny, "x.blocked.example"),
        "an `any` rule on every port covers dns"
    );
    assert!(allow(&any_deny, "x.open.example"));
}

#[test]
fn network_an_odd_name_is_denied_before_any_rule() {
    let internet = Policy::builtin("internet_access")
        .expect("built in")
        .expect("valid");
    for port in [25, 443] {
        let d = internet.evaluate(
            &to(Protocol::Tcp, "bücher.example", port),
            &EvalContext::default(),
        );
        assert_eq!((d.action, d.matched), (Action::Deny, Matched::InvalidName));
    }
}

/// Regression (bug hunt: the proxy passed on `-a.evil.test` as a name, which the rules could
/// not read as one, so a default-allow policy's `deny *.evil.test` let it through by
/// `default`, and `127.1` was allowed by `default` too): whatever is neither a host name nor
/// an IP literal is denied as `invalid name`, for every protocol, before any rule.
#[test]
fn network_a_name_the_rules_cannot_read_is_denied_not_left_to_the_default() {
    let p = policy(&format!(
        "name = \"t\"\nlevel = \"custom\"\ndefault_action = \"allow\"\n{}{}",
        rule("any", "*.evil.test", "*", "deny"),
        rule("tcp", "*", "8080", "allow"),
    ));
    let ctx = EvalContext::default();
    assert_eq!(
        p.evaluate(&to(Protocol::Tcp, "b.evil.test", 80), &ctx)
            .rule(),
        Some(0)
    );
    for name in [
        "-a.evil.test",
        "a-.evil.test",
        "b.-x.evil.test",
        "127.1",
        "0x7f.1",
        "2130706433",
        "017700000001",
        "evil.0x10",
    ] {
        for (protocol, port) in [
            (Protocol::Tcp, 80),
            (Protocol::Tcp, 8080),
            (Protocol::Http, 80),
            (Protocol::Https, 443),
            (Protocol::Dns, 53),
        ] {
            let d = p.evaluate(&to(protocol, name, port), &ctx);
            assert_eq!(
                (d.action, &d.matched),
                (Action::Deny, &Matched::InvalidName),
                "{name} {protocol:?} {port}: {d:?}"
            );
            let resolved = p.evaluate(&resolved(protocol, name, "192.0.2.1", port), &ctx);
            assert_eq!(resolved.matched, Matched::InvalidName, "{name}");
        }
    }
    let literal = p.evaluate(&to(Protocol::Tcp, "[2001:db8::1]", 80), &ctx);
    assert_eq!(
        literal.matched,
        Matched::Default,
        "a literal is judged by address"
    );
}

#[test]
fn network_odd_names_match_no_name_rule() {
    let p = custom(&rule("tcp", "*.example.org", "*", "allow"));
    let ctx = EvalContext::default();
    for name in [
        "bücher.example.org",
        "a..example.org",
        "a b.example.org",
        "xn--bcher-kva.example.org",
    ] {
        let d = p.evaluate(&to(Protocol::Tcp, name, 443), &ctx);
        let expect = if name.starts_with("xn--") {
            Action::Allow
        } else {
            Action::Deny
        };
        assert_eq!(d.action, expect, "{name}");
    }
}

/// Bug hunt (net, finding 3): a refusal quoted a policy name of any length (a 100,000-byte
/// `network` made a 100 kB answer). A name longer than any policy's is cut after 64 bytes,
/// its length said; a shorter one is quoted whole, escaped.
#[test]
fn network_policy_names_are_quoted_escaped_and_bounded() {
    use crate::network::{check_name, quoted_name};
    assert_eq!(quoted_name("lo6"), "\"lo6\"");
    assert_eq!(quoted_name("a\nb"), "\"a\\nb\"");
    let longest = "a".repeat(64);
    assert_eq!(quoted_name(&longest), format!("{longest:?}"));
    let long = "a".repeat(100_000);
    assert_eq!(quoted_name(&long), format!("\"{longest}\"… (100000 bytes)"));
    // Cut at a character's boundary, never inside one.
    let wide = "é".repeat(40);
    assert_eq!(
        quoted_name(&wide),
        format!("\"{}\"… (80 bytes)", "é".repeat(32))
    );
    let refused = check_name(&long).expect_err("too long");
    assert!(refused.len() < 300, "{refused}");
    assert!(refused.contains("(100000 bytes)"), "{refused}");
}
