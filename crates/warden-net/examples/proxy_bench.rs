//! What the egress proxy costs: the set-up of one sandbox's network (open the listeners, install
//! the interception, start the proxy) and the throughput of a download from a server on the
//! host's loopback, direct and through each way out of a fresh network namespace.
//!
//! Usage (as root): `cargo run --release -p warden-net --example proxy_bench -- [MIB] [RUNS]`
//! (defaults: 100 MiB, 20 set-up runs); docs/BENCHMARKS.md has the reading.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use warden_net::{
    install_interception, open_listeners, Attempt, BoxFuture, Decider, Proxy, ProxyLimits,
    Resolver, Verdict,
};

/// Allows everything: the benchmark measures the proxy, not a policy.
struct AllowAll;

impl Decider for AllowAll {
    fn decide(&self, _: &Attempt) -> Verdict {
        Verdict::allow("bench", "everything is allowed")
    }

    fn may_resolve(&self, _: &str) -> bool {
        true
    }
}

/// Every name is the host's loopback.
struct Loopback;

impl Resolver for Loopback {
    fn resolve<'a>(&'a self, _: &'a str) -> BoxFuture<'a, io::Result<Vec<IpAddr>>> {
        Box::pin(async { Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]) })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(Ok(100), |n| n.parse())?;
    let runs: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let mut out = io::stderr().lock();

    let mut setup = Vec::new();
    for _ in 0..runs {
        let netns = new_netns()?;
        let started = Instant::now();
        let listeners = open_listeners(&netns)?;
        let opened = started.elapsed();
        install_interception(&netns)?;
        let installed = started.elapsed();
        let proxy = Proxy::new(Arc::new(AllowAll), ProxyLimits::default())
            .with_resolver(Arc::new(Loopback))
            .start_blocking(listeners)?;
        setup.push((opened, installed - opened, started.elapsed() - installed));
        proxy.stop();
    }
    let median = |pick: fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut times: Vec<_> = setup.iter().map(pick).collect();
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    writeln!(out, "set-up of one namespace, median of {runs}:")?;
    writeln!(out, "  open_listeners        {:.2} ms", median(|t| t.0))?;
    writeln!(out, "  install_interception  {:.2} ms", median(|t| t.1))?;
    writeln!(out, "  start_blocking        {:.2} ms", median(|t| t.2))?;
    writeln!(
        out,
        "  total                 {:.2} ms",
        median(|t| t.0 + t.1 + t.2)
    )?;

    let size = mib * 1024 * 1024;
    let server = serve_bytes(size)?;
    let netns = new_netns()?;
    let listeners = open_listeners(&netns)?;
    install_interception(&netns)?;
    let proxy = Proxy::new(Arc::new(AllowAll), ProxyLimits::default())
        .with_resolver(Arc::new(Loopback))
        .start_blocking(listeners)?;
    writeln!(
        out,
        "download of {mib} MiB from the host's loopback, median of 7:"
    )?;
    let port = server.port();
    let direct = download(|| TcpStream::connect(server))?;
    report(&mut out, "direct (host namespace)", size, direct)?;
    let connect = inside(&netns, || {
        download(|| {
            let mut stream = TcpStream::connect(("127.0.0.1", warden_net::HTTP_PROXY_PORT))?;
            write!(stream, "CONNECT bench.test:{port} HTTP/1.1\r\n\r\n")?;
            read_head(&mut stream)?;
            Ok(stream)
        })
    })?;
    report(&mut out, "HTTP CONNECT tunnel", size, connect)?;
    let transparent = inside(&netns, || {
        let synthetic = resolve_inside("bench.test")?;
        download(|| TcpStream::connect((synthetic, port)))
    })?;
    report(
        &mut out,
        "transparent (synthetic address)",
        size,
        transparent,
    )?;
    let traffic = proxy.stop();
    writeln!(
        out,
        "({} records in the traffic log)",
        traffic.records.len()
    )?;
    Ok(())
}

fn report(out: &mut impl Write, what: &str, size: usize, elapsed: Duration) -> io::Result<()> {
    #[allow(clippy::cast_precision_loss)]
    let mib_s = size as f64 / 1024.0 / 1024.0 / elapsed.as_secs_f64();
    writeln!(
        out,
        "  {what:<34} {:>8.1} ms  {mib_s:>8.0} MiB/s",
        elapsed.as_secs_f64() * 1000.0
    )
}

/// Downloads the server's bytes over a connection from `connect`, to the last byte: the median
/// of `DOWNLOADS` runs.
fn download(connect: impl Fn() -> io::Result<TcpStream>) -> io::Result<Duration> {
    const DOWNLOADS: usize = 7;
    let mut times = Vec::with_capacity(DOWNLOADS);
    let mut buf = vec![0; 256 * 1024];
    for _ in 0..DOWNLOADS {
        let started = Instant::now();
        let mut stream = connect()?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n")?;
        while stream.read(&mut buf)? > 0 {}
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[DOWNLOADS / 2])
}

/// A server on the host's loopback that answers each request head with `size` bytes.
fn serve_bytes(size: usize) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let chunk: Arc<[u8]> = vec![b'x'; 256 * 1024].into();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let chunk = Arc::clone(&chunk);
            std::thread::spawn(move || {
                if read_head(&mut stream).is_err() {
                    return;
                }
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if stream.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    Ok(addr)
}

fn read_head(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(())
}

/// An A query to the resolver inside the namespace (call from inside).
fn resolve_inside(name: &str) -> io::Result<Ipv4Addr> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut query = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(u8::try_from(label.len()).map_err(|_| io::ErrorKind::InvalidInput)?);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&query, ("127.0.0.1", 53))?;
    let mut answer = [0; 512];
    let n = socket.recv(&mut answer)?;
    let tail: [u8; 4] = answer[n - 4..n]
        .try_into()
        .map_err(|_| io::ErrorKind::InvalidData)?;
    Ok(Ipv4Addr::from(tail))
}

fn new_netns() -> io::Result<File> {
    std::thread::spawn(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
        File::open("/proc/thread-self/ns/net")
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?
}

fn inside<T: Send>(netns: &File, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)?;
                work()
            })
            .join()
            .map_err(|_| io::Error::other("the client thread panicked"))?
    })
}
