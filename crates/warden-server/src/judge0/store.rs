//! The submissions of this server, by token, in memory: what `wait=false` and the batch
//! endpoints answer later from. Bounded: past [`CAPACITY`] submissions, or [`MAX_FINISHED_BYTES`]
//! of finished ones (their code, input and output), the oldest finished submissions are
//! forgotten (their token then answers 404). Not persisted: a restart forgets every token, a
//! known difference from Judge0, which keeps them in PostgreSQL (docs/compat.md).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use warden_engine::ExecutionResult;

use super::submission::Input;

/// Most submissions kept.
pub(crate) const CAPACITY: usize = 10_000;
/// Most bytes of finished submissions kept (their code, input, expected and actual output);
/// the newest is kept whatever its size.
pub(crate) const MAX_FINISHED_BYTES: usize = 256 << 20;

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

impl Record {
    /// What the record holds in memory, roughly: its bytes of code, input and output.
    fn bytes(&self) -> usize {
        let input = &self.input;
        let given = input.source_code.len()
            + input
                .additional_files
                .iter()
                .map(|f| f.code.len())
                .sum::<usize>()
            + input
                .echo
                .get("additional_files")
                .map_or(0, |a| a.to_string().len())
            + input.stdin.as_ref().map_or(0, Vec::len)
            + input.expected_output.as_ref().map_or(0, Vec::len);
        let produced = match &self.progress {
            Progress::Finished(result) => {
                let stage = |s: &Option<warden_engine::StageResult>| {
                    s.as_ref().map_or(0, |s| s.stdout.len() + s.stderr.len())
                };
                result.stdout.len()
                    + result.stderr.len()
                    + stage(&result.compile)
                    + stage(&result.dependencies)
            }
            Progress::Failed(why) => why.len(),
            Progress::Queued | Progress::Processing => 0,
        };
        // The rest of a record (token, limits, usage) is a few hundred bytes.
        given + produced + 512
    }
}

/// The shared store (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Store {
    inner: Arc<Mutex<Inner>>,
    /// [`MAX_FINISHED_BYTES`], smaller in tests.
    max_bytes: usize,
}

impl Default for Store {
    fn default() -> Self {
        Self::with_byte_bound(MAX_FINISHED_BYTES)
    }
}

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, Record>,
    order: VecDeque<String>,
    /// The finished submissions, in the order they finished, with their sizes.
    finished: VecDeque<(String, usize)>,
    /// The sum of those sizes.
    finished_bytes: usize,
}

impl Store {
    /// A store that keeps at most `max_bytes` of finished submissions.
    pub(crate) fn with_byte_bound(max_bytes: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_bytes,
        }
    }

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
                if let Some(i) = inner.finished.iter().position(|(t, _)| *t == token) {
                    let size = inner.finished.remove(i).map_or(0, |(_, size)| size);
                    inner.finished_bytes = inner.finished_bytes.saturating_sub(size);
                }
            }
        }
        inner.order.push_back(record.token.clone());
        inner.records.insert(record.token.clone(), record);
    }

    /// A submission by token.
    pub(crate) fn get(&self, token: &str) -> Option<Record> {
        self.lock().records.get(token).cloned()
    }

    /// Moves a submission on; past the byte bound, forgets the oldest finished ones.
    pub(crate) fn update(&self, token: &str, progress: Progress) {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(token) else {
            return;
        };
        let finished = matches!(progress, Progress::Finished(_) | Progress::Failed(_));
        if finished {
            record.finished_at = Some(SystemTime::now());
        }
        record.progress = progress;
        if !finished {
            return;
        }
        let bytes = record.bytes();
        inner.finished.push_back((token.to_owned(), bytes));
        inner.finished_bytes = inner.finished_bytes.saturating_add(bytes);
        while inner.finished_bytes > self.max_bytes && inner.finished.len() > 1 {
            let Some((old, size)) = inner.finished.pop_front() else {
                break;
            };
            inner.finished_bytes = inner.finished_bytes.saturating_sub(size);
            inner.records.remove(&old);
            if let Some(i) = inner.order.iter().position(|t| *t == old) {
                inner.order.remove(i);
            }
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

    fn submission(token: &str, code_bytes: usize) -> Record {
        Record {
            token: token.to_owned(),
            input: Arc::new(Input {
                language_id: 71,
                language: "python".into(),
                source_code: vec![b'#'; code_bytes],
                additional_files: Vec::new(),
                stdin: None,
                expected_output: None,
                args: Vec::new(),
                compile_options: Vec::new(),
                limits: warden_core::LimitOverrides::default(),
                redirect_stderr_to_stdout: false,
                callback_url: None,
                echo: serde_json::Map::new(),
            }),
            progress: Progress::Queued,
            created_at: SystemTime::now(),
            finished_at: None,
        }
    }

    #[test]
    fn finished_submissions_past_the_byte_bound_are_forgotten_oldest_first() {
        let store = Store::with_byte_bound(10_000);
        store.insert(submission("waiting", 3_000));
        for n in 0..6 {
            let token = format!("t{n}");
            store.insert(submission(&token, 3_000));
            store.update(&token, Progress::Failed("no".into()));
        }
        // About 3.5 kB each: the two newest fit in 10 kB; the one still queued stays.
        let kept: Vec<usize> = (0..6)
            .filter(|n| store.get(&format!("t{n}")).is_some())
            .collect();
        assert_eq!(kept, [4, 5]);
        assert!(store.get("waiting").is_some());
        // One above the bound alone is kept, until the next finishes.
        store.insert(submission("huge", 50_000));
        store.update("huge", Progress::Failed("no".into()));
        assert!(store.get("huge").is_some() && store.get("t5").is_none());
        store.insert(submission("next", 10));
        store.update("next", Progress::Failed("no".into()));
        assert!(store.get("huge").is_none() && store.get("next").is_some());
    }
}
