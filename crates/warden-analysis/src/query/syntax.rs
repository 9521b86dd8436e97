//! Reading a rule's query text: tree-sitter's query language
//! (<https://tree-sitter.github.io/tree-sitter/using-parsers/queries>), the subset rules use,
//! into an untyped syntax tree. Names are resolved against a grammar later (`query.rs`).
//!
//! Supported: node patterns `(kind child...)`, the wildcards `(_)` and `_`, anonymous nodes
//! `"text"`, alternations `[...]`, fields `name: pattern`, negated fields `!name`, the anchor
//! `.`, captures `@name`, predicates `(#op? arg...)` anywhere in a pattern, a parenthesised
//! pattern with its predicates `((call) @c (#eq? @c "x"))`, and `;` comments. Quantifiers
//! (`*`, `+`, `?`) and sibling sequences are refused with a message, never ignored.

/// A pattern as written, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    pub(crate) shape: Shape,
    /// The captures written after it.
    pub(crate) captures: Vec<String>,
    /// Its line in the query text, counted from 0.
    pub(crate) line: usize,
}

/// What an `Expr` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `(kind ...)`; `(_ ...)` has `kind == None`: any named node.
    Node {
        kind: Option<String>,
        items: Vec<Item>,
    },
    /// `"text"`: an anonymous node.
    Anonymous(String),
    /// `_`: any node, named or anonymous.
    Any,
    /// `[a b ...]`: any one of them.
    Alternation(Vec<Expr>),
}

/// What can appear inside a node pattern's parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A child pattern, in a field or not.
    Child { field: Option<String>, expr: Expr },
    /// `!field`: the node has no child in that field.
    NegatedField(String, usize),
    /// `.`: the patterns on either side match adjacent named children (or the first or last).
    Anchor,
}

/// A predicate as written, `(#op? arg...)`: wherever it is written, it applies to the whole
/// top-level pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PredicateText {
    /// `eq?`, `match?`, ... (without the `#`).
    pub(crate) operator: String,
    pub(crate) args: Vec<Arg>,
    pub(crate) line: usize,
}

/// A predicate's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    /// `@name`.
    Capture(String),
    /// `"text"` (escapes resolved) or a bare word.
    Text(String),
}

/// A top-level pattern and the predicates written around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopLevel {
    pub(crate) expr: Expr,
    pub(crate) predicates: Vec<PredicateText>,
}

/// Why a query cannot be read: what, and on which line (from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) line: usize,
}

/// Reads every top-level pattern of `text`.
pub(crate) fn read(text: &str) -> Result<Vec<TopLevel>, SyntaxError> {
    let mut reader = Reader {
        text,
        pos: 0,
        counted_line: 0,
        counted_to: 0,
    };
    let mut patterns = Vec::new();
    while reader.skip_space().is_some() {
        patterns.push(reader.top_level()?);
    }
    Ok(patterns)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// The line at `counted_to`: lines are counted forward from there, once.
    counted_line: usize,
    counted_to: usize,
}

impl Reader<'_> {
    /// Skips blanks and comments; the next character, if any.
    fn skip_space(&mut self) -> Option<char> {
        loop {
            let c = self.peek()?;
            if c == ';' {
                let rest = &self.text[self.pos..];
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                return Some(c);
            }
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    /// The character after the next one.
    fn peek_second(&self) -> Option<char> {
        self.text[self.pos..].chars().nth(1)
    }

    fn line(&mut self) -> usize {
        if self.pos >= self.counted_to {
            let newlines = self.text.as_bytes()[self.counted_to..self.pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.counted_line += newlines;
            self.counted_to = self.pos;
            return self.counted_line;
        }
        self.text[..self.pos].matches('\n').count()
    }

    fn error<T>(&mut self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            message: message.into(),
            line: self.line(),
        })
    }

    fn expect(&mut self, wanted: char) -> Result<(), SyntaxError> {
        match self.skip_space() {
            Some(c) if c == wanted => {
                self.pos += 1;
                Ok(())
            }
            Some(c) => self.error(format!("expected {wanted:?}, found {c:?}")),
            None => self.error(format!("expected {wanted:?}, found the end")),
        }
    }

    /// A pattern at the top level: an expression, or a parenthesised expression followed by
    /// predicates, `((call) @c (#eq? @c "x"))`.
    fn top_level(&mut self) -> Result<TopLevel, SyntaxError> {
        let opens_group =
            self.peek() == Some('(') && matches!(self.after_paren(), Some('(' | '[' | '"'));
        if !opens_group {
            let mut predicates = Vec::new();
            let expr = self.expr(&mut predicates)?;
            return Ok(TopLevel { expr, predicates });
        }
        self.pos += 1;
        let mut predicates = Vec::new();
        let mut exprs = Vec::new();
        loop {
            match self.skip_space() {
                Some(')') => break,
                Some('(') if self.after_paren() == Some('#') => {
                    predicates.push(self.predicate()?);
                }
                Some(_) => exprs.push(self.expr(&mut predicates)?),
                None => return self.error("unclosed '('"),
            }
        }
        self.pos += 1;
        let mut captures = self.captures()?;
        let Ok([mut expr]) = <[Expr; 1]>::try_from(exprs) else {
            return self.error(
                "a group must hold exactly one pattern (sibling sequences are not supported)",
            );
        };
        expr.captures.append(&mut captures);
        Ok(TopLevel { expr, predicates })
    }

    /// The first non-blank character after the `(` at the current position.
    fn after_paren(&self) -> Option<char> {
        self.text[self.pos + 1..]
            .chars()
            .find(|c| !c.is_whitespace())
    }

    /// One pattern and its captures; predicates found inside go to `predicates`.
    fn expr(&mut self, predicates: &mut Vec<PredicateText>) -> Result<Expr, SyntaxError> {
        let line = self.line();
        let shape = match self.skip_space() {
            Some('(') => self.node(predicates)?,
            Some('[') => {
                self.pos += 1;
                let mut alternatives = Vec::new();
                while self.skip_space() != Some(']') {
                    if self.skip_space().is_none() {
                        return self.error("unclosed '['");
                    }
                    alternatives.push(self.expr(predicates)?);
                }
                self.pos += 1;
                if alternatives.is_empty() {
                    return self.error("an empty alternation");
                }
                Shape::Alternation(alternatives)
            }
            Some('"') => Shape::Anonymous(self.string()?),
            Some('_') if !self.peek_second().is_some_and(is_name_char) => {
                self.pos += 1;
                Shape::Any
            }
            Some(c) => return self.error(format!("expected a pattern, found {c:?}")),
            None => return self.error("expected a pattern, found the end"),
        };
        let captures = self.captures()?;
        Ok(Expr {
            shape,
            captures,
            line,
        })
    }

    /// `(kind item...)` or `(_ item...)`, the `(` being next.
    fn node(&mut self, predicates: &mut Vec<PredicateText>) -> Result<Shape, SyntaxError> {
        self.pos += 1;
        self.skip_space();
        let name = self.name();
        let kind = match name.as_str() {
            "" => return self.error("expected a node type after '('"),
            "_" => None,
            _ => Some(name),
        };
        if self.peek() == Some('/') {
            return self.error("supertype patterns are not supported");
        }
        let mut items = Vec::new();
        loop {
            match self.skip_space() {
                Some(')') => break,
                Some('.') => {
                    self.pos += 1;
                    items.push(Item::Anchor);
                }
                Some('!') => {
                    self.pos += 1;
                    let line = self.line();
                    let field = self.name();
                    if field.is_empty() {
                        return self.error("expected a field name after '!'");
                    }
                    items.push(Item::NegatedField(field, line));
                }
                Some('(') if self.after_paren() == Some('#') => {
                    predicates.push(self.predicate()?);
                }
                Some(c) if is_name_char(c) && c != '_' || self.is_field_ahead() => {
                    let field = self.name();
                    self.expect(':')?;
                    let expr = self.expr(predicates)?;
                    items.push(Item::Child {
                        field: Some(field),
                        expr,
                    });
                }
                Some(_) => {
                    let expr = self.expr(predicates)?;
                    items.push(Item::Child { field: None, expr });
                }
                None => return self.error("unclosed '('"),
            }
        }
        self.pos += 1;
        Ok(Shape::Node { kind, items })
    }

    /// Whether a `name:` starts here (field names may start with `_`).
    fn is_field_ahead(&self) -> bool {
        let rest = &self.text[self.pos..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        end > 0 && rest[end..].trim_start().starts_with(':')
    }

    /// A run of name characters (possibly empty).
    fn name(&mut self) -> String {
        let rest = &self.text[self.pos..];
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_owned()
    }

    /// `"..."`, the `"` being next, with tree-sitter's escapes: `\n`, `\r`, `\t`, `\0`, and a
    /// backslash before any other character stands for that character.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, '0')) => out.push('\0'),
                    Some((_, other)) => out.push(other),
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.error("unterminated string")
    }

    /// Captures `@name` and refused quantifiers after a pattern.
    fn captures(&mut self) -> Result<Vec<String>, SyntaxError> {
        let mut captures = Vec::new();
        loop {
            match self.skip_space() {
                Some('@') => {
                    self.pos += 1;
                    let name = self.name();
                    if name.is_empty() {
                        return self.error("expected a capture name after '@'");
                    }
                    captures.push(name);
                }
                Some('*' | '+' | '?') => {
                    return self.error("quantifiers (*, +, ?) are not supported");
                }
                _ => return Ok(captures),
            }
        }
    }

    /// `(#op? arg...)`, the `(` being next.
    fn predicate(&mut self) -> Result<PredicateText, SyntaxError> {
        let line = self.line();
        self.expect('(')?;
        self.expect('#')?;
        let operator = self.name_with('?');
        if operator.is_empty() {
            return self.error("expected a predicate name after '#'");
        }
        let mut args = Vec::new();
        loop {
            match self.skip_space() {
                Some(')') => break,
                Some('@') => {
                    self.pos += 1;
                    args.push(Arg::Capture(self.name()));
                }
                Some('"') => args.push(Arg::Text(self.string()?)),
                Some(c) if is_name_char(c) => args.push(Arg::Text(self.name())),
                Some(c) => return self.error(format!("unexpected {c:?} in a predicate")),
                None => return self.error("unclosed predicate"),
            }
        }
        self.pos += 1;
        Ok(PredicateText {
            operator,
            args,
            line,
        })
    }

    /// A name that may also contain `extra` (`eq?`, `not-match?`).
    fn name_with(&mut self, extra: char) -> String {
        let rest = &self.text[self.pos..];
        let end = rest
            .find(|c: char| !is_name_char(c) && c != extra)
            .unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_owned()
    }
}

/// Characters of node, field and capture names.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: &str, items: Vec<Item>, line: usize) -> Expr {
        Expr {
            shape: Shape::Node {
                kind: Some(kind.into()),
                items,
            },
            captures: Vec::new(),
            line,
        }
    }

    #[test]
    fn a_grouped_pattern_with_fields_captures_and_predicates() {
        let read = read(
            "; comment\n((call function: (identifier) @f !arguments) @finding\n (#eq? @f \"a\\\\.b\"))",
        )
        .expect("reads");
        let mut identifier = node("identifier", vec![], 1);
        identifier.captures = vec!["f".into()];
        let mut call = node(
            "call",
            vec![
                Item::Child {
                    field: Some("function".into()),
                    expr: identifier,
                },
                Item::NegatedField("arguments".into(), 1),
            ],
            1,
        );
        call.captures = vec!["finding".into()];
        let predicate = PredicateText {
            operator: "eq?".into(),
            args: vec![Arg::Capture("f".into()), Arg::Text("a\\.b".into())],
            line: 2,
        };
        assert_eq!(
            read,
            vec![TopLevel {
                expr: call,
                predicates: vec![predicate]
            }]
        );
    }

    #[test]
    fn wildcards_anchors_anonymous_nodes_and_alternations() {
        let read = read("(_ (command) @x . \"&\") [(a) _] @y").expect("reads");
        assert_eq!(read.len(), 2);
        let Shape::Node { kind: None, items } = &read[0].expr.shape else {
            panic!("a wildcard node: {read:?}");
        };
        assert!(matches!(items[1], Item::Anchor));
        assert!(
            matches!(&items[2], Item::Child { expr, .. } if expr.shape == Shape::Anonymous("&".into()))
        );
        let Shape::Alternation(alternatives) = &read[1].expr.shape else {
            panic!("an alternation: {read:?}");
        };
        assert_eq!(alternatives[1].shape, Shape::Any);
        assert_eq!(read[1].expr.captures, ["y"]);
    }

    #[test]
    fn unsupported_and_malformed_queries_are_refused_with_their_line() {
        let error = |text: &str| read(text).expect_err(text);
        assert!(error("(a (b)*)").message.contains("quantifiers"));
        assert!(error("((a) (b))").message.contains("sibling sequences"));
        assert!(error("(expression/identifier)")
            .message
            .contains("supertype"));
        assert_eq!(error("(a)\n(b\n").line, 2);
        assert!(error("(a (#eq? @x \"y)").message.contains("unterminated"));
        assert!(error("[]").message.contains("empty alternation"));
        assert!(error("@x").message.contains("expected a pattern"));
    }
}
