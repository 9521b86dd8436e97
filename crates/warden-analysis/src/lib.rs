//! Static analysis of untrusted programs (DESIGN.md §2, step 2): each program is parsed with
//! its language's tree-sitter grammar, so comments and string literals cannot fool the rules,
//! and the rules, kept as data in `policies/analysis/<language-id>.toml`, are patterns in
//! tree-sitter's query language over its syntax tree, matched by this crate (`query.rs`).
//! Findings roll up into a threat level.
//!
//! Analysis is advisory input to choosing an execution mode, never the security boundary. It
//! runs on every execution, so it is cheap (one parse and one walk over the tree; the parse is
//! most of it) and never fails: input it cannot parse is graded by a level of its own
//! (docs/analysis.md). Runs in whichever process calls it; no I/O.
//!
//! ```
//! let analyzer = warden_analysis::Analyzer::builtin()?;
//! let analysis = analyzer.analyze("python", b"import os\nos.system('ls')\n");
//! assert_eq!(analysis.findings[0].rule, "python.os_system");
//! # Ok::<(), warden_analysis::AnalysisError>(())
//! ```

mod ancestors;
mod assigned_commands;
mod deadline;
mod error;
mod flat;
pub mod grammar;
mod input;
mod matching;
mod own_bindings;
mod own_variables;
mod parse;
mod partial;
mod query;
mod read_elsewhere;
mod reading;
mod request;
mod rules;
mod trap_code;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use deadline::Deadline;
use partial::Budget;

use warden_core::{Analysis, ThreatLevel};

pub use error::AnalysisError;
pub use grammar::Grammar;
pub use input::{INVALID_UTF8_LEVEL, MAX_INPUT_BYTES, MAX_NESTING, UNPARSEABLE_LEVEL};
pub use matching::{cap_findings, MAX_FINDINGS};
pub use read_elsewhere::{ProgramReads, ReadElsewhere};
pub use request::{RequestAnalysis, RequestFile};
pub use rules::{Category, Rule};

use input::Screen;
use matching::{Matches, Texts};
use query::Build;
use rules::RuleSet;

/// The cpu time one analysis may take, parse and queries together (the analysing thread's, so
/// that waiting on a loaded machine does not count), before it gives up and grades the program
/// as unparseable. Ordinary programs take well under a millisecond.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_millis(200);
/// The level of a program in a language that has no (usable) rules: nothing was checked.
pub const UNKNOWN_LANGUAGE_LEVEL: ThreatLevel = ThreatLevel::Low;
/// A program is unparseable when more than this share of its bytes sits under `ERROR` nodes.
const MAX_ERROR_SHARE: f64 = 0.5;

/// The rules of every language. Built once and shared: it is `Send + Sync`, and `analyze`
/// takes `&self`.
///
/// Building it only checks the rule files' names; a language's file is parsed, checked and
/// compiled on its first use (about a millisecond), so that a `warden run` process pays for one
/// language only, and the builtin rules build each `#match?` regex on its first evaluation.
/// [`Analyzer::compile_all`] does every language and regex upfront, to find a malformed rule or
/// warm a long-running server.
#[derive(Debug)]
pub struct Analyzer {
    /// One entry per language, sorted by language id.
    languages: Vec<LanguageRules>,
    time_budget: Duration,
}

/// A language's rule file, compiled on first use.
#[derive(Debug)]
struct LanguageRules {
    /// The language id: the file's stem.
    language: String,
    file: String,
    /// The rule file's text: borrowed from the binary for the builtin rules (about 200 KB
    /// that every process would otherwise copy), owned for files read at run time.
    text: std::borrow::Cow<'static, str>,
    /// When its regexes are built: on first use for the builtin rules, which the tests check.
    regexes: Build,
    compiled: OnceLock<Result<RuleSet, AnalysisError>>,
}

impl LanguageRules {
    fn rules(&self) -> Result<&RuleSet, &AnalysisError> {
        self.compiled
            .get_or_init(|| RuleSet::load(&self.file, &self.text, self.regexes))
            .as_ref()
    }

    /// Compiles the rules and builds every regex.
    fn compile_all(&self) -> Result<(), AnalysisError> {
        let rules = self.rules().map_err(Clone::clone)?;
        rules
            .compiled
            .check_regexes()
            .map_err(|(rule, why)| AnalysisError::Rule {
                file: self.file.clone(),
                rule: rules.texts[rule].id.clone(),
                problem: format!("bad regex: {why}"),
            })
    }
}

impl Analyzer {
    /// The rules embedded in the binary (`policies/analysis/*.toml`).
    pub fn builtin() -> Result<Analyzer, AnalysisError> {
        let mut analyzer = Analyzer::from_texts(
            embedded::RULE_FILES
                .iter()
                .map(|&(file, text)| (file, std::borrow::Cow::Borrowed(text))),
        )?;
        for language in &mut analyzer.languages {
            language.regexes = Build::OnFirstUse;
        }
        Ok(analyzer)
    }

    /// Rule files given as (file name, contents), each named `<language-id>.toml`; their
    /// contents are checked on first use, or by [`Analyzer::compile_all`].
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Analyzer, AnalysisError> {
        Self::from_texts(
            files
                .into_iter()
                .map(|(file, text)| (file, std::borrow::Cow::Owned(text.to_owned()))),
        )
    }

    fn from_texts<'a>(
        files: impl IntoIterator<Item = (&'a str, std::borrow::Cow<'static, str>)>,
    ) -> Result<Analyzer, AnalysisError> {
        let mut languages: Vec<LanguageRules> = Vec::new();
        for (file, text) in files {
            let language = rules::language_of(file)?;
            if languages.iter().any(|l| l.language == language) {
                return Err(AnalysisError::DuplicateLanguage {
                    file: file.into(),
                    language,
                });
            }
            languages.push(LanguageRules {
                language,
                file: file.into(),
                text,
                regexes: Build::Now,
                compiled: OnceLock::new(),
            });
        }
        languages.sort_by(|a, b| a.language.cmp(&b.language));
        Ok(Analyzer {
            languages,
            time_budget: DEFAULT_TIME_BUDGET,
        })
    }

    /// Compiles every language's rules and builds their regexes now rather than on first use;
    /// the first error, if any.
    pub fn compile_all(&self) -> Result<(), AnalysisError> {
        self.languages
            .iter()
            .try_for_each(LanguageRules::compile_all)
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

    /// The rules of `language`, in file order; none for a language without (valid) rules.
    pub fn rules(&self, language: &str) -> &[Rule] {
        self.rule_set(language).map_or(&[], |l| &l.rules)
    }

    /// The names of the files `source`, a program in `language`, names as ones it runs in
    /// part (the last component of each path): the rule file's `includes` (C's `#include
    /// "lib/notes.txt"`: `notes.txt`; bash's `source ./notes.txt`), from one pass over it. None
    /// in a language without.
    pub fn included_names(&self, language: &str, source: &[u8]) -> BTreeSet<Vec<u8>> {
        let Some(includes) = self.rule_set(language).and_then(|l| l.includes.as_ref()) else {
            return BTreeSet::new();
        };
        let text = String::from_utf8_lossy(source);
        includes
            .captures_iter(&text)
            .filter_map(|found| found.get(1))
            .map(|path| {
                let path = path.as_str().as_bytes();
                path.rsplit(|&b| b == b'/').next().unwrap_or(path).to_vec()
            })
            .collect()
    }

    /// Whether `language`'s rule file says how its sources include files (`includes`).
    pub fn runs_fragments(&self, language: &str) -> bool {
        self.rule_set(language)
            .is_some_and(|l| l.includes.is_some())
    }

    /// The grammar of `language`, if it has (valid) rules.
    pub fn grammar(&self, language: &str) -> Option<Grammar> {
        self.rule_set(language).map(|l| l.grammar)
    }

    /// The compiled rules of `language`, if it has valid ones.
    pub(crate) fn rule_set(&self, language: &str) -> Option<&RuleSet> {
        self.entry(language).and_then(|l| l.rules().ok())
    }

    fn entry(&self, language: &str) -> Option<&LanguageRules> {
        self.languages
            .binary_search_by(|l| l.language.as_str().cmp(language))
            .ok()
            .map(|i| &self.languages[i])
    }

    /// Analyses `code`, a program in `language` (a language id) of this one file. Never fails
    /// and never panics: input that cannot be analysed gets a `parse_error` and a level of its
    /// own (docs/analysis.md#unparseable-input).
    pub fn analyze(&self, language: &str, code: &[u8]) -> Analysis {
        self.analyze_by(language, code, None, &Budget::after(self.time_budget))
    }

    /// [`Analyzer::analyze`] of one file of a program, `among_others` when the program has
    /// other files ([`RequestFile::among_others`]), within what is left of a budget (a
    /// request's, shared by its files).
    fn analyze_by(
        &self,
        language: &str,
        code: &[u8],
        among_others: Option<&ReadElsewhere>,
        budget: &Budget,
    ) -> Analysis {
        let Some(entry) = self.entry(language) else {
            let why = format!("no analysis rules for language {language:?}");
            return unanalysed(UNKNOWN_LANGUAGE_LEVEL, why);
        };
        let rules = match entry.rules() {
            Ok(rules) => rules,
            Err(e) => return unanalysed(UNKNOWN_LANGUAGE_LEVEL, e.to_string()),
        };
        let utf8_note = match input::screen(code) {
            Screen::Empty => return Analysis::default(),
            Screen::Refuse(why) => return unanalysed(UNPARSEABLE_LEVEL, why),
            Screen::Parse { invalid_utf8 } => invalid_utf8,
        };
        let whole = code;
        // What cannot be read whole is graded `high`, and what the rules find in its beginning
        // counts too (`partial.rs`).
        let partial = |why: String, readable_before: usize, mut found: Matches| {
            let mut why = why;
            if let Some((beginning, lines)) =
                self.beginning(rules, whole, readable_before, among_others, budget)
            {
                found.merge_distinct(beginning);
                why = match lines {
                    1 => format!("{why}; the rules read its first line"),
                    _ => format!("{why}; the rules read its first {lines} lines"),
                };
            }
            Analysis {
                threat_level: found.level.max(UNPARSEABLE_LEVEL),
                findings: found.findings,
                parse_error: Some(why),
            }
        };
        let code = match reading::as_read(rules.grammar, code) {
            Ok(code) => code,
            Err(unread) => {
                return match unread.readable_before {
                    Some(before) => partial(unread.why, before, Matches::default()),
                    None => unanalysed(UNPARSEABLE_LEVEL, unread.why),
                }
            }
        };
        let (code, tree) = match reading::parsed(rules.grammar, code, budget.whole) {
            Ok(parsed) => parsed,
            Err(parse::ParseFailure::TimedOut) => {
                let why = format!("parsing took longer than {:?}", self.time_budget);
                return partial(why, whole.len(), Matches::default());
            }
            Err(parse::ParseFailure::Grammar(why)) => return unanalysed(UNPARSEABLE_LEVEL, why),
        };
        let code: &[u8] = &code;
        let texts = Texts::of(code, whole);
        let found = self.rules_over(rules, &tree, texts, among_others, budget.whole);
        // Graded after matching: a program that is mostly errors is still searched as far as
        // its tree goes, and what is found still counts.
        let unparseable = self.unparseable(language, &tree, code, budget.whole);
        if found.timed_out {
            let why = unparseable.unwrap_or_else(|| {
                format!(
                    "the rules took longer than {:?}: the analysis is partial",
                    self.time_budget
                )
            });
            return partial(why, whole.len(), found);
        }
        let (level, parse_error) = if let Some(why) = unparseable {
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

    /// What the rules find in `code`, read and parsed into `tree`: its matches, and in bash
    /// the code of its traps'.
    fn rules_over(
        &self,
        rules: &RuleSet,
        tree: &tree_sitter::Tree,
        texts: Texts<'_>,
        among_others: Option<&ReadElsewhere>,
        deadline: Deadline,
    ) -> Matches {
        let mut found = matching::find(rules, tree, texts, among_others, deadline);
        if rules.grammar == Grammar::Bash {
            let code = texts.read;
            trap_findings(rules, tree, code, among_others, deadline, 0, &mut found);
        }
        found
    }

    /// What the rules find in the beginning of `code` (`partial.rs`), a file whose whole
    /// analysis did not end: at most its first `readable_before` bytes, and how many lines
    /// they are; none when no beginning could be read in the time the budget keeps for it.
    fn beginning(
        &self,
        rules: &RuleSet,
        code: &[u8],
        readable_before: usize,
        among_others: Option<&ReadElsewhere>,
        budget: &Budget,
    ) -> Option<(Matches, usize)> {
        let code = &code[..partial::beginning(code, readable_before)?];
        let deadline = budget.for_beginnings();
        let read = reading::as_read(rules.grammar, code).ok()?;
        let (read, tree) = reading::parsed(rules.grammar, read, deadline).ok()?;
        let found = self.rules_over(rules, &tree, Texts::of(&read, code), among_others, deadline);
        let lines = code.iter().filter(|&&b| b == b'\n').count()
            + usize::from(code.last().is_some_and(|&b| b != b'\n'));
        (!found.timed_out).then_some((found, lines))
    }

    /// [`Analyzer::analyze`] of a file that may or may not be code in `language` (a data file
    /// beside a program: a CSV, a README): `None` unless it parses as `language` without a
    /// single error, so that text that merely contains a rule's word (`José`, "eval mode") is
    /// not graded as a program, while a program hidden under another extension still is. In a
    /// language that runs fragments of files of any name (the rule file's `includes`: C's
    /// `#include "notes.txt"` in the middle of a function), what is found in a file a source
    /// includes counts whether or not the file parses whole. Text that is not valid UTF-8 (a
    /// Latin-1 comment) is read as a source is: the compiler or the interpreter's declared
    /// encoding reads it.
    pub fn analyze_if_code(&self, language: &str, code: &[u8]) -> Option<Analysis> {
        self.analyze_if_code_by(
            language,
            code,
            false,
            None,
            &Budget::after(self.time_budget),
        )
    }

    /// [`Analyzer::analyze_if_code`] within what is left of a budget; `named`: one of the
    /// program's sources names the file, which a language that runs fragments may then run in
    /// part; `among_others`: [`RequestFile::among_others`].
    fn analyze_if_code_by(
        &self,
        language: &str,
        code: &[u8],
        named: bool,
        among_others: Option<&ReadElsewhere>,
        budget: &Budget,
    ) -> Option<Analysis> {
        let rules = self.entry(language)?.rules().ok()?;
        if !matches!(input::screen(code), Screen::Parse { .. }) {
            return None;
        }
        let fragment = rules.includes.is_some() && named;
        let whole = code;
        // A fragment the whole analysis of which did not end: what the rules find in its
        // beginning counts too (`partial.rs`).
        let with_beginning = |readable_before: usize, mut found: Matches| {
            if let Some((beginning, _)) =
                self.beginning(rules, whole, readable_before, among_others, budget)
            {
                found.merge_distinct(beginning);
            }
            Some(Analysis {
                threat_level: found.level,
                findings: found.findings,
                parse_error: None,
            })
        };
        let code = match reading::as_read(rules.grammar, code) {
            Ok(code) => code,
            Err(reading::Unread {
                readable_before: Some(before),
                ..
            }) if fragment => return with_beginning(before, Matches::default()),
            // A file that names an encoding the analysis does not decode is not read as code,
            // as binary data is not.
            Err(_) => return None,
        };
        let (code, tree) = match reading::parsed(rules.grammar, code, budget.whole) {
            Ok(parsed) => parsed,
            Err(parse::ParseFailure::TimedOut) if fragment => {
                return with_beginning(whole.len(), Matches::default())
            }
            Err(_) => return None,
        };
        let code: &[u8] = &code;
        if tree.root_node().has_error() && !fragment {
            return None;
        }
        let texts = Texts::of(code, whole);
        let found = self.rules_over(rules, &tree, texts, among_others, budget.whole);
        if found.timed_out && fragment {
            return with_beginning(whole.len(), found);
        }
        Some(Analysis {
            threat_level: found.level,
            findings: found.findings,
            parse_error: None,
        })
    }

    /// Why the program counts as unparseable, if it does: most of it under `ERROR` nodes.
    fn unparseable(
        &self,
        language: &str,
        tree: &tree_sitter::Tree,
        code: &[u8],
        deadline: Deadline,
    ) -> Option<String> {
        let errors = parse::error_bytes(tree, deadline);
        (errors as f64 > MAX_ERROR_SHARE * code.len() as f64).then(|| {
            let share = errors * 100 / code.len().max(1);
            format!("{share}% of the program does not parse as {language}")
        })
    }
}

/// What the rules find in the code of the traps of a bash program (`trap_code.rs`), read as
/// bash programs of their own, on the lines of the traps that keep them: `lines` before the
/// tree's first line. A trap in a trap's code is read too, up to a depth of four. What the
/// code's own parse fails on is not graded: a trap whose code does not parse runs nothing
/// after the error.
fn trap_findings(
    rules: &RuleSet,
    tree: &tree_sitter::Tree,
    code: &[u8],
    among_others: Option<&ReadElsewhere>,
    deadline: Deadline,
    lines: u32,
    found: &mut Matches,
) {
    const MAX_DEPTH: usize = 4;
    let mut pending = vec![(lines, trap_code::of(tree, code, deadline), 0)];
    while let Some((lines, traps, depth)) = pending.pop() {
        for (row, text) in traps {
            let Ok(text) = reading::as_read(rules.grammar, &text) else {
                continue;
            };
            let Ok((text, tree)) = reading::parsed(rules.grammar, text, deadline) else {
                continue;
            };
            let at = lines.saturating_add(row);
            let texts = Texts::of(&text, &text);
            let mut inner = matching::find(rules, &tree, texts, among_others, deadline);
            for finding in &mut inner.findings {
                finding.line = finding.line.saturating_add(at);
            }
            found.merge(inner);
            if depth + 1 < MAX_DEPTH {
                pending.push((at, trap_code::of(&tree, &text, deadline), depth + 1));
            }
        }
    }
}

/// The analysis of a program whose analysis was stopped before it ended (by the process that
/// ran it: past its wall-clock deadline or its memory limit), graded as a parse that timed out.
pub fn stopped(why: String) -> Analysis {
    unanalysed(UNPARSEABLE_LEVEL, why)
}

/// Why the screen that comes before any parse refuses `code` (docs/analysis.md, "How it
/// works", step 1: larger than 1 MiB, binary data, brackets nested too deep), or `None` when it
/// would be parsed (or is empty). A source so refused is graded `high`; a file beside the
/// program that may be data is not, and its caller decides what such a file means.
pub fn screened_out(code: &[u8]) -> Option<String> {
    match input::screen(code) {
        Screen::Refuse(why) => Some(why),
        Screen::Empty | Screen::Parse { .. } => None,
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

    /// A file counts as run in part only where a source includes it by name, as the rule
    /// file's `includes` says; naming it otherwise (`wc -l < README.md`) does not.
    #[test]
    fn sources_include_files_as_their_language_does() {
        let analyzer = Analyzer::builtin().expect("rules");
        let yes: [(&str, &str, &str); 9] = [
            ("c", "#include \"b.txt\"\n", "b.txt"),
            ("c", "  #  include <lib/notes.inc>\n", "notes.inc"),
            ("cpp", "#include\"x.php\"\n", "x.php"),
            ("rust", "let v: u64 = include!(\"p.txt\");", "p.txt"),
            ("rust", "include! { \"src/q.in\" }", "q.in"),
            ("bash", "source ./notes.txt\n", "notes.txt"),
            ("bash", "x=1; . lib/helpers\n", "helpers"),
            ("bash", "bash 'run.txt'\n", "run.txt"),
            ("bash", "if true; then sh setup; fi\n", "setup"),
        ];
        for (language, source, name) in yes {
            assert!(
                analyzer
                    .included_names(language, source.as_bytes())
                    .contains(name.as_bytes()),
                "{language}: {source:?} includes {name}"
            );
        }
        let no: [(&str, &str, &str); 6] = [
            ("bash", "wc -l < README.md\n", "README.md"),
            ("bash", "cat notes.txt | grep x\n", "notes.txt"),
            ("c", "FILE *f = fopen(\"input.txt\", \"r\");\n", "input.txt"),
            ("rust", "let s = include_str!(\"data.txt\");", "data.txt"),
            ("c", "#include \"b.txt\"\n", "a.txt"),
            ("python", "exec(open('b.txt').read())\n", "b.txt"),
        ];
        for (language, source, name) in no {
            assert!(
                !analyzer
                    .included_names(language, source.as_bytes())
                    .contains(name.as_bytes()),
                "{language}: {source:?} does not include {name}"
            );
        }
    }

    /// Hunt "ana": a fork bomb followed by 300 KB of ordinary code was graded `high` with no
    /// findings, the budget spent before its tree was read (and ran isolated instead of being
    /// refused); what the rules find in the beginning of a file counts.
    #[test]
    fn a_finding_before_what_spends_the_budget_counts() {
        let analyzer = Analyzer::builtin().expect("rules");
        let padding = "def f(x):\n    return [i * x for i in range(10)]\n".repeat(8000);
        let bomb = format!("import os\nwhile True:\n    os.fork()\n{padding}");
        let analysis = analyzer.analyze_by(
            "python",
            bomb.as_bytes(),
            None,
            &Budget::spent_on_the_whole(std::time::Duration::from_secs(60)),
        );
        assert_eq!(analysis.threat_level, ThreatLevel::Critical, "{analysis:?}");
        assert!(analysis
            .findings
            .iter()
            .any(|f| f.rule == "python.spawn_in_endless_loop" && f.line == 3));
        let why = analysis.parse_error.unwrap_or_default();
        assert!(
            why.contains("longer than") && why.contains("first"),
            "{why}"
        );
        // Past the beginning, nothing is read: the program is graded as one that cannot be.
        let late = format!("{padding}import os\nwhile True:\n    os.fork()\n");
        let analysis = analyzer.analyze_by(
            "python",
            late.as_bytes(),
            None,
            &Budget::spent_on_the_whole(std::time::Duration::from_secs(60)),
        );
        assert_eq!(analysis.threat_level, UNPARSEABLE_LEVEL, "{analysis:?}");
        // A fragment a source includes counts the same way.
        let code = format!(
            "while true; do sleep 9 & done\n{}",
            "echo $x\n".repeat(20_000)
        );
        let fragment = analyzer
            .analyze_if_code_by(
                "bash",
                code.as_bytes(),
                true,
                None,
                &Budget::spent_on_the_whole(std::time::Duration::from_secs(60)),
            )
            .expect("a fragment");
        assert_eq!(fragment.threat_level, ThreatLevel::Critical, "{fragment:?}");
    }

    /// The commands before a here-document that cannot be read count in a fragment a source
    /// includes (`source lib.txt`) as in a source (`tests/hostile.rs`).
    #[test]
    fn the_commands_before_an_unreadable_here_document_count_in_a_fragment() {
        let analyzer = Analyzer::builtin().expect("rules");
        let code = b"while true; do sleep 100 & done\ncat <<EOF\n";
        let named = analyzer
            .analyze_if_code_by(
                "bash",
                code,
                true,
                None,
                &Budget::after(DEFAULT_TIME_BUDGET),
            )
            .expect("a fragment");
        assert_eq!(named.threat_level, ThreatLevel::Critical, "{named:?}");
        let data = analyzer.analyze_if_code("bash", code);
        assert_eq!(data, None);
    }

    #[test]
    fn the_analyzer_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Analyzer>();
    }

    #[test]
    fn rules_that_do_not_compile_leave_the_language_unanalysed() {
        let broken = rules::tests::RULE.replace("(call", "(kall");
        let analyzer = Analyzer::from_files([("python.toml", broken.as_str())]).expect("loads");
        let error = analyzer.compile_all().expect_err("refused");
        assert!(error.to_string().contains("python.system"), "{error}");
        let analysis = analyzer.analyze("python", b"import os\nos.system(\"ls\")\n");
        assert_eq!(analysis.threat_level, UNKNOWN_LANGUAGE_LEVEL);
        assert!(analysis
            .parse_error
            .is_some_and(|e| e.contains("python.system")));
    }

    #[test]
    fn regexes_built_on_first_use_are_checked_by_compile_all() {
        let rule = rules::tests::RULE.replace(r#"(#eq? @f "system")"#, r#"(#match? @f "^sys")"#);
        let lazy = |rule: &str| {
            let mut analyzer = Analyzer::from_files([("python.toml", rule)]).expect("loads");
            analyzer.languages[0].regexes = Build::OnFirstUse;
            analyzer
        };
        let analyzer = lazy(&rule);
        let analysis = analyzer.analyze("python", b"import os\nos.system(\"ls\")\n");
        assert_eq!(analysis.findings.len(), 1, "{analysis:?}");
        analyzer.compile_all().expect("the regex builds");

        let broken = lazy(&rule.replace("^sys", "(sys"));
        let error = broken.compile_all().expect_err("refused");
        assert!(error.to_string().contains("python.system"), "{error}");
        assert!(error.to_string().contains("bad regex"), "{error}");
        // The same rule with its regex built upfront is refused at its first use.
        let eager = Analyzer::from_files([("python.toml", rule.replace("^sys", "(sys").as_str())])
            .expect("loads");
        let analysis = eager.analyze("python", b"import os\n");
        assert!(analysis
            .parse_error
            .is_some_and(|e| e.contains("bad regex")));
    }
}
