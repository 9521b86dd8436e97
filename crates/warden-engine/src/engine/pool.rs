//! The warm pool: native sandboxes built ahead of the requests that will use them, so that a
//! run skips the sandbox's setup (the helper, the namespaces, the mounts). Sandboxes are kept
//! per spec (the language's mounts and the limits' ceilings decide it), up to `size` each,
//! built by a background thread after each use of a fresh one.
//!
//! **Bounds.** Fresh sandboxes are kept for at most [`MAX_FRESH_PER_SIZE`] × `size` specs
//! beside the languages the operator named (`Pool::prewarm`), and those of a spec no run asked
//! for in [`IDLE`] are destroyed: every distinct set of limits is a spec of its own, and a
//! client varying them by a millisecond made the pool keep a sandbox (processes, cgroups,
//! mounts) for each, for ever.
//!
//! **Reuse**, when the operator allows it (`reuse` above 1; a server's default is 1, so that a
//! pooled sandbox is, from inside, a fresh one). After a run, the pool's reaper thread resets
//! the sandbox (`LiveSandbox::reset`:
//! a new empty workspace and `/tmp`, a new IPC namespace, every process of the run already
//! gone) and keeps it for the next run of the same spec *and the same owner* (the API token's
//! name; one owner when the server has no tokens), up to `reuse` runs per sandbox. What a reset
//! does not renew (the pid counter, loopback ports in `TIME_WAIT`, the init's counters of the
//! processes it reaped in `/proc/1/stat`: the earlier runs' cpu time) is then visible only to the
//! owner's own later runs, never to another tenant's (docs/sandbox-setup.md, Reset). A reset
//! sandbox unused for [`IDLE`] is destroyed. With `reuse` 1, every sandbox runs once.
//!
//! **Memory pressure.** While the host is short of memory ([`MemoryPressure`]: the kernel's
//! pressure stall information, else the share of available memory), the pool shrinks before
//! any run is refused: the reaper destroys every ready sandbox (fresh and reset), used ones are
//! destroyed rather than kept, and the refill thread builds none; runs then build their own.
//!
//! Used sandboxes that are not kept are destroyed on the reaper thread too, off the request's
//! path. Dropping the pool waits for its threads, so nothing outlives the engine.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use warden_sandbox::{Backend, LiveSandbox, Sandbox, SandboxSpec};

/// How long a reset sandbox waits for its owner's next run, and a fresh one for a run of its
/// spec, before it is destroyed (`EngineConfig::pool_idle`).
pub(crate) const IDLE: Duration = Duration::from_secs(30);

/// Fresh sandboxes kept at most, all specs together but the prewarmed ones, per unit of `size`.
const MAX_FRESH_PER_SIZE: usize = 8;

/// How often the reaper looks at the memory pressure (and at idle sandboxes) when no used
/// sandbox comes back.
const TICK: Duration = Duration::from_secs(1);
/// How often the reaper sweeps what dead warden processes left ([`Sandbox::sweep`]).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Whether the host is short of memory now.
pub type MemoryPressure = fn() -> bool;

/// The host's memory pressure: some task stalled on memory more than 10% of the last 10 s
/// (`/proc/pressure/memory`, PSI), or, without PSI, under 10% of the memory available
/// (`/proc/meminfo`).
pub fn host_memory_pressure() -> bool {
    if let Ok(text) = std::fs::read_to_string("/proc/pressure/memory") {
        if let Some(avg10) = psi_some_avg10(&text) {
            return avg10 > 10.0;
        }
    }
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return false;
    };
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
    };
    match (field("MemAvailable:"), field("MemTotal:")) {
        (Some(available), Some(total)) if total > 0 => available * 10 < total,
        _ => false,
    }
}

/// `avg10` of the `some` line of a PSI file.
fn psi_some_avg10(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// Reset sandboxes kept at most per spec and owner, per unit of `size`: a pool sized for
/// `size` runs at once gets up to `size` sandboxes back at once, while the `size` kept before
/// wait for those runs' callers to send their next ones.
const KEPT_PER_OWNER: usize = 2;

/// Reset sandboxes kept at most, all specs and owners together, per unit of `size`.
const MAX_KEPT_PER_SIZE: usize = 8;

/// How the pool has done, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Sandboxes kept per spec.
    pub size: usize,
    /// Runs one sandbox may serve (reset in between).
    pub reuse: u64,
    /// Sandboxes ready now, fresh and reset, all specs together.
    pub ready: usize,
    /// Runs that took a ready sandbox (fresh or reset).
    pub hits: u64,
    /// Of the hits, runs that took a sandbox reset after an earlier run of their owner.
    pub reused: u64,
    /// Runs that had to build theirs.
    pub misses: u64,
    /// Sandboxes destroyed unused because the host was short of memory.
    pub shrunk: u64,
}

/// The pool; dropping it destroys every sandbox in it.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    refiller: Option<JoinHandle<()>>,
    /// Used sandboxes to reset or destroy, with their owners; `None` once the pool is dropping.
    used: Option<Sender<(LiveSandbox, String)>>,
    reaper: Option<JoinHandle<()>>,
}

/// A reset sandbox and when it was put back.
type Kept = (LiveSandbox, Instant);

/// The fresh sandboxes of one spec, and when a run last asked for one.
struct Fresh {
    ready: Vec<LiveSandbox>,
    asked: Instant,
}

impl Default for Fresh {
    fn default() -> Self {
        Self {
            ready: Vec::new(),
            asked: Instant::now(),
        }
    }
}

struct Shared {
    size: usize,
    /// Sizes that replace `size` for some specs (`Pool::prewarm`), by key.
    targets: Mutex<HashMap<String, usize>>,
    reuse: u64,
    host: Sandbox,
    /// Sandboxes that never ran, by spec key.
    fresh: Mutex<HashMap<String, Fresh>>,
    /// Sandboxes reset after a run, by spec key and owner.
    kept: Mutex<HashMap<(String, String), Vec<Kept>>>,
    /// Specs to build a sandbox for, with their keys.
    wanted: Mutex<VecDeque<(String, SandboxSpec)>>,
    wake: Condvar,
    stop: AtomicBool,
    hits: AtomicU64,
    reused: AtomicU64,
    misses: AtomicU64,
    shrunk: AtomicU64,
    pressure: MemoryPressure,
    idle: Duration,
    keys: Keys,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The pool key of a spec: the SHA-256 of its JSON.
fn digest(spec: &SandboxSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    format!("{:x}", Sha256::digest(&json))
}

/// How many recent specs [`Keys`] remembers: a server's runs use a few specs, one per language
/// and policy mostly.
const RECENT_KEYS: usize = 32;

/// The keys of recent specs. A run needs its spec's key twice (taking a sandbox, keeping it
/// after the reset), and serializing a spec (its seccomp rules mostly) and hashing it cost
/// about a tenth of a millisecond each time, 8% of the server's own cpu under two clients; equal
/// specs have equal keys, so comparing the spec with the few recent ones finds it at once.
#[derive(Default)]
struct Keys {
    recent: Mutex<VecDeque<(SandboxSpec, String)>>,
}

impl Keys {
    fn of(&self, spec: &SandboxSpec) -> String {
        let mut recent = lock(&self.recent);
        let found = recent.iter().position(|(known, _)| known == spec);
        if let Some(entry) = found.and_then(|at| recent.remove(at)) {
            let key = entry.1.clone();
            recent.push_front(entry);
            return key;
        }
        let key = digest(spec);
        recent.push_front((spec.clone(), key.clone()));
        recent.truncate(RECENT_KEYS);
        key
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// A pool keeping `size` sandboxes per spec, each serving up to `reuse` runs of one owner,
    /// built on `host` by a thread of its own.
    pub(crate) fn start(
        host: Sandbox,
        size: usize,
        reuse: u64,
        pressure: MemoryPressure,
        idle: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            size,
            targets: Mutex::new(HashMap::new()),
            reuse: reuse.max(1),
            host,
            fresh: Mutex::new(HashMap::new()),
            kept: Mutex::new(HashMap::new()),
            wanted: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            shrunk: AtomicU64::new(0),
            pressure,
            idle,
            keys: Keys::default(),
        });
        let worker = Arc::clone(&shared);
        let refiller = std::thread::Builder::new()
            .name("warden-pool".into())
            .spawn(move || worker.refill())
            .ok();
        let (used, queue) = std::sync::mpsc::channel();
        let worker = Arc::clone(&shared);
        let reaper = std::thread::Builder::new()
            .name("warden-reaper".into())
            .spawn(move || worker.reap(&queue))
            .ok();
        Self {
            shared,
            refiller,
            used: reaper.is_some().then_some(used),
            reaper,
        }
    }

    /// Takes back a sandbox after its run for `owner`: the reaper thread resets it for the
    /// owner's next run, or destroys it (at once, here, if there is no reaper).
    pub(crate) fn give_back(
        &self,
        sandbox: LiveSandbox,
        owner: &str,
    ) -> Result<(), warden_sandbox::SandboxError> {
        match &self.used {
            Some(queue) => match queue.send((sandbox, owner.to_owned())) {
                Ok(()) => Ok(()),
                Err(std::sync::mpsc::SendError((sandbox, _))) => sandbox.destroy(),
            },
            None => sandbox.destroy(),
        }
    }

    /// A ready sandbox of `spec` for `owner`, if the pool has one: one reset after the owner's
    /// earlier run, else a fresh one (then the pool builds another).
    pub(crate) fn take(&self, spec: &SandboxSpec, owner: &str) -> Option<LiveSandbox> {
        let key = self.shared.keys.of(spec);
        let kept = {
            let mut kept = lock(&self.shared.kept);
            let entry = kept.get_mut(&(key.clone(), owner.to_owned()));
            // One that died while waiting (its init was killed) is dropped, and destroyed.
            entry.and_then(|list| {
                list.retain(|(sandbox, _)| sandbox.is_alive());
                list.pop().map(|(sandbox, _)| sandbox)
            })
        };
        if kept.is_some() {
            self.shared.hits.fetch_add(1, Ordering::Relaxed);
            self.shared.reused.fetch_add(1, Ordering::Relaxed);
            return kept;
        }
        let taken = {
            let mut fresh = lock(&self.shared.fresh);
            let list = fresh.entry(key.clone()).or_default();
            list.asked = Instant::now();
            list.ready.retain(LiveSandbox::is_alive);
            list.ready.pop()
        };
        let counter = if taken.is_some() {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut wanted = lock(&self.shared.wanted);
        if wanted.len() < 4 * self.shared.size_of(&key).max(1) {
            wanted.push_back((key, spec.clone()));
            self.shared.wake.notify_one();
        }
        taken
    }

    /// Keeps `count` sandboxes of `spec` ready from now on (instead of `size`), and has the
    /// refill thread build them.
    pub(crate) fn prewarm(&self, spec: &SandboxSpec, count: usize) {
        let key = self.shared.keys.of(spec);
        lock(&self.shared.targets).insert(key.clone(), count);
        let mut wanted = lock(&self.shared.wanted);
        for _ in 0..count {
            wanted.push_back((key.clone(), spec.clone()));
        }
        self.shared.wake.notify_one();
    }

    /// Sizes and hit counts.
    pub(crate) fn stats(&self) -> PoolStats {
        let fresh: usize = lock(&self.shared.fresh)
            .values()
            .map(|list| list.ready.len())
            .sum();
        let kept: usize = lock(&self.shared.kept).values().map(Vec::len).sum();
        PoolStats {
            size: self.shared.size,
            reuse: self.shared.reuse,
            ready: fresh + kept,
            hits: self.shared.hits.load(Ordering::Relaxed),
            reused: self.shared.reused.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            shrunk: self.shared.shrunk.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    /// How many sandboxes of the spec `key` the pool keeps.
    fn size_of(&self, key: &str) -> usize {
        lock(&self.targets).get(key).copied().unwrap_or(self.size)
    }

    /// The refill thread: builds a sandbox for each wanted spec whose list is short.
    fn refill(&self) {
        let backend = self.host.native();
        loop {
            let next = {
                let mut wanted = lock(&self.wanted);
                loop {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Some(next) = wanted.pop_front() {
                        break next;
                    }
                    wanted = self
                        .wake
                        .wait(wanted)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let (key, spec) = next;
            let size = self.size_of(&key);
            if !self.has_room(&key, size) || (self.pressure)() {
                continue;
            }
            match backend.create(&spec) {
                Ok(sandbox) => {
                    let room = self.has_room(&key, size) && !self.stop.load(Ordering::SeqCst);
                    let mut fresh = lock(&self.fresh);
                    if room {
                        fresh.entry(key).or_default().ready.push(sandbox);
                    } else {
                        drop(fresh);
                        if let Err(e) = sandbox.destroy() {
                            tracing::warn!(error = %e, "destroying a sandbox the pool has no room for");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "building a sandbox for the pool"),
            }
        }
    }

    /// Whether the pool may keep one more fresh sandbox of `key` (which it keeps `size` of):
    /// its list is short, and, for a spec the operator did not prewarm, the fresh sandboxes of
    /// such specs are fewer than [`MAX_FRESH_PER_SIZE`] × `size`.
    fn has_room(&self, key: &str, size: usize) -> bool {
        let prewarmed: Vec<String> = lock(&self.targets).keys().cloned().collect();
        let fresh = lock(&self.fresh);
        let short = fresh.get(key).map_or(0, |list| list.ready.len()) < size;
        if !short || prewarmed.iter().any(|k| k == key) {
            return short;
        }
        let others: usize = fresh
            .iter()
            .filter(|(k, _)| !prewarmed.contains(k))
            .map(|(_, list)| list.ready.len())
            .sum();
        others < MAX_FRESH_PER_SIZE * self.size.max(1)
    }

    /// The reaper thread: resets each used sandbox for its owner's next run, or destroys it;
    /// destroys reset sandboxes left idle. Ends when the queue closes.
    fn reap(&self, queue: &Receiver<(LiveSandbox, String)>) {
        let mut swept = Instant::now();
        loop {
            let received = queue.recv_timeout(TICK);
            // Read after the wait, not before it: a reading a tick old could shrink the pool
            // (the sandbox just built for a run) after the pressure has passed.
            let pressed = (self.pressure)();
            match received {
                Ok((sandbox, owner)) => self.keep_or_destroy(sandbox, owner, pressed),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if pressed {
                self.shrink();
            }
            self.expire();
            if swept.elapsed() >= SWEEP_EVERY {
                // What warden processes killed outright left, their runs' survivors included.
                self.host.sweep();
                swept = Instant::now();
            }
        }
    }

    /// Resets a used sandbox and keeps it for its owner, if there is room, or destroys it.
    ///
    /// Room is judged after the reset, not before: the run that gave the sandbox back answers
    /// its caller meanwhile, and a caller that sends its next run at once takes a kept sandbox
    /// during the reset. Judged before, the owner's list looked full at every give-back (the
    /// next run had not taken its sandbox yet), the sandbox was destroyed, the list then ran
    /// dry and runs took fresh sandboxes, built anew: with two clients, one run in twenty
    /// (docs/BENCHMARKS.md, "The pool's churn").
    fn keep_or_destroy(&self, mut sandbox: LiveSandbox, owner: String, pressed: bool) {
        let reusable = !pressed
            && sandbox.is_alive()
            && sandbox.jobs_run() < self.reuse
            && !self.stop.load(Ordering::SeqCst);
        if reusable {
            match sandbox.reset() {
                Ok(()) => {
                    let key = (self.keys.of(sandbox.spec()), owner);
                    // A spec's own size (`Pool::prewarm`) counts for it, even above `size`.
                    let size = self.size_of(&key.0);
                    let mut kept = lock(&self.kept);
                    let total: usize = kept.values().map(Vec::len).sum();
                    let list = kept.entry(key).or_default();
                    if list.len() < KEPT_PER_OWNER * size
                        && total < MAX_KEPT_PER_SIZE * size.max(self.size)
                    {
                        list.push((sandbox, Instant::now()));
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "resetting a used sandbox"),
            }
        }
        if let Err(e) = sandbox.destroy() {
            tracing::warn!(error = %e, "destroying a used sandbox");
        }
    }

    /// Destroys every ready sandbox, fresh and reset (the host is short of memory).
    fn shrink(&self) {
        let mut ready: Vec<LiveSandbox> = lock(&self.fresh)
            .drain()
            .flat_map(|(_, list)| list.ready)
            .collect();
        ready.extend(
            lock(&self.kept)
                .drain()
                .flat_map(|(_, list)| list.into_iter().map(|(sandbox, _)| sandbox)),
        );
        if ready.is_empty() {
            return;
        }
        tracing::info!(
            count = ready.len(),
            "memory pressure: shrinking the warm pool"
        );
        self.shrunk.fetch_add(ready.len() as u64, Ordering::Relaxed);
        for sandbox in ready {
            if let Err(e) = sandbox.destroy() {
                tracing::warn!(error = %e, "destroying a pooled sandbox");
            }
        }
    }

    /// Destroys the reset sandboxes idle for [`Shared::idle`], and the fresh ones of a spec no
    /// run asked for in that time (but the prewarmed specs').
    fn expire(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut kept = lock(&self.kept);
            for list in kept.values_mut() {
                let (old, young): (Vec<Kept>, Vec<Kept>) = list
                    .drain(..)
                    .partition(|(_, since)| now.duration_since(*since) >= self.idle);
                *list = young;
                expired.extend(old.into_iter().map(|(sandbox, _)| sandbox));
            }
            kept.retain(|_, list| !list.is_empty());
        }
        {
            let prewarmed: Vec<String> = lock(&self.targets).keys().cloned().collect();
            let mut fresh = lock(&self.fresh);
            fresh.retain(|key, list| {
                let stale = now.duration_since(list.asked) >= self.idle && !prewarmed.contains(key);
                if stale {
                    expired.append(&mut list.ready);
                }
                !stale
            });
        }
        for sandbox in expired {
            if let Err(e) = sandbox.destroy() {
                tracing::warn!(error = %e, "destroying an idle sandbox");
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(refiller) = self.refiller.take() {
            let _ = refiller.join();
        }
        // The reaper ends once its queue is closed and drained.
        self.used = None;
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.join();
        }
        // Every pooled sandbox is destroyed as it drops.
        lock(&self.shared.fresh).clear();
        lock(&self.shared.kept).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_read_from_the_some_line() {
        let text = "some avg10=12.50 avg60=3.00 avg300=1.00 total=1\n\
                    full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(psi_some_avg10(text), Some(12.5));
        assert_eq!(psi_some_avg10("full avg10=1.00\n"), None);
        // This host answers one way or the other without failing.
        let _ = host_memory_pressure();
    }

    #[test]
    fn remembered_keys_are_the_digests_of_their_specs() {
        let filesystem = warden_core::FilesystemPolicy::builtin().expect("builtin filesystem");
        let seccomp = warden_core::SeccompPolicy::builtin().expect("builtin seccomp");
        let spec = |hostname: usize| {
            let mut spec = SandboxSpec::new(&filesystem, seccomp.clone());
            spec.hostname = format!("h{hostname}");
            spec
        };
        let keys = Keys::default();
        // More specs than remembered, each asked twice, the first ones again after eviction.
        let many: Vec<usize> = (0..RECENT_KEYS + 8).chain(0..RECENT_KEYS + 8).collect();
        for n in many {
            assert_eq!(keys.of(&spec(n)), digest(&spec(n)), "spec {n}");
        }
        assert_ne!(keys.of(&spec(1)), keys.of(&spec(2)));
        assert!(lock(&keys.recent).len() <= RECENT_KEYS);
    }
}
