//! Bash's `<>` redirection, which opens a file for reading and writing (`exec 3<>/dev/tcp/…`,
//! `cat <> file`): tree-sitter-bash has no such operator and reads a `<` then an `ERROR` with
//! the `>`, so an ordinary script that used it had a parse error, and the analysis then takes
//! every variable it assigns a command to as one that may run (`assigned_commands.rs`) and a
//! file beside a program that holds it for data. Found on the tree (a `<` token right before a
//! `>` token, which text in quotes, a comment or a here-document's body is not), the `<>`
//! becomes `>|`, of the same length: the grammar reads a redirection that writes to the file,
//! which the rules read as they read any redirection (`/dev/tcp/…` is still `bash.network`),
//! and one that may write (`exec 3<> /proc/sys/…` is `bash.sandbox_escape`, where a read, `<`,
//! is not). Runs in the analysing process, between parses (`reading.rs`, [`super::parsed`]).

use tree_sitter::{Node, Tree};

use crate::deadline::Deadline;

/// Operators looked at between two looks at the clock.
const OPERATORS_PER_CLOCK_CHECK: u32 = 256;

/// The text to parse again, when `code` holds a `<>` redirection.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    if !code.windows(2).any(|w| w == b"<>") {
        return None;
    }
    let root = tree.root_node();
    let mut read: Option<Vec<u8>> = None;
    let (mut i, mut looked) = (0, 0u32);
    while let Some(found) = code[i..].windows(2).position(|w| w == b"<>") {
        looked = looked.wrapping_add(1);
        if looked.is_multiple_of(OPERATORS_PER_CLOCK_CHECK) && deadline.passed() {
            break;
        }
        let at = i + found;
        i = at + 2;
        if token(root, at, "<") && token(root, at + 1, ">") {
            let read = read.get_or_insert_with(|| code.to_vec());
            read[at] = b'>';
            read[at + 1] = b'|';
        }
    }
    read
}

/// Whether the byte at `at` is an operator token `kind` of the tree.
fn token(root: Node<'_>, at: usize, kind: &str) -> bool {
    root.descendant_for_byte_range(at, at + 1)
        .is_some_and(|n| !n.is_named() && n.kind() == kind && n.byte_range() == (at..at + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grammar;

    fn bash_reads(code: &str) -> String {
        crate::reading::read_until_still(Grammar::Bash, reread, code).0
    }

    #[test]
    fn a_read_write_redirection_is_read_as_a_redirection() {
        assert_eq!(bash_reads("cat <> file\n"), "cat >| file\n");
        assert_eq!(
            bash_reads("exec 3<>/dev/tcp/h/80\n"),
            "exec 3>|/dev/tcp/h/80\n"
        );
        assert_eq!(bash_reads("cat 0<>f | wc\n"), "cat 0>|f | wc\n");
        for kept in [
            "echo '<>' \"<>\" # <>\n",
            "cat <<E\n<>\nE\n",
            "echo a\\<>b\n",
        ] {
            assert_eq!(bash_reads(kept), kept);
        }
    }
}
