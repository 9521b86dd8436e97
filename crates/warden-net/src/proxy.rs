//! The lifecycle of one execution's proxy: started on a tokio runtime with the listeners of its
//! sandbox's namespace, stopped when the execution ends. Every task it runs (the accept loops,
//! the resolver, each connection) is tracked in one set, so that stopping aborts all of them
//! and every socket is closed before `stop` returns. Runs in warden's process: [`Proxy::start`]
//! on the caller's runtime, [`Proxy::start_blocking`] on a thread of its own for a synchronous
//! caller (`warden run`).

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

use crate::decider::{Decider, Protocol};
use crate::descriptors::ProxyDescriptors;
use crate::dialer::{Dialer, TcpDialer};
use crate::egress::Destination;
use crate::limits::{Budget, ExecutionBudget, ProxyLimits};
use crate::listeners::NetnsListeners;
use crate::record::{ConnectionRecord, Cut, DenialObserver, Recording, Traffic, TrafficLog};
use crate::resolver::{Resolver, SystemResolver};
use crate::synthetic::{SyntheticPool, SyntheticSequence};
use crate::{dns, http, socks, transparent};

/// A failure to start the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listener could not be registered with the runtime's reactor.
    #[error("cannot register the {what} listener with the runtime")]
    Register {
        /// Which listener.
        what: &'static str,
        /// The reactor's error.
        source: io::Error,
    },
    /// The runtime of [`Proxy::start_blocking`] could not be built.
    #[error("cannot build the proxy's runtime")]
    Runtime(#[source] io::Error),
    /// The thread of [`Proxy::start_blocking`] could not start.
    #[error("cannot start the proxy's thread")]
    Thread(#[source] io::Error),
}

/// The egress proxy of one execution, configured and not yet started.
pub struct Proxy {
    decider: Arc<dyn Decider>,
    limits: ProxyLimits,
    budget: Option<ExecutionBudget>,
    descriptors: Option<ProxyDescriptors>,
    on_denial: Option<DenialObserver>,
    resolver: Arc<dyn Resolver>,
    dialer: Arc<dyn Dialer>,
    synthetic: SyntheticSequence,
}

impl Proxy {
    /// A proxy enforcing `decider` and `limits`, resolving with the host's resolver and
    /// dialing plain TCP.
    pub fn new(decider: Arc<dyn Decider>, limits: ProxyLimits) -> Self {
        Self {
            decider,
            limits,
            budget: None,
            descriptors: None,
            on_denial: None,
            resolver: Arc::new(SystemResolver),
            dialer: Arc::new(TcpDialer),
            synthetic: SyntheticSequence::default(),
        }
    }

    /// Resolves names with `resolver` instead.
    #[must_use]
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Spends from `budget` (of the same limits) instead of a budget of its own: the proxies
    /// of an execution's sandboxes share its limits, which bound the execution, not each
    /// sandbox.
    #[must_use]
    pub fn with_budget(mut self, budget: ExecutionBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Holds the program's connections within `descriptors`, the budget all the proxies of
    /// the process share, besides [`ProxyLimits::max_clients`]: a connection accepted when it
    /// is spent is reset at once and logged refused (`cut_by: proxy_descriptors`).
    #[must_use]
    pub fn with_descriptors(mut self, descriptors: ProxyDescriptors) -> Self {
        self.descriptors = Some(descriptors);
        self
    }

    /// Tells `observer` of each attempt refused by a verdict, as it is refused, with its
    /// record so far: the policy's (the decision applied to the attempt, not those asked to
    /// choose a tunnel's protocol), the synthetic-address and TLS checks' (rules `synthetic`
    /// and `tls`), and a full traffic log's (rule `limits`). Not a connection cap's refusal, nor
    /// the resolver's answers.
    #[must_use]
    pub fn on_denial(mut self, observer: DenialObserver) -> Self {
        self.on_denial = Some(observer);
        self
    }

    /// Hands out synthetic addresses after those `sequence` gave before (another proxy's of
    /// the same execution or session), rather than from the range's start: an address an
    /// earlier proxy gave a name is none this one gives, and is refused (`synthetic`).
    #[must_use]
    pub fn with_synthetic(mut self, sequence: SyntheticSequence) -> Self {
        self.synthetic = sequence;
        self
    }

    /// Dials with `dialer` instead.
    #[must_use]
    pub fn with_dialer(mut self, dialer: Arc<dyn Dialer>) -> Self {
        self.dialer = dialer;
        self
    }

    /// Starts serving `listeners` on `runtime`.
    pub fn start(
        self,
        runtime: &Handle,
        listeners: NetnsListeners,
    ) -> Result<ProxyHandle, ProxyError> {
        let _entered = runtime.enter();
        let http = tcp_listener("http proxy", listeners.http)?;
        let socks = tcp_listener("socks5", listeners.socks)?;
        let dns_tcp = tcp_listener("dns", listeners.dns_tcp)?;
        let transparent = tcp_listener("transparent", listeners.transparent)?;
        let dns_udp =
            UdpSocket::from_std(listeners.dns_udp).map_err(|source| ProxyError::Register {
                what: "dns",
                source,
            })?;
        let budget = self
            .budget
            .map_or_else(|| Arc::new(Budget::new(&self.limits)), |b| b.0);
        let log = Arc::new(TrafficLog::in_room(Arc::clone(&budget.log_room)));
        let shared = Arc::new(Shared {
            clients: Arc::new(Semaphore::new(self.limits.clients_at_once())),
            budget,
            descriptors: self.descriptors,
            decider: self.decider,
            on_denial: self.on_denial,
            resolver: self.resolver,
            dialer: self.dialer,
            limits: self.limits,
            pool: SyntheticPool::drawing_from(self.synthetic),
            log,
            tasks: Mutex::new(Some(JoinSet::new())),
            runtime: runtime.clone(),
        });
        shared.spawn(accept(Arc::clone(&shared), http, Front::Http));
        shared.spawn(accept(Arc::clone(&shared), socks, Front::Socks));
        shared.spawn(accept(Arc::clone(&shared), dns_tcp, Front::Dns));
        shared.spawn(accept(Arc::clone(&shared), transparent, Front::Transparent));
        shared.spawn(dns::serve_udp(Arc::clone(&shared), dns_udp));
        tracing::info!("egress proxy started");
        Ok(ProxyHandle { shared })
    }

    /// Starts serving `listeners` on a current-thread runtime on a thread of its own, for a
    /// caller without a runtime.
    pub fn start_blocking(self, listeners: NetnsListeners) -> Result<BlockingProxy, ProxyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProxyError::Runtime)?;
        let handle = self.start(runtime.handle(), listeners)?;
        let log = Arc::clone(&handle.shared.log);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("warden-proxy".into())
            .spawn(move || {
                let records = runtime.block_on(async move {
                    // Either a stop, or the BlockingProxy dropped without one: stop both ways.
                    let _ = stopped.await;
                    handle.stop().await
                });
                // A lookup still on the blocking pool (getaddrinfo cannot be cancelled) is left
                // to finish on its own rather than delay the stop.
                runtime.shutdown_timeout(Duration::from_millis(100));
                records
            })
            .map_err(ProxyError::Thread)?;
        Ok(BlockingProxy {
            stop: Some(stop),
            thread: Some(thread),
            log,
        })
    }
}

fn tcp_listener(
    what: &'static str,
    listener: std::net::TcpListener,
) -> Result<TcpListener, ProxyError> {
    TcpListener::from_std(listener).map_err(|source| ProxyError::Register { what, source })
}

/// A running proxy. Dropping it aborts everything too, without waiting.
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

impl ProxyHandle {
    /// The records so far.
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.shared.log.snapshot()
    }

    /// Aborts every task, waits until each is gone (its sockets closed, its record written),
    /// and returns the traffic log.
    pub async fn stop(self) -> Traffic {
        self.shared.log.begin_stop();
        let tasks = self.shared.take_tasks();
        if let Some(mut tasks) = tasks {
            tasks.shutdown().await;
        }
        let traffic = self.shared.log.take();
        tracing::info!(
            records = traffic.records.len(),
            dropped = traffic.dropped,
            "egress proxy stopped"
        );
        traffic
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        // Dropping the set aborts its tasks, which breaks the cycle through `Shared`.
        drop(self.shared.take_tasks());
    }
}

/// A proxy running on a thread of its own ([`Proxy::start_blocking`]). Dropping it stops it
/// too, discarding the log.
pub struct BlockingProxy {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Traffic>>,
    /// The proxy's log, marked stopping by the caller's thread at once: the proxy's thread
    /// may be busy answering, and its tasks look for the mark between questions.
    log: Arc<TrafficLog>,
}

impl BlockingProxy {
    /// Stops the proxy (see [`ProxyHandle::stop`]), joins its thread, and returns the log.
    pub fn stop(mut self) -> Traffic {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Traffic {
        self.log.begin_stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread
            .take()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .unwrap_or_default()
    }
}

impl Drop for BlockingProxy {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// What every task of one proxy shares.
pub(crate) struct Shared {
    pub(crate) decider: Arc<dyn Decider>,
    on_denial: Option<DenialObserver>,
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) dialer: Arc<dyn Dialer>,
    pub(crate) limits: ProxyLimits,
    pub(crate) budget: Arc<Budget>,
    /// The process's descriptors for all its proxies, if it bounds them.
    descriptors: Option<ProxyDescriptors>,
    /// A permit per connection of the program held ([`ProxyLimits::max_clients`]).
    clients: Arc<Semaphore>,
    pub(crate) pool: SyntheticPool,
    pub(crate) log: Arc<TrafficLog>,
    /// Every task of the proxy; `None` once stopped.
    tasks: Mutex<Option<JoinSet<()>>>,
    runtime: Handle,
}

impl Shared {
    /// Runs `task` on the proxy's runtime, tracked; does nothing once the proxy is stopped.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tasks) = tasks.as_mut() else { return };
        // Reap the finished ones, so that the set holds only live tasks.
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                if e.is_panic() {
                    tracing::error!(error = %e, "a proxy task panicked");
                }
            }
        }
        tasks.spawn_on(task, &self.runtime);
    }

    fn take_tasks(&self) -> Option<JoinSet<()>> {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The record of a new attempt to `dest`.
    pub(crate) fn recording(&self, protocol: Protocol, dest: &Destination) -> Recording {
        self.recording_to(
            protocol,
            dest.name().map(str::to_owned),
            dest.literal()
                .map(|addr| std::net::SocketAddr::new(addr, dest.port)),
            dest.port,
        )
    }

    /// The record of a new attempt to `host` or `addr` on `port`.
    pub(crate) fn recording_to(
        &self,
        protocol: Protocol,
        host: Option<String>,
        addr: Option<std::net::SocketAddr>,
        port: u16,
    ) -> Recording {
        Recording::new(Arc::clone(&self.log), protocol, host, addr, port)
            .observed_by(self.on_denial.clone())
    }
}

#[derive(Debug, Clone, Copy)]
enum Front {
    Http,
    Socks,
    Dns,
    Transparent,
}

/// Accepts connections and runs each in a task of its own, holding one of the execution's
/// client permits: without one, the next connection waits in the kernel's backlog, not in
/// warden's descriptors (a program that opened thousands of idle connections to the proxy
/// starved a server's other executions of descriptors). Each also holds its places in the
/// process's budget for all proxies, if there is one; without them it is refused at once, so
/// that the proxies of all executions together never take the descriptors the rest of the
/// process needs (hunt net N2).
async fn accept(shared: Arc<Shared>, listener: TcpListener, front: Front) {
    loop {
        let Ok(permit) = Arc::clone(&shared.clients).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let places = match &shared.descriptors {
                    None => None,
                    Some(descriptors) => match descriptors.take_connection() {
                        Some(places) => Some(places),
                        None => {
                            refuse_for_descriptors(&shared, stream, front);
                            continue;
                        }
                    },
                };
                let task_shared = Arc::clone(&shared);
                shared.spawn(async move {
                    serve(task_shared, stream, front).await;
                    drop(permit);
                    drop(places);
                });
            }
            Err(e) => {
                // EMFILE and the like: wait rather than spin on a listener that stays readable.
                tracing::warn!(error = %e, ?front, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Resets a connection accepted when the process's descriptors for proxies were all taken, and
/// logs it refused by `limits`: as the program addressed it when the interception redirected
/// it, else as the proxy's listener it reached, its request unread.
fn refuse_for_descriptors(shared: &Shared, stream: TcpStream, front: Front) {
    let protocol = match front {
        Front::Http => Protocol::Http,
        Front::Dns => Protocol::Dns,
        Front::Socks | Front::Transparent => Protocol::Tcp,
    };
    let addr = match front {
        Front::Transparent => transparent::original_destination(&stream).ok(),
        _ => None,
    };
    let port = addr
        .or_else(|| stream.local_addr().ok())
        .map_or(0, |addr| addr.port());
    let mut rec = shared.recording_to(protocol, None, addr, port);
    rec.limit(
        Cut::ProxyDescriptors,
        "descriptor limit: warden's descriptors for the proxies of all executions are in use"
            .to_owned(),
    );
    transparent::reset(stream);
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, front: Front) {
    match front {
        Front::Http => http::serve(&shared, stream).await,
        Front::Socks => socks::serve(&shared, stream).await,
        Front::Dns => dns::serve_tcp(&shared, stream).await,
        Front::Transparent => transparent::serve(&shared, stream).await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, OnceLock};
    use std::time::Instant;

    use super::*;
    use crate::decider::{Attempt, Verdict};

    /// Listeners on ephemeral ports of the host's loopback: enough for a resolver that is
    /// asked directly, with no namespace (and no root) needed.
    fn loopback_listeners() -> NetnsListeners {
        let tcp = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("non-blocking");
            listener
        };
        let dns_udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        dns_udp.set_nonblocking(true).expect("non-blocking");
        NetnsListeners {
            http: tcp(),
            socks: tcp(),
            dns_udp,
            dns_tcp: tcp(),
            transparent: tcp(),
        }
    }

    /// A question for the A record of `name`.
    fn question(id: u16, name: &str) -> Vec<u8> {
        let mut msg = id.to_be_bytes().to_vec();
        msg.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            msg.push(u8::try_from(label.len()).expect("a short label"));
            msg.extend_from_slice(label.as_bytes());
        }
        msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        msg
    }

    /// A policy that counts the resolver's questions and holds the first until the proxy is
    /// stopping, as a question under a large policy held the proxy's thread.
    #[derive(Default)]
    struct Held {
        log: OnceLock<Arc<TrafficLog>>,
        asked: AtomicUsize,
        first: Mutex<Option<mpsc::Sender<()>>>,
    }

    impl Decider for Held {
        fn decide(&self, _: &Attempt) -> Verdict {
            Verdict::deny("test", "nothing connects")
        }

        fn may_resolve(&self, _: &str) -> bool {
            if self.asked.fetch_add(1, Ordering::SeqCst) > 0 {
                return true;
            }
            let first = self.first.lock().expect("lock").take();
            if let Some(first) = first {
                let _ = first.send(());
            }
            // Bounded, so that a stop never marked fails the test rather than hangs it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.log.get().is_some_and(|log| log.is_stopping()) && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            true
        }
    }

    /// Hunt net 3: the proxy's stop waited while the resolver answered every question queued
    /// before it, each seconds of CPU under a large policy, long after the execution ended.
    /// The questions queued behind the one being answered at the stop are not answered.
    #[test]
    fn the_resolver_answers_no_question_queued_when_the_proxy_stops() {
        let listeners = loopback_listeners();
        let resolver = listeners.dns_udp.local_addr().expect("address");
        let held = Arc::new(Held::default());
        let (first, answering) = mpsc::channel();
        *held.first.lock().expect("lock") = Some(first);
        let proxy = Proxy::new(Arc::clone(&held) as _, ProxyLimits::default())
            .start_blocking(listeners)
            .expect("the proxy starts");
        held.log
            .set(Arc::clone(&proxy.log))
            .unwrap_or_else(|_| unreachable!("set once"));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        for id in 0..5 {
            client
                .send_to(&question(id, &format!("q{id}.test")), resolver)
                .expect("sent");
        }
        answering
            .recv_timeout(Duration::from_secs(10))
            .expect("the first question is being answered");
        let traffic = proxy.stop();
        assert_eq!(held.asked.load(Ordering::SeqCst), 1);
        let hosts: Vec<_> = traffic.records.iter().map(|r| r.host.as_deref()).collect();
        assert_eq!(hosts, [Some("q0.test")]);
    }
}
