//! Matching one compiled pattern at one node, with tree-sitter's semantics: child patterns
//! match the node's children in order, skipping any in between unless an anchor forbids
//! skipping a named one; a field pattern only matches a child in that field; predicates
//! filter the captures. The search backtracks over every way the pattern can match, checking
//! each predicate as soon as its captures are bound, and stops at a deadline: a hostile program
//! (a node with thousands of children, say) can make it long, never unbounded.

use std::ops::ControlFlow;

use super::{NodeTest, Pattern, Predicate, Step, TextTest, What};
use crate::deadline::Deadline;
use crate::flat::FlatTree;

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every match was reported, or the caller said it had enough.
    Done,
    /// The deadline passed first.
    Exhausted,
}

/// Why a search stops early.
enum Stop {
    /// The caller has what it wanted.
    Enough,
    /// The deadline passed.
    Exhausted,
}

type Flow = ControlFlow<Stop>;

/// What a search calls with each match: the node of the reported capture and the node bound
/// to every capture; it breaks once it has enough.
pub(crate) type Found<'f> = dyn FnMut(usize, &[Option<usize>]) -> ControlFlow<()> + 'f;

/// Steps between two looks at the clock.
const STEPS_PER_CLOCK_CHECK: u32 = 1024;

/// Searches for matches in one program; reused for every pattern and node. Nodes are indices
/// into the program's [`FlatTree`].
pub(crate) struct Search<'t> {
    tree: &'t FlatTree,
    code: &'t [u8],
    deadline: Deadline,
    /// The node bound to each capture of the current pattern.
    bindings: Vec<Option<usize>>,
    steps: u32,
    exhausted: bool,
}

impl<'t> Search<'t> {
    /// A search in `tree`, the tree of `code`, that gives up at `deadline`.
    pub(crate) fn new(tree: &'t FlatTree, code: &'t [u8], deadline: Deadline) -> Search<'t> {
        Search {
            tree,
            code,
            deadline,
            bindings: Vec::new(),
            steps: 0,
            exhausted: false,
        }
    }

    /// Calls `found` with the node bound to capture `report`, and the node bound to every
    /// capture (by index), for every match of `pattern` at `node`, until `found` breaks (it
    /// has enough) or the deadline passes.
    pub(crate) fn run(
        &mut self,
        pattern: &Pattern,
        node: usize,
        report: usize,
        found: &mut Found<'_>,
    ) -> Outcome {
        if self.exhausted {
            return Outcome::Exhausted;
        }
        self.bindings.clear();
        self.bindings.resize(pattern.capture_names.len(), None);
        let mut report = |this: &mut Search<'t>| match this.bindings.get(report).copied().flatten()
        {
            Some(node) => found(node, &this.bindings).map_break(|()| Stop::Enough),
            None => ControlFlow::Continue(()),
        };
        match self.step(pattern, &pattern.root, node, &mut report) {
            ControlFlow::Break(Stop::Exhausted) => Outcome::Exhausted,
            ControlFlow::Break(Stop::Enough) | ControlFlow::Continue(()) => Outcome::Done,
        }
    }

    /// Counts a step; breaks once the deadline has passed.
    fn tick(&mut self, steps: u32) -> Flow {
        self.steps += steps;
        if self.steps >= STEPS_PER_CLOCK_CHECK {
            self.steps = 0;
            if self.deadline.passed() {
                self.exhausted = true;
            }
        }
        if self.exhausted {
            ControlFlow::Break(Stop::Exhausted)
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Matches `step` at `node`, then calls `next` for each way it matches.
    fn step(
        &mut self,
        pattern: &Pattern,
        step: &Step,
        node: usize,
        next: &mut dyn FnMut(&mut Search<'t>) -> Flow,
    ) -> Flow {
        self.tick(1)?;
        match &step.what {
            What::Node(test) => {
                let tree = self.tree;
                if !test.kind.accepts(&tree.nodes[node]) {
                    return ControlFlow::Continue(());
                }
                let has_field = |field| {
                    let children = tree.children(node);
                    children
                        .iter()
                        .any(|&c| tree.nodes[c as usize].field == Some(field))
                };
                if test.negated_fields.iter().any(|&f| has_field(f)) {
                    return ControlFlow::Continue(());
                }
                self.bind(pattern, &step.captures, node, &mut |this| {
                    this.children(pattern, test, node, next)
                })
            }
            What::Alternation(alternatives) => {
                for alternative in alternatives {
                    self.step(pattern, alternative, node, &mut |this| {
                        this.bind(pattern, &step.captures, node, next)
                    })?;
                }
                ControlFlow::Continue(())
            }
        }
    }

    /// Binds `captures` to `node` and, if the predicates that can now be checked hold, calls
    /// `next`; restores the bindings after.
    fn bind(
        &mut self,
        pattern: &Pattern,
        captures: &[usize],
        node: usize,
        next: &mut dyn FnMut(&mut Search<'t>) -> Flow,
    ) -> Flow {
        let Some((&capture, rest)) = captures.split_first() else {
            return next(self);
        };
        let previous = self.bindings[capture].replace(node);
        let flow = if self.predicates_hold(pattern, capture) {
            self.bind(pattern, rest, node, next)
        } else {
            ControlFlow::Continue(())
        };
        self.bindings[capture] = previous;
        flow
    }

    /// Whether every predicate reading `capture` whose captures are all bound holds.
    fn predicates_hold(&self, pattern: &Pattern, capture: usize) -> bool {
        pattern.predicates_of[capture]
            .iter()
            .all(|&i| self.holds(&pattern.predicates[i]) != Some(false))
    }

    /// Whether `predicate` holds; `None` while one of its captures is unbound.
    fn holds(&self, predicate: &Predicate) -> Option<bool> {
        let text = |capture: usize| {
            let node = self.bindings[capture]?;
            let bytes = self.tree.nodes[node].bytes();
            Some(self.code.get(bytes).unwrap_or_default())
        };
        let subject = text(predicate.capture)?;
        let holds = match &predicate.test {
            TextTest::Equals(value) => subject == value.as_slice(),
            TextTest::SameAs(other) => subject == text(*other)?,
            TextTest::Matches(regex) => regex.is_match(subject),
            TextTest::NormalizedMatches(regex) => {
                regex.is_match(&crate::query::normalized_path(subject))
            }
            TextTest::AnyOf(values) => values.iter().any(|v| v.as_slice() == subject),
            TextTest::NfkcChanges => crate::query::nfkc_changes(subject),
        };
        Some(holds != predicate.negated)
    }

    /// Matches the child patterns of `test` against the children of `node`.
    fn children(
        &mut self,
        pattern: &Pattern,
        test: &NodeTest,
        node: usize,
        next: &mut dyn FnMut(&mut Search<'t>) -> Flow,
    ) -> Flow {
        if test.children.is_empty() {
            return next(self);
        }
        let children = self.tree.children(node);
        self.tick(u32::try_from(children.len()).unwrap_or(u32::MAX))?;
        self.sequence(pattern, test, children, 0, next)
    }

    /// Matches child patterns `index..` against the children `rest` (node indices).
    fn sequence(
        &mut self,
        pattern: &Pattern,
        test: &NodeTest,
        rest: &[u32],
        index: usize,
        next: &mut dyn FnMut(&mut Search<'t>) -> Flow,
    ) -> Flow {
        let tree = self.tree;
        let Some(child) = test.children.get(index) else {
            let named_after = rest.iter().any(|&c| tree.nodes[c as usize].named);
            if test.anchored_last && named_after {
                return ControlFlow::Continue(());
            }
            return next(self);
        };
        for (i, &at) in rest.iter().enumerate() {
            // An anchor forbids skipping a named child; anonymous ones may be skipped.
            if child.immediate && i > 0 && tree.nodes[rest[i - 1] as usize].named {
                break;
            }
            let at = at as usize;
            if child.field.is_some() && tree.nodes[at].field != child.field {
                continue;
            }
            self.step(pattern, &child.step, at, &mut |this| {
                this.sequence(pattern, test, &rest[i + 1..], index + 1, next)
            })?;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use tree_sitter::StreamingIterator;

    use super::*;
    use crate::query::Resolver;
    use crate::Grammar;

    /// The `(pattern, text)` pairs of capture `report` that this engine and tree-sitter's each
    /// find for `query` in `code`.
    fn both(
        grammar: Grammar,
        query: &str,
        report: &str,
        code: &str,
    ) -> [BTreeSet<(usize, String)>; 2] {
        let language = grammar.language();
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&language).expect("grammar");
        let tree = parser.parse(code, None).expect("parses");
        let text = |r: std::ops::Range<usize>| code[r].to_owned();

        let theirs = tree_sitter::Query::new(&language, query).expect("tree-sitter compiles it");
        let index = theirs.capture_index_for_name(report).expect("captured");
        let mut cursor = tree_sitter::QueryCursor::new();
        let mut matches = cursor.matches(&theirs, tree.root_node(), code.as_bytes());
        let mut expected = BTreeSet::new();
        while let Some(m) = matches.next() {
            for node in m.nodes_for_capture_index(index) {
                expected.insert((m.pattern_index, text(node.byte_range())));
            }
        }

        let patterns =
            Pattern::compile_all(query, &mut Resolver::new(&language)).expect("compiles");
        let flat =
            FlatTree::build(&tree, Deadline::after(Duration::from_secs(10))).expect("in time");
        let mut search = Search::new(
            &flat,
            code.as_bytes(),
            Deadline::after(Duration::from_secs(10)),
        );
        let mut actual = BTreeSet::new();
        for at in 0..flat.nodes.len() {
            for (i, pattern) in patterns.iter().enumerate() {
                let report = pattern.capture(report).expect("captured");
                let mut found = |n: usize, _: &[Option<usize>]| {
                    actual.insert((i, text(flat.nodes[n].bytes())));
                    ControlFlow::Continue(())
                };
                assert_eq!(search.run(pattern, at, report, &mut found), Outcome::Done);
            }
        }
        [actual, expected]
    }

    /// Each feature of the query language, checked against tree-sitter on a program made to
    /// exercise it, with at least one match and one non-match.
    #[test]
    fn each_feature_matches_as_tree_sitter_does() {
        let python =
            "import os\nos.system('a')\nos.popen('b', 'r')\nf(1, 2, 3)\ng()\nx.y.z(4)\nf(f)\n";
        let cases: &[(&str, &str)] = &[
            // fields, nested patterns, #eq?, #match?, #any-of?, negations
            ("(call function: (attribute object: (identifier) @m attribute: (identifier) @f) (#eq? @m \"os\") (#match? @f \"^(system|popen)$\")) @x", "x"),
            ("(call function: (identifier) @f (#not-any-of? @f \"g\")) @x", "x"),
            ("(call function: (identifier) @f (#not-eq? @f \"f\")) @x", "x"),
            ("(call function: (attribute attribute: (identifier) @f) (#not-match? @f \"^sys\")) @x", "x"),
            // anchors: first, last and adjacent named children
            ("(argument_list . (integer) @x)", "x"),
            ("(argument_list (integer) @x .)", "x"),
            ("(argument_list (integer) @a . (integer) @x)", "x"),
            ("(argument_list (string) . (string) @x)", "x"),
            // wildcards and anonymous nodes
            ("(call arguments: (_) @x)", "x"),
            ("(argument_list \",\" @x)", "x"),
            ("(argument_list _ @x)", "x"),
            // alternations, with a capture on the alternation
            ("(call function: [(identifier) (attribute)] @x)", "x"),
            ("[(import_statement) (call function: (identifier))] @x", "x"),
            // negated fields
            ("(call !arguments) @x", "x"),
            // predicates comparing two captures
            ("(call function: (identifier) @a arguments: (argument_list (identifier) @b) (#eq? @a @b)) @x", "x"),
            // a capture below the root, several matches per root
            ("(argument_list (integer) @x)", "x"),
            ("((call function: (attribute) @f) @x (#match? @f \"^x\\\\.\"))", "x"),
        ];
        for (query, report) in cases {
            let [actual, expected] = both(Grammar::Python, query, report, python);
            assert_eq!(actual, expected, "{query}");
            // Every call has arguments in Python: that one must find nothing, the rest something.
            assert_eq!(expected.is_empty(), query.contains("!arguments"), "{query}");
        }
        let bash = "sleep 1 &\necho a | cat &\nfor i in 1 2; do true & done\nls\n";
        for query in [
            "(_ (command) @x . \"&\")",
            "(_ (pipeline) @x . \"&\")",
            "(do_group (_) @x . \"&\")",
            "(program . (_) @x)",
        ] {
            let [actual, expected] = both(Grammar::Bash, query, "x", bash);
            assert_eq!(actual, expected, "{query}");
            assert!(!expected.is_empty(), "{query} matches something");
        }
    }

    #[test]
    fn paths_are_normalised_lexically() {
        let cases: &[(&str, &str)] = &[
            ("./data/../data/x.txt", "data/x.txt"),
            ("a/b/../c.txt", "a/c.txt"),
            ("/tmp/../tmp/x", "/tmp/x"),
            ("/work/../etc/passwd", "/etc/passwd"),
            ("/work/./../etc", "/etc"),
            ("x/../../etc/passwd", "../etc/passwd"),
            ("../..", "../.."),
            ("build/..", "."),
            ("", "."),
            ("/..", "/"),
            ("/../../etc//shadow/", "/etc/shadow"),
            ("~/../x", "~/../x"),
            ("~user/..", "~user/.."),
            // A part that may spell `..` or `/`, or stand for several parts, is not climbed.
            ("/work/\\x2e\\x2e/../etc", "/work/\\x2e\\x2e/../etc"),
            ("a/$d/../b", "a/$d/../b"),
            ("a/x*/../..", "a/x*/../.."),
            ("<lib/../x.h>", "<lib/../x.h>"),
            ("\"/tmp/../tmp/x\"", "\"/tmp/x\""),
            ("\"/../etc", "\"/../etc"),
        ];
        for &(path, normal) in cases {
            let found = crate::query::normalized_path(path.as_bytes());
            assert_eq!(String::from_utf8_lossy(&found), normal, "{path}");
        }
        // The predicate, beside tree-sitter (which leaves it to its caller: it keeps every
        // match here, and this engine keeps the one that climbs out).
        let python = "open('a/../b')\nopen('a/../../b')\n";
        let query = "((call arguments: (argument_list (string (string_content) @p))) @x (#normalized-match? @p \"^\\\\.\\\\./\"))";
        let [actual, _] = both(Grammar::Python, query, "x", python);
        let found: Vec<&str> = actual.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(found, ["open('a/../../b')"]);
        let query = query.replace("#normalized-match?", "#not-normalized-match?");
        let [actual, _] = both(Grammar::Python, &query, "x", python);
        let found: Vec<&str> = actual.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(found, ["open('a/../b')"]);
    }
}
