//! The traffic log (docs/network.md#traffic-log): every connection attempt and name lookup an
//! execution's egress proxy logged, one `connections` row each beside the execution's row,
//! written in the same transaction, read back with the execution (`warden show`) or across
//! executions ([`ConnectionFilter`], `warden network log`).

use std::path::Path;
use std::time::SystemTime;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row as SqlRow, Transaction};
use serde::Serialize;

use super::entry::{execution_id, signed, unsigned};
use super::{classify, unix_ms, HistoryError};
use crate::engine::{Connection as Attempt, NetworkReport};
use crate::id::ExecutionId;

/// Which logged connections [`super::HistoryStore::connections`] returns.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    /// Only connections that started at or after this time.
    pub since: Option<SystemTime>,
    /// Only the denied ones.
    pub denied_only: bool,
    /// Only this execution's: its id or a unique prefix of it (as `warden show` takes).
    pub execution: Option<String>,
    /// At most this many, the newest; 0 for all.
    pub limit: usize,
}

/// One logged connection, with the execution that made it and the policy that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedConnection {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The network policy it ran under.
    pub policy: String,
    /// `dependencies` for the dependency installer's connections; absent for the program's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The attempt, as in the execution's result.
    #[serde(flatten)]
    pub connection: Attempt,
}

/// The columns of a connection, in the order [`read`] takes them.
const COLUMNS: &str = "c.started_at_ms, c.protocol, c.host, c.addr, c.port, c.allowed, c.rule, \
    c.reason, c.bytes_up, c.bytes_down, c.duration_ms, c.cut_by, c.repeats";

/// The stage of the dependency installer's connections.
pub(super) const DEPENDENCIES: &str = "dependencies";

/// Writes the program's `report` (`stage` `None`) or the installer's for the execution `id`,
/// numbered from `first` in the result's order; the installer's rows keep their policy.
pub(super) fn insert(
    tx: &Transaction<'_>,
    id: &str,
    report: &NetworkReport,
    stage: Option<&str>,
    first: usize,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO connections (execution_id, seq, started_at_ms, protocol, host, addr, port, \
         allowed, rule, reason, bytes_up, bytes_down, duration_ms, cut_by, stage, policy, \
         repeats) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         ?17)",
    )?;
    let policy = stage.map(|_| report.policy.as_str());
    for (seq, c) in report.connections.iter().enumerate() {
        stmt.execute(params![
            id,
            signed((first + seq) as u64),
            signed(c.started_ms),
            c.protocol,
            c.host,
            c.addr,
            c.port,
            c.allowed,
            c.rule,
            c.reason,
            signed(c.bytes_up),
            signed(c.bytes_down),
            signed(c.duration_ms),
            c.cut_by,
            stage,
            policy,
            signed(c.repeats),
        ])?;
    }
    Ok(())
}

/// The report of the execution `id`'s program, which ran under `policy`: its connections in
/// the result's order.
pub(super) fn report(
    conn: &Connection,
    id: &str,
    policy: String,
) -> rusqlite::Result<NetworkReport> {
    let sql = format!(
        "SELECT {COLUMNS} FROM connections c WHERE c.execution_id = ?1 AND c.stage IS NULL \
         ORDER BY c.seq"
    );
    report_of(conn, &sql, id, policy, "network_dropped")
}

/// The report of the execution `id`'s dependency installer, if it logged anything.
pub(super) fn dependencies_report(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<NetworkReport>> {
    let policy: Option<String> = conn
        .query_row(
            "SELECT c.policy FROM connections c WHERE c.execution_id = ?1 AND c.stage = ?2 \
             LIMIT 1",
            params![id, DEPENDENCIES],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let Some(policy) = policy else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM connections c WHERE c.execution_id = ?1 AND c.stage = \
         '{DEPENDENCIES}' ORDER BY c.seq"
    );
    report_of(conn, &sql, id, policy, "dependencies_network_dropped").map(Some)
}

/// The report of the connections `sql` selects, with the count of dropped refusals from the
/// execution's column `dropped`.
fn report_of(
    conn: &Connection,
    sql: &str,
    id: &str,
    policy: String,
    dropped: &str,
) -> rusqlite::Result<NetworkReport> {
    let mut stmt = conn.prepare(sql)?;
    let connections = stmt
        .query_map([id], |r| read(r, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    let dropped: i64 = conn.query_row(
        &format!("SELECT {dropped} FROM executions WHERE id = ?1"),
        [id],
        |r| r.get(0),
    )?;
    Ok(NetworkReport::of(policy, connections, unsigned(dropped)))
}

/// The connections matching `filter`, newest first; `execution` is the full id the filter's
/// prefix resolved to.
pub(super) fn query(
    conn: &Connection,
    path: &Path,
    filter: &ConnectionFilter,
    execution: Option<&str>,
) -> Result<Vec<LoggedConnection>, HistoryError> {
    let mut sql = format!(
        "SELECT c.execution_id, coalesce(c.policy, e.network_policy, ''), c.stage, {COLUMNS} \
         FROM connections c JOIN executions e ON e.id = c.execution_id WHERE 1 = 1"
    );
    let mut args = Vec::new();
    if let Some(since) = filter.since {
        sql.push_str(" AND c.started_at_ms >= ?");
        args.push(Value::Integer(unix_ms(since)));
    }
    if filter.denied_only {
        sql.push_str(" AND c.allowed = 0");
    }
    if let Some(id) = execution {
        sql.push_str(" AND c.execution_id = ?");
        args.push(Value::Text(id.to_owned()));
    }
    sql.push_str(" ORDER BY c.started_at_ms DESC, c.execution_id DESC, c.seq DESC");
    if filter.limit > 0 {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(signed(filter.limit as u64)));
    }
    let rows = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    read(r, 3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| classify(path, "listing connections", e))?;
    rows.into_iter()
        .map(|(id, policy, stage, connection)| {
            let execution_id = execution_id(&id).ok_or_else(|| HistoryError::Decode {
                path: path.to_owned(),
                id,
                column: "connections.execution_id",
            })?;
            Ok(LoggedConnection {
                execution_id,
                policy,
                stage,
                connection,
            })
        })
        .collect()
}

/// A connection from the [`COLUMNS`] that start at column `at`.
fn read(row: &SqlRow<'_>, at: usize) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        started_ms: unsigned(row.get(at)?),
        protocol: row.get(at + 1)?,
        host: row.get(at + 2)?,
        addr: row.get(at + 3)?,
        port: row.get(at + 4)?,
        allowed: row.get(at + 5)?,
        rule: row.get(at + 6)?,
        reason: row.get(at + 7)?,
        bytes_up: unsigned(row.get(at + 8)?),
        bytes_down: unsigned(row.get(at + 9)?),
        duration_ms: unsigned(row.get(at + 10)?),
        cut_by: row.get(at + 11)?,
        repeats: unsigned(row.get(at + 12)?),
    })
}
