//! Stopping the proxy while connections are open leaves nothing behind: every task ends and
//! every socket is closed before `stop` returns, and each open connection's record says the
//! stop cut it. Alone in its test binary: it counts the process's open descriptors, which a
//! test running beside it in the same process would change.

mod support;

use std::io::Read;
use std::sync::Arc;

use support::*;
use warden_net::{install_interception, open_listeners, Cut, Proxy, ProxyLimits};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn stop_ends_every_task_and_closes_every_socket() {
    if !root() {
        return;
    }
    let echo = EchoServer::start();
    let netns = new_netns();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fds_before = open_fds();
    let tasks_before = runtime.metrics().num_alive_tasks();

    let listeners = open_listeners(&netns).expect("listeners");
    install_interception(&netns).expect("interception");
    let policy = TestPolicy::allowing(&["svc.test"], &[host_loopback()]);
    let resolver = FakeResolver::with(&[("svc.test", &[host_loopback()])]);
    let handle = Proxy::new(Arc::new(policy), ProxyLimits::default())
        .with_resolver(Arc::new(resolver))
        .start(runtime.handle(), listeners)
        .expect("the proxy starts");
    let port = echo.addr.port();
    let mut clients = inside(&netns, || {
        let (mut tunnel, _) = connect_tunnel(&format!("svc.test:{port}"));
        assert_eq!(echo_round_trip(&mut tunnel, b"open"), b"open");
        let mut socks = socks_connect(SocksTarget::Name("svc.test"), port).expect("allowed");
        assert_eq!(echo_round_trip(&mut socks, b"open"), b"open");
        let synthetic = dns_query("svc.test", TYPE_A).addr.expect("an address");
        let mut transparent = std::net::TcpStream::connect((synthetic, port)).expect("redirected");
        transparent
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("timeout");
        assert_eq!(echo_round_trip(&mut transparent, b"open"), b"open");
        // A client still in the middle of its request head.
        let mut half = connect_local(warden_net::HTTP_PROXY_PORT);
        std::io::Write::write_all(&mut half, b"GET http://svc.test/ HTT").expect("send");
        vec![tunnel, socks, transparent, half]
    });
    assert!(runtime.metrics().num_alive_tasks() > tasks_before);

    let records = runtime.block_on(handle.stop()).records;

    // The listeners are closed by the time `stop` returns.
    inside(&netns, || {
        for port in [3128, 1080, 53, 15001] {
            let error = std::net::TcpStream::connect(("127.0.0.1", port)).expect_err("closed");
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{port}"
            );
        }
    });

    let stopped = records
        .iter()
        .filter(|r| r.cut_by == Some(Cut::Stopped))
        .count();
    assert_eq!(stopped, 3, "{records:?}");
    for client in &mut clients {
        // Closed: end of file, or a reset when the proxy had not read all the client sent
        // (the half-written request head); a timeout would mean a socket left open.
        let mut buf = [0; 1];
        match client.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    drop(clients);
    assert_eq!(echo.wait_idle(), 0, "the upstream connections were closed");
    // The runtime counts a task alive until its memory is freed, which a worker may do just
    // after `stop` saw it end (its future, sockets included, was dropped before that).
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    while runtime.metrics().num_alive_tasks() > tasks_before && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(runtime.metrics().num_alive_tasks(), tasks_before);
    assert_eq!(
        open_fds(),
        fds_before,
        "every socket of the proxy was closed"
    );
}
