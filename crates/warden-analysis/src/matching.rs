//! Running a language's combined query over a program's tree and turning matches into
//! findings: one pass over the tree for all the rules.

use std::ops::{ControlFlow, Range};
use std::time::Instant;

use tree_sitter::{Node, QueryCursor, QueryCursorOptions, StreamingIterator, Tree};
use warden_core::{Finding, ThreatLevel};

use crate::rules::{Combined, Role, RuleSet};

/// At most this many findings are listed; the threat level counts them all.
pub const MAX_FINDINGS: usize = 200;
/// An excerpt is at most this many characters of the first line of the match.
const EXCERPT_CHARS: usize = 80;
/// In-progress matches the query cursor keeps; past it, the oldest are dropped. Generous for
/// real programs, and a bound on memory for hostile ones.
const MATCH_LIMIT: u32 = 512;

/// What the rules found.
#[derive(Debug, Default)]
pub(crate) struct Matches {
    /// At most `MAX_FINDINGS`, in source order.
    pub(crate) findings: Vec<Finding>,
    /// The highest severity among all the findings, listed or not.
    pub(crate) level: ThreatLevel,
    /// The deadline passed before the whole tree was searched.
    pub(crate) timed_out: bool,
}

/// A match before its rule's scope is checked.
struct Candidate<'tree> {
    rule: usize,
    node: Node<'tree>,
}

/// Runs every rule of `rules` over `tree`, giving up at `deadline`.
pub(crate) fn find(
    rules: &RuleSet,
    combined: &Combined,
    tree: &Tree,
    code: &[u8],
    deadline: Instant,
) -> Matches {
    let mut cursor = QueryCursor::new();
    cursor.set_match_limit(MATCH_LIMIT);
    let mut timed_out = false;
    let mut past_deadline = |_: &tree_sitter::QueryCursorState| {
        if Instant::now() >= deadline {
            timed_out = true;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = QueryCursorOptions::new().progress_callback(&mut past_deadline);
    let mut candidates = Vec::new();
    let mut scopes: Vec<(usize, Range<usize>)> = Vec::new();
    let mut matches = cursor.matches_with_options(&combined.query, tree.root_node(), code, options);
    while let Some(m) = matches.next() {
        let (Role::Finding { rule, capture } | Role::Scope { rule, capture }) =
            combined.roles[m.pattern_index];
        let Some(node) = m.nodes_for_capture_index(capture).next() else {
            continue;
        };
        match combined.roles[m.pattern_index] {
            Role::Finding { .. } => candidates.push(Candidate { rule, node }),
            Role::Scope { .. } => scopes.push((rule, node.byte_range())),
        }
    }
    drop(matches);
    let mut found = Matches {
        timed_out,
        ..Matches::default()
    };
    candidates.retain(|c| !rules.is_scoped(c.rule) || inside_scope(c, &scopes));
    candidates.sort_by_key(|c| (c.node.start_byte(), c.rule));
    candidates.dedup_by_key(|c| (c.node.start_byte(), c.rule));
    for candidate in candidates {
        let rule = &rules.rules[candidate.rule];
        found.level = found.level.max(rule.severity);
        if found.findings.len() < MAX_FINDINGS {
            found.findings.push(Finding {
                rule: rule.id.clone(),
                severity: rule.severity,
                line: u32::try_from(candidate.node.start_position().row + 1).unwrap_or(u32::MAX),
                excerpt: excerpt(&code[candidate.node.byte_range()]),
                explanation: rule.explanation.clone(),
            });
        }
    }
    found
}

/// Whether the candidate lies within a scope of its rule (a scope node contains it, and is not
/// the node itself: `while True: fork()` is a fork in a loop, the loop is not).
fn inside_scope(candidate: &Candidate<'_>, scopes: &[(usize, Range<usize>)]) -> bool {
    let range = candidate.node.byte_range();
    scopes.iter().any(|(rule, scope)| {
        *rule == candidate.rule
            && scope.start <= range.start
            && range.end <= scope.end
            && *scope != range
    })
}

/// The first line of `text`, trimmed and shortened, invalid UTF-8 replaced.
fn excerpt(text: &[u8]) -> String {
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let line = line.trim();
    let mut chars = line.char_indices();
    match chars.nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if text.len() > first.len() && !line.is_empty() => format!("{line} …"),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b"  os.system('ls')  "), "os.system('ls')");
        assert_eq!(excerpt(b"while True:\n    os.fork()"), "while True: …");
        let long = "x".repeat(200);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(excerpt(b"caf\xe9"), "caf\u{fffd}");
        assert_eq!(
            excerpt("é".repeat(100).as_bytes()).chars().count(),
            EXCERPT_CHARS + 1
        );
    }
}
