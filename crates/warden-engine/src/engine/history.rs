//! The engine's history: each execution recorded as it finishes (pruned per the settings),
//! and the questions adapters ask of it (`history`, `show`, `stats`, `network log`, `network
//! stats`). Recording never fails an execution: a failure becomes a [`Warning`].
//!
//! A server records in the background (`EngineConfig::record_in_background`): the execution's
//! row is made when it finishes and queued, and a writer thread writes what is queued in one
//! transaction, so the answer does not wait for the database and records that finish together
//! share a commit. Every read of the history first writes what is queued, under the same lock,
//! so a reader (`/v1/history`, the response rule's count) always sees every execution that
//! finished before it asked. Failures are logged, since the execution was already answered.
//!
//! Writes (records, tool calls, pruning) go through the one writing connection, under its
//! lock. Reads do not hold that lock while they read: each takes a connection of its own from
//! a small pool ([`HistoryStore::open_reader`]), which in WAL mode reads its snapshot beside
//! the writer and the other readers. One token's statistics over a large history took seconds
//! and held up every other token's records, reads and `[response]` counts before.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use warden_sandbox::Stdin;

use super::Engine;
use crate::error::{chain, EngineError};
use crate::execution::{ExecutionRequest, ExecutionResult, Warning, WarningKind};
use crate::history::{
    ConnectionFilter, HistoryEntry, HistoryFilter, HistoryStore, LoggedConnection, NetworkStats,
    PendingRecord, RecordInput, Stats,
};
use crate::settings::{HistorySettings, SettingError};

/// The history settings and the database, opened at the first use and kept open.
#[derive(Debug)]
pub(super) struct Journal {
    shared: Arc<Shared>,
    /// Record in the background: the writer thread, started by the first record.
    background: bool,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What the journal shares with its writer thread.
#[derive(Debug)]
struct Shared {
    settings: Result<HistorySettings, SettingError>,
    /// Only read: a missing database is an empty one, not created ([`HistoryStore::empty`]).
    reads_only: bool,
    store: Mutex<Option<HistoryStore>>,
    /// Idle read-only connections to the database, at most [`IDLE_READERS`].
    readers: Mutex<Vec<HistoryStore>>,
    queue: Mutex<Queue>,
    /// Signalled when a record is queued or the journal closes.
    queued: Condvar,
    /// Records the history could not take (its database would not open or write), so far.
    lost: AtomicU64,
}

/// How many idle read connections the journal keeps; more are opened while more reads run at
/// once, and closed after.
const IDLE_READERS: usize = 4;

/// The records waiting for the writer.
#[derive(Debug, Default)]
struct Queue {
    records: Vec<PendingRecord>,
    closed: bool,
}

/// What the record needs of a request that the execution consumes.
pub(super) struct Pending {
    code: Vec<u8>,
    stdin_bytes: Option<u64>,
    origin: crate::execution::Origin,
}

impl Pending {
    pub(super) fn of(request: &ExecutionRequest) -> Self {
        let stdin_bytes = match &request.stdin {
            Stdin::Null => Some(0),
            Stdin::Bytes(bytes) => Some(bytes.len() as u64),
            // A pipe is passed through unread, a relay read as the program runs: the size is
            // not known here.
            Stdin::Pipe(_) | Stdin::Relay(_) => None,
        };
        Self {
            code: request
                .sources
                .first()
                .map(|s| s.code.clone())
                .unwrap_or_default(),
            stdin_bytes,
            origin: request.origin.clone(),
        }
    }

    pub(super) fn borrowed(&self) -> RecordInput<'_> {
        RecordInput {
            code: &self.code,
            stdin_bytes: self.stdin_bytes,
            api: &self.origin.api,
            token: self.origin.token.as_deref(),
        }
    }
}

impl Journal {
    pub(super) fn new(
        settings: Result<HistorySettings, SettingError>,
        background: bool,
        reads_only: bool,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                reads_only,
                store: Mutex::new(None),
                readers: Mutex::new(Vec::new()),
                queue: Mutex::new(Queue::default()),
                queued: Condvar::new(),
                lost: AtomicU64::new(0),
            }),
            background,
            writer: Mutex::new(None),
        }
    }

    /// The open database, opening it if this is the first use, with every queued record
    /// written.
    fn store(
        &self,
    ) -> Result<(MutexGuard<'_, Option<HistoryStore>>, &HistorySettings), EngineError> {
        let settings = self
            .shared
            .settings
            .as_ref()
            .map_err(|e| EngineError::HistorySetting(e.clone()))?;
        let store = self.shared.open()?;
        if self.background {
            self.shared.write_queued(&store, settings);
        }
        Ok((store, settings))
    }

    /// Queues a record for the writer thread, starting it if needed.
    fn enqueue(&self, record: PendingRecord) {
        lock(&self.shared.queue).records.push(record);
        self.shared.queued.notify_one();
        let mut writer = lock(&self.writer);
        // A writer started while the journal was being flushed ends with the flush.
        if writer
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
        {
            let shared = Arc::clone(&self.shared);
            match std::thread::Builder::new()
                .name("warden-history".into())
                .spawn(move || shared.write_until_closed())
            {
                Ok(handle) => *writer = Some(handle),
                // Written by the next reader, or when the journal closes.
                Err(e) => tracing::warn!(error = %e, "starting the history writer"),
            }
        }
    }

    /// Writes every queued record and stops the writer. Later records are written by their
    /// readers or by the next close.
    pub(super) fn flush(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queued.notify_all();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
        if let Ok(settings) = &self.shared.settings {
            match self.shared.open() {
                Ok(store) => self.shared.write_queued(&store, settings),
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "opening the history to record");
                    self.shared.lose_queued();
                }
            }
        }
        lock(&self.shared.queue).closed = false;
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.background {
            self.flush();
        }
    }
}

impl Shared {
    /// The open database, opening it if this is the first use.
    fn open(&self) -> Result<MutexGuard<'_, Option<HistoryStore>>, EngineError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|e| EngineError::HistorySetting(e.clone()))?;
        let mut store = lock(&self.store);
        if store.is_none() {
            *store = Some(if self.reads_only && !settings.path.exists() {
                HistoryStore::empty(&settings.path)?
            } else {
                HistoryStore::open(&settings.path)?
            });
        }
        Ok(store)
    }

    /// The writer thread: writes what is queued until the journal closes.
    fn write_until_closed(&self) {
        let Ok(settings) = &self.settings else {
            return;
        };
        loop {
            {
                let mut queue = lock(&self.queue);
                while queue.records.is_empty() && !queue.closed {
                    queue = self.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.records.is_empty() {
                    return;
                }
            }
            match self.open() {
                Ok(store) => self.write_queued(&store, settings),
                Err(e) => {
                    tracing::warn!(error = %chain(&e), "opening the history to record");
                    self.lose_queued();
                }
            }
        }
    }

    /// Writes what is queued, in one transaction, and prunes. Taken from the queue under the
    /// store's lock, so that whoever holds the store has every record queued before it.
    fn write_queued(&self, store: &Option<HistoryStore>, settings: &HistorySettings) {
        let records = std::mem::take(&mut lock(&self.queue).records);
        let Some(store) = store.as_ref().filter(|_| !records.is_empty()) else {
            return;
        };
        for warning in write(store, settings, &records) {
            if warning.what == WarningKind::HistoryNotRecorded {
                self.lost.fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            tracing::warn!(what = ?warning.what, detail = %warning.detail, "history");
        }
    }

    /// Drops what is queued, counted as lost.
    fn lose_queued(&self) {
        let records = std::mem::take(&mut lock(&self.queue).records);
        self.lost.fetch_add(records.len() as u64, Ordering::Relaxed);
    }
}

/// Locks `mutex`; a panic while it was held leaves what it guards as usable as before.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records `records` and prunes the history; what failed becomes a warning.
fn write(
    store: &HistoryStore,
    settings: &HistorySettings,
    records: &[PendingRecord],
) -> Vec<Warning> {
    let warn = |what, e: &dyn std::error::Error| Warning {
        what,
        detail: chain(e),
    };
    if let Err(e) = store.record_all(records) {
        return vec![warn(WarningKind::HistoryNotRecorded, &e)];
    }
    match settings
        .prune_rule(SystemTime::now())
        .map(|rule| store.prune(&rule))
    {
        Some(Err(e)) => vec![warn(WarningKind::HistoryNotPruned, &e)],
        _ => Vec::new(),
    }
}

impl Engine {
    /// Records an execution and prunes the history; what failed becomes a warning.
    pub(super) fn record(&self, result: &ExecutionResult, input: RecordInput<'_>) -> Vec<Warning> {
        let Some(journal) = &self.history else {
            return Vec::new();
        };
        let warnings = self.record_in(journal, result, input);
        if warnings
            .iter()
            .any(|w| w.what == WarningKind::HistoryNotRecorded)
        {
            journal.shared.lost.fetch_add(1, Ordering::Relaxed);
        }
        warnings
    }

    fn record_in(
        &self,
        journal: &Journal,
        result: &ExecutionResult,
        input: RecordInput<'_>,
    ) -> Vec<Warning> {
        let warn = |what, e: &dyn std::error::Error| Warning {
            what,
            detail: chain(e),
        };
        if journal.background {
            match &journal.shared.settings {
                Ok(settings) => {
                    journal.enqueue(PendingRecord::new(
                        result,
                        input,
                        settings.retention,
                        settings.max_kept,
                    ));
                    return Vec::new();
                }
                Err(e) => {
                    return vec![warn(
                        WarningKind::HistoryNotRecorded,
                        &EngineError::HistorySetting(e.clone()),
                    )]
                }
            }
        }
        let (store, settings) = match journal.store() {
            Ok(open) => open,
            Err(e) => return vec![warn(WarningKind::HistoryNotRecorded, &e)],
        };
        let Some(store) = store.as_ref() else {
            return Vec::new();
        };
        write(
            store,
            settings,
            &[PendingRecord::new(
                result,
                input,
                settings.retention,
                settings.max_kept,
            )],
        )
    }

    /// Opens the history database if it is not open yet, so that recording the execution later
    /// only writes (`warden run` does it while its sandbox builds itself). A background
    /// journal's writer opens it itself; a failure is left for the record to report.
    pub(super) fn open_history(&self) {
        if let Some(journal) = self.history.as_ref().filter(|j| !j.background) {
            drop(journal.shared.open());
        }
    }

    /// Writes the history's queued records (a server calls it when it stops); how many
    /// records of this engine's executions the history could not take so far (they were
    /// written to the log as warnings).
    pub fn flush_history(&self) -> u64 {
        self.history.as_ref().map_or(0, |journal| {
            journal.flush();
            journal.shared.lost.load(Ordering::Relaxed)
        })
    }

    /// The recorded executions matching `filter`, newest first, without code or output.
    ///
    /// A `filter.language` outside the catalog names a language since removed; with nothing
    /// recorded under it (for `filter.token`) it is most likely a typo, which an empty list
    /// would hide: [`EngineError::UnrecordedLanguage`]. Decided here so that `warden history`
    /// and `GET /v1/history` answer it alike.
    pub fn history_list(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>, EngineError> {
        let entries = self.with_store(|store| store.list(filter))?;
        let Some(language) = filter.language.as_ref().filter(|_| entries.is_empty()) else {
            return Ok(entries);
        };
        if self.catalog().get(language.as_str()).is_some() {
            return Ok(entries);
        }
        // The other filters may have left out what was recorded under it.
        let any = HistoryFilter {
            language: Some(language.clone()),
            token: filter.token.clone(),
            limit: Some(1),
            ..HistoryFilter::default()
        };
        if self.with_store(|store| store.list(&any))?.is_empty() {
            return Err(EngineError::UnrecordedLanguage {
                language: language.clone(),
            });
        }
        Ok(entries)
    }

    /// One recorded execution, by id or a unique prefix of it, with its code and output when
    /// they were retained.
    pub fn history_entry(&self, id: &str) -> Result<Option<HistoryEntry>, EngineError> {
        self.with_store(|store| store.get(id))
    }

    /// Statistics over the executions that finished at or after `since` (all when `None`)
    /// that the API token named `token` asked for (every execution when `None`).
    pub fn history_stats(
        &self,
        since: Option<SystemTime>,
        token: Option<&str>,
    ) -> Result<Stats, EngineError> {
        self.with_store(|store| store.stats_of(since, token))
    }

    /// The connections the recorded executions' network policies logged, matching `filter`,
    /// newest first.
    pub fn history_connections(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<LoggedConnection>, EngineError> {
        self.with_store(|store| store.connections(filter))
    }

    /// Network statistics (per destination host, per policy) over the executions that finished
    /// at or after `since` (all when `None`).
    pub fn history_network_stats(
        &self,
        since: Option<SystemTime>,
    ) -> Result<NetworkStats, EngineError> {
        self.with_store(|store| store.network_stats(since))
    }

    /// The history database's file, when the engine keeps a history with valid settings.
    pub fn history_path(&self) -> Option<&Path> {
        let journal = self.history.as_ref()?;
        journal
            .shared
            .settings
            .as_ref()
            .ok()
            .map(|s| s.path.as_path())
    }

    /// Runs a read of the history on a read connection of its own, once every queued record
    /// is written: the write lock is held only for that, not while `query` reads.
    pub(super) fn with_store<T>(
        &self,
        query: impl FnOnce(&HistoryStore) -> Result<T, crate::HistoryError>,
    ) -> Result<T, EngineError> {
        let journal = self.history.as_ref().ok_or(EngineError::NoHistory)?;
        let source = {
            let (store, _) = journal.store()?;
            let store = store.as_ref().ok_or(EngineError::NoHistory)?;
            match store.reader_source() {
                Some(source) => source,
                // No other connection reaches it (a reading command's missing database, in
                // memory): read on the writer.
                None => return Ok(query(store)?),
            }
        };
        let idle = lock(&journal.shared.readers).pop();
        let reader = match idle {
            Some(reader) => reader,
            None => HistoryStore::open_reader(&source)?,
        };
        let read = query(&reader);
        if read.is_ok() {
            let mut readers = lock(&journal.shared.readers);
            if readers.len() < IDLE_READERS {
                readers.push(reader);
            }
        }
        Ok(read?)
    }

    /// Runs a write of the history on the writing connection, under its lock, once every
    /// queued record is written; `write` is given the settings' pruning rule as of now.
    pub(super) fn with_writer<T>(
        &self,
        write: impl FnOnce(
            &HistoryStore,
            Option<&crate::history::Prune>,
        ) -> Result<T, crate::HistoryError>,
    ) -> Result<T, EngineError> {
        let journal = self.history.as_ref().ok_or(EngineError::NoHistory)?;
        let (store, settings) = journal.store()?;
        let store = store.as_ref().ok_or(EngineError::NoHistory)?;
        let rule = settings.prune_rule(SystemTime::now());
        Ok(write(store, rule.as_ref())?)
    }
}

impl Engine {
    /// The security events matching `filter`, newest first (docs/events.md).
    pub fn events(
        &self,
        filter: &crate::history::EventFilter,
    ) -> Result<Vec<crate::history::SecurityEvent>, EngineError> {
        self.with_store(|store| store.events(filter))
    }

    /// Applies the `[response]` rule to `request`'s caller: over its threshold of security
    /// events within the window, the request is made `isolated` (the answer says why) or
    /// refused. A history that cannot be read applies nothing (logged): it never blocks runs.
    pub(super) fn respond(
        &self,
        request: &mut crate::execution::ExecutionRequest,
    ) -> Result<Option<String>, EngineError> {
        let Some(rule) = &self.response else {
            return Ok(None);
        };
        let since = SystemTime::now()
            .checked_sub(rule.within)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let token = request.origin.token.as_deref();
        let events = match self.with_store(|store| store.caller_events(token, since)) {
            Ok(events) => events,
            Err(EngineError::NoHistory) => return Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "the response rule could not count events");
                return Ok(None);
            }
        };
        if events < rule.events {
            return Ok(None);
        }
        let caller = token.unwrap_or("the local caller").to_owned();
        let within = warden_core::units::format_duration(rule.within);
        match rule.action {
            warden_core::ResponseAction::Refuse => Err(EngineError::CallerRefused {
                caller,
                events,
                within,
            }),
            warden_core::ResponseAction::Isolate => {
                let isolated = warden_core::ModeRequest::Exactly(warden_core::Mode::Isolated);
                // What it asked, for the reason: the mode it names next is the rule's.
                let instead = match request.mode.replace(isolated) {
                    Some(warden_core::ModeRequest::Exactly(asked))
                        if asked != warden_core::Mode::Isolated =>
                    {
                        format!(" (it asked for {asked})")
                    }
                    _ => String::new(),
                };
                Ok(Some(format!(
                    "response rule: {caller} caused {events} security events within {within}, \
                     so its executions run isolated{instead}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::history::{Retention, ToolCallRecord};
    use crate::EngineConfig;

    fn engine(path: &Path) -> Engine {
        Engine::new(EngineConfig {
            history: Some(Ok(HistorySettings {
                max_count: Some(100),
                ..HistorySettings::new(path.to_path_buf(), Retention::Metadata)
            })),
            record_in_background: true,
            ..EngineConfig::new(std::path::PathBuf::from("/nonexistent"))
        })
        .expect("an engine")
    }

    fn call(caller: &str) -> ToolCallRecord<'_> {
        crate::history::refused_tool_call(Some(caller))
    }

    /// A read opens a connection of its own: to the file the writer opened, never to one put
    /// in its place since (a symbolic link to another database), which it refuses.
    #[test]
    fn a_reader_never_opens_a_file_put_in_the_databases_place() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("h.sqlite3");
        let other = dir.path().join("other.sqlite3");
        HistoryStore::open(&other)
            .and_then(|s| s.record_tool_call(&call("mallory"), None))
            .expect("another history");
        let engine = engine(&path);
        engine.record_tool_call(&call("alice"));
        std::fs::rename(&path, dir.path().join("moved.sqlite3")).expect("moved");
        std::os::unix::fs::symlink(&other, &path).expect("linked");
        // Refused (or answered from the file the writer opened), never read from the other.
        let read = engine.tool_stats(None, None);
        assert!(
            read.as_ref().map_or(true, |s| s.tools[0].calls == 1),
            "{read:?}"
        );
        let caller_seen = engine.tool_stats(None, Some("mallory"));
        assert!(
            caller_seen.as_ref().map_or(true, |s| s.tools.is_empty()),
            "read the other file: {caller_seen:?}"
        );
    }

    /// Hunt hist 2: every read held the history's one connection, under its lock, while it
    /// read: one token's statistics over a large history (seconds) held up every other
    /// token's records, reads and `[response]` counts. Here a read stays in the middle of its
    /// transaction while, on another thread, another token's tool calls are recorded (enough
    /// of them to pass the WAL's limit, whose emptying must not wait for the open snapshot)
    /// and its statistics, listing and events are read. They used to wait for the read's end,
    /// for ever; a deadlock shows as the bound of the channel passing, not as a slow answer.
    #[test]
    fn a_read_in_progress_blocks_neither_records_nor_other_reads() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let engine = Arc::new(engine(&dir.path().join("h.sqlite3")));
        engine.record_tool_call(&call("alice"));
        engine
            .with_store(|reader| {
                reader.begin_read();
                let (done, finished) = mpsc::channel();
                // Not scoped: a blocked thread must not keep the test from failing.
                let other = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let engine = other;
                    for _ in 0..300 {
                        engine.record_tool_call(&call("bob"));
                    }
                    let stats = engine.tool_stats(None, Some("bob")).expect("stats");
                    let listed = engine
                        .history_list(&HistoryFilter {
                            token: Some("bob".to_owned()),
                            ..HistoryFilter::default()
                        })
                        .expect("listed");
                    let events = engine
                        .events(&crate::history::EventFilter::default())
                        .expect("events");
                    let counted = engine
                        .with_store(|store| store.caller_events(Some("bob"), std::time::UNIX_EPOCH))
                        .expect("counted");
                    let answer = (stats.tools[0].calls, listed.len(), events.len(), counted);
                    let _ = done.send(answer);
                });
                let answer = finished.recv_timeout(Duration::from_secs(60));
                reader.end_read();
                // `max_count = 100`: past it, the caller that holds the most (bob) loses its
                // oldest; alice keeps her one.
                assert_eq!(answer, Ok((99, 0, 0, 0)), "blocked by the read in progress");
                Ok(())
            })
            .expect("read");
        let all = engine.tool_stats(None, None).expect("stats");
        assert_eq!(all.tools[0].calls, 100, "alice's one and bob's newest 99");
    }
}
