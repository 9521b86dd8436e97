//! The history's bound in bytes, `[history] max_size` (docs/history.md#what-is-kept): past it,
//! the oldest records of the caller that holds the most bytes are deleted, until the database
//! is back under it with room to spare. Without it a client of `warden serve` filled the disk
//! through the history: nothing pruned it by default, and three 7 MB programs grew it by
//! 21 MB (about 14 MB/s from one client); once the disk was full, nothing more was recorded.
//!
//! The size is SQLite's own count of the pages in use (`page_count` less `freelist_count`,
//! times `page_size`), read from the database's header: no scan. It is measured only after
//! a record whose row number (`rowid` of an execution, `seq` of a tool call) is a multiple of
//! [`CHECK_EVERY`], so that a one-shot `warden run` does not pay for it at every record, and
//! the database may pass the bound by at most that many records before it is pruned.
//!
//! Past the bound, a check deletes down to a [`MARGIN`]th below it (4 MiB of 1 GiB), and at
//! most [`MOST_WEIGHT`] bytes' weight and [`MOST_RECORDS`] records at once: deleting costs
//! 30–50 µs a small execution (its index entries, the triggers' counts) and the reading of a
//! large one's pages; 4,096 small ones took 0.12 s, 620,000 deleted at once held one record
//! for 31 s.
//! A process that finds the database still past the bound checks again at its next record
//! (a server at once, a `warden run` being one record), so that a database far past it (made
//! before the bound existed, or whose bound was just lowered) comes down a step at a time.
//!
//! Pages freed by deleting rows are not given back to the file system: SQLite reuses them for
//! the next records (no `VACUUM`, which rewrites the whole file, and no `auto_vacuum`, which
//! a database made before this must be rebuilt to get). So the file grows to about the bound
//! and stays there; a file larger than the bound when this warden first opens it keeps its
//! size on disk (free pages inside it) until `VACUUM`ed.
//!
//! Who loses is decided by weight: each caller's executions weigh what
//! `execution_count_by_token` adds up for them (their code, output and JSON columns and a few
//! hundred bytes each, kept by triggers: schema version 14), its tool calls [`CALL_WEIGHT`]
//! each. The heaviest come down to a common level, each losing its oldest executions (those
//! without a security event first, as for `max_count`) and its oldest calls in proportion to
//! what each weighs; a token that sends large programs deletes its own history, not another's
//! (counted by records, a token's 16 KiB programs would have cut another's 400 small
//! executions down to its own number). The newest execution, the one just recorded, is never
//! deleted.

use rusqlite::{params, OptionalExtension, Transaction};
use warden_core::ByteSize;

use super::entry::{signed, unsigned};
use super::prune::{delete_executions, level, oldest_of, OLDEST_CALLS_OF};

/// The default of `[history] max_size`.
pub const DEFAULT_MAX_SIZE: ByteSize = ByteSize(ByteSize::GIB);

/// The least `[history] max_size` may be: below it a few records would fill it.
pub const MIN_MAX_SIZE: ByteSize = ByteSize::mib(1);

/// The size is measured after every record whose row number is a multiple of this.
pub(super) const CHECK_EVERY: i64 = 64;

/// What one tool call is taken to weigh: its row (about 150 bytes) and its four index entries.
const CALL_WEIGHT: u64 = 300;

/// How far below the bound a check deletes to: a 256th of it (4 MiB of 1 GiB), so that the
/// next checks find it under the bound until the records since have filled that margin.
const MARGIN: u64 = 256;

/// The most weight one check deletes: four times what the code of 64 records adds at the
/// default `max_kept` (256 KiB each), so that a database past its bound comes down; a process
/// that finds it still past checks again at its next record.
const MOST_WEIGHT: u64 = 64 << 20;

/// The most records (executions and tool calls) one check deletes: 0.12 s of small ones.
const MOST_RECORDS: u64 = 4096;

/// The most rounds of deletion one check makes: each deletes what the weights say would bring
/// the database under the bound, and measures again.
const ROUNDS: usize = 8;

/// The most executions deleted at once by one caller's round, so that a statement's list of
/// ids stays small.
const BATCH: u64 = 500;

/// The newest execution, the one just recorded, which is never deleted.
const NEWEST: &str = "SELECT id FROM executions ORDER BY finished_at_ms DESC, id DESC LIMIT 1";
/// How many bytes each caller's executions weigh.
const BYTES_HELD: &str = "SELECT token, bytes FROM execution_count_by_token WHERE n > 0";
/// How many tool calls each caller has.
const CALLS_HELD: &str = "SELECT caller, n FROM tool_call_count_by_caller WHERE n > 0";
/// How many executions one caller has, and what they weigh.
const HELD_BY: &str = "SELECT n, bytes FROM execution_count_by_token WHERE token IS ?1";

/// Whether the record numbered `rowid` is one after which the size is measured.
pub(super) fn due(rowid: i64) -> bool {
    rowid % CHECK_EVERY == 0
}

/// The bytes of the database's pages in use: those the file has, less the free ones.
pub(super) fn used(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let pragma = |name: &str| -> rusqlite::Result<i64> {
        tx.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
    };
    let pages = unsigned(pragma("page_count")?).saturating_sub(unsigned(pragma("freelist_count")?));
    Ok(pages.saturating_mul(unsigned(pragma("page_size")?)))
}

/// What one check did: how many executions it deleted, and whether the database is still
/// past its bound (the check stopped at [`MOST_WEIGHT`] or [`MOST_RECORDS`]).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Shrunk {
    pub(super) deleted: u64,
    pub(super) over: bool,
}

/// What one check may still delete.
struct Allowance {
    weight: u64,
    records: u64,
}

/// Deletes records until the database uses at most `max_size` less a [`MARGIN`]th of it, if it
/// uses more than `max_size`, and at most [`MOST_WEIGHT`] and [`MOST_RECORDS`].
pub(super) fn shrink(tx: &Transaction<'_>, max_size: ByteSize) -> rusqlite::Result<Shrunk> {
    let max = max_size.bytes();
    let start = used(tx)?;
    if start <= max {
        return Ok(Shrunk::default());
    }
    let low = max - max / MARGIN;
    let newest: Option<String> = tx.query_row(NEWEST, [], |r| r.get(0)).optional()?;
    let mut allowance = Allowance {
        weight: MOST_WEIGHT,
        records: MOST_RECORDS,
    };
    let mut now = start;
    let mut deleted = 0;
    for _ in 0..ROUNDS {
        if now <= low || allowance.weight == 0 || allowance.records == 0 {
            break;
        }
        let (executions, calls) = shed(tx, now - low, newest.as_deref(), &mut allowance)?;
        if executions + calls == 0 {
            break;
        }
        deleted += executions;
        now = used(tx)?;
    }
    tracing::debug!(
        before = start,
        after = now,
        deleted,
        "history over its max_size, pruned"
    );
    Ok(Shrunk {
        deleted,
        over: now > max,
    })
}

/// What one caller holds: its executions' weight and its tool calls.
struct Holding {
    caller: Option<String>,
    bytes: u64,
    calls: u64,
}

impl Holding {
    fn weight(&self) -> u64 {
        self.bytes
            .saturating_add(self.calls.saturating_mul(CALL_WEIGHT))
    }
}

/// Every caller's holding, from the counts the triggers keep.
fn holdings(tx: &Transaction<'_>) -> rusqlite::Result<Vec<Holding>> {
    let mut held: Vec<Holding> = Vec::new();
    let mut stmt = tx.prepare(BYTES_HELD)?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, unsigned(r.get(1)?))))? {
        let (caller, bytes) = row?;
        held.push(Holding {
            caller,
            bytes,
            calls: 0,
        });
    }
    let mut stmt = tx.prepare(CALLS_HELD)?;
    for row in stmt.query_map([], |r| {
        Ok((r.get::<_, Option<String>>(0)?, unsigned(r.get(1)?)))
    })? {
        let (caller, calls) = row?;
        match held.iter_mut().find(|h| h.caller == caller) {
            Some(holding) => holding.calls = calls,
            None => held.push(Holding {
                caller,
                bytes: 0,
                calls,
            }),
        }
    }
    Ok(held)
}

/// Deletes about `goal` bytes' weight of records from the heaviest callers, which come down to
/// a common level, within `allowance`; never the execution `keep`. Returns how many executions
/// and tool calls.
fn shed(
    tx: &Transaction<'_>,
    goal: u64,
    keep: Option<&str>,
    allowance: &mut Allowance,
) -> rusqlite::Result<(u64, u64)> {
    let held = holdings(tx)?;
    let weights: Vec<u64> = held.iter().map(Holding::weight).collect();
    let total: u64 = weights.iter().sum();
    let goal = goal.min(allowance.weight).min(total.saturating_sub(1));
    let (level, _) = level(&weights, goal);
    let (mut executions, mut calls) = (0, 0);
    for (holding, weight) in held.iter().zip(weights) {
        let lose = weight.saturating_sub(level);
        if lose == 0 {
            continue;
        }
        // Each table gives its share of what the caller loses.
        let from_executions =
            u64::try_from(u128::from(lose) * u128::from(holding.bytes) / u128::from(weight))
                .unwrap_or(lose);
        let caller = holding.caller.as_deref();
        executions += shed_executions(tx, caller, from_executions, keep, allowance)?;
        let from_calls = (lose - from_executions)
            .div_ceil(CALL_WEIGHT)
            .min(holding.calls)
            .min(allowance.records);
        let gone = shed_calls(tx, caller, from_calls)?;
        allowance.records -= gone.min(allowance.records);
        let weight = gone.saturating_mul(CALL_WEIGHT);
        allowance.weight -= weight.min(allowance.weight);
        calls += gone;
    }
    Ok((executions, calls))
}

/// Deletes the oldest executions of `caller` (those without a security event first) until
/// their weight adds up to `goal`, within `allowance`; never `keep`. Returns how many.
fn shed_executions(
    tx: &Transaction<'_>,
    caller: Option<&str>,
    goal: u64,
    keep: Option<&str>,
    allowance: &mut Allowance,
) -> rusqlite::Result<u64> {
    let held = |tx: &Transaction<'_>| -> rusqlite::Result<(u64, u64)> {
        tx.query_row(HELD_BY, params![caller], |r| {
            Ok((unsigned(r.get(0)?), unsigned(r.get(1)?)))
        })
        .optional()
        .map(Option::unwrap_or_default)
    };
    let (mut n, start) = held(tx)?;
    let mut bytes = start;
    let mut deleted = 0;
    let freed = |bytes: u64| start - bytes.min(start);
    while freed(bytes) < goal && n > 0 && allowance.records > 0 && allowance.weight > 0 {
        // As many as the caller's average weight says are left to go, at least one.
        let average = (bytes / n).max(1);
        let left = goal - freed(bytes);
        let batch = (left / average + 1)
            .min(n)
            .min(BATCH)
            .min(allowance.records);
        // One more, in case `keep` is among them.
        let ids: Vec<String> = oldest_of(tx, caller, batch + 1, 0)?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| Some(id.as_str()) != keep)
            .take(usize::try_from(batch).unwrap_or(usize::MAX))
            .collect();
        let gone = delete_executions(tx, &ids)?;
        if gone == 0 {
            break;
        }
        deleted += gone;
        let before = bytes;
        (n, bytes) = held(tx)?;
        allowance.records -= gone.min(allowance.records);
        allowance.weight -= (before - bytes.min(before)).min(allowance.weight);
    }
    Ok(deleted)
}

/// Deletes the `count` oldest tool calls of `caller`. Returns how many.
fn shed_calls(tx: &Transaction<'_>, caller: Option<&str>, count: u64) -> rusqlite::Result<u64> {
    if count == 0 {
        return Ok(0);
    }
    let seqs = {
        let mut stmt = tx.prepare(OLDEST_CALLS_OF)?;
        let rows = stmt.query_map(params![caller, signed(count), 0], |r| r.get::<_, i64>(0))?;
        rows.collect::<rusqlite::Result<Vec<i64>>>()?
    };
    let mut delete = tx.prepare("DELETE FROM tool_calls WHERE seq = ?1")?;
    let mut deleted = 0;
    for seq in seqs {
        deleted += delete.execute([seq])? as u64;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A check reads the counts (a row per caller) and the newest execution from the time
    /// index: none reads the executions' table.
    #[test]
    fn a_check_reads_no_table_of_records() {
        for query in [NEWEST, BYTES_HELD, CALLS_HELD, HELD_BY] {
            let plan = super::super::query_plan(query);
            let reads_records = |d: &String| {
                d.starts_with("SCAN")
                    && !d.contains("COVERING INDEX")
                    && !d.contains("execution_count_by_token")
                    && !d.contains("tool_call_count_by_caller")
            };
            assert!(
                !plan
                    .iter()
                    .any(|d| reads_records(d) || d.contains("TEMP B-TREE")),
                "{query}: {plan:?}"
            );
        }
    }

    #[test]
    fn the_size_is_measured_after_every_64th_record() {
        let due: Vec<i64> = (1..=200).filter(|n| due(*n)).collect();
        assert_eq!(due, [64, 128, 192]);
    }
}
