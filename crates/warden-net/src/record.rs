//! The traffic log of one execution: one [`ConnectionRecord`] per attempt (allowed or not) and
//! per DNS question, identical refusals folded into one, bounded in bytes. A connection's
//! record is written when its task ends, however it ends: normally, refused, cut by a limit,
//! or aborted by [`ProxyHandle::stop`](crate::ProxyHandle). Runs on the proxy's runtime.

mod log;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::decider::{Protocol, Verdict};
pub(crate) use log::{LogRoom, TrafficLog};

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
    /// of refusals as it keeps (2 MiB, `log::REFUSED_BYTES`).
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
    /// The descriptors warden's process gives all its proxies were in use: the connection
    /// was reset as it was accepted (a server's budget, docs/server.md).
    ProxyDescriptors,
    /// The proxy was stopped (the execution ended) while the connection was open, or less
    /// than a second after the program's side closed it with the server's still open (the
    /// program's end closes its sockets before warden learns of it).
    Stopped,
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
    /// The program's side ended (reset, or gone when written to) while the server's was still
    /// open.
    client_first: AtomicBool,
    /// The bytes sent down when the program's side sent its end of file, the server's still
    /// open (`u64::MAX`: it did not). A half-close: the program may still read the reply.
    client_eof_down: AtomicU64,
    /// The program's side, after its end of file, reset the connection when bytes reached it:
    /// it was closed, not half-closed.
    client_gone: AtomicBool,
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
            client_eof_down: AtomicU64::new(u64::MAX),
            client_gone: AtomicBool::new(false),
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

    /// Notes that the program's side ended (a reset, or a write to it failed); it did so first
    /// unless the server's had.
    pub(crate) fn client_ended(&self) {
        if !self.upstream_ended.load(Ordering::Relaxed) {
            self.client_first.store(true, Ordering::Relaxed);
        }
    }

    /// Notes that the program's side sent its end of file: a close, or a half-close after
    /// which it reads the reply (`shutdown(SHUT_WR)`).
    pub(crate) fn client_eof(&self) {
        if !self.upstream_ended.load(Ordering::Relaxed) {
            let down = self.down.load(Ordering::Relaxed);
            let _ = self.client_eof_down.compare_exchange(
                u64::MAX,
                down,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Whether bytes were sent to the program's side after its end of file, the server's
    /// still open then.
    pub(crate) fn sent_after_client_eof(&self) -> bool {
        let eof_down = self.client_eof_down.load(Ordering::Relaxed);
        eof_down != u64::MAX && self.down.load(Ordering::Relaxed) > eof_down
    }

    /// Notes that the program's side, after its end of file, was found closed (it reset the
    /// connection when bytes reached it).
    pub(crate) fn client_gone(&self) {
        self.client_gone.store(true, Ordering::Relaxed);
    }

    /// Whether the program's side ended the connection while the server's was open: it was
    /// reset or gone, or it sent its end of file and was then sent nothing, or found closed
    /// when it was. A program that half-closed and was then sent the reply without a reset
    /// was there to read it: the connection ended when the server closed it (hunt netlog 2:
    /// logged `stopped`).
    fn program_ended_first(&self) -> bool {
        let eof_down = self.client_eof_down.load(Ordering::Relaxed);
        self.client_first.load(Ordering::Relaxed)
            || (eof_down != u64::MAX
                && (!self.sent_after_client_eof() || self.client_gone.load(Ordering::Relaxed)))
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

    /// Records a refusal by a limit. Nothing was let through: the room the log took for the
    /// attempt ([`Recording::admit`]) is given back, and the record is kept as a refusal,
    /// folded into an identical one (a program looping on a full connection cap makes one
    /// record, not one per attempt, and takes no room from the attempts let through).
    pub(crate) fn limit(&mut self, cut: Cut, reason: String) {
        if std::mem::take(&mut self.admitted) {
            self.log.release(self.record.host.as_deref());
        }
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
        if !self.concluded && self.log.is_stopping() {
            record.cut_by = Some(Cut::Stopped);
        }
        // Ended by the program's side while the server's was open, and nothing else cut it:
        // if the proxy stops soon, the program's end closed it (`TrafficLog::take`).
        let program_closed =
            (record.allowed && record.cut_by.is_none() && self.meter.program_ended_first())
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
