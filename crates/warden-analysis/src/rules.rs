//! The analysis rules of one language, kept as data (`policies/analysis/<language-id>.toml`,
//! docs/analysis.md#rule-files). Loading a file parses it and checks its conventions; its
//! queries are compiled into one tree-sitter query on first use (`combined.rs`), once.

mod combined;
mod triggers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use warden_core::ThreatLevel;

use crate::{AnalysisError, Grammar};

pub(crate) use combined::{Combined, Role};

/// What kind of risk a rule looks for. Every language has rules of every category the issue
/// lists (the rule-file test checks it); `escape` is optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Starting processes or shells.
    Process,
    /// Opening network connections.
    Network,
    /// Reading or writing files outside the working directory.
    Filesystem,
    /// Running code built at run time: eval, exec, reflection, executable memory.
    Eval,
    /// Native code and foreign functions: FFI, `unsafe`, JNI, `dlopen`, inline assembly.
    Native,
    /// Reading the environment.
    Environment,
    /// Reading credentials: password files, keys, tokens.
    Credentials,
    /// Decoding data and then executing it.
    Obfuscation,
    /// Installing packages.
    PackageInstall,
    /// Creating processes or threads without bound: fork bombs.
    UnboundedSpawn,
    /// Kernel interfaces used to break out of a sandbox: ptrace, mount, namespaces, privileges.
    Escape,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 11] = [
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
        Category::Escape,
    ];

    /// The name used in rule files.
    pub const fn name(self) -> &'static str {
        match self {
            Category::Process => "process",
            Category::Network => "network",
            Category::Filesystem => "filesystem",
            Category::Eval => "eval",
            Category::Native => "native",
            Category::Environment => "environment",
            Category::Credentials => "credentials",
            Category::Obfuscation => "obfuscation",
            Category::PackageInstall => "package_install",
            Category::UnboundedSpawn => "unbounded_spawn",
            Category::Escape => "escape",
        }
    }
}

/// One rule, as loaded: what it reports when its query matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `<language-id>.<name>`, e.g. `python.subprocess`.
    pub id: String,
    /// The kind of risk.
    pub category: Category,
    /// The severity of each finding.
    pub severity: ThreatLevel,
    /// One line saying why a match matters.
    pub explanation: String,
    /// Programs that must produce a finding of this rule (checked by the tests).
    pub examples: Vec<String>,
}

/// A rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// The grammar the queries are written against.
    grammar: Grammar,
    /// The rules, each a `[[rule]]` table.
    #[serde(rename = "rule", default)]
    rules: Vec<RuleSpec>,
}

/// One `[[rule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    category: Category,
    severity: ThreatLevel,
    explanation: String,
    /// One or more tree-sitter patterns (S-expressions with `#eq?`, `#match?`, `#any-of?`...).
    query: String,
    /// The capture whose node is reported (line and excerpt); `finding` when absent.
    #[serde(default)]
    capture: Option<String>,
    /// Patterns capturing `@scope`: a match counts only inside one of those nodes (a fork
    /// inside an endless loop, say).
    #[serde(default)]
    inside: Option<String>,
    /// Programs that must produce a finding of this rule.
    #[serde(default)]
    examples: Vec<String>,
}

/// A rule's queries, kept for compilation.
#[derive(Debug)]
pub(crate) struct RuleQueries {
    pub(crate) id: String,
    pub(crate) query: String,
    pub(crate) capture: Option<String>,
    pub(crate) inside: Option<String>,
    /// Words one of which a program must contain for the rule to match (`triggers.rs`);
    /// `None`: the rule can match any program.
    pub(crate) triggers: Option<Vec<String>>,
}

/// How many rule subsets one language keeps compiled before it compiles its full query instead.
const MAX_CACHED_SUBSETS: usize = 32;

/// A compiled query: the language's cached full one, or one for a single program's rules.
pub(crate) enum Compiled<'a> {
    /// Every rule (cached in the rule set).
    Shared(&'a Combined),
    /// Only the rules a program can trigger.
    Subset(Arc<Combined>),
}

impl std::ops::Deref for Compiled<'_> {
    type Target = Combined;

    fn deref(&self) -> &Combined {
        match self {
            Compiled::Shared(c) => c,
            Compiled::Subset(c) => c,
        }
    }
}

/// The rules of one language.
#[derive(Debug)]
pub(crate) struct RuleSet {
    /// The rule file's name, for error messages.
    pub(crate) file: String,
    /// The language id (the file's stem).
    pub(crate) language: String,
    /// The grammar.
    pub(crate) grammar: Grammar,
    /// The rules, in file order.
    pub(crate) rules: Vec<Rule>,
    /// Their queries, in the same order.
    queries: Vec<RuleQueries>,
    /// The compiled query, once compiled: compiling costs tens of milliseconds per language
    /// (tree-sitter analyses each pattern against the grammar), so it waits for first use.
    compiled: OnceLock<Result<Combined, AnalysisError>>,
    /// Queries of subsets of the rules (`compiled_for`), by the rules' indices, kept for the
    /// life of the analyzer so that a long-running process compiles each subset once.
    subsets: Mutex<HashMap<Vec<usize>, Arc<Combined>>>,
}

impl RuleSet {
    /// Parses the rule file `file` (named `<language-id>.toml`) and checks its conventions.
    pub(crate) fn load(file: &str, text: &str) -> Result<RuleSet, AnalysisError> {
        let language = file
            .strip_suffix(".toml")
            .filter(|stem| is_language_id(stem))
            .ok_or_else(|| AnalysisError::FileName { file: file.into() })?
            .to_owned();
        let parsed: RuleFile = toml::from_str(text).map_err(|source| AnalysisError::Format {
            file: file.into(),
            source,
        })?;
        for (i, spec) in parsed.rules.iter().enumerate() {
            check(spec, &parsed.rules[..i], &language).map_err(|problem| AnalysisError::Rule {
                file: file.into(),
                rule: spec.id.clone(),
                problem,
            })?;
        }
        let (rules, queries) = parsed
            .rules
            .into_iter()
            .map(|spec| {
                let queries = RuleQueries {
                    id: spec.id.clone(),
                    triggers: triggers::of(&spec.query),
                    query: spec.query,
                    capture: spec.capture,
                    inside: spec.inside,
                };
                let rule = Rule {
                    id: spec.id,
                    category: spec.category,
                    severity: spec.severity,
                    explanation: spec.explanation,
                    examples: spec.examples,
                };
                (rule, queries)
            })
            .unzip();
        Ok(RuleSet {
            file: file.into(),
            language,
            grammar: parsed.grammar,
            rules,
            queries,
            compiled: OnceLock::new(),
            subsets: Mutex::new(HashMap::new()),
        })
    }

    /// The compiled query, compiling it on first use.
    pub(crate) fn compiled(&self) -> Result<&Combined, &AnalysisError> {
        self.compiled
            .get_or_init(|| Combined::compile(&self.file, self.grammar, &self.queries))
            .as_ref()
    }

    /// The query of only the rules `code` can trigger (see `triggers.rs`): the cached full
    /// query when that is every rule, else one compiled for this program.
    pub(crate) fn compiled_for(&self, code: &[u8]) -> Result<Compiled<'_>, AnalysisError> {
        let lowercase = String::from_utf8_lossy(code).to_ascii_lowercase();
        let needed: Vec<usize> = (0..self.queries.len())
            .filter(|&i| {
                self.queries[i]
                    .triggers
                    .as_ref()
                    .is_none_or(|words| triggers::present(words, &lowercase))
            })
            .collect();
        // The full query serves every program once it exists, and past a bound on the cached
        // subsets (one per combination of triggered rules) it is compiled once instead.
        let full_exists = matches!(self.compiled.get(), Some(Ok(_)));
        let subsets = self
            .subsets
            .lock()
            .map(|s| (s.get(&needed).cloned(), s.len()))
            .ok();
        let (cached, cached_count) = subsets.unwrap_or((None, MAX_CACHED_SUBSETS));
        if needed.len() == self.queries.len()
            || full_exists
            || (cached.is_none() && cached_count >= MAX_CACHED_SUBSETS)
        {
            return self.compiled().map(Compiled::Shared).map_err(Clone::clone);
        }
        if let Some(combined) = cached {
            return Ok(Compiled::Subset(combined));
        }
        let combined = Arc::new(Combined::compile_some(
            &self.file,
            self.grammar,
            &self.queries,
            &needed,
        )?);
        if let Ok(mut subsets) = self.subsets.lock() {
            subsets.insert(needed, Arc::clone(&combined));
        }
        Ok(Compiled::Subset(combined))
    }

    /// Whether findings of rule `rule` only count inside its scope.
    pub(crate) fn is_scoped(&self, rule: usize) -> bool {
        self.queries.get(rule).is_some_and(|q| q.inside.is_some())
    }
}

/// Lowercase letters, digits, `-` and `_`, starting with a letter (as the catalog's ids).
fn is_language_id(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The conventions a rule must follow, `earlier` being the rules before it in its file.
fn check(spec: &RuleSpec, earlier: &[RuleSpec], language: &str) -> Result<(), String> {
    let name = spec
        .id
        .strip_prefix(language)
        .and_then(|rest| rest.strip_prefix('.'));
    if name.is_none() || name == Some("") {
        return Err(format!("the id must be `{language}.<name>`"));
    }
    if earlier.iter().any(|e| e.id == spec.id) {
        return Err("the id is used twice".into());
    }
    let explanation = spec.explanation.trim();
    if explanation.is_empty() || explanation.contains('\n') {
        return Err("the explanation must be one non-empty line".into());
    }
    if spec.examples.is_empty() {
        return Err("a rule needs at least one example".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const RULE: &str = r#"
grammar = "python"
[[rule]]
id = "python.system"
category = "process"
severity = "medium"
explanation = "runs a shell"
query = '(call function: (attribute object: (identifier) @m attribute: (identifier) @f) (#eq? @m "os") (#eq? @f "system")) @finding'
examples = ["import os\nos.system('ls')"]
"#;

    fn error(text: &str) -> String {
        match RuleSet::load("python.toml", text) {
            Ok(set) => set
                .compiled()
                .map_or_else(ToString::to_string, |_| "compiled".into()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_rule_compiles_into_one_pattern_with_its_capture() {
        let set = RuleSet::load("python.toml", RULE).expect("valid");
        assert_eq!(set.language, "python");
        assert_eq!(set.rules[0].id, "python.system");
        let compiled = set.compiled().expect("compiles");
        assert!(matches!(
            compiled.roles[..],
            [Role::Finding { rule: 0, .. }]
        ));
    }

    #[test]
    fn malformed_rules_are_refused_with_the_rule_named() {
        assert!(error(&RULE.replace("python.system", "system")).contains("`python.<name>`"));
        assert!(error(&RULE.replace("@finding", "@call")).contains("does not capture @finding"));
        assert!(error(&RULE.replace("(call", "(kall")).contains("rule python.system"));
        assert!(error(&RULE.replace("#eq? @m", "#same? @m")).contains("#same? is not evaluated"));
        assert!(error(&RULE.replace("runs a shell", "")).contains("one non-empty line"));
        assert!(error(&RULE.replace("examples", "# examples")).contains("at least one example"));
        assert!(error(&RULE.replace("process", "processes")).contains("not a valid rule file"));
        let second = &RULE[RULE.find("[[rule]]").unwrap_or(0)..];
        assert!(error(&format!("{RULE}{second}")).contains("used twice"));
        assert!(RuleSet::load("Py thon.toml", RULE).is_err());
    }

    #[test]
    fn a_query_error_names_the_rule_and_the_line_within_it() {
        let second = r#"
[[rule]]
id = "python.second"
category = "eval"
severity = "high"
explanation = "calls something"
query = '''
(call function: (identifier) @f) @finding
((call function: (identifier) @g) @finding (#match? @g "sys(tem"))
'''
examples = ["eval(x)"]
"#;
        let message = error(&format!("{RULE}{second}"));
        assert!(message.contains("rule python.second"), "{message}");
        assert!(message.contains("line 2 of its query"), "{message}");
    }
}
