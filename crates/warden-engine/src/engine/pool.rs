//! The warm pool: native sandboxes built ahead of the requests that will use them, so that a
//! run skips the sandbox's setup (the helper, the namespaces, the mounts). A pooled sandbox is
//! a sandbox that was created and never ran a job: from inside it is exactly a fresh one, and it
//! is used once and destroyed like every other (`Runner`). Sandboxes are kept per spec (the
//! language's mounts and the limits' ceilings decide it), up to `size` each, refilled by a
//! background thread after each use. Only `sandboxed` mode is pooled.
//!
//! The pool also destroys used sandboxes off the request's path (`retire`): a thread of its
//! own kills and removes them right after the run, while the answer is already on its way.
//! Dropping the pool waits for that thread, so nothing outlives the engine.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use warden_sandbox::{Backend, LiveSandbox, Sandbox, SandboxSpec};

/// How the pool has done, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Sandboxes kept per spec.
    pub size: usize,
    /// Sandboxes ready now, all specs together.
    pub ready: usize,
    /// Runs that took a ready sandbox.
    pub hits: u64,
    /// Runs that had to build theirs.
    pub misses: u64,
}

/// The pool; dropping it destroys every sandbox in it.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    refiller: Option<JoinHandle<()>>,
    /// Used sandboxes to destroy; `None` once the pool is dropping.
    retired: Option<std::sync::mpsc::Sender<LiveSandbox>>,
    reaper: Option<JoinHandle<()>>,
}

struct Shared {
    size: usize,
    host: Sandbox,
    ready: Mutex<HashMap<String, Vec<LiveSandbox>>>,
    /// Specs to build a sandbox for, with their keys.
    wanted: Mutex<VecDeque<(String, SandboxSpec)>>,
    wake: Condvar,
    stop: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

fn key(spec: &SandboxSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    format!("{:x}", Sha256::digest(&json))
}

impl Pool {
    /// A pool keeping `size` sandboxes per spec, built on `host` by a thread of its own.
    pub(crate) fn start(host: Sandbox, size: usize) -> Self {
        let shared = Arc::new(Shared {
            size,
            host,
            ready: Mutex::new(HashMap::new()),
            wanted: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let refiller = std::thread::Builder::new()
            .name("warden-pool".into())
            .spawn(move || worker.refill())
            .ok();
        let (retired, queue) = std::sync::mpsc::channel::<LiveSandbox>();
        let reaper = std::thread::Builder::new()
            .name("warden-reaper".into())
            .spawn(move || {
                for sandbox in queue {
                    if let Err(e) = sandbox.destroy() {
                        tracing::warn!(error = %e, "destroying a used sandbox");
                    }
                }
            })
            .ok();
        Self {
            shared,
            refiller,
            retired: reaper.is_some().then_some(retired),
            reaper,
        }
    }

    /// Destroys a used sandbox on the reaper thread (at once, here, if there is none).
    pub(crate) fn retire(&self, sandbox: LiveSandbox) -> Result<(), warden_sandbox::SandboxError> {
        match &self.retired {
            Some(queue) => match queue.send(sandbox) {
                Ok(()) => Ok(()),
                Err(std::sync::mpsc::SendError(sandbox)) => sandbox.destroy(),
            },
            None => sandbox.destroy(),
        }
    }

    /// A ready sandbox of `spec`, if the pool has one; either way, the pool builds another.
    pub(crate) fn take(&self, spec: &SandboxSpec) -> Option<LiveSandbox> {
        let key = key(spec);
        let taken = {
            let mut ready = self
                .shared
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let list = ready.entry(key.clone()).or_default();
            // One that died while waiting (its init was killed) is dropped, and destroyed.
            list.retain(LiveSandbox::is_alive);
            list.pop()
        };
        let counter = if taken.is_some() {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut wanted = self
            .shared
            .wanted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if wanted.len() < 4 * self.shared.size.max(1) {
            wanted.push_back((key, spec.clone()));
            self.shared.wake.notify_one();
        }
        taken
    }

    /// Sizes and hit counts.
    pub(crate) fn stats(&self) -> PoolStats {
        let ready = self
            .shared
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum();
        PoolStats {
            size: self.shared.size,
            ready,
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    /// The refill thread: builds a sandbox for each wanted spec whose list is short.
    fn refill(&self) {
        let backend = self.host.native();
        loop {
            let next = {
                let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
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
            let short = self
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .map_or(0, Vec::len)
                < self.size;
            if !short {
                continue;
            }
            match backend.create(&spec) {
                Ok(sandbox) => {
                    let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
                    let list = ready.entry(key).or_default();
                    if list.len() < self.size && !self.stop.load(Ordering::SeqCst) {
                        list.push(sandbox);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "building a sandbox for the pool"),
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
        self.retired = None;
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.join();
        }
        // Every pooled sandbox is destroyed as it drops.
        self.shared
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
