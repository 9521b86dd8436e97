//! The analyses of recent programs, by language and content: a server sees the same code again
//! and again (an evaluation harness retrying, a judge's resubmissions), and the analysis is a
//! pure function of the language, the code and the rules, which are fixed for the engine's
//! life. Bounded; the oldest entry goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use warden_core::Analysis;

/// How many analyses are kept.
const ENTRIES: usize = 512;

/// A bounded map from (language, SHA-256 of the code) to its analysis.
#[derive(Debug, Default)]
pub(super) struct AnalysisCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<[u8; 32], Analysis>,
    order: VecDeque<[u8; 32]>,
}

fn key(language: &str, code: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(language.as_bytes());
    hash.update([0u8]);
    hash.update(code);
    hash.finalize().into()
}

impl AnalysisCache {
    /// The analysis of `code` in `language`, from the cache or from `analyze`.
    pub(super) fn get_or(
        &self,
        language: &str,
        code: &[u8],
        analyze: impl FnOnce() -> Analysis,
    ) -> Analysis {
        let key = key(language, code);
        if let Some(found) = self.lock().map.get(&key) {
            return found.clone();
        }
        let analysis = analyze();
        let mut entries = self.lock();
        if entries.map.insert(key, analysis.clone()).is_none() {
            entries.order.push_back(key);
            if entries.order.len() > ENTRIES {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.map.remove(&oldest);
                }
            }
        }
        analysis
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use warden_core::ThreatLevel;

    #[test]
    fn the_same_code_is_analysed_once_and_languages_are_kept_apart() {
        let cache = AnalysisCache::default();
        let calls = Cell::new(0);
        let analyze = || {
            calls.set(calls.get() + 1);
            Analysis {
                threat_level: ThreatLevel::Low,
                ..Analysis::default()
            }
        };
        let first = cache.get_or("python", b"print(1)", analyze);
        let again = cache.get_or("python", b"print(1)", analyze);
        assert_eq!(first, again);
        assert_eq!(calls.get(), 1);
        cache.get_or("ruby", b"print(1)", analyze);
        assert_eq!(calls.get(), 2, "another language is another analysis");
        for i in 0..ENTRIES + 1 {
            cache.get_or("python", i.to_string().as_bytes(), Analysis::default);
        }
        assert!(cache.lock().map.len() <= ENTRIES);
    }
}
