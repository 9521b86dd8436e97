//! A bash line continuation inside a word as the shell reads it: bash removes a backslash and
//! the line break after it before it splits words, so `e\` then `val "id"` on the next line
//! runs `eval`, and `e=ev\` then `al` assigns it; tree-sitter-bash reads the continuation as a
//! blank between two words (a hunt ran both, graded `none` and `low`). Only the tree tells a
//! continuation in a single-quoted string, a comment or a here-document's body, which bash
//! keeps, from one in code, so they are found on the tree and the text is parsed again
//! (`reading.rs`, [`super::parsed`]). Runs in the analysing process, between parses.
//!
//! Bytes and lines stay: the continuation moves to the end of the word part after it, where
//! bash removes it as well (`e\`, newline, `val` becomes `eval\`, newline), so the grammar reads
//! the joined word. Each move takes a continuation past a part, to the right, so the readings
//! end.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::ancestors;
use crate::deadline::Deadline;

/// Continuations looked at between two looks at the clock.
const GAPS_PER_CLOCK_CHECK: u32 = 256;

/// The text to parse again, when a line continuation of `code` splits a word its tree reads as
/// two.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.windows(2).any(|w| w == b"\\\n") {
        return None;
    }
    let root = tree.root_node();
    let mut read: Option<Vec<u8>> = None;
    let (mut i, mut moved_to, mut looked) = (0, 0, 0u32);
    while let Some(found) = code[i..].windows(2).position(|w| w == b"\\\n") {
        looked = looked.wrapping_add(1);
        if looked.is_multiple_of(GAPS_PER_CLOCK_CHECK) && deadline.passed() {
            break;
        }
        let start = i + found;
        let end = start + continuations_len(&code[start..]);
        i = end;
        if start < moved_to || escaped(code, start) || !joins(code, start, end) {
            continue;
        }
        let Some((word_end, gaps)) = joined_word(root, code, start..end) else {
            continue;
        };
        // The word's pieces first, then every continuation that split it.
        let mut joined: Vec<u8> = Vec::with_capacity(word_end - start);
        let mut continuations: Vec<u8> = Vec::new();
        for (k, gap) in gaps.iter().enumerate() {
            let piece_end = gaps.get(k + 1).map_or(word_end, |next| next.start);
            joined.extend_from_slice(&code[gap.end..piece_end]);
            continuations.extend_from_slice(&code[gap.clone()]);
        }
        joined.extend_from_slice(&continuations);
        let read = read.get_or_insert_with(|| code.to_vec());
        read[start..word_end].copy_from_slice(&joined);
        moved_to = word_end;
        i = word_end;
    }
    read
}

/// The text to parse again, when a line continuation of `code` splits an operator or an
/// expansion's `$` from what follows: bash removes it before it reads tokens, so `<\`, then
/// `<< EOF` on the next line, is a here-string (`<<<`), not the here-document the grammar
/// read, whose body hid the commands after it, and `$\`, then `'\x65val'`, is an ANSI-C
/// string that names `eval`. The continuations move before the operator (`\`, newline, `<<<`),
/// where bash removes them as well; a pass moves each one left, so the readings end.
pub(crate) fn reread_operators(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.windows(2).any(|w| w == b"\\\n") {
        return None;
    }
    let root = tree.root_node();
    let mut read: Option<Vec<u8>> = None;
    let (mut i, mut looked) = (0, 0u32);
    while let Some(found) = code[i..].windows(2).position(|w| w == b"\\\n") {
        looked = looked.wrapping_add(1);
        if looked.is_multiple_of(GAPS_PER_CLOCK_CHECK) && deadline.passed() {
            break;
        }
        let start = i + found;
        let end = start + continuations_len(&code[start..]);
        i = end;
        let Some(&after) = code.get(end) else {
            continue;
        };
        if escaped(code, start) {
            continue;
        }
        let mut from = start;
        while from > 0 && splits(code[from - 1], after) {
            from -= 1;
        }
        if from < start && escaped(code, from) {
            from += 1;
        }
        if from == start || kept(root, start) {
            continue;
        }
        let read = read.get_or_insert_with(|| code.to_vec());
        read[from..end].rotate_right(end - start);
    }
    read
}

/// Whether bash may read `left` and `right`, joined, as one token or the start of an
/// expansion: `<<<`, `>>`, `&&`, `||`, `;;`, `|&`, `&>`, `<(`, `<<-`, `((`, `$'`, `$(`, `$x`.
fn splits(left: u8, right: u8) -> bool {
    match left {
        b'$' => true,
        b'<' | b'>' | b'&' | b'|' | b';' => b"<>&|;(-".contains(&right),
        b'(' => right == b'(',
        _ => false,
    }
}

/// Whether the backslash at `at` is in text that keeps a continuation: single quotes, an
/// ANSI-C string, a comment, a here-document's body.
fn kept(root: Node<'_>, at: usize) -> bool {
    root.descendant_for_byte_range(at, at + 1)
        .is_some_and(|node| {
            ancestors::path(root, node).iter().any(|node| {
                matches!(
                    node.kind(),
                    "comment" | "raw_string" | "ansi_c_string" | "heredoc_body" | "heredoc_content"
                )
            })
        })
}

/// The length of the run of continuations (`\` and a line break, once or more) at the start
/// of `rest`.
fn continuations_len(rest: &[u8]) -> usize {
    rest.chunks(2).take_while(|pair| *pair == b"\\\n").count() * 2
}

/// The end of the word that the continuations `gap` split, and the continuations that split
/// it (`e\`, `v\`, `al` on three lines: one pass moves them all).
fn joined_word(
    root: Node<'_>,
    code: &[u8],
    gap: Range<usize>,
) -> Option<(usize, Vec<Range<usize>>)> {
    let mut word_end = end_of_part_after(root, gap.start, gap.end)?;
    let mut gaps = vec![gap];
    loop {
        let len = continuations_len(&code[word_end..]);
        if len == 0 || escaped(code, word_end) || !joins(code, word_end, word_end + len) {
            return Some((word_end, gaps));
        }
        let Some(part_end) = end_of_part_after(root, word_end, word_end + len) else {
            return Some((word_end, gaps));
        };
        gaps.push(word_end..word_end + len);
        word_end = part_end;
    }
}

/// Whether the backslash at `at` is itself escaped by an odd run of backslashes before it.
fn escaped(code: &[u8], at: usize) -> bool {
    code[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Whether the continuations between `start` and `end` join two pieces of one word: neither
/// side is a blank, a line break or an operator.
fn joins(code: &[u8], start: usize, end: usize) -> bool {
    let separates = |b: u8| b.is_ascii_whitespace() || b";&|<>()".contains(&b);
    start > 0 && !separates(code[start - 1]) && code.get(end).is_some_and(|&b| !separates(b))
}

/// Where the word part that starts right after the continuations ends, when the grammar reads
/// the continuations as a blank between two parts, outside anything that keeps them (single
/// quotes, a comment, a here-document's body). Inside double quotes bash removes them too:
/// there the part is the rest of the string's text.
fn end_of_part_after(root: Node<'_>, start: usize, end: usize) -> Option<usize> {
    let around = root.descendant_for_byte_range(start, end)?;
    // The backslash alone: a comment's node ends before the line break.
    if kept(root, start) {
        return None;
    }
    if around.kind() == "string_content" {
        return (around.end_byte() > end).then_some(around.end_byte());
    }
    let part = root.descendant_for_byte_range(end, end)?;
    if part.start_byte() != end {
        return None;
    }
    let path = ancestors::path(root, part);
    let part = path
        .iter()
        .rev()
        .skip(1)
        .take_while(|p| p.start_byte() == end && is_word_part(p.kind()))
        .last()
        .copied()
        .unwrap_or(part);
    (is_word_part(part.kind()) && part.end_byte() > end).then_some(part.end_byte())
}

fn is_word_part(kind: &str) -> bool {
    matches!(
        kind,
        "word"
            | "string"
            | "raw_string"
            | "ansi_c_string"
            | "translated_string"
            | "concatenation"
            | "simple_expansion"
            | "expansion"
            | "command_substitution"
            | "number"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    /// `code` as bash reads its continuations: re-read and parsed again until nothing changes.
    fn bash_reads(code: &str) -> String {
        crate::reading::read_until_still(Grammar::Bash, reread, code).0
    }

    #[test]
    fn a_continuation_inside_a_word_moves_after_it() {
        assert_eq!(bash_reads("e\\\nval \"id\"\n"), "eval\\\n \"id\"\n");
        assert_eq!(bash_reads("e=ev\\\nal; $e id\n"), "e=eval\\\n; $e id\n");
        assert_eq!(bash_reads("e\\\nv\\\nal id\n"), "eval\\\n\\\n id\n");
        assert_eq!(bash_reads("e\\\n\"val\" id\n"), "e\"val\"\\\n id\n");
        assert_eq!(bash_reads("\"ev\\\nal\" id\n"), "\"eval\\\n\" id\n");
    }

    /// `code` as bash reads its continuations in operators and in words.
    fn bash_reads_operators(code: &str) -> String {
        let both: fn(&Tree, &[u8], Deadline) -> Option<Vec<u8>> = |tree, code, deadline| {
            reread_operators(tree, code, deadline).or_else(|| reread(tree, code, deadline))
        };
        crate::reading::read_until_still(Grammar::Bash, both, code).0
    }

    #[test]
    fn a_continuation_inside_an_operator_moves_before_it() {
        assert_eq!(
            bash_reads_operators("cat <\\\n<< EOF\nid\n"),
            "cat \\\n<<< EOF\nid\n"
        );
        assert_eq!(bash_reads_operators("a >\\\n> f\n"), "a \\\n>> f\n");
        assert_eq!(bash_reads_operators("a |\\\n| b\n"), "a \\\n|| b\n");
        assert_eq!(bash_reads_operators("$\\\n'x' y\n"), "\\\n$'x' y\n");
        assert_eq!(bash_reads_operators("a$\\\n'x' y\n"), "a$'x'\\\n y\n");
        for kept in [
            "echo '$\\\n(x)'\n",
            "echo a # |\\\n| b\n",
            "echo \\$\\\n(x)\n",
            "ls |\\\n wc\n",
        ] {
            assert_eq!(bash_reads_operators(kept), kept);
        }
    }

    #[test]
    fn a_word_split_many_times_is_joined_in_one_pass() {
        let code = format!("{}a id\n", "a\\\n".repeat(1000));
        let (read, passes) = crate::reading::read_until_still(Grammar::Bash, reread, &code);
        assert_eq!(passes, 1);
        assert!(read.starts_with(&"a".repeat(1001)));
    }

    #[test]
    fn continuations_bash_keeps_or_that_join_nothing_stay() {
        for code in [
            "echo 'a\\\nb'\n",
            "echo a # b\\\nid\n",
            "echo a \\\n  b\n",
            "echo a\\\\\nb\n",
            "cat <<'E'\nx\\\ny\nE\n",
            "ls |\\\n wc\n",
        ] {
            assert_eq!(bash_reads(code), code);
        }
    }
}
