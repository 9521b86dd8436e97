//! Parsing a program with a time budget. The parser lives in a thread-local (a tree-sitter
//! `Parser` may move between threads but not be shared), so the `Analyzer` stays `Sync` and a
//! parse allocates no parser.

use std::cell::RefCell;
use std::ops::ControlFlow;

use tree_sitter::{Language, ParseOptions, Parser, Tree};

use crate::deadline::Deadline;

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Why no tree came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseFailure {
    /// The deadline passed first.
    TimedOut,
    /// tree-sitter refused the grammar (an ABI mismatch, caught when rules are loaded).
    Grammar(String),
}

/// `code` parsed as `grammar` reads it, for the tests of the modules that walk a tree.
#[cfg(test)]
pub(crate) fn for_test(grammar: crate::Grammar, code: &[u8]) -> Tree {
    let deadline = Deadline::after(std::time::Duration::from_secs(5));
    parse(&grammar.language(), code, deadline).expect("the test's code parses")
}

/// Parses `code`, giving up at `deadline`.
pub(crate) fn parse(
    language: &Language,
    code: &[u8],
    deadline: Deadline,
) -> Result<Tree, ParseFailure> {
    PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut parser) => parse_with(&mut parser, language, code, deadline),
        // Only reachable if parsing re-entered itself; a fresh parser keeps it correct.
        Err(_) => parse_with(&mut Parser::new(), language, code, deadline),
    })
}

fn parse_with(
    parser: &mut Parser,
    language: &Language,
    code: &[u8],
    deadline: Deadline,
) -> Result<Tree, ParseFailure> {
    parser
        .set_language(language)
        .map_err(|e| ParseFailure::Grammar(e.to_string()))?;
    // tree-sitter calls back every hundred or so parse operations, and the clock is read at
    // each call: one operation may re-lex the rest of the input (a python line continuation,
    // bash's `)`), so reading it once in 16 let a parse overrun its budget 17 times over. A
    // reading (a system call for a thread's cpu clock) costs well under a microsecond.
    let mut past_deadline = |_: &tree_sitter::ParseState| {
        if deadline.passed() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = ParseOptions::new().progress_callback(&mut past_deadline);
    let mut input = |offset: usize, _| code.get(offset..).unwrap_or_default();
    let tree = parser.parse_with_options(&mut input, None, Some(options));
    if tree.is_none() {
        // A cancelled parse would otherwise be resumed by the next call.
        parser.reset();
    }
    tree.ok_or(ParseFailure::TimedOut)
}

/// How much of the program the parser could not make sense of: the bytes under `ERROR` nodes.
/// Walks the tree without recursion (it may be as deep as the input allows) and stops at
/// `deadline`, counting what it has seen.
pub(crate) fn error_bytes(tree: &Tree, deadline: Deadline) -> usize {
    if !tree.root_node().has_error() {
        return 0;
    }
    let mut cursor = tree.walk();
    let mut total = 0;
    let mut visited = 0u32;
    loop {
        let node = cursor.node();
        visited = visited.wrapping_add(1);
        if visited & 0xfff == 0 && deadline.passed() {
            return total;
        }
        let descend = if node.is_error() {
            total += node.byte_range().len();
            false
        } else {
            node.has_error()
        };
        if descend && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return total;
            }
        }
    }
}
