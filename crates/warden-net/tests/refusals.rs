//! What the policy denies is refused at once through every way out, and nothing is dialed: a
//! recording dialer stands in for the network and must stay unused. A name that resolves to a
//! denied address is refused (no DNS rebinding); the resolver inside answers NXDOMAIN for
//! anything the policy cannot allow and never asks anyone; a TLS ClientHello must name the
//! tunnel's host.

mod support;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use support::*;
use warden_net::{Protocol, Proxy, ProxyLimits};

const METADATA: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));

struct Denying {
    sandbox: TestSandbox,
    dialer: Arc<RecordingDialer>,
    resolver: Arc<FakeResolver>,
}

/// A proxy whose policy allows nothing but lets the resolver answer `resolvable`; every name
/// "resolves" to the metadata address, and nothing can be dialed.
fn denying(resolvable: &[&str]) -> Denying {
    let dialer = Arc::new(RecordingDialer::default());
    let resolver = Arc::new(FakeResolver::with(&[
        ("denied.test", &[METADATA]),
        ("rebind.test", &[METADATA]),
    ]));
    let policy = TestPolicy::allowing(&[], &[]).resolving(resolvable);
    let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_resolver(Arc::clone(&resolver) as _)
        .with_dialer(Arc::clone(&dialer) as _);
    Denying {
        sandbox: TestSandbox::start(proxy),
        dialer,
        resolver,
    }
}

/// Asserts that `stream` is reset or closed without a byte coming back.
fn closed_unanswered(mut stream: std::net::TcpStream) {
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    let mut buf = [0; 1];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("{n} bytes from a connection that should have been refused"),
    }
}

/// Asserts that nothing was dialed and nothing resolved.
fn nothing_left_the_host(denying: &Denying) {
    assert!(denying.dialer.dialed.lock().expect("lock").is_empty());
    assert!(denying.resolver.asked.lock().expect("lock").is_empty());
}

#[test]
fn a_denied_request_is_refused_by_every_proxy_and_never_dialed() {
    if !root() {
        return;
    }
    let denying = denying(&[]);
    denying.sandbox.run(|| {
        let (status, response) =
            http_proxy("GET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n");
        assert_eq!(status, 403, "{response}");
        assert!(
            // Bug hunt: "denied by rule rule 2", "denied by rule default": the rule's name
            // says `rule` itself when it is one.
            response.contains("warden: denied by test-deny: not in the test's allow list"),
            "{response}"
        );
        let (_, head) = connect_tunnel("denied.test:443");
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        assert_eq!(
            socks_connect(SocksTarget::Name("denied.test"), 80).err(),
            Some(2),
            "SOCKS reply 2: not allowed by ruleset"
        );
        let v6 = IpAddr::V6("2001:db8::1".parse().expect("address"));
        assert_eq!(socks_connect(SocksTarget::Addr(v6), 80).err(), Some(2));
    });
    nothing_left_the_host(&denying);
    let records = denying.sandbox.stop();
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().all(|r| !r.allowed && r.rule == "test-deny"));
    assert_eq!(records[0].protocol, Protocol::Http);
    assert_eq!(records[1].protocol, Protocol::Https);
}

/// Bug hunt: `CONNECT bad_name!:80`, a 300-byte name, a SOCKS name holding a line feed, an
/// ANSI escape or a NUL were answered `400` or SOCKS reply 4 and logged nowhere, nor told as
/// denials: an attempt the log never saw. Each is now a denial by `invalid name`, answered as
/// one (`403`, reply 2), logged with the name escaped and bounded, and told to the observer.
#[test]
fn an_attempt_to_something_that_is_no_host_is_a_logged_denial() {
    if !root() {
        return;
    }
    let dialer = Arc::new(RecordingDialer::default());
    let resolver = Arc::new(FakeResolver::default());
    let (observed, observer) = denial_observer();
    let policy = TestPolicy::allowing(&["svc.test"], &[]);
    let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_resolver(Arc::clone(&resolver) as _)
        .with_dialer(Arc::clone(&dialer) as _)
        .on_denial(observer);
    let sandbox = TestSandbox::start(proxy);
    let long = "a".repeat(300);
    sandbox.run(|| {
        for authority in ["bad_name!:80", "x..y:80", &format!("{long}:80")] {
            let (_, head) = connect_tunnel(authority);
            assert!(head.starts_with("HTTP/1.1 403"), "{authority}: {head}");
        }
        let (status, response) =
            http_proxy("GET http://bad_name!/ HTTP/1.1\r\nHost: bad_name!\r\n\r\n");
        assert_eq!(status, 403, "{response}");
        assert!(response.contains("invalid name"), "{response}");
        for name in [
            &b"a\nb.test"[..],
            b"\x1b[31mred",
            b"nul\0.test",
            b"a b.test",
            b"\xff\xfe.test",
        ] {
            assert_eq!(
                socks_connect(SocksTarget::RawName(name), 80).err(),
                Some(2),
                "{name:?}: SOCKS reply 2, as every denial"
            );
        }
    });
    assert!(dialer.dialed.lock().expect("lock").is_empty());
    assert!(resolver.asked.lock().expect("lock").is_empty());
    let records = sandbox.stop();
    assert_eq!(records.len(), 9, "{records:?}");
    assert_eq!(
        observed.lock().expect("observed").len(),
        9,
        "each told as a denial"
    );
    for record in &records {
        assert!(!record.allowed, "{record:?}");
        assert_eq!(record.rule, "invalid name", "{record:?}");
        let host = record.host.as_deref().expect("the name asked for, escaped");
        assert!(
            host.chars()
                .all(|c| c.is_ascii_graphic() || c == ' ' || c == '…'),
            "{host:?}"
        );
        assert!(host.len() <= 256, "{host:?} is bounded");
    }
    let hosts: Vec<_> = records.iter().filter_map(|r| r.host.as_deref()).collect();
    assert_eq!(hosts[0], "bad_name!");
    assert!(hosts[2].ends_with('…'), "{}", hosts[2]);
    assert_eq!(hosts[3], "bad_name!");
    assert_eq!(records[3].protocol, Protocol::Http);
    assert_eq!(hosts[4], "a\\nb.test");
    assert_eq!(hosts[5], "\\u{1b}[31mred");
    assert_eq!(hosts[6], "nul\\u{0}.test");
    // Bug hunt (netlog 5): logged lossily as `\u{fffd}\u{fffd}.test`, what was sent lost.
    assert_eq!(hosts[8], "\\xff\\xfe.test");
}

/// Bug hunt (netlog 1): a request the HTTP proxy cannot read (a control character in a
/// CONNECT target or a header, bare-LF line ends, a head too large, a malformed framing,
/// not a request at all) was answered `400` or `431` and logged nowhere, nor told as a
/// denial: a program could probe destinations unseen. Each is now a denial by
/// `malformed request`, logged with its target escaped and bounded, and told to the observer.
#[test]
fn a_request_the_http_proxy_cannot_read_is_a_logged_denial() {
    if !root() {
        return;
    }
    let dialer = Arc::new(RecordingDialer::default());
    let (observed, observer) = denial_observer();
    let policy = TestPolicy::allowing(&["svc.test"], &[]);
    let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_dialer(Arc::clone(&dialer) as _)
        .on_denial(observer);
    let sandbox = TestSandbox::start(proxy);
    // Exactly one byte more than the proxy reads of a head: all of it is read before the
    // answer, so that the close is no reset.
    let mut huge = b"GET http://svc.test:8080/".to_vec();
    huge.resize(64 * 1024 + 1, b'a');
    let requests: [(&[u8], u16); 6] = [
        (b"CONNECT a\x01b.test:80 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT svc.test:443 HTTP/1.1\r\nX: \x01\r\n\r\n", 400),
        (b"GET http://svc.test/ HTTP/1.1\nHost: svc.test\n\n", 400),
        (
            b"POST http://svc.test/ HTTP/1.1\r\nHost: svc.test\r\n\
              Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (b"GARBAGE\r\n\r\n", 400),
        (&huge, 431),
    ];
    sandbox.run(|| {
        for (request, expected) in requests {
            let (status, response) = http_proxy_then_close(request);
            assert_eq!(status, expected, "{response}");
        }
    });
    assert!(dialer.dialed.lock().expect("lock").is_empty());
    let records = sandbox.stop();
    assert_eq!(records.len(), 6, "{records:?}");
    assert_eq!(
        observed.lock().expect("observed").len(),
        6,
        "each told as a denial"
    );
    for record in &records {
        assert!(!record.allowed, "{record:?}");
        assert_eq!(record.rule, "malformed request", "{record:?}");
        assert!(
            record.host.as_ref().is_some_and(|h| h.len() <= 256),
            "{record:?}"
        );
    }
    let logged: Vec<_> = records
        .iter()
        .map(|r| (r.protocol, r.host.as_deref().expect("target"), r.port))
        .collect();
    assert_eq!(logged[0], (Protocol::Tcp, "a\\u{1}b.test:80", 80));
    assert_eq!(logged[1], (Protocol::Https, "svc.test:443", 443));
    assert_eq!(logged[2], (Protocol::Http, "http://svc.test/", 80));
    assert_eq!(logged[3], (Protocol::Http, "http://svc.test/", 80));
    assert_eq!(logged[4], (Protocol::Http, "GARBAGE", 0));
    assert_eq!(logged[5].2, 8080);
    assert!(
        logged[5].1.starts_with("http://svc.test:8080/aaa"),
        "{:?}",
        logged[5]
    );
    assert!(logged[5].1.ends_with('…'), "{:?}", logged[5]);
    assert_eq!(
        records[0].reason,
        "the request target holds a character a URI cannot"
    );
    assert_eq!(records[1].reason, "a control character in a header value");
    assert_eq!(records[5].reason, "the request head is too large");
}

#[test]
fn a_denied_transparent_connection_is_reset_and_never_dialed() {
    if !root() {
        return;
    }
    let denying = denying(&["denied.test"]);
    denying.sandbox.run(|| {
        let synthetic = dns_query("denied.test", TYPE_A).addr.expect("resolvable");
        // TEST-NET-1, never routed: the redirect keeps the connection inside the namespace.
        let literal = Ipv4Addr::new(192, 0, 2, 1);
        for addr in [synthetic, literal] {
            closed_unanswered(std::net::TcpStream::connect((addr, 80)).expect("redirected"));
        }
    });
    nothing_left_the_host(&denying);
    let records = denying.sandbox.stop();
    let tcp: Vec<_> = records
        .iter()
        .filter(|r| r.protocol == Protocol::Tcp)
        .collect();
    assert_eq!(tcp.len(), 2, "{records:?}");
    assert_eq!(tcp[0].host.as_deref(), Some("denied.test"));
    assert_eq!(
        tcp[1].addr,
        Some(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 80)))
    );
    assert!(tcp.iter().all(|r| !r.allowed));
}

/// Regression (hunt net 5): each call of a session runs a proxy of its own, and each began
/// handing out synthetic addresses at the range's start: an address a program kept from one
/// call (a file, a cache) was another name's in the next, and its connection went there. The
/// proxies of a session share one sequence; a later one refuses an earlier one's address as
/// one it never handed out.
#[test]
fn an_address_an_earlier_proxy_handed_out_is_refused_by_a_later_one() {
    if !root() {
        return;
    }
    let echo = EchoServer::start();
    let names = ["svc.test", "other.test"];
    let call = || {
        let resolver = FakeResolver::with(&[
            ("svc.test", &[host_loopback()]),
            ("other.test", &[host_loopback()]),
        ]);
        proxy(
            TestPolicy::allowing(&names, &[host_loopback()]),
            ProxyLimits::default(),
            resolver,
        )
    };
    let session = warden_net::SyntheticSequence::default();
    let first = TestSandbox::start(call().with_synthetic(session.clone()));
    let kept = first.run(|| dns_query("svc.test", TYPE_A).addr.expect("an address"));
    first.stop();
    let second = TestSandbox::start(call().with_synthetic(session));
    second.run(|| {
        let other = dns_query("other.test", TYPE_A).addr.expect("an address");
        assert_ne!(other, kept, "another name got the kept address");
        closed_unanswered(
            std::net::TcpStream::connect((kept, echo.addr.port())).expect("redirected"),
        );
    });
    let records = second.stop();
    let tcp: Vec<_> = records
        .iter()
        .filter(|r| r.protocol == Protocol::Tcp)
        .collect();
    assert_eq!(tcp.len(), 1, "{records:?}");
    assert!(!tcp[0].allowed, "{:?}", tcp[0]);
    assert_eq!(tcp[0].rule, "synthetic");
    assert_eq!(tcp[0].host, None);
}

/// Hunt net 3: a connection made inside the sandbox straight to the redirect's own port
/// (`127.0.0.1:15001`) was never redirected, but conntrack still gave it an "original"
/// destination, the address as dialled: it was judged and logged as an attempt to the host's
/// `127.0.0.1:15001`. It is reset, and is no attempt of the program's to go anywhere.
#[test]
fn a_connection_to_the_redirects_own_port_is_reset_and_not_judged() {
    if !root() {
        return;
    }
    let denying = denying(&[]);
    denying.sandbox.run(|| {
        closed_unanswered(
            std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, 15001)).expect("connects"),
        );
    });
    nothing_left_the_host(&denying);
    let records = denying.sandbox.stop();
    assert!(
        records.iter().all(|r| r.protocol != Protocol::Tcp),
        "{records:?}"
    );
}

/// Bug hunt: a short run of DNS questions for distinct long names made a 50 MB result (and
/// as much history, and server memory): the log kept 100,000 refusals whatever their size.
/// Now identical refusals fold into one record with a count, the log keeps a bounded number
/// of bytes of refusals, and the result counts the ones it dropped: every question is
/// accounted for.
#[test]
fn a_flood_of_refused_questions_is_folded_bounded_and_counted() {
    if !root() {
        return;
    }
    let denying = denying(&[]);
    let label = "x".repeat(60);
    let long = |n: usize| format!("{n:08}.{label}.{label}.{label}.test");
    let mut names = vec![long(0); 3000];
    names.extend((1..=12_000).map(long));
    let answered = denying.sandbox.run(|| dns_queries_tcp(&names));
    assert_eq!(answered, names.len(), "every question is answered");
    nothing_left_the_host(&denying);
    let traffic = denying.sandbox.stop_traffic();
    let records = &traffic.records;
    assert!(records.iter().all(|r| !r.allowed && r.rule == "resolver"));
    assert_eq!(records[0].repeats, 2999, "{:?}", records[0]);
    let kept_bytes: usize = records
        .iter()
        .map(|r| r.host.as_ref().map_or(0, String::len) + r.reason.len())
        .sum();
    assert!(kept_bytes < 4 << 20, "{kept_bytes} bytes kept");
    assert!(traffic.dropped > 0, "{} kept", records.len());
    let accounted: u64 = records.iter().map(|r| 1 + r.repeats).sum::<u64>() + traffic.dropped;
    assert_eq!(accounted, names.len() as u64);
}

#[test]
fn a_name_that_resolves_to_a_denied_address_is_refused() {
    if !root() {
        return;
    }
    // The name is allowed; the address it resolves to (cloud metadata) is not.
    let dialer = Arc::new(RecordingDialer::default());
    let resolver = FakeResolver::with(&[
        ("rebind.test", &[METADATA]),
        ("mixed.test", &[host_loopback(), METADATA]),
    ]);
    let policy = TestPolicy::allowing(&["rebind.test", "mixed.test"], &[host_loopback()]);
    let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_resolver(Arc::new(resolver))
        .with_dialer(Arc::clone(&dialer) as _);
    let sandbox = TestSandbox::start(proxy);
    sandbox.run(|| {
        let (status, response) =
            http_proxy("GET http://rebind.test/ HTTP/1.1\r\nHost: rebind.test\r\n\r\n");
        assert_eq!(status, 403, "{response}");
        let (_, head) = connect_tunnel("mixed.test:80");
        assert!(
            head.starts_with("HTTP/1.1 403"),
            "one denied address denies the name: {head}"
        );
        assert_eq!(
            socks_connect(SocksTarget::Name("rebind.test"), 443).err(),
            Some(2)
        );
    });
    assert!(
        dialer.dialed.lock().expect("lock").is_empty(),
        "nothing dialed"
    );
    let records = sandbox.stop();
    assert_eq!(records.len(), 3);
    for record in &records {
        assert!(!record.allowed, "{record:?}");
        assert_eq!(record.addr.map(|a| a.ip()), Some(METADATA), "{record:?}");
    }
}

#[test]
fn the_resolver_answers_nxdomain_for_other_names_and_asks_no_one() {
    if !root() {
        return;
    }
    let denying = denying(&["denied.test"]);
    denying.sandbox.run(|| {
        let other = dns_query("anything.example", TYPE_A);
        assert_eq!(other.rcode, 3, "NXDOMAIN: {other:?}");
        assert_eq!(other.answers, 0);
        let over_tcp = dns_query_tcp("exfiltrate.data.example", TYPE_A);
        assert_eq!(over_tcp.rcode, 3, "{over_tcp:?}");
        let v6 = dns_query("denied.test", TYPE_AAAA);
        assert_eq!((v6.rcode, v6.answers), (0, 0), "no data for AAAA: {v6:?}");
    });
    nothing_left_the_host(&denying);
    let records = denying.sandbox.stop();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.protocol == Protocol::Dns));
    assert_eq!(records[0].host.as_deref(), Some("anything.example"));
    assert!(!records[0].allowed);
}

/// Sends `msg` to the resolver over UDP; its answer, if one comes within `wait`.
fn dns_raw(msg: &[u8], wait: std::time::Duration) -> Option<Vec<u8>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    socket.send_to(msg, ("127.0.0.1", 53)).expect("send");
    let mut buf = [0; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Bug hunt (netlog 3): a question for something that is no host name was logged with no
/// host and the reason `not a host name`, what was asked lost; a message the resolver cannot
/// read (a header alone, a compression loop, a few bytes) was answered, or not, and logged
/// nowhere. The first is a denial by `invalid name` keeping the name as sent, escaped; the
/// others are denials by `malformed request`, logged and folded as every refusal.
#[test]
fn every_message_to_the_resolver_is_logged_as_what_it_was() {
    if !root() {
        return;
    }
    let denying = denying(&[]);
    let header = [0xAB, 0xCD, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut compression_loop = header.to_vec();
    compression_loop[5] = 1;
    compression_loop.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    let answers = denying.sandbox.run(|| {
        let invalid = dns_query("\x1b[31mdns", TYPE_A);
        assert_eq!(invalid.rcode, 3, "NXDOMAIN: {invalid:?}");
        let wait = std::time::Duration::from_millis(300);
        (
            dns_raw(&header, CLIENT_TIMEOUT),
            dns_raw(&compression_loop, CLIENT_TIMEOUT),
            dns_raw(&[1, 2, 3, 4, 5], wait),
        )
    });
    let formerr = |answer: &Option<Vec<u8>>| answer.as_ref().map(|a| a[3] & 0x0F);
    assert_eq!(formerr(&answers.0), Some(1), "FORMERR");
    assert_eq!(formerr(&answers.1), Some(1), "FORMERR");
    assert_eq!(answers.2, None, "too short to answer");
    nothing_left_the_host(&denying);
    let records = denying.sandbox.stop();
    assert!(records
        .iter()
        .all(|r| r.protocol == Protocol::Dns && !r.allowed));
    assert_eq!(records[0].rule, "invalid name", "{records:?}");
    assert_eq!(records[0].host.as_deref(), Some("\\u{1b}[31mdns"));
    let malformed: Vec<_> = records
        .iter()
        .filter(|r| r.rule == "malformed request")
        .collect();
    let count: u64 = malformed.iter().map(|r| 1 + r.repeats).sum();
    assert_eq!(count, 3, "{records:?}");
    assert!(malformed.iter().all(|r| r.host.is_none() && r.bytes_up > 0));
}

#[test]
fn a_client_hello_naming_another_host_is_refused() {
    if !root() {
        return;
    }
    let echo = EchoServer::start();
    let dialer = Arc::new(RedirectDialer::to(echo.addr));
    let policy = TestPolicy::allowing(&["svc.test", "evil.test"], &[host_loopback()]);
    let resolver = FakeResolver::with(&[("svc.test", &[host_loopback()])]);
    let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_resolver(Arc::new(resolver))
        .with_dialer(Arc::clone(&dialer) as _);
    let sandbox = TestSandbox::start(proxy);
    sandbox.run(|| {
        for (authority, first_bytes) in [
            ("svc.test:443", client_hello("evil.test")),
            ("svc.test:443", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            ("svc.test:8443", client_hello("evil.test")),
        ] {
            let (mut tunnel, head) = connect_tunnel(authority);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            std::io::Write::write_all(&mut tunnel, &first_bytes).expect("send");
            let back = read_all(&mut tunnel).unwrap_or_default();
            assert!(
                back.is_empty(),
                "{authority}: nothing may come back: {back:?}"
            );
        }
    });
    assert_eq!(
        echo.received.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no byte reached the server"
    );
    let records = sandbox.stop();
    assert_eq!(records.len(), 3);
    for record in &records {
        assert!(!record.allowed, "{record:?}");
        assert_eq!(record.rule, "tls", "{record:?}");
        assert_eq!(record.bytes_up, 0, "{record:?}");
    }
    assert!(records[0].reason.contains("evil.test"), "{records:?}");
}

/// Bug hunt (net, finding 2): the TLS check's refusals on one tunnel were logged under two
/// protocols: a ClientHello naming another host as `https`, a malformed one or one cut short
/// as the tunnel's protocol (`http` under an `http` rule, `tcp` under a `tcp` one). Every
/// refusal by `tls` is of a TLS handshake, or of a tunnel that had to carry one: `https`,
/// whatever rule let the tunnel through.
#[test]
fn every_refusal_by_the_tls_check_is_logged_as_https() {
    if !root() {
        return;
    }
    let hello = client_hello("svc.test");
    let first_flights: [(&str, &[u8]); 3] = [
        ("another name", &client_hello("evil.test")),
        ("no ClientHello", &[0x16, 3, 1, 0, 4, 2, 0, 0, 0]),
        ("cut short", &hello[..hello.len() / 2]),
    ];
    for protocol in ["tcp", "http", "https"] {
        let echo = EchoServer::start();
        let dialer = Arc::new(RedirectDialer::to(echo.addr));
        let policy = RulePolicy::allowing(protocol, "svc.test", "8443");
        let resolver = FakeResolver::with(&[("svc.test", &[host_loopback()])]);
        let proxy = Proxy::new(Arc::new(policy), ProxyLimits::default())
            .with_resolver(Arc::new(resolver))
            .with_dialer(Arc::clone(&dialer) as _);
        let sandbox = TestSandbox::start(proxy);
        sandbox.run(|| {
            for (what, first_bytes) in first_flights {
                let (mut tunnel, head) = connect_tunnel("svc.test:8443");
                assert!(
                    head.starts_with("HTTP/1.1 200"),
                    "{protocol}, {what}: {head}"
                );
                std::io::Write::write_all(&mut tunnel, first_bytes).expect("send");
                tunnel
                    .shutdown(std::net::Shutdown::Write)
                    .expect("end of file");
                let back = read_all(&mut tunnel).unwrap_or_default();
                assert!(back.is_empty(), "{protocol}, {what}: {back:?}");
            }
        });
        let records = sandbox.stop();
        assert_eq!(records.len(), 3, "{protocol}: {records:?}");
        for record in &records {
            assert_eq!(
                (record.allowed, record.rule.as_str(), record.protocol),
                (false, "tls", Protocol::Https),
                "a `{protocol}` rule: {record:?}"
            );
        }
    }
}

/// The names a policy's rules cannot read as names: a label starting or ending with `-`, a
/// numeric last label (read as IPv4 by resolvers).
const UNREADABLE: [&str; 6] = [
    "-a.evil.test",
    "a-.evil.test",
    "127.1",
    "0x7f.1",
    "2130706433",
    "017700000001",
];

/// Regression (bug hunt: the proxy's own definition of a name accepted `-a.evil.test` and
/// `127.1`, which the policy's rules cannot read as names, so the policy saw no name and a
/// default-allow policy's `deny *.evil.test` let them through by `default`, as the policy of
/// this test, which allows them, stands for). The proxy now reads names as the rules do:
/// through the HTTP proxy, CONNECT, SOCKS5, the resolver and a TLS server name, each is
/// refused as `invalid name` and nothing is resolved or dialed.
#[test]
fn a_name_the_rules_cannot_read_is_refused_by_every_way_out() {
    if !root() {
        return;
    }
    let echo = EchoServer::start();
    let dialer = Arc::new(RedirectDialer::to(echo.addr));
    let loopback = [host_loopback()];
    let entries: Vec<(&str, &[IpAddr])> = UNREADABLE
        .iter()
        .map(|name| (*name, &loopback[..]))
        .collect();
    let resolver = Arc::new(FakeResolver::with(&entries));
    let policy = Arc::new(TestPolicy::allowing(&UNREADABLE, &[host_loopback()]).matching_either());
    let proxy = Proxy::new(Arc::clone(&policy) as _, ProxyLimits::default())
        .with_resolver(Arc::clone(&resolver) as _)
        .with_dialer(Arc::clone(&dialer) as _);
    let sandbox = TestSandbox::start(proxy);
    let address = format!("{}:443", host_loopback());
    sandbox.run(|| {
        for name in UNREADABLE {
            let (status, response) = http_proxy(&format!(
                "GET http://{name}/ HTTP/1.1\r\nHost: {name}\r\n\r\n"
            ));
            assert_eq!(status, 403, "{name}: {response}");
            assert!(response.contains("invalid name"), "{name}: {response}");
            let (_, head) = connect_tunnel(&format!("{name}:80"));
            assert!(head.starts_with("HTTP/1.1 403"), "{name}: {head}");
            assert_eq!(
                socks_connect(SocksTarget::Name(name), 80).err(),
                Some(2),
                "{name}"
            );
            assert_eq!(dns_query(name, TYPE_A).rcode, 3, "{name}: NXDOMAIN");
            // A tunnel to an allowed address with this server name is cut before a byte
            // reaches the server.
            let (mut tunnel, head) = connect_tunnel(&address);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            std::io::Write::write_all(&mut tunnel, &client_hello(name)).expect("send");
            let back = read_all(&mut tunnel).unwrap_or_default();
            assert!(back.is_empty(), "{name}: relayed {back:?}");
        }
    });
    assert!(resolver.asked.lock().expect("lock").is_empty());
    assert_eq!(
        echo.received.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no byte reached the server"
    );
    let asked = policy.asked.lock().expect("lock").clone();
    assert!(
        asked.iter().all(|a| a.host.is_none()),
        "only the address tunnels were put to the policy: {asked:?}"
    );
    let records = sandbox.stop();
    // Identical refusals are folded into one record with a count.
    let count = |rule: &str| {
        records
            .iter()
            .filter(|r| r.rule == rule)
            .map(|r| 1 + r.repeats as usize)
            .sum::<usize>()
    };
    // HTTP, CONNECT, SOCKS5 and the resolver's question.
    assert_eq!(count("invalid name"), 4 * UNREADABLE.len(), "{records:?}");
    assert_eq!(count("tls"), UNREADABLE.len(), "{records:?}");
    let tls: Vec<_> = records.iter().filter(|r| r.rule == "tls").collect();
    assert!(tls
        .iter()
        .all(|r| r.reason == "an invalid TLS server name" && r.bytes_up == 0));
    assert!(records.iter().all(|r| !r.allowed), "{records:?}");
}
