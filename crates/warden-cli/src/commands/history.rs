//! `warden history`: the recorded executions, newest first. Also the history settings read from
//! the environment, and the recording of `warden run`'s executions (docs/history.md).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use clap::builder::PossibleValuesParser;
use clap::Args;
use warden_core::{parse_duration, Outcome};
use warden_engine::history::Prune;
use warden_engine::{
    ExecutionRequest, ExecutionResult, HistoryEntry, HistoryFilter, HistoryStore, RecordInput,
    Retention,
};
use warden_sandbox::Stdin;

/// The outcome kinds, as `--outcome` accepts them.
const OUTCOME_KINDS: [&str; 8] = [
    "exited",
    "signaled",
    "time_limit",
    "memory_limit",
    "output_limit",
    "file_size_limit",
    "violation",
    "compile_error",
];

/// The modes, as `--mode` accepts them.
const MODES: [&str; 3] = ["trusted", "sandboxed", "isolated"];

/// Where the history is and what it keeps: each setting from its environment variable, else
/// the configuration's `[history]` section, else the default.
#[derive(Debug, Clone)]
pub(crate) struct HistorySettings {
    /// The database file (`WARDEN_DB`, `path`, see `history_path`).
    pub(crate) path: PathBuf,
    /// What is kept of code and output (`WARDEN_HISTORY_RETENTION`).
    pub(crate) retention: Retention,
    /// Executions older than this are deleted after each record (`WARDEN_HISTORY_MAX_AGE`).
    pub(crate) max_age: Option<Duration>,
    /// Only this many, the newest, are kept (`WARDEN_HISTORY_MAX_COUNT`).
    pub(crate) max_count: Option<u64>,
}

impl HistorySettings {
    pub(crate) fn load() -> anyhow::Result<Self> {
        let config = super::config()?.history;
        // The environment wins; `what` names where a bad value came from.
        let pick =
            |name: &'static str, configured: Option<String>, key: &'static str| match var(name) {
                Some(v) => Some((v, name)),
                None => configured.map(|v| (v, key)),
            };
        let retention = match pick(
            "WARDEN_HISTORY_RETENTION",
            config.retention,
            "[history] retention",
        ) {
            Some((v, what)) => v.parse().map_err(|e: String| anyhow!(e)).context(what)?,
            None => Retention::default(),
        };
        let max_age = pick(
            "WARDEN_HISTORY_MAX_AGE",
            config.max_age,
            "[history] max_age",
        )
        .map(|(v, what)| parse_age(&v).map_err(|e| anyhow!(e)).context(what))
        .transpose()?;
        let max_count = match var("WARDEN_HISTORY_MAX_COUNT") {
            Some(v) => Some(v.parse::<u64>().context("WARDEN_HISTORY_MAX_COUNT")?),
            None => config.max_count,
        };
        Ok(Self {
            path: super::history_path(config.path),
            retention,
            max_age,
            max_count,
        })
    }

    fn prune(&self) -> Option<Prune> {
        let older_than = self
            .max_age
            .and_then(|age| SystemTime::now().checked_sub(age));
        (older_than.is_some() || self.max_count.is_some()).then_some(Prune {
            older_than,
            keep_last: self.max_count,
        })
    }

    pub(super) fn open(&self) -> anyhow::Result<HistoryStore> {
        HistoryStore::open(&self.path).context("opening the execution history")
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What `warden run` must remember of a request to record its execution: the engine consumes
/// the request.
pub(crate) struct PendingRecord {
    code: Vec<u8>,
    stdin_bytes: Option<u64>,
}

impl PendingRecord {
    pub(crate) fn of(request: &ExecutionRequest) -> Self {
        let stdin_bytes = match &request.stdin {
            Stdin::Null => Some(0),
            Stdin::Bytes(bytes) => Some(bytes.len() as u64),
            Stdin::Pipe(_) => None,
        };
        Self {
            code: request
                .sources
                .first()
                .map(|s| s.code.clone())
                .unwrap_or_default(),
            stdin_bytes,
        }
    }

    /// Records the execution. The history never fails a run: a failure is one warning line.
    pub(crate) fn record(self, result: &ExecutionResult) {
        let settings = match HistorySettings::load() {
            Ok(settings) => settings,
            Err(e) => return eprintln!("warden: warning: history not recorded: {e:#}"),
        };
        let input = RecordInput {
            code: &self.code,
            stdin_bytes: self.stdin_bytes,
        };
        let store = match settings.open() {
            Ok(store) => store,
            Err(e) => return eprintln!("warden: warning: history not recorded: {e:#}"),
        };
        if let Err(e) = store.record(result, input, settings.retention) {
            return eprintln!("warden: warning: history not recorded: {e:#}");
        }
        if let Err(e) = settings.prune().map(|rule| store.prune(&rule)).transpose() {
            eprintln!("warden: warning: history not pruned: {e:#}");
        }
    }
}

/// Arguments of `warden history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only this language (id or alias).
    #[arg(short = 'l', long, visible_alias = "lang")]
    language: Option<String>,
    /// Only this outcome.
    #[arg(long, value_parser = PossibleValuesParser::new(OUTCOME_KINDS))]
    outcome: Option<String>,
    /// Only this mode.
    #[arg(long, value_parser = PossibleValuesParser::new(MODES))]
    mode: Option<String>,
    /// Only executions that finished within this long (e.g. 30m, 1h, 2d, 1w).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    /// At most this many, the newest (0 for all).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = HistorySettings::load()?.open()?;
    let filter = HistoryFilter {
        language: args.language.as_deref().map(canonical_language),
        outcome: args.outcome,
        mode: args.mode,
        since: args.since,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let entries = store.list(&filter)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries).context("writing the history")?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "ID", "FINISHED", "LANGUAGE", "MODE", "THREAT", "OUTCOME", "WALL", "CPU", "MEMORY",
    ];
    let rows: Vec<Vec<String>> = entries.iter().map(row).collect();
    write_table(&mut out, &header, &rows)?;
    Ok(ExitCode::SUCCESS)
}

fn row(e: &HistoryEntry) -> Vec<String> {
    vec![
        e.id.as_str().chars().take(12).collect(),
        e.finished_at_utc().chars().take(19).collect::<String>() + "Z",
        e.language.clone(),
        e.mode.clone(),
        e.threat_level.map_or("-", |t| t.name()).to_owned(),
        short_outcome(&e.outcome),
        warden_core::units::format_duration(e.usage.wall_time),
        warden_core::units::format_duration(e.usage.cpu_time),
        human_bytes(e.usage.peak_memory.bytes() as f64),
    ]
}

/// The catalog's id for a language alias (`py` -> `python`); other names as given.
pub(super) fn canonical_language(name: &str) -> String {
    warden_core::Catalog::builtin()
        .ok()
        .and_then(|c| c.get(name).map(|l| l.id.to_string()))
        .unwrap_or_else(|| name.to_owned())
}

/// A point in the past given as how long ago: `parse_duration`'s units, and `d` and `w`.
pub(super) fn parse_since(input: &str) -> Result<SystemTime, String> {
    let age = parse_age(input)?;
    SystemTime::now()
        .checked_sub(age)
        .ok_or_else(|| format!("{input} ago is before the clock's range"))
}

fn parse_age(input: &str) -> Result<Duration, String> {
    let days = |n: &str, per: u64| -> Result<Duration, String> {
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("{input:?} is not a whole number of days or weeks"))?;
        Ok(Duration::from_secs(n.saturating_mul(per * 86_400)))
    };
    if let Some(n) = input.strip_suffix('d') {
        days(n, 1)
    } else if let Some(n) = input.strip_suffix('w') {
        days(n, 7)
    } else {
        parse_duration(input).map_err(|e| e.to_string())
    }
}

/// An outcome in a table cell.
pub(super) fn short_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited { code } => format!("exited {code}"),
        Outcome::Signaled { signal } => format!("signaled {signal}"),
        Outcome::TimeLimit { which } => format!("time limit ({which})"),
        Outcome::MemoryLimit => "memory limit".to_owned(),
        Outcome::OutputLimit { stream } => format!("output limit ({stream})"),
        Outcome::FileSizeLimit => "file size limit".to_owned(),
        Outcome::Violation { .. } => "violation".to_owned(),
        Outcome::CompileError => "compile error".to_owned(),
    }
}

/// A byte count for people: `512B`, `8.1MiB`.
pub(super) fn human_bytes(bytes: f64) -> String {
    let units = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    let Some((unit, size)) = units.iter().find(|(_, size)| bytes >= *size) else {
        return format!("{bytes:.0}B");
    };
    match bytes / size {
        n if n < 10.0 => format!("{n:.1}{unit}"),
        n => format!("{n:.0}{unit}"),
    }
}

/// Columns padded to their widest cell, two spaces apart; the last one unpadded.
pub(super) fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_days_and_weeks() {
        assert_eq!(parse_age("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_age("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(90 * 60)));
        assert!(parse_age("1.5d").is_err());
        assert!(parse_age("soon").is_err());
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512.0), "512B");
        assert_eq!(human_bytes(1536.0), "1.5KiB");
        assert_eq!(human_bytes(8.5 * 1024.0 * 1024.0), "8.5MiB");
        assert_eq!(human_bytes(768.0 * 1024.0), "768KiB");
    }
}
