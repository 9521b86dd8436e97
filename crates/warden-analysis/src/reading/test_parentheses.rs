//! Parentheses escaped for `[`: POSIX `test` groups its operands with `\(` and `\)` (`[ \( -n
//! "$a" \) -o -f b ]`), which tree-sitter-bash does not read inside `[ ]`: the whole test,
//! and often the script, became an `ERROR`, and an ordinary `sh` script was graded `high` as
//! unparseable. Found on the tree (a word `\(` or `\)` under an `ERROR` that holds the `[`
//! before it), each becomes the bare parenthesis and a blank (` (`, `) `: offsets do not move), which the grammar
//! reads as the test's grouping, as `test` does. Runs in the analysing process, between parses
//! (`reading.rs`, [`super::parsed`]).

use tree_sitter::{Node, Tree};

use crate::ancestors;
use crate::deadline::Deadline;

/// Parentheses looked at between two looks at the clock.
const PARENTHESES_PER_CLOCK_CHECK: u32 = 256;

/// The text to parse again, when `code` holds an escaped parenthesis of a `[` test that the
/// grammar could not read.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !(code.windows(2).any(|w| w == b"\\(") && code.contains(&b'[')) {
        return None;
    }
    let root = tree.root_node();
    let mut read: Option<Vec<u8>> = None;
    let mut looked = 0u32;
    for at in (0..code.len().saturating_sub(1))
        .filter(|&i| code[i] == b'\\' && matches!(code[i + 1], b'(' | b')'))
    {
        looked = looked.wrapping_add(1);
        if looked.is_multiple_of(PARENTHESES_PER_CLOCK_CHECK) && deadline.passed() {
            break;
        }
        if !in_a_broken_test(root, at) {
            continue;
        }
        let read = read.get_or_insert_with(|| code.to_vec());
        read[at..at + 2].copy_from_slice(if code[at + 1] == b'(' { b" (" } else { b") " });
    }
    read
}

/// Whether the escaped parenthesis at `at` is a word of its own under an `ERROR` that holds a
/// `[` before it.
fn in_a_broken_test(root: Node<'_>, at: usize) -> bool {
    let Some(word) = root
        .descendant_for_byte_range(at, at + 2)
        .filter(|w| w.kind() == "word" && w.byte_range() == (at..at + 2))
    else {
        return false;
    };
    let path = ancestors::path(root, word);
    let mut parents = path.iter().rev().skip(1);
    parents
        .find(|node| node.kind() == "ERROR")
        .is_some_and(|node| {
            let mut cursor = node.walk();
            let mut children = node.children(&mut cursor);
            children.any(|c| c.kind() == "[" && !c.is_named() && c.start_byte() < at)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    fn bash_reads(code: &str) -> String {
        crate::reading::read_until_still(Grammar::Bash, reread, code).0
    }

    #[test]
    fn escaped_parentheses_of_a_test_are_read_as_its_grouping() {
        assert_eq!(
            bash_reads("[ \\( -n \"$x\" \\) ]\n"),
            "[  ( -n \"$x\" )  ]\n"
        );
        assert_eq!(
            bash_reads("if [ ! \\( -f a -o -f b \\) ]; then echo; fi\n"),
            "if [ !  ( -f a -o -f b )  ]; then echo; fi\n"
        );
        for kept in [
            "find . \\( -name a -o -name b \\) -print\n",
            "test \\( -n \"$x\" \\)\n",
            "echo '[ \\( x \\) ]'\n",
        ] {
            assert_eq!(bash_reads(kept), kept);
        }
    }
}
