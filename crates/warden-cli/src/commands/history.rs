//! `warden history`: the recorded executions, newest first (docs/history.md). The engine
//! records and answers; this module parses the filter and renders the table.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use warden_core::{LanguageId, Mode, Outcome, OutcomeKind};
use warden_engine::{Engine, EngineError, HistoryEntry, HistoryFilter};

/// Arguments of `warden history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only this language (id or alias).
    #[arg(short = 'l', long, visible_alias = "lang")]
    language: Option<String>,
    /// Only this outcome.
    #[arg(long, value_parser = PossibleValuesParser::new(OutcomeKind::ALL.map(OutcomeKind::name))
        .try_map(|kind| kind.parse::<OutcomeKind>()))]
    outcome: Option<OutcomeKind>,
    /// Only this mode.
    #[arg(long, value_parser = PossibleValuesParser::new(["trusted", "sandboxed", "isolated"])
        .try_map(|mode| mode.parse::<Mode>()))]
    mode: Option<Mode>,
    /// Only executions that finished within this long (e.g. 30m, 1h, 2d, 1w).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    /// At most this many, the newest (0 for all).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: u32,
    /// Only executions listed after this one (its id or a unique prefix): the next page after
    /// a listing whose last entry it was.
    #[arg(long, value_name = "ID")]
    before: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let engine = history_engine()?;
    let language = args
        .language
        .as_deref()
        .map(|name| language_id(&engine, name))
        .transpose()?;
    let filter = HistoryFilter {
        language,
        outcome: args.outcome,
        mode: args.mode,
        since: args.since,
        limit: (args.limit > 0).then_some(args.limit),
        before: args.before,
        token: None,
    };
    let entries = engine.history_list(&filter).map_err(|e| match e {
        e @ EngineError::UnrecordedLanguage { .. } => anyhow::anyhow!("--language {e}"),
        e => e.into(),
    })?;
    let mut out = super::buffered_stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries).context("writing the history")?;
        writeln!(out)?;
    } else {
        let header = [
            "ID", "FINISHED", "LANGUAGE", "MODE", "THREAT", "OUTCOME", "WALL", "CPU", "MEMORY",
        ];
        let rows: Vec<Vec<String>> = entries.iter().map(row).collect();
        write_table(&mut out, &header, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn row(e: &HistoryEntry) -> Vec<String> {
    vec![
        e.id.as_str().chars().take(12).collect(),
        e.finished_at_utc().chars().take(19).collect::<String>() + "Z",
        e.language.to_string(),
        e.mode.to_string(),
        e.threat_level.map_or("-", |t| t.name()).to_owned(),
        short_outcome(&e.outcome),
        warden_core::units::format_duration(e.usage.wall_time),
        warden_core::units::format_duration(e.usage.cpu_time),
        human_bytes(e.usage.peak_memory.bytes() as f64),
    ]
}

/// The engine that answers `history`, `show` and `stats`.
pub(super) fn history_engine() -> anyhow::Result<Engine> {
    // A history that does not exist yet is read as empty, not created by a reader.
    super::engine(|config| config.history_reads_only = true)
}

/// The catalog's id for a language alias (`py` -> `python`); another name as given, for a
/// language recorded once and since removed.
fn language_id(engine: &Engine, name: &str) -> anyhow::Result<LanguageId> {
    match engine.catalog().get(name) {
        Some(language) => Ok(language.id.clone()),
        None => LanguageId::new(name).with_context(|| format!("--language {name:?}")),
    }
}

/// A point in the past given as how long ago: `parse_duration`'s units, and `d` and `w`.
pub(super) fn parse_since(input: &str) -> Result<SystemTime, String> {
    warden_core::parse_since(input, SystemTime::now()).map_err(|e| e.to_string())
}

/// An outcome in a table cell.
pub(super) fn short_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited { code } => format!("exited {code}"),
        Outcome::Signaled { signal } => format!("signaled {signal}"),
        Outcome::TimeLimit { which } => format!("time limit ({which})"),
        Outcome::MemoryLimit => "memory limit".to_owned(),
        Outcome::OutputLimit { stream } => format!("output limit ({stream})"),
        Outcome::FileSizeLimit { .. } => "file size limit".to_owned(),
        Outcome::Violation { .. } => "violation".to_owned(),
        Outcome::CompileError => "compile error".to_owned(),
        Outcome::DependencyError => "dependency error".to_owned(),
        Outcome::Cancelled => "cancelled".to_owned(),
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

/// Columns padded to their widest cell, two spaces apart; the last one unpadded. Each cell is
/// written [`printable`](super::printable): cells hold what programs and callers wrote.
pub(super) fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| super::printable(cell)).collect())
        .collect();
    let rows = &rows;
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
                // Padded by hand: `format!`'s width is refused above u16::MAX (a panic), and a
                // cell holds what a caller wrote, of any length.
                line.push_str(cell);
                let pad = w.saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt tools 1: a cell over 65 535 characters made `warden tool stats` panic.
    #[test]
    fn a_cell_of_any_length_is_padded() {
        let long = "L".repeat(70_000);
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["tool", "calls"],
            &[
                vec![long.clone(), "1".into()],
                vec!["wc".into(), "2".into()],
            ],
        )
        .expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("{long}  1"));
        assert_eq!(lines[2], format!("wc{}2", " ".repeat(70_000)));
        assert_eq!(lines[0], format!("tool{}calls", " ".repeat(69_998)));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512.0), "512B");
        assert_eq!(human_bytes(1536.0), "1.5KiB");
        assert_eq!(human_bytes(8.5 * 1024.0 * 1024.0), "8.5MiB");
        assert_eq!(human_bytes(768.0 * 1024.0), "768KiB");
    }
}
