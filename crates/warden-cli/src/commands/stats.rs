//! `warden stats`: figures over the recorded executions: counts by language, outcome, mode and
//! threat level, violations, wall-time percentiles and per-language averages.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use warden_engine::Stats;

use super::history::{history_engine, human_bytes, parse_since, write_table};

/// Arguments of `warden stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Only executions that finished within this long (e.g. 30m, 1h, 2d, 1w).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let stats = history_engine()?.history_stats(args.since, None)?;
    let mut out = super::buffered_stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &stats).context("writing the statistics")?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &stats).context("writing the statistics")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_text(out: &mut impl Write, s: &Stats) -> std::io::Result<()> {
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v}ms"));
    writeln!(out, "{:<14} {}", "executions:", s.total)?;
    writeln!(
        out,
        "{:<14} p50 {}, p95 {}",
        "wall time:",
        ms(s.wall_time_p50_ms),
        ms(s.wall_time_p95_ms)
    )?;
    writeln!(
        out,
        "{:<14} {} executions ({} stopped for a forbidden operation, {} security events)",
        "violations:", s.violations, s.violation_outcomes, s.security_violations
    )?;
    let counts = [
        ("by language:", &s.by_language),
        ("by outcome:", &s.by_outcome),
        ("by mode:", &s.by_mode),
        ("by threat:", &s.by_threat_level),
    ];
    for (name, map) in counts {
        writeln!(out, "{name:<14} {}", join(map))?;
    }
    if s.per_language.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let rows: Vec<Vec<String>> = s
        .per_language
        .iter()
        .map(|(language, l)| {
            vec![
                language.clone(),
                l.runs.to_string(),
                format!("{:.1}ms", l.avg_wall_time_ms),
                format!("{:.1}ms", l.avg_cpu_time_ms),
                human_bytes(l.avg_peak_memory_bytes),
            ]
        })
        .collect();
    let header = ["LANGUAGE", "RUNS", "AVG WALL", "AVG CPU", "AVG MEMORY"];
    write_table(out, &header, &rows)
}

/// `python 5, bash 3`, largest first; `-` when empty. The names are the database's text,
/// escaped as the table below escapes its cells: a row edited by hand must not send escape
/// sequences to the terminal.
fn join(counts: &BTreeMap<String, u64>) -> String {
    let mut counts: Vec<(&String, &u64)> = counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{} {n}", super::printable(k)))
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt cli 7: the `by language:` line printed a hand-edited row's language as it was
    /// (`py\x1b[31mthon`), escape sequence and all, where the table escaped it.
    #[test]
    fn the_count_lines_escape_control_characters() {
        let counts = BTreeMap::from([("py\u{1b}[31mthon".to_owned(), 2), ("bash".to_owned(), 1)]);
        assert_eq!(join(&counts), "py\\u{1b}[31mthon 2, bash 1");
    }
}
