//! The history database's schema, as numbered migrations. Migration `n` (1-based) takes a
//! database from `user_version = n - 1` to `n`; a new version appends one, never edits one
//! (docs/history.md lists them).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{classify, HistoryError};

/// Version 1: one row per execution, with its code and output as the retention kept them.
const V1: &str = "
CREATE TABLE executions (
    id                TEXT PRIMARY KEY NOT NULL,
    finished_at_ms    INTEGER NOT NULL,
    language          TEXT NOT NULL,
    mode              TEXT NOT NULL,
    outcome_kind      TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    cpu_time_ms       INTEGER NOT NULL,
    wall_time_ms      INTEGER NOT NULL,
    peak_memory_bytes INTEGER NOT NULL,
    code_bytes        INTEGER NOT NULL,
    stdin_bytes       INTEGER,
    stdout_bytes      INTEGER NOT NULL,
    stderr_bytes      INTEGER NOT NULL,
    stdout_truncated  INTEGER NOT NULL,
    stderr_truncated  INTEGER NOT NULL,
    limits            TEXT NOT NULL,
    compile           TEXT,
    retention         TEXT NOT NULL,
    code              BLOB,
    stdout            BLOB,
    stderr            BLOB
);
CREATE INDEX executions_by_time ON executions (finished_at_ms);
";

/// Version 2: the security section (static analysis and runtime violations).
const V2: &str = "
ALTER TABLE executions ADD COLUMN threat_level TEXT;
ALTER TABLE executions ADD COLUMN finding_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN violation_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN security TEXT;
";

/// Version 3: which interface and which API token asked (`warden serve` records `v1`, `piston`,
/// `judge0`; the CLI `cli`). Older rows keep NULL: who asked them is unknown.
const V3: &str = "
ALTER TABLE executions ADD COLUMN api TEXT;
ALTER TABLE executions ADD COLUMN token TEXT;
";

/// Version 4: the traffic log (issue 10). The policy an execution ran under, when it let
/// anything out (NULL otherwise, and for older rows), and one row per connection attempt or
/// name lookup its proxy logged, `seq` numbering them in the order of the result.
///
/// No separate index on `execution_id`: the primary key's index starts with it, and serves
/// the lookups by execution (`warden show`, pruning, `--execution`) on its own.
const V4: &str = "
ALTER TABLE executions ADD COLUMN network_policy TEXT;
CREATE TABLE connections (
    execution_id  TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    protocol      TEXT NOT NULL,
    host          TEXT,
    addr          TEXT,
    port          INTEGER NOT NULL,
    allowed       INTEGER NOT NULL,
    rule          TEXT NOT NULL,
    reason        TEXT NOT NULL,
    bytes_up      INTEGER NOT NULL,
    bytes_down    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    cut_by        TEXT,
    PRIMARY KEY (execution_id, seq)
);
CREATE INDEX connections_by_time ON connections (started_at_ms);
";

/// Version 5: the dependency stage (issue 10), as the compile stage is kept: outcome, usage,
/// cached, sizes, output if kept. NULL for executions that named no dependencies, and for
/// older rows.
const V5: &str = "
ALTER TABLE executions ADD COLUMN dependencies TEXT;
";

/// Version 6: the tool registry's calls (issue 11), one row each, refused ones included (they
/// have no execution). A call that ran links its execution; an execution of a tool call knows
/// its tool through this table. Rows outlive their executions' pruning only by age.
const V6: &str = "
CREATE TABLE tool_calls (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    called_at_ms  INTEGER NOT NULL,
    tool          TEXT NOT NULL,
    category      TEXT NOT NULL,
    api           TEXT NOT NULL,
    caller        TEXT,
    status        TEXT NOT NULL,
    latency_ms    INTEGER NOT NULL,
    execution_id  TEXT,
    error         TEXT
);
CREATE INDEX tool_calls_by_tool ON tool_calls (tool, called_at_ms);
CREATE INDEX tool_calls_by_execution ON tool_calls (execution_id);
";

/// Version 7: what pruning needs without scanning. `execution_count` holds how many rows
/// `executions` has, kept by two triggers, so that keeping the newest `max_count` reads one
/// number and deletes the oldest few, where it sorted the whole table twice a record (about
/// 200 ms at 100 000 rows). The time index now ends with the id, the order every listing and
/// pruning uses (finish time, then id), so none needs a sort nor chooses to scan the table.
/// `tool_calls_by_time` serves the pruning of calls by age.
const V7: &str = "
DROP INDEX executions_by_time;
CREATE INDEX executions_by_time ON executions (finished_at_ms, id);
CREATE TABLE execution_count (n INTEGER NOT NULL);
INSERT INTO execution_count (n) SELECT count(*) FROM executions;
CREATE TRIGGER executions_counted_in AFTER INSERT ON executions
BEGIN UPDATE execution_count SET n = n + 1; END;
CREATE TRIGGER executions_counted_out AFTER DELETE ON executions
BEGIN UPDATE execution_count SET n = n - 1; END;
CREATE INDEX tool_calls_by_time ON tool_calls (called_at_ms);
";

/// Version 8: statistics read an index, not the table. The time index also carries the
/// columns that `warden stats` and the network statistics read, so that they scan it alone
/// (about 100 bytes an entry) instead of fetching every row, code and output included, by
/// its key: at 100 000 rows the statistics took 0.65 s, one table walk per figure. Listings
/// and pruning keep using its first two columns, in the same order.
const V8: &str = "
DROP INDEX executions_by_time;
CREATE INDEX executions_by_time ON executions (
    finished_at_ms, id, language, mode, outcome_kind, threat_level, violation_count,
    wall_time_ms, cpu_time_ms, peak_memory_bytes, network_policy
);
";

/// Version 9: the dependency installer's connections (docs/network.md#dependencies), kept in
/// `connections` beside the program's: `stage` is `dependencies` for them (NULL for the
/// program's, and for older rows), `policy` the policy they ran under (the execution's
/// `network_policy` is the program's).
const V9: &str = "
ALTER TABLE connections ADD COLUMN stage TEXT;
ALTER TABLE connections ADD COLUMN policy TEXT;
";

/// Version 10: executions cancelled before their result are recorded (docs/events.md), with
/// the outcome kind `cancelled`. No table changes; the version tells a warden before it, which
/// would take such a row for an unreadable one, that the database is newer than it knows.
const V10: &str = "";

/// Version 11: a traffic log bounded in bytes (docs/network.md#traffic-log). `repeats` counts
/// the identical refusals folded into a connection's row (0 for older rows); the executions'
/// `network_dropped` and `dependencies_network_dropped` count the refusals of the program's
/// and the dependency installer's proxies that a full log counted without keeping.
const V11: &str = "
ALTER TABLE connections ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN network_dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN dependencies_network_dropped INTEGER NOT NULL DEFAULT 0;
";

/// Version 12: keeping the newest `max_count` deletes from the caller (API token) that holds
/// the most (history/prune.rs), which reads how many each has from `execution_count_by_token`
/// (one row per caller, the executions of no token included, kept by two triggers as
/// `execution_count` is) and a caller's oldest through `executions_by_token`, which also
/// serves a token's listing (`/v1/history`).
const V12: &str = "
CREATE INDEX executions_by_token ON executions (token, finished_at_ms, id);
CREATE TABLE execution_count_by_token (token TEXT, n INTEGER NOT NULL);
INSERT INTO execution_count_by_token (token, n) SELECT token, count(*) FROM executions GROUP BY token;
CREATE TRIGGER executions_by_token_in AFTER INSERT ON executions
BEGIN
    INSERT INTO execution_count_by_token (token, n) SELECT NEW.token, 0
    WHERE NOT EXISTS (SELECT 1 FROM execution_count_by_token WHERE token IS NEW.token);
    UPDATE execution_count_by_token SET n = n + 1 WHERE token IS NEW.token;
END;
CREATE TRIGGER executions_by_token_out AFTER DELETE ON executions
BEGIN
    UPDATE execution_count_by_token SET n = n - 1 WHERE token IS OLD.token;
    DELETE FROM execution_count_by_token WHERE token IS OLD.token AND n <= 0;
END;
";

/// Version 13: a token's reads from an index, and the tool-call log bounded per caller.
/// `executions_by_token` also carries the columns that a token's statistics and the
/// `[response]` rule's count read (`violation_count` right after the id, which pruning's
/// clean-first order filters on), so that they scan it alone: over a million rows a token's
/// `/v1/stats` fetched each of its executions from the table, about 3 s, holding up every
/// other reader. Listings and pruning keep using its first three columns, in the same order.
/// `tool_call_count_by_caller` (kept by two triggers, as `execution_count_by_token` is) and
/// `tool_calls_by_caller` let `max_count` keep the newest calls, from the caller that holds the
/// most, without a scan.
const V13: &str = "
DROP INDEX executions_by_token;
CREATE INDEX executions_by_token ON executions (
    token, finished_at_ms, id, violation_count, language, mode, outcome_kind, threat_level,
    wall_time_ms, cpu_time_ms, peak_memory_bytes
);
CREATE INDEX tool_calls_by_caller ON tool_calls (caller, seq);
CREATE TABLE tool_call_count_by_caller (caller TEXT, n INTEGER NOT NULL);
INSERT INTO tool_call_count_by_caller (caller, n) SELECT caller, count(*) FROM tool_calls GROUP BY caller;
CREATE TRIGGER tool_calls_by_caller_in AFTER INSERT ON tool_calls
BEGIN
    INSERT INTO tool_call_count_by_caller (caller, n) SELECT NEW.caller, 0
    WHERE NOT EXISTS (SELECT 1 FROM tool_call_count_by_caller WHERE caller IS NEW.caller);
    UPDATE tool_call_count_by_caller SET n = n + 1 WHERE caller IS NEW.caller;
END;
CREATE TRIGGER tool_calls_by_caller_out AFTER DELETE ON tool_calls
BEGIN
    UPDATE tool_call_count_by_caller SET n = n - 1 WHERE caller IS OLD.caller;
    DELETE FROM tool_call_count_by_caller WHERE caller IS OLD.caller AND n <= 0;
END;
";

/// Version 14: a bound in bytes (`[history] max_size`, history/budget.rs). Past it, the callers
/// that hold the most bytes lose their oldest executions first, so `execution_count_by_token`
/// also adds up each caller's `bytes`: the sizes of an execution's code, output and JSON
/// columns, and 512 for the rest of its row and its index entries (the sizes of blobs and text
/// are in each row's header: SQLite reads them without the content). Counted from the rows at
/// migration, kept by the two triggers, rebuilt to add and take away each row's bytes.
const V14: &str = "
ALTER TABLE execution_count_by_token ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE execution_count_by_token SET bytes = (
    SELECT coalesce(sum(
        512 + coalesce(octet_length(e.code), 0) + coalesce(octet_length(e.stdout), 0) +
        coalesce(octet_length(e.stderr), 0) + coalesce(octet_length(e.compile), 0) +
        coalesce(octet_length(e.dependencies), 0) +
        coalesce(octet_length(e.security), 0) + coalesce(octet_length(e.outcome), 0) +
        coalesce(octet_length(e.limits), 0)
    ), 0) FROM executions e WHERE e.token IS execution_count_by_token.token
);
DROP TRIGGER executions_by_token_in;
DROP TRIGGER executions_by_token_out;
CREATE TRIGGER executions_by_token_in AFTER INSERT ON executions
BEGIN
    INSERT INTO execution_count_by_token (token, n) SELECT NEW.token, 0
    WHERE NOT EXISTS (SELECT 1 FROM execution_count_by_token WHERE token IS NEW.token);
    UPDATE execution_count_by_token SET n = n + 1, bytes = bytes + (
        512 + coalesce(octet_length(NEW.code), 0) +
        coalesce(octet_length(NEW.stdout), 0) + coalesce(octet_length(NEW.stderr), 0) +
        coalesce(octet_length(NEW.compile), 0) +
        coalesce(octet_length(NEW.dependencies), 0) +
        coalesce(octet_length(NEW.security), 0) + coalesce(octet_length(NEW.outcome), 0) +
        coalesce(octet_length(NEW.limits), 0)
    ) WHERE token IS NEW.token;
END;
CREATE TRIGGER executions_by_token_out AFTER DELETE ON executions
BEGIN
    UPDATE execution_count_by_token SET n = n - 1, bytes = bytes - (
        512 + coalesce(octet_length(OLD.code), 0) +
        coalesce(octet_length(OLD.stdout), 0) + coalesce(octet_length(OLD.stderr), 0) +
        coalesce(octet_length(OLD.compile), 0) +
        coalesce(octet_length(OLD.dependencies), 0) +
        coalesce(octet_length(OLD.security), 0) + coalesce(octet_length(OLD.outcome), 0) +
        coalesce(octet_length(OLD.limits), 0)
    ) WHERE token IS OLD.token;
    DELETE FROM execution_count_by_token WHERE token IS OLD.token AND n <= 0;
END;
";

const MIGRATIONS: [&str; 14] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14];

/// The version a database has once migrated.
pub(super) const LATEST: u32 = MIGRATIONS.len() as u32;

/// The database's `user_version`.
pub(super) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database to [`LATEST`]. The common case, an up-to-date database, only reads; a
/// migration holds the write lock and checks the version again, so that of several processes
/// opening a new database at once exactly one creates the schema.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let found = version(conn).map_err(|e| classify(path, "reading the schema version", e))?;
    if found == LATEST {
        return Ok(());
    }
    check_known(path, found)?;
    let step = "migrating the schema";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| classify(path, step, e))?;
    let found = version(&tx).map_err(|e| classify(path, step, e))?;
    check_known(path, found)?;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tracing::info!(path = %path.display(), from, to = from + 1, "migrating the history database");
        tx.execute_batch(sql).map_err(|e| classify(path, step, e))?;
    }
    tx.pragma_update(None, "user_version", LATEST)
        .map_err(|e| classify(path, step, e))?;
    tx.commit().map_err(|e| classify(path, step, e))
}

fn check_known(path: &Path, found: u32) -> Result<(), HistoryError> {
    if found > LATEST {
        return Err(HistoryError::TooNew {
            path: path.to_owned(),
            found,
            supported: LATEST,
        });
    }
    Ok(())
}
