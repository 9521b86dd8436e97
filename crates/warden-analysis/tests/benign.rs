//! The benign corpus (`tests/benign/<language-id>/`): ordinary algorithmic programs (sorting,
//! Fibonacci, reading stdin, string processing, a class or struct, bounded threads, comments and
//! strings that mention dangerous calls) must parse and produce no finding above `low`.

use std::fs;
use std::path::Path;

use warden_analysis::Analyzer;
use warden_core::ThreatLevel;

#[test]
fn ordinary_programs_are_at_most_low() {
    let analyzer = Analyzer::builtin().expect("the embedded rule files load");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/benign");
    let mut failures = Vec::new();
    let mut checked = 0;
    for language in analyzer.languages() {
        let dir = root.join(language);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable directory entry").path())
            .collect();
        files.sort();
        assert!(
            files.len() >= 2,
            "{}: fewer than 2 benign programs",
            dir.display()
        );
        for file in files {
            let code = fs::read(&file).expect("a readable benign program");
            let analysis = analyzer.analyze(language, &code);
            checked += 1;
            if analysis.threat_level > ThreatLevel::Low || analysis.parse_error.is_some() {
                failures.push(format!("{}: {analysis:#?}", file.display()));
            }
        }
    }
    assert!(checked >= 22, "only {checked} benign programs");
    assert!(
        failures.is_empty(),
        "benign programs flagged:\n{}",
        failures.join("\n")
    );
}
