//! Running a language's rules over a program's tree and turning matches into findings: one
//! walk over the tree, trying at each node only the patterns that can start there.

use std::collections::HashMap;
use std::ops::{ControlFlow, Range};

use tree_sitter::Tree;
use warden_core::{Finding, ThreatLevel};

use crate::assigned_commands;
use crate::deadline::Deadline;
use crate::flat::{FlatNode, FlatTree};
use crate::own_bindings::OwnBindings;
use crate::own_variables;
use crate::query::{Outcome, Search};
use crate::rules::{Role, RuleSet};
use crate::ReadElsewhere;

/// At most this many findings are listed, for a file and for a program of many: the most
/// severe ([`cap_findings`]); the threat level counts them all.
pub const MAX_FINDINGS: usize = 200;
/// An excerpt is at most this many characters of the first line of the match.
const EXCERPT_CHARS: usize = 80;

/// A program's text as its language reads it (`reading.rs`), which the rules search, and as it
/// was written, which findings quote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Texts<'t> {
    pub(crate) read: &'t [u8],
    /// The written text where it lines up with the read one byte for byte (the reading kept
    /// its length: options moved after a bash wrapper's command, a name's quotes spliced out);
    /// the read text otherwise (an escape that shortened it).
    shown: &'t [u8],
}

impl<'t> Texts<'t> {
    pub(crate) fn of(read: &'t [u8], written: &'t [u8]) -> Self {
        let shown = if written.len() == read.len() {
            written
        } else {
            read
        };
        Self { read, shown }
    }
}

/// What the rules found.
#[derive(Debug, Default)]
pub(crate) struct Matches {
    /// At most `MAX_FINDINGS`, the most severe, in source order.
    pub(crate) findings: Vec<Finding>,
    /// The highest severity among all the findings, listed or not.
    pub(crate) level: ThreatLevel,
    /// The deadline passed before the whole tree was searched.
    pub(crate) timed_out: bool,
}

impl Matches {
    /// Adds `other`'s findings, keeping them in source order (by line) and at most
    /// `MAX_FINDINGS`, the most severe; the level counts them all.
    pub(crate) fn merge(&mut self, other: Matches) {
        if other.findings.is_empty() && !other.timed_out {
            return;
        }
        self.level = self.level.max(other.level);
        self.timed_out |= other.timed_out;
        self.findings.extend(other.findings);
        self.findings.sort_by_key(|f| f.line);
        cap_findings(&mut self.findings);
    }

    /// [`Matches::merge`] of matches that may hold some of these again (the beginning of a
    /// file, read again after its whole analysis stopped): each finding once.
    pub(crate) fn merge_distinct(&mut self, other: Matches) {
        self.findings.extend(other.findings);
        self.findings
            .sort_by(|a, b| (a.line, &a.rule, &a.excerpt).cmp(&(b.line, &b.rule, &b.excerpt)));
        self.findings
            .dedup_by(|a, b| (a.line, &a.rule, &a.excerpt) == (b.line, &b.rule, &b.excerpt));
        cap_findings(&mut self.findings);
        self.level = self.level.max(other.level);
        self.timed_out |= other.timed_out;
    }
}

/// Keeps at most [`MAX_FINDINGS`] of `findings`, in the order they are: the most severe, and
/// among equals the first. Keeping the first by line instead let 200 `low` findings push out
/// the one `high` finding that decided the program's level (hunt "ana": 250 `os.getenv` lines
/// before `import ctypes`).
pub fn cap_findings(findings: &mut Vec<Finding>) {
    keep_most_severe(findings, |f| f.severity);
}

/// Keeps at most [`MAX_FINDINGS`] of `items`, in their order: the highest by `severity`, the
/// first among equals.
fn keep_most_severe<T>(items: &mut Vec<T>, severity: impl Fn(&T) -> ThreatLevel) {
    if items.len() <= MAX_FINDINGS {
        return;
    }
    let mut ranked: Vec<(std::cmp::Reverse<ThreatLevel>, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (std::cmp::Reverse(severity(item)), i))
        .collect();
    ranked.select_nth_unstable(MAX_FINDINGS - 1);
    let mut kept = vec![false; items.len()];
    for &(_, i) in &ranked[..MAX_FINDINGS] {
        kept[i] = true;
    }
    let mut kept = kept.into_iter();
    items.retain(|_| kept.next().unwrap_or(false));
}

/// A match before its rule's scope is checked.
struct Candidate {
    rule: usize,
    node: FlatNode,
    /// The bytes of the node captured `@held`, where the pattern captures one.
    held: Option<Range<usize>>,
}

/// A scope of a rule.
struct Scope {
    rule: usize,
    bytes: Range<usize>,
    /// The bytes of the node captured `@held`, where the pattern captures one: a finding
    /// that captures `@held` too counts in this scope only when the two texts are the same.
    held: Option<Range<usize>>,
}

/// What the walk collected: findings before their scopes are checked, and the scopes.
#[derive(Default)]
struct Collected {
    candidates: Vec<Candidate>,
    scopes: Vec<Scope>,
    exemptions: Vec<(usize, Range<usize>)>,
    /// Each `break` or `return` of a rule's `exits` query, and whether it is a `return`.
    exits: Vec<(usize, Range<usize>, bool)>,
    /// The rules whose exits are redefined somewhere in the program.
    redefined: Vec<usize>,
    /// Each construct of a rule's `nested` query, and whether it is a function (which a
    /// `return` ends too) rather than a loop (which only a `break` ends).
    nested: Vec<(usize, Range<usize>, bool)>,
    /// Each call of a rule's `nested` query that copies the running program.
    forks: Vec<(usize, Range<usize>)>,
    timed_out: bool,
}

/// Runs every rule of `rules` over `tree`, giving up at `deadline`. `among_others`: the
/// program has other files, and what they read, which may run what this one assigns
/// (`only_if_run`).
pub(crate) fn find(
    rules: &RuleSet,
    tree: &Tree,
    texts: Texts<'_>,
    among_others: Option<&ReadElsewhere>,
    deadline: Deadline,
) -> Matches {
    let code = texts.read;
    let Collected {
        mut candidates,
        mut scopes,
        exemptions,
        mut exits,
        redefined,
        nested,
        forks,
        timed_out,
    } = collect(rules, tree, code, deadline);
    exits.retain(|(rule, _, _)| !redefined.contains(rule));
    let ends = index_exits(bounded_exits(exits, nested), forks);
    scopes.retain(|scope| {
        !exemptions
            .iter()
            .any(|(r, exempt)| *r == scope.rule && contains(&scope.bytes, exempt))
            && !ends
                .get(&scope.rule)
                .is_some_and(|exits| exits.end(&scope.bytes))
    });
    let mut found = Matches {
        timed_out,
        ..Matches::default()
    };
    candidates.retain(|c| !rules.is_scoped(c.rule) || inside_scope(c, &scopes, code));
    candidates.retain(|c| {
        !rules.only_if_run(c.rule)
            || assigned_commands::may_run(tree, code, c.node.bytes(), among_others, deadline)
    });
    let mut own = OwnBindings::default();
    candidates.retain(|c| {
        let names = rules.unless_bound(c.rule);
        names.is_empty() || !own.hides(tree, code, c.node.bytes(), names, deadline)
    });
    candidates.retain(|c| {
        !rules.unless_assigned(c.rule) || !own_variables::is_own(tree, code, c.node.bytes())
    });
    candidates.sort_by_key(|c| (c.node.start, c.rule));
    candidates.dedup_by_key(|c| (c.node.start, c.rule));
    let severity = |c: &Candidate| rules.rules[c.rule].severity;
    found.level = candidates.iter().map(severity).max().unwrap_or_default();
    keep_most_severe(&mut candidates, severity);
    found.findings = candidates
        .iter()
        .map(|candidate| {
            let rule = &rules.rules[candidate.rule];
            Finding {
                rule: rule.id.clone(),
                severity: rule.severity,
                line: candidate.node.row.saturating_add(1),
                excerpt: excerpt(texts.shown.get(candidate.node.bytes()).unwrap_or_default()),
                explanation: rule.explanation.clone(),
            }
        })
        .collect();
    found
}

/// Matches, at every node of the tree, the patterns that can start there.
fn collect(rules: &RuleSet, tree: &Tree, code: &[u8], deadline: Deadline) -> Collected {
    let mut collected = Collected::default();
    let Some(flat) = FlatTree::build(tree, deadline) else {
        collected.timed_out = true;
        return collected;
    };
    let mut search = Search::new(&flat, code, deadline);
    for (at, node) in flat.nodes.iter().enumerate() {
        for index in rules.compiled.for_kind(node.kind) {
            let p = &rules.compiled.patterns[index];
            let mut found = |matched: usize, bindings: &[Option<usize>]| {
                let node = flat.nodes[matched];
                let held = p
                    .held
                    .and_then(|capture| bindings.get(capture).copied().flatten())
                    .map(|held| flat.nodes[held].bytes());
                match p.role {
                    Role::Finding => collected.candidates.push(Candidate {
                        rule: p.rule,
                        node,
                        held,
                    }),
                    Role::Scope => collected.scopes.push(Scope {
                        rule: p.rule,
                        bytes: node.bytes(),
                        held,
                    }),
                    Role::Exempt => collected.exemptions.push((p.rule, node.bytes())),
                    Role::Break | Role::Return => {
                        let is_return = p.role == Role::Return;
                        collected.exits.push((p.rule, node.bytes(), is_return));
                    }
                    Role::Loop | Role::Function => {
                        let is_function = p.role == Role::Function;
                        collected.nested.push((p.rule, node.bytes(), is_function));
                    }
                    Role::Fork => collected.forks.push((p.rule, node.bytes())),
                    Role::Redefined => collected.redefined.push(p.rule),
                }
                if p.reports_root {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            if search.run(&p.pattern, at, p.report, &mut found) == Outcome::Exhausted {
                collected.timed_out = true;
                return collected;
            }
        }
    }
    collected
}

/// A `break` or `return` of a rule, and the innermost construct of the rule's `nested` query
/// that it ends instead of what holds that construct.
struct Exit {
    rule: usize,
    at: Range<usize>,
    bound: Option<Range<usize>>,
}

/// Where a node stands among the nodes that hold a place: of two nodes that both hold it, the
/// one with the smaller key holds the other (the earlier start, then the later end).
type Nesting = (usize, std::cmp::Reverse<usize>);

fn nesting(at: &Range<usize>) -> Nesting {
    (at.start, std::cmp::Reverse(at.end))
}

/// One rule's exits by where they start, to tell whether a scope holds an exit of its own in
/// logarithmic time (thousands of nested loops, each with a `break`, would otherwise cost the
/// square of that in pairs).
struct RuleExits {
    /// The exits' starts, in order.
    starts: Vec<usize>,
    /// `mins[j][i]`: the smallest [`Nesting`] of the bounds of exits `i..i + 2^j` (an exit
    /// with no bound has the smallest of all: it leaves every scope that holds it).
    mins: Vec<Vec<Nesting>>,
    /// The starts of the rule's forks, in order.
    forks: Vec<usize>,
}

impl RuleExits {
    /// Whether `scope` ends by an exit of its own: it holds an exit whose bound is not within
    /// it (the bound holds `scope`, or there is none), and no fork. Syntax nodes nest, so a
    /// node that starts inside a scope lies inside it, and of an exit's bound and a scope that
    /// both hold the exit, one holds the other.
    fn end(&self, scope: &Range<usize>) -> bool {
        let within = |starts: &[usize]| {
            starts.partition_point(|&s| s < scope.start)..starts.partition_point(|&s| s < scope.end)
        };
        let (exits, forks) = (within(&self.starts), within(&self.forks));
        if exits.is_empty() || !forks.is_empty() {
            return false;
        }
        let level = exits.len().ilog2() as usize;
        let row = &self.mins[level];
        let least = row[exits.start].min(row[exits.end - (1 << level)]);
        least <= nesting(scope)
    }
}

/// The exits (with their bounds) and forks of every rule that has exits, for
/// [`RuleExits::end`].
fn index_exits(ends: Vec<Exit>, forks: Vec<(usize, Range<usize>)>) -> HashMap<usize, RuleExits> {
    // Each rule's exits (start, bound) and forks (start).
    type Starts = (Vec<(usize, Nesting)>, Vec<usize>);
    let mut by_rule: HashMap<usize, Starts> = HashMap::new();
    for end in ends {
        let unbounded = (0, std::cmp::Reverse(usize::MAX));
        let key = end.bound.as_ref().map_or(unbounded, nesting);
        by_rule
            .entry(end.rule)
            .or_default()
            .0
            .push((end.at.start, key));
    }
    for (rule, fork) in forks {
        if let Some((_, forks)) = by_rule.get_mut(&rule) {
            forks.push(fork.start);
        }
    }
    by_rule
        .into_iter()
        .map(|(rule, (mut exits, mut forks))| {
            exits.sort_unstable();
            forks.sort_unstable();
            let mut mins = vec![exits.iter().map(|&(_, key)| key).collect::<Vec<_>>()];
            let mut span = 1;
            while span * 2 <= exits.len() {
                let last = &mins[mins.len() - 1];
                let next = (0..=exits.len() - span * 2)
                    .map(|i| last[i].min(last[i + span]))
                    .collect();
                mins.push(next);
                span *= 2;
            }
            let starts = exits.into_iter().map(|(start, _)| start).collect();
            (
                rule,
                RuleExits {
                    starts,
                    mins,
                    forks,
                },
            )
        })
        .collect()
}

/// Each exit with its bound: the innermost `nested` construct of its rule that holds it, a
/// function for a `return`, a loop or a function for a `break`. One sweep over the nodes in
/// document order (outer before inner), keeping the constructs that hold the current node on
/// two stacks: syntax nodes nest, so a construct that does not hold a node holds none after it.
fn bounded_exits(
    exits: Vec<(usize, Range<usize>, bool)>,
    nested: Vec<(usize, Range<usize>, bool)>,
) -> Vec<Exit> {
    if exits.is_empty() {
        return Vec::new();
    }
    // (rule, range, is an exit, is a return or a function).
    let mut items: Vec<(usize, Range<usize>, bool, bool)> = nested
        .into_iter()
        .map(|(rule, at, function)| (rule, at, false, function))
        .chain(
            exits
                .into_iter()
                .map(|(rule, at, ret)| (rule, at, true, ret)),
        )
        .collect();
    items.sort_by_key(|(rule, at, exit, _)| (*rule, at.start, std::cmp::Reverse(at.end), *exit));
    let mut found = Vec::new();
    // The constructs that hold the current node: all of them, and the functions.
    let mut any: Vec<(usize, Range<usize>)> = Vec::new();
    let mut functions: Vec<(usize, Range<usize>)> = Vec::new();
    for (rule, at, exit, kind) in items {
        for stack in [&mut any, &mut functions] {
            while stack
                .last()
                .is_some_and(|(r, held)| *r != rule || held.end < at.end)
            {
                stack.pop();
            }
        }
        if exit {
            let stack = if kind { &functions } else { &any };
            let bound = stack.last().map(|(_, b)| b.clone());
            found.push(Exit { rule, at, bound });
        } else {
            any.push((rule, at.clone()));
            if kind {
                functions.push((rule, at));
            }
        }
    }
    found
}

/// Whether the candidate lies within a scope of its rule (a scope node contains it, and is not
/// the node itself: `while True: fork()` is a fork in a loop, the loop is not), one that holds
/// the same `@held` text where both capture one (`r.load(…)` counts where `r` holds a
/// `Runtime`, not where another name does).
fn inside_scope(candidate: &Candidate, scopes: &[Scope], code: &[u8]) -> bool {
    let range = candidate.node.bytes();
    let text = |bytes: &Range<usize>| code.get(bytes.clone());
    scopes.iter().any(|scope| {
        scope.rule == candidate.rule
            && contains(&scope.bytes, &range)
            && match (&scope.held, &candidate.held) {
                (Some(a), Some(b)) => text(a) == text(b),
                _ => true,
            }
    })
}

/// Whether `inner` lies within `outer` and is not `outer` itself.
fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer != inner
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
    use std::collections::BTreeSet;

    use super::*;
    use crate::query::Pattern;

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

    type Found = BTreeSet<(usize, usize, usize)>;

    /// The nodes tree-sitter's own query engine reports on `tree`: (pattern, start, end) of
    /// the capture `report` of each match. tree-sitter leaves `#nfkc-changes?` and
    /// `#normalized-match?` to its caller, as it does every predicate it does not know: they are
    /// evaluated here, on their own (the path normalisation is the crate's, the regex
    /// `regex`'s).
    fn oracle(query: &tree_sitter::Query, report: &str, tree: &Tree, code: &[u8]) -> Found {
        use tree_sitter::{QueryPredicateArg, StreamingIterator};
        let capture = query.capture_index_for_name(report).expect("captured");
        let mut cursor = tree_sitter::QueryCursor::new();
        let mut matches = cursor.matches(query, tree.root_node(), code);
        let mut found = BTreeSet::new();
        while let Some(m) = matches.next() {
            let holds = query.general_predicates(m.pattern_index).iter().all(|p| {
                let negated = p.operator.starts_with("not-");
                let QueryPredicateArg::Capture(c) = p.args[0] else {
                    panic!("a capture")
                };
                // `None`: `#nfkc-changes?`; a regex: `#normalized-match?`.
                let regex = match (p.operator.trim_start_matches("not-"), &p.args[1..]) {
                    ("nfkc-changes?", []) => None,
                    ("normalized-match?", [QueryPredicateArg::String(regex)]) => Some(
                        regex::bytes::RegexBuilder::new(regex)
                            .unicode(false)
                            .build()
                            .expect("a regex"),
                    ),
                    (operator, _) => panic!("#{operator} is not evaluated here"),
                };
                let test = |text: &[u8]| match &regex {
                    None => crate::query::nfkc_changes(text),
                    Some(regex) => regex.is_match(&crate::query::normalized_path(text)),
                };
                m.nodes_for_capture_index(c)
                    .all(|n| test(&code[n.byte_range()]) != negated)
            });
            if !holds {
                continue;
            }
            for node in m.nodes_for_capture_index(capture) {
                found.insert((m.pattern_index, node.start_byte(), node.end_byte()));
            }
        }
        found
    }

    /// The nodes this crate's engine reports for the same query.
    fn ours(patterns: &[Pattern], report: &str, tree: &Tree, code: &[u8]) -> Found {
        let deadline = crate::deadline::Deadline::after(std::time::Duration::from_secs(60));
        let flat = FlatTree::build(tree, deadline).expect("in time");
        let mut search = Search::new(&flat, code, deadline);
        let mut found = BTreeSet::new();
        for at in 0..flat.nodes.len() {
            for (i, pattern) in patterns.iter().enumerate() {
                // In a field of several captures, a pattern of another one.
                let Some(report) = pattern.capture(report) else {
                    continue;
                };
                let mut record = |n: usize, _: &[Option<usize>]| {
                    let node = &flat.nodes[n];
                    found.insert((i, node.start as usize, node.end as usize));
                    ControlFlow::Continue(())
                };
                let outcome = search.run(pattern, at, report, &mut record);
                assert_eq!(outcome, Outcome::Done);
            }
        }
        found
    }

    /// The examples of every rule of `set` and the programs of its benign corpus, whole and
    /// cut in half.
    fn programs(language: &str, set: &RuleSet) -> Vec<Vec<u8>> {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/benign")
            .join(language);
        let mut programs: Vec<Vec<u8>> = set
            .rules
            .iter()
            .flat_map(|r| r.examples.iter().map(|e| e.as_bytes().to_vec()))
            .collect();
        for entry in std::fs::read_dir(corpus).expect("a benign corpus") {
            programs.push(std::fs::read(entry.expect("entry").path()).expect("readable"));
        }
        // Cut in the middle, each one: trees with errors in them.
        let halves: Vec<Vec<u8>> = programs.iter().map(|p| p[..p.len() / 2].to_vec()).collect();
        programs.extend(halves);
        programs
    }

    /// Every rule's query, `inside` and `unless` query, matched by this crate and by tree-sitter, find the
    /// same nodes in every example of the language and every program of its benign corpus.
    #[test]
    fn every_rule_matches_what_tree_sitter_matches() {
        let analyzer = crate::Analyzer::builtin().expect("loads");
        let (mut compared, mut found) = (0, 0);
        for language in analyzer.languages() {
            let set = analyzer.rule_set(language).expect("has rules");
            let grammar = set.grammar.language();
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&grammar).expect("grammar");
            let programs: Vec<(Vec<u8>, Tree)> = programs(language, set)
                .into_iter()
                .map(|code| {
                    let tree = parser.parse(&code, None).expect("parses");
                    (code, tree)
                })
                .collect();
            for text in &set.texts {
                let report = text.capture.as_deref().unwrap_or("finding");
                let queries = [
                    (Some(&text.query), report),
                    (text.inside.as_ref(), "scope"),
                    (text.unless.as_ref(), "exempt"),
                    (text.exits.as_ref(), "break"),
                    (text.exits.as_ref(), "return"),
                    (text.exits.as_ref(), "redefined"),
                    (text.nested.as_ref(), "loop"),
                    (text.nested.as_ref(), "function"),
                    (text.nested.as_ref(), "fork"),
                ];
                for (query, report) in queries {
                    let Some(query) = query else { continue };
                    // A field of several captures: the patterns of each, apart.
                    if !query.contains(&format!("@{report}")) {
                        continue;
                    }
                    let theirs = tree_sitter::Query::new(&grammar, query)
                        .unwrap_or_else(|e| panic!("tree-sitter compiles {}: {e}", text.id));
                    let mut resolver = crate::query::Resolver::new(&grammar);
                    let patterns = Pattern::compile_all(query, &mut resolver).expect("compiles");
                    for (code, tree) in &programs {
                        let expected = oracle(&theirs, report, tree, code);
                        let actual = ours(&patterns, report, tree, code);
                        let program = String::from_utf8_lossy(code);
                        assert_eq!(actual, expected, "rule {} on {program:?}", text.id);
                        compared += 1;
                        found += expected.len();
                    }
                }
            }
        }
        assert!(compared > 1000, "{compared} comparisons");
        assert!(found > 500, "{found} nodes found");
    }

    /// Both regex engines build every regex of every rule and agree on every line of every
    /// example of its language (and on each whole example).
    #[test]
    fn both_regex_engines_agree_on_every_rule() {
        let analyzer = crate::Analyzer::builtin().expect("loads");
        let (mut regexes, mut checks) = (0, 0);
        for language in analyzer.languages() {
            let set = analyzer.rule_set(language).expect("has rules");
            let texts: Vec<&str> = set
                .rules
                .iter()
                .flat_map(|r| &r.examples)
                .flat_map(|e| std::iter::once(e.as_str()).chain(e.lines()))
                .flat_map(|l| std::iter::once(l).chain(l.split_whitespace()))
                .collect();
            for p in &set.compiled.patterns {
                for predicate in &p.pattern.predicates {
                    let Some(regex) = predicate.test.regex() else {
                        continue;
                    };
                    regexes += 1;
                    let disagreement = regex.disagreement(&texts);
                    assert_eq!(disagreement, Ok(None), "{language}: {regex:?}");
                    checks += texts.len();
                }
            }
        }
        assert!(
            regexes > 150 && checks > 10_000,
            "{regexes} regexes, {checks} checks"
        );
    }
}
