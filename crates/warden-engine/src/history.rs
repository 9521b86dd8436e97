//! The execution history: every execution recorded in an embedded SQLite database, listed,
//! shown and summed up into statistics, with the connections its network policy's proxy
//! logged (docs/history.md, docs/network.md#traffic-log).
//!
//! Runs in whichever process executed the program (`warden run`, later the server). Many such
//! processes write one database at once: it is in WAL mode (readers never block the writer),
//! every write takes the write lock up front (`BEGIN IMMEDIATE`) and waits up to
//! [`BUSY_TIMEOUT`] for it. Schema changes are numbered migrations applied in one transaction,
//! the version kept in `PRAGMA user_version` (<https://www.sqlite.org/pragma.html#pragma_user_version>).
//!
//! Submitted code and its output are data: they are stored only as far as the [`Retention`]
//! asks, each at most `[history] max_kept` bytes, and never logged. The whole is bounded by
//! `[history] max_size` (`budget`).

mod budget;
mod entry;
mod events;
mod network_stats;
mod prune;
mod schema;
mod stats;
pub(crate) mod time;
mod tool_calls;
mod traffic;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use warden_core::ByteSize;

use crate::execution::ExecutionResult;

pub use budget::{DEFAULT_MAX_SIZE, MIN_MAX_SIZE};
pub use entry::{
    CompileRecord, HistoryEntry, HistoryFilter, RecordInput, Retention, SecurityRecord,
    DEFAULT_MAX_KEPT,
};
pub use events::{EventFilter, SecurityEvent, Severity};
pub use network_stats::{HostStats, NetworkStats, PolicyStats};
pub use prune::Prune;
pub use stats::{LanguageStats, Stats};
pub(crate) use time::utc;
pub use tool_calls::{
    CategoryStat, LastError, ToolCallRecord, ToolCallStatus, ToolStat, ToolStats,
};
pub use traffic::{ConnectionFilter, LoggedConnection};

/// How long a write waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The first wait of [`wait_for_lock`]; each next one doubles, up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_micros(25);
/// The longest single wait of [`wait_for_lock`].
const LONGEST_WAIT: Duration = Duration::from_millis(5);

/// SQLite's busy handler: called with how many times it was called for the same lock, it
/// sleeps and asks for another try, or gives up once the waits add up to [`BUSY_TIMEOUT`].
///
/// SQLite's own (`busy_timeout`) sleeps 1 ms first, then 2, 5, 10 ms and more, while another
/// `warden run`'s record holds the write lock for a fraction of a millisecond: two CLI workers
/// slept a millisecond in one run of six, with both CPUs often idle. Here the waits start at
/// 25 µs and double.
fn wait_for_lock(count: i32) -> bool {
    let count = u32::try_from(count).unwrap_or(0);
    if waited_before(count) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(lock_wait(count));
    true
}

/// The busy handler of a connection: [`wait_for_lock`] while `waits` is set, else giving up
/// at once.
fn busy_handler(waits: &Arc<AtomicBool>) -> impl FnMut(i32) -> bool + Send + 'static {
    let waits = Arc::clone(waits);
    move |count| waits.load(Ordering::Relaxed) && wait_for_lock(count)
}

/// The `n`th wait (from 0) of [`wait_for_lock`].
fn lock_wait(n: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
        .min(LONGEST_WAIT)
}

/// What the waits before the `n`th add up to. From the 8th on each is [`LONGEST_WAIT`].
fn waited_before(n: u32) -> Duration {
    let ramp: Duration = (0..n.min(8)).map(lock_wait).sum();
    ramp + LONGEST_WAIT.saturating_mul(n.saturating_sub(8))
}

/// The WAL size past which a record empties it into the database.
const WAL_LIMIT: u64 = 1 << 20;

/// The WAL size past which emptying it waits for the readers of older snapshots
/// ([`HistoryStore::checkpoint_if_large`]).
const WAL_CEILING: u64 = 16 << 20;

/// A failure of the history store. The execution it was recording is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database's directory could not be created.
    #[error("creating the history directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a SQLite database, or a damaged one.
    #[error("{path} is corrupt or not a SQLite database (move it aside to start a new history)")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's report.
        #[source]
        source: rusqlite::Error,
    },
    /// Other processes held the database's lock for longer than [`BUSY_TIMEOUT`].
    #[error("history database {path} stayed locked by another process while {step}")]
    Locked {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
    },
    /// A newer warden wrote this database; this one does not know its schema.
    #[error(
        "history database {path} has schema version {found}, newer than this warden's {supported}"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// The latest version this warden knows.
        supported: u32,
    },
    /// Any other SQLite failure.
    #[error("{step} in history database {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// SQLite's report.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error("execution {id} in history database {path} has an unreadable {column}")]
    Decode {
        /// The database file.
        path: PathBuf,
        /// The execution.
        id: String,
        /// The column.
        column: &'static str,
    },
    /// The database file was replaced (moved, or a symbolic link put in its place) after the
    /// process opened it: a new connection would read another file.
    #[error(
        "history database {path} was replaced since it was opened (restart to use the new file)"
    )]
    Replaced {
        /// The database file.
        path: PathBuf,
    },
    /// An id (or id prefix) that is not hexadecimal.
    #[error("{0:?} is not an execution id (hex digits)")]
    InvalidId(String),
    /// An id prefix shared by several executions.
    #[error("{0:?} matches several executions; give more digits")]
    AmbiguousId(String),
    /// An id that names no recorded execution where one must (a listing's `before`): it was
    /// never recorded, or has been pruned since.
    #[error("no execution {0:?} in the history")]
    UnknownId(String),
}

/// An execution as the history will record it, made when it finished (its time, its code and
/// output as `retention` keeps them, each at most `max_kept` bytes), to be written later
/// ([`HistoryStore::record_all`]).
pub struct PendingRecord(entry::Row);

impl std::fmt::Debug for PendingRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRecord").finish_non_exhaustive()
    }
}

impl PendingRecord {
    /// The row of `result`, finished now, keeping of its code and output what `retention`
    /// says, each cut at `max_kept` bytes.
    pub fn new(
        result: &ExecutionResult,
        input: RecordInput<'_>,
        retention: Retention,
        max_kept: ByteSize,
    ) -> Self {
        Self(entry::Row::new(
            result,
            input,
            (retention, max_kept),
            SystemTime::now(),
        ))
    }
}

/// An open history database.
#[derive(Debug)]
pub struct HistoryStore {
    conn: Connection,
    path: PathBuf,
    /// [`HistoryStore::empty`]: a database in memory, which no other connection reaches.
    in_memory: bool,
    /// Whether the busy handler waits ([`wait_for_lock`]) or gives up at once.
    waits: Arc<AtomicBool>,
    /// The file this connection opened, for its readers ([`HistoryStore::reader_source`]).
    file: Option<ReaderSource>,
    /// Whether a record since the last prune was one after which the size is measured
    /// (`budget::due`).
    size_due: AtomicBool,
}

/// The file an open database is, for more connections to it ([`HistoryStore::open_reader`]):
/// its real path (no symbolic link) and its identity when the writer opened it, so that a
/// reader never opens another file put in its place (a symbolic link to another database:
/// the writer keeps the file it opened, and so do its readers, or they fail).
#[derive(Debug, Clone)]
pub struct ReaderSource {
    /// The path the history was opened by, for messages.
    path: PathBuf,
    real: PathBuf,
    id: (u64, u64),
}

impl ReaderSource {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let real = std::fs::canonicalize(path).ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        Some(Self {
            path: path.to_owned(),
            real,
            id: (meta.dev(), meta.ino()),
        })
    }
}

impl HistoryStore {
    /// The latest schema version, the one [`HistoryStore::open`] migrates to.
    pub const LATEST_SCHEMA_VERSION: u32 = schema::LATEST;

    /// Opens (creating it, its directory and its schema if needed) the database at `path`, and
    /// migrates an older schema to the current one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let conn = Connection::open(&path).map_err(|e| classify(&path, "opening", e))?;
        let mut store = Self {
            conn,
            path,
            in_memory: false,
            waits: Arc::new(AtomicBool::new(true)),
            file: None,
            size_due: AtomicBool::new(false),
        };
        let handler = busy_handler(&store.waits);
        store
            .conn
            .busy_handler(Some(handler))
            .map_err(|e| store.error("setting the busy handler", e))?;
        store.retry_while_busy("switching to WAL mode", |s| s.use_wal())?;
        schema::migrate(&mut store.conn, &store.path)?;
        store.file = ReaderSource::of(&store.path);
        Ok(store)
    }

    /// An empty history in memory, of the latest schema, standing for the database at `path`
    /// that does not exist yet: what a reader finds there, without creating it.
    pub fn empty(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open_in_memory().map_err(|e| classify(&path, "opening", e))?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            conn,
            path,
            in_memory: true,
            waits: Arc::new(AtomicBool::new(true)),
            file: None,
            size_due: AtomicBool::new(false),
        })
    }

    /// Where more connections to this database open ([`HistoryStore::open_reader`]): `None`
    /// for a database in memory, or a file whose real path could not be read.
    pub fn reader_source(&self) -> Option<ReaderSource> {
        self.file.clone()
    }

    /// Another connection to the database `source` names, which [`HistoryStore::open`] opened
    /// (and migrated) already, for reads only (`query_only`): in WAL mode it reads beside the
    /// writer and other readers, so that a long read (a token's statistics over a large
    /// history) holds up neither the records nor the other reads. It never checkpoints. A
    /// file that is no longer the one the writer opened is refused.
    pub fn open_reader(source: &ReaderSource) -> Result<Self, HistoryError> {
        use rusqlite::OpenFlags;
        use std::os::unix::fs::MetadataExt;
        let path = source.path.clone();
        let conn = Connection::open_with_flags(
            &source.real,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| classify(&path, "opening", e))?;
        let same = std::fs::metadata(&source.real).is_ok_and(|m| (m.dev(), m.ino()) == source.id);
        if !same {
            return Err(HistoryError::Replaced { path });
        }
        let mut store = Self {
            conn,
            path,
            in_memory: false,
            waits: Arc::new(AtomicBool::new(true)),
            file: Some(source.clone()),
            size_due: AtomicBool::new(false),
        };
        let step = "opening a reader";
        let handler = busy_handler(&store.waits);
        store
            .conn
            .busy_handler(Some(handler))
            .map_err(|e| store.error(step, e))?;
        store
            .conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| store.error(step, e))?;
        store
            .conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| store.error(step, e))?;
        Ok(store)
    }

    /// Whether this is [`HistoryStore::empty`]'s database in memory, which only this
    /// connection reaches.
    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one execution; of its code and output, only what `retention` keeps, each at
    /// most [`DEFAULT_MAX_KEPT`] bytes.
    pub fn record(
        &self,
        result: &ExecutionResult,
        input: RecordInput<'_>,
        retention: Retention,
    ) -> Result<(), HistoryError> {
        self.record_all(&[PendingRecord::new(
            result,
            input,
            retention,
            DEFAULT_MAX_KEPT,
        )])
    }

    /// Records executions already turned into rows, in one transaction.
    pub fn record_all(&self, records: &[PendingRecord]) -> Result<(), HistoryError> {
        let step = "recording an execution";
        let tx = self.immediate(step)?;
        let mut due = false;
        for record in records {
            let rowid = record.0.insert(&tx).map_err(|e| self.error(step, e))?;
            due |= budget::due(rowid);
        }
        self.commit(tx, step)?;
        if due {
            self.size_due.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The executions matching `filter`, newest first, without code or output.
    pub fn list(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>, HistoryError> {
        let Some(before) = &filter.before else {
            return entry::list(&self.conn, &self.path, filter, None);
        };
        let id = self
            .resolve_of(before, filter.token.as_deref())?
            .ok_or_else(|| HistoryError::UnknownId(before.clone()))?;
        let finished_at_ms: i64 = self
            .conn
            .query_row(
                "SELECT finished_at_ms FROM executions WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .map_err(|e| self.error("reading an execution", e))?;
        entry::list(&self.conn, &self.path, filter, Some((finished_at_ms, &id)))
    }

    /// One execution, by id or by a unique prefix of it, with its code and output when they
    /// were retained, and its network policy's connections.
    pub fn get(&self, id: &str) -> Result<Option<HistoryEntry>, HistoryError> {
        match self.resolve(id)? {
            Some(full) => entry::get(&self.conn, &self.path, &full),
            None => Ok(None),
        }
    }

    /// The logged connections matching `filter`, newest first. An execution the filter names
    /// that is not in the history has none.
    pub fn connections(
        &self,
        filter: &ConnectionFilter,
    ) -> Result<Vec<LoggedConnection>, HistoryError> {
        let execution = match filter.execution.as_deref().map(|id| self.resolve(id)) {
            None => None,
            Some(Ok(Some(full))) => Some(full),
            Some(Ok(None)) => return Ok(Vec::new()),
            Some(Err(e)) => return Err(e),
        };
        traffic::query(&self.conn, &self.path, filter, execution.as_deref())
    }

    /// Network statistics over the executions that finished at or after `since` (all when
    /// `None`).
    pub fn network_stats(&self, since: Option<SystemTime>) -> Result<NetworkStats, HistoryError> {
        network_stats::compute(&self.conn, &self.path, since)
    }

    /// Statistics over the executions that finished at or after `since` (all when `None`).
    pub fn stats(&self, since: Option<SystemTime>) -> Result<Stats, HistoryError> {
        stats::compute(&self.conn, &self.path, since, None)
    }

    /// [`HistoryStore::stats`] of the executions the API token named `token` asked for
    /// (every execution when `None`).
    pub fn stats_of(
        &self,
        since: Option<SystemTime>,
        token: Option<&str>,
    ) -> Result<Stats, HistoryError> {
        stats::compute(&self.conn, &self.path, since, token)
    }

    /// The security events matching `filter`, newest first (docs/events.md).
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<SecurityEvent>, HistoryError> {
        events::list(&self.conn, &self.path, filter)
    }

    /// How many security events the executions of `token` (the local caller when `None`)
    /// recorded since `since`.
    pub fn caller_events(
        &self,
        token: Option<&str>,
        since: SystemTime,
    ) -> Result<u64, HistoryError> {
        events::count_for(&self.conn, &self.path, token, since)
    }

    /// Records one call of the tool registry and, in the same transaction, deletes the calls
    /// `rule` no longer keeps (by age, and past its count the oldest of the caller that holds
    /// the most), and past its size (measured after one call in 64) the records of the caller
    /// that holds the most bytes.
    pub fn record_tool_call(
        &self,
        call: &ToolCallRecord<'_>,
        rule: Option<&Prune>,
    ) -> Result<(), HistoryError> {
        let step = "recording a tool call";
        let tx = self.immediate(step)?;
        let at = call.answered_at.unwrap_or_else(SystemTime::now);
        tool_calls::insert(&tx, call, at).map_err(|e| self.error(step, e))?;
        let seq = tx.last_insert_rowid();
        if let Some(rule) = rule {
            rule.apply_to_tool_calls(&tx)
                .map_err(|e| self.error(step, e))?;
            let due = budget::due(seq) || self.size_due.swap(false, Ordering::Relaxed);
            if let Some(max_size) = rule.max_size.filter(|_| due) {
                let shrunk = budget::shrink(&tx, max_size).map_err(|e| self.error(step, e))?;
                self.size_due.fetch_or(shrunk.over, Ordering::Relaxed);
            }
        }
        self.commit(tx, step)
    }

    /// The tool registry's statistics over the calls made at or after `since` (all when
    /// `None`).
    pub fn tool_stats(&self, since: Option<SystemTime>) -> Result<ToolStats, HistoryError> {
        tool_calls::stats(&self.conn, &self.path, since, None)
    }

    /// [`HistoryStore::tool_stats`] of the calls the API token named `caller` made (every
    /// call when `None`).
    pub fn tool_stats_of(
        &self,
        since: Option<SystemTime>,
        caller: Option<&str>,
    ) -> Result<ToolStats, HistoryError> {
        tool_calls::stats(&self.conn, &self.path, since, caller)
    }

    /// Deletes the executions and the tool calls that `rule` no longer keeps; returns how
    /// many executions. Its `max_size` is measured only when a record since the last prune
    /// was numbered a multiple of 64, or the last measure found the database still past it
    /// (`budget`); with nothing else to apply, nothing is written.
    pub fn prune(&self, rule: &Prune) -> Result<u64, HistoryError> {
        let size = rule
            .max_size
            .filter(|_| self.size_due.swap(false, Ordering::Relaxed));
        if rule.older_than.is_none() && rule.keep_last.is_none() && size.is_none() {
            return Ok(0);
        }
        let step = "pruning old executions";
        let tx = self.immediate(step)?;
        rule.apply_to_tool_calls(&tx)
            .map_err(|e| self.error(step, e))?;
        let deleted = rule.apply(&tx).map_err(|e| self.error(step, e))?;
        let shrunk = match size {
            Some(max_size) => budget::shrink(&tx, max_size).map_err(|e| self.error(step, e))?,
            None => budget::Shrunk::default(),
        };
        self.commit(tx, step)?;
        // Still past the bound: measured again after the next record, not the 64th.
        self.size_due.fetch_or(shrunk.over, Ordering::Relaxed);
        Ok(deleted + shrunk.deleted)
    }

    /// The full id of the one execution whose id starts with `id`.
    fn resolve(&self, id: &str) -> Result<Option<String>, HistoryError> {
        self.resolve_of(id, None)
    }

    /// [`HistoryStore::resolve`] among the executions of the API token named `token` only,
    /// when given: another token's ids are neither found nor make a prefix ambiguous.
    fn resolve_of(&self, id: &str, token: Option<&str>) -> Result<Option<String>, HistoryError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(HistoryError::InvalidId(id.to_owned()));
        }
        let step = "reading an execution";
        // The ids that start with the prefix, as a range of the primary key's index (`LIKE`
        // cannot use it): ids are lowercase hex, which sorts below `~`.
        let low = id.to_ascii_lowercase();
        let high = format!("{low}~");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM executions WHERE id >= ?1 AND id < ?2 \
                 AND (?3 IS NULL OR token = ?3) LIMIT 2",
            )
            .map_err(|e| self.error(step, e))?;
        let ids = stmt
            .query_map(rusqlite::params![&low, &high, token], |r| {
                r.get::<_, String>(0)
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| self.error(step, e))?;
        match ids.as_slice() {
            [] => Ok(None),
            [full] => Ok(Some(full.clone())),
            _ => Err(HistoryError::AmbiguousId(id.to_owned())),
        }
    }

    /// Begins a read transaction and reads, holding a snapshot until [`HistoryStore::end_read`]:
    /// a reader in the middle of a long read.
    #[cfg(test)]
    pub(crate) fn begin_read(&self) {
        self.conn.execute_batch("BEGIN").expect("a read begins");
        let _: i64 = self
            .conn
            .query_row("SELECT count(*) FROM executions", [], |r| r.get(0))
            .expect("a read");
    }

    /// Ends [`HistoryStore::begin_read`]'s transaction.
    #[cfg(test)]
    pub(crate) fn end_read(&self) {
        self.conn.execute_batch("COMMIT").expect("the read ends");
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, HistoryError> {
        schema::version(&self.conn).map_err(|e| self.error("reading the schema version", e))
    }

    /// WAL lets readers and the one writer proceed together; `synchronous = NORMAL` is durable
    /// against a crash of the process (not of the machine) and spares an fsync per record.
    fn use_wal(&self) -> rusqlite::Result<()> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "history database is not in WAL mode");
        }
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        // SQLite's defaults checkpoint the WAL when the last connection closes, and at each
        // commit past 1000 pages. Both fsync, and a `warden run` is a short-lived last
        // connection: that cost it 2 to 15 ms (the more the disk is busy, the longer). So both
        // are off, and `checkpoint_if_large` empties the WAL once in a while instead. (A WAL
        // checkpointed but not emptied would not do: the next process rebuilds the WAL index
        // from the whole file, forgetting what was checkpointed, so the WAL would never
        // restart.)
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)
    }

    /// Copies the WAL into the database and empties it once it passes [`WAL_LIMIT`]: every
    /// process that opens the database first reads the whole WAL. Best effort: a busy or
    /// failed checkpoint is left to the next record.
    ///
    /// Emptying the WAL waits for the readers of older snapshots to end (SQLite calls the busy
    /// handler meanwhile). Below [`WAL_CEILING`] it does not wait: the write that called it
    /// holds the engine's write lock, and a reader may be a long one (a token's statistics).
    /// Past it, it waits (up to [`BUSY_TIMEOUT`]), so that readers that keep overlapping
    /// cannot keep the WAL from ever being emptied.
    fn checkpoint_if_large(&self) {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size <= WAL_LIMIT {
            return;
        }
        // A busy handler that gives up makes a checkpoint that would wait copy what it can
        // and report itself busy.
        self.waits.store(size > WAL_CEILING, Ordering::Relaxed);
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        self.waits.store(true, Ordering::Relaxed);
        match done {
            Ok(0) => tracing::debug!(path = %self.path.display(), size, "history WAL emptied"),
            Ok(_) => tracing::debug!(path = %self.path.display(), "history WAL busy, not emptied"),
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "history WAL not emptied")
            }
        }
    }

    /// Changing the journal mode needs an exclusive lock that SQLite does not always wait for
    /// through the busy handler, so a racing first open is retried here, within the same bound.
    fn retry_while_busy(
        &self,
        step: &'static str,
        f: impl Fn(&Self) -> rusqlite::Result<()>,
    ) -> Result<(), HistoryError> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match f(self) {
                Ok(()) => return Ok(()),
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(self.error(step, e)),
            }
        }
    }

    /// Commits a write and keeps the WAL near [`WAL_LIMIT`]: every write path ends here, so
    /// that no kind of record (tool calls, which run no execution, included) grows the WAL
    /// without bound while auto-checkpointing is off ([`HistoryStore::use_wal`]).
    fn commit(&self, tx: Transaction<'_>, step: &'static str) -> Result<(), HistoryError> {
        tx.commit().map_err(|e| self.error(step, e))?;
        self.checkpoint_if_large();
        Ok(())
    }

    /// A transaction holding the write lock from its start, so that it never has to upgrade a
    /// stale read snapshot (which fails at once with `SQLITE_BUSY_SNAPSHOT` instead of waiting).
    fn immediate(&self, step: &'static str) -> Result<Transaction<'_>, HistoryError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.error(step, e))
    }

    fn error(&self, step: &'static str, e: rusqlite::Error) -> HistoryError {
        classify(&self.path, step, e)
    }
}

/// Creates the database's directory (mode 0700) and the file itself (mode 0600) when missing:
/// it holds submitted code. SQLite gives its `-wal` and `-shm` files the database's mode.
fn create_private(path: &Path) -> Result<(), HistoryError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| HistoryError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path);
    // A failure here (a read-only file, say) is reported by SQLite's open, with its reason.
    drop(created);
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn classify(path: &Path, step: &'static str, e: rusqlite::Error) -> HistoryError {
    let path = path.to_owned();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            HistoryError::Corrupt { path, source: e }
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            HistoryError::Locked { path, step }
        }
        _ => HistoryError::Sqlite {
            path,
            step,
            source: e,
        },
    }
}

/// Unix milliseconds as the history's JSON shows times: RFC 3339 UTC with milliseconds
/// (`2026-04-20T12:00:01.234Z`). For a connection's `started_ms`.
pub fn utc_from_unix_ms(ms: u64) -> String {
    time::utc(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Unix milliseconds of `t` (0 before the epoch, saturating far after it).
fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A tool call refused for its input, by `caller`: what the tests record.
#[cfg(test)]
pub(crate) fn refused_tool_call(caller: Option<&str>) -> ToolCallRecord<'_> {
    ToolCallRecord {
        tool: "wc",
        category: "compute",
        api: "v1",
        caller,
        status: ToolCallStatus::Refused,
        latency: Duration::from_millis(1),
        execution_id: None,
        error: Some("input: missing required property \"text\""),
        answered_at: None,
    }
}

/// How SQLite plans `query` on a new database of the latest schema, one line per step
/// (`EXPLAIN QUERY PLAN`'s details), every parameter bound to 1.
#[cfg(test)]
fn query_plan(query: &str) -> Vec<String> {
    let mut conn = Connection::open_in_memory().expect("in memory");
    schema::migrate(&mut conn, Path::new(":memory:")).expect("migrated");
    conn.prepare(&format!("EXPLAIN QUERY PLAN {query}"))
        .and_then(|mut s| {
            let arguments = vec![1; s.parameter_count()];
            s.query_map(rusqlite::params_from_iter(arguments), |r| r.get(3))?
                .collect()
        })
        .expect("planned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_start_short_double_and_give_up_at_the_busy_timeout() {
        assert_eq!(lock_wait(0), FIRST_WAIT);
        assert_eq!(lock_wait(1), FIRST_WAIT * 2);
        assert_eq!(lock_wait(8), LONGEST_WAIT);
        assert_eq!(lock_wait(u32::MAX), LONGEST_WAIT);
        // The closed form agrees with adding the waits one by one.
        for n in 0..40 {
            let added: Duration = (0..n).map(lock_wait).sum();
            assert_eq!(waited_before(n), added, "{n}");
        }
        let last_try = (0..)
            .find(|n| waited_before(*n) >= BUSY_TIMEOUT)
            .expect("finite");
        assert!((990..1010).contains(&last_try), "{last_try}");
        assert!(!wait_for_lock(i32::try_from(last_try).expect("small")));
        assert!(!wait_for_lock(i32::MAX));
    }

    fn wal_size(store: &HistoryStore) -> u64 {
        let mut wal = store.path().to_path_buf().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len())
    }

    /// Hunt hist 1: tool calls never emptied the WAL (auto-checkpointing is off), about 22 KB
    /// a call: 5,000 refused calls left a 109 MB WAL. Every write path now empties it past
    /// [`WAL_LIMIT`], pruning included.
    #[test]
    fn tool_calls_and_pruning_keep_the_wal_near_its_limit() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = HistoryStore::open(dir.path().join("h.sqlite3")).expect("opened");
        // One commit adds a few pages; the WAL may pass the limit by one commit at most.
        let bound = WAL_LIMIT + (256 << 10);
        let mut largest = 0;
        for _ in 0..400 {
            store
                .record_tool_call(&refused_tool_call(Some("a")), None)
                .expect("recorded");
            largest = largest.max(wal_size(&store));
        }
        assert!(largest <= bound, "the WAL reached {largest} bytes");
        assert!(
            largest > WAL_LIMIT / 2,
            "the test wrote too little: {largest}"
        );
        let everything = Prune {
            older_than: Some(SystemTime::now() + Duration::from_secs(3600)),
            ..Prune::default()
        };
        store.prune(&everything).expect("pruned");
        assert!(wal_size(&store) <= bound, "{}", wal_size(&store));
        assert_eq!(store.tool_stats(None).expect("stats").tools.len(), 0);
    }

    /// Bug hunt: a wrapped server's calls, recorded when its execution ends, all took that
    /// time; each keeps the time of its answer now, which `since` selects on.
    #[test]
    fn a_tool_call_is_recorded_at_its_answer() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = HistoryStore::open(dir.path().join("h.sqlite3")).expect("opened");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for (tool, answered_at) in [("old", Some(hour_ago)), ("new", None)] {
            store
                .record_tool_call(
                    &ToolCallRecord {
                        tool,
                        category: "host",
                        api: "mcp",
                        caller: None,
                        status: ToolCallStatus::Success,
                        latency: Duration::from_millis(5),
                        execution_id: None,
                        error: None,
                        answered_at,
                    },
                    None,
                )
                .expect("recorded");
        }
        let since = SystemTime::now() - Duration::from_secs(60);
        let recent = store.tool_stats(Some(since)).expect("stats");
        let tools: Vec<&str> = recent.tools.iter().map(|t| t.tool.as_str()).collect();
        assert_eq!(tools, ["new"]);
        assert_eq!(store.tool_stats(None).expect("stats").tools.len(), 2);
    }
}
