//! A rule's query compiled for matching: the patterns of tree-sitter's query language
//! (`query/syntax.rs` reads them) with node types and fields resolved against the grammar,
//! captures numbered and predicates checked, matched by `query/search.rs`.
//!
//! Why not tree-sitter's own query engine: building a `tree_sitter::Query` analyses every
//! pattern against the grammar's parse states, which costs 15 to 300 ms per language, paid by
//! every `warden run` process; matching these patterns directly costs microseconds. The
//! semantics are tree-sitter's, and a test checks that both engines find the same nodes for
//! every rule on every example and the benign corpus (`matching.rs`).

mod search;
mod syntax;

use std::num::NonZeroU16;
use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};
use tree_sitter::Language;

pub(crate) use search::{Outcome, Search};
use syntax::{Arg, Expr, Item, PredicateText, Shape, SyntaxError};

use crate::flat::FlatNode;

/// Which nodes a step accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Named nodes of this type (a public kind id).
    Named(u16),
    /// Anonymous nodes of this type (`"&"`).
    Anonymous(u16),
    /// Any named node: `(_)`.
    AnyNamed,
    /// Any node: `_`.
    Any,
}

impl Kind {
    fn accepts(self, node: &FlatNode) -> bool {
        match self {
            Kind::Named(id) => node.named && node.kind == id,
            Kind::Anonymous(id) => !node.named && node.kind == id,
            Kind::AnyNamed => node.named,
            Kind::Any => true,
        }
    }

    /// The kind id a node must have, if only one can match.
    fn id(self) -> Option<u16> {
        match self {
            Kind::Named(id) | Kind::Anonymous(id) => Some(id),
            Kind::AnyNamed | Kind::Any => None,
        }
    }
}

/// One pattern, with the captures it binds.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) what: What,
    /// Capture indices bound to the node this step matches.
    pub(crate) captures: Vec<usize>,
}

/// What a step matches.
#[derive(Debug)]
pub(crate) enum What {
    /// A node, its missing fields and its children.
    Node(NodeTest),
    /// Any one of several patterns.
    Alternation(Vec<Step>),
}

/// A node pattern.
#[derive(Debug)]
pub(crate) struct NodeTest {
    pub(crate) kind: Kind,
    /// Fields the node must not have a child in.
    pub(crate) negated_fields: Vec<NonZeroU16>,
    /// Child patterns, matched in order against the node's children.
    pub(crate) children: Vec<Child>,
    /// `.` after the last child pattern: no named child follows its match.
    pub(crate) anchored_last: bool,
}

/// A child pattern.
#[derive(Debug)]
pub(crate) struct Child {
    /// The field the child must be in, if any.
    pub(crate) field: Option<NonZeroU16>,
    pub(crate) step: Step,
    /// `.` before it: no named child lies between the previous child's match (or the start)
    /// and this one's.
    pub(crate) immediate: bool,
}

/// A condition on captured nodes' text.
#[derive(Debug)]
pub(crate) struct Predicate {
    pub(crate) capture: usize,
    pub(crate) test: TextTest,
    /// `#not-...`: the condition must not hold.
    pub(crate) negated: bool,
}

/// What a predicate checks the captured text against.
#[derive(Debug)]
pub(crate) enum TextTest {
    /// `#eq? @a "text"`.
    Equals(Vec<u8>),
    /// `#eq? @a @b`.
    SameAs(usize),
    /// `#match? @a "regex"`: the regex is found in the text.
    Matches(LazyRegex),
    /// `#any-of? @a "x" "y"`.
    AnyOf(Vec<Vec<u8>>),
}

/// A regex checked when its rule compiles and built on its first use: a language has dozens,
/// and most are never evaluated for a given program.
///
/// It is built without Unicode: `.` and classes match bytes, `(?i)` and `\w` are ASCII. The
/// rules look for identifiers, commands and paths, which are ASCII, and a Unicode `.` costs a
/// UTF-8 automaton per regex (hundreds of microseconds each, for every `warden run`). A
/// multi-byte character is matched as several bytes, so `.*` still spans it; and `(?i)` no
/// longer folds `ſ` into `s`, which PHP's case-insensitive names do not do either.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    pattern: String,
    built: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// Checks `pattern`'s syntax as the `regex` crate reads it (the syntax only: translating
    /// classes costs nearly as much as building).
    fn new(pattern: &str) -> Result<LazyRegex, String> {
        regex_syntax::ast::parse::Parser::new()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        Ok(LazyRegex {
            pattern: pattern.to_owned(),
            built: OnceLock::new(),
        })
    }

    /// Whether the regex is found in `text`. A regex that parses but cannot be built (an unknown
    /// Unicode class, past the size limit; the tests build every builtin one) matches nothing.
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        self.built
            .get_or_init(|| self.builder().build().ok())
            .as_ref()
            .is_some_and(|r| r.is_match(text))
    }

    /// Builds it now; why it cannot be built.
    #[cfg(test)]
    pub(crate) fn build(&self) -> Result<(), String> {
        self.builder().build().map(drop).map_err(|e| e.to_string())
    }

    fn builder(&self) -> RegexBuilder {
        let mut builder = RegexBuilder::new(&self.pattern);
        builder.unicode(false);
        builder
    }
}

impl Predicate {
    /// The captures it reads.
    fn captures(&self) -> impl Iterator<Item = usize> {
        let other = match self.test {
            TextTest::SameAs(other) => Some(other),
            _ => None,
        };
        std::iter::once(self.capture).chain(other)
    }
}

/// A top-level pattern, compiled.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) root: Step,
    /// Capture names, by index.
    pub(crate) capture_names: Vec<String>,
    pub(crate) predicates: Vec<Predicate>,
    /// For each capture, the predicates that read it.
    pub(crate) predicates_of: Vec<Vec<usize>>,
}

/// Why a query does not compile: a message and the line (from 0) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) message: String,
    pub(crate) line: usize,
}

impl From<SyntaxError> for QueryError {
    fn from(e: SyntaxError) -> QueryError {
        QueryError {
            message: e.message,
            line: e.line,
        }
    }
}

impl Pattern {
    /// Every top-level pattern of the query `text`, resolved against `language`.
    pub(crate) fn compile_all(text: &str, language: &Language) -> Result<Vec<Pattern>, QueryError> {
        syntax::read(text)?
            .into_iter()
            .map(|top| {
                let mut names = Vec::new();
                let root = step(&top.expr, language, &mut names)?;
                let mut pattern = Pattern {
                    root,
                    predicates_of: Vec::new(),
                    predicates: Vec::new(),
                    capture_names: names,
                };
                for text in &top.predicates {
                    let predicate = predicate(text, &pattern.capture_names)?;
                    pattern.predicates.push(predicate);
                }
                pattern.predicates_of = vec![Vec::new(); pattern.capture_names.len()];
                for (i, p) in pattern.predicates.iter().enumerate() {
                    for capture in p.captures() {
                        pattern.predicates_of[capture].push(i);
                    }
                }
                Ok(pattern)
            })
            .collect()
    }

    /// The index of capture `name`, if the pattern has it.
    pub(crate) fn capture(&self, name: &str) -> Option<usize> {
        self.capture_names.iter().position(|n| n == name)
    }

    /// The kind ids a node must have for this pattern to match it; `None`: any node may match.
    pub(crate) fn root_kinds(&self) -> Option<Vec<u16>> {
        fn collect(step: &Step, into: &mut Vec<u16>) -> bool {
            match &step.what {
                What::Node(test) => test.kind.id().map(|id| into.push(id)).is_some(),
                What::Alternation(steps) => steps.iter().all(|s| collect(s, into)),
            }
        }
        let mut kinds = Vec::new();
        collect(&self.root, &mut kinds).then_some(kinds)
    }
}

fn at<T>(line: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        message: message.into(),
        line,
    })
}

fn step(expr: &Expr, language: &Language, names: &mut Vec<String>) -> Result<Step, QueryError> {
    let what = match &expr.shape {
        Shape::Node { kind, items } => {
            let kind = match kind {
                None => Kind::AnyNamed,
                Some(name) => match language.id_for_node_kind(name, true) {
                    0 => return at(expr.line, format!("no such node type {name:?}")),
                    id => Kind::Named(id),
                },
            };
            What::Node(node_test(kind, items, language, names)?)
        }
        Shape::Anonymous(text) => match language.id_for_node_kind(text, false) {
            0 => return at(expr.line, format!("no such node type {text:?}")),
            id => What::Node(leaf(Kind::Anonymous(id))),
        },
        Shape::Any => What::Node(leaf(Kind::Any)),
        Shape::Alternation(exprs) => What::Alternation(
            exprs
                .iter()
                .map(|e| step(e, language, names))
                .collect::<Result<_, _>>()?,
        ),
    };
    let captures = expr
        .captures
        .iter()
        .map(|name| capture_index(names, name))
        .collect();
    Ok(Step { what, captures })
}

fn leaf(kind: Kind) -> NodeTest {
    NodeTest {
        kind,
        negated_fields: Vec::new(),
        children: Vec::new(),
        anchored_last: false,
    }
}

fn node_test(
    kind: Kind,
    items: &[Item],
    language: &Language,
    names: &mut Vec<String>,
) -> Result<NodeTest, QueryError> {
    let mut test = leaf(kind);
    let mut anchor_pending = false;
    for item in items {
        match item {
            Item::Anchor => anchor_pending = true,
            Item::NegatedField(name, line) => {
                test.negated_fields.push(field(language, name, *line)?)
            }
            Item::Child { field: name, expr } => {
                let field = match name {
                    Some(name) => Some(field(language, name, expr.line)?),
                    None => None,
                };
                test.children.push(Child {
                    field,
                    step: step(expr, language, names)?,
                    immediate: std::mem::take(&mut anchor_pending),
                });
            }
        }
    }
    test.anchored_last = anchor_pending && !test.children.is_empty();
    Ok(test)
}

fn field(language: &Language, name: &str, line: usize) -> Result<NonZeroU16, QueryError> {
    language
        .field_id_for_name(name)
        .map_or_else(|| at(line, format!("no such field {name:?}")), Ok)
}

fn capture_index(names: &mut Vec<String>, name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or_else(|| {
        names.push(name.to_owned());
        names.len() - 1
    })
}

/// The predicates a rule may use: every other would have to be ignored, and the pattern would
/// match too much.
const PREDICATES: &str = "use #eq?, #match?, #any-of? or their negations";

fn predicate(text: &PredicateText, names: &[String]) -> Result<Predicate, QueryError> {
    let line = text.line;
    let (negated, operator) = match text.operator.strip_prefix("not-") {
        Some(positive) => (true, positive),
        None => (false, text.operator.as_str()),
    };
    let capture = |arg: &Arg| match arg {
        Arg::Capture(name) => names
            .iter()
            .position(|n| n == name)
            .map_or_else(|| at(line, format!("no such capture @{name}")), Ok),
        Arg::Text(_) => at(line, format!("#{} needs a capture first", text.operator)),
    };
    let Some((first, rest)) = text.args.split_first() else {
        return at(line, format!("#{} needs arguments", text.operator));
    };
    let capture = capture(first)?;
    let test = match (operator, rest) {
        ("eq?", [Arg::Text(value)]) => TextTest::Equals(value.as_bytes().to_vec()),
        ("eq?", [other @ Arg::Capture(_)]) => TextTest::SameAs(
            names
                .iter()
                .position(|n| Arg::Capture(n.clone()) == *other)
                .map_or_else(|| at(line, "no such capture"), Ok)?,
        ),
        ("match?", [Arg::Text(regex)]) => match LazyRegex::new(regex) {
            Ok(regex) => TextTest::Matches(regex),
            Err(e) => return at(line, format!("bad regex {regex:?}: {e}")),
        },
        ("any-of?", values) if !values.is_empty() => TextTest::AnyOf(
            values
                .iter()
                .map(|v| match v {
                    Arg::Text(t) => Ok(t.as_bytes().to_vec()),
                    Arg::Capture(_) => at(line, "#any-of? takes strings"),
                })
                .collect::<Result<_, _>>()?,
        ),
        ("eq?" | "match?" | "any-of?", _) => {
            return at(line, format!("wrong arguments for #{}", text.operator))
        }
        _ => {
            return at(
                line,
                format!(
                    "the predicate #{} is not evaluated: {PREDICATES}",
                    text.operator
                ),
            )
        }
    };
    Ok(Predicate {
        capture,
        test,
        negated,
    })
}
