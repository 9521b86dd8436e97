//! The network limits of one execution and their accounting: a token bucket per direction
//! shared by all its connections (through every proxy of the execution), connection caps, a
//! byte budget. Runs on the proxies' runtimes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::record::Cut;

/// The network limits of one execution. `None` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Bytes per second from the program, summed over its connections.
    pub bandwidth_up: Option<u64>,
    /// Bytes per second to the program, summed over its connections.
    pub bandwidth_down: Option<u64>,
    /// Bytes in both directions over the whole execution; the connection that crosses it is cut.
    pub total_bytes: Option<u64>,
    /// Connections open at once.
    pub max_connections: Option<u32>,
    /// Connections opened over the whole execution.
    pub total_connections: Option<u32>,
    /// Bound on resolving a name plus connecting to it.
    pub connect_timeout: Duration,
    /// A connection on which nothing moves for this long is cut; also bounds reading a
    /// request (the HTTP head, the SOCKS handshake, a TLS ClientHello).
    pub idle_timeout: Duration,
    /// Connections from the program the proxy holds at once, on all its listeners, before
    /// and after their request: each is a descriptor of warden's own process. Past it, the
    /// next waits in the kernel's backlog until one ends. At least `max_connections`.
    pub max_clients: u32,
}

/// The default of [`ProxyLimits::max_clients`]: far above what a program's own traffic needs,
/// far below what would starve a server running many executions of descriptors.
pub const DEFAULT_MAX_CLIENTS: u32 = 256;

impl ProxyLimits {
    /// The program's connections the proxy holds at once ([`ProxyLimits::max_clients`]).
    pub(crate) fn clients_at_once(&self) -> usize {
        let floor = self.max_connections.unwrap_or(0);
        self.max_clients.max(floor).max(1) as usize
    }
}

impl Default for ProxyLimits {
    fn default() -> Self {
        Self {
            bandwidth_up: None,
            bandwidth_down: None,
            total_bytes: None,
            max_connections: None,
            total_connections: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }
}

/// The accounting of one execution's [`ProxyLimits`], shared by the proxies of all its
/// sandboxes ([`Proxy::with_budget`](crate::Proxy::with_budget)): what one of them let through
/// (bytes, connections, bandwidth, room in the traffic log), the others cannot. Clones share
/// it.
#[derive(Debug, Clone)]
pub struct ExecutionBudget(pub(crate) Arc<Budget>);

impl ExecutionBudget {
    /// A budget of `limits` with nothing spent yet.
    pub fn new(limits: &ProxyLimits) -> Self {
        Self(Arc::new(Budget::new(limits)))
    }
}

/// The accounting of one execution's limits.
#[derive(Debug)]
pub(crate) struct Budget {
    up: Option<TokenBucket>,
    down: Option<TokenBucket>,
    remaining_bytes: Option<AtomicU64>,
    max_connections: Option<u32>,
    total_connections: Option<u32>,
    open: AtomicU32,
    opened: AtomicU32,
    /// The room of the execution's traffic logs (one per proxy, each sandbox's).
    pub(crate) log_room: Arc<crate::record::LogRoom>,
}

/// Holds one of the execution's connection slots until dropped.
#[derive(Debug)]
pub(crate) struct Permit(Arc<Budget>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Budget {
    pub(crate) fn new(limits: &ProxyLimits) -> Self {
        Self {
            up: limits.bandwidth_up.map(TokenBucket::new),
            down: limits.bandwidth_down.map(TokenBucket::new),
            remaining_bytes: limits.total_bytes.map(AtomicU64::new),
            max_connections: limits.max_connections,
            total_connections: limits.total_connections,
            open: AtomicU32::new(0),
            opened: AtomicU32::new(0),
            log_room: Arc::default(),
        }
    }

    /// A connection slot, or the cap that refuses one.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Permit, (Cut, String)> {
        // Spent: a new connection could move nothing; it is refused, not dialed and cut.
        if self
            .remaining_bytes
            .as_ref()
            .is_some_and(|left| left.load(Ordering::SeqCst) == 0)
        {
            return Err((
                Cut::TotalBytes,
                "byte limit: the execution's bytes in total are spent".to_owned(),
            ));
        }
        if !take_one(&self.open, self.max_connections) {
            let max = self.max_connections.unwrap_or_default();
            return Err((
                Cut::MaxConnections,
                format!("connection limit: at most {max} connections at once"),
            ));
        }
        let permit = Permit(Arc::clone(self));
        if !take_one(&self.opened, self.total_connections) {
            let total = self.total_connections.unwrap_or_default();
            return Err((
                Cut::TotalConnections,
                format!("connection limit: at most {total} connections in all"),
            ));
        }
        Ok(permit)
    }

    /// How many of `wanted` bytes the byte budget still lets through (taken from it).
    pub(crate) fn spend(&self, wanted: usize) -> usize {
        let Some(remaining) = &self.remaining_bytes else {
            return wanted;
        };
        let wanted_u64 = u64::try_from(wanted).unwrap_or(u64::MAX);
        let before = remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                Some(left.saturating_sub(wanted_u64))
            })
            .unwrap_or_else(|left| left);
        usize::try_from(before.min(wanted_u64)).unwrap_or(wanted)
    }

    /// Takes `bytes` from the direction's bucket; how long to wait before sending them.
    pub(crate) fn reserve(&self, upward: bool, bytes: usize) -> Duration {
        let bucket = if upward { &self.up } else { &self.down };
        bucket
            .as_ref()
            .map_or(Duration::ZERO, |bucket| bucket.reserve(bytes))
    }
}

/// Increments `counter` unless it reached `cap`.
fn take_one(counter: &AtomicU32, cap: Option<u32>) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match cap {
            Some(cap) if n >= cap => None,
            _ => Some(n.saturating_add(1)),
        })
        .is_ok()
}

/// A token bucket that lends: a reservation always succeeds and says how long to wait before
/// using it, so that every connection sharing the bucket waits its turn in the order it asked,
/// and the rate over all of them stays the configured one.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// The burst is a quarter second of traffic, at least 16 KiB (one read of the relay): enough
    /// that a slow start does not waste the allowance, small enough that the rate holds over a
    /// few seconds.
    fn new(bytes_per_second: u64) -> Self {
        // A rate of 0 would wait forever; 1 byte/s is the slowest meaningful limit.
        #[allow(clippy::cast_precision_loss)] // rates far below 2^52 bytes/s
        let rate = bytes_per_second.max(1) as f64;
        let burst = (rate / 4.0).max(16.0 * 1024.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `bytes` tokens and returns how long to wait before sending them.
    fn reserve(&self, bytes: usize) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        #[allow(clippy::cast_precision_loss)] // reads are at most a few KiB
        let wanted = bytes as f64;
        *tokens -= wanted;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_beyond_their_count_and_free_a_slot_on_drop() {
        let budget = Arc::new(Budget::new(&ProxyLimits {
            max_connections: Some(2),
            total_connections: Some(3),
            ..ProxyLimits::default()
        }));
        let a = budget.admit().expect("first");
        let _b = budget.admit().expect("second");
        assert_eq!(budget.admit().err().map(|e| e.0), Some(Cut::MaxConnections));
        drop(a);
        let _c = budget.admit().expect("a slot was freed");
        drop(_c);
        assert_eq!(
            budget.admit().err().map(|e| e.0),
            Some(Cut::TotalConnections)
        );
    }

    #[test]
    fn the_byte_budget_lets_through_what_is_left() {
        let budget = Budget::new(&ProxyLimits {
            total_bytes: Some(10),
            ..ProxyLimits::default()
        });
        let budget = Arc::new(budget);
        assert!(budget.admit().is_ok());
        assert_eq!(budget.spend(4), 4);
        assert_eq!(budget.spend(8), 6);
        assert_eq!(budget.spend(1), 0);
        // Bug hunt: once spent, a new connection was dialed, logged as allowed, and cut at once.
        assert_eq!(budget.admit().err().map(|e| e.0), Some(Cut::TotalBytes));
    }

    #[test]
    fn the_bucket_lends_beyond_its_burst_and_says_how_long_to_wait() {
        let bucket = TokenBucket::new(64 * 1024);
        assert_eq!(bucket.reserve(16 * 1024), Duration::ZERO);
        // The burst (16 KiB) is spent: the next 64 KiB are one second away, less what refilled
        // since the first call (microseconds, unless the machine stalls).
        let wait = bucket.reserve(64 * 1024);
        assert!(wait > Duration::from_millis(500), "{wait:?}");
    }
}
