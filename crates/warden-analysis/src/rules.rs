//! The analysis rules of one language, kept as data (`policies/analysis/<language-id>.toml`,
//! docs/analysis.md#rule-files). Loading a file parses it, checks its conventions and compiles
//! its queries (`compiled.rs`, `query.rs`): microseconds, so it is done upfront.

mod compiled;

use serde::Deserialize;
use warden_core::ThreatLevel;

use crate::query::Build;
use crate::{AnalysisError, Grammar};

pub(crate) use compiled::{Compiled, Role};

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
    /// How a source names a file of any name that the language runs in part (C's `#include
    /// "notes.txt"`, Rust's `include!`, bash's `source`, which runs a file's commands up to its
    /// first syntax error): a regex whose first group is the file's path. A file a source
    /// names so counts by what is found in it even when it does not parse whole.
    #[serde(default)]
    includes: Option<String>,
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
    /// One or more patterns in tree-sitter's query language (`query.rs`).
    query: String,
    /// The capture whose node is reported (line and excerpt); `finding` when absent.
    #[serde(default)]
    capture: Option<String>,
    /// Patterns capturing `@scope`: a match counts only inside one of those nodes (a fork
    /// inside an endless loop, say).
    #[serde(default)]
    inside: Option<String>,
    /// Patterns capturing `@exempt`: a scope that contains one of those nodes does not count
    /// (an endless loop that waits for a connection before each spawn is a server, not a bomb).
    #[serde(default)]
    unless: Option<String>,
    /// Patterns capturing `@break` or `@return`: a scope that holds one at its own level ends,
    /// and does not count (a loop that `break`s or `return`s is not endless). Or
    /// `@redefined`: a definition that makes them not what they seem (a bash function named
    /// `break`, C's `#define break`): where one is, no exit counts.
    #[serde(default)]
    exits: Option<String>,
    /// Patterns capturing `@loop` (a construct that a `break` in it ends: an inner loop, a
    /// `switch`) or `@function` (one that both a `break` and a `return` in it end: a function,
    /// a closure): an exit inside one of those within the scope does not end the scope. Or
    /// `@fork`: a call that copies the running program, whose copy may be the one that takes
    /// the exit (`if (fork() == 0) exit(0);`): a scope holding one ends by no exit.
    #[serde(default)]
    nested: Option<String>,
    /// Whether a match that is a bash variable assignment (`SUDO=sudo`) counts only where the
    /// program may run the variable as a command (`assigned_commands.rs`).
    #[serde(default)]
    only_if_run: bool,
    /// Python names of builtins (`exec`): a match that is one of them, or a call of one,
    /// counts only where the module's own binding of the name is not surely in effect
    /// (`own_bindings.rs`).
    #[serde(default)]
    unless_bound: Vec<String>,
    /// Whether a match that is a bash variable's name counts only where the script has not
    /// made the variable its own (`own_variables.rs`).
    #[serde(default)]
    unless_assigned: bool,
    /// Programs that must produce a finding of this rule.
    #[serde(default)]
    examples: Vec<String>,
}

/// A rule's query texts.
#[derive(Debug)]
pub(crate) struct RuleText {
    pub(crate) id: String,
    pub(crate) query: String,
    pub(crate) capture: Option<String>,
    pub(crate) inside: Option<String>,
    pub(crate) unless: Option<String>,
    pub(crate) exits: Option<String>,
    pub(crate) nested: Option<String>,
    pub(crate) only_if_run: bool,
    pub(crate) unless_bound: Vec<String>,
    pub(crate) unless_assigned: bool,
}

/// The rules of one language.
#[derive(Debug)]
pub(crate) struct RuleSet {
    /// The grammar.
    pub(crate) grammar: Grammar,
    /// The rule file's `includes`: how a source names a file it runs in part.
    pub(crate) includes: Option<regex_lite::Regex>,
    /// The rules, in file order.
    pub(crate) rules: Vec<Rule>,
    /// Their query texts, in the same order.
    pub(crate) texts: Vec<RuleText>,
    /// Their patterns, compiled.
    pub(crate) compiled: Compiled,
}

impl RuleSet {
    /// Parses the rule file `file` (named `<language-id>.toml`), checks its conventions and
    /// compiles its queries against the grammar, building their regexes as `regexes` says.
    pub(crate) fn load(file: &str, text: &str, regexes: Build) -> Result<RuleSet, AnalysisError> {
        let language = language_of(file)?;
        let language = language.as_str();
        let parsed = parse_file(text).map_err(|message| AnalysisError::Format {
            file: file.into(),
            message,
        })?;
        for (i, spec) in parsed.rules.iter().enumerate() {
            let bash_only = ((spec.only_if_run || spec.unless_assigned)
                && parsed.grammar != Grammar::Bash)
                .then(|| "`only_if_run` and `unless_assigned` read bash variables: the grammar must be bash".to_owned())
                .or_else(|| {
                    (!spec.unless_bound.is_empty() && parsed.grammar != Grammar::Python).then(
                        || {
                            "`unless_bound` reads Python bindings: the grammar must be python"
                                .to_owned()
                        },
                    )
                });
            bash_only
                .map_or_else(|| check(spec, &parsed.rules[..i], language), Err)
                .map_err(|problem| AnalysisError::Rule {
                    file: file.into(),
                    rule: spec.id.clone(),
                    problem,
                })?;
        }
        let (rules, texts): (Vec<Rule>, Vec<RuleText>) = parsed
            .rules
            .into_iter()
            .map(|spec| {
                let text = RuleText {
                    id: spec.id.clone(),
                    query: spec.query,
                    capture: spec.capture,
                    inside: spec.inside,
                    unless: spec.unless,
                    exits: spec.exits,
                    nested: spec.nested,
                    only_if_run: spec.only_if_run,
                    unless_bound: spec.unless_bound,
                    unless_assigned: spec.unless_assigned,
                };
                let rule = Rule {
                    id: spec.id,
                    category: spec.category,
                    severity: spec.severity,
                    explanation: spec.explanation,
                    examples: spec.examples,
                };
                (rule, text)
            })
            .unzip();
        let grammar = parsed.grammar.language();
        tree_sitter::Parser::new()
            .set_language(&grammar)
            .map_err(|e| AnalysisError::Grammar {
                file: file.into(),
                grammar: parsed.grammar.name(),
                message: e.to_string(),
            })?;
        let compiled = Compiled::compile(file, &grammar, &texts, regexes)?;
        let includes = parsed
            .includes
            .as_deref()
            .map(regex_lite::Regex::new)
            .transpose()
            .map_err(|e| AnalysisError::Format {
                file: file.into(),
                message: format!("includes: {e}"),
            })?;
        Ok(RuleSet {
            grammar: parsed.grammar,
            includes,
            rules,
            texts,
            compiled,
        })
    }

    /// Whether an assignment that rule `rule` matches counts only where its variable may run.
    pub(crate) fn only_if_run(&self, rule: usize) -> bool {
        self.texts.get(rule).is_some_and(|t| t.only_if_run)
    }

    /// The builtins' names whose matches of rule `rule` count only where the module does
    /// not surely bind them itself.
    pub(crate) fn unless_bound(&self, rule: usize) -> &[String] {
        self.texts.get(rule).map_or(&[], |t| &t.unless_bound)
    }

    /// Whether a variable's name that rule `rule` matches counts only where the script has
    /// not made the variable its own.
    pub(crate) fn unless_assigned(&self, rule: usize) -> bool {
        self.texts.get(rule).is_some_and(|t| t.unless_assigned)
    }

    /// Whether findings of rule `rule` only count inside its scope.
    pub(crate) fn is_scoped(&self, rule: usize) -> bool {
        self.texts.get(rule).is_some_and(|t| t.inside.is_some())
    }
}

/// A rule file's contents: TOML as written, or JSON (the embedded files are converted at build
/// time, `build.rs`: JSON parses several times faster, and every `warden run` parses one).
fn parse_file(text: &str) -> Result<RuleFile, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// The language id a rule file is for: its name's stem.
pub(crate) fn language_of(file: &str) -> Result<String, AnalysisError> {
    file.strip_suffix(".toml")
        .filter(|stem| is_language_id(stem))
        .map(str::to_owned)
        .ok_or_else(|| AnalysisError::FileName { file: file.into() })
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
    if spec.unless.is_some() && spec.inside.is_none() {
        return Err("`unless` exempts scopes: the rule needs `inside`".into());
    }
    if spec.exits.is_some() && spec.inside.is_none() {
        return Err("`exits` end scopes: the rule needs `inside`".into());
    }
    if spec.nested.is_some() && spec.exits.is_none() {
        return Err("`nested` bounds exits: the rule needs `exits`".into());
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
        RuleSet::load("python.toml", text, Build::Now)
            .map_or_else(|e| e.to_string(), |_| "compiled".into())
    }

    #[test]
    fn a_rule_compiles_into_one_pattern_with_its_capture() {
        let set = RuleSet::load("python.toml", RULE, Build::Now).expect("valid");
        assert_eq!(set.rules[0].id, "python.system");
        let [pattern] = &set.compiled.patterns[..] else {
            panic!("one pattern: {:?}", set.compiled.patterns);
        };
        assert_eq!((pattern.rule, pattern.role), (0, Role::Finding));
        assert!(pattern.reports_root);
        assert_eq!(pattern.pattern.capture_names[pattern.report], "finding");
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
        assert!(RuleSet::load("Py thon.toml", RULE, Build::Now).is_err());
        let only_if_run = RULE.replace("examples", "only_if_run = true\nexamples");
        assert!(error(&only_if_run).contains("the grammar must be bash"));
        let unless_bound = RULE
            .replace("python", "bash")
            .replace("examples", "unless_bound = [\"exec\"]\nexamples");
        assert!(error(&unless_bound).contains("the grammar must be python"));
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
