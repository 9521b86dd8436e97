//! The bound and the folding of one proxy's traffic log: a record of every attempt let
//! through is kept (and none is let through that could not be), refusals identical to one kept
//! are counted on it, and the rest are kept while there is room, then counted. Runs on the
//! proxy's runtime.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{ConnectionRecord, Cut, Traffic};
use crate::decider::Protocol;

/// How many bytes of records of each kind a log keeps (an estimate of their memory: the
/// record and its strings), about as much again in a result's JSON and in the history.
/// Refused attempts past it are counted, not stored (a program looping on refused
/// connections or DNS questions with long names must not grow warden's memory, the result
/// and the history without bound: 210,000 questions made a 50 MB result); attempts let
/// through past it are refused, so that every attempt that reached anything is in the log.
const ALLOWED_BYTES: u64 = 4 * 1024 * 1024;

/// The same bound for refused attempts, smaller: identical ones fold into one record, and a
/// program makes as many as it likes; see [`ALLOWED_BYTES`].
const REFUSED_BYTES: u64 = 2 * 1024 * 1024;

/// What [`TrafficLog::admit`] takes for the rule and reason of a record not yet written
/// (the policy's reason, an error's words); the record's real size replaces it when it is.
const TEXT_ESTIMATE: u64 = 256;

/// The room of one execution's traffic logs, shared by the proxies of all its sandboxes (a
/// fresh sandbox per test case, the compile stage's) as their limits are
/// ([`crate::ExecutionBudget`]): the bound is the execution's, not each sandbox's.
#[derive(Debug)]
pub(crate) struct LogRoom {
    /// Bytes of refused records kept.
    refused_bytes: AtomicU64,
    /// Bytes of records let through ([`TrafficLog::admit`]).
    admitted_bytes: AtomicU64,
    allowed_capacity: u64,
    refused_capacity: u64,
}

impl Default for LogRoom {
    fn default() -> Self {
        Self::with_capacity(ALLOWED_BYTES, REFUSED_BYTES)
    }
}

impl LogRoom {
    fn with_capacity(allowed_capacity: u64, refused_capacity: u64) -> Self {
        Self {
            refused_bytes: AtomicU64::new(0),
            admitted_bytes: AtomicU64::new(0),
            allowed_capacity,
            refused_capacity,
        }
    }
}

/// The records of one proxy.
#[derive(Debug)]
pub(crate) struct TrafficLog {
    kept: Mutex<Kept>,
    /// Where the records' bytes are counted: the execution's.
    room: Arc<LogRoom>,
    /// Refused attempts past the bound, not stored.
    dropped: AtomicU64,
    stopping: AtomicBool,
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
        Self::in_room(Arc::default())
    }
}

impl TrafficLog {
    /// A log whose records take their bytes from `room`, which other logs may share.
    pub(crate) fn in_room(room: Arc<LogRoom>) -> Self {
        Self {
            kept: Mutex::default(),
            room,
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            hasher: RandomState::new(),
        }
    }

    #[cfg(test)]
    fn with_capacity(allowed_capacity: u64, refused_capacity: u64) -> Self {
        Self::in_room(Arc::new(LogRoom::with_capacity(
            allowed_capacity,
            refused_capacity,
        )))
    }

    /// Takes room for an attempt to `host` about to be let through (a connection dialed, a
    /// name answered); `false` once [`ALLOWED_BYTES`] were taken: the attempt must be
    /// refused, since its record could not be kept.
    pub(crate) fn admit(&self, host: Option<&str>) -> bool {
        let estimate = admission(host.map_or(0, |h| h.len() as u64));
        let capacity = self.room.allowed_capacity;
        self.room
            .admitted_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + estimate <= capacity).then_some(n + estimate)
            })
            .is_ok()
    }

    /// Gives back what [`TrafficLog::admit`] took for an attempt to `host` that was refused
    /// after all (by a connection cap), before its record was kept.
    pub(crate) fn release(&self, host: Option<&str>) {
        let took = admission(host.map_or(0, |h| h.len() as u64));
        let _ = self
            .room
            .admitted_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(took))
            });
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
            .room
            .refused_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + size <= self.room.refused_capacity).then_some(n + size)
            })
            .is_ok();
        if room {
            refusals.entry(key).or_default().push(records.len());
            records.push(record);
        } else if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            // What a program does is no fault of warden's: the run's result says it
            // (`network: the traffic log was full ...`), so this is not a warning on the
            // CLI's stderr, beside the program's own.
            tracing::debug!(
                capacity = self.room.refused_capacity,
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
            .room
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

    /// Whether [`TrafficLog::begin_stop`] was called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use super::*;
    use crate::decider::Verdict;
    use crate::record::Recording;

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

    /// The logs of one execution's proxies (a sandbox per test case) take from one room: what
    /// one kept, another cannot, so the bound is the execution's (it was each sandbox's, and
    /// test cases in fresh sandboxes multiplied it).
    #[test]
    fn logs_sharing_a_room_share_its_bound() {
        let room = Arc::new(LogRoom::with_capacity(
            2 * (FIXED_SIZE + TEXT_ESTIMATE),
            REFUSED_BYTES,
        ));
        let (first, second) = (
            TrafficLog::in_room(Arc::clone(&room)),
            TrafficLog::in_room(Arc::clone(&room)),
        );
        assert!(first.admit(None) && second.admit(None), "room for two");
        assert!(!first.admit(None) && !second.admit(None), "for none more");
        let alone = TrafficLog::in_room(Arc::default());
        assert!(alone.admit(None), "another execution's room is its own");
    }

    /// Bug hunt: with `max_connections = 1`, 20,000 tunnels past the cap made 18,975
    /// records of the same refusal, none folded (5 MB of result), and took the log's room
    /// for attempts let through, so the last ones were refused as if the log were full: the
    /// proxy takes that room before the cap is asked, and a refusal that held it was kept as
    /// let through. A refusal by a limit gives the room back and folds like any refusal.
    #[test]
    fn a_refusal_by_a_limit_is_folded_and_takes_no_room_of_those_let_through() {
        let log = Arc::new(TrafficLog::with_capacity(
            FIXED_SIZE + TEXT_ESTIMATE,
            REFUSED_BYTES,
        ));
        for _ in 0..3 {
            let mut rec = Recording::new(log.clone(), Protocol::Tcp, None, None, 80);
            assert!(rec.admit(), "the room for one attempt let through is free");
            rec.limit(Cut::MaxConnections, "connection limit".into());
        }
        let mut open = Recording::new(log.clone(), Protocol::Tcp, None, None, 81);
        assert!(open.admit(), "still free");
        open.verdict(&Verdict::allow("r", "yes"));
        drop(open);
        let traffic = log.take();
        assert_eq!(traffic.records.len(), 2, "{:?}", traffic.records);
        assert_eq!(traffic.records[0].repeats, 2, "three refusals, one record");
        assert_eq!(traffic.records[0].cut_by, Some(Cut::MaxConnections));
        assert!(traffic.records[1].allowed, "the one let through is kept");
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
}
