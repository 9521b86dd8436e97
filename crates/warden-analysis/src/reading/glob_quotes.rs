//! A bash glob pattern with a quoted piece after a glob character, as bash reads it. In a case
//! item's pattern or on the right of `[[ … == … ]]`, tree-sitter-bash's scanner reads a pattern
//! that holds `?`, `*` or `[` as one token, and takes a quote in it for a pattern character:
//! `?*' '?*)` was the token `?*'` and a string from the second quote to the next one in the
//! file, so every later line was text to the rules (`/usr/bin/zless`, git's merge scripts:
//! 63 to 100% of the file unparseable, graded `high`). Bash reads the quoted piece as literal
//! text of the pattern, which holds no command. Only the tree tells a pattern from other text,
//! so the pieces are found on the tree and the text is parsed again (`reading.rs`,
//! [`super::parsed`]). Runs in the analysing process, between parses.
//!
//! The piece, quotes included (`' '`, `'a b'`, `$'\t'`), becomes as many `_`: one word of the
//! pattern, offsets and lines unchanged. It is rewritten only where bash reads no more than
//! words in it, whatever went wrong before: on one line, and without a byte that could end a
//! command, start an expansion or a substitution, or close a double-quoted string (`;`, `&`,
//! `|`, `<`, `>`, `(`, `)`, `$`, a backquote, `"`, and in single quotes a backslash). Each
//! rewrite removes two quotes, so the readings end. A piece that is not so read leaves the
//! program unparseable, as before.

use tree_sitter::Tree;

use super::leaves::Leaves;
use crate::deadline::Deadline;

/// The text to parse again, when a glob pattern of `code`'s tree took the opening quote of a
/// quoted piece for a pattern character.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.contains(&b'\'') {
        return None;
    }
    let mut read: Option<Vec<u8>> = None;
    for leaf in Leaves::of(tree, deadline) {
        if leaf.kind() != "extglob_pattern" {
            continue;
        }
        let Some(opening) = unpaired_quote(&code[leaf.start_byte()..leaf.end_byte()]) else {
            continue;
        };
        let start = leaf.start_byte() + opening;
        if let Some(end) = piece_end(code, start) {
            let read = read.get_or_insert_with(|| code.to_vec());
            read[start..end].fill(b'_');
        }
    }
    read
}

/// Where, in a pattern token's text, a quoted piece opens (its `'`, or the `$` of `$'`) that
/// does not close in the token.
fn unpaired_quote(token: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < token.len() {
        match token[i] {
            b'\\' => i += 2,
            b'\'' => {
                let ansi_c = i > 0 && token[i - 1] == b'$';
                match quote_end(token, i, ansi_c) {
                    Some(end) => i = end,
                    None => return Some(if ansi_c { i - 1 } else { i }),
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The end (after the closing quote) of the single-quoted text whose opening quote is at
/// `quote`; in `$'…'` a backslash escapes the byte after it.
fn quote_end(text: &[u8], quote: usize, ansi_c: bool) -> Option<usize> {
    let mut i = quote + 1;
    while i < text.len() {
        match text[i] {
            b'\\' if ansi_c => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end of the quoted piece that starts at `start` (a `'`, or the `$` of `$'`), if bash
/// reads nothing but words in it however it reads the quote.
fn piece_end(code: &[u8], start: usize) -> Option<usize> {
    let ansi_c = code[start] == b'$';
    let quote = if ansi_c { start + 1 } else { start };
    let end = quote_end(code, quote, ansi_c)?;
    let inside = &code[quote + 1..end - 1];
    let words_only = inside.iter().all(|b| {
        !matches!(
            b,
            b'\n' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')' | b'$' | b'`' | b'"'
        ) && (ansi_c || *b != b'\\')
    });
    words_only.then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpaired_quote_is_found_in_a_pattern_token() {
        assert_eq!(unpaired_quote(b"?*'"), Some(2));
        assert_eq!(unpaired_quote(b"?*'a"), Some(2));
        assert_eq!(unpaired_quote(b"?*$'a"), Some(2));
        assert_eq!(unpaired_quote(b"[ab]'"), Some(4));
        // Closed in the token, or escaped: read as bash reads it already.
        assert_eq!(unpaired_quote(b"?*'a'"), None);
        assert_eq!(unpaired_quote(b"?*$'\\''x"), None);
        assert_eq!(unpaired_quote(b"?*\\'a"), None);
        assert_eq!(unpaired_quote(b"?*'a'?'"), Some(6));
    }

    #[test]
    fn a_piece_is_rewritten_only_when_it_can_hold_nothing_but_words() {
        let end = |code: &str, start| piece_end(code.as_bytes(), start);
        assert_eq!(end("?*' '?*)", 2), Some(5));
        assert_eq!(end("?*'a b.c-d'x)", 2), Some(11));
        assert_eq!(end(r"?*$'\t\''x)", 2), Some(9));
        // Across a line, or holding what bash would read as more than words were the quote
        // read otherwise.
        for code in [
            "?*'a\nb')",
            "?*'a;eval x')",
            "?*'a $(id)')",
            "?*'`id`')",
            "?*'a\" b')",
            "?*'a) b')",
            "?*'a|b')",
            "?*'a & b')",
            "?*'a\\')",
            "?*' unclosed)",
        ] {
            assert_eq!(end(code, 2), None, "{code:?}");
        }
    }
}
