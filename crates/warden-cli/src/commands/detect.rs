//! `warden detect`: which language a file or a piece of code is in, how sure warden is, and
//! the runner-up (docs/cli.md#detection). Runs nothing.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_core::detect::{self, DetectedBy, Detection, SCANNED_BYTES};
use warden_core::{Catalog, LanguageId};

/// Arguments of `warden detect`.
#[derive(Debug, Args)]
pub(crate) struct DetectArgs {
    /// The file: its name, its `#!` line and its content count.
    #[arg(required_unless_present = "code", value_name = "FILE")]
    file: Option<PathBuf>,
    /// The code, inline, instead of a file (only its content counts).
    #[arg(short = 'c', long = "code", conflicts_with = "file")]
    code: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    match describe(&args) {
        Ok(line) => {
            writeln!(std::io::stdout().lock(), "{line}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if args.json => super::json_error(&e),
        Err(e) => Err(e),
    }
}

/// The line to print: the detection as text or JSON.
fn describe(args: &DetectArgs) -> anyhow::Result<String> {
    let catalog = Catalog::builtin().context("loading the language catalog")?;
    let (name, code) = input(args)?;
    let found = detect::detect(&catalog, name.as_deref(), &code).map_err(|e| {
        if e.needs_language() {
            anyhow::anyhow!("{e}; pass --lang to warden run")
        } else {
            e.into()
        }
    })?;
    if args.json {
        as_json(&found).context("writing JSON")
    } else {
        Ok(as_text(&found))
    }
}

/// The file's name and the start of its content (detection reads no further), or the code.
fn input(args: &DetectArgs) -> anyhow::Result<(Option<String>, String)> {
    if let Some(code) = &args.code {
        return Ok((None, code.clone()));
    }
    let path = args
        .file
        .as_ref()
        .context("a file or -c CODE is required")?;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(SCANNED_BYTES as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok((name, String::from_utf8_lossy(&bytes).into_owned()))
}

/// `python (confidence 0.97, by extension; runner-up: ruby 0.02)`.
fn as_text(found: &Detection<'_>) -> String {
    let runner_up = found
        .runner_up
        .as_ref()
        .map(|c| format!("; runner-up: {} {:.2}", c.language, c.confidence))
        .unwrap_or_default();
    format!(
        "{} (confidence {:.2}, by {}{runner_up})",
        found.language.id, found.confidence, found.by
    )
}

/// The `--json` form, fields in the documented order (docs/cli.md#detection).
#[derive(Debug, Serialize)]
struct Report<'a> {
    language: &'a LanguageId,
    confidence: f64,
    by: DetectedBy,
    runner_up: Option<Runner<'a>>,
}

#[derive(Debug, Serialize)]
struct Runner<'a> {
    language: &'a LanguageId,
    confidence: f64,
}

fn as_json(found: &Detection<'_>) -> serde_json::Result<String> {
    serde_json::to_string(&Report {
        language: &found.language.id,
        confidence: round(found.confidence),
        by: found.by,
        runner_up: found.runner_up.as_ref().map(|c| Runner {
            language: &c.language,
            confidence: round(c.confidence),
        }),
    })
}

/// Two decimals, as in the text form: more would suggest a precision the scores do not have.
fn round(confidence: f32) -> f64 {
    (f64::from(confidence) * 100.0).round() / 100.0
}
