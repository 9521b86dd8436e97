//! The traffic log of one execution: one [`ConnectionRecord`] per attempt (allowed or not) and
//! per DNS question. A connection's record is written when its task ends, however it ends:
//! normally, refused, cut by a limit, or aborted by [`ProxyHandle::stop`](crate::ProxyHandle).
//! Runs on the proxy's runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::decider::{Protocol, Verdict};

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// When the attempt was made.
    pub started: SystemTime,
    /// How the program asked (https once a TLS ClientHello was seen).
    pub protocol: Protocol,
    /// The host name, when known.
    pub host: Option<String>,
    /// The address dialed (or, refused, the address asked for); for a DNS question, none.
    pub addr: Option<SocketAddr>,
    /// The destination port (53 for a DNS question).
    pub port: u16,
    /// Whether the policy and the limits let the attempt through.
    pub allowed: bool,
    /// The rule that decided (`limits` for a connection cap, `tls` for a server name check).
    pub rule: String,
    /// Why; for an allowed attempt that failed later, what failed.
    pub reason: String,
    /// Bytes from the program to the destination.
    pub bytes_up: u64,
    /// Bytes from the destination to the program.
    pub bytes_down: u64,
    /// From the attempt to the close.
    pub duration: Duration,
    /// The limit that refused or ended the connection, if one did.
    pub cut_by: Option<Cut>,
}

/// What ended or refused a connection other than the two ends closing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    /// `max_connections` were already open.
    MaxConnections,
    /// `total_connections` had been opened.
    TotalConnections,
    /// The execution's `total_bytes` were spent.
    TotalBytes,
    /// Nothing moved for `idle_timeout`.
    IdleTimeout,
    /// The proxy was stopped (the execution ended) while the connection was open.
    Stopped,
}

/// How many attempts of each kind a log keeps: those refused (past it, further refusals are
/// counted, not stored: a program looping on refused connections must not grow warden's memory
/// without bound), and those let through (past it, nothing more is let through, so that every
/// attempt that reached anything is in the log).
pub(crate) const CAPACITY: usize = 100_000;

/// The records of one execution.
#[derive(Debug)]
pub(crate) struct TrafficLog {
    records: Mutex<Vec<ConnectionRecord>>,
    /// Refused attempts stored.
    refused: AtomicU64,
    /// Attempts let through ([`TrafficLog::admit`]).
    admitted: AtomicU64,
    /// Refused attempts past the capacity, not stored.
    dropped: AtomicU64,
    stopping: AtomicBool,
    capacity: u64,
}

impl Default for TrafficLog {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl TrafficLog {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Mutex::default(),
            refused: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            capacity: capacity as u64,
        }
    }

    /// Takes a place for an attempt about to be let through (a connection dialed, a name
    /// answered); `false` once [`CAPACITY`] were: the attempt must be refused, since its
    /// record could not be kept.
    pub(crate) fn admit(&self) -> bool {
        let capacity = self.capacity;
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Keeps `record`: always one `admitted` ([`TrafficLog::admit`]: it was let through,
    /// whatever refused it later), another while fewer than the capacity were kept.
    pub(crate) fn push(&self, record: ConnectionRecord, admitted: bool) {
        let keep = admitted
            || self
                .refused
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.capacity).then_some(n + 1)
                })
                .is_ok();
        if keep {
            self.records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record);
        } else if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                capacity = self.capacity,
                "traffic log full of refusals; further refusals are counted, not kept"
            );
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<ConnectionRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the log as stopping: a connection dropped from now on was cut by the stop.
    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(crate) fn take(&self) -> Vec<ConnectionRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Bytes moved by one connection and when they last moved, shared by its two directions.
#[derive(Debug)]
pub(crate) struct Meter {
    origin: Instant,
    up: AtomicU64,
    down: AtomicU64,
    last_activity_ms: AtomicU64,
    tls: AtomicBool,
}

impl Meter {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(0),
            tls: AtomicBool::new(false),
        }
    }

    pub(crate) fn add(&self, upward: bool, bytes: u64) {
        let counter = if upward { &self.up } else { &self.down };
        counter.fetch_add(bytes, Ordering::Relaxed);
        self.touch();
    }

    /// Notes activity (bytes read, even those not yet written).
    pub(crate) fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        // `max`: a hold-off already in the future stays.
        self.last_activity_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts the connection as active until `wait` from now (it waits for its bandwidth).
    pub(crate) fn hold_off(&self, wait: Duration) {
        let until = self.origin.elapsed().saturating_add(wait);
        let until = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.fetch_max(until, Ordering::Relaxed);
    }

    /// Notes that the connection carries TLS: its record says https.
    pub(crate) fn saw_tls(&self) {
        self.tls.store(true, Ordering::Relaxed);
    }

    /// How long nothing has moved.
    pub(crate) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// Told of each attempt a verdict refuses, as it is refused, with its record so far
/// ([`Proxy::on_denial`](crate::Proxy::on_denial)). Called on the proxy's runtime: it must not
/// block.
pub type DenialObserver = Arc<dyn Fn(&ConnectionRecord) + Send + Sync>;

/// The record of one connection while its task runs; written to the log when dropped.
pub(crate) struct Recording {
    log: Arc<TrafficLog>,
    record: ConnectionRecord,
    pub(crate) meter: Meter,
    /// Whether the connection's outcome is known (refused, or relayed to its end); one dropped
    /// without it during a stop was cut by the stop.
    concluded: bool,
    /// Whether the log took a place for it ([`Recording::admit`]): it is kept whatever else.
    admitted: bool,
    on_denial: Option<DenialObserver>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("record", &self.record)
            .field("concluded", &self.concluded)
            .field("admitted", &self.admitted)
            .finish_non_exhaustive()
    }
}

impl Recording {
    pub(crate) fn new(
        log: Arc<TrafficLog>,
        protocol: Protocol,
        host: Option<String>,
        addr: Option<SocketAddr>,
        port: u16,
    ) -> Self {
        Self {
            log,
            record: ConnectionRecord {
                started: SystemTime::now(),
                protocol,
                host,
                addr,
                port,
                allowed: false,
                rule: String::new(),
                reason: String::new(),
                bytes_up: 0,
                bytes_down: 0,
                duration: Duration::ZERO,
                cut_by: None,
            },
            meter: Meter::new(),
            concluded: false,
            admitted: false,
            on_denial: None,
        }
    }

    /// Tells `observer` of the verdict that refuses the attempt, if one does.
    pub(crate) fn observed_by(mut self, observer: Option<DenialObserver>) -> Self {
        self.on_denial = observer;
        self
    }

    /// Takes the log's place for an attempt about to be let through; `false` when the log is
    /// full of them, and the attempt must be refused ([`TrafficLog::admit`]).
    pub(crate) fn admit(&mut self) -> bool {
        self.admitted = self.log.admit();
        self.admitted
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.record.protocol
    }

    pub(crate) fn set_addr(&mut self, addr: SocketAddr) {
        self.record.addr = Some(addr);
    }

    /// Records the verdict applied to the attempt (the last one wins); a refusal is told to
    /// the observer, if any.
    pub(crate) fn verdict(&mut self, verdict: &Verdict) {
        self.record.allowed = verdict.allow;
        self.record.rule.clone_from(&verdict.rule);
        self.record.reason.clone_from(&verdict.reason);
        if !verdict.allow {
            self.concluded = true;
            if let Some(observer) = &self.on_denial {
                observer(&self.record);
            }
        }
    }

    /// Records a refusal by a limit.
    pub(crate) fn limit(&mut self, cut: Cut, reason: String) {
        self.record.allowed = false;
        self.record.rule = "limits".to_owned();
        self.record.reason = reason;
        self.record.cut_by = Some(cut);
        self.concluded = true;
    }

    /// Records why an allowed attempt failed (resolution, connect).
    pub(crate) fn failed(&mut self, reason: String) {
        self.record.reason = reason;
        self.concluded = true;
    }

    /// Records the end of the relay.
    pub(crate) fn ended(&mut self, cut: Option<Cut>) {
        self.record.cut_by = cut;
        self.concluded = true;
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let mut record = self.record.clone();
        record.bytes_up = self.meter.up.load(Ordering::Relaxed);
        record.bytes_down = self.meter.down.load(Ordering::Relaxed);
        record.duration = self.meter.origin.elapsed();
        if self.meter.tls.load(Ordering::Relaxed) {
            record.protocol = Protocol::Https;
        }
        if !self.concluded && self.log.stopping.load(Ordering::SeqCst) {
            record.cut_by = Some(Cut::Stopped);
        }
        self.log.push(record, self.admitted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_dropped_during_a_stop_is_cut_by_it() {
        let log = Arc::new(TrafficLog::default());
        let open = Recording::new(log.clone(), Protocol::Tcp, None, None, 80);
        open.meter.add(true, 5);
        let mut refused = Recording::new(log.clone(), Protocol::Tcp, None, None, 81);
        refused.verdict(&Verdict::deny("r", "no"));
        log.begin_stop();
        drop(open);
        drop(refused);
        let records = log.take();
        assert_eq!(records[0].cut_by, Some(Cut::Stopped));
        assert_eq!(records[0].bytes_up, 5);
        assert_eq!(records[1].cut_by, None);
        assert!(!records[1].allowed);
    }

    /// Bug hunt: past the log's capacity, connections were let through and logged nowhere (a
    /// program hid its traffic behind 100,000 refused DNS questions). Now what is let through
    /// is always kept, and nothing more is let through once the capacity was.
    #[test]
    fn nothing_is_let_through_that_the_log_cannot_keep() {
        let log = Arc::new(TrafficLog::with_capacity(3));
        for port in 0..5 {
            let mut refused = Recording::new(log.clone(), Protocol::Tcp, None, None, port);
            refused.verdict(&Verdict::deny("r", "no"));
        }
        assert_eq!(
            log.snapshot().len(),
            3,
            "refusals past the capacity are counted"
        );
        assert_eq!(log.dropped.load(Ordering::Relaxed), 2);
        let mut let_through = 0;
        for port in 0..5 {
            let mut rec = Recording::new(log.clone(), Protocol::Tcp, None, None, 100 + port);
            if rec.admit() {
                rec.verdict(&Verdict::allow("r", "yes"));
                let_through += 1;
            }
        }
        assert_eq!(let_through, 3, "nothing past the capacity is let through");
        let records = log.take();
        assert_eq!(
            records.iter().filter(|r| r.allowed).count(),
            3,
            "{records:?}"
        );
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let log = Arc::new(TrafficLog::default());
        let mut rec = Recording::new(
            log.clone(),
            Protocol::Https,
            Some("example.test".into()),
            Some("127.0.0.1:443".parse().expect("address")),
            443,
        );
        rec.limit(Cut::MaxConnections, "connection limit".into());
        drop(rec);
        let record = log.take().remove(0);
        let json = serde_json::to_string(&record).expect("serializes");
        assert!(json.contains("\"cut_by\":\"max_connections\""), "{json}");
        assert!(json.contains("\"protocol\":\"https\""), "{json}");
        let back: ConnectionRecord = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, record);
    }
}
