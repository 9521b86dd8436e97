//! The traffic log of one execution: one [`ConnectionRecord`] per attempt (allowed or not) and
//! per DNS question, identical refusals folded into one, bounded in bytes. A connection's
//! record is written when its task ends, however it ends: normally, refused, cut by a limit,
//! or aborted by [`ProxyHandle::stop`](crate::ProxyHandle). Runs on the proxy's runtime.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
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
    /// The limit that refused or ended the connection, if one did (or the stop, also for a
    /// relay the program's end closed just before it: [`Cut::Stopped`]).
    pub cut_by: Option<Cut>,
    /// How many more refusals identical to this one (protocol, host, address, port, rule,
    /// reason, limit) were folded into it: the attempt was refused `1 + repeats` times, and
    /// its bytes are theirs summed.
    #[serde(default)]
    pub repeats: u64,
}

/// An execution's traffic log, as [`ProxyHandle::stop`](crate::ProxyHandle::stop) returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Every attempt kept, in the order they ended.
    pub records: Vec<ConnectionRecord>,
    /// Refused attempts neither kept nor folded into a kept one: the log held as many bytes
    /// of refusals as it keeps (2 MiB).
    pub dropped: u64,
}

impl Traffic {
    /// Adds `other`'s records after these, and its drops to these.
    pub fn append(&mut self, other: Traffic) {
        self.records.extend(other.records);
        self.dropped += other.dropped;
    }
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
    /// The proxy was stopped (the execution ended) while the connection was open, or less
    /// than a second after the program's side closed it with the server's still open (the
    /// program's end closes its sockets before warden learns of it).
    Stopped,
}

/// How many bytes of records of each kind a log keeps (an estimate of their memory: the
/// record and its strings), about as much again in a result's JSON and in the history.
/// Refused attempts past it are counted, not stored (a program looping on refused
/// connections or DNS questions with long names must not grow warden's memory, the result
/// and the history without bound: 210,000 questions made a 50 MB result); attempts let
/// through past it are refused, so that every attempt that reached anything is in the log.
pub(crate) const ALLOWED_BYTES: u64 = 4 * 1024 * 1024;

/// The same bound for refused attempts, smaller: identical ones fold into one record, and a
/// program makes as many as it likes; see [`ALLOWED_BYTES`].
pub(crate) const REFUSED_BYTES: u64 = 2 * 1024 * 1024;

/// What [`TrafficLog::admit`] takes for the rule and reason of a record not yet written
/// (the policy's reason, an error's words); the record's real size replaces it when it is.
const TEXT_ESTIMATE: u64 = 256;

/// The records of one proxy.
#[derive(Debug)]
pub(crate) struct TrafficLog {
    kept: Mutex<Kept>,
    /// Bytes of refused records kept.
    refused_bytes: AtomicU64,
    /// Bytes of records let through ([`TrafficLog::admit`]).
    admitted_bytes: AtomicU64,
    /// Refused attempts past the bound, not stored.
    dropped: AtomicU64,
    stopping: AtomicBool,
    allowed_capacity: u64,
    refused_capacity: u64,
    /// Keyed per log: a program cannot choose names that collide.
    hasher: RandomState,
}

/// The records, where each refusal kept is (by the hash of what identical ones share), and
/// which relays the program's side ended, when.
#[derive(Debug, Default)]
struct Kept {
    records: Vec<ConnectionRecord>,
    refusals: HashMap<u64, Vec<usize>>,
    program_closed: Vec<(usize, Instant)>,
}

/// How long before the proxy stops a relay the program's side ended counts as ended by the
/// program's end: a program's exit (or its kill at a limit) closes the sockets it left open
/// before warden learns of it and stops the proxy, a few milliseconds later, more on a
/// loaded machine. A program that closed a connection itself this little before its end is
/// counted so too.
const PROGRAM_END: Duration = Duration::from_secs(1);

impl Default for TrafficLog {
    fn default() -> Self {
        Self::with_capacity(ALLOWED_BYTES, REFUSED_BYTES)
    }
}

impl TrafficLog {
    fn with_capacity(allowed_capacity: u64, refused_capacity: u64) -> Self {
        Self {
            kept: Mutex::default(),
            refused_bytes: AtomicU64::new(0),
            admitted_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            allowed_capacity,
            refused_capacity,
            hasher: RandomState::new(),
        }
    }

    /// Takes room for an attempt to `host` about to be let through (a connection dialed, a
    /// name answered); `false` once [`ALLOWED_BYTES`] were taken: the attempt must be
    /// refused, since its record could not be kept.
    pub(crate) fn admit(&self, host: Option<&str>) -> bool {
        let estimate = admission(host.map_or(0, |h| h.len() as u64));
        let capacity = self.allowed_capacity;
        self.admitted_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + estimate <= capacity).then_some(n + estimate)
            })
            .is_ok()
    }

    /// Keeps `record`: always one `admitted` ([`TrafficLog::admit`]: it was let through,
    /// whatever refused it later); a refusal is folded into an identical one kept, else kept
    /// while the refusals kept are under their bound, else counted.
    pub(crate) fn push(&self, record: ConnectionRecord, admitted: bool) {
        let size = size_of(&record);
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if admitted {
            self.keep_admitted(&mut kept, record);
            return;
        }
        let key = self.hasher.hash_one(refusal_fields(&record));
        let Kept {
            records, refusals, ..
        } = &mut *kept;
        let same = refusals.get(&key).and_then(|at| {
            at.iter()
                .copied()
                .find(|&i| same_refusal(&records[i], &record))
        });
        if let Some(i) = same {
            let first = &mut records[i];
            first.repeats += 1;
            first.bytes_up += record.bytes_up;
            first.bytes_down += record.bytes_down;
            return;
        }
        let room = self
            .refused_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + size <= self.refused_capacity).then_some(n + size)
            })
            .is_ok();
        if room {
            refusals.entry(key).or_default().push(records.len());
            records.push(record);
        } else if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                capacity = self.refused_capacity,
                "traffic log full of refusals; further refusals are counted, not kept"
            );
        }
    }

    /// Keeps `record` as [`TrafficLog::push`] does; `program_closed`: when the program's side
    /// ended the relay, the server's still open ([`TrafficLog::take`] decides whether the
    /// program's end closed it).
    pub(crate) fn push_ended(
        &self,
        record: ConnectionRecord,
        admitted: bool,
        program_closed: Option<Instant>,
    ) {
        match program_closed {
            Some(at) if admitted => {
                let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
                let index = kept.records.len();
                kept.program_closed.push((index, at));
                self.keep_admitted(&mut kept, record);
            }
            _ => self.push(record, admitted),
        }
    }

    /// Keeps a record let through: its real size replaces what its admission took; it is
    /// kept whatever it is, and later admissions see it.
    fn keep_admitted(&self, kept: &mut Kept, record: ConnectionRecord) {
        let size = size_of(&record);
        let took = admission(host_len(&record));
        let _ = self
            .admitted_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some((n + size).saturating_sub(took))
            });
        kept.records.push(record);
    }

    pub(crate) fn snapshot(&self) -> Vec<ConnectionRecord> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .records
            .clone()
    }

    /// Marks the log as stopping: a connection dropped from now on was cut by the stop.
    pub(crate) fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The records and the count of those dropped, leaving the log empty. Taken at the stop,
    /// a relay the program's side ended within [`PROGRAM_END`] before was cut by the stop:
    /// it was open when the program ended.
    pub(crate) fn take(&self) -> Traffic {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.refusals.clear();
        let closed = std::mem::take(&mut kept.program_closed);
        if self.stopping.load(Ordering::SeqCst) {
            for (index, at) in closed {
                let record = kept.records.get_mut(index).filter(|r| r.cut_by.is_none());
                if let Some(record) = record.filter(|_| at.elapsed() <= PROGRAM_END) {
                    record.cut_by = Some(Cut::Stopped);
                }
            }
        }
        Traffic {
            records: std::mem::take(&mut kept.records),
            dropped: self.dropped.swap(0, Ordering::AcqRel),
        }
    }
}

/// A record's size without its strings.
const FIXED_SIZE: u64 = std::mem::size_of::<ConnectionRecord>() as u64;

/// What [`TrafficLog::admit`] takes for a record whose host name is `host_len` bytes long.
fn admission(host_len: u64) -> u64 {
    FIXED_SIZE + host_len + TEXT_ESTIMATE
}

fn host_len(record: &ConnectionRecord) -> u64 {
    record.host.as_ref().map_or(0, |h| h.len() as u64)
}

/// What a record holds in memory: itself and its strings.
fn size_of(record: &ConnectionRecord) -> u64 {
    FIXED_SIZE + host_len(record) + (record.rule.len() + record.reason.len()) as u64
}

/// What identical refusals share.
type RefusalFields<'a> = (
    Protocol,
    &'a Option<String>,
    Option<SocketAddr>,
    u16,
    &'a str,
    &'a str,
    Option<Cut>,
);

fn refusal_fields(r: &ConnectionRecord) -> RefusalFields<'_> {
    (
        r.protocol, &r.host, r.addr, r.port, &r.rule, &r.reason, r.cut_by,
    )
}

fn same_refusal(a: &ConnectionRecord, b: &ConnectionRecord) -> bool {
    !a.allowed && refusal_fields(a) == refusal_fields(b)
}

/// Bytes moved by one connection and when they last moved, shared by its two directions.
#[derive(Debug)]
pub(crate) struct Meter {
    origin: Instant,
    up: AtomicU64,
    down: AtomicU64,
    last_activity_ms: AtomicU64,
    tls: AtomicBool,
    /// The server's side sent its end of file.
    upstream_ended: AtomicBool,
    /// The program's side ended (closed or reset) while the server's was still open.
    client_first: AtomicBool,
}

impl Meter {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(0),
            tls: AtomicBool::new(false),
            upstream_ended: AtomicBool::new(false),
            client_first: AtomicBool::new(false),
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

    /// Notes that the server's side sent its end of file.
    pub(crate) fn upstream_ended(&self) {
        self.upstream_ended.store(true, Ordering::Relaxed);
    }

    /// Notes that the program's side ended; it did so first unless the server's had.
    pub(crate) fn client_ended(&self) {
        if !self.upstream_ended.load(Ordering::Relaxed) {
            self.client_first.store(true, Ordering::Relaxed);
        }
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
                repeats: 0,
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

    /// Takes the log's room for an attempt about to be let through; `false` when the log is
    /// full of them, and the attempt must be refused ([`TrafficLog::admit`]).
    pub(crate) fn admit(&mut self) -> bool {
        self.admitted = self.log.admit(self.record.host.as_deref());
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
        // Ended by the program's side while the server's was open, and nothing else cut it:
        // if the proxy stops soon, the program's end closed it (`TrafficLog::take`).
        let program_closed = (record.allowed
            && record.cut_by.is_none()
            && self.meter.client_first.load(Ordering::Relaxed))
        .then(Instant::now);
        self.log.push_ended(record, self.admitted, program_closed);
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
        let records = log.take().records;
        assert_eq!(records[0].cut_by, Some(Cut::Stopped));
        assert_eq!(records[0].bytes_up, 5);
        assert_eq!(records[1].cut_by, None);
        assert!(!records[1].allowed);
    }

    fn refuse(log: &Arc<TrafficLog>, host: &str, port: u16) {
        let mut rec = Recording::new(log.clone(), Protocol::Dns, Some(host.into()), None, port);
        rec.meter.add(true, 40);
        rec.verdict(&Verdict::deny(
            "resolver",
            "no rule of the policy can allow this name",
        ));
    }

    /// Bug hunt: 210,000 DNS questions for distinct 253-byte names in 2.5 s made a 50 MB
    /// result, as much history, and 180 MB more of the server's memory: the log kept 100,000
    /// records of each kind whatever their size. Now it keeps a bounded number of bytes,
    /// folds identical refusals into one record with a count, and counts the rest.
    #[test]
    fn refusals_are_folded_then_bounded_by_bytes_and_the_rest_counted() {
        let one = size_of(&ConnectionRecord {
            started: SystemTime::UNIX_EPOCH,
            protocol: Protocol::Dns,
            host: Some("x".repeat(200)),
            addr: None,
            port: 53,
            allowed: false,
            rule: "resolver".into(),
            reason: "no rule of the policy can allow this name".into(),
            bytes_up: 0,
            bytes_down: 0,
            duration: Duration::ZERO,
            cut_by: None,
            repeats: 0,
        });
        let log = Arc::new(TrafficLog::with_capacity(ALLOWED_BYTES, 3 * one));
        for _ in 0..1000 {
            refuse(&log, &"a".repeat(200), 53);
        }
        for n in 0..10 {
            refuse(&log, &format!("{n}{}", "b".repeat(199)), 53);
        }
        refuse(&log, &"a".repeat(200), 53);
        let traffic = log.take();
        assert_eq!(traffic.records.len(), 3, "{:?}", traffic.records);
        assert_eq!(
            traffic.records[0].repeats, 1000,
            "1001 identical refusals, one record"
        );
        assert_eq!(traffic.records[0].bytes_up, 1001 * 40);
        assert_eq!(traffic.records[1].repeats, 0);
        assert_eq!(traffic.dropped, 8, "10 distinct names, room for 2");
        assert_eq!(log.take(), Traffic::default(), "taken");
    }

    /// Bug hunt: past the log's capacity, connections were let through and logged nowhere (a
    /// program hid its traffic behind 100,000 refused DNS questions). Now what is let through
    /// is always kept, and nothing more is let through once the log's room for it is taken.
    #[test]
    fn nothing_is_let_through_that_the_log_cannot_keep() {
        let room = FIXED_SIZE + TEXT_ESTIMATE;
        let log = Arc::new(TrafficLog::with_capacity(3 * room, FIXED_SIZE + 3));
        for port in 0..5 {
            let mut refused = Recording::new(log.clone(), Protocol::Tcp, None, None, port);
            refused.verdict(&Verdict::deny("r", "no"));
        }
        assert_eq!(
            log.snapshot().len(),
            1,
            "refusals past the bound are counted"
        );
        assert_eq!(log.dropped.load(Ordering::Relaxed), 4);
        let mut open = Vec::new();
        for port in 0..5 {
            let mut rec = Recording::new(log.clone(), Protocol::Tcp, None, None, 100 + port);
            if rec.admit() {
                rec.verdict(&Verdict::allow("r", "yes"));
                open.push(rec);
            } else {
                rec.verdict(&Verdict::deny("limits", crate::egress::LOG_FULL));
            }
        }
        assert_eq!(open.len(), 3, "nothing past the bound is let through");
        drop(open);
        // Written, each took its real size, smaller than its admission's: room again.
        let mut rec = Recording::new(log.clone(), Protocol::Tcp, None, None, 200);
        assert!(rec.admit());
        rec.verdict(&Verdict::allow("r", "yes"));
        drop(rec);
        let traffic = log.take();
        assert_eq!(
            traffic.records.iter().filter(|r| r.allowed).count(),
            4,
            "{traffic:?}"
        );
        assert_eq!(traffic.dropped, 6, "the two refused for want of room too");
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
        let record = log.take().records.remove(0);
        let json = serde_json::to_string(&record).expect("serializes");
        assert!(json.contains("\"cut_by\":\"max_connections\""), "{json}");
        assert!(json.contains("\"protocol\":\"https\""), "{json}");
        let back: ConnectionRecord = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, record);
    }
}
