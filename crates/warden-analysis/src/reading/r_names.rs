//! R's names as R reads them. R's parser makes a string in a call's function position a name
//! (`"system"("id")` calls `system`), a backtick-quoted name is the name (`` `system`("id") ``),
//! and both read escapes (`` `\x73ystem` ``, `"\163ystem"`): a hunt ran each of them graded
//! `none`, since the rules read identifiers. Only the tree tells where a string or a name
//! stands, so they are found on it and the text parsed again (`reading.rs`, [`super::parsed`]).
//! Runs in the analysing process, between parses.
//!
//! - A backtick-quoted name, and a string that names a call's function or a namespace
//!   (`"base"::"system"`), whose value is a syntactic name (`system`, `dyn.load`; not a
//!   reserved word such as `if`) is written as that bare name, blanks in place of its quotes
//!   (and of its escapes' extra bytes): a word before or after it stays a word of its own.
//! - Any other string's escapes of a letter, digit, `.` or `_` are translated
//!   (`"/etc/\x73hadow"`), as PHP's are: anything else (a quote, a line break) would change how
//!   the string parses. A raw string (`r"(…)"`) has no escapes.
//!
//! Each reading removes a quote or a backslash, so the readings end.

use tree_sitter::{Node, Tree};

use super::leaves::Leaves;
use super::lengthens_escape;
use crate::deadline::Deadline;

/// Words R's parser reserves: quoted, they are names; bare, syntax.
const RESERVED: &[&str] = &[
    "if",
    "else",
    "repeat",
    "while",
    "function",
    "for",
    "in",
    "next",
    "break",
    "TRUE",
    "FALSE",
    "NULL",
    "Inf",
    "NaN",
    "NA",
    "NA_integer_",
    "NA_real_",
    "NA_character_",
    "NA_complex_",
];

/// The text to parse again, when `code`'s tree holds a quoted name or an escape of a name's
/// character.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.iter().any(|b| matches!(b, b'`' | b'"' | b'\'')) {
        return None;
    }
    let mut read = Vec::with_capacity(code.len());
    let (mut copied, mut changed) = (0, false);
    for leaf in Leaves::of(tree, deadline) {
        let Some((node, replacement)) = reading_of(leaf, code, &read[..], copied) else {
            continue;
        };
        if node.start_byte() < copied {
            continue;
        }
        read.extend_from_slice(&code[copied..node.start_byte()]);
        read.extend_from_slice(&replacement);
        copied = node.end_byte();
        changed = true;
    }
    read.extend_from_slice(&code[copied..]);
    changed.then_some(read)
}

/// The node that `leaf` makes R read otherwise, and what R reads there. `read` is the text so
/// far, up to `copied` in `code`.
fn reading_of<'t>(
    leaf: Node<'t>,
    code: &[u8],
    read: &[u8],
    copied: usize,
) -> Option<(Node<'t>, Vec<u8>)> {
    let text = &code[leaf.start_byte()..leaf.end_byte()];
    match leaf.kind() {
        "identifier" if text.first() == Some(&b'`') => {
            let name = bare_name(text.get(1..text.len().checked_sub(1)?)?)?;
            Some((leaf, blanked(name, text.len())))
        }
        "string_open" => {
            let string = leaf.parent()?;
            let names = string.parent().is_some_and(|p| {
                p.kind() == "namespace_operator"
                    || (p.kind() == "call"
                        && p.child_by_field_name("function").map(|f| f.id()) == Some(string.id()))
            });
            let content = string.child_by_field_name("content")?;
            let value = &code[content.start_byte()..content.end_byte()];
            if matches!(text.first(), Some(b'r' | b'R')) && value.contains(&b'\\') {
                // A raw string's backslashes are themselves.
                return None;
            }
            let name = names.then(|| bare_name(value)).flatten()?;
            Some((string, blanked(name, string.byte_range().len())))
        }
        "escape_sequence" => {
            let c = escaped(text)?;
            let mut before = read.to_vec();
            before.extend_from_slice(&code[copied..leaf.start_byte().max(copied)]);
            (!lengthens_escape(&before, c)).then(|| (leaf, vec![c]))
        }
        _ => None,
    }
}

/// `name` in `len` bytes, blanks where the quotes and the escapes' extra bytes were: the name
/// stays a word of its own (`` else`dyn.load` `` was read `elsedyn.load`, and a hunt called
/// `dyn.load` so, graded `none`; `` for(`i`in x) `` did not parse), and the text its length.
fn blanked(name: Vec<u8>, len: usize) -> Vec<u8> {
    let mut blanked = Vec::with_capacity(len.max(name.len() + 1));
    blanked.push(b' ');
    blanked.extend(name);
    blanked.resize(len.max(blanked.len()), b' ');
    blanked
}

/// `quoted` (a name's or a string's text between its quotes) as a bare name, if its value is
/// one R reads so: ASCII, a letter or a `.` not before a digit first, then letters, digits,
/// `.` and `_`, and no reserved word.
fn bare_name(quoted: &[u8]) -> Option<Vec<u8>> {
    let mut name = Vec::with_capacity(quoted.len());
    let mut i = 0;
    while i < quoted.len() {
        if quoted[i] == b'\\' {
            let len = escape_len(&quoted[i..])?;
            name.push(escaped(&quoted[i..i + len])?);
            i += len;
        } else {
            name.push(quoted[i]);
            i += 1;
        }
    }
    let first_ok = match name.as_slice() {
        [b'.', d, ..] if d.is_ascii_digit() => false,
        [c, ..] => c.is_ascii_alphabetic() || *c == b'.',
        [] => false,
    };
    let rest_ok = name
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_'));
    let reserved = RESERVED.iter().any(|w| w.as_bytes() == name.as_slice())
        || name == b"..."
        || (name.starts_with(b"..") && name[2..].iter().all(u8::is_ascii_digit));
    (first_ok && rest_ok && !reserved).then_some(name)
}

/// The length of the escape at the start of `rest` (a backslash first), as R's lexer reads it.
fn escape_len(rest: &[u8]) -> Option<usize> {
    let digits = |from: usize, max: usize, ok: fn(&u8) -> bool| {
        rest.iter()
            .skip(from)
            .take(max)
            .take_while(|b| ok(b))
            .count()
    };
    match rest.get(1)? {
        b'x' => Some(2 + digits(2, 2, u8::is_ascii_hexdigit)).filter(|&l| l > 2),
        b'0'..=b'7' => Some(1 + digits(1, 3, |b| (b'0'..=b'7').contains(b))),
        b'u' | b'U' if rest.get(2) == Some(&b'{') => {
            let close = rest.iter().position(|&b| b == b'}')?;
            Some(close + 1)
        }
        b'u' => Some(2 + digits(2, 4, u8::is_ascii_hexdigit)).filter(|&l| l > 2),
        b'U' => Some(2 + digits(2, 8, u8::is_ascii_hexdigit)).filter(|&l| l > 2),
        _ => Some(2),
    }
}

/// The character `escape` stands for, when it is a name's (a letter, digit, `.` or `_`):
/// `\xH(H)`, an octal `\N` to `\NNN`, `\uXXXX`, `\u{X…}`, `\UXXXXXXXX`, `\U{X…}`.
fn escaped(escape: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(escape.strip_prefix(b"\\")?).ok()?;
    let (radix, digits) = if let Some(hex) = text.strip_prefix('x') {
        (16, hex)
    } else if let Some(hex) = text.strip_prefix('u').or_else(|| text.strip_prefix('U')) {
        let hex = hex
            .strip_prefix('{')
            .and_then(|h| h.strip_suffix('}'))
            .unwrap_or(hex);
        (16, hex)
    } else {
        (8, text)
    };
    let value = u32::from_str_radix(digits, radix).ok()?;
    u8::try_from(value)
        .ok()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// `code` as R reads it: re-read and parsed again until nothing changes.
    fn r_reads(code: &str) -> String {
        crate::reading::read_until_still(Grammar::R, reread, code).0
    }

    #[test]
    fn quoted_names_and_called_strings_are_names() {
        assert_eq!(r_reads(r#""system"("id")"#), r#" system ("id")"#);
        assert_eq!(r_reads(r#"'\x73ystem'("id")"#), r#" system    ("id")"#);
        assert_eq!(r_reads(r#"`\163ystem`("id")"#), r#" system    ("id")"#);
        assert_eq!(
            r_reads(r#"base::`system`("id")"#),
            r#"base:: system ("id")"#
        );
        assert_eq!(
            r_reads(r#""base"::"system"("id")"#),
            r#" base :: system ("id")"#
        );
        assert_eq!(
            r_reads("do.call(`dyn.load`, list('x.so'))"),
            "do.call( dyn.load , list('x.so'))"
        );
        assert_eq!(
            r_reads(r#"readLines("/etc/\x73h\u0061dow")"#),
            r#"readLines("/etc/shadow")"#
        );
        assert_eq!(
            r_reads("if (FALSE) 0 else`dyn.load`(\"x\"); for(`i`in 1:2) i"),
            "if (FALSE) 0 else dyn.load (\"x\"); for( i in 1:2) i"
        );
    }

    #[test]
    fn other_names_and_strings_stay_as_they_are() {
        for code in [
            "`my var` <- 1; `if`(TRUE, 1, 2); `+`(1, 2); `2x` <- 3; `.2` <- 1",
            r#"print("system"); x <- c("a", "b"); `[`(x, 1)"#,
            r#"r"(\x73ystem)"; "\n\t\"" ; "\1\x32""#,
        ] {
            assert_eq!(r_reads(code), code);
        }
    }
}
