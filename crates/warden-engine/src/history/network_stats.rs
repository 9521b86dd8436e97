//! Statistics over the traffic log: attempts, denials and bytes per destination host, and
//! executions, attempts and denials per network policy.
//!
//! The period selects executions by when they finished, as `warden stats` does, and counts
//! their connections: every figure then covers the same connections, so the per-host and the
//! per-policy attempts both add up to the total.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, Transaction};
use serde::Serialize;

use super::entry::unsigned;
use super::HistoryError;

/// Network statistics over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkStats {
    /// Connection attempts and name lookups.
    pub total_attempts: u64,
    /// Those the policies denied.
    pub total_denied: u64,
    /// Per destination: the name the program asked for, else the address. Most attempts first.
    pub per_host: Vec<HostStats>,
    /// Per network policy, over the executions that ran under one that lets traffic out. Most
    /// executions first.
    pub per_policy: Vec<PolicyStats>,
}

/// The attempts on one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostStats {
    /// The name asked for, else the address (`?` when the log has neither).
    pub host: String,
    /// Attempts.
    pub attempts: u64,
    /// Denied attempts.
    pub denied: u64,
    /// Bytes from the programs.
    pub bytes_up: u64,
    /// Bytes to the programs.
    pub bytes_down: u64,
}

/// The executions under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyStats {
    /// The policy's name.
    pub policy: String,
    /// Executions that ran under it (with or without attempts).
    pub executions: u64,
    /// Their attempts.
    pub attempts: u64,
    /// Their denied attempts.
    pub denied: u64,
}

pub(super) fn compute(
    conn: &Connection,
    path: &Path,
    since: Option<SystemTime>,
) -> Result<NetworkStats, HistoryError> {
    super::stats::in_snapshot(conn, path, "computing network statistics", since, read)
}

fn read(tx: &Transaction<'_>, from: i64) -> rusqlite::Result<NetworkStats> {
    let per_host = per_host(tx, from)?;
    Ok(NetworkStats {
        total_attempts: per_host.iter().map(|h| h.attempts).sum(),
        total_denied: per_host.iter().map(|h| h.denied).sum(),
        per_host,
        per_policy: per_policy(tx, from)?,
    })
}

fn per_host(tx: &Transaction<'_>, from: i64) -> rusqlite::Result<Vec<HostStats>> {
    let mut stmt = tx.prepare(
        "SELECT coalesce(c.host, c.addr, '?'), sum(1 + c.repeats), \
         coalesce(sum(1 + c.repeats) FILTER (WHERE c.allowed = 0), 0), \
         coalesce(sum(c.bytes_up), 0), coalesce(sum(c.bytes_down), 0) \
         FROM connections c JOIN executions e ON e.id = c.execution_id \
         WHERE e.finished_at_ms >= ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    let rows = stmt.query_map([from], |r| {
        Ok(HostStats {
            host: r.get(0)?,
            attempts: unsigned(r.get(1)?),
            denied: unsigned(r.get(2)?),
            bytes_up: unsigned(r.get(3)?),
            bytes_down: unsigned(r.get(4)?),
        })
    })?;
    rows.collect()
}

fn per_policy(tx: &Transaction<'_>, from: i64) -> rusqlite::Result<Vec<PolicyStats>> {
    // The programs' connections under their executions' policies (the left join keeps the
    // executions that attempted nothing; `sum(attempts)` skips their one row of NULLs), and
    // the dependency installers' under theirs; a row stands for its folded repeats too.
    let mut stmt = tx.prepare(
        "SELECT policy, count(DISTINCT id), coalesce(sum(attempts), 0), \
         coalesce(sum(attempts) FILTER (WHERE allowed = 0), 0) \
         FROM (SELECT e.network_policy AS policy, e.id AS id, 1 + c.repeats AS attempts, \
                 c.allowed AS allowed \
               FROM executions e LEFT JOIN connections c \
                 ON c.execution_id = e.id AND c.stage IS NULL \
               WHERE e.finished_at_ms >= ?1 AND e.network_policy IS NOT NULL \
               UNION ALL \
               SELECT c.policy, e.id, 1 + c.repeats, c.allowed \
               FROM connections c JOIN executions e ON e.id = c.execution_id \
               WHERE e.finished_at_ms >= ?1 AND c.stage IS NOT NULL AND c.policy IS NOT NULL) \
         GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    let rows = stmt.query_map([from], |r| {
        Ok(PolicyStats {
            policy: r.get(0)?,
            executions: unsigned(r.get(1)?),
            attempts: unsigned(r.get(2)?),
            denied: unsigned(r.get(3)?),
        })
    })?;
    rows.collect()
}
