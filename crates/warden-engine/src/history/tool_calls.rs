//! The tool registry's call log (docs/tools.md#statistics): one `tool_calls` row per call, with
//! how it ended, its latency and its execution, and the per-tool and per-category statistics
//! computed from them (`warden tool stats`, `GET /v1/tools/stats`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, Transaction};
use serde::Serialize;

use super::entry::{signed, unsigned};
use super::{classify, unix_ms, utc_from_unix_ms, HistoryError};

/// How a tool call ended, as the statistics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// The tool ran and succeeded.
    Success,
    /// The tool ran and failed: its program exited non-zero, hit a limit, or the operation
    /// failed (a missing file).
    Failure,
    /// The call was refused before anything ran: input that does not match the schema, a
    /// tool awaiting approval, a busy server.
    Refused,
    /// The tool's program was stopped for a security violation (a denied system call, a
    /// denied connection that ended it).
    Violation,
}

impl ToolCallStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Refused => "refused",
            Self::Violation => "violation",
        }
    }
}

/// One call to record.
#[derive(Debug, Clone)]
pub struct ToolCallRecord<'a> {
    /// The tool's name (for a wrapped MCP server's tools, `server/tool`).
    pub tool: &'a str,
    /// Its category.
    pub category: &'a str,
    /// The interface (`cli`, `v1`, `mcp`, ...).
    pub api: &'a str,
    /// The API token's name, if any.
    pub caller: Option<&'a str>,
    /// How it ended.
    pub status: ToolCallStatus,
    /// From the call's arrival to its answer.
    pub latency: Duration,
    /// The execution it ran as, if it ran one.
    pub execution_id: Option<&'a str>,
    /// Why it failed or was refused, in one line.
    pub error: Option<&'a str>,
    /// When it was answered, if that was not as it is recorded (a relayed call, recorded once
    /// its server's execution has ended and has an id); `None` is now.
    pub answered_at: Option<SystemTime>,
}

/// Statistics of one tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolStat {
    /// The tool.
    pub tool: String,
    /// Its category at its last call.
    pub category: String,
    /// Calls.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls whose tool failed.
    pub failures: u64,
    /// Calls refused before running.
    pub refusals: u64,
    /// Calls stopped for a security violation.
    pub violations: u64,
    /// The median latency of the calls that ran, in milliseconds.
    pub latency_p50_ms: Option<u64>,
    /// The 95th percentile of the same.
    pub latency_p95_ms: Option<u64>,
    /// The last failure's or refusal's reason, with its time.
    pub last_error: Option<LastError>,
}

/// The most recent error of a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// What went wrong.
    pub error: String,
}

/// Statistics of one category: the sums of its tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryStat {
    /// The category.
    pub category: String,
    /// Calls.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls whose tool failed.
    pub failures: u64,
    /// Calls refused before running.
    pub refusals: u64,
    /// Calls stopped for a security violation.
    pub violations: u64,
}

/// The registry's statistics over a period.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ToolStats {
    /// Per tool, by name.
    pub tools: Vec<ToolStat>,
    /// Per category, by name.
    pub categories: Vec<CategoryStat>,
}

/// Writes one call.
pub(super) fn insert(
    tx: &Transaction<'_>,
    call: &ToolCallRecord<'_>,
    at: SystemTime,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tool_calls (called_at_ms, tool, category, api, caller, status, latency_ms, \
         execution_id, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            unix_ms(at),
            call.tool,
            call.category,
            call.api,
            call.caller,
            call.status.as_str(),
            signed(u64::try_from(call.latency.as_millis()).unwrap_or(u64::MAX)),
            call.execution_id,
            call.error,
        ],
    )?;
    Ok(())
}

/// Deletes the calls made before `time`.
pub(super) fn prune_older(tx: &Transaction<'_>, time: SystemTime) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM tool_calls WHERE called_at_ms < ?1",
        [unix_ms(time)],
    )
}

/// The tool an execution ran for, if it was a tool call.
pub(super) fn tool_of(conn: &Connection, execution: &str) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare("SELECT tool FROM tool_calls WHERE execution_id = ?1 LIMIT 1")?;
    let mut rows = stmt.query([execution])?;
    rows.next()?.map(|r| r.get(0)).transpose()
}

/// The statistics of the calls made at or after `since` (all when `None`) by the API token
/// named `caller` (every caller's when `None`).
pub(super) fn stats(
    conn: &Connection,
    path: &Path,
    since: Option<SystemTime>,
    caller: Option<&str>,
) -> Result<ToolStats, HistoryError> {
    let step = "reading tool statistics";
    let from = since.map_or(i64::MIN, unix_ms);
    let mut stmt = conn
        .prepare(
            "SELECT tool, category, status, latency_ms, error, called_at_ms FROM tool_calls \
             WHERE called_at_ms >= ?1 AND (?2 IS NULL OR caller = ?2) ORDER BY seq",
        )
        .map_err(|e| classify(path, step, e))?;
    let rows = stmt
        .query_map(rusqlite::params![from, caller], |r| {
            Ok(Row {
                tool: r.get(0)?,
                category: r.get(1)?,
                status: r.get(2)?,
                latency_ms: unsigned(r.get(3)?),
                error: r.get(4)?,
                at_ms: unsigned(r.get(5)?),
            })
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| classify(path, step, e))?;
    Ok(summarise(rows))
}

/// One row as [`stats`] reads it.
struct Row {
    tool: String,
    category: String,
    status: String,
    latency_ms: u64,
    error: Option<String>,
    at_ms: u64,
}

/// Per-tool counts, latency percentiles over the calls that ran, and the last error; per-
/// category sums.
fn summarise(rows: Vec<Row>) -> ToolStats {
    let mut tools: BTreeMap<String, (ToolStat, Vec<u64>)> = BTreeMap::new();
    // Each call under the category it had: a tool's category may change (a registration
    // replaced), and its past calls are not moved to its latest one (hunt mcp 14).
    let mut categories: BTreeMap<String, CategoryStat> = BTreeMap::new();
    for row in rows {
        let sum = categories
            .entry(row.category.clone())
            .or_insert_with(|| CategoryStat {
                category: row.category.clone(),
                calls: 0,
                successes: 0,
                failures: 0,
                refusals: 0,
                violations: 0,
            });
        sum.calls += 1;
        match row.status.as_str() {
            "success" => sum.successes += 1,
            "refused" => sum.refusals += 1,
            "violation" => sum.violations += 1,
            _ => sum.failures += 1,
        }
        let (stat, latencies) = tools.entry(row.tool.clone()).or_insert_with(|| {
            (
                ToolStat {
                    tool: row.tool.clone(),
                    category: String::new(),
                    calls: 0,
                    successes: 0,
                    failures: 0,
                    refusals: 0,
                    violations: 0,
                    latency_p50_ms: None,
                    latency_p95_ms: None,
                    last_error: None,
                },
                Vec::new(),
            )
        });
        stat.category = row.category;
        stat.calls += 1;
        match row.status.as_str() {
            "success" => stat.successes += 1,
            "refused" => stat.refusals += 1,
            "violation" => stat.violations += 1,
            _ => stat.failures += 1,
        }
        if row.status != "refused" {
            latencies.push(row.latency_ms);
        }
        if let Some(error) = row.error {
            stat.last_error = Some(LastError {
                at: utc_from_unix_ms(row.at_ms),
                error,
            });
        }
    }
    let tools = tools
        .into_values()
        .map(|(mut stat, mut latencies)| {
            latencies.sort_unstable();
            stat.latency_p50_ms = percentile(&latencies, 50);
            stat.latency_p95_ms = percentile(&latencies, 95);
            stat
        })
        .collect();
    ToolStats {
        tools,
        categories: categories.into_values().collect(),
    }
}

/// The nearest-rank percentile `p` of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tool: &str, status: &str, latency_ms: u64, error: Option<&str>) -> Row {
        Row {
            tool: tool.to_owned(),
            category: "shell".to_owned(),
            status: status.to_owned(),
            latency_ms,
            error: error.map(str::to_owned),
            at_ms: 0,
        }
    }

    #[test]
    fn counts_percentiles_and_last_errors_per_tool_and_category() {
        let mut rows: Vec<Row> = (1..=20).map(|ms| row("a", "success", ms, None)).collect();
        rows.push(row("a", "refused", 9999, Some("bad input")));
        rows.push(row("a", "failure", 5, Some("exit 1")));
        rows.push(row("b", "violation", 7, Some("denied")));
        let stats = summarise(rows);
        let a = &stats.tools[0];
        assert_eq!(
            (a.calls, a.successes, a.refusals, a.failures),
            (22, 20, 1, 1)
        );
        // The refusal's latency does not count: 21 latencies, 1..=20 and a 5.
        assert_eq!(a.latency_p50_ms, Some(10));
        assert_eq!(a.latency_p95_ms, Some(19));
        assert_eq!(
            a.last_error.as_ref().map(|e| e.error.as_str()),
            Some("exit 1")
        );
        assert_eq!(stats.tools[1].violations, 1);
        assert_eq!(stats.categories.len(), 1);
        assert_eq!(stats.categories[0].calls, 23);
    }

    /// Regression (hunt mcp 14): the category sums took each tool's latest category for all
    /// its calls, so a tool replaced with another category moved its past calls.
    #[test]
    fn categories_sum_each_call_under_its_own_category() {
        let mut rows = vec![row("t", "success", 1, None), row("t", "failure", 1, None)];
        rows.push(Row {
            category: "network".to_owned(),
            ..row("t", "success", 1, None)
        });
        let stats = summarise(rows);
        assert_eq!(stats.tools[0].category, "network");
        let sums: Vec<_> = stats
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.calls, c.successes, c.failures))
            .collect();
        assert_eq!(sums, [("network", 1, 1, 0), ("shell", 2, 1, 1)]);
    }

    #[test]
    fn percentiles_of_nothing_and_of_one() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[4], 95), Some(4));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
    }
}
