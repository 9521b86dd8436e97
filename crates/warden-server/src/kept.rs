//! The answers the server owes its clients for later: Judge0 submissions by token and `/v1`
//! asynchronous executions by id, each kept as one JSON document in a SQLite database beside
//! the history (`results.sqlite3`), so that a restart forgets none of them. A document is
//! written when its request is accepted (queued) and again when it finishes. A request that
//! may be run again after a restart (an asynchronous one) is kept with its document until it
//! starts ([`Kept::started`]): one still queued when the server starts again is run then
//! ([`Kept::resumable`]); one that had started was interrupted by the last server's end, and
//! the server's start rewrites it as such ([`Kept::interrupted`]).
//!
//! One server owns a database: it holds an advisory lock on the file while it runs. A second
//! server started on the same directory waits for it and refuses to start (`serve`); one that
//! still finds the lock taken here keeps its documents in memory instead (it must not mark the
//! first one's queued requests as interrupted).
//!
//! Bounded: finished documents older than [`Bounds::max_age`] are deleted, and past
//! [`Bounds::documents`] finished documents, or [`Bounds::bytes`] of them, the oldest finished
//! ones of the caller (the API token) that holds the most of them, in documents or in bytes,
//! whichever bound is passed (their id then answers 404; their executions stay in the
//! history). So a caller that floods the server with answers forgets its own, never another's
//! while it holds more than they do: one tenant's few large outputs made another's Judge0
//! submission and `wait=false` job answer 404 within 30 s. Unfinished documents are never
//! deleted.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// What a kept document is the answer of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A Judge0 submission, by token.
    Judge0,
    /// A `/v1/executions?wait=false` execution, by id.
    Job,
}

impl Kind {
    const fn name(self) -> &'static str {
        match self {
            Kind::Judge0 => "judge0",
            Kind::Job => "v1",
        }
    }
}

/// How much is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Finished documents kept; past it, the caller's with the most go first.
    pub(crate) documents: u64,
    /// Bytes of finished documents kept; past it, the caller's with the most bytes go first.
    /// The newest is kept whatever its size.
    pub(crate) bytes: u64,
    /// How long a finished document is kept.
    pub(crate) max_age: Duration,
}

/// A day: what the bounds keep unless told otherwise (`[server] results_max_age`).
const DAY: Duration = Duration::from_secs(24 * 3600);

impl Bounds {
    /// On disk: a hundred thousand answers, a gigabyte of them.
    pub(crate) const ON_DISK: Self = Self {
        documents: 100_000,
        bytes: 1 << 30,
        max_age: DAY,
    };
    /// In memory (no database, or another server's): ten thousand, 256 MiB.
    pub(crate) const IN_MEMORY: Self = Self {
        documents: 10_000,
        bytes: 256 << 20,
        max_age: DAY,
    };

    /// These bounds, finished documents kept for `max_age`.
    pub(crate) const fn for_age(self, max_age: Duration) -> Self {
        Self { max_age, ..self }
    }
}

/// Counts of one kind's documents ([`Kept::tally`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// All of them.
    pub(crate) total: u64,
    /// (UTC day, as days since 1970-01-01; how many were first written that day), by day.
    pub(crate) by_day: Vec<(i64, u64)>,
    /// (the integer at the asked path, or `None`; how many), the largest counts first.
    pub(crate) by_field: Vec<(Option<i64>, u64)>,
    /// The finished ones: (the integer at the state's path, or `None`; how many).
    pub(crate) finished_by_state: Vec<(Option<i64>, u64)>,
    /// The unfinished ones: (key, the integer at the state's path).
    pub(crate) unfinished: Vec<(String, Option<i64>)>,
    /// The database's size in bytes (its main file, as SQLite counts its pages).
    pub(crate) bytes: u64,
}

/// Why the database could not be used (the server then keeps its answers in memory).
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeptError {
    /// Its directory or file could not be created or opened.
    #[error("opening {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another server holds it.
    #[error("{path} is in use by another warden server")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// A newer warden wrote it.
    #[error("{path} has schema version {version}, newer than this warden's {VERSION}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        version: u32,
    },
    /// SQLite refused.
    #[error("{step} in {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// SQLite's report.
        #[source]
        source: rusqlite::Error,
    },
}

/// The schema's version (`PRAGMA user_version`).
const VERSION: u32 = 4;

/// Version 4. A finished document is inserted when it finishes, so the finished ones' `seq`
/// order is the order they finished in; `created_ms` is when its key was first written (the
/// request's acceptance), kept through its rewrites: the order a listing shows. `request` is
/// what runs a queued request again after a restart, until it starts. `caller` is the API
/// token's name whose answer it is (NULL without tokens): the bounds delete from the caller
/// holding the most, its oldest first, through `kept_caller`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kept (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,
    key            TEXT NOT NULL,
    finished       INTEGER NOT NULL,
    finished_at_ms INTEGER,
    body           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL DEFAULT 0,
    request        TEXT,
    caller         TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS kept_finished ON kept (finished, seq);
CREATE INDEX IF NOT EXISTS kept_created ON kept (kind, created_ms);
CREATE INDEX IF NOT EXISTS kept_caller ON kept (finished, caller, seq);
PRAGMA user_version = 4;
";

/// From version 1, which had no `created_ms`: a document's own `created_at` (a Judge0
/// submission's), else when it finished, else 0.
const FROM_VERSION_1: &str = "
ALTER TABLE kept ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
UPDATE kept SET created_ms = coalesce(
    CASE WHEN json_valid(body) THEN
        CAST((julianday(json_extract(body, '$.created_at')) - 2440587.5) * 86400000 AS INTEGER)
    END,
    finished_at_ms,
    0);
";

/// From version 2, which kept no request to run again.
const FROM_VERSION_2: &str = "ALTER TABLE kept ADD COLUMN request TEXT;";

/// From version 3, which kept no caller: a job's is its own `token`, a queued request's the
/// `token` it is to run again under; other Judge0 submissions' is unknown (NULL, one more
/// caller to the bounds).
const FROM_VERSION_3: &str = "
ALTER TABLE kept ADD COLUMN caller TEXT;
UPDATE kept SET caller = CASE
    WHEN kind = 'v1' AND json_valid(body) THEN json_extract(body, '$.token')
    WHEN request IS NOT NULL AND json_valid(request) THEN json_extract(request, '$.token')
END;
";

/// A queued request to run again: its key, its document, what runs it, when it was accepted
/// (milliseconds since the epoch), and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resumable {
    pub(crate) key: String,
    pub(crate) body: String,
    pub(crate) request: String,
    pub(crate) created_ms: i64,
    pub(crate) caller: Option<String>,
}

/// An unfinished answer the last server interrupted: its key, its document, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interrupted {
    pub(crate) key: String,
    pub(crate) body: String,
    pub(crate) caller: Option<String>,
}

/// The kept answers.
#[derive(Debug)]
pub(crate) struct Kept {
    inner: Mutex<Inner>,
    bounds: Bounds,
    /// The database's file, which readers that must not hold up the writes open on their own
    /// ([`Kept::tally`]); none in memory.
    path: Option<PathBuf>,
    /// Answers the database refused (a full disk): kept here, read before it, until a later
    /// write of theirs succeeds, so that an accepted request is never answered "not found".
    /// Lost at a restart; at most [`MAX_UNWRITTEN`], the oldest dropped first.
    unwritten: Mutex<Unwritten>,
}

/// The most answers [`Kept::unwritten`] holds.
const MAX_UNWRITTEN: usize = 10_000;

#[derive(Debug, Default)]
struct Unwritten {
    bodies: std::collections::HashMap<(Kind, String), String>,
    /// The keys in the order they were first held.
    order: std::collections::VecDeque<(Kind, String)>,
}

impl Unwritten {
    fn hold(&mut self, kind: Kind, key: &str, body: &str) {
        let id = (kind, key.to_owned());
        if self.bodies.insert(id.clone(), body.to_owned()).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_UNWRITTEN {
            if let Some(oldest) = self.order.pop_front() {
                self.bodies.remove(&oldest);
            }
        }
    }

    fn forget(&mut self, kind: Kind, key: &str) -> bool {
        let id = (kind, key.to_owned());
        let held = self.bodies.remove(&id).is_some();
        if held {
            self.order.retain(|k| *k != id);
        }
        held
    }
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// The finished documents' count and bytes, in all and per caller.
    totals: Totals,
    /// The lock that makes this server the database's owner (held while it runs).
    _owner: Option<File>,
}

/// How many finished documents there are and their bytes, in all and per caller (API token;
/// `None` without one): what the bounds are checked against, without reading the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Totals {
    count: u64,
    bytes: u64,
    by_caller: HashMap<Option<String>, (u64, u64)>,
}

impl Totals {
    fn add(&mut self, caller: Option<&str>, size: u64) {
        self.count += 1;
        self.bytes = self.bytes.saturating_add(size);
        let held = self.by_caller.entry(caller.map(str::to_owned)).or_default();
        *held = (held.0 + 1, held.1.saturating_add(size));
    }

    fn remove(&mut self, caller: Option<&str>, size: u64) {
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
        let key = caller.map(str::to_owned);
        if let Some(held) = self.by_caller.get_mut(&key) {
            *held = (held.0.saturating_sub(1), held.1.saturating_sub(size));
            if held.0 == 0 {
                self.by_caller.remove(&key);
            }
        }
    }

    /// The caller holding the most bytes (`by_bytes`) or documents; ties go to the caller
    /// named first (`None` before any name), so that the choice does not depend on the map.
    fn heaviest(&self, by_bytes: bool) -> Option<Option<String>> {
        self.by_caller
            .iter()
            .max_by(|(a, (a_count, a_bytes)), (b, (b_count, b_bytes))| {
                let (a_held, b_held) = if by_bytes {
                    (a_bytes, b_bytes)
                } else {
                    (a_count, b_count)
                };
                a_held.cmp(b_held).then_with(|| b.cmp(a))
            })
            .map(|(caller, _)| caller.clone())
    }
}

impl Kept {
    /// The database at `path` (created with its directory if needed), finished documents kept
    /// for `max_age`.
    pub(crate) fn open(path: &Path, max_age: Duration) -> Result<Self, KeptError> {
        let open_error = |source| KeptError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(open_error)?;
        }
        let owner = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(open_error)?
        };
        // A `flock`, which SQLite's own (`fcntl`) locks do not interfere with.
        if owner.try_lock().is_err() {
            return Err(KeptError::InUse {
                path: path.to_owned(),
            });
        }
        let sqlite = |step| {
            let path = path.to_owned();
            move |source| KeptError::Sqlite { path, step, source }
        };
        let conn = Connection::open(path).map_err(sqlite("opening"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite("setting the busy timeout"))?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sqlite("switching to WAL mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite("setting synchronous"))?;
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite("reading the schema version"))?;
        if version > VERSION {
            return Err(KeptError::TooNew {
                path: path.to_owned(),
                version,
            });
        }
        let mut kept = Self::with(conn, Some(owner), Bounds::ON_DISK.for_age(max_age))
            .map_err(sqlite("creating the schema"))?;
        kept.path = Some(path.to_owned());
        Ok(kept)
    }

    /// Answers kept in memory only: a restart forgets them.
    pub(crate) fn in_memory(bounds: Bounds) -> Self {
        Connection::open_in_memory()
            .and_then(|conn| Self::with(conn, None, bounds))
            .expect("SQLite opens a database in memory")
    }

    fn with(conn: Connection, owner: Option<File>, bounds: Bounds) -> rusqlite::Result<Self> {
        let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 1 {
            conn.execute_batch(FROM_VERSION_1)?;
        }
        if (1..=2).contains(&version) {
            conn.execute_batch(FROM_VERSION_2)?;
        }
        if (1..=3).contains(&version) {
            conn.execute_batch(FROM_VERSION_3)?;
        }
        conn.execute_batch(SCHEMA)?;
        let mut totals = Totals::default();
        {
            let mut statement = conn.prepare(
                "SELECT caller, count(*), coalesce(sum(length(body)), 0) FROM kept
                 WHERE finished = 1 GROUP BY caller",
            )?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let (caller, count, bytes): (Option<String>, i64, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                let (count, bytes) = (as_u64(count), as_u64(bytes));
                totals.count += count;
                totals.bytes = totals.bytes.saturating_add(bytes);
                totals.by_caller.insert(caller, (count, bytes));
            }
        }
        let mut inner = Inner {
            conn,
            totals,
            _owner: owner,
        };
        // What expired while no server ran.
        let tx = inner.conn.transaction()?;
        let mut totals = inner.totals.clone();
        prune(&tx, &mut totals, bounds)?;
        tx.commit()?;
        inner.totals = totals;
        Ok(Self {
            inner: Mutex::new(inner),
            bounds,
            path: None,
            unwritten: Mutex::default(),
        })
    }

    /// Runs `f` on a blocking thread, as the async code calls the database: SQLite may wait
    /// for the disk (a checkpoint's `fsync`, another writer), and the threads serving the
    /// connections must not. `None` if `f` panicked.
    pub(crate) async fn off_thread<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Kept) -> T + Send + 'static,
    ) -> Option<T> {
        let kept = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&kept))
            .await
            .map_err(|e| tracing::error!(error = %e, "a call of the answers' database failed"))
            .ok()
    }

    /// The answer kept for `key`, read on a blocking thread and parsed; `None` when there is
    /// none (or it cannot be read back, which is logged).
    /// Parsed there too: a finished answer is up to gigabytes of JSON (docs/server.md), seconds
    /// of a thread that serves every connection.
    pub(crate) async fn read<T: serde::de::DeserializeOwned + Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        key: &str,
    ) -> Option<T> {
        let owned = key.to_owned();
        let parsed = self
            .off_thread(move |kept| {
                kept.get(kind, &owned)
                    .map(|json| serde_json::from_str::<T>(&json))
            })
            .await??;
        parsed
            .map_err(|e| tracing::error!(error = %e, kind = kind.name(), key, "a kept answer is unreadable"))
            .ok()
    }

    /// Keeps `value`, as JSON, as `caller`'s answer for `key` ([`Kept::put`]).
    pub(crate) fn put_json(
        &self,
        kind: Kind,
        key: &str,
        caller: Option<&str>,
        finished: bool,
        value: &impl Serialize,
    ) {
        match serde_json::to_string(value) {
            Ok(json) => self.put(kind, key, caller, finished, &json),
            Err(e) => {
                tracing::error!(error = %e, kind = kind.name(), key, "serializing an answer failed")
            }
        }
    }

    /// [`Kept::put_json`] on a blocking thread (serializing a large output included).
    pub(crate) async fn write<T: Serialize + Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        key: String,
        caller: Option<String>,
        finished: bool,
        value: T,
    ) {
        self.off_thread(move |kept| kept.put_json(kind, &key, caller.as_deref(), finished, &value))
            .await;
    }

    /// Keeps `body` as `caller`'s answer for `key` (`caller`: the API token's name, `None`
    /// without tokens), replacing what was kept; once `finished`, it may be deleted to stay
    /// within the bounds (the oldest finished of the caller holding the most first).
    pub(crate) fn put(
        &self,
        kind: Kind,
        key: &str,
        caller: Option<&str>,
        finished: bool,
        body: &str,
    ) {
        self.put_with(kind, key, caller, finished, body, None);
    }

    /// Keeps a queued request's `body` with `request`, what runs it again after a restart
    /// until it starts ([`Kept::started`], [`Kept::resumable`]).
    pub(crate) fn put_queued(
        &self,
        kind: Kind,
        key: &str,
        caller: Option<&str>,
        body: &str,
        request: &str,
    ) {
        self.put_with(kind, key, caller, false, body, Some(request));
    }

    fn put_with(
        &self,
        kind: Kind,
        key: &str,
        caller: Option<&str>,
        finished: bool,
        body: &str,
        request: Option<&str>,
    ) {
        let mut inner = self.lock();
        let mut unwritten = self.unwritten();
        let document = Document {
            kind,
            key,
            caller,
            finished,
            body,
            request,
        };
        match inner.put(&document, self.bounds) {
            Ok(()) => {
                unwritten.forget(kind, key);
            }
            Err(e) => {
                // Answered from memory until the database takes it; a restart forgets it.
                tracing::error!(error = %e, kind = kind.name(), key, "keeping an answer on disk failed; kept in memory");
                unwritten.hold(kind, key, body);
            }
        }
    }

    fn unwritten(&self) -> std::sync::MutexGuard<'_, Unwritten> {
        self.unwritten.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Kept::put_queued`] of `value` as JSON, on a blocking thread.
    pub(crate) async fn write_queued<T: Serialize + Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        key: String,
        caller: Option<String>,
        value: T,
        request: String,
    ) {
        self.off_thread(move |kept| match serde_json::to_string(&value) {
            Ok(json) => kept.put_queued(kind, &key, caller.as_deref(), &json, &request),
            Err(e) => {
                tracing::error!(error = %e, kind = kind.name(), key, "serializing an answer failed")
            }
        })
        .await;
    }

    /// The request kept for `key` started: a restart will not run it again, and answers it as
    /// interrupted if it has not finished ([`Kept::interrupted`]). Called before it runs, on
    /// the thread that will run it.
    pub(crate) fn started(&self, kind: Kind, key: &str) {
        let inner = self.lock();
        if let Err(e) = inner.conn.execute(
            "UPDATE kept SET request = NULL
             WHERE kind = ?1 AND key = ?2 AND request IS NOT NULL",
            params![kind.name(), key],
        ) {
            tracing::error!(error = %e, kind = kind.name(), key, "marking an answer started failed");
        }
    }

    /// The answer kept for `key`.
    pub(crate) fn get(&self, kind: Kind, key: &str) -> Option<String> {
        if let Some(body) = self.unwritten().bodies.get(&(kind, key.to_owned())) {
            return Some(body.clone());
        }
        let inner = self.lock();
        inner
            .conn
            .query_row(
                "SELECT body FROM kept WHERE kind = ?1 AND key = ?2",
                params![kind.name(), key],
                |r| r.get(0),
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, kind = kind.name(), key, "reading an answer failed");
                None
            })
    }

    /// Deletes the answer kept for `key`; whether there was one.
    pub(crate) fn delete(&self, kind: Kind, key: &str) -> bool {
        let held = self.unwritten().forget(kind, key);
        self.delete_kept(kind, key) || held
    }

    fn delete_kept(&self, kind: Kind, key: &str) -> bool {
        let mut inner = self.lock();
        let deleted = (|| -> rusqlite::Result<Option<(bool, i64, Option<String>)>> {
            let tx = inner.conn.transaction()?;
            let gone = tx
                .query_row(
                    "DELETE FROM kept WHERE kind = ?1 AND key = ?2
                     RETURNING finished, length(body), caller",
                    params![kind.name(), key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            tx.commit()?;
            Ok(gone)
        })();
        match deleted {
            Ok(Some((finished, size, caller))) => {
                if finished {
                    let caller: Option<String> = caller;
                    inner.totals.remove(caller.as_deref(), as_u64(size));
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, kind = kind.name(), key, "deleting an answer failed");
                false
            }
        }
    }

    /// A page of `kind`'s documents, finished or not, the newest first (by when their key was
    /// first written): `limit` of them after the first `offset`, and how many there are in all.
    pub(crate) fn page(&self, kind: Kind, offset: u64, limit: u64) -> (u64, Vec<(String, String)>) {
        let inner = self.lock();
        let read = || -> rusqlite::Result<(u64, Vec<(String, String)>)> {
            let total: i64 = inner.conn.query_row(
                "SELECT count(*) FROM kept WHERE kind = ?1",
                [kind.name()],
                |r| r.get(0),
            )?;
            let mut statement = inner.conn.prepare(
                "SELECT key, body FROM kept WHERE kind = ?1
                 ORDER BY created_ms DESC, seq DESC LIMIT ?2 OFFSET ?3",
            )?;
            let as_sql = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            let rows = statement
                .query_map(params![kind.name(), as_sql(limit), as_sql(offset)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok((
                u64::try_from(total).unwrap_or(0),
                rows.collect::<Result<_, _>>()?,
            ))
        };
        read().unwrap_or_else(|e| {
            tracing::error!(error = %e, kind = kind.name(), "listing the answers failed");
            (0, Vec::new())
        })
    }

    /// Every unfinished answer of `kind` that cannot run again (it started, or was kept
    /// without a request), oldest first: at start-up, those the last server interrupted.
    pub(crate) fn interrupted(&self, kind: Kind) -> Vec<Interrupted> {
        let inner = self.lock();
        let read = || -> rusqlite::Result<Vec<Interrupted>> {
            let mut statement = inner.conn.prepare(
                "SELECT key, body, caller FROM kept WHERE finished = 0 AND kind = ?1
                 AND request IS NULL ORDER BY seq",
            )?;
            let rows = statement.query_map([kind.name()], |r| {
                Ok(Interrupted {
                    key: r.get(0)?,
                    body: r.get(1)?,
                    caller: r.get(2)?,
                })
            })?;
            rows.collect()
        };
        read().unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the unfinished answers failed");
            Vec::new()
        })
    }

    /// Counts of `kind`'s documents: by the UTC day they were first written on, from day
    /// `since_day` (days since 1970-01-01) on; by the integer at JSON path `field` in each;
    /// the finished ones by the integer at `state` and the unfinished ones listed with theirs
    /// (whose state may have moved on in memory); and the database's size. Reading every
    /// document takes a while (about a second for 100 000 documents of a kilobyte): a database
    /// on disk is read on a connection of its own, in WAL mode beside the writes, which do not
    /// wait. Empty (logged) when the database cannot be read.
    pub(crate) fn tally(&self, kind: Kind, since_day: i64, field: &str, state: &str) -> Tally {
        let own = self.path.as_deref().map(|path| {
            Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        });
        let counted = match own {
            Some(Ok(conn)) => count(&conn, kind, since_day, field, state),
            Some(Err(e)) => Err(e),
            None => count(&self.lock().conn, kind, since_day, field, state),
        };
        counted.unwrap_or_else(|e| {
            tracing::error!(error = %e, kind = kind.name(), "counting the answers failed");
            Tally::default()
        })
    }

    /// Every queued request of `kind` that has not started, in the order they were accepted:
    /// at start-up, those the last server admitted and never ran.
    pub(crate) fn resumable(&self, kind: Kind) -> Vec<Resumable> {
        let inner = self.lock();
        let read = || -> rusqlite::Result<Vec<Resumable>> {
            let mut statement = inner.conn.prepare(
                "SELECT key, body, request, created_ms, caller FROM kept
                 WHERE finished = 0 AND kind = ?1 AND request IS NOT NULL
                 ORDER BY created_ms, seq",
            )?;
            let rows = statement.query_map([kind.name()], |r| {
                Ok(Resumable {
                    key: r.get(0)?,
                    body: r.get(1)?,
                    request: r.get(2)?,
                    created_ms: r.get(3)?,
                    caller: r.get(4)?,
                })
            })?;
            rows.collect()
        };
        read().unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the queued requests failed");
            Vec::new()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each write is one statement or transaction: a panic leaves the database whole.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One document to keep ([`Inner::put`]).
struct Document<'a> {
    kind: Kind,
    key: &'a str,
    caller: Option<&'a str>,
    finished: bool,
    body: &'a str,
    request: Option<&'a str>,
}

impl Inner {
    fn put(&mut self, document: &Document<'_>, bounds: Bounds) -> rusqlite::Result<()> {
        let Document {
            kind,
            key,
            caller,
            finished,
            body,
            request,
        } = *document;
        let tx = self.conn.transaction()?;
        // What the document replaces (a finished one is counted in the totals).
        let before: Option<(bool, i64, i64, Option<String>)> = tx
            .query_row(
                "SELECT finished, length(body), created_ms, caller FROM kept
                 WHERE kind = ?1 AND key = ?2",
                params![kind.name(), key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let created = before
            .as_ref()
            .map_or_else(now_ms, |(_, _, created, _)| *created);
        // Deleted and inserted, not updated: a document that finishes takes the newest place
        // in the order the bounds delete by.
        tx.execute(
            "DELETE FROM kept WHERE kind = ?1 AND key = ?2",
            params![kind.name(), key],
        )?;
        tx.execute(
            "INSERT INTO kept (kind, key, finished, finished_at_ms, body, created_ms, request,
                               caller)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                kind.name(),
                key,
                finished,
                finished.then(now_ms),
                body,
                created,
                request,
                caller
            ],
        )?;
        let mut totals = self.totals.clone();
        if let Some((true, size, _, was)) = &before {
            totals.remove(was.as_deref(), as_u64(*size));
        }
        if finished {
            totals.add(caller, body.len() as u64);
            prune(&tx, &mut totals, bounds)?;
        }
        tx.commit()?;
        self.totals = totals;
        Ok(())
    }
}

/// Deletes the finished documents older than the bounds' age, oldest first; then, while the
/// finished documents are past the bounds' bytes or count, the oldest of the caller that
/// holds the most bytes or documents (the bound passed, bytes first), one at a time. The
/// newest always stays: a caller whose only document is the newest is not made to lose it,
/// nor are the others for it (a document larger than the bytes bound stays until the next
/// one finishes). `totals` follow what is deleted.
fn prune(
    tx: &rusqlite::Transaction<'_>,
    totals: &mut Totals,
    bounds: Bounds,
) -> rusqlite::Result<()> {
    let max_age = i64::try_from(bounds.max_age.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(max_age);
    let mut expired = Vec::new();
    {
        // In the order they finished: the expired ones come first.
        let mut statement = tx.prepare(
            "SELECT seq, length(body), finished_at_ms, caller FROM kept
             WHERE finished = 1 ORDER BY seq",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let at: Option<i64> = row.get(2)?;
            if at.is_none_or(|at| at >= cutoff) {
                break;
            }
            let (seq, size, caller): (i64, i64, Option<String>) =
                (row.get(0)?, row.get(1)?, row.get(3)?);
            totals.remove(caller.as_deref(), as_u64(size));
            expired.push(seq);
        }
    }
    let mut delete = tx.prepare("DELETE FROM kept WHERE seq = ?1")?;
    for seq in expired {
        delete.execute([seq])?;
    }
    let newest: Option<i64> =
        tx.query_row("SELECT max(seq) FROM kept WHERE finished = 1", [], |r| {
            r.get(0)
        })?;
    let mut oldest_of = tx.prepare(
        "SELECT seq, length(body) FROM kept WHERE finished = 1 AND caller IS ?1
         ORDER BY seq LIMIT 1",
    )?;
    loop {
        // The heaviest caller by the bound passed, with its oldest document (not the newest).
        let mut victim = |by_bytes: bool| -> rusqlite::Result<Option<(Option<String>, i64, i64)>> {
            let Some(caller) = totals.heaviest(by_bytes) else {
                return Ok(None);
            };
            let oldest: Option<(i64, i64)> = oldest_of
                .query_row([&caller], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(oldest
                .filter(|(seq, _)| Some(*seq) != newest)
                .map(|(seq, size)| (caller, seq, size)))
        };
        let (over_bytes, over_count) =
            (totals.bytes > bounds.bytes, totals.count > bounds.documents);
        let mut chosen = if over_bytes { victim(true)? } else { None };
        if chosen.is_none() && over_count {
            chosen = victim(false)?;
        }
        let Some((caller, seq, size)) = chosen else {
            return Ok(());
        };
        delete.execute([seq])?;
        totals.remove(caller.as_deref(), as_u64(size));
    }
}

/// [`Kept::tally`] on `conn`: each document read once.
fn count(
    conn: &Connection,
    kind: Kind,
    since_day: i64,
    field: &str,
    state: &str,
) -> rusqlite::Result<Tally> {
    let as_count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut tally = Tally::default();
    let mut by_field: std::collections::HashMap<Option<i64>, u64> = Default::default();
    let mut by_state: std::collections::BTreeMap<Option<i64>, u64> = Default::default();
    let mut by_day: std::collections::BTreeMap<i64, u64> = Default::default();
    // `json_type` keeps a non-integer value (a string, a float) out of an integer group.
    let mut statement = conn.prepare(
        "SELECT key, finished, created_ms / 86400000,
                CASE json_type(body, ?2) WHEN 'integer' THEN json_extract(body, ?2) END,
                CASE json_type(body, ?3) WHEN 'integer' THEN json_extract(body, ?3) END
         FROM kept WHERE kind = ?1",
    )?;
    let mut rows = statement.query(params![kind.name(), field, state])?;
    while let Some(row) = rows.next()? {
        let (finished, day): (bool, i64) = (row.get(1)?, row.get(2)?);
        let (value, state): (Option<i64>, Option<i64>) = (row.get(3)?, row.get(4)?);
        tally.total += 1;
        if day >= since_day {
            *by_day.entry(day).or_default() += 1;
        }
        *by_field.entry(value).or_default() += 1;
        if finished {
            *by_state.entry(state).or_default() += 1;
        } else {
            tally.unfinished.push((row.get(0)?, state));
        }
    }
    tally.by_day = by_day.into_iter().collect();
    tally.by_field = by_field.into_iter().collect();
    // The largest counts first; equal ones by value, `None` first.
    tally
        .by_field
        .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    tally.finished_by_state = by_state.into_iter().collect();
    let bytes: i64 = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?;
    tally.bytes = as_count(bytes);
    Ok(tally)
}

/// A count or size SQLite gave as an integer.
fn as_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys and documents of `interrupted`.
    fn pairs(interrupted: Vec<Interrupted>) -> Vec<(String, String)> {
        interrupted.into_iter().map(|i| (i.key, i.body)).collect()
    }

    #[test]
    fn documents_are_replaced_and_read_back_by_kind_and_key() {
        let kept = Kept::in_memory(Bounds::IN_MEMORY);
        kept.put(Kind::Judge0, "a", None, false, "queued");
        kept.put(Kind::Job, "a", None, false, "job");
        kept.put(Kind::Judge0, "a", None, true, "done");
        assert_eq!(kept.get(Kind::Judge0, "a").as_deref(), Some("done"));
        assert_eq!(kept.get(Kind::Job, "a").as_deref(), Some("job"));
        assert_eq!(kept.get(Kind::Job, "b"), None);
        assert!(kept.delete(Kind::Judge0, "a") && !kept.delete(Kind::Judge0, "a"));
        assert_eq!(kept.get(Kind::Judge0, "a"), None);
        assert_eq!(kept.get(Kind::Job, "a").as_deref(), Some("job"));
        assert_eq!(
            pairs(kept.interrupted(Kind::Job)),
            [("a".into(), "job".into())]
        );
        assert!(pairs(kept.interrupted(Kind::Judge0)).is_empty());
    }

    /// Where a document was parsed: the thread's name.
    struct ParsedOn(Option<String>);

    impl<'de> serde::Deserialize<'de> for ParsedOn {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d)?;
            Ok(Self(std::thread::current().name().map(str::to_owned)))
        }
    }

    /// Bug hunt: a kept answer was parsed on the thread serving connections: one `GET` of a
    /// job with a 360 MB answer stalled every other client for seconds. It is parsed on the
    /// blocking thread that read it.
    #[test]
    fn a_kept_answer_is_parsed_off_the_connections_thread() {
        // The runtime's blocking threads have their own names.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let kept = Arc::new(Kept::in_memory(Bounds::IN_MEMORY));
        kept.put(Kind::Job, "a", None, true, r#"{"result": "big"}"#);
        let parsed = std::thread::Builder::new()
            .name("connections".into())
            .spawn(move || runtime.block_on(kept.read::<ParsedOn>(Kind::Job, "a")))
            .expect("a thread")
            .join()
            .expect("no panic")
            .expect("read back");
        assert_ne!(parsed.0.as_deref(), Some("connections"));
    }

    /// A database that takes no more (a full disk, here a page limit) does not lose what was
    /// accepted: the answer is kept in memory and read from there, until a write of it
    /// succeeds or it is deleted.
    #[test]
    fn an_answer_the_full_database_refuses_is_kept_in_memory() {
        let kept = Kept::in_memory(Bounds::IN_MEMORY);
        kept.put(Kind::Job, "before", None, true, "on disk");
        let pages: i64 = kept
            .lock()
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("pages");
        kept.lock()
            .conn
            .pragma_update(None, "max_page_count", pages)
            .expect("the database is full");
        let big = "x".repeat(1 << 20);
        kept.put(Kind::Job, "after", None, false, &big);
        assert_eq!(kept.get(Kind::Job, "after").as_deref(), Some(big.as_str()));
        assert_eq!(kept.get(Kind::Job, "before").as_deref(), Some("on disk"));
        kept.put(Kind::Job, "after", None, true, "finished, still in memory");
        assert_eq!(
            kept.get(Kind::Job, "after").as_deref(),
            Some("finished, still in memory")
        );
        kept.lock()
            .conn
            .pragma_update(None, "max_page_count", 1_000_000)
            .expect("room again");
        kept.put(Kind::Job, "after", None, true, "on disk at last");
        assert!(kept.unwritten().bodies.is_empty());
        assert_eq!(
            kept.get(Kind::Job, "after").as_deref(),
            Some("on disk at last")
        );
        assert!(kept.delete(Kind::Job, "after"));
        assert_eq!(kept.get(Kind::Job, "after"), None);
    }

    #[test]
    fn a_tally_counts_by_day_field_and_state_and_lists_the_unfinished() {
        let kept = Kept::in_memory(Bounds::IN_MEMORY);
        let documents = [
            ("a", true, r#"{"language_id": 71, "status_id": 3}"#),
            ("b", true, r#"{"language_id": 71, "status_id": 6}"#),
            ("c", true, r#"{"language_id": 46, "status_id": 3}"#),
            ("d", false, r#"{"language_id": 71, "status_id": 1}"#),
            ("e", true, r#"{"language_id": "71", "status_id": 3.5}"#),
        ];
        for (key, finished, body) in documents {
            kept.put(Kind::Judge0, key, None, finished, body);
        }
        kept.put(
            Kind::Job,
            "v",
            None,
            true,
            r#"{"language_id": 71, "status_id": 3}"#,
        );
        let today = now_ms() / 86_400_000;
        // `a` was accepted five days ago, `b` forty days ago (before the days counted).
        for (key, days_ago) in [("a", 5), ("b", 40)] {
            let ms = (today - days_ago) * 86_400_000 + 1;
            kept.lock()
                .conn
                .execute(
                    "UPDATE kept SET created_ms = ?1 WHERE key = ?2",
                    params![ms, key],
                )
                .expect("updated");
        }
        let tally = kept.tally(Kind::Judge0, today - 30, "$.language_id", "$.status_id");
        assert_eq!(tally.total, 5);
        assert_eq!(tally.by_day, [(today - 5, 1), (today, 3)]);
        assert_eq!(
            tally.by_field,
            [(Some(71), 3), (None, 1), (Some(46), 1)],
            "a string is no language id"
        );
        assert_eq!(
            tally.finished_by_state,
            [(None, 1), (Some(3), 2), (Some(6), 1)]
        );
        assert_eq!(tally.unfinished, [("d".to_owned(), Some(1))]);
        assert!(tally.bytes > 0);
    }

    #[test]
    fn a_tally_on_disk_does_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kept = Arc::new(Kept::open(&dir.path().join("results.sqlite3"), DAY).expect("opened"));
        kept.put(
            Kind::Judge0,
            "a",
            None,
            true,
            r#"{"language_id": 71, "status_id": 3}"#,
        );
        // A write in progress holds the connection; the count goes on beside it.
        let writing = kept.lock();
        let (sender, counted) = std::sync::mpsc::channel();
        let reader = Arc::clone(&kept);
        std::thread::spawn(move || {
            let _ = sender.send(reader.tally(Kind::Judge0, 0, "$.language_id", "$.status_id"));
        });
        let tally = counted
            .recv_timeout(Duration::from_secs(60))
            .expect("counted while the writer's connection is held");
        drop(writing);
        assert_eq!(
            (tally.total, tally.finished_by_state),
            (1, vec![(Some(3), 1)])
        );
    }

    #[test]
    fn the_oldest_finished_documents_go_past_the_bounds() {
        let kept = Kept::in_memory(Bounds {
            documents: 3,
            bytes: 10_000,
            max_age: DAY,
        });
        kept.put(Kind::Job, "waiting", None, false, "w");
        for n in 0..6 {
            kept.put(Kind::Job, &format!("d{n}"), None, true, "x");
        }
        let present = |keys: &[&str]| keys.iter().all(|k| kept.get(Kind::Job, k).is_some());
        let absent = |keys: &[&str]| keys.iter().all(|k| kept.get(Kind::Job, k).is_none());
        assert!(present(&["waiting", "d3", "d4", "d5"]) && absent(&["d0", "d1", "d2"]));
        // By bytes: one large document pushes out the others, and stays alone.
        kept.put(Kind::Judge0, "big", None, true, &"y".repeat(20_000));
        assert!(kept.get(Kind::Judge0, "big").is_some() && present(&["waiting"]));
        assert!(absent(&["d3", "d4", "d5"]));
        kept.put(Kind::Job, "small", None, true, "z");
        assert!(kept.get(Kind::Judge0, "big").is_none() && present(&["small", "waiting"]));
        // Replacing a finished document counts it once.
        for _ in 0..10 {
            kept.put(Kind::Job, "small", None, true, "zz");
        }
        kept.put(Kind::Job, "other", None, true, "o");
        assert!(present(&["small", "other", "waiting"]));
        // A document queued long ago that finishes now is the newest.
        kept.put(Kind::Job, "d9", None, true, "done");
        kept.put(Kind::Job, "waiting", None, true, "done");
        assert!(present(&["waiting", "d9", "other"]) && absent(&["small"]));
    }

    /// Bug hunt: the bounds were the server's, whoever held what: a tenant running a few
    /// async jobs of large output made another tenant's Judge0 submission and `wait=false`
    /// job answer 404 within 30 s. Past a bound, the caller holding the most (bytes past the
    /// bytes, documents past the count) loses its oldest; the others keep theirs.
    #[test]
    fn past_the_bounds_the_caller_holding_the_most_loses_its_oldest() {
        let kept = Kept::in_memory(Bounds {
            documents: 6,
            bytes: 10_000,
            max_age: DAY,
        });
        let has = |kind, key: &str| kept.get(kind, key).is_some();
        kept.put(Kind::Judge0, "b1", Some("bob"), true, "x");
        kept.put(Kind::Job, "b2", Some("bob"), true, "x");
        kept.put(Kind::Job, "waiting", Some("bob"), false, "w");
        // Large outputs past the bytes: alice's oldest go.
        for n in 0..5 {
            kept.put(
                Kind::Job,
                &format!("a{n}"),
                Some("alice"),
                true,
                &"y".repeat(4000),
            );
        }
        assert!(has(Kind::Judge0, "b1") && has(Kind::Job, "b2") && has(Kind::Job, "waiting"));
        assert!(!has(Kind::Job, "a2") && has(Kind::Job, "a3") && has(Kind::Job, "a4"));
        // Many small ones past the count: alice's oldest go.
        for n in 5..15 {
            kept.put(Kind::Job, &format!("a{n}"), Some("alice"), true, "z");
        }
        assert!(has(Kind::Judge0, "b1") && has(Kind::Job, "b2"));
        assert!(!has(Kind::Job, "a10") && (11..15).all(|n| has(Kind::Job, &format!("a{n}"))));
        // One document over the bytes alone stays, the newest, and costs the others nothing
        // but the count; the next one to finish pushes it out.
        kept.put(Kind::Job, "huge", Some("carol"), true, &"h".repeat(20_000));
        assert!(has(Kind::Job, "huge") && has(Kind::Judge0, "b1") && has(Kind::Job, "b2"));
        assert!(!has(Kind::Job, "a11"), "the count is still kept");
        kept.put(Kind::Job, "b3", Some("bob"), true, "x");
        assert!(!has(Kind::Job, "huge"));
        assert!(["b2", "b3", "a12", "a13", "a14"]
            .iter()
            .all(|k| has(Kind::Job, k)));
        assert!(has(Kind::Judge0, "b1"));
        // Totals follow rewrites and deletions: what is counted is what is there.
        kept.delete(Kind::Job, "a12");
        kept.put(Kind::Job, "b3", Some("bob"), true, "xx");
        let inner = kept.lock();
        let counted: (i64, i64) = inner
            .conn
            .query_row(
                "SELECT count(*), sum(length(body)) FROM kept WHERE finished = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("counted");
        assert_eq!((inner.totals.count, inner.totals.bytes), (5, 6));
        assert_eq!(counted, (5, 6));
        assert_eq!(inner.totals.by_caller[&Some("bob".to_owned())], (3, 4));
    }

    #[test]
    fn finished_documents_expire_and_unfinished_ones_wait() {
        let kept = Kept::in_memory(Bounds::IN_MEMORY.for_age(Duration::from_millis(200)));
        kept.put(Kind::Job, "waiting", None, false, "w");
        kept.put(Kind::Job, "old", None, true, "o");
        std::thread::sleep(Duration::from_millis(300));
        kept.put(Kind::Job, "new", None, true, "n");
        assert!(kept.get(Kind::Job, "old").is_none(), "expired");
        assert!(kept.get(Kind::Job, "new").is_some() && kept.get(Kind::Job, "waiting").is_some());
        // A database opened again drops what expired while no server ran.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let first = Kept::open(&path, DAY).expect("opened");
        first.put(Kind::Judge0, "t", None, true, "done");
        drop(first);
        std::thread::sleep(Duration::from_millis(300));
        let again = Kept::open(&path, Duration::from_millis(200)).expect("opened again");
        assert!(again.get(Kind::Judge0, "t").is_none());
    }

    #[test]
    fn a_damaged_or_newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        std::fs::write(&path, vec![0x5a; 8192]).expect("written");
        assert!(matches!(
            Kept::open(&path, DAY),
            Err(KeptError::Sqlite { .. })
        ));
        std::fs::remove_file(&path).expect("removed");
        let conn = Connection::open(&path).expect("a database");
        conn.pragma_update(None, "user_version", VERSION + 1)
            .expect("set");
        drop(conn);
        assert!(matches!(
            Kept::open(&path, DAY),
            Err(KeptError::TooNew { version, .. }) if version == VERSION + 1
        ));
    }

    #[test]
    fn a_version_3_database_is_upgraded_with_the_callers_it_can_tell() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let conn = Connection::open(&path).expect("a database");
        conn.execute_batch(
            r#"CREATE TABLE kept (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL,
                finished INTEGER NOT NULL, finished_at_ms INTEGER, body TEXT NOT NULL,
                created_ms INTEGER NOT NULL DEFAULT 0, request TEXT, UNIQUE (kind, key));
             INSERT INTO kept (kind, key, finished, finished_at_ms, body, created_ms, request)
                VALUES ('v1', 'j', 1, strftime('%s','now') * 1000,
                        '{"id": "j", "state": "finished", "token": "alice"}', 5, NULL),
                       ('judge0', 'q', 0, NULL, '{}', 6, '{"token": "bob", "body": {}}'),
                       ('judge0', 't', 1, strftime('%s','now') * 1000, '{"status_id": 3}', 7,
                        NULL);
             PRAGMA user_version = 3;"#,
        )
        .expect("version 3");
        drop(conn);
        let kept = Kept::open(&path, DAY).expect("upgraded");
        let queued = kept.resumable(Kind::Judge0);
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].caller.as_deref(), Some("bob"));
        let inner = kept.lock();
        assert_eq!(inner.totals.count, 2);
        assert_eq!(inner.totals.by_caller[&Some("alice".to_owned())].0, 1);
        assert_eq!(
            inner.totals.by_caller[&None].0, 1,
            "a submission's is unknown"
        );
    }

    #[test]
    fn a_page_lists_the_newest_first_in_acceptance_order_through_rewrites() {
        let kept = Kept::in_memory(Bounds::IN_MEMORY);
        for key in ["a", "b", "c"] {
            kept.put(Kind::Judge0, key, None, false, key);
            std::thread::sleep(Duration::from_millis(2));
        }
        kept.put(Kind::Job, "j", None, true, "job");
        // Finishing rewrites "a" but keeps its place: accepted first, listed last.
        kept.put(Kind::Judge0, "a", None, true, "a done");
        let keys = |(total, page): (u64, Vec<(String, String)>)| {
            (total, page.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        };
        assert_eq!(
            keys(kept.page(Kind::Judge0, 0, 10)),
            (3, vec!["c".into(), "b".into(), "a".into()])
        );
        assert_eq!(keys(kept.page(Kind::Judge0, 1, 1)), (3, vec!["b".into()]));
        assert_eq!(keys(kept.page(Kind::Judge0, 3, 5)), (3, vec![]));
        assert_eq!(kept.page(Kind::Judge0, 2, 1).1[0].1, "a done");
        assert_eq!(keys(kept.page(Kind::Job, 0, 10)), (1, vec!["j".into()]));
    }

    #[test]
    fn a_version_1_database_is_upgraded_with_its_submissions_in_their_order() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let conn = Connection::open(&path).expect("a database");
        conn.execute_batch(
            "CREATE TABLE kept (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL,
                finished INTEGER NOT NULL, finished_at_ms INTEGER, body TEXT NOT NULL,
                UNIQUE (kind, key));
             CREATE INDEX kept_finished ON kept (finished, seq);
             PRAGMA user_version = 1;",
        )
        .expect("version 1");
        let now = now_ms();
        let insert = |key: &str, finished_at: Option<i64>, body: &str| {
            conn.execute(
                "INSERT INTO kept (kind, key, finished, finished_at_ms, body) VALUES ('judge0', ?1, ?2, ?3, ?4)",
                params![key, finished_at.is_some(), finished_at, body],
            )
            .expect("inserted");
        };
        // Finished in the other order than they were created in.
        insert(
            "older",
            Some(now),
            r#"{"created_at": "2026-12-01T10:00:00.000Z"}"#,
        );
        insert(
            "newer",
            Some(now - 1000),
            r#"{"created_at": "2026-12-01T11:00:00.500Z"}"#,
        );
        insert("no date", Some(now - 5000), "not json");
        drop(conn);
        let kept = Kept::open(&path, DAY).expect("upgraded");
        let (total, page) = kept.page(Kind::Judge0, 0, 10);
        let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!((total, keys), (3, vec!["no date", "newer", "older"]));
        let version: u32 = kept
            .lock()
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("read");
        assert_eq!(version, VERSION);
    }

    #[test]
    fn a_queued_request_runs_again_until_it_starts() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let kept = Kept::open(&path, DAY).expect("opened");
        kept.put_queued(Kind::Job, "second", None, "q2", "run 2");
        std::thread::sleep(Duration::from_millis(2));
        kept.put_queued(Kind::Job, "third", None, "q3", "run 3");
        kept.put_queued(Kind::Judge0, "t", None, "qt", "run t");
        kept.put(Kind::Job, "plain", None, false, "no request");
        // Accepted before "second", rewritten after it: its place is its acceptance.
        kept.lock()
            .conn
            .execute(
                "UPDATE kept SET created_ms = created_ms - 1000 WHERE key = 'third'",
                [],
            )
            .expect("moved");
        kept.put_queued(Kind::Job, "started", None, "q", "run s");
        kept.started(Kind::Job, "started");
        kept.put_queued(Kind::Job, "done", None, "q", "run d");
        kept.put(Kind::Job, "done", None, true, "finished");
        drop(kept);
        let again = Kept::open(&path, DAY).expect("opened again");
        let keys = |list: Vec<Resumable>| list.into_iter().map(|r| r.key).collect::<Vec<_>>();
        assert_eq!(keys(again.resumable(Kind::Job)), ["third", "second"]);
        let judge0 = again.resumable(Kind::Judge0);
        assert_eq!(
            (
                judge0[0].key.as_str(),
                judge0[0].body.as_str(),
                judge0[0].request.as_str()
            ),
            ("t", "qt", "run t")
        );
        assert_eq!(
            pairs(again.interrupted(Kind::Job)),
            [
                ("plain".into(), "no request".into()),
                ("started".into(), "q".into())
            ]
        );
        // Started, or finished and rewritten: not run again.
        again.started(Kind::Job, "second");
        again.put(Kind::Job, "third", None, true, "finished");
        assert!(again.resumable(Kind::Job).is_empty());
    }

    #[test]
    fn a_version_2_database_is_upgraded_with_nothing_to_run_again() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("results.sqlite3");
        let conn = Connection::open(&path).expect("a database");
        conn.execute_batch(
            "CREATE TABLE kept (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL,
                finished INTEGER NOT NULL, finished_at_ms INTEGER, body TEXT NOT NULL,
                created_ms INTEGER NOT NULL DEFAULT 0, UNIQUE (kind, key));
             INSERT INTO kept (kind, key, finished, body, created_ms)
                VALUES ('v1', 'queued', 0, 'q', 5);
             PRAGMA user_version = 2;",
        )
        .expect("version 2");
        drop(conn);
        let kept = Kept::open(&path, DAY).expect("upgraded");
        assert!(kept.resumable(Kind::Job).is_empty());
        assert_eq!(
            pairs(kept.interrupted(Kind::Job)),
            [("queued".into(), "q".into())]
        );
        kept.put_queued(Kind::Job, "new", None, "n", "run");
        assert_eq!(kept.resumable(Kind::Job).len(), 1);
    }

    #[test]
    fn a_database_survives_its_server_and_has_one_owner() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("state").join("results.sqlite3");
        let kept = Kept::open(&path, DAY).expect("opened");
        kept.put(Kind::Judge0, "t", None, false, "queued");
        kept.put(Kind::Job, "j", None, true, "done");
        assert!(matches!(
            Kept::open(&path, DAY),
            Err(KeptError::InUse { .. })
        ));
        drop(kept);
        let again = Kept::open(&path, DAY).expect("opened again");
        assert_eq!(again.get(Kind::Job, "j").as_deref(), Some("done"));
        assert_eq!(
            pairs(again.interrupted(Kind::Judge0)),
            [("t".into(), "queued".into())]
        );
    }
}
