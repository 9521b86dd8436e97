//! A program's text as its language reads it, before the grammar sees it. Some languages
//! translate their source before they tokenize it, and a name spelled through that translation
//! would hide from every rule keyed on it:
//!
//! - Java translates Unicode escapes everywhere (JLS 3.3): `\u0065xec` is `exec`, a `\u000a`
//!   in a `//` comment ends it, a `\u0022` ends a string;
//! - JavaScript reads escapes in names: `\u0065val` and `\u{65}val` are `eval`;
//! - C and C++ splice a line that ends with a backslash to the next before anything else:
//!   `sys\` and `tem("id")` on the next line call `system`;
//! - tree-sitter-bash reads a line that starts with a backslash (`\eval "$c"`, the usual way
//!   to skip an alias) as one more argument of the line before, where the shell runs `eval`,
//!   and misreads the line of a here-document (`heredocs.rs`);
//! - Python, C, C++, Java and JavaScript end a line at a lone carriage return (CPython's
//!   universal newlines, GCC's and javac's line terminators, ECMA-262's), so `# x\r` ends a
//!   comment there; the grammars of the first four kept the comment going to the next `\n`.
//!   Go, Rust, Ruby and bash continue a comment over it, as their grammars do; R's grammar
//!   ends one there as `source()` does (`Rscript FILE` does not: the grammar sees more).
//!
//! A source that names its encoding (`cookies.rs`) is read only when the codec leaves its ASCII
//! bytes as they are. Where only the tree tells code from a string or a comment (JavaScript's
//! HTML-like comments and line continuations, `javascript_tree.rs`; PHP's escapes in
//! double-quoted strings and heredocs, `php_strings.rs`; R's quoted names, `r_names.rs`; a
//! quoted piece of a bash glob pattern, `glob_quotes.rs`; a bash command named by quoted
//! pieces only, `quoted_names.rs`; the options between a bash wrapper and the command it runs,
//! `wrapper_options.rs`; a bash line continuation inside a word or an operator,
//! `line_continuations.rs`; bash's `<>`, `read_write_redirections.rs`; `\(` in a `[` test,
//! `test_parentheses.rs`; Rust's `concat!` of literals and Python's concatenations of string
//! literals, `concatenations.rs`; blanks and comments around the separators of a qualified name in
//! Java, C++, Rust, PHP, Python and Ruby, `qualified_names.rs`), the text is read again from the tree
//! and parsed again ([`parsed`]).
//!
//! The rules see the translated text: findings' lines are of it, and their excerpts too where
//! it is not as long as the written text (`matching::Texts`). Lines stay where
//! they were, except after a Java escape that makes a line break, or a lone carriage return,
//! which counts as the line break it is (hostile code only).

mod concatenations;
mod cookies;
mod glob_quotes;
mod heredocs;
mod javascript_tree;
mod leaves;
mod line_continuations;
mod php_strings;
mod qualified_names;
mod quoted_names;
mod r_names;
mod read_write_redirections;
mod test_parentheses;
mod wrapper_options;

use std::borrow::Cow;

use tree_sitter::Tree;

use crate::deadline::Deadline;
use crate::parse::{self, ParseFailure};
use crate::Grammar;

/// Why the analysis cannot read a file as its language reads it.
#[derive(Debug)]
pub(crate) struct Unread {
    pub(crate) why: String,
    /// Where the text that the language reads (and, in bash, runs) before the trouble ends,
    /// if some does: the start of the line of a bash here-document that cannot be read. None
    /// where the trouble is the whole file's (an encoding not decoded).
    pub(crate) readable_before: Option<usize>,
}

/// `code` as `grammar`'s language reads it, or why the analysis cannot read it so.
pub(crate) fn as_read(grammar: Grammar, code: &[u8]) -> Result<Cow<'_, [u8]>, Unread> {
    if let Some(why) = cookies::undecoded(grammar, code) {
        return Err(Unread {
            why,
            readable_before: None,
        });
    }
    if grammar == Grammar::Bash {
        // Here-documents first: their delimiters are read with their backslashes.
        let read = heredocs::as_read(code).map_err(|(why, before)| Unread {
            why,
            readable_before: Some(before),
        })?;
        return Ok(then(read, bash_line_start_escapes));
    }
    Ok(translated(grammar, code))
}

/// `code`, read by [`as_read`], parsed; parsed again, and returned as read again, while its tree
/// shows text the language reads otherwise. Each reading turns a `<` or a `-` into a `/`,
/// removes a backslash or two quotes, or moves a bash line continuation to the right, so the
/// readings end; the deadline bounds their parses.
pub(crate) fn parsed(
    grammar: Grammar,
    mut code: Cow<'_, [u8]>,
    deadline: Deadline,
) -> Result<(Cow<'_, [u8]>, Tree), ParseFailure> {
    loop {
        let tree = parse::parse(&grammar.language(), &code, deadline)?;
        let again = match grammar {
            Grammar::Javascript => javascript_tree::reread(&tree, &code, deadline),
            Grammar::Php => php_strings::reread(&tree, &code, deadline)
                .or_else(|| qualified_names::reread(grammar, &tree, &code, deadline)),
            Grammar::R => r_names::reread(&tree, &code, deadline),
            Grammar::Bash => line_continuations::reread_operators(&tree, &code, deadline)
                .or_else(|| line_continuations::reread(&tree, &code, deadline))
                .or_else(|| read_write_redirections::reread(&tree, &code, deadline))
                .or_else(|| test_parentheses::reread(&tree, &code, deadline))
                .or_else(|| glob_quotes::reread(&tree, &code, deadline))
                .or_else(|| quoted_names::reread(&tree, &code, deadline))
                .or_else(|| wrapper_options::reread(&tree, &code, deadline)),
            Grammar::Rust | Grammar::Python => {
                concatenations::reread(grammar, &tree, &code, deadline)
                    .or_else(|| qualified_names::reread(grammar, &tree, &code, deadline))
            }
            _ => qualified_names::reread(grammar, &tree, &code, deadline),
        };
        match again {
            Some(read) => code = Cow::Owned(read),
            None => return Ok((code, tree)),
        }
    }
}

/// `code` re-read by `reread` and parsed again with `grammar` until nothing changes, and how
/// many times it was read again: what the readings' unit tests compare.
#[cfg(test)]
pub(crate) fn read_until_still(
    grammar: Grammar,
    reread: fn(&Tree, &[u8], Deadline) -> Option<Vec<u8>>,
    code: &str,
) -> (String, usize) {
    let deadline = Deadline::after(std::time::Duration::from_secs(60));
    let language = grammar.language();
    let mut code = code.as_bytes().to_vec();
    for passes in 0.. {
        let tree = parse::parse(&language, &code, deadline).expect("parsed");
        match reread(&tree, &code, deadline) {
            Some(read) => code = read,
            None => return (String::from_utf8(code).expect("utf-8"), passes),
        }
    }
    unreachable!("the passes end")
}

/// Whether `c`, a translated escape written after `read`, would make an escape that `read`
/// ends with (left as it was: `\1`, `\x4`, `\u12`, or a `\x` that is no escape alone) a
/// longer one: `"\1\x32"` is a byte 1 and a `2`, not `\12`. A `\u` without braces is no
/// escape in PHP: one left before a hex digit stays too, which only keeps the text as it was.
fn lengthens_escape(read: &[u8], c: u8) -> bool {
    let tail_start = read.len().saturating_sub(9);
    let Some(backslash) = read[tail_start..]
        .iter()
        .rposition(|&b| b == b'\\')
        .map(|i| tail_start + i)
    else {
        return false;
    };
    let before = read[..backslash]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    if before % 2 == 1 {
        // An escaped backslash: `\\` then the rest, which starts no escape.
        return false;
    }
    let (kind, digits) = match read[backslash + 1..].split_first() {
        None => return true,
        Some((kind, digits)) => (*kind, digits),
    };
    let octal = |b: &u8| (b'0'..=b'7').contains(b);
    let hex_run = |max: usize| {
        digits.len() < max && digits.iter().all(u8::is_ascii_hexdigit) && c.is_ascii_hexdigit()
    };
    match kind {
        b'x' => hex_run(2),
        b'u' => hex_run(4),
        b'U' => hex_run(8),
        b'0'..=b'7' => digits.len() < 2 && digits.iter().all(octal) && octal(&c),
        _ => false,
    }
}

fn translated(grammar: Grammar, code: &[u8]) -> Cow<'_, [u8]> {
    match grammar {
        // Line breaks first: a backslash before a lone carriage return splices too.
        Grammar::C | Grammar::Cpp => then(lone_carriage_returns(code), c_line_splices),
        // Escapes first: `\u000d` is a carriage return, which then ends the line.
        Grammar::Java => then(unicode_escapes(code, Escapes::Java), lone_carriage_returns),
        Grammar::Javascript => then(lone_carriage_returns(code), |code| {
            unicode_escapes(code, Escapes::Javascript)
        }),
        Grammar::Python => lone_carriage_returns(code),
        _ => Cow::Borrowed(code),
    }
}

/// `step` applied to what an earlier step read.
fn then<'a>(read: Cow<'a, [u8]>, step: impl FnOnce(&[u8]) -> Cow<'_, [u8]>) -> Cow<'a, [u8]> {
    match read {
        Cow::Borrowed(code) => step(code),
        Cow::Owned(code) => Cow::Owned(step(&code).into_owned()),
    }
}

/// Each carriage return not followed by a line feed becomes a line feed: offsets do not move.
fn lone_carriage_returns(code: &[u8]) -> Cow<'_, [u8]> {
    let lone = |i: usize| code[i] == b'\r' && code.get(i + 1) != Some(&b'\n');
    if !(0..code.len()).any(lone) {
        return Cow::Borrowed(code);
    }
    let mut read = code.to_vec();
    for (i, byte) in read.iter_mut().enumerate() {
        if lone(i) {
            *byte = b'\n';
        }
    }
    Cow::Owned(read)
}

/// A backslash that starts a line before a letter becomes a space: offsets and lines do not
/// move, and the grammar reads the command the shell runs.
fn bash_line_start_escapes(code: &[u8]) -> Cow<'_, [u8]> {
    let line_start_escape = |i: usize| {
        code[i] == b'\\'
            && (i == 0 || code[i - 1] == b'\n')
            && code
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    };
    if !(0..code.len()).any(line_start_escape) {
        return Cow::Borrowed(code);
    }
    let mut read = code.to_vec();
    for (i, byte) in read.iter_mut().enumerate() {
        if line_start_escape(i) {
            *byte = b' ';
        }
    }
    Cow::Owned(read)
}

/// The length of a line splice at the start of `rest`: a backslash, blanks (which GCC and Clang
/// accept, with a warning), and a line break.
fn splice_len(rest: &[u8]) -> Option<usize> {
    if rest.first() != Some(&b'\\') {
        return None;
    }
    let blanks = rest[1..]
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\x0b' | b'\x0c'))
        .count();
    match &rest[1 + blanks..] {
        [b'\n', ..] => Some(2 + blanks),
        [b'\r', b'\n', ..] => Some(3 + blanks),
        _ => None,
    }
}

/// Every splice removed, and its line break put back after the end of the logical line it
/// made, so that every later line stays where it was.
fn c_line_splices(code: &[u8]) -> Cow<'_, [u8]> {
    if !(0..code.len()).any(|i| splice_len(&code[i..]).is_some()) {
        return Cow::Borrowed(code);
    }
    let (mut read, mut i, mut pending) = (Vec::with_capacity(code.len()), 0, 0);
    while i < code.len() {
        if let Some(len) = splice_len(&code[i..]) {
            i += len;
            pending += 1;
            continue;
        }
        read.push(code[i]);
        if code[i] == b'\n' {
            read.extend(std::iter::repeat_n(b'\n', pending));
            pending = 0;
        }
        i += 1;
    }
    read.extend(std::iter::repeat_n(b'\n', pending));
    Cow::Owned(read)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// `\u` (one `u` or more) and four hex digits, everywhere, UTF-16 pairs combined.
    Java,
    /// `\uXXXX` and `\u{X…}`, and a string's `\xHH` and octal `\NNN`, translated when they
    /// stand for an ASCII letter, digit or `_` (a name's; in a string they stand for the same
    /// character either way: `require("\x63hild_process")`).
    Javascript,
}

/// The escape at the start of `rest` (which starts after the backslash): the code unit or
/// point and its length.
fn escape_at(rest: &[u8], escapes: Escapes) -> Option<(u32, usize)> {
    let hex = |digits: &[u8]| {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| u32::from_str_radix(d, 16).ok())
    };
    if escapes == Escapes::Javascript {
        if let Some(found) = javascript_string_escape(rest) {
            return Some(found);
        }
    }
    let us = rest.iter().take_while(|&&b| b == b'u').count();
    if us == 0 || (escapes == Escapes::Javascript && us > 1) {
        return None;
    }
    let after = &rest[us..];
    if escapes == Escapes::Javascript && after.first() == Some(&b'{') {
        let digits = after[1..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits == 0 || digits > 8 || after.get(1 + digits) != Some(&b'}') {
            return None;
        }
        return hex(&after[1..1 + digits]).map(|v| (v, us + digits + 2));
    }
    let digits = after.get(..4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    hex(digits).map(|v| (v, us + 4))
}

/// A string's `\xHH` or octal escape (`\143`, at most `\377`) at the start of `rest`. Outside
/// a string, JavaScript has neither: translated there, they make a name the program cannot
/// run, which only adds findings.
fn javascript_string_escape(rest: &[u8]) -> Option<(u32, usize)> {
    // A letter that starts no escape stands for itself in a string (`"\child_process"`).
    if let Some(&b) = rest
        .first()
        .filter(|b| (b.is_ascii_alphabetic() || **b == b'_') && !b"bfnrtvxu".contains(b))
    {
        return Some((u32::from(b), 1));
    }
    if rest.first() == Some(&b'x') {
        let digits = rest.get(1..3)?;
        let digits = std::str::from_utf8(digits).ok()?;
        return u32::from_str_radix(digits, 16).ok().map(|v| (v, 3));
    }
    let mut len = rest
        .iter()
        .take(3)
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    if len == 3 && rest[0] > b'3' {
        len = 2;
    }
    let digits = std::str::from_utf8(&rest[..len]).ok()?;
    u32::from_str_radix(digits, 8).ok().map(|v| (v, len))
}

/// The Unicode escapes of `code` translated (a backslash starts one only after an even number
/// of backslashes, as both languages read it).
fn unicode_escapes(code: &[u8], escapes: Escapes) -> Cow<'_, [u8]> {
    let eligible = |w: &[u8]| {
        w[0] == b'\\'
            && (w[1] == b'u'
                || (escapes == Escapes::Javascript
                    && (w[1].is_ascii_alphanumeric() || w[1] == b'_')))
    };
    if !code.windows(2).any(eligible) {
        return Cow::Borrowed(code);
    }
    let mut read = Vec::with_capacity(code.len());
    let (mut i, mut backslashes, mut translated) = (0, 0usize, false);
    while i < code.len() {
        let byte = code[i];
        if byte != b'\\' || backslashes % 2 == 1 {
            backslashes = if byte == b'\\' { backslashes + 1 } else { 0 };
            read.push(byte);
            i += 1;
            continue;
        }
        let Some((mut unit, mut len)) = escape_at(&code[i + 1..], escapes) else {
            backslashes += 1;
            read.push(byte);
            i += 1;
            continue;
        };
        if escapes == Escapes::Java && (0xD800..0xDC00).contains(&unit) {
            // A high surrogate, and its low one if it follows as an escape.
            let low = (code.get(i + 1 + len) == Some(&b'\\'))
                .then(|| escape_at(&code[i + 2 + len..], escapes))
                .flatten()
                .filter(|(low, _)| (0xDC00..0xE000).contains(low));
            if let Some((low, low_len)) = low {
                unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                len += 1 + low_len;
            }
        }
        let c = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
        if escapes == Escapes::Javascript && !(c.is_ascii_alphanumeric() || c == '_') {
            backslashes += 1;
            read.push(byte);
            i += 1;
            continue;
        }
        let mut utf8 = [0; 4];
        read.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        translated = true;
        backslashes = 0;
        i += 1 + len;
    }
    if translated {
        Cow::Owned(read)
    } else {
        Cow::Borrowed(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(grammar: Grammar, code: &str) -> String {
        let read = as_read(grammar, code.as_bytes()).expect("readable");
        String::from_utf8(read.into_owned()).expect("utf-8")
    }

    #[test]
    fn java_translates_every_eligible_unicode_escape() {
        let java = |code| read(Grammar::Java, code);
        assert_eq!(java(r"r.\u0065xec(c)"), "r.exec(c)");
        assert_eq!(java(r"r.\uuu0065xec(c)"), "r.exec(c)");
        assert_eq!(java("// a \\u000a run();"), "// a \n run();");
        assert_eq!(java(r#""\u0022 + x + \u0022""#), r#""" + x + """#);
        assert_eq!(java(r"caf\u00e9"), "café");
        assert_eq!(java(r"\ud83d\ude00"), "😀");
        assert_eq!(java(r"\ud83d x"), "\u{fffd} x");
        // After an odd number of backslashes, a backslash is not eligible.
        assert_eq!(java(r#""\\u0065""#), r#""\\u0065""#);
        assert_eq!(java(r#""\\\u0065""#), r#""\\e""#);
        // A translated backslash does not start another escape (JLS 3.3).
        assert_eq!(java(r"\u005cu0065"), r"\u0065");
        assert_eq!(java(r"\u00zz and \u12"), r"\u00zz and \u12");
        assert!(matches!(
            translated(Grammar::Java, b"class A {}"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn javascript_translates_escapes_of_name_characters_only() {
        let js = |code| read(Grammar::Javascript, code);
        assert_eq!(js(r#"\u0065val("1")"#), r#"eval("1")"#);
        assert_eq!(js(r#"\u{65}v\u{000061}l("1")"#), r#"eval("1")"#);
        // A quote, a dollar or a line break keeps its escape: translated, it would end a
        // string or open a template's placeholder that the program does not have.
        assert_eq!(
            js(r#""\u0022" `\u0024{x}` "\u000a""#),
            r#""\u0022" `\u0024{x}` "\u000a""#
        );
        assert_eq!(js(r#""\\u0065""#), r#""\\u0065""#);
        assert_eq!(js(r"\uu0065 \u{} \u{110000}"), r"\uu0065 \u{} \u{110000}");
        assert_eq!(
            js(r#""\x63h\151ld" "\x0a\0\12\x4""#),
            r#""child" "\x0a\0\12\x4""#
        );
        assert_eq!(js(r#""\1011""#), r#""A1""#);
        // Regression hunt: a letter that starts no escape is itself.
        assert_eq!(
            js(r#""\child_pro\cess" "\n\t\b""#),
            r#""child_process" "\n\t\b""#
        );
    }

    #[test]
    fn c_splices_lines_and_keeps_later_lines_in_place() {
        let c = |code| read(Grammar::C, code);
        assert_eq!(c("sys\\\ntem(\"id\");\nx;\n"), "system(\"id\");\n\nx;\n");
        assert_eq!(c("sys\\  \r\ntem();"), "system();\n");
        assert_eq!(c("a \\ b\n"), "a \\ b\n");
        assert_eq!(read(Grammar::Cpp, "s\\\ny\\\ns\n"), "sys\n\n\n");
    }

    #[test]
    fn a_lone_carriage_return_is_a_line_break_where_the_language_says_so() {
        for grammar in [
            Grammar::Python,
            Grammar::C,
            Grammar::Cpp,
            Grammar::Java,
            Grammar::Javascript,
        ] {
            assert_eq!(
                read(grammar, "# a\rb\r\nc\r"),
                "# a\nb\r\nc\n",
                "{grammar:?}"
            );
        }
        for grammar in [
            Grammar::Go,
            Grammar::Rust,
            Grammar::Ruby,
            Grammar::Bash,
            Grammar::R,
        ] {
            assert_eq!(read(grammar, "# a\rb"), "# a\rb", "{grammar:?}");
        }
        assert_eq!(read(Grammar::C, "sys\\\rtem();"), "system();\n");
        assert_eq!(read(Grammar::Java, "// a \\u000d run();"), "// a \n run();");
        assert!(matches!(
            translated(Grammar::Python, b"x = 1\r\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bash_reads_a_line_start_backslash_as_the_shell_does() {
        assert_eq!(read(Grammar::Bash, "x\n\\eval \"$c\""), "x\n eval \"$c\"");
        assert_eq!(read(Grammar::Bash, "echo \\$x"), "echo \\$x");
    }
}
