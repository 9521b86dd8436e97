//! The namespace's plumbing on its own: IPv6 has no way out and fails at once, UDP to anything
//! but loopback is rejected, and setting it all up twice leaves one route and one rule.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use support::*;
use warden_net::{install_interception, open_listeners, Proxy, ProxyLimits};

fn sandbox() -> TestSandbox {
    TestSandbox::start(Proxy::new(
        std::sync::Arc::new(TestPolicy::allowing(&[], &[])),
        ProxyLimits::default(),
    ))
}

#[test]
fn ipv6_has_no_route() {
    if !root() {
        return;
    }
    let sandbox = sandbox();
    let error = sandbox.run(|| {
        let addr: SocketAddr = "[2001:db8::1]:80".parse().expect("address");
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect_err("no route")
    });
    assert_eq!(
        error.raw_os_error(),
        Some(libc::ENETUNREACH),
        "fails at once, not after a timeout: {error}"
    );
    sandbox.stop();
}

#[test]
fn udp_other_than_loopback_is_rejected() {
    if !root() {
        return;
    }
    let sandbox = sandbox();
    sandbox.run(|| {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
        // TEST-NET-1 and a synthetic address: neither may leave, whatever the port.
        for target in [
            (Ipv4Addr::new(192, 0, 2, 1), 9),
            (Ipv4Addr::new(198, 18, 0, 1), 53),
        ] {
            let error = socket.send_to(b"x", target).expect_err("rejected");
            assert_eq!(
                error.raw_os_error(),
                Some(libc::EPERM),
                "{target:?}: {error}"
            );
        }
        // Loopback stays open: processes of one sandbox may talk to each other.
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .send_to(b"x", peer.local_addr().expect("address"))
            .expect("loopback");
    });
    sandbox.stop();
}

#[test]
fn interception_can_be_installed_twice() {
    if !root() {
        return;
    }
    let netns = new_netns();
    install_interception(&netns).expect("first");
    install_interception(&netns).expect("second");
    let routes = inside(&netns, || {
        std::fs::read_to_string("/proc/thread-self/net/route").expect("the namespace's routes")
    });
    let defaults: Vec<_> = routes
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(1) == Some("00000000"))
        .collect();
    assert_eq!(defaults.len(), 1, "one default route: {routes}");
    assert!(defaults[0].starts_with("lo\t"), "via lo: {routes}");
    let rules = inside(&netns, || {
        std::process::Command::new("/usr/sbin/nft")
            .args(["list", "table", "inet", "warden"])
            .output()
            .expect("nft runs")
    });
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert_eq!(rules.matches("redirect to :15001").count(), 1, "{rules}");
    let listeners = open_listeners(&netns).expect("listeners after interception");
    drop(listeners);
    let again = open_listeners(&netns).expect("the ports are free again once closed");
    drop(again);
}
