//! PHP's double-quoted strings and heredocs as PHP reads them: `\x73`, `\163` and `\u{73}` are
//! `s` there (a hunt called `"\x73ystem"("id")` and `$f = "sh\x65ll_exec"; $f("id")`, graded
//! `none`). Only the tree tells a double-quoted string from a single-quoted one or a nowdoc,
//! where a backslash is itself, so the escapes are found on the tree and the text is parsed
//! again (`reading.rs`, [`super::parsed`]). Runs in the analysing process, between parses.
//!
//! An escape is translated when it stands for an ASCII letter, digit or `_`, a name's
//! character: anything else (a quote, `$`, `{`, a line break) would change how the string
//! parses. Each translation removes a backslash, so the readings end. A name's character can
//! still change the structure in two places, where an escape stays as it is: a heredoc's
//! line that would end it (PHP finds the end in the text as written, so `\x45OT;` does not end
//! `<<<EOT`; translated, the grammar ended the heredoc there and a hunt hid `eval` in a second
//! heredoc the translation opened) keeps its first such escape, and a character after `$` or
//! `->` stays, which would make literal text a variable (`"$\x61"` is `$a` as text to PHP).
//! PHP ends a heredoc only where the delimiter is followed by a character no name holds, so a
//! line that merely starts with it is translated whole (`\x73ystem` under `<<<sy` kept its
//! escape and hid `system`).

use tree_sitter::{Node, Tree};

use super::leaves::Leaves;
use super::lengthens_escape;
use crate::deadline::Deadline;

/// The text to parse again, when a double-quoted string or a heredoc of `code`'s tree holds an
/// escape of a name's character.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.contains(&b'\\') {
        return None;
    }
    let mut read = Vec::with_capacity(code.len());
    let (mut copied, mut translated) = (0, false);
    let mut line_checked = None;
    for leaf in Leaves::of(tree, deadline) {
        let in_string = leaf
            .parent()
            .is_some_and(|p| matches!(p.kind(), "encapsed_string" | "heredoc_body"));
        if leaf.kind() != "escape_sequence" || !in_string {
            continue;
        }
        let (start, end) = (leaf.start_byte(), leaf.end_byte());
        let Some(c) = name_character(&code[start..end]) else {
            continue;
        };
        read.extend_from_slice(&code[copied..start]);
        if lengthens_escape(&read, c)
            || read.ends_with(b"$")
            || read.ends_with(b"->")
            || ends_the_heredoc(leaf, code, &mut line_checked)
        {
            read.extend_from_slice(&code[start..end]);
        } else {
            read.push(c);
            translated = true;
        }
        copied = end;
    }
    read.extend_from_slice(&code[copied..]);
    translated.then_some(read)
}

/// Whether `escape`, in a heredoc's body, is the one escape of its line kept as written so that
/// the line does not end the heredoc: the first of the line's escapes of names' characters, on
/// a line that would end it were they all translated. `checked` keeps the last line's answer
/// (its start and the escape kept): a line of many escapes is read once.
fn ends_the_heredoc(
    escape: Node<'_>,
    code: &[u8],
    checked: &mut Option<(usize, Option<usize>)>,
) -> bool {
    let Some(body) = escape.parent().filter(|p| p.kind() == "heredoc_body") else {
        return false;
    };
    let at = escape.start_byte();
    let line_start = at - escape.start_position().column;
    let kept = match *checked {
        Some((start, kept)) if start == line_start => kept,
        _ => {
            let kept = escape_kept_on_line(body, line_start, code);
            *checked = Some((line_start, kept));
            kept
        }
    };
    kept == Some(at)
}

/// The first escape of a name's character on the line of `body` at `line_start`, when the line
/// with every such escape translated would end the heredoc as PHP reads an end: after blanks
/// (PHP 7.3's indented end), the delimiter followed by anything but a name's character. Only
/// that escape stays: the text before it is then part of the delimiter at most, followed by a
/// backslash, which is no end. The line's other escapes are translated, so a name the line
/// spells after the delimiter (`\x73y,\x73ystem` under `<<<sy`) is read, and a line whose
/// name merely starts with the delimiter (`\x73ystem` under `<<<sy`, which PHP does not end)
/// is translated whole.
fn escape_kept_on_line(body: Node<'_>, line_start: usize, code: &[u8]) -> Option<usize> {
    let start = body.parent().and_then(|heredoc| {
        let mut cursor = heredoc.walk();
        let start = heredoc
            .children(&mut cursor)
            .find(|c| c.kind() == "heredoc_start");
        start
    })?;
    let delimiter = code[start.byte_range()].trim_ascii();
    let delimiter = delimiter
        .strip_prefix(b"\"")
        .and_then(|d| d.strip_suffix(b"\""))
        .unwrap_or(delimiter);
    let line_end = code[line_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(code.len(), |i| line_start + i);
    let mut line = Vec::with_capacity(line_end - line_start);
    let (mut copied, mut first) = (line_start, None);
    let mut part = body.first_child_for_byte(line_start);
    while let Some(node) = part.take().filter(|n| n.start_byte() < line_end) {
        part = node.next_sibling();
        let range = node.byte_range();
        if node.kind() != "escape_sequence" || range.start < line_start || range.end > line_end {
            continue;
        }
        if let Some(c) = name_character(&code[range.clone()]) {
            first.get_or_insert(range.start);
            line.extend_from_slice(&code[copied..range.start]);
            line.push(c);
            copied = range.end;
        }
    }
    line.extend_from_slice(&code[copied..line_end]);
    let blanks = line
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let ends = !delimiter.is_empty()
        && line[blanks..].starts_with(delimiter)
        && line
            .get(blanks + delimiter.len())
            .is_none_or(|&b| !is_name_byte(b));
    first.filter(|_| ends)
}

/// Whether PHP reads `b` as part of a name (`[a-zA-Z0-9_\x80-\xff]`): a delimiter followed by
/// one does not end a heredoc.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The character `escape` stands for, when it is a name's: `\xH` or `\xHH`, an octal `\N` to
/// `\NNN` (PHP keeps the low byte of a larger one, `\563` is `s`, with a warning), `\u{H…}`.
fn name_character(escape: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(escape.strip_prefix(b"\\")?).ok()?;
    let value = if let Some(hex) = text.strip_prefix('x') {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(braced) = text.strip_prefix("u{") {
        u32::from_str_radix(braced.strip_suffix('}')?, 16).ok()?
    } else if text.bytes().all(|b| (b'0'..=b'7').contains(&b)) && !text.is_empty() {
        u32::from_str_radix(text, 8).ok()? & 0xff
    } else {
        return None;
    };
    u8::try_from(value)
        .ok()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// `code` as PHP reads it: re-read and parsed again until nothing changes.
    fn php_reads(code: &str) -> String {
        crate::reading::read_until_still(Grammar::Php, reread, code).0
    }

    #[test]
    fn escapes_of_name_characters_are_read_in_double_quotes_and_heredocs() {
        assert_eq!(
            php_reads(r#"<?php "\x73ystem"("id"); $f = "sh\145ll_\u{65}xec";"#),
            r#"<?php "system"("id"); $f = "shell_exec";"#
        );
        assert_eq!(php_reads(r#"<?php "\563y\x5Fx";"#), r#"<?php "sy_x";"#);
        assert_eq!(
            php_reads("<?php $s = <<<EOT\n\\x73y{$a}\nEOT;\n"),
            "<?php $s = <<<EOT\nsy{$a}\nEOT;\n"
        );
    }

    #[test]
    fn other_escapes_and_other_strings_stay_as_they_are() {
        for code in [
            // Single quotes and nowdocs keep their backslashes.
            "<?php '\\x73ystem'; $h = <<<'E'\n\\x41\nE;\n",
            // Escapes of other characters: a quote, `$`, a line break, a byte 1.
            r#"<?php "\x22 \x24a \n \x0a \1 \u{1F600}";"#,
            // An escape after an escaped backslash is read: here, there is none.
            r#"<?php "\\x73";"#,
            // Text that would become a variable.
            r#"<?php "$\x61 $a->\x62";"#,
        ] {
            assert_eq!(php_reads(code), code);
        }
        // A digit written after an escape left as it was would lengthen it.
        assert_eq!(
            php_reads(r#"<?php "\1\x32 \x4\x31""#),
            r#"<?php "\1\x32 \x4\x31""#
        );
        assert_eq!(php_reads(r#"<?php "\\\x73""#), r#"<?php "\\s""#);
    }

    #[test]
    fn only_a_line_php_would_end_a_heredoc_on_keeps_an_escape() {
        // A name that only starts with the delimiter does not end the heredoc in PHP.
        assert_eq!(
            php_reads("<?php $f = <<<sy\n\\x73ystem\nsy;\n"),
            "<?php $f = <<<sy\nsystem\nsy;\n"
        );
        assert_eq!(
            php_reads("<?php $f = <<<\"sys\"\n  \\x73\\x79stem\n  sys;\n"),
            "<?php $f = <<<\"sys\"\n  system\n  sys;\n"
        );
        // A line that would end it keeps its first escape only.
        assert_eq!(
            php_reads("<?php $f = <<<sy\n\\x73y,\\x73ystem\nsy;\n"),
            "<?php $f = <<<sy\n\\x73y,system\nsy;\n"
        );
        assert_eq!(
            php_reads("<?php $s = <<<EOT\n \\x45\\117T;\nEOT;\n"),
            "<?php $s = <<<EOT\n \\x45OT;\nEOT;\n"
        );
        assert_eq!(
            php_reads("<?php $f = <<<sy\n\t\\x73\\x79\nsy;\n"),
            "<?php $f = <<<sy\n\t\\x73y\nsy;\n"
        );
    }
}
