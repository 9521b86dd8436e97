//! The rule files (`policies/analysis/*.toml`): every file compiles (which checks each query
//! against its grammar, each id's prefix and uniqueness, and each explanation), every language
//! of the catalog has rules, every rule's examples trigger it, and every language covers every
//! category its language can express.

use std::collections::BTreeSet;

use warden_analysis::{Analyzer, Category};
use warden_core::{Catalog, ThreatLevel};

fn analyzer() -> Analyzer {
    Analyzer::builtin().expect("the embedded rule files load")
}

#[test]
fn every_rule_file_compiles_against_its_grammar() {
    let analyzer = analyzer();
    analyzer
        .compile_all()
        .expect("every query compiles, captures what it reports and uses evaluated predicates");
    assert_eq!(analyzer.languages().count(), 11);
    for language in analyzer.languages() {
        assert!(!analyzer.rules(language).is_empty(), "{language} has rules");
    }
}

/// Categories a language cannot express, and why. Everything else is required.
const NOT_APPLICABLE: &[(&str, Category, &str)] = &[];

/// Categories required of every language (the list); `escape` is optional.
const REQUIRED: [Category; 10] = [
    Category::Process,
    Category::Network,
    Category::Filesystem,
    Category::Eval,
    Category::Native,
    Category::Environment,
    Category::Credentials,
    Category::Obfuscation,
    Category::PackageInstall,
    Category::UnboundedSpawn,
];

#[test]
fn every_catalog_language_has_rules_and_every_rule_file_a_language() {
    let catalog = Catalog::builtin().expect("the language catalog loads");
    let with_rules: BTreeSet<&str> = analyzer_languages();
    let in_catalog: BTreeSet<&str> = catalog.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(with_rules, in_catalog);
}

fn analyzer_languages() -> BTreeSet<&'static str> {
    static ANALYZER: std::sync::OnceLock<Analyzer> = std::sync::OnceLock::new();
    ANALYZER.get_or_init(analyzer).languages().collect()
}

#[test]
fn every_rule_is_triggered_by_each_of_its_examples() {
    let analyzer = analyzer();
    let mut failures = Vec::new();
    for language in analyzer.languages() {
        for rule in analyzer.rules(language) {
            for example in &rule.examples {
                let analysis = analyzer.analyze(language, example.as_bytes());
                if !analysis.findings.iter().any(|f| f.rule == rule.id) {
                    failures.push(format!("{}: {example:?} -> {:?}", rule.id, analysis));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "examples without their finding:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_language_covers_every_category_it_can_express() {
    let analyzer = analyzer();
    let mut missing = Vec::new();
    for language in analyzer.languages() {
        let covered: BTreeSet<Category> = analyzer
            .rules(language)
            .iter()
            .map(|r| r.category)
            .collect();
        for category in REQUIRED {
            let exempt = NOT_APPLICABLE
                .iter()
                .any(|(l, c, _)| *l == language && *c == category);
            if exempt && covered.contains(&category) {
                missing.push(format!(
                    "{language}: {} is exempt but has rules",
                    category.name()
                ));
            } else if !exempt && !covered.contains(&category) {
                missing.push(format!("{language}: no {} rule", category.name()));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn severities_follow_the_guidance() {
    let analyzer = analyzer();
    for language in analyzer.languages() {
        for rule in analyzer.rules(language) {
            let allowed = match rule.category {
                Category::Environment => ThreatLevel::None..=ThreatLevel::Low,
                Category::Process | Category::Network | Category::Filesystem => {
                    ThreatLevel::Low..=ThreatLevel::Medium
                }
                Category::PackageInstall => ThreatLevel::Medium..=ThreatLevel::High,
                Category::Eval | Category::Native | Category::Obfuscation => {
                    ThreatLevel::High..=ThreatLevel::High
                }
                Category::Credentials | Category::Escape => {
                    ThreatLevel::High..=ThreatLevel::Critical
                }
                Category::UnboundedSpawn => ThreatLevel::Critical..=ThreatLevel::Critical,
            };
            assert!(
                allowed.contains(&rule.severity),
                "{}: a {} rule should be {:?}, not {}",
                rule.id,
                rule.category.name(),
                allowed,
                rule.severity
            );
        }
    }
}
