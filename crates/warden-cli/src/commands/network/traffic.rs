//! `warden network log` and `warden network stats`: the traffic log the history keeps
//! (docs/network.md#traffic-log), and the table of one execution's connections that
//! `warden show` prints. The engine answers; this module renders.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use warden_core::units::format_duration;
use warden_engine::history::utc_from_unix_ms;
use warden_engine::{Connection, ConnectionFilter, LoggedConnection, NetworkReport, NetworkStats};

use super::JsonFlag;
use crate::commands::history::{history_engine, human_bytes, parse_since, write_table};

/// Arguments of `warden network log`.
#[derive(Debug, Args)]
pub(super) struct LogArgs {
    /// Only connections that started within this long (e.g. 30m, 1h, 2d, 1w).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    /// Only the attempts the policy denied.
    #[arg(long)]
    denied: bool,
    /// Only this execution's connections (its id or a unique prefix).
    #[arg(long, value_name = "ID")]
    execution: Option<String>,
    /// At most this many, the newest (0 for all).
    #[arg(long, value_name = "N", default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    pub(super) json: JsonFlag,
}

/// Arguments of `warden network stats`.
#[derive(Debug, Args)]
pub(super) struct StatsArgs {
    /// Only executions that finished within this long (e.g. 30m, 1h, 2d, 1w).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    #[command(flatten)]
    pub(super) json: JsonFlag,
}

/// The columns every connection table shares, after its time (and execution) columns.
const ATTEMPT_COLUMNS: [&str; 10] = [
    "PROTOCOL", "HOST", "ADDRESS", "PORT", "DECISION", "RULE", "UP", "DOWN", "DURATION", "CUT",
];

pub(super) fn log(out: &mut impl Write, args: LogArgs) -> anyhow::Result<()> {
    let filter = ConnectionFilter {
        since: args.since,
        denied_only: args.denied,
        execution: args.execution,
        limit: args.limit,
    };
    let log = history_engine()?.history_connections(&filter)?;
    if args.json.json {
        serde_json::to_writer_pretty(&mut *out, &log).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    let header: Vec<&str> = ["TIME (UTC)", "EXECUTION", "POLICY"]
        .into_iter()
        .chain(ATTEMPT_COLUMNS)
        .collect();
    let rows: Vec<Vec<String>> = log.iter().map(log_row).collect();
    write_table(out, &header, &rows)?;
    Ok(())
}

fn log_row(l: &LoggedConnection) -> Vec<String> {
    let time = utc_from_unix_ms(l.connection.started_ms);
    let id = l.execution_id.as_str().chars().take(12).collect();
    [time, id, l.policy.clone()]
        .into_iter()
        .chain(cells(&l.connection))
        .collect()
}

/// One execution's connections, as `warden show` lists them: the policy, then a table whose
/// times are the UTC time of day (the execution's date is shown above it).
pub(crate) fn write_connections(
    out: &mut impl Write,
    report: &NetworkReport,
) -> std::io::Result<()> {
    let kept: u64 = report.connections.iter().map(Connection::attempts).sum();
    let attempts = match kept.saturating_add(report.dropped) {
        0 => "no attempts".to_owned(),
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let dropped = match report.dropped {
        0 => String::new(),
        n => format!(" ({n} refusals counted, not kept: the log was full)"),
    };
    writeln!(
        out,
        "{:<12} {}: {attempts}, {} denied{dropped}",
        "network:", report.policy, report.denied
    )?;
    if report.connections.is_empty() {
        return Ok(());
    }
    writeln!(out, "--- connections ---")?;
    let header: Vec<&str> = std::iter::once("TIME").chain(ATTEMPT_COLUMNS).collect();
    let rows: Vec<Vec<String>> = report
        .connections
        .iter()
        .map(|c| {
            let time = utc_from_unix_ms(c.started_ms);
            // `YYYY-MM-DDT` before, `Z` after.
            let time_of_day = time.get(11..23).unwrap_or(&time).to_owned();
            std::iter::once(time_of_day).chain(cells(c)).collect()
        })
        .collect();
    write_table(out, &header, &rows)
}

/// The [`ATTEMPT_COLUMNS`] of one connection.
fn cells(c: &Connection) -> [String; 10] {
    let or_dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    [
        c.protocol.clone(),
        or_dash(c.host.as_deref()),
        or_dash(c.addr.as_deref()),
        c.port.to_string(),
        match (c.allowed, c.repeats) {
            (true, _) => "allow".to_owned(),
            (false, 0) => "deny".to_owned(),
            (false, n) => format!("deny ({} times)", n.saturating_add(1)),
        },
        c.rule.clone(),
        human_bytes(c.bytes_up as f64),
        human_bytes(c.bytes_down as f64),
        format_duration(Duration::from_millis(c.duration_ms)),
        or_dash(c.cut_by.as_deref()),
    ]
}

pub(super) fn stats(out: &mut impl Write, args: StatsArgs) -> anyhow::Result<()> {
    let stats = history_engine()?.history_network_stats(args.since)?;
    if args.json.json {
        serde_json::to_writer_pretty(&mut *out, &stats).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    write_stats(out, &stats)?;
    Ok(())
}

fn write_stats(out: &mut impl Write, s: &NetworkStats) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {} ({} denied)",
        "attempts:", s.total_attempts, s.total_denied
    )?;
    if !s.per_policy.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = s
            .per_policy
            .iter()
            .map(|p| {
                let counts = [p.executions, p.attempts, p.denied].map(|n| n.to_string());
                std::iter::once(p.policy.clone()).chain(counts).collect()
            })
            .collect();
        write_table(out, &["POLICY", "EXECUTIONS", "ATTEMPTS", "DENIED"], &rows)?;
    }
    if !s.per_host.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = s
            .per_host
            .iter()
            .map(|h| {
                vec![
                    h.host.clone(),
                    h.attempts.to_string(),
                    h.denied.to_string(),
                    human_bytes(h.bytes_up as f64),
                    human_bytes(h.bytes_down as f64),
                ]
            })
            .collect();
        write_table(out, &["HOST", "ATTEMPTS", "DENIED", "UP", "DOWN"], &rows)?;
    }
    Ok(())
}
