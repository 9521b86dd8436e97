//! `warden events`: the security events of the recorded executions (docs/events.md): limits
//! hit, operations the sandbox killed a program for, connections a policy denied; each with a
//! severity, newest first.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use warden_engine::{EventFilter, Severity};

use super::history::{history_engine, parse_since, write_table};

/// Arguments of `warden events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only events of executions that finished within this long (e.g. 30m, 1h, 2d).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    /// Only events at least this serious: low (limits), medium (denied connections, refused
    /// system calls, forks refused at the process limit, writes to read-only system paths),
    /// high (operations the sandbox killed for, steps of known escapes): docs/events.md.
    #[arg(long)]
    severity: Option<Severity>,
    /// At most this many, the newest (0 for all).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    let filter = EventFilter {
        since: args.since,
        severity: args.severity,
        limit: args.limit,
    };
    let events = history_engine()?.events(&filter)?;
    let mut out = super::buffered_stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &events).context("writing JSON")?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.time.clone(),
                format!("{:?}", e.severity).to_lowercase(),
                e.execution_id.chars().take(12).collect(),
                e.token.clone().unwrap_or_else(|| "-".into()),
                e.detail.clone(),
            ]
        })
        .collect();
    write_table(
        &mut out,
        &["TIME", "SEVERITY", "EXECUTION", "TOKEN", "WHAT"],
        &rows,
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
