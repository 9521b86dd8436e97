//! Strings joined from literal pieces, as the language joins them: Rust's `concat!` of literals
//! (`include_str!(concat!("/etc/", "shadow"))`, which the compiler reads as
//! `include_str!("/etc/shadow")`) and Python's `+` of string literals and implicit concatenation
//! (`open("/et" + "c/shadow")`, `open("/etc" "/shadow")`), and an f-string whose every
//! replacement field is a string literal (`f"/etc/{'shadow'}"`), were graded by their pieces, and the
//! rules that read a path or a secret's name read one literal: a hunt read `/etc/shadow` so,
//! graded `medium` where the literal is `high`. Found on the tree, such a concatenation is
//! written as the one literal it makes, in place: the literal, then the line breaks between
//! its pieces (a Python line continuation with its backslash), then blanks, so that no line
//! after it moves. Runs in the analysing process, between parses (`reading.rs`,
//! [`super::parsed`]).
//!
//! Only what joins as written is joined: a Rust piece that is a string (not a byte string), a
//! raw string with no backslash or quote, a character or a decimal integer; Python strings
//! with no replacement field but a string literal (an f-string's other braces are refused: a
//! conversion, a format spec, `{{`), no triple quotes, text and bytes
//! apart, raw and escaped pieces together only where no backslash tells them apart, and only
//! where one quote is held by no piece quoted with the other. Anything else
//! (`concat!(env!("HOME"), "/x")`, `"/etc/" + name`) is left to the rules that read the
//! pieces. Each reading removes a `concat!`, an operator between two strings or a replacement
//! field, so the readings end.

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};
use crate::Grammar;

/// The text to parse again, when `code`'s tree holds a concatenation of literals.
pub(crate) fn reread(
    grammar: Grammar,
    tree: &Tree,
    code: &[u8],
    deadline: Deadline,
) -> Option<Vec<u8>> {
    let joined: fn(Node<'_>, &[u8]) -> Option<Joined> = match grammar {
        Grammar::Rust if contains(code, b"concat") => rust_concat,
        Grammar::Python => python_concatenation,
        _ => return None,
    };
    let mut read: Option<Vec<u8>> = None;
    // What was read before the deadline is read again all the same.
    deadline::walk(tree, deadline, |node| {
        match joined(node, code).and_then(|j| in_place(code, j)) {
            Some((range, text)) => {
                read.get_or_insert_with(|| code.to_vec())[range].copy_from_slice(&text);
                false
            }
            None => true,
        }
    });
    read
}

/// A concatenation found: the bytes it spans, the literal it makes, and the pieces' ranges
/// (what is between them is where its line breaks are).
struct Joined {
    range: std::ops::Range<usize>,
    literal: Vec<u8>,
    pieces: Vec<std::ops::Range<usize>>,
}

fn contains(code: &[u8], word: &[u8]) -> bool {
    code.windows(word.len()).any(|w| w == word)
}

/// What goes in place of `joined`'s range, of its length: the literal, then the line breaks
/// between its pieces, then blanks. The literal is never longer than the pieces it replaces
/// (each piece brings its own quotes), so the line breaks fit; `None` if they did not.
fn in_place(code: &[u8], joined: Joined) -> Option<(std::ops::Range<usize>, Vec<u8>)> {
    let mut breaks = Vec::new();
    let mut at = joined.range.start;
    for gap_end in joined
        .pieces
        .iter()
        .map(|p| p.start)
        .chain([joined.range.end])
    {
        let gap = &code[at..gap_end.max(at)];
        for (i, &b) in gap.iter().enumerate() {
            if b == b'\n' {
                if gap[..i].ends_with(b"\\\r") || gap[..i].ends_with(b"\\") {
                    breaks.push(b'\\');
                }
                if gap[..i].ends_with(b"\r") {
                    breaks.push(b'\r');
                }
                breaks.push(b'\n');
            }
        }
        at = joined
            .pieces
            .iter()
            .find(|p| p.start == gap_end)
            .map_or(gap_end, |p| p.end);
    }
    let mut text = [&joined.literal[..], &breaks[..]].concat();
    let blanks = joined.range.len().checked_sub(text.len())?;
    text.extend(std::iter::repeat_n(b' ', blanks));
    Some((joined.range, text))
}

fn text<'c>(node: Node<'_>, code: &'c [u8]) -> &'c [u8] {
    &code[node.byte_range()]
}

/// Rust: `concat!(…)` (also `std::concat!`, and in another macro's token tree) whose arguments
/// are all literals.
fn rust_concat(node: Node<'_>, code: &[u8]) -> Option<Joined> {
    let (start, arguments) = match node.kind() {
        "macro_invocation" => {
            let name = node.child_by_field_name("macro")?;
            if !is_concat_path(text(name, code)) {
                return None;
            }
            (
                node.start_byte(),
                node.named_child(
                    u32::try_from(node.named_child_count())
                        .ok()?
                        .checked_sub(1)?,
                )?,
            )
        }
        "identifier" if text(node, code) == b"concat" => {
            let parent = node.parent()?;
            if parent.kind() != "token_tree" {
                return None;
            }
            let bang = node.next_sibling()?;
            let arguments = bang.next_sibling()?;
            if bang.kind() != "!" || arguments.kind() != "token_tree" {
                return None;
            }
            (path_start(node, code), arguments)
        }
        _ => return None,
    };
    if arguments.kind() != "token_tree" {
        return None;
    }
    let mut literal = b"\"".to_vec();
    let mut pieces = Vec::new();
    let mut cursor = arguments.walk();
    let children: Vec<Node<'_>> = arguments.children(&mut cursor).collect();
    let mut expect_piece = true;
    for &child in children.get(1..children.len().checked_sub(1)?)? {
        if expect_piece {
            literal.extend_from_slice(&rust_piece(child, code)?);
            pieces.push(child.byte_range());
        } else if child.kind() != "," {
            return None;
        }
        expect_piece = !expect_piece;
    }
    if pieces.is_empty() {
        return None;
    }
    literal.push(b'"');
    Some(Joined {
        range: start..arguments.end_byte(),
        literal,
        pieces,
    })
}

/// Whether a macro's name is `concat`, also by its path (`std::concat`, `::core::concat`).
fn is_concat_path(name: &[u8]) -> bool {
    let name: Vec<u8> = name
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    matches!(
        &name[..],
        b"concat" | b"std::concat" | b"core::concat" | b"::std::concat" | b"::core::concat"
    )
}

/// Where the path of a `concat` in a token tree starts: `std::concat`'s `std`.
fn path_start(concat: Node<'_>, code: &[u8]) -> usize {
    let mut start = concat.start_byte();
    let mut at = concat;
    while let Some(separator) = at.prev_sibling().filter(|s| s.kind() == "::") {
        start = separator.start_byte();
        match separator.prev_sibling() {
            Some(root) if matches!(text(root, code), b"std" | b"core") => {
                start = root.start_byte();
                at = root;
            }
            _ => break,
        }
    }
    start
}

/// The text a Rust literal adds inside a `"…"` string, when `concat!` joins it as written.
fn rust_piece(piece: Node<'_>, code: &[u8]) -> Option<Vec<u8>> {
    let t = text(piece, code);
    match piece.kind() {
        "string_literal" if t.len() >= 2 && t[0] == b'"' => Some(t[1..t.len() - 1].to_vec()),
        "raw_string_literal" => {
            let content = piece
                .named_child(0)
                .filter(|c| c.kind() == "string_content");
            let content = content.map_or(&b""[..], |c| text(c, code));
            (!content.iter().any(|&b| b == b'\\' || b == b'"')).then(|| content.to_vec())
        }
        "char_literal" if t.len() >= 3 && t[0] == b'\'' => match &t[1..t.len() - 1] {
            b"\"" => Some(b"\\\"".to_vec()),
            inner => Some(inner.to_vec()),
        },
        "integer_literal" if t.iter().all(u8::is_ascii_digit) => Some(t.to_vec()),
        _ => None,
    }
}

/// Python: a `+` of string literals (in parentheses too), an implicit concatenation, or an
/// f-string whose every replacement field is a string literal (`f"/etc/{'shadow'}"`).
fn python_concatenation(node: Node<'_>, code: &[u8]) -> Option<Joined> {
    let fields = |n: Node<'_>| {
        let mut cursor = n.walk();
        let found = n.children(&mut cursor).any(|c| c.kind() == "interpolation");
        found
    };
    match node.kind() {
        "binary_operator" | "concatenated_string" => {}
        "string" if fields(node) => {}
        _ => return None,
    }
    let mut strings = Vec::new();
    python_strings(node, &mut strings, 0)?;
    let mut pieces = Vec::new();
    for string in &strings {
        python_pieces(*string, code, &mut pieces)?;
    }
    let bytes = pieces.first()?.bytes;
    if pieces.iter().any(|p| p.bytes != bytes) {
        return None;
    }
    let backslash = |p: &PythonString<'_>| p.content.contains(&b'\\');
    let raw = pieces.iter().any(|p| p.raw && backslash(p));
    if raw && pieces.iter().any(|p| !p.raw && backslash(p)) {
        return None;
    }
    let holds = |quote: u8| {
        pieces
            .iter()
            .any(|p| p.quote != quote && p.content.contains(&quote))
    };
    let quote = [b'"', b'\''].into_iter().find(|&q| !holds(q))?;
    let mut literal = Vec::new();
    if bytes {
        literal.push(b'b');
    }
    if raw {
        literal.push(b'r');
    }
    literal.push(quote);
    for piece in &pieces {
        literal.extend_from_slice(piece.content);
    }
    literal.push(quote);
    Some(Joined {
        range: node.byte_range(),
        literal,
        pieces: strings.iter().map(|s| s.byte_range()).collect(),
    })
}

/// The pieces a string literal joins as: itself, or an f-string's text between its
/// replacement fields and the string literal each field holds.
fn python_pieces<'c>(
    string: Node<'_>,
    code: &'c [u8],
    out: &mut Vec<PythonString<'c>>,
) -> Option<()> {
    let mut cursor = string.walk();
    let children: Vec<Node<'_>> = string.children(&mut cursor).collect();
    let (&first, &last) = (children.first()?, children.last()?);
    let outer = PythonString::delimited(first, last, code)?;
    let fields: Vec<Node<'_>> = children
        .iter()
        .copied()
        .filter(|c| c.kind() == "interpolation")
        .collect();
    if fields.is_empty() {
        out.push(outer.text(first.end_byte()..last.start_byte(), code)?);
        return Some(());
    }
    if !outer.formatted {
        return None;
    }
    let mut at = first.end_byte();
    for field in fields {
        out.push(outer.text(at..field.start_byte(), code)?);
        let mut cursor = field.walk();
        let parts: Vec<Node<'_>> = field.children(&mut cursor).collect();
        let [open, inner, close] = parts[..] else {
            return None;
        };
        if open.kind() != "{" || close.kind() != "}" || inner.kind() != "string" {
            return None;
        }
        let mut cursor = inner.walk();
        let inner_children: Vec<Node<'_>> = inner.children(&mut cursor).collect();
        if inner_children.iter().any(|c| c.kind() == "interpolation") {
            return None;
        }
        let (&start, &end) = (inner_children.first()?, inner_children.last()?);
        let piece = PythonString::delimited(start, end, code)?;
        out.push(piece.text(start.end_byte()..end.start_byte(), code)?);
        at = field.end_byte();
    }
    out.push(outer.text(at..last.start_byte(), code)?);
    Some(())
}

/// The string literals `node` joins, in order, or `None` when it joins anything else.
fn python_strings<'t>(node: Node<'t>, out: &mut Vec<Node<'t>>, depth: usize) -> Option<()> {
    if depth > 64 {
        return None;
    }
    match node.kind() {
        "string" => out.push(node),
        "binary_operator" => {
            if node.child_by_field_name("operator")?.kind() != "+" {
                return None;
            }
            python_strings(node.child_by_field_name("left")?, out, depth + 1)?;
            python_strings(node.child_by_field_name("right")?, out, depth + 1)?;
        }
        "concatenated_string" | "parenthesized_expression" => {
            let mut cursor = node.walk();
            let children: Vec<Node<'t>> = node.named_children(&mut cursor).collect();
            if node.kind() == "parenthesized_expression" && children.len() != 1 {
                return None;
            }
            for child in children {
                if child.kind() == "comment" {
                    continue;
                }
                python_strings(child, out, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// A Python string literal that joins as written, or a piece of one.
struct PythonString<'c> {
    content: &'c [u8],
    quote: u8,
    raw: bool,
    bytes: bool,
    formatted: bool,
}

impl<'c> PythonString<'c> {
    /// A string's quoting, read from its `string_start` and `string_end`: `None` for triple
    /// quotes or a prefix that is not one of Python's.
    fn delimited(first: Node<'_>, last: Node<'_>, code: &[u8]) -> Option<PythonString<'c>> {
        if first.kind() != "string_start" || last.kind() != "string_end" {
            return None;
        }
        let start = text(first, code);
        let quote = *start.last()?;
        let prefix = start[..start.len() - 1].to_ascii_lowercase();
        if start.len() >= 3 && start[start.len() - 3..].iter().all(|&b| b == quote) {
            return None; // triple quotes
        }
        if !prefix.iter().all(|b| b"rubf".contains(b)) {
            return None;
        }
        Some(PythonString {
            content: &[],
            quote,
            raw: prefix.contains(&b'r'),
            bytes: prefix.contains(&b'b'),
            formatted: prefix.contains(&b'f'),
        })
    }

    /// The text in `range` of a string so quoted: an f-string's braces are refused.
    fn text(&self, range: std::ops::Range<usize>, code: &'c [u8]) -> Option<PythonString<'c>> {
        let content = code.get(range)?;
        if self.formatted && content.iter().any(|&b| b == b'{' || b == b'}') {
            return None;
        }
        Some(PythonString { content, ..*self })
    }
}
