//! Shared helpers of the proxy's privileged tests: a network namespace of its own per test with
//! the proxy in it, clients that run inside it, servers on the host's loopback, and test doubles
//! for the policy, the resolver and the dialer. Traffic never leaves this machine's loopback.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use warden_core::network::{self, Policy};
use warden_net::{
    install_interception, open_listeners, Attempt, BlockingProxy, BoxFuture, BoxedStream,
    ConnectionRecord, Decider, Dialer, Proxy, ProxyLimits, Resolver, Verdict,
};

/// How long a client waits for any answer: generous, so that a loaded CI machine does not
/// fail a test; a hang fails it instead of blocking forever.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the tests can run: they create network namespaces, which needs root. Prints why a
/// test skips; in CI (`CI` set) a test must not skip, so it fails instead.
pub fn root() -> bool {
    let met = nix::unistd::geteuid().is_root();
    if !met {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run these tests as root"
        );
        eprintln!("skipped: creating a network namespace needs root");
    }
    met
}

/// A fresh network namespace (only `lo`, down), held open by the returned file.
pub fn new_netns() -> File {
    std::thread::spawn(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        File::open("/proc/thread-self/ns/net").expect("the thread's namespace")
    })
    .join()
    .expect("the thread that creates the namespace")
}

/// Runs `work` on a thread inside the network namespace `netns`.
pub fn inside<T: Send>(netns: &File, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).expect("setns");
                work()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A namespace standing for a sandbox, with the proxy serving it.
pub struct TestSandbox {
    /// The namespace, held open.
    pub netns: File,
    proxy: Option<BlockingProxy>,
}

impl TestSandbox {
    /// A new namespace, its listeners and interception, and `proxy` serving them.
    pub fn start(proxy: Proxy) -> Self {
        let netns = new_netns();
        let listeners = open_listeners(&netns).expect("listeners in the namespace");
        install_interception(&netns).expect("interception in the namespace");
        let proxy = proxy.start_blocking(listeners).expect("the proxy starts");
        Self {
            netns,
            proxy: Some(proxy),
        }
    }

    /// Runs `work` inside the namespace.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        inside(&self.netns, work)
    }

    /// Stops the proxy and returns its log's records.
    pub fn stop(self) -> Vec<ConnectionRecord> {
        self.stop_traffic().records
    }

    /// Stops the proxy and returns its log.
    pub fn stop_traffic(mut self) -> warden_net::Traffic {
        self.proxy.take().expect("running").stop()
    }
}

/// A policy for tests: allows the listed names and addresses, on every protocol, denies
/// everything else, and remembers what it was asked. What depends on which protocols a rule
/// covers is tested with [`RulePolicy`], the policy itself, not with a model of it.
#[derive(Default)]
pub struct TestPolicy {
    names: HashSet<String>,
    addrs: HashSet<IpAddr>,
    resolvable: HashSet<String>,
    /// Whether a name or an address in the lists is enough, as a policy's rules match
    /// ([`TestPolicy::matching_either`]); both must be otherwise.
    either: bool,
    /// Every attempt it decided, in order.
    pub asked: Mutex<Vec<Attempt>>,
}

impl TestPolicy {
    /// Allows `names` and `addrs`; the resolver may answer `names`.
    pub fn allowing(names: &[&str], addrs: &[IpAddr]) -> Self {
        Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            addrs: addrs.iter().copied().collect(),
            resolvable: names.iter().map(|n| (*n).to_owned()).collect(),
            either: false,
            asked: Mutex::default(),
        }
    }

    /// Allows an attempt whose name or address is in the lists, as a policy's rule does
    /// (`host` matches the name or any address of the connection).
    pub fn matching_either(mut self) -> Self {
        self.either = true;
        self
    }

    /// Also lets the resolver answer `names`, which `decide` still denies.
    pub fn resolving(mut self, names: &[&str]) -> Self {
        self.resolvable
            .extend(names.iter().map(|n| (*n).to_owned()));
        self
    }
}

impl Decider for TestPolicy {
    fn decide(&self, attempt: &Attempt) -> Verdict {
        self.asked.lock().expect("lock").push(attempt.clone());
        let name_ok = attempt.host.as_ref().is_none_or(|h| self.names.contains(h));
        let addr_ok = attempt.addr.is_none_or(|a| self.addrs.contains(&a));
        let target_ok = if self.either {
            attempt
                .host
                .as_ref()
                .is_some_and(|h| self.names.contains(h))
                || attempt.addr.is_some_and(|a| self.addrs.contains(&a))
        } else {
            name_ok && addr_ok
        };
        if target_ok {
            Verdict::allow("test-allow", "in the test's allow list")
        } else {
            Verdict::deny("test-deny", "not in the test's allow list")
        }
    }

    fn may_resolve(&self, name: &str) -> bool {
        self.resolvable.contains(name)
    }
}

/// A network policy file decided as warden decides it (`PolicyDecider` in warden-engine):
/// `Policy::evaluate` of warden-core, the policy imported (its `allow_denied` honoured, so that
/// a test server on the host's loopback can be reached), no registries unless
/// [`RulePolicy::admitting_registry`] names one.
pub struct RulePolicy {
    policy: Policy,
    registries: Vec<network::Registry>,
}

impl RulePolicy {
    /// A custom policy: default deny, the host's IPv4 loopback exempt from the deny set, and
    /// `rules` (`[[rule]]` tables as a policy file writes them).
    pub fn with_rules(rules: &str) -> Self {
        let text = format!(
            "name = \"test\"\nlevel = \"custom\"\ndefault_action = \"deny\"\n\
             allow_denied = [\"127.0.0.1\"]\n\n{rules}"
        );
        let policy = Policy::from_toml("test.toml", &text).expect("a valid policy");
        Self {
            policy,
            registries: Vec::new(),
        }
    }

    /// A custom policy as [`RulePolicy::with_rules`] makes one, without rules, admitting the
    /// registries (`registries = true`), of which there is one: `registry` (`host:port`), as
    /// `[network] registries` would name it.
    pub fn admitting_registry(registry: &str) -> Self {
        let mut admitting = Self::with_rules("");
        admitting.policy.registries = true;
        admitting.registries =
            vec![network::Registry::from_url(registry, "test").expect("a registry")];
        admitting
    }

    /// [`RulePolicy::with_rules`] of one rule allowing `protocol` to `host` on `ports`.
    pub fn allowing(protocol: &str, host: &str, ports: &str) -> Self {
        Self::with_rules(&format!(
            "[[rule]]\nprotocol = \"{protocol}\"\nhost = \"{host}\"\nports = \"{ports}\"\n\
             action = \"allow\"\nreason = \"the test server\"\n"
        ))
    }

    fn evaluate(
        &self,
        protocol: network::Protocol,
        host: Option<&str>,
        addr: Option<IpAddr>,
        port: u16,
    ) -> network::Decision {
        let attempt = network::Attempt {
            protocol,
            host: host.map(str::to_owned),
            addr,
            port,
        };
        let ctx = network::EvalContext {
            registries: &self.registries,
            imported: true,
            ..network::EvalContext::default()
        };
        self.policy.evaluate(&attempt, &ctx)
    }
}

impl Decider for RulePolicy {
    fn decide(&self, attempt: &Attempt) -> Verdict {
        let protocol = match attempt.protocol {
            warden_net::Protocol::Http => network::Protocol::Http,
            warden_net::Protocol::Https => network::Protocol::Https,
            warden_net::Protocol::Tcp => network::Protocol::Tcp,
            warden_net::Protocol::Dns => network::Protocol::Dns,
        };
        let decision = self.evaluate(
            protocol,
            attempt.host.as_deref(),
            attempt.addr,
            attempt.port,
        );
        let rule = decision.matched.to_string();
        match decision.action {
            network::Action::Allow => Verdict::allow(rule, decision.reason),
            network::Action::Deny => Verdict::deny(rule, decision.reason),
        }
    }

    fn may_resolve(&self, name: &str) -> bool {
        let decision = self.evaluate(network::Protocol::Dns, Some(name), None, 53);
        decision.action == network::Action::Allow
    }
}

/// A resolver that answers from a table and remembers every name it was asked.
#[derive(Default)]
pub struct FakeResolver {
    table: HashMap<String, Vec<IpAddr>>,
    /// Every name it was asked, in order.
    pub asked: Mutex<Vec<String>>,
}

impl FakeResolver {
    /// Answers each name of `entries` with its addresses, others with none.
    pub fn with(entries: &[(&str, &[IpAddr])]) -> Self {
        Self {
            table: entries
                .iter()
                .map(|(name, addrs)| ((*name).to_owned(), addrs.to_vec()))
                .collect(),
            asked: Mutex::default(),
        }
    }
}

impl Resolver for FakeResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        self.asked.lock().expect("lock").push(name.to_owned());
        let found = self.table.get(name).cloned().unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}

/// A dialer that remembers where it was asked to connect and never connects anywhere.
#[derive(Default)]
pub struct RecordingDialer {
    /// Every address it was asked to dial.
    pub dialed: Mutex<Vec<SocketAddr>>,
}

impl Dialer for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxedStream>> {
        self.dialed.lock().expect("lock").push(addr);
        Box::pin(async { Err(io::ErrorKind::ConnectionRefused.into()) })
    }
}

/// A dialer that remembers where it was asked to connect and connects to `target` (a server on
/// the host's loopback) instead: lets a test use port 443 without a server there.
pub struct RedirectDialer {
    /// Where it really connects.
    pub target: SocketAddr,
    /// Every address it was asked to dial.
    pub dialed: Mutex<Vec<SocketAddr>>,
}

impl RedirectDialer {
    /// Connects everything to `target`.
    pub fn to(target: SocketAddr) -> Self {
        Self {
            target,
            dialed: Mutex::default(),
        }
    }
}

impl Dialer for RedirectDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<BoxedStream>> {
        self.dialed.lock().expect("lock").push(addr);
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(self.target).await?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }
}

/// The host's loopback address: where every test server listens.
pub fn host_loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// An echo server on the host's loopback; counts the bytes it received and its open
/// connections.
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Bytes received over all connections.
    pub received: Arc<AtomicU64>,
    /// Connections open now.
    pub open: Arc<AtomicUsize>,
}

impl EchoServer {
    /// Listens on an ephemeral port of the host's loopback.
    pub fn start() -> Self {
        Self::serve(&[])
    }

    /// Listens as [`EchoServer::start`] does, and sends [`BANNER`] as soon as it accepts a
    /// connection (as SMTP, SSH or a database server does).
    pub fn start_speaking_first() -> Self {
        Self::serve(BANNER)
    }

    fn serve(banner: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (counter, opened) = (Arc::clone(&received), Arc::clone(&open));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (counter, opened) = (Arc::clone(&counter), Arc::clone(&opened));
                opened.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = stream.write_all(banner);
                    let mut buf = [0; 16 * 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    drop(stream);
                    opened.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            received,
            open,
        }
    }

    /// Waits until the server has no connection left open (or `CLIENT_TIMEOUT` passed).
    pub fn wait_idle(&self) -> usize {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.open.load(Ordering::SeqCst)
    }
}

/// An HTTP server on the host's loopback: `GET /bytes/N` answers N bytes, anything else
/// `hello`; it keeps every request head it read.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request head it read.
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    /// Listens on an ephemeral port of the host's loopback.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || serve_http(stream, &seen));
            }
        });
        Self { addr, heads }
    }
}

fn serve_http(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    seen.lock().expect("lock").push(head);
    let body = match path.strip_prefix("/bytes/") {
        Some(n) => vec![b'x'; n.parse().expect("a byte count")],
        None => b"hello".to_vec(),
    };
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&body);
}

/// What [`EchoServer::start_speaking_first`] sends each connection before anything else.
pub const BANNER: &[u8] = b"220 the server speaks first\r\n";

/// A server on the host's loopback that keeps everything each connection sent it, up to the
/// end of file, then answers `200` with what it got as the body.
pub struct RawServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every connection's bytes, once it sent its end of file.
    pub received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawServer {
    /// Listens on an ephemeral port of the host's loopback.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    if stream.read_to_end(&mut got).is_err() {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        got.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&got);
                    kept.lock().expect("lock").push(got);
                });
            }
        });
        Self { addr, received }
    }
}

/// A client connection to a port of the proxy inside the namespace (call from inside).
pub fn connect_local(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the proxy listens");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    stream
}

/// Reads until end of file.
pub fn read_all(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

/// Sends `request` to the HTTP proxy and returns the status code and the whole response.
pub fn http_proxy(request: &str) -> (u16, String) {
    let mut stream = connect_local(warden_net::HTTP_PROXY_PORT);
    stream.write_all(request.as_bytes()).expect("send");
    let response = String::from_utf8_lossy(&read_all(&mut stream).expect("response")).into_owned();
    (status_of(&response), response)
}

/// Sends `request` to the HTTP proxy, then its end of file, and returns the status code and
/// the whole response.
pub fn http_proxy_then_close(request: &[u8]) -> (u16, String) {
    let mut stream = connect_local(warden_net::HTTP_PROXY_PORT);
    stream.write_all(request).expect("send");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("end of file");
    let response = String::from_utf8_lossy(&read_all(&mut stream).expect("response")).into_owned();
    (status_of(&response), response)
}

/// The status code of an HTTP response (0 when there is none).
pub fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Opens a CONNECT tunnel; the stream and the proxy's whole answer head (empty when the proxy
/// reset the connection, even before the request could be sent: one it refuses as it accepts
/// it may be reset before the client's write).
pub fn connect_tunnel(authority: &str) -> (TcpStream, String) {
    let mut stream = connect_local(warden_net::HTTP_PROXY_PORT);
    let sent = write!(
        stream,
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    );
    if let Err(e) = sent {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "send: {e}"
        );
        return (stream, String::new());
    }
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// A SOCKS5 destination.
pub enum SocksTarget<'a> {
    /// A domain name (address type 3).
    Name(&'a str),
    /// A domain name's bytes, whatever they are (address type 3).
    RawName(&'a [u8]),
    /// An address (type 1 or 4).
    Addr(IpAddr),
}

/// A SOCKS5 CONNECT; the stream, or the reply code that refused it.
pub fn socks_connect(target: SocksTarget<'_>, port: u16) -> Result<TcpStream, u8> {
    let mut stream = connect_local(warden_net::SOCKS_PORT);
    stream.write_all(&[5, 1, 0]).expect("greeting");
    let mut choice = [0; 2];
    stream.read_exact(&mut choice).expect("method");
    assert_eq!(choice, [5, 0], "no authentication chosen");
    let mut request = vec![5, 1, 0];
    match target {
        SocksTarget::Name(name) => {
            request.push(3);
            request.push(u8::try_from(name.len()).expect("short"));
            request.extend_from_slice(name.as_bytes());
        }
        SocksTarget::RawName(name) => {
            request.push(3);
            request.push(u8::try_from(name.len()).expect("short"));
            request.extend_from_slice(name);
        }
        SocksTarget::Addr(IpAddr::V4(v4)) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        SocksTarget::Addr(IpAddr::V6(v6)) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).expect("request");
    let mut reply = [0; 10];
    stream.read_exact(&mut reply).expect("reply");
    if reply[1] == 0 {
        Ok(stream)
    } else {
        Err(reply[1])
    }
}

/// Writes `bytes` and reads as many back (through an echo server).
pub fn echo_round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).expect("send");
    let mut back = vec![0; bytes.len()];
    stream.read_exact(&mut back).expect("echo");
    back
}

/// A DNS answer as the tests look at it.
#[derive(Debug)]
pub struct DnsAnswer {
    /// The response code.
    pub rcode: u8,
    /// How many answer records.
    pub answers: u16,
    /// The address of the only answer, if there is one.
    pub addr: Option<Ipv4Addr>,
}

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;

/// Asks the resolver inside the namespace (over UDP; call from inside).
pub fn dns_query(name: &str, qtype: u16) -> DnsAnswer {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    socket
        .send_to(&dns_message(name, qtype), ("127.0.0.1", 53))
        .expect("send");
    let mut buf = [0; 512];
    let n = socket.recv(&mut buf).expect("an answer");
    parse_answer(&buf[..n])
}

/// Asks the resolver inside the namespace over TCP (call from inside).
pub fn dns_query_tcp(name: &str, qtype: u16) -> DnsAnswer {
    let mut stream = connect_local(53);
    let msg = dns_message(name, qtype);
    let mut framed = u16::try_from(msg.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&msg);
    stream.write_all(&framed).expect("send");
    let mut len = [0; 2];
    stream.read_exact(&mut len).expect("length");
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).expect("answer");
    parse_answer(&buf)
}

/// Asks the resolver inside the namespace each of `names` over one TCP connection, all the
/// questions written before the answers are read (call from inside); how many were answered.
pub fn dns_queries_tcp(names: &[String]) -> usize {
    let mut stream = connect_local(53);
    let mut reader = stream.try_clone().expect("a second handle");
    let count = names.len();
    let answers = std::thread::spawn(move || {
        let mut answered = 0;
        let mut len = [0; 2];
        while answered < count && reader.read_exact(&mut len).is_ok() {
            let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
            reader.read_exact(&mut buf).expect("answer");
            answered += 1;
        }
        answered
    });
    let mut all = Vec::new();
    for name in names {
        let msg = dns_message(name, TYPE_A);
        all.extend_from_slice(&u16::try_from(msg.len()).expect("short").to_be_bytes());
        all.extend_from_slice(&msg);
    }
    stream.write_all(&all).expect("send");
    answers.join().expect("the reader")
}

fn dns_message(name: &str, qtype: u16) -> Vec<u8> {
    let mut msg = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        msg.push(u8::try_from(label.len()).expect("short label"));
        msg.extend_from_slice(label.as_bytes());
    }
    msg.extend_from_slice(&[0]);
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg
}

fn parse_answer(msg: &[u8]) -> DnsAnswer {
    assert_eq!(
        &msg[..2],
        &[0xAB, 0xCD],
        "the answer carries the query's id"
    );
    let answers = u16::from_be_bytes([msg[6], msg[7]]);
    let addr = (answers == 1).then(|| {
        let tail = &msg[msg.len() - 4..];
        Ipv4Addr::new(tail[0], tail[1], tail[2], tail[3])
    });
    DnsAnswer {
        rcode: msg[3] & 0x0F,
        answers,
        addr,
    }
}

/// A minimal TLS 1.3-style ClientHello naming `server_name`.
pub fn client_hello(server_name: &str) -> Vec<u8> {
    hello(Some(server_name))
}

/// The same ClientHello without a server name extension.
pub fn client_hello_without_name() -> Vec<u8> {
    hello(None)
}

fn hello(server_name: Option<&str>) -> Vec<u8> {
    let mut extension = Vec::new();
    if let Some(name) = server_name.map(str::as_bytes) {
        let name_len = u16::try_from(name.len()).expect("short");
        extension.extend_from_slice(&[0, 0]);
        extension.extend_from_slice(&(name_len + 5).to_be_bytes());
        extension.extend_from_slice(&(name_len + 3).to_be_bytes());
        extension.push(0);
        extension.extend_from_slice(&name_len.to_be_bytes());
        extension.extend_from_slice(name);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&u16::try_from(extension.len()).expect("short").to_be_bytes());
    body.extend_from_slice(&extension);
    let body_len = u32::try_from(body.len()).expect("short").to_be_bytes();
    let mut handshake = vec![1, body_len[1], body_len[2], body_len[3]];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("short").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// The proxy for a test: `policy`, `limits`, and `resolver`.
pub fn proxy(policy: TestPolicy, limits: ProxyLimits, resolver: FakeResolver) -> Proxy {
    Proxy::new(Arc::new(policy), limits).with_resolver(Arc::new(resolver))
}

/// The denials a proxy tells (`Proxy::on_denial`), kept in order, and the observer to give it.
pub fn denial_observer() -> (
    Arc<Mutex<Vec<ConnectionRecord>>>,
    warden_net::DenialObserver,
) {
    let observed = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&observed);
    let observer = Arc::new(move |record: &ConnectionRecord| {
        keep.lock().expect("observed").push(record.clone());
    });
    (observed, observer)
}
