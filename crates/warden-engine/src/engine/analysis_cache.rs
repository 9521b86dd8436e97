//! The analyses of recent programs' files, by language, content and whether the program has
//! other files, with what they read (`warden_analysis::ReadElsewhere`): a server sees the same code again and again (an evaluation harness retrying, a
//! judge's resubmissions), and the analysis is a pure function of these and of the rules, which
//! are fixed for the engine's life. Bounded; the oldest entry goes first. A one-shot CLI's
//! engine also keeps them on disk for the next process (`analysis_store.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use warden_analysis::ReadElsewhere;
use warden_core::Analysis;

use super::analysis_store::AnalysisStore;

/// How many analyses are kept.
const ENTRIES: usize = 512;

/// A bounded map from (language, among other files, SHA-256 of the code) to its analysis,
/// and the store on disk behind it, if any.
#[derive(Debug, Default)]
pub(super) struct AnalysisCache {
    inner: Mutex<Entries>,
    disk: Option<AnalysisStore>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<[u8; 32], Analysis>,
    order: VecDeque<[u8; 32]>,
}

fn key(language: &str, among_others: Option<&ReadElsewhere>, code: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(language.as_bytes());
    hash.update([0u8]);
    if let Some(elsewhere) = among_others {
        let elsewhere = elsewhere.to_bytes();
        hash.update((elsewhere.len() as u64 + 1).to_le_bytes());
        hash.update(elsewhere);
    } else {
        hash.update(0u64.to_le_bytes());
    }
    hash.update(code);
    hash.finalize().into()
}

impl AnalysisCache {
    /// A cache in memory only (`None`), or also on disk in `dir` (`analysis_store.rs`).
    pub(super) fn new(dir: Option<std::path::PathBuf>) -> Self {
        Self {
            inner: Mutex::default(),
            disk: dir.map(AnalysisStore::new),
        }
    }

    /// The analysis of `code` in `language`, a file of a program with other files
    /// (`among_others`, `RequestFile::among_others`: with what they read) or alone, if it is
    /// kept.
    pub(super) fn get(
        &self,
        language: &str,
        among_others: Option<&ReadElsewhere>,
        code: &[u8],
    ) -> Option<Analysis> {
        let key = key(language, among_others, code);
        if let Some(found) = self.lock().map.get(&key) {
            return Some(found.clone());
        }
        let found = self.disk.as_ref()?.get(&key)?;
        self.remember(key, found.clone());
        Some(found)
    }

    /// Keeps `analysis` as that of `code` in `language`, among other files or alone.
    pub(super) fn insert(
        &self,
        language: &str,
        among_others: Option<&ReadElsewhere>,
        code: &[u8],
        analysis: Analysis,
    ) {
        let key = key(language, among_others, code);
        if let Some(disk) = &self.disk {
            disk.put(&key, &analysis);
        }
        self.remember(key, analysis);
    }

    fn remember(&self, key: [u8; 32], analysis: Analysis) {
        let mut entries = self.lock();
        if entries.map.insert(key, analysis).is_none() {
            entries.order.push_back(key);
            if entries.order.len() > ENTRIES {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.map.remove(&oldest);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::ThreatLevel;

    #[test]
    fn analyses_are_kept_by_language_and_code_and_bounded() {
        let cache = AnalysisCache::default();
        let low = Analysis {
            threat_level: ThreatLevel::Low,
            ..Analysis::default()
        };
        cache.insert("python", None, b"print(1)", low.clone());
        assert_eq!(cache.get("python", None, b"print(1)"), Some(low.clone()));
        assert_eq!(
            cache.get("ruby", None, b"print(1)"),
            None,
            "another language"
        );
        assert_eq!(
            cache.get("python", Some(&ReadElsewhere::default()), b"print(1)"),
            None,
            "the file among others"
        );
        let reads = warden_analysis::ProgramReads::of([&b"$E id"[..]]).besides(b"E=eval", false);
        cache.insert("bash", Some(&reads), b"E=eval", low.clone());
        assert_eq!(
            cache.get("bash", Some(&ReadElsewhere::default()), b"E=eval"),
            None,
            "among other files that read other variables"
        );
        assert_eq!(cache.get("bash", Some(&reads), b"E=eval"), Some(low));
        for i in 0..ENTRIES + 1 {
            cache.insert(
                "python",
                None,
                i.to_string().as_bytes(),
                Analysis::default(),
            );
        }
        assert!(cache.lock().map.len() <= ENTRIES);
        assert_eq!(
            cache.get("python", None, b"print(1)"),
            None,
            "the oldest went first"
        );
    }
}
