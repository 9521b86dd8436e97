//! The cost of static analysis: for each language, a program of about 200 lines made by
//! repeating the benign corpus (`tests/benign/<language>/`), analysed many times; prints a
//! markdown table of the median and 90th percentile per analysis, the median of parsing alone
//! (the floor: tree-sitter's parse of the same program, no rules), the median of the difference
//! (the rules' walk and the rest, measured in pairs), and the one-time cost of
//! loading and compiling every language's rules. Run it through `bench/analysis.sh` (release build).
//!
//! Usage: `analyze_bench [ITERATIONS]` (default 2000).

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use warden_analysis::Analyzer;

/// Lines of the program analysed per language (at least; whole files are repeated).
const TARGET_LINES: usize = 200;

fn main() -> Result<(), Box<dyn Error>> {
    let iterations: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 2000,
    };
    let started = Instant::now();
    let analyzer = Analyzer::builtin()?;
    analyzer.compile_all()?;
    let load = started.elapsed();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/benign");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| language | lines | bytes | findings | median µs | p90 µs | parse alone, median µs | rest (analysis − parse), median µs |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let languages: Vec<String> = analyzer.languages().map(str::to_owned).collect();
    for language in &languages {
        let program = program(&corpus.join(language))?;
        let lines = program.iter().filter(|&&b| b == b'\n').count();
        let first = analyzer.analyze(language, &program);
        if let Some(why) = &first.parse_error {
            return Err(format!("{language}: the benchmark program does not parse: {why}").into());
        }
        let mut parser = tree_sitter::Parser::new();
        let grammar = analyzer
            .grammar(language)
            .ok_or("a language with rules has a grammar")?;
        parser.set_language(&grammar.language())?;
        // Interleaved, so that both see the same machine: its load drifts on a shared host.
        let (mut times, mut parse) = (Vec::new(), Vec::new());
        for _ in 0..iterations {
            times.push(time(|| {
                std::hint::black_box(analyzer.analyze(language, std::hint::black_box(&program)));
            }));
            parse.push(time(|| {
                std::hint::black_box(parser.parse(std::hint::black_box(&program), None));
            }));
        }
        // Paired, so that drift in the machine's speed cancels out.
        let mut rules: Vec<f64> = times
            .iter()
            .zip(&parse)
            .map(|(a, p)| a.as_secs_f64() * 1e6 - p.as_secs_f64() * 1e6)
            .collect();
        rules.sort_unstable_by(f64::total_cmp);
        times.sort_unstable();
        parse.sort_unstable();
        writeln!(
            out,
            "| {language} | {lines} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            program.len(),
            first.findings.len(),
            quantile(&times, 0.5),
            quantile(&times, 0.9),
            quantile(&parse, 0.5),
            rules[rules.len() / 2],
        )?;
    }
    writeln!(
        out,
        "\nLoading and compiling the rules of every language (once per process): {:.1} ms",
        load.as_secs_f64() * 1e3
    )?;
    Ok(())
}

/// How long `f` took.
fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// The `q` quantile of sorted `times`, in microseconds.
fn quantile(times: &[Duration], q: f64) -> f64 {
    let index = ((times.len().saturating_sub(1)) as f64 * q) as usize;
    times.get(index).map_or(0.0, |t| t.as_secs_f64() * 1e6)
}

/// The language's benign programs, concatenated and repeated until `TARGET_LINES` lines.
fn program(dir: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut sources = Vec::new();
    for file in files {
        let mut text = std::fs::read(file)?;
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        sources.push(text);
    }
    let mut program = Vec::new();
    for text in sources.iter().cycle() {
        if program.iter().filter(|&&b| b == b'\n').count() >= TARGET_LINES {
            break;
        }
        program.extend_from_slice(text);
    }
    Ok(program)
}
