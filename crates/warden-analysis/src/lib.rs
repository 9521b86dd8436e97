//! Static analysis of untrusted programs (DESIGN.md §2, step 2): each program is parsed with
//! its language's tree-sitter grammar, so comments and string literals cannot fool the rules,
//! and the rules, kept as data in `policies/analysis/<language-id>.toml`, are tree-sitter
//! queries over its syntax tree. Findings roll up into a threat level.
//!
//! Analysis is advisory input to choosing an execution mode, never the security boundary. It
//! runs on every execution, so it is cheap (one parse and one query pass: tens of microseconds
//! for a 200-line program) and never fails: input it cannot parse is graded by a level of its
//! own (docs/analysis.md). Runs in whichever process calls it; no I/O.
//!
//! ```
//! let analyzer = warden_analysis::Analyzer::builtin()?;
//! let analysis = analyzer.analyze("python", b"import os\nos.system('ls')\n");
//! assert_eq!(analysis.findings[0].rule, "python.os_system");
//! # Ok::<(), warden_analysis::AnalysisError>(())
//! ```

mod error;
pub mod grammar;
mod input;
mod matching;
mod parse;
mod rules;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

use std::time::{Duration, Instant};

use warden_core::{Analysis, ThreatLevel};

pub use error::AnalysisError;
pub use grammar::Grammar;
pub use input::{INVALID_UTF8_LEVEL, MAX_INPUT_BYTES, MAX_NESTING, UNPARSEABLE_LEVEL};
pub use matching::MAX_FINDINGS;
pub use rules::{Category, Rule};

use input::Screen;
use rules::RuleSet;

/// The time one analysis may take, parse and queries together, before it gives up and grades
/// the program as unparseable. Ordinary programs take well under a millisecond.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_millis(200);
/// The level of a program in a language that has no (usable) rules: nothing was checked.
pub const UNKNOWN_LANGUAGE_LEVEL: ThreatLevel = ThreatLevel::Low;
/// A program is unparseable when more than this share of its bytes sits under `ERROR` nodes.
const MAX_ERROR_SHARE: f64 = 0.5;

/// The rules of every language. Built once and shared: it is `Send + Sync`, and `analyze`
/// takes `&self`.
///
/// Building it parses and checks every rule file. Each language's queries are compiled on the
/// first analysis in that language, once (tree-sitter analyses every pattern against the
/// grammar: from about 10 ms for Go to a few hundred for Ruby); [`Analyzer::compile_all`]
/// does it all upfront, for a long-running server.
#[derive(Debug)]
pub struct Analyzer {
    /// One rule set per language, sorted by language id.
    languages: Vec<RuleSet>,
    time_budget: Duration,
}

impl Analyzer {
    /// The rules embedded in the binary (`policies/analysis/*.toml`), loaded and checked.
    pub fn builtin() -> Result<Analyzer, AnalysisError> {
        Analyzer::from_files(embedded::RULE_FILES.iter().copied())
    }

    /// Loads rule files given as (file name, contents), each named `<language-id>.toml`.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Analyzer, AnalysisError> {
        let mut languages: Vec<RuleSet> = Vec::new();
        for (file, text) in files {
            let set = RuleSet::load(file, text)?;
            if languages.iter().any(|l| l.language == set.language) {
                let language = set.language;
                return Err(AnalysisError::DuplicateLanguage {
                    file: file.into(),
                    language,
                });
            }
            tree_sitter::Parser::new()
                .set_language(&set.grammar.language())
                .map_err(|e| AnalysisError::Grammar {
                    file: file.into(),
                    grammar: set.grammar.name(),
                    message: e.to_string(),
                })?;
            languages.push(set);
        }
        languages.sort_by(|a, b| a.language.cmp(&b.language));
        Ok(Analyzer {
            languages,
            time_budget: DEFAULT_TIME_BUDGET,
        })
    }

    /// Compiles every language's queries now rather than on first use; the first error, if
    /// any. Safe to call from any thread, as often as wanted.
    pub fn compile_all(&self) -> Result<(), AnalysisError> {
        for set in &self.languages {
            set.compiled().map_err(Clone::clone)?;
        }
        Ok(())
    }

    /// The same rules with another time budget for each analysis.
    #[must_use]
    pub fn with_time_budget(mut self, budget: Duration) -> Analyzer {
        self.time_budget = budget;
        self
    }

    /// The ids of the languages that have rules, sorted.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.iter().map(|l| l.language.as_str())
    }

    /// The rules of `language`, in file order; none for a language without rules.
    pub fn rules(&self, language: &str) -> &[Rule] {
        self.rule_set(language).map_or(&[], |l| &l.rules)
    }

    /// The grammar of `language`, if it has rules.
    pub fn grammar(&self, language: &str) -> Option<Grammar> {
        self.rule_set(language).map(|l| l.grammar)
    }

    fn rule_set(&self, language: &str) -> Option<&RuleSet> {
        self.languages
            .binary_search_by(|l| l.language.as_str().cmp(language))
            .ok()
            .map(|i| &self.languages[i])
    }

    /// Analyses `code`, a program in `language` (a language id). Never fails and never panics:
    /// input that cannot be analysed gets a `parse_error` and a level of its own
    /// (docs/analysis.md#unparseable-input).
    pub fn analyze(&self, language: &str, code: &[u8]) -> Analysis {
        let Some(rules) = self.rule_set(language) else {
            let why = format!("no analysis rules for language {language:?}");
            return unanalysed(UNKNOWN_LANGUAGE_LEVEL, why);
        };
        let utf8_note = match input::screen(code) {
            Screen::Empty => return Analysis::default(),
            Screen::Refuse(why) => return unanalysed(UNPARSEABLE_LEVEL, why),
            Screen::Parse { invalid_utf8 } => invalid_utf8,
        };
        let combined = match rules.compiled_for(code) {
            Ok(combined) => combined,
            Err(e) => return unanalysed(UNKNOWN_LANGUAGE_LEVEL, e.to_string()),
        };
        // The budget starts after compilation: that is paid once, not by this program.
        let deadline = Instant::now() + self.time_budget;
        let tree = match parse::parse(&rules.grammar.language(), code, deadline) {
            Ok(tree) => tree,
            Err(parse::ParseFailure::TimedOut) => {
                let why = format!("parsing took longer than {:?}", self.time_budget);
                return unanalysed(UNPARSEABLE_LEVEL, why);
            }
            Err(parse::ParseFailure::Grammar(why)) => return unanalysed(UNPARSEABLE_LEVEL, why),
        };
        let found = matching::find(rules, &combined, &tree, code, deadline);
        // Graded after matching: a program that is mostly errors is still searched as far as
        // its tree goes, and what is found still counts.
        let (level, parse_error) =
            if let Some(why) = self.unparseable(language, &tree, code, deadline) {
                (UNPARSEABLE_LEVEL, Some(why))
            } else if found.timed_out {
                let why = format!(
                    "the rules took longer than {:?}: the analysis is partial",
                    self.time_budget
                );
                (UNPARSEABLE_LEVEL, Some(why))
            } else if let Some(note) = utf8_note {
                (INVALID_UTF8_LEVEL, Some(note))
            } else {
                (ThreatLevel::None, None)
            };
        Analysis {
            threat_level: found.level.max(level),
            findings: found.findings,
            parse_error,
        }
    }

    /// Why the program counts as unparseable, if it does: most of it under `ERROR` nodes.
    fn unparseable(
        &self,
        language: &str,
        tree: &tree_sitter::Tree,
        code: &[u8],
        deadline: Instant,
    ) -> Option<String> {
        let errors = parse::error_bytes(tree, deadline);
        (errors as f64 > MAX_ERROR_SHARE * code.len() as f64).then(|| {
            let share = errors * 100 / code.len().max(1);
            format!("{share}% of the program does not parse as {language}")
        })
    }
}

/// The analysis of a program that was not parsed.
fn unanalysed(level: ThreatLevel, why: String) -> Analysis {
    Analysis {
        threat_level: level,
        findings: Vec::new(),
        parse_error: Some(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analyzer_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Analyzer>();
    }

    #[test]
    fn rules_that_do_not_compile_leave_the_language_unanalysed() {
        let broken = rules::tests::RULE.replace("(call", "(kall");
        let analyzer = Analyzer::from_files([("python.toml", broken.as_str())]).expect("loads");
        assert!(analyzer.compile_all().is_err());
        let analysis = analyzer.analyze("python", b"import os\nos.system(\"ls\")\n");
        assert_eq!(analysis.threat_level, UNKNOWN_LANGUAGE_LEVEL);
        assert!(analysis
            .parse_error
            .is_some_and(|e| e.contains("python.system")));
    }
}
