//! The engine's history: each execution recorded as it finishes (pruned per the settings),
//! and the questions adapters ask of it (`history`, `show`, `stats`, `network log`, `network
//! stats`). Recording never fails an execution: a failure becomes a [`Warning`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use warden_sandbox::Stdin;

use super::Engine;
use crate::error::EngineError;
use crate::execution::{ExecutionRequest, ExecutionResult, Warning, WarningKind};
use crate::history::{
    ConnectionFilter, HistoryEntry, HistoryFilter, HistoryStore, LoggedConnection, NetworkStats,
    RecordInput, Stats,
};
use crate::settings::{HistorySettings, SettingError};

/// The history settings and the database, opened at the first use and kept open.
#[derive(Debug)]
pub(super) struct Journal {
    settings: Result<HistorySettings, SettingError>,
    store: Mutex<Option<HistoryStore>>,
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
            // A pipe is passed through unread: its size is unknown.
            Stdin::Pipe(_) => None,
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
    pub(super) fn new(settings: Result<HistorySettings, SettingError>) -> Self {
        Self {
            settings,
            store: Mutex::new(None),
        }
    }

    /// The open database, opening it if this is the first use.
    fn store(
        &self,
    ) -> Result<(MutexGuard<'_, Option<HistoryStore>>, &HistorySettings), EngineError> {
        let settings = self
            .settings
            .as_ref()
            .map_err(|e| EngineError::HistorySetting(e.clone()))?;
        // A panic while holding the lock leaves the store as usable as before it.
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if store.is_none() {
            *store = Some(HistoryStore::open(&settings.path)?);
        }
        Ok((store, settings))
    }
}

impl Engine {
    /// Records an execution and prunes the history; what failed becomes a warning.
    pub(super) fn record(&self, result: &ExecutionResult, input: RecordInput<'_>) -> Vec<Warning> {
        let Some(journal) = &self.history else {
            return Vec::new();
        };
        let warn = |what, e: &dyn std::error::Error| Warning {
            what,
            detail: chain(e),
        };
        let (store, settings) = match journal.store() {
            Ok(open) => open,
            Err(e) => return vec![warn(WarningKind::HistoryNotRecorded, &e)],
        };
        let Some(store) = store.as_ref() else {
            return Vec::new();
        };
        if let Err(e) = store.record(result, input, settings.retention) {
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

    /// The recorded executions matching `filter`, newest first, without code or output.
    pub fn history_list(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>, EngineError> {
        self.with_store(|store| store.list(filter))
    }

    /// One recorded execution, by id or a unique prefix of it, with its code and output when
    /// they were retained.
    pub fn history_entry(&self, id: &str) -> Result<Option<HistoryEntry>, EngineError> {
        self.with_store(|store| store.get(id))
    }

    /// Statistics over the executions that finished at or after `since` (all when `None`).
    pub fn history_stats(&self, since: Option<SystemTime>) -> Result<Stats, EngineError> {
        self.with_store(|store| store.stats(since))
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
        journal.settings.as_ref().ok().map(|s| s.path.as_path())
    }

    pub(super) fn with_store<T>(
        &self,
        query: impl FnOnce(&HistoryStore) -> Result<T, crate::HistoryError>,
    ) -> Result<T, EngineError> {
        let journal = self.history.as_ref().ok_or(EngineError::NoHistory)?;
        let (store, _) = journal.store()?;
        let store = store.as_ref().ok_or(EngineError::NoHistory)?;
        Ok(query(store)?)
    }
}

/// An error and its causes, `a: b: c`, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
                request.mode = Some(warden_core::ModeRequest::Exactly(
                    warden_core::Mode::Isolated,
                ));
                Ok(Some(format!(
                    "response rule: {caller} caused {events} security events within {within}, \
                     so its executions run isolated"
                )))
            }
        }
    }
}
