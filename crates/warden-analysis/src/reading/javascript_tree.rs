//! Where Node reads a JavaScript source otherwise than tree-sitter-javascript, and only the
//! tree tells where: which `<`, `--` and backslash are code and which sit in a string, a
//! comment or a regular expression. Runs in the analysing process, between parses.
//!
//! - **HTML-like comments** (ECMA-262 Annex B.1.1; V8's scanner): in a script, `<!--`
//!   anywhere in code starts a comment to the end of the line, and so does `-->` when no
//!   token precedes it on its line (a line break before it, in blanks or inside a `/* */`
//!   comment, or the start of the file). The grammar knows both only where a statement or an
//!   operand starts, and read `x = 1 <!-- /*` as `1 < !--` and the start of a block comment:
//!   the next lines, which Node runs, were a comment to the rules (a regression hunt hid
//!   `require("child_process")` so). A module refuses both ("HTML comments are not allowed in
//!   modules"), so a file Node runs reads them as comments.
//! - **Line continuations** (ECMA-262 12.9.4): a backslash before a line break in a string or
//!   a template stands for nothing, so `"child_\` and `process"` on the next line is
//!   `"child_process"`; the grammar reads an escape between two fragments, which no rule keyed
//!   on the module's name matched.
//!
//! Each HTML-like comment the grammar read as code is made a `//` comment of the same length,
//! and the text is parsed again until none is left. After the first one the grammar found,
//! the ones after it go in the same pass while the text between is plain (see
//! [`html_comments_from`]), since there Node's reading needs no tree: one pass per comment made
//! 100 of them in 7 KB take the whole time budget. The tree of the rest is not used, as the
//! first one's line may open there, for the grammar, what Node does not read (`x = <!-- a`
//! then `/ <!-- /` is a regular expression to Node, a division and a comment to the grammar
//! once the first comment is made one). Continuations are removed and their line breaks put
//! back after the string, so that later lines keep their numbers.

use tree_sitter::Tree;

use super::leaves::Leaves;
use crate::deadline::Deadline;

/// The text to parse again, when the tree of `code` shows something Node reads otherwise.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !may_differ(code) {
        return None;
    }
    if let Some(first) = first_html_comment_read_as_code(Leaves::of(tree, deadline), code) {
        let mut read = code.to_vec();
        for at in html_comments_from(code, first) {
            read[at..at + 2].copy_from_slice(b"//");
        }
        return Some(read);
    }
    let continuations = continuations(Leaves::of(tree, deadline), code);
    (!continuations.is_empty()).then(|| spliced(code, &continuations))
}

/// Whether `code` holds any of the bytes this module reads: most programs do not, and need
/// no walk over their tree.
fn may_differ(code: &[u8]) -> bool {
    code.windows(4).any(|w| w == b"<!--")
        || code.windows(3).any(|w| w == b"-->")
        || code
            .windows(2)
            .any(|w| w[0] == b'\\' && is_line_break_start(w[1]))
}

/// Whether a line terminator starts with `byte`: `\n`, `\r`, or the lead byte of U+2028 and
/// U+2029 (a continuation is then confirmed by the grammar's escape).
fn is_line_break_start(byte: u8) -> bool {
    matches!(byte, b'\n' | b'\r' | 0xe2)
}

/// Where Node starts an HTML-like comment that the grammar reads as tokens: the offset of
/// its `<!--` or `-->`.
fn first_html_comment_read_as_code(leaves: Leaves<'_>, code: &[u8]) -> Option<usize> {
    // Node's `-->` needs a line break since the token before it (or no token before it).
    let mut line_break_since_token = true;
    let mut last_token_end = 0;
    for leaf in leaves {
        let (start, end) = (leaf.start_byte(), leaf.end_byte());
        if start == end {
            continue;
        }
        if matches!(leaf.kind(), "comment" | "html_comment" | "hash_bang_line") {
            continue;
        }
        let gap = &code[last_token_end..start];
        line_break_since_token |= gap.contains(&b'\n') || contains_separator(gap);
        let rest = &code[start..];
        match leaf.kind() {
            "<" if rest.starts_with(b"<!--") => return Some(start),
            "--" if rest.starts_with(b"-->") && line_break_since_token => return Some(start),
            _ => {}
        }
        line_break_since_token = false;
        last_token_end = end;
    }
    None
}

/// `first`, an HTML-like comment Node reads in code, and those after it that Node reads in code
/// too, read from the text alone: while the code between them (not their own lines' rest,
/// which is their comment) holds no `/`, quote, backquote, backslash or byte outside ASCII,
/// and no `}` closing a brace opened before it. Without these nothing there can start a
/// string, a template's text, a regular expression or another comment, nor end one that was
/// open (a `}` could end a template's substitution), so Node reads all of it as code, whatever
/// the grammar made of it: a `<!--` there starts a comment, and so does a `-->` with only
/// blanks before it on its line. The scan stops at the first of them; what lies beyond waits
/// for the next pass's tree. A byte outside ASCII stops it even in a comment: U+2028 and
/// U+2029 end the comment's line.
fn html_comments_from(code: &[u8], first: usize) -> Vec<usize> {
    let mut found = vec![first];
    let (mut i, mut braces, mut blanks_only) = (first, 0usize, false);
    loop {
        // In a comment: to the end of its line.
        match code[i..]
            .iter()
            .position(|&b| matches!(b, b'\n' | b'\r') || !b.is_ascii())
        {
            Some(end) if code[i + end].is_ascii() => i += end,
            _ => return found,
        }
        // In code.
        loop {
            let Some(&byte) = code.get(i) else {
                return found;
            };
            let rest = &code[i..];
            if rest.starts_with(b"<!--") || (blanks_only && rest.starts_with(b"-->")) {
                found.push(i);
                break;
            }
            i += 1;
            match byte {
                b'\n' | b'\r' => {
                    blanks_only = true;
                    continue;
                }
                b' ' | b'\t' | b'\x0b' | b'\x0c' => continue,
                b'/' | b'\'' | b'"' | b'`' | b'\\' => return found,
                _ if !byte.is_ascii() => return found,
                b'{' => braces += 1,
                b'}' => match braces.checked_sub(1) {
                    Some(left) => braces = left,
                    None => return found,
                },
                _ => {}
            }
            blanks_only = false;
        }
    }
}

/// Each line continuation in a string or a template: its range and the end of its
/// string, where its line break goes back.
fn continuations(leaves: Leaves<'_>, code: &[u8]) -> Vec<Continuation> {
    leaves
        .filter(|leaf| leaf.kind() == "escape_sequence")
        .filter_map(|leaf| {
            let string = leaf.parent()?;
            let text = &code[leaf.start_byte()..leaf.end_byte()];
            let line_break = match text {
                b"\\\n" | b"\\\r\n" => true,
                b"\\\xe2\x80\xa8" | b"\\\xe2\x80\xa9" => false,
                _ => return None,
            };
            matches!(string.kind(), "string" | "template_string").then(|| Continuation {
                start: leaf.start_byte(),
                end: leaf.end_byte(),
                string_end: string.end_byte(),
                line_break,
            })
        })
        .collect()
}

/// Whether `gap` holds U+2028 or U+2029, which JavaScript reads as line breaks.
fn contains_separator(gap: &[u8]) -> bool {
    gap.windows(3)
        .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes())
}

/// A backslash and the line break after it, in a string or a template.
struct Continuation {
    start: usize,
    end: usize,
    /// The end of the string or template that holds it.
    string_end: usize,
    /// Whether the grammar counts a line there (`\n`; not U+2028 or U+2029).
    line_break: bool,
}

/// `code` without `continuations`, each `\n` of them put back at the end of its string.
fn spliced(code: &[u8], continuations: &[Continuation]) -> Vec<u8> {
    let mut breaks_at: Vec<usize> = continuations
        .iter()
        .filter(|c| c.line_break)
        .map(|c| c.string_end)
        .collect();
    breaks_at.sort_unstable();
    let mut read = Vec::with_capacity(code.len());
    let (mut next_cut, mut next_break, mut i) = (0, 0, 0);
    while i <= code.len() {
        while breaks_at.get(next_break) == Some(&i) {
            read.push(b'\n');
            next_break += 1;
        }
        if let Some(cut) = continuations.get(next_cut).filter(|c| c.start == i) {
            i = cut.end;
            next_cut += 1;
            continue;
        }
        if let Some(&byte) = code.get(i) {
            read.push(byte);
        }
        i += 1;
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// `code` as Node reads it: re-read and parsed again until nothing differs.
    fn node_reads(code: &str) -> String {
        node_reads_in_passes(code).0
    }

    /// `code` as Node reads it, and how many times it was read again.
    fn node_reads_in_passes(code: &str) -> (String, usize) {
        crate::reading::read_until_still(Grammar::Javascript, reread, code)
    }

    #[test]
    fn html_like_comments_in_code_are_comments() {
        assert_eq!(
            // The grammar reads the `-->` as a comment once the line before it ends.
            node_reads("x = 1 <!-- /*\nrun()\n--> */ y\n"),
            "x = 1 //-- /*\nrun()\n//> */ y\n"
        );
        assert_eq!(
            node_reads("f(y\n--> /*\n, run())\n// */ 0)\n"),
            "f(y\n//> /*\n, run())\n// */ 0)\n"
        );
        assert_eq!(node_reads("x /*\n*/ --> y\n"), "x /*\n*/ //> y\n");
    }

    /// Regression hunt: each comment took a parse of the whole file, and 100 of them in 7 KB
    /// (`x = x + 1 <!-- legacy comment`) took the whole time budget: graded `high`.
    #[test]
    fn html_like_comments_in_plain_code_are_read_in_one_pass() {
        let lines: String = (0..100)
            .map(|i| format!("x = x + 1 <!-- old {i} 'a /*\nfunction f{i}(a) {{ return a * {i}; }}\n  --> b\n"))
            .collect();
        let (read, passes) = node_reads_in_passes(&format!("var x = 0;\n{lines}"));
        assert_eq!(passes, 1);
        assert_eq!(read.matches("//-- old").count(), 100);
        assert_eq!(read.matches("  //> b").count(), 100);
    }

    #[test]
    fn html_like_comments_after_what_may_open_a_token_wait_for_the_next_tree() {
        for (code, read, passes) in [
            // A `/` may start a regular expression: the scan stops at it, and the next tree
            // reads the division and the comment after it, as Node does.
            (
                "x = y <!-- a\n/ <!-- /.source; eval(y)\n",
                "x = y //-- a\n/ <!-- /.source; eval(y)\n",
                1,
            ),
            // The `}` ends a template's substitution: its text follows.
            (
                "x = `${ y <!-- a\n} <!-- text`\n",
                "x = `${ y //-- a\n} <!-- text`\n",
                1,
            ),
            // A string, then more comments: each waits for a tree.
            (
                "a <!-- 1\ns = '<!--'\nb <!-- 2\nc <!-- 3\n",
                "a //-- 1\ns = '<!--'\nb //-- 2\nc //-- 3\n",
                2,
            ),
            // U+2028 ends the comment's line: the code after it waits.
            (
                "a <!-- 1\u{2028}s = '<!--'\nb <!-- 2\n",
                "a //-- 1\u{2028}s = '<!--'\nb //-- 2\n",
                2,
            ),
            // A token before `-->` on its line: a decrement and a comparison.
            ("a <!-- 1\nb -->c\n", "a //-- 1\nb -->c\n", 1),
        ] {
            assert_eq!(
                node_reads_in_passes(code),
                (read.to_string(), passes),
                "{code:?}"
            );
        }
    }

    #[test]
    fn html_like_comments_elsewhere_stay_as_they_are() {
        for code in [
            // The grammar reads these as comments already.
            "<!-- a\nrun()\n",
            "x = 1\n--> a\nrun()\n",
            // A decrement compared, on one line: code to Node too.
            "while (i-->0) run()\n",
            "x = y /* */ -->z\n",
            // In strings, templates, regular expressions and comments.
            "s = '<!-- -->'\nt = `\n--> <!--`\nr = /<!--/\n// <!--\n/* <!-- */\n",
        ] {
            assert_eq!(node_reads(code), code);
        }
    }

    #[test]
    fn line_continuations_in_strings_and_templates_stand_for_nothing() {
        assert_eq!(
            node_reads("require(\"child_\\\nprocess\"); x\ny"),
            "require(\"child_process\"\n); x\ny"
        );
        assert_eq!(
            node_reads("require(`chi\\\r\nld_\\\nprocess`)\nz"),
            "require(`child_process`\n\n)\nz"
        );
        assert_eq!(
            node_reads("require('child_\\\u{2028}process')"),
            "require('child_process')"
        );
        for code in ["x = 'a\\\\'\n", "// a \\\nb()\n", "x = 'a' \\\n"] {
            assert_eq!(node_reads(code), code);
        }
    }
}
