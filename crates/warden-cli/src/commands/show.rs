//! `warden show ID`: everything the history recorded of one execution, its network policy's
//! connections, and its code and output when the retention kept them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use warden_core::units::format_duration;
use warden_core::Usage;
use warden_engine::history::CompileRecord;
use warden_engine::HistoryEntry;

use super::history::{history_engine, human_bytes};
use super::network::write_connections;
use super::printable;

/// Arguments of `warden show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The execution's id, or a unique prefix of it.
    id: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let engine = history_engine()?;
    let Some(entry) = engine.history_entry(&args.id)? else {
        let path = engine.history_path().unwrap_or(std::path::Path::new("-"));
        eprintln!(
            "warden: no execution {} in the history {}",
            args.id,
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    };
    let mut out = super::buffered_stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entry).context("writing the execution")?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &entry).context("writing the execution")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_text<'a>(out: &mut impl Write, e: &'a HistoryEntry) -> std::io::Result<()> {
    let field = |out: &mut dyn Write, name: &str, value: &str| writeln!(out, "{name:<12} {value}");
    field(out, "id:", e.id.as_str())?;
    field(out, "finished:", &e.finished_at_utc())?;
    field(out, "language:", e.language.as_str())?;
    field(out, "mode:", e.mode.name())?;
    field(out, "threat:", e.threat_level.map_or("-", |t| t.name()))?;
    field(out, "outcome:", &e.outcome.to_string())?;
    field(out, "usage:", &usage(&e.usage))?;
    if let Some(limits) = &e.limits {
        // Every limit, as history.md promises every recorded field.
        let limits = format!(
            "cpu {}, wall {}, memory {}, output {}, procs {}, file size {}, workspace {}, \
             open files {}, stack {}",
            format_duration(limits.cpu_time),
            format_duration(limits.wall_time),
            limits.memory,
            limits.max_output,
            limits.max_procs,
            limits.max_file_size,
            limits.workspace_size,
            limits.max_open_files,
            limits.stack_size,
        );
        field(out, "limits:", &limits)?;
    }
    let stdin = e.stdin_bytes.map_or("unknown (pipe)".to_owned(), size);
    field(
        out,
        "input:",
        &format!("code {}, stdin {stdin}", size(e.code_bytes)),
    )?;
    let truncated = |t: bool| if t { " (truncated)" } else { "" };
    let output = format!(
        "stdout {}{}, stderr {}{}",
        size(e.stdout_bytes),
        truncated(e.stdout_truncated),
        size(e.stderr_bytes),
        truncated(e.stderr_truncated)
    );
    field(out, "output:", &output)?;
    let stages = [("dependencies:", &e.dependencies), ("compile:", &e.compile)];
    for (name, stage) in stages {
        if let Some(c) = stage {
            let how = if c.cached {
                "cached".to_owned()
            } else {
                format!("{}; {}", c.outcome, usage(&c.usage))
            };
            field(out, name, &how)?;
        }
    }
    field(out, "retention:", e.retention.name())?;
    if let Some(api) = &e.api {
        let by = e
            .token
            .as_ref()
            .map(|t| format!(" (token {t})"))
            .unwrap_or_default();
        field(out, "asked via:", &format!("{api}{by}"))?;
    }
    if let Some(tool) = &e.tool {
        field(out, "tool:", tool)?;
    }
    write_security(out, e)?;
    if let Some(report) = &e.network {
        write_connections(out, report)?;
    }
    // What the history kept, and the whole size when it kept only the start of it
    // (`[history] max_kept`).
    let kept =
        |bytes: Option<&'a [u8]>, cut: bool, whole: u64| bytes.map(|b| (b, cut.then_some(whole)));
    let stage = |stage: &'a Option<CompileRecord>, stdout: bool| {
        stage.as_ref().and_then(|c| {
            if stdout {
                kept(
                    c.stdout.as_deref().map(str::as_bytes),
                    c.stdout_cut,
                    c.stdout_bytes,
                )
            } else {
                kept(
                    c.stderr.as_deref().map(str::as_bytes),
                    c.stderr_cut,
                    c.stderr_bytes,
                )
            }
        })
    };
    let blocks = [
        ("code", kept(e.code.as_deref(), e.code_cut, e.code_bytes)),
        ("installer stdout", stage(&e.dependencies, true)),
        ("installer stderr", stage(&e.dependencies, false)),
        ("compiler stdout", stage(&e.compile, true)),
        ("compiler stderr", stage(&e.compile, false)),
        (
            "stdout",
            kept(e.stdout.as_deref(), e.stdout_cut, e.stdout_bytes),
        ),
        (
            "stderr",
            kept(e.stderr.as_deref(), e.stderr_cut, e.stderr_bytes),
        ),
    ];
    for (name, block) in blocks {
        let Some((bytes, whole)) = block.filter(|(b, _)| !b.is_empty()) else {
            continue;
        };
        match whole {
            // The history kept only the start ([history] max_kept): say so where it is shown.
            Some(whole) => writeln!(
                out,
                "--- {name} (cut: the history kept the first {} of {}) ---",
                size(bytes.len() as u64),
                size(whole)
            )?,
            None => writeln!(out, "--- {name} ---")?,
        }
        out.write_all(bytes)?;
        if !bytes.ends_with(b"\n") {
            writeln!(out)?;
        }
    }
    Ok(())
}

fn write_security(out: &mut impl Write, e: &HistoryEntry) -> std::io::Result<()> {
    let Some(security) = &e.security else {
        return Ok(());
    };
    if !security.reason.is_empty() {
        writeln!(out, "{:<12} {}", "why:", printable(&security.reason))?;
    }
    for f in &security.findings {
        let excerpt = if f.excerpt.is_empty() {
            String::new()
        } else {
            format!(": {}", printable(&f.excerpt))
        };
        writeln!(
            out,
            "{:<12} {} {} line {}{excerpt}",
            "finding:", f.severity, f.rule, f.line
        )?;
    }
    if let Some(error) = &security.parse_error {
        writeln!(out, "{:<12} {}", "parse error:", printable(error))?;
    }
    for v in &security.violations {
        writeln!(out, "{:<12} {}", "violation:", printable(&v.to_string()))?;
    }
    Ok(())
}

fn usage(u: &Usage) -> String {
    format!(
        "wall {}, cpu {}, peak memory {}",
        format_duration(u.wall_time),
        format_duration(u.cpu_time),
        human_bytes(u.peak_memory.bytes() as f64)
    )
}

fn size(bytes: u64) -> String {
    human_bytes(bytes as f64)
}
