//! A rule's query compiled for matching: the patterns of tree-sitter's query language
//! (`query/syntax.rs` reads them) with node types and fields resolved against the grammar,
//! captures numbered and predicates checked, matched by `query/search.rs`.
//!
//! Why not tree-sitter's own query engine: building a `tree_sitter::Query` analyses every
//! pattern against the grammar's parse states, which costs 17 to 494 ms per language, paid by
//! every `warden run` process; matching these patterns directly costs microseconds. The
//! semantics are tree-sitter's, and a test checks that both engines find the same nodes for
//! every rule on every example and the benign corpus (`matching.rs`).

mod search;
mod syntax;

use std::collections::HashMap;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// Whether NFKC normalisation changes the ASCII characters of `text` (not UTF-8: no name a
/// language normalises): `ｅｘｅｃ` is `exec`, `ſystem` is `system`, `ﬁle` is `file`. Every
/// keyword, builtin and name the rules read is ASCII, so a name that normalises into another
/// name of other letters (the micro sign `µ` into Greek `μ`, the ohm sign `Ω`, the angstrom
/// sign `Å`) becomes none of them.
pub(crate) fn nfkc_changes(text: &[u8]) -> bool {
    use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        return false;
    }
    let ascii = |c: &char| c.is_ascii();
    !text.chars().filter(ascii).eq(text.nfkc().filter(ascii))
}

/// Bytes that make a path part opaque to `..`: an escape, a quote, an expansion, a glob, a
/// `%` escape or format, `<>` around a header name. Such a part may spell `..` or `/`, or stand
/// for several parts, so a `..` after it is kept.
const OPAQUE: &[u8] = b"\\'\"`$%{}()[]*?<>";

/// `text` as a path after lexical normalisation: empty and `.` parts dropped, a `..` resolved
/// against the part before it when that is a plain name (not `..`, not starting with `~`, no
/// [`OPAQUE`] byte), else kept; at the start of an absolute path a `..` disappears (`/..` is
/// `/`). `./data/../data/x` is `data/x`, `/tmp/../tmp/x` is `/tmp/x`, `x/../../etc` is
/// `../etc`, `~/../x` stays. An empty relative result is `.`.
pub(crate) fn normalized_path(text: &[u8]) -> Vec<u8> {
    let absolute = text.first() == Some(&b'/');
    let plain = |part: &[u8]| {
        part != b".." && part.first() != Some(&b'~') && !part.iter().any(|b| OPAQUE.contains(b))
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in text.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => match parts.last() {
                Some(last) if plain(last) => {
                    parts.pop();
                }
                None if absolute => {}
                _ => parts.push(part),
            },
            _ => parts.push(part),
        }
    }
    let mut normal = Vec::with_capacity(text.len());
    if absolute {
        normal.push(b'/');
    }
    normal.extend_from_slice(&parts.join(&b'/'));
    if normal.is_empty() {
        normal.push(b'.');
    }
    normal
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
    Matches(MatchRegex),
    /// `#normalized-match? @a "regex"`: the regex is found in the text read as a path after
    /// lexical normalisation ([`normalized_path`]).
    NormalizedMatches(MatchRegex),
    /// `#any-of? @a "x" "y"`.
    AnyOf(Vec<Vec<u8>>),
    /// `#nfkc-changes? @a`: NFKC normalisation changes the text's ASCII characters, so a
    /// language that reads names after normalising them (Python, PEP 3131) reads it as another
    /// name that may be a keyword, a builtin or one the rules read (`ｅｘｅｃ` is `exec`). Names
    /// of other letters (`größe`, `имя`) are left as they are, and one that normalises into
    /// other letters (`µ` into `μ`) is no such name ([`nfkc_changes`]).
    NfkcChanges,
}

/// A `#match?` regex, in two engines with the same syntax and semantics (ASCII: `.` and
/// classes match bytes, `(?i)` and `\w` are ASCII; the rules look for identifiers, commands and
/// paths). `regex_lite` builds in about 10 µs but searches slowly; `regex` builds in about
/// 100 µs and searches in linear time, several times faster. A `warden run` process builds every
/// regex of its language and evaluates few, so each starts with `regex_lite`. A regex that has
/// been evaluated [`LITE_USES`] times (a long program), or a text longer than [`SHORT_TEXT`]
/// (a megabyte string literal, say), gets the `regex` one, built once.
///
/// The builtin rules' regexes are built on their first evaluation ([`Build::OnFirstUse`]):
/// most are never evaluated in a run, and building a language's took about a third of its
/// rules' compilation. The tests build every one of them (`Analyzer::compile_all`).
#[derive(Debug)]
pub(crate) struct MatchRegex {
    /// Built with its query or on first use; why `regex_lite` refuses the pattern.
    lite: OnceLock<Result<regex_lite::Regex, String>>,
    pattern: String,
    full: OnceLock<Option<Regex>>,
    uses: AtomicU32,
}

/// Texts up to this long may be searched by `regex_lite`.
const SHORT_TEXT: usize = 1024;
/// Evaluations after which building the faster engine pays.
const LITE_USES: u32 = 32;

impl MatchRegex {
    /// `pattern`, built now (which checks it) or on its first evaluation.
    fn new(pattern: &str, build: Build) -> Result<MatchRegex, String> {
        let regex = MatchRegex {
            lite: OnceLock::new(),
            pattern: pattern.to_owned(),
            full: OnceLock::new(),
            uses: AtomicU32::new(0),
        };
        if build == Build::Now {
            regex.check()?;
        }
        Ok(regex)
    }

    /// Builds the regex if it is not yet built; why `regex_lite` refuses it.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.lite().as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn lite(&self) -> &Result<regex_lite::Regex, String> {
        self.lite
            .get_or_init(|| regex_lite::Regex::new(&self.pattern).map_err(|e| e.to_string()))
    }

    /// Whether the regex is found in `text`.
    pub(crate) fn is_match(&self, text: &[u8]) -> bool {
        let uses = self.uses.fetch_add(1, Ordering::Relaxed);
        let Ok(lite) = self.lite() else {
            // A builtin pattern that does not build, which the tests rule out: a match, so
            // that the rule errs towards reporting.
            return true;
        };
        if text.len() <= SHORT_TEXT && uses < LITE_USES {
            return match std::str::from_utf8(text) {
                Ok(text) => lite.is_match(text),
                Err(_) => lite.is_match(&String::from_utf8_lossy(text)),
            };
        }
        match self.full.get_or_init(|| self.full_builder().build().ok()) {
            Some(full) => full.is_match(text),
            // Unreachable for a pattern regex_lite accepted (the tests build every one).
            None => lite.is_match(&String::from_utf8_lossy(text)),
        }
    }

    /// The first of `texts` the two engines disagree on; why, if one cannot be built.
    #[cfg(test)]
    pub(crate) fn disagreement<'a>(&self, texts: &[&'a str]) -> Result<Option<&'a str>, String> {
        let full = self.full_builder().build().map_err(|e| e.to_string())?;
        let lite = self.lite().as_ref().map_err(Clone::clone)?;
        let differ = |t: &&&str| full.is_match(t.as_bytes()) != lite.is_match(t);
        Ok(texts.iter().find(differ).copied())
    }

    fn full_builder(&self) -> RegexBuilder {
        let mut builder = RegexBuilder::new(&self.pattern);
        builder.unicode(false);
        builder
    }
}

impl TextTest {
    /// The regex of a `#match?` or `#normalized-match?`.
    pub(crate) fn regex(&self) -> Option<&MatchRegex> {
        match self {
            TextTest::Matches(regex) | TextTest::NormalizedMatches(regex) => Some(regex),
            _ => None,
        }
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

/// Node type and field names resolved against a grammar, remembered: tree-sitter looks a name
/// up by comparing it with every symbol's, and rules use the same few names many times.
pub(crate) struct Resolver<'l> {
    language: &'l Language,
    kinds: HashMap<(String, bool), u16>,
    fields: HashMap<String, Option<NonZeroU16>>,
    regexes: Build,
}

/// When a `#match?` regex is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// With its query, which checks it: rules from a file the tests have not seen.
    Now,
    /// On its first evaluation: the builtin rules, whose regexes the tests build.
    OnFirstUse,
}

impl<'l> Resolver<'l> {
    /// Builds each regex with its query.
    #[cfg(test)]
    pub(crate) fn new(language: &'l Language) -> Resolver<'l> {
        Resolver::with_regexes(language, Build::Now)
    }

    pub(crate) fn with_regexes(language: &'l Language, regexes: Build) -> Resolver<'l> {
        Resolver {
            language,
            kinds: HashMap::new(),
            fields: HashMap::new(),
            regexes,
        }
    }

    /// The public kind id of node type `name`; 0 if the grammar has none.
    fn kind(&mut self, name: &str, named: bool) -> u16 {
        if let Some(&id) = self.kinds.get(&(name.to_owned(), named)) {
            return id;
        }
        let id = self.language.id_for_node_kind(name, named);
        self.kinds.insert((name.to_owned(), named), id);
        id
    }

    fn field(&mut self, name: &str) -> Option<NonZeroU16> {
        if let Some(&id) = self.fields.get(name) {
            return id;
        }
        let id = self.language.field_id_for_name(name);
        self.fields.insert(name.to_owned(), id);
        id
    }
}

impl Pattern {
    /// Every top-level pattern of the query `text`, resolved by `resolver`.
    pub(crate) fn compile_all(
        text: &str,
        resolver: &mut Resolver<'_>,
    ) -> Result<Vec<Pattern>, QueryError> {
        syntax::read(text)?
            .into_iter()
            .map(|top| {
                let mut names = Vec::new();
                let root = step(&top.expr, resolver, &mut names)?;
                let mut pattern = Pattern {
                    root,
                    predicates_of: Vec::new(),
                    predicates: Vec::new(),
                    capture_names: names,
                };
                for text in &top.predicates {
                    let predicate = predicate(text, &pattern.capture_names, resolver.regexes)?;
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

fn step(
    expr: &Expr,
    resolver: &mut Resolver<'_>,
    names: &mut Vec<String>,
) -> Result<Step, QueryError> {
    let what = match &expr.shape {
        Shape::Node { kind, items } => {
            let kind = match kind {
                None => Kind::AnyNamed,
                Some(name) => match resolver.kind(name, true) {
                    0 => return at(expr.line, format!("no such node type {name:?}")),
                    id => Kind::Named(id),
                },
            };
            What::Node(node_test(kind, items, resolver, names)?)
        }
        Shape::Anonymous(text) => match resolver.kind(text, false) {
            0 => return at(expr.line, format!("no such node type {text:?}")),
            id => What::Node(leaf(Kind::Anonymous(id))),
        },
        Shape::Any => What::Node(leaf(Kind::Any)),
        Shape::Alternation(exprs) => What::Alternation(
            exprs
                .iter()
                .map(|e| step(e, resolver, names))
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
    resolver: &mut Resolver<'_>,
    names: &mut Vec<String>,
) -> Result<NodeTest, QueryError> {
    let mut test = leaf(kind);
    let mut anchor_pending = false;
    for item in items {
        match item {
            Item::Anchor => anchor_pending = true,
            Item::NegatedField(name, line) => {
                test.negated_fields.push(field(resolver, name, *line)?)
            }
            Item::Child { field: name, expr } => {
                let field = match name {
                    Some(name) => Some(field(resolver, name, expr.line)?),
                    None => None,
                };
                test.children.push(Child {
                    field,
                    step: step(expr, resolver, names)?,
                    immediate: std::mem::take(&mut anchor_pending),
                });
            }
        }
    }
    test.anchored_last = anchor_pending && !test.children.is_empty();
    Ok(test)
}

fn field(resolver: &mut Resolver<'_>, name: &str, line: usize) -> Result<NonZeroU16, QueryError> {
    resolver
        .field(name)
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
const PREDICATES: &str =
    "use #eq?, #match?, #normalized-match?, #any-of?, #nfkc-changes? or their negations";

fn predicate(
    text: &PredicateText,
    names: &[String],
    regexes: Build,
) -> Result<Predicate, QueryError> {
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
        ("match?", [Arg::Text(regex)]) => match MatchRegex::new(regex, regexes) {
            Ok(regex) => TextTest::Matches(regex),
            Err(e) => return at(line, format!("bad regex {regex:?}: {e}")),
        },
        ("normalized-match?", [Arg::Text(regex)]) => match MatchRegex::new(regex, regexes) {
            Ok(regex) => TextTest::NormalizedMatches(regex),
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
        ("nfkc-changes?", []) => TextTest::NfkcChanges,
        ("eq?" | "match?" | "normalized-match?" | "any-of?" | "nfkc-changes?", _) => {
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
