//! `warden languages`: the catalog, with whether each runtime is installed here.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_core::Catalog;

/// Arguments of `warden languages`.
#[derive(Debug, Args)]
pub(crate) struct LanguagesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    id: &'a str,
    name: &'a str,
    aliases: &'a [String],
    extensions: &'a [String],
    runtime: &'a str,
    available: bool,
}

pub(crate) fn run(args: LanguagesArgs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::builtin().context("loading the language catalog")?;
    let entries: Vec<Entry<'_>> = catalog
        .iter()
        .map(|l| Entry {
            id: l.id.as_str(),
            name: &l.name,
            aliases: &l.aliases,
            extensions: &l.extensions,
            runtime: &l.run.argv[0],
            available: Path::new(&l.run.argv[0]).exists(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries).context("writing JSON")?;
        writeln!(out)?;
    } else {
        for e in &entries {
            let status = if e.available { "available" } else { "missing" };
            writeln!(
                out,
                "{:<12} {:<24} {:<10} {}",
                e.id, e.name, status, e.runtime
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
