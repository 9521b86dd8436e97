//! The analyses of the tools' programs, by language and content, whatever their outcome: a
//! registry is loaded again at every change of the registered tools (`Engine::registry`), and
//! each load assesses every tool's program. The analysis cache (`analysis_cache.rs`) keeps no
//! analysis that was stopped or spent its budget, so a program that spends it was analysed
//! again (a second or more each) at every load, however many times it had been (hunt tenants
//! 1). Here it is analysed once and graded as it was then, as long as it is registered: a load
//! keeps only the analyses of the programs it assessed, and those kept since it began
//! ([`ToolAnalyses::keep_only`]). A registration analyses its program afresh
//! ([`ToolAnalyses::run`]): an analysis stopped for a reason outside the program (a loaded host,
//! a killed worker) is not its grade for good (hunt regsrv 1).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use warden_core::Analysis;

/// How many analyses are kept at most between two loads (registrations refused after their
/// analysis add some that no load asks for again); the oldest goes first.
const ENTRIES: usize = 1024;

/// What identifies an analysis: the language and a SHA-256 of the code.
pub(super) type Key = [u8; 32];

/// The kept analyses, and how many were run.
#[derive(Debug, Default)]
pub(super) struct ToolAnalyses {
    inner: Mutex<Entries>,
    runs: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    /// Each analysis, with the number of the keeping that kept it ([`Entries::kept`]).
    map: HashMap<Key, (Analysis, u64)>,
    order: VecDeque<Key>,
    /// How many times an analysis was kept.
    kept: u64,
}

pub(super) fn key(language: &str, code: &[u8]) -> Key {
    let mut hash = Sha256::new();
    hash.update(language.as_bytes());
    hash.update([0u8]);
    hash.update(code);
    hash.finalize().into()
}

impl ToolAnalyses {
    /// The analysis kept under `key`, or the one `analyse` gives, then kept.
    pub(super) fn get_or_run(&self, key: Key, analyse: impl FnOnce() -> Analysis) -> Analysis {
        if let Some((found, _)) = self.lock().map.get(&key) {
            return found.clone();
        }
        self.run(key, analyse)
    }

    /// The analysis `analyse` gives, kept under `key` in place of the one kept before.
    pub(super) fn run(&self, key: Key, analyse: impl FnOnce() -> Analysis) -> Analysis {
        // Not under the lock: a reader of another program does not wait for this one.
        self.runs.fetch_add(1, Ordering::Relaxed);
        let analysis = analyse();
        let mut entries = self.lock();
        entries.kept += 1;
        let kept = entries.kept;
        if entries.map.insert(key, (analysis.clone(), kept)).is_some() {
            entries.order.retain(|k| *k != key);
        }
        entries.order.push_back(key);
        if entries.order.len() > ENTRIES {
            if let Some(oldest) = entries.order.pop_front() {
                entries.map.remove(&oldest);
            }
        }
        analysis
    }

    /// Where the keeping is: a load notes it when it begins, for [`ToolAnalyses::keep_only`].
    pub(super) fn mark(&self) -> u64 {
        self.lock().kept
    }

    /// Forgets every analysis but those under `keys` (a load's: the registered programs') and
    /// those kept after `mark` (a registration made while the load ran, which it did not list:
    /// forgotten, it was analysed again at the next load, hunt regsrv 3).
    pub(super) fn keep_only(&self, keys: &HashSet<Key>, mark: u64) {
        let mut entries = self.lock();
        entries
            .map
            .retain(|key, (_, kept)| *kept > mark || keys.contains(key));
        let Entries { map, order, .. } = &mut *entries;
        order.retain(|key| map.contains_key(key));
    }

    /// How many analyses were run (not found kept) since the engine started.
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
