//! Statistics over the recorded executions: counts by language, outcome, mode and threat
//! level, violations, wall-time percentiles and per-language averages.
//!
//! Times and memory describe programs that ran to their end: executions that failed to compile
//! or to install their dependencies, and those a cancel cut short, are counted but left out of
//! the percentiles and averages (their zero or partial usage would drag them down).

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

/// What the statistics read of each execution of the period (`?1`: its start in unix
/// milliseconds). Every column is in the time index, so the query scans that index alone.
const PERIOD_ROWS: &str = "SELECT language, mode, outcome_kind, threat_level, \
     violation_count, wall_time_ms, cpu_time_ms, peak_memory_bytes \
     FROM executions WHERE finished_at_ms >= ?1";

/// [`PERIOD_ROWS`] of one API token's executions (`?2`: its name), which scans the token's
/// index alone (`executions_by_token`, schema version 13, carries these columns): each
/// execution read from the table took about 3 s over a million rows.
pub(super) const TOKEN_PERIOD_ROWS: &str = "SELECT language, mode, outcome_kind, threat_level, \
     violation_count, wall_time_ms, cpu_time_ms, peak_memory_bytes \
     FROM executions WHERE finished_at_ms >= ?1 AND token = ?2";

/// The statistics of the executions since `since` (all when `None`) that the API token
/// named `token` asked for (every execution when `None`).
pub(super) fn compute(
    conn: &Connection,
    path: &Path,
    since: Option<SystemTime>,
    token: Option<&str>,
) -> Result<Stats, HistoryError> {
    in_snapshot(conn, path, "computing statistics", since, |tx, from| {
        read(tx, from, token)
    })
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

/// One pass over the period's rows (of `token`'s executions, when given): counts, sums and a
/// histogram of wall times.
fn read(tx: &Transaction<'_>, from: i64, token: Option<&str>) -> rusqlite::Result<Stats> {
    let mut stats = Stats::default();
    // Sums per language over the programs that ran: wall, cpu, memory.
    let mut sums: BTreeMap<String, (u64, [i128; 3])> = BTreeMap::new();
    // How many programs that ran took each wall time, in milliseconds: exact percentiles in
    // memory bounded by the distinct times, not by the rows.
    let mut walls: BTreeMap<i64, u64> = BTreeMap::new();
    let mut stmt = tx.prepare(if token.is_some() {
        TOKEN_PERIOD_ROWS
    } else {
        PERIOD_ROWS
    })?;
    let mut rows = match token {
        Some(token) => stmt.query(rusqlite::params![from, token])?,
        None => stmt.query([from])?,
    };
    while let Some(row) = rows.next()? {
        let language = row.get_ref(0)?.as_str()?;
        let outcome = row.get_ref(2)?.as_str()?;
        let violation_count: i64 = row.get(4)?;
        stats.total += 1;
        count(&mut stats.by_language, language);
        count(&mut stats.by_mode, row.get_ref(1)?.as_str()?);
        count(&mut stats.by_outcome, outcome);
        count(
            &mut stats.by_threat_level,
            row.get_ref(3)?.as_str_or_null()?.unwrap_or("unknown"),
        );
        let violation = outcome == "violation";
        stats.violation_outcomes += u64::from(violation);
        stats.violations += u64::from(violation || violation_count > 0);
        stats.security_violations += unsigned(violation_count);
        // Their program never ran, or a cancel cut it short: their usage would drag the
        // figures down.
        if matches!(outcome, "compile_error" | "dependency_error" | "cancelled") {
            continue;
        }
        let usage: [i64; 3] = [row.get(5)?, row.get(6)?, row.get(7)?];
        *walls.entry(usage[0]).or_default() += 1;
        let (runs, sum) = match sums.get_mut(language) {
            Some(entry) => entry,
            None => sums.entry(language.to_owned()).or_default(),
        };
        *runs += 1;
        for (total, value) in sum.iter_mut().zip(usage) {
            *total += i128::from(value);
        }
    }
    let ran = walls.values().sum();
    stats.wall_time_p50_ms = percentile(&walls, ran, 50);
    stats.wall_time_p95_ms = percentile(&walls, ran, 95);
    stats.per_language = sums
        .into_iter()
        .map(|(language, (runs, [wall, cpu, memory]))| {
            // i128 sums of i64 values are exact; only the division rounds.
            let avg = |total: i128| total as f64 / runs as f64;
            let averages = LanguageStats {
                runs,
                avg_wall_time_ms: avg(wall),
                avg_cpu_time_ms: avg(cpu),
                avg_peak_memory_bytes: avg(memory),
            };
            (language, averages)
        })
        .collect();
    Ok(stats)
}

/// Adds one to `key`'s count, allocating the key only the first time.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// The `p`th percentile of the `n` wall times counted in `walls`, by nearest rank: the
/// smallest value with at least `p`% of the values at or below it.
fn percentile(walls: &BTreeMap<i64, u64>, n: u64, p: u64) -> Option<u64> {
    let rank = (n * p).div_ceil(100).max(1);
    let mut seen = 0;
    walls.iter().find_map(|(&ms, &k)| {
        seen += k;
        (seen >= rank).then_some(unsigned(ms))
    })
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statistics_read_the_time_index_alone() {
        assert_eq!(
            super::super::query_plan(PERIOD_ROWS),
            ["SEARCH executions USING COVERING INDEX executions_by_time (finished_at_ms>?)"]
        );
    }

    #[test]
    fn percentiles_are_nearest_ranks_over_the_counted_times() {
        let walls = BTreeMap::from([(5, 1), (10, 2), (40, 1)]);
        assert_eq!(percentile(&walls, 4, 25), Some(5));
        assert_eq!(percentile(&walls, 4, 50), Some(10));
        assert_eq!(percentile(&walls, 4, 75), Some(10));
        assert_eq!(percentile(&walls, 4, 95), Some(40));
        assert_eq!(percentile(&BTreeMap::new(), 0, 50), None);
    }
}
