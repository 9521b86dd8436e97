//! One language's rules compiled into a single tree-sitter query, so that a program's tree is
//! walked once whatever the number of rules. Each pattern of the combined query remembers the
//! rule it came from and whether it is the rule's finding or its scope (`inside`).

use std::ops::Range;

use tree_sitter::{CaptureQuantifier, Query, QueryError, QueryErrorKind};

use super::RuleQueries;
use crate::{AnalysisError, Grammar};

/// The capture a rule reports when it names none.
const DEFAULT_CAPTURE: &str = "finding";
/// The capture of a rule's `inside` query: the construct the finding must sit in.
const SCOPE_CAPTURE: &str = "scope";

/// What a pattern of the combined query stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A match is a finding of the rule; the node is that of the given capture.
    Finding { rule: usize, capture: u32 },
    /// A match is a scope of the rule, the node that of the given capture.
    Scope { rule: usize, capture: u32 },
}

/// The compiled query of one language.
#[derive(Debug)]
pub(crate) struct Combined {
    /// Every rule's patterns, in one query.
    pub(crate) query: Query,
    /// What each pattern of `query` stands for, by pattern index.
    pub(crate) roles: Vec<Role>,
}

/// A rule's `query` or `inside` text within the combined source.
struct Segment {
    bytes: Range<usize>,
    /// Its first line in the combined source, counted from 0.
    first_line: usize,
    rule: usize,
    is_scope: bool,
}

impl Combined {
    /// Compiles the queries of `rules` (from the rule file `file`) against `grammar`.
    pub(crate) fn compile(
        file: &str,
        grammar: Grammar,
        rules: &[RuleQueries],
    ) -> Result<Combined, AnalysisError> {
        let all: Vec<usize> = (0..rules.len()).collect();
        Self::compile_some(file, grammar, rules, &all)
    }

    /// Compiles the queries of the rules at the indices `only` (roles keep those indices).
    pub(crate) fn compile_some(
        file: &str,
        grammar: Grammar,
        rules: &[RuleQueries],
        only: &[usize],
    ) -> Result<Combined, AnalysisError> {
        let mut source = String::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut line = 0;
        for (rule, queries) in only.iter().map(|&i| (i, &rules[i])) {
            let texts = [
                (Some(&queries.query), false),
                (queries.inside.as_ref(), true),
            ];
            for (text, is_scope) in texts {
                let Some(text) = text else { continue };
                let start = source.len();
                source.push_str(text);
                source.push('\n');
                let bytes = start..source.len();
                segments.push(Segment {
                    bytes,
                    first_line: line,
                    rule,
                    is_scope,
                });
                line += text.lines().count().max(1);
            }
        }
        let query = Query::new(&grammar.language(), &source)
            .map_err(|e| query_error(file, &e, &segments, rules))?;
        let mut roles = Vec::with_capacity(query.pattern_count());
        for pattern in 0..query.pattern_count() {
            let start = query.start_byte_for_pattern(pattern);
            let segment = segments
                .iter()
                .find(|s| s.bytes.contains(&start))
                .ok_or_else(|| problem(file, "?", "a pattern belongs to no rule".into()))?;
            let queries = &rules[segment.rule];
            let capture = capture_of(&query, pattern, queries, segment.is_scope)
                .map_err(|why| problem(file, &queries.id, why))?;
            let rule = segment.rule;
            roles.push(if segment.is_scope {
                Role::Scope { rule, capture }
            } else {
                Role::Finding { rule, capture }
            });
        }
        for (rule, queries) in only.iter().map(|&i| (i, &rules[i])) {
            if !roles
                .iter()
                .any(|r| matches!(r, Role::Finding { rule: r, .. } if *r == rule))
            {
                return Err(problem(
                    file,
                    &queries.id,
                    "the query has no pattern".into(),
                ));
            }
        }
        Ok(Combined { query, roles })
    }
}

fn problem(file: &str, rule: &str, problem: String) -> AnalysisError {
    AnalysisError::Rule {
        file: file.into(),
        rule: rule.into(),
        problem,
    }
}

/// The capture `pattern` reports, after checking that the pattern has it and uses only the
/// predicates the tree-sitter binding evaluates (`#eq?`, `#match?`, `#any-of?` and their
/// negations): any other would be silently ignored, and the pattern match too much.
fn capture_of(
    query: &Query,
    pattern: usize,
    queries: &RuleQueries,
    is_scope: bool,
) -> Result<u32, String> {
    if let Some(p) = query.general_predicates(pattern).first() {
        return Err(format!(
            "the predicate #{} is not evaluated: use #eq?, #match?, #any-of? or their negations",
            p.operator
        ));
    }
    if !query.property_settings(pattern).is_empty()
        || !query.property_predicates(pattern).is_empty()
    {
        return Err("#set! and #is? have no meaning in a rule".into());
    }
    let name = match (is_scope, &queries.capture) {
        (true, _) => SCOPE_CAPTURE,
        (false, Some(name)) => name.as_str(),
        (false, None) => DEFAULT_CAPTURE,
    };
    let quantifiers = query.capture_quantifiers(pattern);
    query
        .capture_index_for_name(name)
        .filter(|&i| {
            quantifiers
                .get(i as usize)
                .is_some_and(|q| *q != CaptureQuantifier::Zero)
        })
        .ok_or_else(|| {
            let which = if is_scope {
                "its `inside` query"
            } else {
                "its query"
            };
            format!("a pattern of {which} does not capture @{name}")
        })
}

/// A compilation error, told against the rule it comes from: tree-sitter counts rows in the
/// combined source, and gives no byte offset for a bad predicate.
fn query_error(
    file: &str,
    e: &QueryError,
    segments: &[Segment],
    rules: &[RuleQueries],
) -> AnalysisError {
    let segment = segments.iter().rev().find(|s| s.first_line <= e.row);
    let rule = segment
        .and_then(|s| rules.get(s.rule))
        .map_or("?", |q| q.id.as_str());
    let line = e.row + 1 - segment.map_or(0, |s| s.first_line);
    let what = match e.kind {
        QueryErrorKind::NodeType => "no such node type",
        QueryErrorKind::Field => "no such field",
        QueryErrorKind::Capture => "no such capture",
        QueryErrorKind::Predicate => "bad predicate",
        QueryErrorKind::Structure => "impossible pattern",
        QueryErrorKind::Syntax | QueryErrorKind::Language => "invalid syntax",
    };
    let which = if segment.is_some_and(|s| s.is_scope) {
        "`inside` query"
    } else {
        "query"
    };
    AnalysisError::Query {
        file: file.into(),
        rule: rule.into(),
        message: format!("{what} {:?} (line {line} of its {which})", e.message),
    }
}
