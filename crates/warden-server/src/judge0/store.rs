//! The submissions of this server, by token, in memory: what `wait=false` and the batch
//! endpoints answer later from. Bounded: past [`CAPACITY`] the oldest finished submissions are
//! forgotten (their token then answers 404). Not persisted: a restart forgets every token, a
//! known difference from Judge0, which keeps them in PostgreSQL (docs/compat.md).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use warden_engine::ExecutionResult;

use super::submission::Input;

/// Most submissions kept.
pub(crate) const CAPACITY: usize = 10_000;

/// One submission.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Its token.
    pub(crate) token: String,
    /// What was submitted.
    pub(crate) input: Arc<Input>,
    /// Where it is.
    pub(crate) progress: Progress,
    /// When it was submitted.
    pub(crate) created_at: SystemTime,
    /// When it finished.
    pub(crate) finished_at: Option<SystemTime>,
}

/// Where a submission is.
#[derive(Debug, Clone)]
pub(crate) enum Progress {
    /// Waiting for a worker.
    Queued,
    /// Running.
    Processing,
    /// Ran to a result.
    Finished(Box<ExecutionResult>),
    /// warden could not run it (Judge0's "Internal Error", with this message).
    Failed(String),
}

/// The shared store (cheap to clone).
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, Record>,
    order: VecDeque<String>,
}

impl Store {
    /// Keeps a new submission, forgetting the oldest finished one when full.
    pub(crate) fn insert(&self, record: Record) {
        let mut inner = self.lock();
        if inner.records.len() >= CAPACITY {
            let done = inner.order.iter().position(|t| {
                inner
                    .records
                    .get(t)
                    .is_some_and(|r| r.finished_at.is_some())
            });
            if let Some(token) = done.and_then(|i| inner.order.remove(i)) {
                inner.records.remove(&token);
            }
        }
        inner.order.push_back(record.token.clone());
        inner.records.insert(record.token.clone(), record);
    }

    /// A submission by token.
    pub(crate) fn get(&self, token: &str) -> Option<Record> {
        self.lock().records.get(token).cloned()
    }

    /// Moves a submission on.
    pub(crate) fn update(&self, token: &str, progress: Progress) {
        let mut inner = self.lock();
        if let Some(record) = inner.records.get_mut(token) {
            if matches!(progress, Progress::Finished(_) | Progress::Failed(_)) {
                record.finished_at = Some(SystemTime::now());
            }
            record.progress = progress;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole records behind (each update is one
        // assignment), so the data is still good.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A fresh token, shaped as Judge0's (a version 4 UUID) from an execution id's 128 random bits.
pub(crate) fn token() -> String {
    let hex = warden_engine::ExecutionId::random().to_string();
    let mut chars: Vec<char> = hex.chars().collect();
    if chars.len() != 32 {
        return hex;
    }
    chars[12] = '4';
    chars[16] = match chars[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    let text: String = chars.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &text[0..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_version_4_uuids() {
        let t = token();
        assert_eq!(t.len(), 36);
        assert_eq!(t.as_bytes()[14], b'4');
        assert!(matches!(t.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(t, token());
    }
}
