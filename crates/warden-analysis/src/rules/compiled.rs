//! One language's rules compiled for matching: every pattern of every rule's `query` and
//! `inside`, each remembering its rule and role, indexed by the node type it can start at so
//! that a walk over a program's tree tries only the patterns that can match each node.

use tree_sitter::Language;

use super::RuleText;
use crate::query::{Build, Pattern, QueryError, Resolver};
use crate::AnalysisError;

/// The capture a rule reports when it names none.
const DEFAULT_CAPTURE: &str = "finding";
/// The capture of a rule's `inside` query: the construct the finding must sit in.
const SCOPE_CAPTURE: &str = "scope";
/// The capture of a rule's `unless` query: what exempts a scope that contains it.
const EXEMPT_CAPTURE: &str = "exempt";
/// The capture that ties a finding to its scope: where a pattern of the rule's `query` and one
/// of its `inside` both capture it, the finding counts in that scope only when the two
/// captured texts are the same (the name a scope declares, and the name a call goes through).
const HELD_CAPTURE: &str = "held";
/// The captures of a rule's `exits` query: a `break` and a `return` (the scope's own ends).
const BREAK_CAPTURE: &str = "break";
const RETURN_CAPTURE: &str = "return";
/// The capture of an `exits` pattern for a definition that makes an exit not what it seems.
const REDEFINED_CAPTURE: &str = "redefined";
/// The captures of a rule's `nested` query: what a `break` ends (an inner loop, a `switch`),
/// and what both a `break` and a `return` end (a function, a closure).
const LOOP_CAPTURE: &str = "loop";
const FUNCTION_CAPTURE: &str = "function";
/// The capture of a `nested` pattern for a call that copies the running program.
const FORK_CAPTURE: &str = "fork";

/// What a match of a pattern stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A finding of the rule.
    Finding,
    /// A scope of the rule: its findings count only inside one.
    Scope,
    /// An exemption of the rule: a scope containing one does not count.
    Exempt,
    /// A `break`: a scope that holds one outside any nested loop or function ends.
    Break,
    /// A `return`: a scope that holds one outside any nested function ends.
    Return,
    /// A definition that makes the exits not what they seem (a bash function named `break`,
    /// C's `#define break`): no exit of the rule counts in the program.
    Redefined,
    /// A construct a `break` in it ends (an inner loop, a `switch`).
    Loop,
    /// A construct a `break` or a `return` in it ends (a function, a closure).
    Function,
    /// A call that copies the running program (`fork()`): the copy may be the one that takes
    /// an exit (`if (fork() == 0) exit(0);`), so a scope holding one ends by none.
    Fork,
}

impl Role {
    /// The capture a pattern of this role reports, given the rule's `capture`.
    fn capture(self, named: Option<&str>) -> &str {
        match self {
            Role::Finding => named.unwrap_or(DEFAULT_CAPTURE),
            Role::Scope => SCOPE_CAPTURE,
            Role::Exempt => EXEMPT_CAPTURE,
            Role::Break => BREAK_CAPTURE,
            Role::Return => RETURN_CAPTURE,
            Role::Redefined => REDEFINED_CAPTURE,
            Role::Loop => LOOP_CAPTURE,
            Role::Function => FUNCTION_CAPTURE,
            Role::Fork => FORK_CAPTURE,
        }
    }

    /// The rule field its patterns come from, for messages.
    fn field(self) -> &'static str {
        match self {
            Role::Finding => "query",
            Role::Scope => "`inside` query",
            Role::Exempt => "`unless` query",
            Role::Break | Role::Return | Role::Redefined => "`exits` query",
            Role::Loop | Role::Function | Role::Fork => "`nested` query",
        }
    }
}

/// A pattern of a rule.
#[derive(Debug)]
pub(crate) struct RulePattern {
    pub(crate) pattern: Pattern,
    /// The rule's index in its file.
    pub(crate) rule: usize,
    pub(crate) role: Role,
    /// The capture whose node is reported.
    pub(crate) report: usize,
    /// The reported node is the one the pattern starts at: one match at a node is enough
    /// (unless the pattern captures `@held`, which may differ between its matches).
    pub(crate) reports_root: bool,
    /// The capture `@held`, if the pattern has one.
    pub(crate) held: Option<usize>,
}

/// The compiled rules of one language.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) patterns: Vec<RulePattern>,
    /// Indices of the patterns that can start at a node, by the node's kind id.
    by_kind: Vec<Vec<usize>>,
    /// Indices of the patterns that can start at any node.
    any_kind: Vec<usize>,
}

impl Compiled {
    /// Compiles `rules` (from the rule file `file`) against `language`, building their
    /// regexes as `regexes` says.
    pub(crate) fn compile(
        file: &str,
        language: &Language,
        rules: &[RuleText],
        regexes: Build,
    ) -> Result<Compiled, AnalysisError> {
        let mut patterns = Vec::new();
        let mut resolver = Resolver::with_regexes(language, regexes);
        for (rule, text) in rules.iter().enumerate() {
            let parts: [(Option<&String>, &[Role]); 5] = [
                (Some(&text.query), &[Role::Finding]),
                (text.inside.as_ref(), &[Role::Scope]),
                (text.unless.as_ref(), &[Role::Exempt]),
                (
                    text.exits.as_ref(),
                    &[Role::Break, Role::Return, Role::Redefined],
                ),
                (
                    text.nested.as_ref(),
                    &[Role::Loop, Role::Function, Role::Fork],
                ),
            ];
            for (source, roles) in parts {
                let Some(source) = source else { continue };
                let compiled = Pattern::compile_all(source, &mut resolver)
                    .map_err(|e| query_error(file, &text.id, roles[0], &e))?;
                if compiled.is_empty() {
                    return Err(problem(file, &text.id, "the query has no pattern".into()));
                }
                for pattern in compiled {
                    // A pattern plays the first of the field's roles whose capture it has.
                    let captured = roles.iter().find_map(|&role| {
                        let name = role.capture(text.capture.as_deref());
                        pattern.capture(name).map(|report| (role, report))
                    });
                    let Some((role, report)) = captured else {
                        let which = roles[0].field();
                        let names: Vec<String> = roles
                            .iter()
                            .map(|r| format!("@{}", r.capture(text.capture.as_deref())))
                            .collect();
                        let names = names.join(" or ");
                        let why = format!("a pattern of its {which} does not capture {names}");
                        return Err(problem(file, &text.id, why));
                    };
                    let held = match role {
                        Role::Finding | Role::Scope => pattern.capture(HELD_CAPTURE),
                        _ => None,
                    };
                    patterns.push(RulePattern {
                        reports_root: held.is_none() && pattern.root.captures.contains(&report),
                        held,
                        pattern,
                        rule,
                        role,
                        report,
                    });
                }
            }
        }
        let mut by_kind = vec![Vec::new(); language.node_kind_count()];
        let mut any_kind = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match p.pattern.root_kinds() {
                Some(kinds) => {
                    for kind in kinds {
                        if let Some(list) = by_kind.get_mut(usize::from(kind)) {
                            list.push(i);
                        }
                    }
                }
                None => any_kind.push(i),
            }
        }
        Ok(Compiled {
            patterns,
            by_kind,
            any_kind,
        })
    }

    /// Builds every regex not built yet; the index of the first rule one of whose regexes does
    /// not build, and why.
    pub(crate) fn check_regexes(&self) -> Result<(), (usize, String)> {
        for p in &self.patterns {
            for predicate in &p.pattern.predicates {
                if let Some(regex) = predicate.test.regex() {
                    regex.check().map_err(|why| (p.rule, why))?;
                }
            }
        }
        Ok(())
    }

    /// The indices of the patterns that may match a node of kind `kind`.
    pub(crate) fn for_kind(&self, kind: u16) -> impl Iterator<Item = usize> + '_ {
        let specific = self
            .by_kind
            .get(usize::from(kind))
            .map_or(&[][..], Vec::as_slice);
        specific.iter().chain(&self.any_kind).copied()
    }
}

fn problem(file: &str, rule: &str, problem: String) -> AnalysisError {
    AnalysisError::Rule {
        file: file.into(),
        rule: rule.into(),
        problem,
    }
}

fn query_error(file: &str, rule: &str, role: Role, e: &QueryError) -> AnalysisError {
    let which = role.field();
    AnalysisError::Query {
        file: file.into(),
        rule: rule.into(),
        message: format!("{} (line {} of its {which})", e.message, e.line + 1),
    }
}
