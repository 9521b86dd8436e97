//! Which recorded executions are deleted ([`Prune`]): those older than `[history] max_age`,
//! past `[history] max_count` the oldest of the caller that holds the most, and past `[history]
//! max_size` the oldest of the caller that holds the most bytes (`super::budget`). The callers
//! are the API tokens (by name) and the executions of no token (the CLI's, a server's without
//! tokens): with one caller, the oldest go first; with several, one caller's flood deletes its
//! own executions before another's, so a tenant of a shared server cannot empty another's
//! history by running more (`max_count = 20`: 25 runs of one token deleted the 5 of another).
//! A caller loses its executions without a security event first: the events are what the
//! `[response]` rule counts, and a caller that could delete its own by running clean programs
//! would never be refused (a hunt ran seven flooding programs past a threshold of three).

use std::time::SystemTime;

use rusqlite::{params, Transaction};
use warden_core::ByteSize;

use super::entry::{signed, unsigned};
use super::unix_ms;

/// Which executions [`super::HistoryStore::prune`] deletes. Every rule set applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prune {
    /// Delete executions that finished before this time.
    pub older_than: Option<SystemTime>,
    /// Keep only this many: past it, the oldest executions of the caller (API token) that
    /// holds the most are deleted first.
    pub keep_last: Option<u64>,
    /// Keep the database within this size: past it, the oldest records (executions and tool
    /// calls) of the caller that holds the most bytes are deleted. Measured only after a
    /// record whose row number is a multiple of 64 (or while the last measure found it still
    /// past the bound), not at every record (`super::budget`).
    pub max_size: Option<ByteSize>,
}

impl Prune {
    pub(super) fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<u64> {
        let mut deleted = 0;
        if let Some(time) = self.older_than {
            let mut stmt = tx.prepare(FINISHED_BEFORE)?;
            let old = stmt
                .query_map([unix_ms(time)], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            deleted += delete_executions(tx, &old)?;
        }
        if let Some(keep) = self.keep_last {
            // The triggers' counts say how many there are, and whose (schema versions 7, 10).
            let count: i64 = tx.query_row("SELECT n FROM execution_count", [], |r| r.get(0))?;
            let excess = unsigned(count.saturating_sub(signed(keep)));
            if excess > 0 {
                deleted += delete_from_the_most(tx, excess)?;
            }
        }
        Ok(deleted)
    }
}

impl Prune {
    /// Deletes the tool calls this rule no longer keeps: those made before `older_than`, and
    /// past `keep_last` calls the oldest of the caller that holds the most (as for executions,
    /// so that one token's calls, refused ones included, cannot push another's out of the
    /// log). Returns how many.
    pub(super) fn apply_to_tool_calls(&self, tx: &Transaction<'_>) -> rusqlite::Result<u64> {
        let mut deleted = 0;
        if let Some(time) = self.older_than {
            deleted += super::tool_calls::prune_older(tx, time)? as u64;
        }
        let Some(keep) = self.keep_last else {
            return Ok(deleted);
        };
        let held = {
            let mut stmt = tx.prepare(CALLS_HELD)?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, unsigned(r.get(1)?)))
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        let counts: Vec<u64> = held.iter().map(|(_, n)| *n).collect();
        let excess = counts.iter().sum::<u64>().saturating_sub(keep.max(1));
        if excess == 0 {
            return Ok(deleted);
        }
        let (level, more) = level(&counts, excess);
        let oldest_calls = |caller: Option<&str>, limit: u64, skip: u64| {
            let mut stmt = tx.prepare(OLDEST_CALLS_OF)?;
            let rows = stmt.query_map(params![caller, signed(limit), signed(skip)], |r| {
                r.get::<_, i64>(0)
            })?;
            rows.collect::<rusqlite::Result<Vec<i64>>>()
        };
        // Callers at the level with one more to give: those whose oldest call left is oldest.
        let mut tied = Vec::new();
        for (caller, n) in held
            .iter()
            .filter(|(_, n)| *n >= level && level > 0 && more > 0)
        {
            if let Some(seq) = oldest_calls(caller.as_deref(), 1, n - level)?.first() {
                tied.push((*seq, caller.clone()));
            }
        }
        tied.sort();
        let one_more: Vec<Option<String>> = tied
            .into_iter()
            .take(usize::try_from(more).unwrap_or(usize::MAX))
            .map(|(_, caller)| caller)
            .collect();
        let mut delete = tx.prepare("DELETE FROM tool_calls WHERE seq = ?1")?;
        for (caller, n) in &held {
            let lose = n.saturating_sub(level) + u64::from(one_more.contains(caller));
            if lose > 0 {
                for seq in oldest_calls(caller.as_deref(), lose, 0)? {
                    deleted += delete.execute([seq])? as u64;
                }
            }
        }
        Ok(deleted)
    }
}

/// How many tool calls each caller has.
const CALLS_HELD: &str = "SELECT caller, n FROM tool_call_count_by_caller WHERE n > 0";
/// A caller's oldest tool calls, so many after skipping so many.
pub(super) const OLDEST_CALLS_OF: &str =
    "SELECT seq FROM tool_calls WHERE caller IS ?1 ORDER BY seq LIMIT ?2 OFFSET ?3";

/// The executions that finished before a time.
const FINISHED_BEFORE: &str = "SELECT id FROM executions WHERE finished_at_ms < ?1";
/// How many executions each caller has.
const HELD: &str = "SELECT token, n FROM execution_count_by_token WHERE n > 0";
/// A caller's oldest executions without a security event (by finish time, then id, the
/// order of every listing), so many after skipping so many.
const OLDEST_OF: &str = "SELECT id, finished_at_ms FROM executions \
                         WHERE token IS ?1 AND violation_count = 0 \
                         ORDER BY finished_at_ms, id LIMIT ?2 OFFSET ?3";
/// [`OLDEST_OF`] among the executions with a security event.
const OLDEST_WITH_EVENTS_OF: &str = "SELECT id, finished_at_ms FROM executions \
                                     WHERE token IS ?1 AND violation_count > 0 \
                                     ORDER BY finished_at_ms, id LIMIT ?2 OFFSET ?3";

/// Deletes `excess` executions, from the callers holding the most: the largest holdings come
/// down to a common level, each caller losing its oldest. Where callers tie at that level
/// and only some of them must lose one more, those whose oldest left is the oldest do.
fn delete_from_the_most(tx: &Transaction<'_>, excess: u64) -> rusqlite::Result<u64> {
    let held = {
        let mut stmt = tx.prepare(HELD)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Option<String>>(0)?, unsigned(r.get(1)?)))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let counts: Vec<u64> = held.iter().map(|(_, n)| *n).collect();
    let (level, more) = level(&counts, excess);
    // Callers at the level with one more to give: ordered by their oldest execution left.
    let mut tied = Vec::new();
    for (token, n) in held
        .iter()
        .filter(|(_, n)| *n >= level && level > 0 && more > 0)
    {
        let oldest_left = oldest_of(tx, token.as_deref(), 1, n - level)?;
        if let Some((_, at)) = oldest_left.into_iter().next() {
            tied.push((at, token.clone()));
        }
    }
    tied.sort();
    let one_more: Vec<Option<String>> = tied
        .into_iter()
        .take(usize::try_from(more).unwrap_or(usize::MAX))
        .map(|(_, token)| token)
        .collect();
    let mut deleted = 0;
    for (token, n) in &held {
        let lose = n.saturating_sub(level) + u64::from(one_more.contains(token));
        if lose > 0 {
            let ids: Vec<String> = oldest_of(tx, token.as_deref(), lose, 0)?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            deleted += delete_executions(tx, &ids)?;
        }
    }
    Ok(deleted)
}

/// The level the holdings `counts` come down to so that `excess` go, and how many of the
/// callers at it lose one more: the smallest level `L` at which cutting every count above
/// `L` down to it deletes at most `excess`, and the rest of `excess`. `excess` is below the
/// total (at least one execution is kept).
pub(super) fn level(counts: &[u64], excess: u64) -> (u64, u64) {
    let over = |level: u64| -> u64 { counts.iter().map(|n| n.saturating_sub(level)).sum() };
    let (mut low, mut high) = (0, counts.iter().copied().max().unwrap_or(0));
    // `over` falls as the level rises; `over(high)` is 0.
    while low < high {
        let mid = low + (high - low) / 2;
        if over(mid) <= excess {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    (low, excess - over(low))
}

/// `limit` of the executions of `token` (`None`: those of no token) in the order they are
/// deleted, after the first `skip`: their ids and finish times. The oldest without a security
/// event come first, then the oldest with one.
pub(super) fn oldest_of(
    tx: &Transaction<'_>,
    token: Option<&str>,
    limit: u64,
    skip: u64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let query = |sql: &str, limit: u64, skip: u64| -> rusqlite::Result<Vec<(String, i64)>> {
        let mut stmt = tx.prepare(sql)?;
        let rows = stmt.query_map(params![token, signed(limit), signed(skip)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect()
    };
    let mut rows = query(OLDEST_OF, limit, skip)?;
    let short = limit - rows.len() as u64;
    if short > 0 {
        // The clean ones skipped, or all taken: the rest from those with events.
        let clean: i64 = tx.query_row(CLEAN_OF, params![token], |r| r.get(0))?;
        let skip = skip.saturating_sub(unsigned(clean));
        rows.extend(query(OLDEST_WITH_EVENTS_OF, short, skip)?);
    }
    Ok(rows)
}

/// How many executions of a caller have no security event.
const CLEAN_OF: &str = "SELECT COUNT(*) FROM executions WHERE token IS ?1 AND violation_count = 0";

/// Deletes these executions and their connections, one by one through the primary keys: a
/// statement deleting by a subquery let SQLite's planner scan the whole table (tens of
/// megabytes at 100 000 rows) to delete one row.
pub(super) fn delete_executions(tx: &Transaction<'_>, ids: &[String]) -> rusqlite::Result<u64> {
    let mut connections = tx.prepare("DELETE FROM connections WHERE execution_id = ?1")?;
    let mut executions = tx.prepare("DELETE FROM executions WHERE id = ?1")?;
    let mut deleted = 0;
    for id in ids {
        connections.execute([id])?;
        deleted += executions.execute([id])? as u64;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_and_the_response_rule_reach_rows_through_indexes_without_sorting() {
        for query in [
            FINISHED_BEFORE,
            OLDEST_OF,
            OLDEST_WITH_EVENTS_OF,
            CLEAN_OF,
            HELD,
            CALLS_HELD,
            OLDEST_CALLS_OF,
            "DELETE FROM tool_calls WHERE seq = ?1",
            "DELETE FROM connections WHERE execution_id = ?1",
            "DELETE FROM executions WHERE id = ?1",
            super::super::events::CALLER_EVENTS,
        ] {
            let plan = super::super::query_plan(query);
            let scans_a_table = |d: &String| d.starts_with("SCAN") && !d.contains("INDEX");
            let small = |d: &String| {
                d.contains("execution_count_by_token") || d.contains("tool_call_count_by_caller")
            };
            assert!(
                !plan
                    .iter()
                    .any(|d| (scans_a_table(d) && !small(d)) || d.contains("TEMP B-TREE")),
                "{query}: {plan:?}"
            );
        }
    }

    /// Hunt hist 2: a token's statistics and the `[response]` rule's count fetched each of
    /// the token's executions from the table (3.4 s for a token's `/v1/stats` over a million
    /// rows); they read its index alone now, as every token's statistics read the time index.
    #[test]
    fn a_tokens_statistics_and_the_response_count_read_an_index_alone() {
        for query in [
            super::super::stats::TOKEN_PERIOD_ROWS,
            super::super::events::CALLER_EVENTS,
            CLEAN_OF,
            OLDEST_CALLS_OF,
        ] {
            let plan = super::super::query_plan(query);
            assert!(
                plan.iter().all(|d| d.contains("COVERING INDEX")),
                "{query}: {plan:?}"
            );
        }
    }

    #[test]
    fn the_largest_holdings_come_down_to_a_level() {
        // One caller: its oldest go.
        assert_eq!(level(&[10], 3), (7, 0));
        // The largest alone loses while it is above the others.
        assert_eq!(level(&[15, 5, 1], 1), (14, 0));
        // Down to a level shared with the next, then both.
        assert_eq!(level(&[14, 5, 1], 13), (3, 0));
        // Two at the level, one of them loses one more.
        assert_eq!(level(&[1, 1], 1), (1, 1));
        assert_eq!(level(&[4, 4, 2], 5), (2, 1));
        assert_eq!(level(&[3, 3], 0), (3, 0));
    }
}
