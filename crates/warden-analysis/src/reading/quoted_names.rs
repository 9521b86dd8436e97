//! A bash command name made only of quoted pieces (`'''exec'`, `'ev'"al"`) as the shell reads
//! it: the pieces' text joined. pip's relocatable launchers, shell and Python at once, start
//! `'''exec' "$(dirname -- "$0")/python3" "$0" "$@"`, and the rule for names spliced from
//! quotes graded them `high` whatever they ran. Written as the plain name, the rules that read
//! names and the `exec NAME` prefix grade what runs: `'''exec' bash -c "$p"` is `exec bash -c`,
//! `'ev''al'` is `eval`. Only the tree tells a command's name, so the names are found on the
//! tree and the text is parsed again (`reading.rs`, [`super::parsed`]). Runs in the analysing
//! process, between parses.
//!
//! The name's bytes become its text, then blanks up to its length: offsets after it and lines
//! unchanged. Only a name whose text is a plain word is rewritten (letters, digits, `_`, `.`,
//! `/`, `+`, `-`): no expansion, escape or blank. Each rewrite removes quotes, so the readings
//! end. A name with an unquoted piece (`e"va"l`) stays as written, for the spliced-quote rule.

use tree_sitter::{Node, Tree};

use crate::deadline::{self, Deadline};

/// The text to parse again, when a command of `code`'s tree is named by quoted pieces only.
pub(crate) fn reread(tree: &Tree, code: &[u8], deadline: Deadline) -> Option<Vec<u8>> {
    let adjacent_quotes = code
        .windows(2)
        .any(|w| matches!(w, [b'\'' | b'"', b'\'' | b'"']));
    if !adjacent_quotes {
        return None;
    }
    let mut read: Option<Vec<u8>> = None;
    // What was read before the deadline is read again all the same.
    deadline::walk(tree, deadline, |node| {
        if node.kind() != "command_name" {
            return true;
        }
        if let Some(name) = quoted_name(node, code) {
            let read = read.get_or_insert_with(|| code.to_vec());
            let range = node.byte_range();
            read[range.start..range.start + name.len()].copy_from_slice(&name);
            read[range.start + name.len()..range.end].fill(b' ');
        }
        false
    });
    read
}

/// The text of `name`, a command's name, when it is a concatenation of single- or double-quoted
/// pieces whose joined text is a plain word.
fn quoted_name(name: Node<'_>, code: &[u8]) -> Option<Vec<u8>> {
    let [pieces] = named_children(name)[..] else {
        return None;
    };
    if pieces.kind() != "concatenation" {
        return None;
    }
    let mut text = Vec::new();
    for piece in named_children(pieces) {
        let plain = match piece.kind() {
            "raw_string" => true,
            "string" => named_children(piece)
                .iter()
                .all(|part| part.kind() == "string_content"),
            _ => false,
        };
        let bytes = &code[piece.byte_range()];
        if !plain || bytes.len() < 2 {
            return None;
        }
        text.extend_from_slice(&bytes[1..bytes.len() - 1]);
    }
    let word = !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_./+-".contains(b));
    word.then_some(text)
}

fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}
