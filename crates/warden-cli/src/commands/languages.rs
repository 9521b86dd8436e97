//! `warden languages`: the catalog, with each toolchain's version as it runs inside the
//! sandbox, or why it is unavailable on this host.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_core::Language;

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
    compiled: bool,
    /// The compiler options `warden run --compile-option` may add.
    compile_options: &'a [String],
    available: bool,
    /// The version line, or why the language is unavailable.
    version: String,
    packages: &'a [String],
}

pub(crate) fn run(args: LanguagesArgs) -> anyhow::Result<ExitCode> {
    // Versions are asked from several threads at once: the helper is exec'd. A configuration
    // error is the command's error: listing every language as missing for it would hide it.
    let engine = super::engine(|config| config.fork_helper = false)?;
    let languages: Vec<&Language> = engine.catalog().iter().collect();
    // One sandbox per language, all at once: the JVM and R start slowly.
    let versions: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = languages
            .iter()
            .map(|lang| {
                let engine = &engine;
                scope.spawn(move || engine.toolchain_version(lang).map_err(|e| format!("{e:#}")))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("version check panicked".to_owned()))
            })
            .collect()
    });
    let entries: Vec<Entry<'_>> = languages
        .iter()
        .zip(versions)
        .map(|(l, version)| Entry {
            id: l.id.as_str(),
            name: &l.name,
            aliases: &l.aliases,
            extensions: &l.extensions,
            compiled: l.compile.is_some(),
            compile_options: l.compile.as_ref().map_or(&[], |c| &c.options),
            available: version.is_ok(),
            version: version.unwrap_or_else(|e| e),
            packages: &l.packages,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &entries).context("writing JSON")?;
        writeln!(out)?;
    } else {
        for e in &entries {
            let status = if e.available { "available" } else { "MISSING" };
            writeln!(
                out,
                "{:<11} {:<22} {:<9} {}",
                e.id, e.name, status, e.version
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
