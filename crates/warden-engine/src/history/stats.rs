//! Statistics over the recorded executions: counts by language, outcome, mode and threat
//! level, violations, wall-time percentiles and per-language averages.
//!
//! Times and memory describe programs that ran: executions that failed to compile or to install
//! their dependencies are counted but left out of the percentiles and averages (their zero
//! usage would drag them down).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{classify, unix_ms, HistoryError};

/// Statistics over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Executions recorded.
    pub total: u64,
    /// Executions by language id.
    pub by_language: BTreeMap<String, u64>,
    /// Executions by outcome kind (`exited`, `time_limit`, ...).
    pub by_outcome: BTreeMap<String, u64>,
    /// Executions by mode.
    pub by_mode: BTreeMap<String, u64>,
    /// Executions by threat level (`unknown` when the code was not analysed).
    pub by_threat_level: BTreeMap<String, u64>,
    /// Executions with a violation: their outcome is a security violation, or their security
    /// section lists one.
    pub violations: u64,
    /// Executions whose outcome is a security violation (the sandbox stopped a forbidden
    /// operation).
    pub violation_outcomes: u64,
    /// Entries of the executions' security sections, added up: each limit hit or forbidden
    /// operation the sandbox stopped.
    pub security_violations: u64,
    /// Median wall time of the programs that ran (nearest rank), in milliseconds.
    pub wall_time_p50_ms: Option<u64>,
    /// 95th percentile of the same (nearest rank).
    pub wall_time_p95_ms: Option<u64>,
    /// Averages per language, over the programs that ran.
    pub per_language: BTreeMap<String, LanguageStats>,
}

/// Averages of one language's programs that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LanguageStats {
    /// Programs that ran.
    pub runs: u64,
    /// Average wall time, in milliseconds.
    pub avg_wall_time_ms: f64,
    /// Average cpu time, in milliseconds.
    pub avg_cpu_time_ms: f64,
    /// Average peak memory, in bytes.
    pub avg_peak_memory_bytes: f64,
}

/// Rows of the period; `?1` is its start in unix milliseconds.
const PERIOD: &str = "FROM executions WHERE finished_at_ms >= ?1";
/// The programs that ran, in the period.
const RAN: &str = "FROM executions WHERE finished_at_ms >= ?1 AND outcome_kind NOT IN ('compile_error', 'dependency_error')";

pub(super) fn compute(
    conn: &Connection,
    path: &Path,
    since: Option<SystemTime>,
) -> Result<Stats, HistoryError> {
    in_snapshot(conn, path, "computing statistics", since, read)
}

/// Runs `read` on the executions since `since` (milliseconds since the epoch, all when `None`)
/// in one read transaction, so that every figure describes the same snapshot of the database.
pub(super) fn in_snapshot<T>(
    conn: &Connection,
    path: &Path,
    step: &'static str,
    since: Option<SystemTime>,
    read: impl FnOnce(&Transaction<'_>, i64) -> rusqlite::Result<T>,
) -> Result<T, HistoryError> {
    let from = since.map_or(i64::MIN, unix_ms);
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
        .map_err(|e| classify(path, step, e))?;
    let out = read(&tx, from).map_err(|e| classify(path, step, e))?;
    tx.commit().map_err(|e| classify(path, step, e))?;
    Ok(out)
}

fn read(tx: &Transaction<'_>, from: i64) -> rusqlite::Result<Stats> {
    let by_threat_level = counts(tx, "coalesce(threat_level, 'unknown')", from)?;
    let [violations, violation_outcomes, security_violations] = tx.query_row(
        &format!(
            "SELECT count(*) FILTER (WHERE outcome_kind = 'violation' OR violation_count > 0), \
             count(*) FILTER (WHERE outcome_kind = 'violation'), \
             coalesce(sum(violation_count), 0) {PERIOD}"
        ),
        [from],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?].map(unsigned)),
    )?;
    let ran: i64 = tx.query_row(&format!("SELECT count(*) {RAN}"), [from], |r| r.get(0))?;
    Ok(Stats {
        total: by_threat_level.values().sum(),
        by_language: counts(tx, "language", from)?,
        by_outcome: counts(tx, "outcome_kind", from)?,
        by_mode: counts(tx, "mode", from)?,
        by_threat_level,
        violations,
        violation_outcomes,
        security_violations,
        wall_time_p50_ms: percentile(tx, from, unsigned(ran), 50)?,
        wall_time_p95_ms: percentile(tx, from, unsigned(ran), 95)?,
        per_language: per_language(tx, from)?,
    })
}

/// Executions per value of `column` (a column name or expression written in this file).
fn counts(
    tx: &Transaction<'_>,
    column: &str,
    from: i64,
) -> rusqlite::Result<BTreeMap<String, u64>> {
    let sql = format!("SELECT {column}, count(*) {PERIOD} GROUP BY 1");
    let mut stmt = tx.prepare(&sql)?;
    let rows = stmt.query_map([from], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    rows.map(|row| row.map(|(key, n)| (key, unsigned(n))))
        .collect()
}

/// The `p`th percentile of the wall times of `n` programs, by nearest rank: the smallest value
/// with at least `p`% of the values at or below it.
fn percentile(tx: &Transaction<'_>, from: i64, n: u64, p: u64) -> rusqlite::Result<Option<u64>> {
    if n == 0 {
        return Ok(None);
    }
    let rank = (n * p).div_ceil(100).max(1);
    let offset = i64::try_from(rank - 1).unwrap_or(i64::MAX);
    let sql = format!("SELECT wall_time_ms {RAN} ORDER BY wall_time_ms LIMIT 1 OFFSET ?2");
    let ms: i64 = tx.query_row(&sql, [from, offset], |r| r.get(0))?;
    Ok(Some(unsigned(ms)))
}

fn per_language(
    tx: &Transaction<'_>,
    from: i64,
) -> rusqlite::Result<BTreeMap<String, LanguageStats>> {
    let sql = format!(
        "SELECT language, count(*), avg(wall_time_ms), avg(cpu_time_ms), \
         avg(peak_memory_bytes) {RAN} GROUP BY language"
    );
    let mut stmt = tx.prepare(&sql)?;
    let rows = stmt.query_map([from], |r| {
        let stats = LanguageStats {
            runs: unsigned(r.get(1)?),
            avg_wall_time_ms: r.get(2)?,
            avg_cpu_time_ms: r.get(3)?,
            avg_peak_memory_bytes: r.get(4)?,
        };
        Ok((r.get::<_, String>(0)?, stats))
    })?;
    rows.collect()
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
