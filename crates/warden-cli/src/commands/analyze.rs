//! `warden analyze`: the static analysis of a file or a piece of code, its findings and threat
//! level (docs/analysis.md). Runs nothing. Exits 0 whatever the level; 125 when warden fails
//! (an unreadable file, an unknown language).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_core::{Analysis, Finding, ThreatLevel};

/// Arguments of `warden analyze`.
#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// The program to analyse.
    #[arg(required_unless_present = "code", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Its language (an id or an alias); detected from the file name and content if absent.
    #[arg(short = 'l', long = "lang", value_name = "LANG")]
    lang: Option<String>,
    /// The code, inline, instead of a file.
    #[arg(short = 'c', long = "code", conflicts_with = "file")]
    code: Option<String>,
    /// Print one JSON object: language, threat_level, findings, parse_error.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    match analyze(&args) {
        Ok(text) => {
            write!(std::io::stdout().lock(), "{text}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if args.json => super::json_error(&e),
        Err(e) => Err(e),
    }
}

/// What to print: the analysis as text or JSON.
fn analyze(args: &AnalyzeArgs) -> anyhow::Result<String> {
    let (name, code) = input(args)?;
    let engine = super::engine(|_| {})?;
    let (detection, analysis) = engine
        .analyze(args.lang.as_deref(), name.as_deref(), &code)
        .map_err(super::with_language_hint)?;
    if args.json {
        let report = Report {
            language: detection.language.as_str(),
            threat_level: analysis.threat_level,
            findings: &analysis.findings,
            parse_error: analysis.parse_error.as_deref(),
        };
        Ok(format!("{}\n", serde_json::to_string(&report)?))
    } else {
        Ok(as_text(&analysis))
    }
}

/// The file's name and bytes, or the inline code.
fn input(args: &AnalyzeArgs) -> anyhow::Result<(Option<String>, Vec<u8>)> {
    if let Some(code) = &args.code {
        return Ok((None, code.clone().into_bytes()));
    }
    let path = args
        .file
        .as_ref()
        .context("a file or -c CODE is required")?;
    // Bounded as `warden run` reads a program (`/dev/zero` as the file took all memory).
    let mut budget = super::sources::MAX_TOTAL;
    let (code, _) = super::sources::read(path, &mut budget)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok((name, code))
}

/// One line per finding, `line 12  high  python.eval  eval(x)  — why`, then the level.
fn as_text(analysis: &Analysis) -> String {
    let mut text = String::new();
    for Finding {
        rule,
        severity,
        line,
        excerpt,
        explanation,
    } in &analysis.findings
    {
        let line = format!("line {line}");
        // `ThreatLevel`'s Display ignores width: pad its name.
        let severity = severity.name();
        // The excerpt is the code's own text: its control characters are shown, not sent to
        // the terminal.
        let excerpt = super::printable(excerpt);
        text.push_str(&format!(
            "{line:<9} {severity:<8} {rule:<30} {excerpt}  — {explanation}\n"
        ));
    }
    if let Some(why) = &analysis.parse_error {
        text.push_str(&format!("not fully analysed: {why}\n"));
    }
    text.push_str(&format!("threat level: {}\n", analysis.threat_level));
    text
}

/// The `--json` form (docs/analysis.md#command-line).
#[derive(Debug, Serialize)]
struct Report<'a> {
    language: &'a str,
    threat_level: ThreatLevel,
    findings: &'a [Finding],
    parse_error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_lists_findings_then_the_level() {
        let analysis = Analysis {
            threat_level: ThreatLevel::High,
            findings: vec![Finding {
                rule: "python.eval".into(),
                severity: ThreatLevel::High,
                line: 12,
                excerpt: "eval(x)".into(),
                explanation: "runs code built at run time".into(),
            }],
            parse_error: None,
        };
        let text = as_text(&analysis);
        assert!(text.starts_with("line 12   high     python.eval"), "{text}");
        assert!(text.contains("eval(x)  — runs code built at run time\n"));
        assert!(text.ends_with("threat level: high\n"));
    }

    #[test]
    fn json_has_every_field_even_without_a_parse_error() {
        let report = Report {
            language: "python",
            threat_level: ThreatLevel::None,
            findings: &[],
            parse_error: None,
        };
        let json = serde_json::to_value(&report).expect("serializable");
        assert_eq!(
            json,
            json!({"language": "python", "threat_level": "none", "findings": [], "parse_error": null})
        );
    }
}
